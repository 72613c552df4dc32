package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/report"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// Demo population: fixed, so that every newcomer sees the same report.
const (
	demoTokens = 200
	demoSeed   = 1
)

type demoFlags struct {
	format string
	tokens int
	seed   int64
}

func newDemoCmd(g *globals) *cobra.Command {
	var o demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Plan the shipped policies against a simulated tenant (nothing real is touched)",
		Long: `Start the simulated tenant in-process on a loopback port with a seeded
population of tokens, load the policies (--config, by default the shipped
policies.yaml at the repository root), point them at the simulated tenant
instead of the configured one, and print the plan. Then print how to run the
same against a real tenant. Nothing outside this process is contacted; the
environment variables PATJANITOR_* are ignored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.format, "output", "o", "table", "report format: "+strings.Join(report.Formats(), ", "))
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

	sim := idnsim.New(idnsim.Options{})
	sim.Seed(o.tokens, o.seed)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	admin := sim.Admin()
	cfg.Tenant.URL = "http://" + ln.Addr().String()
	cfg.Tenant.ClientID = admin.ClientID
	conn, err := connectWith(cfg, secret.New(admin.ClientSecret), nil)
	if err != nil {
		return err
	}
	eng, err := janitor.New(janitor.Options{
		Config: cfg, Tenant: conn.client, TenantURL: conn.client.BaseURL(),
		APIVersion: conn.client.Version(), ClientID: conn.client.ClientID(), Logger: log,
	})
	if err != nil {
		return err
	}
	pl, planErr := eng.Plan(ctx)
	if pl == nil {
		return planErr
	}
	out := g.streams.Out
	if _, err := fmt.Fprintf(out, "patjanitor demo: a simulated tenant at %s with %d seeded tokens (seed %d) and the admin token patjanitor logs in with, planned with %s.\nNothing real was contacted and nothing was changed.\n\n",
		cfg.Tenant.URL, o.tokens, o.seed, cfg.File); err != nil {
		return err
	}
	if err := report.Render(out, pl.Plan, o.format); err != nil {
		return fmt.Errorf("render the report: %w", err)
	}
	if planErr != nil {
		return &exitError{code: 1, err: planErr}
	}
	_, err = fmt.Fprintf(out, `
Against your tenant (a PAT with sp:all-personal-access-tokens:read, and :manage to act):

  export PATJANITOR_TENANT_URL=https://YOUR-TENANT.api.identitynow.com
  export PATJANITOR_CLIENT_ID=<the PAT's client id>
  export PATJANITOR_CLIENT_SECRET=<the PAT's secret>
  patjanitor validate -c %[1]s           # check the policies offline
  patjanitor plan -c %[1]s --out plan.json  # read-only: what would happen, and why
  patjanitor apply plan.json               # after review: executes the plan's enforce-mode items, re-checked

Every shipped policy is in report mode: switch one to "mode: enforce" to let apply act on it.
`, cfg.File)
	return err
}
