package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// viewMetrics are what a run could see as its credential: when patjanitor's
// own PAT expires, and whether the last run saw only part of the tenant.
type viewMetrics struct {
	credentialExpiry *prometheus.GaugeVec // no labels: a series that can be absent
	partialView      prometheus.Gauge
	tenantClockSkew  *prometheus.GaugeVec // no labels: absent while unknown
}

func newViewMetrics(reg prometheus.Registerer) *viewMetrics {
	v := &viewMetrics{
		credentialExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "credential_expiry_timestamp_seconds",
			Help: "Unix time patjanitor's own personal access token expires (its expirationDate at the last run). Absent when it never expires or the listing does not show its expiry.",
		}, nil),
		partialView: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "partial_view",
			Help: "1 when the last run's credential saw only part of the tenant (not an ORG_ADMIN, or a listing of only its own tokens): its enforce-mode actions were not carried out. 0 otherwise.",
		}),
		tenantClockSkew: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "tenant_clock_skew_seconds",
			Help: "This host's clock minus the tenant's (the Date header of the last run's listing answers, taken when the answer arrived; of several, the one furthest off): positive when the host is ahead. Beyond tenant.maxClockSkew the run decides nothing. Absent when the last run read no usable Date (its answers had none, or its listings failed).",
		}, nil),
	}
	reg.MustRegister(v.credentialExpiry, v.partialView, v.tenantClockSkew)
	return v
}

// SetCredentialExpiry records when patjanitor's own PAT expires; nil removes
// the series, so that an alert on it cannot fire on a stale or made-up value.
func (m *Metrics) SetCredentialExpiry(at *time.Time) {
	if at == nil {
		m.view.credentialExpiry.Reset()
		return
	}
	m.view.credentialExpiry.WithLabelValues().Set(float64(at.Unix()))
}

// SetPartialView records whether the last run saw only part of the tenant.
func (m *Metrics) SetPartialView(partial bool) {
	if partial {
		m.view.partialView.Set(1)
		return
	}
	m.view.partialView.Set(0)
}

// SetTenantClockSkew records this host's clock minus the tenant's at the
// last run's listings (the one furthest off); nil (an answer without a
// usable Date, or a run whose listings failed) removes the series, so that
// an alert on it cannot fire on the value of an older run.
func (m *Metrics) SetTenantClockSkew(skew *time.Duration) {
	if skew == nil {
		m.view.tenantClockSkew.Reset()
		return
	}
	m.view.tenantClockSkew.WithLabelValues().Set(skew.Seconds())
}
