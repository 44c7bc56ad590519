package bilibili

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

func TestBilibiliBVID(t *testing.T) {
	// Vectors from bilibili-API-collect docs/misc/bvid_desc.md.
	for _, tc := range []struct {
		aid  int64
		bvid string
	}{
		{170001, "BV17x411w7KC"},
		{111298867365120, "BV1L9Uoa9EUx"},
	} {
		if got := AIDToBVID(tc.aid); got != tc.bvid {
			t.Errorf("AIDToBVID(%d) = %s, want %s", tc.aid, got, tc.bvid)
		}
		if got, err := BVIDToAID(tc.bvid); err != nil || got != tc.aid {
			t.Errorf("BVIDToAID(%s) = %d, %v; want %d", tc.bvid, got, err, tc.aid)
		}
	}
	for _, aid := range []int64{1, 2, 99, 170001, 1 << 32, 1<<51 - 1} {
		bv := AIDToBVID(aid)
		if back, err := BVIDToAID(bv); err != nil || back != aid {
			t.Errorf("round trip %d → %s → %d, %v", aid, bv, back, err)
		}
	}
	for _, bad := range []string{"", "BV17x411w7K", "AV17x411w7KC", "BV17x411w7K0", "BV17x411w7KCC"} {
		if _, err := BVIDToAID(bad); err == nil {
			t.Errorf("BVIDToAID(%q) accepted", bad)
		}
	}
}

func TestBiliCommentsFixtureItem(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "bilicomments", "wbi_main.json"))
	if err != nil {
		t.Fatal(err)
	}
	var env bilicmtEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	var data bilicmtData
	dec := json.NewDecoder(strings.NewReader(string(env.Data)))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		t.Fatal(err)
	}
	c, err := registry().New(collectortest.SourceConfig(t, "id: v\nkind: bilibili_comments\nbvid: BV17x411w7KC\n"), collectortest.PollEnv(t, collectortest.NewInstantClock(), nil))
	if err != nil {
		t.Fatal(err)
	}
	it := c.(*bilicmtCollector).item(data.Replies[0])
	want := item.Item{Source: "v", Platform: "bilibili", Kind: item.KindComment, Room: "BV17x411w7KC", ID: "237494917584",
		AuthorID: "12345", Author: "alice", Text: "great video", URL: "https://www.bilibili.com/video/BV17x411w7KC#reply237494917584",
		TS: time.Unix(1723979200, 0).UTC(), Value: 42}
	it.Raw = nil
	if fmt.Sprint(it) != fmt.Sprint(want) {
		t.Errorf("item\n got %+v\nwant %+v", it, want)
	}
	if !data.Cursor.IsEnd && data.Cursor.PaginationReply.NextOffset == "" {
		t.Error("cursor not decoded")
	}
}

const (
	bilicmtImgKey  = "7cd084941338484aae1ad9425b84077c"
	bilicmtSubKey  = "4932caff0ff746eab6f01bf08b70ac45"
	bilicmtImgKey2 = "0123456789abcdef0123456789abcdef"
	bilicmtSubKey2 = "fedcba9876543210fedcba9876543210"
)

func bilicmtReplies(from, to int) []loopback.BiliReply {
	var out []loopback.BiliReply
	for i := from; i <= to; i++ {
		out = append(out, loopback.BiliReply{RPID: 237494917000 + int64(i), MID: int64(100 + i), Uname: fmt.Sprintf("up%d", i),
			Message: fmt.Sprintf("评论%d 退款", i), CTime: 1723970000 + int64(i)*60, Like: i})
	}
	return out
}

func TestBiliCommentsWBIPagingStopAndRestart(t *testing.T) {
	srv := loopback.NewBiliReplyServer(bilicmtImgKey, bilicmtSubKey)
	defer srv.Close()
	srv.Add(170001, bilicmtReplies(1, 5)...)
	state := collectors.NewMemState()
	cfg := fmt.Sprintf("id: vid\nkind: bilibili_comments\nbvid: BV17x411w7KC\napi_base: %s\n", srv.URL)
	c, err := registry().New(collectortest.SourceConfig(t, cfg), collectortest.PollEnv(t, collectortest.NewInstantClock(), state))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var sink collectortest.Sink
	if err := c.(*bilicmtCollector).poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	want := "237494917001,237494917002,237494917003,237494917004,237494917005"
	if got := strings.Join(sink.IDs(), ","); got != want {
		t.Fatalf("first poll %s", got)
	}
	last := sink.All()[4]
	if last.Text != "评论5 退款" || last.Author != "up5" || last.AuthorID != "105" || last.Value != 5 ||
		!last.TS.Equal(time.Unix(1723970300, 0)) || last.Kind != item.KindComment {
		t.Errorf("item %+v", last)
	}
	reqs := srv.Requests()
	if srv.NavCalls() != 1 || srv.BadSigns() != 0 || len(reqs) != 3 || !strings.Contains(reqs[1], "oid=170001") || !strings.Contains(reqs[1], "mode=2") {
		t.Errorf("nav=%d bad=%d requests=%v", srv.NavCalls(), srv.BadSigns(), reqs)
	}

	srv.Add(170001, bilicmtReplies(6, 7)...)
	c2, err := registry().New(collectortest.SourceConfig(t, cfg), collectortest.PollEnv(t, collectortest.NewInstantClock(), state))
	if err != nil {
		t.Fatal(err)
	}
	sink.Reset()
	n := len(srv.Requests())
	if err := c2.(*bilicmtCollector).poll(ctx, sink.Emit); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sink.IDs(), ","); got != "237494917006,237494917007" {
		t.Fatalf("after restart %s", got)
	}
	if got := len(srv.Requests()) - n; got != 2 { // nav + one page
		t.Errorf("restart poll made %d requests: %v", got, srv.Requests()[n:])
	}
}

func TestBiliCommentsWBIRefreshOn403(t *testing.T) {
	srv := loopback.NewBiliReplyServer(bilicmtImgKey, bilicmtSubKey)
	defer srv.Close()
	srv.Add(170001, bilicmtReplies(1, 2)...)
	c, err := registry().New(collectortest.SourceConfig(t, fmt.Sprintf("id: v\nkind: bilibili_comments\naid: 170001\napi_base: %s\n", srv.URL)),
		collectortest.PollEnv(t, collectortest.NewInstantClock(), nil))
	if err != nil {
		t.Fatal(err)
	}
	bc := c.(*bilicmtCollector)
	var sink collectortest.Sink
	if err := bc.poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	srv.SetKeys(bilicmtImgKey2, bilicmtSubKey2) // keys rotate; the cached mixin key is stale
	srv.Add(170001, bilicmtReplies(3, 3)...)
	if err := bc.poll(context.Background(), sink.Emit); err != nil {
		t.Fatalf("poll after key rotation: %v", err)
	}
	if srv.BadSigns() != 1 || srv.NavCalls() != 2 {
		t.Errorf("bad signs %d (want 1), nav calls %d (want 2)", srv.BadSigns(), srv.NavCalls())
	}
	if got := strings.Join(sink.IDs(), ","); got != "237494917001,237494917002,237494917003" {
		t.Errorf("items %s", got)
	}
}

func TestBiliCommentsPagedCookieAndRiskControl(t *testing.T) {
	srv := loopback.NewBiliReplyServer(bilicmtImgKey, bilicmtSubKey)
	defer srv.Close()
	srv.Cookie = "SESSDATA=s3cr3t"
	srv.Add(9123, bilicmtReplies(1, 4)...)
	cfg := fmt.Sprintf("id: dyn\nkind: bilibili_comments\ndynamic_id: \"9123\"\napi: paged\napi_base: %s\ncookie: ${LOOKOUT_TEST_BILI_COOKIE}\nevery: 1m\nrisk_backoff: 15m\n", srv.URL)

	t.Setenv("LOOKOUT_TEST_BILI_COOKIE", "SESSDATA=wrong")
	c, err := registry().New(collectortest.SourceConfig(t, cfg), collectortest.PollEnv(t, collectortest.NewInstantClock(), nil))
	if err != nil {
		t.Fatal(err)
	}
	var sink collectortest.Sink
	err = c.(*bilicmtCollector).poll(context.Background(), sink.Emit)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != -101 || poll.Reason(err) != "auth" || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("bad cookie: err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Error("cookie value leaked into the error")
	}

	t.Setenv("LOOKOUT_TEST_BILI_COOKIE", "buvid3=x; SESSDATA=s3cr3t")
	clk := collectortest.NewInstantClock()
	env := collectortest.PollEnv(t, clk, nil)
	c, err = registry().New(collectortest.SourceConfig(t, cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	srv.RiskControl(1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink.Emit) }()
	collectortest.Wait(t, "4 replies", func() bool { return len(sink.All()) == 4 })
	cancel()
	<-done
	if w := clk.Waits(); len(w) == 0 || w[0] < 15*time.Minute {
		t.Errorf("waits after -412: %v, want first ≥ 15m", w)
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("dyn", "risk_control")); got != 1 {
		t.Errorf("risk_control = %v", got)
	}
	if it := sink.All()[0]; it.URL != "https://t.bilibili.com/9123#reply237494917001" || it.Room != "dynamic9123" {
		t.Errorf("dynamic item %+v", it)
	}
	for _, r := range srv.Requests() {
		if strings.Contains(r, "/x/v2/reply?") && (!strings.Contains(r, "type=17") || !strings.Contains(r, "sort=0")) {
			t.Errorf("paged request %s lacks type=17/sort=0", r)
		}
	}
}

func TestBiliCommentsConfigErrors(t *testing.T) {
	collectortest.RequireConfigErrors(t, registry(), []collectortest.ConfigError{
		{YAML: "id: x\nkind: bilibili_comments\n", Want: "exactly one"},
		{YAML: "id: x\nkind: bilibili_comments\naid: 1\nbvid: BV17x411w7KC\n", Want: "exactly one"},
		{YAML: "id: x\nkind: bilibili_comments\nbvid: BVxx\n", Want: "bvid"},
		{YAML: "id: x\nkind: bilibili_comments\noid: \"12\"\n", Want: "type: required"},
		{YAML: "id: x\nkind: bilibili_comments\naid: 1\napi: app\n", Want: "api"},
		{YAML: "id: x\nkind: bilibili_comments\naid: 1\ncookie: literal\n", Want: "environment"},
	})
}
