package idnsim

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Redacted replaces secrets (client secrets, bearer tokens) in the request log.
const Redacted = "REDACTED"

// maxLogEntries bounds the request log of a long-running simulator; the oldest
// entries are dropped first. No test comes near it.
const maxLogEntries = 100_000

// Request is one logged API request (control endpoints are not logged). Client
// secrets and bearer tokens are replaced by Redacted before the request is
// stored, in the body, the query and the headers alike.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	// EscapedPath is the path as sent, percent-encoded (Path is decoded: an
	// id's %2F is a "/" there).
	EscapedPath string
	RawQuery    string
	Query       url.Values
	ContentType string
	Body        []byte
	// Header is the request's headers with Authorization redacted to its scheme
	// ("Bearer REDACTED").
	Header http.Header
	// Status is the response status; 0 when a fault reset the connection.
	Status int
	// ClientID is the PAT the request's bearer token was issued to (also when
	// the token has expired, so that a 401 can be attributed), or for
	// /oauth/token the PAT whose credentials were accepted; "" otherwise.
	ClientID string
	// Operation is one of the Op* names, "" for an unknown path.
	Operation string
	// APIVersion is "v3", "v2025" or "v1" for PAT and identity calls.
	APIVersion string
	// Fault names the injected fault that answered, if any: "reset",
	// "truncate", "status 503", "latency".
	Fault string

	// seq orders the log by arrival. An entry is added when its response is
	// done, and a reset connection can make the client's retry finish first.
	seq uint64
}

// IsMutation reports whether the request asked to change a token or an API
// client: a POST, PATCH or DELETE to a PAT path, a bulk update, a PATCH or
// DELETE of an API client.
func (r Request) IsMutation() bool {
	switch r.Operation {
	case OpCreateToken, OpPatchToken, OpDeleteToken, OpBulkUpdateTokens, OpPatchOAuthClient, OpDeleteOAuthClient:
		return true
	}
	return false
}

// Mutations returns the requests that asked to change a token, in order.
func Mutations(reqs []Request) []Request {
	var out []Request
	for _, r := range reqs {
		if r.IsMutation() {
			out = append(out, r)
		}
	}
	return out
}

// ByOperation returns the requests of one operation, in order.
func ByOperation(reqs []Request, op string) []Request {
	var out []Request
	for _, r := range reqs {
		if r.Operation == op {
			out = append(out, r)
		}
	}
	return out
}

type requestJSON struct {
	Time        time.Time   `json:"time"`
	Method      string      `json:"method"`
	Path        string      `json:"path"`
	EscapedPath string      `json:"escapedPath,omitempty"`
	RawQuery    string      `json:"rawQuery,omitempty"`
	Query       url.Values  `json:"query,omitempty"`
	ContentType string      `json:"contentType,omitempty"`
	Body        string      `json:"body,omitempty"`
	Header      http.Header `json:"header,omitempty"`
	Status      int         `json:"status"`
	ClientID    string      `json:"clientId,omitempty"`
	Operation   string      `json:"operation,omitempty"`
	APIVersion  string      `json:"apiVersion,omitempty"`
	Fault       string      `json:"fault,omitempty"`
}

// MarshalJSON writes the body as a string (bodies are JSON or forms).
func (r Request) MarshalJSON() ([]byte, error) {
	return json.Marshal(requestJSON{
		Time: r.Time, Method: r.Method, Path: r.Path, EscapedPath: r.EscapedPath, RawQuery: r.RawQuery, Query: r.Query,
		ContentType: r.ContentType, Body: string(r.Body), Header: r.Header, Status: r.Status,
		ClientID: r.ClientID, Operation: r.Operation, APIVersion: r.APIVersion, Fault: r.Fault,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Request) UnmarshalJSON(b []byte) error {
	var j requestJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Request{
		Time: j.Time, Method: j.Method, Path: j.Path, EscapedPath: j.EscapedPath, RawQuery: j.RawQuery, Query: j.Query,
		ContentType: j.ContentType, Header: j.Header, Status: j.Status,
		ClientID: j.ClientID, Operation: j.Operation, APIVersion: j.APIVersion, Fault: j.Fault,
	}
	if j.Body != "" {
		r.Body = []byte(j.Body)
	}
	return nil
}

type requestLog struct {
	mu      sync.Mutex
	entries []Request // sorted by seq
	next    uint64
}

// arrive numbers a request as it arrives.
func (l *requestLog) arrive() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	return l.next
}

// add stores a finished request in arrival order. Almost every entry belongs
// at the end; the search only walks back past requests that overtook it.
func (l *requestLog) add(r Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) >= maxLogEntries {
		l.entries = slices.Delete(l.entries, 0, len(l.entries)-maxLogEntries+1)
	}
	i := len(l.entries)
	for i > 0 && l.entries[i-1].seq > r.seq {
		i--
	}
	l.entries = slices.Insert(l.entries, i, r)
}

// Requests returns the request log in order of arrival, oldest first.
func (s *Sim) Requests() []Request {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return slices.Clone(s.log.entries)
}

// ResetRequests empties the request log.
func (s *Sim) ResetRequests() {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	s.log.entries = nil
}

// secretParams are form and query parameters never stored.
var secretParams = map[string]bool{"client_secret": true, "refresh_token": true, "code": true, "code_verifier": true, "access_token": true}

// newEntry builds the log entry for a request, with every secret redacted.
func (s *Sim) newEntry(r *http.Request, rt route, body []byte) Request {
	e := Request{
		seq:  s.log.arrive(),
		Time: s.clock(), Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(),
		RawQuery:    redactForm(r.URL.RawQuery),
		Query:       redactValues(r.URL.Query()),
		ContentType: r.Header.Get("Content-Type"),
		Header:      r.Header.Clone(),
		Operation:   rt.op,
	}
	if rt.version != nil {
		e.APIVersion = rt.version.name
	}
	if h := e.Header.Get("Authorization"); h != "" {
		scheme, _, _ := strings.Cut(h, " ")
		e.Header.Set("Authorization", scheme+" "+Redacted)
	}
	switch mt, _, _ := mime.ParseMediaType(e.ContentType); {
	case len(body) == 0:
	case mt == "application/x-www-form-urlencoded":
		e.Body = []byte(redactForm(string(body)))
	case mt == "multipart/form-data":
		e.Body = []byte("<multipart form not logged>")
	default:
		e.Body = append([]byte(nil), body...)
	}
	// Attribute the request to a client even when a fault answers it before
	// authentication would.
	if tok, ok := bearer(r); ok {
		s.mu.RLock()
		if sess, found := s.sessions[tok]; found {
			e.ClientID = sess.caller.clientID
		}
		s.mu.RUnlock()
	}
	return e
}

// redactForm replaces the values of secret parameters in an encoded form or
// query, keeping everything else byte for byte.
func redactForm(s string) string {
	if s == "" {
		return s
	}
	parts := strings.Split(s, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); err == nil && secretParams[key] {
			parts[i] = k + "=" + Redacted
		}
	}
	return strings.Join(parts, "&")
}

func redactValues(v url.Values) url.Values {
	for k := range v {
		if secretParams[k] {
			for i := range v[k] {
				v[k][i] = Redacted
			}
		}
	}
	return v
}
