package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	unitPath       = "systemd/patjanitor.service"
	envExamplePath = "systemd/patjanitor.env.example"
	unitBinary     = "/usr/local/bin/patjanitor"
)

// unit is a parsed systemd unit file: section -> key -> values in order (a
// key may repeat, e.g. SystemCallFilter).
type unit map[string]map[string][]string

// parseUnit reads the systemd.syntax(7) subset units use: [Section] headers,
// Key=Value lines, # and ; comments, and backslash continuation lines.
func parseUnit(data []byte) (unit, error) {
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	lineNo := 0
	var pending string
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if pending != "" {
			line = pending + " " + strings.TrimSpace(line)
			pending = ""
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			pending = strings.TrimSuffix(trimmed, `\`)
			continue
		}
		if strings.HasPrefix(trimmed, "[") {
			if !strings.HasSuffix(trimmed, "]") {
				return nil, fmt.Errorf("line %d: bad section header %q", lineNo, trimmed)
			}
			section = trimmed[1 : len(trimmed)-1]
			if _, dup := u[section]; dup {
				return nil, fmt.Errorf("line %d: section [%s] repeated", lineNo, section)
			}
			u[section] = map[string][]string{}
			continue
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: %q before any section", lineNo, trimmed)
		}
		k, v, ok := strings.Cut(trimmed, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not Key=Value", lineNo, trimmed)
		}
		k = strings.TrimSpace(k)
		u[section][k] = append(u[section][k], strings.Join(strings.Fields(v), " "))
	}
	if pending != "" {
		return nil, fmt.Errorf("the file ends in a continuation line")
	}
	return u, sc.Err()
}

// one returns the single value of key, failing when it is absent or repeated.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	vs, ok := u[section][key]
	if !ok {
		t.Errorf("[%s] %s is missing", section, key)
		return ""
	}
	if len(vs) != 1 {
		t.Errorf("[%s] %s is set %d times", section, key, len(vs))
	}
	return vs[len(vs)-1]
}

func loadUnit(t *testing.T) unit {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(data)
	if err != nil {
		t.Fatalf("%s: %v", unitPath, err)
	}
	return u
}

func TestSystemdUnitHardening(t *testing.T) {
	u := loadUnit(t)
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Errorf("section [%s] missing", s)
		}
	}
	want := map[string]string{
		"DynamicUser":             "yes",
		"StateDirectory":          "patjanitor",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"NoNewPrivileges":         "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"SystemCallArchitectures": "native",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"ProtectControlGroups":    "yes",
		"ProtectClock":            "yes",
		"ProtectHostname":         "yes",
		"RestrictNamespaces":      "yes",
		"RestrictRealtime":        "yes",
		"RestrictSUIDSGID":        "yes",
		"UMask":                   "0077",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"EnvironmentFile":         "/etc/patjanitor/env",
		"Restart":                 "on-failure",
		"Type":                    "exec",
	}
	for k, v := range want {
		if got := u.one(t, "Service", k); got != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	if f := u["Service"]["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("SystemCallFilter %q: the first must allow @system-service", f)
	}
	if u["Service"]["User"] != nil {
		t.Error("User= with DynamicUser=yes: pick one")
	}
	if got := u.one(t, "Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("WantedBy=%q", got)
	}

	pre := strings.Fields(u.one(t, "Service", "ExecStartPre"))
	if len(pre) < 2 || pre[0] != unitBinary || pre[1] != "validate" || flagValue(pre, "--config") != configPath {
		t.Errorf("ExecStartPre %q: want %s validate --config %s", pre, unitBinary, configPath)
	}
	start := strings.Fields(u.one(t, "Service", "ExecStart"))
	if len(start) < 2 || start[0] != unitBinary || start[1] != "serve" {
		t.Fatalf("ExecStart %q: want %s serve ...", start, unitBinary)
	}
	if got := flagValue(start, "--state-dir"); got != "/var/lib/"+u.one(t, "Service", "StateDirectory") {
		t.Errorf("--state-dir %q is not the StateDirectory", got)
	}
	if got := flagValue(start, "--config"); got != configPath {
		t.Errorf("--config %q, want %s", got, configPath)
	}
	if slices.Contains(start, "--dry-run") {
		t.Error("the unit runs --dry-run; policy modes decide")
	}
	// systemd's SIGKILL must come after serve's own shutdown bound.
	st, err := time.ParseDuration(flagValue(start, "--shutdown-timeout"))
	if err != nil {
		t.Fatalf("ExecStart --shutdown-timeout: %v", err)
	}
	stop, err := time.ParseDuration(u.one(t, "Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if stop <= st || stop > st+30*time.Second {
		t.Errorf("TimeoutStopSec %v must be a little longer than --shutdown-timeout %v", stop, st)
	}
}

func TestSystemdEnvExampleIsFake(t *testing.T) {
	data, err := os.ReadFile(envExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
			t.Errorf("line %d: %q is not KEY=value", i+1, line)
			continue
		}
		keys[k] = v
	}
	if _, ok := keys["PATJANITOR_CLIENT_SECRET"]; !ok {
		t.Error("the example sets no PATJANITOR_CLIENT_SECRET")
	}
	for k, v := range keys {
		if strings.Contains(k, "SECRET") && !strings.Contains(v, "FAKE") {
			t.Errorf("%s=%q does not look obviously fake", k, v)
		}
	}
}

func TestUnitParser(t *testing.T) {
	u, err := parseUnit([]byte("[Service]\n# c\nExecStart=/x a \\\n   b\nA=1\nA=2\nB=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := u["Service"]["ExecStart"]; !slices.Equal(got, []string{"/x a b"}) {
		t.Errorf("continuation: %q", got)
	}
	if got := u["Service"]["A"]; !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("repeated key: %q", got)
	}
	if got, ok := u["Service"]["B"]; !ok || got[0] != "" {
		t.Errorf("empty value: %q %v", got, ok)
	}
	for _, bad := range []string{"A=1\n", "[Service]\nnot a directive\n", "[S]\nA=1 \\\n", "[S]\n[S]\n"} {
		if _, err := parseUnit([]byte(bad)); err == nil {
			t.Errorf("parseUnit(%q) accepted it", bad)
		}
	}
}

// systemd-analyze verify checks every directive's name and value. It needs the
// executables to exist, so the test verifies a copy whose binary path points at
// an executable that exists (this test binary). systemd-analyze reports bad
// values as warnings with exit status 0, so any output fails the test.
func TestSystemdAnalyzeVerify(t *testing.T) {
	t.Parallel() // runs an external tool for seconds; overlap it with the rest
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not on PATH; the unit is still checked by TestSystemdUnitHardening")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	verify := func(name string, content []byte) ([]byte, error) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sa, "verify", "--man=no", p)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	// First make sure systemd-analyze can verify anything here (it cannot in
	// some minimal containers).
	probe := fmt.Sprintf("[Service]\nType=exec\nExecStart=%s\n", self)
	if out, err := verify("probe.service", []byte(probe)); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Skipf("systemd-analyze cannot verify units in this environment (%v): %s", err, out)
	}
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	out, err := verify("patjanitor.service", bytes.ReplaceAll(data, []byte(unitBinary), []byte(self)))
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
	// And it does catch mistakes: a bad value must produce output.
	bad := bytes.Replace(bytes.ReplaceAll(data, []byte(unitBinary), []byte(self)), []byte("ProtectSystem=strict"), []byte("ProtectSystem=bogus"), 1)
	if out, _ := verify("bad.service", bad); len(bytes.TrimSpace(out)) == 0 {
		t.Fatal("systemd-analyze verify accepted ProtectSystem=bogus: the check above proves nothing")
	}
}
