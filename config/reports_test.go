package config

import (
	"strings"
	"testing"
	"time"
)

const reportsReceivers = `route: { receiver: ding }
receivers:
  - name: ding
    console: {}
`

func TestReportsConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"bad cron", "reports:\n  daily:\n    cron: \"0 25 * * *\"\n    receivers: [ding]\n", "x.yaml:7: reports.daily.cron:"},
		{"six fields", "reports:\n  weekly:\n    cron: \"0 0 9 * * 1\"\n    receivers: [ding]\n", "x.yaml:7: reports.weekly.cron:"},
		{"zone in the schedule", "reports:\n  daily:\n    cron: \"CRON_TZ=UTC 0 9 * * *\"\n    receivers: [ding]\n", "set the zone with reports.timezone"},
		{"no receivers", "reports:\n  daily:\n    cron: \"0 9 * * *\"\n", "x.yaml:7: reports.daily.receivers: is required"},
		{"unknown receiver", "reports:\n  weekly:\n    receivers: [nobody]\n", `x.yaml:7: reports.weekly.receivers[0]: names no configured receiver: "nobody"`},
		{"unknown review receiver", "reports:\n  review:\n    receivers: [ding, nobody]\n", `reports.review.receivers[1]: names no configured receiver`},
		{"bad zone", "reports:\n  timezone: Mars/Olympus\n", "x.yaml:6: reports.timezone: unknown time zone"},
		{"unknown key", "reports:\n  dayly: {}\n", "dayly"},
		{"bad public url", "ui:\n  public_url: lookout.example.com\n", "x.yaml:6: ui.public_url:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(reportsReceivers+tc.yaml), "x.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestReportsDigestSchedules(t *testing.T) {
	c, err := Parse([]byte(reportsReceivers+`reports:
  daily: { receivers: [ding] }
  weekly: { cron: "30 18 * * 5", receivers: [ding] }
`), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Reports.Review.On() {
		t.Error("stream reviews are on by default")
	}
	ds := c.Reports.Digests()
	if len(ds) != 2 || ds[0].Name != "daily" || ds[0].Cron != DefaultDailyCron || ds[1].Window != WeeklyWindow {
		t.Fatalf("digests %+v", ds)
	}
	// 2026-12-03 is a Thursday; 09:00 in Shanghai is 01:00 UTC.
	from := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	if got, want := ds[0].Schedule.Next(from), time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("daily next %v, want %v (09:00 Asia/Shanghai)", got.UTC(), want)
	}
	if got, want := ds[1].Schedule.Next(from), time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("weekly next %v, want %v (Friday 18:30 Asia/Shanghai)", got.UTC(), want)
	}
	utc, err := Parse([]byte(reportsReceivers+"reports:\n  timezone: UTC\n  daily: { receivers: [ding] }\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := utc.Reports.Digests()[0].Schedule.Next(from), time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("daily next in UTC %v, want %v", got, want)
	}
	if d := Compare(c, utc); !d.Reports || d.Empty() {
		t.Errorf("Compare misses the changed schedule: %+v", d)
	}
	if d := Compare(c, c); d.Reports {
		t.Error("the same config compares as changed reports")
	}
}
