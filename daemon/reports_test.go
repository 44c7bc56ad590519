package daemon

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"lookout/config"
	"lookout/internal/loopback"
	"lookout/item"
	"lookout/store"
)

// reviewConfig is a daemon with one loopback Bilibili room whose
// receiver is a loopback DingTalk robot; extra is appended (reports:).
func reviewConfig(dbPath string, live *loopback.BilibiliServer, extra string) string {
	return fmt.Sprintf(`
store: { path: %q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
ui: { public_url: "https://lookout.example.com/" }
sources:
  - id: live
    kind: bilibili_live
    room: %d
    api_base: %q
    nav_base: %q
    hosts: [%q]
    labels: { brand: ours }
route: { receiver: ding, group_wait: 0s }
receivers:
  - name: ding
    dingtalk: { webhook_url: "${REVIEW_DINGTALK_URL}" }
%s`, dbPath, e2eRoom, live.URL(), live.URL(), live.WSURL(), extra)
}

// reviewStream plays one stream in the room: LIVE, n chat lines, PREPARING.
func reviewStream(live *loopback.BilibiliServer, start time.Time, tag string, n int) {
	cmds := [][]byte{loopback.BilibiliLive(e2eRoom, start)}
	for i := range n {
		text := "主播讲得很好，喜欢"
		if i%3 == 0 {
			text = "太贵了，不想买"
		}
		cmds = append(cmds, loopback.BilibiliDanmaku(int64(100+i), fmt.Sprintf("viewer%d", i), text, time.Now(), fmt.Sprintf("%s-%d", tag, i)))
	}
	live.Push(cmds...)
	time.Sleep(200 * time.Millisecond) // the end comes after the chat, as on the platform
	live.Push(loopback.BilibiliPreparing(e2eRoom))
}

// reviewMessages are the DingTalk messages that are stream reviews.
func reviewMessages(ding *loopback.DingTalkServer) []string {
	var out []string
	for _, m := range ding.Messages() {
		if strings.Contains(string(m.Body), "直播复盘") {
			out = append(out, string(m.Body))
		}
	}
	return out
}

// TestStreamEndReviewSurvivesKill9: a loopback Bilibili room streams and
// goes PREPARING. The daemon generates the review and queues it while the
// DingTalk robot is down, and is killed with SIGKILL before it can deliver.
// The next run delivers that review exactly once: one message at the
// robot, one stored report, its outbox row sent, no second review.
func TestStreamEndReviewSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: e2eRoom})
	defer live.Close()
	ding := loopback.NewDingTalkServer("review-token", "")
	defer ding.Close()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lookout.db")
	cfgPath := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfgPath, []byte(reviewConfig(dbPath, live, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	start := func() *exec.Cmd {
		return startKillChild(t, cfgPath, &out, "REVIEW_DINGTALK_URL="+ding.WebhookURL())
	}
	ding.FailFor(loopback.SinkFault{Status: 503}, time.Hour)
	first := start()
	waitFor(t, "the daemon in the room", 15*time.Second, func() bool { return live.AuthCount() >= 1 && live.Connections() == 1 })
	streamStart := time.Now().Add(-time.Minute).Truncate(time.Second)
	reviewStream(live, streamStart, "s1", 12)

	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	// Generated and queued, and the robot refused it at least once.
	waitFor(t, "the review queued and tried", 20*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM reports r JOIN outbox o ON o.event_id = r.id
			WHERE r.kind = 'review' AND o.attempts >= 1`) == 1
	})
	_ = first.Process.Kill()
	_ = first.Wait()
	if n := len(reviewMessages(ding)); n != 0 {
		t.Fatalf("%d reviews delivered while the robot was down", n)
	}

	ding.Heal()
	second := start()
	waitFor(t, "the review delivered after the restart", 30*time.Second, func() bool { return len(reviewMessages(ding)) >= 1 })
	// Let the second run's scans go round (start, periodic) before
	// counting: none may queue the review again.
	waitFor(t, "the second run in the room", 15*time.Second, func() bool { return live.AuthCount() >= 2 && live.Connections() == 1 })
	time.Sleep(2 * time.Second)
	_ = second.Process.Signal(syscall.SIGTERM)
	if err := second.Wait(); err != nil {
		t.Errorf("second run: %v\n%s", err, out.String())
	}

	msgs := reviewMessages(ding)
	if len(msgs) != 1 {
		t.Fatalf("%d review messages at the robot, want 1:\n%s", len(msgs), strings.Join(msgs, "\n"))
	}
	var id, from, title, url string
	if err := ro.QueryRow(`SELECT id, from_ts, title, url FROM reports`).Scan(&id, &from, &title, &url); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM reports`); n != 1 {
		t.Errorf("%d reports stored, want 1", n)
	}
	wantID := fmt.Sprintf("review:live/%d@%s", e2eRoom, streamStart.UTC().Format("2006-01-02T15:04:05.000Z"))
	if id != wantID {
		t.Errorf("review id %q, want %q (room + stream start from LIVE's live_time)", id, wantID)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM outbox WHERE event_id = ? AND state = 'sent'`, id); n != 1 {
		t.Errorf("%d sent outbox rows for the review, want 1", n)
	}
	if !strings.HasPrefix(url, "https://lookout.example.com/report?") || !strings.Contains(url, fmt.Sprintf("room=%d", e2eRoom)) {
		t.Errorf("review links to %q, want the public dashboard's report of the room", url)
	}
	body := msgs[0]
	// The message carries the stream's figures: its 12 chat lines, the
	// link, and the complaint it heard.
	for _, want := range []string{`| messages | 12 |`, "lookout.example.com/report", "太贵了", "直播复盘 Live review · live · 7734200"} {
		if !strings.Contains(body, want) {
			t.Errorf("review message lacks %q:\n%s", want, body)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("review message: %s\ndaemon output:\n%s", body, out.String())
	}
}

// offsetClock is the real clock moved by off: a schedule's time comes
// within seconds.
type offsetClock struct{ off time.Duration }

func (c offsetClock) Now() time.Time                         { return time.Now().Add(c.off) }
func (c offsetClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func digestMessages(ding *loopback.DingTalkServer) []string {
	var out []string
	for _, m := range ding.Messages() {
		if strings.Contains(string(m.Body), "Daily digest") {
			out = append(out, string(m.Body))
		}
	}
	return out
}

// TestDigestMissedWhileDownSentOnce: the daily digest last went out three
// days ago; the daemon starts after three missed times and sends the
// latest one, once, with the day's chat in it; a restart sends nothing
// more.
func TestDigestMissedWhileDownSentOnce(t *testing.T) {
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: e2eRoom})
	defer live.Close()
	ding := loopback.NewDingTalkServer("digest-token", "")
	defer ding.Close()
	t.Setenv("REVIEW_DINGTALK_URL", ding.WebhookURL())
	dbPath := filepath.Join(t.TempDir(), "lookout.db")

	cst, err := config.LoadTimezone("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(cst)
	latest := time.Date(now.Year(), now.Month(), now.Day(), 9, 0, 0, 0, cst)
	if latest.After(now) {
		latest = latest.AddDate(0, 0, -1)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	old := latest.AddDate(0, 0, -3)
	if _, err := st.QueueReport(ctx, store.ReportRecord{ID: "digest:daily@" + store.FormatTime(old), Kind: store.ReportDigest,
		Schedule: "daily", From: old.Add(-24 * time.Hour), To: old, Title: "old", Markdown: "old"}, nil, old); err != nil {
		t.Fatal(err)
	}
	var chat []item.Item
	for i := range 7 {
		chat = append(chat, item.Item{Source: "live", Platform: "bilibili", Room: fmt.Sprint(e2eRoom), Kind: item.KindChat,
			ID: fmt.Sprintf("d%d", i), TS: latest.Add(-2 * time.Hour), Text: "不错"})
	}
	if _, err := st.WriteItems(ctx, chat); err != nil {
		t.Fatal(err)
	}
	st.Close()

	cfg := strings.Replace(reviewConfig("%[1]s", live, `reports:
  daily: { cron: "0 9 * * *", receivers: [ding] }
`), `"%[1]s"`, "%[1]q", 1)
	for run := 1; run <= 2; run++ {
		ro, stop := healthRunAt(t, dbPath, cfg, nil)
		if run == 1 {
			waitFor(t, "the missed digest", 20*time.Second, func() bool { return len(digestMessages(ding)) >= 1 })
		}
		waitFor(t, "the daemon in the room", 15*time.Second, func() bool { return live.AuthCount() >= run })
		time.Sleep(time.Second)
		stop()
		if n := countRows(t, ro, `SELECT count(*) FROM reports WHERE kind = 'digest'`); n != 2 {
			t.Errorf("run %d: %d digests stored, want the old one and the latest", run, n)
		}
		if n := countRows(t, ro, `SELECT count(*) FROM reports WHERE id = ?`, "digest:daily@"+store.FormatTime(latest)); n != 1 {
			t.Errorf("run %d: no digest for the latest time %s", run, latest)
		}
	}
	msgs := digestMessages(ding)
	if len(msgs) != 1 {
		t.Fatalf("%d digests sent, want 1 for three missed days:\n%s", len(msgs), strings.Join(msgs, "\n"))
	}
	if !strings.Contains(msgs[0], fmt.Sprintf("| live · %d | 7 |", e2eRoom)) {
		t.Errorf("the digest lacks the room's 7 messages:\n%s", msgs[0])
	}
}

// TestDigestScheduleReload: the daemon starts with a daily digest far
// off; a reload moves it to a time seconds away, and the digest goes out
// then, once.
func TestDigestScheduleReload(t *testing.T) {
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: e2eRoom})
	defer live.Close()
	ding := loopback.NewDingTalkServer("digest-token", "")
	defer ding.Close()
	t.Setenv("REVIEW_DINGTALK_URL", ding.WebhookURL())
	cst, _ := config.LoadTimezone("Asia/Shanghai")
	realNow := time.Now()
	slot := realNow.Truncate(time.Minute).Add(2 * time.Minute).In(cst)
	clock := offsetClock{off: slot.Sub(realNow) - 6*time.Second} // the daemon's now: 6 s before slot
	at := func(t time.Time) string { return fmt.Sprintf("%d %d * * *", t.Minute(), t.Hour()) }
	cfgAt := func(when time.Time) string {
		return strings.Replace(reviewConfig("%[1]s", live, fmt.Sprintf(`reports:
  daily: { cron: %q, receivers: [ding] }
`, at(when))), `"%[1]s"`, "%[1]q", 1)
	}
	dbPath := filepath.Join(t.TempDir(), "lookout.db")
	ro, d, stop := healthStart(t, dbPath, cfgAt(slot.Add(30*time.Minute)), clock)
	defer stop()
	waitFor(t, "the daemon in the room", 5*time.Second, func() bool { return live.AuthCount() >= 1 })
	next, err := config.Parse(fmt.Appendf(nil, cfgAt(slot), dbPath), "reload.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := d.Reload(context.Background(), next)
	if err != nil || !rep.Reports {
		t.Fatalf("reload = %+v, %v; want the reports changed", rep, err)
	}
	if n := len(digestMessages(ding)); n != 0 {
		t.Fatalf("%d digests before the new time", n)
	}
	waitFor(t, "the digest at the new time", 20*time.Second, func() bool { return len(digestMessages(ding)) >= 1 })
	time.Sleep(time.Second)
	stop()
	if n := len(digestMessages(ding)); n != 1 {
		t.Errorf("%d digests, want 1", n)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM reports WHERE id = ?`, "digest:daily@"+store.FormatTime(slot)); n != 1 {
		t.Errorf("no digest stored for %s", slot)
	}
}

// TestStreamEndReviewAtStart: the stream ends while reviews are off, and
// the daemon is killed with SIGKILL. The next run, with reviews on, finds
// the stored end without a review and posts it once; a third run posts
// nothing more.
func TestStreamEndReviewAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: e2eRoom})
	defer live.Close()
	ding := loopback.NewDingTalkServer("review-token", "")
	defer ding.Close()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lookout.db")
	cfgPath := filepath.Join(dir, "lookout.yaml")
	var out bytes.Buffer
	run := func(extra string) *exec.Cmd {
		if err := os.WriteFile(cfgPath, []byte(reviewConfig(dbPath, live, extra)), 0o600); err != nil {
			t.Fatal(err)
		}
		return startKillChild(t, cfgPath, &out, "REVIEW_DINGTALK_URL="+ding.WebhookURL())
	}
	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()

	first := run("reports: { review: { enabled: false } }\n")
	waitFor(t, "the daemon in the room", 15*time.Second, func() bool { return live.AuthCount() >= 1 && live.Connections() == 1 })
	reviewStream(live, time.Now().Add(-10*time.Minute).Truncate(time.Second), "a", 9)
	waitFor(t, "the stream's end stored", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM metrics WHERE name = 'live_status' AND value = 0`) == 1
	})
	time.Sleep(500 * time.Millisecond) // a review, if one were made, would be queued by now
	_ = first.Process.Kill()
	_ = first.Wait()
	if n := countRows(t, ro, `SELECT count(*) FROM reports`); n != 0 {
		t.Fatalf("%d reviews with reviews off", n)
	}

	for i, wantAuth := range []int{2, 3} {
		cmd := run("")
		waitFor(t, "the daemon in the room", 15*time.Second, func() bool { return live.AuthCount() >= wantAuth && live.Connections() == 1 })
		if i == 0 {
			waitFor(t, "the review posted at start", 20*time.Second, func() bool { return len(reviewMessages(ding)) >= 1 })
		}
		time.Sleep(time.Second)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("run %d: %v", i+2, err)
		}
	}
	if msgs := reviewMessages(ding); len(msgs) != 1 || !strings.Contains(msgs[0], "| messages | 9 |") {
		t.Errorf("%d review messages, want 1 with the stream's 9 messages:\n%s\n%s", len(msgs), strings.Join(msgs, "\n"), out.String())
	}
}

// TestStreamReviewRoutesLikeTheRoomsAlerts: the review goes where the
// routing tree sends the room's alerts, chosen by the room's labels (a
// source label here), and nowhere else.
func TestStreamReviewRoutesLikeTheRoomsAlerts(t *testing.T) {
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: e2eRoom})
	defer live.Close()
	other := loopback.NewDingTalkServer("other-token", "")
	defer other.Close()
	beauty := loopback.NewDingTalkServer("beauty-token", "")
	defer beauty.Close()
	t.Setenv("REVIEW_OTHER_URL", other.WebhookURL())
	t.Setenv("REVIEW_BEAUTY_URL", beauty.WebhookURL())
	cfg := fmt.Sprintf(`
store: { path: %%[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
sources:
  - id: live
    kind: bilibili_live
    room: %d
    api_base: %q
    nav_base: %q
    hosts: [%q]
    labels: { team: beauty }
route:
  receiver: other
  group_wait: 0s
  routes:
    - match: { team: beauty }
      receiver: beauty
receivers:
  - name: other
    dingtalk: { webhook_url: "${REVIEW_OTHER_URL}" }
  - name: beauty
    dingtalk: { webhook_url: "${REVIEW_BEAUTY_URL}" }
`, e2eRoom, live.URL(), live.URL(), live.WSURL())
	ro, stop := healthRun(t, cfg, nil)
	defer stop()
	waitFor(t, "the daemon in the room", 15*time.Second, func() bool { return live.Connections() == 1 })
	reviewStream(live, time.Now().Add(-5*time.Minute).Truncate(time.Second), "b", 4)
	waitFor(t, "the review at the beauty team's robot", 15*time.Second, func() bool { return len(reviewMessages(beauty)) == 1 })
	stop()
	if n := len(reviewMessages(other)); n != 0 {
		t.Errorf("%d reviews at the other team's robot", n)
	}
	var receivers string
	if err := ro.QueryRow(`SELECT receivers FROM reports`).Scan(&receivers); err != nil || receivers != `["beauty"]` {
		t.Errorf("stored receivers %s, %v", receivers, err)
	}
}

// TestDouyinEndOfBroadcastReview: a loopback Douyin room's end of
// broadcast (WebcastControlMessage status 3) makes one review of the show.
func TestDouyinEndOfBroadcastReview(t *testing.T) {
	srv := loopback.NewDouyinServer("646454279999", 7300000000000000009, []byte("review-key"))
	defer srv.Close()
	ding := loopback.NewDingTalkServer("review-token", "")
	defer ding.Close()
	t.Setenv("REVIEW_DINGTALK_URL", ding.WebhookURL())
	t.Setenv("REVIEW_DOUYIN_KEY", "review-key")
	cfg := fmt.Sprintf(`
store: { path: %%[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
sources:
  - { id: dy, kind: douyin_live, room: "646454279999", ws_base: %q, page_base: %q, loopback_sign_key: "${REVIEW_DOUYIN_KEY}" }
route: { receiver: ding, group_wait: 0s }
receivers:
  - name: ding
    dingtalk: { webhook_url: "${REVIEW_DINGTALK_URL}" }
`, srv.WSBase, srv.PageBase)
	ro, stop := healthRun(t, cfg, nil)
	defer stop()
	waitFor(t, "the daemon in the room", 15*time.Second, func() bool { return srv.Open() == 1 })
	for i := range 5 {
		srv.Push(false, loopback.DouyinChat(uint64(1000+i), uint64(i), "观众", "这个链接什么时候上"))
	}
	waitFor(t, "the chat stored", 15*time.Second, func() bool { return countRows(t, ro, `SELECT count(*) FROM items WHERE kind = 'chat'`) == 5 })
	srv.End()
	waitFor(t, "the review of the show", 15*time.Second, func() bool { return len(reviewMessages(ding)) == 1 })
	time.Sleep(500 * time.Millisecond)
	stop()
	msgs := reviewMessages(ding)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "| messages | 5 |") || !strings.Contains(msgs[0], "(douyin)") {
		t.Errorf("%d reviews, want 1 of the 5-message Douyin show:\n%s", len(msgs), strings.Join(msgs, "\n"))
	}
}

// TestEmptyStreamNoReview: a stream that went live and ended without a
// single message gets no review; the next one, with chat, gets its own.
func TestEmptyStreamNoReview(t *testing.T) {
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: e2eRoom})
	defer live.Close()
	ding := loopback.NewDingTalkServer("review-token", "")
	defer ding.Close()
	t.Setenv("REVIEW_DINGTALK_URL", ding.WebhookURL())
	cfg := strings.Replace(reviewConfig("%[1]s", live, ""), `"%[1]s"`, "%[1]q", 1)
	ro, stop := healthRun(t, cfg, nil)
	defer stop()
	waitFor(t, "the daemon in the room", 15*time.Second, func() bool { return live.Connections() == 1 })
	reviewStream(live, time.Now().Add(-10*time.Minute).Truncate(time.Second), "empty", 0)
	waitFor(t, "the first end stored", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM metrics WHERE name = 'live_status' AND value = 0`) == 1
	})
	time.Sleep(200 * time.Millisecond) // make the two ends' times differ
	reviewStream(live, time.Now().Add(-time.Minute).Truncate(time.Second), "chat", 3)
	waitFor(t, "the second stream's review", 15*time.Second, func() bool { return len(reviewMessages(ding)) >= 1 })
	time.Sleep(time.Second)
	stop()
	if msgs := reviewMessages(ding); len(msgs) != 1 || !strings.Contains(msgs[0], "| messages | 3 |") {
		t.Errorf("%d reviews, want only the second stream's (3 messages):\n%s", len(msgs), strings.Join(msgs, "\n"))
	}
	if n := countRows(t, ro, `SELECT count(*) FROM reports`); n != 1 {
		t.Errorf("%d reports stored, want 1", n)
	}
}
