package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	dockerfilePath   = "../Dockerfile"
	dockerignorePath = "../.dockerignore"
	repoRoot         = ".."
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
	Line int
}

func parseDockerfile(data []byte) ([]instruction, error) {
	var out []instruction
	sc := bufio.NewScanner(bytes.NewReader(data))
	lineNo, start := 0, 0
	var cur strings.Builder
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = lineNo
		} else if strings.HasPrefix(trimmed, "#") {
			continue // comments inside a continued instruction are dropped
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: the file ends in a continuation line", start)
	}
	return out, sc.Err()
}

func loadDockerfile(t *testing.T) []instruction {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := parseDockerfile(data)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return ins
}

func byCmd(ins []instruction, cmd string) []instruction {
	var out []instruction
	for _, i := range ins {
		if i.Cmd == cmd {
			out = append(out, i)
		}
	}
	return out
}

// goBuildLine returns the RUN instruction's command that runs go build.
func goBuildLine(t *testing.T, ins []instruction) string {
	t.Helper()
	var lines []string
	for _, i := range byCmd(ins, "RUN") {
		if strings.Contains(i.Args, "go build") {
			lines = append(lines, i.Args)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d RUN instructions run go build, want 1", len(lines))
	}
	line := lines[0]
	if strings.HasPrefix(line, "--") || strings.HasPrefix(line, "[") {
		t.Fatalf("RUN options or exec form are not handled by this test: %q", line)
	}
	return line
}

func TestDockerfileShape(t *testing.T) {
	ins := loadDockerfile(t)
	froms := byCmd(ins, "FROM")
	if len(froms) != 2 {
		t.Fatalf("%d FROM instructions, want a build and a final stage", len(froms))
	}
	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "golang:" + string(m[1]) + " AS build"; froms[0].Args != want {
		t.Errorf("build stage %q, want %q (the go.mod toolchain)", froms[0].Args, want)
	}
	if want := "gcr.io/distroless/static-debian12:nonroot"; froms[1].Args != want {
		t.Errorf("final stage %q, want %q", froms[1].Args, want)
	}
	final := ins[slicesIndex(ins, froms[1]):]
	expect := map[string]string{
		"USER":       "65532:65532",
		"VOLUME":     stateDir,
		"ENTRYPOINT": `["/usr/local/bin/patjanitor"]`,
		"COPY":       "--from=build /out/patjanitor /usr/local/bin/patjanitor",
		"EXPOSE":     "9874",
	}
	for cmd, want := range expect {
		got := byCmd(final, cmd)
		if len(got) != 1 || got[0].Args != want {
			t.Errorf("final stage %s: %v, want one %q", cmd, got, want)
		}
	}
	if len(byCmd(ins, "HEALTHCHECK")) > 0 {
		t.Error("HEALTHCHECK: Kubernetes probes /healthz and /readyz instead; distroless has no shell or curl for it")
	}
	if len(byCmd(final, "RUN")) > 0 {
		t.Error("RUN in the final stage: distroless has no shell")
	}
	cmds := byCmd(final, "CMD")
	if len(cmds) != 1 {
		t.Fatalf("%d CMD instructions in the final stage", len(cmds))
	}
	var cmd []string
	if err := json.Unmarshal([]byte(cmds[0].Args), &cmd); err != nil || len(cmd) == 0 || cmd[0] != "serve" {
		t.Errorf("CMD %q: want exec form starting with serve (%v)", cmds[0].Args, err)
	}
	line := goBuildLine(t, ins)
	for _, want := range []string{
		"CGO_ENABLED=0", "-trimpath", `-s -w`,
		"-X github.com/patjanitor/patjanitor/internal/buildinfo.Version=${VERSION}",
		"-X github.com/patjanitor/patjanitor/internal/buildinfo.Commit=${COMMIT}",
		"-o /out/patjanitor", "./cmd/patjanitor",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("go build line %q lacks %q", line, want)
		}
	}
	for _, arg := range []string{"VERSION", "COMMIT"} {
		found := false
		for _, i := range byCmd(ins[:slicesIndex(ins, froms[1])], "ARG") {
			found = found || strings.HasPrefix(i.Args, arg+"=") || i.Args == arg
		}
		if !found {
			t.Errorf("the build stage declares no ARG %s", arg)
		}
	}
}

func slicesIndex(ins []instruction, x instruction) int {
	for i := range ins {
		if ins[i] == x {
			return i
		}
	}
	return -1
}

// dockerignore is the subset of .dockerignore syntax the file uses: one
// pattern a line, path.Match globs relative to the context root, "**/" for
// any depth, and a match on a directory excluding everything below it.
type dockerignore []string

func loadDockerignore(t *testing.T) dockerignore {
	t.Helper()
	data, err := os.ReadFile(dockerignorePath)
	if err != nil {
		t.Fatal(err)
	}
	var d dockerignore
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore exception %q: not supported by this test's matcher", line)
		}
		d = append(d, strings.TrimPrefix(path.Clean(line), "/"))
	}
	return d
}

func (d dockerignore) excluded(rel string) bool {
	parts := strings.Split(rel, "/")
	for _, p := range d {
		anyDepth := strings.HasPrefix(p, "**/")
		p = strings.TrimPrefix(p, "**/")
		n := len(strings.Split(p, "/"))
		// Compare the pattern with every prefix of the path (a directory
		// match excludes its contents) and, for **/, at every depth.
		for startAt := 0; startAt < len(parts); startAt++ {
			if startAt > 0 && !anyDepth {
				break
			}
			if startAt+n > len(parts) {
				break
			}
			if ok, _ := path.Match(p, strings.Join(parts[startAt:startAt+n], "/")); ok {
				return true
			}
		}
	}
	return false
}

func TestDockerignoreMatcher(t *testing.T) {
	d := dockerignore{".git", "docs", "**/testdata", "*.test", "patjanitor"}
	for rel, want := range map[string]bool{
		".git/config":                    true,
		"docs/operations.md":             true,
		"internal/api/testdata/x.json":   true,
		"internal/api/client.go":         false,
		"deploy.test":                    true,
		"internal/x.test":                false, // *.test matches at the root only
		"patjanitor":                     true,
		"cmd/patjanitor/main.go":         false,
		"internal/notify/templates/a.md": false,
	} {
		if got := d.excluded(rel); got != want {
			t.Errorf("excluded(%q) = %v, want %v", rel, got, want)
		}
	}
}

// copyContext copies the repository into dst the way `docker build .` sends
// it: without what .dockerignore excludes.
func copyContext(t *testing.T, dst string, ign dockerignore) {
	t.Helper()
	err := filepath.WalkDir(repoRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ign.excluded(rel) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy the build context: %v", err)
	}
}

// buildEnv is the environment of the Dockerfile's RUN: the build ARGs, no
// GOFLAGS from the developer's shell, no workspace, no toolchain download.
// The module and build caches stay, so the build is quick when warm.
func buildEnv(version, commit string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOFLAGS", "GOWORK", "GOTOOLCHAIN", "CGO_ENABLED", "GOOS", "GOARCH", "VERSION", "COMMIT":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOWORK=off", "GOTOOLCHAIN=local", "VERSION="+version, "COMMIT="+commit)
}

// TestDockerBuildLine runs the Dockerfile's go build line on the build context
// .dockerignore leaves, then checks the binary: static, stripped, stamped,
// and accepting every command line the deployment files give it.
func TestDockerBuildLine(t *testing.T) {
	t.Parallel() // runs an external tool for seconds; overlap it with the rest
	line := goBuildLine(t, loadDockerfile(t))
	ctx := t.TempDir()
	copyContext(t, ctx, loadDockerignore(t))
	bin := filepath.Join(t.TempDir(), "patjanitor")
	if !strings.Contains(line, "/out/patjanitor") {
		t.Fatalf("go build line does not write /out/patjanitor: %q", line)
	}
	const version, commit = "v9.8.7-test", "0123456789abcdef"
	cmd := exec.Command("sh", "-c", strings.Replace(line, "/out/patjanitor", bin, 1))
	cmd.Dir = ctx
	cmd.Env = buildEnv(version, commit)
	started := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's go build failed on the .dockerignore'd context: %v\n%s", err, out)
	}
	t.Logf("go build from the Dockerfile: %v", time.Since(started).Round(time.Millisecond))

	t.Run("static and stripped", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary has an ELF interpreter: not static (CGO_ENABLED=0 lost?)")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("the binary links %v", libs)
		}
		if f.Section(".symtab") != nil {
			t.Error("the binary has a symbol table: -s did not apply")
		}
	})

	t.Run("version is stamped", func(t *testing.T) {
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("patjanitor version: %v\n%s", err, out)
		}
		if want := fmt.Sprintf("patjanitor %s (commit %s,", version, commit); !strings.HasPrefix(string(out), want) {
			t.Errorf("patjanitor version printed %q, want it to start with %q", out, want)
		}
	})

	t.Run("deployment command lines parse", func(t *testing.T) {
		for what, args := range deploymentCommandLines(t) {
			// --help makes cobra parse the command and its flags and stop: an
			// unknown command or flag fails, a known one prints help.
			out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
			if err != nil {
				t.Errorf("%s: patjanitor %s: %v\n%s", what, strings.Join(args, " "), err, out)
			}
		}
	})

	t.Run("patjanitor validate accepts the ConfigMaps' policies", func(t *testing.T) {
		for _, dir := range []string{baseDir, enforceDir} {
			p := filepath.Join(t.TempDir(), "policies.yaml")
			if err := os.WriteFile(p, policiesIn(t, build(t, dir)), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "validate", "--config", p)
			// The secret comes from the environment, as in the pod.
			cmd.Env = append(os.Environ(), "PATJANITOR_CLIENT_SECRET=FAKE-test-secret")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: patjanitor validate: %v\n%s", dir, err, out)
			}
		}
	})
}

// deploymentCommandLines collects every patjanitor command line the
// deployment files contain, without the binary.
func deploymentCommandLines(t *testing.T) map[string][]string {
	t.Helper()
	lines := map[string][]string{}
	for _, dir := range []string{baseDir, reportOnlyDir, enforceDir, cronJobDir} {
		for _, w := range workloads(t, build(t, dir)) {
			for _, c := range w.pod.Spec.Containers {
				lines[dir+" "+w.what] = c.Args
			}
		}
	}
	u := loadUnit(t)
	for _, k := range []string{"ExecStartPre", "ExecStart"} {
		f := strings.Fields(u.one(t, "Service", k))
		lines["systemd "+k] = f[1:]
	}
	var cmd []string
	for _, i := range byCmd(loadDockerfile(t), "CMD") {
		if err := json.Unmarshal([]byte(i.Args), &cmd); err != nil {
			t.Fatalf("Dockerfile CMD: %v", err)
		}
	}
	lines["Dockerfile CMD"] = cmd
	return lines
}
