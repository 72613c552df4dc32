package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

type approveFlags struct {
	key    string
	reason string
}

func newApproveCmd(g *globals) *cobra.Command {
	var o approveFlags
	cmd := &cobra.Command{
		Use:   "approve PLAN --key KEY",
		Short: "Sign a saved plan with your SSH key (two-person rule)",
		Long: `Sign the exact bytes of a saved plan (patjanitor plan --out PLAN) with an SSH
key, in the SSHSIG format of 'ssh-keygen -Y sign' and git's signed commits,
namespace "` + approval.Namespace + `". The signature is added to PLAN.sig, one armored
signature per reviewer, with the time and --reason.

--key names a private key file, or a public key file (.pub) whose private half
is in the ssh-agent (SSH_AUTH_SOCK). Plain OpenSSH works too:

  ssh-keygen -Y sign -n ` + approval.Namespace + ` -f ~/.ssh/id_ed25519 < PLAN >> PLAN.sig

apply PLAN then counts the signatures of distinct principals of the
allowed signers file (approvals.allowedSignersFile). Signing needs no tenant,
no config and no network.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApprove(g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.key, "key", "", "SSH private key, or public key whose private half is in the ssh-agent (required)")
	f.StringVar(&o.reason, "reason", "", "why you approve (recorded in the journal with your signature)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func runApprove(g *globals, o approveFlags, planFile string) error {
	data, p, err := readPlanFile(planFile)
	if err != nil {
		return err
	}
	// Signing a damaged plan would only be refused at apply time.
	if err := p.VerifyHash(); err != nil {
		return fmt.Errorf("plan %s does not match its planHash (edited or damaged), not signed: %w", planFile, err)
	}
	ks := approval.KeySource{AgentSocket: os.Getenv("SSH_AUTH_SOCK")}
	if f, ok := g.streams.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ks.Passphrase = func() ([]byte, error) {
			fmt.Fprintf(g.streams.Err, "Passphrase for %s: ", o.key)
			defer fmt.Fprintln(g.streams.Err)
			return term.ReadPassword(int(f.Fd()))
		}
	}
	signer, done, err := ks.Signer(o.key)
	if err != nil {
		return err
	}
	defer done()
	sig, err := approval.Sign(data, signer)
	if err != nil {
		return err
	}
	sigFile := approval.SigFile(planFile)
	if err := approval.AppendSignature(sigFile, sig, time.Now(), o.reason); err != nil {
		return fmt.Errorf("write %s: %w", sigFile, err)
	}
	entries, err := approval.ReadSigFile(sigFile)
	if err != nil {
		return err
	}
	mutating := 0
	for i := range p.Items {
		if p.Items[i].Mutating() {
			mutating++
		}
	}
	_, err = fmt.Fprintf(g.streams.Out, "Signed %s (%s, %d enforce-mode actions, planHash %s)\nwith %s; %s now holds %d signatures.\n",
		planFile, fileDigest(data), mutating, p.PlanHash, ssh.FingerprintSHA256(signer.PublicKey()), sigFile, len(entries))
	return err
}

// readPlanFile reads a saved plan once: the bytes that were signed and the
// plan parsed from those same bytes, so what is verified is what is applied.
//
// Only a regular file of at most maxPlanBytes is read: a FIFO would block
// the command (or serve's run) forever and /dev/zero would fill the memory,
// and serve reads files that whoever may write to approved/ put there.
func readPlanFile(path string) ([]byte, *plan.Plan, error) {
	data, err := readRegular(path, maxPlanBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("read plan: %w", err)
	}
	p, err := plan.Read(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	return data, p, nil
}

// maxPlanBytes bounds a saved plan file, like POST /approve bounds a
// submitted one: a plan of a very large tenant, and no more.
const maxPlanBytes = 256 << 20

// readRegular reads a regular file of at most limit bytes. The file is
// checked before it is opened (opening a FIFO without a writer blocks) and
// again once open (the path may have been swapped in between).
func readRegular(path string, limit int64) ([]byte, error) {
	notRegular := func(fi os.FileInfo) error {
		if fi.Mode().IsRegular() {
			return nil
		}
		return fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := notRegular(fi); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := notRegular(fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d MiB, the most a plan may be", path, limit>>20)
	}
	return data, nil
}

func fileDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// loadApprovals reads the approvals section's files, as every command that
// applies or validates does, so that a broken allowed signers file fails
// validate too. Nil without an approvals section.
func loadApprovals(cfg *policy.Config) (*approval.Policy, error) {
	a := cfg.Approvals
	if a == nil {
		return nil, nil
	}
	signers, err := approval.LoadAllowedSigners(a.AllowedSignersFile)
	if err != nil {
		return nil, fmt.Errorf("approvals.allowedSignersFile: %w", err)
	}
	pol := &approval.Policy{Signers: signers, Required: a.Required}
	if a.RevokedKeysFile != "" {
		if pol.Revoked, err = approval.LoadRevokedKeys(a.RevokedKeysFile); err != nil {
			return nil, fmt.Errorf("approvals.revokedKeysFile: %w", err)
		}
	}
	return pol, nil
}

// errSignatureFile marks a signature file that could not be read at all.
var errSignatureFile = errors.New("unreadable signature file")

// needsApproval returns the first enforce-mode action of p that approvals.for
// names ("" when none does, or approvals are not configured).
func needsApproval(cfg *policy.Config, p *plan.Plan) string {
	for i := range p.Items {
		if it := &p.Items[i]; it.Mutating() && cfg.Approvals.Needs(policy.Action(it.Action)) {
			return it.Action
		}
	}
	for _, it := range p.PendingClients() {
		if cfg.Approvals.Needs(policy.Action(it.Action)) {
			return it.Action
		}
	}
	return ""
}

// planRef checks a saved plan's signatures (when approvals are configured)
// and returns what the journal records about the plan. err is the refusal:
// not enough valid approvals, with each signature's verdict.
func planRef(pol *approval.Policy, planFile string, data []byte, p *plan.Plan, now time.Time) (audit.PlanRef, error) {
	ref := audit.PlanRef{File: planFile, FileSHA256: fileDigest(data), PlanHash: p.PlanHash}
	if pol == nil {
		return ref, nil
	}
	entries, err := approval.ReadSigFile(approval.SigFile(planFile))
	if err != nil {
		return ref, fmt.Errorf("%w: %w", errSignatureFile, err)
	}
	res := pol.Check(data, entries, now)
	for _, v := range res.Approvals() {
		a := audit.Approval{Principal: v.Principal, Fingerprint: v.Fingerprint, Reason: v.Reason}
		if !v.SignedAt.IsZero() {
			t := v.SignedAt.UTC()
			a.SignedAt = &t
		}
		ref.Approvals = append(ref.Approvals, a)
	}
	if err := res.Err(); err != nil {
		return ref, fmt.Errorf("%s: %w", approval.SigFile(planFile), err)
	}
	return ref, nil
}
