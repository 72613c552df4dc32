package janitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/pat"
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

// Inventory is the tenant's tokens as the listing calls of one run saw them.
type Inventory struct {
	// Tokens are the listed tokens merged by id, in listing order (plans
	// are sorted on their own; sorting 100,000 tokens here would buy
	// nothing).
	Tokens []pat.Token
	// Population is the size of the whole token population: the unfiltered
	// listing's count when one was made, else the number of tokens listed
	// (a lower bound).
	Population int
	// Unfiltered reports whether an unfiltered listing was made, so that a
	// token missing from Tokens is known to be gone.
	Unfiltered bool
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

	// byID indexes Tokens by pat.IDKey: two listed tokens whose ids differ
	// only in case are one token of the tenant, listed twice.
	byID map[string]int
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

// Token returns the listed token with this id.
func (inv *Inventory) Token(id string) (pat.Token, bool) {
	i, ok := inv.byID[pat.IDKey(id)]
	if !ok {
		return pat.Token{}, false
	}
	return inv.Tokens[i], true
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

// inventory makes the listing calls concurrently (there are at most a few,
// and the two filtered ones of a large tenant are each a big download) and
// merges them. It returns an error only when ctx ended; every other failure
// is recorded in the Inventory as incomplete data.
func (e *Engine) inventory(ctx context.Context, listings []pat.Listing, unpaged bool) (*Inventory, error) {
	results := make([]ListingResult, len(listings))
	tokens := make([][]pat.Token, len(listings))
	// The listings share one budget: the run's memory is bounded by
	// tenant.maxListingBytes whether it makes one listing or two.
	budget := api.NewBudget(int64(e.cfg.Tenant.MaxListingBytes), "tenant.maxListingBytes")
	if e.cfg.Tenant.MaxListingBytes <= 0 {
		budget = api.NewBudget(api.DefaultMaxListingBytes, "tenant.maxListingBytes")
	}
	var wg sync.WaitGroup
	capped := make([]string, len(listings))
	for i, l := range listings {
		wg.Go(func() {
			f := api.Filter(l)
			ts, err := e.tenant.ListTokens(ctx, api.ListOptions{Filters: f, Budget: budget})
			results[i] = ListingResult{Listing: l, Filter: f, Count: len(ts), Err: err}
			tokens[i] = ts
			if err == nil && len(ts) == PageCap && !unpaged {
				results[i].Probe, capped[i] = e.probeCapped(ctx, f, ts)
				e.log.Info("a listing returned exactly 250 tokens; probed with limit=250&offset=250",
					zap.String("filter", f), zap.String("probe", results[i].Probe))
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", context.Cause(ctx))
	}

	total := 0
	for i := range tokens {
		total += len(tokens[i])
	}
	inv := &Inventory{Listings: results, byID: make(map[string]int, total)}
	incomplete := &IncompleteError{}
	problem := func(i int, format string, args ...any) {
		msg := fmt.Sprintf("listing %s: %s", describeListing(listings[i]), fmt.Sprintf(format, args...))
		incomplete.Problems = append(incomplete.Problems, msg)
		if results[i].Err == nil {
			results[i].Err = errors.New(msg)
		}
	}
	// One listing (the common case with maxActionsPercent, and the large
	// one) is used as returned; several are merged into a new slice. from
	// says which listing each merged token came from, to tell a duplicate
	// within one listing from the same token in two.
	single := len(listings) == 1
	var from []int
	if !single {
		inv.Tokens = make([]pat.Token, 0, total)
		from = make([]int, 0, total)
	}
	dups := false
	for i, r := range results {
		if r.Err != nil {
			incomplete.Causes = append(incomplete.Causes, r.Err)
			problem(i, "%v", r.Err)
			continue
		}
		ts := tokens[i]
		if capped[i] != "" {
			problem(i, "%s", capped[i])
		}
		if listings[i].Kind == pat.ListAll {
			inv.Unfiltered = true
			inv.Population = len(ts)
		}
		if single {
			inv.Tokens = ts
		}
		for j := range ts {
			t := &ts[j]
			// Every listing's tokens are checked against its own filter, also
			// those another listing returned too.
			if why := outsideFilter(listings[i], t); why != "" {
				problem(i, "token %s %s: the tenant did not apply the filter", t.ID, why)
			}
			key := pat.IDKey(t.ID)
			if k, ok := inv.byID[key]; ok {
				switch {
				case single || from[k] == i:
					if first := inv.Tokens[k].ID; first != t.ID {
						problem(i, "token %s appears twice (also as %s: the tenant takes ids in any case)", t.ID, first)
					} else {
						problem(i, "token %s appears twice", t.ID)
					}
					dups = true
				case !sameToken(&inv.Tokens[k], t):
					problem(i, "token %s differs from the copy another listing returned (it changed between the calls)", t.ID)
				}
				continue
			}
			if single {
				inv.byID[key] = j
				continue
			}
			inv.byID[key] = len(inv.Tokens)
			inv.Tokens = append(inv.Tokens, *t)
			from = append(from, i)
		}
	}
	if single && dups {
		// Keep the first copy of each token (the run is refused anyway; the
		// report should still list each token once).
		kept := make([]pat.Token, 0, len(inv.byID))
		for j := range inv.Tokens {
			if inv.byID[pat.IDKey(inv.Tokens[j].ID)] == j {
				kept = append(kept, inv.Tokens[j])
			}
		}
		inv.Tokens = kept
		for j := range kept {
			inv.byID[pat.IDKey(kept[j].ID)] = j
		}
	}
	if !inv.Unfiltered {
		inv.Population = len(inv.Tokens)
	}
	if len(incomplete.Problems) > 0 {
		inv.Err = incomplete
	}
	return inv, nil
}

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

// sameToken compares every field the API returns.
func sameToken(a, b *pat.Token) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Owner == b.Owner &&
		a.Scope.Null == b.Scope.Null && slices.Equal(a.Scope.Values, b.Scope.Values) &&
		a.Created.Equal(b.Created) && sameTime(a.LastUsed, b.LastUsed) &&
		a.Managed == b.Managed && a.AccessTokenValiditySeconds == b.AccessTokenValiditySeconds &&
		sameTime(a.ExpirationDate, b.ExpirationDate) && sameBool(a.UserAwareTokenNeverExpires, b.UserAwareTokenNeverExpires)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func sameBool(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
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
func (e *Engine) probeCapped(ctx context.Context, filter string, first []pat.Token) (probe, problem string) {
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

// sameIDs reports whether a and b hold the same token ids (ids compare
// without regard to case).
func sameIDs(a, b []pat.Token) bool {
	if len(a) != len(b) {
		return false
	}
	ids := make(map[string]bool, len(a))
	for i := range a {
		ids[strings.ToLower(a[i].ID)] = true
	}
	for i := range b {
		if !ids[strings.ToLower(b[i].ID)] {
			return false
		}
	}
	return true
}
