package policy

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// FieldError is one problem in a config file, with its position. Error renders
// it as `policies.yaml:14: policies[1] "full-access": match.scopes.any: must
// not be empty`.
type FieldError struct {
	File string
	Line int // 1-based, always set
	// Policy is `policies[1] "full-access"` (or `policies[1]` while the policy
	// has no name) when the problem is inside a policy, else "".
	Policy string
	// Field is the dotted path of the key, relative to the policy when Policy
	// is set ("match.scopes.any"), else from the top ("tenant.url"); "" for
	// the file as a whole.
	Field string
	Msg   string
}

// Error implements error.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(e.Line))
	b.WriteString(": ")
	if e.Policy != "" {
		b.WriteString(e.Policy)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem Load found, in file order. errors.As(err, &errs)
// gets them from Load's error.
type Errors []*FieldError

// Error renders one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// maxErrors bounds the problems reported: past it, more lines do not help.
const maxErrors = 100

// rawError is a problem before the policy names are known.
type rawError struct {
	line int
	path string
	msg  string
	seq  int
}

// errorList collects problems during decoding and validation.
type errorList struct {
	errs []rawError
}

func (l *errorList) add(line int, path, msg string) {
	if line < 1 {
		line = 1
	}
	l.errs = append(l.errs, rawError{line: line, path: path, msg: msg, seq: len(l.errs)})
}

var policyPathRE = regexp.MustCompile(`^policies\[(\d+)\](?:\.(.*))?$`)

// render turns the collected problems into Errors, sorted by line (and by
// discovery within a line), naming policies by index and name.
func (l *errorList) render(file string, policyName func(i int) string) Errors {
	if len(l.errs) == 0 {
		return nil
	}
	raw := append([]rawError(nil), l.errs...)
	sort.SliceStable(raw, func(i, j int) bool {
		if raw[i].line != raw[j].line {
			return raw[i].line < raw[j].line
		}
		return raw[i].seq < raw[j].seq
	})
	out := make(Errors, 0, len(raw))
	seen := map[string]bool{}
	for _, r := range raw {
		fe := &FieldError{File: file, Line: r.line, Field: r.path, Msg: r.msg}
		if m := policyPathRE.FindStringSubmatch(r.path); m != nil {
			i, _ := strconv.Atoi(m[1])
			fe.Policy = "policies[" + m[1] + "]"
			if name := policyName(i); name != "" {
				fe.Policy += " " + strconv.Quote(name)
			}
			fe.Field = m[2]
		}
		// The same problem reached twice (an alias used in two places)
		// is reported once per place, never twice for one place.
		if s := fe.Error(); !seen[s] {
			seen[s] = true
			out = append(out, fe)
		}
	}
	if len(out) > maxErrors {
		more := len(out) - maxErrors
		out = append(out[:maxErrors], &FieldError{File: file, Line: out[maxErrors].Line,
			Msg: strconv.Itoa(more) + " more problems not shown"})
	}
	return out
}

func errorAtLine1(file, msg string) Errors {
	return Errors{{File: file, Line: 1, Msg: msg}}
}
