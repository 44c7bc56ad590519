package bilibili

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"lookout/internal/loopback"
)

// Seeds beyond these live in testdata/fuzz/FuzzBilibili*/.

func FuzzBilibiliDecode(f *testing.F) {
	for _, name := range []string{"auth_packet.hex", "heartbeat.hex", "auth_reply.hex", "heartbeat_reply.hex", "like_plain.hex", "zlib_two.hex"} {
		f.Add(biliFixture(f, name))
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Add(loopback.BilibiliFrame(loopback.BilibiliPushBrotli, loopback.BilibiliDanmaku(1, "a", "b", ts, "c"), loopback.BilibiliLike(3)))
	f.Add(loopback.BilibiliFrame(loopback.BilibiliPushZlib, loopback.BilibiliGift(1, "a", "g", 2, 100, ts)))
	f.Fuzz(func(t *testing.T, msg []byte) {
		d := Decoder{MaxDecompressed: 64 << 10}
		var first []biliGot
		err1 := d.Decode(msg, func(p Packet) error {
			if p.Depth >= MaxDepth {
				t.Fatalf("packet at depth %d", p.Depth)
			}
			first = append(first, biliGot{p.Ver, p.Op, p.Depth, string(p.Body)})
			if p.Op == OpMessage {
				ParseCommand(nil, p.Body, "1", ts)
			}
			return nil
		})
		// The same decoder, reused, must give the same answer.
		second, err2 := biliDecodeAll(t, &d, msg)
		if (err1 == nil) != (err2 == nil) || len(first) != len(second) {
			t.Fatalf("decoder reuse changed the result: %d packets/%v then %d/%v", len(first), err1, len(second), err2)
		}
		for i := range first {
			if first[i] != second[i] {
				t.Fatalf("packet %d differs on reuse", i)
			}
		}
	})
}

func FuzzBilibiliCommand(f *testing.F) {
	f.Add(biliFixture(f, "danmu_min.json"))
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, b := range [][]byte{
		loopback.BilibiliDanmaku(1, "名字", "弹幕", ts, ""),
		loopback.BilibiliGift(1, "a", "g", 2, 100, ts),
		loopback.BilibiliGiftV2(1, "a", "g", 2, 100, ts),
		loopback.BilibiliSuperChat(1, 2, "a", "b", 30, ts),
		loopback.BilibiliInteract(1, "a", 2, ts),
		loopback.BilibiliOnlineRankCount(5),
		loopback.BilibiliWatched(6),
		loopback.BilibiliLike(7),
		loopback.BilibiliLive(1, ts),
		loopback.BilibiliPreparing(1),
		[]byte(`{"cmd":"LIVE","live_time":"x"}`),
		[]byte(`{"cmd":"INTERACT_WORD_V2","data":{"pb":"CAEQAhgD"}}`),
		[]byte(`{"cmd":"LIKE_INFO_V3_CLICK","data":{"uid":1,"uname":"x","like_text":"y"}}`),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, cmd, known, err := ParseCommand(nil, body, "1", ts)
		if !utf8.ValidString(cmd) {
			t.Fatalf("cmd %q is not UTF-8 (metrics labels must be)", cmd)
		}
		if err != nil || !known {
			if len(items) != 0 {
				t.Fatalf("%d items with err %v, known %v", len(items), err, known)
			}
			return
		}
		for _, it := range items {
			if !it.Kind.Valid() || it.Platform != "bilibili" || it.Room != "1" || it.ID == "" {
				t.Fatalf("bad item %+v", it)
			}
			if !bytes.Equal(it.Raw, body) {
				t.Fatal("Raw is not the command")
			}
			if !utf8.ValidString(it.Text) || !utf8.ValidString(it.Author) {
				t.Fatalf("invalid UTF-8 in text %q / author %q", it.Text, it.Author)
			}
		}
		// Differential: the hand-written DANMU_MSG scanner must read text
		// and sender as encoding/json does (duplicate keys aside, where
		// JSON decoders legitimately differ).
		if biliIsDanmaku(cmd) && json.Valid(body) && bytes.Count(body, []byte(`"info"`)) == 1 && bytes.Count(body, []byte(`"cmd"`)) == 1 {
			var ref struct {
				Info []json.RawMessage `json:"info"`
			}
			if json.Unmarshal(body, &ref) != nil || len(ref.Info) < 2 {
				return
			}
			var text string
			if json.Unmarshal(ref.Info[1], &text) == nil && items[0].Text != text {
				t.Fatalf("text %q, encoding/json says %q", items[0].Text, text)
			}
			var user []json.RawMessage
			if len(ref.Info) > 2 && json.Unmarshal(ref.Info[2], &user) == nil && len(user) > 1 {
				var name string
				if json.Unmarshal(user[1], &name) == nil && items[0].Author != name {
					t.Fatalf("author %q, encoding/json says %q", items[0].Author, name)
				}
			}
		}
	})
}
