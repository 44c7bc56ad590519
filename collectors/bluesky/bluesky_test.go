package bluesky

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lookout/collectors"
	"lookout/collectors/collectortest"
	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/internal/loopback"
	"lookout/item"
)

// bskyFixture is a Jetstream commit event as its documentation shows it.
const bskyFixture = `{"did":"did:plc:eygmaihciaxprqvxpfvl6flk","time_us":1725911162329308,"cursor":12345,"kind":"commit","commit":{"rev":"3l3qo2vutsw2b","operation":"create","collection":"app.bsky.feed.post","rkey":"3l3qo2vuowo2b","cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi","record":{"$type":"app.bsky.feed.post","text":"hello #golang","createdAt":"2024-09-09T19:46:02.102Z","langs":["en"]}}}`

func bskyPostEvent(did, rkey, text string, timeUS int64) string {
	return fmt.Sprintf(`{"did":%q,"time_us":%d,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":%q,"cid":"c","record":{"$type":"app.bsky.feed.post","text":%q,"createdAt":"2024-09-09T19:46:02.102Z"}}}`, did, timeUS, rkey, text)
}

func bskyTestCollector(t testing.TB, env collectors.Env, yamlExtra string) *bskyCollector {
	t.Helper()
	if !strings.Contains(yamlExtra, "handle_lookup:") {
		yamlExtra += "handle_lookup: \"off\"\n" // tests never reach the public AppView
	}
	src, err := config.NewSourceConfig("id: bs\nkind: bluesky\n" + yamlExtra)
	if err != nil {
		t.Fatal(err)
	}
	c, err := registry().New(src, env)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*bskyCollector)
}

func TestBlueskyFixture(t *testing.T) {
	c := bskyTestCollector(t, collectortest.StreamEnv(t, collectortest.NewSteppedClock()), "")
	it, ok, err := c.decode([]byte(bskyFixture))
	if err != nil || !ok {
		t.Fatalf("decode = %v, %v", ok, err)
	}
	want := item.Item{
		Source: "bs", Platform: "bluesky", Kind: item.KindPost, Room: "app.bsky.feed.post",
		ID:       "at://did:plc:eygmaihciaxprqvxpfvl6flk/app.bsky.feed.post/3l3qo2vuowo2b",
		AuthorID: "did:plc:eygmaihciaxprqvxpfvl6flk", Author: "did:plc:eygmaihciaxprqvxpfvl6flk",
		Text: "hello #golang", URL: "https://bsky.app/profile/did:plc:eygmaihciaxprqvxpfvl6flk/post/3l3qo2vuowo2b",
		TS: time.UnixMicro(1725911162329308).UTC(),
	}
	if it.Source != want.Source || it.Platform != want.Platform || it.Kind != want.Kind || it.Room != want.Room || it.ID != want.ID ||
		it.AuthorID != want.AuthorID || it.Author != want.Author || it.Text != want.Text || it.URL != want.URL || !it.TS.Equal(want.TS) {
		t.Errorf("fixture =\n %+v\nwant\n %+v", it, want)
	}
	if string(it.Raw) != bskyFixture {
		t.Errorf("raw = %q", it.Raw)
	}
	if c.cursor != 1725911162329308 {
		t.Errorf("cursor = %d", c.cursor)
	}
	// The same event again (a replay after reconnect) is dropped.
	if _, ok, err := c.decode([]byte(bskyFixture)); ok || err != nil {
		t.Errorf("replayed event: ok %v err %v, want dropped", ok, err)
	}
}

func TestBlueskyGoldenEvents(t *testing.T) {
	data, err := os.ReadFile("testdata/bluesky/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	for _, tc := range []struct{ name, yaml string }{
		{"all", "collections: [app.bsky.feed.post, app.bsky.feed.like]\n"},
		{"keywords", "keywords: [GOLANG, 退款]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := bskyTestCollector(t, env, tc.yaml)
			var items []item.Item
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				it, ok, err := c.decode([]byte(line))
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if ok {
					items = append(items, it)
				}
			}
			collectortest.CheckGolden(t, "bluesky/events."+tc.name+".golden.json", items)
		})
	}
}

func TestBlueskyBadEvents(t *testing.T) {
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := bskyTestCollector(t, env, "")
	for _, bad := range []string{
		``, `{`, `[]`, `{"did":"did:plc:x","kind":"commit"}`, // no time_us
		`{"did":"did:plc:x","time_us":1,"kind":"commit"}`, // no commit
		`{"did":"did:plc:x","time_us":1,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":"not an object"}}`,
		`{"did":"did:plc:x","time_us":"soon","kind":"commit"}`,
	} {
		if _, ok, err := c.decode([]byte(bad)); err == nil || ok {
			t.Errorf("%q: ok %v err %v, want an error", bad, ok, err)
		}
	}
	if _, ok, err := c.decode([]byte(`{"did":"did:plc:x","time_us":2,"kind":"labels"}`)); ok || err != nil {
		t.Errorf("unknown kind: ok %v err %v", ok, err)
	}
	if n := collectortest.Count(env.Metrics.Unknown, "bs", "kind:labels"); n != 1 {
		t.Errorf("unknown{kind:labels} = %v", n)
	}
}

func TestBlueskyConfig(t *testing.T) {
	env := collectortest.StreamEnv(t, httpx.RealClock)
	for _, y := range []string{
		"url: http://x/subscribe\n",
		"collections: [\"not an nsid\"]\n",
		"dids: [alice]\n",
		"keyword: [x]\n",
	} {
		src, err := config.NewSourceConfig("id: bs\nkind: bluesky\n" + y)
		if err != nil {
			continue // rejected while parsing: fine too
		}
		if _, err := registry().New(src, env); err == nil {
			t.Errorf("accepted %q", y)
		}
	}
	c := bskyTestCollector(t, env, "dids: [did:plc:abc]\ncollections: [app.bsky.feed.*]\n")
	c.cursor = 1725911162329308
	got := c.subscribeURL()
	want := BlueskyDefaultURL + "?cursor=1725911157329308&wantedCollections=app.bsky.feed.%2A&wantedDids=did%3Aplc%3Aabc"
	if got != want {
		t.Errorf("subscribe URL = %s\nwant %s", got, want)
	}
}

func TestBlueskyLoopback(t *testing.T) {
	srv := loopback.NewBlueskyServer()
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env := collectortest.StreamEnv(t, clk)
	c := bskyTestCollector(t, env, fmt.Sprintf("url: %s\nkeywords: [golang]\n", srv.URL))
	sink := collectortest.NewChanSink()
	stop := collectortest.Start(t, c, sink.Emit)

	sub, ok := srv.WaitSubscription(0, 10*time.Second)
	if !ok {
		t.Fatal("no subscription")
	}
	if got := sub.Query["wantedCollections"]; len(got) != 1 || got[0] != "app.bsky.feed.post" {
		t.Errorf("wantedCollections = %v", got)
	}
	if sub.Query.Has("cursor") {
		t.Errorf("first start sent cursor %q with no saved state", sub.Query.Get("cursor"))
	}
	data, err := os.ReadFile("testdata/bluesky/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	events := strings.Split(strings.TrimSpace(string(data)), "\n")
	srv.Publish(events...)
	srv.Publish(`{"garbage`) // counted, not fatal
	srv.Publish(bskyPostEvent("did:plc:abcdefghijklmnopqrstuvwx", "later", "golang after garbage", 1725911162400000))

	first, del, second, edit, third := sink.Next(t), sink.Next(t), sink.Next(t), sink.Next(t), sink.Next(t)
	if first.Text != "hello #golang" || first.Room != "golang" || first.Kind != item.KindPost {
		t.Errorf("first = %+v", first)
	}
	// The first post's delete and edit (of a post handed on) are passed on.
	if del.ID != first.ID || del.Change != item.ChangeDelete || !del.ChangedAt.Equal(time.UnixMicro(1725911162330000)) {
		t.Errorf("delete = %+v", del)
	}
	if edit.ID != first.ID || edit.Change != item.ChangeEdit || edit.Text != "hello #golang (edited)" ||
		!edit.ChangedAt.Equal(time.UnixMicro(1725911162335000)) || !edit.TS.Equal(time.Date(2024, 9, 9, 19, 46, 2, 102e6, time.UTC)) {
		t.Errorf("edit = %+v", edit)
	}
	// The identity event taught the handle; the reply is a comment.
	if second.Author != "carol.example.com" || second.Kind != item.KindComment || second.AuthorID != "did:plc:abcdefghijklmnopqrstuvwx" {
		t.Errorf("second = %+v", second)
	}
	if third.Text != "golang after garbage" {
		t.Errorf("third = %+v", third)
	}
	sink.None(t)
	if n := collectortest.Count(env.Metrics.Errors, "bs", "decode"); n != 1 {
		t.Errorf("decode errors = %v, want 1", n)
	}
	// The like was filtered by the server (collection not wanted).
	if n := collectortest.Count(env.Metrics.Unknown, "bs", "collection:app.bsky.feed.like"); n != 0 {
		t.Errorf("like reached the client: %v", n)
	}

	// Every few seconds the cursor is saved while running.
	clk.Advance(bskySaveEvery + time.Second)
	srv.Publish(bskyPostEvent("did:plc:abcdefghijklmnopqrstuvwx", "k5", "no keyword", 1725911162500000))
	bskyWaitState(t, env, "1725911162500000")
	stop()
}

func bskyWaitState(t *testing.T, env collectors.Env, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _, _ := env.State.GetState(context.Background(), "bs", bskyCursorKey)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("saved cursor = %q, want %q", v, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBlueskyReconnectResumes(t *testing.T) {
	srv := loopback.NewBlueskyServer()
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env := collectortest.StreamEnv(t, clk)
	c := bskyTestCollector(t, env, fmt.Sprintf("url: %s\n", srv.URL))
	sink := collectortest.NewChanSink()
	collectortest.Start(t, c, sink.Emit)
	if _, ok := srv.WaitSubscription(0, 10*time.Second); !ok {
		t.Fatal("no subscription")
	}
	const t0 = int64(1725911162000000)
	srv.Publish(bskyPostEvent("did:plc:a", "e1", "one", t0), bskyPostEvent("did:plc:a", "e2", "two", t0+1_000_000))
	if a, b := sink.Next(t), sink.Next(t); a.Text != "one" || b.Text != "two" {
		t.Fatalf("got %q %q", a.Text, b.Text)
	}

	srv.Drop()
	d := clk.WaitAsked(t, "reconnect backoff", func(d time.Duration) bool { return d != bskyPingEvery })
	if d < 500*time.Millisecond || d > time.Second {
		t.Errorf("backoff = %v, want within [500ms, 1s]", d)
	}
	// While we are away, the firehose moves on.
	srv.Publish(bskyPostEvent("did:plc:a", "e3", "three", t0+2_000_000))
	clk.Advance(d)
	sub, ok := srv.WaitSubscription(1, 10*time.Second)
	if !ok {
		t.Fatal("no second subscription")
	}
	if got, want := sub.Query.Get("cursor"), strconv.FormatInt(t0+1_000_000-bskyDefaultRewind.Microseconds(), 10); got != want {
		t.Errorf("reconnect cursor = %s, want %s (last time_us minus the rewind)", got, want)
	}
	// The server replays e1, e2 (inside the rewind) and e3; only e3 is new.
	if it := sink.Next(t); it.Text != "three" {
		t.Errorf("after reconnect got %q, want three (e1, e2 deduped)", it.Text)
	}
	sink.None(t)
	// The disconnect saved the cursor (e2's time; e3 is saved by the next
	// periodic or shutdown save).
	bskyWaitState(t, env, strconv.FormatInt(t0+1_000_000, 10))
	if n := collectortest.Count(env.Metrics.Reconnects, "bs"); n != 1 {
		t.Errorf("reconnects = %v", n)
	}
}

func TestBlueskyRestartResumes(t *testing.T) {
	srv := loopback.NewBlueskyServer()
	defer srv.Close()
	state := collectors.NewMemState()
	const t0 = int64(1725911162000000)

	env1 := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	env1.State = state
	sink1 := collectortest.NewChanSink()
	stop1 := collectortest.Start(t, bskyTestCollector(t, env1, fmt.Sprintf("url: %s\n", srv.URL)), sink1.Emit)
	if _, ok := srv.WaitSubscription(0, 10*time.Second); !ok {
		t.Fatal("no subscription")
	}
	srv.Publish(bskyPostEvent("did:plc:a", "e1", "one", t0))
	sink1.Next(t)
	stop1() // graceful shutdown writes the cursor
	if v, _, _ := state.GetState(context.Background(), "bs", bskyCursorKey); v != strconv.FormatInt(t0, 10) {
		t.Fatalf("cursor after shutdown = %q", v)
	}

	// Down for a while: these must not be lost.
	srv.Publish(bskyPostEvent("did:plc:a", "e2", "two", t0+10_000_000), bskyPostEvent("did:plc:a", "e3", "three", t0+20_000_000))

	env2 := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	env2.State = state
	sink2 := collectortest.NewChanSink()
	collectortest.Start(t, bskyTestCollector(t, env2, fmt.Sprintf("url: %s\n", srv.URL)), sink2.Emit)
	sub, ok := srv.WaitSubscription(1, 10*time.Second)
	if !ok {
		t.Fatal("restarted collector did not subscribe")
	}
	if got, want := sub.Query.Get("cursor"), strconv.FormatInt(t0-bskyDefaultRewind.Microseconds(), 10); got != want {
		t.Errorf("restart cursor = %s, want %s", got, want)
	}
	// e1 is inside the rewind window and comes again (a fresh process has
	// no dedupe set; the store dedupes by id), then e2 and e3: no gap.
	var texts []string
	for i := 0; i < 3; i++ {
		texts = append(texts, sink2.Next(t).Text)
	}
	if strings.Join(texts, ",") != "one,two,three" {
		t.Errorf("after restart got %v, want one,two,three", texts)
	}
}

func FuzzBlueskyEvent(f *testing.F) {
	data, err := os.ReadFile("testdata/bluesky/events.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"did":"","time_us":-1,"kind":"commit","commit":null}`))
	// Rich text: a link facet, a mention, a quote with media and alt text.
	f.Add([]byte(bskyRecordEvent("did:plc:a", "r1", `{"text":"a acme.com/x...","langs":["ja"],"facets":[{"index":{"byteStart":2,"byteEnd":15},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://acme.com/x/y"}]},{"index":{"byteStart":0,"byteEnd":1},"features":[{"$type":"app.bsky.richtext.facet#mention","did":"did:plc:b"}]}],"embed":{"$type":"app.bsky.embed.recordWithMedia","record":{"record":{"uri":"at://did:plc:c/app.bsky.feed.post/1"}},"media":{"images":[{"alt":"中"}]}}}`, 5)))
	f.Add([]byte(`{"did":"did:plc:a","time_us":6,"kind":"commit","commit":{"operation":"delete","collection":"app.bsky.feed.post","rkey":"r1"}}`))
	c := bskyTestCollector(f, collectors.Env{}.WithDefaults(), "collections: [app.bsky.feed.post, app.bsky.feed.like]\nkeywords: [a, 中]\n")
	f.Fuzz(func(t *testing.T, ev []byte) {
		it, ok, err := c.decode(ev)
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
		if ok {
			if !it.Kind.Valid() || !strings.HasPrefix(it.ID, "at://") || it.TS.IsZero() || it.AuthorID == "" {
				t.Fatalf("bad item %+v", it)
			}
			if it.Kind == item.KindPost && it.Change == "" && c.matchKeyword(it.Text) == "" {
				t.Fatalf("post without a keyword passed the filter: %q", it.Text)
			}
		}
	})
}

// BenchmarkBlueskyDecode measures event decode and mapping (JSON parse,
// keyword filter, dedupe) over distinct posts.
func BenchmarkBlueskyDecode(b *testing.B) {
	c := bskyTestCollector(b, collectors.Env{}.WithDefaults(), "keywords: [golang, 退款]\n")
	const n = 2*bskyRecentIDs + 1000 // half match: more matches than the dedupe ring, so every event is new
	events := make([][]byte, n)
	size := 0
	for i := range events {
		text := "hello #golang, 今天的直播很好看"
		if i%2 == 1 {
			text = "nothing relevant in this one at all, just chatting"
		}
		events[i] = []byte(bskyPostEvent("did:plc:eygmaihciaxprqvxpfvl6flk", "3l3qo2vuowo"+strconv.Itoa(i), text, 1725911162329308+int64(i)))
		size += len(events[i])
	}
	b.SetBytes(int64(size / n))
	b.ReportAllocs()
	b.ResetTimer()
	kept := 0
	for i := 0; i < b.N; i++ {
		_, ok, err := c.decode(events[i%n])
		if err != nil {
			b.Fatal(err)
		}
		if ok {
			kept++
		}
	}
	b.StopTimer()
	if b.N >= 2 && kept != (b.N+1)/2 {
		b.Fatalf("kept %d of %d", kept, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func TestBlueskyWantedDids(t *testing.T) {
	srv := loopback.NewBlueskyServer()
	defer srv.Close()
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := bskyTestCollector(t, env, fmt.Sprintf("url: %s\ndids: [did:plc:wanted]\ncollections: [app.bsky.feed.*]\n", srv.URL))
	sink := collectortest.NewChanSink()
	collectortest.Start(t, c, sink.Emit)
	sub, ok := srv.WaitSubscription(0, 10*time.Second)
	if !ok || fmt.Sprint(sub.Query["wantedDids"]) != "[did:plc:wanted]" || fmt.Sprint(sub.Query["wantedCollections"]) != "[app.bsky.feed.*]" {
		t.Fatalf("subscription = %+v", sub)
	}
	srv.Publish(
		bskyPostEvent("did:plc:other", "x1", "not followed", 1725911162000000),
		bskyPostEvent("did:plc:wanted", "x2", "followed account", 1725911162000001),
	)
	if it := sink.Next(t); it.AuthorID != "did:plc:wanted" || it.Text != "followed account" {
		t.Errorf("got %+v", it)
	}
	sink.None(t)
}

// registry has the one kind this package's tests build.
func registry() collectors.Registry { return collectors.Registry{"bluesky": New} }

// bskyRecordEvent is a create commit of a post whose record is record
// (JSON), as Jetstream sends it.
func bskyRecordEvent(did, rkey, record string, timeUS int64) string {
	return fmt.Sprintf(`{"did":%q,"time_us":%d,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":%q,"cid":"c","record":%s}}`,
		did, timeUS, rkey, record)
}

// TestBlueskyRichText: the record shapes of app.bsky.feed.post with
// facets, embeds and langs, as the Bluesky app writes them.
func TestBlueskyRichText(t *testing.T) {
	const carol = "did:plc:carolcarolcarolcarolcaro"
	linkText := "Price hike again: acme.com/pricing/2026-pl... 差评"
	start := strings.Index(linkText, "acme.com")
	end := start + len("acme.com/pricing/2026-pl...")
	for _, tc := range []struct {
		name, record string
		text         string
		labels       map[string]string
	}{
		{"link facet", fmt.Sprintf(`{"$type":"app.bsky.feed.post","text":%q,"createdAt":"2026-11-25T12:00:00Z","langs":["en","zh"],
			"facets":[{"$type":"app.bsky.richtext.facet","index":{"byteStart":%d,"byteEnd":%d},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://acme.com/pricing/2026-plans?ref=app"}]}]}`,
			linkText, start, end),
			"Price hike again: https://acme.com/pricing/2026-plans?ref=app 差评",
			map[string]string{"links": "https://acme.com/pricing/2026-plans?ref=app", "langs": "en,zh"}},
		{"mention facet", fmt.Sprintf(`{"$type":"app.bsky.feed.post","text":"@carol.example.com 退款呢？","createdAt":"2026-11-25T12:00:00Z",
			"facets":[{"index":{"byteStart":0,"byteEnd":18},"features":[{"$type":"app.bsky.richtext.facet#mention","did":%q}]}]}`, carol),
			"@carol.example.com 退款呢？", map[string]string{"mentions": "carol.example.com"}},
		{"quote with media, no text: alt text", `{"$type":"app.bsky.feed.post","text":"","createdAt":"2026-11-25T12:00:00Z","langs":["ja"],
			"embed":{"$type":"app.bsky.embed.recordWithMedia","record":{"$type":"app.bsky.embed.record","record":{"uri":"at://did:plc:x/app.bsky.feed.post/3kq","cid":"bafy"}},
			"media":{"$type":"app.bsky.embed.images","images":[{"alt":"返金を拒否されたスクリーンショット","image":{"$type":"blob","mimeType":"image/jpeg","size":1}},{"alt":"","image":{}}]}}}`,
			"返金を拒否されたスクリーンショット", map[string]string{"quote": "at://did:plc:x/app.bsky.feed.post/3kq", "langs": "ja"}},
		{"quote with text", `{"$type":"app.bsky.feed.post","text":"this 👇","createdAt":"2026-11-25T12:00:00Z",
			"embed":{"$type":"app.bsky.embed.record","record":{"uri":"at://did:plc:y/app.bsky.feed.post/3kr","cid":"bafy"}}}`,
			"this 👇", map[string]string{"quote": "at://did:plc:y/app.bsky.feed.post/3kr"}},
		{"images only", `{"$type":"app.bsky.feed.post","text":" ","createdAt":"2026-11-25T12:00:00Z",
			"embed":{"$type":"app.bsky.embed.images","images":[{"alt":"broken box"},{"alt":"wrong colour"}]}}`,
			"broken box\nwrong colour", nil},
		{"link card only", `{"$type":"app.bsky.feed.post","text":"","createdAt":"2026-11-25T12:00:00Z",
			"embed":{"$type":"app.bsky.embed.external","external":{"uri":"https://news.example/acme-recall","title":"Acme recalls kettles","description":"Overheating"}}}`,
			"Acme recalls kettles\nOverheating", map[string]string{"links": "https://news.example/acme-recall"}},
		{"facet out of range and mid-character", `{"$type":"app.bsky.feed.post","text":"退款 x","createdAt":"2026-11-25T12:00:00Z",
			"facets":[{"index":{"byteStart":1,"byteEnd":4},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://a.example"}]},
			{"index":{"byteStart":5,"byteEnd":99},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://b.example"}]}]}`,
			"退款 x", map[string]string{"links": "https://a.example https://b.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := bskyTestCollector(t, collectortest.StreamEnv(t, collectortest.NewSteppedClock()), "")
			it, ok, err := c.decode([]byte(bskyRecordEvent("did:plc:author", "3k1", tc.record, 1764072000000000)))
			if err != nil || !ok {
				t.Fatalf("decode = %v, %v", ok, err)
			}
			if it.Text != tc.text {
				t.Errorf("text = %q, want %q", it.Text, tc.text)
			}
			if fmt.Sprint(it.Labels) != fmt.Sprint(tc.labels) && !(len(it.Labels) == 0 && len(tc.labels) == 0) {
				t.Errorf("labels = %v, want %v", it.Labels, tc.labels)
			}
		})
	}

	// A mention teaches the handle; keywords see the full link.
	c := bskyTestCollector(t, collectortest.StreamEnv(t, collectortest.NewSteppedClock()), "keywords: [acme.com/pricing/2026-plans]\n")
	rec := fmt.Sprintf(`{"$type":"app.bsky.feed.post","text":%q,"createdAt":"2026-11-25T12:00:00Z",
		"facets":[{"index":{"byteStart":%d,"byteEnd":%d},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://acme.com/pricing/2026-plans"}]}]}`, linkText, start, end)
	if it, ok, err := c.decode([]byte(bskyRecordEvent("did:plc:a", "1", rec, 1))); !ok || err != nil || it.Room != "acme.com/pricing/2026-plans" {
		t.Errorf("keyword on the link target: %v %v %+v", ok, err, it)
	}
	mention := fmt.Sprintf(`{"text":"@Carol.Example.com hi","facets":[{"index":{"byteStart":0,"byteEnd":18},"features":[{"$type":"app.bsky.richtext.facet#mention","did":%q}]}]}`, carol)
	c2 := bskyTestCollector(t, collectortest.StreamEnv(t, collectortest.NewSteppedClock()), "")
	if _, ok, _ := c2.decode([]byte(bskyRecordEvent("did:plc:a", "2", mention, 2))); !ok {
		t.Fatal("mention post dropped")
	}
	if it, _, _ := c2.decode([]byte(bskyPostEvent(carol, "3", "my own post", 3))); it.Author != "carol.example.com" {
		t.Errorf("author after a mention named her = %q", it.Author)
	}
}

// TestBlueskyHandleLookup: authors no identity event named are looked up
// once through app.bsky.actor.getProfile (a loopback AppView), cached, and
// looked up again after an identity event without a handle; a failing
// AppView leaves DIDs and pauses lookups.
func TestBlueskyHandleLookup(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	failing := false
	appview := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor := r.URL.Query().Get("actor")
		mu.Lock()
		asked = append(asked, actor)
		fail := failing
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path != "/xrpc/app.bsky.actor.getProfile":
			w.WriteHeader(http.StatusNotFound)
		case fail:
			w.WriteHeader(http.StatusBadGateway)
		case actor == "did:plc:gone":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"InvalidRequest","message":"Profile not found"}`)
		default:
			fmt.Fprintf(w, `{"did":%q,"handle":"%s.bsky.social","displayName":"X","followersCount":3}`, actor, strings.TrimPrefix(actor, "did:plc:"))
		}
	}))
	defer appview.Close()
	askedFor := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(asked, " ")
	}

	srv := loopback.NewBlueskyServer()
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env := collectortest.StreamEnv(t, clk)
	c := bskyTestCollector(t, env, fmt.Sprintf("url: %s\nhandle_lookup: %s\n", srv.URL, appview.URL))
	sink := collectortest.NewChanSink()
	collectortest.Start(t, c, sink.Emit)
	if _, ok := srv.WaitSubscription(0, 10*time.Second); !ok {
		t.Fatal("no subscription")
	}
	srv.Publish(
		bskyPostEvent("did:plc:alice", "1", "one", 1764072000000001),
		bskyPostEvent("did:plc:alice", "2", "two", 1764072000000002),
		bskyPostEvent("did:plc:gone", "3", "three", 1764072000000003),
		`{"did":"did:plc:alice","time_us":1764072000000004,"kind":"identity","identity":{"did":"did:plc:alice","seq":1,"time":"2026-11-25T12:00:00Z"}}`,
		bskyPostEvent("did:plc:alice", "5", "five", 1764072000000005),
	)
	for _, want := range []string{"alice.bsky.social", "alice.bsky.social", "did:plc:gone", "alice.bsky.social"} {
		if it := sink.Next(t); it.Author != want {
			t.Errorf("author = %q, want %q (%s)", it.Author, want, it.Text)
		}
	}
	if got := askedFor(); got != "did:plc:alice did:plc:gone did:plc:alice" {
		t.Errorf("lookups = %q: want alice once, gone once, alice again after her identity event", got)
	}

	mu.Lock()
	failing = true
	mu.Unlock()
	srv.Publish(bskyPostEvent("did:plc:bob", "6", "six", 1764072000000006), bskyPostEvent("did:plc:dan", "7", "seven", 1764072000000007))
	if a, b := sink.Next(t), sink.Next(t); a.Author != "did:plc:bob" || b.Author != "did:plc:dan" {
		t.Errorf("authors with the AppView down = %q %q", a.Author, b.Author)
	}
	if got := askedFor(); got != "did:plc:alice did:plc:gone did:plc:alice did:plc:bob" {
		t.Errorf("lookups = %q: want no lookup during the pause", got)
	}
	if n := collectortest.Count(env.Metrics.Errors, "bs", "handle_lookup"); n != 1 {
		t.Errorf("handle_lookup errors = %v", n)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	clk.Advance(bskyLookupPause)
	srv.Publish(bskyPostEvent("did:plc:dan", "8", "eight", 1764072000000008))
	if it := sink.Next(t); it.Author != "dan.bsky.social" {
		t.Errorf("after the pause = %q", it.Author)
	}
}

// TestBlueskyHandleLookupNeverWaits: with the AppView's rate limit spent,
// posts pass at once with their DIDs instead of waiting for a token.
func TestBlueskyHandleLookupNeverWaits(t *testing.T) {
	var asked atomic.Int32
	appview := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		actor := r.URL.Query().Get("actor")
		fmt.Fprintf(w, `{"did":%q,"handle":"%s.bsky.social"}`, actor, strings.TrimPrefix(actor, "did:plc:"))
	}))
	defer appview.Close()
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	host := strings.TrimPrefix(appview.URL, "http://")
	env.HTTP = httpx.NewClient(config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 1000},
		Hosts: map[string]config.HostLimit{host: {Rate: 0.001, Burst: 1}}}, env.Metrics.HTTP())
	c := bskyTestCollector(t, env, "handle_lookup: "+appview.URL+"\n")
	start := time.Now()
	var authors []string
	for i, did := range []string{"did:plc:a", "did:plc:b", "did:plc:c"} {
		it, ok, err := c.decode([]byte(bskyPostEvent(did, fmt.Sprint(i), "hi", int64(i+1))))
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		if h := c.lookupHandle(t.Context(), it.AuthorID); h != "" {
			it.Author = h
		}
		authors = append(authors, it.Author)
	}
	if got := strings.Join(authors, " "); got != "a.bsky.social did:plc:b did:plc:c" || asked.Load() != 1 {
		t.Errorf("authors %s after %d lookups: want one lookup, then DIDs", got, asked.Load())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s: the stream waited for the rate limit", took)
	}
}
