package cli

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/patjanitor/patjanitor/internal/daemon"
)

// POST /approve of a plan part whose content a refusal quotes: a plan
// whose "version" (or any value the reader names when it refuses) is 1 MiB
// of control bytes. The plan part may hold 256 MiB, and the daemon logged
// and answered the plan reader's error whole: 4 MiB per request here
// (\x01 is quoted as four bytes), a gigabyte for a 256 MiB part, from
// anyone who reaches the port. b085faf clipped the form's own refusals;
// this is the judging's. Now the reason is clipped (8 KiB, room for the
// verdicts of maxVerdictsShown signatures) in the log line and the answer,
// still naming what was wrong, and nothing is stored, sent or journaled.
func TestHostileApproveEndpointRefusalOfAHugePlanValueIsClipped(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	a := newApproveServe(t, func(o *daemon.Options) { o.Logger = zap.New(core) })
	sig, err := os.ReadFile(a.planFile + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	planData := []byte(`{"version":"` + strings.Repeat(`\u0001`, 1<<20) + `"}`)
	body := strings.NewReader(partHeader("plan") + string(planData) + "\r\n" + partHeader("sig") + string(sig) + "\r\n--" + testBoundary + "--\r\n")
	code, _, out, err := postBody(t, a.p.base, body)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusBadRequest || !strings.Contains(out, "refused, nothing stored: plan: plan: version") || len(out) > 9<<10 {
		t.Errorf("answer %d, %d bytes, %.200q; want 400 of at most 9 KiB naming the plan's version", code, len(out), out)
	}
	var refusals int
	for _, e := range logs.All() {
		if !strings.Contains(e.Message, "POST /approve refused") {
			continue
		}
		refusals++
		var logged int
		for _, f := range e.Context {
			logged += len(f.String) + len(fmt.Sprint(f.Interface))
		}
		if logged > 9<<10 {
			t.Errorf("the refusal logged %d bytes of fields; want at most 9 KiB", logged)
		}
	}
	if refusals != 1 {
		t.Errorf("%d refusals logged; want 1", refusals)
	}
	a.nothingDone(t)
}
