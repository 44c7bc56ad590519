package twitch

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
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

// ---- helpers shared by the stream collectors' tests (twitch, bluesky,
// douyin, mastodon) ----

// ---- twitch ----

const twitchFixtureLine = `@badge-info=;badges=subscriber/12,premium/1;color=#1E90FF;display-name=Alice\sA;emotes=25:6-10;first-msg=0;flags=;id=885196de-cb67-427a-baa8-82f9b0fcd05f;mod=0;room-id=12345678;subscriber=1;tmi-sent-ts=1700000000123;turbo=0;user-id=87654321;user-type= :alice!alice@alice.tmi.twitch.tv PRIVMSG #examplechannel :hello Kappa`

func TestTwitchParseFixtureLine(t *testing.T) {
	m, err := twitchParseLine(twitchFixtureLine)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"command", m.Command, "PRIVMSG"},
		{"channel", m.Param(0), "#examplechannel"},
		{"text", m.Trailing(), "hello Kappa"},
		{"login", m.Nick(), "alice"},
		{"display-name", m.Tag("display-name"), "Alice A"},
		{"user-id", m.Tag("user-id"), "87654321"},
		{"room-id", m.Tag("room-id"), "12345678"},
		{"tmi-sent-ts", m.Tag("tmi-sent-ts"), "1700000000123"},
		{"emotes", m.Tag("emotes"), "25:6-10"},
		{"id", m.Tag("id"), "885196de-cb67-427a-baa8-82f9b0fcd05f"},
		{"empty tag", m.Tag("badge-info"), ""},
		{"absent tag", m.Tag("bits"), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	// The emote range indexes code points of the text.
	if r := []rune(m.Trailing()); string(r[6:11]) != "Kappa" {
		t.Errorf("emote 25 at [6,10] = %q, want Kappa", string(r[6:11]))
	}
}

func TestTwitchParseLine(t *testing.T) {
	tests := []struct {
		line    string
		cmd     string
		params  []string
		prefix  string
		wantErr bool
	}{
		{line: "PING :tmi.twitch.tv", cmd: "PING", params: []string{"tmi.twitch.tv"}},
		{line: ":tmi.twitch.tv RECONNECT", cmd: "RECONNECT", prefix: "tmi.twitch.tv"},
		{line: ":tmi.twitch.tv CAP * ACK :twitch.tv/tags twitch.tv/commands", cmd: "CAP", prefix: "tmi.twitch.tv", params: []string{"*", "ACK", "twitch.tv/tags twitch.tv/commands"}},
		{line: ":u!u@u.tmi.twitch.tv PRIVMSG #c ::) colon first", cmd: "PRIVMSG", prefix: "u!u@u.tmi.twitch.tv", params: []string{"#c", ":) colon first"}},
		{line: ":u!u@u.tmi.twitch.tv PRIVMSG #c :", cmd: "PRIVMSG", prefix: "u!u@u.tmi.twitch.tv", params: []string{"#c", ""}},
		{line: "  :x  353  a = #c :n1 n2", cmd: "353", prefix: "x", params: []string{"a", "=", "#c", "n1 n2"}},
		{line: "", wantErr: true},
		{line: "@a=b", wantErr: true},
		{line: ":prefix-only", wantErr: true},
		{line: "@a=b :p ", wantErr: true},
		{line: "PRIV\x00MSG x", wantErr: true},
	}
	for _, tt := range tests {
		m, err := twitchParseLine(tt.line)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%q: no error, parsed %+v", tt.line, m)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		if m.Command != tt.cmd || m.Prefix != tt.prefix || fmt.Sprint(m.Params) != fmt.Sprint(tt.params) || len(m.Params) != len(tt.params) {
			t.Errorf("%q: got cmd %q prefix %q params %q, want %q %q %q", tt.line, m.Command, m.Prefix, m.Params, tt.cmd, tt.prefix, tt.params)
		}
	}
}

func TestTwitchUnescapeTag(t *testing.T) {
	tests := map[string]string{
		`plain`:          "plain",
		`a\sb`:           "a b",
		`semi\:colon`:    "semi;colon",
		`back\\slash`:    `back\slash`,
		`cr\rlf\n`:       "cr\rlf\n",
		`unknown\xq`:     "unknownxq",
		`trailing\`:      "trailing",
		`\s\s`:           "  ",
		`中文\s弹幕`:         "中文 弹幕",
		`x\\s-not-space`: `x\s-not-space`,
	}
	for in, want := range tests {
		if got := twitchUnescapeTag(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTwitchConfig(t *testing.T) {
	bad := []string{
		"id: t\nkind: twitch\n",
		"id: t\nkind: twitch\nchannels: [\"bad channel\"]\n",
		"id: t\nkind: twitch\nchannels: [a]\nurl: http://x/\n",
		"id: t\nkind: twitch\nchannels: [a]\nnick: realuser\n",
		"id: t\nkind: twitch\nchannels: [a]\nchanels: [b]\n",
	}
	env := collectortest.StreamEnv(t, httpx.RealClock)
	for _, y := range bad {
		if _, err := registry().New(collectortest.SourceConfig(t, y), env); err == nil {
			t.Errorf("config accepted, want error:\n%s", y)
		}
	}
	c, err := registry().New(collectortest.SourceConfig(t, "id: t\nkind: twitch\nchannels: ['#Shroud', shroud, b_2]\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	tc := c.(*twitchCollector)
	if fmt.Sprint(tc.channels) != "[shroud b_2]" || tc.url != TwitchDefaultURL || !twitchNickRe.MatchString(tc.nick) {
		t.Errorf("normalised config = channels %v url %q nick %q", tc.channels, tc.url, tc.nick)
	}
}

func TestTwitchLoopback(t *testing.T) {
	srv := loopback.NewTwitchServer()
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env := collectortest.StreamEnv(t, clk)
	c, err := registry().New(collectortest.SourceConfig(t, fmt.Sprintf("id: tw\nkind: twitch\nurl: %s\nchannels: [examplechannel, second, third]\nlabels: {team: ops}\n", srv.URL)), env)
	if err != nil {
		t.Fatal(err)
	}
	sink := collectortest.NewChanSink()
	stop := collectortest.Start(t, c, sink.Emit)

	// Three channels, one connection.
	if _, ok := srv.WaitJoined(10*time.Second, "examplechannel", "second", "third"); !ok {
		t.Fatalf("channels not joined; client sent %v", srv.Lines())
	}
	if n := srv.Accepted(); n != 1 {
		t.Errorf("server accepted %d connections, want 1 for three channels", n)
	}
	// The server may mark the channels joined a moment before it records
	// the line that joined them.
	collectortest.Wait(t, "the handshake's three lines", func() bool { return len(srv.Lines()) >= 3 })
	lines := srv.Lines()
	var sent []string
	for _, l := range lines {
		sent = append(sent, l.Line)
	}
	if len(sent) < 3 || sent[0] != "CAP REQ :twitch.tv/tags twitch.tv/commands" ||
		!regexp.MustCompile(`^NICK justinfan[0-9]+$`).MatchString(sent[1]) ||
		sent[2] != "JOIN #examplechannel,#second,#third" {
		t.Errorf("handshake = %q", sent)
	}

	// The fixture chat line.
	if n := srv.Send("examplechannel", twitchFixtureLine); n != 1 {
		t.Fatalf("fixture delivered to %d connections", n)
	}
	it := sink.Next(t)
	want := item.Item{
		Source: "tw", Platform: "twitch", Kind: item.KindChat, Room: "examplechannel",
		ID: "885196de-cb67-427a-baa8-82f9b0fcd05f", AuthorID: "87654321", Author: "Alice A",
		Text: "hello Kappa", TS: time.UnixMilli(1700000000123).UTC(),
	}
	if it.Source != want.Source || it.Platform != want.Platform || it.Kind != want.Kind || it.Room != want.Room ||
		it.ID != want.ID || it.AuthorID != want.AuthorID || it.Author != want.Author || it.Text != want.Text || !it.TS.Equal(want.TS) {
		t.Errorf("fixture item =\n %+v\nwant\n %+v", it, want)
	}
	if string(it.Raw) != twitchFixtureLine || it.Labels["team"] != "ops" {
		t.Errorf("raw %q labels %v", it.Raw, it.Labels)
	}

	// Several lines in one frame, a cheer, a /me, a malformed line in the
	// middle and an unknown command: the bad ones are counted, the rest
	// still come through in order.
	srv.Send("second",
		`@display-name=;id=m1;tmi-sent-ts=1700000001000;user-id=5 :bob!bob@bob.tmi.twitch.tv PRIVMSG #second :first`,
		`@bits=100;display-name=Carol;id=m2;tmi-sent-ts=1700000002000;user-id=6 :carol!carol@carol.tmi.twitch.tv PRIVMSG #second :cheer100 take my bits`,
		"@id=bad\x00 :x",
		`:tmi.twitch.tv FROBNICATE #second`,
		"@id=m3;tmi-sent-ts=1700000003000;user-id=7 :dan!dan@dan.tmi.twitch.tv PRIVMSG #second :\x01ACTION waves\x01",
	)
	got := []item.Item{sink.Next(t), sink.Next(t), sink.Next(t), sink.Next(t)}
	if got[0].ID != "m1" || got[0].Author != "bob" || got[0].Text != "first" || got[0].Room != "second" {
		t.Errorf("line 1 = %+v (display-name empty → login)", got[0])
	}
	if got[1].Kind != item.KindChat || got[1].ID != "m2" || got[1].Text != "cheer100 take my bits" {
		t.Errorf("cheer text item = %+v", got[1])
	}
	if got[2].Kind != item.KindGift || got[2].ID != "m2/bits" || got[2].Count != 100 || math.Abs(got[2].Value-7) > 1e-9 || got[2].Author != "Carol" {
		t.Errorf("cheer gift item = %+v", got[2])
	}
	if got[3].ID != "m3" || got[3].Text != "waves" {
		t.Errorf("/me item = %+v", got[3])
	}
	if n := collectortest.Count(env.Metrics.Errors, "tw", "parse"); n != 1 {
		t.Errorf("parse errors = %v, want 1", n)
	}
	if n := collectortest.Count(env.Metrics.Unknown, "tw", "cmd:FROBNICATE"); n != 1 {
		t.Errorf("unknown FROBNICATE = %v, want 1", n)
	}

	// USERNOTICE: a sub gift bomb and a raid; CLEARMSG a moderation sample.
	srv.Send("third",
		`@display-name=Eve;id=u1;login=eve;msg-id=submysterygift;msg-param-mass-gift-count=5;system-msg=Eve\sis\sgifting\s5\sSubs!;tmi-sent-ts=1700000004000;user-id=8 :tmi.twitch.tv USERNOTICE #third`,
		`@login=target;target-msg-id=m1;tmi-sent-ts=1700000004500 :tmi.twitch.tv CLEARMSG #third :first`,
		`@display-name=Raider;id=u2;login=raider;msg-id=raid;msg-param-displayName=Raider;msg-param-viewerCount=42;system-msg=42\sraiders;tmi-sent-ts=1700000005000;user-id=9 :tmi.twitch.tv USERNOTICE #third`,
	)
	g, del, r := sink.Next(t), sink.Next(t), sink.Next(t)
	if g.Kind != item.KindGift || g.Count != 5 || g.ID != "u1" || g.Text != "Eve is gifting 5 Subs!" || g.Author != "Eve" {
		t.Errorf("sub gift = %+v", g)
	}
	if del.Metric != item.MetricModeration || del.Labels["action"] != "delete" || del.Labels["target_msg_id"] != "m1" || del.Labels["team"] != "ops" {
		t.Errorf("deleted message = %+v", del)
	}
	if r.Kind != item.KindEnter || r.Count != 42 || r.Author != "Raider" || r.Room != "third" {
		t.Errorf("raid = %+v", r)
	}

	// A message for a channel we did not join is not delivered at all.
	if n := srv.Send("notjoined", twitchFixtureLine); n != 0 {
		t.Errorf("server delivered to %d connections for an unjoined channel", n)
	}

	// Keep-alive.
	from := len(srv.Lines())
	srv.Broadcast("PING :tmi.twitch.tv")
	if _, ok := srv.WaitLine(from, 10*time.Second, func(l loopback.TwitchLine) bool { return l.Line == "PONG :tmi.twitch.tv" }); !ok {
		t.Errorf("no PONG after PING; client sent %v", srv.Lines()[from:])
	}
	sink.None(t)
	stop()
	if n := collectortest.Count(env.Metrics.Items, "tw", "chat"); n != 4 {
		t.Errorf("items{chat} = %v, want 4", n)
	}
}

func TestTwitchReconnect(t *testing.T) {
	srv := loopback.NewTwitchServer()
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env := collectortest.StreamEnv(t, clk)
	c, err := registry().New(collectortest.SourceConfig(t, fmt.Sprintf("id: tw\nkind: twitch\nurl: %s\nchannels: [a, b]\n", srv.URL)), env)
	if err != nil {
		t.Fatal(err)
	}
	sink := collectortest.NewChanSink()
	collectortest.Start(t, c, sink.Emit)
	if _, ok := srv.WaitJoined(10*time.Second, "a", "b"); !ok {
		t.Fatal("not joined")
	}

	// RECONNECT: straight back, no backoff, channels re-joined. The server
	// is slow to answer the new connection's JOIN; chat said meanwhile on
	// the old connection still arrives, and the old connection is closed
	// once the new one has joined.
	srv.HoldJoins()
	srv.Broadcast(":tmi.twitch.tv RECONNECT")
	if _, ok := srv.WaitLine(0, 10*time.Second, func(l loopback.TwitchLine) bool { return l.Conn == 2 && l.Line == "JOIN #a,#b" }); !ok {
		t.Fatalf("no re-JOIN on a second connection after RECONNECT; lines %v", srv.Lines())
	}
	if n := srv.Send("a", `@id=during;tmi-sent-ts=1700000008000;user-id=1 :y!y@y.tmi.twitch.tv PRIVMSG #a :said during the handover`); n != 1 {
		t.Fatalf("the old connection is gone before the new one joined (%d connections got the line)", n)
	}
	if it := sink.Next(t); it.ID != "during" {
		t.Errorf("during the handover got %+v", it)
	}
	if srv.Open() != 2 {
		t.Errorf("%d connections open during the handover, want old and new", srv.Open())
	}
	srv.ReleaseJoins()
	waitUntil := time.Now().Add(10 * time.Second)
	for srv.Open() != 1 {
		if time.Now().After(waitUntil) {
			t.Fatalf("the old connection is still open after the new one joined (%d open)", srv.Open())
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A dropped connection: the collector waits a jittered backoff on the
	// clock (first attempt after a healthy session: 0.5–1 s), then comes
	// back and re-joins.
	srv.Drop()
	d := clk.WaitAsked(t, "reconnect backoff", func(time.Duration) bool { return true })
	if d < 500*time.Millisecond || d > time.Second {
		t.Errorf("first backoff = %v, want within [500ms, 1s]", d)
	}
	if srv.Accepted() != 2 {
		t.Errorf("reconnected before the backoff elapsed (accepted %d)", srv.Accepted())
	}
	clk.Advance(d)
	if _, ok := srv.WaitLine(0, 10*time.Second, func(l loopback.TwitchLine) bool { return l.Conn == 3 && l.Line == "JOIN #a,#b" }); !ok {
		t.Fatalf("no re-JOIN after the backoff; lines %v", srv.Lines())
	}
	srv.Send("b", `@id=after;tmi-sent-ts=1700000009000;user-id=1 :z!z@z.tmi.twitch.tv PRIVMSG #b :still here`)
	if it := sink.Next(t); it.ID != "after" || it.Room != "b" {
		t.Errorf("after reconnect got %+v", it)
	}
	if n := collectortest.Count(env.Metrics.Reconnects, "tw"); n != 2 {
		t.Errorf("reconnects = %v, want 2", n)
	}
}

// TestTwitchBackoffGrows checks that a server that keeps refusing makes the
// collector wait longer each time, up to the stream cap.
func TestTwitchBackoffGrows(t *testing.T) {
	srv := loopback.NewTwitchServer()
	url := srv.URL
	srv.Close() // nothing listens: every dial fails
	clk := collectortest.NewSteppedClock()
	env := collectortest.StreamEnv(t, clk)
	c, err := registry().New(collectortest.SourceConfig(t, fmt.Sprintf("id: tw\nkind: twitch\nurl: %s\nchannels: [a]\n", url)), env)
	if err != nil {
		t.Fatal(err)
	}
	collectortest.Start(t, c, collectortest.NewChanSink().Emit)
	var prevMax time.Duration = time.Second
	for i := 0; i < 5; i++ {
		d := clk.WaitAsked(t, "backoff", func(time.Duration) bool { return true })
		full := min(prevMax, stream.BackoffMax)
		lo, hi := full/2, full
		if d < lo || d > hi {
			t.Errorf("attempt %d: backoff %v, want within [%v, %v]", i, d, lo, hi)
		}
		prevMax *= 2
		clk.Advance(d)
	}
	if n := collectortest.Count(env.Metrics.Errors, "tw", "dial"); n < 5 {
		t.Errorf("dial errors = %v, want >= 5", n)
	}
}

// Moderation is recorded (the deleted message's id, who was banned or
// timed out and for how long), and subscriptions are valued by tier.
func TestTwitchModerationAndSubValues(t *testing.T) {
	c := twitchTestCollector(collectors.Env{}.WithDefaults())
	const pre = "@badge-info=;id=x1;login=mod;room-id=1;tmi-sent-ts=1700000000000;user-id=5;"
	tests := []struct {
		name   string
		line   string
		kind   item.Kind
		id     string
		value  float64
		labels map[string]string
	}{
		{"CLEARMSG", "@login=troll;room-id=1;target-msg-id=abc-123;tmi-sent-ts=1700000000000 :tmi.twitch.tv CLEARMSG #ch :spam spam",
			item.KindMetric, "clearmsg/abc-123", 1, map[string]string{"action": "delete", "target_msg_id": "abc-123", "target_user": "troll"}},
		{"CLEARCHAT timeout", "@ban-duration=600;room-id=1;target-user-id=77;tmi-sent-ts=1700000000000 :tmi.twitch.tv CLEARCHAT #ch :troll",
			item.KindMetric, "clearchat/ch/77/1700000000000", 1, map[string]string{"action": "timeout", "duration_s": "600", "target_user_id": "77", "target_user": "troll"}},
		{"CLEARCHAT ban", "@room-id=1;target-user-id=77;tmi-sent-ts=1700000000000 :tmi.twitch.tv CLEARCHAT #ch :troll",
			item.KindMetric, "clearchat/ch/77/1700000000000", 1, map[string]string{"action": "ban", "target_user_id": "77", "target_user": "troll"}},
		{"CLEARCHAT whole chat", "@room-id=1;tmi-sent-ts=1700000000000 :tmi.twitch.tv CLEARCHAT #ch",
			item.KindMetric, "clearchat/ch//1700000000000", 1, map[string]string{"action": "clear"}},
		{"Prime sub", pre + "msg-id=sub;msg-param-sub-plan=Prime :tmi.twitch.tv USERNOTICE #ch", item.KindGift, "x1", 4.99 * 7, nil},
		{"Tier 1 resub", pre + "msg-id=resub;msg-param-sub-plan=1000 :tmi.twitch.tv USERNOTICE #ch :hi", item.KindGift, "x1", 4.99 * 7, nil},
		{"Tier 2 gift", pre + "msg-id=subgift;msg-param-sub-plan=2000 :tmi.twitch.tv USERNOTICE #ch", item.KindGift, "x1", 9.99 * 7, nil},
		{"gift names its recipient", pre + `msg-id=subgift;msg-param-recipient-display-name=Bob\sB;msg-param-recipient-id=99;msg-param-recipient-user-name=bob;msg-param-sub-plan=1000 :tmi.twitch.tv USERNOTICE #ch`,
			item.KindGift, "x1", 4.99 * 7, map[string]string{"recipient_user": "Bob B", "recipient_user_id": "99"}},
		{"Tier 3 sub", pre + "msg-id=sub;msg-param-sub-plan=3000 :tmi.twitch.tv USERNOTICE #ch", item.KindGift, "x1", 24.99 * 7, nil},
		{"gift bomb announcement: the subgifts that follow carry the value", pre + "msg-id=submysterygift;msg-param-mass-gift-count=5;msg-param-sub-plan=1000 :tmi.twitch.tv USERNOTICE #ch",
			item.KindGift, "x1", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := twitchParseLine(tc.line)
			if err != nil {
				t.Fatal(err)
			}
			items := c.mapMessage(m, tc.line)
			if len(items) != 1 {
				t.Fatalf("%d items", len(items))
			}
			it := items[0]
			if it.Kind != tc.kind || it.ID != tc.id || math.Abs(it.Value-tc.value) > 1e-9 {
				t.Errorf("kind %s id %q value %v; want %s %q %v", it.Kind, it.ID, it.Value, tc.kind, tc.id, tc.value)
			}
			if tc.kind == item.KindMetric && (it.Metric != item.MetricModeration || it.Room != "ch" || it.AuthorID != "") {
				t.Errorf("moderation sample %+v", it)
			}
			for k, v := range tc.labels {
				if it.Labels[k] != v {
					t.Errorf("label %s = %q, want %q (labels %v)", k, it.Labels[k], v, it.Labels)
				}
			}
		})
	}
}

func TestTwitchRefusedLogin(t *testing.T) {
	srv := loopback.NewTwitchServer()
	defer srv.Close()
	// A collector configured with a PASS-less non-anonymous nick cannot be
	// built; here the server refuses, as Twitch does for a bad login.
	srv.Send("x") // no-op: nobody joined
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := &twitchCollector{id: "tw", env: env.WithDefaults(), url: srv.URL, channels: []string{"a"}, nick: "notanon", bitValue: 1}
	c.dialer, c.header, _ = stream.Dialer(config.SourceConfig{}, c.env)
	healthy, err := c.session(context.Background(), collectortest.NewChanSink().Emit)
	if healthy || err == nil || !strings.Contains(err.Error(), "Login authentication failed") {
		t.Errorf("session = %v, %v; want refused login error", healthy, err)
	}
	if n := collectortest.Count(env.Metrics.Errors, "tw", "auth"); n != 1 {
		t.Errorf("auth errors = %v, want 1", n)
	}
}

func twitchTestCollector(env collectors.Env) *twitchCollector {
	return &twitchCollector{id: "tw", env: env.WithDefaults(), url: "ws://127.0.0.1/", channels: []string{"examplechannel"}, nick: "justinfan1", bitValue: twitchDefaultBitValue, usdCNY: twitchDefaultUSDCNY}
}

// TestTwitchGoldenSession maps a recorded-shape session (synthetic content)
// line by line and compares the items with the golden file.
func TestTwitchGoldenSession(t *testing.T) {
	data, err := os.ReadFile("testdata/twitch/session.irc")
	if err != nil {
		t.Fatal(err)
	}
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := twitchTestCollector(env)
	var items []item.Item
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		m, err := twitchParseLine(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		items = append(items, c.mapMessage(m, line)...)
	}
	collectortest.CheckGolden(t, "twitch/session.golden.json", items)
	if n := collectortest.Count(env.Metrics.Unknown, "tw", "cmd:PING"); n != 0 {
		t.Errorf("PING counted as unknown")
	}
}

func FuzzTwitchLine(f *testing.F) {
	f.Add(twitchFixtureLine)
	f.Add("PING :tmi.twitch.tv")
	f.Add(`@msg-id=raid;msg-param-viewerCount=x;system-msg=a\ :tmi.twitch.tv USERNOTICE #c`)
	f.Add("@bits=-5;id= :a!a@a PRIVMSG #c :\x01ACTION")
	f.Add("@;;=;a :  X")
	f.Add("@ban-duration=600;target-user-id=7;tmi-sent-ts=1 :tmi.twitch.tv CLEARCHAT #c :troll")
	f.Add("@login=t;target-msg-id=;tmi-sent-ts=x :tmi.twitch.tv CLEARMSG #c :gone")
	f.Add("@msg-id=subgift;msg-param-sub-plan=3000;msg-param-mass-gift-count=-1 :tmi.twitch.tv USERNOTICE #c")
	env := collectors.Env{}.WithDefaults()
	c := twitchTestCollector(env)
	f.Fuzz(func(t *testing.T, line string) {
		m, err := twitchParseLine(line)
		if err != nil {
			return
		}
		if m.Command == "" {
			t.Fatalf("%q parsed with an empty command", line)
		}
		var one [len(twitchBaseTags)]string
		m.tags(twitchBaseTags[:], one[:])
		for i, k := range twitchBaseTags {
			if v := m.Tag(k); len(v) > len(m.RawTags) || v != twitchUnescapeTag(one[i]) {
				t.Fatalf("tag %q: Tag %q, one-pass %q", k, v, one[i])
			}
		}
		for _, it := range c.mapMessage(m, line) {
			if !it.Kind.Valid() || it.ID == "" || it.Source != "tw" || it.TS.IsZero() || it.Room == "" {
				t.Fatalf("%q mapped to a bad item %+v", line, it)
			}
			if it.Kind == item.KindGift && it.Count <= 0 {
				t.Fatalf("%q: gift with count %d", line, it.Count)
			}
		}
	})
}

// BenchmarkTwitchParse measures parsing and mapping chat lines, the
// collector's per-message work after the WebSocket read.
func BenchmarkTwitchParse(b *testing.B) {
	c := twitchTestCollector(collectors.Env{}.WithDefaults())
	lines := []string{
		twitchFixtureLine,
		`@badge-info=;badges=;color=;display-name=;emotes=;first-msg=1;flags=;id=0a1b2c3d-0000-4000-8000-000000000001;mod=0;room-id=12345678;subscriber=0;tmi-sent-ts=1700000001000;turbo=0;user-id=1001;user-type= :bob!bob@bob.tmi.twitch.tv PRIVMSG #examplechannel :客服不理人，退款！`,
	}
	frame := strings.Join(lines, "\r\n") + "\r\n"
	b.SetBytes(int64(len(frame) / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		line := lines[i%len(lines)]
		m, err := twitchParseLine(line)
		if err != nil {
			b.Fatal(err)
		}
		n += len(c.mapMessage(m, line))
	}
	b.StopTimer()
	if n != b.N {
		b.Fatalf("mapped %d items from %d lines", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkTwitchLoopback measures the whole collector over a real
// WebSocket: the loopback server sends frames of 100 chat lines, the
// collector reads, splits, parses, maps and emits them.
func BenchmarkTwitchLoopback(b *testing.B) {
	srv := loopback.NewTwitchServer()
	defer srv.Close()
	env := collectors.Env{Log: slog.New(slog.DiscardHandler), Metrics: collectors.NewMetrics(nil), Clock: httpx.RealClock}
	env.HTTP = httpx.NewClient(config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 1000}}, env.Metrics.HTTP())
	src, _ := config.NewSourceConfig(fmt.Sprintf("id: tw\nkind: twitch\nurl: %s\nchannels: [bench]\n", srv.URL))
	c, err := registry().New(src, env)
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, func(context.Context, item.Item) error { got.Add(1); return nil })
	}()
	defer func() { cancel(); <-done }()
	if _, ok := srv.WaitJoined(10*time.Second, "bench"); !ok {
		b.Fatal("not joined")
	}
	const perFrame = 100
	lines := make([]string, perFrame)
	for i := range lines {
		lines[i] = fmt.Sprintf(`@badge-info=;badges=;color=#1E90FF;display-name=User%d;emotes=;id=bench-%d;mod=0;room-id=1;subscriber=0;tmi-sent-ts=1700000000123;turbo=0;user-id=%d;user-type= :u%d!u%d@u%d.tmi.twitch.tv PRIVMSG #bench :这个价格太贵了吧 Kappa %d`, i, i, i, i, i, i, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	frames := (b.N + perFrame - 1) / perFrame
	for i := 0; i < frames; i++ {
		if srv.Send("bench", lines...) != 1 {
			b.Fatal("send failed")
		}
	}
	want := int64(frames * perFrame)
	deadline := time.Now().Add(time.Minute)
	for got.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d", got.Load(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "msgs/s")
}

// TestTwitchOversized: a chat line beyond the stream caps is cut and counted.
func TestTwitchOversized(t *testing.T) {
	long := strings.Repeat("x", 3*stream.MaxText)
	srv := loopback.NewTwitchServer()
	defer srv.Close()
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c, err := registry().New(collectortest.SourceConfig(t, fmt.Sprintf("id: tw\nkind: twitch\nurl: %s\nchannels: [a]\n", srv.URL)), env)
	if err != nil {
		t.Fatal(err)
	}
	sink := collectortest.NewChanSink()
	defer collectortest.Start(t, c, sink.Emit)()
	if _, ok := srv.WaitJoined(10*time.Second, "a"); !ok {
		t.Fatal("not joined")
	}
	srv.Send("a", `@id=big;tmi-sent-ts=1700000000000;user-id=1 :z!z@z.tmi.twitch.tv PRIVMSG #a :`+long)
	if it := sink.Next(t); len(it.Text) != stream.MaxText || len(it.Raw) != stream.MaxText || it.Labels["oversized"] == "" {
		t.Errorf("twitch line kept %d text, %d raw bytes, labels %v", len(it.Text), len(it.Raw), it.Labels)
	}
	if n := collectortest.Count(env.Metrics.Errors, "tw", "oversized"); n != 1 {
		t.Errorf("oversized count %v", n)
	}
}

// registry has the one kind this package's tests build.
func registry() collectors.Registry { return collectors.Registry{"twitch": New} }
