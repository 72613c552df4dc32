package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// The reference encoding: the document shape as encoding/json writes it (the
// package's encoder before it was written by hand). encode.go must produce
// exactly these bytes, compact for the hash and through json.Indent for
// Write; the tests below compare the two on the sample plan and on randomized
// plans full of characters encoding/json escapes.

// wirePlan is the JSON shape of Plan. Slices are never null in the document,
// so nil and empty slices encode (and hash) alike.
type wirePlan struct {
	Version      int         `json:"version"`
	Tenant       string      `json:"tenant"`
	APIVersion   string      `json:"apiVersion"`
	GeneratedAt  string      `json:"generatedAt"`
	RunID        string      `json:"runId,omitempty"`
	ConfigDigest string      `json:"configDigest"`
	PlanHash     string      `json:"planHash"`
	Population   int         `json:"population"`
	Caller       *Caller     `json:"caller,omitempty"`
	Owners       int         `json:"owners,omitzero"`
	CredExpires  *string     `json:"credentialExpires,omitempty"`
	PartialView  string      `json:"partialView,omitempty"`
	Warnings     []string    `json:"warnings,omitempty"`
	Listings     []Listing   `json:"listings"`
	Error        string      `json:"error,omitempty"`
	Items        []wireItem  `json:"items"`
	Skipped      []Skipped   `json:"skipped"`
	Guardrails   []Guardrail `json:"guardrails"`
}

// refEncode is the compact document as encoding/json writes it.
func refEncode(p *Plan) ([]byte, error) {
	w, err := refWirePlan(p)
	if err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

func refWirePlan(p *Plan) (wirePlan, error) {
	w := wirePlan{
		Version:      p.Version,
		Tenant:       p.Tenant,
		APIVersion:   p.APIVersion,
		GeneratedAt:  pat.FormatTime(p.GeneratedAt),
		RunID:        p.RunID,
		ConfigDigest: p.ConfigDigest,
		PlanHash:     p.PlanHash,
		Population:   p.Population,
		Owners:       p.Owners,
		CredExpires:  timePtr(p.CredentialExpires),
		PartialView:  p.PartialView,
		Warnings:     p.Warnings,
		Listings:     nonNil(p.Listings),
		Error:        p.Error,
		Items:        make([]wireItem, p.Items.Len()),
		Skipped:      nonNil(p.Skipped),
		Guardrails:   nonNil(p.Guardrails),
	}
	if p.Caller != nil {
		c := *p.Caller
		c.Authorities = nonNil(c.Authorities)
		w.Caller = &c
	}
	for i, it := range p.Items.All() {
		wi, err := refWire(&it)
		if err != nil {
			return w, err
		}
		w.Items[i] = wi
	}
	return w, nil
}

// wireItem is the JSON shape of Item.
type wireItem struct {
	TokenID        string        `json:"tokenId"`
	TokenName      string        `json:"tokenName"`
	OwnerID        string        `json:"ownerId"`
	OwnerName      string        `json:"ownerName"`
	Created        string        `json:"created"`
	LastUsed       *string       `json:"lastUsed"`
	ExpirationDate *string       `json:"expirationDate,omitempty"`
	Scope          pat.Scopes    `json:"scope"`
	Managed        bool          `json:"managed"`
	Policy         string        `json:"policy"`
	Mode           string        `json:"mode"`
	Action         string        `json:"action"`
	Reason         string        `json:"reason"`
	Patch          []pat.PatchOp `json:"patch"`
	AlsoMatched    []string      `json:"alsoMatched"`
	Marked         *string       `json:"marked,omitempty"`
	Deadline       *string       `json:"deadline,omitempty"`
}

func refWire(it *Item) (wireItem, error) {
	w := wireItem{
		TokenID:        it.TokenID,
		TokenName:      it.TokenName,
		OwnerID:        it.OwnerID,
		OwnerName:      it.OwnerName,
		Created:        pat.FormatTime(it.Created),
		LastUsed:       timePtr(it.LastUsed),
		ExpirationDate: timePtr(it.ExpirationDate),
		Scope:          it.Scope,
		Managed:        it.Managed,
		Policy:         it.Policy,
		Mode:           it.Mode,
		Action:         it.Action,
		Reason:         it.Reason,
		Patch:          it.Patch,
		AlsoMatched:    nonNil(it.AlsoMatched),
		Marked:         timePtr(it.Marked),
		Deadline:       timePtr(it.Deadline),
	}
	if w.Patch == nil {
		w.Patch = []pat.PatchOp{}
	}
	return w, nil
}

func timePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := pat.FormatTime(*t)
	return &s
}

// v2Options make go-json-experiment/json (json/v2) write what encoding/json
// writes: <, > and & escaped, U+2028 and U+2029 escaped, invalid UTF-8
// accepted. One difference remains: json/v2 writes an invalid byte as the
// character U+FFFD, encoding/json as the escape \ufffd (the plan's strings
// come from a decoded listing and a YAML file, so they are valid UTF-8).
var v2Options = jsonv2.JoinOptions(jsontext.EscapeForHTML(true), jsontext.EscapeForJS(true), jsontext.AllowInvalidUTF8(true))

// refEncodeV2 is the compact document as json/v2 writes it, for plans whose
// strings are valid UTF-8.
func refEncodeV2(p *Plan) ([]byte, error) {
	w, err := refWirePlan(p)
	if err != nil {
		return nil, err
	}
	return jsonv2.Marshal(w, v2Options)
}

// refWriteV2 is Write's layout from json/v2: its indentation of the compact
// document and a newline.
func refWriteV2(p *Plan) ([]byte, error) {
	b, err := refEncodeV2(p)
	if err != nil {
		return nil, err
	}
	b, err = jsontext.AppendFormat(nil, b, v2Options, jsontext.WithIndent("  "))
	return append(b, '\n'), err
}

// refWrite is Write as it was: the compact reference, json.Indent, newline.
func refWrite(p *Plan) ([]byte, error) {
	b, err := refEncode(p)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func refHash(p *Plan) (string, error) {
	q := *p
	q.PlanHash = ""
	b, err := refEncode(&q)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return HashPrefix + hex.EncodeToString(sum[:]), nil
}

// checkAgainstReference compares every encoding of p with the reference.
func checkAgainstReference(t *testing.T, p *Plan) {
	t.Helper()
	want, err := refEncode(p)
	if err != nil {
		// Unencodable for encoding/json (a time outside years 0-9999 in
		// a patch value): the package must refuse it too.
		if _, err := p.MarshalJSON(); err == nil {
			t.Fatalf("MarshalJSON encoded what encoding/json refuses (%v)", err)
		}
		if _, err := p.Hash(); err == nil {
			t.Fatal("Hash encoded what encoding/json refuses")
		}
		if err := Write(io.Discard, p); err == nil {
			t.Fatal("Write encoded what encoding/json refuses")
		}
		return
	}
	got, err := p.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("compact encoding differs from encoding/json at byte %d:\n got %s\nwant %s",
			firstDiff(got, want), got, want)
	}
	wantH, err := refHash(p)
	if err != nil {
		t.Fatal(err)
	}
	if gotH, err := p.Hash(); err != nil || gotH != wantH {
		t.Fatalf("Hash = %s, %v; the reference hashes to %s", gotH, err, wantH)
	}
	wantW, err := refWrite(p)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), wantW) {
		t.Fatalf("Write differs from json.Indent of encoding/json at byte %d:\n got %s\nwant %s",
			firstDiff(buf.Bytes(), wantW), buf.Bytes(), wantW)
	}
	// json/v2 writes the same bytes, but for invalid UTF-8: each invalid
	// byte is the escape \ufffd from encoding/json, the character U+FFFD from
	// json/v2 (the generated strings hold no backslash before "ufffd").
	invalid := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(`\ufffd`), []byte("\uFFFD")) }
	v2, err := refEncodeV2(p)
	if err != nil || !bytes.Equal(invalid(got), v2) {
		t.Fatalf("compact encoding differs from json/v2 (%v) at byte %d:\n got %s\nwant %s", err, firstDiff(invalid(got), v2), got, v2)
	}
	v2, err = refWriteV2(p)
	if err != nil || !bytes.Equal(invalid(buf.Bytes()), v2) {
		t.Fatalf("Write differs from json/v2's indentation (%v) at byte %d:\n got %s\nwant %s", err, firstDiff(invalid(buf.Bytes()), v2), buf.Bytes(), v2)
	}
	for i, it := range p.Items.All() {
		w, err := refWire(&it)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(w)
		got, err := json.Marshal(it)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("items[%d]: json.Marshal(Item) = %s, %v\nwant %s", i, got, err, want)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestEncodingMatchesEncodingJSON(t *testing.T) {
	checkAgainstReference(t, samplePlan())
	checkAgainstReference(t, sealed(t))
	checkAgainstReference(t, &Plan{}) // nil lists, zero times
	q, _ := roundTrip(t, sealed(t))   // values as Read gives them back
	checkAgainstReference(t, q)
}

func TestEncodingMatchesEncodingJSONRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		p := randomPlan(rng)
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkAgainstReference(t, p) })
	}
}

// The same data in a long plan: the encoder flushes its buffer every 32 KiB,
// and a flush in the middle of anything must not show.
func TestEncodingMatchesEncodingJSONLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	p := randomPlan(rng)
	for range 2000 {
		p.Items.Append(randomItem(rng))
	}
	checkAgainstReference(t, p)
}

// failAfter accepts n bytes, then fails every write.
type failAfter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(b []byte) (int, error) {
	if len(b) > f.n {
		k := f.n
		f.n = 0
		return k, errDiskFull
	}
	f.n -= len(b)
	return len(b), nil
}

// A write error reaches Write's caller, wherever it happens: in the header,
// in the items (written block by block) or at the end.
func TestWriteReportsWriteErrors(t *testing.T) {
	p := bigPlan(3 * blockItems)
	var full bytes.Buffer
	if err := Write(&full, p); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 100, flushAt + 1, full.Len() / 2, full.Len() - 1} {
		if err := Write(&failAfter{n: n}, p); !errors.Is(err, errDiskFull) {
			t.Errorf("Write failing after %d of %d bytes: %v", n, full.Len(), err)
		}
	}
	if err := Write(&failAfter{n: full.Len()}, p); err != nil {
		t.Errorf("Write with room for the whole document: %v", err)
	}
}

// FuzzAppendString: string escaping is encoding/json's for every input, and
// json/v2's (with v2Options) for every valid UTF-8 input.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&amp;</a>", "\u2028\u2029", "\xff\xc3", "\x00\x1f\x7f\t\n\r\b\f", "日本語 é 🎉", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got := appendString(nil, s)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
		if !utf8.ValidString(s) {
			return
		}
		if v2, err := jsonv2.Marshal(s, v2Options); err != nil || !bytes.Equal(got, v2) {
			t.Fatalf("appendString(%q) = %s, json/v2 writes %s (%v)", s, got, v2, err)
		}
	})
}

// randomString draws from characters encoding/json treats specially.
func randomString(rng *rand.Rand) string {
	pieces := []string{"a", "Z", "0", " ", "-", "_", "/", ":", "<", ">", "&", "\"", "\\", "'", "\x00", "\x01", "\x1f",
		"\x7f", "\t", "\n", "\r", "\b", "\f", "é", "日本", "🎉", "\u2028", "\u2029", "\u2027", "\xff", "\xc3", "\xed\xa0\x80",
		"\ufffd", "\u00e9", "%", "+", "sp:scopes:all"}
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}

func randomStrings(rng *rand.Rand) []string {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+rng.IntN(3))
	for i := range out {
		out[i] = randomString(rng)
	}
	return out
}

func randomTime(rng *rand.Rand) time.Time {
	loc := time.UTC
	if rng.IntN(2) == 0 {
		loc = time.FixedZone("x", (rng.IntN(27)-12)*3600+rng.IntN(2)*1800)
	}
	switch rng.IntN(20) {
	case 0: // years pat.TimeLayout does not fit in four digits
		return time.Date(-1-rng.IntN(50), 1, 2, 3, 4, 5, 6e6, loc)
	case 1:
		return time.Date(10000+rng.IntN(50), 12, 31, 23, 59, 59, 999999999, loc)
	case 2:
		return time.Date(rng.IntN(3), 1, 1, 0, 0, 0, 0, loc)
	case 3:
		return time.Time{}
	}
	return time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(loc)
}

func randomTimePtr(rng *rand.Rand) *time.Time {
	if rng.IntN(3) == 0 {
		return nil
	}
	t := randomTime(rng)
	return &t
}

func randomItem(rng *rand.Rand) Item {
	it := Item{
		TokenID: randomString(rng), TokenName: randomString(rng), OwnerID: randomString(rng), OwnerName: randomString(rng),
		Created: randomTime(rng), LastUsed: randomTimePtr(rng), ExpirationDate: randomTimePtr(rng),
		Scope:   pat.Scopes{Null: rng.IntN(3) == 0, Values: randomStrings(rng)},
		Managed: rng.IntN(2) == 0, Policy: randomString(rng), Mode: randomString(rng), Action: randomString(rng),
		Reason: randomString(rng), AlsoMatched: randomStrings(rng), Marked: randomTimePtr(rng), Deadline: randomTimePtr(rng),
	}
	if it.Scope.Null {
		it.Scope.Values = nil
	}
	if n := rng.IntN(4); n > 0 || rng.IntN(2) == 0 {
		it.Patch = make([]pat.PatchOp, n)
		for i := range it.Patch {
			it.Patch[i] = randomOp(rng)
		}
	}
	return it
}

// randomOp is any operation of the closed set.
func randomOp(rng *rand.Rand) pat.PatchOp {
	switch rng.IntN(5) {
	case 0:
		return pat.Rename(randomString(rng))
	case 1:
		return pat.SetScopes(randomStrings(rng))
	case 2:
		return pat.SetExpiration(randomTime(rng))
	case 3:
		return pat.SetNeverExpires(rng.IntN(2) == 0)
	}
	return pat.SetEnabled(rng.IntN(2) == 0)
}

func randomPlan(rng *rand.Rand) *Plan {
	p := &Plan{
		Version: rng.IntN(3), Tenant: randomString(rng), APIVersion: randomString(rng), GeneratedAt: randomTime(rng),
		ConfigDigest: randomString(rng), PlanHash: randomString(rng), Population: rng.IntN(1e6) - 10,
	}
	if rng.IntN(2) == 0 {
		p.RunID = randomString(rng)
	}
	if rng.IntN(3) == 0 {
		p.Error = randomString(rng)
	}
	if rng.IntN(2) == 0 {
		p.Caller = &Caller{ClientID: randomString(rng), IdentityID: randomString(rng), UserName: randomString(rng)}
		for range rng.IntN(3) {
			p.Caller.Authorities = append(p.Caller.Authorities, randomString(rng))
		}
		p.Owners = rng.IntN(100)
		p.PartialView = randomString(rng)
		t := randomTime(rng)
		p.CredentialExpires = &t
		for range rng.IntN(3) {
			p.Warnings = append(p.Warnings, randomString(rng))
		}
	}
	for range rng.IntN(3) {
		l := Listing{Filter: randomString(rng), Count: rng.IntN(1000)}
		if rng.IntN(2) == 0 {
			l.Error = randomString(rng)
		}
		p.Listings = append(p.Listings, l)
	}
	for range rng.IntN(6) {
		p.Items.Append(randomItem(rng))
	}
	if rng.IntN(4) > 0 {
		p.Skipped = []Skipped{}
	}
	for range rng.IntN(3) {
		p.Skipped = append(p.Skipped, Skipped{TokenID: randomString(rng), TokenName: randomString(rng),
			OwnerID: randomString(rng), Policy: randomString(rng), Reason: randomString(rng)})
	}
	limits := []float64{0, 25, 0.5, 1e21, 1e-7, 123456789.125, -3}
	for range rng.IntN(4) {
		p.Guardrails = append(p.Guardrails, Guardrail{Name: randomString(rng), Limit: limits[rng.IntN(len(limits))],
			Wanted: rng.IntN(100), Tripped: rng.IntN(2) == 0, Detail: randomString(rng)})
	}
	return p
}
