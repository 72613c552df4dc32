package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// serveProc is `patjanitor serve` running as a child process.
type serveProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	exited chan struct{}
	err    error // Wait's, after exited

	mu    sync.Mutex
	lines []string // stderr (the JSON log), line by line
}

func startServeProc(t *testing.T, bin, cfgPath, stateDir string, args ...string) *serveProc {
	t.Helper()
	argv := append([]string{"serve", "-c", cfgPath, "--state-dir", stateDir,
		"--web.listen-address", "127.0.0.1:0", "--log-format", "json", "--schedule.min-interval", "1s"}, args...)
	cmd := exec.Command(bin, argv...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATJANITOR_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProc{t: t, cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			var rec struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				select {
				case addr <- rec.Address:
				default:
				}
			}
		}
	}()
	go func() {
		<-logDone // Wait closes the pipe; read it to the end first
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", strings.Join(p.log(), "\n"))
		}
	})
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-p.exited:
		t.Fatalf("serve exited at start: %v\n%s", p.err, strings.Join(p.log(), "\n"))
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not log its address\n%s", strings.Join(p.log(), "\n"))
	}
	return p
}

func (p *serveProc) log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

func (p *serveProc) logged(msg string) bool {
	for _, l := range p.log() {
		if strings.Contains(l, `"msg":"`+msg+`"`) {
			return true
		}
	}
	return false
}

func (p *serveProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits for the process and returns its exit code.
func (p *serveProc) waitExit(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("serve did not exit within %s", timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// TestServeProcess runs the built binary: reload by SIGHUP and by a change of
// the file, and SIGTERM in the middle of a run. The binary is built once.
func TestServeProcess(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("signals")
	}
	// Mostly waiting for child processes: in parallel with the other
	// subprocess tests, after the package's sequential tests. The two
	// reloads, which wait for one-second schedules, run together; the
	// other subtests stay sequential: testSIGTERM counts what reaches the
	// tenant after the signal, which a busier machine would blur.
	t.Parallel()
	bin := patjanitorBin(t)

	t.Run("reload", func(t *testing.T) {
		t.Run("by SIGHUP", func(t *testing.T) {
			t.Parallel()
			testReload(t, bin, func(p *serveProc) { p.signal(syscall.SIGHUP) }, "--config.auto-reload-interval", "0", "--run-on-start")
		})
		t.Run("by file change", func(t *testing.T) {
			t.Parallel()
			testReload(t, bin, func(*serveProc) {}, "--config.auto-reload-interval", "100ms", "--run-on-start")
		})
	})
	t.Run("SIGTERM during a run", func(t *testing.T) { testSIGTERM(t, bin) })
	t.Run("SIGKILL, then restart", func(t *testing.T) { testCrashRestart(t, bin) })
	t.Run("idle", func(t *testing.T) { testIdle(t, bin) })
}

// testReload: a new policy takes effect (its counters appear), a broken file
// is refused (the reload metric says 0, the success timestamp stays) and the
// old policies keep running. trigger follows each rewrite of the file. The
// process runs on the wall clock: the first run is the start-up run, the
// later ones wait for a second's schedule.
func testReload(t *testing.T, bin string, trigger func(*serveProc), args ...string) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	e.addTokens("one", 2, 0)
	e.addTokens("two", 3, 0)
	p1 := servePolicy("p-one", "report", "", "one", true)
	p2 := servePolicy("p-two", "report", "", "two", true)
	cfg := e.writeConfig(e.configYAML("@every 1s", p1))
	p := startServeProc(t, bin, cfg, filepath.Join(e.dir, "state"), args...)

	serveWait(t, "p-one's first run", 20*time.Second, func() bool {
		return scrape(t, p.base)[actions("p-one", "delete", "would_apply")] > 0
	})
	m := scrape(t, p.base)
	loaded := m["patjanitor_config_last_reload_success_timestamp_seconds"]
	if m["patjanitor_config_last_reload_successful"] != 1 || loaded == 0 {
		t.Fatalf("after start: reload metrics %v, %v", m["patjanitor_config_last_reload_successful"], loaded)
	}

	// A new policy takes effect.
	e.writeConfig(e.configYAML("@every 1s", p1, p2))
	trigger(p)
	serveWait(t, "p-two's counters", 20*time.Second, func() bool {
		return scrape(t, p.base)[actions("p-two", "delete", "would_apply")] > 0
	})
	m = scrape(t, p.base)
	reloaded := m["patjanitor_config_last_reload_success_timestamp_seconds"]
	if m["patjanitor_config_last_reload_successful"] != 1 || reloaded <= loaded {
		t.Errorf("after the reload: successful %v, timestamp %v (was %v)", m["patjanitor_config_last_reload_successful"], reloaded, loaded)
	}
	if !p.logged("config reloaded") {
		t.Errorf("no 'config reloaded' log line")
	}

	// A broken file is refused; both policies keep running.
	e.writeConfig(e.configYAML("@every 1s", p1, p2) + "  - name: Not A Valid Name\n")
	trigger(p)
	serveWait(t, "the refused reload", 20*time.Second, func() bool {
		return scrape(t, p.base)["patjanitor_config_last_reload_successful"] == 0
	})
	m = scrape(t, p.base)
	if got := m["patjanitor_config_last_reload_success_timestamp_seconds"]; got != reloaded {
		t.Errorf("a refused reload moved the success timestamp: %v, was %v", got, reloaded)
	}
	one, two := m[actions("p-one", "delete", "would_apply")], m[actions("p-two", "delete", "would_apply")]
	serveWait(t, "both policies running after the refused reload", 20*time.Second, func() bool {
		m := scrape(t, p.base)
		return m[actions("p-one", "delete", "would_apply")] > one && m[actions("p-two", "delete", "would_apply")] > two
	})
	if !p.logged("config reload failed; keeping the running config") {
		t.Errorf("the refused reload was not logged")
	}

	p.signal(syscall.SIGTERM)
	if code := p.waitExit(20 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	if muts := idnsim.Mutations(e.sim.Requests()); len(muts) != 0 {
		t.Errorf("report-mode policies sent %d mutations", len(muts))
	}
	p.assertNoSecret(e.sim.Admin().ClientSecret)
}

// assertNoSecret fails if the log holds the secret (invariant 7).
func (p *serveProc) assertNoSecret(secret string) {
	p.t.Helper()
	for _, l := range p.log() {
		if strings.Contains(l, secret) {
			p.t.Fatalf("the log holds the client secret: %s", l)
		}
	}
}

// testSIGTERM: SIGTERM while a run deletes many tokens against a slow tenant.
// serve exits 0; the journal verifies and every intent has its outcome; the
// mutations that reached the tenant after the signal are at most the ones in
// flight (the engine's worker count), and the run did stop early.
func testSIGTERM(t *testing.T, bin string) {
	const workers = 4 // janitor.DefaultWorkers: the most mutations in flight
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Latency: 150 * time.Millisecond})
	stale := e.addTokens("stale", 80, 200*24*time.Hour)
	cfg := e.writeConfig(e.configYAML("@daily", servePolicy("stale-delete", "enforce", "", "stale", false)))
	state := filepath.Join(e.dir, "state")
	p := startServeProc(t, bin, cfg, state, "--run-on-start", "--shutdown-timeout", "15s")

	serveWait(t, "deletions under way", 20*time.Second, func() bool {
		return len(idnsim.ByOperation(e.sim.Requests(), idnsim.OpDeleteToken)) >= 8
	})
	signalled := time.Now()
	p.signal(syscall.SIGTERM)
	code := p.waitExit(20 * time.Second)
	took := time.Since(signalled)
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}

	deletes := idnsim.ByOperation(e.sim.Requests(), idnsim.OpDeleteToken)
	after := 0
	for _, r := range deletes {
		if r.Time.After(signalled) {
			after++
		}
	}
	if after > workers {
		t.Errorf("%d deletes reached the tenant after SIGTERM, want at most the %d in flight", after, workers)
	}
	if len(deletes) >= len(stale) {
		t.Errorf("all %d tokens were deleted: the run did not stop", len(deletes))
	}
	kinds := journalKinds(t, filepath.Join(state, JournalFile))
	if kinds[audit.KindIntent] != len(deletes) || kinds[audit.KindOutcome] != len(deletes) {
		t.Errorf("journal: %d intents, %d outcomes for %d deletes sent: every mutation is journaled before and after",
			kinds[audit.KindIntent], kinds[audit.KindOutcome], len(deletes))
	}
	if kinds[audit.KindRunEnd] != 1 {
		t.Errorf("journal: %d run-end records, want the stopped run's", kinds[audit.KindRunEnd])
	}
	if !p.logged("stopped") {
		t.Errorf("no 'stopped' log line")
	}
	p.assertNoSecret(e.sim.Admin().ClientSecret)
	t.Logf("SIGTERM after %d deletes: %d arrived after the signal, exit after %s", len(deletes)-after, after, took.Round(time.Millisecond))
}

// testCrashRestart: serve is killed (SIGKILL) in the middle of its deletions,
// which can leave an intent without its outcome; the next serve's first run
// resolves the open intents against a fresh listing, finishes the work, and
// the journal verifies with nothing left open.
func testCrashRestart(t *testing.T, bin string) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	// Slow enough that the kill lands among the deletions, fast enough that
	// the restarted run finishes the rest quickly.
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Latency: 50 * time.Millisecond})
	stale := e.addTokens("stale", 40, 200*24*time.Hour)
	cfg := e.writeConfig(e.configYAML("@daily", servePolicy("stale-delete", "enforce", "", "stale", false)))
	state := filepath.Join(e.dir, "state")
	p := startServeProc(t, bin, cfg, state, "--run-on-start")
	serveWait(t, "deletions under way", 20*time.Second, func() bool {
		return len(idnsim.ByOperation(e.sim.Requests(), idnsim.OpDeleteToken)) >= 6
	})
	p.signal(syscall.SIGKILL)
	_ = p.waitExit(10 * time.Second)
	killed, err := audit.VerifyPath(filepath.Join(state, JournalFile), audit.VerifyOptions{})
	t.Logf("after SIGKILL: %d open intents (%v)", killed.PendingIntents, err)

	p2 := startServeProc(t, bin, cfg, state, "--run-on-start")
	serveWait(t, "the restarted run", 30*time.Second, func() bool {
		return scrape(t, p2.base)[series("patjanitor_runs_total", "result", "success")] >= 1
	})
	p2.signal(syscall.SIGTERM)
	if code := p2.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, tok := range e.sim.Tokens() {
		if strings.HasPrefix(tok.ID, "stale-") {
			t.Errorf("token %s survived the restarted run", tok.ID)
		}
	}
	f, err := os.Open(filepath.Join(state, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sum, err := audit.Verify(f)
	if err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	if sum.PendingIntents != 0 {
		t.Errorf("%d intents still open after the restarted run", sum.PendingIntents)
	}
	if got := len(deletedIDs(e.sim.Requests())); got < len(stale) {
		t.Errorf("%d deletes for %d tokens", got, len(stale))
	}
}

// testIdle measures an idle daemon (after a start-up run of 1,000 tokens, the
// next run a year away) over ten seconds: resident memory and CPU time from
// /proc. It runs with
// PATJANITOR_SLOW=1 (it takes ten seconds) on Linux.
func testIdle(t *testing.T, bin string) {
	if os.Getenv("PATJANITOR_SLOW") != "1" {
		t.Skip("set PATJANITOR_SLOW=1 to measure idle RSS and CPU (10 s)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	e.addTokens("stale", 1000, 200*24*time.Hour)
	cfg := e.writeConfig(e.configYAML("@yearly", servePolicy("stale-report", "report", "", "stale", false)))
	// After one run of 1,000 tokens, as a daemon is between two runs.
	p := startServeProc(t, bin, cfg, filepath.Join(e.dir, "state"), "--run-on-start")
	pid := p.cmd.Process.Pid
	serveWait(t, "the start-up run", 30*time.Second, func() bool {
		return scrape(t, p.base)[series("patjanitor_runs_total", "result", "success")] == 1
	})
	cpu0 := procCPU(t, pid)
	const window = 10 * time.Second
	time.Sleep(window) // measuring idleness is waiting, by definition
	cpu1 := procCPU(t, pid)
	rss, hwm := procStatusKB(t, pid, "VmRSS"), procStatusKB(t, pid, "VmHWM")
	p.signal(syscall.SIGTERM)
	if code := p.waitExit(10 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	cpu := cpu1 - cpu0
	t.Logf("idle serve over %s after a 1,000-token run: RSS %d KiB (peak %d KiB), CPU %s (%.3f%% of a core)",
		window, rss, hwm, cpu, 100*cpu.Seconds()/window.Seconds())
	if rss > 30*1024 {
		t.Errorf("idle RSS %d KiB, target under 30 MiB", rss)
	}
	if cpu > 100*time.Millisecond {
		t.Errorf("idle CPU %s over %s: a busy loop?", cpu, window)
	}
}

// procCPU is the user plus system CPU time of a process (/proc/PID/stat
// fields 14 and 15, in clock ticks of 1/100 s on Linux).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may contain spaces; fields after it are
	// counted from its closing parenthesis.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func procStatusKB(t *testing.T, pid int, key string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}
