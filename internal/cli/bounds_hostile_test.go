package cli

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// TestHostileClientSecretDevZero: tenant.clientSecretFile: /dev/zero was read
// forever (and into memory). plan, apply and serve refuse it at once, before
// anything is sent to the tenant, saying what the file is.
func TestHostileClientSecretDevZero(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	t.Setenv("PATJANITOR_CLIENT_SECRET", "")
	// The tenant section newWF wrote, with the secret file in it.
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.cfgPath, []byte(strings.Replace(string(cfg), "tenant:\n", "tenant:\n  clientSecretFile: /dev/zero\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"plan"}, {"apply", "--auto-approve"}, {"serve", "--web.listen-address", "127.0.0.1:0"}} {
		done := make(chan struct{})
		var code int
		var stderr string
		go func() {
			defer close(done)
			code, _, stderr = e.run(nil, args...)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%v with clientSecretFile /dev/zero did not return", args)
		}
		if code != 1 || !strings.Contains(stderr, "secret file /dev/zero is a device, not a regular file") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	if reqs := e.sim.Requests(); len(reqs) != 0 {
		t.Errorf("the tenant got %d requests, want none (first: %s %s)", len(reqs), reqs[0].Method, reqs[0].Path)
	}
	if !e.present("stale-1") {
		t.Error("stale-1 was deleted")
	}
}
