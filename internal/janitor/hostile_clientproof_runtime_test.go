package janitor_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/janitor"
)

// The settle margin is measured at the run's time, for the disabled record
// as for the decision. A run started just inside the margin of a confirmed
// disable skips the client as awaiting proof; when its listing took the
// clock past the margin before the API client actions (a run takes time),
// forgetReenabled measured the margin anew and took the lagging listing's
// "enabled" for a re-enable: it dropped the disabled record of a disable
// that had happened, and the client, proven disabled by the next listing,
// was "disabled, but not by patjanitor" and never deleted.
func TestHostileLaggingListingAtTheMarginKeepsTheDisabledRecord(t *testing.T) {
	p := newClientProofEnv(t)
	if _, err := p.runAt(t0); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	setEnabled := func(on bool) {
		cl, _ := p.sim.OAuthClient(cTarget)
		cl.Enabled = apiclient.Bool(on)
		p.sim.AddOAuthClient(cl, "") // modified as it is: the listing lags
	}
	setEnabled(true)
	// The API client listing takes two seconds.
	inner := p.liar.next
	p.liar.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "oauth-clients") {
			p.clock.Advance(2 * time.Second)
		}
		inner.ServeHTTP(w, r)
	})
	res, err := p.runAt(t0.Add(janitor.SettleMargin - time.Second))
	p.liar.next = inner
	if err != nil || len(res.Clients) != 0 {
		t.Fatalf("run within the margin: %v, results %+v; want nothing sent", err, res.Clients)
	}
	if m := clientMutations(p.sim.Requests()); len(m) != 0 {
		t.Fatalf("run within the margin sent %+v", m)
	}
	if at, ok := p.disabledAt(); !ok || !at.Equal(t0) {
		t.Fatalf("disabled record %v (%v) after a lagging listing at the margin; want run 1's", at, ok)
	}
	setEnabled(false)
	if _, err := p.runAt(t0.Add(time.Hour)); err != nil {
		t.Fatalf("run 3: %v", err)
	}
	if _, err := p.runAt(t0.Add(14 * day)); err != nil {
		t.Fatalf("run 4: %v", err)
	}
	if m := clientMutations(p.sim.Requests()); len(m) != 1 || m[0].Method != http.MethodDelete {
		t.Fatalf("run 4 sent %+v; want the DELETE disabledFor after run 1", m)
	}
}
