package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/state"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

func newStateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Look after the state store (<state-dir>/state.db)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newStateRepairCmd(g))
	return cmd
}

type stateRepairFlags struct {
	reasonFlags
	dryRun bool
	// withoutArchived repairs with the journal's archived segments away:
	// what only they hold of a snooze or a confirmed change is lost.
	withoutArchived bool
}

func newStateRepairCmd(g *globals) *cobra.Command {
	var o stateRepairFlags
	cmd := &cobra.Command{
		Use:   "repair --reason TEXT",
		Short: "Move the state store's records that do not decode to its quarantine bucket, and rebuild what the journal holds of them (journaled)",
		Long: `A record of the state store that does not decode (disk corruption, a bad
restore, a downgrade) fails every command that reads it, and the journal's
catch-up with it. repair finds every such record, in every bucket, and for
each one journals a record of kind "state-repair" (bucket, key, the SHA-256
of its bytes, the reason), then moves it, its bytes whole, to the store's
quarantine bucket. Then the journal's catch-up rebuilds what the journal
holds of them: the saved plans executed (a plan executed before is still
refused; so is one whose record only the quarantine keeps), the confirmed
changes awaiting proof, the snoozes. It prints what it moved, what it
rebuilt, and what the loss of the rest means (a grace mark: the owner is
warned again before any action).

--dry-run lists what it would move and changes nothing. With no undecodable
record it says so and changes nothing. Stop serve first: it holds the
journal, and repair refuses, changing nothing, while it does. So it does
while the journal it rebuilds from does not verify (restore the damaged
segment from its archive first), and while a snooze or a confirmed change
it rebuilds may be only in archived segments (the journal's first segments
are not beside it, and, for a snooze, the rest holds no record of it):
bring them back for the repair, or, if the archive is lost, repair without
them (--without-archived-segments).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStateRepair(cmd.Context(), g, o, time.Now)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.reason, "reason", "", "why the records are moved aside (required, at most 4096 bytes; journaled)")
	f.StringVar(&o.by, "by", "", "who repairs (default the OS user)")
	f.BoolVar(&o.dryRun, "dry-run", false, "list the records that do not decode, change nothing")
	f.BoolVar(&o.withoutArchived, "without-archived-segments", false, "repair with the journal's archived segments lost: a snooze or a confirmed change only they hold is not rebuilt (a damaged journal anchor still needs them)")
	addJournalFlags(f, &o.journal)
	return cmd
}

// repairHooks stop a repair between its steps (tests: a crash there).
type repairHooks struct {
	afterJournal    func() error // the records journaled, none moved
	afterQuarantine func() error // moved, nothing rebuilt
}

func runStateRepair(ctx context.Context, g *globals, o stateRepairFlags, now func() time.Time) error {
	return runStateRepairHooked(ctx, g, o, now, repairHooks{})
}

func runStateRepairHooked(ctx context.Context, g *globals, o stateRepairFlags, now func() time.Time, hooks repairHooks) error {
	reason := strings.TrimSpace(o.reason)
	if reason == "" && !o.dryRun {
		return errors.New("state repair: --reason is required: moving records aside is an exception someone must account for later; nothing was changed")
	}
	by := requester(o.by)
	if err := janitor.CheckReason("state repair", reason, by); err != nil {
		return err
	}
	if err := g.checkStateDir(); err != nil {
		return fmt.Errorf("state repair: %w", err)
	}
	if _, err := os.Stat(g.statePath()); errors.Is(err, os.ErrNotExist) {
		_, err := fmt.Fprintf(g.streams.Out, "There is no state store at %s: nothing to repair.\n", g.statePath())
		return err
	}
	// Opened as every journaled command opens it: a store serve holds is
	// refused with the way out.
	st, err := g.openStateWith(state.Options{Clock: now, Repairing: true})
	if err != nil {
		return fmt.Errorf("state repair: %w", err)
	}
	defer func() { _ = st.Close() }()
	journal := g.journalPath(o.journal.path)
	r := &stateRepair{g: g, st: st, o: o, reason: reason, by: by, now: now, out: &stickyWriter{w: g.streams.Out}, hooks: hooks,
		journal: journal, journalKey: g.journalKey(journal)}
	if err := r.run(ctx); err != nil {
		return fmt.Errorf("state repair: %w", err)
	}
	return r.out.err
}

// stateRepair is one run of `state repair`.
type stateRepair struct {
	g          *globals
	st         *state.Store
	o          stateRepairFlags
	reason, by string
	now        func() time.Time
	out        *stickyWriter
	hooks      repairHooks
	// journal is the journal's path, journalKey the store's name for it
	// (its anchor is under state.AnchorKey(journalKey)).
	journal, journalKey string

	bad []state.BadRecord
	// moved are the records this repair, or an earlier one it finishes,
	// moved aside: what the journal is asked to rebuild.
	moved []state.Quarantined
	// prior are the records the unfinished repair this one finishes
	// moved aside; priorLost, how many of them do not decode in the
	// quarantine (what they were is not known).
	prior     []state.Quarantined
	priorLost int
	// withoutArchive, when --without-archived-segments let the repair go
	// on over archived segments, says so: journaled with each record and
	// printed, since what only they held is lost.
	withoutArchive string
}

func (r *stateRepair) run(ctx context.Context) error {
	var err error
	if r.bad, err = r.st.Undecodable(ctx); err != nil {
		return err
	}
	mark, pending, err := r.st.RepairPending(ctx)
	if err != nil {
		return err
	}
	if pending {
		if r.prior, r.priorLost, err = r.st.QuarantinedSince(ctx, mark); err != nil {
			return err
		}
	}
	path := r.st.Path()
	if len(r.bad) == 0 && !pending {
		fmt.Fprintf(r.out, "Every record of %s decodes: nothing to repair, nothing was changed.\n", path)
		return nil
	}
	for _, b := range r.bad {
		fmt.Fprintf(r.out, "Does not decode: %s\n", b.Describe())
	}
	if pending {
		fmt.Fprintf(r.out, "Unfinished: %s; this repair finishes it.\n", mark.Describe())
	}
	if r.o.dryRun {
		fmt.Fprintln(r.out, "--dry-run: nothing was changed.")
		return nil
	}
	j, err := r.holdJournal(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = j.Close() }()
	if r.readsJournal() {
		if err := r.checkJournal(); err != nil {
			return err
		}
	}
	if r.withoutArchive != "" {
		fmt.Fprintf(r.out, "Warning: %s.\n", r.withoutArchive)
	}
	if err := r.quarantine(ctx, j); err != nil {
		return err
	}
	if pending {
		// The records the unfinished repair moved are rebuilt too.
		if r.moved, _, err = r.st.QuarantinedSince(ctx, mark); err != nil {
			return err
		}
	}
	if r.hooks.afterQuarantine != nil {
		if err := r.hooks.afterQuarantine(); err != nil {
			return err
		}
	}
	if err := r.rebuild(ctx, j); err != nil {
		return fmt.Errorf("%w; the records stay in the quarantine bucket and every command refuses the store until a repair finishes: run `%s` again", err, state.RepairCommand)
	}
	if err := r.st.EndRepair(ctx); err != nil {
		return err
	}
	return r.report(ctx)
}

// holdJournal opens the journal, holding its lock for the whole repair: a
// running serve holds it, and is refused before anything changes. It is
// opened at the store's anchor (an anchor that does not decode is one of
// the records to move: then at none), which it checks, but with the anchor
// frozen and no catch-up: the catch-up would read the records that do not
// decode and fail, and moving the anchor past records it has not taken in
// would lose them for good. Attach (rebuild) hands them over once the
// records are moved, and moves the anchor.
func (r *stateRepair) holdJournal(ctx context.Context) (*audit.Journal, error) {
	path := r.journal
	fa := &frozenAnchor{}
	// The store holds no anchor (or a new one, stored at the journal's
	// end by the unfinished repair's rebuild) once the damaged one moved.
	anchorBad, anchorMoved := r.anchorAmong()
	if !anchorBad {
		var err error
		if fa.a, fa.ok, err = r.st.JournalAnchor(ctx, r.journalKey); err != nil {
			return nil, err
		}
	}
	jf := r.o.journal
	jf.clock = r.now
	opts := jf.options()
	opts.Anchors = fa
	j, err := audit.Open(path, opts)
	var ae *audit.AnchorError
	switch {
	case errors.As(err, &ae) && ae.Archived != "":
		// The store is older than the segments beside the journal: the
		// error says to bring them back (a reanchor would need them all).
		return nil, fmt.Errorf("open journal: %w; nothing was changed", err)
	case errors.As(err, &ae):
		// The journal is short of its anchor: that incident first, on
		// the record (reanchor reads no bucket but the anchor).
		return nil, fmt.Errorf("open journal: %w; accept the journal as it is with `patjanitor audit reanchor --reason TEXT` first, then repair; nothing was changed", err)
	case errors.Is(err, audit.ErrInUse):
		return nil, fmt.Errorf("the journal %s is held by a running patjanitor serve: stop it (or wait until it exits), then repair; nothing was changed: %w", path, err)
	case err != nil && (anchorBad || anchorMoved):
		// Without its anchor the journal is read from its first segment:
		// the store is the one to keep, the archive has the segments.
		return nil, fmt.Errorf("open journal: %w; the state store's anchor of this journal does not decode (or a repair moved it aside), so the journal is read from its first segment: bring the archived segments back beside it for the repair, then run it again; nothing was changed", err)
	case err != nil:
		return nil, fmt.Errorf("open journal: %w; nothing was changed", err)
	}
	r.g.warnRepairs(j.Repairs())
	return j, nil
}

// readsJournal reports whether the rebuild reads the whole journal: a
// record it rebuilds, or the journal's anchor, is among those to move or
// those the unfinished repair moved.
func (r *stateRepair) readsJournal() bool {
	needsJournal := func(bucket string) bool { return janitor.Rebuildable(bucket) || bucket == state.BucketMeta }
	return r.priorLost > 0 ||
		slices.ContainsFunc(r.bad, func(b state.BadRecord) bool { return needsJournal(b.Bucket) }) ||
		slices.ContainsFunc(r.prior, func(q state.Quarantined) bool { return needsJournal(q.Bucket) })
}

// checkJournal verifies the whole journal before anything moves: the
// rebuild reads it whole, and the incident that damaged the store may have
// changed a segment too (an open verifies only what follows the anchor).
// Found after the records moved, that would leave the store refused by
// every command, and every repair failing the same way. The journal is
// held: it cannot change between this read and the rebuild's.
func (r *stateRepair) checkJournal() error {
	path := r.journal
	// The records to rebuild of which the journal beside holds a record:
	// a token's last snooze record, the last word, is there. Not so for a
	// confirmed change: the runs that found it not in effect journal
	// there, and its intent and outcome, without which it is not
	// rebuilt, may be archived.
	held := map[string]bool{} // snooze keys
	sum, err := audit.VerifyPath(path, audit.VerifyOptions{Kinds: []audit.Kind{audit.KindSnooze}, Each: func(rec audit.Record) error {
		if key, ok := state.RecordKey(state.BucketSnoozes, rec.TokenID); ok && rec.TokenID != "" {
			held[key] = true
		}
		return nil
	}})
	if err != nil {
		return fmt.Errorf("the journal %s, which the repair rebuilds from, does not verify: %w; restore the damaged file from its archive or a backup (`patjanitor audit verify` names it), then repair; nothing was changed", path, err)
	}
	what := r.onlyJournalHolds(held)
	if sum.FirstSegment > 1 && what != "" && r.o.withoutArchived {
		r.withoutArchive = fmt.Sprintf("repaired without the journal's archived segments 1 to %d (--without-archived-segments): a snooze or a confirmed change only they hold is not rebuilt (a snooze lost lets the next run act on its token)", sum.FirstSegment-1)
		return nil
	}
	if sum.FirstSegment > 1 && what != "" {
		// Archived, as docs/operations.md has operators do: a snooze
		// made before them is in force, and rebuilt without them it
		// would be gone (the next run acts on its token), a confirmed
		// change awaiting proof too (a lying tenant's alarm). The
		// repair cannot be run again once the records moved.
		return fmt.Errorf("the journal's segments 1 to %d are not beside %s (archived): %s, which the repair rebuilds from the journal, may be only in them (a snooze lost would let the next run act on its token): bring the archived segments back beside the journal for the repair, then run it again (`--without-archived-segments` repairs without them, losing what only they hold); nothing was changed",
			sum.FirstSegment-1, path, what)
	}
	return nil
}

// onlyJournalHolds names a record the repair moves (or the unfinished one
// moved) that only the journal can give back: a snooze of which the
// journal beside holds no record (held), a confirmed change (an
// executed plan stays refused by its quarantined record), or the anchor
// (every snooze of the journal is taken in), or one whose bucket is not
// known; "" when there is none.
func (r *stateRepair) onlyJournalHolds(held map[string]bool) string {
	anchor := state.AnchorKey(r.journalKey)
	name := func(bucket string, key []byte) string {
		switch {
		case bucket == state.BucketMeta && string(key) == anchor:
		case bucket == state.BucketMeta:
			// Another journal's anchor (the store keeps one per
			// --journal it was used with): nothing of it is in this
			// journal's segments.
			return ""
		case bucket != state.BucketSnoozes && bucket != state.BucketConfirmed && bucket != state.BucketConfirmedClients:
			return ""
		case bucket == state.BucketSnoozes && held[string(key)]:
			return ""
		}
		return fmt.Sprintf("the record %q in bucket %q", untrusted.ClipID(string(key)), bucket)
	}
	for _, b := range r.bad {
		if s := name(b.Bucket, b.Key); s != "" {
			return s
		}
	}
	for _, q := range r.prior {
		if s := name(q.Bucket, q.Key); s != "" {
			return s
		}
	}
	if r.priorLost > 0 {
		return "a record the unfinished repair moved aside, which does not decode in the quarantine bucket"
	}
	return ""
}

// anchorAmong reports whether the journal's anchor is one of the records
// that do not decode (bad), or one the unfinished repair moved aside
// (moved).
func (r *stateRepair) anchorAmong() (bad, moved bool) {
	key := state.AnchorKey(r.journalKey)
	for _, b := range r.bad {
		bad = bad || (b.Bucket == state.BucketMeta && string(b.Key) == key)
	}
	for _, q := range r.prior {
		moved = moved || (q.Bucket == state.BucketMeta && string(q.Key) == key)
	}
	return bad, moved
}

// frozenAnchor is the journal's anchor as the store held it before the
// repair, for the repair's open and its records: the anchor does not move
// until the catch-up took in the records after it (Attach).
type frozenAnchor struct {
	a  audit.Anchor
	ok bool
}

func (f *frozenAnchor) LoadAnchor(context.Context) (audit.Anchor, bool, error) { return f.a, f.ok, nil }
func (f *frozenAnchor) StoreAnchor(context.Context, audit.Anchor) error        { return nil }

// quarantine journals one record per bad record, then moves them all to
// the quarantine bucket in one transaction. The journal first, as for a
// mutation: a crash in between leaves the records where they were (every
// command still refuses them, naming this command) and the journal naming
// records not yet moved, which the next repair moves, journaling them
// again; a crash after it leaves the repair pending (Open refuses the
// store) and the next repair finishes it.
func (r *stateRepair) quarantine(ctx context.Context, j *audit.Journal) error {
	if len(r.bad) == 0 {
		if r.withoutArchive == "" {
			return nil
		}
		// Finishing an unfinished repair, nothing left to move: its
		// records are journaled, but not that this one rebuilds them
		// without the archive.
		note := fmt.Sprintf("state repair: finishing the unfinished repair of %s (its records moved already); %s: %s",
			r.st.Path(), r.withoutArchive, janitor.ReasonNote(r.reason, r.by))
		if _, err := j.Append(ctx, audit.Record{Kind: audit.KindStateRepair, Note: note}); err != nil {
			return fmt.Errorf("journal the repair: %w; nothing was rebuilt", err)
		}
		return nil
	}
	seqs := make([]int64, 0, len(r.bad))
	for _, b := range r.bad {
		note := fmt.Sprintf("state repair: the record %q in bucket %q of %s (%d bytes, sha256 %s) does not decode (%s); moved to the quarantine bucket, its bytes kept: %s",
			untrusted.ClipID(string(b.Key)), b.Bucket, r.st.Path(), len(b.Value), b.SHA256, untrusted.Clip(b.Err, 200), janitor.ReasonNote(r.reason, r.by))
		if r.withoutArchive != "" {
			note += "; " + r.withoutArchive
		}
		rec, err := j.Append(ctx, audit.Record{Kind: audit.KindStateRepair, Note: note})
		if err != nil {
			return fmt.Errorf("journal the repair: %w; nothing was moved", err)
		}
		seqs = append(seqs, rec.Seq)
	}
	if r.hooks.afterJournal != nil {
		if err := r.hooks.afterJournal(); err != nil {
			return err
		}
	}
	var err error
	r.moved, err = r.st.Quarantine(ctx, r.bad, state.QuarantineNote{Reason: r.reason, By: r.by, JournalSeq: seqs})
	return err
}

// rebuild has the catch-up take in the journal's records after its anchor
// (those a restored store missed: the open left them), then the records of
// the whole journal that speak of the moved records: the catch-up of an
// open starts at the anchor, and the store wrote those records before it.
func (r *stateRepair) rebuild(ctx context.Context, j *audit.Journal) error {
	log, _ := r.g.logger()
	path := r.journal
	tail := janitor.NewCatchUp(r.st, log)
	if err := j.Attach(ctx, r.st.AnchorOf(r.journalKey), tail); err != nil {
		return err
	}
	if c := tail.Rebuilt(); c.Total() > 0 {
		fmt.Fprintf(r.out, "The journal holds records the store had not seen (a store restored from a backup): the catch-up rebuilt from them %d executed plan(s), %d confirmed token change(s), %d confirmed API client change(s), %d snooze(s).\n",
			c.Plans, c.Tokens, c.Clients, c.Snoozes)
	}
	var keys janitor.QuarantinedKeys
	want, every := false, false
	// takeInEvery has the pass take in every executed plan and every
	// snooze of the journal: which of them the store lost is not known.
	takeInEvery := func() {
		keys.AddEvery(state.BucketExecuted)
		keys.AddEvery(state.BucketSnoozes)
		want, every = true, true
	}
	anchor := state.AnchorKey(r.journalKey)
	for _, q := range r.moved {
		want = keys.Add(q.Bucket, q.Key) || want
		if q.Bucket == state.BucketMeta && string(q.Key) == anchor {
			// Where the store's knowledge of the journal ended is lost
			// with it, and a bad restore damages the anchor with the
			// rest of a store older than the journal. Every executed
			// plan and every snooze of the journal is taken in: a plan
			// executed stays executed, and a token's last snooze record
			// is the last word (one the store made later is kept). Not
			// every confirmed change: a listing's proof is not
			// journaled, so every change ever proven would come back.
			takeInEvery()
		}
	}
	if r.priorLost > 0 {
		// Records the unfinished repair moved, their keys unknown: every
		// executed plan and snooze of the journal, as for a lost anchor
		// (not every confirmed change: see above).
		fmt.Fprintf(r.out, "%d record(s) the unfinished repair moved aside do not decode in the quarantine bucket: what they were is not known; every executed plan and snooze of the journal is taken in.\n", r.priorLost)
		takeInEvery()
	}
	if !want {
		return nil
	}
	cu := janitor.NewCatchUp(r.st, log)
	if _, err := audit.VerifyPath(path, audit.VerifyOptions{Each: func(rec audit.Record) error {
		if keys.Wants(rec) {
			cu.Record(rec)
		} else {
			cu.Saw(rec) // the runs' ends date what is rebuilt
		}
		return nil
	}}); err != nil {
		return fmt.Errorf("read the journal %s to rebuild the records moved aside: %w", path, err)
	}
	if err := cu.Done(ctx); err != nil {
		return err
	}
	if c := cu.Rebuilt(); every {
		fmt.Fprintf(r.out, "From the whole journal the catch-up rebuilt %d executed plan(s), %d snooze(s) the store did not hold.\n",
			c.Plans, c.Snoozes)
	}
	return nil
}

// report says what was moved, what the journal rebuilt and what the loss
// of the rest means.
func (r *stateRepair) report(ctx context.Context) error {
	rebuilt := 0
	for _, q := range r.moved {
		// The anchor is never rebuilt: the journal's open stored a new
		// one, at its end, which the store holding one does not tell.
		back := false
		if q.Bucket != state.BucketMeta {
			var err error
			if back, err = r.st.Holds(ctx, q.Bucket, q.Key); err != nil {
				return err
			}
		}
		if back {
			rebuilt++
		}
		c := consequence(q.Bucket, back)
		if q.Bucket == state.BucketMeta && string(q.Key) != state.AnchorKey(r.journalKey) {
			// Not this journal's: nothing of it was anchored or taken in.
			c = "another journal's anchor (the store keeps one per journal it was used with), not " + r.journal + "'s: nothing was rebuilt from it; that journal, if used again, has no anchor in the store"
		}
		fmt.Fprintf(r.out, "Moved to the quarantine bucket: bucket %q, key %q (sha256 %s, journal record %d): %s\n",
			q.Bucket, untrusted.ClipID(string(q.Key)), q.SHA256, q.JournalSeq, c)
	}
	_, err := fmt.Fprintf(r.out, "%d record(s) moved to the quarantine bucket of %s, %d rebuilt from the journal; the repair is journaled.\n",
		len(r.moved), r.st.Path(), rebuilt)
	return err
}

// consequence says, for a record moved aside, what the journal rebuilt of
// it or what its loss means.
func consequence(bucket string, rebuilt bool) string {
	switch {
	case rebuilt:
		return "rebuilt from the journal"
	case bucket == state.BucketExecuted:
		return "the journal here holds no run that executed this plan (archived segments?): the plan is still refused, its quarantined record counts as an execution"
	case bucket == state.BucketConfirmed || bucket == state.BucketConfirmedClients:
		return "the journal holds no change of it awaiting proof (proven or acknowledged since, or in archived segments): if one was, a policy that still matches acts on it again and its proof starts over"
	case bucket == state.BucketSnoozes:
		return "the journal here holds no snooze of this token (nor its archived segments, if any, unless repaired --without-archived-segments): it is no longer exempt; snooze it again if it should be"
	case bucket == state.BucketMarks || bucket == state.BucketReasons:
		return "grace mark(s) lost: the next run marks the token anew and its owner is warned again before any action (the grace period starts over: the safe direction)"
	case bucket == state.BucketClientMarks:
		return "an API client's grace mark lost: the next run marks it anew and the apiClients receivers are warned again before any action"
	case bucket == state.BucketDisabled:
		return "patjanitor no longer knows it disabled this API client: a delete policy reports it as \"disabled, but not by patjanitor\" and does not delete it (the safe direction); `patjanitor enable` refuses it (re-enable it in the tenant if needed)"
	case bucket == state.BucketOutbox:
		return "a notification not yet delivered is not sent: an owner's warning is queued again by the next run while its marks are unwarned; any other notice is lost (its bytes are in the quarantine)"
	case bucket == state.BucketDeliveries:
		return "an owner's last digest delivery: the owner may receive the same digest again before the repeat interval"
	case bucket == state.BucketMeta:
		return "the journal's anchor: the journal is anchored at its end as it is now (as `audit reanchor` does); every executed plan and snooze of the journal was taken in, but a confirmed change after the old anchor that the store did not hold is not rebuilt"
	}
	return "not rebuilt"
}
