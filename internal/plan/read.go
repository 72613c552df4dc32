package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// MaxSize is the largest plan document Read accepts (256 MiB; a plan of
// 100,000 items is about 60 MiB).
const MaxSize = 256 << 20

// maxProblems bounds how many problems one Read error lists.
const maxProblems = 20

// Write writes the plan document as indented JSON (json.Indent's layout,
// two spaces) followed by a newline. It writes the plan as it is; it does not
// seal it.
//
// The document is encoded and written in pieces of about 32 KiB, never held
// whole in memory. A plan that fails to encode (one Seal would refuse too)
// may therefore leave part of the document written; write to a temporary
// file where that matters.
func Write(w io.Writer, p *Plan) error {
	if err := newEncoder(w, true).plan(p); err != nil {
		return fmt.Errorf("plan: write: %w", err)
	}
	return nil
}

// Read parses a plan document strictly: it must be one JSON object of format
// Version, with no unknown keys (at any level), no trailing data, the required
// keys present and every value well-formed. Errors name the key or the item
// (items[3] "token-id") and what is wrong; problems in items are collected (up
// to 20) rather than reported one per attempt.
//
// Read does not check planHash against the content; call VerifyHash for that.
func Read(r io.Reader) (*Plan, error) {
	return readMax(r, MaxSize)
}

func readMax(r io.Reader, maxSize int64) (*Plan, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("plan: read: %w", err)
	}
	if int64(len(data)) > maxSize {
		return nil, fmt.Errorf("plan: the document is larger than %d bytes", maxSize)
	}
	return parse(data)
}

// rawPlan is the top level as read. Pointers and raw messages tell a missing
// key from a zero value.
type rawPlan struct {
	Version      *int        `json:"version"`
	Tenant       *string     `json:"tenant"`
	APIVersion   *string     `json:"apiVersion"`
	GeneratedAt  *string     `json:"generatedAt"`
	RunID        string      `json:"runId"`
	ConfigDigest *string     `json:"configDigest"`
	PlanHash     *string     `json:"planHash"`
	Population   *int        `json:"population"`
	Caller       *Caller     `json:"caller"`
	Owners       int         `json:"owners"`
	CredExpires  *string     `json:"credentialExpires"`
	PartialView  string      `json:"partialView"`
	Warnings     []string    `json:"warnings"`
	Listings     []Listing   `json:"listings"`
	Error        string      `json:"error"`
	Policies     []Policy    `json:"policies"`
	Items        []rawItem   `json:"items"`
	Skipped      []Skipped   `json:"skipped"`
	Guardrails   []Guardrail `json:"guardrails"`
	APIClients   *Clients    `json:"apiClients"`
}

// rawPlanLists is rawPlan with the lists left raw, for the diagnostic pass:
// each element is decoded on its own so that its error can name it.
type rawPlanLists struct {
	Version      *int              `json:"version"`
	Tenant       *string           `json:"tenant"`
	APIVersion   *string           `json:"apiVersion"`
	GeneratedAt  *string           `json:"generatedAt"`
	RunID        string            `json:"runId"`
	ConfigDigest *string           `json:"configDigest"`
	PlanHash     *string           `json:"planHash"`
	Population   *int              `json:"population"`
	Caller       *Caller           `json:"caller"`
	Owners       int               `json:"owners"`
	CredExpires  *string           `json:"credentialExpires"`
	PartialView  string            `json:"partialView"`
	Warnings     []string          `json:"warnings"`
	Listings     []json.RawMessage `json:"listings"`
	Error        string            `json:"error"`
	Policies     []json.RawMessage `json:"policies"`
	Items        []json.RawMessage `json:"items"`
	Skipped      []json.RawMessage `json:"skipped"`
	Guardrails   []json.RawMessage `json:"guardrails"`
	APIClients   json.RawMessage   `json:"apiClients"`
}

// rawItem is an item as read; lastUsed and scope are raw because null is a
// meaningful value for both and must be told apart from a missing key.
type rawItem struct {
	TokenID        string          `json:"tokenId"`
	TokenName      string          `json:"tokenName"`
	OwnerID        string          `json:"ownerId"`
	OwnerName      string          `json:"ownerName"`
	Created        string          `json:"created"`
	LastUsed       json.RawMessage `json:"lastUsed"`
	ExpirationDate *string         `json:"expirationDate"`
	Scope          json.RawMessage `json:"scope"`
	Managed        bool            `json:"managed"`
	Policy         string          `json:"policy"`
	Mode           string          `json:"mode"`
	Action         string          `json:"action"`
	Reason         string          `json:"reason"`
	Patch          []rawOp         `json:"patch"`
	AlsoMatched    []string        `json:"alsoMatched"`
	Marked         *string         `json:"marked"`
	Deadline       *string         `json:"deadline"`
}

// rawOp is a patch operation as read; pat.ParsePatchOp says which of the
// closed set it is.
type rawOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// problems collects what is wrong with a document.
type problems struct{ list []string }

func (ps *problems) add(format string, args ...any) {
	ps.list = append(ps.list, fmt.Sprintf(format, args...))
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := ps.list
	more := ""
	if len(list) > maxProblems {
		more = fmt.Sprintf("\n  (and %d more)", len(list)-maxProblems)
		list = list[:maxProblems]
	}
	return fmt.Errorf("plan: %d problem(s):\n  %s%s", len(ps.list), strings.Join(list, "\n  "), more)
}

func parse(data []byte) (*Plan, error) {
	// One strict pass decodes a well-formed document. Only when it fails is
	// the document looked at again, piece by piece, to say exactly where.
	var raw rawPlan
	if err := strictDecode(data, &raw); err != nil {
		return nil, diagnose(data, err)
	}
	if key, off, dup := duplicateKey(data); dup {
		return nil, fmt.Errorf("plan: duplicate key %q at byte %d: a plan whose keys repeat reads one way to a reviewer and another to patjanitor; refused", key, off)
	}
	if raw.Version == nil {
		return nil, errors.New(`plan: no "version" key: not a patjanitor plan document`)
	}
	if *raw.Version != Version {
		return nil, unsupported(*raw.Version)
	}
	var ps problems
	p := &Plan{Version: *raw.Version, RunID: raw.RunID, Error: raw.Error}
	p.Tenant = required(&ps, "tenant", raw.Tenant)
	p.APIVersion = required(&ps, "apiVersion", raw.APIVersion)
	if raw.APIVersion != nil {
		if _, err := pat.ParseAPIVersion(p.APIVersion); err != nil || p.APIVersion == "" {
			ps.add("apiVersion %q: want v3, v2025 or v1", p.APIVersion)
		}
	}
	if raw.Tenant != nil && p.Tenant == "" {
		ps.add("tenant is empty")
	}
	if s := required(&ps, "generatedAt", raw.GeneratedAt); raw.GeneratedAt != nil {
		t, err := pat.ParseTime(s)
		if err != nil {
			ps.add("generatedAt: %v", err)
		}
		p.GeneratedAt = t
	}
	p.ConfigDigest = required(&ps, "configDigest", raw.ConfigDigest)
	p.PlanHash = required(&ps, "planHash", raw.PlanHash)
	if p.PlanHash != "" && !hashPattern.MatchString(p.PlanHash) {
		ps.add("planHash %q: want sha256:<64 lowercase hex digits>", p.PlanHash)
	}
	if raw.Population == nil {
		ps.add(`missing key "population"`)
	} else if *raw.Population < 0 {
		ps.add("population %d is negative", *raw.Population)
	} else {
		p.Population = *raw.Population
	}
	if raw.Items == nil {
		ps.add(`missing key "items" (a plan with nothing to do has "items": [])`)
	}
	p.Listings = nonNil(raw.Listings)
	p.Policies = raw.Policies // nil when absent (an older plan): the hash covers the key only when present
	policySeen := make(map[string]int, len(raw.Policies))
	for i, pp := range raw.Policies {
		if pp.Name == "" {
			ps.add("policies[%d]: name is empty", i)
			continue
		}
		if j, dup := policySeen[pp.Name]; dup {
			ps.add("policies[%d] %q: also policies[%d]", i, pp.Name, j)
		}
		policySeen[pp.Name] = i
	}
	readView(&ps, &raw, p)

	p.Items.Grow(len(raw.Items))
	seen := make(map[string]int, len(raw.Items))
	for i := range raw.Items {
		it, ok := parseItem(&ps, i, &raw.Items[i])
		if !ok {
			continue
		}
		// By pat.IDKey: one token however its id is spelt (invariant 9);
		// two spellings would be two requests for one token.
		if j, dup := seen[pat.IDKey(it.TokenID)]; dup {
			ps.add("items[%d] %q: the token is also items[%d] (a token gets at most one action)", i, it.TokenID, j)
		}
		seen[pat.IDKey(it.TokenID)] = i
		p.Items.Append(it)
	}

	p.Skipped = nonNil(raw.Skipped)
	for i, s := range p.Skipped {
		if s.TokenID == "" {
			ps.add("skipped[%d]: tokenId is empty", i)
		}
		if s.Reason == "" {
			ps.add("skipped[%d] %q: reason is empty", i, s.TokenID)
		}
	}
	p.APIClients = raw.APIClients
	p.Guardrails = nonNil(raw.Guardrails)
	for i, g := range p.Guardrails {
		if g.Name == "" {
			ps.add("guardrails[%d]: name is empty", i)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return p, nil
}

func unsupported(version int) error {
	return fmt.Errorf("plan: version %d is not supported (this patjanitor reads version %d)", version, Version)
}

// diagnose explains why the strict decoding of a document failed: not JSON
// (with line and column), not an object, no or another version (before
// complaining about keys a newer version may have added), or the first
// element of each list that does not decode, by index.
func diagnose(data []byte, decodeErr error) error {
	var probe struct {
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			return fmt.Errorf("plan: the document is a JSON %s, not an object", te.Value)
		}
		return fmt.Errorf("plan: %s", describe(data, err))
	}
	if probe.Version == nil {
		return errors.New(`plan: no "version" key: not a patjanitor plan document`)
	}
	var version int
	if err := json.Unmarshal(probe.Version, &version); err != nil {
		return fmt.Errorf("plan: version %s is not an integer", probe.Version)
	}
	if version != Version {
		return unsupported(version)
	}
	var raw rawPlanLists
	if err := strictDecode(data, &raw); err != nil {
		return fmt.Errorf("plan: %s", describe(data, err))
	}
	var ps problems
	each := func(name string, list []json.RawMessage, v func() any) {
		for i, m := range list {
			if err := strictDecode(m, v()); err != nil {
				ps.add("%s[%d]: %s", name, i, describe(m, err))
			}
		}
	}
	each("listings", raw.Listings, func() any { return new(Listing) })
	each("policies", raw.Policies, func() any { return new(Policy) })
	each("items", raw.Items, func() any { return new(rawItem) })
	each("skipped", raw.Skipped, func() any { return new(Skipped) })
	each("guardrails", raw.Guardrails, func() any { return new(Guardrail) })
	if raw.APIClients != nil {
		if err := strictDecode(raw.APIClients, new(Clients)); err != nil {
			ps.add("%s", err)
		}
	}
	if err := ps.err(); err != nil {
		return err
	}
	return fmt.Errorf("plan: %s", describe(data, decodeErr))
}

func parseItem(ps *problems, i int, r *rawItem) (Item, bool) {
	n := len(ps.list)
	// where names the item in problems; built only when there is one.
	where := itemRef{i, r.TokenID}
	if r.TokenID == "" {
		ps.add("%s: tokenId is empty", where)
	}
	it := Item{
		TokenID: r.TokenID, TokenName: r.TokenName, OwnerID: r.OwnerID, OwnerName: r.OwnerName,
		Managed: r.Managed, Policy: r.Policy, Mode: r.Mode, Action: r.Action, Reason: r.Reason,
		Patch: make([]pat.PatchOp, len(r.Patch)), AlsoMatched: r.AlsoMatched,
	}
	for j, op := range r.Patch {
		o, err := pat.ParsePatchOp(op.Op, op.Path, op.Value)
		if err != nil {
			ps.add("%s: patch[%d]: %s", where, j, err)
			continue
		}
		it.Patch[j] = o
	}
	if it.AlsoMatched == nil {
		it.AlsoMatched = []string{}
	}
	if r.Created == "" {
		ps.add("%s: created is missing", where)
	} else if t, err := pat.ParseTime(r.Created); err != nil {
		ps.add("%s: created: %v", where, err)
	} else {
		it.Created = t
	}
	switch {
	case r.LastUsed == nil:
		ps.add(`%s: missing key "lastUsed" (null when never used)`, where)
	case string(r.LastUsed) == "null":
	default:
		s, err := jsonString(r.LastUsed)
		if err != nil {
			ps.add("%s: lastUsed %s: want a timestamp string or null", where, r.LastUsed)
		} else if t, err := pat.ParseTime(s); err != nil {
			ps.add("%s: lastUsed: %v", where, err)
		} else {
			it.LastUsed = &t
		}
	}
	if r.Scope == nil {
		ps.add(`%s: missing key "scope" (null or a list)`, where)
	} else if err := json.Unmarshal(r.Scope, &it.Scope); err != nil {
		ps.add("%s: %v", where, err)
	}
	optTime := func(name string, s *string) *time.Time {
		if s == nil {
			return nil
		}
		t, err := pat.ParseTime(*s)
		if err != nil {
			ps.add("%s: %s: %v", where, name, err)
			return nil
		}
		return &t
	}
	it.ExpirationDate = optTime("expirationDate", r.ExpirationDate)
	it.Marked = optTime("marked", r.Marked)
	it.Deadline = optTime("deadline", r.Deadline)
	if it.Policy == "" {
		ps.add("%s: policy is empty", where)
	}
	if it.Reason == "" {
		ps.add("%s: reason is empty (every item states why)", where)
	}
	switch it.Mode {
	case ModeReport, ModeEnforce:
	case ModeNeedsOwner:
		if it.Action != ActionPatch {
			ps.add("%s: mode needs-owner with action %s: only a patch needs the owner", where, it.Action)
		}
	case ModeGrace:
		if it.Marked == nil {
			ps.add("%s: mode grace without marked", where)
		}
	default:
		ps.add("%s: mode %q: want report, enforce, grace or needs-owner", where, it.Mode)
	}
	switch it.Action {
	case ActionPatch, ActionExpire:
		if len(it.Patch) == 0 {
			ps.add("%s: action %s without patch operations", where, it.Action)
		}
	case ActionDelete, ActionReport:
		if len(it.Patch) != 0 {
			ps.add("%s: action %s with patch operations", where, it.Action)
		}
	default:
		ps.add("%s: action %q: want report, delete, patch or expire", where, it.Action)
	}
	return it, len(ps.list) == n
}

// itemRef names an item in a problem: items[3] "token-id".
type itemRef struct {
	index int
	id    string
}

func (r itemRef) String() string {
	if r.id == "" {
		return fmt.Sprintf("items[%d]", r.index)
	}
	return fmt.Sprintf("items[%d] %q", r.index, r.id)
}

// jsonString decodes a JSON string, without the decoder for the common case
// of a string with no escapes (a timestamp).
func jsonString(raw json.RawMessage) (string, error) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw[1:n-1], '\\') < 0 && bytes.IndexByte(raw[1:n-1], '"') < 0 {
		return string(raw[1 : n-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

func required(ps *problems, key string, v *string) string {
	if v == nil {
		ps.add("missing key %q", key)
		return ""
	}
	return *v
}

// strictDecode decodes exactly one JSON value into v, rejecting unknown keys
// and trailing data, with numbers inside interface values kept as json.Number
// (so a patch value is written back exactly as it was read).
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &trailingError{offset: dec.InputOffset()}
	}
	return nil
}

type trailingError struct{ offset int64 }

func (e *trailingError) Error() string { return "trailing data after the JSON value" }

// describe turns a decoding error into text naming where it happened: the
// line and column for syntax errors, the key path for type errors.
func describe(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var tr *trailingError
	switch {
	case errors.As(err, &se):
		if se.Error() == "unexpected end of JSON input" {
			return "the JSON ends early (empty or truncated)"
		}
		// Offset is the number of bytes read when the error was noticed:
		// the offending byte is the last of them.
		line, col := position(data, se.Offset-1)
		if strings.Contains(se.Error(), "after top-level value") {
			return fmt.Sprintf("trailing data after the JSON value at line %d, column %d", line, col)
		}
		return fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the value"
		}
		return fmt.Sprintf("%s: want %s, got a JSON %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &tr):
		line, col := position(data, tr.offset)
		return fmt.Sprintf("trailing data after the JSON value at line %d, column %d", line, col)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early (truncated)"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "struct", "map":
		return "an object"
	}
	return goKind
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// readView checks and copies the optional keys that describe what the run
// could see.
func readView(ps *problems, raw *rawPlan, p *Plan) {
	if raw.Caller != nil {
		c := *raw.Caller
		if c.ClientID == "" {
			ps.add("caller.clientId is empty")
		}
		if len(c.Authorities) == 0 {
			c.Authorities = nil
		}
		p.Caller = &c
	}
	if raw.Owners < 0 {
		ps.add("owners %d is negative", raw.Owners)
	}
	p.Owners = raw.Owners
	if raw.CredExpires != nil {
		t, err := pat.ParseTime(*raw.CredExpires)
		if err != nil {
			ps.add("credentialExpires: %v", err)
		}
		p.CredentialExpires = &t
	}
	p.PartialView = raw.PartialView
	if len(raw.Warnings) > 0 {
		p.Warnings = raw.Warnings
	}
}
