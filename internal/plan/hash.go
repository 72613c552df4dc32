package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
)

// HashPrefix starts every planHash.
const HashPrefix = "sha256:"

// ErrHashMismatch is wrapped by VerifyHash when the plan's content does not
// hash to its planHash (or it has none).
var ErrHashMismatch = errors.New("plan hash mismatch")

var hashPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Hash computes the plan's hash without changing it.
//
// The canonical encoding is json.Marshal of the Plan with PlanHash set to ""
// (compact, no trailing newline): keys in the fixed order of the struct
// definitions in this package, times in pat.TimeLayout (UTC, milliseconds),
// empty lists as [] (never null), a null scope as null, patch values in their
// JSON form (objects with sorted keys, numbers as written), and encoding/json's
// default string escaping (<, > and & as \u003c, \u003e, \u0026). Items are
// hashed in the order they are in; the engine puts them in Sort order before
// sealing, so the hash of a plan made twice from the same data is the same.
//
// The result is "sha256:" followed by 64 lowercase hex digits.
//
// The encoding is streamed into the hash as it is produced (see encode.go):
// the document is never held in memory.
func (p *Plan) Hash() (string, error) {
	q := *p
	q.PlanHash = ""
	h := sha256.New()
	if err := newEncoder(h, false).plan(&q); err != nil {
		return "", fmt.Errorf("plan: canonical encoding: %w", err)
	}
	return HashPrefix + hex.EncodeToString(h.Sum(nil)), nil
}

// Seal sets PlanHash to the hash of the plan's current content. Call it after
// the last change; any later change makes VerifyHash fail. The only error is a
// plan that cannot be encoded (a NaN limit, a patch value that is not JSON);
// PlanHash is then left empty, so the plan cannot pass VerifyHash either.
func (p *Plan) Seal() error {
	p.PlanHash = ""
	h, err := p.Hash()
	if err != nil {
		return err
	}
	p.PlanHash = h
	return nil
}

// VerifyHash checks that the plan's content hashes to its PlanHash. The error
// wraps ErrHashMismatch and says what was expected and found.
func (p *Plan) VerifyHash() error {
	if p.PlanHash == "" {
		return fmt.Errorf("%w: the plan has no planHash (it was never sealed)", ErrHashMismatch)
	}
	if !hashPattern.MatchString(p.PlanHash) {
		return fmt.Errorf("%w: planHash %q is not of the form sha256:<64 hex digits>", ErrHashMismatch, p.PlanHash)
	}
	got, err := p.Hash()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHashMismatch, err)
	}
	if got != p.PlanHash {
		return fmt.Errorf("%w: planHash is %s but the content hashes to %s (the plan was changed after it was made)",
			ErrHashMismatch, p.PlanHash, got)
	}
	return nil
}
