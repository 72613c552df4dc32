package plandir

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/plan"
)

func newDir(t *testing.T) Dir {
	t.Helper()
	d := Dir{Root: filepath.Join(t.TempDir(), "plans")}
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	return d
}

func sealedPlan(t *testing.T, runID string) []byte {
	t.Helper()
	p := &plan.Plan{Version: plan.Version, Tenant: "http://127.0.0.1:1", APIVersion: "v3",
		GeneratedAt: time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC), RunID: runID}
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := plan.Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// POST /approve's decision: a damaged plan, or one without enough valid
// signatures, is refused and nothing is stored; an approved one is stored
// in approved/ with its signatures, under its run id, once.
func TestSubmit(t *testing.T) {
	d := newDir(t)
	now := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	as, err := approval.ParseAllowedSigners("allowed_signers", []byte("alice "+string(ssh.MarshalAuthorizedKey(key.PublicKey()))))
	if err != nil {
		t.Fatal(err)
	}
	pol := &approval.Policy{Signers: as, Required: 1}
	data := sealedPlan(t, "20261205T030000Z-aa")
	sig, err := approval.Sign(data, key)
	if err != nil {
		t.Fatal(err)
	}
	sigData := sshsig.Armor(sig)

	edited := bytes.Replace(data, []byte("127.0.0.1:1"), []byte("127.0.0.1:2"), 1)
	for name, c := range map[string]struct {
		plan, sig []byte
		want      string
	}{
		"not a plan":   {[]byte("{"), sigData, "plan: "},
		"edited":       {edited, sigData, "does not match its planHash"},
		"unsigned":     {data, nil, "needs 1 approvals by distinct principals and has 0 valid"},
		"not a sig":    {data, []byte("hello\n"), "unexpected text outside a signature"},
		"another plan": {sealedPlan(t, "20261205T030000Z-bb"), sigData, "does not verify over this plan file"},
	} {
		if _, _, err := d.Submit(pol, c.plan, c.sig, now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	if files, _ := os.ReadDir(filepath.Join(d.Root, Approved)); len(files) != 0 {
		t.Fatalf("a refused submission stored %d files", len(files))
	}

	path, p, err := d.Submit(pol, data, sigData, now)
	if err != nil || path != filepath.Join(d.Root, Approved, "20261205T030000Z-aa.json") || p.RunID != "20261205T030000Z-aa" {
		t.Fatalf("Submit = %s, %v", path, err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Error("the stored plan is not the submitted bytes")
	}
	if got, _ := os.ReadFile(approval.SigFile(path)); !bytes.Equal(got, sigData) {
		t.Error("the stored signatures are not the submitted ones")
	}
	if _, _, err := d.Submit(pol, data, sigData, now); err == nil || !strings.Contains(err.Error(), "already waiting") {
		t.Errorf("the same plan submitted twice: %v", err)
	}
}

// Pending plans older than the maximum age go (nobody can apply them any
// more); the others are counted.
func TestPrune(t *testing.T) {
	d := newDir(t)
	now := time.Now()
	for name, age := range map[string]time.Duration{"old.json": 25 * time.Hour, "new.json": time.Hour, "x.txt": 48 * time.Hour} {
		f := filepath.Join(d.Root, Pending, name)
		if err := os.WriteFile(f, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := d.Prune(now, 24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 waiting", n, err)
	}
	for name, want := range map[string]bool{"old.json": false, "new.json": true, "x.txt": true} {
		if _, err := os.Stat(filepath.Join(d.Root, Pending, name)); (err == nil) != want {
			t.Errorf("%s present: %v, want %v", name, err == nil, want)
		}
	}
}

// A plan is judged, and announced, once its signature file is there; the
// watch announces each plan once, and again when it is replaced.
func TestSignedPlansAndWatch(t *testing.T) {
	d := newDir(t)
	put := func(name string, mtime time.Time) string {
		f := filepath.Join(d.Root, Approved, name)
		if err := os.WriteFile(f, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return f
	}
	t1 := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	a, b := put("a.json", t1), put("b.json", t1)
	if err := os.WriteFile(approval.SigFile(a), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w := d.Watch()
	for i, want := range [][]string{{a}, nil} {
		if got, err := d.SignedPlans(); err != nil || strings.Join(got, ",") != a {
			t.Fatalf("SignedPlans = %v, %v; want only the signed plan", got, err)
		}
		if got, err := w.New(); err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("poll %d: New = %v, %v; want %v", i, got, err, want)
		}
	}
	if err := os.WriteFile(approval.SigFile(b), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w.Saw(b) // stored by Submit, announced by its caller
	if got, _ := w.New(); len(got) != 0 {
		t.Fatalf("New = %v after Saw", got)
	}
	put("a.json", t1.Add(time.Minute))
	if got, _ := w.New(); strings.Join(got, ",") != a {
		t.Fatalf("New = %v, want the replaced plan", got)
	}

	// A signature file that is a symbolic link, also one that leads
	// nowhere, is there: the plan is judged (and refused for it, see
	// approval.ReadDroppedSigFile) instead of waiting for good.
	c := put("c.json", t1)
	if err := os.Symlink(filepath.Join(d.Root, "nowhere"), approval.SigFile(c)); err != nil {
		t.Fatal(err)
	}
	if got, err := d.SignedPlans(); err != nil || strings.Join(got, ",") != strings.Join([]string{a, b, c}, ",") {
		t.Fatalf("SignedPlans = %v, %v; want the plan whose .sig is a dangling link too", got, err)
	}
	if got, _ := w.New(); strings.Join(got, ",") != c {
		t.Fatalf("New = %v, want the plan whose .sig is a dangling link", got)
	}
}

// The watch of a daemon that runs for years sees a plan per approval, each
// settled (moved out of approved/) after it was applied. It kept one entry
// per plan it ever saw; it forgets a plan once it is gone, so its size
// follows approved/, not the daemon's age. A plan settled and then dropped
// in again under the same name (a reviewer copying it back with its
// modification time kept) is another file, to be judged again: it is
// announced again.
func TestWatchForgetsSettledPlans(t *testing.T) {
	d := newDir(t)
	w := d.Watch()
	mtime := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	drop := func(name string) string {
		f := filepath.Join(d.Root, Approved, name)
		for _, p := range []string{approval.SigFile(f), f} {
			if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	const n = 50
	for i := range n {
		f := drop(fmt.Sprintf("run-%03d.json", i))
		if got, err := w.New(); err != nil || strings.Join(got, ",") != f {
			t.Fatalf("plan %d: New = %v, %v; want it announced", i, got, err)
		}
		if err := d.Settle(f, Applied, "applied"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := w.New(); err != nil || len(got) != 0 {
		t.Fatalf("New = %v, %v with approved/ empty", got, err)
	}
	w.mu.Lock()
	size := len(w.seen)
	w.mu.Unlock()
	if size != 0 {
		t.Errorf("the watch remembers %d plans after %d came and went, want 0", size, n)
	}

	again := drop("run-007.json")
	if got, err := w.New(); err != nil || strings.Join(got, ",") != again {
		t.Fatalf("New = %v, %v; want the plan dropped again announced again", got, err)
	}
	if got, _ := w.New(); len(got) != 0 {
		t.Fatalf("New = %v; want the plan announced once", got)
	}
}
