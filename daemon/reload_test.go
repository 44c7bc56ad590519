package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"lookout/config"
	"lookout/internal/loopback"
)

// reloadConfig is the test's config file: the live room always, the RSS
// feed when feed is set, the crisis rule always and a second rule when
// extraRule is set (with a spare receiver).
func reloadConfig(dbPath string, live *loopback.BilibiliServer, feedURL string, extraRule bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `store: { path: %q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
classifier: { terms: false }
keywords:
  crisis: { severity: red, any: [退款, 假货] }
sources:
  - id: live
    kind: bilibili_live
    room: %d
    api_base: %q
    nav_base: %q
    hosts: [%q]
`, dbPath, e2eRoom, live.URL(), live.URL(), live.WSURL())
	if feedURL != "" {
		fmt.Fprintf(&b, `  - id: news
    kind: rss
    url: %q
    every: 200ms
`, feedURL)
	}
	b.WriteString(`rules:
  - name: crisis-burst
    kind: keyword_burst
    category: crisis
    window: 30s
    levels: { red: 3 }
`)
	if extraRule {
		b.WriteString(`  - name: chat-volume
    kind: volume_spike
    window: 1m
    levels: { yellow: 1000 }
`)
	}
	b.WriteString(`route: { receiver: console, group_wait: 0s, group_interval: 1s }
receivers:
  - name: console
    console: {}
`)
	if extraRule {
		// A second receiver: the delivery side is rebuilt.
		b.WriteString(`  - name: spare
    console: {}
`)
	}
	return b.String()
}

// TestReloadAppliesChangedConfig runs the daemon on a loopback live room,
// fires an alert, then edits the config file and reloads it several
// times: an added feed starts storing, the live room's connection stays up
// through every reload, the firing alert stays firing without a second
// notice, a broken config is rejected naming its line while the old one
// keeps running, a removed feed stops polling, and a removed rule's alert
// resolves.
func TestReloadAppliesChangedConfig(t *testing.T) {
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: e2eRoom})
	defer live.Close()
	feed := loopback.NewFeedServer()
	defer feed.Close()
	feedBase := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	feed.SetFeed("/news.xml", loopback.RSSDocument("news", []loopback.FeedEntrySpec{
		{ID: "n1", Title: "one", Text: "first story", Link: "https://news.example.com/1", Published: feedBase},
		{ID: "n2", Title: "two", Text: "second story", Link: "https://news.example.com/2", Published: feedBase.Add(time.Second)},
	}), "")

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lookout.db")
	cfgPath := filepath.Join(dir, "lookout.yaml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadConfig(dbPath, live, "", false))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The daemon runs the config loaded from the file (which a reload
	// reads again), not healthStart's stand-in.
	ro, d, stop := healthStart(t, dbPath, "store: { path: %[1]q }", nil, func(o *Options) { o.Config = cfg })
	defer stop()
	ctx := context.Background()

	waitFor(t, "the daemon in the room", 10*time.Second, func() bool { return live.AuthCount() == 1 && live.Connections() == 1 })
	seq := 0
	say := func(n int, text string) {
		var cmds [][]byte
		for range n {
			seq++
			cmds = append(cmds, loopback.BilibiliDanmaku(int64(100+seq), "viewer", text, time.Now(), fmt.Sprintf("m-%d", seq)))
		}
		live.Push(cmds...)
	}
	say(5, "假货，要求退款！")
	waitFor(t, "the crisis alert firing", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM alerts WHERE rule = 'crisis-burst' AND state = 'firing'`) == 1
	})
	firingEvents := func() int {
		return countRows(t, ro, `SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id
			WHERE a.rule = 'crisis-burst' AND e.state = 'firing'`)
	}
	if n := firingEvents(); n != 1 {
		t.Fatalf("%d firing events before any reload, want 1", n)
	}

	// 1. Add the feed and a rule.
	write(reloadConfig(dbPath, live, feed.URL("/news.xml"), true))
	rep, err := d.ReloadFile(ctx)
	if err != nil {
		t.Fatalf("reload adding a source: %v", err)
	}
	if fmt.Sprint(rep.SourcesAdded, rep.RulesAdded, rep.SourcesChanged, rep.SourcesRemoved) != "[news] [chat-volume] [] []" {
		t.Errorf("reload report %+v, want the news source and the chat-volume rule added, nothing else", rep)
	}
	if !rep.Delivery || rep.Classifier {
		t.Errorf("reload report %+v, want the delivery side rebuilt (a receiver was added), the classifier not", rep)
	}
	waitFor(t, "the added feed's items stored", 10*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source = 'news'`) == 2
	})

	// 2. A broken config: rejected, naming its line; the old one runs on.
	broken := strings.Replace(reloadConfig(dbPath, live, feed.URL("/news.xml"), true), "    window: 30s", "    window: 30s\n    windwo: 1m", 1)
	write(broken)
	wantLine := 1 + strings.Count(broken[:strings.Index(broken, "windwo")], "\n")
	_, err = d.ReloadFile(ctx)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s:%d", cfgPath, wantLine)) || !strings.Contains(err.Error(), "windwo") {
		t.Errorf("broken config: err = %v, want it rejected naming %s:%d and the key", err, cfgPath, wantLine)
	}
	if got := metricValue(t, d.reload.total.WithLabelValues("failure")); got != 1 {
		t.Errorf("lookout_config_reloads_total{result=failure} = %v, want 1", got)
	}
	if got := metricValue(t, d.reload.successful); got != 0 {
		t.Errorf("lookout_config_last_reload_successful = %v after a rejected reload, want 0", got)
	}
	before := countRows(t, ro, `SELECT count(*) FROM items WHERE source = 'live'`)
	say(3, "主播好")
	waitFor(t, "chat stored after the rejected reload", 10*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source = 'live'`) >= before+3
	})

	// 3. Remove the feed: it stops polling once Reload returns.
	write(reloadConfig(dbPath, live, "", true))
	rep, err = d.ReloadFile(ctx)
	if err != nil {
		t.Fatalf("reload removing a source: %v", err)
	}
	if fmt.Sprint(rep.SourcesRemoved) != "[news]" {
		t.Errorf("reload report %+v, want the news source removed", rep)
	}
	polls := len(feed.Requests("/news.xml"))
	time.Sleep(time.Second) // five poll intervals of the removed source
	if n := len(feed.Requests("/news.xml")); n != polls {
		t.Errorf("the removed feed was polled %d more times after the reload", n-polls)
	}
	if st := countRows(t, ro, `SELECT count(*) FROM source_health WHERE source = 'news' AND state = 'removed'`); st != 1 {
		t.Errorf("source_health of the removed feed: %d rows saying removed, want 1", st)
	}

	// The storm goes on; the alert that fired before the reloads is
	// still the one firing, told once.
	say(4, "假货，要求退款！")
	waitFor(t, "the storm's new messages stored", 10*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source = 'live' AND text LIKE '%退款%'`) == 9
	})
	if n := countRows(t, ro, `SELECT count(*) FROM alerts WHERE rule = 'crisis-burst' AND state = 'firing'`); n != 1 {
		t.Errorf("%d crisis alerts firing after the reloads, want the same 1", n)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM alerts WHERE rule = 'crisis-burst'`); n != 1 {
		t.Errorf("%d crisis alerts after the reloads, want the 1 from before", n)
	}
	if n := firingEvents(); n != 1 {
		t.Errorf("%d firing events after the reloads, want 1 (no second notice)", n)
	}

	// 4. Remove the rule: its alert resolves, saying why, and the
	// resolution goes out through the outbox to the console that heard of
	// the firing.
	write(strings.Replace(reloadConfig(dbPath, live, "", true), `  - name: crisis-burst
    kind: keyword_burst
    category: crisis
    window: 30s
    levels: { red: 3 }
`, "", 1))
	rep, err = d.ReloadFile(ctx)
	if err != nil {
		t.Fatalf("reload removing a rule: %v", err)
	}
	if fmt.Sprint(rep.RulesRemoved, rep.AlertsResolved) != "[crisis-burst] 1" {
		t.Errorf("reload report %+v, want crisis-burst removed with its 1 alert resolved", rep)
	}
	waitFor(t, "the removed rule's alert resolved and its resolution sent", 10*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM outbox o JOIN alert_events e ON e.event_id = o.event_id JOIN alerts a ON a.id = e.alert_id
			WHERE a.rule = 'crisis-burst' AND e.state = 'resolved' AND e.summary LIKE '%removed from the config%' AND o.state = 'sent'`) == 1
	})

	// Through all of it the live room kept its one connection.
	if a, c := live.AuthCount(), live.Connections(); a != 1 || c != 1 {
		t.Errorf("live room: %d auths, %d connections; want the first connection kept through every reload", a, c)
	}
	if got := metricValue(t, d.reload.total.WithLabelValues("success")); got != 3 {
		t.Errorf("lookout_config_reloads_total{result=success} = %v, want 3", got)
	}
}

// metricValue reads one counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	if c := pb.GetCounter(); c != nil {
		return c.GetValue()
	}
	return pb.GetGauge().GetValue()
}

// POST /-/reload answers loopback clients only, and only to POST or PUT;
// before Run it says the daemon is not running.
func TestReloadEndpointAccess(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, "store: { path: %q }\nhttp: { listen: \"off\" }\n", filepath.Join(dir, "lookout.db")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), Options{Config: cfg, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Store().Close()
	h := d.Handler()
	for _, tc := range []struct {
		method, remote string
		code           int
		body           string
	}{
		{http.MethodGet, "127.0.0.1:5000", http.StatusMethodNotAllowed, "use POST"},
		{http.MethodPost, "192.0.2.7:5000", http.StatusForbidden, "loopback clients only"},
		{http.MethodPost, "[2001:db8::1]:5000", http.StatusForbidden, "loopback clients only"},
		{http.MethodPost, "127.0.0.1:5000", http.StatusServiceUnavailable, "not running"},
		{http.MethodPut, "[::1]:5000", http.StatusServiceUnavailable, "not running"},
	} {
		req := httptest.NewRequest(tc.method, "/-/reload", nil)
		req.RemoteAddr = tc.remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s from %s: %d %s, want %d with %q", tc.method, tc.remote, rec.Code, rec.Body.String(), tc.code, tc.body)
		}
	}
	if got := metricValue(t, d.reload.total.WithLabelValues("failure")); got != 2 {
		t.Errorf("lookout_config_reloads_total{result=failure} = %v, want the 2 attempts that reached the daemon", got)
	}
}
