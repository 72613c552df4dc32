package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkPlanInProcessAgainstRunningSim runs the plan command inside the
// test process against a simulator already running (PATJANITOR_TENANT_URL
// and credentials in the environment, e.g. from `patjanitor sim --tokens
// 1000000 --print-env`), with tenant.maxListingBytes raised as in
// BenchmarkPlanGrowth, so that a 1M-token plan can be profiled without
// starting a simulator per profile:
//
//	eval $(patjanitor sim --tokens 1000000 --seed 1 --rate-limit -1 --print-env &)
//	go test -run '^$' -bench PlanInProcessAgainstRunningSim -benchtime 3x -cpuprofile cpu.out ./internal/cli
func BenchmarkPlanInProcessAgainstRunningSim(b *testing.B) {
	if os.Getenv("PATJANITOR_TENANT_URL") == "" {
		b.Skip("needs a running simulator's PATJANITOR_* environment")
	}
	shipped, err := os.ReadFile("../../policies.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(b.TempDir(), "policies.yaml")
	body := strings.Replace(string(shipped), "\n  rateLimit:", "\n  maxListingBytes: 512MiB\n  rateLimit:", 1)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	plan := func() {
		var stderr strings.Builder
		code := Main(b.Context(), []string{"-c", cfg, "plan", "-o", "json", "--out", os.DevNull},
			Streams{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
		if code != 0 {
			b.Fatalf("plan exited %d\n%s", code, stderr.String())
		}
	}
	plan() // warm the simulator's listing cache
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		plan()
	}
}
