package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// notifyConfig converts the parsed notify section into the notify package's
// configuration. The two mirror each other field for field; the leaf structs
// convert directly (tags do not matter for conversions), the nesting by hand.
func notifyConfig(n policy.Notify) notify.Config {
	out := notify.Config{
		Summary: n.Summary, Owners: n.Owners, Failures: n.Failures,
		DigestInterval: n.DigestInterval,
		Templates: notify.Templates{
			Summary: notify.TemplateFiles(n.Templates.Summary),
			Digest:  notify.TemplateFiles(n.Templates.Digest),
			Notice:  notify.TemplateFiles(n.Templates.Notice),
			Failure: notify.TemplateFiles(n.Templates.Failure),
			Test:    notify.TemplateFiles(n.Templates.Test),
		},
	}
	for _, r := range n.Receivers {
		out.Receivers = append(out.Receivers, notify.Receiver{
			Name:    r.Name,
			Slack:   (*notify.SlackConfig)(r.Slack),
			Webhook: (*notify.WebhookConfig)(r.Webhook),
			Email:   (*notify.EmailConfig)(r.Email),
		})
	}
	return out
}

// notifyTestTimeout bounds `notify test`: the operator is waiting.
const notifyTestTimeout = 2 * time.Minute

func newNotifyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Notification helpers",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "test RECEIVER",
		Short: "Send a test message through one receiver of the notify section",
		Long: `Build the receiver from the config (reading its secrets the way a run does)
and send it a test message now, with the usual retries, bypassing the outbox.
Exit status 1 when the message was not delivered; the error names the receiver
and why, never a secret.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNotifyTest(cmd.Context(), g, args[0])
		},
		ValidArgsFunction: completeFirstArg(func(*cobra.Command) []string { return receiverNames(g) }),
	})
	return cmd
}

func runNotifyTest(ctx context.Context, g *globals, receiver string) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	ncfg := notifyConfig(cfg.Notify)
	if _, ok := ncfg.Receiver(receiver); !ok {
		return fmt.Errorf("notify test: no receiver %q in %s", receiver, cfg.File)
	}
	notifiers, err := notify.Build(ncfg, notify.Deps{Logger: log})
	if err != nil {
		return fmt.Errorf("notify test: %w", err)
	}
	d, err := notify.NewDispatcher(notify.DispatcherOptions{Notifiers: notifiers, Logger: log})
	if err != nil {
		return fmt.Errorf("notify test: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTestTimeout)
	defer cancel()
	res := d.Deliver(ctx, notify.TestMessage(receiver, time.Now()))
	if res.Outcome != notify.Sent {
		return fmt.Errorf("notify test: %s: %s after %d attempts (%s): %w", receiver, res.Outcome, res.Attempts, res.Reason, res.Err)
	}
	_, err = fmt.Fprintf(g.streams.Out, "Sent a test message to %s (%d attempt(s)).\n", receiver, res.Attempts)
	return err
}

// buildNotifiers builds the config's notifiers, reading their secrets; nil
// when the config has no receivers. A receiver that cannot be built (a
// missing secret file) fails the command before anything is listed.
func buildNotifiers(cfg *policy.Config, log *zap.Logger) (map[string]notify.Notifier, error) {
	if len(cfg.Notify.Receivers) == 0 {
		return nil, nil
	}
	ns, err := notify.Build(notifyConfig(cfg.Notify), notify.Deps{Logger: log.Named("notify")})
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return ns, nil
}

// withState gives an engine that may act the state store's parts: snoozes,
// grace marks, and (with notifiers) a dispatcher over the store's outbox.
// st may be nil (no store), m may be nil (no metrics).
func withState(opts *janitor.Options, cfg *policy.Config, st *state.Store, ns map[string]notify.Notifier, m *metrics.Metrics, log *zap.Logger) error {
	in, err := stateInput(cfg, st, ns, m, log)
	if err != nil {
		return err
	}
	opts.Snoozes, opts.Marks, opts.ClientState, opts.ClientMarks, opts.Notify = in.Snoozes, in.Marks, in.ClientState, in.ClientMarks, in.Notify
	opts.Proofs = in.Proofs
	opts.Executed = in.Executed
	return nil
}

// stateInput is withState for a store opened per run (serve): the same
// parts, as the run's input.
func stateInput(cfg *policy.Config, st *state.Store, ns map[string]notify.Notifier, m *metrics.Metrics, log *zap.Logger) (janitor.RunInput, error) {
	if st == nil {
		return janitor.RunInput{}, nil
	}
	in := janitor.RunInput{Snoozes: st, Marks: st,
		ClientState: st, // the API clients patjanitor disabled
		ClientMarks: st, // the API client grace marks
		Proofs:      st, // the confirmed changes awaiting a listing's proof
		Executed:    st, // the saved plans executed: each is executed at most once
	}
	if ns == nil {
		return in, nil
	}
	do := notify.DispatcherOptions{Notifiers: ns, Outbox: st, Logger: log.Named("notify"), DigestInterval: cfg.Notify.DigestInterval}
	if m != nil {
		do.Metrics = m
	}
	d, err := notify.NewDispatcher(do)
	if err != nil {
		return janitor.RunInput{}, fmt.Errorf("notify: %w", err)
	}
	in.Notify = d
	return in, nil
}

// receiverNames are the config's notify receivers with their channels, for
// shell completion. The config is parsed only (no secret is read); a config
// that does not load completes nothing.
func receiverNames(g *globals) []string {
	cfg, err := policy.Load(g.config)
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range notifyConfig(cfg.Notify).Receivers {
		out = append(out, r.Name+"\t"+string(r.Channel()))
	}
	return out
}
