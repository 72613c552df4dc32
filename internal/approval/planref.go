package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
)

// Load reads the approvals files: the allowed signers and, when given, the
// revoked keys. Every command that applies or validates a plan reads them,
// and serve reads them again before each run that applies plans, so that a
// key revoked since the config was loaded never counts. The errors name the
// config key of the file that failed.
func Load(allowedSignersFile, revokedKeysFile string, required int) (*Policy, error) {
	signers, err := LoadAllowedSigners(allowedSignersFile)
	if err != nil {
		return nil, fmt.Errorf("approvals.allowedSignersFile: %w", err)
	}
	pol := &Policy{Signers: signers, Required: required}
	if revokedKeysFile != "" {
		if pol.Revoked, err = LoadRevokedKeys(revokedKeysFile); err != nil {
			return nil, fmt.Errorf("approvals.revokedKeysFile: %w", err)
		}
	}
	return pol, nil
}

// ErrSignatureFile marks a plan's signature file that could not be read at
// all (as opposed to signatures that were read and did not count).
var ErrSignatureFile = errors.New("unreadable signature file")

// FileDigest is how the journal names a plan file's bytes: "sha256:<hex>".
func FileDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PlanRef judges the signatures of a saved plan (planFile's bytes are data,
// its planHash planHash) found in SigFile(planFile), and returns what the
// journal records about the plan: the file, its digest, the planHash and
// the approvals that counted. err is the refusal: the signature file could
// not be read (wrapping ErrSignatureFile), or not enough valid approvals,
// with each signature's verdict. A nil Policy (no approvals configured)
// judges nothing. The signature file is read with ReadSigFile (a link is
// followed: the path is the operator's).
func (p *Policy) PlanRef(planFile string, data []byte, planHash string, now time.Time) (audit.PlanRef, error) {
	return p.planRef(planFile, data, planHash, now, ReadSigFile)
}

// DroppedPlanRef is PlanRef for a plan in serve's approved directory, read
// with plan.ReadDropped: its signature file is read with ReadDroppedSigFile,
// which refuses a symbolic link like the plan's reading does.
func (p *Policy) DroppedPlanRef(planFile string, data []byte, planHash string, now time.Time) (audit.PlanRef, error) {
	return p.planRef(planFile, data, planHash, now, ReadDroppedSigFile)
}

func (p *Policy) planRef(planFile string, data []byte, planHash string, now time.Time, read func(string) ([]Entry, error)) (audit.PlanRef, error) {
	ref := audit.PlanRef{File: planFile, FileSHA256: FileDigest(data), PlanHash: planHash}
	if p == nil {
		return ref, nil
	}
	sigFile := SigFile(planFile)
	entries, err := read(sigFile)
	if err != nil {
		return ref, fmt.Errorf("%w: %w", ErrSignatureFile, err)
	}
	res := p.Check(data, entries, now)
	for _, v := range res.Approvals() {
		a := audit.Approval{Principal: v.Principal, Fingerprint: v.Fingerprint, Reason: v.Reason}
		if !v.SignedAt.IsZero() {
			t := v.SignedAt.UTC()
			a.SignedAt = &t
		}
		ref.Approvals = append(ref.Approvals, a)
	}
	if err := res.Err(); err != nil {
		return ref, fmt.Errorf("%s: %w", sigFile, err)
	}
	return ref, nil
}
