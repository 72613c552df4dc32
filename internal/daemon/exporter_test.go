package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestPrometheusEndpoints: /-/healthy and /-/ready answer like /healthz and
// /readyz; POST /-/reload is 403 without EnableLifecycle.
func TestPrometheusEndpoints(t *testing.T) {
	h := newHarness(t, configYAML("@daily", policyYAML("a", "report", "")), nil)
	h.start()
	for path, want := range map[string]int{"/-/healthy": 200, "/-/ready": 200} {
		if code, body := h.get(path); code != want {
			t.Errorf("GET %s = %d %q, want %d", path, code, body, want)
		}
	}
	if code, body := h.post("/-/reload"); code != http.StatusForbidden || !strings.Contains(body, "--web.enable-lifecycle") {
		t.Errorf("POST /-/reload without the lifecycle API = %d %q, want 403", code, body)
	}
	if reloads, _ := h.metrics.get(); len(reloads) != 1 {
		t.Errorf("reloads %v: a refused POST /-/reload reloaded", reloads)
	}
}

// TestLifecycleReload: with EnableLifecycle, POST /-/reload reloads (even
// unchanged content), answers 200; a broken file answers 500 with the reason
// and the running config stays; GET is not a reload.
func TestLifecycleReload(t *testing.T) {
	h := newHarness(t, configYAML("@daily", policyYAML("a", "report", "")), func(o *Options) { o.EnableLifecycle = true })
	h.start()
	if code, body := h.post("/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload = %d %q", code, body)
	}
	writeFile(t, h.path, configYAML("@daily", policyYAML("a", "report", "")+policyYAML("b", "enforce", "")))
	if code, body := h.post("/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload = %d %q", code, body)
	}
	if got := policyNames(h.d.gen.Load().cfg); strings.Join(got, ",") != "a,b" {
		t.Errorf("policies after reload %v", got)
	}
	writeFile(t, h.path, "policies: [")
	code, body := h.post("/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, "running config stays") {
		t.Errorf("POST /-/reload of a broken file = %d %q, want 500 with the reason", code, body)
	}
	if code, _ := h.get("/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload = %d, want 405", code)
	}
	reloads, _ := h.metrics.get()
	if want := []bool{true, true, true, false}; !slices.Equal(reloads, want) {
		t.Errorf("reloads %v, want %v", reloads, want)
	}
}

func (h *harness) post(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Post(h.base+path, "text/plain", nil)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "patjanitor test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestWebConfigFileTLSAndBasicAuth: --web.config.file (exporter-toolkit)
// serves the endpoints over TLS with basic auth (a bcrypt hash): without
// credentials or with a wrong password 401, with them 200; plain HTTP gets
// no answer; a web config that does not load stops New.
func TestWebConfigFileTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	writeFile(t, webCfg, "tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\nbasic_auth_users:\n  prometheus: "+string(hash)+"\n")

	h := newHarness(t, configYAML("@daily", policyYAML("a", "report", "")), func(o *Options) { o.WebConfigFile = webCfg })
	h.run()
	// Generous: an unknown user is checked against a cost-10 dummy hash (no
	// timing oracle), slow under -race on a busy machine.
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	base := "https://" + h.d.Addr().String()
	get := func(path, user, pass string) int {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "https /readyz 200", 10*time.Second, func() bool { return get("/readyz", "prometheus", "s3cret-pass") == http.StatusOK })
	for _, c := range []struct {
		path, user, pass string
		want             int
	}{
		{"/metrics", "prometheus", "s3cret-pass", 200},
		{"/-/healthy", "prometheus", "s3cret-pass", 200},
		{"/metrics", "", "", 401},
		{"/metrics", "prometheus", "wrong", 401},
		{"/healthz", "other", "s3cret-pass", 401},
	} {
		if got := get(c.path, c.user, c.pass); got != c.want {
			t.Errorf("GET %s as %q: %d, want %d", c.path, c.user, got, c.want)
		}
	}
	// Plain HTTP on the TLS port: no HTTP answer with data.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + h.d.Addr().String() + "/metrics")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "patjanitor") {
			t.Errorf("plain HTTP got %d %q", resp.StatusCode, b)
		}
	}

	// A web config naming a missing certificate is refused at start.
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, bad, "tls_server_config:\n  cert_file: "+filepath.Join(dir, "missing.crt")+"\n  key_file: "+keyFile+"\n")
	_, err = New(Options{ConfigPath: h.path, Load: shortLoad, NewRunner: h.runners.newRunner, Registry: h.d.reg, ListenAddress: "127.0.0.1:0", WebConfigFile: bad})
	if err == nil || !strings.Contains(err.Error(), "--web.config.file") {
		t.Errorf("New with a broken web config: %v", err)
	}
}
