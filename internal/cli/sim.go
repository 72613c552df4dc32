package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/atomicfile"
	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// DefaultSimListen is where `patjanitor sim` listens unless --listen says
// otherwise. 8975 is unassigned and easy to remember next to 8080/9090.
const DefaultSimListen = "127.0.0.1:8975"

// simShutdownTimeout bounds how long in-flight requests (a large listing) may
// take to finish once the command is asked to stop.
const simShutdownTimeout = 5 * time.Second

type simFlags struct {
	listen     string
	tokens     int
	seed       int64
	scenario   string
	rateLimit  int
	rateWindow time.Duration
	printEnv   bool
	envFile    string
}

func newSimCmd(g *globals) *cobra.Command {
	var o simFlags
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the simulated SailPoint tenant on a loopback address",
		Long: `Run the simulated SailPoint Identity Security Cloud tenant (PAT API v3, v2025
and v1, OAuth, public identities) on a loopback address, with a seeded
population (--tokens, --seed) or an exact one (--scenario). It prints its URL
and the admin credentials (--print-env: as shell export lines) and serves until
interrupted. Test-only control endpoints live under /__sim/. The simulator
runs on this host's clock: a scenario written for another time (its now:) is
moved to the present, every token's times with it, so that its tokens are as
stale as written.

--env-file FILE writes the export lines to FILE (mode 0600) once the
simulator is listening, atomically, so a script can wait for the file to be
non-empty and source it; the file is removed again when the simulator stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("scenario") && (cmd.Flags().Changed("tokens") || cmd.Flags().Changed("seed")) {
				return errors.New("--scenario sets the exact population; it cannot be combined with --tokens or --seed")
			}
			return runSim(cmd.Context(), g, o, cmd.Flags().Changed("rate-limit"), cmd.Flags().Changed("rate-window"))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", DefaultSimListen, "loopback address to listen on (port 0 picks a free port)")
	f.IntVar(&o.tokens, "tokens", 200, "number of seeded tokens (besides the admin PAT)")
	f.Int64Var(&o.seed, "seed", 1, "seed of the generated population (same seed, same tenant)")
	f.StringVar(&o.scenario, "scenario", "", "YAML scenario file with the exact population (instead of --tokens/--seed)")
	f.IntVar(&o.rateLimit, "rate-limit", idnsim.DefaultRateLimit, "requests per client id and API version per window; -1 turns the limit off")
	f.DurationVar(&o.rateWindow, "rate-window", idnsim.DefaultRateWindow, "rate limit window")
	f.BoolVar(&o.printEnv, "print-env", false, "print the URL and credentials as shell export lines")
	f.StringVar(&o.envFile, "env-file", "", "once listening, write the export lines to this file (removed on exit)")
	return cmd
}

// checkLoopback refuses anything but a loopback listen address: the simulator
// hands out admin credentials to whoever asks /__sim/admin.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q: the simulated tenant only listens on loopback addresses (127.0.0.1, ::1, localhost)", addr)
}

func runSim(ctx context.Context, g *globals, o simFlags, rateLimitSet, rateWindowSet bool) error {
	if err := checkLoopback(o.listen); err != nil {
		return err
	}
	if o.rateLimit == 0 {
		return errors.New("--rate-limit 0 would refuse every request; use -1 to turn the limit off")
	}
	if o.tokens < 0 {
		return errors.New("--tokens must not be negative")
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	opts := idnsim.Options{
		OnRequest: func(r idnsim.Request) {
			log.Debug("request", zap.String("method", r.Method), zap.String("path", r.Path),
				zap.String("query", r.RawQuery), zap.Int("status", r.Status),
				zap.String("clientId", r.ClientID), zap.String("fault", r.Fault))
		},
	}
	if rateLimitSet || o.scenario == "" {
		opts.RateLimit = o.rateLimit
	}
	if rateWindowSet || o.scenario == "" {
		opts.RateWindow = o.rateWindow
	}
	var sim *idnsim.Sim
	population := fmt.Sprintf("%d seeded tokens (seed %d) plus the admin PAT", o.tokens, o.seed)
	if o.scenario != "" {
		s, sc, err := idnsim.LoadScenarioFile(o.scenario, opts)
		if err != nil {
			return err
		}
		sim = s
		population = fmt.Sprintf("%d tokens from %s", len(sc.Tokens), o.scenario)
	} else {
		sim = idnsim.New(opts)
		sim.Seed(o.tokens, o.seed)
		sim.SeedOAuthClients(o.seed)
	}

	// Encode every token once in the background, so that even the first
	// listing of a large seeded tenant is served from the cache.
	go sim.Warm()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return listenError(ctx, o.listen, err)
	}
	url := "http://" + ln.Addr().String()
	admin := sim.Admin()
	exports := fmt.Sprintf("export PATJANITOR_TENANT_URL=%s\nexport PATJANITOR_CLIENT_ID=%s\nexport PATJANITOR_CLIENT_SECRET=%s\n",
		url, admin.ClientID, admin.ClientSecret)
	if o.envFile != "" {
		// Written only now that the port is ours: a script that waits for
		// the file never sources the credentials of a simulator that
		// failed to start (or of another one holding the port).
		if err := atomicfile.Write(o.envFile, []byte(exports), 0o600); err != nil {
			_ = ln.Close()
			return fmt.Errorf("--env-file: %w", err)
		}
		defer func() { _ = os.Remove(o.envFile) }()
	}
	if o.printEnv {
		_, err = io.WriteString(g.streams.Out, exports)
	} else {
		_, err = fmt.Fprintf(g.streams.Out, "patjanitor simulated tenant\n  URL:           %s\n  client id:     %s\n  client secret: %s\n  population:    %s\n  control:       %s/__sim/\nServing until interrupted.\n",
			url, admin.ClientID, admin.ClientSecret, population, url)
	}
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("write credentials: %w", err)
	}

	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("simulated tenant listening", zap.String("url", url), zap.String("population", population))

	select {
	case err := <-served:
		return fmt.Errorf("serve simulated tenant: %w", err)
	case <-ctx.Done():
	}
	// The parent context is done; give in-flight requests their own deadline.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), simShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down simulated tenant: %w", err)
	}
	log.Info("simulated tenant stopped")
	return nil
}

// listenError explains a failed listen. The common case is a simulator left
// running by an earlier try (a backgrounded `sim` outlives the shell line
// that started it): the port is then asked whether it is a patjanitor
// simulator, so the message can say what holds it and what to do.
func listenError(ctx context.Context, addr string, err error) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	holder := "another program (not a patjanitor sim: it does not answer /__sim/admin)"
	if isSim(ctx, addr) {
		holder = "another patjanitor sim (it answers /__sim/admin); stop it (kill its process, e.g. `kill %1` in the shell that started it in the background)"
	}
	return fmt.Errorf("%s is already in use by %s, or pass --listen 127.0.0.1:0 for a free port: %w", addr, holder, err)
}

// isSim reports whether a patjanitor simulator answers on addr.
func isSim(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+idnsim.ControlPrefix+"admin", nil)
	if err != nil {
		return false
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	var admin struct {
		ClientID string `json:"clientId"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&admin) == nil && admin.ClientID != ""
}
