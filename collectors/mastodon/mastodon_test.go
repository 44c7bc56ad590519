package mastodon

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"lookout/collectors"
	"lookout/collectors/collectortest"
	"lookout/collectors/httpx"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/internal/loopback"
	"lookout/item"
)

const mastoTestToken = "test-user-token-read-statuses"

// mastoFixture is a streaming-API update frame as the documentation shows it.
const mastoFixture = `{"stream":["hashtag","golang"],"event":"update","payload":"{\"id\":\"109348684737626801\",\"created_at\":\"2022-11-15T16:08:30.000Z\",\"language\":\"en\",\"url\":\"https://example.social/@bob/109348684737626801\",\"content\":\"<p>hello <a href=\\\"https://example.social/tags/golang\\\">#golang</a></p>\",\"account\":{\"id\":\"1\",\"acct\":\"bob\",\"display_name\":\"Bob\"},\"replies_count\":0,\"reblogs_count\":2,\"favourites_count\":5,\"tags\":[{\"name\":\"golang\"}],\"reblog\":null}"}`

func mastoTestCollector(t testing.TB, env collectors.Env, extra string) *mastoCollector {
	t.Helper()
	if tt, ok := t.(*testing.T); ok {
		tt.Setenv("LOOKOUT_TEST_MASTO_TOKEN", mastoTestToken)
	} else {
		os.Setenv("LOOKOUT_TEST_MASTO_TOKEN", mastoTestToken)
	}
	if !strings.Contains(extra, "url:") {
		extra += "url: https://example.social\n"
	}
	src, err := config.NewSourceConfig("id: ma\nkind: mastodon\ntoken: ${LOOKOUT_TEST_MASTO_TOKEN}\n" + extra)
	if err != nil {
		t.Fatal(err)
	}
	c, err := registry().New(src, env)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*mastoCollector)
}

func TestMastodonFixture(t *testing.T) {
	c := mastoTestCollector(t, collectortest.StreamEnv(t, collectortest.NewSteppedClock()), "tags: [golang]\n")
	it, ok, err := c.decodeEvent([]byte(mastoFixture))
	if err != nil || !ok {
		t.Fatalf("decode = %v, %v", ok, err)
	}
	if it.Kind != item.KindPost || it.ID != "109348684737626801" || it.Author != "bob" || it.AuthorID != "1" ||
		it.Text != "hello #golang" || it.URL != "https://example.social/@bob/109348684737626801" ||
		!it.TS.Equal(time.Date(2022, 11, 15, 16, 8, 30, 0, time.UTC)) || it.Room != "hashtag#golang" || it.Platform != "mastodon" {
		t.Errorf("fixture item = %+v", it)
	}
	if it.Labels["langs"] != "en" {
		t.Errorf("labels = %v, want the status's language", it.Labels)
	}
	if string(it.Raw) != mastoFixture {
		t.Errorf("raw = %s", it.Raw)
	}
	if c.since["hashtag#golang"] != "" {
		t.Errorf("since moved before the status was handed on: %v", c.since)
	}
	c.emitted(&it)
	if c.since["hashtag#golang"] != "109348684737626801" {
		t.Errorf("since = %v", c.since)
	}
}

func TestMastodonGoldenFrames(t *testing.T) {
	data, err := os.ReadFile("testdata/mastodon/frames.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := mastoTestCollector(t, env, "tags: [golang]\n")
	var items []item.Item
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		it, ok, err := c.decodeEvent([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if ok {
			items = append(items, it)
		}
	}
	collectortest.CheckGolden(t, "mastodon/frames.golden.json", items)
	if n := collectortest.Count(env.Metrics.Unknown, "ma", "event:notification"); n != 0 {
		t.Errorf("notification counted as unknown")
	}
}

func TestMastodonBadEvents(t *testing.T) {
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := mastoTestCollector(t, env, "")
	for _, bad := range []string{
		``, `{`, `{"stream":["public"]}`,
		`{"stream":["public"],"event":"update"}`,
		`{"stream":["public"],"event":"update","payload":"not json"}`,
		`{"stream":["public"],"event":"update","payload":"{\"content\":\"no id\"}"}`,
		`{"stream":["public"],"event":"update","payload":"{\"id\":\"1\",\"created_at\":\"yesterday\"}"}`,
		`{"error":"Unknown stream type","status":400}`,
	} {
		if _, ok, err := c.decodeEvent([]byte(bad)); err == nil || ok {
			t.Errorf("%q: ok %v err %v, want an error", bad, ok, err)
		}
	}
	if _, ok, err := c.decodeEvent([]byte(`{"stream":["public"],"event":"brand.new"}`)); ok || err != nil {
		t.Errorf("unknown event: %v %v", ok, err)
	}
	if n := collectortest.Count(env.Metrics.Unknown, "ma", "event:brand.new"); n != 1 {
		t.Errorf("unknown{event:brand.new} = %v", n)
	}
}

func TestMastodonStripHTML(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:                                "plain",
		`<p>a</p><p>b</p>`:                     "a\n\nb",
		`<p>x<br>y<br/>z</p>`:                  "x\ny\nz",
		`<p>&lt;tag&gt; &amp; &#39;q&#39;</p>`: "<tag> & 'q'",
		`<p><span class="h-card"><a href="u">@<span>bob</span></a></span> hi</p>`: "@bob hi",
		`<p>unclosed <b>bold`:                    "unclosed bold",
		`<script>alert(1)</script>text`:          "text", // script is not text (the shared HTML-to-text)
		`<a title="a>b" href='x>y'>link</a> end`: "link end",
		`<P>upper</P><BR>x`:                      "upper\n\n\nx",
		`text <unterminated`:                     "text", // an HTML tokenizer drops an unterminated tag; Mastodon escapes a literal < as &lt;
		`&#x1F600; &unknown; &amp;amp;`:          "😀 &unknown; &amp;",
	} {
		if got := mastoStripHTML(in); got != want {
			t.Errorf("strip(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMastodonConfig(t *testing.T) {
	env := collectortest.StreamEnv(t, httpx.RealClock)
	t.Setenv("LOOKOUT_TEST_MASTO_TOKEN", mastoTestToken)
	t.Setenv("LOOKOUT_TEST_EMPTY", "")
	for _, y := range []string{
		"url: https://m.example\n",                                   // no token
		"url: https://m.example\ntoken: ${LOOKOUT_TEST_EMPTY}\n",     // empty token
		"url: ftp://m.example\ntoken: ${LOOKOUT_TEST_MASTO_TOKEN}\n", // bad url
		"url: https://m.example\ntoken: ${LOOKOUT_TEST_MASTO_TOKEN}\nstreams: [hashtag]\n",
		"url: https://m.example\ntoken: ${LOOKOUT_TEST_MASTO_TOKEN}\nstreams: [firehose]\n",
		"url: https://m.example\ntoken: ${LOOKOUT_TEST_MASTO_TOKEN}\nstreams: [list]\nlists: [abc]\n",
		"url: https://m.example\ntoken: ${LOOKOUT_TEST_MASTO_TOKEN}\nstreaming_url: https://s.example\n",
	} {
		src, err := config.NewSourceConfig("id: ma\nkind: mastodon\n" + y)
		if err != nil {
			continue
		}
		if _, err := registry().New(src, env); err == nil {
			t.Errorf("accepted:\n%s", y)
		}
	}
	c := mastoTestCollector(t, env, "url: https://m.example\nstreams: [public:local, hashtag]\ntags: ['#GoLang', golang, rust]\n")
	var keys []string
	for _, s := range c.subs {
		keys = append(keys, s.key())
	}
	if strings.Join(keys, " ") != "public:local hashtag#golang hashtag#rust" {
		t.Errorf("subscriptions = %v", keys)
	}
	if got := c.streamURL(); got != "wss://m.example/api/v1/streaming?stream=public%3Alocal" {
		t.Errorf("stream URL = %s", got)
	}
}

func mastoPost(id, tag, text string) loopback.MastodonStatus {
	return loopback.MastodonStatus{ID: id, CreatedAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Content: "<p>" + text + "</p>",
		AccountID: "7", Acct: "alice", Tags: []string{tag}}
}

func TestMastodonLoopback(t *testing.T) {
	srv := loopback.NewMastodonServer(mastoTestToken)
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env := collectortest.StreamEnv(t, clk)
	c := mastoTestCollector(t, env, fmt.Sprintf("url: %s\nstreaming_url: %s\ntags: [golang, rust]\n", srv.URL, srv.StreamingURL))
	sink := collectortest.NewChanSink()
	stop := collectortest.Start(t, c, sink.Emit)

	d, ok := srv.WaitDial(0, 10*time.Second)
	if !ok || d.Refused {
		t.Fatalf("dial = %+v", d)
	}
	if d.Authorization != "Bearer "+mastoTestToken || d.Query.Get("stream") != "hashtag" || d.Query.Get("tag") != "golang" || d.Query.Has("access_token") {
		t.Errorf("dial query %v auth %q", d.Query, d.Authorization)
	}
	// Both tags on the one socket.
	if !srv.WaitSub(1, "hashtag:golang", 10*time.Second) || !srv.WaitSub(1, "hashtag:rust", 10*time.Second) {
		t.Fatal("not subscribed to both tags on connection 1")
	}

	if n := srv.Post(mastoPost("200", "golang", "go is fun")); n != 1 {
		t.Errorf("delivered %d times", n)
	}
	srv.Post(mastoPost("201", "rust", "客服不理人 &amp; 退款"))
	srv.Post(mastoPost("202", "python", "not followed"))
	srv.Event([]string{"hashtag", "golang"}, "delete", "200")
	srv.Raw(`{"event":`) // garbage: counted
	srv.Post(mastoPost("203", "golang", "after garbage"))

	a, b, del, c3 := sink.Next(t), sink.Next(t), sink.Next(t), sink.Next(t)
	if del.ID != "200" || del.Change != item.ChangeDelete || del.Room != "hashtag#golang" {
		t.Errorf("delete = %+v", del)
	}
	if a.ID != "200" || a.Text != "go is fun" || a.Room != "hashtag#golang" || a.Author != "alice" {
		t.Errorf("first = %+v", a)
	}
	if b.ID != "201" || b.Text != "客服不理人 & 退款" || b.Room != "hashtag#rust" {
		t.Errorf("second = %+v", b)
	}
	if c3.ID != "203" {
		t.Errorf("third = %+v", c3)
	}
	sink.None(t)
	if n := collectortest.Count(env.Metrics.Errors, "ma", "decode"); n != 1 {
		t.Errorf("decode errors = %v", n)
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Errorf("first connection backfilled %v (nothing seen before)", reqs)
	}

	// Drop; statuses posted meanwhile come back through REST backfill.
	srv.Drop()
	wait := clk.WaitAsked(t, "reconnect backoff", func(d time.Duration) bool { return d != mastoPingEvery })
	srv.Post(mastoPost("204", "golang", "missed one"))
	srv.Post(mastoPost("205", "golang", "missed two"))
	clk.Advance(wait)
	req, ok := srv.WaitRequest("/api/v1/timelines/tag/golang", 10*time.Second)
	if !ok || !strings.Contains(req, "min_id=203") {
		t.Errorf("backfill request = %q", req)
	}
	if r, ok := srv.WaitRequest("/api/v1/timelines/tag/rust", 10*time.Second); !ok || !strings.Contains(r, "min_id=201") {
		t.Errorf("rust backfill = %q", r)
	}
	if x, y := sink.Next(t), sink.Next(t); x.ID != "204" || y.ID != "205" {
		t.Errorf("backfill gave %s %s, want 204 205 (oldest first)", x.ID, y.ID)
	}
	if !srv.WaitSub(2, "hashtag:rust", 10*time.Second) {
		t.Fatal("not resubscribed")
	}
	// Live statuses move a stream's position once its catch-up is over.
	collectortest.Wait(t, "both catch-ups over", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.gaps) == 0
	})
	srv.Post(mastoPost("206", "rust", "live again"))
	if it := sink.Next(t); it.ID != "206" {
		t.Errorf("after reconnect = %+v", it)
	}
	stop()
	// Shutdown saved the newest ids per stream for the next start.
	for key, want := range map[string]string{"since:hashtag#golang": "205", "since:hashtag#rust": "206"} {
		if v, _, _ := env.State.GetState(t.Context(), "ma", key); v != want {
			t.Errorf("state %s = %q, want %q", key, v, want)
		}
	}
}

func TestMastodonBadToken(t *testing.T) {
	srv := loopback.NewMastodonServer("the-right-token")
	defer srv.Close()
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := mastoTestCollector(t, env, fmt.Sprintf("url: %s\nstreaming_url: %s\n", srv.URL, srv.StreamingURL))
	healthy, err := c.session(t.Context(), collectortest.NewChanSink().Emit)
	if healthy || err == nil || !strings.Contains(err.Error(), "token refused") || !strings.Contains(err.Error(), "401") {
		t.Errorf("session = %v, %v", healthy, err)
	}
	if n := collectortest.Count(env.Metrics.Errors, "ma", "auth"); n != 1 {
		t.Errorf("auth errors = %v", n)
	}
	if d, _ := srv.WaitDial(0, time.Second); !d.Refused {
		t.Errorf("server accepted %+v", d)
	}
}

func FuzzMastodonEvent(f *testing.F) {
	data, err := os.ReadFile("testdata/mastodon/frames.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"error":"x","status":400}`))
	c := mastoTestCollector(f, collectors.Env{}.WithDefaults(), "tags: [golang]\n")
	f.Fuzz(func(t *testing.T, ev []byte) {
		it, ok, err := c.decodeEvent(ev)
		if ok && err != nil {
			t.Fatal("ok with error")
		}
		if ok && (!it.Kind.Valid() || it.ID == "" || it.TS.IsZero() || it.Room == "") {
			t.Fatalf("bad item %+v", it)
		}
	})
}

// FuzzMastodonLink: any Link header parses without panicking, and what it
// returns is the inside of one <…>.
func FuzzMastodonLink(f *testing.F) {
	f.Add(`<https://m.example/api/v1/timelines/tag/go?max_id=1>; rel="next", <https://m.example/api/v1/timelines/tag/go?min_id=9>; rel="prev"`)
	f.Add(`<x>; rel=prev`)
	f.Add(`<a,b>; rel="prev next"`)
	f.Add(`<>;;rel=`)
	f.Fuzz(func(t *testing.T, v string) {
		got := mastoLink([]string{v}, "prev")
		if got != "" && !strings.Contains(v, "<"+got+">") {
			t.Fatalf("mastoLink(%q) = %q, not a bracketed part of it", v, got)
		}
	})
}

// BenchmarkMastodonDecode measures decoding an update event: the outer
// JSON, the status JSON inside its string, HTML stripping.
func BenchmarkMastodonDecode(b *testing.B) {
	c := mastoTestCollector(b, collectors.Env{}.WithDefaults(), "tags: [golang]\n")
	// Two statuses in turn, and a seen-id set of one: each event is new
	// to the set, as distinct statuses are, and the set's work is counted.
	c.recent = stream.NewRecentIDs(1)
	evs := [2][]byte{[]byte(mastoFixture), []byte(strings.Replace(mastoFixture, "109348684737626801", "109348684737626809", 1))}
	b.SetBytes(int64(len(evs[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok, err := c.decodeEvent(evs[i&1]); !ok || err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// registry has the one kind this package's tests build.
func registry() collectors.Registry { return collectors.Registry{"mastodon": New} }

// mastoCatchupRig is a collector on the tag golang of a loopback instance
// whose saved position is pos, with statuses pos+1…pos+missed posted while
// it was away.
type mastoCatchupRig struct {
	srv  *loopback.MastodonServer
	clk  *collectortest.SteppedClock
	env  collectors.Env
	c    *mastoCollector
	sink *collectortest.ChanSink
}

func newMastoCatchupRig(t *testing.T, state collectors.StateStore, extra string, pos, missed int) *mastoCatchupRig {
	t.Helper()
	r := &mastoCatchupRig{srv: loopback.NewMastodonServer(mastoTestToken), clk: collectortest.NewSteppedClock()}
	t.Cleanup(r.srv.Close)
	r.env = collectortest.StreamEnv(t, r.clk)
	if state != nil {
		r.env.State = state
	}
	if err := r.env.State.PutState(t.Context(), "ma", "since:hashtag#golang", fmt.Sprint(pos)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= missed; i++ {
		r.srv.Publish(mastoPost(fmt.Sprint(pos+i), "golang", fmt.Sprintf("missed %d", i)))
	}
	r.c = mastoTestCollector(t, r.env, fmt.Sprintf("url: %s\nstreaming_url: %s\ntags: [golang]\n%s", r.srv.URL, r.srv.StreamingURL, extra))
	r.sink = collectortest.NewChanSink()
	return r
}

// position is the stream's position right now.
func (r *mastoCatchupRig) position() string {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.c.since["hashtag#golang"]
}

// postLive posts status id on the tag once the stream is subscribed and
// requires it to be the next item handed on.
func (r *mastoCatchupRig) postLive(t *testing.T, id, text string) {
	t.Helper()
	if !r.srv.WaitSub(1, "hashtag:golang", 10*time.Second) {
		t.Fatal("not subscribed")
	}
	r.srv.Post(mastoPost(id, "golang", text))
	if it := r.sink.Next(t); it.ID != id {
		t.Fatalf("live status = %+v, want %s", it, id)
	}
}

// takeIDs reads n items and returns their ids in order.
func (r *mastoCatchupRig) takeIDs(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = r.sink.Next(t).ID
	}
	return ids
}

func mastoIDRange(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

// TestMastodonCatchupPagesForward: 60 statuses missed while away (more
// than one page) all come back, oldest first, once each, by paging forward
// with min_id and then the Link header; live statuses follow.
func TestMastodonCatchupPagesForward(t *testing.T) {
	r := newMastoCatchupRig(t, nil, "", 100, 60)
	stop := collectortest.Start(t, r.c, r.sink.Emit)
	if got, want := strings.Join(r.takeIDs(t, 60), " "), strings.Join(mastoIDRange(101, 160), " "); got != want {
		t.Fatalf("caught up %s\nwant        %s", got, want)
	}
	r.postLive(t, "161", "live")
	r.sink.None(t)
	reqs := r.srv.Requests()
	if len(reqs) != 2 || !strings.Contains(reqs[0], "min_id=100") || !strings.Contains(reqs[1], "min_id=140") {
		t.Errorf("catch-up requests = %q, want min_id=100 then the Link's min_id=140", reqs)
	}
	stop()
	if v, _, _ := r.env.State.GetState(t.Context(), "ma", "since:hashtag#golang"); v != "161" {
		t.Errorf("saved position = %q, want 161", v)
	}
	if n := collectortest.Count(r.env.Metrics.Errors, "ma", "gap"); n != 0 {
		t.Errorf("gaps reported: %v", n)
	}
}

// heldState is a state store whose write of one value waits until release
// is closed: it holds a catch-up between its last page and its end.
type heldState struct {
	collectors.StateStore
	value   string
	held    chan struct{}
	release chan struct{}
}

func (h *heldState) PutStates(ctx context.Context, source string, kv map[string]string) error {
	for _, v := range kv {
		if v == h.value {
			close(h.held)
			<-h.release
		}
	}
	return h.StateStore.PutStates(ctx, source, kv)
}

// TestMastodonLiveBeforeTheGapCloses: a live status handed on after the
// catch-up's last page but before the catch-up ended moves the position
// when it ends; the stop saves it.
func TestMastodonLiveBeforeTheGapCloses(t *testing.T) {
	state := &heldState{StateStore: collectors.NewMemState(), value: "105", held: make(chan struct{}), release: make(chan struct{})}
	r := newMastoCatchupRig(t, state, "", 100, 5)
	stop := collectortest.Start(t, r.c, r.sink.Emit)
	if got := strings.Join(r.takeIDs(t, 5), " "); got != "101 102 103 104 105" {
		t.Fatalf("caught up %s", got)
	}
	<-state.held
	r.postLive(t, "106", "live")
	if p := r.position(); p != "105" {
		t.Errorf("position while catching up = %s, want 105 (the catch-up's newest)", p)
	}
	close(state.release)
	collectortest.Wait(t, "the position past the live status", func() bool { return r.position() == "106" })
	stop()
	if v, _, _ := state.GetState(t.Context(), "ma", "since:hashtag#golang"); v != "106" {
		t.Errorf("saved position = %q, want 106", v)
	}
}

// TestMastodonCatchupRateLimited: the catch-up request is refused with
// Mastodon's 429 (X-RateLimit-Reset, no Retry-After). The position stays
// put while live statuses flow, a stop in that state saves the old
// position, and the next run waits for the reset and loses nothing.
func TestMastodonCatchupRateLimited(t *testing.T) {
	state := collectors.NewMemState()
	r := newMastoCatchupRig(t, state, "", 100, 5)
	r.srv.FailTimelines(loopback.RateLimited(r.clk.Now().Add(40 * time.Second)))
	stop := collectortest.Start(t, r.c, r.sink.Emit)
	if _, ok := r.srv.WaitRequest("min_id=100", 10*time.Second); !ok {
		t.Fatal("no catch-up request")
	}
	r.clk.WaitAsked(t, "the rate limit's reset", func(d time.Duration) bool { return d >= 40*time.Second && d < time.Minute })
	r.postLive(t, "106", "live during the gap")
	if p := r.position(); p != "100" {
		t.Errorf("a live status moved the position past an unfilled gap: %s", p)
	}
	if st := r.c.env.Health.Status(); !strings.Contains(st.LastError, "429") || st.State != collectors.HealthOK {
		t.Errorf("health = %+v, want ok with the 429 as last error", st)
	}
	stop() // a stop (or a crash) now must not save the live status's id
	if v, _, _ := state.GetState(t.Context(), "ma", "since:hashtag#golang"); v != "100" {
		t.Fatalf("saved position = %q, want 100 (the gap is not filled)", v)
	}

	// The next run catches up from 100: nothing was lost.
	next := mastoTestCollector(t, r.env, fmt.Sprintf("url: %s\nstreaming_url: %s\ntags: [golang]\n", r.srv.URL, r.srv.StreamingURL))
	sink := collectortest.NewChanSink()
	collectortest.Start(t, next, sink.Emit)
	var got []string
	for range 6 {
		got = append(got, sink.Next(t).ID)
	}
	if strings.Join(got, " ") != "101 102 103 104 105 106" {
		t.Errorf("next run caught up %s", got)
	}
}

// TestMastodonCatchupRetriesInSession: after the 429's reset the same
// session retries from the same position; the live status seen meanwhile
// is not handed on twice, and the position then moves past it.
func TestMastodonCatchupRetriesInSession(t *testing.T) {
	r := newMastoCatchupRig(t, nil, "", 100, 5)
	r.srv.FailTimelines(loopback.RateLimited(r.clk.Now().Add(40*time.Second)), loopback.MastodonFailure{Status: 502, Body: "bad gateway"})
	collectortest.Start(t, r.c, r.sink.Emit)
	wait := r.clk.WaitAsked(t, "the rate limit's reset", func(d time.Duration) bool { return d >= 40*time.Second && d < time.Minute })
	r.postLive(t, "106", "live during the gap")
	r.clk.Advance(wait)
	// Then a 502: backoff, and again from 100.
	wait = r.clk.WaitAsked(t, "the backoff after a 502", func(d time.Duration) bool { return d < mastoPingEvery })
	r.clk.Advance(wait)
	if got := strings.Join(r.takeIDs(t, 5), " "); got != "101 102 103 104 105" {
		t.Errorf("caught up %s", got)
	}
	r.sink.None(t) // 106 came live; its copy in the page is dropped
	collectortest.Wait(t, "position past the live status", func() bool { return r.position() == "106" })
	r.srv.Post(mastoPost("107", "golang", "live after"))
	if it := r.sink.Next(t); it.ID != "107" {
		t.Errorf("live after the gap = %+v", it)
	}
	collectortest.Wait(t, "live moves the position again", func() bool { return r.position() == "107" })
	var minIDs []string
	for _, q := range r.srv.Requests() {
		minIDs = append(minIDs, q[strings.Index(q, "min_id="):])
	}
	if strings.Join(minIDs, " ") != "min_id=100 min_id=100 min_id=100" {
		t.Errorf("catch-up requests = %v, want three from 100", minIDs)
	}
	if n := collectortest.Count(r.env.Metrics.Errors, "ma", "catchup"); n != 2 {
		t.Errorf("catchup errors = %v, want 2", n)
	}
}

// TestMastodonCatchupBoundIsAGap: a catch-up that reaches catchup_max
// jumps to the newest statuses and says which ones it skipped.
func TestMastodonCatchupBoundIsAGap(t *testing.T) {
	r := newMastoCatchupRig(t, nil, "catchup_max: 40\n", 100, 100)
	collectortest.Start(t, r.c, r.sink.Emit)
	got := r.takeIDs(t, 80)
	want := append(mastoIDRange(101, 140), mastoIDRange(161, 200)...)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	r.sink.None(t)
	collectortest.Wait(t, "position at the newest", func() bool { return r.position() == "200" })
	if n := collectortest.Count(r.env.Metrics.Errors, "ma", "gap"); n != 1 {
		t.Errorf("gap errors = %v, want 1", n)
	}
	st := r.c.env.Health.Status()
	for _, part := range []string{"gap: hashtag#golang", "40 statuses", "after id 140", "before id 161"} {
		if !strings.Contains(st.LastError, part) {
			t.Errorf("health's last error %q lacks %q", st.LastError, part)
		}
	}
}

// TestMastodonBoost: a boost in a list stream is the original (author,
// text, URL, id) labelled with the boost and the booster; the original
// seen afterwards is not handed on again; the list's position is the
// boost's own id.
func TestMastodonBoost(t *testing.T) {
	srv := loopback.NewMastodonServer(mastoTestToken)
	defer srv.Close()
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := mastoTestCollector(t, env, fmt.Sprintf("url: %s\nstreaming_url: %s\nlists: [\"42\"]\n", srv.URL, srv.StreamingURL))
	sink := collectortest.NewChanSink()
	stop := collectortest.Start(t, c, sink.Emit)
	if !srv.WaitSub(1, "list:42", 10*time.Second) {
		t.Fatal("not subscribed")
	}
	orig := mastoPost("300", "acme", "退款三周了还没到账")
	orig.AccountID, orig.Acct = "9", "carol@other.example"
	srv.Post(loopback.MastodonStatus{ID: "301", CreatedAt: orig.CreatedAt.Add(time.Hour), AccountID: "7", Acct: "alice",
		Lists: []string{"42"}, Reblog: &orig})
	it := sink.Next(t)
	if it.ID != "300" || it.Author != "carol@other.example" || it.AuthorID != "9" || it.Text != "退款三周了还没到账" ||
		it.URL != srv.URL+"/@carol@other.example/300" || !it.TS.Equal(orig.CreatedAt) || it.Room != "list:42" ||
		it.Labels["boost"] != "301" || it.Labels["boosted_by"] != "alice" {
		t.Errorf("boost = %+v", it)
	}
	orig.Lists = []string{"42"}
	srv.Post(orig) // the original itself, later
	srv.Post(loopback.MastodonStatus{ID: "302", CreatedAt: orig.CreatedAt, AccountID: "8", Acct: "bob", Lists: []string{"42"}, Reblog: &orig})
	srv.Post(loopback.MastodonStatus{ID: "303", CreatedAt: orig.CreatedAt, Content: "<p>next</p>", AccountID: "8", Acct: "bob", Lists: []string{"42"}})
	if it := sink.Next(t); it.ID != "303" || it.Labels["boost"] != "" {
		t.Errorf("after the duplicates = %+v", it)
	}
	sink.None(t)
	stop()
	if v, _, _ := env.State.GetState(t.Context(), "ma", "since:list:42"); v != "303" {
		t.Errorf("saved position = %q", v)
	}
}

func TestMastodonLink(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		rel  string
		want string
	}{
		{[]string{`<https://m.example/api/v1/timelines/tag/go?max_id=1>; rel="next", <https://m.example/api/v1/timelines/tag/go?min_id=9>; rel="prev"`}, "prev",
			"https://m.example/api/v1/timelines/tag/go?min_id=9"},
		{[]string{`<https://m.example/a?max_id=1>; rel="next"`, `<https://m.example/a?min_id=9>; rel=prev`}, "prev", "https://m.example/a?min_id=9"},
		{[]string{`<https://m.example/a?max_id=1>; rel="next"`}, "prev", ""},
		{[]string{`garbage; rel="prev"`, `<x>`, ``}, "prev", ""},
		{nil, "prev", ""},
	} {
		if got := mastoLink(tc.in, tc.rel); got != tc.want {
			t.Errorf("mastoLink(%q, %s) = %q, want %q", tc.in, tc.rel, got, tc.want)
		}
	}
	// The docs' example status, created 16:08:30 by its created_at (the
	// id's time is when the server made the id).
	if got := mastoIDTime("109348684737626801"); got != "2022-11-15T16:08:34Z" {
		t.Errorf("id time = %q", got)
	}
	if got := mastoIDTime("12"); got != "" {
		t.Errorf("small id time = %q", got)
	}
}

// TestMastodonEditDelete: status.update hands on the new version as an
// edit (with the server's edited_at), delete hands on a delete, neither
// moves the stream's position.
func TestMastodonEditDelete(t *testing.T) {
	srv := loopback.NewMastodonServer(mastoTestToken)
	defer srv.Close()
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := mastoTestCollector(t, env, fmt.Sprintf("url: %s\nstreaming_url: %s\ntags: [acme]\n", srv.URL, srv.StreamingURL))
	sink := collectortest.NewChanSink()
	stop := collectortest.Start(t, c, sink.Emit)
	if !srv.WaitSub(1, "hashtag:acme", 10*time.Second) {
		t.Fatal("not subscribed")
	}
	st := mastoPost("400", "acme", "退款三周了还没到账")
	srv.Post(st)
	srv.Post(mastoPost("401", "acme", "another"))
	st.Content = "<p>已解决，已退款</p>"
	st.EditedAt = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	srv.Edit(st)
	srv.Delete("401")
	if a, b := sink.Next(t), sink.Next(t); a.ID != "400" || b.ID != "401" || a.Change != "" {
		t.Fatalf("posts = %+v %+v", a, b)
	}
	edit := sink.Next(t)
	if edit.ID != "400" || edit.Change != item.ChangeEdit || edit.Text != "已解决，已退款" || !edit.ChangedAt.Equal(st.EditedAt) ||
		!edit.TS.Equal(st.CreatedAt) || edit.Room != "hashtag#acme" {
		t.Errorf("edit = %+v", edit)
	}
	if del := sink.Next(t); del.ID != "401" || del.Change != item.ChangeDelete {
		t.Errorf("delete = %+v", del)
	}
	sink.None(t)
	stop()
	if v, _, _ := env.State.GetState(t.Context(), "ma", "since:hashtag#acme"); v != "401" {
		t.Errorf("position = %q", v)
	}
}
