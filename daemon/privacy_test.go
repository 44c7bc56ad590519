package daemon

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lookout/config"
	"lookout/internal/loopback"
	"lookout/internal/redact"
	"lookout/store"
)

// The people of the privacy test: every id and name below must be gone
// from everything the daemon keeps or sends.
const (
	privBiliUID    = 918273645501
	privBiliName   = "PrivBiliAlice"
	privBiliGifter = 918273645502
	privBiliGName  = "隐私送礼人"
	privDouyinUID  = 918273645503
	privDouyinName = "隐私抖音小明"
	privDouyinFan  = 918273645504
	privDouyinFNm  = "PrivDouyinFan"
	privTwitchUID  = "918273645505"
	privTwitchName = "PrivTwitchBob"
	privTwitchLog  = "privtwitchbob"
	privBannedUID  = "918273645506"
	privBannedLog  = "privbannedtroll"
	privMentioned  = "隐私被点名"
	privGifteeUID  = "918273645507"
	privGiftee     = "PrivGiftee"
	privSalt       = "test-salt-not-a-name"
)

func privKnown() []string {
	return []string{fmt.Sprint(privBiliUID), privBiliName, fmt.Sprint(privBiliGifter), privBiliGName,
		fmt.Sprint(privDouyinUID), privDouyinName, fmt.Sprint(privDouyinFan), privDouyinFNm,
		privTwitchUID, privTwitchName, privTwitchLog, privBannedUID, privBannedLog, privMentioned, privGifteeUID, privGiftee, privSalt}
}

// privFind reports which known ids and names occur in s (case folded).
func privFind(s string) []string {
	var found []string
	low := strings.ToLower(s)
	for _, k := range privKnown() {
		if strings.Contains(low, strings.ToLower(k)) {
			found = append(found, k)
		}
	}
	return found
}

// syncBuffer is a bytes.Buffer several goroutines may write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPrivacyModeLeavesNoNames runs the real daemon in privacy mode against
// loopback Bilibili, Douyin and Twitch servers, lets chat, gifts, a
// subscription notice and a ban through, fires an alert whose samples go
// to a webhook and the console, and then looks for the users' ids and
// names everywhere: every column of every table of the SQLite file, the
// file's bytes, the webhook bodies, the console, the logs and /metrics.
// None may be there; their hashes must be.
func TestPrivacyModeLeavesNoNames(t *testing.T) {
	bili := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: 5551234})
	defer bili.Close()
	dy := loopback.NewDouyinServer("646454270001", 7300000000000000777, []byte("priv-key"))
	defer dy.Close()
	tw := loopback.NewTwitchServer()
	defer tw.Close()
	var hookMu sync.Mutex
	var hookBodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hookBodies = append(hookBodies, string(b))
		hookMu.Unlock()
	}))
	defer hook.Close()
	t.Setenv("PRIV_SALT", privSalt)
	t.Setenv("PRIV_DOUYIN_KEY", "priv-key")
	t.Setenv("PRIV_HOOK_URL", hook.URL)

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lookout.db")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
store: { path: %q, batch_size: 64, flush_interval: 100ms, search: true }
privacy: { enabled: true, salt: "${PRIV_SALT}" }
http: { listen: "off" }
limits: { default: { rate: 100/s, burst: 100 } }
keywords:
  crisis: { severity: red, any: [退款, 假货, refund] }
sources:
  - { id: bili, kind: bilibili_live, room: 5551234, api_base: %q, nav_base: %q, hosts: [%q] }
  - { id: dy, kind: douyin_live, room: "646454270001", ws_base: %q, page_base: %q, loopback_sign_key: "${PRIV_DOUYIN_KEY}" }
  - { id: tw, kind: twitch, url: %q, channels: [privchan] }
rules:
  - name: crisis-burst
    kind: keyword_burst
    category: crisis
    window: 5s
    levels: { yellow: 3, red: 6 }
route: { receiver: hook, group_wait: 0s, routes: [{ receiver: hook, continue: true }, { receiver: console }] }
receivers:
  - name: hook
    webhook: { url: "${PRIV_HOOK_URL}" }
  - name: console
    console: {}
`, dbPath, bili.URL(), bili.URL(), bili.WSURL(), dy.WSBase, dy.PageBase, tw.URL)), "privacy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.MissingSecrets(); len(m) > 0 {
		t.Fatal(m)
	}

	var logs, console syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := New(ctx, Options{Config: cfg, Log: log, Out: &console, ShutdownGrace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	metricsSrv := httptest.NewServer(d.Handler())
	defer metricsSrv.Close()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	if err := bili.WaitConnected(wctx, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Douyin connection", 15*time.Second, func() bool { return dy.Open() >= 1 })
	if _, ok := tw.WaitJoined(15*time.Second, "privchan"); !ok {
		t.Fatal("twitch channel not joined")
	}

	now := time.Now()
	var bcmds [][]byte
	for i := range 12 {
		bcmds = append(bcmds, loopback.BilibiliDanmaku(privBiliUID, privBiliName, "@"+privMentioned+" 收到的是假货，要求退款！", now, fmt.Sprintf("pb-%d", i)))
	}
	bcmds = append(bcmds, loopback.BilibiliDanmaku(privBiliUID, privBiliName, "主播好棒", now, "pb-calm"),
		loopback.BilibiliGift(privBiliGifter, privBiliGName, "小心心", 3, 100, now),
		loopback.BilibiliSuperChat(77001, privBiliGifter, privBiliGName, "回复 @"+privBiliName+" 别急", 30, now),
		loopback.BilibiliInteract(privBiliGifter, privBiliGName, 1, now))
	bili.Push(bcmds...)
	dy.Push(false,
		loopback.DouyinChat(880001, privDouyinUID, privDouyinName, "假货，退款！"),
		loopback.DouyinChat(880002, privDouyinUID, privDouyinName, "客服不理人"),
		loopback.DouyinMember(880003, privDouyinFan, privDouyinFNm, 321),
		loopback.DouyinGift(880004, privDouyinFan, privDouyinFNm, 1, "玫瑰", 1, 1, 1),
		loopback.DouyinLike(880005, privDouyinFan, privDouyinFNm, 5, 500),
		loopback.DouyinSocial(880006, privDouyinFan, privDouyinFNm, 1000))
	ts := now.UnixMilli()
	tw.Send("privchan",
		fmt.Sprintf(`@display-name=%s;id=tw-1;room-id=42;tmi-sent-ts=%d;user-id=%s :%s!%s@%s.tmi.twitch.tv PRIVMSG #privchan :I want a refund @%s`,
			privTwitchName, ts, privTwitchUID, privTwitchLog, privTwitchLog, privTwitchLog, privBannedLog),
		fmt.Sprintf(`@display-name=%s;id=tw-2;login=%s;msg-id=sub;msg-param-sub-plan=1000;room-id=42;system-msg=%s\ssubscribed\sat\sTier\s1.;tmi-sent-ts=%d;user-id=%s :tmi.twitch.tv USERNOTICE #privchan :love it`,
			privTwitchName, privTwitchLog, privTwitchName, ts+1, privTwitchUID),
		fmt.Sprintf(`@display-name=%s;id=tw-3;login=%s;msg-id=subgift;msg-param-recipient-display-name=%s;msg-param-recipient-id=%s;msg-param-recipient-user-name=%s;msg-param-sub-plan=1000;room-id=42;system-msg=%s\sgifted\sa\sTier\s1\ssub\sto\s%s!;tmi-sent-ts=%d;user-id=%s :tmi.twitch.tv USERNOTICE #privchan`,
			privTwitchName, privTwitchLog, privGiftee, privGifteeUID, strings.ToLower(privGiftee), privTwitchName, privGiftee, ts+3, privTwitchUID),
		fmt.Sprintf(`@ban-duration=600;room-id=42;target-user-id=%s;tmi-sent-ts=%d :tmi.twitch.tv CLEARCHAT #privchan :%s`,
			privBannedUID, ts+2, privBannedLog))

	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	waitFor(t, "items of all three platforms", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source='bili' AND kind='chat'`) == 13 &&
			countRows(t, ro, `SELECT count(*) FROM items WHERE source='dy' AND kind IN ('chat','gift')`) >= 3 &&
			countRows(t, ro, `SELECT count(*) FROM items WHERE source='tw'`) >= 3 &&
			countRows(t, ro, `SELECT count(*) FROM metrics WHERE source='tw'`) >= 1
	})
	waitFor(t, "the alert at the webhook and the console", 15*time.Second, func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		return len(hookBodies) > 0 && strings.Contains(console.String(), "crisis-burst")
	})
	resp, err := http.Get(metricsSrv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not stop")
	}

	// Every column of every table.
	u, _ := redact.NewUsers(privSalt)
	tables, err := ro.Query(`SELECT name FROM sqlite_schema WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	var all strings.Builder
	cells := 0
	for _, tbl := range names {
		rows, err := ro.Query(`SELECT * FROM "` + tbl + `"`)
		if err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var s string
				switch x := v.(type) {
				case []byte:
					s = string(x)
				case nil:
				default:
					s = fmt.Sprint(x)
				}
				cells++
				if f := privFind(s); len(f) > 0 {
					t.Errorf("table %s column %s holds %v: %q", tbl, cols[i], f, s)
				}
				all.WriteString(s + "\n")
			}
		}
		rows.Close()
	}
	if cells < 100 {
		t.Fatalf("only %d cells scanned", cells)
	}
	// The hashes are there instead, and the same person has one hash.
	for _, who := range []string{fmt.Sprint(privBiliUID), privBiliName, privDouyinName, fmt.Sprint(privDouyinFan), privTwitchName, privTwitchUID, privBannedLog, privMentioned, privGiftee, privGifteeUID} {
		if !strings.Contains(all.String(), u.Hash(who)) {
			t.Errorf("the hash of %q is not stored", who)
		}
	}
	if n := countRows(t, ro, `SELECT count(DISTINCT author) FROM items WHERE source='bili' AND kind='chat'`); n != 1 {
		t.Errorf("one Bilibili chatter has %d distinct hashed names", n)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM raw_payloads`); n != 0 {
		t.Errorf("%d raw payloads stored in privacy mode", n)
	}
	// The file's bytes (pages freed or not) and what was sent and logged.
	for _, f := range []string{dbPath, dbPath + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if found := privFind(string(b)); len(found) > 0 {
			t.Errorf("%s bytes hold %v", filepath.Base(f), found)
		}
	}
	hookMu.Lock()
	bodies := strings.Join(hookBodies, "\n")
	hookMu.Unlock()
	for what, s := range map[string]string{"webhook bodies": bodies, "console": console.String(), "logs": logs.String(), "metrics": string(metrics)} {
		if found := privFind(s); len(found) > 0 {
			t.Errorf("%s hold %v", what, found)
		}
	}
	// The search index (its shadow tables were scanned above) finds the
	// complaints, and not by the name of the person they mention.
	var hits, byName strings.Builder
	if err := store.Search(context.Background(), dbPath, store.SearchOptions{Text: "退款", Room: "5551234"}, &textSink{&hits}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(hits.String(), "要求退款"); n != 12 {
		t.Errorf("search 退款 in the Bilibili room: %d rows, want 12", n)
	}
	if err := store.Search(context.Background(), dbPath, store.SearchOptions{Text: privMentioned}, &textSink{&byName}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(byName.String(), "退款") {
		t.Errorf("a search for the mentioned name finds: %s", byName.String())
	}
	if !strings.Contains(bodies, "h:") || !strings.Contains(bodies, "退款") {
		t.Errorf("the webhook got no samples with hashed authors: %s", bodies)
	}
}

// textSink writes every row's values on one line.
type textSink struct{ b *strings.Builder }

func (s *textSink) Columns([]string) error { return nil }

func (s *textSink) Row(vals []any) error {
	fmt.Fprintln(s.b, vals...)
	return nil
}
