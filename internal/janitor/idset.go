package janitor

import (
	"cmp"

	"github.com/patjanitor/patjanitor/internal/idtable"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// idSet is a set of ids compared without regard to case (pat.IDKey) that
// does not keep the ids' strings: an id of the tenant's form, 32 hex
// characters, is kept as its 16 bytes and a bit per character that was
// upper case (to say how it was first spelt), so that remembering every id
// of a million-token listing costs about 32 bytes each instead of a string
// of 32 and a map entry of 16 more. Other ids are kept as strings.
//
// A lean set keeps only how each id was spelt, not its idEntry (read back
// as zero): the sets of a run's only listing, whose positions and digests
// nothing compares, and the owners, whose spelling nothing asks for
// either. Its table holds the keys alone (slots of 16 bytes instead of 32),
// and an id's upper-case bits only when it has some (the tenant spells its
// ids in lower case): a listing's sets are most of what a plan holds while
// the listing streams, a million ids and 312,000 owners at 1M tokens.
type idSet struct {
	hex  *idtable.Table[hexEntry]
	lean *idtable.Table[struct{}] // in place of hex: the keys alone
	// upper is, in a lean set that keeps spellings, the upper-case bits
	// of each id that has any (nil: the set keeps no spelling).
	upper map[idtable.Key]uint32
	str   map[string]strEntry // by pat.IDKey
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
	return &idSet{hex: idtable.New[hexEntry](n), str: map[string]strEntry{}}
}

// newLeanIDSet returns a lean set; spelt says whether it keeps how each
// id was spelt (spelling), which only a listing's ids need.
func newLeanIDSet(n int, spelt bool) *idSet {
	s := &idSet{lean: idtable.New[struct{}](n), str: map[string]strEntry{}}
	if spelt {
		s.upper = map[idtable.Key]uint32{}
	}
	return s
}

// get returns the entry of an id of the tenant's form.
func (s *idSet) get(k idtable.Key) (hexEntry, bool) {
	if s.lean != nil {
		if _, ok := s.lean.Get(k); ok {
			return hexEntry{upper: s.upper[k]}, true
		}
		return hexEntry{}, false
	}
	if e, ok := s.hex.Get(k); ok {
		return *e, true
	}
	return hexEntry{}, false
}

// put adds an id of the tenant's form with its entry and reports whether
// the set held it already; then it keeps the first entry.
func (s *idSet) put(k idtable.Key, e hexEntry) (found bool) {
	if s.lean != nil {
		_, found := s.lean.Put(k)
		if !found && e.upper != 0 && s.upper != nil {
			s.upper[k] = e.upper
		}
		return found
	}
	v, found := s.hex.Put(k)
	if !found {
		*v = e
	}
	return found
}

// all calls fn with every id of the tenant's form and its entry.
func (s *idSet) all(fn func(k idtable.Key, e hexEntry)) {
	if s.lean != nil {
		s.lean.All(func(k idtable.Key, _ *struct{}) { fn(k, hexEntry{upper: s.upper[k]}) })
		return
	}
	s.hex.All(func(k idtable.Key, e *hexEntry) { fn(k, *e) })
}

// add adds id and reports whether the set held it already (in any case);
// then it keeps the first entry.
func (s *idSet) add(id string, en idEntry) (dup bool) {
	if k, upper, ok := idtable.Parse(id); ok {
		return s.put(k, hexEntry{upper: upper, pos: en.pos, hash: en.hash})
	}
	key := pat.IDKey(id)
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
	if k, _, ok := idtable.Parse(id); ok {
		if e, found := s.get(k); found {
			return idtable.Spell(k, e.upper)
		}
		return ""
	}
	key := pat.IDKey(id)
	if e, found := s.str[key]; found {
		return cmp.Or(e.spelt, key)
	}
	return ""
}

// has reports whether the set holds id (in any case).
func (s *idSet) has(id string) bool {
	if k, _, ok := idtable.Parse(id); ok {
		_, found := s.get(k)
		return found
	}
	_, found := s.str[pat.IDKey(id)]
	return found
}

// common calls fn with every id of s that o holds too (in any case), as s
// first spelt it, with s's entry and o's.
func (s *idSet) common(o *idSet, fn func(id string, mine, theirs idEntry)) {
	s.all(func(k idtable.Key, e hexEntry) {
		if t, ok := o.get(k); ok {
			fn(idtable.Spell(k, e.upper), idEntry{pos: e.pos, hash: e.hash}, idEntry{pos: t.pos, hash: t.hash})
		}
	})
	for k, e := range s.str {
		if t, ok := o.str[k]; ok {
			fn(cmp.Or(e.spelt, k), e.idEntry, t.idEntry)
		}
	}
}

// merge adds the ids of o that s does not hold.
func (s *idSet) merge(o *idSet) {
	o.all(func(k idtable.Key, e hexEntry) { s.put(k, e) })
	for k, e := range o.str {
		if _, ok := s.str[k]; !ok {
			s.str[k] = e
		}
	}
}

func (s *idSet) len() int {
	if s.lean != nil {
		return s.lean.Len() + len(s.str)
	}
	return s.hex.Len() + len(s.str)
}
