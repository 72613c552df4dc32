package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/patjanitor/patjanitor/internal/metrics"
)

// The credential expiry is a series only while an expiry is known: an alert
// on it must not fire on a value left over from an earlier credential that
// did expire, after the new one never expires.
func TestCredentialExpirySeriesAbsentWhenUnknown(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	const name = "patjanitor_credential_expiry_timestamp_seconds"
	if n := testutil.CollectAndCount(reg, name); n != 0 {
		t.Fatalf("%s has %d series before any run, want none", name, n)
	}
	at := time.Date(2027, 5, 26, 3, 0, 0, 0, time.UTC)
	m.SetCredentialExpiry(&at)
	want := `# HELP patjanitor_credential_expiry_timestamp_seconds Unix time patjanitor's own personal access token expires (its expirationDate at the last run). Absent when it never expires or the listing does not show its expiry.
# TYPE patjanitor_credential_expiry_timestamp_seconds gauge
patjanitor_credential_expiry_timestamp_seconds 1.8113004e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), name); err != nil {
		t.Fatal(err)
	}
	m.SetCredentialExpiry(nil)
	if n := testutil.CollectAndCount(reg, name); n != 0 {
		t.Fatalf("%s has %d series after the expiry became unknown, want none", name, n)
	}
	m.SetPartialView(true)
	want = `# HELP patjanitor_partial_view 1 when the last run's credential saw only part of the tenant (not an ORG_ADMIN, or a listing of only its own tokens): its enforce-mode actions were not carried out. 0 otherwise.
# TYPE patjanitor_partial_view gauge
patjanitor_partial_view 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "patjanitor_partial_view"); err != nil {
		t.Fatal(err)
	}
}
