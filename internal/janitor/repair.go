package janitor

import (
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/state"
)

// QuarantinedKeys are the records `patjanitor state repair` moved aside
// that the journal can rebuild (executed plans, confirmed changes,
// snoozes), by bucket, then key. Wants picks the journal records that
// speak of them, for a CatchUp fed the whole journal: the catch-up of an
// open hands it only the records after the anchor, and a record the store
// held was written before it.
type QuarantinedKeys map[string]map[string]bool

// Add records a quarantined record's key; it reports whether the journal
// can rebuild a record of that bucket.
func (q QuarantinedKeys) Add(bucket string, key []byte) bool {
	switch bucket {
	case state.BucketExecuted, state.BucketConfirmed, state.BucketConfirmedClients, state.BucketSnoozes:
	default:
		return false
	}
	if q[bucket] == nil {
		q[bucket] = map[string]bool{}
	}
	q[bucket][string(key)] = true
	return true
}

// Wants reports whether r speaks of a quarantined record: the run-start of
// a saved plan, an intent or outcome of a token or API client, a snooze.
func (q QuarantinedKeys) Wants(r audit.Record) bool {
	switch {
	case r.Kind == audit.KindRunStart && r.Plan != nil:
		return q.has(state.BucketExecuted, r.Plan.PlanHash)
	case (r.Kind == audit.KindIntent || r.Kind == audit.KindOutcome) && r.Resource == "":
		return q.has(state.BucketConfirmed, r.TokenID)
	case (r.Kind == audit.KindIntent || r.Kind == audit.KindOutcome) && r.Resource == apiclient.Resource:
		return q.has(state.BucketConfirmedClients, r.TokenID)
	case r.Kind == audit.KindSnooze:
		return q.has(state.BucketSnoozes, r.TokenID)
	}
	return false
}

func (q QuarantinedKeys) has(bucket, id string) bool {
	if len(q[bucket]) == 0 || id == "" {
		return false
	}
	key, ok := state.RecordKey(bucket, id)
	return ok && q[bucket][key]
}
