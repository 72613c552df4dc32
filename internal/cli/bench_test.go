package cli

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// BenchmarkPlan100kTokens plans the shipped policies.yaml against a simulated
// tenant of 100,000 tokens running in a separate process (`patjanitor sim`),
// end to end: `patjanitor plan -o json --out /dev/null` as a subprocess, timed
// from start to exit, with its peak RSS from rusage. Targets: < 0.7 s,
// < 50 MB, without a memory limit (GOMEMLIMIT is not passed on).
//
//	go test -run '^$' -bench 'BenchmarkPlan100kTokens$' -benchtime 5x ./internal/cli
func BenchmarkPlan100kTokens(b *testing.B) {
	bin := patjanitorBin(b)
	policies, err := filepath.Abs("../../policies.yaml")
	if err != nil {
		b.Fatal(err)
	}
	benchPlanProcess(b, bin, policies, startSimProcess(b, bin, 100000))
}

// BenchmarkPlanGrowth is BenchmarkPlan100kTokens at 10,000, 100,000 and
// 1,000,000 tokens (a 340 MB listing), each against its own simulator
// process, with tenant.maxListingBytes raised to 512MiB, to show how time
// and memory grow with the tenant. Targets: 1M under 10x the 100k time and
// under 250 MB. The 1M simulator takes a minute to start and about 1.5 GB,
// so 1M runs only when the -bench pattern names it or
// PATJANITOR_BENCH_1M=1:
//
//	go test -run '^$' -bench 'BenchmarkPlanGrowth/(10k|100k)$' -benchtime 5x ./internal/cli
//	go test -run '^$' -bench 'BenchmarkPlanGrowth/1M$' -benchtime 3x -timeout 30m ./internal/cli
func BenchmarkPlanGrowth(b *testing.B) {
	bin := patjanitorBin(b)
	cfg := growthConfig(b)
	pattern := ""
	if f := flag.Lookup("test.bench"); f != nil {
		pattern = f.Value.String()
	}
	for _, size := range []struct {
		name string
		n    int
	}{{"10k", 10_000}, {"100k", 100_000}, {"1M", 1_000_000}} {
		b.Run(size.name, func(b *testing.B) {
			if size.n >= 1_000_000 && os.Getenv("PATJANITOR_BENCH_1M") == "" && !strings.Contains(pattern, "1M") {
				b.Skip("1M tokens only when the -bench pattern names 1M or PATJANITOR_BENCH_1M=1")
			}
			benchPlanProcess(b, bin, cfg, startSimProcess(b, bin, size.n))
		})
	}
}

// benchPlanProcess times `patjanitor -c cfg plan -o json --out /dev/null`
// as a subprocess against the simulator env names: wall time, CPU time and
// peak RSS per plan.
func benchPlanProcess(b *testing.B, bin, cfg string, env []string) {
	b.Helper()
	plan := func() (time.Duration, time.Duration, int64) {
		cmd := exec.Command(bin, "-c", cfg, "plan", "-o", "json", "--out", os.DevNull)
		// The collector's defaults: no memory limit, no GOGC of the caller's.
		cmd.Env = slices.DeleteFunc(append(cleanEnv(), env...), func(kv string) bool {
			return strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "GOGC=")
		})
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("plan: %v\n%s", err, stderr.String())
		}
		took := time.Since(start)
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		return took, cpu, ru.Maxrss * 1024 // Linux reports KiB
	}
	plan() // the simulator encodes its listing lazily; warm it up

	var total, cpu time.Duration
	var peak int64
	b.ResetTimer()
	for range b.N {
		took, c, rss := plan()
		total += took
		cpu += c
		peak = max(peak, rss)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/plan")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/plan")
	b.ReportMetric(float64(peak)/(1<<20), "MB-peak-rss")
}

// BenchmarkPlan100kTokensInProcess is BenchmarkPlan100kTokens with the plan
// command run inside the test process (the simulator still in its own), so
// that -cpuprofile and -memprofile see the client's side:
//
//	go test -run '^$' -bench Plan100kTokensInProcess -benchtime 3x -cpuprofile cpu.out -memprofile mem.out ./internal/cli
func BenchmarkPlan100kTokensInProcess(b *testing.B) {
	bin := patjanitorBin(b)
	for _, kv := range startSimProcess(b, bin, 100000) {
		k, v, _ := strings.Cut(kv, "=")
		b.Setenv(k, v)
	}
	benchPlanInProcess(b, "../../policies.yaml")
}

// benchPlanInProcess times `plan -o json --out /dev/null` with cfg inside
// the test process, against the simulator the environment names, after
// one plan that warms the simulator's listing cache.
func benchPlanInProcess(b *testing.B, cfg string) {
	b.Helper()
	plan := func() {
		var stderr strings.Builder
		code := Main(b.Context(), []string{"-c", cfg, "plan", "-o", "json", "--out", os.DevNull},
			Streams{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
		if code != 0 {
			b.Fatalf("plan exited %d\n%s", code, stderr.String())
		}
	}
	plan()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		plan()
	}
}

// growthConfig writes the shipped policies.yaml with tenant.maxListingBytes
// raised to 512MiB (a 1,000,000-token listing is 340 MB) and returns its path.
func growthConfig(b *testing.B) string {
	b.Helper()
	shipped, err := os.ReadFile("../../policies.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(b.TempDir(), "policies.yaml")
	body := strings.Replace(string(shipped), "\n  rateLimit:", "\n  maxListingBytes: 512MiB\n  rateLimit:", 1)
	if body == string(shipped) {
		b.Fatal("policies.yaml has no tenant.rateLimit line to put maxListingBytes before")
	}
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	return cfg
}

// startSimProcess runs `patjanitor sim` with n seeded tokens and no rate limit
// as a subprocess (stopped when the benchmark ends) and returns its
// PATJANITOR_* environment (KEY=value).
func startSimProcess(b *testing.B, bin string, n int) []string {
	b.Helper()
	sim := exec.Command(bin, "sim", "--tokens", strconv.Itoa(n), "--seed", "1", "--rate-limit", "-1",
		"--listen", "127.0.0.1:0", "--print-env")
	sim.Env = cleanEnv()
	out, err := sim.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = sim.Process.Signal(os.Interrupt)
		_ = sim.Wait()
	})
	var env []string
	sc := bufio.NewScanner(out)
	for range 3 {
		if !sc.Scan() {
			b.Fatalf("sim printed no credentials: %v", sc.Err())
		}
		env = append(env, strings.TrimPrefix(sc.Text(), "export "))
	}
	return env
}

// BenchmarkApply1000DeletesRateLimited executes 1,000 deletes against a
// simulated tenant that allows 100 requests per second (the tenant's 100 per
// 10 s with a tenth of the window, to keep the run short), with the client
// configured to the same budget. It reports the wall time over the fastest
// time the tenant allows (requests / allowed rate; requests = listing calls +
// actions, the token endpoint not being rate limited) and the 429s seen.
// Target: a ratio within 1.05, no 429.
//
//	go test -run '^$' -bench BenchmarkApply1000DeletesRateLimited -benchtime 1x ./internal/cli
func BenchmarkApply1000DeletesRateLimited(b *testing.B) {
	const (
		n      = 1000
		rate   = 100
		window = time.Second
	)
	bin := patjanitorBin(b)
	var ratios []float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		sim := idnsim.New(idnsim.Options{RateLimit: rate, RateWindow: window})
		srv := httptest.NewServer(sim)
		now := time.Now().UTC()
		lu := now.Add(-200 * wfDay)
		for i := range n {
			sim.Add(pat.Token{ID: fmt.Sprintf("t%04d", i), Name: fmt.Sprintf("t%04d", i), Owner: pat.Owner{ID: fmt.Sprintf("o%d", i/10)},
				Created: now.Add(-400 * wfDay), LastUsed: &lu, Scope: pat.ScopesOf("idn:sources:read")}, "")
		}
		dir := b.TempDir()
		cfg := filepath.Join(dir, "policies.yaml")
		body := fmt.Sprintf(`tenant:
  url: %s
  clientId: %s
  rateLimit: {requests: %d, per: %s}
limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`, srv.URL, sim.Admin().ClientID, rate, window)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, "-c", cfg, "--state-dir", filepath.Join(dir, "state"), "apply", "--auto-approve")
		cmd.Env = cleanEnv("PATJANITOR_CLIENT_SECRET=" + sim.Admin().ClientSecret)
		b.StartTimer()
		start := time.Now()
		outb, err := cmd.CombinedOutput()
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatalf("apply: %v\n%s", err, outb)
		}
		reqs := sim.Requests()
		api, limited, deleted := 0, 0, 0
		for _, r := range reqs {
			if r.Operation == idnsim.OpOAuthToken {
				continue
			}
			api++
			if r.Status == 429 {
				limited++
			}
			if r.Operation == idnsim.OpDeleteToken && r.Status == 204 {
				deleted++
			}
		}
		srv.Close()
		if deleted != n {
			b.Fatalf("deleted %d of %d", deleted, n)
		}
		ideal := time.Duration(float64(api) / rate * float64(window))
		ratio := took.Seconds() / ideal.Seconds()
		ratios = append(ratios, ratio)
		b.Logf("%d API requests (%d 429) in %s; requests/rate = %s; ratio %.3f", api, limited, took.Round(time.Millisecond), ideal, ratio)
		b.ReportMetric(float64(limited), "429s")
		b.StartTimer()
	}
	sum := 0.0
	for _, r := range ratios {
		sum += r
	}
	b.ReportMetric(sum/float64(len(ratios)), "wall/ideal")
}
