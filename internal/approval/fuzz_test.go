package approval

import (
	"testing"
	"time"
)

// FuzzParse feeds arbitrary bytes to the two parsers of files that others
// write: neither may panic, and what they accept must be usable by Check.
func FuzzParse(f *testing.F) {
	f.Add([]byte("alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPIzPeC3ApWMn12gB6u7PaRVAlA5NvZS4b/bO2ISsbOh c\n"))
	f.Add([]byte(`"a b",c namespaces="x,y",valid-after="20260101Z" ssh-ed25519 AAAA` + "\n"))
	f.Add([]byte(beginLine + "\nU1NIU0lH\n" + endLine + "\n" + metaPrefix + `{"reason":"x"}` + "\n"))
	f.Add([]byte("-----BEGIN SSH SIGNATURE-----\n\n-----END SSH SIGNATURE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		as, err := ParseAllowedSigners("f", data)
		if err == nil && len(as.Signers) == 0 {
			t.Fatal("accepted a file with no signers")
		}
		entries, err := ParseSigFile("f.sig", data)
		if err != nil || as == nil {
			return
		}
		res := Policy{Signers: as, Required: 1}.Check(data, entries, time.Unix(0, 0))
		if len(res.Verdicts) != len(entries) {
			t.Fatalf("%d verdicts for %d signatures", len(res.Verdicts), len(entries))
		}
	})
}
