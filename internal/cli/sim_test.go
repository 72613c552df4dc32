package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the command's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startSim runs `patjanitor sim args...` in-process and returns its first n
// output lines, a stop function and the exit code channel.
func startSim(t *testing.T, n int, args ...string) (lines []string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- Main(ctx, append([]string{"sim"}, args...), Streams{In: strings.NewReader(""), Out: pw, Err: stderr})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if len(lines) < n {
		cancel()
		t.Fatalf("sim printed %q; stderr: %s", lines, stderr.String())
	}
	return lines, func() int {
		cancel()
		select {
		case c := <-code:
			return c
		case <-time.After(30 * time.Second): // a hang, not a timing assumption
			t.Fatal("sim did not stop after its context was cancelled")
			return -1
		}
	}
}

func TestSimPrintEnv(t *testing.T) {
	lines, stop := startSim(t, 3, "--listen", "127.0.0.1:0", "--tokens", "5", "--seed", "3", "--print-env", "--log-level", "error")
	env := map[string]string{}
	for _, l := range lines {
		kv, ok := strings.CutPrefix(l, "export ")
		if !ok {
			t.Fatalf("not an export line: %q", l)
		}
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	base := env["PATJANITOR_TENANT_URL"]
	if !strings.HasPrefix(base, "http://127.0.0.1:") || len(env["PATJANITOR_CLIENT_ID"]) != 32 || len(env["PATJANITOR_CLIENT_SECRET"]) != 64 {
		t.Fatalf("env %v", env)
	}
	// The printed credentials log in and list the seeded tenant.
	res, err := http.PostForm(base+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {env["PATJANITOR_CLIENT_ID"]}, "client_secret": {env["PATJANITOR_CLIENT_SECRET"]}})
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(res.Body).Decode(&tr)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("login: %d %v", res.StatusCode, err)
	}
	req, _ := http.NewRequest("GET", base+"/v3/personal-access-tokens", nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var toks []map[string]any
	err = json.NewDecoder(res.Body).Decode(&toks)
	res.Body.Close()
	if err != nil || len(toks) != 6 {
		t.Fatalf("listed %d tokens (%v), want 5 seeded plus the admin PAT", len(toks), err)
	}
	if c := stop(); c != 0 {
		t.Fatalf("exit code %d", c)
	}
	// After shutdown the port is closed.
	if _, err := http.Get(base + "/__sim/admin"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestSimScenario(t *testing.T) {
	lines, stop := startSim(t, 6, "--listen", "127.0.0.1:0", "--scenario", "../idnsim/testdata/golden.yaml", "--log-level", "error")
	out := strings.Join(lines, "\n")
	for _, want := range []string{"client id:     ad000000000000000000000000000c1d", "15 tokens from ../idnsim/testdata/golden.yaml", "URL:           http://127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if c := stop(); c != 0 {
		t.Fatalf("exit code %d", c)
	}
}

// A scenario written for a past now (golden.yaml: 2026-11-26) is planned
// against as it is served: the simulator answers with the wall clock's
// Date, as a tenant does. It started its clock at the file's now, and every
// plan against it was refused for the clock ("the host is 236h ahead of the
// tenant").
func TestSimScenarioWrittenForThePastIsPlanned(t *testing.T) {
	lines, stop := startSim(t, 3, "--listen", "127.0.0.1:0", "--scenario", "../idnsim/testdata/golden.yaml", "--print-env", "--log-level", "error")
	defer stop()
	for _, l := range lines {
		k, v, _ := strings.Cut(strings.TrimPrefix(l, "export "), "=")
		t.Setenv(k, v)
	}
	code, out, errs := runMain(t, "--state-dir", t.TempDir(), "plan", "-c", "../../policies.yaml")
	if code != 0 || strings.Contains(out+errs, "maxClockSkew") || !strings.Contains(out, "population  15 tokens") {
		t.Fatalf("plan against the scenario: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

func TestSimRefusals(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:8975"}, `--listen "0.0.0.0:8975": the simulated tenant only listens on loopback addresses`},
		{[]string{"--listen", ":8975"}, `--listen ":8975": the simulated tenant only listens on loopback addresses`},
		{[]string{"--listen", "192.168.1.1:8975"}, "only listens on loopback"},
		{[]string{"--listen", "nonsense"}, `--listen "nonsense": address nonsense: missing port in address`},
		{[]string{"--scenario", "x.yaml", "--tokens", "5"}, "cannot be combined with --tokens or --seed"},
		{[]string{"--listen", "127.0.0.1:0", "--rate-limit", "0"}, "use -1 to turn the limit off"},
		{[]string{"--listen", "127.0.0.1:0", "--scenario", "does-not-exist.yaml"}, "read scenario: open does-not-exist.yaml"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // must fail before serving
			var out, errb bytes.Buffer
			code := Main(ctx, append([]string{"sim"}, tc.args...), Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
			if code != 1 || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errb.String(), tc.want)
			}
			if out.Len() != 0 {
				t.Fatalf("printed %q", out.String())
			}
		})
	}
}

func TestSimCancelledContextExitsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := Main(ctx, []string{"sim", "--listen", "127.0.0.1:0", "--tokens", "3", "--print-env", "--log-level", "error"}, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != 0 || strings.Count(out.String(), "export PATJANITOR_") != 3 {
		t.Fatalf("exit %d, out %q, err %q", code, out.String(), errb.String())
	}
}

// TestSimEnvFile: --env-file appears only once the simulator listens, holds
// the export lines with working credentials, is private (0600), and is gone
// once the simulator stops, so a script that waits for it never sources a
// dead simulator's address.
func TestSimEnvFile(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "sim.env")
	lines, stop := startSim(t, 1, "--listen", "127.0.0.1:0", "--tokens", "2", "--env-file", envFile, "--log-level", "error")
	if !strings.HasPrefix(lines[0], "patjanitor simulated tenant") {
		t.Errorf("first line %q", lines[0])
	}
	fi, err := os.Stat(envFile)
	if err != nil {
		t.Fatalf("the env file is not there once the sim printed its banner: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("env file mode %v, want 0600 (it holds the client secret)", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(envFile)
	env := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		kv, ok := strings.CutPrefix(l, "export ")
		if !ok {
			t.Fatalf("not an export line: %q", l)
		}
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	res, err := http.Get(env["PATJANITOR_TENANT_URL"] + "/__sim/admin")
	if err != nil {
		t.Fatalf("the env file's URL does not answer: %v", err)
	}
	var admin map[string]string
	_ = json.NewDecoder(res.Body).Decode(&admin)
	res.Body.Close()
	if admin["clientId"] != env["PATJANITOR_CLIENT_ID"] || admin["clientSecret"] != env["PATJANITOR_CLIENT_SECRET"] {
		t.Errorf("env file credentials %v are not the sim's %v", env, admin)
	}
	entries, _ := os.ReadDir(filepath.Dir(envFile))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the env file: %v", entries)
	}
	if c := stop(); c != 0 {
		t.Fatalf("exit code %d", c)
	}
	if _, err := os.Stat(envFile); !os.IsNotExist(err) {
		t.Errorf("env file still there after the sim stopped: %v", err)
	}
}

// TestSimPortBusy: a second sim on the port of a running one says what holds
// the port and what to do, and writes no env file (the first sim's file, if
// it shares the name, is left alone).
func TestSimPortBusy(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.env")
	lines, stop := startSim(t, 3, "--listen", "127.0.0.1:0", "--tokens", "1", "--print-env", "--env-file", first, "--log-level", "error")
	addr := strings.TrimPrefix(strings.TrimPrefix(lines[0], "export PATJANITOR_TENANT_URL="), "http://")
	defer stop()

	second := filepath.Join(dir, "second.env")
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"sim", "--listen", addr, "--env-file", second, "--log-level", "error"},
		Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	want := addr + " is already in use by another patjanitor sim"
	if code != 1 || !strings.Contains(errb.String(), want) || !strings.Contains(errb.String(), "--listen 127.0.0.1:0") {
		t.Fatalf("exit %d, stderr %q, want %q", code, errb.String(), want)
	}
	if _, err := os.Stat(second); !os.IsNotExist(err) {
		t.Errorf("the failed sim wrote its env file: %v", err)
	}
	if _, err := os.Stat(first); err != nil {
		t.Errorf("the running sim's env file was touched: %v", err)
	}

	// A port held by something else is not blamed on a sim.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // answers nothing: closes every connection
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	errb.Reset()
	code = Main(context.Background(), []string{"sim", "--listen", ln.Addr().String(), "--log-level", "error"},
		Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != 1 || !strings.Contains(errb.String(), ln.Addr().String()+" is already in use by another program") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
