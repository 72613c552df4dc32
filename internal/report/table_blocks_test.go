package report

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// TestTableBlocksInOrder: a group larger than a block is rendered on several
// CPUs, and the table is byte for byte the table rendered on one, every row
// in plan order.
func TestTableBlocksInOrder(t *testing.T) {
	p := bigPlan(3*itemBlock + 7)
	renderWith := func(procs int) string {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		var b bytes.Buffer
		if err := RenderOptions(&b, p, FormatTable, Options{Width: 100}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	one, four := renderWith(1), renderWith(4)
	if one != four {
		t.Fatalf("the table rendered on 4 CPUs (%d bytes) differs from the one rendered on 1 (%d bytes)", len(four), len(one))
	}
	// Every item's row, in plan order within its group (the groups are in
	// their own order, so the ids are checked group by group).
	// Positions are counted in words: a regexp over the table's megabytes
	// took two seconds under the race detector, a split takes a tenth.
	ids := make(map[string]bool, p.Items.Len())
	for _, it := range p.Items.All() {
		ids[it.TokenID] = true
	}
	at := map[string]int{}
	for i, w := range strings.Fields(four) {
		if _, seen := at[w]; ids[w] && !seen {
			at[w] = i
		}
	}
	for _, it := range p.Items.All() {
		if _, ok := at[it.TokenID]; !ok {
			t.Fatalf("no row for %s", it.TokenID)
		}
	}
	for i := 1; i < p.Items.Len(); i++ {
		a, b := p.Items.At(i-1), p.Items.At(i)
		if a.Policy == b.Policy && a.Mode == b.Mode && a.Action == b.Action && at[a.TokenID] > at[b.TokenID] {
			t.Fatalf("%s is shown after %s", a.TokenID, b.TokenID)
		}
	}
}

// bigPlan is the fixture's items repeated n times, ids and names made unique.
func bigPlan(n int) *plan.Plan { return repeatedPlan(n, " ") }

// repeatedPlan is the fixture's items repeated n times: ids made unique by
// the copy's number, and names by sep and that number.
func repeatedPlan(n int, sep string) *plan.Plan {
	p := fixture()
	base := p.Items.Slice()
	p.Items = plan.Items{}
	for i := range n {
		for _, it := range base {
			it.TokenID = fmt.Sprintf("%s-%05d", it.TokenID, i)
			it.TokenName = fmt.Sprintf("%s%s%d", it.TokenName, sep, i)
			p.Items.Append(it)
		}
	}
	p.Items.Sort()
	return p
}

// TestTerminalTableThroughPipe: on a terminal the table is rendered on one
// CPU fewer and written by the pipeWriter's goroutine in chunks; what the
// terminal receives is byte for byte the table of one CPU written directly,
// in as many writes as chunks, none larger than a chunk.
func TestTerminalTableThroughPipe(t *testing.T) {
	// 2*itemBlock copies of the fixture (6*itemBlock until the race
	// suite's CPU diet): 6,144 items, every group of them two blocks or
	// more, and a table of 1.6 MB, six chunks (the guard below keeps it
	// over three), more than chunksAhead: chunks are reused as with any
	// larger table. The test renders it four times.
	p := bigPlan(2 * itemBlock)
	var want bytes.Buffer
	func() {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		if err := RenderOptions(&want, p, FormatTable, Options{Width: 100}); err != nil {
			t.Fatal(err)
		}
	}()
	if want.Len() < 3*chunkSize {
		t.Fatalf("the table is %d bytes, want more than 3 chunks of %d", want.Len(), chunkSize)
	}
	for _, procs := range []int{1, 2, 4} {
		func() {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			var w countingWriter
			if err := RenderTerminal(&w, p, FormatTable, Options{Width: 100}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.Bytes(), want.Bytes()) {
				t.Fatalf("GOMAXPROCS %d: the terminal's table (%d bytes) differs from the table of one CPU (%d bytes)", procs, w.Len(), want.Len())
			}
			if chunks := (want.Len() + chunkSize - 1) / chunkSize; w.writes != chunks || w.largest > chunkSize {
				t.Fatalf("GOMAXPROCS %d: %d writes, the largest %d bytes; want %d writes of at most %d", procs, w.writes, w.largest, chunks, chunkSize)
			}
		}()
	}
}

type countingWriter struct {
	bytes.Buffer
	writes, largest int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	w.largest = max(w.largest, len(p))
	return w.Buffer.Write(p)
}

// TestTableWriteErrorReturned: a terminal that fails a write (closed, hung
// up) fails the render with its error, after the rest of the table was
// rendered and dropped: no goroutine is left waiting for a chunk.
func TestTableWriteErrorReturned(t *testing.T) {
	// A table of six chunks (2*itemBlock copies of the fixture; 18 chunks
	// until the race suite's CPU diet): four are left to render and drop
	// after the write that fails.
	p := bigPlan(2 * itemBlock)
	hangup := errors.New("terminal hung up")
	w := &failingWriter{after: 1, err: hangup}
	err := RenderTerminal(w, p, FormatTable, Options{Width: 100})
	if !errors.Is(err, hangup) {
		t.Fatalf("render: %v, want %v", err, hangup)
	}
	if w.writes != 2 {
		t.Fatalf("%d writes, want 2: none after the one that failed", w.writes)
	}
}

type failingWriter struct {
	after, writes int
	err           error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > w.after {
		return 0, w.err
	}
	return len(p), nil
}

// TestSmallTableSmallBuffers: a table of a few items (apply's
// confirmation, a small tenant) allocates about its own size, not the
// pipeWriter's chunks.
func TestSmallTableSmallBuffers(t *testing.T) {
	p := fixture()
	var out bytes.Buffer
	render := func() {
		out.Reset()
		if err := RenderTerminal(&out, p, FormatTable, Options{Width: 100}); err != nil {
			t.Fatal(err)
		}
	}
	render() // out's buffer grown once
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	render()
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > chunkSize/2 {
		t.Fatalf("rendering a table of %d bytes allocated %d bytes", out.Len(), n)
	}
}

// heapWriter discards what is written and, every megabyte, records how far
// the live heap has grown above base.
type heapWriter struct {
	n, next    int
	base, peak uint64
}

func (w *heapWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	if w.n >= w.next {
		w.next += 1 << 20
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapAlloc > w.base && m.HeapAlloc-w.base > w.peak {
			w.peak = m.HeapAlloc - w.base
		}
	}
	return len(p), nil
}

// TestHTMLHoldsOneItemAtATime: the HTML report is written while its items
// are read, not after all of them have been made into rows. It built every
// row first, and a plan at the default listing cap peaked at 170 MiB of RSS
// where the JSON plan peaks at 60 (docs/operations.md, "Memory").
func TestHTMLHoldsOneItemAtATime(t *testing.T) {
	const n = 1000
	p := bigPlan(n)
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w := &heapWriter{base: m.HeapAlloc, next: 1 << 20}
	if err := RenderOptions(w, p, FormatHTML, Options{}); err != nil {
		t.Fatal(err)
	}
	if w.n < n*200 {
		t.Fatalf("the report of %d items is %d bytes: not every item was written", n, w.n)
	}
	// All the rows of 1,000 of these items held 3.4 MB under -race (3 KB an
	// item, for 5 KB of HTML); one at a time they hold nothing that shows
	// (0.13 MB). The test rendered 3,000 items against 2 MB before: the same
	// margins either side of the bound, at a third of the CPU (a collection
	// every MB of HTML, under -race).
	t.Logf("%d bytes of HTML, heap grew by at most %d bytes", w.n, w.peak)
	if w.peak > 1<<20 {
		t.Errorf("rendering the HTML report of %d items (%d bytes) held %d bytes more of heap: rows are kept, not streamed", n, w.n, w.peak)
	}
	runtime.KeepAlive(p)
}
