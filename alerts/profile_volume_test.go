package alerts

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lookout/config"
	"lookout/item"
	"lookout/store"
)

// A volume_spike rule and an anomaly rule over the room's volume, the
// history they keep across a restart.
const profileVolumeRules = `
  - name: spike
    kind: volume_spike
    window: 1m
    min_volume: 100
    levels: { yellow: 2, red: 3 }
    for: 10s
  - name: volume-anomaly
    kind: anomaly
    window: 10s
    for: 10s
`

// profileNoisyRoom chats 8 to 12 messages a second (a fixed
// pseudo-random pattern), ×4 from spikeAt (seconds; <0: never).
func profileNoisyRoom(spikeAt int) baselineFeed {
	return func(sec int) (int, float64, int, int, float64) {
		n := 8 + int((uint32(sec)*2654435761)>>16%5)
		if spikeAt >= 0 && sec >= spikeAt {
			n *= 4
		}
		return n, 0.1, 0, 0, 0
	}
}

// profileAsSilence removes saved_at from the rows: the downtime is read as
// silence, as before the profiles knew when they were taken.
func profileAsSilence(t *testing.T) func([]store.RoomProfile) {
	return func(rows []store.RoomProfile) {
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
}

// profileForget strips what the rows say about the rule's recent history
// and detector: the restart as before they were saved.
func profileForget(t *testing.T, rule string) func([]store.RoomProfile) {
	return func(rows []store.RoomProfile) {
		for i := range rows {
			if rows[i].Rule != rule {
				continue
			}
			var pj profileJSON
			if err := json.Unmarshal([]byte(rows[i].Profile), &pj); err != nil {
				t.Fatal(err)
			}
			pj.Signals = nil
			b, _ := json.Marshal(pj)
			rows[i].Profile = string(b)
		}
	}
}

func profileRuleEvents(evs []baselineEvent, rule string) []baselineEvent {
	var out []baselineEvent
	for _, e := range evs {
		if e.ev.Rule == rule {
			out = append(out, e)
		}
	}
	return out
}

// volume_spike and the anomaly detector keep their history across a
// restart in the middle of a room's first stream, with the two minutes
// the daemon was down a gap: a calm room pages nothing (read as silence,
// the same restart pages both rules), and a spike 30 s after the restart
// is judged at once against the saved history, where without it neither
// rule has a verdict for minutes.
func TestProfileVolumeAndAnomalyAcrossRestart(t *testing.T) {
	const downAt, backAt, spikeAt, end = 10 * 60, 12 * 60, 12*60 + 30, 20 * 60
	if evs := profileRestartAt(t, profileVolumeRules, downAt, backAt, end, profileNoisyRoom(-1), nil); len(evs) != 0 {
		t.Fatalf("a calm room paged across a restart: %v", evs)
	}
	silent := profileRestartAt(t, profileVolumeRules, downAt, backAt, end, profileNoisyRoom(-1), profileAsSilence(t))
	for _, rule := range []string{"spike", "volume-anomaly"} {
		if baselineFirst(profileRuleEvents(silent, rule), Firing, "") < 0 {
			t.Errorf("%s: with the downtime read as silence nothing fired: the test no longer shows what the gap does", rule)
		}
	}

	evs := profileRestartAt(t, profileVolumeRules, downAt, backAt, end, profileNoisyRoom(spikeAt), nil)
	forgot := profileRestartAt(t, profileVolumeRules, downAt, backAt, end, profileNoisyRoom(spikeAt),
		func(rows []store.RoomProfile) {
			profileForget(t, "spike")(rows)
			profileForget(t, "volume-anomaly")(rows)
		})
	for _, c := range []struct {
		rule   string
		sev    Severity
		within int // seconds after the spike with the saved history
		before int // without it, nothing before this second
	}{
		// A 1-minute window ×4 is 3× a minute into the spike, red after
		// for: 10s; without history the baseline needs two windows seen.
		{"spike", Red, 75, backAt + 110},
		// 10 s points: the first ×4 point is scored at once; without
		// history the detector warms up for 30 points (5 minutes).
		{"volume-anomaly", "", 40, backAt + 300},
	} {
		at := baselineFirst(profileRuleEvents(evs, c.rule), Firing, c.sev)
		if at < spikeAt || at-spikeAt > c.within {
			t.Errorf("%s: %s at %ds with the saved history, want within %ds of the spike at %ds; events:\n%v",
				c.rule, c.sev, at, c.within, spikeAt, profileRuleEvents(evs, c.rule))
		}
		noHist := baselineFirst(profileRuleEvents(forgot, c.rule), Firing, c.sev)
		if noHist >= 0 && noHist < c.before {
			t.Errorf("%s: %s at %ds without the saved history: the test no longer shows what it adds", c.rule, c.sev, noHist)
		}
		t.Logf("%s: %s %ds after the spike with the saved history, %ds without (-1: never before %ds)",
			c.rule, c.sev, at-spikeAt, noHist-spikeAt, end)
	}
}

// A detector taken over with no time between (a clean hand-over) scores
// every later point exactly as the one that kept running: everything it
// learned is in the profile, packed (format 4) or as JSON (a row of
// format 3). A row of format 2 still loads.
func TestProfileAnomalyDetectorRoundTrip(t *testing.T) {
	const handAt, end = 7 * 60, 12 * 60
	feed := profileNoisyRoom(10 * 60)
	kept, rec1, clk1 := engineTestEngineClock(t, profileVolumeRules)
	baselineRunOn(t, kept, rec1, clk1, 0, handAt, feed)
	rows := profileThroughStore(t, kept.ExportProfiles())
	if len(rows) != 3 || rows[2].Rule != profileDetectorRule("volume-anomaly") ||
		!strings.Contains(rows[2].Profile, `"anomaly_z":`) || strings.Contains(rows[2].Profile, `"anomaly":`) {
		t.Fatalf("the detector is not packed in a row of its own: %v", rows)
	}
	type taker struct {
		e   *Engine
		rec *engineRecorder
		clk *engineTestClock
	}
	var takers []taker
	for _, rs := range [][]store.RoomProfile{rows, profileAsFormat3(t, rows)} {
		took, rec2, clk2 := engineTestEngineClock(t, profileVolumeRules)
		clk2.Set(clk1.Now())
		if n, err := took.ImportProfiles(rs, clk1.Now()); err != nil || n != 2 {
			t.Fatalf("import: %d rows used, %v", n, err)
		}
		takers = append(takers, taker{took, rec2, clk2})
	}
	series := func(e *Engine) *signalSeries {
		return e.keyList[0].series[e.rules[1].signals[0].idx]
	}
	for sec := handAt; sec < end; sec += 10 {
		a := baselineRunOn(t, kept, rec1, clk1, sec, sec+10, feed)
		for i, tk := range takers {
			b := baselineRunOn(t, tk.e, tk.rec, tk.clk, sec, sec+10, feed)
			pa, pb := series(kept).point, series(tk.e).point
			if pa != pb || len(a) != len(b) {
				t.Fatalf("format %d, at %ds: point %+v after the hand-over, %+v without; events %v / %v", 4-i, sec, pb, pa, b, a)
			}
		}
	}
	for i, tk := range takers {
		if !series(tk.e).point.ready || series(tk.e).point.z < DefaultAnomalyRed {
			t.Fatalf("format %d: the spike was not scored: %+v", 4-i, series(tk.e).point)
		}
	}

	v2 := strings.Replace(rows[0].Profile, `"v":4`, `"v":2`, 1)
	if v2 == rows[0].Profile {
		t.Fatalf("test setup: no version in %s", rows[0].Profile)
	}
	e, _, _ := engineTestEngineClock(t, profileVolumeRules)
	if n, err := e.ImportProfiles([]store.RoomProfile{{Rule: rows[0].Rule, Source: rows[0].Source, Room: rows[0].Room, Profile: v2}}, clk1.Now()); err != nil || n != 1 {
		t.Fatalf("a format 2 row: %d used, %v", n, err)
	}
}

// BenchmarkProfilesAnomaly: what saving and loading a fully learned
// anomaly detector costs, per room: a gauge sampled every minute for a
// week (history, tail and seasonal slots all full). One op = all rooms.
func BenchmarkProfilesAnomaly(b *testing.B) {
	const rooms = 20
	const rules = `
  - name: viewers-anomaly
    kind: anomaly
    metric: viewers
    window: 1m
`
	e, _, clk := engineTestEngineClock(b, rules)
	for m := range 7 * 24 * 60 {
		at := engineTestStart.Add(time.Duration(m) * time.Minute)
		clk.Set(at)
		for r := range rooms {
			it := metricItem(strconv.Itoa(r), "viewers", at, 1000+100*math.Sin(float64(m)/229)+float64((m*7919+r)%37))
			e.Observe(&it)
		}
	}
	now := clk.Now()
	rows := e.ExportProfiles()
	if profileRuleRows(rows) != rooms {
		b.Fatalf("%d rows", len(rows))
	}
	size := 0
	for _, r := range rows {
		size += len(r.Profile)
	}
	b.Run("export", func(b *testing.B) {
		for b.Loop() {
			e.ExportAllProfiles() // every detector, as one save in ten does
		}
		b.ReportMetric(float64(size)/rooms, "bytes/room")
	})
	b.Run("import", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			fresh, _, _ := engineTestEngineClock(b, rules)
			b.StartTimer()
			if n, err := fresh.ImportProfiles(rows, now); err != nil || n != rooms {
				b.Fatalf("%d, %v", n, err)
			}
		}
	})
}

// profileAsFormat3 rewrites rows as format 3 wrote them: each detector as
// JSON in its rule's row rather than packed in a row of its own.
func profileAsFormat3(t *testing.T, rows []store.RoomProfile) []store.RoomProfile {
	t.Helper()
	dets := map[string]string{}
	var out []store.RoomProfile
	for _, r := range rows {
		if name, ok := strings.CutSuffix(r.Rule, profileDetectorSuffix); ok {
			var pj profileJSON
			if err := json.Unmarshal([]byte(r.Profile), &pj); err != nil {
				t.Fatal(err)
			}
			for _, ps := range pj.Signals {
				dets[fmt.Sprint(name, r.Source, r.Room, ps.Signal)] = ps.AnomalyZ
			}
			continue
		}
		out = append(out, r)
	}
	for i := range out {
		var pj profileJSON
		if err := json.Unmarshal([]byte(out[i].Profile), &pj); err != nil {
			t.Fatal(err)
		}
		pj.Version = 3
		for k := range pj.Signals {
			ps := &pj.Signals[k]
			z := dets[fmt.Sprint(out[i].Rule, out[i].Source, out[i].Room, ps.Signal)]
			if z == "" {
				continue
			}
			st, err := anomalyUnpack(z)
			if err != nil {
				t.Fatal(err)
			}
			ps.Anomaly = st
		}
		b, err := json.Marshal(&pj)
		if err != nil {
			t.Fatal(err)
		}
		out[i].Profile = string(b)
	}
	return out
}

// A packed detector that does not unpack (not base64, not deflate,
// truncated, a number that is not finite, too large unpacked) is named in
// the error and counted; that room's detector learns again, the other
// rooms' detectors are restored.
func TestProfileBadPackedDetector(t *testing.T) {
	const rules = `
  - name: volume-anomaly
    kind: anomaly
    window: 10s
`
	first, rec1, clk := engineTestEngineClock(t, rules)
	baselineRunOn(t, first, rec1, clk, 0, 7*60, profileNoisyRoom(-1))
	exp := first.ExportProfiles()
	if len(exp) != 2 {
		t.Fatalf("test setup: %d rows", len(exp))
	}
	main, good := exp[0], exp[1]
	var pj profileJSON
	if err := json.Unmarshal([]byte(good.Profile), &pj); err != nil || len(pj.Signals) != 1 || pj.Signals[0].AnomalyZ == "" {
		t.Fatalf("test setup: no packed detector in %.200s (%v)", good.Profile, err)
	}
	z := pj.Signals[0].AnomalyZ
	zraw, err := base64.StdEncoding.DecodeString(z)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(zraw)))
	if err != nil {
		t.Fatal(err)
	}
	deflate := func(b []byte) string {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestSpeed)
		w.Write(b)
		w.Close()
		return base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	if deflate(raw) == "" {
		t.Fatal("test setup: deflate")
	}
	nan := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint64(nan[len(nan)-8:], math.Float64bits(math.NaN()))
	bad := map[string]string{
		"not-base64":  "%%%",
		"not-deflate": base64.StdEncoding.EncodeToString([]byte("not deflate at all")),
		"truncated":   deflate(raw[:len(raw)-5]),
		"left-over":   deflate(append(append([]byte(nil), raw...), 1, 2, 3, 4, 5, 6, 7, 8)),
		"nan":         deflate(nan),
		"huge":        deflate(make([]byte, anomalyPackMax+1)),
	}
	rows := []store.RoomProfile{main, good}
	for room, s := range bad {
		if s == z {
			t.Fatalf("test setup: %s is the good detector", room)
		}
		m := main
		m.Room = room
		rows = append(rows, m, store.RoomProfile{Rule: good.Rule, Source: good.Source, Room: room,
			Profile: strings.Replace(good.Profile, z, s, 1)})
	}
	reg := prometheus.NewRegistry()
	e, err := NewEngine(engineTestConfig(t, rules), &engineRecorder{}, EngineOptions{Registerer: reg, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.ImportProfiles(rows, clk.Now())
	for room := range bad {
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("room %q: anomaly detector", room)) {
			t.Errorf("error %v does not name room %s", err, room)
		}
	}
	if got := engineGather(t, reg, "lookout_alert_profiles_rejected_total", ""); got != float64(len(bad)) {
		t.Errorf("rejected counter %v, want %d", got, len(bad))
	}
	for _, ent := range e.keyList {
		learned := ent.series[e.rules[0].signals[0].idx].det.n
		if want := ent.key.room == good.Room; (learned > 0) != want {
			t.Errorf("room %s: detector holds %d points after the import; restored: %v, want %v", ent.key.room, learned, learned > 0, want)
		}
	}
}

// On every series of the shared NAB subset, a detector saved halfway
// (profile format 4, through the store) and restored in a new engine
// scores every point of the second half exactly as the detector that kept
// running: the packed state loses nothing (tolerance 0).
func TestProfileNABRoundTrip(t *testing.T) {
	files := nabLoadCorpus(t, nabDataDir(t))
	packed, asJSON := 0, 0
	for _, f := range files {
		step := backtestStep(f.rows)
		rule := DefaultAnomalyRule("value", step)
		cfg := &config.Config{Rules: []config.RuleConfig{rule}, File: "nab"}
		var now time.Time
		clock := func() time.Time { return now }
		newEngine := func() *Engine {
			e, err := NewEngine(cfg, &engineRecorder{}, EngineOptions{Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		score := func(e *Engine, i int) (float64, bool) {
			now = f.rows[i].ts
			it := item.Item{Source: "nab", Platform: "nab", Kind: item.KindMetric, Metric: "value", TS: now, Value: f.rows[i].value}
			e.Observe(&it)
			if err := e.Evaluate(context.Background(), now); err != nil {
				t.Fatal(err)
			}
			s := e.keys[engineKey{source: "nab"}].series[e.rules[0].signals[0].idx]
			return s.point.score, s.point.ready && s.point.ts.Equal(now)
		}
		kept, took := newEngine(), newEngine()
		half := len(f.rows) / 2
		for i := 0; i < half; i++ {
			if !f.rows[i].skip {
				score(kept, i)
			}
		}
		rows := profileThroughStore(t, kept.ExportProfiles())
		if len(rows) != 2 {
			t.Fatalf("%s: %d rows", f.name, len(rows))
		}
		packed += len(rows[0].Profile) + len(rows[1].Profile)
		asJSON += len(profileAsFormat3(t, rows)[0].Profile)
		if n, err := took.ImportProfiles(rows, now); err != nil || n != 1 {
			t.Fatalf("%s: import: %d rows used, %v", f.name, n, err)
		}
		scored := 0
		for i := half; i < len(f.rows); i++ {
			if f.rows[i].skip {
				continue
			}
			a, okA := score(kept, i)
			b, okB := score(took, i)
			if a != b || okA != okB {
				t.Fatalf("%s row %d: %v (scored %v) after the hand-over, %v (scored %v) without", f.name, i, b, okB, a, okA)
			}
			if okA {
				scored++
			}
		}
		if scored < (len(f.rows)-half)/2 {
			t.Errorf("%s: only %d of the second half's %d points scored", f.name, scored, len(f.rows)-half)
		}
	}
	t.Logf("%d series: profiles at the hand-over %d bytes packed (format 4), %d as JSON (format 3)", len(files), packed, asJSON)
}

// A kill -9 just before the detectors' next save: the rules' rows are a
// minute old, the detectors' row nearly DetectorSaveEvery (10 minutes)
// old. Restored, the detector counts everything since its own save as
// unseen: a calm room pages nothing, and a spike 30 s after the restart
// is still judged against what it had learned, with no warm-up. With the
// detector's age ignored (its row dated like the rules' rows), the calm
// room pages: the nine minutes it missed are fed to it as silence.
func TestProfileStaleDetectorAcrossRestart(t *testing.T) {
	const firstSave, killAt, backAt, end = 6 * 60, 15*60 + 30, 16*60 + 30, 22 * 60
	run := func(spikeAt int, dateDetectorsLikeRules bool) []baselineEvent {
		feed := profileNoisyRoom(spikeAt)
		first, rec1, clk1 := engineTestEngineClock(t, profileVolumeRules)
		evs := baselineRunOn(t, first, rec1, clk1, 0, firstSave, feed)
		// The store as the daemon's minutely saves leave it.
		stored := map[string]store.RoomProfile{}
		detSaves := 0
		for sec := firstSave; sec < killAt; sec += 60 {
			for _, r := range first.ExportProfiles() {
				if strings.HasSuffix(r.Rule, profileDetectorSuffix) {
					detSaves++
				}
				stored[r.Rule] = r
			}
			evs = append(evs, baselineRunOn(t, first, rec1, clk1, sec, min(sec+60, killAt), feed)...)
		}
		if detSaves != 1 {
			t.Fatalf("the detectors were saved %d times in %d minutes, want once", detSaves, (killAt-firstSave)/60)
		}
		var rows []store.RoomProfile
		for _, r := range stored {
			rows = append(rows, r)
		}
		if dateDetectorsLikeRules {
			var main profileJSON
			if err := json.Unmarshal([]byte(stored["volume-anomaly"].Profile), &main); err != nil {
				t.Fatal(err)
			}
			for i := range rows {
				if strings.HasSuffix(rows[i].Rule, profileDetectorSuffix) {
					var pj profileJSON
					if err := json.Unmarshal([]byte(rows[i].Profile), &pj); err != nil {
						t.Fatal(err)
					}
					pj.SavedAt = main.SavedAt
					b, _ := json.Marshal(&pj)
					rows[i].Profile = string(b)
				}
			}
		}
		rows = profileThroughStore(t, rows)
		e, rec, clk := engineTestEngineClock(t, profileVolumeRules)
		back := engineTestStart.Add(backAt * time.Second)
		clk.Set(back)
		var past []Event
		for _, ev := range evs {
			past = append(past, ev.ev)
		}
		e.Adopt(backtestOpenAlerts(past), back)
		if n, err := e.ImportProfiles(rows, back); err != nil || n != 2 {
			t.Fatalf("import: %d rows used, %v", n, err)
		}
		if d := e.keyList[0].series[e.rules[1].signals[0].idx].det; d.n < 30 {
			t.Fatalf("the restored detector holds %d points", d.n)
		}
		return append(evs, baselineRunOn(t, e, rec, clk, backAt, end, feed)...)
	}
	if evs := run(-1, false); len(evs) != 0 {
		t.Fatalf("a calm room paged across a restart with a 9.5-minute-old detector: %v", evs)
	}
	if evs := profileRuleEvents(run(-1, true), "volume-anomaly"); baselineFirst(evs, Firing, "") < 0 {
		t.Errorf("with the detector's age ignored nothing fired: the test no longer shows what its own saved_at does")
	}
	const spikeAt = backAt + 30
	evs := profileRuleEvents(run(spikeAt, false), "volume-anomaly")
	at := baselineFirst(evs, Firing, "")
	if at < spikeAt || at-spikeAt > 40 {
		t.Errorf("volume-anomaly fired at %ds, want within 40 s of the spike at %ds; events:\n%v", at, spikeAt, evs)
	}
	t.Logf("volume-anomaly fired %d s after a spike 30 s after the restart, its detector 9.5 minutes old", at-spikeAt)
}
