package daemon

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/collectors/httpx"
	"lookout/internal/loopback"
)

// retractConfig is a daemon on one source (%[2]s, indented as a list
// entry) with an absolute negative_ratio rule that needs 10 messages in
// its window; %[1]q is left for the database path.
const retractConfig = `
store: { path: %%[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
limits: { default: { rate: 1000/s, burst: 1000 } }
classifier: { terms: false }
sources:
  - id: src
    %s
rules:
  - name: neg
    kind: negative_ratio
    window: 1m
    min_volume: 10
    levels: { red: 0.4 }
route: { receiver: console, group_wait: 0s }
receivers:
  - name: console
    console: {}
`

// The classifier calls retractAngry negative, retractCalm neutral and
// retractResolved not negative.
const (
	retractAngry    = "假货，要求退款！"
	retractCalm     = "这件衣服有大码吗"
	retractResolved = "问题解决了，很满意，好评"
)

// retractChanges reads lookout_alert_changes_total{result} of d.
func retractChanges(t *testing.T, d *Daemon, result string) float64 {
	t.Helper()
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lookout_alert_changes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" && lp.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// retractCase drives one platform through the real daemon: six
// complaints are counted (first), then taken back by the platform's
// deletes, edits or moderation (change), which the engine must count as
// wantChanges; then enough messages arrive (then) that the rule judges,
// and its alert must describe the window as it stands: 4 negative of 10
// messages. Had the complaints stayed counted, the rule would have judged
// earlier, on more messages, with more of them negative.
type retractCase struct {
	source      string
	ready       func(t *testing.T)
	first       func()
	change      func()
	then        func()
	wantChanges float64
}

func retractRun(t *testing.T, tc retractCase) {
	t.Helper()
	ro, d, stop := healthStart(t, filepath.Join(t.TempDir(), "lookout.db"), fmt.Sprintf(retractConfig, tc.source), httpx.RealClock)
	defer stop()
	tc.ready(t)
	tc.first()
	scored := func(label string) int {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source = 'src' AND sentiment = ?`, label)
	}
	waitFor(t, "the six complaints stored as negative", 15*time.Second, func() bool { return scored("negative") == 6 })
	tc.change()
	waitFor(t, "the engine taking the complaints back", 15*time.Second, func() bool {
		return retractChanges(t, d, "deleted")+retractChanges(t, d, "edited") == tc.wantChanges
	})
	if n := retractChanges(t, d, "not_held"); n != 0 {
		t.Errorf("%v changes not held, want 0", n)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM alerts`); n != 0 {
		t.Fatalf("%d alerts before the rule had 10 messages to judge", n)
	}
	tc.then()
	waitFor(t, "the rule firing", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM alerts WHERE rule = 'neg'`) > 0
	})
	var summary string
	if err := ro.QueryRow(`SELECT summary FROM alerts WHERE rule = 'neg' ORDER BY started_at LIMIT 1`).Scan(&summary); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(summary, "(4 of 10 messages") {
		t.Fatalf("alert %q: want the window as it stands, 4 negative of 10 messages", summary)
	}
}

// Mastodon: three complaints deleted by their authors, three edited into
// thanks.
func TestMastodonDeletesAndEditsLeaveTheWindow(t *testing.T) {
	t.Setenv("LOOKOUT_RETRACT_MASTO_TOKEN", "retract-token")
	srv := loopback.NewMastodonServer("retract-token")
	defer srv.Close()
	post := func(id int, text string) loopback.MastodonStatus {
		return loopback.MastodonStatus{ID: fmt.Sprint(id), CreatedAt: time.Now().UTC(), Content: "<p>" + text + "</p>",
			AccountID: fmt.Sprint(id), Acct: fmt.Sprintf("user%d", id), Tags: []string{"acme"}, Language: "zh"}
	}
	var complaints []loopback.MastodonStatus
	retractRun(t, retractCase{
		source: fmt.Sprintf("kind: mastodon\n    url: %s\n    streaming_url: %s\n    token: ${LOOKOUT_RETRACT_MASTO_TOKEN}\n    tags: [acme]",
			srv.URL, srv.StreamingURL),
		ready: func(t *testing.T) {
			waitFor(t, "the stream", 10*time.Second, func() bool { return srv.WaitSub(1, "hashtag:acme", 0) })
		},
		first: func() {
			for i := range 6 {
				st := post(100+i, retractAngry)
				complaints = append(complaints, st)
				srv.Post(st)
			}
		},
		change: func() {
			for _, st := range complaints[:3] {
				srv.Delete(st.ID)
			}
			for _, st := range complaints[3:] {
				st.Content, st.EditedAt = "<p>"+retractResolved+"</p>", time.Now().UTC()
				srv.Edit(st)
			}
		},
		then: func() {
			for i := range 3 {
				srv.Post(post(200+i, retractCalm))
			}
			for i := range 4 {
				srv.Post(post(300+i, retractAngry))
			}
		},
		wantChanges: 6,
	})
}

// Bluesky (Jetstream): six complaints deleted by their authors.
func TestBlueskyDeletesLeaveTheWindow(t *testing.T) {
	srv := loopback.NewBlueskyServer()
	defer srv.Close()
	us := time.Now().UnixMicro()
	event := func(op, did, rkey, text string) string {
		us++
		if op == "delete" {
			return fmt.Sprintf(`{"did":%q,"time_us":%d,"kind":"commit","commit":{"rev":"r%d","operation":"delete","collection":"app.bsky.feed.post","rkey":%q}}`,
				did, us, us, rkey)
		}
		return fmt.Sprintf(`{"did":%q,"time_us":%d,"kind":"commit","commit":{"rev":"r%d","operation":"create","collection":"app.bsky.feed.post","rkey":%q,"cid":"c%d","record":{"$type":"app.bsky.feed.post","text":%q,"createdAt":%q,"langs":["zh"]}}}`,
			did, us, us, rkey, us, text, time.Now().UTC().Format(time.RFC3339Nano))
	}
	did := func(i int) string { return fmt.Sprintf("did:plc:retract%018d", i) }
	retractRun(t, retractCase{
		source: fmt.Sprintf("kind: bluesky\n    url: %s\n    handle_lookup: \"off\"", srv.URL),
		ready: func(t *testing.T) {
			if _, ok := srv.WaitSubscription(0, 10*time.Second); !ok {
				t.Fatal("no Jetstream subscription")
			}
		},
		first: func() {
			for i := range 6 {
				srv.Publish(event("create", did(i), fmt.Sprintf("a%d", i), retractAngry))
			}
		},
		change: func() {
			for i := range 6 {
				srv.Publish(event("delete", did(i), fmt.Sprintf("a%d", i), ""))
			}
		},
		then: func() {
			for i := range 6 {
				srv.Publish(event("create", did(10+i), fmt.Sprintf("b%d", i), retractCalm))
			}
			for i := range 4 {
				srv.Publish(event("create", did(20+i), fmt.Sprintf("c%d", i), retractAngry))
			}
		},
		wantChanges: 6,
	})
}

// Twitch: a moderator deletes one complaint (CLEARMSG) and bans the
// troll who wrote the other five (CLEARCHAT): the ban takes all five back.
func TestTwitchModerationLeavesTheWindow(t *testing.T) {
	tw := loopback.NewTwitchServer()
	defer tw.Close()
	n := 0
	privmsg := func(userID, login, text string) string {
		n++
		return fmt.Sprintf(`@display-name=%s;id=rt-%d;room-id=42;tmi-sent-ts=%d;user-id=%s :%s!%s@%s.tmi.twitch.tv PRIVMSG #retractchan :%s`,
			login, n, time.Now().UnixMilli(), userID, login, login, login, text)
	}
	retractRun(t, retractCase{
		source: fmt.Sprintf("kind: twitch\n    url: %q\n    channels: [retractchan]", tw.URL),
		ready: func(t *testing.T) {
			if _, ok := tw.WaitJoined(15*time.Second, "retractchan"); !ok {
				t.Fatal("twitch channel not joined")
			}
		},
		first: func() {
			tw.Send("retractchan", privmsg("501", "bob", retractAngry)) // rt-1
			for range 5 {
				tw.Send("retractchan", privmsg("666", "troll", retractAngry))
			}
		},
		change: func() {
			ts := time.Now().UnixMilli()
			tw.Send("retractchan",
				fmt.Sprintf(`@login=bob;room-id=42;target-msg-id=rt-1;tmi-sent-ts=%d :tmi.twitch.tv CLEARMSG #retractchan :%s`, ts, retractAngry),
				fmt.Sprintf(`@room-id=42;target-user-id=666;tmi-sent-ts=%d :tmi.twitch.tv CLEARCHAT #retractchan :troll`, ts+1))
		},
		then: func() {
			for i := range 6 {
				tw.Send("retractchan", privmsg(fmt.Sprint(700+i), fmt.Sprintf("fan%d", i), retractCalm))
			}
			for i := range 4 {
				tw.Send("retractchan", privmsg(fmt.Sprint(800+i), fmt.Sprintf("angry%d", i), retractAngry))
			}
		},
		wantChanges: 6,
	})
}
