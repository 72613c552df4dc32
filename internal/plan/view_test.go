package plan

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// The header keys about the run's view survive a write and a read, and the
// hash still verifies; a plan without them keeps its old encoding (no
// empty keys).
func TestViewKeysRoundTrip(t *testing.T) {
	p := samplePlan()
	exp := time.Date(2027, 5, 26, 3, 0, 0, 0, time.UTC)
	p.Caller = &Caller{ClientID: "0123abcd", IdentityID: "2c91808a", UserName: "svc", Authorities: []string{"ORG_ADMIN"}}
	p.Owners, p.CredentialExpires = 7, &exp
	p.PartialView = "the credential's user level is not ORG_ADMIN"
	p.Warnings = []string{"patjanitor's own PAT expires soon"}
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	got, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := got.VerifyHash(); err != nil {
		t.Fatal(err)
	}
	c := got.Caller
	if c == nil || c.ClientID != "0123abcd" || c.IdentityID != "2c91808a" || c.UserName != "svc" || !slices.Equal(c.Authorities, []string{"ORG_ADMIN"}) ||
		got.Owners != 7 || got.CredentialExpires == nil || !got.CredentialExpires.Equal(exp) ||
		got.PartialView != p.PartialView || !slices.Equal(got.Warnings, p.Warnings) {
		t.Fatalf("read back %+v %+v", got, got.Caller)
	}

	plain := samplePlan()
	buf.Reset()
	if err := Write(&buf, plain); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"caller"`, `"owners"`, `"credentialExpires"`, `"partialView"`, `"warnings"`} {
		if strings.Contains(buf.String(), k) {
			t.Errorf("a plan without a view writes %s", k)
		}
	}
	// Strict reading: a bad view is named.
	bad := strings.Replace(buf.String(), `"population"`, `"owners": -1, "credentialExpires": "soon", "caller": {"clientId": "", "authorities": []}, "population"`, 1)
	_, err = Read(strings.NewReader(bad))
	for _, want := range []string{"owners -1 is negative", "credentialExpires", "caller.clientId is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
