package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/janitor"
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
no config and no network. A plan that the state directory (--state-dir)
records as executed is not signed: apply executes a plan once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApprove(cmd.Context(), g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.key, "key", "", "SSH private key, or public key whose private half is in the ssh-agent (required)")
	f.StringVar(&o.reason, "reason", "", "why you approve (recorded in the journal with your signature; at most 4096 bytes)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func runApprove(ctx context.Context, g *globals, o approveFlags, planFile string) error {
	if err := janitor.CheckReason("approve", o.reason, ""); err != nil {
		return err
	}
	data, p, err := plan.ReadFile(planFile)
	if err != nil {
		return err
	}
	// Signing a damaged plan would only be refused at apply time.
	if err := p.VerifyHash(); err != nil {
		return fmt.Errorf("plan %s does not match its planHash (edited or damaged), not signed: %w", planFile, err)
	}
	if err := g.refuseExecuted(ctx, planFile, p); err != nil { // approve_executed.go
		return err
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
	for _, it := range p.Items.All() {
		if it.Mutating() {
			mutating++
		}
	}
	_, err = fmt.Fprintf(g.streams.Out, "Signed %s (%s, %s, planHash %s)\nwith %s; %s now holds %s.\n",
		planFile, approval.FileDigest(data), plural(mutating, "enforce-mode action"), p.PlanHash, ssh.FingerprintSHA256(signer.PublicKey()), sigFile, plural(len(entries), "signature"))
	return err
}

// loadApprovals reads the approvals section's files, as every command that
// applies or validates does, so that a broken allowed signers file fails
// validate too. Nil without an approvals section.
func loadApprovals(cfg *policy.Config) (*approval.Policy, error) {
	a := cfg.Approvals
	if a == nil {
		return nil, nil
	}
	return approval.Load(a.AllowedSignersFile, a.RevokedKeysFile, a.Required)
}
