package ui_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"lookout/config"
	"lookout/daemon"
	"lookout/internal/loopback"
	"lookout/internal/testutil"
	"lookout/item"
	"lookout/store"
	"lookout/ui"
)

// now is the fixed clock of the handler tests.
var now = time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)

type fixture struct {
	path string
	st   *store.Store
	srv  *ui.Server
	http *httptest.Server
	db   *sql.DB // a separate read-only connection for the checks
	seq  int
}

func (f *fixture) chat(ts time.Time, text string, label item.Label, terms []string, groups ...item.Match) item.Item {
	f.seq++
	return item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindChat, ID: fmt.Sprintf("c%d", f.seq), Labels: map[string]string{"brand": "acme"},
		Author: fmt.Sprintf("u%d", f.seq%7), Text: text, TS: ts,
		Score: item.Score{Scored: true, Label: label, Value: float64(label) * 0.8, Prob: 0.9, Lang: "zh", Terms: terms, Groups: groups}}
}

// newFixture fills a real SQLite file through the store: 20 minutes of a
// live room (calm, then complaints in the last 5 minutes), viewer samples,
// a news feed, a firing red alert and a broken source's health.
func newFixture(t *testing.T, token string) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{path: filepath.Join(t.TempDir(), "lookout.db")}
	st, err := store.Open(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	crisis := item.Match{Group: "crisis", Category: "crisis", Severity: "red", Terms: []string{"退款"}}
	var items []item.Item
	for s := 20 * 60; s > 0; s -= 5 {
		ts := now.Add(-time.Duration(s) * time.Second)
		if s <= 5*60 && s%10 == 0 {
			items = append(items, f.chat(ts, "假货，我要退款", item.Negative, []string{"假货", "退款"}, crisis))
		} else {
			items = append(items, f.chat(ts, "主播好美", item.Positive, []string{"主播"}))
		}
		if s%30 == 0 {
			items = append(items, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindMetric,
				ID: fmt.Sprintf("v%d", s), Metric: item.MetricViewers, Value: float64(1000 + s), TS: ts})
		}
	}
	items = append(items, item.Item{Source: "news", Platform: "rss", Room: "acme", Kind: item.KindPost, ID: "n1", Labels: map[string]string{"brand": "rival"},
		Text: "Acme 新品发布", TS: now.Add(-30 * time.Second), Score: item.Score{Scored: true, Label: item.Neutral, Lang: "zh"}})
	if _, err := st.WriteItems(ctx, items); err != nil {
		t.Fatal(err)
	}
	// The author of the first complaint deleted it: it stays stored, out
	// of every count.
	for _, it := range items {
		if it.Score.Label == item.Negative {
			del := item.Item{Source: it.Source, ID: it.ID, Kind: it.Kind, Change: item.ChangeDelete, ChangedAt: now.Add(-time.Minute)}
			if _, err := st.WriteItems(ctx, []item.Item{del}); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	started := now.Add(-4 * time.Minute)
	for i, state := range []string{"pending", "firing"} {
		rec := store.AlertEventRecord{EventID: fmt.Sprintf("crisis/100/1/%d", i+1), AlertID: "crisis/100/1", Seq: i + 1, Rule: "crisis-burst",
			RuleKind: "keyword_burst", Severity: "red", State: state, Room: "100", Source: "live", Platform: "bilibili",
			Summary: "30 of 60 messages match crisis", StartedAt: started, At: started.Add(time.Duration(i) * 10 * time.Second),
			Labels: map[string]string{"room": "100", "source": "live", "platform": "bilibili"}, Numbers: map[string]float64{"matches": 30},
			Samples: []map[string]string{{"author": "u1", "text": "假货，我要退款"}}}
		if _, err := st.RecordAlertEvent(ctx, rec, rec.At, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.UpdateHealth(ctx, store.SourceHealth{Source: "forum", Kind: "html", State: "broken", Since: now.Add(-time.Minute),
		Broken: "shape_drift: no items", UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	srv, err := ui.New(ctx, ui.Options{Store: st, Token: token, Tick: 50 * time.Millisecond, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.http = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		f.http.CloseClientConnections()
		f.http.Close()
		srv.Close()
	})
	if f.db, err = sql.Open("sqlite3", "file:"+f.path+"?mode=ro"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	return f
}

func (f *fixture) one(t *testing.T, q string, args ...any) float64 {
	t.Helper()
	var v float64
	if err := f.db.QueryRow(q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOverviewMatchesSQL(t *testing.T) {
	f := newFixture(t, "")
	code, body := get(t, http.DefaultClient, f.http.URL+"/api/overview")
	if code != 200 {
		t.Fatalf("GET /api/overview: %d %s", code, body)
	}
	var ov ui.Overview
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatal(err)
	}
	rows := ov.Rooms
	by := map[string]ui.RoomStatus{}
	for _, r := range rows {
		by[r.Source+"/"+r.Room] = r
	}
	live, ok := by["live/100"]
	if !ok {
		t.Fatalf("no live/100 in %+v", rows)
	}
	ts := func(d time.Duration) string { return store.FormatTime(now.Add(-d)) }
	if want := f.one(t, `SELECT count(*) FROM items WHERE room = '100' AND ts >= ?`, ts(time.Minute)); live.PerMin != want {
		t.Errorf("per_min %v, SQL %v", live.PerMin, want)
	}
	if want := f.one(t, `SELECT avg(sentiment = 'negative') FROM items WHERE room = '100' AND ts >= ? AND sentiment IS NOT NULL`, ts(5*time.Minute)); live.Negative != want {
		t.Errorf("negative %v, SQL %v", live.Negative, want)
	}
	if want := f.one(t, `SELECT value FROM metrics WHERE room = '100' AND name = 'viewers' ORDER BY ts DESC LIMIT 1`); live.Viewers != want {
		t.Errorf("viewers %v, SQL %v", live.Viewers, want)
	}
	if live.Light != "red" || live.OpenAlerts != 1 {
		t.Errorf("live/100 light %s with %d open alerts, want red with the firing crisis alert", live.Light, live.OpenAlerts)
	}
	if n := by["news/acme"]; n.Light != "green" || n.PerMin != 1 {
		t.Errorf("news/acme %+v, want green with 1 item in the last minute", n)
	}
	if fr := by["forum/"]; fr.Health != "broken" || !strings.Contains(fr.HealthNote, "shape_drift") {
		t.Errorf("forum %+v, want a broken source listed though it said nothing", fr)
	}
	// Brands side by side over the last hour (over the 15 minutes it read
	// back when it started, until it has seen an hour).
	if len(ov.Brands) != 2 || ov.Brands[0].Name != "acme" || ov.Brands[1].Name != "rival" {
		t.Fatalf("brands %+v, want acme then rival", ov.Brands)
	}
	acme := f.one(t, `SELECT count(*) FROM items WHERE json_extract(labels, '$.brand') = 'acme' AND ts >= ?`, ts(15*time.Minute))
	branded := f.one(t, `SELECT count(*) FROM items WHERE json_extract(labels, '$.brand') IS NOT NULL AND ts >= ?`, ts(15*time.Minute))
	if b := ov.Brands[0]; float64(b.Items) != acme || b.ShareOfVoice != acme/branded {
		t.Errorf("acme %+v, SQL %v of %v", b, acme, branded)
	}
	// New rows reach the overview through the counts the writer publishes.
	var more []item.Item
	for i := range 30 {
		more = append(more, f.chat(now.Add(-time.Duration(i)*time.Second), "退款", item.Negative, nil))
	}
	if _, err := f.st.WriteItems(context.Background(), more); err != nil {
		t.Fatal(err)
	}
	wantMin := f.one(t, `SELECT count(*) FROM items WHERE room = '100' AND ts >= ?`, ts(time.Minute))
	wantNeg := f.one(t, `SELECT avg(sentiment = 'negative') FROM items WHERE room = '100' AND ts >= ? AND sentiment IS NOT NULL`, ts(5*time.Minute))
	testutil.Eventually(t, "the overview to count the new rows", 10*time.Second, func() bool {
		_, body := get(t, http.DefaultClient, f.http.URL+"/api/overview")
		var ov ui.Overview
		json.Unmarshal([]byte(body), &ov)
		for _, r := range ov.Rooms {
			if r.Source == "live" && r.Room == "100" {
				return r.PerMin == wantMin && r.Negative == wantNeg
			}
		}
		return false
	})
	// The page itself, in both languages.
	_, page := get(t, http.DefaultClient, f.http.URL+"/")
	if !strings.Contains(page, `class="card light-red" data-source="live" data-room="100"`) || !strings.Contains(page, "<h1>Overview</h1>") ||
		!strings.Contains(page, `<tr data-brand="rival">`) {
		t.Errorf("overview page lacks the red live card:\n%s", page)
	}
	_, zh := get(t, http.DefaultClient, f.http.URL+"/", "Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
	if !strings.Contains(zh, "<h1>总览</h1>") || !strings.Contains(zh, `lang="zh"`) {
		t.Error("Accept-Language zh-CN did not give the Chinese page")
	}
}

func TestRoomHistoryAndStream(t *testing.T) {
	f := newFixture(t, "")
	q := "?source=live&room=100"
	code, body := get(t, http.DefaultClient, f.http.URL+"/api/room"+q)
	if code != 200 {
		t.Fatalf("GET /api/room: %d %s", code, body)
	}
	var h ui.History
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	var msgs, neg int
	viewers := 0
	for _, s := range h.Slices {
		msgs += s.Messages
		neg += s.Negative
		if s.Viewers >= 0 {
			viewers++
		}
	}
	from := store.FormatTime(now.Add(-15 * time.Minute))
	if want := int(f.one(t, `SELECT count(*) FROM items WHERE room = '100' AND kind = 'chat' AND ts >= ? AND deleted_at IS NULL`, from)); msgs != want {
		t.Errorf("history slices hold %d messages, SQL %d (deleted messages left out)", msgs, want)
	}
	if want := int(f.one(t, `SELECT count(*) FROM items WHERE room = '100' AND sentiment = 'negative' AND ts >= ? AND deleted_at IS NULL`, from)); neg != want {
		t.Errorf("history slices hold %d negative, SQL %d (deleted messages left out)", neg, want)
	}
	if n := f.one(t, `SELECT count(*) FROM items WHERE deleted_at IS NOT NULL`); n != 1 {
		t.Errorf("%v deleted items in the fixture, want 1", n)
	}
	if want := int(f.one(t, `SELECT count(*) FROM metrics WHERE room = '100' AND name = 'viewers' AND ts >= ?`, from)); viewers != want {
		t.Errorf("%d slices with viewers, SQL has %d samples (one per 30 s, slices of 10 s)", viewers, want)
	}
	if want := int64(f.one(t, `SELECT max(id) FROM items`)); h.LastID != want {
		t.Errorf("last_id %d, want %d", h.LastID, want)
	}
	if len(h.Alerts) != 1 || h.Alerts[0].State != "firing" || len(h.Terms) == 0 || h.Terms[0].Term != "主播" {
		t.Errorf("alerts %+v terms %+v", h.Alerts, h.Terms)
	}
	if m := h.Messages[len(h.Messages)-2]; m.Text != "假货，我要退款" || len(m.Keywords) != 1 || m.Keywords[0] != "退款" {
		t.Errorf("last complaint %+v, want it with its keyword", m)
	}
	if m := h.Messages[len(h.Messages)-1]; m.Text != "主播好美" || len(m.Keywords) != 0 {
		t.Errorf("newest message %+v, want the last calm line, no keyword", m)
	}

	// The stream: 300 rows written in one batch reach the browser as
	// coalesced updates, every row counted once, at most 40 quoted each.
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/room/stream%s&after=%d", f.http.URL, q, h.LastID), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	var batch []item.Item
	for i := range 300 {
		label := item.Positive
		if i%3 == 0 {
			label = item.Negative
		}
		batch = append(batch, f.chat(now.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("第%d条", i), label, nil))
	}
	if _, err := f.st.WriteItems(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var gotMsgs, gotNeg, updates int
	var last ui.Message
	for gotMsgs < 300 && sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var u ui.Update
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &u); err != nil {
			t.Fatal(err)
		}
		updates++
		for _, s := range u.Slices {
			gotMsgs += s.Messages
			gotNeg += s.Negative
		}
		if len(u.Messages) > 40 {
			t.Errorf("an update quotes %d messages, want at most 40", len(u.Messages))
		}
		if len(u.Messages) > 0 {
			last = u.Messages[len(u.Messages)-1]
		}
	}
	if gotMsgs != 300 || gotNeg != 100 {
		t.Fatalf("stream counted %d messages (%d negative), want 300 (100); scan err %v", gotMsgs, gotNeg, sc.Err())
	}
	if updates > 3 {
		t.Errorf("%d updates for one batch: the stream should coalesce", updates)
	}
	if last.Text != "第299条" {
		t.Errorf("newest streamed message %q, want 第299条", last.Text)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// TestSilenceLikeCLI: the dashboard's Silence stores what `lookout silence
// add rule=… room=…` stores, and only from the dashboard's own form.
func TestSilenceLikeCLI(t *testing.T) {
	f := newFixture(t, "")
	_, page := get(t, http.DefaultClient, f.http.URL+"/alerts")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `data-alert="crisis/100/1"`) {
		t.Fatalf("alerts page lacks the firing alert's silence form:\n%s", page)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(form url.Values, hdr ...string) int {
		req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/alerts/silence", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := url.Values{"csrf": {m[1]}, "alert": {"crisis/100/1"}, "for": {"2h"}, "comment": {"known"}}
	for _, c := range []struct {
		name string
		form url.Values
		hdr  []string
		want int
	}{
		{"no form token", url.Values{"alert": {"crisis/100/1"}, "for": {"2h"}}, nil, 403},
		{"wrong form token", url.Values{"csrf": {strings.Repeat("0", 64)}, "alert": {"crisis/100/1"}, "for": {"2h"}}, nil, 403},
		{"other origin", good, []string{"Origin", "http://evil.example"}, 403},
		{"cross-site fetch", good, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"bad duration", url.Values{"csrf": {m[1]}, "alert": {"crisis/100/1"}, "for": {"forever"}}, nil, 400},
		{"unknown alert", url.Values{"csrf": {m[1]}, "alert": {"nope"}, "for": {"2h"}}, nil, 404},
	} {
		if got := post(c.form, c.hdr...); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	if n := f.one(t, `SELECT count(*) FROM silences`); n != 0 {
		t.Fatalf("%v silences stored by refused requests", n)
	}
	if got := post(good, "Origin", f.http.URL, "Sec-Fetch-Site", "same-origin"); got != http.StatusSeeOther {
		t.Fatalf("silence from the page: status %d", got)
	}
	var ms, comment, by, starts, ends string
	if err := f.db.QueryRow(`SELECT matchers, comment, created_by, starts_at, ends_at FROM silences`).Scan(&ms, &comment, &by, &starts, &ends); err != nil {
		t.Fatal(err)
	}
	// The CLI's silence for the same alert, in a database of its own.
	cli := filepath.Join(t.TempDir(), "cli.db")
	if err := daemon.Silence(context.Background(), cli, "add", []string{"rule=crisis-burst", "room=100"}, 2*time.Hour, "known", "me", io.Discard); err != nil {
		t.Fatal(err)
	}
	cdb, _ := sql.Open("sqlite3", "file:"+cli+"?mode=ro")
	defer cdb.Close()
	var cliMs string
	if err := cdb.QueryRow(`SELECT matchers FROM silences`).Scan(&cliMs); err != nil {
		t.Fatal(err)
	}
	if ms != cliMs || comment != "known" || by != "dashboard" || starts != store.FormatTime(now) || ends != store.FormatTime(now.Add(2*time.Hour)) {
		t.Errorf("dashboard stored %s %q %q %s–%s; the CLI stores matchers %s", ms, comment, by, starts, ends, cliMs)
	}
	_, page = get(t, http.DefaultClient, f.http.URL+"/alerts")
	if strings.Contains(page, `action="/alerts/silence"`) || !strings.Contains(page, "Silenced") {
		t.Error("the silenced alert still offers Silence")
	}
	// Expire it from the page, too.
	sid := f.one(t, `SELECT count(*) FROM silences WHERE expired_at IS NULL`)
	var id string
	f.db.QueryRow(`SELECT id FROM silences`).Scan(&id)
	req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/silences/expire", strings.NewReader(url.Values{"csrf": {m[1]}, "id": {id}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sid != 1 || resp.StatusCode != http.StatusSeeOther || f.one(t, `SELECT count(*) FROM silences WHERE expired_at IS NOT NULL`) != 1 {
		t.Errorf("expire: status %d, silence not expired", resp.StatusCode)
	}
}

func TestToken(t *testing.T) {
	f := newFixture(t, "s3cret")
	if code, _ := get(t, http.DefaultClient, f.http.URL+"/"); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	if code, _ := get(t, http.DefaultClient, f.http.URL+"/?token=wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	if code, _ := get(t, http.DefaultClient, f.http.URL+"/api/overview", "Authorization", "Bearer s3cret"); code != 200 {
		t.Errorf("bearer token: %d", code)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	code, body := get(t, c, f.http.URL+"/alerts?token=s3cret")
	if code != 200 || !strings.Contains(body, "crisis-burst") {
		t.Fatalf("?token= then the cookie: %d", code)
	}
	if code, _ := get(t, c, f.http.URL+"/search"); code != 200 {
		t.Errorf("cookie: %d", code)
	}
	// A form token minted for one session does not work for another.
	m := csrfRE.FindStringSubmatch(body)
	req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/alerts/silence", strings.NewReader(url.Values{"csrf": {m[1]}, "alert": {"crisis/100/1"}, "for": {"1h"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("form token of the cookie session used without the cookie: %d", resp.StatusCode)
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t, "")
	_, page := get(t, http.DefaultClient, f.http.URL+"/search?q=退款&room=100&sentiment=negative&from=30m")
	got := strings.Count(page, `<li class="s-negative">`)
	want := int(f.one(t, `SELECT count(*) FROM items WHERE room = '100' AND sentiment = 'negative' AND instr(text, '退款') > 0 AND ts >= ?`, store.FormatTime(now.Add(-30*time.Minute))))
	if got != want || want == 0 {
		t.Errorf("search found %d, SQL %d", got, want)
	}
	if _, page := get(t, http.DefaultClient, f.http.URL+"/search?q=退款&sentiment=positive"); strings.Contains(page, "<li class=") {
		t.Error("a positive filter found complaints")
	}
	if code, _ := get(t, http.DefaultClient, f.http.URL+"/search?q=x&sentiment=angry"); code != http.StatusBadRequest {
		t.Errorf("bad sentiment: %d", code)
	}
	if code, _ := get(t, http.DefaultClient, f.http.URL+"/search?q=x&from=yesterday-ish"); code != http.StatusBadRequest {
		t.Errorf("bad time: %d", code)
	}
}

func TestListenWarning(t *testing.T) {
	for _, c := range []struct {
		addr, token string
		warn        bool
	}{
		{"127.0.0.1:8080", "", false},
		{"localhost:8080", "", false},
		{"[::1]:8080", "", false},
		{"0.0.0.0:8080", "", true},
		{":8080", "", true},
		{"192.168.1.5:8080", "", true},
		{"0.0.0.0:8080", "tok", false},
	} {
		if got := ui.ListenWarning(c.addr, c.token) != ""; got != c.warn {
			t.Errorf("ListenWarning(%q, %q) warns %v, want %v", c.addr, c.token, got, c.warn)
		}
	}
}

// TestDaemonServesDashboard runs the real daemon against a loopback live
// room with --ui on a free port and watches the room through the stream.
func TestDaemonServesDashboard(t *testing.T) {
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: 4455})
	defer live.Close()
	dbPath := filepath.Join(t.TempDir(), "lookout.db")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
store: { path: %q, batch_size: 64, flush_interval: 50ms }
http: { listen: "off" }
limits: { default: { rate: 100/s, burst: 100 } }
sources:
  - id: live
    kind: bilibili_live
    room: 4455
    api_base: %q
    nav_base: %q
    hosts: [%q]
    heartbeat: 2s
`, dbPath, live.URL(), live.URL(), live.WSURL())), "ui.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := daemon.New(ctx, daemon.Options{Config: cfg, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), UIListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	testutil.Eventually(t, "the dashboard to listen", 10*time.Second, func() bool { return d.UIAddr() != "" })
	base := "http://" + d.UIAddr()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := live.WaitConnected(wctx, 1); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	defer scancel()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, base+"/api/room/stream?source=live&room=4455", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The stream starts after the newest row when the browser connects;
	// push once it is subscribed.
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "retry:") {
		t.Fatalf("stream did not start: %q", sc.Text())
	}
	ts := time.Now()
	live.Push(loopback.BilibiliDanmaku(1, "fan", "主播好棒，已下单", ts, "m1"),
		loopback.BilibiliDanmaku(2, "angry", "假货！退款！", ts, "m2"),
		loopback.BilibiliOnlineRankCount(3210))
	var texts []string
	viewers := -1.0
	for (len(texts) < 2 || viewers < 0) && sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var u ui.Update
		if err := json.Unmarshal([]byte(line[len("data: "):]), &u); err != nil {
			t.Fatal(err)
		}
		for _, m := range u.Messages {
			texts = append(texts, m.Text+"/"+m.Sentiment)
		}
		if u.Viewers >= 0 {
			viewers = u.Viewers
		}
	}
	if len(texts) != 2 || texts[0] != "主播好棒，已下单/positive" || texts[1] != "假货！退款！/negative" || viewers != 3210 {
		t.Fatalf("streamed %v, viewers %v; want both messages scored, and 3210 viewers (scan: %v)", texts, viewers, sc.Err())
	}
	code, body := get(t, http.DefaultClient, base+"/api/overview")
	if code != 200 || !strings.Contains(body, `"room":"4455"`) {
		t.Errorf("overview: %d %s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
