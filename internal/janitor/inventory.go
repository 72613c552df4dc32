package janitor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/secret"
	"github.com/patjanitor/patjanitor/internal/state"
)

// PageCap is the page size cap of the SailPoint API family (limit: default and
// maximum 250). No API version declares limit or offset on the PAT list and
// its public callers (the official SDKs among them) list it unpaged, but a
// tenant that silently capped it would return exactly this many tokens. So a listing of exactly PageCap
// items is probed once more, the same listing with limit=250&offset=250 (see
// probeCapped): a server that pages answers another page, one that ignores
// the parameters the same tokens. tenant.unpaged: true skips the probe.
const PageCap = 250

// ListingResult is what one listing call returned.
type ListingResult struct {
	Listing pat.Listing
	// Filter is the filters text sent ("" for every token).
	Filter string
	// Count is the number of tokens returned (0 when the call failed).
	Count int
	// Err is the call's failure or why its result is not trusted.
	Err error
	// Probe says what the second-page probe of a listing of exactly
	// PageCap tokens found ("" when none was made).
	Probe string
}

// Inventory is what the listing calls of one run saw, decided as it
// streamed in: the listings are never held. For each token the engine
// counts it, checks it against its listing's filter, looks for it twice
// (within and across listings, with ids compared without regard to case),
// notes its owner, and evaluates it with the run's policies; it keeps only
// the plan's candidates (items, skipped tokens) and the few tokens it needs
// whole (see Token). So memory grows with the matches, not with the
// tenant.
type Inventory struct {
	// Listed is the number of distinct tokens the listings returned.
	Listed int
	// Population is the size of the whole token population: the unfiltered
	// listing's count when one was made, else the number of tokens listed
	// (a lower bound).
	Population int
	// Unfiltered reports whether an unfiltered listing was made, so that a
	// token missing from it is known to be gone.
	Unfiltered bool
	// listingIncomplete: a listing failed, was truncated, stale or
	// inconsistent, so Population counts no population (observePlan).
	listingIncomplete bool
	// Listings are the calls made, in order.
	Listings []ListingResult
	// Err is non-nil (an *IncompleteError) when any listing failed or looks
	// truncated: the inventory must not be acted on.
	Err error
	// OwnIdentity is the identity patjanitor runs as: the owner of its own
	// PAT (the token whose id is the client id), found in the listing or,
	// when a patch policy needs it and the listing did not hold the token,
	// through owner-id=me. "" when unknown; ownWhy then says why. Only
	// tokens it owns can be patched (see needsOwner).
	OwnIdentity string
	ownWhy      string
	// mine is the run's owner-id=me listing, once made (ownTokens).
	mine *ownListing

	// kept are the listed tokens the run needs whole, by pat.IDKey (the
	// first copy listed): those asked for before the listing (the own
	// credential, the tokens of open intents, a saved plan's items) and
	// those of enforce-mode candidates (Execute journals them as listed).
	kept map[string]pat.Token
	// items are the candidates: a plan item for each token a policy won
	// and that is not exempt, before needs-owner and grace are applied, in
	// no order. decide takes them.
	items plan.Items
	// skipped are the tokens a policy matched that are exempt, and the
	// undecodable ones.
	skipped []plan.Skipped
	// ownerCount is the number of distinct owner ids listed; soleOwner is
	// the owner of every listed token (lower case) unless manyOwners.
	ownerCount int
	soleOwner  string
	manyOwners bool
	// owners is the owner lookup made before evaluation (nil when no policy
	// has owner conditions); decide feeds it to policy.Env.Owner.
	owners *Owners
	// snoozes are the active snoozes read for this run (nil: none).
	snoozes map[string]state.Snooze
	// marks are every grace mark in the store (nil: no store or no grace
	// policy).
	marks map[state.MarkKey]state.Mark
	// view is what the run could see as its credential (view.go).
	view *view
	// proofs are the confirmed mutations awaiting proof (proof.go; nil:
	// no store).
	proofs *proofs
	// clock checks the Dates of the run's listings (clock.go), the API
	// client listings' too.
	clock *clockCheck
}

// addProblem makes the inventory incomplete for a reason found after the
// listings (the state store could not be read).
func (inv *Inventory) addProblem(problem string, cause error) {
	ie, _ := inv.Err.(*IncompleteError)
	if ie == nil {
		ie = &IncompleteError{}
		if inv.Err != nil {
			ie.Causes = append(ie.Causes, inv.Err)
		}
	}
	ie.Problems = append(ie.Problems, problem)
	ie.Causes = append(ie.Causes, cause)
	inv.Err = ie
}

// Token returns the listed token with this id, if the run kept it: the
// ids given to the inventory before listing (and the own credential, and
// the tokens of enforce-mode candidates) are kept; any other token is not,
// whether listed or not.
func (inv *Inventory) Token(id string) (pat.Token, bool) {
	t, ok := inv.kept[pat.IDKey(id)]
	return t, ok
}

// IncompleteError says why an inventory cannot be trusted (invariant 3). The
// run that met it mutates nothing.
type IncompleteError struct {
	// Problems name the listing and what was wrong with it, one per problem.
	Problems []string
	// Causes are the underlying errors (API failures), for errors.Is/As.
	Causes []error
}

func (e *IncompleteError) Error() string {
	if errors.As(e, new(*ClockSkewError)) { // a cause, through Unwrap
		// The data is complete; the time it is judged against is not.
		return "the tenant's clock and this host's disagree, nothing will be changed: " + strings.Join(e.Problems, "; ")
	}
	if e.authFailed() {
		// The listing did not fail: patjanitor could not log in. Saying
		// "incomplete data" first sent people looking at the tenant's data.
		return "authentication failed: the tenant refused patjanitor's credentials, so nothing was listed and nothing will be changed. " +
			"Likely causes: the client secret is wrong or was rotated (PATJANITOR_CLIENT_SECRET or tenant.clientSecretFile), " +
			"the client id is not the PAT's id (PATJANITOR_CLIENT_ID or tenant.clientId), the PAT was deleted or its owner disabled, " +
			"or tenant.url names another tenant. (" + strings.Join(e.Problems, "; ") + ")"
	}
	return "incomplete data, nothing will be changed: " + strings.Join(e.Problems, "; ")
}

// authFailed reports whether a cause is an authentication failure (a 401,
// or the token endpoint refusing the credentials).
func (e *IncompleteError) authFailed() bool {
	for _, c := range e.Causes {
		if errors.Is(c, api.ErrUnauthorized) {
			return true
		}
	}
	return false
}

// Unwrap returns the underlying API errors.
func (e *IncompleteError) Unwrap() []error { return e.Causes }

// TokenStreamer is a Tenant that hands each listed token over as it is
// decoded; *api.Client implements it. A Tenant without it is listed whole
// with ListTokens and then streamed from memory (test doubles).
type TokenStreamer interface {
	StreamTokens(ctx context.Context, opts api.ListOptions, sink api.TokenSink) (int, error)
}

// streamTokens lists through StreamTokens when the tenant has it.
func (e *Engine) streamTokens(ctx context.Context, opts api.ListOptions, sink api.TokenSink) (int, error) {
	if ts, ok := e.tenant.(TokenStreamer); ok {
		return ts.StreamTokens(ctx, opts, sink)
	}
	toks, err := e.tenant.ListTokens(ctx, opts)
	if err != nil {
		return 0, err
	}
	for i := range toks {
		t := toks[i]
		if err := sink.Token(&t); err != nil {
			return 0, err
		}
	}
	return len(toks), nil
}

// survey makes the listing calls, deciding every token as it arrives (see
// Inventory), and prepares what decide needs besides: the view, the own
// identity, the snoozes and marks (read before the listing: evaluation
// needs them) and, for policies with owner conditions, the owners. want are
// the ids of the tokens the caller needs whole (Inventory.Token); pr are
// the confirmed mutations read for the run (proof.go), judged after the
// survey. It returns an error only when ctx ended; every other failure is
// recorded in the Inventory as incomplete data.
func (e *Engine) survey(ctx context.Context, listings []pat.Listing, now time.Time, want []string, pr *proofs) (*Inventory, error) {
	inv := &Inventory{proofs: pr, clock: &clockCheck{e: e, now: now}}
	// The store is read first, and what failed is recorded after the
	// listing's own problems, in the order the report has always shown.
	var later []func()
	if pr != nil && pr.err != nil {
		later = append(later, func() { inv.addProblem("read the confirmed changes awaiting proof: "+pr.err.Error(), pr.err) })
	}
	if err := e.readSnoozes(ctx, inv, &later); err != nil {
		return nil, err
	}
	if err := e.readMarks(ctx, inv, &later); err != nil {
		return nil, err
	}
	// With owner conditions a token cannot be decided before its owner is
	// looked up, and the lookup needs every owner: those listings keep
	// every token and are decided after it (memory then grows with the
	// listing, as it did before streaming).
	byOwner := e.owners != nil && usesOwnerConditions(e.cfg)
	var ev *policy.Evaluator
	if !byOwner {
		ev = e.cfg.Evaluator(policy.Env{Now: now, ClientID: e.clientID})
	}
	sinks, err := e.inventory(ctx, inv, listings, now, ev, want)
	if err != nil {
		return nil, err
	}
	if err := e.assessView(ctx, inv, now); err != nil {
		return nil, err
	}
	if err := e.findOwnIdentity(ctx, inv); err != nil {
		return nil, err
	}
	for _, f := range later {
		f()
	}
	if byOwner {
		var buf []pat.Token
		for _, s := range sinks {
			buf = append(buf, s.buf...)
			s.buf = nil
		}
		if inv.owners, err = e.lookupOwners(ctx, ownerIDs(len(buf), func(i int) string { return buf[i].Owner.ID }), knownIdentity(inv, e.clientID), inv.clock); err != nil {
			return nil, err
		}
		s := newListingSink(e, inv, pat.Listing{}, now, e.cfg.Evaluator(policy.Env{Now: now, ClientID: e.clientID, Owner: inv.owners.envOwner()}), nil, false)
		for i := range buf {
			s.consider(&buf[i])
		}
		appendItems(&inv.items, &s.items)
		inv.skipped = append(inv.skipped, s.skipped...)
		maps.Copy(inv.kept, s.kept)
	}
	return inv, nil
}

// listingBudget bounds the bytes of one run's token listings
// (tenant.maxListingBytes).
func (e *Engine) listingBudget() *api.Budget {
	if e.cfg.Tenant.MaxListingBytes <= 0 {
		return api.NewBudget(api.DefaultMaxListingBytes, "tenant.maxListingBytes")
	}
	return api.NewBudget(int64(e.cfg.Tenant.MaxListingBytes), "tenant.maxListingBytes")
}

// inventory makes the listing calls concurrently (there are at most a few,
// and the two filtered ones of a large tenant are each a big download),
// each into its own listingSink, and merges what they found in listing
// order, so that the result does not depend on which call finished first.
func (e *Engine) inventory(ctx context.Context, inv *Inventory, listings []pat.Listing, now time.Time, ev *policy.Evaluator, want []string) ([]*listingSink, error) {
	unpaged := e.cfg.Tenant.Unpaged
	results := make([]ListingResult, len(listings))
	// The listings share one budget: the run's memory is bounded by
	// tenant.maxListingBytes whether it makes one listing or two.
	budget := e.listingBudget()
	wanted := newIDSet(len(want) + 1)
	wanted.add(e.clientID, idEntry{})
	for _, id := range want {
		wanted.add(id, idEntry{})
	}
	sinks := make([]*listingSink, len(listings))
	dates := make([]answerDate, len(listings))
	var wg sync.WaitGroup
	capped := make([]string, len(listings))
	for i, l := range listings {
		sinks[i] = newListingSink(e, inv, l, now, ev, wanted, len(listings) > 1)
		wg.Go(func() {
			f := api.Filter(l)
			p := startPipe(sinks[i])
			n, err := e.streamTokens(inv.clock.watch(ctx, &dates[i]), api.ListOptions{Filters: f, Budget: budget}, p)
			p.wait()
			results[i] = ListingResult{Listing: l, Filter: f, Count: n, Err: err}
			if err == nil && n == PageCap && !unpaged {
				// The probe is the listing's second page: a cache that
				// answered it says the listing is complete when it is not.
				results[i].Probe, capped[i] = e.probeCapped(inv.clock.watch(ctx, &dates[i]), f, sinks[i].firstIDs)
				e.log.Info("a listing returned exactly 250 tokens; probed with limit=250&offset=250",
					zap.String("filter", f), zap.String("probe", results[i].Probe))
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", context.Cause(ctx))
	}

	inv.Listings = results
	inv.kept = map[string]pat.Token{}
	incomplete := &IncompleteError{}
	problem := func(i int, msg string) {
		msg = fmt.Sprintf("listing %s: %s", describeListing(listings[i]), msg)
		incomplete.Problems = append(incomplete.Problems, msg)
		if results[i].Err == nil {
			results[i].Err = errors.New(msg)
		}
	}
	var seen *idSet   // the ids of the listings merged so far
	var owners *idSet // the owners of the listings merged so far
	var used []*listingSink
	anyOwner := false
	for i, r := range results {
		s := sinks[i]
		if r.Err != nil {
			incomplete.Causes = append(incomplete.Causes, r.Err)
			problem(i, r.Err.Error())
			sinks[i] = nil // what a failed listing delivered is not a listing
			continue
		}
		if capped[i] != "" {
			problem(i, capped[i])
		}
		if err := inv.clock.check(describeListing(listings[i]), &dates[i]); err != nil {
			incomplete.Causes = append(incomplete.Causes, err)
			problem(i, err.Error())
		}
		if listings[i].Kind == pat.ListAll {
			inv.Unfiltered = true
			inv.Population = r.Count
		}
		// A token another listing returned too is merged: the first copy
		// counts, and a copy that differs says the tenant changed between
		// the calls.
		var drop map[string]bool
		if seen != nil {
			s.ids.common(seen, func(id string, en, first idEntry) {
				if first.hash != en.hash {
					s.problems = append(s.problems, posProblem{pos: int(en.pos), kind: 1,
						msg: fmt.Sprintf("token %s differs from the copy another listing returned (it changed between the calls)", id)})
				}
				if drop == nil {
					drop = map[string]bool{}
				}
				drop[pat.IDKey(id)] = true
			})
		}
		slices.SortStableFunc(s.problems, func(a, b posProblem) int {
			return cmp.Or(cmp.Compare(a.pos, b.pos), cmp.Compare(a.kind, b.kind))
		})
		for _, p := range s.problems {
			problem(i, p.msg)
		}
		inv.Listed += s.ids.len() - len(drop)
		if seen == nil {
			seen = s.ids
		} else if i < len(results)-1 {
			seen.merge(s.ids)
		}
		if owners == nil {
			owners = s.owners
		} else {
			owners.merge(s.owners)
		}
		if s.ids.len() > 0 {
			inv.manyOwners = inv.manyOwners || s.manyOwners || (anyOwner && s.soleOwner != inv.soleOwner)
			if !anyOwner {
				inv.soleOwner, anyOwner = s.soleOwner, true
			}
		}
		for k, t := range s.kept {
			if _, ok := inv.kept[k]; !ok && !drop[k] {
				inv.kept[k] = t
			}
		}
		if drop != nil {
			var kept plan.Items
			for _, it := range s.items.All() {
				if !drop[pat.IDKey(it.TokenID)] {
					kept.Append(it)
				}
			}
			s.items = kept
			s.skipped = slices.DeleteFunc(s.skipped, func(sk plan.Skipped) bool { return drop[pat.IDKey(sk.TokenID)] })
			s.buf = slices.DeleteFunc(s.buf, func(t pat.Token) bool { return drop[pat.IDKey(t.ID)] })
		}
		if len(used) == 0 {
			inv.items, inv.skipped = s.items, s.skipped
		} else {
			appendItems(&inv.items, &s.items)
			inv.skipped = append(inv.skipped, s.skipped...)
		}
		s.items, s.skipped, s.ids, s.owners, s.kept = plan.Items{}, nil, nil, nil, nil
		used = append(used, s)
	}
	if owners != nil {
		inv.ownerCount = owners.len()
	}
	if !inv.Unfiltered {
		inv.Population = inv.Listed
	}
	if len(incomplete.Problems) > 0 {
		inv.Err = incomplete
		inv.listingIncomplete = true
	}
	return used, nil
}

// pipeSink hands a listing's tokens to its listingSink on another
// goroutine, in batches: the goroutine that reads the body only decodes,
// and deciding the tokens (a third of the work) overlaps with it instead of
// following each token's decoding. Four batch buffers circulate, so the
// decoder runs at most three batches ahead.
type pipeSink struct {
	cur  []pat.Token
	work chan pipeBatch
	free chan []pat.Token
	done chan struct{}
}

// pipeBatch is a batch of tokens, or the order to forget the tokens so far.
type pipeBatch struct {
	toks  []pat.Token
	reset bool
}

const pipeBatchSize, pipeBuffers = 256, 4

func startPipe(s *listingSink) *pipeSink {
	p := &pipeSink{work: make(chan pipeBatch, pipeBuffers), free: make(chan []pat.Token, pipeBuffers), done: make(chan struct{})}
	for range pipeBuffers - 1 {
		p.free <- make([]pat.Token, 0, pipeBatchSize)
	}
	p.cur = make([]pat.Token, 0, pipeBatchSize)
	go func() {
		defer close(p.done)
		for b := range p.work {
			if b.reset {
				s.Reset()
				continue
			}
			for i := range b.toks {
				_ = s.Token(&b.toks[i]) // a listingSink takes every token
			}
			clear(b.toks) // the free buffer keeps no strings alive
			p.free <- b.toks[:0]
		}
	}()
	return p
}

// Token queues a copy of t (api.TokenSink).
func (p *pipeSink) Token(t *pat.Token) error {
	p.cur = append(p.cur, *t)
	if len(p.cur) == cap(p.cur) {
		p.work <- pipeBatch{toks: p.cur}
		p.cur = <-p.free
	}
	return nil
}

// Reset drops the queued tokens and has the sink forget the others, in
// order (api.TokenSink).
func (p *pipeSink) Reset() {
	clear(p.cur)
	p.cur = p.cur[:0]
	p.work <- pipeBatch{reset: true}
}

// wait hands over the last batch and returns once the sink has taken
// every token: the sink may be read then.
func (p *pipeSink) wait() {
	if len(p.cur) > 0 {
		p.work <- pipeBatch{toks: p.cur}
	}
	close(p.work)
	<-p.done
}

// posProblem is a problem found in a listing at the token at pos (kind 0:
// the filter, 1: a duplicate), so that the problems of one listing are
// reported in listing order, the filter's first.
type posProblem struct {
	pos  int
	kind int
	msg  string
}

// listingSink receives one listing's tokens (api.TokenSink) and does with
// each what Inventory says. The listing's tokens arrive on one goroutine;
// the sink reads only what is not written during the listing (the engine,
// the snoozes, wanted).
type listingSink struct {
	e       *Engine
	inv     *Inventory
	l       pat.Listing
	now     time.Time
	ev      *policy.Evaluator // nil: keep every token in buf, to decide later
	wanted  *idSet            // ids to keep whole (Inventory.kept)
	own     *idSet            // the client id
	hashing bool              // another listing may return the same tokens: compare copies

	n          int
	ids        *idSet
	owners     *idSet
	soleOwner  string
	manyOwners bool
	problems   []posProblem
	items      plan.Items
	skipped    []plan.Skipped
	kept       map[string]pat.Token
	buf        []pat.Token
	// firstIDs are the first PageCap+1 ids, for the capped-page probe.
	firstIDs []string
}

func newListingSink(e *Engine, inv *Inventory, l pat.Listing, now time.Time, ev *policy.Evaluator, wanted *idSet, hashing bool) *listingSink {
	s := &listingSink{e: e, inv: inv, l: l, now: now, ev: ev, wanted: wanted, hashing: hashing, own: newIDSet(1)}
	s.own.add(e.clientID, idEntry{})
	if wanted == nil {
		s.wanted = newIDSet(0)
	}
	s.Reset()
	return s
}

// Reset forgets the tokens received: the listing starts over.
func (s *listingSink) Reset() {
	s.n, s.soleOwner, s.manyOwners = 0, "", false
	// Only a listing beside others needs its tokens' positions and
	// digests (merging); nothing needs the owners'.
	s.ids, s.owners = newLeanIDSet(1024, true), newLeanIDSet(256, false)
	if s.hashing {
		s.ids = newIDSet(1024)
	}
	s.problems, s.items, s.skipped, s.buf, s.firstIDs = nil, plan.Items{}, nil, nil, nil
	s.kept = map[string]pat.Token{}
}

// Token takes the next listed token (api.TokenSink).
func (s *listingSink) Token(t *pat.Token) error {
	pos := s.n
	s.n++
	if len(s.firstIDs) <= PageCap {
		s.firstIDs = append(s.firstIDs, t.ID)
	}
	// Every listing's tokens are checked against its own filter, also
	// those another listing returned too.
	if why := outsideFilter(s.l, t); why != "" {
		s.problems = append(s.problems, posProblem{pos: pos, msg: fmt.Sprintf("token %s %s: the tenant did not apply the filter", t.ID, why)})
	}
	var h uint64
	if s.hashing {
		h = tokenHash(t)
	}
	if s.ids.add(t.ID, idEntry{pos: uint32(pos), hash: h}) {
		msg := fmt.Sprintf("token %s appears twice", t.ID)
		first := s.ids.spelling(t.ID)
		if first != t.ID {
			msg = fmt.Sprintf("token %s appears twice (also as %s: the tenant takes ids in any case)", t.ID, first)
		}
		// The first copy is kept (the run is refused anyway; the report
		// still lists each token once).
		s.problems = append(s.problems, posProblem{pos: pos, kind: 1, msg: msg})
		return nil
	}
	if o := t.Owner.ID; o != "" {
		s.owners.add(o, idEntry{})
	}
	if owner := pat.IDKey(t.Owner.ID); s.ids.len() == 1 {
		s.soleOwner = owner
	} else if owner != s.soleOwner {
		s.manyOwners = true
	}
	if s.wanted.has(t.ID) {
		s.kept[pat.IDKey(t.ID)] = *t
	}
	if s.ev == nil {
		s.buf = append(s.buf, *t)
		return nil
	}
	s.consider(t)
	return nil
}

// consider evaluates one token and keeps what the plan needs of it.
func (s *listingSink) consider(t *pat.Token) {
	d := s.ev.Evaluate(t)
	if t.Undecodable == "" && renamesRedacted(t, d) {
		t.Undecodable = "the name holds " + secret.Redacted + " (a credential patjanitor sent the tenant, redacted): a rename would write it into the tenant"
	}
	if t.Undecodable != "" {
		// Part of what the tenant sent for this token cannot be used (a
		// null inside scope): it is listed, whatever matched, and
		// nothing is decided on it.
		s.skipped = append(s.skipped, undecodableOf(t, d))
		return
	}
	if !d.Matched {
		return
	}
	if d.Skip == "" && s.own.has(t.ID) {
		// Defence in depth: evaluation skips the own credential; if it
		// ever did not, the engine still would.
		d.Skip, d.Patch = policy.SkipOwnCredential, nil
	}
	if d.Skip != "" {
		s.skipped = append(s.skipped, skippedOf(t, d))
		return
	}
	if z, ok := s.inv.snoozed(t.ID, s.now); ok {
		s.skipped = append(s.skipped, snoozedOf(t, d, z))
		return
	}
	if d.Mode == policy.ModeEnforce && d.Action != policy.ActionReport {
		// Changed less than SettleMargin ago: neither judged nor sent
		// again until a listing can tell (proof.go).
		if c, ok := s.inv.proofs.settling(t.ID, s.now); ok {
			s.skipped = append(s.skipped, awaitingProofOf(t, d, c))
			return
		}
	}
	s.items.Append(itemOf(t, d))
	if d.Mode == policy.ModeEnforce && d.Action != policy.ActionReport {
		// Execute journals the token as listed.
		s.kept[pat.IDKey(t.ID)] = *t
	}
}

// tokenHash digests every field the API returns, to tell two listings' copies of a token apart without keeping
// either.
func tokenHash(t *pat.Token) uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed)
	// Each string with its length first: a terminator would not do, a JSON
	// string may hold NUL (\u0000), and ["a\x00", "b"] would digest as
	// ["a", "\x00b"].
	str := func(s string) { maphash.WriteComparable(&h, len(s)); h.WriteString(s) }
	tm := func(p *time.Time) {
		if p == nil {
			h.WriteByte(0)
			return
		}
		h.WriteByte(1)
		maphash.WriteComparable(&h, p.Unix())
		maphash.WriteComparable(&h, p.Nanosecond())
	}
	str(t.ID)
	str(t.Name)
	str(t.Owner.Type)
	str(t.Owner.ID)
	str(t.Owner.Name)
	maphash.WriteComparable(&h, t.Scope.Null)
	maphash.WriteComparable(&h, len(t.Scope.Values))
	for _, v := range t.Scope.Values {
		str(v)
	}
	tm(&t.Created)
	tm(t.LastUsed)
	tm(t.ExpirationDate)
	maphash.WriteComparable(&h, t.Managed)
	maphash.WriteComparable(&h, t.AccessTokenValiditySeconds)
	switch {
	case t.UserAwareTokenNeverExpires == nil:
		h.WriteByte(2)
	case *t.UserAwareTokenNeverExpires:
		h.WriteByte(1)
	default:
		h.WriteByte(0)
	}
	return h.Sum64()
}

// hashSeed is the one seed of tokenHash, so that two listings' hashes compare.
var hashSeed = maphash.MakeSeed()

func describeListing(l pat.Listing) string {
	if f := api.Filter(l); f != "" {
		return fmt.Sprintf("%q", f)
	}
	return "of all tokens"
}

// outsideFilter reports why t should not have been returned by listing l ("" if
// it belongs). A tenant that ignores the filter returns tokens that are not
// stale; their decisions would still be right, but the listing is not the one
// that was asked for, so nothing else about it can be trusted either.
func outsideFilter(l pat.Listing, t *pat.Token) string {
	switch l.Kind {
	case pat.ListLastUsedBefore:
		cutoff := l.Cutoff.UTC().Truncate(time.Millisecond) // the filter is sent with milliseconds
		if t.LastUsed == nil {
			return "was never used"
		}
		if t.LastUsed.After(cutoff) {
			return "has lastUsed " + pat.FormatTime(*t.LastUsed) + " after " + pat.FormatTime(cutoff)
		}
	case pat.ListNeverUsed:
		if t.LastUsed != nil {
			return "has lastUsed " + pat.FormatTime(*t.LastUsed)
		}
	}
	return ""
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// probeCapped asks the listing that returned exactly PageCap tokens once more
// with limit=250&offset=250 and reads the answer (invariant 3):
//   - the same tokens: the tenant ignores the parameters, so it does not
//     page this endpoint and the listing is complete;
//   - no tokens: a paging tenant's second page is empty, so there is nothing
//     beyond the first 250 and the listing is complete;
//   - other tokens: the tenant pages, the listing was a capped first page;
//   - an error: it cannot be told.
//
// It returns what it found and, when the listing cannot be trusted, the
// problem ("" when complete).
func (e *Engine) probeCapped(ctx context.Context, filter string, first []string) (probe, problem string) {
	const ask = "limit=250&offset=250"
	second, err := e.tenant.ListTokens(ctx, api.ListOptions{Filters: filter, Limit: PageCap, Offset: PageCap})
	if err != nil {
		return "failed: " + err.Error(), fmt.Sprintf("returned exactly %d tokens, and asking again with %s failed (%v): a capped page cannot be told from a complete listing (if the tenant really has that many, set tenant.unpaged: true)", PageCap, ask, err)
	}
	if len(second) == 0 {
		return "empty second page: complete", ""
	}
	if sameIDs(first, second) {
		return "the same tokens again (limit and offset ignored): complete", ""
	}
	return fmt.Sprintf("%d other tokens: capped", len(second)),
		fmt.Sprintf("returned exactly %d tokens, and asking again with %s returned %d other tokens: the tenant pages this listing, so it was a capped first page", PageCap, ask, len(second))
}

// sameIDs reports whether the ids a and the tokens b are the same (ids
// compare without regard to case).
func sameIDs(a []string, b []pat.Token) bool {
	if len(a) != len(b) {
		return false
	}
	ids := make(map[string]bool, len(a))
	for _, id := range a {
		ids[pat.IDKey(id)] = true
	}
	for i := range b {
		if !ids[pat.IDKey(b[i].ID)] {
			return false
		}
	}
	return true
}

// appendItems moves src's items to the end of dst (the candidates of a
// second listing), leaving src empty.
func appendItems(dst, src *plan.Items) {
	if dst.Len() == 0 {
		*dst, *src = *src, plan.Items{}
		return
	}
	for _, it := range src.All() {
		dst.Append(it)
	}
	*src = plan.Items{}
}

// renamesRedacted reports whether d renames t (patch namePrefix) while the
// listed name holds secret.Redacted: the api package put it where the
// tenant echoed one of patjanitor's credentials (or the tenant wrote it
// so), and a rename is built from the listed name, so it would write the
// placeholder into the tenant in place of what was there. Such a token is
// undecodable, as one whose scope held a credential: the name is a value
// patjanitor sends back. A delete or an expiry does not send the name and
// goes on by id.
func renamesRedacted(t *pat.Token, d policy.Decision) bool {
	if !strings.Contains(t.Name, secret.Redacted) {
		return false
	}
	for _, op := range d.Patch {
		if _, ok := op.Name(); ok {
			return true
		}
	}
	return false
}
