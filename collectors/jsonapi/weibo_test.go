package jsonapi

import (
	"context"
	"encoding/json"
	"errors"
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

func TestWeiboHotflowFixture(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "weibo", "hotflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WEIBO_COOKIE", "SUB=x")
	c, err := registry().New(collectortest.SourceConfig(t, "id: wb\nkind: weibo\nmode: comments\npost_id: \"4609570000000001\"\ncookie: ${WEIBO_COOKIE}\n"), collectortest.PollEnv(t, collectortest.NewInstantClock(), nil))
	if err != nil {
		t.Fatal(err)
	}
	var env weiboEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	var d struct {
		Data []weiboEntry `json:"data"`
	}
	if err := json.Unmarshal(env.Data, &d); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	it, err := c.(*weiboCollector).item(d.Data[0], now)
	if err != nil {
		t.Fatal(err)
	}
	want := item.Item{Source: "wb", Platform: "weibo", Kind: item.KindComment, Room: "weibo4609570000000001", ID: "4609573219287049",
		AuthorID: "5678901234", Author: "用户甲", Text: "物流太慢了[怒] @品牌官博 & 客服", URL: "https://m.weibo.cn/detail/4609570000000001",
		TS: time.Date(2021, 2, 23, 4, 28, 47, 0, time.UTC), Value: 12}
	it.Raw = nil
	if fmt.Sprint(it) != fmt.Sprint(want) {
		t.Errorf("item\n got %+v\nwant %+v", it, want)
	}
	for in, want := range map[string]time.Time{
		"Tue Feb 23 12:28:47 +0800 2021": time.Date(2021, 2, 23, 4, 28, 47, 0, time.UTC),
		"刚刚":                             now,
		"10分钟前":                          now.Add(-10 * time.Minute),
	} {
		got, err := weiboParseTime(in, time.FixedZone("CST", 8*3600), now)
		if err != nil || !got.Equal(want) {
			t.Errorf("weiboParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func weiboComments(from, to int) []loopback.WeiboPost {
	var out []loopback.WeiboPost
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for i := from; i <= to; i++ {
		out = append(out, loopback.WeiboPost{ID: 4609573219280000 + int64(i), Text: fmt.Sprintf("评论%d <a href='/n/x'>@x</a>", i),
			Created: t0.Add(time.Duration(i) * time.Minute), Likes: i, UID: int64(5000 + i), Name: fmt.Sprintf("用户%d", i)})
	}
	return out
}

func weiboSource(srv *loopback.WeiboServer, extra string) string {
	return fmt.Sprintf("id: wb\nkind: weibo\napi_base: %s\ncookie: ${WEIBO_COOKIE}\n%s", srv.URL, extra)
}

func TestWeiboCommentsPagingAndRestart(t *testing.T) {
	srv := loopback.NewWeiboServer()
	defer srv.Close()
	srv.Cookie = "SUB=_2A25good"
	srv.AddComments(4609570000000001, weiboComments(1, 5)...)
	t.Setenv("WEIBO_COOKIE", "SUB=_2A25good; SUBP=0033")
	state := collectors.NewMemState()
	cfg := weiboSource(srv, "mode: comments\npost_id: \"4609570000000001\"\n")
	c, err := registry().New(collectortest.SourceConfig(t, cfg), collectortest.PollEnv(t, collectortest.NewInstantClock(), state))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var sink collectortest.Sink
	if err := c.(*weiboCollector).poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "4609573219280001,4609573219280002,4609573219280003,4609573219280004,4609573219280005" {
		t.Fatalf("first poll %s", got)
	}
	if it := sink.All()[0]; it.Text != "评论1 @x" || it.Author != "用户1" || it.AuthorID != "5001" || it.Kind != item.KindComment ||
		!it.TS.Equal(time.Date(2026, 11, 20, 8, 1, 0, 0, time.UTC)) {
		t.Errorf("item %+v", it)
	}
	if reqs := srv.Requests(); len(reqs) != 2 || !strings.Contains(reqs[1], "max_id=1003") {
		t.Errorf("requests %v", reqs)
	}
	srv.AddComments(4609570000000001, weiboComments(6, 6)...)
	c2, err := registry().New(collectortest.SourceConfig(t, cfg), collectortest.PollEnv(t, collectortest.NewInstantClock(), state))
	if err != nil {
		t.Fatal(err)
	}
	sink.Reset()
	if err := c2.(*weiboCollector).poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "4609573219280006" {
		t.Fatalf("after restart %s", got)
	}
}

func TestWeiboCookieExpired(t *testing.T) {
	t.Setenv("WEIBO_COOKIE", "SUB=_2A25old")
	for _, tc := range []struct {
		name string
		mode loopback.WeiboExpireMode
		why  string
	}{
		{"redirect", loopback.WeiboExpireRedirect, "redirected to"},
		{"ok-100", loopback.WeiboExpireOK100, "ok:-100"},
		{"html", loopback.WeiboExpireHTML, "HTML login page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := loopback.NewWeiboServer()
			defer srv.Close()
			srv.AddComments(1, weiboComments(1, 2)...)
			srv.AddStatuses(42, weiboComments(3, 4)...)
			srv.Expire(tc.mode)
			for _, mode := range []string{"mode: comments\npost_id: \"1\"\n", "mode: timeline\nuid: \"42\"\n"} {
				c, err := registry().New(collectortest.SourceConfig(t, weiboSource(srv, mode)), collectortest.PollEnv(t, collectortest.NewInstantClock(), nil))
				if err != nil {
					t.Fatal(err)
				}
				var sink collectortest.Sink
				err = c.(*weiboCollector).poll(context.Background(), sink.Emit)
				if !errors.Is(err, ErrWeiboLogin) || poll.Reason(err) != "cookie_expired" {
					t.Fatalf("%s: err = %v, want a login error", mode, err)
				}
				if !strings.Contains(err.Error(), "weibo: cookie expired or not logged in; refresh WEIBO_COOKIE") || !strings.Contains(err.Error(), tc.why) {
					t.Errorf("message %q", err.Error())
				}
				if strings.Contains(err.Error(), "_2A25old") {
					t.Error("cookie leaked into the error")
				}
				if len(sink.All()) != 0 {
					t.Errorf("emitted %v", sink.IDs())
				}
			}
		})
	}

	// Through the loop: logged at ERROR, counted, retried later.
	srv := loopback.NewWeiboServer()
	defer srv.Close()
	srv.Expire(loopback.WeiboExpireOK100)
	env, logs := collectortest.PollEnvLogs(t, collectortest.NewInstantClock(), nil)
	c, err := registry().New(collectortest.SourceConfig(t, weiboSource(srv, "mode: comments\npost_id: \"1\"\n")), env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, (&collectortest.Sink{}).Emit) }()
	collectortest.Wait(t, "two failed polls", func() bool {
		return collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("wb", "cookie_expired")) >= 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "refresh WEIBO_COOKIE") {
		t.Errorf("log lacks the error:\n%s", l)
	}
}

func TestWeiboTimelineAndSearch(t *testing.T) {
	srv := loopback.NewWeiboServer()
	defer srv.Close()
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for i := 1; i <= 4; i++ {
		text := fmt.Sprintf("新品发布 第%d条", i)
		if i%2 == 0 {
			text = fmt.Sprintf("假货投诉 第%d条<br/>已报警", i)
		}
		srv.AddStatuses(42, loopback.WeiboPost{ID: 4700000000000000 + int64(i), Text: text, Created: t0.Add(time.Duration(i) * time.Hour), Likes: i, Name: "品牌官博"})
	}
	t.Setenv("WEIBO_COOKIE", "SUB=x")
	c, err := registry().New(collectortest.SourceConfig(t, weiboSource(srv, "mode: timeline\nuid: \"42\"\n")), collectortest.PollEnv(t, collectortest.NewInstantClock(), nil))
	if err != nil {
		t.Fatal(err)
	}
	var sink collectortest.Sink
	if err := c.(*weiboCollector).poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "4700000000000001,4700000000000002,4700000000000003,4700000000000004" {
		t.Fatalf("timeline %s", got)
	}
	if it := sink.All()[3]; it.Kind != item.KindPost || it.Text != "假货投诉 第4条\n已报警" || it.AuthorID != "42" || it.Value != 4 ||
		it.URL != "https://m.weibo.cn/detail/4700000000000004" {
		t.Errorf("status %+v", it)
	}

	c, err = registry().New(collectortest.SourceConfig(t, weiboSource(srv, "mode: search\nkeyword: 假货\n")), collectortest.PollEnv(t, collectortest.NewInstantClock(), nil))
	if err != nil {
		t.Fatal(err)
	}
	sink.Reset()
	if err := c.(*weiboCollector).poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "4700000000000002,4700000000000004" {
		t.Fatalf("search %s", got)
	}
	last := srv.Requests()[len(srv.Requests())-1]
	if !strings.Contains(last, "containerid=100103type%3D61%26q%3D") {
		t.Errorf("search request %s", last)
	}
}

func TestWeiboConfigErrors(t *testing.T) {
	collectortest.RequireConfigErrors(t, registry(), []collectortest.ConfigError{
		{YAML: "id: x\nkind: weibo\nmode: comments\npost_id: \"1\"\n", Want: "cookie: required"},
		{YAML: "id: x\nkind: weibo\nmode: comments\npost_id: abc\n", Want: "post_id"},
		{YAML: "id: x\nkind: weibo\nmode: timeline\n", Want: "uid"},
		{YAML: "id: x\nkind: weibo\nmode: search\n", Want: "keyword"},
		{YAML: "id: x\nkind: weibo\nmode: hot\n", Want: "mode"},
		{YAML: "id: x\nkind: weibo\nmode: timeline\nuid: \"1\"\ncookie: ${LOOKOUT_TEST_UNSET_COOKIE}\n", Want: "is empty"},
	})
}
