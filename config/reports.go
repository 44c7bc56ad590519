package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"lookout/internal/httpurl"
)

// ReportsConfig configures the reports the daemon posts by itself: the
// review of each stream when it ends, and scheduled digests across rooms.
type ReportsConfig struct {
	// Timezone is the zone of the schedules and of the times the
	// reports show (default DefaultTimezone).
	Timezone string        `yaml:"timezone"`
	Review   ReviewConfig  `yaml:"review"`
	Daily    *DigestConfig `yaml:"daily"`
	Weekly   *DigestConfig `yaml:"weekly"`
}

// ReviewConfig configures the stream-end review.
type ReviewConfig struct {
	// Enabled: post a review when a room's stream ends (default true).
	Enabled *bool `yaml:"enabled"`
	// Receivers, when set, get every review instead of the receivers the
	// routing tree picks for the room.
	Receivers []string `yaml:"receivers"`
}

// On reports whether stream-end reviews are posted.
func (r ReviewConfig) On() bool { return r.Enabled == nil || *r.Enabled }

// DigestConfig is one scheduled digest.
type DigestConfig struct {
	// Cron is the schedule in the five-field cron syntax (minute hour
	// day-of-month month day-of-week) or a descriptor such as @daily, in
	// reports.timezone. Default: "0 9 * * *" for daily, "0 9 * * 1" for
	// weekly.
	Cron string `yaml:"cron"`
	// Receivers get the digest (required).
	Receivers []string `yaml:"receivers"`
}

// Digest defaults: when the schedules fire without cron, and how much each
// digest covers (the window ending at its slot).
const (
	DefaultDailyCron  = "0 9 * * *"
	DefaultWeeklyCron = "0 9 * * 1"
	DailyWindow       = 24 * time.Hour
	WeeklyWindow      = 7 * 24 * time.Hour
)

// Digest is one configured digest schedule, resolved.
type Digest struct {
	Name      string // daily or weekly
	Cron      string
	Schedule  cron.Schedule
	Window    time.Duration
	Receivers []string
}

// Location is reports.timezone loaded (DefaultTimezone when unset or bad;
// validation reports a bad one).
func (r ReportsConfig) Location() *time.Location {
	loc, _ := r.location()
	return loc
}

// location loads reports.timezone; when it is bad, the error says why and
// the zone is DefaultTimezone's.
func (r ReportsConfig) location() (*time.Location, error) {
	loc, err := LoadTimezone(r.Timezone)
	if err != nil {
		loc, _ = LoadTimezone("")
	}
	return loc, err
}

// Digests lists the configured digests with their schedules parsed in
// reports.timezone. The config was validated, so they parse.
func (r ReportsConfig) Digests() []Digest {
	loc := r.Location()
	var out []Digest
	for _, d := range []struct {
		name   string
		cfg    *DigestConfig
		def    string
		window time.Duration
	}{{"daily", r.Daily, DefaultDailyCron, DailyWindow}, {"weekly", r.Weekly, DefaultWeeklyCron, WeeklyWindow}} {
		if d.cfg == nil {
			continue
		}
		spec := d.cfg.Cron
		if spec == "" {
			spec = d.def
		}
		sched, err := parseCron(spec, loc)
		if err != nil {
			continue
		}
		out = append(out, Digest{Name: d.name, Cron: spec, Schedule: sched, Window: d.window, Receivers: slices.Clone(d.cfg.Receivers)})
	}
	return out
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func parseCron(spec string, loc *time.Location) (cron.Schedule, error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("%q: set the zone with reports.timezone, not in the schedule", spec)
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", spec, err)
	}
	if spec, ok := s.(*cron.SpecSchedule); ok {
		spec.Location = loc
	}
	return s, nil
}

// validateReports checks the reports settings; receivers is the set of
// configured receiver names (validateReceivers).
func (c *Config) validateReports(receivers map[string]bool) []error {
	var errs []error
	r := c.Reports
	loc, err := r.location()
	if err != nil {
		errs = append(errs, ferr(c.lineOf("reports", "timezone"), "reports.timezone", "%v", err))
	}
	checkReceivers := func(field string, names []string, path ...string) {
		for i, n := range names {
			if !receivers[n] {
				errs = append(errs, ferr(c.lineOf(path...), fmt.Sprintf("%s[%d]", field, i), "names no configured receiver: %q", n))
			}
		}
	}
	checkReceivers("reports.review.receivers", r.Review.Receivers, "reports", "review", "receivers")
	for _, d := range []struct {
		name string
		cfg  *DigestConfig
	}{{"daily", r.Daily}, {"weekly", r.Weekly}} {
		if d.cfg == nil {
			continue
		}
		f := "reports." + d.name
		if d.cfg.Cron != "" {
			if _, err := parseCron(d.cfg.Cron, loc); err != nil {
				errs = append(errs, ferr(c.lineOf("reports", d.name, "cron"), f+".cron", "%v (five fields: minute hour day-of-month month day-of-week, e.g. \"0 9 * * *\", or @daily)", err))
			}
		}
		if len(d.cfg.Receivers) == 0 {
			errs = append(errs, ferr(c.lineOf("reports", d.name), f+".receivers", "is required: name the receivers that get the %s digest", d.name))
		}
		checkReceivers(f+".receivers", d.cfg.Receivers, "reports", d.name, "receivers")
	}
	if u := c.UI.PublicURL; u != "" {
		p, err := url.Parse(u)
		if err != nil || !httpurl.OK(p) {
			errs = append(errs, ferr(c.lineOf("ui", "public_url"), "ui.public_url", "%q is not an http(s) URL such as https://lookout.example.com", u))
		}
	}
	return errs
}
