package idnsim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file implements the SailPoint "standard collection parameters" filter
// language in full: primitive operators eq ne gt ge lt le in co sw ca,
// the prefix pr and postfix isnull, the composites not > and > or with
// parentheses, double-quoted strings with \" and \\ escapes, numbers, booleans and
// unquoted RFC 3339 date-times. Each endpoint then decides which fields and
// operators it accepts (patfilter.go, identities.go), which is how the real
// service behaves: one grammar, per-endpoint support lists, 400 for the rest.

// maxFilterLen bounds the work a single filter can cause. Real query strings are
// bounded by the gateway; 8 KiB is far above anything the client sends.
const maxFilterLen = 8192

// maxFilterDepth bounds nesting so that "((((…" cannot exhaust the stack.
const maxFilterDepth = 64

// FilterError is a syntax error in a filter expression. Pos is the byte offset
// where the problem was noticed.
type FilterError struct {
	Pos int
	Msg string
}

// Error implements error.
func (e *FilterError) Error() string { return fmt.Sprintf("%s at position %d", e.Msg, e.Pos) }

// ValueKind says what a filter literal (or a looked-up field value) is.
type ValueKind int

// The literal kinds of the filter language, plus Null and List for field values.
const (
	KindString ValueKind = iota + 1
	KindNumber
	KindBool
	KindTime
	KindNull
	KindList
)

// String names the kind as error messages do ("date-time", "string").
func (k ValueKind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindNumber:
		return "number"
	case KindBool:
		return "boolean"
	case KindTime:
		return "date-time"
	case KindNull:
		return "null"
	case KindList:
		return "list"
	}
	return "unknown"
}

// Value is a filter literal or a field value to compare against one.
type Value struct {
	Kind ValueKind
	Str  string
	Num  float64
	Bool bool
	Time time.Time
	List []string
	// Raw is the literal as written (unquoted forms only), so that a date-time
	// re-renders with exactly the precision it was given.
	Raw string
}

// StringValue is a string field value for Eval lookups.
func StringValue(s string) Value { return Value{Kind: KindString, Str: s} }

// NullValue is a null (or absent) field value.
func NullValue() Value { return Value{Kind: KindNull} }

func (v Value) render(b *strings.Builder) {
	switch v.Kind {
	case KindString:
		b.WriteByte('"')
		for _, r := range v.Str {
			if r == '"' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	case KindNull:
		b.WriteString("null")
	default:
		b.WriteString(v.Raw)
	}
}

// Node is a parsed filter expression.
type Node interface {
	// String renders the expression canonically: parsing the rendering yields an
	// equal tree.
	String() string
	// Eval reports whether an object matches, looking its fields up with get
	// (absent fields are null).
	Eval(get func(field string) (Value, bool)) bool
	render(b *strings.Builder)
}

// Logical is "L and R" or "L or R".
type Logical struct {
	Op   string // "and" | "or"
	L, R Node
}

// Not is "not X".
type Not struct{ X Node }

// Compare is one primitive term: "field op value", "field in (v, …)",
// "field isnull" or "pr field" (Values empty for the last two).
type Compare struct {
	Field  string
	Op     string
	Values []Value
}

// String renders the expression canonically.
func (n *Logical) String() string { return renderNode(n) }

// String renders the expression canonically.
func (n *Not) String() string { return renderNode(n) }

// String renders the term canonically.
func (n *Compare) String() string { return renderNode(n) }

func renderNode(n Node) string {
	var b strings.Builder
	n.render(&b)
	return b.String()
}

// renderOperand parenthesises composite operands so that the rendering parses
// back into the same tree regardless of precedence.
func renderOperand(b *strings.Builder, n Node) {
	if _, ok := n.(*Logical); ok {
		b.WriteByte('(')
		n.render(b)
		b.WriteByte(')')
		return
	}
	n.render(b)
}

func (n *Logical) render(b *strings.Builder) {
	renderOperand(b, n.L)
	b.WriteString(" " + n.Op + " ")
	renderOperand(b, n.R)
}

func (n *Not) render(b *strings.Builder) {
	b.WriteString("not ")
	renderOperand(b, n.X)
}

func (n *Compare) render(b *strings.Builder) {
	switch n.Op {
	case "pr":
		b.WriteString("pr " + n.Field)
	case "isnull":
		b.WriteString(n.Field + " isnull")
	case "in", "ca":
		b.WriteString(n.Field + " " + n.Op + " (")
		for i, v := range n.Values {
			if i > 0 {
				b.WriteByte(',')
			}
			v.render(b)
		}
		b.WriteByte(')')
	default:
		b.WriteString(n.Field + " " + n.Op + " ")
		n.Values[0].render(b)
	}
}

// Eval evaluates both sides (and, or).
func (n *Logical) Eval(get func(string) (Value, bool)) bool {
	if n.Op == "and" {
		return n.L.Eval(get) && n.R.Eval(get)
	}
	return n.L.Eval(get) || n.R.Eval(get)
}

// Eval negates the operand.
func (n *Not) Eval(get func(string) (Value, bool)) bool { return !n.X.Eval(get) }

// Eval compares the looked-up field with the literal(s).
func (n *Compare) Eval(get func(string) (Value, bool)) bool {
	fv, ok := get(n.Field)
	if !ok {
		fv = NullValue()
	}
	switch n.Op {
	case "isnull":
		return fv.Kind == KindNull
	case "pr":
		return fv.Kind != KindNull
	}
	// Every comparison with a null field is false: "lastUsed le X" never
	// matches a token that was never used (undocumented: the likely reading,
	// and the strict one).
	if fv.Kind == KindNull {
		return false
	}
	switch n.Op {
	case "in":
		for _, v := range n.Values {
			if c, ok := compareValues(fv, v); ok && c == 0 {
				return true
			}
		}
		return false
	case "ca":
		if fv.Kind != KindList {
			return false
		}
		for _, v := range n.Values {
			if v.Kind != KindString || !containsFold(fv.List, v.Str) {
				return false
			}
		}
		return true
	case "co", "sw":
		if fv.Kind != KindString || n.Values[0].Kind != KindString {
			return false
		}
		s, sub := strings.ToLower(fv.Str), strings.ToLower(n.Values[0].Str)
		if n.Op == "co" {
			return strings.Contains(s, sub)
		}
		return strings.HasPrefix(s, sub)
	}
	c, ok := compareValues(fv, n.Values[0])
	if !ok {
		return false
	}
	switch n.Op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// compareValues orders a field value against a literal of a compatible kind:
// date-times temporally, numbers numerically, strings case-insensitively
// (the docs: "most string comparisons are case-insensitive"). ok is false for
// incomparable kinds.
func compareValues(field, lit Value) (int, bool) {
	switch {
	case field.Kind == KindTime && lit.Kind == KindTime:
		return field.Time.Compare(lit.Time), true
	case field.Kind == KindNumber && lit.Kind == KindNumber:
		switch {
		case field.Num < lit.Num:
			return -1, true
		case field.Num > lit.Num:
			return 1, true
		}
		return 0, true
	case field.Kind == KindBool && lit.Kind == KindBool:
		if field.Bool == lit.Bool {
			return 0, true
		}
		if !field.Bool {
			return -1, true
		}
		return 1, true
	case field.Kind == KindString && lit.Kind == KindString:
		return strings.Compare(strings.ToLower(field.Str), strings.ToLower(lit.Str)), true
	}
	return 0, false
}

// binaryOps take one value; listOps take a parenthesised list.
var (
	binaryOps = map[string]bool{"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true, "co": true, "sw": true}
	listOps   = map[string]bool{"in": true, "ca": true}
)

func isOperatorWord(w string) bool {
	return binaryOps[w] || listOps[w] || w == "isnull" || w == "pr"
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokString
	tokLParen
	tokRParen
	tokComma
)

type token struct {
	kind tokKind
	text string // word text or the decoded string
	pos  int
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of filter"
	case tokString:
		return strconv.Quote(t.text)
	case tokLParen:
		return `"("`
	case tokRParen:
		return `")"`
	case tokComma:
		return `","`
	}
	return fmt.Sprintf("%q", t.text)
}

// lex splits a filter into tokens. Words are maximal runs of anything but white
// space, parentheses, commas and quotes, which keeps date-times ("2026-…:00.000Z")
// and dotted field paths in one piece.
func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{kind: tokLParen, pos: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, pos: i})
			i++
		case c == ',':
			toks = append(toks, token{kind: tokComma, pos: i})
			i++
		case c == '"':
			start := i
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' {
					if i+1 >= len(s) {
						break
					}
					n := s[i+1]
					if n != '"' && n != '\\' {
						return nil, &FilterError{Pos: i, Msg: fmt.Sprintf(`invalid escape "\%c" in string (only \" and \\ are allowed)`, n)}
					}
					b.WriteByte(n)
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return nil, &FilterError{Pos: start, Msg: "unterminated string"}
			}
			if !utf8.ValidString(b.String()) {
				return nil, &FilterError{Pos: start, Msg: "string is not valid UTF-8"}
			}
			toks = append(toks, token{kind: tokString, text: b.String(), pos: start})
		default:
			start := i
			for i < len(s) && !strings.ContainsRune(" \t\n\r(),\"", rune(s[i])) {
				i++
			}
			toks = append(toks, token{kind: tokWord, text: s[start:i], pos: start})
		}
	}
	return append(toks, token{kind: tokEOF, pos: len(s)}), nil
}

type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) isWord(w string) bool {
	t := p.peek()
	return t.kind == tokWord && t.text == w
}

// ParseFilter parses a filter expression in the SailPoint standard syntax. It
// accepts the whole language; callers restrict fields and operators.
func ParseFilter(s string) (Node, error) {
	if len(s) > maxFilterLen {
		return nil, &FilterError{Pos: maxFilterLen, Msg: fmt.Sprintf("filter longer than %d bytes", maxFilterLen)}
	}
	if !utf8.ValidString(s) {
		return nil, &FilterError{Pos: 0, Msg: "filter is not valid UTF-8"}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if p.peek().kind == tokEOF {
		return nil, &FilterError{Pos: 0, Msg: "empty filter"}
	}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, &FilterError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %s after a complete expression (expected \"and\", \"or\" or end of filter)", t.describe())}
	}
	return n, nil
}

func (p *parser) enter(pos int) error {
	p.depth++
	if p.depth > maxFilterDepth {
		return &FilterError{Pos: pos, Msg: fmt.Sprintf("filter nested deeper than %d levels", maxFilterDepth)}
	}
	return nil
}

func (p *parser) parseOr() (Node, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isWord("or") {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &Logical{Op: "or", L: l, R: r}
	}
	return l, nil
}

func (p *parser) parseAnd() (Node, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.isWord("and") {
		p.next()
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = &Logical{Op: "and", L: l, R: r}
	}
	return l, nil
}

func (p *parser) parseUnary() (Node, error) {
	if p.isWord("not") {
		t := p.next()
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		x, err := p.parseUnary()
		p.depth--
		if err != nil {
			return nil, err
		}
		return &Not{X: x}, nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (Node, error) {
	t := p.next()
	switch t.kind {
	case tokLParen:
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		n, err := p.parseOr()
		p.depth--
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, &FilterError{Pos: c.pos, Msg: fmt.Sprintf("expected \")\" but found %s", c.describe())}
		}
		return n, nil
	case tokWord:
		if t.text == "pr" {
			f := p.next()
			if f.kind != tokWord || !validField(f.text) {
				return nil, &FilterError{Pos: f.pos, Msg: fmt.Sprintf("expected a field name after \"pr\" but found %s", f.describe())}
			}
			return &Compare{Field: f.text, Op: "pr"}, nil
		}
		if !validField(t.text) {
			return nil, &FilterError{Pos: t.pos, Msg: fmt.Sprintf("expected a field name but found %s", t.describe())}
		}
		return p.parseTerm(t)
	case tokEOF:
		return nil, &FilterError{Pos: t.pos, Msg: "unexpected end of filter (expected a field name, \"not\", \"pr\" or \"(\")"}
	}
	return nil, &FilterError{Pos: t.pos, Msg: fmt.Sprintf("expected a field name but found %s", t.describe())}
}

// validField accepts identifiers and dotted paths ("identitySummary.id").
// Reserved words are not field names.
func validField(s string) bool {
	if s == "" || s == "and" || s == "or" || s == "not" || isOperatorWord(s) {
		return false
	}
	for i, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for j, r := range part {
			letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
			digit := r >= '0' && r <= '9'
			if !letter && !(digit && (j > 0 || i > 0)) {
				return false
			}
		}
	}
	return true
}

func (p *parser) parseTerm(field token) (Node, error) {
	opTok := p.next()
	if opTok.kind != tokWord {
		return nil, &FilterError{Pos: opTok.pos, Msg: fmt.Sprintf("expected an operator after field %q but found %s", field.text, opTok.describe())}
	}
	op := opTok.text
	if !isOperatorWord(op) {
		if isOperatorWord(strings.ToLower(op)) {
			return nil, &FilterError{Pos: opTok.pos, Msg: fmt.Sprintf("operator %q must be lowercase", op)}
		}
		return nil, &FilterError{Pos: opTok.pos, Msg: fmt.Sprintf("unknown operator %q", op)}
	}
	switch {
	case op == "isnull":
		return &Compare{Field: field.text, Op: op}, nil
	case op == "pr":
		return nil, &FilterError{Pos: opTok.pos, Msg: fmt.Sprintf("\"pr\" is a prefix operator: write \"pr %s\"", field.text)}
	case listOps[op]:
		if lp := p.next(); lp.kind != tokLParen {
			return nil, &FilterError{Pos: lp.pos, Msg: fmt.Sprintf("expected \"(\" after %q but found %s", op, lp.describe())}
		}
		var vals []Value
		for {
			v, err := p.parseValue()
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
			sep := p.next()
			if sep.kind == tokRParen {
				break
			}
			if sep.kind != tokComma {
				return nil, &FilterError{Pos: sep.pos, Msg: fmt.Sprintf("expected \",\" or \")\" in the %q list but found %s", op, sep.describe())}
			}
		}
		return &Compare{Field: field.text, Op: op, Values: vals}, nil
	}
	v, err := p.parseValue()
	if err != nil {
		return nil, err
	}
	return &Compare{Field: field.text, Op: op, Values: []Value{v}}, nil
}

// parseValue reads one literal: a quoted string, true/false, a number or an
// unquoted RFC 3339 date-time. Any other bare word is an error: strings must be
// quoted.
func (p *parser) parseValue() (Value, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return Value{Kind: KindString, Str: t.text}, nil
	case tokWord:
		return parseBare(t)
	}
	return Value{}, &FilterError{Pos: t.pos, Msg: fmt.Sprintf("expected a value but found %s", t.describe())}
}

func parseBare(t token) (Value, error) {
	w := t.text
	switch w {
	case "true", "false":
		return Value{Kind: KindBool, Bool: w == "true", Raw: w}, nil
	}
	if looksNumeric(w) {
		f, err := strconv.ParseFloat(w, 64)
		if err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return Value{Kind: KindNumber, Num: f, Raw: w}, nil
		}
	}
	if len(w) >= 20 && w[0] >= '0' && w[0] <= '9' && strings.ContainsRune(w, 'T') {
		ts, err := time.Parse(time.RFC3339Nano, w)
		if err == nil {
			return Value{Kind: KindTime, Time: ts, Raw: w}, nil
		}
		return Value{}, &FilterError{Pos: t.pos, Msg: fmt.Sprintf("invalid date-time %q (want RFC 3339, e.g. 2026-08-28T03:00:00.000Z)", w)}
	}
	return Value{}, &FilterError{Pos: t.pos, Msg: fmt.Sprintf("unexpected value %q (strings must be in double quotes)", w)}
}

// looksNumeric accepts the JSON number shape only, so that words such as
// "Inf", "0x10" or "1_000" that strconv would take are not numbers here.
func looksNumeric(w string) bool {
	i := 0
	if i < len(w) && w[i] == '-' {
		i++
	}
	digits := 0
	for i < len(w) && w[i] >= '0' && w[i] <= '9' {
		i++
		digits++
	}
	if digits == 0 {
		return false
	}
	if i < len(w) && w[i] == '.' {
		i++
		frac := 0
		for i < len(w) && w[i] >= '0' && w[i] <= '9' {
			i++
			frac++
		}
		if frac == 0 {
			return false
		}
	}
	if i < len(w) && (w[i] == 'e' || w[i] == 'E') {
		i++
		if i < len(w) && (w[i] == '+' || w[i] == '-') {
			i++
		}
		exp := 0
		for i < len(w) && w[i] >= '0' && w[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(w)
}
