package bilibili

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"lookout/internal/loopback"
)

func biliFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bilibili", name))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(name, ".hex") {
		b, err = hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return b
}

// biliGot is a decoded packet with its body copied out of the decoder.
type biliGot struct {
	Ver   uint16
	Op    uint32
	Depth int
	Body  string
}

func biliDecodeAll(t testing.TB, d *Decoder, msg []byte) ([]biliGot, error) {
	t.Helper()
	var got []biliGot
	err := d.Decode(msg, func(p Packet) error {
		got = append(got, biliGot{p.Ver, p.Op, p.Depth, string(p.Body)})
		return nil
	})
	return got, err
}

func biliZlib(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func biliBrotli(b []byte) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriterLevel(&buf, 4)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestBilibiliEncodeGolden(t *testing.T) {
	auth := AppendBilibiliPacket(nil, VerInt, OpAuth, 1, biliAuthBody(0, 21452505, "TESTBUVID", "TOKEN"))
	if want := biliFixture(t, "auth_packet.hex"); !bytes.Equal(auth, want) {
		t.Errorf("auth packet\n got %x\nwant %x", auth, want)
	}
	hb := AppendBilibiliPacket(nil, VerInt, OpHeartbeat, 1, nil)
	if want := biliFixture(t, "heartbeat.hex"); !bytes.Equal(hb, want) {
		t.Errorf("heartbeat\n got %x\nwant %x", hb, want)
	}
	reply := AppendBilibiliPacket(nil, VerInt, OpAuthReply, 1, []byte(`{"code":0}`))
	if want := biliFixture(t, "auth_reply.hex"); !bytes.Equal(reply, want) {
		t.Errorf("auth reply\n got %x\nwant %x", reply, want)
	}
	like := AppendBilibiliPacket(nil, VerPlain, OpMessage, 0, []byte(`{"cmd":"LIKE_INFO_V3_UPDATE","data":{"click_count":3227}}`))
	if want := biliFixture(t, "like_plain.hex"); !bytes.Equal(like, want) {
		t.Errorf("plain command\n got %x\nwant %x", like, want)
	}
}

func TestBilibiliDecodeGolden(t *testing.T) {
	const likeJSON = `{"cmd":"LIKE_INFO_V3_UPDATE","data":{"click_count":3227}}`
	const rankJSON = `{"cmd":"ONLINE_RANK_COUNT","data":{"count":12,"count_text":"12","online_count":34,"online_count_text":"34"}}`
	tests := []struct {
		name string
		msg  []byte
		want []biliGot
	}{
		{"auth reply (ver 1, op 8)", biliFixture(t, "auth_reply.hex"), []biliGot{{1, 8, 0, `{"code":0}`}}},
		{"heartbeat reply (op 3)", biliFixture(t, "heartbeat_reply.hex"), []biliGot{{1, 3, 0, "\x00\x00\x09\xa2"}}},
		// The server appends the client's heartbeat body behind the 4 bytes
		// without counting it in the length field.
		{"heartbeat reply with echo", append(biliFixture(t, "heartbeat_reply.hex"), "[object Object]"...), []biliGot{{1, 3, 0, "\x00\x00\x09\xa2"}}},
		{"plain command (ver 0)", biliFixture(t, "like_plain.hex"), []biliGot{{0, 5, 0, likeJSON}}},
		{"zlib with two packets (ver 2)", biliFixture(t, "zlib_two.hex"), []biliGot{{0, 5, 1, likeJSON}, {0, 5, 1, rankJSON}}},
		{"brotli with two packets (ver 3)", loopback.BilibiliFrame(loopback.BilibiliPushBrotli, []byte(likeJSON), []byte(rankJSON)),
			[]biliGot{{0, 5, 1, likeJSON}, {0, 5, 1, rankJSON}}},
		{"loopback zlib frame", loopback.BilibiliFrame(loopback.BilibiliPushZlib, []byte(rankJSON)), []biliGot{{0, 5, 1, rankJSON}}},
		{"loopback plain frame, two packets", loopback.BilibiliFrame(loopback.BilibiliPushPlain, []byte(likeJSON), []byte(rankJSON)),
			[]biliGot{{0, 5, 0, likeJSON}, {0, 5, 0, rankJSON}}},
		{"several packets of every kind in one message", bytes.Join([][]byte{
			biliFixture(t, "like_plain.hex"),
			biliFixture(t, "zlib_two.hex"),
			loopback.BilibiliFrame(loopback.BilibiliPushBrotli, []byte(rankJSON)),
			biliFixture(t, "auth_reply.hex"),
		}, nil), []biliGot{{0, 5, 0, likeJSON}, {0, 5, 1, likeJSON}, {0, 5, 1, rankJSON}, {0, 5, 1, rankJSON}, {1, 8, 0, `{"code":0}`}}},
		{"brotli holding zlib holding plain", AppendBilibiliPacket(nil, VerBrotli, OpMessage, 0,
			biliBrotli(AppendBilibiliPacket(biliFixture(t, "like_plain.hex"), VerZlib, OpMessage, 0,
				biliZlib(AppendBilibiliPacket(nil, VerPlain, OpMessage, 0, []byte(rankJSON)))))),
			[]biliGot{{0, 5, 1, likeJSON}, {0, 5, 2, rankJSON}}},
		{"empty message", nil, nil},
		{"empty body", AppendBilibiliPacket(nil, 0, 5, 0, nil), []biliGot{{0, 5, 0, ""}}},
		{"header longer than 16 bytes", func() []byte {
			b := AppendBilibiliPacket(nil, 0, 5, 0, []byte("XXXX"+likeJSON))
			b[5] = 20 // header length 20: the first four body bytes belong to the header
			return b
		}(), []biliGot{{0, 5, 0, likeJSON}}},
	}
	var d Decoder // one decoder for all: its reuse is under test too
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := biliDecodeAll(t, &d, tc.msg)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d packets %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("packet %d:\n got %+v\nwant %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestBilibiliPopularity(t *testing.T) {
	var d Decoder
	var pop uint32
	var ok bool
	err := d.Decode(biliFixture(t, "heartbeat_reply.hex"), func(p Packet) error {
		pop, ok = p.Popularity()
		return nil
	})
	if err != nil || !ok || pop != 2466 {
		t.Fatalf("popularity = %d, %v, err %v; want 2466", pop, ok, err)
	}
	if _, ok := (Packet{Op: OpMessage, Body: []byte("abcd")}).Popularity(); ok {
		t.Error("Popularity on an op-5 packet reported ok")
	}
}

func TestBilibiliDecodeErrors(t *testing.T) {
	like := biliFixture(t, "like_plain.hex")
	zl := biliFixture(t, "zlib_two.hex")
	withHeader := func(b []byte, off int, v ...byte) []byte {
		b = bytes.Clone(b)
		copy(b[off:], v)
		return b
	}
	// One zlib packet inflating to 16 MiB + 1 byte of zeros.
	bomb := biliFixture(t, "zlib_bomb.bin")
	deep := AppendBilibiliPacket(nil, 0, 5, 0, []byte(`{}`))
	for range MaxDepth {
		deep = AppendBilibiliPacket(nil, VerZlib, OpMessage, 0, biliZlib(deep))
	}
	corruptZlib := withHeader(zl, 40, 0xde, 0xad, 0xbe, 0xef)
	tests := []struct {
		name      string
		msg       []byte
		wantErr   error
		wantValid int // packets delivered before the error
	}{
		{"short header", like[:10], ErrBilibiliTruncated, 0},
		{"body cut", like[:len(like)-1], ErrBilibiliTruncated, 0},
		{"second packet cut", append(bytes.Clone(like), like[:30]...), ErrBilibiliTruncated, 1},
		{"trailing bytes", append(bytes.Clone(like), 0, 0, 0), ErrBilibiliTruncated, 1},
		{"header length 8", withHeader(like, 4, 0, 8), ErrBilibiliBadHeader, 0},
		{"packet length below 16", withHeader(like, 0, 0, 0, 0, 10), ErrBilibiliBadHeader, 0},
		{"packet length zero", append(bytes.Clone(like), withHeader(like, 0, 0, 0, 0, 0)...), ErrBilibiliBadHeader, 1},
		{"packet length past the end", withHeader(like, 0, 0, 0, 1, 0), ErrBilibiliTruncated, 0},
		{"packet length 4 GiB", withHeader(like, 0, 0xff, 0xff, 0xff, 0xff), ErrBilibiliTruncated, 0},
		{"heartbeat reply without popularity", biliFixture(t, "heartbeat_reply.hex")[:18], ErrBilibiliTruncated, 0},
		{"zlib body truncated", withHeader(zl[:100], 0, 0, 0, 0, 100), ErrBilibiliDecompress, 0},
		{"zlib body corrupt", corruptZlib, ErrBilibiliDecompress, 0},
		{"brotli body garbage", AppendBilibiliPacket(nil, VerBrotli, 5, 0, []byte("definitely not brotli")), ErrBilibiliDecompress, 0},
		{"zip bomb", bomb, ErrBilibiliTooLarge, 0},
		{"nested too deep", deep, ErrBilibiliTooDeep, 0},
		{"valid packets before a bad compressed one", append(bytes.Clone(zl), corruptZlib...), ErrBilibiliDecompress, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			got, err := biliDecodeAll(t, &d, tc.msg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(got) != tc.wantValid {
				t.Errorf("delivered %d packets before the error, want %d", len(got), tc.wantValid)
			}
			// The decoder must still work afterwards.
			if got, err := biliDecodeAll(t, &d, zl); err != nil || len(got) != 2 {
				t.Errorf("decoder unusable after error: %d packets, %v", len(got), err)
			}
		})
	}
}

func TestBilibiliDecompressedLimit(t *testing.T) {
	inner := bytes.Repeat(biliFixture(t, "like_plain.hex"), 10)
	for _, ver := range []uint16{VerZlib, VerBrotli} {
		var body []byte
		if ver == VerZlib {
			body = biliZlib(inner)
		} else {
			body = biliBrotli(inner)
		}
		msg := AppendBilibiliPacket(nil, ver, OpMessage, 0, body)
		d := Decoder{MaxDecompressed: len(inner)}
		if got, err := biliDecodeAll(t, &d, msg); err != nil || len(got) != 10 {
			t.Errorf("ver %d at exactly the limit: %d packets, %v", ver, len(got), err)
		}
		d.MaxDecompressed = len(inner) - 1
		if _, err := biliDecodeAll(t, &d, msg); !errors.Is(err, ErrBilibiliTooLarge) {
			t.Errorf("ver %d one byte over the limit: err = %v, want ErrBilibiliTooLarge", ver, err)
		}
		// The budget is per message, shared by all its compressed packets.
		d.MaxDecompressed = len(inner) + len(inner)/2
		two := append(bytes.Clone(msg), msg...)
		if _, err := biliDecodeAll(t, &d, two); !errors.Is(err, ErrBilibiliTooLarge) {
			t.Errorf("ver %d, two packets over the per-message budget: err = %v", ver, err)
		}
		if got, err := biliDecodeAll(t, &d, msg); err != nil || len(got) != 10 {
			t.Errorf("ver %d: budget not reset per message: %d packets, %v", ver, len(got), err)
		}
	}
}

func TestBilibiliDecodeCallbackError(t *testing.T) {
	stop := errors.New("stop")
	var d Decoder
	n := 0
	err := d.Decode(biliFixture(t, "zlib_two.hex"), func(Packet) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("err = %v after %d packets; want the callback's error after 1", err, n)
	}
}
