package jsonapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"lookout/collectors"
	"lookout/collectors/collectortest"
	"lookout/collectors/poll"
	"lookout/internal/loopback"
	"lookout/item"
)

func jsonapiPosts(from, to int) []loopback.JSONAPIPost {
	var out []loopback.JSONAPIPost
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for i := from; i <= to; i++ {
		out = append(out, loopback.JSONAPIPost{ID: fmt.Sprintf("p%d", i), Body: fmt.Sprintf("post %d 退款", i),
			Author: fmt.Sprintf("user%d", i), AuthorID: int64(1000 + i), Created: t0.Add(time.Duration(i) * time.Minute), Likes: i})
	}
	return out
}

const jsonapiMappingYAML = `mapping:
  items: data.items[*]
  id: id
  text: body
  author: user.name
  author_id: user.id
  time: created_at
  time_format: rfc3339
  value: stats.likes
`

func jsonapiNew(t *testing.T, env collectors.Env, yamlText string) *jsonapiCollector {
	t.Helper()
	c, err := registry().New(collectortest.SourceConfig(t, yamlText), env)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return c.(*jsonapiCollector)
}

func TestJSONAPIPagePaginationStopsAtLastSeen(t *testing.T) {
	srv := loopback.NewJSONAPIServer()
	defer srv.Close()
	srv.Add(jsonapiPosts(1, 7)...)
	state := collectors.NewMemState()
	env := collectortest.PollEnv(t, collectortest.NewInstantClock(), state)
	cfg := fmt.Sprintf("id: api\nkind: json_api\nurl: %s/api/posts?per_page=3\nroom: brand\npagination: {type: page, param: page, max_pages: 5, has_more_path: data.has_more}\n%s", srv.URL, jsonapiMappingYAML)
	c := jsonapiNew(t, env, cfg)
	ctx := context.Background()
	var sink collectortest.Sink
	if err := c.poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	want := "p1,p2,p3,p4,p5,p6,p7"
	if got := strings.Join(sink.IDs(), ","); got != want {
		t.Fatalf("first poll: %s, want %s (oldest first)", got, want)
	}
	if reqs := srv.Requests(); len(reqs) != 3 || !strings.Contains(reqs[2], "page=3") {
		t.Errorf("first poll requests %v, want pages 1..3", reqs)
	}
	it := sink.All()[6]
	if it.Kind != item.KindPost || it.Text != "post 7 退款" || it.Author != "user7" || it.AuthorID != "1007" ||
		it.Value != 7 || it.Room != "brand" || it.Platform != "json_api" || !it.TS.Equal(time.Date(2026, 11, 20, 8, 7, 0, 0, time.UTC)) {
		t.Errorf("item = %+v", it)
	}
	if got := collectortest.CounterValue(env.Metrics.Items.WithLabelValues("api", "post")); got != 7 {
		t.Errorf("items counter = %v", got)
	}

	// Two new posts: page 1 holds them and p7, the last seen id, so the
	// poll stops there without reading page 2.
	srv.Add(jsonapiPosts(8, 9)...)
	n := len(srv.Requests())
	sink.Reset()
	if err := c.poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "p8,p9" {
		t.Fatalf("second poll: %s, want p8,p9", got)
	}
	if reqs := srv.Requests()[n:]; len(reqs) != 1 {
		t.Errorf("second poll read %d pages (%v), want 1", len(reqs), reqs)
	}

	// Nothing changed: the ETag makes it a 304 and nothing is emitted.
	sink.Reset()
	if err := c.poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if len(sink.All()) != 0 {
		t.Errorf("unchanged feed emitted %v", sink.IDs())
	}
	if v, _, _ := state.GetState(ctx, "api", "etag"); v == "" {
		t.Error("etag not stored")
	}

	// Restart: a new collector with the same state re-emits nothing and
	// picks up exactly the new post.
	srv.Add(jsonapiPosts(10, 10)...)
	c2 := jsonapiNew(t, collectortest.PollEnv(t, collectortest.NewInstantClock(), state), cfg)
	sink.Reset()
	if err := c2.poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "p10" {
		t.Fatalf("after restart: %s, want p10", got)
	}
}

func TestJSONAPICursorPaginationAndSecretHeader(t *testing.T) {
	srv := loopback.NewJSONAPIServer()
	defer srv.Close()
	srv.Token = "tok-123"
	srv.Add(jsonapiPosts(1, 5)...)
	t.Setenv("LOOKOUT_TEST_API_TOKEN", "Bearer tok-123")
	env := collectortest.PollEnv(t, collectortest.NewInstantClock(), nil)
	cfg := fmt.Sprintf("id: feed\nkind: json_api\nurl: %s/api/feed\nparams: {limit: \"2\", q: \"{{.LastID}}\"}\nsecret_headers: {Authorization: \"${LOOKOUT_TEST_API_TOKEN}\"}\npagination: {type: cursor, param: cursor, cursor_path: data.next_cursor}\n%s", srv.URL, jsonapiMappingYAML)
	c := jsonapiNew(t, env, cfg)
	var sink collectortest.Sink
	if err := c.poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "p1,p2,p3,p4,p5" {
		t.Fatalf("got %s", got)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || !strings.Contains(reqs[1], "cursor=c_p4") || strings.Contains(reqs[0], "cursor=") || strings.Contains(reqs[0], "q=") {
		t.Errorf("requests = %v", reqs)
	}
	srv.Add(jsonapiPosts(6, 6)...)
	sink.Reset()
	if err := c.poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "p6" {
		t.Fatalf("second poll %s", got)
	}
	if last := srv.Requests()[len(srv.Requests())-1]; !strings.Contains(last, "q=p5") {
		t.Errorf("LastID template not applied: %s", last)
	}

	// Wrong token: a clear auth error, not an empty result.
	srv.Token = "other"
	err := c.poll(context.Background(), sink.Emit)
	if err == nil || poll.Reason(err) != "auth" || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad token: err = %v (reason %s)", err, poll.Reason(err))
	}
	if strings.Contains(err.Error(), "tok-123") {
		t.Error("secret leaked into the error")
	}
}

func TestJSONAPIResumeCursorAcrossRestart(t *testing.T) {
	srv := loopback.NewJSONAPIServer()
	defer srv.Close()
	srv.Add(jsonapiPosts(1, 4)...)
	state := collectors.NewMemState()
	cfg := fmt.Sprintf("id: since\nkind: json_api\nurl: %s/api/since?limit=3\norder: oldest_first\npagination: {type: cursor, param: after, cursor_path: data.next, resume: true}\n%s", srv.URL, jsonapiMappingYAML)
	var sink collectortest.Sink
	c := jsonapiNew(t, collectortest.PollEnv(t, collectortest.NewInstantClock(), state), cfg)
	if err := c.poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "p1,p2,p3,p4" {
		t.Fatalf("got %s", got)
	}
	if v, _, _ := state.GetState(context.Background(), "since", "cursor"); v != "p4" {
		t.Errorf("cursor state = %q", v)
	}
	srv.Add(jsonapiPosts(5, 6)...)
	c2 := jsonapiNew(t, collectortest.PollEnv(t, collectortest.NewInstantClock(), state), cfg)
	sink.Reset()
	if err := c2.poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "p5,p6" {
		t.Fatalf("after restart %s", got)
	}
	if last := srv.Requests()[len(srv.Requests())-2]; !strings.Contains(last, "after=p4") {
		t.Errorf("restart did not resume from the cursor: %s", last)
	}
}

func TestJSONAPIRetryAfter429(t *testing.T) {
	srv := loopback.NewJSONAPIServer()
	defer srv.Close()
	srv.Add(jsonapiPosts(1, 2)...)
	srv.FailNext(http.StatusTooManyRequests, "120", 1)
	clk := collectortest.NewInstantClock()
	env := collectortest.PollEnv(t, clk, nil)
	c := jsonapiNew(t, env, fmt.Sprintf("id: rl\nkind: json_api\nevery: 30s\nurl: %s/api/posts\n%s", srv.URL, jsonapiMappingYAML))
	ctx, cancel := context.WithCancel(context.Background())
	var sink collectortest.Sink
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink.Emit) }()
	collectortest.Wait(t, "items after the 429", func() bool { return len(sink.All()) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	w := clk.Waits()
	if len(w) == 0 || w[0] < 120*time.Second {
		t.Errorf("first wait %v, want ≥ 120s (Retry-After)", w)
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("rl", "rate_limited")); got != 1 {
		t.Errorf("rate_limited = %v", got)
	}
}

func TestJSONAPIConfigErrors(t *testing.T) {
	collectortest.RequireConfigErrors(t, registry(), []collectortest.ConfigError{
		{YAML: "id: x\nkind: json_api\n" + jsonapiMappingYAML, Want: "url: required"},
		{YAML: "id: x\nkind: json_api\nurl: ftp://x/\n" + jsonapiMappingYAML, Want: "absolute http(s)"},
		{YAML: "id: x\nkind: json_api\nurl: http://x/{{.Nope}}\n" + jsonapiMappingYAML, Want: "url"},
		{YAML: "id: x\nkind: json_api\nurl: http://x/\npagination: {type: cursor, param: c}\n" + jsonapiMappingYAML, Want: "cursor_path"},
		{YAML: "id: x\nkind: json_api\nurl: http://x/\npagination: {type: offset}\n" + jsonapiMappingYAML, Want: "pagination.type"},
		{YAML: "id: x\nkind: json_api\nurl: http://x/\nheaders: {Authorization: \"${TOKEN}\"}\n" + jsonapiMappingYAML, Want: "secret_headers"},
		{YAML: "id: x\nkind: json_api\nurl: http://x/\nmapping: {items: data}\n", Want: "at least id or text"},
		{YAML: "id: x\nkind: json_api\nurl: http://x/\nbogus: 1\n" + jsonapiMappingYAML, Want: "bogus"},
		{YAML: "id: x\nkind: json_api\nurl: http://x/\nmapping: {id: id, metrics: {total: ^.total}}\n", Want: "for websocket_json frames"},
	})
}

func TestJSONAPIShapeDrift(t *testing.T) {
	srv := loopback.NewJSONAPIServer()
	defer srv.Close()
	srv.Add(jsonapiPosts(1, 2)...)
	state := collectors.NewMemState()
	env, logs := collectortest.PollEnvLogs(t, collectortest.NewInstantClock(), state)
	c := jsonapiNew(t, env, fmt.Sprintf("id: api\nkind: json_api\nurl: %s/api/posts\n%s", srv.URL, jsonapiMappingYAML))
	ctx := context.Background()
	var sink collectortest.Sink
	if err := c.poll(ctx, sink.Emit); err != nil || len(sink.All()) != 2 {
		t.Fatalf("first poll: %v %v", err, sink.IDs())
	}
	srv.SetDrift(true)
	srv.Add(jsonapiPosts(3, 3)...)
	if err := c.poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "source_broken") {
		t.Errorf("no source_broken warning:\n%s", logs.String())
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("api", "shape_drift")); got != 1 {
		t.Errorf("shape_drift = %v", got)
	}
	if v, _, _ := state.GetState(ctx, "api", "shape_drift"); v == "" {
		t.Error("shape_drift state not recorded")
	}
}

// A shutdown in the middle of a poll keeps what was emitted and loses
// nothing: the next start emits exactly the rest.
func TestJSONAPIStopMidPollNoLossNoDup(t *testing.T) {
	srv := loopback.NewJSONAPIServer()
	defer srv.Close()
	srv.Add(jsonapiPosts(1, 5)...)
	state := collectors.NewMemState()
	cfg := fmt.Sprintf("id: api\nkind: json_api\nurl: %s/api/posts?per_page=10\n%s", srv.URL, jsonapiMappingYAML)
	c := jsonapiNew(t, collectortest.PollEnv(t, collectortest.NewInstantClock(), state), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	stopAfter2 := func(ctx context.Context, it item.Item) error {
		if len(got) == 2 {
			cancel()
			return ctx.Err()
		}
		got = append(got, it.ID)
		return nil
	}
	if err := c.poll(ctx, stopAfter2); err == nil {
		t.Fatal("poll ignored the failing emit")
	}
	c2 := jsonapiNew(t, collectortest.PollEnv(t, collectortest.NewInstantClock(), state), cfg)
	var sink collectortest.Sink
	if err := c2.poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	if all := strings.Join(append(got, sink.IDs()...), ","); all != "p1,p2,p3,p4,p5" {
		t.Errorf("emitted across the restart: %s, want p1..p5 once each", all)
	}
}

// registry has the kinds this package's tests build.
func registry() collectors.Registry {
	return collectors.Registry{"json_api": NewJSONAPI, "weibo": NewWeibo}
}
