package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	// Embedded zone data: the container image is static and has no
	// /usr/share/zoneinfo, and `validate` on a laptop must accept exactly the
	// time zones the daemon will.
	_ "time/tzdata"
)

// MinScheduleInterval is the shortest @every interval a schedule may have:
// every run lists the whole tenant, and the tenant's rate limit is shared with
// everything else that uses it.
const MinScheduleInterval = time.Minute

// scheduleEpoch is where ParseSchedule looks for a first run. Any fixed date
// works: a spec that fires at all fires within the five years robfig/cron
// searches (29 February included).
var scheduleEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ParseSchedule parses a cron schedule: five fields (minute hour
// day-of-month month day-of-week) or a descriptor (@yearly, @monthly,
// @weekly, @daily, @hourly, @every <duration>). The schedule is read in the
// time zone of the time passed to Next (the config's Location); a TZ= or
// CRON_TZ= prefix is refused in favour of the timezone key. A schedule that
// never fires (30 February) and an @every shorter than MinScheduleInterval are
// errors.
func ParseSchedule(spec string) (cron.Schedule, error) {
	return parseSchedule(spec, MinScheduleInterval)
}

func parseSchedule(spec string, minEvery time.Duration) (s cron.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("bad schedule %q: set the time zone with the timezone key, not in the schedule", spec)
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("bad schedule %q: %v", spec, r)
		}
	}()
	s, err = cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("bad schedule %q: %w (want 5 fields: minute hour day-of-month month day-of-week, or @daily, @every 6h …)", spec, err)
	}
	if cd, ok := s.(cron.ConstantDelaySchedule); ok && cd.Delay < minEvery {
		return nil, fmt.Errorf("bad schedule %q: runs more often than every %s", spec, FormatDuration(minEvery))
	}
	if s.Next(scheduleEpoch).IsZero() {
		return nil, fmt.Errorf("bad schedule %q: no date ever matches it", spec)
	}
	return s, nil
}

// loadLocation loads an IANA zone by name. "Local" is refused: the daemon and
// the reviewer's laptop would read the same schedule differently.
func loadLocation(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, errors.New(`"Local" depends on the host; name a zone such as UTC or Europe/Berlin`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (want an IANA name such as UTC or Europe/Berlin)", name)
	}
	return loc, nil
}

// NextRuns returns the next n times s fires after from, in loc. It stops
// early if the schedule has no further run.
func NextRuns(s cron.Schedule, from time.Time, loc *time.Location, n int) []time.Time {
	if loc == nil {
		loc = time.UTC
	}
	out := make([]time.Time, 0, n)
	t := from.In(loc)
	for len(out) < n {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// CronSchedule returns the parsed form of spec (one of the config's
// schedules, as accepted at load), read in Location.
func (c *Config) CronSchedule(spec string) (cron.Schedule, error) {
	if s, ok := c.schedules[spec]; ok {
		return s, nil
	}
	return ParseSchedule(spec)
}

// NextRuns returns the next n runs of spec after from, in the config's time
// zone.
func (c *Config) NextRuns(spec string, from time.Time, n int) ([]time.Time, error) {
	s, err := c.CronSchedule(spec)
	if err != nil {
		return nil, err
	}
	return NextRuns(s, from, c.Location, n), nil
}

// ScheduleGroup is the policies that share one schedule: the daemon runs them
// together, with Config.Only(group.Policies...).
type ScheduleGroup struct {
	Spec     string
	Schedule cron.Schedule // read in the config's Location
	Policies []string      // in file order
}

// ScheduleGroups returns one group per distinct schedule, in the order each
// schedule first appears among the policies.
func (c *Config) ScheduleGroups() ([]ScheduleGroup, error) {
	var groups []ScheduleGroup
	idx := map[string]int{}
	for _, p := range c.Policies {
		spec := p.Schedule
		if spec == "" {
			spec = c.Schedule
		}
		i, ok := idx[spec]
		if !ok {
			s, err := c.CronSchedule(spec)
			if err != nil {
				return nil, fmt.Errorf("policy %s: %w", p.Name, err)
			}
			i = len(groups)
			idx[spec] = i
			groups = append(groups, ScheduleGroup{Spec: spec, Schedule: s})
		}
		groups[i].Policies = append(groups[i].Policies, p.Name)
	}
	return groups, nil
}
