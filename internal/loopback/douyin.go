package loopback

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"lookout/collectors/douyin/douyinpb"
)

// DouyinServer is a loopback Douyin live room. Like live.douyin.com it
// sets a ttwid cookie on GET /, serves the room page /<web_rid> (with the
// numeric roomId in its embedded JSON only when the ttwid cookie is sent),
// and accepts the webcast push WebSocket at /webcast/im/push/v2/ only when
// room_id, the ttwid cookie and the signature check out — HTTP 403
// otherwise. It then pushes PushFrames (payloadType "msg", gzip(Response)),
// and records every frame clients send (acks, heartbeats).
//
// The signature scheme is a test stand-in (Douyin's is not public):
// signature = hex(HMAC-SHA256(key, X-MS-STUB)), X-MS-STUB being the MD5 hex
// of the thirteen stub keys the signature covers. The server
// recomputes the stub from the query it receives.
type DouyinServer struct {
	PageBase string // http://127.0.0.1:port  (config page_base)
	WSBase   string // ws://127.0.0.1:port/webcast/im/push/v2/  (config ws_base)
	WebRID   string
	RoomID   uint64

	key    []byte
	ttwid  string
	srv    *httptest.Server
	frames *twitchRec[DouyinClientFrame]
	dials  *twitchRec[DouyinDial]

	mu    sync.Mutex
	conns map[*douyinLBConn]bool
	total int
	logID uint64
	seq   uint64
}

// DouyinClientFrame is one binary frame a client sent, decoded.
type DouyinClientFrame struct {
	Conn        int
	PayloadType string
	LogID       uint64
	Payload     []byte
	Raw         []byte
	Err         error // set when the frame was not a PushFrame
}

// DouyinDial is one push WebSocket attempt.
type DouyinDial struct {
	Conn     int // 0 when rejected
	Query    url.Values
	Cookie   string
	Rejected string // why it was refused, "" when accepted
}

type douyinLBConn struct {
	n   int
	ws  *websocket.Conn
	wmu sync.Mutex
}

// DouyinStubKeys are the query keys of the signature stub, in order.
var DouyinStubKeys = []string{
	"live_id", "aid", "version_code", "webcast_sdk_version", "room_id", "sub_room_id", "sub_channel_id",
	"did_rule", "user_unique_id", "device_platform", "device_type", "ac", "identity",
}

// DouyinSign is the loopback signature for a query.
func DouyinSign(key []byte, q url.Values) string {
	parts := make([]string, len(DouyinStubKeys))
	for i, k := range DouyinStubKeys {
		parts[i] = k + "=" + q.Get(k)
	}
	stub := md5.Sum([]byte(strings.Join(parts, ",")))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(hex.EncodeToString(stub[:])))
	return hex.EncodeToString(m.Sum(nil))
}

// NewDouyinServer starts a room; key is the signing key the collector's
// loopback_sign_key must match.
func NewDouyinServer(webRID string, roomID uint64, key []byte) *DouyinServer {
	s := &DouyinServer{
		WebRID: webRID, RoomID: roomID, key: key, ttwid: "1%7Cloopback-ttwid-" + webRID,
		frames: newTwitchRec[DouyinClientFrame](), dials: newTwitchRec[DouyinDial](),
		conns: map[*douyinLBConn]bool{}, logID: 7392091211001140000,
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "ttwid", Value: s.ttwid, Path: "/", HttpOnly: true})
		fmt.Fprint(w, "<!doctype html><title>抖音直播</title>")
	})
	mux.HandleFunc("GET /{rid}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("rid") != s.WebRID {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if ck, err := r.Cookie("ttwid"); err != nil || ck.Value != s.ttwid {
			fmt.Fprint(w, `<!doctype html><script>window.location.reload()</script>`)
			return
		}
		fmt.Fprintf(w, `<!doctype html><html><head><title>直播间</title></head><body><script nonce="x">self.__pace_f.push([1,"{\"state\":{\"roomStore\":{\"roomInfo\":{\"roomId\":\"%d\",\"web_rid\":\"%s\",\"room\":{\"status\":2}}}}}"])</script></body></html>`, s.RoomID, s.WebRID)
	})
	mux.HandleFunc("/webcast/im/push/v2/", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		d := DouyinDial{Query: q, Cookie: r.Header.Get("Cookie")}
		ck, _ := r.Cookie("ttwid")
		switch {
		case q.Get("room_id") != strconv.FormatUint(s.RoomID, 10):
			d.Rejected = "room_id"
		case ck == nil || ck.Value != s.ttwid:
			d.Rejected = "ttwid"
		case !hmac.Equal([]byte(q.Get("signature")), []byte(DouyinSign(s.signKey(), q))):
			d.Rejected = "signature"
		}
		if d.Rejected != "" {
			s.dials.add(d)
			http.Error(w, "forbidden: "+d.Rejected, http.StatusForbidden)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.total++
		c := &douyinLBConn{n: s.total, ws: ws}
		s.conns[c] = true
		s.mu.Unlock()
		d.Conn = c.n
		s.dials.add(d)
		s.serve(c)
	})
	s.srv = httptest.NewServer(mux)
	s.PageBase = s.srv.URL
	s.WSBase = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/webcast/im/push/v2/"
	return s
}

// SetKey changes the key signatures are checked against, as Douyin
// changing its signing scheme would: from then on every push URL signed
// with the old key is refused with 403.
func (s *DouyinServer) SetKey(key []byte) {
	s.mu.Lock()
	s.key = key
	s.mu.Unlock()
}

func (s *DouyinServer) signKey() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key
}

func (s *DouyinServer) serve(c *douyinLBConn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.ws.Close()
	}()
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		f := DouyinClientFrame{Conn: c.n, Raw: data}
		var pf douyinpb.PushFrame
		if typ != websocket.BinaryMessage {
			f.Err = fmt.Errorf("text frame")
		} else if err := proto.Unmarshal(data, &pf); err != nil {
			f.Err = err
		} else {
			f.PayloadType, f.LogID, f.Payload = pf.PayloadType, pf.LogId, pf.Payload
		}
		s.frames.add(f)
	}
}

func (c *douyinLBConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

// DouyinFrame builds a data PushFrame: gzip(Response{msgs, cursor,
// internalExt, needAck}) with the given logId.
func DouyinFrame(logID uint64, needAck bool, internalExt string, msgs ...*douyinpb.Message) []byte {
	resp := &douyinpb.Response{
		MessagesList: msgs, Cursor: fmt.Sprintf("t-%d", logID), FetchInterval: 1000,
		Now: uint64(time.Now().UnixMilli()), InternalExt: internalExt, NeedAck: needAck,
	}
	raw, err := proto.Marshal(resp)
	if err != nil {
		panic(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	b, err := proto.Marshal(&douyinpb.PushFrame{SeqId: logID % 1000, LogId: logID, PayloadEncoding: "gzip", PayloadType: "msg", Payload: gz.Bytes()})
	if err != nil {
		panic(err)
	}
	return b
}

// Push sends msgs in one data frame to every connection and returns the
// frame's logId and the internalExt an ack must echo.
func (s *DouyinServer) Push(needAck bool, msgs ...*douyinpb.Message) (logID uint64, internalExt string) {
	s.mu.Lock()
	s.logID++
	logID = s.logID
	s.mu.Unlock()
	internalExt = fmt.Sprintf("internal_src:dim|wss_push_room_id:%d|fetch_time:%d", s.RoomID, logID)
	s.PushRaw(DouyinFrame(logID, needAck, internalExt, msgs...))
	return logID, internalExt
}

// PushRaw sends one binary frame as is to every connection; it returns how
// many got it.
func (s *DouyinServer) PushRaw(frame []byte) int {
	n := 0
	for _, c := range s.snapshot() {
		if c.write(frame) == nil {
			n++
		}
	}
	return n
}

// End pushes WebcastControlMessage{status: 3}: the broadcast is over.
func (s *DouyinServer) End() { s.Push(false, DouyinControl(s.nextID(), 3)) }

func (s *DouyinServer) nextID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return 7400000000000000000 + s.seq
}

// Frames returns the frames clients sent so far.
func (s *DouyinServer) Frames() []DouyinClientFrame { return s.frames.all() }

// WaitFrame waits for a client frame from the from-th on that match accepts.
func (s *DouyinServer) WaitFrame(from int, timeout time.Duration, match func(DouyinClientFrame) bool) (DouyinClientFrame, bool) {
	f, _, ok := s.frames.wait(from, timeout, match)
	return f, ok
}

// Dials returns every push WebSocket attempt, accepted or not.
func (s *DouyinServer) Dials() []DouyinDial { return s.dials.all() }

// WaitDial waits for the from-th (0-based) push WebSocket attempt.
func (s *DouyinServer) WaitDial(from int, timeout time.Duration) (DouyinDial, bool) {
	d, _, ok := s.dials.wait(from, timeout, func(DouyinDial) bool { return true })
	return d, ok
}

// Open is how many push connections are open.
func (s *DouyinServer) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Drop closes every push connection.
func (s *DouyinServer) Drop() {
	for _, c := range s.snapshot() {
		_ = c.ws.Close()
	}
}

// Close stops the server.
func (s *DouyinServer) Close() {
	s.Drop()
	s.srv.Close()
}

func (s *DouyinServer) snapshot() []*douyinLBConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*douyinLBConn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// ---- message builders (synthetic content, real structure) ----

func douyinMsg(method string, m proto.Message) *douyinpb.Message {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return &douyinpb.Message{Method: method, Payload: b}
}

func douyinCommon(method string, msgID uint64) *douyinpb.Common {
	return &douyinpb.Common{Method: method, MsgId: msgID, RoomId: 7300000000000000000, CreateTime: uint64(time.Now().UnixMilli())}
}

// DouyinChat builds a WebcastChatMessage.
func DouyinChat(msgID, userID uint64, nick, text string) *douyinpb.Message {
	return douyinMsg("WebcastChatMessage", &douyinpb.ChatMessage{
		Common: douyinCommon("WebcastChatMessage", msgID), User: &douyinpb.User{Id: userID, NickName: nick},
		Content: text, EventTime: uint64(time.Now().Unix()),
	})
}

// DouyinMember builds a WebcastMemberMessage (a viewer entered).
func DouyinMember(msgID, userID uint64, nick string, memberCount uint64) *douyinpb.Message {
	return douyinMsg("WebcastMemberMessage", &douyinpb.MemberMessage{
		Common: douyinCommon("WebcastMemberMessage", msgID), User: &douyinpb.User{Id: userID, NickName: nick},
		MemberCount: memberCount, Action: 1,
	})
}

// DouyinLike builds a WebcastLikeMessage.
func DouyinLike(msgID, userID uint64, nick string, count, total uint64) *douyinpb.Message {
	return douyinMsg("WebcastLikeMessage", &douyinpb.LikeMessage{
		Common: douyinCommon("WebcastLikeMessage", msgID), User: &douyinpb.User{Id: userID, NickName: nick},
		Count: count, Total: total,
	})
}

// DouyinGift builds a WebcastGiftMessage; repeatEnd 1 closes a combo.
func DouyinGift(msgID, userID uint64, nick string, giftID uint64, giftName string, diamonds uint32, repeatCount uint64, repeatEnd uint32) *douyinpb.Message {
	return douyinMsg("WebcastGiftMessage", &douyinpb.GiftMessage{
		Common: douyinCommon("WebcastGiftMessage", msgID), GiftId: giftID, RepeatCount: repeatCount, ComboCount: repeatCount,
		User: &douyinpb.User{Id: userID, NickName: nick}, RepeatEnd: repeatEnd,
		Gift: &douyinpb.GiftStruct{Id: giftID, DiamondCount: diamonds, Name: giftName},
	})
}

// DouyinHiddenUserID is the id every viewer of a room that hides its
// audience arrives with (and a masked nickname such as "用***").
const DouyinHiddenUserID = 111111

// DouyinGiftInGroup is DouyinGift as a room sends it today: every message
// of one combo carries the combo's groupID, another viewer's combo another
// one. In a room with hidden viewers pass DouyinHiddenUserID.
func DouyinGiftInGroup(msgID, groupID, userID uint64, nick string, giftID uint64, giftName string, diamonds uint32, repeatCount uint64, repeatEnd uint32) *douyinpb.Message {
	return douyinMsg("WebcastGiftMessage", &douyinpb.GiftMessage{
		Common: douyinCommon("WebcastGiftMessage", msgID), GiftId: giftID, RepeatCount: repeatCount, ComboCount: repeatCount,
		User: &douyinpb.User{Id: userID, NickName: nick}, RepeatEnd: repeatEnd, GroupId: groupID,
		Gift: &douyinpb.GiftStruct{Id: giftID, DiamondCount: diamonds, Name: giftName},
	})
}

// DouyinEmojiChat builds a WebcastEmojiChatMessage: a chat line that is one
// sticker, its text form (such as "[怒]") in defaultContent and in the
// rich-text pattern.
func DouyinEmojiChat(msgID, userID uint64, nick string, emojiID int64, text string) *douyinpb.Message {
	return douyinMsg("WebcastEmojiChatMessage", &douyinpb.EmojiChatMessage{
		Common: douyinCommon("WebcastEmojiChatMessage", msgID), User: &douyinpb.User{Id: userID, NickName: nick},
		EmojiId: emojiID, DefaultContent: text,
		EmojiContent: &douyinpb.Text{Key: "emoji", DefaultPattern: text, PiecesList: []*douyinpb.TextPiece{{Type: 1, StringValue: text}}},
	})
}

// DouyinSocial builds a WebcastSocialMessage (action 1: follow).
func DouyinSocial(msgID, userID uint64, nick string, followCount uint64) *douyinpb.Message {
	return douyinMsg("WebcastSocialMessage", &douyinpb.SocialMessage{
		Common: douyinCommon("WebcastSocialMessage", msgID), User: &douyinpb.User{Id: userID, NickName: nick},
		Action: 1, FollowCount: followCount,
	})
}

// DouyinRoomUserSeq builds a WebcastRoomUserSeqMessage: viewers now and the
// cumulative display count such as "43.6万".
func DouyinRoomUserSeq(msgID uint64, viewers int64, cumulative string) *douyinpb.Message {
	return douyinMsg("WebcastRoomUserSeqMessage", &douyinpb.RoomUserSeqMessage{
		Common: douyinCommon("WebcastRoomUserSeqMessage", msgID), Total: viewers, TotalPvForAnchor: cumulative,
	})
}

// DouyinControl builds a WebcastControlMessage (status 3: ended).
func DouyinControl(msgID uint64, status int64) *douyinpb.Message {
	return douyinMsg("WebcastControlMessage", &douyinpb.ControlMessage{Common: douyinCommon("WebcastControlMessage", msgID), Status: status})
}
