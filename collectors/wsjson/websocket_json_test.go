package wsjson

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/collectors"
	"lookout/collectors/collectortest"
	"lookout/collectors/poll"
	"lookout/internal/loopback"
	"lookout/item"
)

func TestWSJSONSubscribeMapReconnect(t *testing.T) {
	srv := loopback.NewWSJSONServer()
	defer srv.Close()
	srv.RequireSubscribe = true
	t.Setenv("LOOKOUT_TEST_WS_TOKEN", "Bearer ws-tok")
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/feed"
	cfg := fmt.Sprintf(`id: feed
kind: websocket_json
url: %s
subscribe: '{"op":"subscribe","room":"r1"}'
secret_headers: {Authorization: "${LOOKOUT_TEST_WS_TOKEN}"}
platform: bridge
mapping:
  items: "data[*]"
  id: msg_id
  text: content
  author: user.nick
  author_id: user.uid
  time: ts
  time_format: unix_ms
  kind: chat
  metrics: {viewers: online}
`, wsURL)
	clk := collectortest.NewInstantClock()
	env, logs := collectortest.PollEnvLogs(t, clk, nil)
	c, err := registry().New(collectortest.SourceConfig(t, cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sink collectortest.Sink
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink.Emit) }()

	if !srv.WaitReady(1, 5*time.Second) {
		t.Fatal("client did not connect and subscribe")
	}
	if subs := srv.Subscriptions(); len(subs) != 1 || subs[0] != `{"op":"subscribe","room":"r1"}` {
		t.Fatalf("subscriptions %v", subs)
	}
	srv.Send(`{"data":[{"msg_id":"m1","content":"主播好","user":{"nick":"甲","uid":11},"ts":1732100000000},{"msg_id":"m2","content":"退款！","user":{"nick":"乙","uid":12},"ts":1732100001000}]}`)
	srv.Send(`not json`)
	srv.Send(`{"data":{"msg_id":"m3","content":"单个对象","user":{"nick":"丙"},"ts":1732100002000,"online":321}}`)
	collectortest.Wait(t, "3 chat items + 1 metric", func() bool { return len(sink.All()) == 4 })
	its := sink.All()
	if its[0].ID != "m1" || its[0].Kind != item.KindChat || its[0].Author != "甲" || its[0].AuthorID != "11" || its[0].Platform != "bridge" ||
		!its[0].TS.Equal(time.UnixMilli(1732100000000)) || its[2].Text != "单个对象" || its[3].Kind != item.KindMetric || its[3].Value != 321 {
		t.Errorf("items %+v", its)
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("feed", "decode")); got != 1 {
		t.Errorf("decode errors = %v", got)
	}

	// The server drops us: reconnect with backoff, subscribe again, and
	// skip the replayed m2.
	srv.Drop()
	if !srv.WaitReady(2, 5*time.Second) {
		t.Fatal("no reconnect")
	}
	srv.Send(`{"data":[{"msg_id":"m2","content":"退款！","ts":1732100001000},{"msg_id":"m4","content":"又连上了","ts":1732100003000}]}`)
	collectortest.Wait(t, "m4", func() bool { return len(sink.All()) == 5 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := sink.All()[4].ID; got != "m4" {
		t.Errorf("after reconnect got %s", got)
	}
	if n := len(srv.Subscriptions()); n != 2 {
		t.Errorf("subscribed %d times, want 2", n)
	}
	if got := collectortest.CounterValue(env.Metrics.Reconnects.WithLabelValues("feed")); got < 1 {
		t.Errorf("reconnects = %v", got)
	}
	if w := clk.Waits(); len(w) == 0 || w[0] <= 0 || w[0] > 2*time.Minute {
		t.Errorf("reconnect waits %v", w)
	}
	if strings.Contains(logs.String(), "ws-tok") {
		t.Error("token leaked into the log")
	}
}

func TestWSJSONDialFailureBacksOff(t *testing.T) {
	srv := loopback.NewWSJSONServer()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/feed"
	srv.Close() // nothing listens any more
	clk := collectortest.NewInstantClock()
	env := collectortest.PollEnv(t, clk, nil)
	c, err := registry().New(collectortest.SourceConfig(t, fmt.Sprintf("id: dead\nkind: websocket_json\nurl: %s\nmapping: {text: t}\n", wsURL)), env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, (&collectortest.Sink{}).Emit) }()
	collectortest.Wait(t, "5 dial attempts", func() bool { return len(clk.Waits()) >= 5 })
	cancel()
	<-done
	w := clk.Waits()
	if w[4] <= w[0] {
		t.Errorf("backoff does not grow: %v", w)
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("dead", "dial")); got < 5 {
		t.Errorf("dial errors = %v", got)
	}
}

func TestWSJSONConfigErrors(t *testing.T) {
	collectortest.RequireConfigErrors(t, registry(), []collectortest.ConfigError{
		{YAML: "id: x\nkind: websocket_json\nurl: http://x/\nmapping: {text: t}\n", Want: "ws://"},
		{YAML: "id: x\nkind: websocket_json\nurl: ws://x/\n", Want: "at least id or text"},
		{YAML: "id: x\nkind: websocket_json\nurl: ws://x/\nmapping: {text: t, kind: bogus}\n", Want: "mapping.kind"},
	})
}

func TestWSJSONFixtureFrames(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "wsjson", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	c, err := registry().New(collectortest.SourceConfig(t, "id: f\nkind: websocket_json\nurl: ws://x/\nmapping: {items: \"data[*]\", id: msg_id, text: content, author: user.nick, time: ts, time_format: unix_ms, kind: chat}\n"),
		collectortest.PollEnv(t, collectortest.NewInstantClock(), nil))
	if err != nil {
		t.Fatal(err)
	}
	wc := c.(*wsjsonCollector)
	st := poll.NewState()
	total := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := wc.frame(b, item.Item{}, st)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range recs {
			for _, it := range r.items {
				if it.ID == "" || it.Text == "" || it.TS.IsZero() {
					t.Errorf("%s: incomplete item %+v", f, it)
				}
			}
			total++
		}
	}
	if total != 3 {
		t.Errorf("fixtures yielded %d records, want 3", total)
	}
}

// registry has the one kind this package's tests build.
func registry() collectors.Registry { return collectors.Registry{"websocket_json": New} }

// TestWSJSONFrameRootAndUnmatched: a metric beside the item array is read
// with a ^ path, once per frame (also from frames without items); item
// fields may read the frame too; a path that matches nothing for
// unmatched_frames frames is a health warning naming it, once per streak.
func TestWSJSONFrameRootAndUnmatched(t *testing.T) {
	srv := loopback.NewWSJSONServer()
	defer srv.Close()
	cfg := fmt.Sprintf(`id: feed
kind: websocket_json
url: ws%s/feed
unmatched_frames: 3
mapping:
  items: "data[*]"
  id: msg_id
  text: content
  author: user.nick
  room: ^.room
  kind: chat
  metrics: {viewers: ^.online}
`, strings.TrimPrefix(srv.URL, "http"))
	env, logs := collectortest.PollEnvLogs(t, collectortest.NewInstantClock(), nil)
	c, err := registry().New(collectortest.SourceConfig(t, cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	wc := c.(*wsjsonCollector)
	var sink collectortest.Sink
	collectortest.Start(t, c, sink.Emit)
	if !srv.WaitReady(1, 5*time.Second) {
		t.Fatal("client did not connect")
	}
	srv.Send(`{"room":"r9","online":1234,"data":[{"msg_id":"a","content":"hi","user":{"nick":"甲"}},{"msg_id":"b","content":"yo","user":{"nick":"乙"}}]}`)
	srv.Send(`{"room":"r9","online":1300}`)
	collectortest.Wait(t, "2 chats + 2 samples", func() bool { return len(sink.All()) == 4 })
	its := sink.All()
	if its[0].ID != "a" || its[0].Room != "r9" || its[1].ID != "b" || its[2].Kind != item.KindMetric || its[2].Metric != "viewers" ||
		its[2].Value != 1234 || its[3].Metric != "viewers" || its[3].Value != 1300 || its[2].ID == its[3].ID {
		t.Fatalf("items %+v", its)
	}

	// The feed renames user.nick to user.name: three frames with items
	// and no nick are one warning naming the path.
	for i := range 5 {
		srv.Send(fmt.Sprintf(`{"online":1,"data":[{"msg_id":"n%d","content":"x","user":{"name":"丙"}}]}`, i))
	}
	collectortest.Wait(t, "5 more chats and samples", func() bool { return len(sink.All()) == 14 })
	if n := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("feed", "unmatched_path")); n != 2 {
		t.Errorf("unmatched_path = %v, want 2 (author, and room since frames stopped carrying it)", n)
	}
	st := wc.env.Health.Status()
	if !strings.Contains(st.LastError, "matched nothing in the last 3 frames") || st.State != collectors.HealthOK {
		t.Errorf("health = %+v", st)
	}
	if !strings.Contains(logs.String(), `path=user.nick`) {
		t.Errorf("log does not name the path:\n%s", logs.String())
	}
	for i, f := range wc.fields {
		if (f.Name == "author" || f.Name == "room") != wc.warned[i] {
			t.Errorf("field %s warned = %v", f.Name, wc.warned[i])
		}
	}
}
