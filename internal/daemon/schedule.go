package daemon

import (
	"errors"
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/policy"
)

// Group is a set of policies that share one schedule string and therefore run
// together: one inventory, one plan.
type Group struct {
	// Schedule is the cron spec as written (5 fields or a descriptor such as
	// "@daily" or "@every 1h").
	Schedule string `json:"schedule"`
	// Policies are the names of the group's policies, in file order.
	Policies []string `json:"policies"`
}

// Groups returns the schedule groups of cfg: policies with an equal schedule
// string (their own, or the config's default) in one group, groups ordered by
// their first policy in the file. Schedules are compared as written, so
// "@daily" and "0 0 * * *" are two groups that both run at midnight (and the
// second of them is skipped as overlapping); write them the same to merge them.
func Groups(cfg *policy.Config) ([]Group, error) {
	var (
		groups []Group
		index  = map[string]int{}
		errs   []error
	)
	for i, p := range cfg.AllPolicies() {
		spec := strings.TrimSpace(p.Schedule)
		if spec == "" {
			spec = strings.TrimSpace(cfg.Schedule)
		}
		if spec == "" {
			errs = append(errs, fmt.Errorf("policies[%d] %q: no schedule, and the config has no default schedule: serve needs one", i, p.Name))
			continue
		}
		if _, err := cron.ParseStandard(spec); err != nil {
			errs = append(errs, fmt.Errorf("policies[%d] %q: schedule %q: %w", i, p.Name, spec, err))
			continue
		}
		if gi, ok := index[spec]; ok {
			groups[gi].Policies = append(groups[gi].Policies, p.Name)
			continue
		}
		index[spec] = len(groups)
		groups = append(groups, Group{Schedule: spec, Policies: []string{p.Name}})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return nil, errors.New("no policies to schedule")
	}
	return groups, nil
}

// cronLogger routes robfig/cron's logging through zap. cron's Info messages
// (start, wake, run, added, stop) fire on every tick, so they are debug-level
// here; its errors (a recovered panic) stay errors.
type cronLogger struct{ log *zap.Logger }

var _ cron.Logger = cronLogger{}

func (l cronLogger) Info(msg string, keysAndValues ...any) {
	if ce := l.log.Check(zap.DebugLevel, msg); ce != nil {
		ce.Write(kvFields(keysAndValues)...)
	}
}

func (l cronLogger) Error(err error, msg string, keysAndValues ...any) {
	l.log.Error(msg, append(kvFields(keysAndValues), zap.Error(err))...)
}

// kvFields turns cron's alternating keys and values into zap fields. A key
// that is not a string, or a missing value, is kept under a made-up key rather
// than dropped: a log line should never lose data silently.
func kvFields(kv []any) []zap.Field {
	fields := make([]zap.Field, 0, (len(kv)+1)/2)
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprintf("arg%d", i)
		}
		if i+1 >= len(kv) {
			fields = append(fields, zap.Any(key, nil))
			break
		}
		fields = append(fields, zap.Any(key, kv[i+1]))
	}
	return fields
}
