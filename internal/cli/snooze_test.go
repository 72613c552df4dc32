package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/state"
)

func TestSnoozeCommands(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runMain(t, "--state-dir", dir, "snooze", "tok-1", "--for", "30d")
	if code == 0 || !strings.Contains(errs, "--reason is required") {
		t.Fatalf("snooze without a reason: code %d, stderr %q", code, errs)
	}
	code, _, errs = runMain(t, "--state-dir", dir, "snooze", "tok-1", "--for", "-3d", "--reason", "x")
	if code == 0 || !strings.Contains(errs, "--for") {
		t.Fatalf("snooze with a bad duration: code %d, stderr %q", code, errs)
	}
	code, out, errs := runMain(t, "--state-dir", dir, "snooze", "tok-1", "--offline", "--for", "30d", "--reason", "migrating the CI", "--by", "ops")
	if code != 0 || !strings.HasPrefix(out, "Snoozed tok-1 until ") {
		t.Fatalf("snooze: code %d, out %q, stderr %q", code, out, errs)
	}
	code, out, errs = runMain(t, "--state-dir", dir, "snoozes")
	if code != 0 || !strings.Contains(out, "tok-1") || !strings.Contains(out, "migrating the CI") || !strings.Contains(out, "active") {
		t.Fatalf("snoozes: code %d, out %q, stderr %q", code, out, errs)
	}

	// The journal has the snooze with its end and reason.
	recs := journalRecords(t, filepath.Join(dir, JournalFile))
	if len(recs) != 1 || recs[0].Kind != audit.KindSnooze || recs[0].TokenID != "tok-1" || recs[0].Until == nil ||
		time.Until(*recs[0].Until) < 29*24*time.Hour || recs[0].Note != "migrating the CI (by ops)" {
		t.Fatalf("journal = %+v", recs)
	}

	// An expired snooze is listed only with --all.
	st, err := state.Open(filepath.Join(dir, state.FileName), state.Options{Clock: func() time.Time { return time.Now().Add(31 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	zs, err := st.Snoozes(t.Context(), false)
	_ = st.Close()
	if err != nil || len(zs) != 0 {
		t.Fatalf("active snoozes 31 days later: %v, %v", zs, err)
	}
}

func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	code := Main(t.Context(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// While a serve holds the journal, snooze still works: the snooze is kept,
// flagged, and journaled by the holder of the journal (journalSnoozes, which
// serve calls when a run starts) exactly once.
func TestSnoozeWhileServeHoldsTheJournal(t *testing.T) {
	dir := t.TempDir()
	jpath := filepath.Join(dir, JournalFile)
	held, err := audit.Open(jpath, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	code, out, errs := runMain(t, "--state-dir", dir, "snooze", "tok-9", "--offline", "--for", "7d", "--reason", "vendor migration", "--by", "ops")
	if code != 0 || !strings.Contains(out, "held by a running patjanitor serve") {
		t.Fatalf("snooze with the journal held: code %d, out %q, stderr %q", code, out, errs)
	}
	st, err := state.Open(filepath.Join(dir, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	if z, ok, err := st.ActiveSnooze(t.Context(), "tok-9"); err != nil || !ok || !z.Unjournaled {
		t.Fatalf("snooze %+v (found %v, %v), want it kept and flagged", z, ok, err)
	}
	for range 2 { // the second call finds nothing left to journal
		if _, err := journalSnoozes(t.Context(), st, held); err != nil {
			t.Fatal(err)
		}
	}
	_ = held.Close()
	recs := journalRecords(t, jpath)
	if len(recs) != 1 || recs[0].Kind != audit.KindSnooze || recs[0].TokenID != "tok-9" || recs[0].Note != "vendor migration (by ops)" {
		t.Fatalf("journal = %+v, want the one snooze record", recs)
	}
	if z, _, _ := st.ActiveSnooze(t.Context(), "tok-9"); z.Unjournaled {
		t.Fatal("the snooze is still flagged after it was journaled")
	}
}
