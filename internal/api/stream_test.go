package api

import (
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// eventSink records what StreamTokens handed it: token ids, and "RESET".
type eventSink struct {
	events []string
	fail   func(t *pat.Token) error
}

func (s *eventSink) Token(t *pat.Token) error {
	s.events = append(s.events, t.ID)
	if s.fail != nil {
		return s.fail(t)
	}
	return nil
}

func (s *eventSink) Reset() { s.events = append(s.events, "RESET") }

// sinceReset is what the sink holds: the ids after the last Reset.
func (s *eventSink) sinceReset() []string {
	out := s.events
	for i, e := range s.events {
		if e == "RESET" {
			out = s.events[i+1:]
		}
	}
	return out
}

// A connection that breaks in the middle of a listing, after tokens were
// handed over, is retried; the sink is told to drop what it received before
// the listing starts over, so that it never counts a token twice. Before
// streaming there was nothing to reset: the tokens of a failed attempt were
// never returned.
func TestHostileStreamResetBeforeRetry(t *testing.T) {
	env := newSimEnv(t, idnsim.Options{})
	env.sim.Seed(400, 1)
	c, rec := env.client(t, nil)
	ctx := t.Context()
	want, err := c.ListTokens(ctx, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}

	env.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Truncate: true, Times: 1})
	s := &eventSink{}
	n, err := c.StreamTokens(ctx, ListOptions{}, s)
	if err != nil || n != len(want) {
		t.Fatalf("truncated once: %v, %d tokens, want %d", err, n, len(want))
	}
	resets := 0
	for i, e := range s.events {
		if e == "RESET" {
			resets++
			if i == 0 {
				t.Fatal("Reset before any token: the first attempt delivered nothing, the test proves nothing")
			}
		}
	}
	if resets != 1 {
		t.Fatalf("%d resets, want 1 (events %d)", resets, len(s.events))
	}
	got := s.sinceReset()
	sort.Strings(got)
	if !reflect.DeepEqual(got, ids(want)) {
		t.Fatalf("after the reset the sink holds %d ids, want the %d of the listing, each once", len(got), len(want))
	}
	if _, retries, _ := rec.snapshot(); !reflect.DeepEqual(retries, []string{"list_tokens/connection"}) {
		t.Fatalf("retries %v", retries)
	}

	// Cut every time: an error, and what the sink received is a part.
	env.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Truncate: true})
	s = &eventSink{}
	if n, err := c.StreamTokens(ctx, ListOptions{}, s); err == nil || n != 0 || !errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("truncated always: %v, %d", err, n)
	}
	env.sim.ClearFaults()
}

// A listing whose second half is garbage: the first half's tokens were
// handed over, then the listing is malformed (final, one request): the
// caller learns that what it received is not a listing.
func TestHostileStreamSecondHalfGarbage(t *testing.T) {
	env := newSimEnv(t, idnsim.Options{})
	c, _ := env.client(t, nil)
	body := tokenList(50)
	body = body[:len(body)/2]
	body = body[:strings.LastIndex(body, "},")+2] + `{"id": garbage]`
	env.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: 200, Body: body, Times: 1})
	s := &eventSink{}
	n, err := c.StreamTokens(t.Context(), ListOptions{}, s)
	if !errors.Is(err, ErrMalformedResponse) || n != 0 {
		t.Fatalf("garbage second half: %v, %d", err, n)
	}
	if len(s.events) < 10 || slices.Contains(s.events, "RESET") {
		t.Fatalf("the sink saw %v: want the first half's tokens and no reset", s.events)
	}
	if reqs := apiRequests(env.requests()); len(reqs) != 1 {
		t.Fatalf("%d requests, want 1 (a complete, malformed body is not retried)", len(reqs))
	}
}

// A sink that refuses a token ends the listing at once, with its own error,
// and no other attempt is made.
func TestStreamSinkErrorIsFinal(t *testing.T) {
	env := newSimEnv(t, idnsim.Options{})
	env.sim.Seed(100, 1)
	c, _ := env.client(t, nil)
	stop := errors.New("enough")
	s := &eventSink{fail: func(*pat.Token) error { return stop }}
	_, err := c.StreamTokens(t.Context(), ListOptions{}, s)
	if !errors.Is(err, stop) || errors.Is(err, ErrMalformedResponse) || errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("sink error: %v", err)
	}
	if len(s.events) != 1 {
		t.Fatalf("the sink got %d tokens after refusing the first", len(s.events))
	}
	if reqs := apiRequests(env.requests()); len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
}
