package janitor

import (
	"cmp"
	"encoding/hex"

	"strings"
)

// idSet is a set of ids compared without regard to case (pat.IDKey) that
// does not keep the ids' strings: an id of the tenant's form, 32 hex
// characters, is kept as its 16 bytes and a bit per character that was
// upper case (to say how it was first spelt), so that remembering every id
// of a million-token listing costs about 32 bytes each instead of a string
// of 32 and a map entry of 16 more. Other ids are kept as strings.
type idSet struct {
	hex map[[16]byte]hexEntry
	str map[string]strEntry // by pat.IDKey
}

// idEntry is what the set keeps with an id: its position in the listing
// and a digest of the token (tokenHash, 0 when not needed).
type idEntry struct {
	pos  uint32
	hash uint64
}

type hexEntry struct {
	upper uint32 // bit i: character i was upper case
	pos   uint32
	hash  uint64
}

type strEntry struct {
	idEntry
	spelt string // the id as first listed, when it is not its key
}

func newIDSet(n int) *idSet {
	return &idSet{hex: make(map[[16]byte]hexEntry, n), str: map[string]strEntry{}}
}

// hexKey reports whether id is 32 hex characters, and its bytes and upper
// case bits.
func hexKey(id string) (key [16]byte, upper uint32, ok bool) {
	if len(id) != 32 {
		return key, 0, false
	}
	var bad byte
	for i := 0; i < 16; i++ {
		hi, lo := hexDigit[id[2*i]], hexDigit[id[2*i+1]]
		bad |= hi | lo
		key[i] = hi<<4 | lo&0x0f
		upper |= uint32(hi>>5&1)<<(2*i) | uint32(lo>>5&1)<<(2*i+1)
	}
	return key, upper, bad&0x80 == 0
}

// hexDigit maps a hex character to its value, with bit 5 set for an upper
// case letter; anything else has bit 7 set.
var hexDigit = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = byte(c-'A'+10) | 0x20
		default:
			t[c] = 0x80
		}
	}
	return t
}()

// spell is the id of key as it was spelt.
func spell(key [16]byte, upper uint32) string {
	b := []byte(hex.EncodeToString(key[:]))
	for i := range b {
		if upper&(1<<i) != 0 {
			b[i] = strings.ToUpper(string(b[i]))[0]
		}
	}
	return string(b)
}

// add adds id and reports whether the set held it already (in any case);
// then it keeps the first entry.
func (s *idSet) add(id string, en idEntry) (dup bool) {
	if k, upper, ok := hexKey(id); ok {
		if _, found := s.hex[k]; found {
			return true
		}
		s.hex[k] = hexEntry{upper: upper, pos: en.pos, hash: en.hash}
		return false
	}
	key := strings.ToLower(id)
	if _, found := s.str[key]; found {
		return true
	}
	se := strEntry{idEntry: en}
	if key != id {
		se.spelt = id
	}
	s.str[key] = se
	return false
}

// spelling is id as the set first held it ("" when it does not).
func (s *idSet) spelling(id string) string {
	if k, _, ok := hexKey(id); ok {
		if e, found := s.hex[k]; found {
			return spell(k, e.upper)
		}
		return ""
	}
	key := strings.ToLower(id)
	if e, found := s.str[key]; found {
		return cmp.Or(e.spelt, key)
	}
	return ""
}

// has reports whether the set holds id (in any case).
func (s *idSet) has(id string) bool {
	if k, _, ok := hexKey(id); ok {
		_, found := s.hex[k]
		return found
	}
	_, found := s.str[strings.ToLower(id)]
	return found
}

// common calls fn with every id of s that o holds too (in any case), as s
// first spelt it, with s's entry and o's.
func (s *idSet) common(o *idSet, fn func(id string, mine, theirs idEntry)) {
	for k, e := range s.hex {
		if t, ok := o.hex[k]; ok {
			fn(spell(k, e.upper), idEntry{pos: e.pos, hash: e.hash}, idEntry{pos: t.pos, hash: t.hash})
		}
	}
	for k, e := range s.str {
		if t, ok := o.str[k]; ok {
			fn(cmp.Or(e.spelt, k), e.idEntry, t.idEntry)
		}
	}
}

// merge adds the ids of o that s does not hold.
func (s *idSet) merge(o *idSet) {
	for k, e := range o.hex {
		if _, ok := s.hex[k]; !ok {
			s.hex[k] = e
		}
	}
	for k, e := range o.str {
		if _, ok := s.str[k]; !ok {
			s.str[k] = e
		}
	}
}

func (s *idSet) len() int { return len(s.hex) + len(s.str) }
