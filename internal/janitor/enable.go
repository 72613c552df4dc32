package janitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// EnableTenant is what re-enabling an API client needs from the tenant;
// *api.Client implements it.
type EnableTenant interface {
	GetOAuthClient(ctx context.Context, id string) (apiclient.Client, error)
	SetOAuthClientEnabled(ctx context.Context, id string, enabled bool) (apiclient.Client, error)
}

// EnableState is the disabled-client record store; *state.Store implements it.
type EnableState interface {
	DisabledClient(ctx context.Context, id string) (state.Disabled, bool, error)
	DeleteDisabled(ctx context.Context, id string) (bool, error)
}

// EnableRequest asks to re-enable one API client patjanitor disabled.
type EnableRequest struct {
	ClientID string
	// Reason is required: it goes into the journal with the intent.
	Reason string
	// By is who asked (journaled with the reason).
	By string
	// Now is the time of the request; it names the journal records' run.
	Now time.Time
}

// EnableClient re-enables an API client that patjanitor disabled (`patjanitor
// enable`): it journals the intent (the client as fetched now and PATCH
// /enabled true, with the reason), sends the request, journals the outcome
// and clears the disabled record, so that a delete policy starts over (it
// must disable the client again and wait disabledFor once more). A client
// patjanitor has no record of is refused: it was not patjanitor's doing.
func EnableClient(ctx context.Context, t EnableTenant, j Journal, st EnableState, req EnableRequest) (apiclient.Client, error) {
	reason := strings.TrimSpace(req.Reason)
	switch {
	case req.ClientID == "":
		return apiclient.Client{}, errors.New("enable: no API client id")
	case reason == "":
		return apiclient.Client{}, errors.New("enable: a reason is required (it is journaled)")
	case j == nil:
		return apiclient.Client{}, errors.New("enable: no journal: the change is made only with a journal record")
	}
	if err := CheckReason("enable", reason, req.By); err != nil {
		return apiclient.Client{}, err
	}
	rec, ok, err := st.DisabledClient(ctx, req.ClientID)
	if err != nil {
		return apiclient.Client{}, fmt.Errorf("enable: %w", err)
	}
	if !ok {
		return apiclient.Client{}, fmt.Errorf("enable: patjanitor has no record of disabling API client %s; if someone else disabled it, re-enable it in the Identity Security Cloud UI or API", req.ClientID)
	}
	c, err := t.GetOAuthClient(ctx, req.ClientID)
	if err != nil {
		return apiclient.Client{}, fmt.Errorf("enable: get API client %s: %w", req.ClientID, err)
	}
	note := ReasonNote(reason, req.By) + fmt.Sprintf("; disabled by policy %s at %s", rec.Policy, rec.At.UTC().Format("2006-01-02T15:04:05Z"))
	runID := NewRunID(req.Now)
	r := ClientRequest(policy.Action("enable"), c.ID)
	jctx := context.WithoutCancel(ctx)
	if _, err := j.Append(jctx, audit.Record{
		Kind: audit.KindIntent, RunID: runID, Resource: apiclient.Resource, TokenID: c.ID,
		Client: &c, Request: &r, Note: note,
	}); err != nil {
		return apiclient.Client{}, fmt.Errorf("enable: journal: %w (nothing was sent)", err)
	}
	got, err := t.SetOAuthClientEnabled(jctx, c.ID, true)
	out := audit.Outcome{Status: string(OutcomeApplied), Code: 200}
	if err != nil {
		out = audit.Outcome{Status: string(OutcomeFailed), Error: err.Error()}
		var aerr *api.Error
		if errors.As(err, &aerr) {
			out.Code = aerr.StatusCode
		}
	}
	if _, jerr := j.Append(jctx, audit.Record{
		Kind: audit.KindOutcome, RunID: runID, Resource: apiclient.Resource, TokenID: c.ID, Outcome: &out,
	}); jerr != nil {
		err = errors.Join(err, fmt.Errorf("journal the outcome: %w", jerr))
	}
	if out.Status != string(OutcomeApplied) {
		return apiclient.Client{}, fmt.Errorf("enable API client %s: %w", c.ID, err)
	}
	if _, serr := st.DeleteDisabled(jctx, c.ID); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return got, fmt.Errorf("enable API client %s: enabled, but: %w", c.ID, err)
	}
	return got, nil
}
