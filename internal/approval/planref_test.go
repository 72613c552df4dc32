package approval

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PlanRef is what apply PLAN and serve journal about a saved plan: the
// file, its digest, the planHash and the approvals that counted, or the
// refusal with every signature's verdict.
func TestPlanRef(t *testing.T) {
	dir := t.TempDir()
	alice, bob := newReviewer(t, "alice", "ed25519"), newReviewer(t, "bob", "ed25519")
	signers := writeFile(t, dir, "allowed_signers", "alice "+alice.authKey+"\nbob "+bob.authKey+"\n")
	pol, err := Load(signers, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	planFile := writeFile(t, dir, "plan.json", `{"version":1}`+"\n")
	data := []byte(`{"version":1}` + "\n")
	digest := FileDigest(data)
	if want := "sha256:" + fmt.Sprintf("%x", sha256.Sum256(data)); digest != want {
		t.Fatalf("FileDigest = %q, want %q", digest, want)
	}

	// No approvals configured: nothing is judged.
	var none *Policy
	if ref, err := none.PlanRef(planFile, data, "sha256:h", now); err != nil || ref.File != planFile || ref.FileSHA256 != digest || ref.PlanHash != "sha256:h" || ref.Approvals != nil {
		t.Fatalf("no policy: %+v %v", ref, err)
	}
	// No signature file: no signatures.
	ref, err := pol.PlanRef(planFile, data, "sha256:h", now)
	if err == nil || errors.Is(err, ErrSignatureFile) || !strings.Contains(err.Error(), "has 0 valid (no signature file") || len(ref.Approvals) != 0 {
		t.Fatalf("unsigned: %+v %v", ref, err)
	}
	signPlan(t, planFile, alice, "read it")
	ref, err = pol.PlanRef(planFile, data, "sha256:h", now)
	if err == nil || !strings.HasPrefix(err.Error(), SigFile(planFile)+": the plan needs 2 approvals") || len(ref.Approvals) != 1 || ref.Approvals[0].Principal != "alice" || ref.Approvals[0].Reason != "read it" {
		t.Fatalf("one signature: %+v %v", ref, err)
	}
	signPlan(t, planFile, bob, "")
	ref, err = pol.PlanRef(planFile, data, "sha256:h", now)
	if err != nil || len(ref.Approvals) != 2 || ref.Approvals[1].Principal != "bob" || ref.Approvals[0].SignedAt == nil || !ref.Approvals[0].SignedAt.Equal(now) {
		t.Fatalf("two signatures: %+v %v", ref, err)
	}
	// A signature file that cannot be read is told apart from signatures
	// that do not count.
	other := filepath.Join(dir, "other.json")
	if err := os.Mkdir(SigFile(other), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := pol.PlanRef(other, data, "sha256:h", now); !errors.Is(err, ErrSignatureFile) {
		t.Fatalf("unreadable signature file: %v", err)
	}

	// A signature file that is a symbolic link: followed for the
	// operator's own path (apply PLAN), refused for a plan dropped into
	// serve's approved directory (DroppedPlanRef), with the same plan.
	linked := filepath.Join(dir, "linked.json")
	if err := os.Symlink(SigFile(planFile), SigFile(linked)); err != nil {
		t.Fatal(err)
	}
	if ref, err := pol.PlanRef(linked, data, "sha256:h", now); err != nil || len(ref.Approvals) != 2 {
		t.Fatalf("PlanRef through a link: %+v %v", ref, err)
	}
	ref, err = pol.DroppedPlanRef(linked, data, "sha256:h", now)
	if !errors.Is(err, ErrSignatureFile) || !strings.Contains(err.Error(), SigFile(linked)+" is a symbolic link, not a regular file: refused") || len(ref.Approvals) != 0 {
		t.Fatalf("DroppedPlanRef through a link: %+v %v", ref, err)
	}
	if ref, err := pol.DroppedPlanRef(planFile, data, "sha256:h", now); err != nil || len(ref.Approvals) != 2 {
		t.Fatalf("DroppedPlanRef of a regular signature file: %+v %v", ref, err)
	}
}

// Load names the config key of the file that does not load.
func TestLoadNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	alice := newReviewer(t, "alice", "ed25519")
	signers := writeFile(t, dir, "allowed_signers", "alice "+alice.authKey+"\n")
	if _, err := Load(filepath.Join(dir, "missing"), "", 2); err == nil || !strings.HasPrefix(err.Error(), "approvals.allowedSignersFile: ") {
		t.Errorf("missing allowed signers: %v", err)
	}
	if _, err := Load(signers, filepath.Join(dir, "missing"), 2); err == nil || !strings.HasPrefix(err.Error(), "approvals.revokedKeysFile: ") {
		t.Errorf("missing revoked keys: %v", err)
	}
	revoked := writeFile(t, dir, "revoked", alice.authKey+"\n")
	pol, err := Load(signers, revoked, 1)
	if err != nil || pol.Required != 1 || !pol.Revoked.Revoked(alice.signer.PublicKey()) {
		t.Fatalf("Load: %+v %v", pol, err)
	}
}
