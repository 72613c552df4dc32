// Package notify tells people what patjanitor found and did: a run summary to
// the security channel, a digest to each token owner before an action, a notice
// after it, and an alert when a run fails.
//
// The shape follows Prometheus Alertmanager's notifiers: one small Notifier
// interface that returns (retry, err) so the retry policy lives outside the
// channel, one implementation per channel (slack.go, webhook.go, email.go), one
// factory (Build) that turns configuration into notifiers and reports every
// configuration error at once, and one place that classifies HTTP outcomes.
//
// Delivery goes through a Dispatcher that writes every message to the outbox in
// the state store before trying it, retries with backoff bounded by the run's
// context, and leaves what it could not deliver in the outbox for the next run
// or the next process. Delivering an owner digest starts the grace clock of the
// marks it lists, in the same transaction (see package state).
//
// Message content comes from embedded templates (text/template for text, Slack
// mrkdwn and subjects; html/template for HTML), each replaceable by a file.
// Subject and plain-text templates get a copy of the message with every string
// escaped for display (package untrusted), so no template can forget it.
// Every URL, password and HMAC key is a secret.Secret read from a file or the
// environment; errors from net/http, which quote the request URL, are
// rewritten, and every notifier scrubs the secret values it knows from its
// errors and payloads, and from the message's strings before the templates
// escape them.
//
// This package knows nothing of SailPoint: the engine maps its plan into the
// plain data types here (Summary, Digest, Notice, Failure).
package notify
