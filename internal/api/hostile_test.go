package api

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// The hostile-tenant tests of the API client: servers on 127.0.0.1 that
// redirect, echo secrets, or do not resolve. The engine-level scenarios (what
// the journal says) are in internal/janitor.

// seenRequest is what a hostile server received.
type seenRequest struct {
	Method, Path, Query, Authorization, Body string
}

// witness is a server that records every request it receives and answers
// with answer (a 200 "[]" if nil): the place a redirect points to.
type witness struct {
	mu     sync.Mutex
	reqs   []seenRequest
	srv    *httptest.Server
	answer http.HandlerFunc
}

func newWitness(t *testing.T, tls bool, answer http.HandlerFunc) *witness {
	t.Helper()
	w := &witness{answer: answer}
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.reqs = append(w.reqs, seenRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), string(body)})
		w.mu.Unlock()
		if w.answer != nil {
			w.answer(rw, r)
			return
		}
		writeJSON(rw, http.StatusOK, "[]")
	})
	if tls {
		w.srv = httptest.NewTLSServer(h)
	} else {
		w.srv = httptest.NewServer(h)
	}
	t.Cleanup(w.srv.Close)
	return w
}

func (w *witness) requests() []seenRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]seenRequest(nil), w.reqs...)
}

func (w *witness) host() string {
	return strings.TrimPrefix(strings.TrimPrefix(w.srv.URL, "http://"), "https://")
}

// dialLog is a transport that records every address it dials and refuses
// anything but loopback: the tests can then point a redirect at a
// non-loopback address and see whether the client tried to go there.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialLog) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		return nil, fmt.Errorf("test transport: refusing to dial %s", addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *dialLog) dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// The token endpoint of an https tenant answers 307 to a plain-http address
// (another loopback server, and a non-loopback one): the form holding
// client_secret is not re-posted anywhere, no access token comes from the
// redirect target, no API request follows, and the error names the status
// and the Location's host, not its path or query. Not retried.
func TestHostileTokenEndpointRedirect(t *testing.T) {
	attacker := newWitness(t, false, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, `{"access_token":"attacker-token","token_type":"bearer","expires_in":3600}`)
	})
	for name, location := range map[string]string{
		"loopback http":     attacker.srv.URL + "/oauth/token?stolen=1",
		"non-loopback http": "http://203.0.113.7:8080/oauth/token?stolen=1",
	} {
		t.Run(name, func(t *testing.T) {
			var tenantReqs []seenRequest
			var mu sync.Mutex
			tenant := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				tenantReqs = append(tenantReqs, seenRequest{Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization")})
				mu.Unlock()
				if r.URL.Path == "/oauth/token" {
					http.Redirect(w, r, location, http.StatusTemporaryRedirect)
					return
				}
				writeJSON(w, http.StatusOK, "[]")
			}))
			defer tenant.Close()
			dl := &dialLog{}
			tr := tenant.Client().Transport.(*http.Transport).Clone()
			tr.DialContext = dl.dial
			c, rec := newTestClient(t, tenant.URL, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: tr} })

			got, err := c.ListTokens(t.Context(), ListOptions{})
			var e *Error
			if got != nil || !errors.Is(err, ErrRedirect) || !errors.As(err, &e) || e.Operation != OpOAuthToken || e.StatusCode != 307 {
				t.Fatalf("ListTokens = %d tokens, %v; want a 307 error from the token endpoint", len(got), err)
			}
			u, _ := url.Parse(location)
			if msg := err.Error(); !strings.Contains(msg, "307") || !strings.Contains(msg, "host "+u.Host) ||
				strings.Contains(msg, "stolen") || strings.Contains(msg, "/oauth/token?") || strings.Contains(msg, testSecret) {
				t.Errorf("error %q: want the status and the Location host only", msg)
			}
			if r := attacker.requests(); len(r) != 0 {
				t.Errorf("the redirect target received %+v", r)
			}
			for _, a := range dl.dialed() {
				if a != tenant.Listener.Addr().String() {
					t.Errorf("the client dialed %s (only the tenant %s was expected)", a, tenant.Listener.Addr())
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(tenantReqs) != 1 || tenantReqs[0].Path != "/oauth/token" {
				t.Errorf("the tenant received %+v, want exactly one token request (no retry, no API call)", tenantReqs)
			}
			if _, retries, sleeps := rec.snapshot(); len(retries)+len(sleeps) != 0 {
				t.Errorf("retries %v, sleeps %v: a redirect is not retried", retries, sleeps)
			}
		})
	}
}

// Every API operation answered with a redirect to another port of the same
// host: nothing reaches the redirect target (in particular no Authorization
// header), nothing is retried, and the error is ErrRedirect naming the
// Location's host.
func TestHostileAPIRedirectsAreNotFollowed(t *testing.T) {
	attacker := newWitness(t, false, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPatch:
			writeJSON(w, http.StatusOK, oneToken("t1"))
		default:
			writeJSON(w, http.StatusOK, "[]")
		}
	})
	ops := map[string]func(c *Client) error{
		OpListTokens:  func(c *Client) error { _, err := c.ListTokens(t.Context(), ListOptions{}); return err },
		OpDeleteToken: func(c *Client) error { return c.DeleteToken(t.Context(), "t1") },
		OpPatchToken: func(c *Client) error {
			_, err := c.PatchToken(t.Context(), "t1", []pat.PatchOp{pat.Rename("x")})
			return err
		},
		OpListPublicIdentities: func(c *Client) error {
			_, err := c.ListPublicIdentities(t.Context(), []string{"o1"})
			return err
		},
	}
	for _, status := range []int{301, 302, 303, 307, 308} {
		for op, call := range ops {
			t.Run(fmt.Sprintf("%s %d", op, status), func(t *testing.T) {
				var mu sync.Mutex
				n := 0
				ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					n++
					mu.Unlock()
					http.Redirect(w, r, attacker.srv.URL+"/v3/personal-access-tokens/"+testClientID+"?secret=1", status)
				})
				c, rec := newTestClient(t, ft.srv.URL, nil)
				err := call(c)
				var e *Error
				if !errors.Is(err, ErrRedirect) || !errors.As(err, &e) || e.StatusCode != status || e.Location != attacker.host() {
					t.Fatalf("error %v, want ErrRedirect %d to %s", err, status, attacker.host())
				}
				if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(status)) || !strings.Contains(msg, attacker.host()) ||
					strings.Contains(msg, "secret=1") || strings.Contains(msg, testClientID) {
					t.Errorf("error %q: want the status and the host only", msg)
				}
				if r := attacker.requests(); len(r) != 0 {
					t.Fatalf("the redirect target received %+v", r)
				}
				mu.Lock()
				defer mu.Unlock()
				if n != 1 {
					t.Errorf("the tenant received %d requests, want 1 (not retried)", n)
				}
				if _, retries, _ := rec.snapshot(); len(retries) != 0 {
					t.Errorf("retries %v", retries)
				}
			})
		}
	}
}

// hostileSecret holds every character an encoding changes.
const hostileSecret = `abc+def/ghi=jkl%mno&p q"r\s<t>u` + "\x01é-0123456789"

// wireForms is every form a server could echo a secret in, computed here
// independently of the redactor.
func wireForms(v string) map[string]string {
	j, _ := json.Marshal(v)
	return map[string]string{
		"verbatim":       v,
		"query-escaped":  url.QueryEscape(v),
		"path-escaped":   url.PathEscape(v),
		"json":           string(j[1 : len(j)-1]),
		"base64":         base64.StdEncoding.EncodeToString([]byte(v)),
		"base64 raw":     base64.RawStdEncoding.EncodeToString([]byte(v)),
		"base64 url":     base64.URLEncoding.EncodeToString([]byte(v)),
		"base64 url raw": base64.RawURLEncoding.EncodeToString([]byte(v)),
		"basic auth":     base64.StdEncoding.EncodeToString([]byte(testClientID + ":" + v)),
	}
}

// A token endpoint that echoes the client secret back, in every form it can
// take, in every kind of error answer: the error never carries it.
func TestHostileTokenEndpointEchoesSecret(t *testing.T) {
	for formName, form := range wireForms(hostileSecret) {
		quoted, _ := json.Marshal("bad client_secret=" + form)
		for shape, answer := range map[string]func(w http.ResponseWriter){
			"oauth error": func(w http.ResponseWriter) {
				writeJSON(w, 400, `{"error":"invalid_client","error_description":`+string(quoted)+`}`)
			},
			"message json": func(w http.ResponseWriter) { writeJSON(w, 401, `{"message":`+string(quoted)+`}`) },
			"text body": func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(403)
				_, _ = io.WriteString(w, "<p>denied for client_secret="+form+"</p>")
			},
			"server error": func(w http.ResponseWriter) { writeJSON(w, 500, `{"detailCode":`+string(quoted)+`}`) },
			"2xx garbage":  func(w http.ResponseWriter) { writeJSON(w, 200, `{"token":`+string(quoted)+`}`) },
			"2xx error":    func(w http.ResponseWriter) { writeJSON(w, 200, `{"error":`+string(quoted)+`}`) },
		} {
			t.Run(formName+"/"+shape, func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answer(w) }))
				defer srv.Close()
				c, _ := newTestClient(t, srv.URL, func(cfg *Config) {
					cfg.ClientSecret = secret.New(hostileSecret)
					cfg.MaxAttempts = 2
				})
				_, err := c.ListTokens(t.Context(), ListOptions{})
				if err == nil {
					t.Fatal("no error")
				}
				for name, f := range wireForms(hostileSecret) {
					if strings.Contains(err.Error(), f) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), f) {
						t.Errorf("the %s form of the secret is in the error: %v", name, err)
					}
				}
			})
		}
	}
}

// An API error body that echoes the bearer token: the error does not carry it.
func TestHostileAPIErrorEchoesAccessToken(t *testing.T) {
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		writeJSON(w, 400, `{"messages":[{"text":"bad header Bearer `+tok+` (`+base64.StdEncoding.EncodeToString([]byte(tok))+`)"}]}`)
	})
	c, _ := newTestClient(t, ft.srv.URL, nil)
	err := c.DeleteToken(t.Context(), "t1")
	if err == nil || strings.Contains(err.Error(), "access-1") || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString([]byte("access-1"))) {
		t.Fatalf("error %v: want one without the access token", err)
	}
	if !strings.Contains(err.Error(), "bad header Bearer "+secret.Redacted) {
		t.Errorf("error %v: the rest of the message should remain", err)
	}
}

// A token answer whose body breaks off mid-read is a connection failure
// (retried), told by the read error's type, not by oauth2's message text.
func TestTokenBodyBrokenIsRetried(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth/token" {
			writeJSON(w, 200, "[]")
			return
		}
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			// Promise 500 bytes, send 20, hang up.
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "500")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"access_token":"abc`)
			panic(http.ErrAbortHandler)
		}
		writeJSON(w, 200, `{"access_token":"good","token_type":"bearer","expires_in":3600}`)
	}))
	defer srv.Close()
	c, rec := newTestClient(t, srv.URL, nil)
	if _, err := c.ListTokens(t.Context(), ListOptions{}); err != nil {
		t.Fatalf("ListTokens: %v", err)
	}
	if _, retries, _ := rec.snapshot(); len(retries) != 1 || retries[0] != "oauth_token/connection" {
		t.Errorf("retries %v, want one oauth_token/connection", retries)
	}
}

// fakeDNS answers every query on 127.0.0.1 with NXDOMAIN and counts them, so
// the resolver's "no such host" is real (Go's own resolver parses the answer)
// yet nothing leaves the machine.
type fakeDNS struct {
	conn    net.PacketConn
	mu      sync.Mutex
	queries []string
}

func newFakeDNS(t *testing.T) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{conn: pc}
	t.Cleanup(func() { _ = pc.Close() })
	go d.serve()
	return d
}

func (d *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 12 {
			continue
		}
		q := buf[:n]
		d.mu.Lock()
		d.queries = append(d.queries, qname(q[12:]))
		d.mu.Unlock()
		resp := append([]byte(nil), q...)
		// QR, opcode and RD copied, RA; RCODE 3 (NXDOMAIN); no answers,
		// authority or additional records (EDNS dropped).
		flags := binary.BigEndian.Uint16(q[2:4])
		binary.BigEndian.PutUint16(resp[2:4], 0x8000|flags&0x7900|0x0080|3)
		binary.BigEndian.PutUint16(resp[6:8], 0)
		binary.BigEndian.PutUint16(resp[8:10], 0)
		binary.BigEndian.PutUint16(resp[10:12], 0)
		end := 12
		for end < len(resp) && resp[end] != 0 {
			end += int(resp[end]) + 1
		}
		resp = resp[:min(end+5, len(resp))] // the name, its terminator, QTYPE, QCLASS
		_, _ = d.conn.WriteTo(resp, addr)
	}
}

func qname(b []byte) string {
	var labels []string
	for len(b) > 0 && b[0] != 0 && int(b[0]) < len(b) {
		labels = append(labels, string(b[1:1+b[0]]))
		b = b[1+b[0]:]
	}
	return strings.Join(labels, ".")
}

func (d *fakeDNS) names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.queries...)
}

// A tenant host that does not resolve (RFC 2606 reserves .invalid) fails at
// once: one lookup, no retry, no wait. The resolver is a fake on loopback, so
// the test sends nothing off the machine.
func TestHostileUnresolvableHostFailsAtOnce(t *testing.T) {
	dns := newFakeDNS(t)
	var mu sync.Mutex
	dials := 0
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns.conn.LocalAddr().String())
	}}
	dialer := &net.Dialer{Resolver: resolver}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dials++
		mu.Unlock()
		return dialer.DialContext(ctx, network, addr)
	}}
	c, rec := newTestClient(t, "https://tenant.patjanitor.invalid", func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
	_, err := c.ListTokens(t.Context(), ListOptions{})
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound || errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("error %v: want a DNS not-found error, not retried", err)
	}
	if !strings.Contains(err.Error(), "tenant.patjanitor.invalid") {
		t.Errorf("error %q does not name the host", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if dials != 1 {
		t.Errorf("%d connection attempts, want 1", dials)
	}
	if _, retries, sleeps := rec.snapshot(); len(retries)+len(sleeps) != 0 {
		t.Errorf("retries %v, sleeps %v", retries, sleeps)
	}
	for _, n := range dns.names() {
		if !strings.HasPrefix(n, "tenant.patjanitor.invalid") {
			t.Errorf("DNS query for %q", n)
		}
	}
	if len(dns.names()) == 0 {
		t.Error("the fake resolver saw no query: the test did not exercise DNS")
	}
}

// A redirect whose Location does not parse: net/http would fail the request
// with an error quoting the Location whole; the client reports the 3xx
// without it, once.
func TestHostileUnparseableRedirect(t *testing.T) {
	var mu sync.Mutex
	n := 0
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Location", "http://[::1/v3/personal-access-tokens/"+testClientID+"?secret=1")
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	c, rec := newTestClient(t, ft.srv.URL, nil)
	err := c.DeleteToken(t.Context(), "t1")
	if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), "307") || strings.Contains(err.Error(), "secret=1") ||
		strings.Contains(err.Error(), testClientID) {
		t.Fatalf("error %v: want ErrRedirect without the Location", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if _, retries, _ := rec.snapshot(); n != 1 || len(retries) != 0 {
		t.Errorf("%d requests, retries %v: want 1, none", n, retries)
	}
}

// TestHostileAccessTokenWithCRLF: the token endpoint answers an access
// token holding CR and LF (a header injection attempt, or a broken
// gateway). No header can carry it: the request failed in the transport
// and was retried as a connection failure, MaxAttempts times with backoff,
// and reported as retries exhausted. It must fail at once, naming the
// problem and never the token, with nothing sent to the API.
func TestHostileAccessTokenWithCRLF(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/oauth/token" {
			writeJSON(w, 200, `{"access_token":"tok-9f3e\r\nX-Injected: 1","token_type":"bearer","expires_in":3600}`)
			return
		}
		writeJSON(w, 200, "[]")
	}))
	defer srv.Close()
	c, rec := newTestClient(t, srv.URL, nil)
	_, err := c.ListTokens(t.Context(), ListOptions{})
	if err == nil {
		t.Fatal("ListTokens succeeded with an access token no header can carry")
	}
	msg := err.Error()
	if errors.Is(err, ErrRetriesExhausted) || !strings.Contains(msg, "CR or LF") || strings.Contains(msg, "tok-9f3e") || strings.Contains(msg, "X-Injected") {
		t.Errorf("error %q: want an immediate error naming CR/LF, without the token", msg)
	}
	if _, retries, sleeps := rec.snapshot(); len(retries) != 0 || len(sleeps) != 0 {
		t.Errorf("retried %v (slept %v)", retries, sleeps)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "/oauth/token" {
		t.Errorf("the tenant received %v, want only the token request", paths)
	}
}
