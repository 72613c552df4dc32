package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/report"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// Demo population: fixed, so that every newcomer sees the same report.
const (
	demoTokens = 200
	demoSeed   = 1
)

// demoOverlay is the demo's enforce overlay: one small policy in enforce mode,
// so that a newcomer sees a change, its journal records and its metrics. It is
// narrow on purpose: on the demo's population it deletes about a dozen
// tokens, within the shipped guardrails. The tenant section is the
// simulator's, filled in at run time; limits and exclusions are the loaded
// config's.
const demoOverlay = `policies:
  - name: demo-never-used-2y
    description: Delete tokens never used in the two years since they were created
    mode: enforce
    match:
      neverUsed: true
      createdOlderThan: 730d
    action: delete
`

type demoFlags struct {
	format string
	tokens int
	seed   int64
}

func newDemoCmd(g *globals) *cobra.Command {
	var o demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The whole loop on a simulated tenant: plan, an enforced apply, the journal, the metrics",
		Long: `Start the simulated tenant in-process on a loopback port with a seeded
population of tokens and show the whole loop against it, nothing real being
contacted (the environment variables PATJANITOR_* are ignored):

 1. the plan of the policies (--config, by default the shipped policies.yaml,
    every policy in report mode): what they match, and why;
 2. an enforced apply of a small enforce overlay (one policy in enforce mode,
    shown), journaled in a temporary state directory;
 3. the journal verified (audit verify);
 4. the metrics the daemon would export for these runs;
 5. what to try next.

-o json|markdown|csv|html writes the plan of step 1 in that format to stdout,
and everything else to stderr, so that 'demo -o json > plan.json' is a valid
document. With the default -o table the same holds: the report is stdout, the
story around it stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.format, "output", "o", "table", "report format of the plan: "+strings.Join(report.Formats(), ", "))
	f.IntVar(&o.tokens, "tokens", demoTokens, "number of seeded tokens")
	f.Int64Var(&o.seed, "seed", demoSeed, "seed of the population")
	return cmd
}

func runDemo(ctx context.Context, g *globals, o demoFlags) error {
	if !slices.Contains(report.Formats(), o.format) {
		return fmt.Errorf("-o %q: want one of %s", o.format, strings.Join(report.Formats(), ", "))
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	// policy.Load, not g.loadConfig: the demo must never pick up a real
	// tenant's URL or credentials from the environment.
	cfg, err := policy.Load(g.config)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the demo plans the shipped policies.yaml: run it from the repository root (go run ./cmd/patjanitor demo) or pass -c FILE: %w", err)
	}
	if err != nil {
		return err
	}

	// No rate limit: the demo's two runs would otherwise wait out the
	// simulator's window, which is not what a first look should show.
	sim := idnsim.New(idnsim.Options{RateLimit: -1})
	sim.Seed(o.tokens, o.seed)
	sim.SeedOAuthClients(o.seed) // the API clients for the apiClients policies
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	// Close, not Shutdown: the demo's requests are over when it returns,
	// and Shutdown waited out its whole timeout for a connection the
	// client had dialed but not used (the server counts it as new, not
	// idle): two seconds at the end of some demos, e.g. the second of
	// TestDemoOutputFormats' four every time.
	defer func() { _ = srv.Close() }()
	dir, err := os.MkdirTemp("", "patjanitor-demo-")
	if err != nil {
		return fmt.Errorf("demo: state directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	d := &demo{g: g, o: o, log: log, sim: sim, url: "http://" + ln.Addr().String(), dir: dir,
		reg: prometheus.NewRegistry(), prose: &stickyWriter{w: g.streams.Err}}
	d.metrics = metrics.New(d.reg)
	if err := d.run(ctx, cfg); err != nil {
		return err
	}
	return d.prose.err
}

// demo is one run of the demo. prose is the story (stderr); the report of
// step 1 is the data (stdout).
type demo struct {
	g       *globals
	o       demoFlags
	log     *zap.Logger
	sim     *idnsim.Sim
	url     string
	dir     string
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	prose   *stickyWriter
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.prose, format, args...) }

// engine points cfg at the simulator and builds an engine on it; journal may
// be nil (a read-only plan).
func (d *demo) engine(cfg *policy.Config, journal *audit.Journal) (*janitor.Engine, error) {
	admin := d.sim.Admin()
	cfg.Tenant.URL = d.url
	cfg.Tenant.ClientID = admin.ClientID
	conn, err := connectWith(cfg, secret.New(admin.ClientSecret), d.metrics, d.log)
	if err != nil {
		return nil, err
	}
	opts := janitor.Options{
		Config: cfg, Tenant: conn.client, TenantURL: conn.client.BaseURL(),
		APIVersion: conn.client.Version(), ClientID: conn.client.ClientID(), Logger: d.log,
		Metrics: d.metrics,
	}
	if journal != nil {
		// Not a nil *audit.Journal in the interface: the engine asks a
		// journal it was given for its open intents.
		opts.Journal = journal
	}
	return janitor.New(opts)
}

func (d *demo) run(ctx context.Context, cfg *policy.Config) error {
	d.say("patjanitor demo: a simulated tenant at %s with %d seeded tokens (seed %d) and the admin token patjanitor logs in with.\nNothing real is contacted; the changes below happen in the simulator only.\n\n",
		d.url, d.o.tokens, d.o.seed)

	// 1. The plan of the shipped policies.
	d.say("== 1. PLAN: %s, read-only (every shipped policy is in report mode)\n\n", cfg.File)
	eng, err := d.engine(cfg, nil)
	if err != nil {
		return err
	}
	pl, planErr := eng.Plan(ctx)
	if pl == nil {
		return planErr
	}
	// On a terminal the summary (the policies with their counts, the
	// guardrails); the whole report is one -o away.
	ro := report.Options{Width: terminalWidth(d.g.streams.Out), ChangesOnly: d.o.format == report.FormatTable}
	if err := report.RenderOptions(d.g.streams.Out, pl.Plan, d.o.format, ro); err != nil {
		return fmt.Errorf("render the report: %w", err)
	}
	if ro.ChangesOnly {
		d.say("The whole report, every item with its reason: patjanitor demo -o html > report.html (or -o markdown, json, csv).\n")
	}
	if planErr != nil {
		return &exitError{code: 1, err: planErr}
	}

	// 2. An enforced apply of the overlay.
	overlay := filepath.Join(d.dir, "enforce.yaml")
	d.say("\n== 2. APPLY: an enforce overlay (%s), the shipped limits and exclusions kept\n\n%s\n", overlay, indent(demoOverlay, "    "))
	ecfg, err := d.overlay(cfg, overlay)
	if err != nil {
		return err
	}
	jpath := filepath.Join(d.dir, JournalFile)
	journal, err := audit.Open(jpath, audit.Options{})
	if err != nil {
		return err
	}
	pending := journal.Pending()
	defer func() { _ = journal.Close() }()
	if len(pending) > 0 {
		return fmt.Errorf("demo: a fresh journal has %d pending intents", len(pending))
	}
	eeng, err := d.engine(ecfg, journal)
	if err != nil {
		return err
	}
	epl, err := eeng.Plan(ctx)
	if epl == nil {
		return err
	}
	if err := report.RenderOptions(d.prose, epl.Plan, report.FormatTable, report.Options{Width: terminalWidth(d.g.streams.Err), ChangesOnly: true}); err != nil {
		return err
	}
	before := len(idnsim.Mutations(d.sim.Requests()))
	res, runErr := eeng.Execute(ctx, epl)
	if res != nil {
		if err := printResult(d.prose, res); err != nil {
			return err
		}
	}
	if runErr != nil {
		return &exitError{code: 1, err: runErr}
	}
	d.say("The simulated tenant received %d DELETE requests.\n", len(idnsim.Mutations(d.sim.Requests()))-before)

	// 3. The journal.
	d.say("\n== 3. JOURNAL: every change was recorded before its request and after it\n\n")
	if err := journal.Close(); err != nil {
		return err
	}
	if err := d.verify(jpath); err != nil {
		return err
	}

	// 4. The metrics.
	d.say("\n== 4. METRICS: what 'patjanitor serve' exports on /metrics for these runs (a selection)\n\n")
	if err := d.printMetrics(); err != nil {
		return err
	}

	d.say(`
== 5. NEXT
  patjanitor demo -o html > report.html                the whole report of step 1, for a browser
  patjanitor sim --env-file sim.env &                  the same simulated tenant as a server:
  until [ -s sim.env ]; do sleep 1; done; . ./sim.env  then plan, apply and audit against it (README)
  patjanitor validate -c policies.yaml                 check your own policies offline

Against your tenant (a PAT with sp:all-personal-access-tokens:read, and :manage to act;
for the apiClients policy also sp:oauth-client:read, and :manage to act):
  export PATJANITOR_TENANT_URL=https://YOUR-TENANT.api.identitynow.com
  export PATJANITOR_CLIENT_ID=<the PAT's client id>
  export PATJANITOR_CLIENT_SECRET=<the PAT's secret>
  patjanitor plan --out plan.json       read-only: what would happen, and why
  patjanitor apply plan.json            after review: executes the plan's enforce-mode items, re-checked
Turn one policy to "mode: enforce" at a time (docs/operations.md, "Rollout: from report to enforce").
`)
	return nil
}

// overlay writes the demo's enforce overlay (the simulator's tenant, the
// loaded config's limits and exclusions, the overlay's policy) and loads it.
func (d *demo) overlay(cfg *policy.Config, path string) (*policy.Config, error) {
	admin := d.sim.Admin()
	var b strings.Builder
	fmt.Fprintf(&b, "tenant:\n  url: %s\n  clientId: %s\n  rateLimit: {requests: -1, per: 1s}\n", d.url, admin.ClientID)
	fmt.Fprintf(&b, "limits: {maxActionsPerRun: %d, maxActionsPercent: %g, maxActionsPerOwner: %d}\n",
		cfg.Limits.MaxActionsPerRun, cfg.Limits.MaxActionsPercent, cfg.Limits.MaxActionsPerOwner)
	b.WriteString("exclude:\n")
	fmt.Fprintf(&b, "  tokenIds: %s\n  ownerIds: %s\n  names: %s\n", yamlList(cfg.Exclude.TokenIDs), yamlList(cfg.Exclude.OwnerIDs), yamlList(cfg.Exclude.Names))
	b.WriteString(demoOverlay)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, fmt.Errorf("demo: write the overlay: %w", err)
	}
	ecfg, err := policy.Load(path)
	if err != nil {
		return nil, fmt.Errorf("demo: the enforce overlay: %w", err)
	}
	return ecfg, nil
}

// verify prints what audit verify says of the demo's journal.
func (d *demo) verify(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer func() { _ = f.Close() }()
	sum, err := audit.Verify(f)
	if err != nil {
		return fmt.Errorf("demo: the journal does not verify: %w", err)
	}
	d.say("  patjanitor audit verify %s\n  OK: %d records (%s), hash-chained: last seq %d, last hash %s\n",
		path, sum.Records, plural(sum.Runs, "run"), sum.LastSeq, hashOrNone(sum.LastHash))
	return nil
}

// demoMetrics are the families the demo shows: what a dashboard and the
// alerts are built on.
var demoMetrics = []string{
	"patjanitor_tokens", "patjanitor_tokens_matched", "patjanitor_actions_total",
	"patjanitor_runs_total", "patjanitor_guardrail_trips_total",
}

func (d *demo) printMetrics() error {
	families, err := d.reg.Gather()
	if err != nil {
		return fmt.Errorf("demo: gather metrics: %w", err)
	}
	enc := expfmt.NewEncoder(d.prose, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range families {
		if slices.Contains(demoMetrics, mf.GetName()) && len(mf.GetMetric()) > 0 {
			if err := enc.Encode(mf); err != nil {
				return err
			}
		}
	}
	return nil
}

func yamlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix) + "\n"
}

var _ io.Writer = (*stickyWriter)(nil)
