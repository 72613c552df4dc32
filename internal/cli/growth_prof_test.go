package cli

import (
	"os"
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
	benchPlanInProcess(b, growthConfig(b))
}
