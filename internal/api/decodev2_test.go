package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// v2Decoder is the listing decoder built on go-json-experiment/json's
// jsontext.Decoder (the well-kept form of json/v2): the library scans,
// validates and unescapes; this maps members onto pat.Token with the same
// rules as decode.go (encoding/json's leniencies, pat.Token's exceptions) and
// the same interning of owners and scope lists.
type v2Decoder struct {
	dec     *jsontext.Decoder
	scratch []byte
	intern  map[string]string
	owners  map[string]ownerStrings
	scopes  map[string][]string
	key     []byte
	times   []time.Time
	bools   []bool

	created, lastUsed, expiration []byte
	ownerID, ownerName            []byte
	ownerType                     string
}

// v2Options: encoding/json's leniencies at the syntax level.
var v2Options = jsonv2.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

func newV2Decoder(r io.Reader) *v2Decoder {
	return &v2Decoder{dec: jsontext.NewDecoder(r, v2Options), intern: make(map[string]string, 1024),
		owners: make(map[string]ownerStrings, 1024), scopes: make(map[string][]string, 64)}
}

// each calls fn for each token of the listing, in order, with the closing
// bracket and nothing after it required.
func (d *v2Decoder) each(fn func(*pat.Token) error) error {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != '[' {
		return fmt.Errorf("the listing is a JSON %s, not an array", kindName(byte(tok.Kind())))
	}
	n := 0
	for d.dec.PeekKind() != ']' {
		var t pat.Token
		if err := d.token(&t); err != nil {
			return fmt.Errorf("listing item %d: %w", n, err)
		}
		if err := fn(&t); err != nil {
			return err
		}
		n++
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	if _, err := d.dec.ReadToken(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errors.New("data after the listing's closing ']'")
		}
		return err
	}
	return nil
}

func v2DecodeTokenArray(r io.Reader) ([]pat.Token, error) {
	toks := []pat.Token{}
	err := newV2Decoder(r).each(func(t *pat.Token) error {
		toks = append(toks, *t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return toks, nil
}

// peek returns the next value's kind, or the error that stops it.
func (d *v2Decoder) peek() (byte, error) {
	if k := d.dec.PeekKind(); k != 0 {
		return byte(k), nil
	}
	_, err := d.dec.ReadToken()
	return 0, err
}

// stringBytes reads a string's unescaped bytes (valid until the next read)
// or null.
func (d *v2Decoder) stringBytes(field string) (b []byte, isNull bool, err error) {
	k, err := d.peek()
	if err != nil {
		return nil, false, err
	}
	switch k {
	case 'n':
		_, err := d.dec.ReadToken()
		return nil, true, err
	case '"':
		v, err := d.dec.ReadValue()
		if err != nil {
			return nil, false, err
		}
		if len(v) > MaxFieldBytes+2 {
			return nil, false, &LimitError{What: "a string in the listing", Limit: MaxFieldBytes}
		}
		return d.unquote(v), false, nil
	}
	return nil, false, fmt.Errorf("%s must be a string, not a JSON %s", field, kindName(k))
}

// unquote: the raw string without its quotes when it needs no unescaping.
func (d *v2Decoder) unquote(v jsontext.Value) []byte {
	raw := v[1 : len(v)-1]
	if bytes.IndexByte(raw, '\\') < 0 && ascii(raw) {
		return raw
	}
	d.scratch, _ = jsontext.AppendUnquote(d.scratch[:0], v) // invalid UTF-8 becomes U+FFFD, as in encoding/json
	return d.scratch
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return utf8.Valid(b)
		}
	}
	return true
}

func (d *v2Decoder) str(b []byte) string {
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	d.intern[s] = s
	return s
}

func (d *v2Decoder) token(t *pat.Token) error {
	k, err := d.peek()
	if err != nil {
		return err
	}
	if k != '{' {
		if err := d.dec.SkipValue(); err != nil {
			return err
		}
		return fmt.Errorf("a JSON %s is not a token", kindName(k))
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	var (
		scope                      = pat.Scopes{Null: true}
		scopeNull                  = -1
		hasLastUsed, hasExpiration bool
	)
	t.Managed = true
	d.created = d.created[:0]
	for next := 0; ; {
		k, err := d.nextKey(tokenKeys[:], next)
		if err != nil {
			return err
		}
		if k < 0 {
			break
		}
		next = k + 1
		switch k {
		case kID, kName:
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
			if b, isNull, err = d.stringBytes("created"); err == nil && !isNull {
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
			var c byte
			if c, err = d.peek(); err == nil {
				t.Managed = c != 'f'
				err = d.dec.SkipValue()
			}
		case kValidity:
			err = d.intField(&t.AccessTokenValiditySeconds)
		case kUserAware:
			var c byte
			if c, err = d.peek(); err == nil {
				switch c {
				case 't', 'f':
					t.UserAwareTokenNeverExpires = d.newBool(c == 't')
				case 'n':
					t.UserAwareTokenNeverExpires = nil
				default:
					return fmt.Errorf("userAwareTokenNeverExpires must be a boolean, not a JSON %s", kindName(c))
				}
				_, err = d.dec.ReadToken()
			}
		default:
			err = d.dec.SkipValue()
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

// nextKey reads the next member name of an open object and returns its index
// in keys (len(keys) when unknown), or -1 after the closing brace.
func (d *v2Decoder) nextKey(keys []string, hint int) (int, error) {
	k, err := d.peek()
	if err != nil {
		return 0, err
	}
	if k == '}' {
		_, err := d.dec.ReadToken()
		return -1, err
	}
	v, err := d.dec.ReadValue()
	if err != nil {
		return 0, err
	}
	name := d.unquote(v)
	if hint < len(keys) && string(name) == keys[hint] {
		return hint, nil
	}
	return matchKey(name, keys), nil
}

func (d *v2Decoder) intField(dst *int) error {
	k, err := d.peek()
	if err != nil {
		return err
	}
	switch k {
	case 'n':
		_, err := d.dec.ReadToken()
		return err
	case '0':
		v, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		n, err := strconv.ParseInt(string(v), 10, strconv.IntSize)
		if err != nil {
			return fmt.Errorf("accessTokenValiditySeconds: %s is not an integer", v)
		}
		*dst = int(n)
		return nil
	}
	return fmt.Errorf("accessTokenValiditySeconds must be a number, not a JSON %s", kindName(k))
}

func (d *v2Decoder) owner(o *pat.Owner) error {
	k, err := d.peek()
	if err != nil {
		return err
	}
	if k == 'n' {
		_, err := d.dec.ReadToken()
		return err
	}
	if k != '{' {
		return fmt.Errorf("owner must be an object, not a JSON %s", kindName(k))
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	var hasID, hasName bool
	for next := 0; ; {
		k, err := d.nextKey(ownerKeys[:], next)
		if err != nil {
			return err
		}
		if k < 0 {
			d.internOwner(o, hasID, hasName)
			return nil
		}
		next = k + 1
		if k == len(ownerKeys) {
			if err := d.dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
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

func (d *v2Decoder) internOwner(o *pat.Owner, hasID, hasName bool) {
	if !hasID {
		if hasName {
			o.Name = d.str(d.ownerName)
		}
		return
	}
	v, ok := d.owners[string(d.ownerID)]
	switch {
	case !ok:
		v = ownerStrings{id: string(d.ownerID)}
		if hasName {
			v.name = d.str(d.ownerName)
		}
		d.owners[v.id] = v
	case hasName && v.name != string(d.ownerName):
		v.name = d.str(d.ownerName)
		d.owners[v.id] = v
	}
	o.ID = v.id
	if hasName {
		o.Name = v.name
	}
}

func (d *v2Decoder) scope(s *pat.Scopes) (int, error) {
	nullAt := -1
	k, err := d.peek()
	if err != nil {
		return nullAt, err
	}
	if k == 'n' {
		*s = pat.Scopes{Null: true}
		_, err := d.dec.ReadToken()
		return nullAt, err
	}
	if k != '[' {
		return nullAt, fmt.Errorf("scope must be an array of strings, not a JSON %s", kindName(k))
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return nullAt, err
	}
	key := d.key[:0]
	for i := 0; ; i++ {
		if k, err = d.peek(); err != nil {
			return nullAt, err
		}
		if k == ']' {
			if _, err := d.dec.ReadToken(); err != nil {
				return nullAt, err
			}
			break
		}
		b, isNull, err := d.stringBytes("a scope")
		if err != nil {
			return nullAt, err
		}
		if isNull && nullAt < 0 {
			nullAt = i
		}
		key = strconv.AppendInt(key, int64(len(b)), 10)
		key = append(append(key, ':'), b...)
	}
	d.key = key
	values, ok := d.scopes[string(key)]
	if !ok {
		values = []string{}
		for rest := key; len(rest) > 0; {
			colon := bytes.IndexByte(rest, ':')
			n, _ := strconv.Atoi(string(rest[:colon]))
			values = append(values, d.str(rest[colon+1:colon+1+n]))
			rest = rest[colon+1+n:]
		}
		values = values[:len(values):len(values)]
		d.scopes[string(key)] = values
	}
	*s = pat.Scopes{Values: values}
	return nullAt, nil
}

func (d *v2Decoder) newTime(t time.Time) *time.Time {
	if len(d.times) == 0 {
		d.times = make([]time.Time, 512)
	}
	p := &d.times[0]
	*p = t
	d.times = d.times[1:]
	return p
}

func (d *v2Decoder) newBool(b bool) *bool {
	if len(d.bools) == 0 {
		d.bools = make([]bool, 512)
	}
	p := &d.bools[0]
	*p = b
	d.bools = d.bools[1:]
	return p
}

// v2Wire is the listing element as json/v2's reflection decodes it (the
// simplest library form, measured against the others).
type v2Wire struct {
	ID                         string         `json:"id"`
	Name                       string         `json:"name"`
	Scope                      *[]*string     `json:"scope"`
	Owner                      pat.Owner      `json:"owner"`
	Created                    string         `json:"created"`
	LastUsed                   *string        `json:"lastUsed"`
	Managed                    jsontext.Value `json:"managed"`
	AccessTokenValiditySeconds int            `json:"accessTokenValiditySeconds"`
	ExpirationDate             *string        `json:"expirationDate"`
	UserAwareTokenNeverExpires *bool          `json:"userAwareTokenNeverExpires"`
}

func v2ReflectDecodeTokenArray(r io.Reader) ([]pat.Token, error) {
	dec := jsontext.NewDecoder(r, jsonv1.DefaultOptionsV1())
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	toks := []pat.Token{}
	for dec.PeekKind() != ']' {
		var w v2Wire
		if err := jsonv2.UnmarshalDecode(dec, &w, jsonv1.DefaultOptionsV1()); err != nil {
			return nil, err
		}
		t := pat.Token{ID: w.ID, Name: w.Name, Owner: w.Owner, Managed: pat.ManagedValue(w.Managed),
			AccessTokenValiditySeconds: w.AccessTokenValiditySeconds, UserAwareTokenNeverExpires: w.UserAwareTokenNeverExpires,
			Scope: pat.Scopes{Null: true}}
		if w.Scope != nil {
			vals := make([]string, len(*w.Scope))
			for i, p := range *w.Scope {
				if p == nil {
					if t.Undecodable == "" {
						t.Undecodable = pat.NullScopeElement(i)
					}
					continue
				}
				vals[i] = *p
			}
			t.Scope = pat.ScopesOf(vals...)
		}
		var err error
		if t.Created, err = pat.ParseTime(w.Created); err != nil {
			return nil, err
		}
		if w.LastUsed != nil {
			tm, err := pat.ParseTime(*w.LastUsed)
			if err != nil {
				return nil, err
			}
			t.LastUsed = &tm
		}
		if w.ExpirationDate != nil {
			tm, err := pat.ParseTime(*w.ExpirationDate)
			if err != nil {
				return nil, err
			}
			t.ExpirationDate = &tm
		}
		toks = append(toks, t)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	return toks, nil
}
