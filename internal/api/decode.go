package api

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// This file decodes the one large document the client reads: the PAT
// listing, a JSON array of GetPersonalAccessTokenResponse, 34 MB for 100,000
// tokens, one element at a time. github.com/go-json-experiment/json's
// jsontext.Decoder (json/v2) reads the body through a small window, scans,
// validates and unescapes; this file only maps members onto pat.Token and
// interns the scope lists, which repeat across tokens.
//
// It replaced a 1,161-line hand-written decoder, because that one was not
// twice as fast (the bar for keeping a hand-written codec). Measured with
// BenchmarkDecodeForms (commit f762f92, which has both: the 100,000-token
// listing from memory, each token decoded into one variable as the streaming
// plan does; forms alternated in one run, load average 0.4-1.2 on 2 vCPUs):
//
//	hand-written             90-104 ms  330-380 MB/s   37 MB  332k allocs
//	jsontext (this file)    150-160 ms  214-228 MB/s   36 MB  333k allocs
//	json/v2 UnmarshalDecode 284-333 ms  103-120 MB/s  141 MB  1.54M allocs
//	encoding/json           705-751 ms   46-49 MB/s   208 MB  2.66M allocs
//
// The hand-written decoder was 1.6x faster than this one: not enough. In CPU
// time, steadier on the shared machine (load 5-7, alternated): 98-115 against
// 160-175 ms per listing from memory (BenchmarkDecodeTokenArray), 114-126
// against 174-192 ms over loopback HTTP (BenchmarkListTokens).

// It accepts what decoding each element with encoding/json into pat.Token
// accepts, and produces the same tokens: the differential tests and
// FuzzDecodeListing check it against that reference. That includes
// encoding/json's leniencies (case-insensitive keys, the last of duplicate
// keys winning, invalid UTF-8 and lone surrogates becoming U+FFFD, null
// leaving a field at its zero value) and its strictness (any syntax error or
// type mismatch anywhere in the document, even in an unknown field, is an
// error), with pat.Token's two exceptions: "managed" is false only for the
// literal false (absent, null or any other value is managed), and a null
// scope element (kept as "") marks the token Undecodable. One difference:
// json/v2 counts the listing's own array in its nesting limit of 10,000, so an
// element may nest one level less deep than encoding/json allows.

// maxDepth is json/v2's nesting limit, counted from the listing's array.
const maxDepth = 10000

// listingOptions are encoding/json's leniencies at the syntax level.
var listingOptions = json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// listingDecoder reads one listing. It is not safe for concurrent use.
type listingDecoder struct {
	dec *jsontext.Decoder
	in  *valueReader
	// maxField bounds each string and number (MaxFieldBytes; tests lower it).
	maxField int

	// The date-times of the token being decoded, as read (copies: the
	// decoder's buffer moves), parsed once the object is complete.
	created, lastUsed, expiration []byte

	ownerType string // the last owner type: nearly always "IDENTITY"
	ownerID   []byte // the owner being read, until it is complete
	ownerName []byte
	scopeKey  []byte              // scratch for scopes' lookup key
	scopes    map[string][]string // distinct scope lists, shared between tokens

	scratch []byte            // a string being unescaped
	intern  map[string]string // repeated strings, shared across tokens
	times   []time.Time       // slab for LastUsed / ExpirationDate pointers
	bools   []bool            // slab for UserAwareTokenNeverExpires pointers
}

func newListingDecoder(r io.Reader) *listingDecoder {
	// jsontext reads in pieces of its buffer's size, 4 KiB when the values
	// are short: from a response body, through its own 4 KiB buffer, that is
	// a system call per piece. Reading the body 64 KiB at a time halves the
	// time a 100,000-token listing takes over loopback.
	in := &valueReader{r: bufio.NewReaderSize(r, 64<<10)}
	return &listingDecoder{dec: jsontext.NewDecoder(in, listingOptions), in: in, maxField: MaxFieldBytes, intern: make(map[string]string, 1024),
		scopes: make(map[string][]string, 64)}
}

// valueReader bounds what the decoder may read for one value. jsontext holds
// a value whole in its buffer before returning it, so a 60 MB token name
// would be read and held before its length could be checked; instead, once
// the decoder has read more than a few times MaxFieldBytes since the last
// value (white space, the value, and the rest of the buffer it reads into),
// the value must be longer than the limit, and the listing is refused. The
// exact check is made on the value itself (stringValue, number).
type valueReader struct {
	r io.Reader
	n int64 // bytes read since the last value
}

// maxValueRead is what the decoder may read for one value: the value, the
// white space before it and the buffer's free space, which jsontext grows to
// twice a long value.
const maxValueRead = 4*MaxFieldBytes + 64<<10

func (v *valueReader) Read(p []byte) (int, error) {
	if v.n > maxValueRead {
		// Nearly always a string (a number or white space as long is no
		// less hostile); the message is the one the exact check gives.
		return 0, &LimitError{What: "a string in the listing", Limit: MaxFieldBytes}
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	return n, err
}

// errorf reports what is wrong at the current offset.
func (d *listingDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("byte %d: %s", d.dec.InputOffset(), fmt.Sprintf(format, args...))
}

// fieldTooLong is the error for a string or number longer than d.maxField.
func (d *listingDecoder) fieldTooLong(what string) error {
	return fmt.Errorf("byte %d: %w", d.dec.InputOffset(), &LimitError{
		What: "a " + what + " in the listing", Limit: int64(d.maxField)})
}

// peek returns the kind of the next value ('{', '"', '0' for a number, ...)
// without consuming it, or the error that stops the document there.
func (d *listingDecoder) peek() (byte, error) {
	d.in.n = 0
	if k := d.dec.PeekKind(); k != 0 {
		return byte(k), nil
	}
	_, err := d.dec.ReadToken() // the error PeekKind kept
	return 0, err
}

// expect consumes c, a delimiter, or fails.
func (d *listingDecoder) expect(c byte, what string) error {
	got, err := d.peek()
	if err != nil {
		return err
	}
	if got != c {
		return d.errorf("expected %s, found a JSON %s", what, kindName(got))
	}
	_, err = d.dec.ReadToken()
	return err
}

// end consumes the listing's closing bracket and insists on nothing after it.
func (d *listingDecoder) end() error {
	d.in.n = 0
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	switch _, err := d.dec.ReadToken(); {
	case err == nil:
		return d.errorf("data after the listing's closing ']'")
	case !errors.Is(err, io.EOF):
		return err
	}
	return nil
}

// decode reads the whole listing and returns its tokens (the bulk update's
// answer; listings stream through each).
func (d *listingDecoder) decode() ([]pat.Token, error) {
	tokens := []pat.Token{}
	_, err := d.each(func(t *pat.Token) error {
		tokens = append(tokens, *t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tokens, nil
}

// each reads the whole listing and calls fn with each token as soon as it is
// decoded (t is reused: fn copies what it keeps). It returns how many tokens
// the listing held; an error of fn ends the listing and is returned as it is.
func (d *listingDecoder) each(fn func(t *pat.Token) error) (int, error) {
	if err := d.expect('[', "the listing's opening '['"); err != nil {
		return 0, err
	}
	n := 0
	c, err := d.peek()
	if err != nil {
		return 0, err
	}
	if c != ']' {
		var t pat.Token
		for {
			t = pat.Token{}
			if err := d.token(&t); err != nil {
				return n, fmt.Errorf("listing item %d: %w", n, err)
			}
			n++
			if err := fn(&t); err != nil {
				return n, err
			}
			c, err := d.peek()
			if err != nil {
				return n, fmt.Errorf("listing broke off after %d items: %w", n, err)
			}
			if c == ']' {
				break
			}
		}
	}
	return n, d.end()
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
// (json/v2's own case-insensitive matching also ignores '_' and '-'.)
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
		if err := d.skipValue(); err != nil {
			return err
		}
		return fmt.Errorf("a JSON %s is not a token", kindName(c))
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	var (
		scope                      = pat.Scopes{Null: true}
		scopeNull                  = -1 // the first null element of the last scope read
		hasLastUsed, hasExpiration bool
	)
	t.Managed = true // absent: managed (pat.ManagedValue)
	d.created = d.created[:0]
	next := 0 // the index the next key probably has
	for {
		k, more, err := d.nextKey(tokenKeys[:], next)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		next = k + 1
		switch k {
		case kID, kName:
			// A string replaces an earlier value; null leaves it.
			var b []byte
			var isNull bool
			if b, isNull, err = d.stringBytes("a string field"); err == nil && !isNull {
				if k == kID {
					t.ID = string(b)
				} else {
					t.Name = string(b)
				}
			}
		case kScope:
			scopeNull, err = d.scope(&scope)
		case kOwner:
			err = d.owner(&t.Owner)
		case kCreated:
			var b []byte
			var isNull bool
			if b, isNull, err = d.stringBytes("a date-time field"); err == nil && !isNull {
				d.created = append(d.created[:0], b...)
			}
		case kLastUsed, kExpiration:
			var b []byte
			var isNull bool
			if b, isNull, err = d.stringBytes("a date-time field"); err == nil {
				if k == kLastUsed {
					hasLastUsed = !isNull
					d.lastUsed = append(d.lastUsed[:0], b...)
				} else {
					hasExpiration = !isNull
					d.expiration = append(d.expiration[:0], b...)
				}
			}
		case kManaged:
			// Only the literal false is unmanaged (pat.ManagedValue);
			// anything else, of any type, is skipped as managed.
			var c byte
			if c, err = d.peek(); err == nil {
				t.Managed = c != 'f'
				err = d.skipValue()
			}
		case kValidity:
			err = d.intField(&t.AccessTokenValiditySeconds)
		case kUserAware:
			var c byte
			if c, err = d.peek(); err != nil {
				break
			}
			switch c {
			case 't', 'f':
				t.UserAwareTokenNeverExpires = d.newBool(c == 't')
			case 'n':
				t.UserAwareTokenNeverExpires = nil
			default:
				return d.typeError(c, "userAwareTokenNeverExpires", "a boolean")
			}
			_, err = d.dec.ReadToken()
		default:
			err = d.skipValue()
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
// key) with the decoder at the value, or more == false after the closing '}'.
//
// hint is the index the key probably has (the one after the previous key's:
// servers write the members in the spec's order); it is tried first. An
// exact match is the only one, so trying the hint first finds what matchKey
// would.
func (d *listingDecoder) nextKey(keys []string, hint int) (idx int, more bool, err error) {
	c, err := d.peek()
	if err != nil {
		return 0, false, err
	}
	if c == '}' {
		_, err := d.dec.ReadToken()
		return 0, false, err
	}
	key, err := d.stringValue()
	if err != nil {
		return 0, false, err
	}
	if hint < len(keys) && string(key) == keys[hint] {
		return hint, true, nil
	}
	return matchKey(key, keys), true, nil
}

// owner decodes PatOwner; null leaves it unchanged, as encoding/json does.
func (d *listingDecoder) owner(o *pat.Owner) error {
	c, err := d.peek()
	if err != nil {
		return err
	}
	if c == 'n' {
		_, err := d.dec.ReadToken()
		return err
	}
	if c != '{' {
		return d.typeError(c, "owner", "an object")
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	// The type is compared with the last one before it is looked up; the
	// id and the name are kept until the object is complete (see setOwner).
	var hasID, hasName bool
	for next := 0; ; {
		k, more, err := d.nextKey(ownerKeys[:], next)
		if err != nil {
			return err
		}
		if !more {
			d.setOwner(o, hasID, hasName)
			return nil
		}
		next = k + 1
		if k == len(ownerKeys) {
			if err := d.skipValue(); err != nil {
				return err
			}
			continue
		}
		// A string replaces, null leaves the field.
		b, isNull, err := d.stringBytes("a string field")
		if err != nil {
			return err
		}
		if isNull {
			continue
		}
		switch k {
		case 0:
			if string(b) != d.ownerType {
				d.ownerType = d.str(b)
			}
			o.Type = d.ownerType
		case 1:
			d.ownerID, hasID = append(d.ownerID[:0], b...), true
		case 2:
			d.ownerName, hasName = append(d.ownerName[:0], b...), true
		}
	}
}

// setOwner sets o's id and name (those the object had) from d.ownerID and
// d.ownerName, in one allocation. They are not interned: a million-token
// listing has some 300,000 owners, and looking each token's owner up in a
// table that large cost a cache miss for the table and one for the name it
// held (0.9 s of CPU per plan at 1,000,000 tokens, 24 times as much as at
// 100,000), more than the allocation it saved (docs/performance.md, "Growth").
func (d *listingDecoder) setOwner(o *pat.Owner, hasID, hasName bool) {
	switch {
	case hasID && hasName:
		d.scratch = append(append(d.scratch[:0], d.ownerID...), d.ownerName...)
		both := string(d.scratch)
		o.ID, o.Name = both[:len(d.ownerID)], both[len(d.ownerID):]
	case hasID:
		o.ID = string(d.ownerID)
	case hasName:
		o.Name = string(d.ownerName)
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
		*s = pat.Scopes{Null: true}
		_, err := d.dec.ReadToken()
		return nullAt, err
	}
	if c != '[' {
		return nullAt, d.typeError(c, "scope", "an array of strings")
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return nullAt, err
	}
	// The elements are collected into a key (each one's length, then its
	// bytes), and tokens with the same list share one slice of interned
	// strings: there are few distinct lists.
	key := d.scopeKey[:0]
	for i := 0; ; i++ {
		if c, err = d.peek(); err != nil {
			return nullAt, err
		}
		if c == ']' {
			if _, err := d.dec.ReadToken(); err != nil {
				return nullAt, err
			}
			break
		}
		b, isNull, err := d.stringBytes("a scope") // null is ""
		if err != nil {
			return nullAt, err
		}
		if isNull && nullAt < 0 {
			nullAt = i
		}
		key = strconv.AppendInt(key, int64(len(b)), 10)
		key = append(append(key, ':'), b...)
	}
	d.scopeKey = key
	values, ok := d.scopes[string(key)]
	if !ok {
		values = []string{}
		for rest := key; len(rest) > 0; {
			colon := bytes.IndexByte(rest, ':')
			n, _ := strconv.Atoi(string(rest[:colon]))
			values = append(values, d.str(rest[colon+1:colon+1+n]))
			rest = rest[colon+1+n:]
		}
		values = values[:len(values):len(values)] // an append copies
		d.scopes[string(key)] = values
	}
	*s = pat.Scopes{Values: values}
	return nullAt, nil
}

// stringBytes decodes a string (its bytes, valid until the next read) or
// null; field names the field in the error for another type.
func (d *listingDecoder) stringBytes(field string) (b []byte, isNull bool, err error) {
	c, err := d.peek()
	if err != nil {
		return nil, false, err
	}
	switch c {
	case '"':
		b, err := d.stringValue()
		return b, false, err
	case 'n':
		_, err := d.dec.ReadToken()
		return nil, true, err
	}
	return nil, false, d.typeError(c, field, "a string")
}

// stringValue reads the string at the decoder and returns its unescaped
// bytes, valid until the next read: the decoder's own buffer when the string
// needs no unescaping, else d.scratch.
func (d *listingDecoder) stringValue() ([]byte, error) {
	v, err := d.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	b := v[1 : len(v)-1]
	if bytes.IndexByte(b, '\\') >= 0 || !utf8.Valid(b) {
		// Invalid UTF-8 becomes U+FFFD, as in encoding/json; the error
		// only says there was some.
		d.scratch, _ = jsontext.AppendUnquote(d.scratch[:0], v)
		b = d.scratch
	}
	if len(b) > d.maxField {
		return nil, d.fieldTooLong("string")
	}
	return b, nil
}

func (d *listingDecoder) str(b []byte) string {
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	d.intern[s] = s
	return s
}

// intField decodes an integer as encoding/json does into an int: the literal
// must parse with strconv.ParseInt (no fraction, no exponent, no overflow).
func (d *listingDecoder) intField(dst *int) error {
	c, err := d.peek()
	if err != nil {
		return err
	}
	switch c {
	case 'n':
		_, err := d.dec.ReadToken()
		return err
	case '0':
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
	return d.typeError(c, "accessTokenValiditySeconds", "a number")
}

// number reads the number at the decoder (its text, valid until the next
// read).
func (d *listingDecoder) number() ([]byte, error) {
	v, err := d.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	if len(v) > d.maxField {
		return nil, d.fieldTooLong("number")
	}
	return v, nil
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

// skipValue consumes the value at the decoder, checking that every string
// and number in it (member names included) is within d.maxField.
func (d *listingDecoder) skipValue() error {
	depth := d.dec.StackDepth()
	for {
		c, err := d.peek()
		if err != nil {
			return err
		}
		switch c {
		case '"':
			_, err = d.stringValue()
		case '0':
			_, err = d.number()
		default:
			_, err = d.dec.ReadToken()
		}
		if err != nil {
			return err
		}
		if d.dec.StackDepth() == depth {
			return nil
		}
	}
}
