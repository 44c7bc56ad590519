package loopback

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"lookout/collectors/bilibili"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func biliGet(t *testing.T, u string) (code int, data map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Code int            `json:"code"`
		Data map[string]any `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	return env.Code, env.Data
}

func TestBilibiliServerWRIDVector(t *testing.T) {
	const img, sub = "7cd084941338484aae1ad9425b84077c", "4932caff0ff746eab6f01bf08b70ac45"
	q := url.Values{"foo": {"114"}, "bar": {"514"}, "zab": {"1919810"}, "wts": {"1702204169"},
		"w_rid": {"8f6f2b5b3d485fe1886cec6a0be8c5d4"}}
	if !BiliWBIVerify(q, img, sub) {
		t.Fatal("the published WBI test vector does not verify")
	}
	q.Set("foo", "115")
	if BiliWBIVerify(q, img, sub) {
		t.Fatal("a tampered query verifies")
	}
}

func TestBilibiliServerBootstrap(t *testing.T) {
	s := NewBilibiliServer(BilibiliServerOptions{RoomID: 21452505, ShortID: 7})
	defer s.Close()
	if code, data := biliGet(t, s.URL()+"/room/v1/Room/get_info?room_id=7"); code != 0 || data["room_id"] != float64(21452505) {
		t.Errorf("get_info short id: code %d data %v", code, data)
	}
	if code, _ := biliGet(t, s.URL()+"/room/v1/Room/get_info?room_id=8"); code == 0 {
		t.Error("get_info of an unknown room succeeded")
	}
	code, nav := biliGet(t, s.URL()+"/x/web-interface/nav")
	img := nav["wbi_img"].(map[string]any)
	imgKey := bilibili.WBIKeyFromURL(img["img_url"].(string))
	subKey := bilibili.WBIKeyFromURL(img["sub_url"].(string))
	if code != -101 || imgKey != "7cd084941338484aae1ad9425b84077c" {
		t.Fatalf("nav: code %d keys %q %q", code, imgKey, subKey)
	}
	params := url.Values{"id": {"21452505"}, "type": {"0"}}
	signed := bilibili.SignWBI(params, bilibili.MixinKey(imgKey, subKey), time.Now().Unix())
	code, dm := biliGet(t, s.URL()+"/xlive/web-room/v1/index/getDanmuInfo?"+signed)
	if code != 0 || dm["token"] != "loopback-token-21452505" || len(dm["host_list"].([]any)) != 1 {
		t.Errorf("getDanmuInfo signed: code %d data %v", code, dm)
	}
	for _, bad := range []string{
		"id=21452505&type=0",                                           // unsigned
		strings.Replace(signed, "type=0", "type=1", 1),                 // tampered
		bilibili.SignWBI(params, bilibili.MixinKey(subKey, imgKey), 1), // wrong keys
	} {
		if code, _ := biliGet(t, s.URL()+"/xlive/web-room/v1/index/getDanmuInfo?"+bad); code != -352 {
			t.Errorf("getDanmuInfo?%s: code %d, want -352", bad, code)
		}
	}
	if code, data := biliGet(t, s.URL()+"/x/web-frontend/getbuvid"); code != 0 || data["buvid"] == "" {
		t.Errorf("getbuvid: %d %v", code, data)
	}
}

func biliDial(t *testing.T, s *BilibiliServer) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(s.WSURL(), http.Header{"Origin": {"https://live.bilibili.com"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func biliAuth(roomID int64, key string, protover int) []byte {
	body := fmt.Sprintf(`{"uid":0,"roomid":%d,"protover":%d,"platform":"web","type":2,"buvid":"B","key":%q}`, roomID, protover, key)
	return BilibiliPacket(1, 7, 1, []byte(body))
}

// biliRead decodes the next message with the collector's codec.
func biliRead(t *testing.T, c *websocket.Conn) ([]bilibili.Packet, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		return nil, err
	}
	var d bilibili.Decoder
	var out []bilibili.Packet
	err = d.Decode(msg, func(p bilibili.Packet) error {
		p.Body = append([]byte(nil), p.Body...)
		out = append(out, p)
		return nil
	})
	return out, err
}

func TestBilibiliServerAuth(t *testing.T) {
	s := NewBilibiliServer(BilibiliServerOptions{AuthTimeout: 200 * time.Millisecond, Popularity: 2466})
	defer s.Close()
	t.Run("silent client is dropped", func(t *testing.T) {
		c := biliDial(t, s)
		if _, err := biliRead(t, c); err == nil {
			t.Fatal("server kept a client that never authenticated")
		}
	})
	t.Run("wrong token gets -101", func(t *testing.T) {
		c := biliDial(t, s)
		c.WriteMessage(websocket.BinaryMessage, biliAuth(s.RoomID(), "nope", 3))
		p, err := biliRead(t, c)
		if err != nil || len(p) != 1 || p[0].Op != 8 || string(p[0].Body) != `{"code":-101}` {
			t.Fatalf("reply %+v, %v", p, err)
		}
	})
	for name, pkt := range map[string][]byte{
		"wrong room":       biliAuth(1, "loopback-token-21452505", 3),
		"protover 1":       biliAuth(21452505, "loopback-token-21452505", 1),
		"heartbeat first":  BilibiliPacket(1, 2, 1, nil),
		"garbage":          []byte("hello"),
		"auth body broken": BilibiliPacket(1, 7, 1, []byte("{")),
	} {
		t.Run(name+" is hung up on", func(t *testing.T) {
			c := biliDial(t, s)
			c.WriteMessage(websocket.BinaryMessage, pkt)
			if p, err := biliRead(t, c); err == nil {
				t.Fatalf("got %+v instead of a hang-up", p)
			}
		})
	}
	if s.AuthCount() != 0 || s.AuthFailures() != 6 {
		t.Errorf("auths %d, failures %d", s.AuthCount(), s.AuthFailures())
	}

	c := biliDial(t, s)
	c.WriteMessage(websocket.BinaryMessage, biliAuth(s.RoomID(), "loopback-token-21452505", 3))
	p, err := biliRead(t, c)
	if err != nil || len(p) != 1 || p[0].Op != 8 || string(p[0].Body) != `{"code":0}` {
		t.Fatalf("auth reply %+v, %v", p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitConnected(ctx, 1); err != nil || s.Connections() != 1 || s.AuthCount() != 1 {
		t.Fatalf("connections %d auths %d: %v", s.Connections(), s.AuthCount(), err)
	}
	// Heartbeat: op 3 with popularity; the echo trails the counted length.
	c.WriteMessage(websocket.BinaryMessage, BilibiliPacket(1, 2, 1, []byte("[object Object]")))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, raw, err := c.ReadMessage()
	if err != nil || binary.BigEndian.Uint32(raw) != 20 || !strings.HasSuffix(string(raw), "[object Object]") {
		t.Fatalf("heartbeat reply %x, %v", raw, err)
	}
	var d bilibili.Decoder
	d.Decode(raw, func(p bilibili.Packet) error {
		if pop, ok := p.Popularity(); !ok || pop != 2466 {
			t.Errorf("popularity %d %v", pop, ok)
		}
		return nil
	})
	if s.Heartbeats() != 1 {
		t.Errorf("heartbeats = %d", s.Heartbeats())
	}

	// Push: one brotli packet with the commands nested.
	ts := time.Unix(1764072000, 0)
	if n := s.Push(BilibiliDanmaku(1, "a", "hi", ts, "x"), BilibiliWatched(3)); n != 1 {
		t.Fatalf("Push reached %d", n)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, raw, _ = c.ReadMessage()
	if binary.BigEndian.Uint16(raw[6:]) != 3 || int(binary.BigEndian.Uint32(raw)) != len(raw) {
		t.Errorf("push frame is not one brotli packet: %x", raw[:16])
	}
	var cmds []string
	d.Decode(raw, func(p bilibili.Packet) error {
		var c struct{ Cmd string }
		json.Unmarshal(p.Body, &c)
		cmds = append(cmds, c.Cmd)
		if p.Depth != 1 || p.Ver != 0 || p.Op != 5 {
			t.Errorf("nested packet %+v", p)
		}
		return nil
	})
	if strings.Join(cmds, ",") != "DANMU_MSG:4:0:2:2:2:0,WATCHED_CHANGE" {
		t.Errorf("cmds %v", cmds)
	}

	s.DropConnections()
	if _, err := biliRead(t, c); err == nil {
		t.Error("connection survived DropConnections")
	}
	if s.Connections() != 0 {
		t.Errorf("connections after drop = %d", s.Connections())
	}
}

func TestBilibiliServerCompression(t *testing.T) {
	for _, tc := range []struct {
		c     BilibiliCompression
		depth int
	}{{BilibiliPushZlib, 1}, {BilibiliPushPlain, 0}} {
		s := NewBilibiliServer(BilibiliServerOptions{Compression: tc.c})
		c := biliDial(t, s)
		c.WriteMessage(websocket.BinaryMessage, biliAuth(s.RoomID(), "loopback-token-21452505", 2))
		biliRead(t, c)
		// The auth reply can reach the client before the server lists the
		// connection as authed; Push only sends to authed connections.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.WaitConnected(ctx, 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		s.Push(BilibiliLike(1), BilibiliLike(2))
		p, err := biliRead(t, c)
		if err != nil || len(p) != 2 || p[1].Depth != tc.depth || !strings.Contains(string(p[1].Body), `"click_count":2`) {
			t.Errorf("compression %d: %+v %v", tc.c, p, err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		s.Close()
	}
}
