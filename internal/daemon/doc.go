// Package daemon is patjanitor's long-running service, `patjanitor serve`: it
// runs the policies on their cron schedules, serves /metrics, /healthz, /readyz
// and (optionally) /plan, reloads the configuration on SIGHUP and when the
// file's content changes, and shuts down gracefully.
//
// The daemon knows nothing of the tenant: a run is a call to a Runner (the
// engine, wired by the serve command) with the configuration to run. What it
// owns is the when and the how-many:
//
//   - Schedules. Every policy runs on its own schedule or the config's default,
//     in the config's time zone (UTC when none is set). Policies whose schedule
//     strings are equal form one group and run together: one inventory, one
//     plan, the config restricted to them with (*policy.Config).Only. robfig/cron
//     parses the specs and computes each group's next time; the daemon sleeps
//     until then on its Clock (the wall clock, or a test's fake one), a minute
//     at most at a time, so that a step of the wall clock or a suspended
//     machine makes no run late by more than that (scheduler).
//   - One run at a time. All runs, of every group, of the start-up run and of
//     schedules from before a reload, pass one gate. A run due while another
//     group's run is in progress waits for it (in arrival order); a run due
//     while its own group is still running, or already waiting, is skipped,
//     logged and counted (runs_skipped_total{reason="overlap"}). Waiting
//     across groups keeps one group from starving another whose ticks always
//     fall into its runs; skipping within a group keeps a group slower than
//     its schedule from piling up runs that then fire back to back, as cron's
//     SkipIfStillRunning (and Kubernetes' concurrencyPolicy: Forbid) would.
//   - Reload. The file is read once, its bytes hashed, parsed, validated and
//     turned into schedules and a Runner; only when all of that succeeded is the
//     new generation swapped in (atomic.Pointer) and the old schedule stopped. A
//     failed reload leaves the running generation untouched. A run in progress
//     finishes with the generation it started with; a run waiting at the
//     gate runs with the new one (the new schedule goes on after it). A
//     schedule written the same, in the same time zone, goes on where the
//     old loop stood (an overdue run, the last run: scheduler.resume).
//   - Shutdown. When ctx ends, /readyz turns 503, the schedulers stop, the gate
//     closes (no run starts any more), and the run in progress, which received
//     the same ctx, starts no new mutation and lets the ones in flight finish and
//     be journaled (the engine's contract). The daemon waits for it at most
//     ShutdownTimeout, then stops the HTTP server.
package daemon
