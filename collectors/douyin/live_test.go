package douyin

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"lookout/collectors"
	"lookout/collectors/collectortest"
	"lookout/collectors/douyin/douyinpb"
	"lookout/collectors/httpx"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/internal/loopback"
	"lookout/item"

	"lookout/internal/testutil"
)

const douyinTestKey = "loopback-test-key"

// douyinHex reads testdata/douyin/<file> lines "name hex".
func douyinHex(t testing.TB, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/douyin/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, _ := strings.Cut(line, " ")
		b, err := hex.DecodeString(strings.TrimSpace(hx))
		if err != nil {
			t.Fatalf("%s %s: %v", file, name, err)
		}
		out[name] = b
	}
	return out
}

func douyinTestCollector(t testing.TB, env collectors.Env, extra string) *douyinCollector {
	t.Helper()
	if tt, ok := t.(*testing.T); ok {
		tt.Setenv("LOOKOUT_TEST_DOUYIN_KEY", douyinTestKey)
	} else {
		os.Setenv("LOOKOUT_TEST_DOUYIN_KEY", douyinTestKey)
	}
	if !strings.Contains(extra, "signer_url") && !strings.Contains(extra, "loopback_sign_key") {
		extra += "loopback_sign_key: ${LOOKOUT_TEST_DOUYIN_KEY}\n"
	}
	src, err := config.NewSourceConfig("id: dy\nkind: douyin_live\nroom: \"646454278948\"\n" + extra)
	if err != nil {
		t.Fatal(err)
	}
	c, err := registry().New(src, env)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*douyinCollector)
}

func TestDouyinProtocolFixtures(t *testing.T) {
	fx := douyinHex(t, "protocols.hex")
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := douyinTestCollector(t, env, "")

	// The chat message payload on its own.
	items, err := c.mapMessage(nil, &douyinpb.Message{Method: "WebcastChatMessage", Payload: fx["chat_payload"]}, 0)
	if err != nil || len(items) != 1 {
		t.Fatalf("chat payload: %v, %d items", err, len(items))
	}
	chat := items[0]
	if chat.Kind != item.KindChat || chat.ID != "7400000000000000001" || chat.AuthorID != "111222333" || chat.Author != "alice" ||
		chat.Text != "hello" || !chat.TS.Equal(time.UnixMilli(1721106114633)) || chat.Room != "646454278948" || chat.Platform != "douyin" {
		t.Errorf("chat = %+v", chat)
	}

	// The full PushFrame: same chat, ack due, cursor and internalExt kept.
	items, ack, err := c.handleFrame(fx["push_frame"])
	if err != nil || len(items) != 1 {
		t.Fatalf("push frame: %v, %d items", err, len(items))
	}
	if items[0].ID != chat.ID || items[0].Text != "hello" {
		t.Errorf("frame chat = %+v", items[0])
	}
	if !bytes.Equal(ack, fx["ack"]) {
		t.Errorf("ack = %x\nwant  %x", ack, fx["ack"])
	}
	if c.cursor != "cur-1" || c.internalExt != "internal-ext-xyz" {
		t.Errorf("cursor %q internalExt %q", c.cursor, c.internalExt)
	}

	if !bytes.Equal(douyinHeartbeatFrame, fx["heartbeat"]) {
		t.Errorf("heartbeat = %x, want %x", douyinHeartbeatFrame, fx["heartbeat"])
	}

	// Viewer counts: current and cumulative ("43.6万").
	items, err = c.mapMessage(nil, &douyinpb.Message{Method: "WebcastRoomUserSeqMessage", Payload: fx["room_user_seq_payload"]}, 1721106114633)
	if err != nil || len(items) != 2 {
		t.Fatalf("room user seq: %v, %d items", err, len(items))
	}
	got := map[string]float64{}
	for _, it := range items {
		if it.Kind != item.KindMetric || it.ID == "" {
			t.Errorf("metric item = %+v", it)
		}
		got[it.Metric] = it.Value
	}
	if got[item.MetricViewers] != 22164 || got[item.MetricCumViewers] != 436000 {
		t.Errorf("metrics = %v, want viewers 22164, cum_viewers 436000", got)
	}
	if items[0].ID == items[1].ID {
		t.Errorf("metric ids collide: %q", items[0].ID)
	}
}

// douyinSessionFrames builds the recorded-shape session (synthetic
// content) stored in testdata/douyin/session.hex.
func douyinSessionFrames() [][]byte {
	const t0 = uint64(1721106114633)
	common := func(method string, n uint64) *douyinpb.Common {
		return &douyinpb.Common{Method: method, MsgId: 7400000000000000000 + n, RoomId: 7300000000000000000, CreateTime: t0 + n*100}
	}
	msg := func(method string, m proto.Message) *douyinpb.Message {
		b, _ := proto.Marshal(m)
		return &douyinpb.Message{Method: method, Payload: b}
	}
	user := func(id uint64, nick string) *douyinpb.User { return &douyinpb.User{Id: id, NickName: nick} }
	gift := func(n uint64, who *douyinpb.User, id uint64, name string, diamonds uint32, repeat uint64, end uint32) *douyinpb.Message {
		return msg("WebcastGiftMessage", &douyinpb.GiftMessage{Common: common("WebcastGiftMessage", n), GiftId: id, RepeatCount: repeat,
			ComboCount: repeat, User: who, RepeatEnd: end, Gift: &douyinpb.GiftStruct{Id: id, DiamondCount: diamonds, Name: name}})
	}
	frame := func(logID uint64, needAck bool, msgs ...*douyinpb.Message) []byte {
		raw, _ := proto.Marshal(&douyinpb.Response{MessagesList: msgs, Cursor: fmt.Sprintf("cur-%d", logID), Now: t0, InternalExt: fmt.Sprintf("ext-%d", logID), NeedAck: needAck})
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(raw)
		zw.Close()
		b, _ := proto.Marshal(&douyinpb.PushFrame{SeqId: logID, LogId: 7392091211001140000 + logID, PayloadEncoding: "gzip", PayloadType: "msg", Payload: gz.Bytes()})
		return b
	}
	dave := user(4, "dave")
	return [][]byte{
		frame(1, true,
			msg("WebcastChatMessage", &douyinpb.ChatMessage{Common: common("WebcastChatMessage", 1), User: user(111222333, "alice"), Content: "主播好，今天有什么新品？"}),
			msg("WebcastMemberMessage", &douyinpb.MemberMessage{Common: common("WebcastMemberMessage", 2), User: user(2, "bob"), MemberCount: 1200, Action: 1}),
			msg("WebcastLikeMessage", &douyinpb.LikeMessage{Common: common("WebcastLikeMessage", 3), User: user(3, "carol"), Count: 15, Total: 98765}),
		),
		frame(2, false,
			gift(4, dave, 2002, "玫瑰", 1, 1, 0),
			gift(5, dave, 2002, "玫瑰", 1, 5, 0),
			gift(6, dave, 2002, "玫瑰", 1, 5, 1), // combo end repeats the total: nothing new
			gift(7, user(5, "erin"), 3003, "嘉年华", 30000, 1, 1),
			// A room with hidden viewers: one placeholder sender, combos
			// told apart by groupId (5 + 1 hearts from two viewers).
			msg("WebcastGiftMessage", &douyinpb.GiftMessage{Common: common("WebcastGiftMessage", 12), GiftId: 5655, RepeatCount: 5, ComboCount: 5,
				User: user(111111, "用***"), RepeatEnd: 1, GroupId: 1721106114001, Gift: &douyinpb.GiftStruct{Id: 5655, DiamondCount: 1, Name: "小心心"}}),
			msg("WebcastGiftMessage", &douyinpb.GiftMessage{Common: common("WebcastGiftMessage", 13), GiftId: 5655, RepeatCount: 1, ComboCount: 1,
				User: user(111111, "用***"), RepeatEnd: 1, GroupId: 1721106114002, Gift: &douyinpb.GiftStruct{Id: 5655, DiamondCount: 1, Name: "小心心"}}),
		),
		frame(3, true,
			msg("WebcastSocialMessage", &douyinpb.SocialMessage{Common: common("WebcastSocialMessage", 8), User: user(6, "frank"), Action: 1, FollowCount: 5000}),
			msg("WebcastRoomUserSeqMessage", &douyinpb.RoomUserSeqMessage{Common: common("WebcastRoomUserSeqMessage", 9), Total: 22164, TotalPvForAnchor: "43.6万"}),
			msg("WebcastRoomStatsMessage", &douyinpb.Common{Method: "WebcastRoomStatsMessage"}),
			msg("WebcastNewThingMessage", &douyinpb.Common{Method: "WebcastNewThingMessage"}),
			&douyinpb.Message{Method: "WebcastChatMessage", Payload: []byte{0x0a, 0xff}}, // truncated: counted, skipped
			msg("WebcastChatMessage", &douyinpb.ChatMessage{Common: common("WebcastChatMessage", 10), User: user(7, "grace"), Content: "客服不理人，退款！"}),
			msg("WebcastEmojiChatMessage", &douyinpb.EmojiChatMessage{Common: common("WebcastEmojiChatMessage", 14), User: user(111111, "用***"), EmojiId: 7,
				DefaultContent: "[怒]", EmojiContent: &douyinpb.Text{Key: "emoji", DefaultPattern: "[怒]"}}),
		),
		frame(4, false, msg("WebcastControlMessage", &douyinpb.ControlMessage{Common: common("WebcastControlMessage", 11), Status: 3})),
	}
}

func TestDouyinGoldenSession(t *testing.T) {
	if testutil.Updating() {
		var b strings.Builder
		b.WriteString("# Recorded-shape Douyin push session (synthetic content): one PushFrame per line, built by douyinSessionFrames.\n")
		for i, f := range douyinSessionFrames() {
			fmt.Fprintf(&b, "frame%d %x\n", i+1, f)
		}
		if err := os.WriteFile("testdata/douyin/session.hex", []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	frames := douyinHex(t, "session.hex")
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := douyinTestCollector(t, env, "")
	var items []item.Item
	var acks int
	for i := 1; i <= len(frames); i++ {
		its, ack, err := c.handleFrame(frames[fmt.Sprintf("frame%d", i)])
		if i == 4 {
			if !errors.Is(err, errDouyinEnded) {
				t.Errorf("frame 4: err %v, want ended", err)
			}
		} else if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if ack != nil {
			acks++
		}
		items = append(items, its...)
	}
	collectortest.CheckGolden(t, "douyin/session.golden.json", items)
	if acks != 2 {
		t.Errorf("acks = %d, want 2 (frames 1 and 3)", acks)
	}
	if n := collectortest.Count(env.Metrics.Unknown, "dy", "method:WebcastNewThingMessage"); n != 1 {
		t.Errorf("unknown method count = %v", n)
	}
	if n := collectortest.Count(env.Metrics.Unknown, "dy", "method:WebcastRoomStatsMessage"); n != 0 {
		t.Errorf("ignored method counted as unknown")
	}
	if n := collectortest.Count(env.Metrics.Errors, "dy", "decode"); n != 1 {
		t.Errorf("decode errors = %v, want 1", n)
	}
}

func TestDouyinBadFrames(t *testing.T) {
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := douyinTestCollector(t, env, "")
	c.maxPayload = 64 << 10
	bomb := func() []byte {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(make([]byte, c.maxPayload+10))
		zw.Close()
		b, _ := proto.Marshal(&douyinpb.PushFrame{PayloadType: "msg", Payload: gz.Bytes()})
		return b
	}()
	for name, f := range map[string][]byte{
		"not protobuf": {0xff, 0xff, 0xff},
		"bad gzip": func() []byte {
			b, _ := proto.Marshal(&douyinpb.PushFrame{PayloadType: "msg", Payload: []byte{0x1f, 0x8b, 0, 0}})
			return b
		}(),
		"gzip bomb": bomb,
		"bad response": func() []byte {
			b, _ := proto.Marshal(&douyinpb.PushFrame{PayloadType: "msg", Payload: []byte{0x0a, 0x05, 0x01}})
			return b
		}(),
		"server closes": func() []byte { b, _ := proto.Marshal(&douyinpb.PushFrame{PayloadType: "close"}); return b }(),
	} {
		if items, _, err := c.handleFrame(f); err == nil || len(items) != 0 {
			t.Errorf("%s: %d items, err %v; want an error", name, len(items), err)
		}
	}
}

func TestDouyinParseCount(t *testing.T) {
	for in, want := range map[string]float64{"22164": 22164, "43.6万": 436000, "1.2亿": 120000000, "10万+": 100000, "1,234": 1234, " 3w ": 30000, "0": 0} {
		if got, ok := douyinParseCount(in); !ok || got != want {
			t.Errorf("douyinParseCount(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "万", "abc", "-5", "NaN", "1e400"} {
		if got, ok := douyinParseCount(in); ok {
			t.Errorf("douyinParseCount(%q) = %v, want not ok", in, got)
		}
	}
}

func TestDouyinSignatureStub(t *testing.T) {
	q := map[string][]string{"live_id": {"1"}, "aid": {"6383"}, "room_id": {"7300000000000000000"}, "identity": {"audience"}}
	sum := md5.Sum([]byte("live_id=1,aid=6383,version_code=,webcast_sdk_version=,room_id=7300000000000000000,sub_room_id=,sub_channel_id=,did_rule=,user_unique_id=,device_platform=,device_type=,ac=,identity=audience"))
	got := DouyinSignatureStub(q)
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("stub = %q, want %q", got, want)
	}
	// The loopback server's independent implementation must agree.
	local := douyinLocalSigner{key: []byte("k")}
	sig, _ := local.Sign(context.Background(), got)
	if sig != loopback.DouyinSign([]byte("k"), q) {
		t.Errorf("collector and loopback disagree on the signature")
	}
}

func TestDouyinConfig(t *testing.T) {
	env := collectortest.StreamEnv(t, httpx.RealClock)
	t.Setenv("LOOKOUT_TEST_EMPTY", "")
	for _, y := range []string{
		"room: abc\nsigner_url: http://s/\n",
		"room: \"1\"\n",                       // no signer
		"room: \"1\"\nsigner_url: ftp://s/\n", // bad signer url
		"room: \"1\"\nsigner_url: http://s/\nws_base: http://x/\n",
		"room: \"1\"\nsigner_url: http://s/\nheartbeat: 10m\n",
		"room: \"1\"\nloopback_sign_key: ${LOOKOUT_TEST_EMPTY}\n",
		"room: \"1\"\nsigner_url: http://s/\ncookie: ${LOOKOUT_TEST_EMPTY}\n",
		"room: \"1\"\nsigner_url: http://s/\nrom: x\n",
	} {
		src, err := config.NewSourceConfig("id: dy\nkind: douyin_live\n" + y)
		if err != nil {
			continue
		}
		if _, err := registry().New(src, env); err == nil {
			t.Errorf("accepted:\n%s", y)
		}
	}
	src, _ := config.NewSourceConfig("id: dy\nkind: douyin_live\nroom: \"1\"\n")
	_, err := registry().New(src, env)
	if err == nil || !strings.Contains(err.Error(), "signer_url") || !strings.Contains(err.Error(), "not public") {
		t.Errorf("missing signer error = %v; want it to explain signer_url", err)
	}
}

func douyinStartLoopback(t *testing.T, key string) (*loopback.DouyinServer, *collectortest.SteppedClock, collectors.Env, *collectortest.ChanSink, func()) {
	t.Helper()
	srv := loopback.NewDouyinServer("646454278948", 7300000000000000000, []byte(key))
	t.Cleanup(srv.Close)
	clk := collectortest.NewSteppedClock()
	env := collectortest.StreamEnv(t, clk)
	c := douyinTestCollector(t, env, fmt.Sprintf("ws_base: %s\npage_base: %s\n", srv.WSBase, srv.PageBase))
	sink := collectortest.NewChanSink()
	stop := collectortest.Start(t, c, sink.Emit)
	return srv, clk, env, sink, stop
}

func TestDouyinLoopback(t *testing.T) {
	srv, clk, env, sink, stop := douyinStartLoopback(t, douyinTestKey)
	d, ok := srv.WaitDial(0, 10*time.Second)
	if !ok || d.Rejected != "" {
		t.Fatalf("dial = %+v, %v", d, ok)
	}
	if d.Query.Get("room_id") != "7300000000000000000" || d.Query.Get("signature") == "" || d.Query.Get("compress") != "gzip" ||
		!strings.Contains(d.Cookie, "ttwid=") {
		t.Errorf("push URL query %v cookie %q", d.Query, d.Cookie)
	}

	logID, ext := srv.Push(true,
		loopback.DouyinChat(1, 111, "alice", "主播好"),
		loopback.DouyinMember(2, 222, "bob", 1500),
		loopback.DouyinLike(3, 333, "carol", 10, 5000),
		loopback.DouyinGift(4, 444, "dave", 2002, "玫瑰", 1, 1, 0),
		loopback.DouyinGift(5, 444, "dave", 2002, "玫瑰", 1, 3, 1),
		loopback.DouyinSocial(6, 555, "erin", 800),
		loopback.DouyinRoomUserSeq(7, 4321, "1.2万"),
	)
	var got []string
	for i := 0; i < 10; i++ {
		it := sink.Next(t)
		got = append(got, fmt.Sprintf("%s:%s:%s:%g:%d", it.Kind, it.Author, it.Metric, it.Value, it.Count))
	}
	want := []string{
		"chat:alice::0:0", "enter:bob::0:0", "metric::member_count:1500:0", "like:carol::0:10", "metric::likes:5000:0",
		"gift:dave::0.1:1", "gift:dave::0.2:2", "enter:erin::0:0", "metric::followers:800:0", "metric::viewers:4321:0",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("items:\n got %v\nwant %v", got, want)
	}
	if it := sink.Next(t); it.Metric != item.MetricCumViewers || it.Value != 12000 {
		t.Errorf("cum viewers = %+v", it)
	}
	// The ack echoes logId and internalExt.
	f, ok := srv.WaitFrame(0, 10*time.Second, func(f loopback.DouyinClientFrame) bool { return f.PayloadType == "ack" })
	if !ok || f.LogID != logID || string(f.Payload) != ext || f.Conn != 1 {
		t.Errorf("ack frame = %+v (want logId %d payload %q)", f, logID, ext)
	}
	// No ack when none is asked for.
	srv.Push(false, loopback.DouyinChat(8, 111, "alice", "again"))
	sink.Next(t)

	// Heartbeat: every 10 s on the clock, a binary PushFrame{payloadType: hb}.
	clk.WaitAsked(t, "heartbeat", func(d time.Duration) bool { return d == douyinDefaultHeartbeat })
	clk.Advance(douyinDefaultHeartbeat)
	hb, ok := srv.WaitFrame(0, 10*time.Second, func(f loopback.DouyinClientFrame) bool { return f.PayloadType == "hb" })
	if !ok || !bytes.Equal(hb.Raw, douyinHeartbeatFrame) || hb.Err != nil {
		t.Errorf("heartbeat frame = %+v", hb)
	}
	acks := 0
	for _, f := range srv.Frames() {
		if f.PayloadType == "ack" {
			acks++
		}
	}
	if acks != 1 {
		t.Errorf("%d acks sent, want 1", acks)
	}

	// Garbage on the wire is counted, not fatal.
	srv.PushRaw([]byte{0xde, 0xad, 0xbe, 0xef})
	srv.Push(false, loopback.DouyinChat(9, 111, "alice", "still alive"))
	if it := sink.Next(t); it.Text != "still alive" {
		t.Errorf("after garbage: %+v", it)
	}
	if n := collectortest.Count(env.Metrics.Errors, "dy", "decode"); n != 1 {
		t.Errorf("decode errors = %v", n)
	}

	// The server drops us: backoff on the clock, then a new signed dial
	// that carries the last cursor and internal_ext.
	srv.Drop()
	d1 := clk.WaitAsked(t, "reconnect backoff", func(d time.Duration) bool { return d < 2*time.Second })
	clk.Advance(d1)
	d2, ok := srv.WaitDial(1, 10*time.Second)
	if !ok || d2.Rejected != "" {
		t.Fatalf("redial = %+v, %v", d2, ok)
	}
	if d2.Query.Get("cursor") == "" || d2.Query.Get("internal_ext") == "" || d2.Query.Get("user_unique_id") != d.Query.Get("user_unique_id") {
		t.Errorf("redial query = %v", d2.Query)
	}
	srv.Push(false, loopback.DouyinChat(10, 111, "alice", "back"))
	if it := sink.Next(t); it.Text != "back" {
		t.Errorf("after reconnect: %+v", it)
	}

	// The broadcast ends: reconnect only after a long wait (≥ 30 s).
	srv.End()
	slow := clk.WaitAsked(t, "ended backoff", func(d time.Duration) bool { return d != douyinDefaultHeartbeat })
	if slow < 30*time.Second || slow > time.Minute {
		t.Errorf("after the end the collector waits %v, want 30s–1m", slow)
	}
	clk.Advance(slow)
	if _, ok := srv.WaitDial(2, 10*time.Second); !ok {
		t.Error("no reconnect after the end wait")
	}
	stop()
	if n := collectortest.Count(env.Metrics.Reconnects, "dy"); n != 2 {
		t.Errorf("reconnects = %v, want 2", n)
	}
}

// In a room that hides its viewers every sender is the same placeholder:
// combos are told apart by their groupId, so three viewers' 5 + 1 + 3
// hearts stay 9 hearts in their own rows; nobody gets the placeholder as
// an author id. Sticker chat lines are chat. The end of the broadcast and
// the stream coming back are live_status samples.
func TestDouyinLoopbackHiddenViewersEmojiAndLiveStatus(t *testing.T) {
	srv, clk, _, sink, stop := douyinStartLoopback(t, douyinTestKey)
	defer stop()
	if _, ok := srv.WaitDial(0, 10*time.Second); !ok {
		t.Fatal("no dial")
	}
	const hidden = loopback.DouyinHiddenUserID
	heart := func(msgID, group, repeat uint64, end uint32) *douyinpb.Message {
		return loopback.DouyinGiftInGroup(msgID, group, hidden, "用***", 5655, "小心心", 1, repeat, end)
	}
	srv.Push(false,
		heart(1, 901, 3, 0), // viewer A, combo under way
		heart(2, 902, 1, 1), // viewer B, one heart
		heart(3, 901, 5, 1), // viewer A ends at 5
		heart(4, 903, 3, 1), // viewer C, three at once
		loopback.DouyinEmojiChat(6, hidden, "用***", 7, "[怒]"),
	)
	var counts []int64
	var hearts int64
	for range 4 {
		it := sink.Next(t)
		if it.Kind != item.KindGift || it.Text != "小心心" || it.AuthorID != "" || it.Author != "用***" {
			t.Errorf("gift item %+v", it)
		}
		counts = append(counts, it.Count)
		hearts += it.Count
	}
	if fmt.Sprint(counts) != "[3 1 2 3]" || hearts != 9 {
		t.Errorf("gift counts %v (total %d), want [3 1 2 3] (9 hearts from three viewers)", counts, hearts)
	}
	if it := sink.Next(t); it.Kind != item.KindChat || it.Text != "[怒]" || it.AuthorID != "" || it.ID != "6" {
		t.Errorf("emoji chat item %+v", it)
	}

	srv.End()
	if it := sink.Next(t); it.Kind != item.KindMetric || it.Metric != item.MetricLiveStatus || it.Value != 0 {
		t.Errorf("end of broadcast: %+v, want live_status 0", it)
	}
	slow := clk.WaitAsked(t, "ended backoff", func(d time.Duration) bool { return d != douyinDefaultHeartbeat })
	clk.Advance(slow)
	if _, ok := srv.WaitDial(1, 10*time.Second); !ok {
		t.Fatal("no reconnect after the end")
	}
	time.Sleep(2 * time.Millisecond) // a message created after the end
	srv.Push(false, loopback.DouyinChat(7, 42, "alice", "又开播了"))
	if it := sink.Next(t); it.Metric != item.MetricLiveStatus || it.Value != 1 || it.ID != "7/live_status" {
		t.Errorf("first message after the end: %+v, want live_status 1", it)
	}
	if it := sink.Next(t); it.Kind != item.KindChat || it.Text != "又开播了" {
		t.Errorf("chat after the restart: %+v", it)
	}
	srv.Push(false, loopback.DouyinChat(8, 42, "alice", "还在"))
	if it := sink.Next(t); it.Kind != item.KindChat {
		t.Errorf("a second live_status 1: %+v", it)
	}
}

func TestDouyinBadSignatureRejected(t *testing.T) {
	// The collector signs with another key: the server refuses the dial.
	srv := loopback.NewDouyinServer("646454278948", 7300000000000000000, []byte("the-server-key"))
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env := collectortest.StreamEnv(t, clk)
	c := douyinTestCollector(t, env, fmt.Sprintf("ws_base: %s\npage_base: %s\n", srv.WSBase, srv.PageBase))
	healthy, err := c.session(context.Background(), collectortest.NewChanSink().Emit)
	if healthy || err == nil || !strings.Contains(err.Error(), "rejected the signature") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("session = %v, %v; want a clear signature error", healthy, err)
	}
	if d, _ := srv.WaitDial(0, time.Second); d.Rejected != "signature" {
		t.Errorf("server saw %+v", d)
	}
	if n := collectortest.Count(env.Metrics.Errors, "dy", "signature"); n != 1 {
		t.Errorf("signature errors = %v, want 1", n)
	}
	// Run keeps trying with growing backoff rather than dying.
	collectortest.Start(t, c, collectortest.NewChanSink().Emit)
	d1 := clk.WaitAsked(t, "backoff", func(time.Duration) bool { return true })
	clk.Advance(d1)
	d2 := clk.WaitAsked(t, "backoff", func(time.Duration) bool { return true })
	if d2 < time.Second {
		t.Errorf("second backoff %v not growing (first %v)", d2, d1)
	}
}

func TestDouyinHTTPSigner(t *testing.T) {
	srv := loopback.NewDouyinServer("646454278948", 7300000000000000000, []byte(douyinTestKey))
	defer srv.Close()
	var (
		mu      sync.Mutex
		stubs   []string
		failing bool
	)
	signer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Stub string `json:"stub"`
		}
		if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&in) != nil || len(in.Stub) != 32 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if failing {
			http.Error(w, "signer crashed", http.StatusInternalServerError)
			return
		}
		stubs = append(stubs, in.Stub)
		sig, _ := douyinLocalSigner{key: []byte(douyinTestKey)}.Sign(r.Context(), in.Stub)
		json.NewEncoder(w).Encode(map[string]string{"signature": sig})
	}))
	defer signer.Close()
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c := douyinTestCollector(t, env, fmt.Sprintf("ws_base: %s\npage_base: %s\nsigner_url: %s/sign\n", srv.WSBase, srv.PageBase, signer.URL))
	sink := collectortest.NewChanSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.session(ctx, sink.Emit) }()
	d, ok := srv.WaitDial(0, 10*time.Second)
	mu.Lock()
	if !ok || d.Rejected != "" || len(stubs) != 1 || stubs[0] != DouyinSignatureStub(d.Query) {
		t.Fatalf("dial via HTTP signer = %+v, stubs %v", d, stubs)
	}
	mu.Unlock()
	srv.Push(false, loopback.DouyinChat(1, 1, "a", "signed by the external signer"))
	if it := sink.Next(t); it.Text != "signed by the external signer" {
		t.Errorf("item = %+v", it)
	}
	cancel()
	<-done

	mu.Lock()
	failing = true
	mu.Unlock()
	_, err := c.session(context.Background(), sink.Emit)
	if err == nil || !strings.Contains(err.Error(), "signer") || !strings.Contains(err.Error(), "500") {
		t.Errorf("failing signer: %v", err)
	}
	if n := collectortest.Count(env.Metrics.Errors, "dy", "signer"); n != 1 {
		t.Errorf("signer errors = %v", n)
	}
}

func FuzzDouyinFrame(f *testing.F) {
	for _, b := range douyinHex(f, "protocols.hex") {
		f.Add(b)
	}
	for _, b := range douyinSessionFrames() {
		f.Add(b)
	}
	c := douyinTestCollector(f, collectors.Env{}.WithDefaults(), "")
	f.Fuzz(func(t *testing.T, data []byte) {
		items, ack, err := c.handleFrame(data)
		if err != nil && !errors.Is(err, errDouyinEnded) && len(items) > 0 {
			t.Fatalf("error %v with %d items", err, len(items))
		}
		for _, it := range items {
			if !it.Kind.Valid() || it.ID == "" || it.TS.IsZero() || it.Room != "646454278948" {
				t.Fatalf("bad item %+v", it)
			}
			if it.Kind == item.KindGift && it.Count <= 0 {
				t.Fatalf("gift count %d", it.Count)
			}
		}
		if ack != nil {
			var pf douyinpb.PushFrame
			if err := proto.Unmarshal(ack, &pf); err != nil || pf.PayloadType != "ack" {
				t.Fatalf("bad ack %x", ack)
			}
		}
	})
}

// BenchmarkDouyinDecode measures the per-frame work: PushFrame → gunzip →
// Response → typed messages → items, over frames of 20 chat messages.
func BenchmarkDouyinDecode(b *testing.B) {
	c := douyinTestCollector(b, collectors.Env{}.WithDefaults(), "")
	const perFrame = 20
	var msgs []*douyinpb.Message
	for i := 0; i < perFrame; i++ {
		p, _ := proto.Marshal(&douyinpb.ChatMessage{
			Common:  &douyinpb.Common{Method: "WebcastChatMessage", MsgId: 7400000000000000000 + uint64(i), RoomId: 7300000000000000000, CreateTime: 1721106114633},
			User:    &douyinpb.User{Id: 111222333 + uint64(i), NickName: "观众" + fmt.Sprint(i)},
			Content: "这个价格太贵了吧，客服什么时候发货？",
		})
		msgs = append(msgs, &douyinpb.Message{Method: "WebcastChatMessage", Payload: p})
	}
	frame := loopback.DouyinFrame(1, true, "internal-ext", msgs...)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		items, _, err := c.handleFrame(frame)
		if err != nil || len(items) != perFrame {
			b.Fatalf("%v, %d items", err, len(items))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*perFrame)/b.Elapsed().Seconds(), "msgs/s")
}

func TestDouyinConfiguredCookie(t *testing.T) {
	srv := loopback.NewDouyinServer("646454278948", 7300000000000000000, []byte(douyinTestKey))
	defer srv.Close()
	for i, tc := range []struct{ cookie, want string }{
		// A login cookie without ttwid: ttwid is fetched and appended.
		{"sessionid=abc", "sessionid=abc; ttwid=1%7Cloopback-ttwid-646454278948"},
		// A cookie that has ttwid is used as is.
		{"ttwid=1%7Cloopback-ttwid-646454278948; sessionid=xyz", "ttwid=1%7Cloopback-ttwid-646454278948; sessionid=xyz"},
	} {
		t.Setenv("LOOKOUT_TEST_DOUYIN_COOKIE", tc.cookie)
		env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
		c := douyinTestCollector(t, env, fmt.Sprintf("ws_base: %s\npage_base: %s\ncookie: ${LOOKOUT_TEST_DOUYIN_COOKIE}\n", srv.WSBase, srv.PageBase))
		stop := collectortest.Start(t, c, collectortest.NewChanSink().Emit)
		d, ok := srv.WaitDial(i, 10*time.Second)
		stop()
		if !ok || d.Rejected != "" || d.Cookie != tc.want {
			t.Errorf("cookie %q: dial %+v, want Cookie %q", tc.cookie, d, tc.want)
		}
	}
}

// BenchmarkDouyinLoopback measures the whole collector over a real
// WebSocket: the loopback room pushes frames of 50 chat messages (acks
// due), the collector decodes, acks and emits them.
func BenchmarkDouyinLoopback(b *testing.B) {
	srv := loopback.NewDouyinServer("646454278948", 7300000000000000000, []byte(douyinTestKey))
	defer srv.Close()
	os.Setenv("LOOKOUT_TEST_DOUYIN_KEY", douyinTestKey)
	env := collectors.Env{Log: slog.New(slog.DiscardHandler), Metrics: collectors.NewMetrics(nil), Clock: httpx.RealClock}
	env.HTTP = httpx.NewClient(config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 1000}}, env.Metrics.HTTP())
	c := douyinTestCollector(b, env, fmt.Sprintf("ws_base: %s\npage_base: %s\n", srv.WSBase, srv.PageBase))
	var got atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, func(context.Context, item.Item) error { got.Add(1); return nil })
	}()
	defer func() { cancel(); <-done }()
	if _, ok := srv.WaitDial(0, 10*time.Second); !ok {
		b.Fatal("no dial")
	}
	for srv.Open() == 0 {
		time.Sleep(time.Millisecond)
	}
	const perFrame = 50
	msgs := make([]*douyinpb.Message, perFrame)
	for i := range msgs {
		msgs[i] = loopback.DouyinChat(uint64(i+1), uint64(1000+i), fmt.Sprintf("观众%d", i), "这个价格太贵了吧，客服什么时候发货？")
	}
	frame := loopback.DouyinFrame(1, true, "internal-ext", msgs...)
	b.SetBytes(int64(len(frame)) / perFrame)
	b.ReportAllocs()
	b.ResetTimer()
	frames := (b.N + perFrame - 1) / perFrame
	for i := 0; i < frames; i++ {
		if srv.PushRaw(frame) != 1 {
			b.Fatal("push failed")
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

// TestDouyinOversized: a chat message beyond the stream caps is cut and counted.
func TestDouyinOversized(t *testing.T) {
	long := strings.Repeat("x", 3*stream.MaxText)
	srv, _, env, sink, stop := douyinStartLoopback(t, douyinTestKey)
	defer stop()
	if _, ok := srv.WaitDial(0, 10*time.Second); !ok {
		t.Fatal("no dial")
	}
	srv.Push(false, loopback.DouyinChat(1, 42, "alice", long))
	if it := sink.Next(t); len(it.Text) != stream.MaxText || len(it.Raw) > stream.MaxText || it.Labels["oversized"] == "" {
		t.Errorf("douyin chat kept %d text, %d raw bytes, labels %v", len(it.Text), len(it.Raw), it.Labels)
	}
	if n := collectortest.Count(env.Metrics.Errors, "dy", "oversized"); n != 1 {
		t.Errorf("oversized count %v", n)
	}
}

// registry has the one kind this package's tests build.
func registry() collectors.Registry { return collectors.Registry{"douyin_live": New} }
