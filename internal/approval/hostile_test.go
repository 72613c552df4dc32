package approval

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// One reviewer holding two keys must not make two approvals by spelling
// their principal twice: allowed signers lines are written by hand (git's
// format lists several principals per key, e.g. a work and a GitHub address,
// and patterns), and "distinct principals" compared the principals field as
// a string, so "alice@acme.com" and "Alice@ACME.com", or
// "alice@acme.com,alice@users.noreply.github.com" and "alice@acme.com",
// counted as two people.
func TestHostileOneReviewerTwoPrincipalSpellings(t *testing.T) {
	for name, lines := range map[string][2]string{
		"case":             {"alice@acme.com", "Alice@ACME.com"},
		"list":             {"alice@acme.com,alice@users.noreply.github.com", "alice@acme.com"},
		"list-other-order": {"alice@users.noreply.github.com", "ALICE@acme.com,alice@users.noreply.github.com"},
		"pattern":          {"*@acme.com", "alice@acme.com"},
		"quoted":           {`"alice@acme.com"`, "alice@acme.com"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			laptop, desktop := newReviewer(t, "alice-laptop", "ed25519"), newReviewer(t, "alice-desktop", "ecdsa")
			signers := writeFile(t, dir, "allowed_signers", fmt.Sprintf("%s %s\n%s %s\n", lines[0], laptop.authKey, lines[1], desktop.authKey))
			as, err := LoadAllowedSigners(signers)
			if err != nil {
				t.Fatal(err)
			}
			planFile := writeFile(t, dir, "plan.json", `{"version":1}`+"\n")
			signPlan(t, planFile, laptop, "")
			signPlan(t, planFile, desktop, "")
			res := check(t, planFile, Policy{Signers: as, Required: 2}, now)
			if res.Approved() {
				t.Fatalf("one reviewer's two keys (%q, %q) made two approvals: %+v", lines[0], lines[1], res.Approvals())
			}
			if err := res.Err(); err == nil || !strings.Contains(err.Error(), "signed twice") {
				t.Fatalf("the refusal does not say why: %v", err)
			}
		})
	}
	// Distinct people still count: the check is not "one approval in all".
	dir := t.TempDir()
	alice, bob := newReviewer(t, "alice", "ed25519"), newReviewer(t, "bob", "ecdsa")
	signers := writeFile(t, dir, "allowed_signers", fmt.Sprintf("alice@acme.com,alice@users.noreply.github.com %s\nbob@acme.com %s\n", alice.authKey, bob.authKey))
	as, err := LoadAllowedSigners(signers)
	if err != nil {
		t.Fatal(err)
	}
	planFile := writeFile(t, dir, "plan.json", `{"version":1}`+"\n")
	signPlan(t, planFile, alice, "")
	signPlan(t, planFile, bob, "")
	if err := check(t, planFile, Policy{Signers: as, Required: 2}, now).Err(); err != nil {
		t.Fatal(err)
	}
}

// A revoked keys file whose one line (a key with a long comment) fills the
// whole 1 MiB an approvals file may have: the line reader stopped at it
// without a word, so the file loaded with no key revoked and the key's
// signatures went on counting. The file must be refused, naming it.
func TestHostileRevokedKeyLineFillsTheFile(t *testing.T) {
	dave := newReviewer(t, "dave", "ed25519")
	line := dave.authKey + " " + strings.Repeat("x", MaxFileBytes-len(dave.authKey)-1)
	revoked := writeFile(t, t.TempDir(), "revoked", line)
	rk, err := LoadRevokedKeys(revoked)
	if err == nil || !strings.Contains(err.Error(), revoked) {
		t.Fatalf("LoadRevokedKeys = %+v, %v; want an error naming %s (dave's key left unrevoked)", rk, err, revoked)
	}
}

// A signature file near the 1 MiB a reader takes (one signature with a
// reason padded by hand): approve added the next signature and wrote a file
// over the limit, which every reader then refused, losing the signatures
// already in it. The signature must be refused, naming the file and the
// limit, and the file left as it was.
func TestHostileSignatureFileFilledToTheLimit(t *testing.T) {
	dir := t.TempDir()
	planFile := writeFile(t, dir, "plan.json", `{"planHash":"x"}`)
	alice, bob := newReviewer(t, "alice", "ed25519"), newReviewer(t, "bob", "ed25519")
	signPlan(t, planFile, alice, "MARK")
	sigFile := SigFile(planFile)
	data, err := os.ReadFile(sigFile)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("MARK"), bytes.Repeat([]byte("x"), MaxFileBytes-len(data)-100), 1)
	if err := os.WriteFile(sigFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSigFile(sigFile); err != nil {
		t.Fatalf("the padded file, %d bytes, does not read: %v", len(data), err)
	}
	pd, _ := os.ReadFile(planFile)
	sig, err := Sign(pd, bob.signer)
	if err != nil {
		t.Fatal(err)
	}
	err = AppendSignature(sigFile, sig, now, "bob's")
	if err == nil || !strings.Contains(err.Error(), sigFile) || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("AppendSignature to a file of %d bytes: %v; want a refusal naming the file and the limit", len(data), err)
	}
	if got, _ := os.ReadFile(sigFile); !bytes.Equal(got, data) {
		t.Fatalf("the refused signature changed the file (%d bytes, was %d)", len(got), len(data))
	}
	if _, err := ReadSigFile(sigFile); err != nil {
		t.Fatalf("the file no longer reads: %v", err)
	}
	// Data over the limit from elsewhere (POST /approve) is refused as a
	// file read from disk is.
	if _, err := ParseSigFile("sig", append(data, bytes.Repeat([]byte("\n"), 200)...)); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("ParseSigFile of %d bytes: %v", len(data)+200, err)
	}
}
