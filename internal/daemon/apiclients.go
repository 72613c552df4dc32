package daemon

import "go.uber.org/zap"

// ClientCounts are the API client part of a run (resource: apiClients), for
// the "run finished" log line: the same counts as the token ones, kept
// apart because the two resources are listed, limited and blocked apart.
type ClientCounts struct {
	// Population is the number of API clients listed.
	Population int
	// Matched is the number of API client items; WouldApply of them change
	// nothing (report), Grace are marked clients waiting for their deadline.
	Matched, WouldApply, Grace int
	// The enforce-mode API client items by outcome.
	Applied, Gone, Failed, Blocked, NotStarted int
}

// logFields are the counts as clients_* fields; none for a run without
// apiClients policies (nil), so that a token-only deployment's log line is
// what it was.
func (c *ClientCounts) logFields() []zap.Field {
	if c == nil {
		return nil
	}
	return []zap.Field{
		zap.Int("clients_population", c.Population), zap.Int("clients_matched", c.Matched),
		zap.Int("clients_would_apply", c.WouldApply), zap.Int("clients_grace", c.Grace),
		zap.Int("clients_applied", c.Applied), zap.Int("clients_gone", c.Gone), zap.Int("clients_failed", c.Failed),
		zap.Int("clients_blocked", c.Blocked), zap.Int("clients_not_started", c.NotStarted),
	}
}
