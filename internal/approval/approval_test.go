package approval

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// reviewer is a key generated for a test, written to disk in OpenSSH format
// so that ssh-keygen can use it too.
type reviewer struct {
	name    string
	priv    crypto.Signer
	signer  ssh.Signer
	keyFile string // private key, OpenSSH format, 0600
	pubFile string
	authKey string // "type base64" line
}

func newReviewer(t *testing.T, name, kind string) *reviewer {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch kind {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown key kind %s", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &reviewer{name: name, priv: priv, signer: signer,
		keyFile: filepath.Join(dir, "id_"+kind), pubFile: filepath.Join(dir, "id_"+kind+".pub"),
		authKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))}
	if err := os.WriteFile(r.keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.pubFile, []byte(r.authKey+" "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// signPlan signs plan with r through the package, appending to PLAN.sig.
func signPlan(t *testing.T, planFile string, r *reviewer, reason string) {
	t.Helper()
	data, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sign(data, r.signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := AppendSignature(SigFile(planFile), sig, now, reason); err != nil {
		t.Fatal(err)
	}
}

func check(t *testing.T, planFile string, pol Policy, at time.Time) *Result {
	t.Helper()
	data, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ReadSigFile(SigFile(planFile))
	if err != nil {
		t.Fatal(err)
	}
	return pol.Check(data, entries, at)
}

func TestTwoReviewersEveryKeyKind(t *testing.T) {
	for _, kinds := range [][2]string{{"ed25519", "ecdsa"}, {"rsa", "ed25519"}} {
		t.Run(kinds[0]+"+"+kinds[1], func(t *testing.T) {
			dir := t.TempDir()
			alice, bob := newReviewer(t, "alice@acme.com", kinds[0]), newReviewer(t, "bob@acme.com", kinds[1])
			signers := writeFile(t, dir, "allowed_signers", fmt.Sprintf("# reviewers\nalice@acme.com %s\nbob@acme.com namespaces=\"patjanitor-plan\" %s bob\n", alice.authKey, bob.authKey))
			as, err := LoadAllowedSigners(signers)
			if err != nil {
				t.Fatal(err)
			}
			planFile := writeFile(t, dir, "plan.json", `{"version":1}`+"\n")
			pol := Policy{Signers: as, Required: 2}

			signPlan(t, planFile, alice, "looked at every delete")
			res := check(t, planFile, pol, now)
			if res.Approved() || res.Err() == nil || !strings.Contains(res.Err().Error(), "needs 2 approvals by distinct principals and has 1 valid") {
				t.Fatalf("one signature approved the plan: %v", res.Err())
			}
			signPlan(t, planFile, bob, "")
			res = check(t, planFile, pol, now)
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			got := res.Approvals()
			if len(got) != 2 || got[0].Principal != "alice@acme.com" || got[1].Principal != "bob@acme.com" ||
				got[0].Reason != "looked at every delete" || !got[0].SignedAt.Equal(now) ||
				got[0].Fingerprint != ssh.FingerprintSHA256(alice.signer.PublicKey()) {
				t.Fatalf("approvals %+v", got)
			}
		})
	}
}

// Every way a signature must not count, each with its reason.
func TestSignaturesThatDoNotCount(t *testing.T) {
	dir := t.TempDir()
	alice := newReviewer(t, "alice", "ed25519")
	carol := newReviewer(t, "carol", "ed25519")  // expired
	dave := newReviewer(t, "dave", "ecdsa")      // revoked
	erin := newReviewer(t, "erin", "ed25519")    // git-only namespace
	mallory := newReviewer(t, "mallory", "rsa")  // not listed
	frank := newReviewer(t, "frank", "ed25519")  // not valid yet
	alice2 := newReviewer(t, "alice", "ed25519") // alice's second key
	signers := writeFile(t, dir, "allowed_signers", strings.Join([]string{
		"alice " + alice.authKey,
		"alice " + alice2.authKey,
		`carol valid-before="20261201" ` + carol.authKey,
		"dave " + dave.authKey,
		`erin namespaces="git" ` + erin.authKey,
		`frank valid-after="20270101Z" ` + frank.authKey,
	}, "\n")+"\n")
	revoked := writeFile(t, dir, "revoked", dave.authKey+"\n")
	as, err := LoadAllowedSigners(signers)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := LoadRevokedKeys(revoked)
	if err != nil {
		t.Fatal(err)
	}
	planFile := writeFile(t, dir, "plan.json", "the approved plan\n")
	other := writeFile(t, dir, "other.json", "another plan\n")
	for _, r := range []*reviewer{alice, alice, alice2, carol, dave, erin, mallory, frank} {
		signPlan(t, planFile, r, "")
	}
	// A signature over another file, copied in.
	otherData, _ := os.ReadFile(other)
	sig, _ := Sign(otherData, alice.signer)
	if err := AppendSignature(SigFile(planFile), sig, now, "other file"); err != nil {
		t.Fatal(err)
	}
	// A signature in git's namespace by a listed key.
	data, _ := os.ReadFile(planFile)
	gitSig, err := sshsig.Sign(strings.NewReader(string(data)), alice.signer, HashAlgorithm, "git")
	if err != nil {
		t.Fatal(err)
	}
	if err := AppendSignature(SigFile(planFile), gitSig, now, ""); err != nil {
		t.Fatal(err)
	}
	// A malformed block.
	f, _ := os.OpenFile(SigFile(planFile), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "%s\nbm90IGEgc2lnbmF0dXJl\n%s\n", beginLine, endLine)
	_ = f.Close()

	res := check(t, planFile, Policy{Signers: as, Revoked: rk, Required: 2}, now)
	want := []string{
		"counted",
		"the same key signed twice",
		"principal alice signed twice",
		"the key expired at 2026-12-01",
		"the key is revoked",
		"allows only namespaces git",
		"the key is not in the allowed signers file",
		"the key is valid only after 2027-01-01T00:00:00Z",
		"does not verify over this plan file",
		`made in namespace "git", not "patjanitor-plan"`,
		"malformed signature",
	}
	if len(res.Verdicts) != len(want) {
		t.Fatalf("%d verdicts, want %d:\n%v", len(res.Verdicts), len(want), res.Err())
	}
	for i, w := range want {
		if !strings.Contains(res.Verdicts[i].String(), w) {
			t.Errorf("verdict %d = %q, want it to say %q", i+1, res.Verdicts[i], w)
		}
	}
	if res.Approved() {
		t.Fatal("approved with one principal")
	}
	msg := res.Err().Error()
	for i := range want {
		if !strings.Contains(msg, fmt.Sprintf("signature %d ", i+1)) {
			t.Errorf("the error does not list signature %d:\n%s", i+1, msg)
		}
	}
}

// A plan changed after signing, or a signature over another file, does not
// verify, even by a key that would otherwise count.
func TestEditedPlanDoesNotVerify(t *testing.T) {
	dir := t.TempDir()
	alice, bob := newReviewer(t, "alice", "ed25519"), newReviewer(t, "bob", "ecdsa")
	as, err := ParseAllowedSigners("allowed", []byte("alice "+alice.authKey+"\nbob "+bob.authKey+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	planFile := writeFile(t, dir, "plan.json", `{"items":[{"tokenId":"a"}]}`+"\n")
	signPlan(t, planFile, alice, "")
	signPlan(t, planFile, bob, "")
	if err := os.WriteFile(planFile, []byte(`{"items":[{"tokenId":"b"}]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := check(t, planFile, Policy{Signers: as, Required: 1}, now)
	if res.Approved() {
		t.Fatal("an edited plan was approved")
	}
	for _, v := range res.Verdicts {
		if !strings.Contains(v.Why, "does not verify over this plan file") || v.Principal == "" {
			t.Errorf("verdict %s", v)
		}
	}
}

func TestAllowedSignersErrors(t *testing.T) {
	k := newReviewer(t, "k", "ed25519").authKey
	for _, tc := range []struct{ content, want string }{
		{"alice\n", "allowed:1: missing key after the principals"},
		{"alice ssh-ed25519 AAAAnotbase64\n", "allowed:1: key:"},
		{"# ok\n\nalice foo=\"x\" " + k + "\n", `allowed:3: unknown option "foo"`},
		{"alice valid-after=\"2026\" " + k + "\n", `allowed:1: option valid-after: "2026" is not YYYYMMDD`},
		{"alice cert-authority " + k + "\n", "allowed:1: cert-authority is not supported"},
		{"\"alice " + k + "\n", "allowed:1: principals: unterminated quote"},
		{"alice namespaces=patjanitor-plan " + k + "\n", "option namespaces wants a quoted value"},
		{"# nothing\n", "no signers"},
		{"alice " + k + "\nbob\n", "allowed:2: missing key"},
	} {
		_, err := ParseAllowedSigners("allowed", []byte(tc.content))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.content, err, tc.want)
		}
	}
}

func TestSigFileErrors(t *testing.T) {
	if _, err := ParseSigFile("p.sig", []byte("hello\n")); err == nil || !strings.Contains(err.Error(), "p.sig:1: unexpected text outside a signature") {
		t.Errorf("err %v", err)
	}
	if _, err := ParseSigFile("p.sig", []byte(metaPrefix+"{}\n")); err == nil || !strings.Contains(err.Error(), "before any signature") {
		t.Errorf("err %v", err)
	}
	entries, err := ParseSigFile("p.sig", []byte(beginLine+"\nAAAA\n"))
	if err != nil || len(entries) != 1 || entries[0].Err == nil || !strings.Contains(entries[0].Err.Error(), "no END line") {
		t.Errorf("entries %+v err %v", entries, err)
	}
	if _, err := LoadAllowedSigners("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("/dev/zero: %v", err)
	}
	if _, err := LoadRevokedKeys(writeFile(t, t.TempDir(), "krl", "SSHKRL\n\x00\x00")); err == nil || !strings.Contains(err.Error(), "binary KRL") {
		t.Errorf("KRL: %v", err)
	}
}

// A key whose private half lives only in an ssh-agent signs through it.
func TestSignWithAgent(t *testing.T) {
	for _, kind := range []string{"ed25519", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			r := newReviewer(t, "alice", kind)
			keyring := agent.NewKeyring()
			if err := keyring.Add(agent.AddedKey{PrivateKey: r.priv}); err != nil {
				t.Fatal(err)
			}
			sock := filepath.Join(t.TempDir(), "agent.sock")
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = l.Close() }()
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() { _ = agent.ServeAgent(keyring, c); _ = c.Close() }()
				}
			}()
			signer, done, err := KeySource{AgentSocket: sock}.Signer(r.pubFile)
			if err != nil {
				t.Fatal(err)
			}
			defer done()
			planFile := writeFile(t, t.TempDir(), "plan.json", "plan\n")
			data, _ := os.ReadFile(planFile)
			sig, err := Sign(data, signer)
			if err != nil {
				t.Fatal(err)
			}
			if err := AppendSignature(SigFile(planFile), sig, now, ""); err != nil {
				t.Fatal(err)
			}
			as, _ := ParseAllowedSigners("allowed", []byte("alice "+r.authKey+"\n"))
			if err := check(t, planFile, Policy{Signers: as, Required: 1}, now).Err(); err != nil {
				t.Fatal(err)
			}
			other := newReviewer(t, "bob", "ed25519")
			if _, _, err := (KeySource{AgentSocket: sock}).Signer(other.pubFile); err == nil || !strings.Contains(err.Error(), "does not hold the private key") {
				t.Errorf("a key not in the agent: %v", err)
			}
			if _, _, err := (KeySource{}).Signer(r.pubFile); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK is not set") {
				t.Errorf("no agent: %v", err)
			}
		})
	}
}

// patjanitor's signatures verify with ssh-keygen -Y verify, and ssh-keygen's
// signatures count in patjanitor, for every key kind.
func TestOpenSSHInterop(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen is not installed (apt-get install openssh-client); .ci/run installs it")
	}
	for _, kind := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			r := newReviewer(t, "alice@acme.com", kind)
			signers := writeFile(t, dir, "allowed_signers", "alice@acme.com "+r.authKey+"\n")
			planFile := writeFile(t, dir, "plan.json", `{"version":1,"items":[]}`+"\n")

			// patjanitor signs, ssh-keygen verifies.
			signPlan(t, planFile, r, "reason with \"quotes\"\nand a newline")
			cmd := exec.Command(keygen, "-Y", "verify", "-f", signers, "-I", "alice@acme.com", "-n", Namespace, "-s", SigFile(planFile))
			cmd.Stdin, _ = os.Open(planFile)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen -Y verify refused patjanitor's signature: %v\n%s", err, out)
			}
			// ...and refuses it for another namespace.
			cmd = exec.Command(keygen, "-Y", "verify", "-f", signers, "-I", "alice@acme.com", "-n", "git", "-s", SigFile(planFile))
			cmd.Stdin, _ = os.Open(planFile)
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Fatalf("ssh-keygen verified in namespace git:\n%s", out)
			}

			// ssh-keygen signs (appending, as the docs say), patjanitor counts it.
			bob := newReviewer(t, "bob@acme.com", kind)
			cmd = exec.Command(keygen, "-Y", "sign", "-q", "-n", Namespace, "-f", bob.keyFile)
			cmd.Stdin, _ = os.Open(planFile)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ssh-keygen -Y sign: %v", err)
			}
			f, _ := os.OpenFile(SigFile(planFile), os.O_APPEND|os.O_WRONLY, 0)
			_, _ = f.Write(out)
			_ = f.Close()
			as, err := ParseAllowedSigners(signers, []byte("alice@acme.com "+r.authKey+"\nbob@acme.com "+bob.authKey+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if err := check(t, planFile, Policy{Signers: as, Required: 2}, now).Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
