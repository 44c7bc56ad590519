package html

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/collectors"
	"lookout/collectors/collectortest"
	"lookout/collectors/poll"
	"lookout/config"
	"lookout/internal/loopback"

	"lookout/internal/testutil"
)

// htmlForumSpec matches testdata/html/forum.html and the loopback forum.
func htmlForumSpec() htmlSpec {
	return htmlSpec{Selectors: htmlSelectors{Item: "li.post", ID: "@data-pid", Title: "a.title", Text: "div.content", Author: "span.author",
		AuthorID: "span.author@data-uid", Time: "span.time", Link: "a.title", Next: "a.next"}}
}

type htmlGolden struct {
	ID, Text, Author, AuthorID, URL, TS string
}

func TestHTMLExtractFixtures(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	x, err := htmlNewExtractor(htmlForumSpec(), config.SourceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("https://bbs.example.com/bbs/forum-12-1.html")
	var golden []byte
	for _, tc := range []struct{ file, contentType string }{
		{"forum.html", "text/html; charset=utf-8"},
		{"forum_gbk.html", "text/html"},              // charset from <meta>
		{"forum_gbk.html", "text/html; charset=GBK"}, // charset from the header
	} {
		body, err := os.ReadFile(filepath.Join("testdata", "html", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		doc, _, err := htmlDecode(body, tc.contentType, "")
		if err != nil {
			t.Fatal(err)
		}
		recs, next := x.extract(doc, base, now)
		var got []htmlGolden
		for _, r := range recs {
			if r.timeErr != nil {
				t.Errorf("%s %s: %v", tc.file, r.ID, r.timeErr)
			}
			got = append(got, htmlGolden{r.ID, r.Text, r.Author, r.AuthorID, r.URL, r.TS.UTC().Format(time.RFC3339)})
		}
		out, _ := json.MarshalIndent(map[string]any{"items": got, "next": next}, "", "  ")
		out = append(out, '\n')
		if golden == nil {
			golden = out
			testutil.Golden(t, filepath.Join("testdata", "html", "forum.golden.json"), out)
			continue
		}
		if string(out) != string(golden) {
			t.Errorf("%s (%s) differs from the UTF-8 page:\n%s", tc.file, tc.contentType, out)
		}
	}
}

func TestHTMLParseTimes(t *testing.T) {
	sh := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC) // 12:00 in Shanghai
	for _, tc := range []struct {
		in, layout string
		want       time.Time
	}{
		{"2026-01-01 09:00", "", time.Date(2026, 1, 1, 9, 0, 0, 0, sh)},
		{"2026/01/01 09:00", "2006/01/02 15:04", time.Date(2026, 1, 1, 9, 0, 0, 0, sh)},
		{"刚刚", "", now},
		{"5分钟前", "", now.Add(-5 * time.Minute)},
		{"3小时前", "", now.Add(-3 * time.Hour)},
		{"今天 08:30", "", time.Date(2026, 1, 2, 8, 30, 0, 0, sh)},
		{"昨天 23:10", "", time.Date(2026, 1, 1, 23, 10, 0, 0, sh)},
		{"12-31 10:00", "", time.Date(2025, 12, 31, 10, 0, 0, 0, sh)},
		{"01-02", "", time.Date(2026, 1, 2, 0, 0, 0, 0, sh)},
		{"Tue Feb 23 12:28:47 +0800 2021", "", time.Date(2021, 2, 23, 12, 28, 47, 0, sh)},
	} {
		got, err := poll.ParseTime(tc.in, tc.layout, sh, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"明天", "soon", "25:99"} {
		if _, err := poll.ParseTime(bad, "", sh, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func htmlSiteSource(srv *loopback.HTMLSiteServer, id, path string) string {
	return fmt.Sprintf(`id: %s
kind: html
url: %s%s
selectors:
  item: li.post
  id: "@data-pid"
  title: a.title
  text: div.content
  author: span.author
  time: span.time
  link: a.title
  next: a.next
time_layout: "2006-01-02 15:04"
max_pages: 5
`, id, srv.URL, path)
}

func htmlPosts(from, to int) []loopback.HTMLPost {
	var out []loopback.HTMLPost
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for i := from; i <= to; i++ {
		out = append(out, loopback.HTMLPost{ID: 3000 + i, Title: fmt.Sprintf("标题%d", i), Author: fmt.Sprintf("用户%d", i),
			Time: t0.Add(time.Duration(i) * time.Minute), Body: fmt.Sprintf("正文%d：客服不理人", i)})
	}
	return out
}

func TestHTMLPaginationRelativeLinksAndRestart(t *testing.T) {
	srv := loopback.NewHTMLSiteServer()
	defer srv.Close()
	srv.Add(htmlPosts(1, 7)...)
	state := collectors.NewMemState()
	cfg := htmlSiteSource(srv, "forum", "/forum")
	c, err := registry().New(collectortest.SourceConfig(t, cfg), collectortest.PollEnv(t, collectortest.NewInstantClock(), state))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var sink collectortest.Sink
	if err := c.(*htmlCollector).poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "3001,3002,3003,3004,3005,3006,3007" {
		t.Fatalf("first poll %s", got)
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("pages read %d, want 3: %v", n, srv.Requests())
	}
	first := sink.All()[0]
	if first.URL != srv.URL+"/thread/3001.html" || first.Text != "标题1\n正文1：客服不理人" || first.Author != "用户1" ||
		!first.TS.Equal(time.Date(2026, 11, 20, 8, 1, 0, 0, time.UTC)) || first.Platform != "web" || first.Kind != "post" {
		t.Errorf("item = %+v", first)
	}

	srv.Add(htmlPosts(8, 8)...)
	c2, err := registry().New(collectortest.SourceConfig(t, cfg), collectortest.PollEnv(t, collectortest.NewInstantClock(), state))
	if err != nil {
		t.Fatal(err)
	}
	sink.Reset()
	n := len(srv.Requests())
	if err := c2.(*htmlCollector).poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "3008" {
		t.Fatalf("after restart %s, want 3008", got)
	}
	if reqs := srv.Requests()[n:]; len(reqs) != 1 {
		t.Errorf("restart poll read %v, want only page 1", reqs)
	}
}

func TestHTMLGBKPages(t *testing.T) {
	srv := loopback.NewHTMLSiteServer()
	defer srv.Close()
	srv.Add(htmlPosts(1, 2)...)
	for _, path := range []string{"/gbk", "/gbk-meta", "/gbk-bare"} {
		c, err := registry().New(collectortest.SourceConfig(t, htmlSiteSource(srv, "gbk", path)), collectortest.PollEnv(t, collectortest.NewInstantClock(), nil))
		if err != nil {
			t.Fatal(err)
		}
		var sink collectortest.Sink
		if err := c.(*htmlCollector).poll(context.Background(), sink.Emit); err != nil {
			t.Fatal(err)
		}
		its := sink.All()
		if len(its) != 2 || its[1].Text != "标题2\n正文2：客服不理人" || its[1].Author != "用户2" {
			t.Errorf("%s: items %+v", path, its)
		}
	}
}

func TestHTMLShapeDriftWarns(t *testing.T) {
	srv := loopback.NewHTMLSiteServer()
	defer srv.Close()
	srv.Add(htmlPosts(1, 2)...)
	state := collectors.NewMemState()
	env, logs := collectortest.PollEnvLogs(t, collectortest.NewInstantClock(), state)
	c, err := registry().New(collectortest.SourceConfig(t, htmlSiteSource(srv, "drift", "/forum")), env)
	if err != nil {
		t.Fatal(err)
	}
	hc := c.(*htmlCollector)
	ctx := context.Background()
	var sink collectortest.Sink
	if err := hc.poll(ctx, sink.Emit); err != nil || len(sink.All()) != 2 {
		t.Fatalf("first poll: %v %v", err, sink.IDs())
	}
	srv.SetDrift(true)
	srv.Add(htmlPosts(3, 3)...)
	if err := hc.poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "source_broken") || !strings.Contains(logs.String(), "shape_drift") {
		t.Errorf("no source_broken warning in log:\n%s", logs.String())
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("drift", "shape_drift")); got != 1 {
		t.Errorf("shape_drift count = %v", got)
	}
	if v, _, _ := state.GetState(ctx, "drift", "shape_drift"); !strings.Contains(v, "/forum") {
		t.Errorf("shape_drift state = %q", v)
	}
	srv.SetDrift(false)
	if err := hc.poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := state.GetState(ctx, "drift", "shape_drift"); v != "" {
		t.Errorf("shape_drift not cleared after recovery: %q", v)
	}
	if got := strings.Join(sink.IDs(), ","); got != "3001,3002,3003" {
		t.Errorf("items %s", got)
	}
}

func TestHTMLConfigErrors(t *testing.T) {
	collectortest.RequireConfigErrors(t, registry(), []collectortest.ConfigError{
		{YAML: "id: x\nkind: html\nurl: http://x/\nselectors: {text: p}\n", Want: "item: required"},
		{YAML: "id: x\nkind: html\nurl: http://x/\nselectors: {item: \"li[\", text: p}\n", Want: "bad CSS selector"},
		{YAML: "id: x\nkind: html\nurl: x/y\nselectors: {item: li, text: p}\n", Want: "absolute"},
		{YAML: "id: x\nkind: html\nurl: http://x/\nselectors: {item: li}\n", Want: "at least one"},
		{YAML: "id: x\nkind: html\nurl: http://x/\nselectors: {item: li, text: p}\ncharset: klingon\n", Want: "charset"},
		{YAML: "id: x\nkind: html\nurl: http://x/\nselectors: {item: li, text: p, txt: q}\n", Want: "txt"},
	})
}

func FuzzHTMLExtract(f *testing.F) {
	for _, name := range []string{"forum.html", "forum_gbk.html"} {
		if b, err := os.ReadFile(filepath.Join("testdata", "html", name)); err == nil {
			f.Add(b, "text/html")
		}
	}
	f.Add([]byte(`<li class="post" data-pid="1"><a class="title" href="%zz">x</a></li>`), "text/html; charset=gbk")
	f.Add([]byte(`<base href="::"><li class="post"><span class="time">昨天 99:99</span></li><a class="next" href="javascript:x">`), "")
	x, err := htmlNewExtractor(htmlForumSpec(), config.SourceConfig{})
	if err != nil {
		f.Fatal(err)
	}
	base, _ := url.Parse("https://bbs.example.com/forum/")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		doc, _, err := htmlDecode(body, contentType, "")
		if err != nil {
			return
		}
		recs, _ := x.extract(doc, base, now)
		for _, r := range recs {
			if r.ID == "" {
				t.Fatal("record without id")
			}
		}
	})
}

func BenchmarkHTMLExtract(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "html", "forum.html"))
	if err != nil {
		b.Fatal(err)
	}
	x, err := htmlNewExtractor(htmlForumSpec(), config.SourceConfig{})
	if err != nil {
		b.Fatal(err)
	}
	base, _ := url.Parse("https://bbs.example.com/forum/")
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	n := 0
	for b.Loop() {
		doc, _, err := htmlDecode(body, "text/html; charset=utf-8", "")
		if err != nil {
			b.Fatal(err)
		}
		recs, _ := x.extract(doc, base, now)
		n += len(recs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "items/s")
}

func TestHTMLRetryAfter503(t *testing.T) {
	srv := loopback.NewHTMLSiteServer()
	defer srv.Close()
	srv.Add(htmlPosts(1, 1)...)
	srv.FailNext(503, "45", 2)
	clk := collectortest.NewInstantClock()
	env := collectortest.PollEnv(t, clk, nil)
	c, err := registry().New(collectortest.SourceConfig(t, htmlSiteSource(srv, "busy", "/forum")+"every: 10m\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var sink collectortest.Sink
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink.Emit) }()
	collectortest.Wait(t, "the post after two 503s", func() bool { return len(sink.All()) == 1 })
	cancel()
	<-done
	w := clk.Waits()
	if len(w) < 2 || w[0] < 45*time.Second || w[1] < 45*time.Second {
		t.Errorf("waits %v, want two ≥ 45s (Retry-After)", w)
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("busy", "http_503")); got != 2 {
		t.Errorf("http_503 = %v", got)
	}
}

// registry has the one kind this package's tests build.
func registry() collectors.Registry { return collectors.Registry{"html": New} }

// A page whose charset is forced wrong decodes to replacement characters:
// the items are kept, and the source's health warns, naming the cause.
func TestHTMLGarbledTextWarns(t *testing.T) {
	srv := loopback.NewHTMLSiteServer()
	defer srv.Close()
	srv.Add(htmlPosts(1, 6)...)
	env, logs := collectortest.PollEnvLogs(t, collectortest.NewInstantClock(), nil)
	c, err := registry().New(collectortest.SourceConfig(t, htmlSiteSource(srv, "bad", "/gbk-bare")+"charset: utf-8\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	hc := c.(*htmlCollector)
	var sink collectortest.Sink
	if err := hc.poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	if len(sink.All()) == 0 {
		t.Fatal("garbled page yielded no items")
	}
	w := hc.env.Health.Status().Warnings
	if len(w) != 1 || !strings.HasPrefix(w[0], "encoding: ") || !strings.Contains(w[0], "utf-8") {
		t.Errorf("health warnings %q, want one encoding warning", w)
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("bad", "garbled_text")); got != 1 {
		t.Errorf("garbled_text count = %v", got)
	}
	if !strings.Contains(logs.String(), "text garbled") || !strings.Contains(logs.String(), "source=bad") {
		t.Errorf("log does not name the source:\n%s", logs.String())
	}
	// Sniffed instead of forced: clean, and the warning clears.
	hc.spec.Charset = ""
	srv.Add(htmlPosts(7, 7)...)
	if err := hc.poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	if w := hc.env.Health.Status().Warnings; len(w) != 0 {
		t.Errorf("warnings after a clean page: %q", w)
	}
}

func TestHTMLObeysRobots(t *testing.T) {
	srv := loopback.NewHTMLSiteServer()
	defer srv.Close()
	srv.Add(htmlPosts(1, 2)...)
	srv.SetRobots("User-agent: *\nDisallow: /forum\n")
	for _, tc := range []struct {
		extra   string
		wantErr bool
	}{{"", true}, {"ignore_robots: true\n", false}} {
		env := collectortest.PollEnv(t, collectortest.NewInstantClock(), nil)
		c, err := registry().New(collectortest.SourceConfig(t, htmlSiteSource(srv, "f", "/forum")+tc.extra), env)
		if err != nil {
			t.Fatal(err)
		}
		var sink collectortest.Sink
		err = c.(*htmlCollector).poll(context.Background(), sink.Emit)
		if tc.wantErr {
			if poll.Reason(err) != "robots_disallowed" || len(sink.All()) != 0 {
				t.Errorf("disallowed: err %v (reason %s), %d items", err, poll.Reason(err), len(sink.All()))
			}
		} else if err != nil || len(sink.All()) != 2 {
			t.Errorf("ignore_robots: err %v, %d items", err, len(sink.All()))
		}
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("forum fetched %d times, want 1 (only with ignore_robots)", n)
	}
}

// A text selector that matches nothing in any entry (the site renamed the
// element) is shape drift naming the selector, even though the titles
// still make items.
func TestHTMLTextSelectorMissingIsShapeDrift(t *testing.T) {
	srv := loopback.NewHTMLSiteServer()
	defer srv.Close()
	srv.Add(htmlPosts(1, 2)...)
	env, logs := collectortest.PollEnvLogs(t, collectortest.NewInstantClock(), nil)
	cfg := strings.Replace(htmlSiteSource(srv, "renamed", "/forum"), "text: div.content", "text: div.message", 1)
	c, err := registry().New(collectortest.SourceConfig(t, cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	hc := c.(*htmlCollector)
	var sink collectortest.Sink
	if err := hc.poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	if len(sink.All()) != 2 {
		t.Errorf("%d items, want 2 (titles only, kept)", len(sink.All()))
	}
	st := hc.env.Health.Status()
	if st.Reason != "shape_drift" || !strings.Contains(st.Detail, `selectors.text "div.message"`) {
		t.Errorf("health %s %q, want shape_drift naming selectors.text", st.Reason, st.Detail)
	}
	if !strings.Contains(logs.String(), "source_broken") {
		t.Errorf("no source_broken warning:\n%s", logs.String())
	}
}
