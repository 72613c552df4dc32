package deploy_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/patjanitor/patjanitor/internal/policy"
)

// The memory limits shipped here are sized for a run over a listing at the
// default tenant.maxListingBytes. Measured (docs/operations.md, "Memory"):
// at 64 MiB (195,000 tokens), `plan -o table` peaks at 185 MiB of RSS with
// the collector held to an 80 MiB soft limit, i.e. running as often as it
// can: that is the live memory a run needs. With a higher GOMEMLIMIT the
// collector lets the heap grow to it (262 MiB at GOMEMLIMIT=256MiB).
const (
	measuredForListingBytes = 64 << 20
	liveAtDefaultCapMiB     = 185
)

// memoryFits checks one GOMEMLIMIT and hard limit pair: the soft limit leaves
// the collector a quarter above the live memory of a run at the cap, and the
// hard limit is at least 1.4 times the soft one, for what is not Go heap.
func memoryFits(t *testing.T, what string, gomemlimit string, limitMiB int64) {
	t.Helper()
	soft, err := policy.ParseByteSize(gomemlimit)
	if err != nil {
		t.Errorf("%s: GOMEMLIMIT %q: %v", what, gomemlimit, err)
		return
	}
	softMiB := int64(soft) >> 20
	if softMiB*4 < liveAtDefaultCapMiB*5 {
		t.Errorf("%s: GOMEMLIMIT %dMiB leaves the collector less than 25%% above the %d MiB a run at the default listing cap needs", what, softMiB, liveAtDefaultCapMiB)
	}
	if limitMiB*10 < softMiB*14 {
		t.Errorf("%s: memory limit %dMiB is less than 1.4 x GOMEMLIMIT %dMiB: no room for what is not Go heap", what, limitMiB, softMiB)
	}
}

func TestMemoryLimitsFitTheListingCap(t *testing.T) {
	if policy.DefaultMaxListingBytes != measuredForListingBytes {
		t.Fatalf("tenant.maxListingBytes defaults to %s, but the memory limits were measured for %d MiB: measure again and update them", policy.DefaultMaxListingBytes, measuredForListingBytes>>20)
	}
	for _, file := range []string{"kubernetes/base/deployment.yaml", "kubernetes/cronjob/cronjob.yaml"} {
		data, err := os.ReadFile(filepath.FromSlash(file))
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range findContainers(doc) {
			n++
			what := file + " container " + str(c["name"])
			gml := ""
			for _, e := range list(c["env"]) {
				if m := e.(map[string]any); str(m["name"]) == "GOMEMLIMIT" {
					gml = str(m["value"])
				}
			}
			limit := str(dig(c, "resources", "limits", "memory"))
			mib, ok := strings.CutSuffix(limit, "Mi")
			v, err := strconv.ParseInt(mib, 10, 64)
			if !ok || err != nil {
				t.Errorf("%s: memory limit %q: want a whole number of Mi", what, limit)
				continue
			}
			if gml == "" {
				t.Errorf("%s: GOMEMLIMIT must be a value (two thirds of the limit), not the limit itself", what)
				continue
			}
			memoryFits(t, what, gml, v)
		}
		if n == 0 {
			t.Errorf("%s: no container found", file)
		}
	}

	u := loadUnit(t)
	maxMem := u["Service"]["MemoryMax"]
	if len(maxMem) != 1 || !strings.HasSuffix(maxMem[0], "M") {
		t.Fatalf("%s: MemoryMax = %q, want one value in M", unitPath, maxMem)
	}
	limitMiB, err := strconv.ParseInt(strings.TrimSuffix(maxMem[0], "M"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(envExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	gml := ""
	for _, line := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "GOMEMLIMIT="); ok {
			gml = v
		}
	}
	memoryFits(t, unitPath+" with "+envExamplePath, gml, limitMiB)
}

// findContainers returns every mapping under a "containers" key.
func findContainers(n any) []map[string]any {
	var out []map[string]any
	switch v := n.(type) {
	case map[string]any:
		for k, c := range v {
			if k == "containers" {
				for _, x := range list(c) {
					if m, ok := x.(map[string]any); ok {
						out = append(out, m)
					}
				}
				continue
			}
			out = append(out, findContainers(c)...)
		}
	case []any:
		for _, c := range v {
			out = append(out, findContainers(c)...)
		}
	}
	return out
}

func list(n any) []any { l, _ := n.([]any); return l }

func str(n any) string { s, _ := n.(string); return s }

func dig(n any, keys ...string) any {
	for _, k := range keys {
		m, _ := n.(map[string]any)
		n = m[k]
	}
	return n
}
