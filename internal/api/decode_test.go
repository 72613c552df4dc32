package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// stdDecodeTokenArray is the reference the streaming decoder must agree with:
// encoding/json's Decoder over the array, each element into pat.Token (its
// UnmarshalJSON), the closing bracket and nothing after it.
func stdDecodeTokenArray(r io.Reader) ([]pat.Token, error) {
	dec := json.NewDecoder(r)
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("not an array")
	}
	tokens := []pat.Token{}
	for dec.More() {
		var tok pat.Token
		if err := dec.Decode(&tok); err != nil {
			return nil, err
		}
		tokens = append(tokens, tok)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("trailing data")
	}
	return tokens, nil
}

// agree decodes doc with both decoders, through readers that deliver one byte
// at a time and in full, and fails unless they agree on success and result.
func agree(t *testing.T, doc string) {
	t.Helper()
	want, wantErr := stdDecodeTokenArray(strings.NewReader(doc))
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(doc),
		"one byte": iotest.OneByteReader(strings.NewReader(doc)),
		"halves":   iotest.HalfReader(strings.NewReader(doc)),
	} {
		got, err := decodeTokenArray(r)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%s reader, document %q:\n streaming: %v\n reference: %v", name, clipDoc(doc), err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s reader, document %q:\n streaming: %#v\n reference: %#v", name, clipDoc(doc), got, want)
		}
	}
}

func clipDoc(s string) string {
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}

func TestDecodeListingAgreesWithEncodingJSON(t *testing.T) {
	const created = `"created":"2026-01-02T03:04:05.000Z"`
	docs := []string{
		`[]`, ` [ ] `, `[` + oneToken("a") + `]`, tokenList(5),
		`[{"id":"a",` + created + `}]`,
		// null versus absent versus empty versus listed scope, null elements
		`[{"id":"a",` + created + `,"scope":null},{"id":"b",` + created + `},{"id":"c",` + created + `,"scope":[]},{"id":"d",` + created + `,"scope":["x",null,"y"]}]`,
		// nulls leave zero values; duplicates: the last wins
		`[{"id":"a","name":null,"owner":null,"managed":null,"accessTokenValiditySeconds":null,"lastUsed":null,"expirationDate":null,"userAwareTokenNeverExpires":null,` + created + `}]`,
		`[{"id":"a","id":"b","name":"x","name":null,` + created + `,"lastUsed":"2026-01-02T03:04:05Z","lastUsed":null,"managed":true,"managed":null}]`,
		`[{"id":"a",` + created + `,"userAwareTokenNeverExpires":true,"userAwareTokenNeverExpires":null}]`,
		`[{"id":"a",` + created + `,"userAwareTokenNeverExpires":false}]`,
		// case-insensitive keys, exact match preferred
		`[{"ID":"a","Created":"2026-01-02T03:04:05.000Z","SCOPE":["q"],"Owner":{"ID":"o","NAME":"n","Type":"IDENTITY"}}]`,
		`[{"id":"exact","Id":"folded",` + created + `}]`,
		"[{\"id\":\"a\",\"accessTo\u212aenValiditySeconds\":5," + created + "}]", // Kelvin sign folds to k
		`[{"id":"a",` + created + `,"\u017fcope":["x"]}]`,                        // long s, as an escape in the key
		// unknown members of every type, nested
		`[{"id":"a",` + created + `,"x":{"y":[1,-2.5e+3,true,false,null,"s",{"z":{}}],"w":[]},"v":-0,"u":0.0001E-2}]`,
		// escapes, unicode, surrogates, invalid UTF-8
		`[{"id":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u4e2d\ud83d\ude00",` + created + `,"name":"caf\u00e9 \ud800 \udc00x \ud800\u0041"}]`,
		"[{\"id\":\"a\",\"name\":\"\xff\xfe caf\xc3\xa9 \xe4\xb8\",\"owner\":{\"name\":\"\xed\xa0\x80\"}," + created + "}]",
		`[{"id":"a",` + created + `,"name":"\ud83d\u0041"}]`,
		// numbers
		`[{"id":"a",` + created + `,"accessTokenValiditySeconds":-0}]`,
		`[{"id":"a",` + created + `,"accessTokenValiditySeconds":43200}]`,
		`[{"id":"a",` + created + `,"accessTokenValiditySeconds":9223372036854775807}]`,
		// errors: syntax
		``, ` `, `[`, `]`, `[,]`, `[1,]`, `{}`, `null`, `[]]`, `[] x`, `[][]`, `["a"]`, `[null]`, `[1]`, `[true]`, `[[]]`,
		`[{"id":"a",` + created + `},]`, `[{"id":"a",` + created + `,}]`, `[{"id" "a"}]`, `[{id:"a"}]`, `[{"id":'a'}]`,
		`[{"id":"a",` + created + `,"x":[1,2,]}]`, `[{"id":"a",` + created + `,"x":01}]`, `[{"id":"a",` + created + `,"x":1.}]`,
		`[{"id":"a",` + created + `,"x":-}]`, `[{"id":"a",` + created + `,"x":1e}]`, `[{"id":"a",` + created + `,"x":+1}]`, `[{"id":"a",` + created + `,"x":.5}]`,
		`[{"id":"a",` + created + `,"x":tru}]`, `[{"id":"a",` + created + `,"x":truex}]`, `[{"id":"a",` + created + `,"x":nul}]`,
		`[{"id":"a\x",` + created + `}]`, `[{"id":"a\u12",` + created + `}]`, `[{"id":"a\u12G4",` + created + `}]`,
		"[{\"id\":\"a\tb\"," + created + "}]", `[{"id":"a",` + created + `,"name":"\ud800\uzzzz"}]`,
		"\xef\xbb\xbf[]",
		// errors: types and content
		`[{"id":5,` + created + `}]`, `[{"id":"a","created":5}]`, `[{"id":"a",` + created + `,"scope":"s"}]`,
		`[{"id":"a",` + created + `,"scope":[1]}]`, `[{"id":"a",` + created + `,"scope":{}}]`, `[{"id":"a",` + created + `,"owner":[]}]`,
		`[{"id":"a",` + created + `,"owner":{"id":1}}]`, `[{"id":"a",` + created + `,"managed":"true"}]`, `[{"id":"a",` + created + `,"managed":1}]`,
		`[{"id":"a",` + created + `,"accessTokenValiditySeconds":"1"}]`, `[{"id":"a",` + created + `,"accessTokenValiditySeconds":1.5}]`,
		`[{"id":"a",` + created + `,"accessTokenValiditySeconds":1e3}]`, `[{"id":"a",` + created + `,"accessTokenValiditySeconds":9223372036854775808}]`,
		`[{"id":"a",` + created + `,"lastUsed":5}]`, `[{"id":"a",` + created + `,"lastUsed":"yesterday"}]`, `[{"id":"a",` + created + `,"expirationDate":"6 Months from created date"}]`,
		`[{"id":"a",` + created + `,"userAwareTokenNeverExpires":"yes"}]`,
		`[{"name":"x",` + created + `}]`, `[{"id":"",` + created + `}]`, `[{"id":"a"}]`, `[{"id":"a","created":null}]`,
	}
	for _, doc := range docs {
		agree(t, doc)
	}
	// Nesting at the limit and past it. json/v2 counts the listing's
	// array, encoding/json (per element) does not: an unknown member nested
	// 9,999 deep is refused here and accepted by the reference.
	for _, depth := range []int{maxDepth - 3, maxDepth - 2, maxDepth} {
		deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		agree(t, `[{"id":"a",`+created+`,"x":`+deep+`}]`)
	}
	deep := strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1)
	if _, err := decodeTokenArray(strings.NewReader(`[{"id":"a",` + created + `,"x":` + deep + `}]`)); err == nil || !strings.Contains(err.Error(), "exceeded max depth") {
		t.Fatalf("nesting one past json/v2's limit: %v", err)
	}
	// Every prefix of a realistic document, and a large one across many refills.
	small := tokenList(2)
	for i := range small {
		agree(t, small[:i])
	}
	agree(t, tokenList(2000))
}

func TestDecodeListingConnectionError(t *testing.T) {
	broken := errors.New("connection reset by peer")
	doc := tokenList(100)
	_, err := decodeTokenArray(io.MultiReader(strings.NewReader(doc[:len(doc)/2]), iotest.ErrReader(broken)))
	if !errors.Is(err, broken) {
		t.Fatalf("error %v, want the reader's error", err)
	}
	// Long strings (60,000 bytes, under MaxFieldBytes) crossing the 64 KiB
	// window.
	long := strings.Repeat("é", 30000)
	agree(t, `[{"id":"a","created":"2026-01-02T03:04:05.000Z","name":"`+long+`"},{"id":"b","created":"2026-01-02T03:04:05.000Z","x":"`+long+`"}]`)
}

func TestDecodeListingInternsAndShares(t *testing.T) {
	toks, err := decodeTokenArray(strings.NewReader(tokenList(3)))
	if err != nil {
		t.Fatal(err)
	}
	// Interned strings are shared, not copied: same owner id everywhere.
	if toks[0].Owner.ID != toks[2].Owner.ID {
		t.Fatal("owner ids differ")
	}
	// Pointers from the slab are distinct per token.
	doc := `[{"id":"a","created":"2026-01-02T03:04:05.000Z","lastUsed":"2026-01-03T00:00:00Z"},{"id":"b","created":"2026-01-02T03:04:05.000Z","lastUsed":"2026-01-04T00:00:00Z"}]`
	toks, err = decodeTokenArray(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if toks[0].LastUsed == toks[1].LastUsed || toks[0].LastUsed.Day() != 3 || toks[1].LastUsed.Day() != 4 {
		t.Fatalf("slab pointers: %v %v", toks[0].LastUsed, toks[1].LastUsed)
	}
}

// FuzzDecodeListing: on any input the streaming decoder agrees with the
// encoding/json reference about success and about the tokens.
func FuzzDecodeListing(f *testing.F) {
	const created = `"created":"2026-01-02T03:04:05.000Z"`
	for _, s := range []string{
		tokenList(2),
		`[]`,
		`[{"id":"a",` + created + `,"scope":["x",null],"owner":{"id":"o","x":[{}]},"lastUsed":null}]`,
		`[{"ID":"a\u00e9\ud83d\ude00",` + created + `,"managed":true,"accessTokenValiditySeconds":-0,"expirationDate":"2026-07-02T03:04Z"}]`,
		"[{\"id\":\"\xff\",\"name\":\"\\ud800\"," + created + ",\"userAwareTokenNeverExpires\":false}]",
		`[{"id":"a",` + created + `,"x":[1,-2.5e+3,true,false,null]}]`,
		// Owners and scope lists shared between tokens, a name that changes,
		// repeated and null members; integers at the fast path's edges.
		`[{"id":"a",` + created + `,"scope":["x","y"],"owner":{"type":"IDENTITY","id":"o1","name":"N"},"accessTokenValiditySeconds":12},` +
			`{"id":"b",` + created + `,"scope":["x","y"],"owner":{"name":"M","id":"o1","id":null,"type":"T"},"accessTokenValiditySeconds":999999999999999999},` +
			`{"id":"c",` + created + `,"scope":["xy"],"owner":{"id":"o1","name":"N","name":null},"owner":{"id":"o2"},"accessTokenValiditySeconds":-1234567890123456789}]`,
		`[{"id":"a",` + created + `,"accessTokenValiditySeconds":012}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		want, wantErr := stdDecodeTokenArray(bytes.NewReader(doc))
		got, err := decodeTokenArray(iotest.HalfReader(bytes.NewReader(doc)))
		if err != nil && wantErr == nil && strings.Contains(err.Error(), "exceeded max depth") {
			return // json/v2 counts the listing's array in its nesting limit
		}
		var le *LimitError
		if errors.As(err, &le) {
			// The reference has no limits: only a document with a field
			// over MaxFieldBytes may be refused for its size.
			if len(doc) <= MaxFieldBytes {
				t.Fatalf("document of %d bytes refused as too large: %v", len(doc), err)
			}
			return
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("document %q:\n streaming: %v\n reference: %v", doc, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("document %q:\n streaming: %#v\n reference: %#v", doc, got, want)
		}
		checkCapped(t, doc, wantErr == nil)
	})
}

// checkCapped decodes doc with the caps on and set low: a budget of half the
// document and strings and numbers of at most 8 bytes. No input may panic,
// decode (it cannot have been read whole), or allocate more than a fixed
// overhead plus a multiple of the budget; and a document the reference
// accepts must fail with the limit error, never with a syntax error the
// cut-off caused.
func checkCapped(t *testing.T, doc []byte, valid bool) {
	t.Helper()
	budget := NewBudget(int64(len(doc)/2), "the test's budget")
	br := &budgetReader{r: iotest.HalfReader(bytes.NewReader(doc)), b: budget}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d := newListingDecoder(br)
	d.maxField = 8
	_, err := d.decode()
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatalf("document of %d bytes decoded within a budget of %d", len(doc), budget.Limit())
	}
	var le *LimitError
	if valid && !errors.As(err, &le) {
		t.Fatalf("valid document %q with the caps on: %v, want a *LimitError", doc, err)
	}
	// The window, the first chunk of tokens and the maps are allocated up
	// front (about 400 KB); what the body can add is bounded by the budget.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20+64*uint64(budget.Limit()) {
		t.Fatalf("document of %d bytes, budget %d: allocated %d bytes", len(doc), budget.Limit(), alloc)
	}
}

// TestDecodeWhateverTheBodyLengthSays: the body's announced length
// (Content-Length, exact, short or absurd) changes nothing in what is
// decoded.
func TestDecodeWhateverTheBodyLengthSays(t *testing.T) {
	doc := tokenList(3000)
	want, err := decodeTokenArray(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{int64(len(doc)), int64(len(doc)) / 2, 1 << 40} {
		got, err := decodeTokenArray(&readTracker{r: iotest.HalfReader(strings.NewReader(doc)), size: size})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("size %d: tokens differ", size)
		}
	}
}

// managed is false only when the listing says false; a null inside scope
// makes the token undecodable (a later duplicate scope key replaces it), in
// the streaming decoder and in pat.Token alike.
func TestDecodeManagedAndNullScopeElements(t *testing.T) {
	const created = `"created":"2026-01-02T03:04:05.000Z"`
	doc := `[` + strings.Join([]string{
		`{"id":"f",` + created + `,"managed":false}`,
		`{"id":"t",` + created + `,"managed":true}`,
		`{"id":"absent",` + created + `}`,
		`{"id":"null",` + created + `,"managed":null}`,
		`{"id":"string",` + created + `,"managed":"false"}`,
		`{"id":"number",` + created + `,"managed":0}`,
		`{"id":"object",` + created + `,"managed":{"v":false}}`,
		`{"id":"last-wins",` + created + `,"managed":null,"managed":false}`,
		`{"id":"scope-null-0",` + created + `,"scope":[null,"sp:scopes:all"]}`,
		`{"id":"scope-null-2",` + created + `,"scope":["a","b",null,null]}`,
		`{"id":"scope-replaced",` + created + `,"scope":[null],"scope":["a"]}`,
		`{"id":"scope-null",` + created + `,"scope":null}`,
	}, ",") + `]`
	agree(t, doc)
	toks, err := decodeTokenArray(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		managed     bool
		undecodable string
	}{
		"f": {false, ""}, "t": {true, ""}, "absent": {true, ""}, "null": {true, ""}, "string": {true, ""},
		"number": {true, ""}, "object": {true, ""}, "last-wins": {false, ""},
		"scope-null-0": {true, "scope[0] is null"}, "scope-null-2": {true, "scope[2] is null"},
		"scope-replaced": {true, ""}, "scope-null": {true, ""},
	}
	for _, tok := range toks {
		w := want[tok.ID]
		if tok.Managed != w.managed || tok.Undecodable != w.undecodable {
			t.Errorf("%s: managed %v undecodable %q, want %v %q", tok.ID, tok.Managed, tok.Undecodable, w.managed, w.undecodable)
		}
	}
	if len(toks) != len(want) {
		t.Errorf("%d tokens, want %d", len(toks), len(want))
	}
}
