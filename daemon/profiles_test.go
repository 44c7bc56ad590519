package daemon

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"lookout/alerts"
	"lookout/config"
	"lookout/internal/loopback"
	"lookout/store"
)

// profileRoom is the loopback live room of these tests.
const profileRoom = 7734300

// profileConfig is a daemon on one Bilibili room with a negative_ratio
// rule that judges a stream's first five minutes only against earlier
// streams (min_history 5m): without them it has no verdict there. %[1]q is
// left for the database path.
func profileConfig(live *loopback.BilibiliServer) string {
	return fmt.Sprintf(`
store: { path: %%[1]q, batch_size: 4096, flush_interval: 200ms }
http: { listen: "off" }
classifier: { terms: false }
sources:
  - id: live
    kind: bilibili_live
    room: %d
    api_base: %q
    nav_base: %q
    hosts: [%q]
rules:
  - name: negative-surge
    kind: negative_ratio
    window: 10s
    baseline: 5m
    min_history: 5m
    min_volume: 20
    floor: 0.12
    levels: { yellow: 0.05, red: 0.08 }
route: { receiver: console, group_wait: 0s }
receivers:
  - name: console
    console: {}
`, profileRoom, live.URL(), live.URL(), live.WSURL())
}

// profileStream opens a stream in the room (LIVE, after a PREPARING that
// ends whatever the room was doing) and sends n chat lines of text.
func profileStream(live *loopback.BilibiliServer, tag string, n int, text string) {
	start := time.Now().Truncate(time.Second)
	live.Push(loopback.BilibiliPreparing(profileRoom), loopback.BilibiliLive(profileRoom, start))
	profileChat(live, tag, n, text)
}

func profileChat(live *loopback.BilibiliServer, tag string, n int, text string) {
	var cmds [][]byte
	for i := range n {
		cmds = append(cmds, loopback.BilibiliDanmaku(int64(1000+i), "viewer", text, time.Now(), fmt.Sprintf("%s-%d", tag, i)))
	}
	live.Push(cmds...)
}

// The calm lines of a first stream and the complaint of the second: the
// classifier calls the first neutral and the second negative.
const (
	profileCalm   = "这件衣服有大码吗"
	profileAngry  = "假货，要求退款！"
	profileSurge  = `SELECT count(*) FROM alerts WHERE rule = 'negative-surge' AND state = 'firing'`
	profileScored = `SELECT count(*) FROM items WHERE room = ? AND kind = 'chat' AND sentiment IS NOT NULL`
)

// profileCounted reads the stored profile of negative-surge for the room:
// the messages its minutes count (this stream's and earlier streams'),
// and whether there is a row at all.
func profileCounted(t *testing.T, ro *sql.DB) (float64, bool) {
	t.Helper()
	var s string
	err := ro.QueryRow(`SELECT profile FROM room_profiles WHERE rule = 'negative-surge' AND source = 'live' AND room = ?`,
		fmt.Sprint(profileRoom)).Scan(&s)
	if err != nil {
		return 0, false
	}
	var p struct {
		Signals []struct{ Cur, Past [][2]float64 }
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatalf("stored profile %s: %v", s, err)
	}
	n := 0.0
	for _, sig := range p.Signals {
		for _, c := range append(sig.Cur, sig.Past...) {
			n += c[1]
		}
	}
	return n, true
}

// TestStageHistorySurvivesRestart: the daemon sees a room's first stream,
// is stopped, and starts again on the same database. In the second
// stream's first seconds a storm of complaints is judged against what the
// first stream looked like at its start, and fires; a daemon that never
// saw the first stream has no verdict there (min_history is 5 minutes).
func TestStageHistorySurvivesRestart(t *testing.T) {
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: profileRoom})
	defer live.Close()
	cfg := profileConfig(live)
	room := fmt.Sprint(profileRoom)
	connected := func(n int) {
		t.Helper()
		waitFor(t, "the daemon in the room", 10*time.Second, func() bool { return live.AuthCount() >= n && live.Connections() == 1 })
	}

	// The control first: a new database, the second stream alone.
	ro, d, stop := healthStart(t, filepath.Join(t.TempDir(), "fresh.db"), cfg, nil)
	connected(1)
	profileStream(live, "control", 30, profileAngry)
	waitFor(t, "the control's complaints stored", 10*time.Second, func() bool { return countRows(t, ro, profileScored, room) == 30 })
	evals := profileEvaluations(t, d)
	waitFor(t, "20 more evaluations", 10*time.Second, func() bool { return profileEvaluations(t, d) >= evals+20 })
	if n := countRows(t, ro, `SELECT count(*) FROM alerts`); n != 0 {
		t.Fatalf("%d alerts without an earlier stream; the rule was meant to have no verdict yet", n)
	}
	stop()

	dbPath := filepath.Join(t.TempDir(), "lookout.db")
	ro, stop = healthRunAt(t, dbPath, cfg, nil)
	connected(2)
	profileStream(live, "first", 30, profileCalm)
	waitFor(t, "the first stream stored", 10*time.Second, func() bool { return countRows(t, ro, profileScored, room) == 30 })
	live.Push(loopback.BilibiliPreparing(profileRoom))
	waitFor(t, "the end of the stream stored", 10*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM metrics WHERE name = 'live_status' AND value = 0`) == 2
	})
	stop()
	if n, ok := profileCounted(t, ro); !ok || n != 30 {
		t.Fatalf("after a clean stop the stored profile counts %v messages (row: %v), want the 30 of the first stream", n, ok)
	}

	// A second stream, a while later: the restored profile is its normal.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) // a new LIVE second
	ro, stop = healthRunAt(t, dbPath, cfg, nil)
	defer stop()
	connected(3)
	profileStream(live, "second", 30, profileAngry)
	waitFor(t, "negative-surge firing in the second stream's first seconds", 15*time.Second, func() bool {
		return countRows(t, ro, profileSurge) == 1
	})
	var summary string
	if err := ro.QueryRow(`SELECT summary FROM alerts WHERE rule = 'negative-surge'`).Scan(&summary); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(summary, "room's normal of 0%") {
		t.Errorf("summary %q: want the first stream's share (0%%) as the normal", summary)
	}
}

func profileEvaluations(t *testing.T, d *Daemon) float64 {
	t.Helper()
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "lookout_alert_evaluations_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("lookout_alert_evaluations_total not gathered")
	return 0
}

// profileKillEnvConfig names the config file of the helper process
// TestStageHistoryKill9 starts.
const profileKillEnvConfig = "LOOKOUT_PROFILE_KILL_CONFIG"

// TestStageHistoryKillChild is a whole daemon in a process of its own,
// saving room profiles every 100 ms; TestStageHistoryKill9 runs it.
func TestStageHistoryKillChild(t *testing.T) {
	path := os.Getenv(profileKillEnvConfig)
	if path == "" {
		t.Skip("helper process for TestStageHistoryKill9; runs only when started by it")
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	d, err := New(ctx, Options{Config: cfg, Log: log, Out: io.Discard, ProfileSaveEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestStageHistoryKill9: the daemon is killed with SIGKILL in the middle
// of a stream, at a random moment shortly after its profile was saved,
// while chat keeps coming. The stored profile never counts more messages
// than are stored (it is saved behind them), and the next run still
// judges a new stream against it from its first seconds.
func TestStageHistoryKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: profileRoom})
	defer live.Close()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lookout.db")
	cfgPath := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, profileConfig(live), dbPath), 0o600); err != nil {
		t.Fatal(err)
	}
	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	room := fmt.Sprint(profileRoom)
	var out bytes.Buffer
	start := func(run int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStageHistoryKillChild$", "-test.v")
		cmd.Env = append(os.Environ(), profileKillEnvConfig+"="+cfgPath)
		fmt.Fprintf(&out, "--- run %d\n", run)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the daemon in the room", 20*time.Second, func() bool { return live.AuthCount() >= run && live.Connections() == 1 })
		return cmd
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)

	cmd := start(1)
	profileStream(live, "first", 30, profileCalm)
	waitFor(t, "a saved profile counting the first 30 messages", 20*time.Second, func() bool {
		n, _ := profileCounted(t, ro)
		return n >= 30
	})
	// More chat, and the kill in the middle of it: the engine has counted
	// messages that the writer (flushing every 200 ms) has not stored yet.
	stopChat := make(chan struct{})
	chatDone := make(chan struct{})
	go func() {
		defer close(chatDone)
		for i := 0; ; i++ {
			select {
			case <-stopChat:
				return
			case <-time.After(20 * time.Millisecond):
			}
			profileChat(live, fmt.Sprintf("more%d", i), 5, profileCalm)
		}
	}()
	time.Sleep(time.Duration(200+rng.IntN(400)) * time.Millisecond)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	close(stopChat)
	<-chatDone

	counted, ok := profileCounted(t, ro)
	stored := countRows(t, ro, profileScored, room)
	t.Logf("after the kill: the profile counts %v messages, %d are stored", counted, stored)
	if !ok || counted < 30 {
		t.Fatalf("profile after the kill counts %v messages (row: %v), want at least the first 30; output:\n%s", counted, ok, out.String())
	}
	if counted > float64(stored) {
		t.Fatalf("the stored profile counts %v messages but only %d are stored; output:\n%s", counted, stored, out.String())
	}

	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) // a new LIVE second
	cmd = start(2)
	profileStream(live, "second", 30, profileAngry)
	deadline := time.Now().Add(15 * time.Second)
	for countRows(t, ro, profileSurge) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	fired := countRows(t, ro, profileSurge) == 1
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("last run: %v", err)
	}
	if !fired {
		t.Fatalf("negative-surge did not fire in the second stream after the kill; output:\n%s", out.String())
	}
}

// recentKillConfig is profileConfig with a recent-history baseline that
// needs 30 s of the stream (min_history), a chat_rate drop rule, a
// volume_spike rule whose baseline needs two 15 s windows and an anomaly
// rule on the room's volume per 2 s that warms up for 15 points (30 s, so
// it is warm before the kill and a restarted daemon without its saved
// detector could score nothing for 30 s): a
// daemon that has just started has no verdict on the room's share nor on
// its volume, and one that read its own downtime as silence would see
// chat drop.
func recentKillConfig(live *loopback.BilibiliServer) string {
	return fmt.Sprintf(`
store: { path: %%[1]q, batch_size: 4096, flush_interval: 200ms }
http: { listen: "off" }
classifier: { terms: false }
sources:
  - id: live
    kind: bilibili_live
    room: %d
    api_base: %q
    nav_base: %q
    hosts: [%q]
rules:
  - name: negative-surge
    kind: negative_ratio
    window: 5s
    baseline: 1m
    min_history: 30s
    min_volume: 20
    floor: 0.12
    levels: { yellow: 0.05, red: 0.08 }
  - name: chat-drop
    kind: metric_drop
    metric: chat_rate
    window: 5s
    for: 2s
    baseline: 1m
    levels: { yellow: 0.3, red: 0.6 }
  - name: spike
    kind: volume_spike
    window: 15s
    min_volume: 50
    levels: { yellow: 2, red: 3 }
  - name: volume-anomaly
    kind: anomaly
    window: 2s
    warm_up: 15
route: { receiver: console, group_wait: 0s }
receivers:
  - name: console
    console: {}
`, profileRoom, live.URL(), live.URL(), live.WSURL())
}

// pagedSince lists the stored alerts that began at or after since and
// fired (a pending alert that cleared before its for: paged no one), as
// "rule state (began …): summary".
func pagedSince(t *testing.T, dbPath string, since time.Time) []string {
	t.Helper()
	st, err := store.OpenReadOnly(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.ListAlerts(context.Background(), since)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range rows {
		if a.State == string(alerts.Firing) || a.State == string(alerts.Resolved) {
			got = append(got, fmt.Sprintf("%s %s (began %s): %s", a.Rule, a.State, store.FormatTime(a.StartedAt), a.Summary))
		}
	}
	return got
}

// recentCounted is what the stored negative-surge profile's recent
// history counts: the scored messages of its baseline buckets.
func recentCounted(t *testing.T, ro *sql.DB) (float64, bool) {
	t.Helper()
	var s string
	err := ro.QueryRow(`SELECT profile FROM room_profiles WHERE rule = 'negative-surge' AND source = 'live' AND room = ?`,
		fmt.Sprint(profileRoom)).Scan(&s)
	if err != nil {
		return 0, false
	}
	var p struct {
		Signals []struct {
			Base []struct {
				S float64 `json:"s"`
			}
		}
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatalf("stored profile %s: %v", s, err)
	}
	n := 0.0
	for _, sig := range p.Signals {
		for _, b := range sig.Base {
			n += b.S
		}
	}
	return n, true
}

// TestRecentHistoryKill9: the daemon is killed with SIGKILL in the middle
// of a room's first stream, 35 s in, while chat is arriving, and is back
// two seconds later. The stored recent history never counts a message
// that is not stored. After the restart the calm chat pages nothing (the
// seconds the daemon was down are a gap: chat-drop does not read them as
// chat stopping), and a storm of complaints fires negative-surge sooner
// than min_history after the restart: the room's normal came back with the
// profile (a first stream has no earlier streams to be judged against).
// Then chat floods at four times its rate: spike and volume-anomaly fire
// sooner than they could have learned the room's volume since the
// restart, on the volume history and the detector saved before the kill.
func TestRecentHistoryKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes and streams for 45 s")
	}
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: profileRoom})
	defer live.Close()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lookout.db")
	cfgPath := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, recentKillConfig(live), dbPath), 0o600); err != nil {
		t.Fatal(err)
	}
	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	room := fmt.Sprint(profileRoom)
	var out syncBuffer
	start := func(run int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStageHistoryKillChild$", "-test.v")
		cmd.Env = append(os.Environ(), profileKillEnvConfig+"="+cfgPath)
		fmt.Fprintf(&out, "--- run %d\n", run)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the daemon in the room", 20*time.Second, func() bool { return live.AuthCount() >= run && live.Connections() == 1 })
		return cmd
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	streams := uint64(0)
	// chat sends n lines of text every 100 ms on average until stop is
	// closed: from n/2 to 3n/2 at each tick, as a real room varies (a
	// room that says exactly as much every 2 s is one the anomaly rule
	// rightly calls flatlined). It paces by the clock, not by ticks: a
	// tick missed while the machine is busy is made up at the next, so
	// the room's rate stays what the rules learned and a slow test
	// machine does not look like an audience leaving.
	chatN := func(tag, text string, n int) (stop func()) {
		quit, done := make(chan struct{}), make(chan struct{})
		streams++
		lines := rand.New(rand.NewPCG(seed, streams))
		go func() {
			defer close(done)
			const every = 100 * time.Millisecond
			tick := time.NewTicker(every)
			defer tick.Stop()
			start := time.Now()
			for i := 0; ; {
				select {
				case <-quit:
					return
				case <-tick.C:
				}
				for due := int(time.Since(start) / every); i < due; i++ {
					profileChat(live, fmt.Sprintf("%s%d", tag, i), n/2+lines.IntN(n+1), text)
				}
			}
		}()
		return func() { close(quit); <-done }
	}
	chat := func(tag, text string) (stop func()) { return chatN(tag, text, 4) }

	cmd := start(1)
	profileStream(live, "open", 4, profileCalm)
	stopChat := chat("calm", profileCalm)
	time.Sleep(35*time.Second + time.Duration(rng.IntN(500))*time.Millisecond)
	killed := time.Now()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	stopChat()

	counted, ok := recentCounted(t, ro)
	stored := countRows(t, ro, profileScored, room)
	t.Logf("after the kill: the recent history counts %v messages, %d are stored", counted, stored)
	if !ok || counted < 100 {
		t.Fatalf("recent history after the kill counts %v messages (row: %v), want the stream's; output:\n%s", counted, ok, out.String())
	}
	if counted > float64(stored) {
		t.Fatalf("the stored recent history counts %v messages but only %d are stored; output:\n%s", counted, stored, out.String())
	}

	time.Sleep(2 * time.Second) // down
	began := time.Now()
	cmd = start(2)
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	stopChat = chat("after", profileCalm)
	time.Sleep(6 * time.Second)
	stopChat()
	// What pages after the restart: alerts that began after the kill and
	// fired. (An alert of the first run, begun before the kill, is that
	// run's verdict on its own chat; the restart only adopts and settles
	// it. A room's chat_rate over 5 s dips for a moment whenever the test
	// machine stalls the daemon, which is why chat-drop has for: 2s, as
	// the shipped viewers-drop has 10 s on a 30 s window; a restart that
	// read the seconds it was down as chat stopping would show the drop
	// for over 3 s.)
	if got := pagedSince(t, dbPath, killed); len(got) != 0 {
		t.Logf("killed at %s, restarted at %s", killed.UTC().Format(time.RFC3339Nano), began.UTC().Format(time.RFC3339Nano))
		t.Fatalf("calm chat after the restart paged: %v; output:\n%s", got, out.String())
	}
	stopChat = chat("storm", profileAngry)
	deadline := time.Now().Add(20 * time.Second)
	for countRows(t, ro, profileSurge) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stopChat()
	if countRows(t, ro, profileSurge) != 1 {
		t.Fatalf("negative-surge did not fire on the storm after the restart; output:\n%s", out.String())
	}
	if after := time.Since(began); after >= 30*time.Second {
		t.Fatalf("negative-surge fired %v after the restart, not before min_history: the recent history did not come back", after)
	}
	t.Logf("negative-surge fired %v after the restart", time.Since(began).Round(100*time.Millisecond))

	stopChat = chatN("flood", profileCalm, 16)
	defer stopChat()
	flood := time.Now()
	for _, c := range []struct {
		rule   string
		before time.Duration // after the restart; without the saved history no verdict before it
	}{{"spike", 30 * time.Second}, {"volume-anomaly", 30 * time.Second}} {
		q := `SELECT count(*) FROM alerts WHERE rule = '` + c.rule + `' AND state = 'firing'`
		for countRows(t, ro, q) == 0 && time.Since(began) < c.before {
			time.Sleep(20 * time.Millisecond)
		}
		if countRows(t, ro, q) == 0 {
			t.Fatalf("%s did not fire on the flood within %v of the restart (the flood began %v after it): the saved volume history did not come back; output:\n%s",
				c.rule, c.before, flood.Sub(began).Round(100*time.Millisecond), out.String())
		}
		t.Logf("%s fired %v into the flood, %v after the restart", c.rule, time.Since(flood).Round(100*time.Millisecond), time.Since(began).Round(100*time.Millisecond))
	}
}
