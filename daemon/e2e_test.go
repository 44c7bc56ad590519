package daemon

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"lookout/config"
	"lookout/internal/loopback"
	"lookout/store"

	"lookout/internal/testutil"
)

const e2eRoom = 7734200

// e2eConfig points one Bilibili source at the loopback live room and routes
// every alert to Slack (bot token, slacktest) and red ones to DingTalk
// (signed robot, loopback server that verifies the signature).
func e2eConfig(t *testing.T, dbPath, biliURL, wsURL, slackAPI string) *config.Config {
	t.Helper()
	text := fmt.Sprintf(`
store: { path: %q, batch_size: 64, flush_interval: 100ms }
http: { listen: "off" }
limits: { default: { rate: 100/s, burst: 100 } }
keywords:
  crisis: { severity: red, any: [退款, 假货, 投诉] }
sources:
  - id: live
    kind: bilibili_live
    room: %d
    api_base: %q
    nav_base: %q
    hosts: [%q]
    heartbeat: 2s
rules:
  - name: crisis-burst
    kind: keyword_burst
    category: crisis
    window: 5s
    levels: { yellow: 3, red: 6 }
route:
  receiver: slack
  group_wait: 0s
  routes:
    - match: { severity: red }
      receiver: dingtalk
      continue: true
    - receiver: slack
receivers:
  - name: slack
    slack: { token: "${E2E_SLACK_TOKEN}", channel: "#brand-ops", api_url: %q }
  - name: dingtalk
    dingtalk: { webhook_url: "${E2E_DINGTALK_URL}", secret: "${E2E_DINGTALK_SECRET}" }
`, dbPath, e2eRoom, biliURL, biliURL, wsURL, slackAPI)
	cfg, err := config.Parse([]byte(text), "e2e.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.MissingSecrets(); len(m) > 0 {
		t.Fatal(m)
	}
	return cfg
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	testutil.Eventually(t, what, timeout, ok)
}

func countRows(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestEndToEnd runs the real daemon against a loopback live room speaking
// the Bilibili danmaku protocol (brotli frames, nested packets), a Slack API
// server and a DingTalk robot that checks signatures, with a real SQLite
// file; then drops the room's connection and checks nothing is lost.
func TestEndToEnd(t *testing.T) {
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: e2eRoom})
	defer live.Close()
	// slacktest's own chat.postMessage keeps no record of what a client
	// posted; this handler records the form and checks the bot token the
	// way Slack does (HTTP 200, ok:false, invalid_auth).
	var slackMu sync.Mutex
	var slackPosts []url.Values
	slackSrv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			body, _ := io.ReadAll(r.Body)
			form, err := url.ParseQuery(string(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if r.Header.Get("Authorization") != "Bearer xoxb-e2e" && form.Get("token") != "xoxb-e2e" {
				json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
				return
			}
			slackMu.Lock()
			slackPosts = append(slackPosts, form)
			slackMu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": form.Get("channel"), "ts": "1700000000.000100"})
		})
	})
	slackSrv.Start()
	defer slackSrv.Stop()
	ding := loopback.NewDingTalkServer("e2e-token", "SEC-e2e-secret")
	defer ding.Close()

	t.Setenv("E2E_SLACK_TOKEN", "xoxb-e2e")
	t.Setenv("E2E_DINGTALK_URL", ding.WebhookURL())
	t.Setenv("E2E_DINGTALK_SECRET", "SEC-e2e-secret")
	dbPath := filepath.Join(t.TempDir(), "lookout.db")
	cfg := e2eConfig(t, dbPath, live.URL(), live.WSURL(), slackSrv.GetAPIURL())

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := New(ctx, Options{Config: cfg, Log: log, ShutdownGrace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	waitCtx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := live.WaitConnected(waitCtx, 1); err != nil {
		t.Fatal(err)
	}

	// A complaint storm: 12 crisis messages and some calm ones.
	now := time.Now()
	var cmds [][]byte
	for i := range 12 {
		cmds = append(cmds, loopback.BilibiliDanmaku(int64(1000+i), fmt.Sprintf("viewer%d", i), "收到的是假货，要求退款！", now, fmt.Sprintf("storm-%d", i)))
	}
	for i := range 8 {
		cmds = append(cmds, loopback.BilibiliDanmaku(int64(2000+i), fmt.Sprintf("fan%d", i), "主播好棒，已下单", now, fmt.Sprintf("calm-%d", i)))
	}
	cmds = append(cmds, loopback.BilibiliOnlineRankCount(4200))
	live.Push(cmds...)

	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()

	waitFor(t, "20 chat items in SQLite", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE kind='chat'`) == 20
	})
	defer func() {
		if t.Failed() {
			var buf strings.Builder
			Query(context.Background(), dbPath, "SELECT * FROM alerts", "table", store.QueryOptions{}, &buf)
			Query(context.Background(), dbPath, "SELECT * FROM item_groups LIMIT 5", "table", store.QueryOptions{}, &buf)
			Query(context.Background(), dbPath, "SELECT source, room, ts FROM items LIMIT 3", "table", store.QueryOptions{}, &buf)
			t.Log("\n" + buf.String())
			mfs, _ := d.Registry().Gather()
			for _, mf := range mfs {
				if strings.HasPrefix(mf.GetName(), "lookout_alert") || strings.HasPrefix(mf.GetName(), "lookout_engine") {
					for _, m := range mf.GetMetric() {
						t.Logf("%s %v %v %v", mf.GetName(), m.GetLabel(), m.GetCounter().GetValue(), m.GetGauge().GetValue())
					}
				}
			}
		}
	}()
	waitFor(t, "a red crisis alert in SQLite", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM alerts WHERE rule='crisis-burst' AND severity='red'`) == 1
	})
	if n := countRows(t, ro, `SELECT count(*) FROM alert_events WHERE state='firing'`); n == 0 {
		t.Fatal("no firing event recorded")
	}
	waitFor(t, "the alert in Slack", 15*time.Second, func() bool {
		slackMu.Lock()
		defer slackMu.Unlock()
		for _, f := range slackPosts {
			if f.Get("channel") == "#brand-ops" && strings.Contains(f.Get("blocks")+f.Get("attachments"), "crisis-burst") {
				return true
			}
		}
		return false
	})
	waitFor(t, "the alert at the DingTalk robot", 15*time.Second, func() bool {
		for _, m := range ding.Messages() {
			if strings.Contains(string(m.Body), "crisis-burst") {
				return true
			}
		}
		return false
	})
	if r := ding.Rejected(); len(r) != 0 {
		t.Fatalf("DingTalk rejected %d requests, first answered code %d", len(r), r[0].Code)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM items WHERE kind='chat' AND sentiment='negative'`); n < 10 {
		t.Errorf("only %d of 12 complaints scored negative", n)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM metrics WHERE name='viewers' AND value=4200`); n != 1 {
		t.Errorf("viewer metric rows = %d, want 1", n)
	}

	// The room drops the connection; the collector reconnects and nothing
	// pushed after the reconnect is lost, nothing before is duplicated.
	auths := live.AuthCount()
	live.DropConnections()
	waitFor(t, "reconnect", 20*time.Second, func() bool { return live.AuthCount() > auths && live.Connections() == 1 })
	var more [][]byte
	for i := range 10 {
		more = append(more, loopback.BilibiliDanmaku(int64(3000+i), "back", "回来了", time.Now(), fmt.Sprintf("after-%d", i)))
	}
	// The same storm message again (a replay) must be dropped as a duplicate.
	more = append(more, cmds[0])
	live.Push(more...)
	waitFor(t, "30 chat items after reconnect", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE kind='chat'`) == 30
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon stopped with error: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not stop within 20s")
	}
	if n := countRows(t, ro, `SELECT count(*) FROM items WHERE kind='chat'`); n != 30 {
		t.Fatalf("after shutdown %d chat items, want 30", n)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM alert_events`); n == 0 {
		t.Fatal("no alert events recorded")
	}
	// lookout status reads source_health: the dropped connection shows.
	if n := countRows(t, ro, `SELECT reconnects FROM source_health WHERE source='live'`); n < 1 {
		t.Errorf("source_health.reconnects = %d after a dropped connection", n)
	}
	if n := countRows(t, ro, `SELECT items FROM source_health WHERE source='live'`); n < 30 {
		t.Errorf("source_health.items = %d, want at least the 30 chat lines", n)
	}
}
