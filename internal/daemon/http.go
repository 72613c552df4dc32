package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/bytesize"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// handler routes the daemon's endpoints. Every other path is 404, and /plan is
// 404 unless EnablePlan: a plan lists token names and owners, which a metrics
// port should not hand out unless asked to.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(d.reg,
		promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{
			ErrorLog:      gatherErrorLog{d.log.Named("metrics")},
			ErrorHandling: promhttp.ContinueOnError,
			Registry:      d.reg,
		})))
	healthy := func(w http.ResponseWriter, _ *http.Request) {
		// Alive is all this says: the process answers. Liveness probes must
		// not fail on a slow tenant or a bad config, or the kubelet restarts
		// a daemon that a restart cannot help.
		writeText(w, http.StatusOK, "ok")
	}
	ready := func(w http.ResponseWriter, _ *http.Request) {
		if !d.ready.Load() {
			writeText(w, http.StatusServiceUnavailable, "not ready: starting or shutting down")
			return
		}
		writeText(w, http.StatusOK, "ready")
	}
	// Kubernetes' spellings and Prometheus' (/-/healthy, /-/ready), the
	// same answers.
	mux.HandleFunc("GET /healthz", healthy)
	mux.HandleFunc("GET /-/healthy", healthy)
	mux.HandleFunc("GET /readyz", ready)
	mux.HandleFunc("GET /-/ready", ready)
	mux.HandleFunc("POST /-/reload", d.serveReload)
	mux.HandleFunc("POST /approve", d.serveApprove)
	if d.enablePlan {
		mux.HandleFunc("GET /plan", d.servePlan)
	}
	mux.HandleFunc("GET /{$}", d.serveIndex)
	return mux
}

// gatherErrorLog reports errors gathering metrics (a collector failed) at
// error level.
type gatherErrorLog struct{ log *zap.Logger }

func (l gatherErrorLog) Println(v ...any) { l.log.Error(fmt.Sprint(v...)) }

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, msg)
}

// maxApproving is how many POST /approve are read and checked at once. Each
// holds its plan in memory (up to plan.MaxFileBytes, and again as it is
// parsed): approvals come from a few reviewers, seldom at once, and a flood
// of large submissions must not take the daemon's memory. The next one is
// answered 503 with Retry-After, before its body is read.
const maxApproving = 2

// approveRetryAfter is the Retry-After (seconds) of a POST /approve turned
// away because maxApproving others are in progress.
const approveRetryAfter = "30"

// maxApproveBytes bounds a POST /approve body: its two parts at their limits
// and the multipart framing around them (boundaries, part headers).
const maxApproveBytes = plan.MaxFileBytes + approval.MaxFileBytes + 64<<10

// approvePartLimit is the most a part of POST /approve may hold: the limit of
// the file it is (a plan as apply PLAN and the approved directory read one,
// a signature file as a run reads it), so that a part larger than its file
// could be is refused after limit+1 bytes, not read whole first.
func approvePartLimit(name string) (limit int64, what string, ok bool) {
	switch name {
	case "plan":
		return plan.MaxFileBytes, "plan file", true
	case "sig":
		return approval.MaxFileBytes, "signature file", true
	}
	return 0, "", false
}

// maxRefusalBytes bounds the reason a POST /approve form is refused, in the
// log and the answer: the longest the daemon words (a part over its limit,
// the usage) is under 300 bytes.
const maxRefusalBytes = 1024

// maxJudgedRefusalBytes bounds the reason a submitted plan is refused once
// read (its planHash, its items, its signatures), in the log and the
// answer: room for the verdicts of the signatures shown (approval's
// maxVerdictsShown, 20, at some 300 bytes each), not for a value the
// submitter made 256 MiB long.
const maxJudgedRefusalBytes = 8 << 10

const approveUsage = "want a multipart form with the files plan and sig (curl -F plan=@plan.json -F sig=@plan.json.sig)"

// serveApprove is POST /approve (with --web.enable-lifecycle, and behind the
// web config's authentication like every endpoint): a multipart form with the
// plan file as "plan" and its signature file as "sig". A plan whose
// signatures do not suffice is refused with each signature's verdict and
// nothing is stored; an accepted one is stored in the approved directory and
// applied at the next run of its schedule, or at once with
// --apply-approved-immediately.
func (d *Daemon) serveApprove(w http.ResponseWriter, r *http.Request) {
	switch {
	case !d.enableLifecycle:
		writeText(w, http.StatusForbidden, "Lifecycle API is not enabled (serve --web.enable-lifecycle).")
		return
	case d.approve == nil:
		writeText(w, http.StatusNotFound, "no approvals inbox: serve --plans-dir with approvals in the config")
		return
	}
	select {
	case d.approving <- struct{}{}:
		defer func() { <-d.approving }()
	default:
		w.Header().Set("Retry-After", approveRetryAfter)
		writeText(w, http.StatusServiceUnavailable, fmt.Sprintf("busy: %d submissions are being received; nothing stored, try again in %s seconds", maxApproving, approveRetryAfter))
		return
	}
	planData, sigData, code, err := d.readApproval(w, r)
	if err != nil {
		// The form's errors quote what the client sent: a part's name, a
		// malformed header line, up to the 10 MiB mime/multipart allows a
		// part's headers, and a control byte quoted is four. Whole, every
		// request from anyone who reaches the port would write four times
		// its headers to the log.
		msg := untrusted.Clip(err.Error(), maxRefusalBytes)
		d.log.Warn("POST /approve refused", zap.Int("status", code), zap.String("error", msg))
		writeText(w, code, "refused, nothing stored: "+msg)
		return
	}
	a, err := d.approve(r.Context(), planData, sigData)
	if err != nil {
		// The judging's errors quote the submission too: the plan reader
		// names a bad value as it is (a plan part may hold 256 MiB), so
		// whole they would write what anyone who reaches the port sent,
		// several times over, to the log and the answer.
		msg := untrusted.Clip(err.Error(), maxJudgedRefusalBytes)
		d.log.Warn("POST /approve refused", zap.String("error", msg))
		writeText(w, http.StatusBadRequest, "refused, nothing stored: "+msg)
		return
	}
	d.log.Info("POST /approve: signed plan stored", zap.String("plan", a.Path), zap.Strings("policies", a.Policies))
	when := "at the next run of its schedule"
	if d.applyNow {
		select {
		case d.approveNow <- a:
			when = "now"
		default:
			// Sixteen plans already wait to start their runs; this one's
			// schedule (or one of those runs) applies it.
		}
	}
	writeText(w, http.StatusAccepted, fmt.Sprintf("stored %s; it is applied %s", a.Path, when))
}

// readApproval reads the parts of a POST /approve, each up to its own limit
// (approvePartLimit), and returns them with the status to answer when they
// cannot be had: 413 for a part or body over its limit, 408 for a body that
// stalled, 400 for anything else.
func (d *Daemon) readApproval(w http.ResponseWriter, r *http.Request) (planData, sigData []byte, code int, err error) {
	r.Body = &stallReader{
		r:     http.MaxBytesReader(w, r.Body, maxApproveBytes),
		rc:    http.NewResponseController(w),
		stall: d.timeouts.BodyStall,
		end:   time.Now().Add(d.timeouts.Read),
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, http.StatusBadRequest, fmt.Errorf("%s: %w", approveUsage, err)
	}
	parts := map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, readErrStatus(err), fmt.Errorf("read the form: %w", err)
		}
		name := p.FormName()
		limit, what, ok := approvePartLimit(name)
		switch {
		case !ok:
			return nil, nil, http.StatusBadRequest, fmt.Errorf("unexpected part %q: %s", name, approveUsage)
		case parts[name] != nil:
			return nil, nil, http.StatusBadRequest, fmt.Errorf("two %q parts: %s", name, approveUsage)
		}
		data, err := io.ReadAll(io.LimitReader(p, limit+1))
		if err != nil {
			return nil, nil, readErrStatus(err), fmt.Errorf("read the %s part: %w", name, err)
		}
		if int64(len(data)) > limit {
			return nil, nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the %s part is larger than %s, the most a %s may be", name, bytesize.Format(limit), what)
		}
		parts[name] = data
	}
	for _, name := range []string{"plan", "sig"} {
		if parts[name] == nil {
			return nil, nil, http.StatusBadRequest, fmt.Errorf("no %s part: %s", name, approveUsage)
		}
	}
	return parts["plan"], parts["sig"], 0, nil
}

// readErrStatus is the answer to a body that could not be read: 413 past
// maxApproveBytes, 408 when it stalled past its deadline.
func readErrStatus(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout
	}
	return http.StatusBadRequest
}

// stallReader moves the connection's read deadline on while a request body
// arrives: a client that sends nothing for stall is cut off, one on a slow
// link that keeps sending is not, and no body is read past end (Read after
// the handler started; a read deadline set here replaces the server's
// ReadTimeout, which counted from the request's first byte, so a request
// may take up to its headers' time, at most ReadHeader, longer).
type stallReader struct {
	r     io.ReadCloser
	rc    *http.ResponseController
	stall time.Duration
	end   time.Time
	set   time.Time // when the deadline was last moved
}

func (s *stallReader) Read(p []byte) (int, error) {
	// Moved at most every stall/8: a body is read in pieces of a few KiB,
	// and a deadline set that recently leaves 7/8 of stall to wait anyway.
	if now := time.Now(); now.Sub(s.set) >= s.stall/8 {
		s.set = now
		dl := now.Add(s.stall)
		if dl.After(s.end) {
			dl = s.end
		}
		// ErrNotSupported (a wrapped ResponseWriter) leaves the server's
		// ReadTimeout as the only bound.
		_ = s.rc.SetReadDeadline(dl)
	}
	return s.r.Read(p)
}

func (s *stallReader) Close() error { return s.r.Close() }

// serveReload is POST /-/reload: with --web.enable-lifecycle, a reload like
// SIGHUP (always reloads), answered 200 when the new config runs and 500 with
// the reason when it was refused (the running config stays). Without the
// flag it is 403, as in Prometheus: reloading over HTTP is opt-in.
func (d *Daemon) serveReload(w http.ResponseWriter, r *http.Request) {
	if !d.enableLifecycle {
		writeText(w, http.StatusForbidden, "Lifecycle API is not enabled (serve --web.enable-lifecycle).")
		return
	}
	reply := make(chan error, 1)
	select {
	case d.reloadReq <- reply:
	case <-r.Context().Done():
		return
	}
	select {
	case err := <-reply:
		if err != nil {
			writeText(w, http.StatusInternalServerError, "config reload failed; the running config stays: "+err.Error())
			return
		}
		writeText(w, http.StatusOK, "config reloaded")
	case <-r.Context().Done():
	}
}

func (d *Daemon) serveIndex(w http.ResponseWriter, _ *http.Request) {
	links := []string{"/metrics", "/healthz", "/readyz", "/-/healthy", "/-/ready"}
	if d.enablePlan {
		links = append(links, "/plan")
	}
	var b strings.Builder
	b.WriteString("<!doctype html><html><head><title>patjanitor</title></head><body><h1>patjanitor</h1><ul>")
	for _, l := range links {
		fmt.Fprintf(&b, `<li><a href="%s">%s</a></li>`, l, l)
	}
	b.WriteString("</ul></body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

// PlanEntry is the latest run of one schedule group, as /plan serves it.
type PlanEntry struct {
	Group
	// Trigger is "schedule", or "start" for the --run-on-start run of all
	// policies (whose Schedule is empty).
	Trigger  string    `json:"trigger"`
	RunID    string    `json:"runId,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Error is the run's error, if it had one; the plan, if any, is still
	// shown (incomplete data, a tripped guardrail).
	Error string `json:"error,omitempty"`
	// Plan is the plan document, null when the run failed before it had one.
	Plan *plan.Plan `json:"plan"`
}

// PlanResponse is the body of GET /plan.
type PlanResponse struct {
	// DryRun reports serve --dry-run: every policy is in report mode.
	DryRun bool        `json:"dryRun"`
	Plans  []PlanEntry `json:"plans"`
}

func (d *Daemon) servePlan(w http.ResponseWriter, _ *http.Request) {
	entries := d.plans.list()
	if len(entries) == 0 {
		writeText(w, http.StatusNotFound, "no run has finished yet")
		return
	}
	body, err := json.MarshalIndent(PlanResponse{DryRun: d.dryRun, Plans: entries}, "", "  ")
	if err != nil {
		d.log.Error("encode /plan", zap.Error(err))
		writeText(w, http.StatusInternalServerError, "cannot encode the plans")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(body, '\n'))
}

// planStore keeps the latest run of each schedule group (and of the start-up
// run). Plans are shared read-only: nothing modifies a plan after its run.
type planStore struct {
	mu      sync.Mutex
	entries map[string]PlanEntry
}

func planKey(e PlanEntry) string { return e.Trigger + "\x00" + e.Schedule }

func (s *planStore) put(e PlanEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = map[string]PlanEntry{}
	}
	s.entries[planKey(e)] = e
}

// retain drops the entries of schedule groups that no longer exist after a
// reload (a group whose policies changed keeps its entry until its next run;
// the entry names the policies it ran). The start-up run's entry stays.
func (s *planStore) retain(groups []*group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.entries {
		if e.Trigger == "start" {
			continue
		}
		if !slices.ContainsFunc(groups, func(g *group) bool { return g.Schedule == e.Schedule }) {
			delete(s.entries, k)
		}
	}
}

// list returns the entries ordered by trigger (schedule before start) and
// schedule.
func (s *planStore) list() []PlanEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PlanEntry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b PlanEntry) int {
		if c := strings.Compare(b.Trigger, a.Trigger); c != 0 {
			return c
		}
		return strings.Compare(a.Schedule, b.Schedule)
	})
	return out
}
