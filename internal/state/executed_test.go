package state

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A plan is recorded once: the second record of the same hash (in another
// case) returns the first and writes nothing; the record survives closing
// the store; records of plans generated before the horizon are forgotten
// when the next plan is recorded, younger ones are kept.
func TestExecutedPlansRecordOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s := openTest(t, path, newClock())
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	hashA := "sha256:" + strings.Repeat("ab", 32)
	if _, found, err := s.ExecutedPlan(ctx, hashA); err != nil || found {
		t.Fatalf("a new store: %v %v", found, err)
	}
	first := ExecutedPlan{PlanHash: hashA, RunID: "run-1", At: at, GeneratedAt: at.Add(-time.Hour), File: "plan.json"}
	if _, already, _, err := s.RecordExecution(ctx, first, at.Add(-30*24*time.Hour)); err != nil || already {
		t.Fatalf("first record: %v %v", already, err)
	}
	second := first
	second.PlanHash, second.RunID = strings.ToUpper(hashA), "run-2"
	prev, already, _, err := s.RecordExecution(ctx, second, at.Add(-30*24*time.Hour))
	if err != nil || !already || prev.RunID != "run-1" || !prev.At.Equal(at) {
		t.Fatalf("second record: %+v %v %v", prev, already, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, newClock())
	defer func() { _ = s.Close() }()
	got, found, err := s.ExecutedPlan(ctx, hashA)
	if err != nil || !found || got.RunID != "run-1" || got.File != "plan.json" {
		t.Fatalf("after reopening: %+v %v %v", got, found, err)
	}

	// 31 days later: plan A (generated before the 30-day horizon) goes
	// when plan B is recorded; a plan generated within it stays.
	later := at.Add(31 * 24 * time.Hour)
	hashB, hashC := "sha256:"+strings.Repeat("cd", 32), "sha256:"+strings.Repeat("ef", 32)
	if _, _, _, err := s.RecordExecution(ctx, ExecutedPlan{PlanHash: hashC, RunID: "run-3", At: later.Add(-time.Hour), GeneratedAt: later.Add(-2 * time.Hour)}, at.Add(-30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, already, forgot, err := s.RecordExecution(ctx, ExecutedPlan{PlanHash: hashB, RunID: "run-4", At: later, GeneratedAt: later.Add(-time.Minute)}, later.Add(-30*24*time.Hour))
	if err != nil || already || forgot != 1 {
		t.Fatalf("record B: already %v, forgot %d, %v", already, forgot, err)
	}
	all, err := s.ExecutedPlans(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("kept %+v, %v; want B and C", all, err)
	}
	if _, found, _ := s.ExecutedPlan(ctx, hashA); found {
		t.Fatal("plan A, older than the horizon, was kept")
	}
}

// Bad input names what is wrong and writes nothing.
func TestExecutedPlansBadInput(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer func() { _ = s.Close() }()
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rec  ExecutedPlan
		want string
	}{
		{ExecutedPlan{RunID: "r", At: at, GeneratedAt: at}, "empty planHash"},
		{ExecutedPlan{PlanHash: strings.Repeat("x", 200), RunID: "r", At: at, GeneratedAt: at}, "planHash of 200 bytes"},
		{ExecutedPlan{PlanHash: "sha256:00", At: at, GeneratedAt: at}, "no run id or time"},
	} {
		if _, _, _, err := s.RecordExecution(ctx, tc.rec, at); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.rec, err, tc.want)
		}
	}
	if all, err := s.ExecutedPlans(ctx); err != nil || len(all) != 0 {
		t.Fatalf("bad input wrote %+v, %v", all, err)
	}
}

// ForgetExecution takes back only the record the named run wrote: another
// run's record of the plan stays (it executed it).
func TestForgetExecutionOnlyOfItsRun(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer func() { _ = s.Close() }()
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	hash := "sha256:" + strings.Repeat("ab", 32)
	if forgot, err := s.ForgetExecution(ctx, hash, "run-1"); err != nil || forgot {
		t.Fatalf("nothing recorded: %v %v", forgot, err)
	}
	if _, _, _, err := s.RecordExecution(ctx, ExecutedPlan{PlanHash: hash, RunID: "run-1", At: at, GeneratedAt: at}, at.Add(-30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if forgot, err := s.ForgetExecution(ctx, strings.ToUpper(hash), "run-2"); err != nil || forgot {
		t.Fatalf("another run's record: %v %v", forgot, err)
	}
	if _, found, _ := s.ExecutedPlan(ctx, hash); !found {
		t.Fatal("another run took back run-1's record")
	}
	if forgot, err := s.ForgetExecution(ctx, hash, "run-1"); err != nil || !forgot {
		t.Fatalf("its own record: %v %v", forgot, err)
	}
	if _, found, _ := s.ExecutedPlan(ctx, hash); found {
		t.Fatal("the record stayed")
	}
}
