package daemon

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"lookout/internal/loopback"
	"lookout/store"
)

// twitchReviewConfig is a daemon with one Twitch channel read over the
// loopback chat server irc, the Helix poller on the loopback API helix
// (credentials in REVIEW_TWITCH_ID / _SECRET) and a loopback DingTalk
// robot (REVIEW_DINGTALK_URL) as the receiver; dbPath is the store's path
// as YAML.
func twitchReviewConfig(dbPath string, irc *loopback.TwitchServer, helix *loopback.HelixServer) string {
	return fmt.Sprintf(`
store: { path: %s, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
sources:
  - id: tw
    kind: twitch
    url: %q
    channels: [shopchannel]
    labels: { brand: ours }
    helix:
      client_id: ${REVIEW_TWITCH_ID}
      client_secret: ${REVIEW_TWITCH_SECRET}
      every: 1s
      api_base: %q
      token_url: %q
route: { receiver: ding, group_wait: 0s }
receivers:
  - name: ding
    dingtalk: { webhook_url: "${REVIEW_DINGTALK_URL}" }
`, dbPath, irc.URL, helix.APIBase(), helix.TokenURL())
}

// twitchChat is n chat lines in shopchannel, a third of them complaints.
func twitchChat(irc *loopback.TwitchServer, tag string, n int) {
	for i := range n {
		text := "this jacket looks great, love it"
		if i%3 == 0 {
			text = "shipping is too slow, terrible"
		}
		irc.Send("shopchannel", fmt.Sprintf("@display-name=Viewer%d;id=%s-%d;tmi-sent-ts=%d;user-id=%d :viewer%d!viewer%d@viewer%d.tmi.twitch.tv PRIVMSG #shopchannel :%s",
			i, tag, i, time.Now().UnixMilli(), 1000+i, i, i, i, text))
	}
}

// twitchReviewServers starts the loopback Twitch chat, Helix API (client
// review-client, secret review-secret) and DingTalk robot the Twitch
// review tests run against; they close when the test ends.
func twitchReviewServers(t *testing.T) (*loopback.TwitchServer, *loopback.HelixServer, *loopback.DingTalkServer) {
	t.Helper()
	irc := loopback.NewTwitchServer()
	t.Cleanup(irc.Close)
	helix := loopback.NewHelixServer("review-client", "review-secret")
	t.Cleanup(helix.Close)
	ding := loopback.NewDingTalkServer("review-token", "")
	t.Cleanup(ding.Close)
	return irc, helix, ding
}

// TestTwitchStreamEndReview: a Twitch channel read over loopback IRC chat
// with the Helix poller on a loopback Helix API goes live, chats and goes
// offline (drops out of Get Streams). Its viewer counts land in metrics,
// and the end makes one review of the stream, stored with its outbox row
// and posted to the room's receiver.
func TestTwitchStreamEndReview(t *testing.T) {
	if testing.Short() {
		t.Skip("polls a loopback Helix API for several seconds")
	}
	irc, helix, ding := twitchReviewServers(t)
	t.Setenv("REVIEW_DINGTALK_URL", ding.WebhookURL())
	t.Setenv("REVIEW_TWITCH_ID", "review-client")
	t.Setenv("REVIEW_TWITCH_SECRET", "review-secret")
	cfg := twitchReviewConfig("%[1]q", irc, helix)

	start := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	helix.SetLive("shopchannel", loopback.HelixStream{ID: "318005442", UserID: "77", Title: "Black Friday live", ViewerCount: 120, StartedAt: start})
	ro, stop := healthRun(t, cfg, nil)
	defer stop()

	waitFor(t, "the stream's start stored", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM metrics WHERE source = 'tw' AND room = 'shopchannel' AND name = 'live_status' AND value = 1 AND ts = ?`,
			store.FormatTime(start)) == 1
	})
	if _, ok := irc.WaitJoined(15*time.Second, "shopchannel"); !ok {
		t.Fatal("the daemon never joined the chat")
	}
	twitchChat(irc, "msg", 6)
	waitFor(t, "the chat stored", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source = 'tw' AND kind = 'chat'`) == 6
	})
	helix.SetLive("shopchannel", loopback.HelixStream{ID: "318005442", ViewerCount: 180, StartedAt: start})
	waitFor(t, "the audience growing", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM metrics WHERE source = 'tw' AND room = 'shopchannel' AND name = 'viewers' AND value = 180`) >= 1
	})
	if n := countRows(t, ro, `SELECT count(*) FROM reports`); n != 0 {
		t.Fatalf("%d reports while the stream is live", n)
	}

	helix.SetOffline("shopchannel")
	waitFor(t, "the review posted", 20*time.Second, func() bool { return len(reviewMessages(ding)) == 1 })
	time.Sleep(1500 * time.Millisecond) // another poll and review scan: nothing more may come
	stop()

	msgs := reviewMessages(ding)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "| messages | 6 |") || !strings.Contains(msgs[0], "(twitch)") ||
		!strings.Contains(msgs[0], "| peak viewers | 180 at") {
		t.Errorf("%d reviews, want 1 of the 6-message stream with its audience:\n%s", len(msgs), strings.Join(msgs, "\n"))
	}
	var id, platform, room, from string
	if err := ro.QueryRow(`SELECT id, platform, room, from_ts FROM reports WHERE kind = 'review'`).Scan(&id, &platform, &room, &from); err != nil {
		t.Fatal(err)
	}
	if want := "review:tw/shopchannel@" + store.FormatTime(start); id != want || platform != "twitch" || room != "shopchannel" || from != store.FormatTime(start) {
		t.Errorf("review %s (%s, %s, from %s), want %s from the stream's started_at", id, platform, room, from, want)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM outbox WHERE event_id = ? AND state = 'sent'`, id); n != 1 {
		t.Errorf("%d sent outbox rows for the review, want 1", n)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM metrics WHERE source = 'tw' AND name = 'live_status' AND value = 0`); n != 1 {
		t.Errorf("%d stream ends stored, want 1", n)
	}
	var peak float64
	var samples int
	if err := ro.QueryRow(`SELECT max(value), count(*) FROM metrics WHERE source = 'tw' AND room = 'shopchannel' AND name = 'viewers'`).Scan(&peak, &samples); err != nil {
		t.Fatal(err)
	}
	if peak != 180 || samples < 2 {
		t.Errorf("viewers: peak %v over %d samples, want 180 over at least 2", peak, samples)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM reports`); n != 1 {
		t.Errorf("%d reports stored, want 1", n)
	}
}

// TestTwitchStreamEndWhileDownReview: the daemon is killed with SIGKILL
// while a Twitch stream is live, the stream ends while it is down, and the
// next run's first Helix poll ends it (the stream known live was saved with
// the items that started it): one review of the whole stream, posted once.
func TestTwitchStreamEndWhileDownReview(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	irc, helix, ding := twitchReviewServers(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lookout.db")
	cfgPath := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfgPath, []byte(twitchReviewConfig(strconv.Quote(dbPath), irc, helix)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	run := func() *exec.Cmd {
		return startKillChild(t, cfgPath, &out, "REVIEW_DINGTALK_URL="+ding.WebhookURL(),
			"REVIEW_TWITCH_ID=review-client", "REVIEW_TWITCH_SECRET=review-secret")
	}
	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()

	start := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	helix.SetLive("shopchannel", loopback.HelixStream{ID: "318009999", ViewerCount: 75, StartedAt: start})
	first := run()
	if _, ok := irc.WaitJoined(20*time.Second, "shopchannel"); !ok {
		t.Fatalf("the first run never joined the chat:\n%s", out.String())
	}
	twitchChat(irc, "before", 4)
	waitFor(t, "the chat and the stream known live stored", 20*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source = 'tw' AND kind = 'chat'`) == 4 &&
			countRows(t, ro, `SELECT count(*) FROM source_state WHERE source = 'tw' AND key = 'helix_live' AND value LIKE '%318009999%'`) == 1
	})
	_ = first.Process.Kill()
	_ = first.Wait()

	helix.SetOffline("shopchannel")
	second := run()
	waitFor(t, "the review after the restart", 30*time.Second, func() bool { return len(reviewMessages(ding)) >= 1 })
	time.Sleep(1500 * time.Millisecond) // more polls and scans: nothing more may come
	_ = second.Process.Signal(syscall.SIGTERM)
	if err := second.Wait(); err != nil {
		t.Errorf("second run: %v\n%s", err, out.String())
	}
	msgs := reviewMessages(ding)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "| messages | 4 |") || !strings.Contains(msgs[0], "| peak viewers | 75 at") {
		t.Errorf("%d reviews, want 1 of the 4-message stream:\n%s\n%s", len(msgs), strings.Join(msgs, "\n"), out.String())
	}
	var id string
	if err := ro.QueryRow(`SELECT id FROM reports WHERE kind = 'review'`).Scan(&id); err != nil || id != "review:tw/shopchannel@"+store.FormatTime(start) {
		t.Errorf("review %q, %v; want the stream from its started_at", id, err)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM metrics WHERE source = 'tw' AND name = 'live_status'`); n != 2 {
		t.Errorf("%d live_status samples, want one start and one end", n)
	}
}
