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
// held was written before it. The zero value is empty.
type QuarantinedKeys struct {
	keys  map[string]map[string]bool
	every map[string]bool
}

// Add records a quarantined record's key; it reports whether the journal
// can rebuild a record of that bucket.
func (q *QuarantinedKeys) Add(bucket string, key []byte) bool {
	if !Rebuildable(bucket) {
		return false
	}
	if q.keys == nil {
		q.keys = map[string]map[string]bool{}
	}
	if q.keys[bucket] == nil {
		q.keys[bucket] = map[string]bool{}
	}
	q.keys[bucket][string(key)] = true
	return true
}

// AddEvery has Wants pick the journal's records of every key of bucket
// (the journal's anchor moved aside: where the store's knowledge of the
// journal ends is not known). It reports whether the journal can rebuild
// a record of that bucket.
func (q *QuarantinedKeys) AddEvery(bucket string) bool {
	if !Rebuildable(bucket) {
		return false
	}
	if q.every == nil {
		q.every = map[string]bool{}
	}
	q.every[bucket] = true
	return true
}

// Rebuildable reports whether the journal can rebuild a record of bucket:
// an executed plan, a confirmed change, a snooze.
func Rebuildable(bucket string) bool {
	switch bucket {
	case state.BucketExecuted, state.BucketConfirmed, state.BucketConfirmedClients, state.BucketSnoozes:
		return true
	}
	return false
}

// Wants reports whether r speaks of a quarantined record: the run-start of
// a saved plan, an intent or outcome of a token or API client, a snooze.
func (q *QuarantinedKeys) Wants(r audit.Record) bool {
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

func (q *QuarantinedKeys) has(bucket, id string) bool {
	if id == "" {
		return false
	}
	if q.every[bucket] {
		return true
	}
	if len(q.keys[bucket]) == 0 {
		return false
	}
	key, ok := state.RecordKey(bucket, id)
	return ok && q.keys[bucket][key]
}
