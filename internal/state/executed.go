package state

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketExecuted holds the saved plans an apply executed, by planHash. Like
// disabled-clients it is created by its first write: a store without it has
// executed no saved plan, so no schema step is needed.
const bucketExecuted = "executed-plans"

// maxPlanHash bounds the key: a planHash is "sha256:" and 64 hex digits;
// anything much longer is not one (and bbolt keys are bounded).
const maxPlanHash = 128

// ExecutedPlan records that a run executed a saved plan: an approval is for
// one execution, so a plan whose hash is recorded here is refused.
type ExecutedPlan struct {
	PlanHash string `json:"planHash"`
	// RunID is the run that executed it, At when it began (the record is
	// written before the run's first mutation).
	RunID string    `json:"runId"`
	At    time.Time `json:"at"`
	// GeneratedAt is the plan's own time: once it is older than any plan age
	// apply accepts, the record can go (the plan is refused by its age).
	GeneratedAt time.Time `json:"generatedAt"`
	// File is the plan file the run read (for the refusal's message).
	File string `json:"file,omitempty"`
}

// executedKey is the key of a plan's record: hashes compared without regard
// to case, as the hex digits may be written either way.
func executedKey(planHash string) []byte { return []byte(strings.ToLower(planHash)) }

func checkPlanHash(planHash string) error {
	switch {
	case planHash == "":
		return fmt.Errorf("empty planHash")
	case len(planHash) > maxPlanHash:
		return fmt.Errorf("planHash of %d bytes (at most %d)", len(planHash), maxPlanHash)
	}
	return nil
}

// ExecutedPlan returns the record of the plan with this hash, if a run
// executed it. A record that does not decode is an error, not "never
// executed": the caller must not take a damaged store for a clean one.
func (s *Store) ExecutedPlan(ctx context.Context, planHash string) (ExecutedPlan, bool, error) {
	if err := checkPlanHash(planHash); err != nil {
		return ExecutedPlan{}, false, fmt.Errorf("look up executed plan: %w", err)
	}
	var rec ExecutedPlan
	found := false
	err := s.view(ctx, func(tx *bolt.Tx) error {
		key := executedKey(planHash)
		var err error
		if found, err = getJSON(tx.Bucket([]byte(bucketExecuted)), bucketExecuted, string(key), &rec); err != nil || found {
			return err
		}
		// A record a repair quarantined is still an execution: the
		// repair rebuilds it from the journal when the journal holds the
		// run-start, and this refuses the plan when it does not.
		if q, ok := quarantinedExecution(tx, key); ok {
			rec = ExecutedPlan{PlanHash: planHash, RunID: fmt.Sprintf("(unknown: its record was quarantined by a state repair at %s)", q.At.UTC().Format(time.RFC3339))}
			found = true
		}
		return nil
	})
	if err != nil {
		return ExecutedPlan{}, false, fmt.Errorf("look up executed plan %s: %w", planHash, err)
	}
	return rec, found, nil
}

// RecordExecution records rec, unless a record of the same plan exists:
// then it returns that record and already true, and writes nothing (two
// processes cannot both record one plan: bbolt serialises the writers and
// the check is in the same transaction). In the same transaction it drops
// the records of plans generated before forgetBefore, which keeps the
// bucket bounded by the plans of the longest accepted plan age; it
// returns how many it dropped.
func (s *Store) RecordExecution(ctx context.Context, rec ExecutedPlan, forgetBefore time.Time) (prev ExecutedPlan, already bool, forgot int, err error) {
	switch err := checkPlanHash(rec.PlanHash); {
	case err != nil:
		return ExecutedPlan{}, false, 0, fmt.Errorf("record executed plan: %w", err)
	case rec.RunID == "" || rec.At.IsZero() || rec.GeneratedAt.IsZero():
		return ExecutedPlan{}, false, 0, fmt.Errorf("record executed plan %s: no run id or time", rec.PlanHash)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return ExecutedPlan{}, false, 0, fmt.Errorf("record executed plan %s: %w", rec.PlanHash, err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketExecuted))
		if err != nil {
			return err
		}
		key := executedKey(rec.PlanHash)
		if v := b.Get(key); v != nil {
			already = true
			if err := json.Unmarshal(v, &prev); err != nil {
				// Still executed: a damaged record must not let the
				// plan run again. Say what is known.
				prev = ExecutedPlan{PlanHash: rec.PlanHash, RunID: "(unreadable record)"}
			}
			return nil
		}
		var old [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e ExecutedPlan
			// An undecodable record is kept: it may be a plan still young
			// enough to be put forward again.
			if json.Unmarshal(v, &e) == nil && e.GeneratedAt.Before(forgetBefore) {
				old = append(old, append([]byte(nil), k...))
			}
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		forgot = len(old)
		return b.Put(key, raw)
	})
	if err != nil {
		return ExecutedPlan{}, false, 0, fmt.Errorf("record executed plan %s: %w", rec.PlanHash, err)
	}
	if already {
		forgot = 0
	}
	return prev, already, forgot, nil
}

// ForgetExecution drops the record of planHash if run runID wrote it, and
// reports whether it did. It is for a run that recorded the plan and then
// sent nothing (its journal refused the run-start, it was stopped before its
// first mutation): the plan was not executed. Another run's record stays.
func (s *Store) ForgetExecution(ctx context.Context, planHash, runID string) (bool, error) {
	if err := checkPlanHash(planHash); err != nil {
		return false, fmt.Errorf("forget executed plan: %w", err)
	}
	forgot := false
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketExecuted))
		if b == nil {
			return nil
		}
		key := executedKey(planHash)
		var rec ExecutedPlan
		if v := b.Get(key); v == nil || json.Unmarshal(v, &rec) != nil || rec.RunID != runID {
			return nil
		}
		forgot = true
		return b.Delete(key)
	})
	if err != nil {
		return false, fmt.Errorf("forget executed plan %s: %w", planHash, err)
	}
	return forgot, nil
}
