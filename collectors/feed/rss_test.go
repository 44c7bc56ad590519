package feed

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lookout/collectors"
	"lookout/collectors/collectortest"
	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/internal/loopback"
	"lookout/item"
	"lookout/store"
)

// rssStepClock is a httpx.Clock the test drives: After records the wait and
// blocks the collector until the test calls fire, which moves time forward
// by the wait and releases it. Nothing sleeps for real, and the test gets
// a quiet moment between polls to look at what happened and change the
// server.
type rssStepClock struct {
	mu      sync.Mutex
	now     time.Time
	pending []rssPendingWait
	waits   []time.Duration
	signal  chan struct{}
}

type rssPendingWait struct {
	d  time.Duration
	ch chan time.Time
}

func newRSSStepClock() *rssStepClock {
	return &rssStepClock{now: time.Date(2024, 6, 10, 8, 0, 0, 0, time.UTC), signal: make(chan struct{}, 1)}
}

func (c *rssStepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *rssStepClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.pending = append(c.pending, rssPendingWait{d: d, ch: ch})
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
	return ch
}

// await blocks until the collector asks to wait, and returns for how long.
func (c *rssStepClock) await(t *testing.T) time.Duration {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.pending) > 0 {
			d := c.pending[0].d
			c.mu.Unlock()
			return d
		}
		c.mu.Unlock()
		select {
		case <-c.signal:
		case <-deadline.C:
			t.Fatal("collector never asked to wait (stuck in a poll?)")
		}
	}
}

// fire ends the oldest pending wait.
func (c *rssStepClock) fire() {
	c.mu.Lock()
	p := c.pending[0]
	c.pending = c.pending[1:]
	c.now = c.now.Add(p.d)
	now := c.now
	c.mu.Unlock()
	p.ch <- now
}

// rssSink records emitted items.
type rssSink struct {
	mu    sync.Mutex
	items []item.Item
}

func (s *rssSink) emit(_ context.Context, it item.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, it)
	return nil
}

// take returns the items emitted since the last take.
func (s *rssSink) take() []item.Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.items
	s.items = nil
	return out
}

func rssIDs(items []item.Item) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

// rssLog is a log destination the collector goroutine and the test share.
type rssLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *rssLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if testing.Verbose() {
		os.Stderr.Write(p)
	}
	return l.buf.Write(p)
}

func (l *rssLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type rssHarness struct {
	clk    *rssStepClock
	env    collectors.Env
	log    *rssLog
	state  collectors.StateStore
	sink   *rssSink
	health *collectors.SourceHealth // set by start
}

func newRSSHarness(state collectors.StateStore) *rssHarness {
	if state == nil {
		state = collectors.NewMemState()
	}
	clk := newRSSStepClock()
	m := collectors.NewMetrics(nil)
	lg := &rssLog{}
	return &rssHarness{
		clk: clk,
		env: collectors.Env{
			HTTP:    httpx.NewClientWith(collectortest.FastLimits(), m.HTTP(), httpx.Options{Clock: clk}),
			State:   state,
			Log:     slog.New(slog.NewTextHandler(lg, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Metrics: m,
			Clock:   clk,
		},
		log:   lg,
		state: state,
		sink:  &rssSink{},
	}
}

// start builds the collector from YAML and runs it until stop.
func (h *rssHarness) start(t *testing.T, yamlText string) (stop func()) {
	t.Helper()
	src, err := config.NewSourceConfig(yamlText)
	if err != nil {
		t.Fatal(err)
	}
	h.health = collectors.NewSourceHealth(src, collectors.HealthOptions{Clock: h.clk})
	env := h.env
	env.Health = h.health
	c, err := registry().New(src, env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h.sink.emit) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v on cancellation, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("Run did not return after cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func rssYAML(url string, extra ...string) string {
	s := "id: news\nkind: rss\nurl: " + url + "\nevery: 1m\njitter: 0.1\nlabels: {brand: acme}\n"
	for _, e := range extra {
		s += e + "\n"
	}
	return s
}

func rssEntries(ids ...string) []loopback.FeedEntrySpec {
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	var out []loopback.FeedEntrySpec
	// Newest first, as feeds list them.
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		out = append(out, loopback.FeedEntrySpec{
			ID:        id,
			Title:     "Title " + id,
			Text:      "<p>Body of <b>" + id + "</b> &amp; more</p>",
			Link:      "https://news.example.com/" + id,
			Author:    "Reporter " + id,
			Published: base.Add(time.Duration(i) * time.Hour),
		})
	}
	return out
}

func rssRequireIDs(t *testing.T, got []item.Item, want ...string) {
	t.Helper()
	ids := rssIDs(got)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("emitted %v, want %v", ids, want)
	}
}

func TestRSSCollectorConditionalGET(t *testing.T) {
	for _, format := range []string{"rss", "atom"} {
		t.Run(format, func(t *testing.T) {
			doc := func(ids ...string) []byte {
				if format == "atom" {
					return loopback.AtomDocument("Acme news", rssEntries(ids...))
				}
				return loopback.RSSDocument("Acme news", rssEntries(ids...))
			}
			srv := loopback.NewFeedServer()
			defer srv.Close()
			srv.SetFeed("/feed.xml", doc("a", "b"), "")
			h := newRSSHarness(nil)
			h.start(t, rssYAML(srv.URL("/feed.xml")))

			// First run ever: the current entries are emitted, oldest first.
			wait := h.clk.await(t)
			items := h.sink.take()
			rssRequireIDs(t, items, "a", "b")
			it := items[0]
			want := item.Item{
				Source: "news", Platform: "rss", Kind: item.KindPost,
				Room: strings.TrimPrefix(srv.URL("/feed.xml"), "http://"),
				ID:   "a", Author: "Reporter a", Text: "Title a\nBody of a & more",
				URL: "https://news.example.com/a", TS: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
			}
			if it.Source != want.Source || it.Platform != want.Platform || it.Kind != want.Kind || it.Room != want.Room ||
				it.Author != want.Author || it.Text != want.Text || it.URL != want.URL || !it.TS.Equal(want.TS) || it.Labels["brand"] != "acme" {
				t.Errorf("item:\n got %+v\nwant %+v", it, want)
			}
			var raw FeedEntry
			if err := json.Unmarshal(it.Raw, &raw); err != nil || raw.ID != "a" {
				t.Errorf("raw payload %q: %v", it.Raw, err)
			}
			if wait < 54*time.Second || wait > 66*time.Second {
				t.Errorf("poll interval %v, want 1m ± 10%%", wait)
			}
			reqs := srv.Requests("/feed.xml")
			if len(reqs) != 1 || reqs[0].Header.Get("If-None-Match") != "" || reqs[0].Header.Get("User-Agent") != config.UserAgent("") {
				t.Fatalf("first request: %+v", reqs)
			}

			// Second poll revalidates and gets a 304: nothing new.
			h.clk.fire()
			h.clk.await(t)
			reqs = srv.Requests("/feed.xml")
			if len(reqs) != 2 || reqs[1].Header.Get("If-None-Match") != srv.ETag("/feed.xml") ||
				reqs[1].Header.Get("If-Modified-Since") == "" || reqs[1].Status != http.StatusNotModified {
				t.Fatalf("revalidation: %+v", reqs[len(reqs)-1])
			}
			if got := h.sink.take(); len(got) != 0 {
				t.Fatalf("304 emitted %v", rssIDs(got))
			}

			// The feed changes: only the new entry comes out.
			oldETag := srv.ETag("/feed.xml")
			srv.SetFeed("/feed.xml", doc("a", "b", "c"), "")
			h.clk.fire()
			h.clk.await(t)
			rssRequireIDs(t, h.sink.take(), "c")
			reqs = srv.Requests("/feed.xml")
			if last := reqs[len(reqs)-1]; last.Header.Get("If-None-Match") != oldETag || last.Status != http.StatusOK {
				t.Errorf("third request: %+v", last)
			}
			if n := collectortest.Count(h.env.Metrics.Items, "news", "post"); n != 3 {
				t.Errorf("items metric %v, want 3", n)
			}
		})
	}
}

func TestRSSCollectorRestartDedupe(t *testing.T) {
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a", "b")), "")
	state := collectors.NewMemState()

	first := newRSSHarness(state)
	stop := first.start(t, rssYAML(srv.URL("/feed.xml")))
	first.clk.await(t)
	rssRequireIDs(t, first.sink.take(), "a", "b")
	stop()
	etag := srv.ETag("/feed.xml")

	// A restart with the feed unchanged revalidates with the stored ETag
	// and emits nothing.
	second := newRSSHarness(state)
	second.start(t, rssYAML(srv.URL("/feed.xml")))
	second.clk.await(t)
	reqs := srv.Requests("/feed.xml")
	if last := reqs[len(reqs)-1]; last.Header.Get("If-None-Match") != etag || last.Status != http.StatusNotModified {
		t.Fatalf("restart did not revalidate: %+v", last)
	}
	if got := second.sink.take(); len(got) != 0 {
		t.Fatalf("restart re-emitted %v", rssIDs(got))
	}

	// A third instance, after the feed changed while nobody watched,
	// emits only what is new.
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a", "b", "c")), "")
	third := newRSSHarness(state)
	third.start(t, rssYAML(srv.URL("/feed.xml")))
	third.clk.await(t)
	rssRequireIDs(t, third.sink.take(), "c")

	// httpx.Validators of another URL are never sent (the config's url changed).
	srv.SetFeed("/other.xml", loopback.RSSDocument("Acme", rssEntries("a", "b", "c")), "")
	fourth := newRSSHarness(state)
	fourth.start(t, rssYAML(srv.URL("/other.xml")))
	fourth.clk.await(t)
	if r := srv.Requests("/other.xml"); len(r) != 1 || r[0].Header.Get("If-None-Match") != "" {
		t.Errorf("stale validators sent to a new URL: %+v", r)
	}
	if got := fourth.sink.take(); len(got) != 0 {
		t.Errorf("same entries at a new URL re-emitted: %v", rssIDs(got))
	}
}

// The same restart against the real state store: a SQLite file closed and
// reopened between the two runs, as across a daemon restart.
func TestRSSCollectorRestartWithSQLite(t *testing.T) {
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a", "b")), "")
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := context.Background()

	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	first := newRSSHarness(db)
	stop := first.start(t, rssYAML(srv.URL("/feed.xml")))
	first.clk.await(t)
	rssRequireIDs(t, first.sink.take(), "a", "b")
	stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a", "b", "c")), "")
	db, err = store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	second := newRSSHarness(db)
	stop = second.start(t, rssYAML(srv.URL("/feed.xml")))
	second.clk.await(t)
	rssRequireIDs(t, second.sink.take(), "c")
	reqs := srv.Requests("/feed.xml")
	if last := reqs[len(reqs)-1]; last.Header.Get("If-None-Match") == "" {
		t.Errorf("restart did not revalidate: %+v", last)
	}
	stop()
}

func TestRSSCollectorRetryAfter(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		retryAfter func(now time.Time) string
		minWait    time.Duration
		maxWait    time.Duration
		reason     string
	}{
		{"429 seconds", 429, func(time.Time) string { return "2" }, 2 * time.Second, time.Minute, "rate_limited"},
		{"429 long", 429, func(time.Time) string { return "600" }, 600 * time.Second, 11 * time.Minute, "rate_limited"},
		{"503 date", 503, func(now time.Time) string { return now.Add(90 * time.Second).Format(http.TimeFormat) }, 90 * time.Second, 2 * time.Minute, "rate_limited"},
		{"503 bare", 503, func(time.Time) string { return "" }, 7 * time.Second, 15 * time.Second, "http_503"},
		{"500", 500, func(time.Time) string { return "" }, 7 * time.Second, 15 * time.Second, "http_500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := loopback.NewFeedServer()
			defer srv.Close()
			srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a")), "")
			h := newRSSHarness(nil)
			srv.FailNext("/feed.xml", tc.status, tc.retryAfter(h.clk.Now()), 1)
			h.start(t, rssYAML(srv.URL("/feed.xml")))

			wait := h.clk.await(t)
			if wait < tc.minWait || wait > tc.maxWait {
				t.Errorf("after %d: wait %v, want in [%v, %v]", tc.status, wait, tc.minWait, tc.maxWait)
			}
			if got := h.sink.take(); len(got) != 0 {
				t.Fatalf("emitted on %d", tc.status)
			}
			if n := collectortest.Count(h.env.Metrics.Errors, "news", tc.reason); n != 1 {
				t.Errorf("errors{reason=%s} = %v", tc.reason, n)
			}
			if n := len(srv.Requests("/feed.xml")); n != 1 {
				t.Errorf("%d requests before the wait was over", n)
			}
			h.clk.fire()
			h.clk.await(t)
			rssRequireIDs(t, h.sink.take(), "a")
		})
	}
}

func TestRSSCollectorTimeout(t *testing.T) {
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a")), "")
	srv.HangNext("/feed.xml", 1)
	h := newRSSHarness(nil)
	h.start(t, rssYAML(srv.URL("/feed.xml"), "timeout: 100ms"))

	wait := h.clk.await(t)
	if n := collectortest.Count(h.env.Metrics.Errors, "news", "timeout"); n != 1 {
		t.Fatalf("errors{reason=timeout} = %v; log:\n%s", n, h.log.String())
	}
	if wait < 7*time.Second || wait > 15*time.Second {
		t.Errorf("backoff after a timeout: %v", wait)
	}
	h.clk.fire()
	h.clk.await(t)
	rssRequireIDs(t, h.sink.take(), "a")
}

func TestRSSCollectorBrokenFeed(t *testing.T) {
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/feed.xml", []byte("<!DOCTYPE html><html><body><p>Maintenance</p></body></html>"), "text/html")
	h := newRSSHarness(nil)
	h.start(t, rssYAML(srv.URL("/feed.xml?token=SECRET")))

	wait := h.clk.await(t)
	if n := collectortest.Count(h.env.Metrics.Errors, "news", "parse"); n != 1 {
		t.Fatalf("errors{reason=parse} = %v", n)
	}
	logs := h.log.String()
	if !strings.Contains(logs, "feed unparseable") || !strings.Contains(logs, "/feed.xml") || !strings.Contains(logs, "HTML page") {
		t.Errorf("log does not explain the failure:\n%s", logs)
	}
	if strings.Contains(logs, "SECRET") {
		t.Errorf("log leaks the URL's query:\n%s", logs)
	}
	if wait < 54*time.Second {
		t.Errorf("after a parse error: wait %v, want the regular interval", wait)
	}
	st := h.health.Status()
	if !strings.Contains(st.LastError, "HTML page") || strings.Contains(st.LastError, "SECRET") || !st.LastErrorAt.Equal(h.clk.Now()) {
		t.Errorf("health after a parse error: %+v", st)
	}
	if _, ok := h.health.Report(); ok || st.State != collectors.HealthConnecting {
		t.Errorf("one bad document: state %s, want connecting and no report", st.State)
	}
	// Bad XML next; still polling, still counted.
	srv.SetFeed("/feed.xml", []byte(`<?xml version="1.0"?><rss><channel><item><title>x</ti`), "application/rss+xml")
	h.clk.fire()
	h.clk.await(t)
	if n := collectortest.Count(h.env.Metrics.Errors, "news", "parse"); n != 2 {
		t.Fatalf("errors{reason=parse} = %v after bad XML", n)
	}
	if got := h.sink.take(); len(got) != 0 {
		t.Fatalf("emitted after two bad documents: %+v", got)
	}
	// The third bad poll in a row: the feed is broken.
	h.clk.fire()
	h.clk.await(t)
	if got := h.sink.take(); len(got) != 0 {
		t.Fatalf("emitted after three bad documents: %+v", got)
	}
	b, ok := h.health.Report()
	if !ok || b.Metric != item.MetricSourceBroken || b.Value != 1 || b.Labels["reason"] != "parse" ||
		!strings.Contains(b.Labels["detail"], "3 attempts in a row failed") || strings.Contains(b.Labels["detail"], "SECRET") {
		t.Fatalf("after three bad documents: %+v (reported %v)", b, ok)
	}
	if st := h.health.Status(); st.State != collectors.HealthBroken {
		t.Fatalf("state %s after three bad documents", st.State)
	}
	// Fixed: the whole document is fetched (the broken one's ETag was not
	// kept), its entries come out, and the feed says it works again.
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a")), "")
	h.clk.fire()
	h.clk.await(t)
	rssRequireIDs(t, h.sink.take(), "a")
	if r, ok := h.health.Report(); !ok || r.Metric != item.MetricSourceBroken || r.Value != 0 {
		t.Fatalf("after the fix: %+v (reported %v)", r, ok)
	}
	if st := h.health.Status(); st.State != collectors.HealthOK || !st.LastSuccess.Equal(h.clk.Now()) || st.LastError == "" {
		t.Errorf("health after the fix: %+v", st)
	}
	reqs := srv.Requests("/feed.xml")
	if last := reqs[len(reqs)-1]; last.Header.Get("If-None-Match") != "" || last.Query != "token=SECRET" {
		t.Errorf("request after broken documents: %+v", last)
	}
}

func TestRSSCollectorGBK(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "rss", "rss_gbk.xml"))
	if err != nil {
		t.Fatal(err)
	}
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/gbk.xml", data, "text/xml") // charset only in the XML declaration
	h := newRSSHarness(nil)
	h.start(t, rssYAML(srv.URL("/gbk.xml"), "room: 品牌新闻"))
	h.clk.await(t)
	items := h.sink.take()
	rssRequireIDs(t, items, "gbk-1002", "gbk-1001")
	if it := items[1]; it.Text != "消费者投诉：退款迟迟不到账\n多名用户反映客服不理人，要求维权。" || it.Room != "品牌新闻" || it.Author != "记者 王芳" {
		t.Errorf("GBK item: %+v", it)
	}
}

// A pubDate without a zone is read in the source's timezone (default
// Asia/Shanghai), as html and json_api read theirs; one with a zone is not
// moved.
func TestRSSCollectorZonelessDates(t *testing.T) {
	doc := []byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><guid>local</guid><title>local</title><pubDate>Sat, 01 Jun 2024 12:00:00</pubDate></item>
<item><guid>zoned</guid><title>zoned</title><pubDate>Sat, 01 Jun 2024 12:00:00 GMT</pubDate></item>
</channel></rss>`)
	for _, tc := range []struct {
		name, extra string
		local       time.Time
	}{
		{"default", "", time.Date(2024, 6, 1, 4, 0, 0, 0, time.UTC)},
		{"timezone", "timezone: America/New_York", time.Date(2024, 6, 1, 16, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := time.LoadLocation("America/New_York"); err != nil {
				t.Skipf("no zone database: %v", err)
			}
			srv := loopback.NewFeedServer()
			defer srv.Close()
			srv.SetFeed("/z.xml", doc, "")
			h := newRSSHarness(nil)
			var extra []string
			if tc.extra != "" {
				extra = append(extra, tc.extra)
			}
			h.start(t, rssYAML(srv.URL("/z.xml"), extra...))
			h.clk.await(t)
			got := map[string]time.Time{}
			for _, it := range h.sink.take() {
				got[it.ID] = it.TS
			}
			if !got["local"].Equal(tc.local) {
				t.Errorf("zone-less pubDate: TS %v, want %v", got["local"].UTC(), tc.local)
			}
			if want := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC); !got["zoned"].Equal(want) {
				t.Errorf("GMT pubDate: TS %v, want %v", got["zoned"].UTC(), want)
			}
		})
	}
}

func TestRSSCollectorTTLAndUndatedEntries(t *testing.T) {
	doc := []byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><ttl>60</ttl>
<item><title>undated</title><link>https://x.example/1</link></item></channel></rss>`)
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/ttl.xml", doc, "")
	h := newRSSHarness(nil)
	fetchTime := h.clk.Now()
	h.start(t, rssYAML(srv.URL("/ttl.xml")))
	wait := h.clk.await(t)
	if wait < 54*time.Minute || wait > 66*time.Minute {
		t.Errorf("ttl 60 with every 1m: wait %v, want about an hour", wait)
	}
	items := h.sink.take()
	rssRequireIDs(t, items, "https://x.example/1")
	if !items[0].TS.Equal(fetchTime) {
		t.Errorf("undated entry TS %v, want the fetch time %v", items[0].TS, fetchTime)
	}
}

func TestRSSCollectorSeenBounded(t *testing.T) {
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/feed.xml", loopback.RSSDocument("v1", rssEntries("a", "b", "c")), "")
	h := newRSSHarness(nil)
	h.start(t, rssYAML(srv.URL("/feed.xml"), "max_seen: 2"))
	h.clk.await(t)
	rssRequireIDs(t, h.sink.take(), "a", "b", "c")
	seen := func() []string {
		v, ok, _ := h.state.GetState(context.Background(), "news", rssStateSeen)
		if !ok {
			t.Fatal("seen ids not persisted")
		}
		var ids []string
		if err := json.Unmarshal([]byte(v), &ids); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	// The feed lists more entries than max_seen: all are kept, or they
	// would come back as new on the next poll.
	if got := seen(); len(got) != 3 {
		t.Fatalf("seen %v", got)
	}
	srv.SetFeed("/feed.xml", loopback.RSSDocument("v2", rssEntries("a", "b", "c")), "")
	h.clk.fire()
	h.clk.await(t)
	if got := h.sink.take(); len(got) != 0 {
		t.Fatalf("changed document re-emitted %v", rssIDs(got))
	}
	srv.SetFeed("/feed.xml", loopback.RSSDocument("v3", rssEntries("d", "e")), "")
	h.clk.fire()
	h.clk.await(t)
	rssRequireIDs(t, h.sink.take(), "d", "e")
	if got := seen(); strings.Join(got, ",") != "e,d" && strings.Join(got, ",") != "d,e" {
		t.Errorf("seen after the feed moved on: %v, want only d and e", got)
	}
}

func TestRSSConfigErrors(t *testing.T) {
	cases := []struct {
		yaml string
		want string
	}{
		{"id: n\nkind: rss\n", "url: required"},
		{"id: n\nkind: rss\nurl: ftp://example.com/feed\n", "not an http(s) URL"},
		{"id: n\nkind: rss\nurl: https://example.com/f\nmax_seen: -1\n", "max_seen"},
		{"id: n\nkind: rss\nurl: https://example.com/f\nfeed_url: x\n", "feed_url"},
		{"id: n\nkind: rss\nurl: https://example.com/f\nproxy: gopher://p:70\n", "proxy"},
	}
	for _, tc := range cases {
		src, err := config.NewSourceConfig(tc.yaml)
		if err != nil {
			t.Fatal(err)
		}
		_, err = registry().New(src, collectors.Env{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want mention of %q", tc.yaml, err, tc.want)
		}
	}
	src, _ := config.NewSourceConfig("id: n\nkind: rss\nurl: https://example.com/a/feed.xml?x=1\n")
	c, err := registry().New(src, collectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	rc := c.(*rssCollector)
	if iv := rc.loop.Interval(); rc.room != "example.com/a/feed.xml" || iv < 270*time.Second || iv > 330*time.Second || rc.maxSeen != rssDefaultMaxSeen {
		t.Errorf("defaults: room %q interval %v (want 5m ± 10%%) max_seen %d", rc.room, iv, rc.maxSeen)
	}
}

func TestRSSCompactSeen(t *testing.T) {
	c := &rssCollector{maxSeen: 3, seenSet: map[string]struct{}{}}
	add := func(ids ...string) {
		for _, id := range ids {
			c.seen = append(c.seen, id)
			c.seenSet[id] = struct{}{}
		}
	}
	entries := func(ids ...string) []FeedEntry {
		out := make([]FeedEntry, len(ids))
		for i, id := range ids {
			out[i] = FeedEntry{ID: id}
		}
		return out
	}
	add("1", "2", "3", "4", "5")
	c.compactSeen(entries("1")) // "1" is still listed: it must survive
	if got := strings.Join(c.seen, ","); got != "4,5,1" {
		t.Errorf("seen = %s, want 4,5,1", got)
	}
	if _, ok := c.seenSet["2"]; ok || len(c.seenSet) != 3 {
		t.Errorf("set not trimmed with the list: %v", c.seenSet)
	}
	if s := fmt.Sprint(len(c.seen)); s != "3" {
		t.Errorf("len %s", s)
	}
}

// registry has the one kind this package's tests build.
func registry() collectors.Registry { return collectors.Registry{"rss": NewRSS} }

// An entry edited under the same id goes out again as an edit (same id,
// item.ChangeEdit); the
// digests that notice it survive a restart; state written before digests
// were kept still loads and re-emits nothing.
func TestRSSCollectorEdits(t *testing.T) {
	srv := loopback.NewFeedServer()
	defer srv.Close()
	entries := rssEntries("a", "b")
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", entries), "")
	state := collectors.NewMemState()

	first := newRSSHarness(state)
	stop := first.start(t, rssYAML(srv.URL("/feed.xml")))
	first.clk.await(t)
	rssRequireIDs(t, first.sink.take(), "a", "b")

	// b's title changes (entries are listed newest first: c, b, a) and c
	// is new.
	edited := rssEntries("a", "b", "c")
	edited[1].Title = "Title b (corrected)"
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", edited), "")
	first.clk.fire()
	first.clk.await(t)
	got := first.sink.take()
	if len(got) != 2 {
		t.Fatalf("after an edit and a new entry: %v", rssIDs(got))
	}
	var edit item.Item
	for _, it := range got {
		if it.ID == "b" {
			edit = it
		} else if it.ID != "c" || it.Change != "" {
			t.Errorf("unexpected item %q (%q)", it.ID, it.Change)
		}
	}
	if edit.ID == "" || edit.Change != item.ChangeEdit || !strings.HasPrefix(edit.Text, "Title b (corrected)\n") ||
		!edit.ChangedAt.Equal(first.clk.Now().UTC()) || !edit.TS.Equal(time.Date(2024, 6, 1, 1, 0, 0, 0, time.UTC)) || edit.Kind != item.KindPost {
		t.Fatalf("edit item: %+v", edit)
	}
	var raw FeedEntry
	if err := json.Unmarshal(edit.Raw, &raw); err != nil || raw.EditOf != "b" || raw.EditedAt.IsZero() ||
		!raw.Published.Equal(time.Date(2024, 6, 1, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("edit raw: %s (%v)", edit.Raw, err)
	}

	// Unchanged: nothing. Changed back: another edit.
	first.clk.fire()
	first.clk.await(t)
	if got := first.sink.take(); len(got) != 0 {
		t.Fatalf("unchanged feed emitted %v", rssIDs(got))
	}
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a", "b", "c")), "")
	first.clk.fire()
	first.clk.await(t)
	back := first.sink.take()
	if len(back) != 1 || back[0].ID != "b" || back[0].Change != item.ChangeEdit || !strings.HasPrefix(back[0].Text, "Title b\n") {
		t.Fatalf("edit back to the first version: %v", rssIDs(back))
	}
	stop()

	// A restart remembers the digests: the feed as last emitted emits
	// nothing, a third version is an edit.
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a", "b", "c")), "") // new ETag, full fetch
	second := newRSSHarness(state)
	stop = second.start(t, rssYAML(srv.URL("/feed.xml")))
	second.clk.await(t)
	if got := second.sink.take(); len(got) != 0 {
		t.Fatalf("after restart, the unchanged feed emitted %v", rssIDs(got))
	}
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", edited), "")
	second.clk.fire()
	second.clk.await(t)
	if got := second.sink.take(); len(got) != 1 || got[0].ID != "b" || got[0].Change != item.ChangeEdit {
		t.Fatalf("after restart, the edit: %v", rssIDs(got))
	}
	stop()

	// State from before digests were kept: seen ids alone. Nothing is
	// re-emitted; the digests are recorded, and the next edit is seen.
	old := collectors.NewMemState()
	ctx := context.Background()
	if err := old.PutStates(ctx, "news", map[string]string{rssStateSeen: `["a","b","c"]`}); err != nil {
		t.Fatal(err)
	}
	third := newRSSHarness(old)
	third.start(t, rssYAML(srv.URL("/feed.xml")))
	third.clk.await(t)
	if got := third.sink.take(); len(got) != 0 {
		t.Fatalf("old state: re-emitted %v", rssIDs(got))
	}
	if v, ok, _ := old.GetState(ctx, "news", rssStateDigests); !ok || !strings.Contains(v, `"b":`) {
		t.Fatalf("digests not recorded for old state: %q", v)
	}
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a", "b", "c")), "")
	third.clk.fire()
	third.clk.await(t)
	if got := third.sink.take(); len(got) != 1 || got[0].ID != "b" || got[0].Change != item.ChangeEdit {
		t.Fatalf("edit after old state: %v", rssIDs(got))
	}
}

// A damaged feed keeps its entries, and the damage is logged and counted.
func TestRSSCollectorDamagedFeed(t *testing.T) {
	srv := loopback.NewFeedServer()
	defer srv.Close()
	doc := bytes.Replace(loopback.RSSDocument("Acme", rssEntries("a", "b")), []byte("Title a"), []byte("Title \x01a"), 1)
	doc = bytes.Replace(doc, []byte("</channel>"), []byte("</langauge></channel>"), 1)
	srv.SetFeed("/feed.xml", doc, "")
	h := newRSSHarness(nil)
	h.start(t, rssYAML(srv.URL("/feed.xml")))
	h.clk.await(t)
	rssRequireIDs(t, h.sink.take(), "a", "b")
	if n := collectortest.Count(h.env.Metrics.Errors, "news", "parse_repaired"); n != 1 {
		t.Errorf("errors{reason=parse_repaired} = %v", n)
	}
	if logs := h.log.String(); !strings.Contains(logs, "feed damaged") || !strings.Contains(logs, "control character") || !strings.Contains(logs, "end tag") {
		t.Errorf("log does not say what was repaired:\n%s", logs)
	}
	if st := h.health.Status(); st.State != collectors.HealthOK {
		t.Errorf("state %s: a repaired feed that yields entries works", st.State)
	}
}

// Edits land in a real SQLite store: the item holds the latest version and
// README's history query finds the earlier ones in order.
func TestRSSCollectorEditsInSQLite(t *testing.T) {
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("g_1", "g%2")), "")
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "lookout.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := newRSSHarness(db)
	h.start(t, rssYAML(srv.URL("/feed.xml")))
	write := func() {
		t.Helper()
		if _, err := db.WriteItems(ctx, h.sink.take()); err != nil {
			t.Fatal(err)
		}
	}
	h.clk.await(t)
	write()
	for _, title := range []string{"Title g_1 (v2)", "Title g_1 (v3)"} {
		e := rssEntries("g_1", "g%2")
		e[1].Title = title
		srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", e), "")
		h.clk.fire()
		h.clk.await(t)
		write()
	}
	rows, err := db.DB().QueryContext(ctx, `SELECT v.valid_from, v.text FROM item_versions v JOIN items i ON i.id = v.item_id
WHERE i.source = 'news' AND i.item_id = :id
UNION ALL
SELECT coalesce(edited_at, ts), text FROM items WHERE source = 'news' AND item_id = :id
ORDER BY 1`, sql.Named("id", "g_1"))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var titles []string
	for rows.Next() {
		var ts, text string
		if err := rows.Scan(&ts, &text); err != nil {
			t.Fatal(err)
		}
		titles = append(titles, strings.SplitN(text, "\n", 2)[0])
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Title g_1", "Title g_1 (v2)", "Title g_1 (v3)"}; strings.Join(titles, "|") != strings.Join(want, "|") {
		t.Fatalf("history of g_1: %q, want %q", titles, want)
	}
	var n int
	if err := db.DB().QueryRowContext(ctx, `SELECT count(*) FROM items WHERE source = 'news'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows (%v), want the 2 entries", n, err)
	}
}

// rssFlakyState fails GetState until fails runs out.
type rssFlakyState struct {
	collectors.StateStore
	mu    sync.Mutex
	fails int
}

func (s *rssFlakyState) GetState(ctx context.Context, source, key string) (string, bool, error) {
	s.mu.Lock()
	if s.fails > 0 {
		s.fails--
		s.mu.Unlock()
		return "", false, errors.New("database is locked")
	}
	s.mu.Unlock()
	return s.StateStore.GetState(ctx, source, key)
}

// Until the stored state loads nothing is fetched (old entries would come
// again); the failure is counted and reported, and polling starts once it
// loads.
func TestRSSCollectorStateLoadFails(t *testing.T) {
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/feed.xml", loopback.RSSDocument("Acme", rssEntries("a", "b")), "")
	mem := collectors.NewMemState()
	if err := mem.PutStates(context.Background(), "news", map[string]string{rssStateSeen: `["a"]`}); err != nil {
		t.Fatal(err)
	}
	h := newRSSHarness(&rssFlakyState{StateStore: mem, fails: 1})
	h.start(t, rssYAML(srv.URL("/feed.xml")))
	wait := h.clk.await(t)
	if n := len(srv.Requests("/feed.xml")); n != 0 {
		t.Fatalf("%d requests before the state loaded", n)
	}
	if n := collectortest.Count(h.env.Metrics.Errors, "news", "state"); n != 1 {
		t.Errorf("errors{reason=state} = %v", n)
	}
	if st := h.health.Status(); !strings.Contains(st.LastError, "database is locked") {
		t.Errorf("health: %+v", st)
	}
	if wait <= 0 || wait > time.Minute {
		t.Errorf("retry after a state error in %v", wait)
	}
	h.clk.fire()
	h.clk.await(t)
	rssRequireIDs(t, h.sink.take(), "b")
}

// A GBK feed that declares its charset nowhere (no BOM, no XML
// declaration encoding, no Content-Type charset) is sniffed and converted
// before parsing, instead of being read as mojibake.
func TestRSSCollectorUndeclaredGBK(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "rss", "rss_gbk.xml"))
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.Index(data, []byte("?>"))
	if end < 0 {
		t.Fatal("fixture has no XML declaration")
	}
	data = append([]byte(`<?xml version="1.0"?>`), data[end+2:]...)
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/bare.xml", data, "application/rss+xml")
	h := newRSSHarness(nil)
	h.start(t, rssYAML(srv.URL("/bare.xml"), "room: 品牌新闻"))
	h.clk.await(t)
	items := h.sink.take()
	rssRequireIDs(t, items, "gbk-1002", "gbk-1001")
	if it := items[1]; it.Text != "消费者投诉：退款迟迟不到账\n多名用户反映客服不理人，要求维权。" || it.Author != "记者 王芳" {
		t.Errorf("undeclared GBK item: %+v", it)
	}
}

// A GBK feed served as UTF-8 (a wrong Content-Type charset) parses into
// replacement characters: the items are kept, and the source's health
// warns about the encoding instead of staying silently ok.
func TestRSSCollectorWrongCharsetWarns(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "rss", "rss_gbk.xml"))
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.Index(data, []byte("?>"))
	data = append([]byte(`<?xml version="1.0"?>`), data[end+2:]...)
	srv := loopback.NewFeedServer()
	defer srv.Close()
	srv.SetFeed("/wrong.xml", data, "application/rss+xml; charset=utf-8")
	h := newRSSHarness(nil)
	h.start(t, rssYAML(srv.URL("/wrong.xml"), ""))
	h.clk.await(t)
	items := h.sink.take()
	if len(items) != 2 {
		t.Errorf("%d items, want 2 (kept, garbled)", len(items))
	}
	w := h.health.Status().Warnings
	if len(w) != 1 || !strings.HasPrefix(w[0], "encoding: ") {
		t.Errorf("warnings %q, want an encoding warning", w)
	}
}
