package daemon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"lookout/internal/loopback"
	"lookout/store"
)

// TestTwitchStreamEndReview: a Twitch channel read over loopback IRC chat
// with the Helix poller on a loopback Helix API goes live, chats and goes
// offline (drops out of Get Streams). Its viewer counts land in metrics,
// and the end makes one review of the stream, stored with its outbox row
// and posted to the room's receiver.
func TestTwitchStreamEndReview(t *testing.T) {
	if testing.Short() {
		t.Skip("polls a loopback Helix API for several seconds")
	}
	irc := loopback.NewTwitchServer()
	defer irc.Close()
	helix := loopback.NewHelixServer("review-client", "review-secret")
	defer helix.Close()
	ding := loopback.NewDingTalkServer("review-token", "")
	defer ding.Close()
	t.Setenv("REVIEW_DINGTALK_URL", ding.WebhookURL())
	t.Setenv("REVIEW_TWITCH_ID", "review-client")
	t.Setenv("REVIEW_TWITCH_SECRET", "review-secret")
	cfg := fmt.Sprintf(`
store: { path: %%[1]q, batch_size: 16, flush_interval: 50ms }
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
`, irc.URL, helix.APIBase(), helix.TokenURL())

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
	for i := range 6 {
		text := "this jacket looks great, love it"
		if i%3 == 0 {
			text = "shipping is too slow, terrible"
		}
		irc.Send("shopchannel", fmt.Sprintf("@display-name=Viewer%d;id=msg-%d;tmi-sent-ts=%d;user-id=%d :viewer%d!viewer%d@viewer%d.tmi.twitch.tv PRIVMSG #shopchannel :%s",
			i, i, time.Now().UnixMilli(), 1000+i, i, i, i, text))
	}
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
