package alerts

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lookout/item"
	"lookout/store"
)

// profileFeed is TestNegativeRatioStageOfEarlierStreams' room: streams
// that start noisy (35 % negative for 4 min, then 15 %), the second one
// after an hour off air, with a crisis (60 %) from its second minute when
// crisis is set.
const profileStream2 = 90 * 60

func profileFeed(crisis bool) baselineFeed {
	return func(sec int) (int, float64, int, int, float64) {
		in := sec
		if sec >= profileStream2 {
			in = sec - profileStream2
		}
		switch {
		case sec >= 30*60 && sec < profileStream2:
			return 0, 0, 0, 0, 0
		case crisis && sec >= profileStream2 && in >= 60 && in < 5*60:
			return 20, 0.6, 0, 0, 0
		case in < 4*60:
			return 20, 0.35, 0, 0, 0
		}
		return 20, 0.15, 0, 0, 0
	}
}

// profileThroughStore writes rows to a real SQLite file and reads them
// back, as the daemon does across a restart.
func profileThroughStore(t *testing.T, rows []store.RoomProfile) []store.RoomProfile {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "profiles.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutRoomProfiles(ctx, rows); err != nil {
		t.Fatal(err)
	}
	back, err := st.RoomProfiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// The engine stops after a room's first stream and a new engine takes over
// what it learned: the second stream is judged from its first minutes
// against the first one's start, as if there had been no restart. Without
// the profile the new engine has no verdict until min_history (5 min).
func TestProfileSurvivesRestartBetweenStreams(t *testing.T) {
	first, rec1, clk := engineTestEngineClock(t, baselineNegRule)
	if evs := baselineRunOn(t, first, rec1, clk, 0, 30*60, profileFeed(false)); len(evs) != 0 {
		t.Fatalf("the first stream paged: %v", evs)
	}
	rows := first.ExportProfiles()
	if len(rows) != 1 || rows[0].Rule != "surge" || rows[0].Source != "live" || rows[0].Room != "1" {
		t.Fatalf("exported %+v, want one row for surge in live/1", rows)
	}
	stored := profileThroughStore(t, rows)

	second := func(t *testing.T, load bool, crisis bool) []baselineEvent {
		e, rec, clk := engineTestEngineClock(t, baselineNegRule)
		now := engineTestStart.Add(profileStream2 * time.Second)
		clk.Set(now)
		if load {
			n, err := e.ImportProfiles(stored, now)
			if err != nil || n != 1 {
				t.Fatalf("ImportProfiles: %d rows used, %v; want 1", n, err)
			}
		}
		return baselineRunOn(t, e, rec, clk, profileStream2, profileStream2+20*60, profileFeed(crisis))
	}
	t.Run("crisis early in the next stream", func(t *testing.T) {
		evs := second(t, true, true)
		red := baselineFirst(evs, Firing, Red)
		if red < profileStream2+60 || red > profileStream2+60+45 {
			t.Fatalf("red at %ds, want within 45s of %ds; events:\n%v", red, profileStream2+60, evs)
		}
	})
	t.Run("the usual noisy start", func(t *testing.T) {
		if evs := second(t, true, false); len(evs) != 0 {
			t.Fatalf("the room's usual noisy start paged after the restart: %v", evs)
		}
	})
	t.Run("without the profile", func(t *testing.T) {
		evs := second(t, false, true)
		if red := baselineFirst(evs, Firing, Red); red >= 0 && red < profileStream2+5*60 {
			t.Fatalf("red at %ds without the earlier stream: the test no longer shows what the profile adds", red)
		}
	})
}

// Export → store → import → export gives the same rows.
func TestProfileRoundTrip(t *testing.T) {
	const rules = baselineNegRule + `
  - name: surge-fast
    kind: negative_ratio
    window: 10s
    baseline: 5m
    min_volume: 20
    levels: { red: 0.1 }
    conditions:
      - { kind: negative_ratio, window: 1m, above: 0.1 }
  - name: no-baseline
    kind: negative_ratio
    window: 30s
    min_volume: 20
    levels: { red: 0.5 }
`
	first, rec1, clk := engineTestEngineClock(t, rules)
	baselineRunOn(t, first, rec1, clk, 0, 45*60, profileFeed(false))
	baselineRunOn(t, first, rec1, clk, profileStream2, profileStream2+3*60, profileFeed(false))
	rows := first.ExportProfiles()
	// surge and surge-fast (its condition shares the rule's kind and
	// baseline, so it keeps a stage of its own); no-baseline keeps no
	// stage, only its window's buckets.
	if len(rows) != 3 {
		t.Fatalf("exported %d rows, want 3: %+v", len(rows), rows)
	}
	var pj profileJSON
	if err := json.Unmarshal([]byte(rows[1].Profile), &pj); err != nil {
		t.Fatal(err)
	}
	if len(pj.Signals) != 2 || len(pj.Signals[0].Past) != 30 || len(pj.Signals[0].Cur) != 3 {
		t.Fatalf("surge-fast profile %s: want 2 signals, 30 past and 3 current minutes", rows[1].Profile)
	}
	if !pj.StreamStart.Equal(engineTestStart.Add(profileStream2*time.Second)) || pj.Live != -1 {
		t.Errorf("stream start %v, live %v", pj.StreamStart, pj.Live)
	}

	e, _, clk2 := engineTestEngineClock(t, rules)
	clk2.Set(clk.Now())
	n, err := e.ImportProfiles(profileThroughStore(t, rows), clk.Now())
	if err != nil || n != 3 {
		t.Fatalf("ImportProfiles: %d, %v; want 3", n, err)
	}
	again := e.ExportProfiles()
	if len(again) != len(rows) {
		t.Fatalf("re-exported %d rows, want %d", len(again), len(rows))
	}
	for i := range rows {
		if again[i].Rule != rows[i].Rule || again[i].Profile != rows[i].Profile {
			t.Errorf("row %d changed on the way:\n got %s %s\nwant %s %s", i, again[i].Rule, again[i].Profile, rows[i].Rule, rows[i].Profile)
		}
	}
}

// A restart in the middle of a stream does not start a new one: the
// stream's start and its minutes so far carry on.
func TestProfileRestartMidStream(t *testing.T) {
	first, rec1, clk := engineTestEngineClock(t, baselineNegRule)
	baselineRunOn(t, first, rec1, clk, 0, 10*60, profileFeed(false))
	rows := first.ExportProfiles()

	e, rec, clk2 := engineTestEngineClock(t, baselineNegRule)
	back := engineTestStart.Add(10*60*time.Second + 30*time.Second)
	clk2.Set(back)
	if _, err := e.ImportProfiles(rows, back); err != nil {
		t.Fatal(err)
	}
	if evs := baselineRunOn(t, e, rec, clk2, 10*60+30, 20*60, profileFeed(false)); len(evs) != 0 {
		t.Fatalf("paged after a restart in the middle of a calm stream: %v", evs)
	}
	ent := e.keys[engineKey{"live", "1"}]
	if !ent.streamStart.Equal(engineTestStart) {
		t.Errorf("stream start %v after the restart, want the stream's own %v", ent.streamStart, engineTestStart)
	}
	s := ent.series[e.rules[0].signals[0].idx]
	if s.stage.past != ([stageSlots]stageCounts{}) {
		t.Errorf("the stream under way was folded into earlier streams: past %v", s.stage.past[:3])
	}
	// 20 a second for 20 minutes, less the 30 s the engine was down.
	if got, want := profileSum(&s.stage.cur), float64(20*(20*60-30)); got != want {
		t.Errorf("%v messages counted in the stream's minutes, want %v", got, want)
	}
}

func profileSum(c *[stageSlots]stageCounts) float64 {
	n := 0.0
	for _, v := range c {
		n += v.scored
	}
	return n
}

// Rows that cannot be read are skipped, counted and named; the others
// are used. Rows of rules that are gone, and of rooms silent for longer
// than the engine keeps one, are skipped without complaint.
func TestProfileImportSkipsBadRows(t *testing.T) {
	first, rec1, clk := engineTestEngineClock(t, baselineNegRule)
	baselineRunOn(t, first, rec1, clk, 0, 5*60, profileFeed(false))
	good := first.ExportProfiles()[0]
	now := clk.Now()

	old := good
	old.Room = "2"
	old.Profile = strings.Replace(good.Profile, `"last_seen":"2026-03-02T10:04:59`, `"last_seen":"2026-02-01T10:04:59`, 1)
	if old.Profile == good.Profile {
		t.Fatalf("test setup: last_seen not found in %s", good.Profile)
	}
	bad := func(room, profile string) store.RoomProfile {
		return store.RoomProfile{Rule: "surge", Source: "live", Room: room, Profile: profile}
	}
	rows := []store.RoomProfile{
		bad("a", "{"),
		bad("b", `{"v":99}`),
		bad("c", strings.Replace(good.Profile, `"slot_seconds":60`, `"slot_seconds":30`, 1)),
		bad("d", `{"v":1,"slot_seconds":60,"signals":[{"signal":0,"cur":[[5,2]]}]}`),
		bad("e", `{"v":1,"slot_seconds":60,"signals":[{"signal":0,"past":[[-1,2]]}]}`),
		bad("f", `{"v":1,"slot_seconds":60,"signals":[{"signal":-1}]}`),
		{Rule: "gone", Source: "live", Room: "1", Profile: good.Profile},
		old,
		good,
	}
	reg := prometheus.NewRegistry()
	e, err := NewEngine(engineTestConfig(t, baselineNegRule), &engineRecorder{}, EngineOptions{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.ImportProfiles(rows, now)
	if n != 1 {
		t.Errorf("%d rows used, want 1", n)
	}
	for _, room := range []string{`room "a"`, `room "b"`, `room "c"`, `room "d"`, `room "e"`, `room "f"`} {
		if err == nil || !strings.Contains(err.Error(), room) {
			t.Errorf("error %v does not name %s", err, room)
		}
	}
	if got := engineGather(t, reg, "lookout_alert_profiles_rejected_total", ""); got != 6 {
		t.Errorf("rejected counter %v, want 6", got)
	}
	if len(e.keyList) != 1 {
		t.Errorf("%d keys after the import, want 1 (the good row's)", len(e.keyList))
	}
}

// FuzzProfileDecode: whatever a row holds, reading it never panics, and a
// row that is accepted imports and exports again.
func FuzzProfileDecode(f *testing.F) {
	first, _, clk := engineTestEngineClock(f, baselineNegRule)
	for sec := 0; sec < 90; sec++ {
		at := engineTestStart.Add(time.Duration(sec) * time.Second)
		clk.Set(at)
		label := item.Neutral
		if sec%2 == 1 {
			label = item.Negative
		}
		it := chatItem("1", at, label, "看看")
		first.Observe(&it)
	}
	f.Add(first.ExportProfiles()[0].Profile)
	f.Add(`{"v":1,"slot_seconds":60,"last_seen":"2026-03-02T10:00:00Z","live":1,"signals":[{"signal":0,"start":"2026-03-02T10:00:00Z","cur":[[1,2]],"past":[[0,0],[3,3]]}]}`)
	f.Add(`{"v":1}`)
	f.Add(`{"v":1,"slot_seconds":60,"signals":[{"signal":7,"cur":[[1e308,1e309]]}]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, s string) {
		pj, err := profileDecode(s)
		if err != nil {
			return
		}
		e, _, _ := engineTestEngineClock(t, baselineNegRule)
		now := pj.LastSeen.Add(time.Minute)
		if _, err := e.ImportProfiles([]store.RoomProfile{{Rule: "surge", Source: "s", Room: "r", Profile: s}}, now); err != nil {
			t.Fatalf("accepted by profileDecode, refused by ImportProfiles: %v", err)
		}
		for _, row := range e.ExportProfiles() {
			if _, err := profileDecode(row.Profile); err != nil {
				t.Fatalf("re-export of %q does not decode: %v (%s)", s, err, row.Profile)
			}
		}
	})
}

// profileBenchEngine is an engine holding stage profiles for rooms rooms,
// each with a finished 30-minute stream and 5 minutes of the next.
func profileBenchEngine(b *testing.B, rooms int) (*Engine, time.Time) {
	e, _, clk := engineTestEngineClock(b, baselineNegRule)
	for r := range rooms {
		room := "r" + strconv.Itoa(r)
		for _, start := range []time.Duration{0, time.Hour} {
			mins := 30
			if start > 0 {
				mins = 5
			}
			for m := range mins {
				// One message a minute is enough to fill every minute.
				at := engineTestStart.Add(start + time.Duration(m)*time.Minute)
				clk.Set(at)
				it := chatItem(room, at, item.Neutral, "看看")
				e.Observe(&it)
			}
		}
	}
	return e, clk.Now()
}

// BenchmarkProfiles: what saving and loading room profiles costs the
// daemon with 1,000 rooms (one op = all rooms).
func BenchmarkProfiles(b *testing.B) {
	const rooms = 1000
	e, now := profileBenchEngine(b, rooms)
	rows := e.ExportProfiles()
	if len(rows) != rooms {
		b.Fatalf("%d rows", len(rows))
	}
	size := 0
	for _, r := range rows {
		size += len(r.Profile)
	}
	b.Run("export", func(b *testing.B) {
		for b.Loop() {
			e.ExportProfiles()
		}
		b.ReportMetric(float64(size)/rooms, "bytes/room")
	})
	b.Run("import", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			fresh, _, _ := engineTestEngineClock(b, baselineNegRule)
			b.StartTimer()
			if n, err := fresh.ImportProfiles(rows, now); err != nil || n != rooms {
				b.Fatalf("%d, %v", n, err)
			}
		}
	})
}

// profileRestartAt restarts the engine of a room's first stream at
// downAt (seconds), back at backAt: the new engine takes over the rows
// (edit may change them first) and runs until end.
func profileRestartAt(t *testing.T, rules string, downAt, backAt, end int, feed baselineFeed, edit func([]store.RoomProfile)) []baselineEvent {
	t.Helper()
	first, rec1, clk := engineTestEngineClock(t, rules)
	evs := baselineRunOn(t, first, rec1, clk, 0, downAt, feed)
	rows := profileThroughStore(t, first.ExportProfiles())
	if edit != nil {
		edit(rows)
	}
	e, rec, clk2 := engineTestEngineClock(t, rules)
	back := engineTestStart.Add(time.Duration(backAt) * time.Second)
	clk2.Set(back)
	var past []Event
	for _, ev := range evs {
		past = append(past, ev.ev)
	}
	e.Adopt(backtestOpenAlerts(past), back)
	if _, err := e.ImportProfiles(rows, back); err != nil {
		t.Fatal(err)
	}
	return append(evs, baselineRunOn(t, e, rec, clk2, backAt, end, feed)...)
}

const profileRateRules = `
  - name: chat-drop
    kind: metric_drop
    metric: chat_rate
    window: 1m
    baseline: 5m
    levels: { yellow: 0.3, red: 0.6 }
    for: 10s
  - name: viewers-drop
    kind: metric_drop
    metric: viewers
    window: 30s
    baseline: 5m
    levels: { yellow: 0.25, red: 0.4 }
    for: 10s
`

// The minutes the daemon was down are a gap, not silence: a steady room
// does not page for the chat it did not see, while a real drop after
// the restart still does. With the gap left out of the saved profile
// (read as silence), the same restart pages.
func TestProfileRestartGapIsNotSilence(t *testing.T) {
	const downAt, backAt, end = 10 * 60, 11 * 60, 20 * 60
	steady := func(sec int) (int, float64, int, int, float64) {
		v := 0.0
		if sec%5 == 0 {
			v = 1000
		}
		return 10, 0.1, 0, 0, v
	}
	if evs := profileRestartAt(t, profileRateRules, downAt, backAt, end, steady, nil); len(evs) != 0 {
		t.Fatalf("a steady room paged across a restart: %v", evs)
	}
	dropAt := 13 * 60
	dropping := func(sec int) (int, float64, int, int, float64) {
		n, share, q, s, v := steady(sec)
		if sec >= dropAt {
			n = 3
		}
		return n, share, q, s, v
	}
	evs := profileRestartAt(t, profileRateRules, downAt, backAt, end, dropping, nil)
	if red := baselineFirst(evs, Firing, Red); red < dropAt || red-dropAt > 90 {
		t.Fatalf("chat down 70%% two minutes after the restart: red at %ds, want within 90s of %ds; events:\n%v", red, dropAt, evs)
	}
	asSilence := func(rows []store.RoomProfile) {
		for i := range rows {
			var pj map[string]any
			if err := json.Unmarshal([]byte(rows[i].Profile), &pj); err != nil {
				t.Fatal(err)
			}
			delete(pj, "saved_at")
			b, _ := json.Marshal(pj)
			rows[i].Profile = string(b)
		}
	}
	if evs := profileRestartAt(t, profileRateRules, downAt, backAt, end, steady, asSilence); baselineFirst(evs, Firing, "") < 0 {
		t.Fatalf("with the downtime read as silence nothing fired: the test no longer shows what the gap does")
	}
}

// A restart in the middle of a room's first stream: the recent history
// comes back, so a crisis a minute after the restart is red as soon as
// without the restart, and a calm stream stays quiet. Without it the
// room has no normal until min_history after the restart.
func TestProfileRecentHistoryAcrossRestart(t *testing.T) {
	const downAt, backAt, crisisAt, end = 10 * 60, 11 * 60, 12 * 60, 20 * 60
	feed := func(crisis bool) baselineFeed {
		return func(sec int) (int, float64, int, int, float64) {
			if crisis && sec >= crisisAt {
				return 20, 0.45, 0, 0, 0
			}
			return 20, 0.15, 0, 0, 0
		}
	}
	if evs := profileRestartAt(t, baselineNegRule, downAt, backAt, end, feed(false), nil); len(evs) != 0 {
		t.Fatalf("a calm first stream paged across a restart: %v", evs)
	}
	ref := baselineFirst(baselineRun(t, baselineNegRule, end, feed(true)), Firing, Red)
	evs := profileRestartAt(t, baselineNegRule, downAt, backAt, end, feed(true), nil)
	red := baselineFirst(evs, Firing, Red)
	if ref < crisisAt || red != ref {
		t.Fatalf("red at %ds after the restart, %ds without one (crisis at %ds); events:\n%v", red, ref, crisisAt, evs)
	}
	forget := func(rows []store.RoomProfile) {
		for i := range rows {
			var pj profileJSON
			if err := json.Unmarshal([]byte(rows[i].Profile), &pj); err != nil {
				t.Fatal(err)
			}
			for j := range pj.Signals {
				pj.Signals[j].FirstSeen = time.Time{}
			}
			b, _ := json.Marshal(pj)
			rows[i].Profile = string(b)
		}
	}
	evs = profileRestartAt(t, baselineNegRule, downAt, backAt, end, feed(true), forget)
	if red := baselineFirst(evs, Firing, Red); red >= 0 && red < backAt+5*60 {
		t.Fatalf("red at %ds without the recent history: the test no longer shows what it adds", red)
	}
}
