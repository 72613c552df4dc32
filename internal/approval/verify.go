package approval

import (
	"bytes"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Policy is what an apply requires: how many distinct principals, from which
// allowed signers, minus which revoked keys.
type Policy struct {
	Signers  *AllowedSigners
	Revoked  *RevokedKeys
	Required int
}

// Verdict is what became of one signature.
type Verdict struct {
	Index, Line int
	// Principal and Fingerprint are known once the key was found in the
	// allowed signers file (Fingerprint as soon as the signature parsed).
	Principal   string
	Fingerprint string
	SignedAt    time.Time
	Reason      string
	// Counted is true for a signature that approves the plan; otherwise Why
	// says why not.
	Counted bool
	Why     string
}

// String is one line of the verdict, for errors and the CLI.
func (v Verdict) String() string {
	who := v.Fingerprint
	if v.Principal != "" {
		who = fmt.Sprintf("%s (%s)", v.Principal, v.Fingerprint)
	}
	if who == "" {
		who = "unknown key"
	}
	status := "counted"
	if !v.Counted {
		status = "not counted: " + v.Why
	}
	return fmt.Sprintf("signature %d (line %d) by %s: %s", v.Index, v.Line, who, status)
}

// Result is the verdict on a plan's signatures.
type Result struct {
	Required int
	Verdicts []Verdict
}

// Approvals are the counted verdicts, one per principal.
func (r *Result) Approvals() []Verdict {
	var out []Verdict
	for _, v := range r.Verdicts {
		if v.Counted {
			out = append(out, v)
		}
	}
	return out
}

// Approved reports whether enough distinct principals signed.
func (r *Result) Approved() bool { return len(r.Approvals()) >= r.Required }

// Err is nil when the plan is approved, and otherwise a *RefusedError that
// says how many valid approvals were needed and found, then each signature
// and why it did or did not count (the first maxVerdictsShown of those that
// did not, then how many more there are).
func (r *Result) Err() error {
	if r.Approved() {
		return nil
	}
	e := &RefusedError{Head: fmt.Sprintf("the plan needs %d approvals by distinct principals and has %d valid", r.Required, len(r.Approvals()))}
	if len(r.Verdicts) == 0 {
		e.Head += " (no signature file, or it holds no signature)"
	}
	shown := 0
	for _, v := range r.Verdicts {
		if !v.Counted {
			if shown == maxVerdictsShown {
				continue
			}
			shown++
		}
		e.Lines = append(e.Lines, v.String())
	}
	if n := len(r.Verdicts) - len(r.Approvals()) - shown; n > 0 {
		e.Lines = append(e.Lines, fmt.Sprintf("and %d more signatures that did not count", n))
	}
	return e
}

// RefusedError is a refusal for too few approvals: a headline and one line
// per signature. Error joins them with newlines (the journal, the .result
// file and POST /approve's answer keep that text); a terminal prints each
// line on its own through Block, escaping each, since printing the whole
// text escaped shows one line with visible \n between the verdicts.
type RefusedError struct {
	Head  string
	Lines []string
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	b.WriteString(e.Head)
	for _, l := range e.Lines {
		b.WriteString("\n  ")
		b.WriteString(l)
	}
	return b.String()
}

// Block returns the headline and the lines, for a terminal.
func (e *RefusedError) Block() (string, []string) { return e.Head, e.Lines }

// maxVerdictsShown bounds the signatures that did not count which Err
// lists one by one (every counted one is listed): a signature file of 1 MiB
// holds up to 18,000 blocks that do not parse, whose verdicts made 2 MB of
// text, and the refusal is journaled (a record holds at most 1 MiB: the
// refusal could not be), written to rejected/*.result, logged and sent.
const maxVerdictsShown = 20

// Check judges each signature over planBytes at the time now. A signature
// counts when it parses, is in the patjanitor-plan namespace, verifies over
// these exact bytes with a key of the allowed signers file that is neither
// revoked nor outside its valid-after/valid-before window nor restricted to
// other namespaces, and its principal and key have not been counted already.
func (p Policy) Check(planBytes []byte, entries []Entry, now time.Time) *Result {
	res := &Result{Required: p.Required}
	var principals []string // the principals fields counted so far
	keys := map[string]bool{}
	for _, e := range entries {
		v := Verdict{Index: e.Index, Line: e.Line, SignedAt: e.SignedAt, Reason: e.Reason}
		v.Why = p.judge(planBytes, e, now, &v, &principals, keys)
		v.Counted = v.Why == ""
		res.Verdicts = append(res.Verdicts, v)
	}
	return res
}

// judge returns why e does not count ("" when it does), filling v's
// principal and fingerprint as they become known.
func (p Policy) judge(planBytes []byte, e Entry, now time.Time, v *Verdict, principals *[]string, keys map[string]bool) string {
	if e.Err != nil {
		return e.Err.Error()
	}
	sig := e.Sig
	v.Fingerprint = ssh.FingerprintSHA256(sig.PublicKey)
	if sig.Namespace != Namespace {
		return fmt.Sprintf("made in namespace %q, not %q (a signature for something else)", sig.Namespace, Namespace)
	}
	if err := sig.HashAlgorithm.Supported(); err != nil {
		return fmt.Sprintf("hash algorithm %q: %v", sig.HashAlgorithm, err)
	}
	lines := p.Signers.find(sig.PublicKey)
	if len(lines) == 0 {
		return fmt.Sprintf("the key is not in the allowed signers file %s", p.Signers.File)
	}
	if p.Revoked.Revoked(sig.PublicKey) {
		v.Principal = lines[0].Principals
		return fmt.Sprintf("the key is revoked (%s)", p.Revoked.File)
	}
	if err := sshsig.Verify(bytes.NewReader(planBytes), sig, sig.PublicKey, sig.HashAlgorithm, Namespace); err != nil {
		v.Principal = lines[0].Principals
		return "does not verify over this plan file: it was made for another file, or the plan was changed after signing"
	}
	// The first line that admits the key now, in this namespace, names
	// the principal; the reasons of the others explain a refusal.
	var why []string
	for _, s := range lines {
		v.Principal = s.Principals
		switch {
		case !s.allowsNamespace(Namespace):
			why = append(why, fmt.Sprintf("%s:%d allows only namespaces %s", p.Signers.File, s.Line, strings.Join(s.Namespaces, ",")))
		case !s.ValidAfter.IsZero() && now.Before(s.ValidAfter):
			why = append(why, fmt.Sprintf("%s:%d: the key is valid only after %s", p.Signers.File, s.Line, s.ValidAfter.UTC().Format(time.RFC3339)))
		case !s.ValidBefore.IsZero() && !now.Before(s.ValidBefore):
			why = append(why, fmt.Sprintf("%s:%d: the key expired at %s", p.Signers.File, s.Line, s.ValidBefore.UTC().Format(time.RFC3339)))
		default:
			why = nil
		}
		if why == nil {
			break
		}
	}
	if why != nil {
		return strings.Join(why, "; ")
	}
	if keys[v.Fingerprint] {
		return "the same key signed twice (counted once)"
	}
	for _, counted := range *principals {
		if samePerson(counted, v.Principal) {
			return fmt.Sprintf("principal %s signed twice (counted once; %s was counted already)", v.Principal, counted)
		}
	}
	keys[v.Fingerprint] = true
	*principals = append(*principals, v.Principal)
	return ""
}

// samePerson reports whether two principals fields may name the same
// person: they share a principal, compared without regard to case (an
// address is one mailbox however it is spelt), or a pattern of one matches a
// principal of the other. A reviewer's lines are written by hand, often with
// several addresses per key; comparing the fields as strings let one person
// with two keys count as two.
func samePerson(a, b string) bool {
	// Quotes may enclose the field (nextField keeps them): "alice" is alice.
	as := strings.Split(strings.ToLower(strings.Trim(a, `"`)), ",")
	bs := strings.Split(strings.ToLower(strings.Trim(b, `"`)), ",")
	for _, x := range as {
		for _, y := range bs {
			x, y := strings.TrimSpace(x), strings.TrimSpace(y)
			if x == y {
				return true
			}
			if ok, _ := path.Match(x, y); ok {
				return true
			}
			if ok, _ := path.Match(y, x); ok {
				return true
			}
		}
	}
	return false
}
