package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// This file is a streaming decoder for the one large document the client reads:
// the PAT listing, a JSON array of GetPersonalAccessTokenResponse, 34 MB for
// 100,000 tokens. encoding/json decodes it at about 25 MB/s here (each element
// is scanned four times on its way through json.Decoder, pat.Token's
// UnmarshalJSON and pat.Scopes'), which alone would use more than the design's
// one-second budget for planning such a tenant. This decoder reads the array
// once, from a fixed 64 KiB window over the body, and interns the strings that
// repeat across tokens (owner ids and names, scope strings).
//
// It accepts exactly what decoding each element with encoding/json into
// pat.Token accepts, and produces the same tokens: the differential tests and
// FuzzDecodeListing check it against that reference. That includes
// encoding/json's leniencies (case-insensitive keys, the last of duplicate keys
// winning, invalid UTF-8 and lone surrogates becoming U+FFFD, null leaving a
// field at its zero value) and its strictness (any syntax error or type
// mismatch anywhere in the document, even in an unknown field, is an error),
// with pat.Token's two exceptions: "managed" is false only for the literal
// false (absent, null or any other value is managed), and a null scope
// element (kept as "") marks the token Undecodable.

// maxDepth is encoding/json's nesting limit, counted within one element.
const maxDepth = 10000

const windowSize = 64 << 10

// listingDecoder reads one listing. It is not safe for concurrent use.
type listingDecoder struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte of buf
	end  int   // end of valid data in buf
	base int64 // body offset of buf[0], for error messages
	rerr error // the reader's error once it has one (io.EOF at the end)
	size int64 // the body's length when known (Content-Length), else 0 or -1
	// maxField bounds each string and number (MaxFieldBytes; tests lower it).
	maxField int

	// The date-times of the token being decoded, as read (copies: the
	// window moves), parsed once the object is complete.
	created, lastUsed, expiration []byte

	ownerType string                  // the last owner type: nearly always "IDENTITY"
	owners    map[string]ownerStrings // by owner id
	ownerID   []byte                  // the owner being read, until it is complete
	ownerName []byte
	scopeKey  []byte              // scratch for scopes' lookup key
	scopes    map[string][]string // distinct scope lists, shared between tokens

	scratch []byte            // a string being unescaped or spanning a refill
	intern  map[string]string // repeated strings, shared across tokens
	times   []time.Time       // slab for LastUsed / ExpirationDate pointers
	bools   []bool            // slab for UserAwareTokenNeverExpires pointers
}

func newListingDecoder(r io.Reader) *listingDecoder {
	return &listingDecoder{r: r, buf: make([]byte, windowSize), maxField: MaxFieldBytes, intern: make(map[string]string, 1024),
		owners: make(map[string]ownerStrings, 1024), scopes: make(map[string][]string, 64)}
}

// ownerStrings is an interned owner id with the name last seen with it (in
// one allocation when they were read together): the tokens of one owner
// repeat both.
type ownerStrings struct {
	id, name string
}

// syntaxError reports a malformed document at the current offset.
type syntaxError struct {
	Offset int64
	Msg    string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("byte %d: %s", e.Offset, e.Msg) }

func (d *listingDecoder) errorf(format string, args ...any) error {
	return &syntaxError{Offset: d.base + int64(d.pos), Msg: fmt.Sprintf(format, args...)}
}

// fill makes at least one more byte available; false at the end of the body
// (d.rerr says why). It slides unread bytes to the front of the window.
func (d *listingDecoder) fill() bool {
	if d.rerr != nil {
		return false
	}
	if d.pos > 0 {
		n := copy(d.buf, d.buf[d.pos:d.end])
		d.base += int64(d.pos)
		d.pos, d.end = 0, n
	}
	if d.end == len(d.buf) {
		// Only a literal longer than the window gets here; grow.
		nb := make([]byte, 2*len(d.buf))
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	for {
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		if err != nil {
			d.rerr = err
		}
		if n > 0 {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// fieldTooLong is the error for a string or number longer than d.maxField.
func (d *listingDecoder) fieldTooLong(what string) error {
	return fmt.Errorf("byte %d: %w", d.base+int64(d.pos), &LimitError{
		What: "a " + what + " in the listing", Limit: int64(d.maxField)})
}

// eofError is the error for a document that ends early: the reader's own error
// when the connection broke, io.ErrUnexpectedEOF when the body simply stopped.
func (d *listingDecoder) eofError() error {
	if d.rerr != nil && !errors.Is(d.rerr, io.EOF) {
		return d.rerr
	}
	return fmt.Errorf("byte %d: %w", d.base+int64(d.pos), io.ErrUnexpectedEOF)
}

// peek skips white space and returns the next byte without consuming it.
func (d *listingDecoder) peek() (byte, error) {
	for {
		for d.pos < d.end {
			switch c := d.buf[d.pos]; c {
			case ' ', '\t', '\n', '\r':
				d.pos++
			default:
				return c, nil
			}
		}
		if !d.fill() {
			return 0, d.eofError()
		}
	}
}

// expect consumes c (after white space) or fails.
func (d *listingDecoder) expect(c byte, what string) error {
	got, err := d.peek()
	if err != nil {
		return err
	}
	if got != c {
		return d.errorf("expected %s, found %q", what, got)
	}
	d.pos++
	return nil
}

// decode reads the whole listing.
func (d *listingDecoder) decode() ([]pat.Token, error) {
	if err := d.expect('[', "the listing's opening '['"); err != nil {
		return nil, err
	}
	// Tokens are collected in fixed chunks and copied once into a slice of the
	// exact size: appending to one slice would allocate about five times the
	// final 17 MB of a 100,000-token listing while it grows. When the body's
	// length is known, the first chunk is instead grown once, after its
	// first 1,024 tokens, to the count the rest of the body should hold
	// (with a margin): a listing that fits is returned without the copy.
	var (
		chunks    [][]pat.Token
		cur       = make([]pat.Token, 0, 1024)
		n         int
		estimated = d.size <= 0
	)
	c, err := d.peek()
	if err != nil {
		return nil, err
	}
	if c == ']' {
		d.pos++
	} else {
		for {
			if len(cur) == cap(cur) && !estimated {
				estimated = true
				if est := d.estimate(len(cur)); est > len(cur) {
					grown := make([]pat.Token, len(cur), est)
					copy(grown, cur)
					cur = grown
					d.presize(est)
				}
			}
			if len(cur) == cap(cur) {
				chunks = append(chunks, cur)
				cur = make([]pat.Token, 0, min(2*cap(cur), 16384))
			}
			cur = cur[:len(cur)+1]
			if err := d.token(&cur[len(cur)-1]); err != nil {
				return nil, fmt.Errorf("listing item %d: %w", n, err)
			}
			n++
			c, err := d.peek()
			if err != nil {
				return nil, fmt.Errorf("listing broke off after %d items: %w", n, err)
			}
			d.pos++
			if c == ']' {
				break
			}
			if c != ',' {
				d.pos--
				return nil, d.errorf("expected ',' or ']' after listing item %d, found %q", n-1, c)
			}
		}
	}
	if _, err := d.peek(); err == nil {
		return nil, d.errorf("data after the listing's closing ']'")
	} else if d.rerr != nil && !errors.Is(d.rerr, io.EOF) {
		return nil, d.rerr
	}
	if len(chunks) == 0 {
		return cur, nil
	}
	tokens := make([]pat.Token, 0, n)
	for _, ch := range chunks {
		tokens = append(tokens, ch...)
	}
	return append(tokens, cur...), nil
}

// maxPresize bounds the tokens a Content-Length can make the decoder allocate
// for ahead of reading them (46 MB of pat.Token): a larger listing is
// collected in chunks beyond it.
const maxPresize = 1 << 18

// estimate is how many tokens the whole body holds, judging by the n tokens
// in the bytes read so far (from d.size), with a 3% margin; 0 when there is
// nothing to judge by. It is bounded by the body's length over the shortest
// possible token ({"id":""}, 9 bytes and a comma).
func (d *listingDecoder) estimate(n int) int {
	read := d.base + int64(d.pos)
	if d.size <= read || read <= 0 {
		return 0
	}
	est := float64(n)*float64(d.size)/float64(read)*1.03 + 16
	return int(min(est, float64(d.size/10+1), maxPresize))
}

// presize makes room in the owner and string maps for a listing of about n
// tokens (owners hold a few tokens each), rather than let them grow by steps.
func (d *listingDecoder) presize(n int) {
	owners := make(map[string]ownerStrings, n/3)
	for k, v := range d.owners {
		owners[k] = v
	}
	d.owners = owners
	intern := make(map[string]string, n/3)
	for k, v := range d.intern {
		intern[k] = v
	}
	d.intern = intern
}

// Token field keys, in the spec's spelling.
var tokenKeys = [...]string{"id", "name", "scope", "owner", "created", "lastUsed", "managed",
	"accessTokenValiditySeconds", "expirationDate", "userAwareTokenNeverExpires"}

const (
	kID = iota
	kName
	kScope
	kOwner
	kCreated
	kLastUsed
	kManaged
	kValidity
	kExpiration
	kUserAware
)

var ownerKeys = [...]string{"type", "id", "name"}

// matchKey finds key among keys as encoding/json does: an exact match first,
// else a case-insensitive one (bytes.EqualFold, Unicode simple folding).
func matchKey(key []byte, keys []string) int {
	for i, k := range keys {
		if string(key) == k {
			return i
		}
	}
	for i, k := range keys {
		if strings.EqualFold(string(key), k) {
			return i
		}
	}
	return len(keys)
}

// token decodes one element into t, with pat.Token.UnmarshalJSON's rules.
func (d *listingDecoder) token(t *pat.Token) error {
	c, err := d.peek()
	if err != nil {
		return err
	}
	if c != '{' {
		// encoding/json: null leaves the token empty (then "token without
		// id"); anything else is a type error. Either way: not a token.
		if err := d.skipValue(1); err != nil {
			return err
		}
		return fmt.Errorf("a JSON %s is not a token", kindName(c))
	}
	d.pos++
	var (
		scope                      = pat.Scopes{Null: true}
		scopeNull                  = -1 // the first null element of the last scope read
		hasLastUsed, hasExpiration bool
	)
	t.Managed = true // absent: managed (pat.ManagedValue)
	d.created = d.created[:0]
	next := 0 // the index the next key probably has
	for first := true; ; {
		k, more, err := d.nextKey(tokenKeys[:], &first, next)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		next = k + 1
		switch k {
		case kID:
			err = d.stringField(&t.ID, false)
		case kName:
			err = d.stringField(&t.Name, false)
		case kScope:
			scopeNull, err = d.scope(&scope)
		case kOwner:
			err = d.owner(&t.Owner)
		case kCreated:
			// A string replaces an earlier value; null leaves it.
			var b []byte
			var isNull bool
			if b, isNull, err = d.stringBytes(); err == nil && !isNull {
				d.created = append(d.created[:0], b...)
			}
		case kLastUsed:
			var b []byte
			if b, err = d.nullableString(); err == nil {
				hasLastUsed = b != nil
				d.lastUsed = append(d.lastUsed[:0], b...)
			}
		case kManaged:
			// Only the literal false is unmanaged (pat.ManagedValue);
			// anything else, of any type, is skipped as managed.
			var c byte
			if c, err = d.peek(); err == nil {
				if c == 'f' {
					t.Managed, err = false, d.literal("false")
				} else {
					t.Managed, err = true, d.skipValue(2)
				}
			}
		case kValidity:
			err = d.intField(&t.AccessTokenValiditySeconds)
		case kExpiration:
			var b []byte
			if b, err = d.nullableString(); err == nil {
				hasExpiration = b != nil
				d.expiration = append(d.expiration[:0], b...)
			}
		case kUserAware:
			var b bool
			var isNull bool
			if isNull, err = d.nullableBool(&b); err == nil {
				t.UserAwareTokenNeverExpires = nil
				if !isNull {
					t.UserAwareTokenNeverExpires = d.newBool(b)
				}
			}
		default:
			err = d.skipValue(2)
		}
		if err != nil {
			return err
		}
	}
	t.Scope = scope
	if scopeNull >= 0 {
		t.Undecodable = pat.NullScopeElement(scopeNull)
	}
	if t.ID == "" {
		return errors.New("token without id")
	}
	if t.Created, err = pat.ParseTimeBytes(d.created); err != nil {
		return fmt.Errorf("token %s: created: %w", t.ID, err)
	}
	if hasLastUsed {
		tm, err := pat.ParseTimeBytes(d.lastUsed)
		if err != nil {
			return fmt.Errorf("token %s: lastUsed: %w", t.ID, err)
		}
		t.LastUsed = d.newTime(tm)
	}
	if hasExpiration {
		tm, err := pat.ParseTimeBytes(d.expiration)
		if err != nil {
			return fmt.Errorf("token %s: expirationDate: %w", t.ID, err)
		}
		t.ExpirationDate = d.newTime(tm)
	}
	return nil
}

// newTime and newBool hand out pointers from slabs: one allocation per 512
// tokens instead of one per field. The slabs live exactly as long as the
// tokens pointing into them.
func (d *listingDecoder) newTime(t time.Time) *time.Time {
	if len(d.times) == 0 {
		d.times = make([]time.Time, 512)
	}
	p := &d.times[0]
	*p = t
	d.times = d.times[1:]
	return p
}

func (d *listingDecoder) newBool(b bool) *bool {
	if len(d.bools) == 0 {
		d.bools = make([]bool, 512)
	}
	p := &d.bools[0]
	*p = b
	d.bools = d.bools[1:]
	return p
}

// nextKey advances to the next member of an object whose '{' has been
// consumed: it returns the member's index in keys (len(keys) for an unknown
// key) with the reader at the value, or more == false after the closing '}'.
// first must start true; nextKey clears it.
//
// hint is the index the key probably has (the one after the previous key's:
// servers write the members in the spec's order); it is tried first.
func (d *listingDecoder) nextKey(keys []string, first *bool, hint int) (idx int, more bool, err error) {
	c, err := d.peek()
	if err != nil {
		return 0, false, err
	}
	if *first {
		*first = false
		if c == '}' {
			d.pos++
			return 0, false, nil
		}
	} else {
		switch c {
		case '}':
			d.pos++
			return 0, false, nil
		case ',':
			d.pos++
			if c, err = d.peek(); err != nil {
				return 0, false, err
			}
		default:
			return 0, false, d.errorf("expected ',' or '}' in an object, found %q", c)
		}
	}
	if c != '"' {
		return 0, false, d.errorf("expected a member name, found %q", c)
	}
	key, err := d.rawString()
	if err != nil {
		return 0, false, err
	}
	// Before the next read moves the window. An exact match is the only
	// one, so trying the hint first finds what matchKey would.
	if hint < len(keys) && string(key) == keys[hint] {
		idx = hint
	} else {
		idx = matchKey(key, keys)
	}
	if err := d.expect(':', "':' after a member name"); err != nil {
		return 0, false, err
	}
	return idx, true, nil
}

// owner decodes PatOwner; null leaves it unchanged, as encoding/json does.
func (d *listingDecoder) owner(o *pat.Owner) error {
	c, err := d.peek()
	if err != nil {
		return err
	}
	if c == 'n' {
		return d.literal("null")
	}
	if c != '{' {
		return d.typeError(c, "owner", "an object")
	}
	d.pos++
	// The type is compared with the last one before it is looked up; the
	// id and the name are kept until the object is complete and then looked
	// up once, by id (see internOwner).
	var hasID, hasName bool
	next := 0
	for first := true; ; {
		k, more, err := d.nextKey(ownerKeys[:], &first, next)
		if err != nil {
			return err
		}
		if !more {
			d.internOwner(o, hasID, hasName)
			return nil
		}
		next = k + 1
		if k > 2 {
			if err := d.skipValue(3); err != nil {
				return err
			}
			continue
		}
		// As stringField: a string replaces, null leaves the field.
		b, isNull, err := d.stringBytes()
		if err != nil {
			return err
		}
		if isNull {
			continue
		}
		switch k {
		case 0:
			if string(b) != d.ownerType {
				d.ownerType = d.str(b, true)
			}
			o.Type = d.ownerType
		case 1:
			d.ownerID, hasID = append(d.ownerID[:0], b...), true
		case 2:
			d.ownerName, hasName = append(d.ownerName[:0], b...), true
		}
	}
}

// internOwner sets o's id and name (those the object had) from d.ownerID and
// d.ownerName, shared between the tokens of one owner: one map lookup by id
// finds both, and a new owner's id and name are one allocation, so that
// reading an owner touches as little memory as possible.
func (d *listingDecoder) internOwner(o *pat.Owner, hasID, hasName bool) {
	if !hasID {
		if hasName {
			o.Name = d.str(d.ownerName, true)
		}
		return
	}
	v, ok := d.owners[string(d.ownerID)]
	switch {
	case !ok && hasName:
		d.scratch = append(append(d.scratch[:0], d.ownerID...), d.ownerName...)
		both := string(d.scratch)
		v = ownerStrings{id: both[:len(d.ownerID)], name: both[len(d.ownerID):]}
		d.owners[v.id] = v
	case !ok:
		v = ownerStrings{id: string(d.ownerID)}
		d.owners[v.id] = v
	case hasName && v.name != string(d.ownerName):
		// Another name for the same id: the latest is kept.
		v.name = d.str(d.ownerName, true)
		d.owners[v.id] = v
	}
	o.ID = v.id
	if hasName {
		o.Name = v.name
	}
}

// scope decodes the scope list: null is Null, an array is its strings (a null
// element is "", as encoding/json makes it, and its index is returned: the
// token is then undecodable; -1 when there is none).
func (d *listingDecoder) scope(s *pat.Scopes) (int, error) {
	nullAt := -1
	c, err := d.peek()
	if err != nil {
		return nullAt, err
	}
	if c == 'n' {
		if err := d.literal("null"); err != nil {
			return nullAt, err
		}
		*s = pat.Scopes{Null: true}
		return nullAt, nil
	}
	if c != '[' {
		return nullAt, d.typeError(c, "scope", "an array of strings")
	}
	d.pos++
	// The elements are collected into a key (each one's length, then its
	// bytes), and tokens with the same list share one slice of interned
	// strings: there are few distinct lists.
	key := d.scopeKey[:0]
	if c, err = d.peek(); err != nil {
		return nullAt, err
	}
	if c == ']' {
		d.pos++
	} else {
		for i := 0; ; i++ {
			b, isNull, err := d.stringBytes() // null is ""
			if err != nil {
				return nullAt, err
			}
			if isNull && nullAt < 0 {
				nullAt = i
			}
			key = binary.AppendUvarint(key, uint64(len(b)))
			key = append(key, b...)
			if c, err = d.peek(); err != nil {
				return nullAt, err
			}
			d.pos++
			if c == ']' {
				break
			}
			if c != ',' {
				d.pos--
				return nullAt, d.errorf("expected ',' or ']' in scope, found %q", c)
			}
		}
	}
	d.scopeKey = key
	values, ok := d.scopes[string(key)]
	if !ok {
		values = []string{}
		for rest := key; len(rest) > 0; {
			n, w := binary.Uvarint(rest)
			values = append(values, d.str(rest[w:w+int(n)], true))
			rest = rest[w+int(n):]
		}
		values = values[:len(values):len(values)] // an append copies
		d.scopes[string(key)] = values
	}
	*s = pat.Scopes{Values: values}
	return nullAt, nil
}

// stringField decodes a string into dst; null leaves dst unchanged (encoding/json).
// Interned strings are shared between tokens.
func (d *listingDecoder) stringField(dst *string, intern bool) error {
	c, err := d.peek()
	if err != nil {
		return err
	}
	switch c {
	case '"':
		b, err := d.rawString()
		if err != nil {
			return err
		}
		*dst = d.str(b, intern)
		return nil
	case 'n':
		return d.literal("null")
	}
	return d.typeError(c, "a string field", "a string")
}

// stringBytes decodes a string (its bytes, valid until the next read) or
// null, with stringField's errors.
func (d *listingDecoder) stringBytes() (b []byte, isNull bool, err error) {
	c, err := d.peek()
	if err != nil {
		return nil, false, err
	}
	switch c {
	case '"':
		b, err := d.rawString()
		return b, false, err
	case 'n':
		return nil, true, d.literal("null")
	}
	return nil, false, d.typeError(c, "a string field", "a string")
}

// nullableString decodes a string (its bytes, never nil, valid until the
// next read) or null (nil).
func (d *listingDecoder) nullableString() ([]byte, error) {
	c, err := d.peek()
	if err != nil {
		return nil, err
	}
	switch c {
	case '"':
		b, err := d.rawString()
		if err != nil {
			return nil, err
		}
		if b == nil {
			b = d.buf[:0]
		}
		return b, nil
	case 'n':
		return nil, d.literal("null")
	}
	return nil, d.typeError(c, "a date-time field", "a string")
}

func (d *listingDecoder) str(b []byte, intern bool) string {
	if !intern {
		return string(b)
	}
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	d.intern[s] = s
	return s
}

func (d *listingDecoder) nullableBool(dst *bool) (isNull bool, err error) {
	c, err := d.peek()
	if err != nil {
		return false, err
	}
	switch c {
	case 't':
		*dst = true
		return false, d.literal("true")
	case 'f':
		*dst = false
		return false, d.literal("false")
	case 'n':
		return true, d.literal("null")
	}
	return false, d.typeError(c, "a boolean field", "a boolean")
}

// intField decodes an integer as encoding/json does into an int: the literal
// must parse with strconv.ParseInt (no fraction, no exponent, no overflow).
func (d *listingDecoder) intField(dst *int) error {
	c, err := d.peek()
	if err != nil {
		return err
	}
	if c == 'n' {
		return d.literal("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return d.typeError(c, "accessTokenValiditySeconds", "a number")
	}
	if n, ok := d.smallInt(); ok {
		*dst = n
		return nil
	}
	lit, err := d.number()
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(string(lit), 10, strconv.IntSize)
	if err != nil {
		return fmt.Errorf("accessTokenValiditySeconds: %s is not an integer", lit)
	}
	*dst = int(n)
	return nil
}

// smallInt consumes an integer of 1 to 18 digits (9 where int has 32 bits) without a leading zero
// (or 0 itself), optionally negative, that lies wholly in the window and is
// followed there by a byte that cannot continue a number: what number and
// strconv.ParseInt would accept, with the same value. Anything else is left
// for them (ok false, nothing consumed).
func (d *listingDecoder) smallInt() (int, bool) {
	// At most 18 digits fit an int64, 9 an int32.
	maxIntDigits := 18
	if strconv.IntSize == 32 {
		maxIntDigits = 9
	}
	i := d.pos
	neg := i < d.end && d.buf[i] == '-'
	if neg {
		i++
	}
	start, v := i, 0
	for ; i < d.end && i-start < 19; i++ {
		c := d.buf[i]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int(c-'0')
	}
	digits := i - start
	if digits == 0 || digits > maxIntDigits || i >= d.end || (digits > 1 && d.buf[start] == '0') {
		return 0, false
	}
	switch d.buf[i] {
	case '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return 0, false
	}
	d.pos = i
	if neg {
		v = -v
	}
	return v, true
}

// typeError: a value of the wrong JSON type. (encoding/json reads on to the end
// before reporting one; the outcome, an error, is the same.)
func (d *listingDecoder) typeError(c byte, field, want string) error {
	return d.errorf("%s must be %s, not a JSON %s", field, want, kindName(c))
}

func kindName(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// literal consumes exactly word (true, false, null).
func (d *listingDecoder) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if d.pos >= d.end && !d.fill() {
			return d.eofError()
		}
		if d.buf[d.pos] != word[i] {
			return d.errorf("invalid literal (expected %q)", word)
		}
		d.pos++
	}
	return nil
}

// number consumes a JSON number and returns its text (valid until the next
// read).
func (d *listingDecoder) number() ([]byte, error) {
	d.scratch = d.scratch[:0]
	next := func() (byte, bool) {
		if d.pos >= d.end && !d.fill() {
			return 0, false
		}
		return d.buf[d.pos], true
	}
	take := func() {
		d.scratch = append(d.scratch, d.buf[d.pos])
		d.pos++
	}
	digits := func() int {
		n := 0
		for len(d.scratch) <= d.maxField {
			c, ok := next()
			if !ok || c < '0' || c > '9' {
				return n
			}
			take()
			n++
		}
		return n
	}
	if c, ok := next(); ok && c == '-' {
		take()
	}
	c, ok := next()
	switch {
	case !ok:
		return nil, d.eofError()
	case c == '0':
		take()
	case c >= '1' && c <= '9':
		digits()
	default:
		return nil, d.errorf("invalid number")
	}
	if c, ok := next(); ok && c == '.' {
		take()
		if digits() == 0 {
			return nil, d.numberEnd()
		}
	}
	if c, ok := next(); ok && (c == 'e' || c == 'E') {
		take()
		if c, ok := next(); ok && (c == '+' || c == '-') {
			take()
		}
		if digits() == 0 {
			return nil, d.numberEnd()
		}
	}
	if len(d.scratch) > d.maxField {
		return nil, d.fieldTooLong("number")
	}
	if d.rerr != nil && d.pos >= d.end && !errors.Is(d.rerr, io.EOF) {
		return nil, d.rerr
	}
	return d.scratch, nil
}

func (d *listingDecoder) numberEnd() error {
	if d.pos >= d.end && !d.fill() {
		return d.eofError()
	}
	return d.errorf("invalid number")
}

// rawString consumes a string (the reader is at its opening quote) and returns
// its unescaped bytes, valid until the next read. Strings are scanned in place
// in the window when they hold no escapes or invalid UTF-8 and do not cross a
// refill; otherwise they are built in d.scratch.
func (d *listingDecoder) rawString() ([]byte, error) {
	d.pos++ // opening quote
	start := d.pos
	i := start
	// Eight bytes at a time while none is a quote, a backslash, a control
	// character or part of a multi-byte sequence; then byte by byte.
	for ; i+8 <= d.end; i += 8 {
		w := d.buf[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		if stringSpecial(x) {
			break
		}
	}
	for ; i < d.end; i++ {
		c := d.buf[i]
		if c == '"' {
			if i-start > d.maxField {
				return nil, d.fieldTooLong("string")
			}
			d.pos = i + 1
			return d.buf[start:i], nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	return d.slowString()
}

// stringSpecial reports whether any of the eight bytes in x is '"', '\\', a
// control character or has bit 7 set (it may not say which).
func stringSpecial(x uint64) bool {
	const (
		lo  = 0x0101010101010101
		hi  = 0x8080808080808080
		ctl = 0x2020202020202020
	)
	q, bs := x^('"'*lo), x^('\\'*lo)
	return (x|(x-ctl)&^x|(q-lo)&^q|(bs-lo)&^bs)&hi != 0
}

// slowString builds a string in d.scratch, unescaping as encoding/json does.
func (d *listingDecoder) slowString() ([]byte, error) {
	d.scratch = d.scratch[:0]
	for {
		if len(d.scratch) > d.maxField {
			// Checked before the next byte is read: a string that never
			// ends costs the limit, not the body.
			return nil, d.fieldTooLong("string")
		}
		if d.pos >= d.end && !d.fill() {
			return nil, d.eofError()
		}
		c := d.buf[d.pos]
		switch {
		case c == '"':
			d.pos++
			return d.scratch, nil
		case c < 0x20:
			return nil, d.errorf("control character %#x in a string", c)
		case c == '\\':
			if err := d.escape(); err != nil {
				return nil, err
			}
		case c < utf8.RuneSelf:
			d.scratch = append(d.scratch, c)
			d.pos++
		default:
			// Make sure a whole rune is in the window before decoding it.
			for d.end-d.pos < utf8.UTFMax && !utf8.FullRune(d.buf[d.pos:d.end]) {
				if !d.fill() {
					break
				}
			}
			r, size := utf8.DecodeRune(d.buf[d.pos:d.end])
			if r == utf8.RuneError && size == 1 {
				d.scratch = utf8.AppendRune(d.scratch, unicode.ReplacementChar)
			} else {
				d.scratch = append(d.scratch, d.buf[d.pos:d.pos+size]...)
			}
			d.pos += size
		}
	}
}

// escape handles one backslash escape at d.pos.
func (d *listingDecoder) escape() error {
	if err := d.need(2); err != nil {
		return err
	}
	e := d.buf[d.pos+1]
	switch e {
	case '"', '\\', '/':
		d.scratch = append(d.scratch, e)
	case 'b':
		d.scratch = append(d.scratch, '\b')
	case 'f':
		d.scratch = append(d.scratch, '\f')
	case 'n':
		d.scratch = append(d.scratch, '\n')
	case 'r':
		d.scratch = append(d.scratch, '\r')
	case 't':
		d.scratch = append(d.scratch, '\t')
	case 'u':
		r, err := d.hex4()
		if err != nil {
			return err
		}
		d.pos += 6
		if utf16.IsSurrogate(r) {
			// A second \uXXXX may complete the pair; otherwise U+FFFD and the
			// next escape stands on its own.
			if d.need(6) == nil && d.buf[d.pos] == '\\' && d.buf[d.pos+1] == 'u' {
				if r2, err := d.hex4(); err == nil {
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						d.pos += 6
						d.scratch = utf8.AppendRune(d.scratch, dec)
						return nil
					}
				}
			}
			r = unicode.ReplacementChar
		}
		d.scratch = utf8.AppendRune(d.scratch, r)
		return nil
	default:
		return d.errorf("invalid escape \\%c", e)
	}
	d.pos += 2
	return nil
}

// hex4 reads the four hex digits of a \u escape at d.pos (not consuming).
func (d *listingDecoder) hex4() (rune, error) {
	if err := d.need(6); err != nil {
		return 0, err
	}
	var r rune
	for _, c := range d.buf[d.pos+2 : d.pos+6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, d.errorf("invalid \\u escape")
		}
		r = r*16 + rune(c)
	}
	return r, nil
}

// need makes n bytes from d.pos available in the window.
func (d *listingDecoder) need(n int) error {
	for d.end-d.pos < n {
		if !d.fill() {
			return d.eofError()
		}
	}
	return nil
}

// skipValue consumes any JSON value, validating it; depth is the nesting depth
// a container starting here would have.
func (d *listingDecoder) skipValue(depth int) error {
	c, err := d.peek()
	if err != nil {
		return err
	}
	switch {
	case c == '"':
		_, err := d.rawString()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := d.number()
		return err
	case c == '{':
		if depth > maxDepth {
			return d.errorf("exceeded max depth")
		}
		d.pos++
		for first := true; ; {
			_, more, err := d.nextKey(nil, &first, 0)
			if err != nil || !more {
				return err
			}
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		if depth > maxDepth {
			return d.errorf("exceeded max depth")
		}
		d.pos++
		if c, err = d.peek(); err != nil {
			return err
		}
		if c == ']' {
			d.pos++
			return nil
		}
		for {
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			if c, err = d.peek(); err != nil {
				return err
			}
			d.pos++
			if c == ']' {
				return nil
			}
			if c != ',' {
				d.pos--
				return d.errorf("expected ',' or ']' in an array, found %q", c)
			}
		}
	}
	return d.errorf("invalid character %q looking for a value", c)
}
