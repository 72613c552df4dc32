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
// default tenant.maxListingBytes. Measured on 2026-12-05 (docs/operations.md,
// "Memory"): at 64 MiB (195,000 tokens) a plan of the shipped report-mode
// policies peaks at about 60 MiB in any format, but a serve run that marks
// 86,507 tokens for a grace period and sends 44,280 owner digests needs 211
// MiB of Go memory with the collector held to a 64 MiB soft limit, i.e.
// running as often as it can: that is the live memory the largest run needs.
// At GOMEMLIMIT=256MiB (21% above it) the same run took as long as without a
// limit. Beside Go's memory, the state store it leaves (120 MiB) is mapped:
// up to 126 MiB of file-backed RSS, which must fit between GOMEMLIMIT and the
// hard limit.
const (
	measuredForListingBytes = 64 << 20
	liveAtDefaultCapMiB     = 211
	mappedAtDefaultCapMiB   = 126
)

// memoryFits checks one GOMEMLIMIT and hard limit pair: the soft limit leaves
// the collector a fifth above the live memory of a run at the cap (at 21% it
// did not slow the run), and the hard limit is at least 1.4 times the soft
// one and leaves room for the mapped state store beside Go's memory.
func memoryFits(t *testing.T, what string, gomemlimit string, limitMiB int64) {
	t.Helper()
	soft, err := policy.ParseByteSize(gomemlimit)
	if err != nil {
		t.Errorf("%s: GOMEMLIMIT %q: %v", what, gomemlimit, err)
		return
	}
	softMiB := int64(soft) >> 20
	if softMiB*5 < liveAtDefaultCapMiB*6 {
		t.Errorf("%s: GOMEMLIMIT %dMiB leaves the collector less than 20%% above the %d MiB a run at the default listing cap needs", what, softMiB, liveAtDefaultCapMiB)
	}
	if limitMiB*10 < softMiB*14 {
		t.Errorf("%s: memory limit %dMiB is less than 1.4 x GOMEMLIMIT %dMiB: no room for what is not Go heap", what, limitMiB, softMiB)
	}
	if limitMiB-softMiB < mappedAtDefaultCapMiB {
		t.Errorf("%s: memory limit %dMiB leaves less than the %d MiB of the mapped state store beside GOMEMLIMIT %dMiB", what, limitMiB, mappedAtDefaultCapMiB, softMiB)
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
