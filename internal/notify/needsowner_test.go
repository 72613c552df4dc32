package notify

import (
	"strings"
	"testing"
)

// A digest item only the owner can carry out says what to change, in every
// channel, with no deadline; the digest's other items render as before.
func TestDigestNeedsOwnerItem(t *testing.T) {
	r := newTestRenderer(t, newClock())
	d := sampleDigest()
	d.Items = append(d.Items, DigestItem{TokenID: "2c9180835d2e5168015d32f890ca1599", TokenName: "ci-full", Policy: "full-access", Action: "patch",
		Reason: "holds sp:scopes:all (scopes.any)", NeedsOwner: true, Change: "set the scope to [sp:scopes:default]"})
	out, err := r.Render(DigestMessage("mail", "run-1", t0, d))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 of your tokens match a cleanup policy", "One of your tokens needs a change that only you, its owner, can make",
		"change:   set the scope to [sp:scopes:default]", "deadline: not before 2026-12-09 03:00 UTC"} {
		if !strings.Contains(out.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, out.Text)
		}
	}
	if strings.Count(out.Text, "deadline:") != 2 {
		t.Errorf("the needs-owner item got a deadline:\n%s", out.Text)
	}
	if !strings.Contains(out.HTML, "only you can: set the scope to [sp:scopes:default]") || !strings.Contains(string(out.Slack), "set the scope to [sp:scopes:default]") {
		t.Errorf("html or slack lacks the change:\n%s\n%s", out.HTML, out.Slack)
	}
	if !strings.HasSuffix(out.Subject, "earliest action 2026-12-09") {
		t.Errorf("subject %q", out.Subject)
	}

	// Only needs-owner items: no deadline anywhere.
	d.Items = d.Items[len(d.Items)-1:]
	out, err = r.Render(DigestMessage("mail", "run-1", t0, d))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.Text, "deadline") || strings.Contains(out.Text, "Nothing has been done yet") ||
		out.Subject != "[patjanitor] Action needed: 1 personal access token of yours on https://acme.api.identitynow.com, a change only you can make" {
		t.Errorf("subject %q text:\n%s", out.Subject, out.Text)
	}
}
