package janitor_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
)

// The grace-run benchmark: a tenant of graceBenchTokens stale tokens of
// graceBenchOwners owners under one enforce-mode delete policy with a 14-day
// grace period, every owner's digest delivered to a signed webhook on
// 127.0.0.1, the state in a bbolt file, all as `serve` wires it.
//
//	go test -run '^$' -bench BenchmarkGraceRun -benchtime 1x -benchmem ./internal/janitor
//
// first is a run over an empty store: it marks every token and warns every
// owner. again is a later run (an hour on) that has nothing new to do: the
// marks are the same, the digests identical to the ones delivered. Each
// reports, per run, the bbolt transactions committed (the txid the file's meta
// page advanced by; bbolt fdatasyncs twice per commit), the peak heap, the
// size of state.db, the bytes a mark takes in it (key and value, and its
// share of the reason shapes) and what bbolt takes for them: the bytes in
// use with its page and element headers (bolt-inuse), and the pages with the
// room left in them (bolt-pages).
//
// As in a real tenant, each token was last used at its own time (so each
// mark's reason names its own date), and the runs start at a time with a
// fraction of a second (a real clock's times have nanoseconds).
const (
	graceBenchTokens = 21000
	graceBenchOwners = 7000
)

func BenchmarkGraceRun(b *testing.B) {
	b.Run("first", func(b *testing.B) {
		g := newGraceBench(b)
		for range b.N {
			b.StopTimer()
			g.reset()
			b.StartTimer()
			g.measure(b)
		}
		g.report(b)
	})
	b.Run("again", func(b *testing.B) {
		g := newGraceBench(b)
		for range b.N {
			b.StopTimer()
			g.reset()
			g.run(b) // the first run, not measured
			g.hook.Take()
			g.clock.Advance(time.Hour)
			b.StartTimer()
			g.measure(b)
			b.StopTimer()
			if n := len(notifytest.OfKind(g.hook.Take(), notify.KindDigest)); n != 0 {
				b.Fatalf("the later run delivered %d digests, want none", n)
			}
			b.StartTimer()
		}
		g.report(b)
	})
}

type graceBench struct {
	*graceEnv
	commits, peak, runs uint64
	last                storeStats
}

// benchID is a tenant-like id: 32 lowercase hex digits.
func benchID(kind string, i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s-%d", kind, i))
	return hex.EncodeToString(sum[:16])
}

func newGraceBench(b *testing.B) *graceBench {
	g := &graceBench{graceEnv: newGraceEnvTB(b, graceConfig)}
	for i := range graceBenchTokens {
		g.add(benchID("token", i), benchID("owner", i%graceBenchOwners), fmt.Sprintf("ci-deploy-%05d", i), 400*day, 200*day+time.Duration(i)*time.Minute)
	}
	return g
}

// graceBenchStart is when the first run starts: t0 and a fraction of a second.
var graceBenchStart = t0.Add(123456789 * time.Nanosecond)

// reset starts over with an empty store and the clock at graceBenchStart.
func (g *graceBench) reset() {
	if g.st != nil {
		_ = g.st.Close()
		g.st = nil
	}
	_ = os.Remove(g.stPath)
	g.clock.Set(graceBenchStart)
	g.openStore()
}

func (g *graceBench) run(b *testing.B) {
	if _, err := g.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
		b.Fatalf("grace run: %v", err)
	}
}

// measure runs once and records the commits (by the store's txid) and the
// peak heap, sampled while the run goes.
func (g *graceBench) measure(b *testing.B) {
	b.StopTimer()
	before := g.storeTxID(b).txid
	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	b.StartTimer()
	g.run(b)
	b.StopTimer()
	close(stop)
	wg.Wait()
	g.last = g.storeTxID(b)
	g.commits += g.last.txid - before
	g.peak = max(g.peak, peak)
	g.runs++
	b.StartTimer()
}

func (g *graceBench) report(b *testing.B) {
	if g.runs == 0 {
		return
	}
	b.ReportMetric(float64(g.commits)/float64(g.runs), "commits/op")
	b.ReportMetric(float64(g.peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(g.last.size)/(1<<20), "state.db-MB")
	if n := float64(g.last.marks); n > 0 {
		b.ReportMetric(float64(g.last.markBytes)/n, "B/mark")
		b.ReportMetric(float64(g.last.pageInuse)/n, "bolt-inuse-B/mark")
		b.ReportMetric(float64(g.last.pageAlloc)/n, "bolt-pages-B/mark")
	}
	if g.last.marks != graceBenchTokens {
		b.Fatalf("the store holds %d marks, want %d", g.last.marks, graceBenchTokens)
	}
}
