package alerts

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"lookout/item"
	"lookout/store"
)

// The windowed rules of the shipped config.yaml (negative-surge,
// crisis-burst, viewers-drop, viewers-bleed), the ones that keep a room
// profile.
const profileShippedRules = `
  - name: negative-surge
    kind: negative_ratio
    window: 30s
    baseline: 15m
    min_history: 5m
    min_volume: 60
    floor: 0.12
    levels: { yellow: 0.05, red: 0.08 }
    for: 10s
    cooldown: 5m
  - name: crisis-burst
    kind: keyword_burst
    category: crisis
    window: 1m
    per: 1000
    complaints_only: true
    baseline: 15m
    min_history: 2m
    levels: { yellow: 8, red: 20 }
    cooldown: 5m
  - name: viewers-drop
    kind: metric_drop
    metric: viewers
    window: 30s
    baseline: 5m
    levels: { yellow: 0.25, red: 0.4 }
    for: 10s
  - name: viewers-bleed
    kind: metric_trend
    metric: viewers
    window: 30m
    levels: { yellow: 0.2 }
    for: 1m
`

// profileAnomalyRules adds two anomaly rules to the shipped ones: the
// room's viewers (a point a minute) and its chat volume (a point every
// 10 s).
const profileAnomalyRules = profileShippedRules + `
  - name: viewers-anomaly
    kind: anomaly
    metric: viewers
    window: 1m
  - name: volume-anomaly
    kind: anomaly
    window: 10s
`

// profileScaleRows learns one room for a week (chat every few seconds,
// about 1 % of it crisis words, 15 % negative; viewers, whole numbers as
// platforms report them, every 10 s), so that every ring, tail and
// seasonal slot is full, and returns its rows copied to rooms rooms, with
// the engine's clock at the end.
func profileScaleRows(b testing.TB, rules string, rooms int) ([]store.RoomProfile, time.Time) {
	e, _, clk := engineTestEngineClock(b, rules)
	const week = 7 * 24 * 3600
	for sec := 0; sec < week; sec += 2 {
		at := engineTestStart.Add(time.Duration(sec) * time.Second)
		clk.Set(at)
		h := uint32(sec) * 2654435761
		label := item.Neutral
		if h>>8%100 < 15 {
			label = item.Negative
		}
		var it item.Item
		if h>>16%100 == 0 {
			it = chatItem("0", at, item.Negative, "我要退款", crisisMatch)
		} else {
			it = chatItem("0", at, label, "看看")
		}
		e.Observe(&it)
		if sec%10 == 0 {
			v := math.Round(1000 + 300*math.Sin(2*math.Pi*float64(sec)/86400) + float64(h>>20%41))
			m := metricItem("0", "viewers", at, v)
			e.Observe(&m)
		}
		if sec%60 == 0 {
			e.Evaluate(context.Background(), at)
		}
	}
	one := e.ExportProfiles()
	out := make([]store.RoomProfile, 0, rooms*len(one))
	for r := range rooms {
		for _, row := range one {
			row.Room = strconv.Itoa(r)
			out = append(out, row)
		}
	}
	return out, clk.Now()
}

// BenchmarkProfilesScale: what the daemon's once-a-minute profile save
// costs with 100 and 500 rooms, on the shipped rules and with two
// anomaly rules added (every detector fully learned). One op = one save
// of every room; bytes/save is what the save writes to room_profiles.
// The daemon takes the detectors every tenth save: a minute's average is
// a tenth of export-detectors and nine tenths of export-counts.
func BenchmarkProfilesScale(b *testing.B) {
	for _, cfg := range []struct{ name, rules string }{{"shipped", profileShippedRules}, {"anomaly", profileAnomalyRules}} {
		for _, rooms := range []int{100, 500} {
			b.Run(fmt.Sprintf("%s/rooms=%d", cfg.name, rooms), func(b *testing.B) {
				rows, now := profileScaleRows(b, cfg.rules, rooms)
				e, _, clk := engineTestEngineClock(b, cfg.rules)
				clk.Set(now)
				if n, err := e.ImportProfiles(rows, now); err != nil || n != profileRuleRows(rows) {
					b.Fatalf("import: %d rows used, %v", n, err)
				}
				// A save that takes every detector (one in ten of the
				// daemon's, and the one at shutdown), and one that takes
				// none (the other nine).
				for _, ex := range []struct {
					name string
					fn   func() []store.RoomProfile
				}{{"export-detectors", e.ExportAllProfiles}, {"export-counts", e.ExportProfiles}} {
					b.Run(ex.name, func(b *testing.B) {
						size := 0
						for b.Loop() {
							size = 0
							for _, r := range ex.fn() {
								size += len(r.Profile)
							}
						}
						b.ReportMetric(float64(size), "bytes/save")
						b.ReportMetric(float64(size)/float64(rooms), "bytes/room")
					})
				}
				b.Run("import", func(b *testing.B) {
					for b.Loop() {
						b.StopTimer()
						fresh, _, _ := engineTestEngineClock(b, cfg.rules)
						b.StartTimer()
						if n, err := fresh.ImportProfiles(rows, now); err != nil || n != profileRuleRows(rows) {
							b.Fatalf("%d, %v", n, err)
						}
					}
				})
			})
		}
	}
}

// profileRuleRows counts the rows that are not detectors' rows.
func profileRuleRows(rows []store.RoomProfile) int {
	n := 0
	for _, r := range rows {
		if !strings.HasSuffix(r.Rule, profileDetectorSuffix) {
			n++
		}
	}
	return n
}
