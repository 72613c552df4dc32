package cli

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkPlan100kOutputs compares the default `plan` output, the table on
// a terminal, with -o json, side by side: each iteration plans the shipped
// policies.yaml against the same simulated 100,000-token tenant (its own
// process) once per output, as subprocesses timed from start to exit:
//
//   - json: `plan -o json --out /dev/null`, stdout /dev/null
//     (BenchmarkPlan100kTokens);
//   - table: `plan --out /dev/null` with stdout a pseudo-terminal of
//     ptyCols columns, so that plan takes its terminal path (isTerminal,
//     terminalWidth from the window size, report.RenderTerminal). The
//     benchmark reads the terminal's output as a terminal emulator would and
//     discards it;
//   - table-noout: the same without --out (the plan document not saved);
//   - json-tty: `plan -o json` with stdout the same kind of pseudo-terminal:
//     the default plan's destination, where -o json prints the plan
//     document (about 44 MB for this tenant, escaped for the terminal).
//
// It reports, per output, the wall time, the CPU time (user and system) and
// the system time alone: writing to a terminal costs system time for the
// terminal's line discipline (a newline becomes CR LF) whatever wrote it.
//
// Target: table at most 20% over json. The default plan (table-noout)
// saves no plan document; table with --out does, which -o json writes
// once for both. The target reads two ways, and the benchmark reports both:
// against json, whose document goes to /dev/null (the strictest: no
// terminal to pay for), and against json-tty, each printing what it prints
// to the same terminal (table/json-tty, table-noout/json-tty).
//
//	go test -run '^$' -bench BenchmarkPlan100kOutputs -benchtime 6x ./internal/cli
func BenchmarkPlan100kOutputs(b *testing.B) {
	const ptyCols = 120
	bin := patjanitorBin(b)
	env := startSimProcess(b, bin, 100000)
	policies, err := filepath.Abs("../../policies.yaml")
	if err != nil {
		b.Fatal(err)
	}
	type output struct {
		name string
		args []string
		pty  bool
	}
	outputs := []output{
		{"json", []string{"-o", "json", "--out", os.DevNull}, false},
		{"table", []string{"--out", os.DevNull}, true},
		{"table-noout", nil, true},
		{"json-tty", []string{"-o", "json"}, true},
	}
	printed := make(map[string]int64, len(outputs))
	run := func(o output) (wall, cpu, sys time.Duration, rss int64) {
		cmd := exec.Command(bin, append([]string{"-c", policies, "plan"}, o.args...)...)
		cmd.Env = append(cleanEnv(), env...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		var drained chan int64
		if o.pty {
			master, tty := openPTY(b, ptyCols, 50)
			cmd.Stdout = tty
			drained = make(chan int64, 1)
			go func() {
				// Reading ends with EIO once the plan exits and the last
				// descriptor of the terminal is closed.
				n, _ := io.Copy(io.Discard, master)
				master.Close()
				drained <- n
			}()
			defer func() {
				if drained != nil {
					printed[o.name] = <-drained
				}
			}()
			start := time.Now()
			err := cmd.Start()
			tty.Close() // the child has its own copy
			if err != nil {
				b.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				b.Fatalf("plan %v: %v\n%s", o.args, err, stderr.String())
			}
			wall = time.Since(start)
		} else {
			start := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatalf("plan %v: %v\n%s", o.args, err, stderr.String())
			}
			wall = time.Since(start)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		return wall, time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Stime.Nano()), ru.Maxrss * 1024
	}
	run(outputs[0]) // the simulator encodes its listing lazily; warm it up

	wall := make([]time.Duration, len(outputs))
	cpu := make([]time.Duration, len(outputs))
	sys := make([]time.Duration, len(outputs))
	peak := make([]int64, len(outputs))
	b.ResetTimer()
	for i := range b.N {
		// Alternate the order so that neither output always runs first.
		for k := range outputs {
			j := k
			if i%2 == 1 {
				j = len(outputs) - 1 - k
			}
			w, c, s, r := run(outputs[j])
			wall[j] += w
			cpu[j] += c
			sys[j] += s
			peak[j] = max(peak[j], r)
		}
	}
	b.StopTimer()
	for j, o := range outputs {
		b.ReportMetric(float64(wall[j].Milliseconds())/float64(b.N), o.name+"-ms/plan")
		b.ReportMetric(float64(cpu[j].Milliseconds())/float64(b.N), o.name+"-cpu-ms/plan")
		b.ReportMetric(float64(sys[j].Milliseconds())/float64(b.N), o.name+"-sys-ms/plan")
		b.ReportMetric(float64(peak[j])/(1<<20), o.name+"-MB-peak-rss")
	}
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "table/json")
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "table/json-cpu")
	// The default plan saves no plan document: its table against -o json.
	b.ReportMetric(float64(wall[2])/float64(wall[0]), "table-noout/json")
	b.ReportMetric(float64(cpu[2])/float64(cpu[0]), "table-noout/json-cpu")
	// Each printing to the same terminal what it prints there.
	b.ReportMetric(float64(wall[1])/float64(wall[3]), "table/json-tty")
	b.ReportMetric(float64(cpu[1])/float64(cpu[3]), "table/json-tty-cpu")
	b.ReportMetric(float64(wall[2])/float64(wall[3]), "table-noout/json-tty")
	b.ReportMetric(float64(cpu[2])/float64(cpu[3]), "table-noout/json-tty-cpu")
	b.Logf("on %d columns the terminal reads %d bytes of table and %d bytes of -o json",
		ptyCols, printed["table-noout"], printed["json-tty"])
}

// openPTY opens a pseudo-terminal of cols × rows and returns its master
// (the terminal emulator's end) and its slave (the program's stdout).
func openPTY(tb testing.TB, cols, rows uint16) (master, tty *os.File) {
	tb.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		tb.Skipf("no pseudo-terminal: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		tb.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		tb.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		tb.Fatalf("open the terminal: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows}); err != nil {
		m.Close()
		s.Close()
		tb.Fatalf("set the window size: %v", err)
	}
	return m, s
}

// BenchmarkPlan100kTableInProcess is the table of BenchmarkPlan100kOutputs
// with the plan command run inside the test process (the simulator still in
// its own) and a standard output that claims to be a terminal of 120
// columns, for profiles:
//
//	go test -run '^$' -bench Plan100kTableInProcess -benchtime 3x -cpuprofile cpu.out -memprofile mem.out ./internal/cli
func BenchmarkPlan100kTableInProcess(b *testing.B) {
	bin := patjanitorBin(b)
	for _, kv := range startSimProcess(b, bin, 100000) {
		k, v, _ := strings.Cut(kv, "=")
		b.Setenv(k, v)
	}
	plan := func() {
		var stderr strings.Builder
		code := Main(b.Context(), []string{"-c", "../../policies.yaml", "plan", "--out", os.DevNull},
			Streams{In: strings.NewReader(""), Out: discardTTY{cols: 120}, Err: &stderr})
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

// discardTTY is a standard output that claims to be a terminal of cols
// columns and discards what it is given.
type discardTTY struct{ cols int }

func (discardTTY) Write(p []byte) (int, error) { return len(p), nil }
func (discardTTY) IsTerminal() bool            { return true }
func (d discardTTY) Width() int                { return d.cols }
