package collectors

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"lookout/internal/loopback"
)

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
