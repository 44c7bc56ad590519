package report_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/internal/testutil"
	"lookout/item"
	"lookout/report"
	"lookout/store"
)

// showStart is when the fixture's show begins.
var showStart = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fixture writes one hour of a live room through the store's own writer: a
// calm first half, a complaint storm from minute 30 to 40 while viewers
// fall, gifts, super chats, likes; a news feed beside it; earlier days'
// history for the room's normal; and two alerts (one fired and resolved,
// one only pending).
func fixture(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lookout.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var items []item.Item
	chat := func(n int, ts time.Time, text string, label item.Label, score float64, terms ...string) {
		items = append(items, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindChat, Labels: map[string]string{"brand": "acme"},
			ID: fmt.Sprintf("c%d", n), Author: fmt.Sprintf("u%d", n%17), Text: text, TS: ts,
			Score: item.Score{Scored: true, Label: label, Value: score, Prob: 0.9, Lang: "zh", Terms: terms}})
	}
	n := 0
	// History: three days earlier, 100 lines, 5 % negative.
	for i := range 100 {
		n++
		lbl, sc := item.Neutral, 0.0
		if i%20 == 0 {
			lbl, sc = item.Negative, -0.6
		}
		chat(n, showStart.Add(-72*time.Hour+time.Duration(i)*time.Second), "老粉来了", lbl, sc)
	}
	for s := 0; s < 3600; s += 6 {
		ts := showStart.Add(time.Duration(s) * time.Second)
		n++
		storm := s >= 1800 && s < 2400
		switch {
		case storm && n%3 != 0:
			chat(n, ts, "假货！我要退款", item.Negative, -0.8-float64(n%5)/100, "假货", "退款")
		case storm:
			chat(n, ts, "客服不理人，退款", item.Negative, -0.7, "客服", "退款")
		case n%4 == 0:
			chat(n, ts, "主播好美，面霜好用", item.Positive, 0.8+float64(n%3)/100, "面霜")
		default:
			chat(n, ts, "几点开始抽奖", item.Neutral, 0.05)
		}
		if s%60 == 0 {
			viewers := 5000.0 + float64(s)
			if s >= 1800 {
				viewers = 2500 - float64(s-1800)/2
			}
			items = append(items, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindMetric,
				ID: fmt.Sprintf("v%d", s), Metric: item.MetricViewers, Value: viewers, TS: ts})
		}
		if s%300 == 0 {
			// The daemon gives every item of a source its labels.
			items = append(items, item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindGift, Labels: map[string]string{"brand": "acme"},
				ID: fmt.Sprintf("g%d", s), Author: "大哥", Metric: item.MetricGiftValue, Value: 10, Count: 2, TS: ts},
				item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindLike, Labels: map[string]string{"brand": "acme"},
					ID: fmt.Sprintf("l%d", s), Count: 30, TS: ts})
		}
	}
	items = append(items,
		item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindSuperChat, ID: "sc1", Author: "老板", Labels: map[string]string{"brand": "acme"},
			Text: "主播加油", Metric: item.MetricGiftValue, Value: 30, TS: showStart.Add(5 * time.Minute),
			Score: item.Score{Scored: true, Label: item.Positive, Value: 0.9, Prob: 0.9, Lang: "zh"}},
		item.Item{Source: "rival", Platform: "douyin", Room: "900", Kind: item.KindChat, ID: "r1", Author: "路人",
			Text: "对面的面霜更便宜", TS: showStart.Add(20 * time.Minute), Labels: map[string]string{"brand": "rival"},
			Score: item.Score{Scored: true, Label: item.Positive, Value: 0.6, Prob: 0.8, Lang: "zh", Terms: []string{"面霜", "便宜"}}},
		item.Item{Source: "rival", Platform: "douyin", Room: "900", Kind: item.KindChat, ID: "r2", Author: "路人2",
			Text: "对面发货也慢", TS: showStart.Add(21 * time.Minute), Labels: map[string]string{"brand": "rival"},
			Score: item.Score{Scored: true, Label: item.Negative, Value: -0.6, Prob: 0.8, Lang: "zh", Terms: []string{"发货"}}},
		item.Item{Source: "news", Platform: "rss", Room: "acme", Kind: item.KindPost, ID: "n1", Author: "记者",
			Text: "Acme 直播间被曝光销售假货", TS: showStart.Add(35 * time.Minute),
			Score: item.Score{Scored: true, Label: item.Negative, Value: -0.5, Prob: 0.8, Lang: "zh"}},
		// Outside the window: must not count.
		item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindChat, ID: "late", Text: "晚安",
			TS: showStart.Add(2 * time.Hour), Score: item.Score{Scored: true, Label: item.Positive, Value: 0.5, Prob: 0.7}},
	)
	if _, err := st.WriteItems(ctx, items); err != nil {
		t.Fatal(err)
	}
	record := func(id string, seq int, state, sev string, at, started, resolved time.Time) {
		rec := store.AlertEventRecord{EventID: fmt.Sprintf("%s/%d", id, seq), AlertID: id, Seq: seq, Rule: strings.Split(id, "/")[0],
			RuleKind: "negative_ratio", Severity: sev, State: state, Room: "100", Source: "live", Platform: "bilibili",
			Summary: "negative share 62 % (normal 5 %)", StartedAt: started, At: at, ResolvedAt: resolved}
		if _, err := st.RecordAlertEvent(ctx, rec, at, nil); err != nil {
			t.Fatal(err)
		}
	}
	start := showStart.Add(31 * time.Minute)
	record("negative-surge/100/1", 1, "pending", "yellow", start, start, time.Time{})
	record("negative-surge/100/1", 2, "firing", "red", start.Add(10*time.Second), start, time.Time{})
	record("negative-surge/100/1", 3, "resolved", "red", start.Add(9*time.Minute), start, start.Add(9*time.Minute))
	blip := showStart.Add(50 * time.Minute)
	record("viewers-drop/100/2", 1, "pending", "yellow", blip, blip, time.Time{})
	record("viewers-drop/100/2", 2, "resolved", "yellow", blip.Add(5*time.Second), blip, blip.Add(5*time.Second))
	return path
}

func build(t *testing.T, path string, room string) *report.Report {
	t.Helper()
	r, err := report.Build(context.Background(), path, report.Options{Room: room, From: showStart, To: showStart.Add(time.Hour),
		Now: showStart.Add(90 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGolden(t *testing.T) {
	path := fixture(t)
	r := build(t, path, "")
	for _, f := range []string{"md", "json"} {
		var buf bytes.Buffer
		if err := report.Render(&buf, r, f); err != nil {
			t.Fatal(err)
		}
		testutil.Golden(t, filepath.Join("testdata", "report."+f), buf.Bytes())
	}
}

// TestNumbersMatchSQL checks the report's figures against plain queries on
// the same file.
func TestNumbersMatchSQL(t *testing.T) {
	path := fixture(t)
	r := build(t, path, "100")
	if len(r.Rooms) != 1 || r.Rooms[0].Room != "100" {
		t.Fatalf("--room 100 gave rooms %+v", r.Rooms)
	}
	rm := r.Rooms[0]
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	from, to := store.FormatTime(showStart), store.FormatTime(showStart.Add(time.Hour))
	one := func(q string) float64 {
		t.Helper()
		var v float64
		if err := db.QueryRow(q, from, to).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}
	where := ` WHERE source = 'live' AND room = '100' AND ts >= ? AND ts < ?`
	checks := []struct {
		name string
		got  float64
		sql  string
	}{
		{"items", float64(rm.Items), `SELECT count(*) FROM items` + where},
		{"messages", float64(rm.Messages), `SELECT count(*) FROM items` + where + ` AND kind IN ('chat','superchat')`},
		{"negative", float64(rm.Sentiment.Negative), `SELECT count(*) FROM items` + where + ` AND sentiment = 'negative'`},
		{"negative share", rm.Sentiment.NegativeShare, `SELECT 1.0 * sum(sentiment = 'negative') / count(*) FROM items` + where + ` AND sentiment IS NOT NULL`},
		{"peak viewers", rm.Viewers.Peak, `SELECT max(value) FROM metrics` + where + ` AND name = 'viewers'`},
		{"average viewers", rm.Viewers.Average, `SELECT avg(value) FROM metrics` + where + ` AND name = 'viewers'`},
		{"gift value", rm.Gifts.GiftValue, `SELECT sum(value) FROM items` + where + ` AND kind = 'gift'`},
		{"gifts", float64(rm.Gifts.Gifts), `SELECT sum(count) FROM items` + where + ` AND kind = 'gift'`},
		{"super chat value", rm.Gifts.SuperChatValue, `SELECT sum(value) FROM items` + where + ` AND kind = 'superchat'`},
		{"interactions", float64(rm.Interactions), `SELECT sum(CASE WHEN kind IN ('like','gift') THEN count ELSE 1 END) FROM items` + where + ` AND kind IN ('chat','superchat','like','gift')`},
		{"top complaint mentions", float64(rm.Complaints[0].Mentions), `SELECT count(*) FROM items i, json_each(i.terms) j` + strings.ReplaceAll(where, "source", "i.source") + ` AND i.sentiment = 'negative' AND j.value = '退款'`},
		{"normal", rm.Sentiment.Normal, `SELECT 1.0 * sum(sentiment = 'negative') / count(*) FROM items WHERE room = '100' AND ts >= strftime('%Y-%m-%dT%H:%M:%fZ', ?1, '-7 days') AND ts < ?1 AND ?2 != '' AND sentiment IS NOT NULL`},
	}
	for _, c := range checks {
		if want := one(c.sql); math.Abs(c.got-want) > 1e-9 {
			t.Errorf("%s: report says %v, SQL says %v", c.name, c.got, want)
		}
	}
	var peakTS string
	if err := db.QueryRow(`SELECT ts FROM metrics`+where+` AND name = 'viewers' ORDER BY value DESC, ts LIMIT 1`, from, to).Scan(&peakTS); err != nil {
		t.Fatal(err)
	}
	if got := store.FormatTime(rm.Viewers.PeakAt); got != peakTS {
		t.Errorf("peak at %s, SQL says %s", got, peakTS)
	}
	if rm.Complaints[0].Term != "退款" {
		t.Errorf("top complaint %q, want 退款 (said in every storm line)", rm.Complaints[0].Term)
	}
	// Brands: only without --room; share of voice against SQL.
	if len(r.Brands) != 0 {
		t.Errorf("--room report compares brands: %+v", r.Brands)
	}
	all := build(t, path, "")
	if len(all.Brands) != 2 || all.Brands[0].Name != "acme" || all.Brands[1].Name != "rival" {
		t.Fatalf("brands %+v, want acme then rival", all.Brands)
	}
	acmeItems := one(`SELECT count(*) FROM items WHERE json_extract(labels, '$.brand') = 'acme' AND ts >= ? AND ts < ?`)
	branded := one(`SELECT count(*) FROM items WHERE json_extract(labels, '$.brand') IS NOT NULL AND ts >= ? AND ts < ?`)
	if got := all.Brands[0].ShareOfVoice; math.Abs(got-acmeItems/branded) > 1e-12 || float64(all.Brands[0].Items) != acmeItems {
		t.Errorf("acme share of voice %v (%d items), SQL %v/%v", got, all.Brands[0].Items, acmeItems, branded)
	}
	if b := all.Brands[1]; b.Items != 2 || b.NegativeShare != 0.5 || len(b.HotTerms) != 3 {
		t.Errorf("rival %+v, want 2 items, half negative, 3 terms", b)
	}
	// Only the alert that fired counts; it lasted 9 minutes.
	if len(rm.Alerts) != 1 || rm.Alerts[0].Rule != "negative-surge" || rm.Alerts[0].Duration.D() != 9*time.Minute {
		t.Errorf("alerts %+v, want negative-surge lasting 9m", rm.Alerts)
	}
	// The timeline's buckets add up to the totals.
	var msgs, neg int
	for _, b := range rm.Timeline {
		msgs += b.Messages
		neg += b.Negative
	}
	if msgs != rm.Messages || neg != rm.Sentiment.Negative {
		t.Errorf("timeline sums to %d messages, %d negative; totals %d, %d", msgs, neg, rm.Messages, rm.Sentiment.Negative)
	}
	if rm.Sentiment.Worst == nil || rm.Sentiment.Worst.T.Before(showStart.Add(30*time.Minute)) || !rm.Sentiment.Worst.T.Before(showStart.Add(40*time.Minute)) {
		t.Errorf("worst bucket %+v, want one inside the storm (minutes 30–40)", rm.Sentiment.Worst)
	}
}

// TestHTMLSelfContained checks the HTML page parses, carries both charts
// with data for each room, fetches nothing, and shows the figures.
func TestHTMLSelfContained(t *testing.T) {
	path := fixture(t)
	r := build(t, path, "")
	var buf bytes.Buffer
	if err := report.RenderHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script", "src=", "href=\"http", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: it must not fetch or run anything", bad)
		}
	}
	// Every SVG is well-formed XML.
	for rest := page; ; {
		i := strings.Index(rest, "<svg")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "</svg>")
		svg := rest[i : i+j+len("</svg>")]
		if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
			t.Errorf("chart is not well-formed SVG: %v", err)
		}
		rest = rest[i+j:]
	}
	if got := strings.Count(page, `class="viewers" points=`); got != 1 {
		t.Errorf("%d audience curves with data, want 1 (only the live room has viewers)", got)
	}
	if got := strings.Count(page, `<rect class="neg"`); got < 5 {
		t.Errorf("%d negative bars, want the storm's", got)
	}
	for _, want := range []string{`data-kpi="peak-viewers">6,740<`, `data-kpi="gift-value">¥120.00<`, "假货！我要退款", `data-room="acme"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if os.Getenv("REPORT_HTML_OUT") != "" {
		os.WriteFile(os.Getenv("REPORT_HTML_OUT"), buf.Bytes(), 0o644)
	}
}

// TestReadOnly: reporting on a database that is not there creates nothing.
func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	if _, err := report.Build(context.Background(), path, report.Options{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v, want 'does not exist'", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("report created %s", path)
	}
	if err := report.Render(new(bytes.Buffer), &report.Report{}, "pdf"); err == nil {
		t.Fatal("format pdf accepted")
	}
}
