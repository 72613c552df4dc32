// Package deploy holds no code. It exists so that the tests beside the
// deployment files run with `go test ./...`: they build every kustomization
// with the kustomize library and check the hardening of every object, load the
// policies inside the generated ConfigMap, check and unit-test the alert rules
// with promtool, compare every metric the dashboard and the alerts use with
// what internal/metrics registers, check the systemd unit (with
// systemd-analyze where it can run), and run the Dockerfile's `go build` line.
//
// Two files here are copies that kustomize needs inside its root:
// kubernetes/base/policies.yaml (of /policies.yaml) and the groups of
// kubernetes/base/prometheusrule.yaml (of prometheus/alerts.yaml). A test
// fails when a copy drifts; `PATJANITOR_UPDATE_DEPLOY=1 go test ./deploy`
// rewrites both from their sources.
package deploy
