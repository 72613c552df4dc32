package metrics

import "github.com/prometheus/client_golang/prometheus"

// proofActions are the unproven_mutations{action} values: the token actions
// a tenant confirms, then the API client ones. The API client actions are
// values of their own (disable-client, delete-client) rather than a
// resource label: the gauge shipped with the action label alone, and a
// label added now would make every series a new one and have a query of
// {action="delete"} add the client deletes to the token deletes.
func proofActions() []string {
	return []string{"delete", "patch", "expire", ProofDisableClient, ProofDeleteClient}
}

// The unproven_mutations{action} values of API clients.
const (
	ProofDisableClient = "disable-client"
	ProofDeleteClient  = "delete-client"
)

func newUnprovenMutations(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "unproven_mutations",
		Help: "Token and API client changes the tenant confirmed (204 to a DELETE, 200 to a PATCH or bulk update) that a complete listing taken at least 30 minutes later showed not in effect (the token or client still listed, or without the change), and that no listing has proven since, by action (delete, patch, expire of tokens; disable-client, delete-client of API clients). Not 0: the tenant or a proxy in front of it answers success without doing the change.",
	}, []string{"action"})
	reg.MustRegister(g)
	for _, a := range proofActions() {
		g.WithLabelValues(a) // 0 from the first scrape: an alert sees the step
	}
	return g
}

// SetUnprovenMutations records, by action, the confirmed changes found not
// in effect (janitor.ProofMetrics). An action not in perAction is 0.
func (m *Metrics) SetUnprovenMutations(perAction map[string]int) {
	for _, a := range []string{"delete", "patch", "expire"} {
		m.unproven.WithLabelValues(a).Set(float64(perAction[a]))
	}
}

// SetUnprovenClientMutations records the API client changes found not in
// effect (janitor.ClientProofMetrics), by client action (disable, delete),
// as the disable-client and delete-client values; the token values are
// left as they are (the two are judged on different listings).
func (m *Metrics) SetUnprovenClientMutations(perAction map[string]int) {
	m.unproven.WithLabelValues(ProofDisableClient).Set(float64(perAction["disable"]))
	m.unproven.WithLabelValues(ProofDeleteClient).Set(float64(perAction["delete"]))
}
