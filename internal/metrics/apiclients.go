package metrics

// Values of the resource label (tokens, actions_total, guardrail_trips_total):
// the two kinds of credential patjanitor governs.
const (
	ResourcePATs       = "personalAccessTokens"
	ResourceAPIClients = "apiClients"
)

// ClientGuards are the guardrails that apply to API clients (API clients have
// no owner, so maxActionsPerOwner does not).
func ClientGuards() []string { return []string{"maxActionsPerRun", "maxActionsPercent"} }

// SetAPIClients records the API client population seen by the last run
// (tokens{resource="apiClients"}).
func (m *Metrics) SetAPIClients(n int) {
	m.tokens.WithLabelValues(ResourceAPIClients).Set(float64(n))
}

// AddClientAction counts one API client action outcome
// (actions_total{resource="apiClients"}).
func (m *Metrics) AddClientAction(policy, action, outcome string) {
	m.actions.WithLabelValues(policy, action, outcome, ResourceAPIClients).Inc()
}

// AddClientGuardrailTrip counts a tripped API client guardrail.
func (m *Metrics) AddClientGuardrailTrip(guard string) {
	m.guardrailTrips.WithLabelValues(guard, ResourceAPIClients).Inc()
}
