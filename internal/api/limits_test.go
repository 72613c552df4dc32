package api

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Every string and number of a listing, wherever it is (a key, a known
// field, the owner, a scope, a member patjanitor does not read), is bounded
// by MaxFieldBytes; at the limit it is accepted.
func TestListingFieldLimit(t *testing.T) {
	long := strings.Repeat("x", MaxFieldBytes+1)
	esc := long[1:] + `\u0041` // the escape takes it to the slow path, and over the limit
	digits := strings.Repeat("1", MaxFieldBytes+1)
	const c = `"created":"2026-01-02T03:04:05.000Z"`
	for name, doc := range map[string]string{
		"id": `[{"id":"` + long + `",` + c + `}]`, "name": `[{"id":"a",` + c + `,"name":"` + long + `"}]`,
		"escaped": `[{"id":"a",` + c + `,"name":"` + esc + `"}]`, "owner": `[{"id":"a",` + c + `,"owner":{"name":"` + long + `"}}]`,
		"scope": `[{"id":"a",` + c + `,"scope":["` + long + `"]}]`, "key": `[{"` + long + `":1,"id":"a",` + c + `}]`,
		"unknown": `[{"id":"a",` + c + `,"x":{"y":["` + long + `"]}}]`, "number": `[{"id":"a",` + c + `,"x":` + digits + `}]`,
		"validity": `[{"id":"a",` + c + `,"accessTokenValiditySeconds":` + digits + `}]`,
	} {
		_, err := decodeTokenArray(strings.NewReader(doc))
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != MaxFieldBytes {
			t.Errorf("%s: %v, want the %d-byte field limit", name, err, MaxFieldBytes)
		}
	}
	atLimit := `[{"id":"a",` + c + `,"name":"` + long[1:] + `"}]`
	if toks, err := decodeTokenArray(strings.NewReader(atLimit)); err != nil || len(toks[0].Name) != MaxFieldBytes {
		t.Fatalf("a name of exactly %d bytes: %v", MaxFieldBytes, err)
	}
}

// The listings given one Budget share it; a listing whose connection broke
// mid-body gives back what it read, so the retry has the whole budget again.
func TestListingBudget(t *testing.T) {
	doc := tokenList(200)
	var calls atomic.Int32
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// Half the body, then the connection breaks.
			w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(doc[:len(doc)/2]))
			return
		}
		writeJSON(w, http.StatusOK, doc)
	})
	c, rec := newTestClient(t, ft.srv.URL, nil)
	budget := NewBudget(int64(len(doc)), "the test's setting")
	toks, err := c.ListTokens(context.Background(), ListOptions{Budget: budget})
	if err != nil || len(toks) != 200 {
		t.Fatalf("ListTokens after a broken body: %d tokens, %v", len(toks), err)
	}
	if _, retries, _ := rec.snapshot(); len(retries) != 1 {
		t.Fatalf("retries %v, want one", retries)
	}
	// The budget is spent: a second listing under it is refused at once (its
	// Content-Length alone exceeds what is left), and not retried.
	_, err = c.ListTokens(context.Background(), ListOptions{Budget: budget})
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "raise the test's setting") || errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("second listing: %v, want a *LimitError", err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d listing requests, want 3 (the refused one is not retried)", n)
	}
}

// A wait of LongWait or more is logged with its cause and end time; shorter
// ones are not. Waits are reported to a WaitObserver while they last.
func TestLongWaitsAreLoggedAndObserved(t *testing.T) {
	var calls atomic.Int32
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "2")
			writeJSON(w, http.StatusTooManyRequests, body429)
		case 2:
			w.Header().Set("Retry-After", "90")
			writeJSON(w, http.StatusTooManyRequests, body429)
		default:
			writeJSON(w, http.StatusOK, "[]")
		}
	})
	core, logs := observer.New(zap.DebugLevel)
	wo := &waitRecorder{}
	now := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
	c, _ := newTestClient(t, ft.srv.URL, func(cfg *Config) {
		cfg.Logger = zap.New(core)
		cfg.Observer = wo
		cfg.Now = func() time.Time { return now }
	})
	if _, err := c.ListTokens(context.Background(), ListOptions{}); err != nil {
		t.Fatal(err)
	}
	entries := logs.FilterMessage("waiting before the next request to the tenant").All()
	if len(entries) != 1 {
		t.Fatalf("%d long-wait log lines, want 1 (the 90s one): %v", len(entries), logs.All())
	}
	f := entries[0].ContextMap()
	if f["cause"] != WaitRetryAfter || f["wait"] != 90*time.Second || !f["until"].(time.Time).Equal(now.Add(90*time.Second)) ||
		!strings.Contains(f["after"].(string), "429") {
		t.Errorf("log fields %v", f)
	}
	if got := wo.get(); strings.Join(got, ",") != "+retry_after 2s,-retry_after 2s,+retry_after 1m30s,-retry_after 1m30s" {
		t.Errorf("waits observed: %v", got)
	}
}

type waitRecorder struct {
	recorder
	waits []string
}

func (w *waitRecorder) WaitStarted(cause string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits = append(w.waits, "+"+cause+" "+d.String())
}

func (w *waitRecorder) WaitEnded(cause string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits = append(w.waits, "-"+cause+" "+d.String())
}

func (w *waitRecorder) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.waits...)
}

// TestHostileListingLongStringMemory: a tenant that sends one 32 MB token
// name (within the listing budget) is refused with the field limit after
// little more than the limit has been read: the decoder does not hold the
// name whole to measure it. The listing is asked for once, not retried.
func TestHostileListingLongStringMemory(t *testing.T) {
	const c = `"created":"2026-01-02T03:04:05.000Z"`
	doc := []byte(`[{"id":"a",` + c + `,"name":"` + strings.Repeat("x", 32<<20) + `"}]`)
	var calls atomic.Int32
	var sent atomic.Int64
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for rest := doc; len(rest) > 0; {
			n, err := w.Write(rest[:min(len(rest), 64<<10)])
			sent.Add(int64(n))
			if err != nil {
				return
			}
			rest = rest[n:]
		}
	})
	cl, _ := newTestClient(t, ft.srv.URL, nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := cl.ListTokens(context.Background(), ListOptions{})
	runtime.ReadMemStats(&after)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != MaxFieldBytes {
		t.Fatalf("ListTokens: %v, want the %d-byte field limit", err, MaxFieldBytes)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d listing requests, want 1 (a refused listing is not asked again)", n)
	}
	// The server side writes from doc without copying it; what the client
	// allocated is a few times the field limit, not the name.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("refusing a 32 MB name allocated %d bytes", alloc)
	}
}
