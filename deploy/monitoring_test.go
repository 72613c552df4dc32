package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/patjanitor/patjanitor/internal/metrics/metricstest"
)

const (
	alertsPath     = "prometheus/alerts.yaml"
	alertTestsPath = "prometheus/alerts_test.yaml"
	ruleCopyPath   = "kubernetes/base/prometheusrule.yaml"
	dashboardPath  = "grafana/patjanitor.json"
	operationsDoc  = "../docs/operations.md"
)

// externalMetrics are the metrics the alerts and the dashboard may use that
// patjanitor does not define: Prometheus' own up, and the process collector
// that internal/metrics registers.
var externalMetrics = []string{"up", "process_start_time_seconds"}

// The alerts docs/operations.md documents (section Alerts); each needs a rule.
var requiredAlerts = []string{
	"PatjanitorDown", "PatjanitorNoSuccessfulRun", "PatjanitorRunsFailing",
	"PatjanitorGuardrailTripped", "PatjanitorAPIErrors", "PatjanitorRateLimited",
	"PatjanitorNotificationsFailing", "PatjanitorConfigReloadFailed",
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleGroups struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	data, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var g ruleGroups
	if err := dec.Decode(&g); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	var rules []rule
	for _, grp := range g.Groups {
		rules = append(rules, grp.Rules...)
	}
	return rules
}

// The metric-name check. Identifiers directly followed by a selector brace,
// and every patjanitor_* word, are metric names; histogram series suffixes
// map back to their family.
var (
	selectorRE = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{`)
	ourNameRE  = regexp.MustCompile(`\bpatjanitor_[a-z0-9_]+`)
)

func metricNames(expr string) []string {
	var out []string
	for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1])
	}
	out = append(out, ourNameRE.FindAllString(expr, -1)...)
	slices.Sort(out)
	return slices.Compact(out)
}

// family maps a series name to the family internal/metrics registers: a
// histogram's _bucket, _sum and _count series belong to the histogram.
func family(name string, registered []string) string {
	if slices.Contains(registered, name) {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(metricstest.Histograms(), base) {
			return base
		}
	}
	return name
}

func checkExprMetrics(t *testing.T, where, expr string, used map[string]bool) {
	t.Helper()
	registered := metricstest.Names()
	names := metricNames(expr)
	if len(names) == 0 {
		t.Errorf("%s: no metric found in %q", where, expr)
	}
	for _, n := range names {
		f := family(n, registered)
		switch {
		case slices.Contains(registered, f):
			used[f] = true
		case slices.Contains(externalMetrics, f):
		default:
			t.Errorf("%s uses %s, which patjanitor does not export (internal/metrics/metricstest.Names)", where, n)
		}
	}
}

func TestAlertRules(t *testing.T) {
	rules := loadRules(t)
	anchors := docAnchors(t)
	var names []string
	used := map[string]bool{}
	for _, r := range rules {
		if r.Alert == "" {
			t.Errorf("rule %q is not an alert", r.Record)
			continue
		}
		names = append(names, r.Alert)
		checkExprMetrics(t, "alert "+r.Alert, r.Expr, used)
		if !strings.Contains(r.Expr, `job="patjanitor"`) {
			t.Errorf("alert %s does not select job=\"patjanitor\"", r.Alert)
		}
		if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
			t.Errorf("alert %s: severity %q", r.Alert, sev)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if r.Annotations[a] == "" {
				t.Errorf("alert %s has no %s", r.Alert, a)
			}
		}
		u := r.Annotations["runbook_url"]
		want := "https://github.com/patjanitor/patjanitor/blob/main/docs/operations.md#" + strings.ToLower(r.Alert)
		if u != want {
			t.Errorf("alert %s: runbook_url %q, want %q", r.Alert, u, want)
		}
		if _, anchor, _ := strings.Cut(u, "#"); !anchors[anchor] {
			t.Errorf("alert %s: docs/operations.md has no section #%s", r.Alert, anchor)
		}
		if r.For != "" {
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
			}
		}
	}
	for _, a := range requiredAlerts {
		if !slices.Contains(names, a) {
			t.Errorf("alert %s missing", a)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
		t.Errorf("duplicate alert names in %v", names)
	}
}

// The PrometheusRule in the kustomize base carries the same groups as
// alerts.yaml.
func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	src, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(src, &want); err != nil {
		t.Fatal(err)
	}
	cp, err := os.ReadFile(ruleCopyPath)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		APIVersion string         `yaml:"apiVersion"`
		Kind       string         `yaml:"kind"`
		Spec       map[string]any `yaml:"spec"`
	}
	if err := yaml.Unmarshal(cp, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Kind == "PrometheusRule" && reflect.DeepEqual(pr.Spec, want) {
		return
	}
	if os.Getenv(updateEnv) != "" {
		if err := os.WriteFile(ruleCopyPath, prometheusRuleFrom(src), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s from %s", ruleCopyPath, alertsPath)
		return
	}
	t.Errorf("%s does not carry the groups of %s; regenerate it: %s=1 go test ./deploy", ruleCopyPath, alertsPath, updateEnv)
}

// prometheusRuleFrom wraps the rule file's text from "groups:" on as a
// PrometheusRule's spec, keeping its comments and block scalars.
func prometheusRuleFrom(src []byte) []byte {
	_, groups, _ := bytes.Cut(src, []byte("\ngroups:"))
	var b bytes.Buffer
	b.WriteString(`# Generated from deploy/prometheus/alerts.yaml: edit that file, then run
# ` + "`" + updateEnv + `=1 go test ./deploy` + "`" + ` to copy its groups here. A test
# fails when the two differ.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: patjanitor
  labels:
    app.kubernetes.io/name: patjanitor
spec:
`)
	for _, line := range strings.SplitAfter("groups:"+string(groups), "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.Bytes()
}

func TestPrometheusRuleGeneratorRoundTrips(t *testing.T) {
	src, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	if err := yaml.Unmarshal(src, &want); err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Spec map[string]any `yaml:"spec"`
	}
	if err := yaml.Unmarshal(prometheusRuleFrom(src), &pr); err != nil {
		t.Fatalf("generated PrometheusRule does not parse: %v", err)
	}
	got = pr.Spec
	if !reflect.DeepEqual(got, want) {
		t.Errorf("generated spec differs from %s", alertsPath)
	}
}

// promtool checks the rules and runs their unit tests (alerts_test.yaml).
// CI installs it (.ci/run); elsewhere the test skips when it is missing.
func TestPromtool(t *testing.T) {
	t.Parallel() // runs an external tool for seconds; overlap it with the rest
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (Debian: apt-get install prometheus); .ci/run installs it, so that this test runs there")
	}
	for _, args := range [][]string{
		{"check", "rules", alertsPath},
		{"test", "rules", alertTestsPath},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// The alert unit tests cover every alert, each with a firing case.
func TestAlertUnitTestsCoverEveryAlert(t *testing.T) {
	data, err := os.ReadFile(alertTestsPath)
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(data, &tf); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tf.RuleFiles, []string{filepath.Base(alertsPath)}) {
		t.Errorf("rule_files %v, want [%s]", tf.RuleFiles, filepath.Base(alertsPath))
	}
	fires := map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, r := range loadRules(t) {
		if !fires[r.Alert] {
			t.Errorf("no unit test in %s shows %s firing", alertTestsPath, r.Alert)
		}
	}
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardPath, err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want all set, schemaVersion >= 36", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["job"] != "query" || vars["instance"] != "query" {
		t.Errorf("template variables %v: want datasource, job and instance", vars)
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("duplicate panel id %d", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
	cells:
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap", other, p.Title)
					break cells
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if refs[q.RefID] || q.RefID == "" {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, q.RefID)
			}
			refs[q.RefID] = true
			checkExprMetrics(t, fmt.Sprintf("panel %q", p.Title), q.Expr, used)
			for _, sel := range regexp.MustCompile(`patjanitor_[a-z0-9_]+\{[^}]*\}`).FindAllString(q.Expr, -1) {
				if !strings.Contains(sel, `job="$job"`) || !strings.Contains(sel, `instance=~"$instance"`) {
					t.Errorf("panel %q: selector %s ignores the job/instance variables", p.Title, sel)
				}
			}
		}
	}
	// The dashboard shows every metric patjanitor exports.
	for _, n := range metricstest.Names() {
		if !used[n] {
			t.Errorf("no dashboard panel shows %s", n)
		}
	}
}

func TestMetricNameExtraction(t *testing.T) {
	got := metricNames(`histogram_quantile(0.95, sum by (le) (rate(patjanitor_api_request_duration_seconds_bucket{job="$job"}[5m]))) / up{job="x"} or patjanitor_tokens`)
	want := []string{"patjanitor_api_request_duration_seconds_bucket", "patjanitor_tokens", "up"}
	if !slices.Equal(got, want) {
		t.Fatalf("metricNames = %v, want %v", got, want)
	}
	if f := family("patjanitor_api_request_duration_seconds_bucket", metricstest.Names()); f != "patjanitor_api_request_duration_seconds" {
		t.Errorf("family = %s", f)
	}
	if f := family("patjanitor_tokens_count", metricstest.Names()); f != "patjanitor_tokens_count" {
		t.Errorf("a gauge has no _count series, got family %s", f)
	}
}

// docAnchors returns the GitHub anchors of docs/operations.md's headings.
func docAnchors(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		anchors[slug(strings.TrimLeft(line, "# "))] = true
	}
	return anchors
}

// slug is GitHub's heading anchor: lower case, punctuation other than - and _
// dropped, spaces to dashes.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// docs/operations.md lists every metric and every alert.
func TestOperationsDocCoversMetricsAndAlerts(t *testing.T) {
	data, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	// Listed in the Metrics section's table, a row each: a mention
	// elsewhere (approved_plans_total in "Two-person approval") is not
	// where an operator looks up a metric's type and labels.
	_, metricsSection, _ := strings.Cut(doc, "\n## Metrics\n")
	metricsSection, _, _ = strings.Cut(metricsSection, "\n## ")
	for _, n := range metricstest.Names() {
		if !strings.Contains(metricsSection, "\n| `"+n+"` |") {
			t.Errorf("docs/operations.md's Metrics table has no row for %s", n)
		}
	}
	for _, a := range requiredAlerts {
		if !strings.Contains(doc, "### "+a+"\n") {
			t.Errorf("docs/operations.md has no runbook section \"### %s\"", a)
		}
	}
}
