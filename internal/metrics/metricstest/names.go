// Package metricstest holds what the tests of internal/metrics and deploy/
// check patjanitor's exported metrics against: the metric families
// internal/metrics registers. internal/metrics' tests keep the list equal to
// what a registry actually exports.
package metricstest

// Names returns the full name of every metric family metrics.New registers on
// behalf of patjanitor, sorted. The process_* and go_* families of the standard
// collectors are not included. The deploy tests compare the metric names used
// by the dashboard and the alert rules against this list.
func Names() []string {
	return []string{
		"patjanitor_actions_total",
		"patjanitor_api_request_duration_seconds",
		"patjanitor_api_requests_total",
		"patjanitor_api_retries_total",
		"patjanitor_api_wait_seconds",
		"patjanitor_approved_plans_total",
		"patjanitor_build_info",
		"patjanitor_config_last_reload_success_timestamp_seconds",
		"patjanitor_config_last_reload_successful",
		"patjanitor_credential_expiry_timestamp_seconds",
		"patjanitor_guardrail_trips_total",
		"patjanitor_last_run_timestamp_seconds",
		"patjanitor_last_successful_run_timestamp_seconds",
		"patjanitor_notifications_total",
		"patjanitor_owner_lookups_total",
		"patjanitor_partial_view",
		"patjanitor_pending_actions",
		"patjanitor_plans_awaiting_approval",
		"patjanitor_run_duration_seconds",
		"patjanitor_run_in_progress",
		"patjanitor_runs_skipped_total",
		"patjanitor_runs_total",
		"patjanitor_tenant_clock_skew_seconds",
		"patjanitor_tokens",
		"patjanitor_tokens_matched",
		"patjanitor_unproven_mutations",
	}
}

// Histograms returns the names in Names that are histograms: in PromQL they
// appear as their _bucket, _sum and _count series.
func Histograms() []string {
	return []string{"patjanitor_api_request_duration_seconds", "patjanitor_run_duration_seconds"}
}
