package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/patjanitor/patjanitor/internal/policy"
)

// updateEnv makes the sync tests rewrite the copies instead of failing.
const updateEnv = "PATJANITOR_UPDATE_DEPLOY"

// The kustomizations, relative to this directory.
const (
	baseDir       = "kubernetes/base"
	reportOnlyDir = "kubernetes/overlays/report-only"
	enforceDir    = "kubernetes/overlays/enforce"
	cronJobDir    = "kubernetes/cronjob"
)

// Names and numbers the manifests, the Dockerfile and the docs agree on.
const (
	nonRootUID    = 65532
	metricsPort   = 9874
	metricsPortNm = "http-metrics"
	secretName    = "patjanitor-credentials"
	policiesCM    = "patjanitor-policies"
	stateDir      = "/var/lib/patjanitor"
	// stateSubdir is --state-dir: a directory patjanitor creates 0700 on
	// the volume, whose root fsGroup makes group-writable.
	stateSubdir = stateDir + "/state"
	configPath  = "/etc/patjanitor/policies.yaml"
)

// object is one built Kubernetes object: its raw map (for generic checks) and
// its YAML (for decoding into the typed views below).
type object struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Raw        map[string]any
	YAML       []byte
}

// built holds kustomize's output per directory: the shipped overlays are
// built by several tests each, and building each once saves half a second
// of the package's CPU under the race detector. The tests never change a
// directory after building it (those that edit one edit a fresh copy in a
// temporary directory).
var built = struct {
	sync.Mutex
	yaml map[string][]byte
}{yaml: map[string][]byte{}}

// build runs kustomize (the library kubectl uses) on dir and splits the
// output; each call parses its own objects, so a test may change them.
func build(t *testing.T, dir string) []object {
	t.Helper()
	built.Lock()
	out, ok := built.yaml[dir]
	built.Unlock()
	if !ok {
		k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
		rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		if out, err = rm.AsYaml(); err != nil {
			t.Fatalf("kustomize build %s: render: %v", dir, err)
		}
		built.Lock()
		built.yaml[dir] = out
		built.Unlock()
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var objs []object
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: parse built YAML: %v", dir, err)
		}
		var raw map[string]any
		if err := n.Decode(&raw); err != nil {
			t.Fatalf("%s: decode object: %v", dir, err)
		}
		b, err := yaml.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		o := object{Raw: raw, YAML: b}
		o.APIVersion, _ = raw["apiVersion"].(string)
		o.Kind, _ = raw["kind"].(string)
		if md, ok := raw["metadata"].(map[string]any); ok {
			o.Name, _ = md["name"].(string)
			o.Namespace, _ = md["namespace"].(string)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
			t.Fatalf("%s: object without apiVersion, kind or metadata.name:\n%s", dir, b)
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		t.Fatalf("%s: kustomize built nothing", dir)
	}
	return objs
}

func find(objs []object, kind, name string) (object, bool) {
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return object{}, false
}

func mustFind(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	o, ok := find(objs, kind, name)
	if !ok {
		t.Fatalf("no %s %q in the build", kind, name)
	}
	return o
}

func decodeInto[T any](t *testing.T, o object) T {
	t.Helper()
	var v T
	if err := yaml.Unmarshal(o.YAML, &v); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Name, err)
	}
	return v
}

// Typed views of the fields the checks read (yaml.v3 ignores the rest).
type (
	seccomp struct {
		Type string `yaml:"type"`
	}
	podSecurity struct {
		RunAsNonRoot   *bool    `yaml:"runAsNonRoot"`
		RunAsUser      *int64   `yaml:"runAsUser"`
		RunAsGroup     *int64   `yaml:"runAsGroup"`
		FSGroup        *int64   `yaml:"fsGroup"`
		SeccompProfile *seccomp `yaml:"seccompProfile"`
	}
	containerSecurity struct {
		RunAsNonRoot             *bool    `yaml:"runAsNonRoot"`
		RunAsUser                *int64   `yaml:"runAsUser"`
		Privileged               *bool    `yaml:"privileged"`
		AllowPrivilegeEscalation *bool    `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool    `yaml:"readOnlyRootFilesystem"`
		SeccompProfile           *seccomp `yaml:"seccompProfile"`
		Capabilities             *struct {
			Add  []string `yaml:"add"`
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional *bool  `yaml:"optional"`
			} `yaml:"secretKeyRef"`
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Env     []envVar `yaml:"env"`
		EnvFrom []any    `yaml:"envFrom"`
		Ports   []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext *containerSecurity `yaml:"securityContext"`
		VolumeMounts    []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
			SubPath   string `yaml:"subPath"`
		} `yaml:"volumeMounts"`
	}
	volume struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
		EmptyDir *struct{} `yaml:"emptyDir"`
		HostPath *struct{} `yaml:"hostPath"`
	}
	podSpec struct {
		ServiceAccountName            string       `yaml:"serviceAccountName"`
		AutomountServiceAccountToken  *bool        `yaml:"automountServiceAccountToken"`
		HostNetwork                   bool         `yaml:"hostNetwork"`
		HostPID                       bool         `yaml:"hostPID"`
		HostIPC                       bool         `yaml:"hostIPC"`
		TerminationGracePeriodSeconds *int         `yaml:"terminationGracePeriodSeconds"`
		RestartPolicy                 string       `yaml:"restartPolicy"`
		SecurityContext               *podSecurity `yaml:"securityContext"`
		Containers                    []container  `yaml:"containers"`
		InitContainers                []container  `yaml:"initContainers"`
		Volumes                       []volume     `yaml:"volumes"`
	}
	podTemplate struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec podSpec `yaml:"spec"`
	}
	deployment struct {
		Spec struct {
			Replicas *int `yaml:"replicas"`
			Strategy struct {
				Type string `yaml:"type"`
			} `yaml:"strategy"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template podTemplate `yaml:"template"`
		} `yaml:"spec"`
	}
	cronJob struct {
		Spec struct {
			Schedule          string `yaml:"schedule"`
			ConcurrencyPolicy string `yaml:"concurrencyPolicy"`
			JobTemplate       struct {
				Spec struct {
					Template podTemplate `yaml:"template"`
				} `yaml:"spec"`
			} `yaml:"jobTemplate"`
		} `yaml:"spec"`
	}
)

// workload is a pod template with where it came from.
type workload struct {
	what string
	pod  podTemplate
}

func workloads(t *testing.T, objs []object) []workload {
	t.Helper()
	var ws []workload
	for _, o := range objs {
		switch o.Kind {
		case "Deployment":
			d := decodeInto[deployment](t, o)
			ws = append(ws, workload{"Deployment/" + o.Name, d.Spec.Template})
		case "CronJob":
			c := decodeInto[cronJob](t, o)
			ws = append(ws, workload{"CronJob/" + o.Name, c.Spec.JobTemplate.Spec.Template})
		case "StatefulSet", "DaemonSet", "Job", "Pod", "ReplicaSet":
			t.Errorf("unexpected workload kind %s/%s", o.Kind, o.Name)
		}
	}
	return ws
}

// knownKinds are the only kinds the manifests may contain, with their API
// versions. A Secret is deliberately absent: credentials never ship.
var knownKinds = map[string]string{
	"ServiceAccount":        "v1",
	"ConfigMap":             "v1",
	"PersistentVolumeClaim": "v1",
	"Service":               "v1",
	"Deployment":            "apps/v1",
	"CronJob":               "batch/v1",
	"NetworkPolicy":         "networking.k8s.io/v1",
	"ServiceMonitor":        "monitoring.coreos.com/v1",
	"PrometheusRule":        "monitoring.coreos.com/v1",
}

func TestKustomizationsBuildAndAreHardened(t *testing.T) {
	for _, dir := range []string{baseDir, reportOnlyDir, enforceDir, cronJobDir} {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			for _, o := range objs {
				want, ok := knownKinds[o.Kind]
				if !ok {
					t.Errorf("unexpected kind %s/%s (a Secret must never be part of a build)", o.Kind, o.Name)
					continue
				}
				if o.APIVersion != want {
					t.Errorf("%s/%s: apiVersion %s, want %s", o.Kind, o.Name, o.APIVersion, want)
				}
				if o.Namespace != "" {
					t.Errorf("%s/%s: namespace %q set; the base is namespace-agnostic", o.Kind, o.Name, o.Namespace)
				}
			}
			ws := workloads(t, objs)
			if len(ws) != 1 {
				t.Fatalf("%d workloads, want exactly one", len(ws))
			}
			for _, w := range ws {
				checkPod(t, objs, w)
			}
			checkNetworkPolicy(t, objs, ws)
		})
	}
}

func checkPod(t *testing.T, objs []object, w workload) {
	t.Helper()
	ps := w.pod.Spec
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false (patjanitor never calls the Kubernetes API)", w.what)
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		t.Errorf("%s: uses a host namespace", w.what)
	}
	if _, ok := find(objs, "ServiceAccount", ps.ServiceAccountName); !ok {
		t.Errorf("%s: serviceAccountName %q is not in the build", w.what, ps.ServiceAccountName)
	}
	sc := ps.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("%s: no pod securityContext", w.what)
	default:
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pod runAsNonRoot must be true", w.what)
		}
		if sc.RunAsUser == nil || *sc.RunAsUser != nonRootUID {
			t.Errorf("%s: pod runAsUser must be %d (the image's nonroot user)", w.what, nonRootUID)
		}
		if sc.FSGroup == nil || *sc.FSGroup != nonRootUID {
			t.Errorf("%s: pod fsGroup must be %d so the state volume and secrets are readable", w.what, nonRootUID)
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != "RuntimeDefault" {
			t.Errorf("%s: pod seccompProfile must be RuntimeDefault", w.what)
		}
	}
	if len(ps.InitContainers) > 0 {
		t.Errorf("%s: init containers are not expected", w.what)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", w.what, len(ps.Containers))
	}
	vols := map[string]volume{}
	for _, v := range ps.Volumes {
		vols[v.Name] = v
		if v.HostPath != nil {
			t.Errorf("%s: hostPath volume %q", w.what, v.Name)
		}
		if v.ConfigMap != nil {
			if _, ok := find(objs, "ConfigMap", v.ConfigMap.Name); !ok {
				t.Errorf("%s: volume %q names ConfigMap %q, not in the build", w.what, v.Name, v.ConfigMap.Name)
			}
		}
		if v.PersistentVolumeClaim != nil {
			if _, ok := find(objs, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName); !ok {
				t.Errorf("%s: volume %q names PVC %q, not in the build", w.what, v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
		if v.Secret != nil && v.Secret.SecretName != secretName {
			t.Errorf("%s: volume %q names Secret %q, want %q", w.what, v.Name, v.Secret.SecretName, secretName)
		}
	}
	for _, c := range ps.Containers {
		what := w.what + " container " + c.Name
		if c.Image != "patjanitor:v0.1.0" {
			t.Errorf("%s: image %q, want patjanitor:v0.1.0 (the name that kustomize edit set image patjanitor=... replaces)", what, c.Image)
		}
		if len(c.Command) > 0 {
			t.Errorf("%s: command overrides the image's ENTRYPOINT", what)
		}
		s := c.SecurityContext
		if s == nil {
			t.Errorf("%s: no securityContext", what)
			continue
		}
		if s.RunAsNonRoot == nil || !*s.RunAsNonRoot {
			t.Errorf("%s: runAsNonRoot must be true", what)
		}
		if s.RunAsUser == nil || *s.RunAsUser != nonRootUID {
			t.Errorf("%s: runAsUser must be %d", what, nonRootUID)
		}
		if s.Privileged != nil && *s.Privileged {
			t.Errorf("%s: privileged", what)
		}
		if s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation must be false", what)
		}
		if s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem must be true", what)
		}
		if s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []string{"ALL"}) || len(s.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add none", what)
		}
		if s.SeccompProfile == nil || s.SeccompProfile.Type != "RuntimeDefault" {
			t.Errorf("%s: seccompProfile must be RuntimeDefault", what)
		}
		for _, k := range []string{"cpu", "memory"} {
			if c.Resources.Requests[k] == "" {
				t.Errorf("%s: no %s request", what, k)
			}
		}
		if c.Resources.Limits["memory"] == "" {
			t.Errorf("%s: no memory limit", what)
		}
		// Secrets come from the Secret, never inline.
		if len(c.EnvFrom) > 0 {
			t.Errorf("%s: envFrom would import every key of a Secret; name the variables", what)
		}
		env := map[string]envVar{}
		for _, e := range c.Env {
			env[e.Name] = e
			if strings.Contains(strings.ToUpper(e.Name), "SECRET") && e.Value != "" {
				t.Errorf("%s: %s has an inline value", what, e.Name)
			}
		}
		cs, ok := env["PATJANITOR_CLIENT_SECRET"]
		if !ok || cs.ValueFrom == nil || cs.ValueFrom.SecretKeyRef == nil ||
			cs.ValueFrom.SecretKeyRef.Name != secretName || cs.ValueFrom.SecretKeyRef.Optional != nil && *cs.ValueFrom.SecretKeyRef.Optional {
			t.Errorf("%s: PATJANITOR_CLIENT_SECRET must come (not optionally) from Secret %s", what, secretName)
		}
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			v, ok := vols[m.Name]
			if !ok {
				t.Errorf("%s: mount %s names no volume", what, m.Name)
				continue
			}
			mounts[m.MountPath] = m.Name
			if m.SubPath != "" {
				t.Errorf("%s: subPath mount of %s never sees ConfigMap or Secret updates", what, m.Name)
			}
			if (v.ConfigMap != nil || v.Secret != nil) && !m.ReadOnly {
				t.Errorf("%s: %s must be mounted read-only", what, m.MountPath)
			}
		}
		if v := vols[mounts["/etc/patjanitor"]]; v.ConfigMap == nil || v.ConfigMap.Name != policiesCM {
			t.Errorf("%s: /etc/patjanitor must be the %s ConfigMap", what, policiesCM)
		}
		if v := vols[mounts[stateDir]]; v.PersistentVolumeClaim == nil {
			t.Errorf("%s: %s (journal and state) must be a PersistentVolumeClaim", what, stateDir)
		}
		if v := vols[mounts["/run/secrets/patjanitor"]]; v.Secret == nil {
			t.Errorf("%s: /run/secrets/patjanitor must be the credentials Secret", what)
		}
		// The flags the config and state live at.
		for _, pair := range [][2]string{{"--config", configPath}, {"--state-dir", stateSubdir}, {"--log-format", "json"}} {
			if got := flagValue(c.Args, pair[0]); got != pair[1] {
				t.Errorf("%s: %s = %q, want %q (args %q)", what, pair[0], got, pair[1], c.Args)
			}
		}
	}
}

// flagValue returns the value of --name in args ("--name v" or "--name=v").
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func checkNetworkPolicy(t *testing.T, objs []object, ws []workload) {
	t.Helper()
	o := mustFind(t, objs, "NetworkPolicy", "patjanitor")
	np := decodeInto[struct {
		Spec struct {
			PodSelector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"podSelector"`
			PolicyTypes []string `yaml:"policyTypes"`
			Ingress     []struct {
				From  []any `yaml:"from"`
				Ports []struct {
					Port     any    `yaml:"port"`
					Protocol string `yaml:"protocol"`
				} `yaml:"ports"`
			} `yaml:"ingress"`
			Egress []struct {
				To []struct {
					IPBlock *struct {
						CIDR   string   `yaml:"cidr"`
						Except []string `yaml:"except"`
					} `yaml:"ipBlock"`
				} `yaml:"to"`
				Ports []struct {
					Port     any    `yaml:"port"`
					Protocol string `yaml:"protocol"`
				} `yaml:"ports"`
			} `yaml:"egress"`
		} `yaml:"spec"`
	}](t, o)
	for _, w := range ws {
		if !selects(np.Spec.PodSelector.MatchLabels, w.pod.Metadata.Labels) {
			t.Errorf("NetworkPolicy does not select %s (labels %v)", w.what, w.pod.Metadata.Labels)
		}
	}
	if !slices.Equal(np.Spec.PolicyTypes, []string{"Ingress", "Egress"}) {
		t.Errorf("NetworkPolicy policyTypes %v, want both Ingress and Egress (default deny for each)", np.Spec.PolicyTypes)
	}
	for _, in := range np.Spec.Ingress {
		if len(in.Ports) != 1 || in.Ports[0].Port != metricsPort || in.Ports[0].Protocol != "TCP" {
			t.Errorf("ingress rule %+v: only TCP %d (metrics) may be open", in, metricsPort)
		}
	}
	if len(np.Spec.Ingress) != 1 {
		t.Errorf("%d ingress rules, want exactly one (metrics)", len(np.Spec.Ingress))
	}
	var egressPorts []int
	for _, e := range np.Spec.Egress {
		if len(e.Ports) == 0 {
			t.Errorf("egress rule without ports allows every port")
		}
		for _, p := range e.Ports {
			n, ok := p.Port.(int)
			if !ok {
				t.Errorf("egress port %v is not a number", p.Port)
				continue
			}
			egressPorts = append(egressPorts, n)
			if n == 443 {
				if len(e.To) == 0 {
					t.Errorf("egress 443 has no destination restriction")
				}
				for _, to := range e.To {
					if to.IPBlock == nil || !slices.Contains(to.IPBlock.Except, "10.0.0.0/8") && !slices.Contains(to.IPBlock.Except, "fc00::/7") {
						t.Errorf("egress 443 destination %+v does not exclude private addresses", to)
					}
				}
			}
		}
	}
	slices.Sort(egressPorts)
	if !slices.Equal(slices.Compact(egressPorts), []int{53, 443}) {
		t.Errorf("egress ports %v, want only DNS (53) and HTTPS (443)", egressPorts)
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false // an empty selector selects everything: never intended here
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestDeploymentContract(t *testing.T) {
	for _, tc := range []struct {
		dir    string
		dryRun bool
	}{{baseDir, false}, {reportOnlyDir, true}, {enforceDir, false}} {
		t.Run(tc.dir, func(t *testing.T) {
			objs := build(t, tc.dir)
			d := decodeInto[deployment](t, mustFind(t, objs, "Deployment", "patjanitor"))
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Error("replicas must be 1: two janitors would act on the same tokens")
			}
			if d.Spec.Strategy.Type != "Recreate" {
				t.Errorf("strategy %q, want Recreate: a rolling update runs two janitors at once", d.Spec.Strategy.Type)
			}
			if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
				t.Error("the Deployment's selector does not select its own pods")
			}
			c := d.Spec.Template.Spec.Containers[0]
			if len(c.Args) == 0 || c.Args[0] != "serve" {
				t.Fatalf("args %q do not start with serve", c.Args)
			}
			if got := flagValue(c.Args, "--web.listen-address"); got != ":9874" {
				t.Errorf("--web.listen-address %q, want :9874", got)
			}
			if got := slices.Contains(c.Args, "--dry-run"); got != tc.dryRun {
				t.Errorf("--dry-run in args: %v, want %v (args %q)", got, tc.dryRun, c.Args)
			}
			if len(c.Ports) != 1 || c.Ports[0].Name != metricsPortNm || c.Ports[0].ContainerPort != metricsPort {
				t.Errorf("ports %+v, want one %s on %d", c.Ports, metricsPortNm, metricsPort)
			}
			for name, p := range map[string]*probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port != metricsPortNm {
					t.Errorf("probe %s missing or not on port %s: %+v", name, metricsPortNm, p)
				}
			}
			// The kubelet's SIGKILL must come after serve's own shutdown bound.
			st, err := time.ParseDuration(flagValue(c.Args, "--shutdown-timeout"))
			if err != nil {
				t.Fatalf("--shutdown-timeout: %v", err)
			}
			if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= st {
				t.Errorf("terminationGracePeriodSeconds must exceed --shutdown-timeout %v", st)
			}

			svc := decodeInto[struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
				Spec struct {
					Selector map[string]string `yaml:"selector"`
					Ports    []struct {
						Name       string `yaml:"name"`
						Port       int    `yaml:"port"`
						TargetPort any    `yaml:"targetPort"`
					} `yaml:"ports"`
				} `yaml:"spec"`
			}](t, mustFind(t, objs, "Service", "patjanitor"))
			if !selects(svc.Spec.Selector, d.Spec.Template.Metadata.Labels) {
				t.Error("the Service does not select the Deployment's pods")
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != metricsPortNm || svc.Spec.Ports[0].TargetPort != metricsPortNm {
				t.Errorf("Service ports %+v, want one %s", svc.Spec.Ports, metricsPortNm)
			}
			sm := decodeInto[struct {
				Spec struct {
					Selector struct {
						MatchLabels map[string]string `yaml:"matchLabels"`
					} `yaml:"selector"`
					Endpoints []struct {
						Port string `yaml:"port"`
						Path string `yaml:"path"`
					} `yaml:"endpoints"`
				} `yaml:"spec"`
			}](t, mustFind(t, objs, "ServiceMonitor", "patjanitor"))
			if !selects(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) {
				t.Error("the ServiceMonitor does not select the Service")
			}
			if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != metricsPortNm || sm.Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoints %+v", sm.Spec.Endpoints)
			}
			mustFind(t, objs, "PrometheusRule", "patjanitor")
		})
	}
}

func TestCronJobVariant(t *testing.T) {
	objs := build(t, cronJobDir)
	for _, kind := range []string{"Deployment", "Service", "ServiceMonitor", "PrometheusRule"} {
		if _, ok := find(objs, kind, "patjanitor"); ok {
			t.Errorf("the CronJob variant still has the %s", kind)
		}
	}
	cj := decodeInto[cronJob](t, mustFind(t, objs, "CronJob", "patjanitor-plan"))
	if cj.Spec.ConcurrencyPolicy != "Forbid" {
		t.Errorf("concurrencyPolicy %q, want Forbid", cj.Spec.ConcurrencyPolicy)
	}
	ps := cj.Spec.JobTemplate.Spec.Template.Spec
	if ps.RestartPolicy != "Never" {
		t.Errorf("restartPolicy %q, want Never (a failed plan is retried by a new pod, with a new report name)", ps.RestartPolicy)
	}
	c := ps.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "plan" {
		t.Fatalf("args %q: the CronJob runs plan (read-only), never serve or apply", c.Args)
	}
	out := flagValue(c.Args, "--out")
	if !strings.HasPrefix(out, "/reports/") || !strings.Contains(out, "$(POD_NAME)") {
		t.Errorf("--out %q: want a per-run file under /reports", out)
	}
	var podName bool
	for _, e := range c.Env {
		if e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
			podName = true
		}
	}
	if !podName {
		t.Error("$(POD_NAME) in --out needs POD_NAME from the downward API")
	}
	var reports bool
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/reports" {
			for _, v := range ps.Volumes {
				if v.Name == m.Name && v.PersistentVolumeClaim != nil {
					reports = true
				}
			}
		}
	}
	if !reports {
		t.Error("/reports is not a PersistentVolumeClaim: the reports would vanish with the pod")
	}
}

// policiesIn returns the policies.yaml of the built ConfigMap.
func policiesIn(t *testing.T, objs []object) []byte {
	t.Helper()
	cm := decodeInto[struct {
		Data map[string]string `yaml:"data"`
	}](t, mustFind(t, objs, "ConfigMap", policiesCM))
	data, ok := cm.Data["policies.yaml"]
	if !ok || len(cm.Data) != 1 {
		t.Fatalf("ConfigMap %s has keys %v, want exactly policies.yaml", policiesCM, reflect.ValueOf(cm.Data).MapKeys())
	}
	return []byte(data)
}

func TestConfigMapPoliciesLoad(t *testing.T) {
	configs := map[string]*policy.Config{}
	for _, dir := range []string{baseDir, reportOnlyDir, enforceDir, cronJobDir} {
		t.Run(dir, func(t *testing.T) {
			data := policiesIn(t, build(t, dir))
			cfg, err := policy.Parse(configPath, data)
			if err != nil {
				t.Fatalf("the policies in %s's ConfigMap do not load:\n%v", dir, err)
			}
			if len(cfg.Policies) == 0 {
				t.Fatal("no policies")
			}
			configs[dir] = cfg
		})
	}
	base, enforce := configs[baseDir], configs[enforceDir]
	if base == nil || enforce == nil {
		return
	}
	for _, p := range base.Policies {
		if p.Mode != policy.ModeReport {
			t.Errorf("base policy %q is in mode %q: the shipped policies only report", p.Name, p.Mode)
		}
	}
	var enforced int
	for _, p := range enforce.Policies {
		if p.Mode == policy.ModeEnforce {
			enforced++
		}
	}
	if enforced == 0 {
		t.Error("the enforce overlay enforces no policy")
	}
	// The first enforce stage uses lower limits than the defaults.
	if enforce.Limits.MaxActionsPerRun <= 0 || enforce.Limits.MaxActionsPerRun > base.Limits.MaxActionsPerRun ||
		enforce.Limits.MaxActionsPercent <= 0 || enforce.Limits.MaxActionsPercent > base.Limits.MaxActionsPercent ||
		enforce.Limits.MaxActionsPerOwner <= 0 || enforce.Limits.MaxActionsPerOwner > base.Limits.MaxActionsPerOwner {
		t.Errorf("enforce overlay limits %+v must be set and no higher than the base's %+v", enforce.Limits, base.Limits)
	}
}

// The base's policies.yaml is a copy of the repository's (kustomize cannot
// read outside its directory); it must not drift.
func TestBasePoliciesAreTheShippedPolicies(t *testing.T) {
	root, err := os.ReadFile(filepath.Join("..", "policies.yaml"))
	if err != nil {
		t.Fatalf("the shipped policies.yaml: %v", err)
	}
	copyPath := filepath.Join(baseDir, "policies.yaml")
	got, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(root, got) {
		return
	}
	if os.Getenv(updateEnv) != "" {
		if err := os.WriteFile(copyPath, root, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s from policies.yaml", copyPath)
		return
	}
	t.Errorf("%s differs from /policies.yaml; copy it: %s=1 go test ./deploy", copyPath, updateEnv)
}

func TestSecretExampleIsFakeAndNotDeployed(t *testing.T) {
	kz, err := os.ReadFile(filepath.Join(baseDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(kz, &k); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(k.Resources, "secret.example.yaml") {
		t.Error("secret.example.yaml is listed in the base's resources")
	}
	data, err := os.ReadFile(filepath.Join(baseDir, "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Kind     string `yaml:"kind"`
		Metadata struct{ Name string }
		Data     map[string]string `yaml:"data"`
		String   map[string]string `yaml:"stringData"`
	}
	if err := yaml.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Kind != "Secret" || s.Metadata.Name != secretName {
		t.Errorf("secret.example.yaml is %s %q, want Secret %q", s.Kind, s.Metadata.Name, secretName)
	}
	if len(s.Data) > 0 {
		t.Error("secret.example.yaml uses data: (base64 hides whether a value is fake); use stringData")
	}
	if _, ok := s.String["client-secret"]; !ok {
		t.Error("secret.example.yaml has no client-secret key")
	}
	for k, v := range s.String {
		fake := strings.Contains(v, "FAKE") || strings.Trim(v, "0") == "" || strings.Contains(v, "example")
		if !fake {
			t.Errorf("secret.example.yaml %s = %q does not look obviously fake", k, v)
		}
	}
}

// The enforce overlay's policies.yaml is the shipped one with only policy
// modes and limits changed: anything else that differs is drift.
func TestEnforcePoliciesDifferOnlyInModesAndLimits(t *testing.T) {
	strip := func(path string) map[string]any {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		delete(doc, "limits")
		ps, _ := doc["policies"].([]any)
		for _, p := range ps {
			if m, ok := p.(map[string]any); ok {
				delete(m, "mode")
			}
		}
		return doc
	}
	shipped := strip(filepath.Join("..", "policies.yaml"))
	enforce := strip(filepath.Join(enforceDir, "policies.yaml"))
	if !reflect.DeepEqual(shipped, enforce) {
		t.Errorf("%s/policies.yaml differs from /policies.yaml in more than modes and limits:\nshipped: %v\nenforce: %v", enforceDir, shipped, enforce)
	}
}
