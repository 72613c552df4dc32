package idnsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault makes matching requests misbehave. A request matches when every set
// selector matches: Operation (one of the Op* names), Method, PathPrefix. Of
// the matches, the first After are let through, then the fault fires Times
// times (0 = forever), each time with Probability (0 = always; drawn from a
// generator seeded with Seed, so runs repeat).
//
// What firing does, in order: wait Latency; then Reset closes the connection
// (with an RST) without a response, or Status answers with that status and
// Body (default: the documented body for the status, with Retry-After on 429),
// or Truncate sends the real response's status and headers with only the first
// half of its body. With Apply, the real operation runs first (a delete really
// deletes) and the fault replaces its response: the ambiguous failure a client
// must not retry blindly. Truncate without Status always applies. A fault with
// only Latency delays the request and then serves it normally.
//
// Note for GET faults: net/http's Transport silently replays an idempotent
// request once when a reused keep-alive connection is closed before any
// response, so a Reset with Times 1 on a GET may go unnoticed by a Go client;
// use Times 2 (or 0) to make it fail.
//
// Reset and Truncate need a real connection (an httptest.Server or the sim
// command); on a ResponseRecorder they panic with http.ErrAbortHandler.
type Fault struct {
	Operation   string        `json:"operation,omitempty"`
	Method      string        `json:"method,omitempty"`
	PathPrefix  string        `json:"pathPrefix,omitempty"`
	Status      int           `json:"status,omitempty"`
	Body        string        `json:"body,omitempty"`
	RetryAfter  string        `json:"retryAfter,omitempty"` // header value as sent: seconds or an HTTP date
	Latency     time.Duration `json:"-"`
	Reset       bool          `json:"reset,omitempty"`
	Truncate    bool          `json:"truncate,omitempty"`
	Apply       bool          `json:"apply,omitempty"`
	After       int           `json:"after,omitempty"`
	Times       int           `json:"times,omitempty"`
	Probability float64       `json:"probability,omitempty"`
	Seed        int64         `json:"seed,omitempty"`
}

// MarshalJSON writes Latency as a Go duration string ("250ms").
func (f Fault) MarshalJSON() ([]byte, error) {
	type plain Fault
	aux := struct {
		plain
		Latency string `json:"latency,omitempty"`
	}{plain: plain(f)}
	if f.Latency > 0 {
		aux.Latency = f.Latency.String()
	}
	return json.Marshal(aux)
}

// UnmarshalJSON reads Latency as a Go duration string, and refuses unknown
// fields so that a typo in a control request is an error, not a silent no-op.
func (f *Fault) UnmarshalJSON(b []byte) error {
	type plain Fault
	aux := struct {
		plain
		Latency string `json:"latency,omitempty"`
	}{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return fmt.Errorf("fault: %w", err)
	}
	*f = Fault(aux.plain)
	if aux.Latency != "" {
		d, err := time.ParseDuration(aux.Latency)
		if err != nil {
			return fmt.Errorf("fault: latency: %w", err)
		}
		f.Latency = d
	}
	return f.validate()
}

func (f *Fault) validate() error {
	switch {
	case f.Status != 0 && (f.Status < 100 || f.Status > 599):
		return fmt.Errorf("fault: status %d is not an HTTP status", f.Status)
	case f.Probability < 0 || f.Probability > 1:
		return fmt.Errorf("fault: probability %v is not between 0 and 1", f.Probability)
	case f.After < 0 || f.Times < 0:
		return fmt.Errorf("fault: after and times must not be negative")
	case f.Reset && (f.Status != 0 || f.Truncate):
		return fmt.Errorf("fault: reset excludes status and truncate")
	case f.Latency < 0:
		return fmt.Errorf("fault: negative latency")
	}
	return nil
}

func (f *Fault) kind() string {
	switch {
	case f.Reset:
		return "reset"
	case f.Truncate:
		return "truncate"
	case f.Status != 0:
		return "status " + strconv.Itoa(f.Status)
	}
	return "latency"
}

type activeFault struct {
	f     Fault
	seen  int
	fired int
	rng   *rand.Rand
}

type faultSet struct {
	mu     sync.Mutex
	faults []*activeFault
}

// InjectFault adds a fault; faults are tried in the order they were added and
// the first that fires wins. It panics on an invalid fault (a test bug); the
// control endpoint validates instead.
func (s *Sim) InjectFault(f Fault) {
	if err := f.validate(); err != nil {
		panic(err)
	}
	s.faults.add(f)
}

// Faults returns the active faults with how often each has matched and fired.
func (s *Sim) Faults() []FaultStatus {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make([]FaultStatus, 0, len(s.faults.faults))
	for _, a := range s.faults.faults {
		out = append(out, FaultStatus{Fault: a.f, Matched: a.seen, Fired: a.fired})
	}
	return out
}

// FaultStatus is a fault and its counters.
type FaultStatus struct {
	Fault   Fault `json:"fault"`
	Matched int   `json:"matched"`
	Fired   int   `json:"fired"`
}

// ClearFaults removes every fault.
func (s *Sim) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = nil
}

func (fs *faultSet) add(f Fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.faults = append(fs.faults, &activeFault{f: f, rng: rand.New(rand.NewPCG(uint64(f.Seed), 0x5eed))})
}

func (fs *faultSet) match(op, method, path string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, a := range fs.faults {
		f := &a.f
		if f.Operation != "" && f.Operation != op ||
			f.Method != "" && !strings.EqualFold(f.Method, method) ||
			f.PathPrefix != "" && !strings.HasPrefix(path, f.PathPrefix) {
			continue
		}
		a.seen++
		if a.seen <= f.After || (f.Times > 0 && a.fired >= f.Times) {
			continue
		}
		if f.Probability > 0 && a.rng.Float64() >= f.Probability {
			continue
		}
		a.fired++
		return *f, true
	}
	return Fault{}, false
}

// applyFault delivers a fired fault; record logs the request, and is called
// before a reset. It returns false when the client went away during the latency.
func (s *Sim) applyFault(w http.ResponseWriter, r *http.Request, f Fault, rt route, body []byte, entry *Request, record func()) bool {
	if f.Latency > 0 {
		if err := s.sleep(r.Context(), f.Latency); err != nil {
			return false
		}
	}
	if f.Status == 0 && !f.Reset && !f.Truncate {
		s.dispatch(w, r, rt, body, entry)
		return true
	}
	var real *bufferedResponse
	if f.Apply || (f.Truncate && f.Status == 0) {
		real = newBufferedResponse()
		s.dispatch(real, r, rt, body, entry)
	}
	if f.Reset {
		record()
		resetConnection(w)
		return true
	}
	status, header, payload := f.Status, http.Header{}, []byte(f.Body)
	if f.Status == 0 {
		status, header, payload = real.status, real.header, real.body.Bytes()
	} else if f.Body == "" {
		header, payload = defaultFaultBody(f.Status)
	} else {
		header.Set("Content-Type", "application/json")
	}
	if f.RetryAfter != "" {
		header.Set("Retry-After", f.RetryAfter)
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	if !f.Truncate {
		w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
		w.WriteHeader(status)
		_, _ = w.Write(payload)
		return true
	}
	// Promise the whole body, send half, then abort: the client sees a valid
	// status line and headers and then an unexpected EOF.
	w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
	w.WriteHeader(status)
	_, _ = w.Write(payload[:len(payload)/2])
	_ = http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// defaultFaultBody is the documented body for an injected status.
func defaultFaultBody(status int) (http.Header, []byte) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	var v any
	switch {
	case status == http.StatusUnauthorized:
		v = map[string]string{"error": Msg401Expired}
	case status == http.StatusTooManyRequests:
		h.Set("Retry-After", "1")
		v = map[string]string{"message": Msg429}
	case status >= 400:
		v = newErrorResponse(status, fmt.Sprintf("injected fault: %d %s", status, http.StatusText(status)))
	default:
		h.Del("Content-Type")
		return h, nil
	}
	b, _ := json.Marshal(v)
	return h, b
}

// resetConnection closes the client connection abruptly (RST where the
// connection is TCP) without writing a response.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// bufferedResponse captures a response so that a fault can replace or cut it.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse { return &bufferedResponse{header: http.Header{}} }

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
