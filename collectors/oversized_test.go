package collectors

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"lookout/internal/loopback"
)

// A 256 KiB danmaku (compression makes it a small frame) is stored cut to
// StreamMaxText, its raw payload not whole, and counted.
func TestBilibiliLiveOversizedDanmaku(t *testing.T) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{})
	defer srv.Close()
	h := startBili(t, srv, "", nil)
	biliConnected(t, srv, 1)
	huge := strings.Repeat("啊", 256<<10/3)
	srv.PushRaw(loopback.BilibiliFrame(loopback.BilibiliPushZlib,
		loopback.BilibiliDanmaku(1, "a", huge, time.Now(), "huge-1"), loopback.BilibiliDanmaku(2, "b", "normal", time.Now(), "ok-1")))
	got := h.sink.take(t, 2, biliNotMetric)
	if it := got[0]; it.ID != "huge-1" || len(it.Text) > StreamMaxText || !strings.HasPrefix(huge, it.Text) || len(it.Raw) > StreamMaxText ||
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

func TestTwitchAndDouyinOversized(t *testing.T) {
	long := strings.Repeat("x", 3*StreamMaxText)
	t.Run("twitch", func(t *testing.T) {
		srv := loopback.NewTwitchServer()
		defer srv.Close()
		env := twitchTestEnv(t, newTwitchFakeClock())
		c, err := Flat().New(mustSourceConfig(t, fmt.Sprintf("id: tw\nkind: twitch\nurl: %s\nchannels: [a]\n", srv.URL)), env)
		if err != nil {
			t.Fatal(err)
		}
		sink := newTwitchSink()
		defer twitchStart(t, c, sink.emit)()
		if _, ok := srv.WaitJoined(10*time.Second, "a"); !ok {
			t.Fatal("not joined")
		}
		srv.Send("a", `@id=big;tmi-sent-ts=1700000000000;user-id=1 :z!z@z.tmi.twitch.tv PRIVMSG #a :`+long)
		if it := sink.next(t); len(it.Text) != StreamMaxText || len(it.Raw) != StreamMaxText || it.Labels["oversized"] == "" {
			t.Errorf("twitch line kept %d text, %d raw bytes, labels %v", len(it.Text), len(it.Raw), it.Labels)
		}
		if n := twitchCount(env.Metrics.Errors, "tw", "oversized"); n != 1 {
			t.Errorf("oversized count %v", n)
		}
	})
	t.Run("douyin", func(t *testing.T) {
		srv, _, env, sink, stop := douyinStartLoopback(t, douyinTestKey)
		defer stop()
		if _, ok := srv.WaitDial(0, 10*time.Second); !ok {
			t.Fatal("no dial")
		}
		srv.Push(false, loopback.DouyinChat(1, 42, "alice", long))
		if it := sink.next(t); len(it.Text) != StreamMaxText || len(it.Raw) > StreamMaxText || it.Labels["oversized"] == "" {
			t.Errorf("douyin chat kept %d text, %d raw bytes, labels %v", len(it.Text), len(it.Raw), it.Labels)
		}
		if n := twitchCount(env.Metrics.Errors, "dy", "oversized"); n != 1 {
			t.Errorf("oversized count %v", n)
		}
	})
}
