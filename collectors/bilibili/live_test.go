package bilibili

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/internal/loopback"
	"lookout/item"
)

// biliSink is a bounded Emit target the test reads from.
type biliSink struct{ ch chan item.Item }

func newBiliSink() *biliSink { return &biliSink{ch: make(chan item.Item, 1024)} }

func (s *biliSink) Emit(ctx context.Context, it item.Item) error {
	select {
	case s.ch <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take returns the next n items that match keep (nil: all), failing after
// a generous timeout.
func (s *biliSink) take(t *testing.T, n int, keep func(item.Item) bool) []item.Item {
	t.Helper()
	var out []item.Item
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case it := <-s.ch:
			if keep == nil || keep(it) {
				out = append(out, it)
			}
		case <-timeout:
			t.Fatalf("got %d of %d items: %+v", len(out), n, out)
		}
	}
	return out
}

// biliTestLog sends the collector's log to t.Log.
type biliTestLog struct{ t *testing.T }

func (w biliTestLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// biliCount reads one counter of a vector.
func biliCount(c *prometheus.CounterVec, labels ...string) float64 {
	var m dto.Metric
	if err := c.WithLabelValues(labels...).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func biliNotMetric(it item.Item) bool { return it.Kind != item.KindMetric }

type biliHarness struct {
	srv     *loopback.BilibiliServer
	metrics *collectors.Metrics
	sink    *biliSink
	clock   httpx.Clock
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// startBili runs a bilibili_live collector against srv with the extra
// YAML keys; clock nil means the real clock.
func startBili(t *testing.T, srv *loopback.BilibiliServer, extra string, clock httpx.Clock) *biliHarness {
	return startBiliCtx(t, context.Background(), srv, extra, clock)
}

func startBiliCtx(t *testing.T, parent context.Context, srv *loopback.BilibiliServer, extra string, clock httpx.Clock) *biliHarness {
	t.Helper()
	m := collectors.NewMetrics(nil)
	env := collectors.Env{
		HTTP:    httpx.NewClient(config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 100}}, m.HTTP()),
		Metrics: m,
		Clock:   clock,
		Log:     slog.New(slog.NewTextHandler(biliTestLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	yml := fmt.Sprintf("id: live1\nkind: bilibili_live\nlabels: {team: ops}\napi_base: %s\nnav_base: %s\n%s", srv.URL(), srv.URL(), extra)
	if !strings.Contains(extra, "room:") {
		yml += fmt.Sprintf("\nroom: %d", srv.RoomID())
	}
	if !strings.Contains(extra, "hosts:") {
		yml += fmt.Sprintf("\nhosts: [%q]", srv.WSURL())
	}
	src, err := config.NewSourceConfig(yml)
	if err != nil {
		t.Fatal(err)
	}
	c, err := registry().New(src, env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(parent)
	h := &biliHarness{srv: srv, metrics: m, sink: newBiliSink(), clock: clock, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- c.Run(ctx, h.sink.Emit) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *biliHarness) stop(t *testing.T) {
	t.Helper()
	if h.stopped {
		return
	}
	h.stopped = true
	h.cancel()
	select {
	case err, ok := <-h.done:
		if ok && err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
		close(h.done)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func biliWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func biliConnected(t *testing.T, srv *loopback.BilibiliServer, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.WaitConnected(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func TestBilibiliLiveEndToEnd(t *testing.T) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{ShortID: 7})
	defer srv.Close()
	h := startBili(t, srv, "room: 7", nil) // the short id must be resolved
	biliConnected(t, srv, 1)

	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	if n := srv.Push(
		loopback.BilibiliDanmaku(1001, "甲", "质量很好", ts, "id-1"),
		loopback.BilibiliDanmaku(1002, "乙", "假货，退款！", ts.Add(time.Second), ""),
		loopback.BilibiliGift(1003, "丙", "小花花", 2, 500, ts),
		loopback.BilibiliSuperChat(5, 1004, "丁", "客服不理人", 30, ts),
		loopback.BilibiliInteract(1005, "戊", 1, ts),
		loopback.BilibiliOnlineRankCount(345),
		loopback.BilibiliWatched(6789),
		loopback.BilibiliLike(42),
		[]byte(`{"cmd":"FOO_UNKNOWN","data":{}}`),
	); n != 1 {
		t.Fatalf("Push reached %d clients", n)
	}
	got := h.sink.take(t, 9, func(it item.Item) bool { return it.Metric != item.MetricPopularity })
	byKey := map[string]item.Item{}
	for _, it := range got {
		if it.Source != "live1" || it.Platform != "bilibili" || it.Room != "21452505" || it.Labels["team"] != "ops" || len(it.Raw) == 0 {
			t.Errorf("item envelope wrong: %+v", it)
		}
		k := string(it.Kind) + "/" + it.Metric + "/" + it.AuthorID
		byKey[k] = it
	}
	check := func(key string, f func(it item.Item) bool) {
		t.Helper()
		it, ok := byKey[key]
		if !ok {
			t.Errorf("no item %s among %v", key, got)
			return
		}
		if !f(it) {
			t.Errorf("item %s wrong: %+v", key, it)
		}
	}
	check("chat//1001", func(it item.Item) bool {
		return it.ID == "id-1" && it.Text == "质量很好" && it.Author == "甲" && it.TS.Equal(ts)
	})
	check("chat//1002", func(it item.Item) bool {
		return strings.HasPrefix(it.ID, fmt.Sprintf("dm:%d-", ts.Add(time.Second).UnixMilli())) && it.Text == "假货，退款！"
	})
	check("gift//1003", func(it item.Item) bool { return it.Text == "小花花" && it.Count == 2 && it.Value == 1 })
	check("superchat//1004", func(it item.Item) bool { return it.ID == "sc:5" && it.Text == "客服不理人" && it.Value == 30 })
	check("enter//1005", func(it item.Item) bool { return it.Text == "enter" && it.Author == "戊" })
	check("metric/viewers/", func(it item.Item) bool { return it.Value == 345 })
	check("metric/high_energy/", func(it item.Item) bool { return it.Value == 345 })
	check("metric/watched/", func(it item.Item) bool { return it.Value == 6789 })
	check("metric/likes/", func(it item.Item) bool { return it.Value == 42 })

	// zlib and plain bodies, a corrupt frame in between: the stream goes on.
	srv.PushRaw(loopback.BilibiliFrame(loopback.BilibiliPushZlib, loopback.BilibiliDanmaku(2001, "z", "zlib body", ts, "z-1")))
	srv.PushRaw([]byte{0, 0, 0, 99, 0, 16, 0, 3, 0, 0, 0, 5, 0, 0, 0, 0, 1, 2, 3})
	srv.PushRaw(loopback.BilibiliFrame(loopback.BilibiliPushPlain, []byte(`{"cmd":"FOO_UNKNOWN"}`), loopback.BilibiliDanmaku(2002, "p", "plain body", ts, "p-1")))
	more := h.sink.take(t, 2, biliNotMetric)
	if more[0].ID != "z-1" || more[1].ID != "p-1" {
		t.Errorf("after zlib/corrupt/plain frames got %+v", more)
	}
	if v := biliCount(h.metrics.Errors, "live1", "decode"); v != 1 {
		t.Errorf("decode errors = %v, want 1", v)
	}
	if v := biliCount(h.metrics.Unknown, "live1", "FOO_UNKNOWN"); v != 2 {
		t.Errorf("unknown FOO_UNKNOWN = %v, want 2", v)
	}
	// Counted once emit returns, which may be just after the test sees it.
	biliWait(t, "4 chat items counted", func() bool { return biliCount(h.metrics.Items, "live1", "chat") == 4 })
	if srv.AuthCount() != 1 || srv.AuthFailures() != 0 {
		t.Errorf("auths %d, failures %d", srv.AuthCount(), srv.AuthFailures())
	}
}

// The room's stream going live and ending arrive as live_status samples
// (they used to be counted as unknown commands), and the repeats of one
// LIVE are one sample.
func TestBilibiliLiveStatus(t *testing.T) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{})
	defer srv.Close()
	h := startBili(t, srv, "", nil)
	biliConnected(t, srv, 1)
	start := time.Now().Add(-3 * time.Second).Truncate(time.Second)
	srv.Push(loopback.BilibiliLive(srv.RoomID(), start), loopback.BilibiliLive(srv.RoomID(), start))
	srv.Push(loopback.BilibiliDanmaku(1, "a", "开播了", time.Now(), "s-1"), loopback.BilibiliPreparing(srv.RoomID()))
	got := h.sink.take(t, 4, func(it item.Item) bool { return it.Metric != item.MetricPopularity })
	var status []item.Item
	for _, it := range got {
		if it.Metric == item.MetricLiveStatus {
			status = append(status, it)
		}
	}
	if len(status) != 3 {
		t.Fatalf("live_status items %+v, want 3 (live, live again, ended)", status)
	}
	if status[0].Value != 1 || !status[0].TS.Equal(start) || status[1].ID != status[0].ID || status[0].Kind != item.KindMetric || status[0].Room != "21452505" {
		t.Errorf("LIVE samples %+v / %+v: want value 1 at the start time, one id", status[0], status[1])
	}
	if status[2].Value != 0 || status[2].ID == status[0].ID {
		t.Errorf("PREPARING sample %+v", status[2])
	}
	for _, cmd := range []string{"LIVE", "PREPARING"} {
		if v := biliCount(h.metrics.Unknown, "live1", cmd); v != 0 {
			t.Errorf("%s counted as unknown %v times", cmd, v)
		}
	}
}

func TestBilibiliLiveCookieAndAuthBody(t *testing.T) {
	t.Setenv("BILI_TEST_COOKIE", "SESSDATA=s3cr3t; bili_jct=x")
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{Buvid: "BUVID-TEST-infoc"})
	defer srv.Close()
	startBili(t, srv, "cookie: ${BILI_TEST_COOKIE}\nuid: 4242", nil)
	biliConnected(t, srv, 1)
	const want = "buvid3=BUVID-TEST-infoc; SESSDATA=s3cr3t; bili_jct=x"
	for _, path := range []string{"/xlive/web-room/v1/index/getDanmuInfo", "/sub"} {
		if got := srv.LastCookie(path); got != want {
			t.Errorf("Cookie on %s = %q, want %q", path, got, want)
		}
	}
	a := srv.LastAuth()
	if a.UID == nil || *a.UID != 4242 || a.RoomID != srv.RoomID() || a.Protover != 3 || a.Platform != "web" || a.Type != 2 ||
		a.Buvid != "BUVID-TEST-infoc" || a.Key != "loopback-token-21452505" {
		t.Errorf("auth body %+v", a)
	}
}

func TestBilibiliLiveUIDFromNav(t *testing.T) {
	t.Setenv("BILI_TEST_COOKIE", "SESSDATA=s3cr3t")
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{LoginMid: 777001})
	defer srv.Close()
	startBili(t, srv, "cookie: ${BILI_TEST_COOKIE}", nil) // no uid: taken from nav
	biliConnected(t, srv, 1)
	if a := srv.LastAuth(); a.UID == nil || *a.UID != 777001 {
		t.Errorf("auth uid %v, want the logged-in account 777001", a.UID)
	}
}

func TestBilibiliLiveHeartbeat(t *testing.T) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{Popularity: 777})
	defer srv.Close()
	h := startBili(t, srv, "heartbeat: 50ms", nil)
	biliConnected(t, srv, 1)
	biliWait(t, "3 heartbeats", func() bool { return srv.Heartbeats() >= 3 })
	pops := h.sink.take(t, 3, func(it item.Item) bool { return it.Metric == item.MetricPopularity })
	for _, it := range pops {
		if it.Value != 777 || it.Kind != item.KindMetric {
			t.Errorf("popularity item %+v", it)
		}
	}
}

func TestBilibiliLiveReconnect(t *testing.T) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{})
	defer srv.Close()
	clock := newBiliFakeClock()
	h := startBili(t, srv, "", clock)
	biliConnected(t, srv, 1)
	ts := time.Now().Truncate(time.Millisecond)
	dm := loopback.BilibiliDanmaku(7, "a", "before drop", ts, "")
	srv.Push(dm)
	first := h.sink.take(t, 1, biliNotMetric)[0]

	srv.DropConnections()
	biliWait(t, "second auth", func() bool { return srv.AuthCount() == 2 })
	// Everything pushed after the reconnect arrives, and a replay of the
	// same message keeps its id, so the store can drop the duplicate.
	var batch [][]byte
	for i := range 50 {
		batch = append(batch, loopback.BilibiliDanmaku(int64(100+i), "u", fmt.Sprintf("after %d", i), ts, fmt.Sprintf("after-%d", i)))
	}
	srv.Push(batch[:25]...)
	srv.Push(append(batch[25:], dm)...)
	got := h.sink.take(t, 51, biliNotMetric)
	for i := range 50 {
		if got[i].ID != fmt.Sprintf("after-%d", i) {
			t.Fatalf("item %d id %q", i, got[i].ID)
		}
	}
	if got[50].ID != first.ID || !strings.HasPrefix(first.ID, "dm:") {
		t.Errorf("replayed message id %q, first time %q", got[50].ID, first.ID)
	}
	if v := biliCount(h.metrics.Reconnects, "live1"); v != 1 {
		t.Errorf("reconnects = %v, want 1", v)
	}
	if w := clock.Waits(); len(w) != 1 || w[0] < 500*time.Millisecond || w[0] > time.Second {
		t.Errorf("backoff waits %v, want one in [0.5s, 1s]", w)
	}
	if n := srv.Requests("/room/v1/Room/get_info"); n != 1 {
		t.Errorf("bootstraps = %d, want 1 (a drop after a good session reuses the token)", n)
	}
}

func TestBilibiliLiveWBIRefreshAndAuthFailure(t *testing.T) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{})
	defer srv.Close()
	h := startBili(t, srv, "", newBiliFakeClock())
	biliConnected(t, srv, 1)
	if srv.Requests("/x/web-interface/nav") != 1 || srv.Requests("/xlive/web-room/v1/index/getDanmuInfo") != 1 {
		t.Fatalf("first bootstrap: nav %d, getDanmuInfo %d", srv.Requests("/x/web-interface/nav"), srv.Requests("/xlive/web-room/v1/index/getDanmuInfo"))
	}
	// Keys rotate and the token expires: the old token is refused (op 8
	// -101), the collector re-bootstraps, its cached WBI keys get -352, it
	// refreshes them from nav and gets the new token.
	srv.SetWBIKeys("0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210")
	srv.SetToken("token-2")
	srv.DropConnections()
	biliWait(t, "reconnect with the new token", func() bool { return srv.AuthCount() == 2 })
	if n := srv.AuthFailures(); n != 1 {
		t.Errorf("auth failures = %d, want 1", n)
	}
	if n := srv.Requests("/x/web-interface/nav"); n != 2 {
		t.Errorf("nav requests = %d, want 2", n)
	}
	if n := srv.Requests("/xlive/web-room/v1/index/getDanmuInfo"); n != 3 {
		t.Errorf("getDanmuInfo requests = %d, want 3 (ok, -352, ok)", n)
	}
	if v := biliCount(h.metrics.Errors, "live1", "wbi"); v != 1 {
		t.Errorf("wbi errors = %v, want 1", v)
	}
	if v := biliCount(h.metrics.Errors, "live1", "auth"); v != 1 {
		t.Errorf("auth errors = %v, want 1", v)
	}
	srv.Push(loopback.BilibiliDanmaku(1, "a", "still here", time.Now(), "x1"))
	if it := h.sink.take(t, 1, biliNotMetric)[0]; it.ID != "x1" {
		t.Errorf("after refresh got %+v", it)
	}
}

// biliRefuser accepts TCP connections and closes them at once, counting
// them: a danmaku host that is down.
type biliRefuser struct {
	l        net.Listener
	accepted atomic.Int32
	wg       sync.WaitGroup
}

func newBiliRefuser(t *testing.T) *biliRefuser {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &biliRefuser{l: l}
	r.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.accepted.Add(1)
			c.Close()
		}
	})
	t.Cleanup(func() { l.Close(); r.wg.Wait() })
	return r
}

func TestBilibiliLiveBackoffAndFailover(t *testing.T) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{})
	defer srv.Close()
	hosts := []*biliRefuser{newBiliRefuser(t), newBiliRefuser(t), newBiliRefuser(t), newBiliRefuser(t)}
	var urls []string
	for _, r := range hosts {
		urls = append(urls, fmt.Sprintf("%q", "ws://"+r.l.Addr().String()+"/sub"))
	}
	clock := newBiliFakeClock()
	const attempts = 9
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancelling inside the clock stops the collector exactly after the
	// attempts-th wait.
	clock.onWait = func(n int) {
		if n == attempts {
			cancel()
		}
	}
	h := startBiliCtx(t, ctx, srv, "hosts: ["+strings.Join(urls, ", ")+"]", clock)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("only %d waits", len(clock.Waits()))
	}
	h.stop(t)
	waits := clock.Waits()[:attempts]
	for i, w := range waits {
		full := min(time.Second<<i, stream.BackoffMax)
		if w < full/2 || w > full {
			t.Errorf("wait %d = %v, want in [%v, %v] (exponential with jitter, capped)", i, w, full/2, full)
		}
	}
	// Four hosts in turn, twice, then the first again; a fresh bootstrap
	// after every four consecutive failures (max(3, len(hosts))).
	for i, r := range hosts {
		want := int32(2)
		if i == 0 {
			want = 3
		}
		if n := r.accepted.Load(); n != want {
			t.Errorf("host %d dialled %d times, want %d", i, n, want)
		}
	}
	if n := srv.Requests("/room/v1/Room/get_info"); n != 3 {
		t.Errorf("bootstraps = %d, want 3 (initial + after failures 4 and 8)", n)
	}
	if v := biliCount(h.metrics.Errors, "live1", "dial"); v != attempts {
		t.Errorf("dial errors = %v, want %d", v, attempts)
	}
	if v := biliCount(h.metrics.Reconnects, "live1"); v != attempts {
		t.Errorf("reconnects = %v, want %d", v, attempts)
	}
}

// A long outage must not leave the collector asleep once the server is
// back: however many attempts failed, the next one comes within
// StreamBackoffMax of the clock.
func TestBilibiliLiveReconnectAfterOutage(t *testing.T) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{})
	defer srv.Close()
	clock := newBiliFakeClock()
	const failures = 12 // enough for an uncapped backoff to reach minutes
	var upAt atomic.Int32
	clock.onWait = func(n int) {
		if n == failures {
			upAt.Store(int32(n))
			srv.SetDown(false)
		}
	}
	h := startBili(t, srv, "", clock)
	biliConnected(t, srv, 1)
	srv.SetDown(true)
	biliWait(t, "reconnect after the outage", func() bool { return srv.AuthCount() == 2 })
	waits := clock.Waits()
	if len(waits) < failures {
		t.Fatalf("%d waits, want at least %d", len(waits), failures)
	}
	for i, w := range waits {
		if w > stream.BackoffMax || w <= 0 {
			t.Errorf("wait %d = %v, want in (0, %v]", i, w, stream.BackoffMax)
		}
	}
	// The wait that ended with the server back is the last one asked
	// for before the successful auth.
	if last := waits[upAt.Load()-1]; last > 5*time.Second {
		t.Errorf("reconnected %v after the server came back, want within 5s", last)
	}
	if waits[failures-1] < stream.BackoffMax/2 {
		t.Errorf("wait after %d failures = %v: the backoff should have grown to its cap", failures, waits[failures-1])
	}
	srv.Push(loopback.BilibiliDanmaku(1, "a", "back", time.Now(), "back-1"))
	if it := h.sink.take(t, 1, biliNotMetric)[0]; it.ID != "back-1" {
		t.Errorf("after the outage got %+v", it)
	}
}

func TestBilibiliLiveBootstrapFailureBacksOff(t *testing.T) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: 5})
	defer srv.Close()
	clock := newBiliFakeClock()
	got := make(chan struct{})
	clock.onWait = func(n int) {
		if n == 3 {
			close(got)
		}
	}
	h := startBili(t, srv, "room: 6", clock) // no such room: get_info answers code 1
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no backoff on bootstrap failure")
	}
	h.stop(t)
	if v := biliCount(h.metrics.Errors, "live1", "bootstrap"); v < 3 {
		t.Errorf("bootstrap errors = %v, want >= 3", v)
	}
	if w := clock.Waits(); w[1] <= w[0]/2 || w[2] < 2*time.Second {
		t.Errorf("waits %v do not grow", w)
	}
}

func TestBilibiliLiveConfig(t *testing.T) {
	t.Setenv("BILI_TEST_COOKIE", "SESSDATA=secret")
	tests := []struct {
		yaml    string
		wantErr string
	}{
		{"room: 0", "room: required"},
		{"room: 1\nhosts: [http://x/sub]", "hosts[0]"},
		{"room: 1\napi_base: ftp://x", "api_base"},
		{"room: 1\nroom_id: 2", "room_id"},
		{"room: 1\ncookie: ${BILI_TEST_UNSET_VAR}", "cookie"},
		{"room: 1\ncookie: ${BILI_TEST_COOKIE}\nuid: 12\nheartbeat: 20s", ""},
		{"room: 1", ""},
	}
	for _, tc := range tests {
		src, err := config.NewSourceConfig("id: s\nkind: bilibili_live\n" + tc.yaml)
		if err == nil {
			_, err = registry().New(src, collectors.Env{})
		}
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: err %v, want one naming %q", tc.yaml, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks the cookie: %v", err)
		}
	}
}

// A 256 KiB danmaku (compression makes it a small frame) is stored cut to
// stream.MaxText, its raw payload not whole, and counted.
func TestBilibiliLiveOversizedDanmaku(t *testing.T) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{})
	defer srv.Close()
	h := startBili(t, srv, "", nil)
	biliConnected(t, srv, 1)
	huge := strings.Repeat("啊", 256<<10/3)
	srv.PushRaw(loopback.BilibiliFrame(loopback.BilibiliPushZlib,
		loopback.BilibiliDanmaku(1, "a", huge, time.Now(), "huge-1"), loopback.BilibiliDanmaku(2, "b", "normal", time.Now(), "ok-1")))
	got := h.sink.take(t, 2, biliNotMetric)
	if it := got[0]; it.ID != "huge-1" || len(it.Text) > stream.MaxText || !strings.HasPrefix(huge, it.Text) || len(it.Raw) > stream.MaxText ||
		it.Labels["oversized"] == "" || it.Labels["team"] != "ops" {
		t.Errorf("oversized danmaku stored with %d text bytes, %d raw bytes, labels %v", len(it.Text), len(it.Raw), it.Labels)
	}
	if it := got[1]; it.Text != "normal" || it.Labels["oversized"] != "" {
		t.Errorf("the next message %+v", it)
	}
	if v := biliCount(h.metrics.Errors, "live1", "oversized"); v != 1 {
		t.Errorf("oversized count %v, want 1", v)
	}
}

// registry has the kinds this package's tests build.
func registry() collectors.Registry {
	return collectors.Registry{"bilibili_live": NewLive, "bilibili_comments": NewComments}
}
