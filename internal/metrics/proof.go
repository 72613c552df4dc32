package metrics

import "github.com/prometheus/client_golang/prometheus"

// ProofActions are the unproven_mutations{action} values: the token actions
// a tenant confirms.
func ProofActions() []string { return []string{"delete", "patch", "expire"} }

func newUnprovenMutations(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "unproven_mutations",
		Help: "Token changes the tenant confirmed (204 to a DELETE, 200 to a PATCH or bulk update) that a complete listing taken at least 30 minutes later showed not in effect (the token still listed, or without the change), and that no listing has proven since, by action. Not 0: the tenant or a proxy in front of it answers success without doing the change.",
	}, []string{"action"})
	reg.MustRegister(g)
	for _, a := range ProofActions() {
		g.WithLabelValues(a) // 0 from the first scrape: an alert sees the step
	}
	return g
}

// SetUnprovenMutations records, by action, the confirmed changes found not
// in effect (janitor.ProofMetrics). An action not in perAction is 0.
func (m *Metrics) SetUnprovenMutations(perAction map[string]int) {
	for _, a := range ProofActions() {
		m.unproven.WithLabelValues(a).Set(float64(perAction[a]))
	}
}
