package loopback

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/encoding/protowire"
)

// BilibiliServer is a loopback Bilibili live room: the HTTP bootstrap
// endpoints (get_info, nav with WBI keys, getbuvid, WBI-checked
// getDanmuInfo) and the danmaku WebSocket at /sub, speaking the real wire
// protocol (see docs/streams.md and the comments below). Its codec and WBI check are written
// independently of the collector's, so a shared misreading of the protocol
// cannot make both sides agree by accident.
type BilibiliServer struct {
	opts BilibiliServerOptions
	srv  *httptest.Server
	up   websocket.Upgrader
	log  *slog.Logger

	mu         sync.Mutex
	conns      map[*biliSrvConn]struct{}
	imgKey     string
	subKey     string
	token      string
	auths      int
	authFails  int
	heartbeats int
	requests   map[string]int
	cookies    map[string]string // last Cookie header per path
	lastAuth   BilibiliAuth
	changed    chan struct{} // closed and replaced on every connection change
	closed     bool
	down       bool // SetDown: every request answered 503, as an outage would
}

// BilibiliCompression selects how Push packs commands.
type BilibiliCompression int

const (
	BilibiliPushBrotli BilibiliCompression = iota // protover 3, what web clients get
	BilibiliPushZlib                              // protover 2
	BilibiliPushPlain                             // protover 0 packets, concatenated
)

// BilibiliServerOptions configures the room. Zero values get defaults.
type BilibiliServerOptions struct {
	RoomID      int64  // real (long) room id, default 21452505
	ShortID     int64  // optional short id that get_info resolves to RoomID
	StreamerUID int64  // default 1000
	Token       string // auth key handed out by getDanmuInfo
	Buvid       string // buvid handed out by getbuvid
	ImgKey      string // WBI img_key, default the published test vector's
	SubKey      string // WBI sub_key
	Compression BilibiliCompression
	LoginMid    int64         // when set, nav answers logged in with this uid to requests carrying SESSDATA
	Popularity  uint32        // op-3 heartbeat reply value, default 1
	AuthTimeout time.Duration // default 5s
	IdleTimeout time.Duration // drop a client silent this long, default 70s
	Log         *slog.Logger
}

type biliSrvConn struct {
	ws     *websocket.Conn
	wmu    sync.Mutex
	authed bool
}

func (c *biliSrvConn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.BinaryMessage, msg)
}

// NewBilibiliServer starts the room on 127.0.0.1.
func NewBilibiliServer(opts BilibiliServerOptions) *BilibiliServer {
	if opts.RoomID == 0 {
		opts.RoomID = 21452505
	}
	if opts.StreamerUID == 0 {
		opts.StreamerUID = 1000
	}
	if opts.Token == "" {
		opts.Token = "loopback-token-" + strconv.FormatInt(opts.RoomID, 10)
	}
	if opts.Buvid == "" {
		opts.Buvid = "LOOPBACK-0000-BUVID-infoc"
	}
	if opts.ImgKey == "" {
		opts.ImgKey = "7cd084941338484aae1ad9425b84077c"
	}
	if opts.SubKey == "" {
		opts.SubKey = "4932caff0ff746eab6f01bf08b70ac45"
	}
	if opts.Popularity == 0 {
		opts.Popularity = 1
	}
	if opts.AuthTimeout <= 0 {
		opts.AuthTimeout = 5 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 70 * time.Second
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &BilibiliServer{
		opts:     opts,
		log:      log,
		conns:    map[*biliSrvConn]struct{}{},
		imgKey:   opts.ImgKey,
		subKey:   opts.SubKey,
		token:    opts.Token,
		requests: map[string]int{},
		cookies:  map[string]string{},
		changed:  make(chan struct{}),
	}
	// The web client connects from the live site's origin.
	s.up.CheckOrigin = func(r *http.Request) bool {
		o := r.Header.Get("Origin")
		return o == "" || o == "https://live.bilibili.com"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/room/v1/Room/get_info", s.getInfo)
	mux.HandleFunc("/x/web-interface/nav", s.nav)
	mux.HandleFunc("/x/web-frontend/getbuvid", s.getBuvid)
	mux.HandleFunc("/xlive/web-room/v1/index/getDanmuInfo", s.getDanmuInfo)
	mux.HandleFunc("/sub", s.sub)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.URL.Path]++
		s.cookies[r.URL.Path] = r.Header.Get("Cookie")
		down := s.down
		s.mu.Unlock()
		if down {
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("loopback: bilibili listen: %v", err))
	}
	s.srv.Listener = l
	s.srv.Start()
	return s
}

// URL is the HTTP base for both api_base and nav_base.
func (s *BilibiliServer) URL() string { return s.srv.URL }

// WSURL is the danmaku endpoint, for the collector's hosts override.
func (s *BilibiliServer) WSURL() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/sub" }

// RoomID is the real room id.
func (s *BilibiliServer) RoomID() int64 { return s.opts.RoomID }

// Close drops every connection and stops the server.
func (s *BilibiliServer) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.DropConnections()
	s.srv.Close()
}

// --- HTTP bootstrap ----------------------------------------------------------

func biliSrvJSON(w http.ResponseWriter, code int, msg string, data any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "msg": msg, "ttl": 1, "data": data})
}

func (s *BilibiliServer) getInfo(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.URL.Query().Get("room_id"), 10, 64)
	if id == 0 || (id != s.opts.RoomID && id != s.opts.ShortID) {
		biliSrvJSON(w, 1, "未找到该房间", nil)
		return
	}
	biliSrvJSON(w, 0, "ok", map[string]any{
		"room_id": s.opts.RoomID, "short_id": s.opts.ShortID, "uid": s.opts.StreamerUID,
		"live_status": 1, "title": "loopback live room", "online": 0,
	})
}

func (s *BilibiliServer) nav(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	img, sub := s.imgKey, s.subKey
	s.mu.Unlock()
	if _, err := r.Cookie("SESSDATA"); err == nil && s.opts.LoginMid != 0 {
		biliSrvJSON(w, 0, "0", map[string]any{
			"isLogin": true, "mid": s.opts.LoginMid, "uname": "loopback user",
			"wbi_img": map[string]string{
				"img_url": "https://i0.hdslb.com/bfs/wbi/" + img + ".png",
				"sub_url": "https://i0.hdslb.com/bfs/wbi/" + sub + ".png",
			},
		})
		return
	}
	biliSrvJSON(w, -101, "账号未登录", map[string]any{
		"isLogin": false,
		"wbi_img": map[string]string{
			"img_url": "https://i0.hdslb.com/bfs/wbi/" + img + ".png",
			"sub_url": "https://i0.hdslb.com/bfs/wbi/" + sub + ".png",
		},
	})
}

func (s *BilibiliServer) getBuvid(w http.ResponseWriter, r *http.Request) {
	biliSrvJSON(w, 0, "0", map[string]string{"buvid": s.opts.Buvid})
}

func (s *BilibiliServer) getDanmuInfo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	img, sub, token := s.imgKey, s.subKey, s.token
	s.mu.Unlock()
	if !BiliWBIVerify(q, img, sub) {
		biliSrvJSON(w, -352, "-352", map[string]string{"v_voucher": "voucher_loopback"})
		return
	}
	if id, _ := strconv.ParseInt(q.Get("id"), 10, 64); id != s.opts.RoomID {
		biliSrvJSON(w, 1002002, "房间号错误", nil)
		return
	}
	host, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	biliSrvJSON(w, 0, "0", map[string]any{
		"group": "live", "business_id": 0, "refresh_row_factor": 0.125, "refresh_rate": 100, "max_delay": 5000,
		"token":     token,
		"host_list": []map[string]any{{"host": host, "port": p, "wss_port": p, "ws_port": p}},
	})
}

// --- WebSocket ----------------------------------------------------------------

// biliSrvPacket is one client packet.
type biliSrvPacket struct {
	ver  uint16
	op   uint32
	body []byte
}

// biliSrvSplit splits a client message into packets (clients never
// compress).
func biliSrvSplit(msg []byte) ([]biliSrvPacket, error) {
	var out []biliSrvPacket
	for len(msg) > 0 {
		if len(msg) < 16 {
			return out, fmt.Errorf("short header: %d bytes", len(msg))
		}
		n := int(binary.BigEndian.Uint32(msg))
		h := int(binary.BigEndian.Uint16(msg[4:]))
		if h != 16 || n < h || n > len(msg) {
			return out, fmt.Errorf("bad lengths: packet %d header %d available %d", n, h, len(msg))
		}
		out = append(out, biliSrvPacket{ver: binary.BigEndian.Uint16(msg[6:]), op: binary.BigEndian.Uint32(msg[8:]), body: msg[h:n]})
		msg = msg[n:]
	}
	return out, nil
}

// BilibiliPacket encodes one packet (16-byte header + body).
func BilibiliPacket(ver uint16, op, seq uint32, body []byte) []byte {
	b := make([]byte, 16, 16+len(body))
	binary.BigEndian.PutUint32(b, uint32(16+len(body)))
	binary.BigEndian.PutUint16(b[4:], 16)
	binary.BigEndian.PutUint16(b[6:], ver)
	binary.BigEndian.PutUint32(b[8:], op)
	binary.BigEndian.PutUint32(b[12:], seq)
	return append(b, body...)
}

// BilibiliFrame packs commands the way the server does: each as a ver-0
// op-5 packet, all of them in ONE compressed op-5 packet (brotli: ver 3,
// zlib: ver 2), or simply concatenated for plain.
func BilibiliFrame(c BilibiliCompression, cmds ...[]byte) []byte {
	var inner []byte
	for _, cmd := range cmds {
		inner = append(inner, BilibiliPacket(0, 5, 0, cmd)...)
	}
	var buf bytes.Buffer
	switch c {
	case BilibiliPushPlain:
		return inner
	case BilibiliPushZlib:
		zw := zlib.NewWriter(&buf)
		zw.Write(inner)
		zw.Close()
		return BilibiliPacket(2, 5, 0, buf.Bytes())
	default:
		bw := brotli.NewWriterLevel(&buf, 5)
		bw.Write(inner)
		bw.Close()
		return BilibiliPacket(3, 5, 0, buf.Bytes())
	}
}

func (s *BilibiliServer) sub(w http.ResponseWriter, r *http.Request) {
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &biliSrvConn{ws: ws}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer s.remove(c)

	// Auth must come first and within AuthTimeout.
	ws.SetReadDeadline(time.Now().Add(s.opts.AuthTimeout))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		s.log.Debug("bilibili loopback: no auth", "err", err)
		return
	}
	pkts, err := biliSrvSplit(msg)
	if err != nil || len(pkts) == 0 || pkts[0].op != 7 {
		s.log.Debug("bilibili loopback: first packet is not auth", "err", err)
		s.countAuthFail()
		return
	}
	var auth BilibiliAuth
	if err := json.Unmarshal(pkts[0].body, &auth); err != nil || auth.UID == nil || auth.RoomID != s.opts.RoomID ||
		(auth.Protover != 2 && auth.Protover != 3) {
		s.log.Debug("bilibili loopback: bad auth body", "err", err, "body", string(pkts[0].body))
		s.countAuthFail()
		return // the real server hangs up (or answers HTTP 403)
	}
	s.mu.Lock()
	s.lastAuth = auth
	s.mu.Unlock()
	s.mu.Lock()
	tokenOK := auth.Key == s.token
	s.mu.Unlock()
	if !tokenOK {
		s.countAuthFail()
		c.write(BilibiliPacket(1, 8, 1, []byte(`{"code":-101}`)))
		return
	}
	if err := c.write(BilibiliPacket(1, 8, 1, []byte(`{"code":0}`))); err != nil {
		return
	}
	s.mu.Lock()
	c.authed = true
	s.auths++
	s.notifyLocked()
	s.mu.Unlock()

	for {
		ws.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		pkts, err := biliSrvSplit(msg)
		if err != nil {
			s.log.Debug("bilibili loopback: bad client packet", "err", err)
			return
		}
		for _, p := range pkts {
			if p.op != 2 {
				continue
			}
			s.mu.Lock()
			s.heartbeats++
			s.mu.Unlock()
			// Like the real server: the length field covers the 4-byte
			// popularity only, the echoed heartbeat body trails it.
			reply := BilibiliPacket(1, 3, 1, binary.BigEndian.AppendUint32(nil, s.opts.Popularity))
			reply = append(reply, p.body...)
			if c.write(reply) != nil {
				return
			}
		}
	}
}

func (s *BilibiliServer) countAuthFail() {
	s.mu.Lock()
	s.authFails++
	s.mu.Unlock()
}

func (s *BilibiliServer) remove(c *biliSrvConn) {
	c.ws.Close()
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.notifyLocked()
	}
	s.mu.Unlock()
}

func (s *BilibiliServer) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *BilibiliServer) authed() []*biliSrvConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*biliSrvConn, 0, len(s.conns))
	for c := range s.conns {
		if c.authed {
			out = append(out, c)
		}
	}
	return out
}

// Push sends cmds (command JSON) to every authenticated client as one
// WebSocket message packed per Options.Compression, and returns how many
// clients it reached.
func (s *BilibiliServer) Push(cmds ...[]byte) int {
	if len(cmds) == 0 {
		return 0
	}
	return s.PushRaw(BilibiliFrame(s.opts.Compression, cmds...))
}

// PushRaw sends frame unchanged to every authenticated client.
func (s *BilibiliServer) PushRaw(frame []byte) int {
	n := 0
	for _, c := range s.authed() {
		if c.write(frame) == nil {
			n++
		}
	}
	return n
}

// DropConnections closes every WebSocket connection abruptly.
func (s *BilibiliServer) DropConnections() {
	s.mu.Lock()
	conns := make([]*biliSrvConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
		delete(s.conns, c)
	}
	if len(conns) > 0 {
		s.notifyLocked()
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.ws.NetConn().Close()
	}
}

// SetDown takes the whole room down (true: open connections are dropped
// and every request, the WebSocket upgrade included, is answered 503) or
// brings it back (false), as a server outage and its end would.
func (s *BilibiliServer) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
	if down {
		s.DropConnections()
	}
}

// Connections is the number of authenticated connections.
func (s *BilibiliServer) Connections() int { return len(s.authed()) }

// WaitConnected blocks until at least n clients are authenticated.
func (s *BilibiliServer) WaitConnected(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		have := 0
		for c := range s.conns {
			if c.authed {
				have++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bilibili loopback: %d of %d clients connected: %w", have, n, ctx.Err())
		case <-ch:
		}
	}
}

// BilibiliAuth is the op-7 body a client sent.
type BilibiliAuth struct {
	UID      *int64 `json:"uid"`
	RoomID   int64  `json:"roomid"`
	Protover int    `json:"protover"`
	Platform string `json:"platform"`
	Type     int    `json:"type"`
	Key      string `json:"key"`
	Buvid    string `json:"buvid"`
}

// LastAuth is the last well-formed auth body received.
func (s *BilibiliServer) LastAuth() BilibiliAuth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAuth
}

// LastCookie is the Cookie header of the last request to path.
func (s *BilibiliServer) LastCookie(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cookies[path]
}

// AuthCount is the number of successful auths so far.
func (s *BilibiliServer) AuthCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auths
}

// AuthFailures is the number of rejected auth attempts.
func (s *BilibiliServer) AuthFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authFails
}

// Heartbeats is the number of op-2 heartbeats received.
func (s *BilibiliServer) Heartbeats() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heartbeats
}

// Requests is the number of HTTP requests (incl. WS upgrades) to path.
func (s *BilibiliServer) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// SetWBIKeys rotates the WBI keys nav hands out; getDanmuInfo signed with
// the old ones gets -352 from now on.
func (s *BilibiliServer) SetWBIKeys(imgKey, subKey string) {
	s.mu.Lock()
	s.imgKey, s.subKey = imgKey, subKey
	s.mu.Unlock()
}

// SetToken changes the auth key; clients holding the old one get op 8
// code -101.
func (s *BilibiliServer) SetToken(token string) {
	s.mu.Lock()
	s.token = token
	s.mu.Unlock()
}

// --- realistic command JSON --------------------------------------------------

func biliSrvMarshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("loopback: marshal: %v", err))
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

type biliSrvCmd struct {
	Cmd  string `json:"cmd"`
	Info any    `json:"info,omitempty"`
	Data any    `json:"data,omitempty"`
	DmV2 string `json:"dm_v2,omitempty"`
}

func biliSrvCRC(uid int64) string {
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(strconv.FormatInt(uid, 10))))
}

// BilibiliDanmaku is a DANMU_MSG shaped like the web server's (19-entry
// info[0], extra as a JSON string, medal, level, dm_v2). The cmd carries
// the ":4:0:2:2:2:0" suffix real servers send. An empty idStr leaves
// id_str out, as older servers do.
func BilibiliDanmaku(uid int64, name, text string, ts time.Time, idStr string) []byte {
	ms := ts.UnixMilli()
	rnd := int64(int32(crc32.ChecksumIEEE([]byte(fmt.Sprintf("%d/%d/%s", ms, uid, text)))))
	extra := map[string]any{
		"send_from_me": false, "master_player_hidden": false, "mode": 0, "color": 16777215,
		"dm_type": 0, "font_size": 25, "player_mode": 1, "show_player_type": 0,
		"content": text, "user_hash": strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(strconv.FormatInt(uid, 10)))), 10),
		"emoticon_unique": "", "bulge_display": 0, "recommend_score": 3, "main_state_dm_color": "",
		"objective_state_dm_color": "", "direction": 0, "pk_direction": 0, "quartet_direction": 0,
		"anniversary_crowd": 0, "yeah_space_type": "", "yeah_space_url": "", "jump_to_url": "",
		"space_type": "", "space_url": "", "animation": map[string]any{}, "emots": nil, "is_audited": false,
		"reply_uname": "", "reply_mid": 0, "reply_is_mystery": false, "hit_combo": 0, "esports_jump_url": "",
	}
	if idStr != "" {
		extra["id_str"] = idStr
	}
	info0 := []any{
		0, 1, 25, 16777215, ms, rnd, 0, biliSrvCRC(uid), 0, 0, 0, "", 0, "{}", "{}",
		map[string]any{
			"mode": 0, "show_player_type": 0, "extra": string(biliSrvMarshal(extra)),
			"user": map[string]any{"uid": uid, "base": map[string]any{"name": name, "face": "https://i0.hdslb.com/bfs/face/member/noface.jpg", "name_color": 0, "is_mystery": false}, "medal": nil, "wealth": nil, "title": map[string]any{"old_title_css_id": "", "title_css_id": ""}, "guard": nil, "uhead_frame": nil, "guard_leader": map[string]any{"is_guard_leader": false}},
		},
		map[string]any{"activity_identity": "", "activity_source": 0, "not_show": 0},
		0,
	}
	info := []any{
		info0, text,
		[]any{uid, name, 0, 0, 0, 10000, 1, ""},
		[]any{21, "粉丝团", "主播", 21452505, 1725515, "", 0, 6809855, 1725515, 5414290, 0, 0, 12345},
		[]any{16, 0, 6406234, ">50000", 0},
		[]any{"", ""}, 0, 0, nil,
		map[string]any{"ts": ms / 1000, "ct": fmt.Sprintf("%08X", uint32(rnd))},
		0, 0, nil, nil, 0, 105, []any{12}, nil,
	}
	dmv2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte(text+name), 3))
	return biliSrvMarshal(biliSrvCmd{Cmd: "DANMU_MSG:4:0:2:2:2:0", Info: info, DmV2: dmv2})
}

func biliSrvGiftID(name string) int64 { return 30000 + int64(crc32.ChecksumIEEE([]byte(name))%1000) }

// BilibiliGift is a SEND_GIFT: num gifts worth priceGold each (1000 gold =
// 1 CNY; 0 makes a free silver gift).
func BilibiliGift(uid int64, name, giftName string, num int, priceGold int, ts time.Time) []byte {
	coin := "gold"
	if priceGold == 0 {
		coin = "silver"
	}
	tid := fmt.Sprintf("%d%06d", ts.Unix(), uid%1000000)
	return biliSrvMarshal(biliSrvCmd{Cmd: "SEND_GIFT", Data: map[string]any{
		"action": "投喂", "batch_combo_id": "", "batch_combo_send": nil, "beatId": "0", "biz_source": "Live",
		"blind_gift": nil, "broadcast_id": 0, "coin_type": coin, "combo_resources_id": 1, "combo_send": nil,
		"combo_stay_time": 5, "combo_total_coin": priceGold * num, "crit_prob": 0, "demarcation": 1,
		"discount_price": priceGold, "dmscore": 56, "draw": 0, "effect": 0, "effect_block": 1,
		"face": "https://i0.hdslb.com/bfs/face/member/noface.jpg", "giftId": biliSrvGiftID(giftName),
		"giftName": giftName, "giftType": 0, "gold": 0, "guard_level": 0, "is_first": true,
		"is_special_batch": 0, "magnification": 1, "medal_info": map[string]any{"anchor_roomid": 0, "anchor_uname": "", "medal_level": 0, "medal_name": "", "target_id": 0},
		"name_color": "", "num": num, "original_gift_name": "", "price": priceGold, "rcost": 200675,
		"remain": 0, "rnd": strconv.FormatInt(ts.UnixNano()/1000, 10), "send_master": nil, "silver": 0,
		"super": 0, "super_batch_gift_num": 0, "super_gift_num": 0, "svga_block": 0, "switch": true,
		"tag_image": "", "tid": tid, "timestamp": ts.Unix(), "top_list": nil, "total_coin": priceGold * num,
		"uid": uid, "uname": name,
	}})
}

// BilibiliGiftV2 is the SEND_GIFT_V2 form of BilibiliGift: data.pb is a
// base64 SendGiftBroadcast protobuf.
func BilibiliGiftV2(uid int64, name, giftName string, num int, priceGold int, ts time.Time) []byte {
	coin := "gold"
	if priceGold == 0 {
		coin = "silver"
	}
	var g []byte
	g = protowire.AppendTag(g, 1, protowire.VarintType)
	g = protowire.AppendVarint(g, uint64(biliSrvGiftID(giftName)))
	g = protowire.AppendTag(g, 2, protowire.BytesType)
	g = protowire.AppendString(g, giftName)
	g = protowire.AppendTag(g, 3, protowire.VarintType)
	g = protowire.AppendVarint(g, uint64(num))
	g = protowire.AppendTag(g, 5, protowire.VarintType)
	g = protowire.AppendVarint(g, uint64(priceGold))
	g = protowire.AppendTag(g, 7, protowire.VarintType)
	g = protowire.AppendVarint(g, uint64(priceGold*num))
	g = protowire.AppendTag(g, 8, protowire.BytesType)
	g = protowire.AppendString(g, coin)
	g = protowire.AppendTag(g, 9, protowire.BytesType)
	g = protowire.AppendString(g, fmt.Sprintf("%d%06d", ts.Unix(), uid%1000000))
	g = protowire.AppendTag(g, 10, protowire.VarintType)
	g = protowire.AppendVarint(g, uint64(ts.Unix()))
	var m []byte
	m = protowire.AppendTag(m, 1, protowire.VarintType)
	m = protowire.AppendVarint(m, uint64(uid))
	m = protowire.AppendTag(m, 2, protowire.BytesType)
	m = protowire.AppendString(m, name)
	m = protowire.AppendTag(m, 10, protowire.BytesType)
	m = protowire.AppendBytes(m, g)
	return biliSrvMarshal(biliSrvCmd{Cmd: "SEND_GIFT_V2", Data: map[string]any{"pb": base64.StdEncoding.EncodeToString(m)}})
}

// BilibiliSuperChat is a SUPER_CHAT_MESSAGE of priceCNY yuan.
func BilibiliSuperChat(id, uid int64, name, text string, priceCNY int, ts time.Time) []byte {
	return biliSrvMarshal(struct {
		Cmd    string         `json:"cmd"`
		Data   map[string]any `json:"data"`
		RoomID int64          `json:"roomid"`
	}{"SUPER_CHAT_MESSAGE", map[string]any{
		"background_bottom_color": "#2A60B2", "background_color": "#EDF5FF", "dmscore": 120,
		"end_time": ts.Unix() + 60, "gift": map[string]any{"gift_id": 12000, "gift_name": "醒目留言", "num": 1},
		"id": id, "is_ranked": 0, "message": text, "message_trans": "", "price": priceCNY, "rate": 1000,
		"start_time": ts.Unix(), "time": 60, "token": "A1B2C3D4", "ts": ts.Unix(), "uid": uid,
		"user_info": map[string]any{"face": "https://i0.hdslb.com/bfs/face/member/noface.jpg", "guard_level": 0, "is_main_vip": 0, "is_vip": 0, "level_color": "#969696", "manager": 0, "name_color": "#666666", "title": "0", "uname": name, "user_level": 12},
	}, 21452505})
}

// BilibiliInteract is an INTERACT_WORD: msgType 1 enter, 2 follow, 3 share.
func BilibiliInteract(uid int64, name string, msgType int, ts time.Time) []byte {
	return biliSrvMarshal(biliSrvCmd{Cmd: "INTERACT_WORD", Data: map[string]any{
		"contribution": map[string]any{"grade": 0}, "core_user_type": 0, "dmscore": 12,
		"fans_medal": map[string]any{"anchor_roomid": 0, "guard_level": 0, "icon_id": 0, "is_lighted": 0, "medal_color": 0, "medal_level": 0, "medal_name": "", "score": 0, "special": "", "target_id": 0},
		"identities": []int{1}, "is_spread": 0, "msg_type": msgType, "privilege_type": 0, "roomid": 21452505,
		"score": ts.UnixMilli(), "spread_desc": "", "spread_info": "", "tail_icon": 0,
		"timestamp": ts.Unix(), "trigger_time": ts.UnixNano(), "uid": uid, "uname": name, "uname_color": "",
	}})
}

// BilibiliOnlineRankCount is an ONLINE_RANK_COUNT; the high-energy count
// (data.count) equals online, as the real server reports both capped.
func BilibiliOnlineRankCount(online int) []byte {
	return biliSrvMarshal(biliSrvCmd{Cmd: "ONLINE_RANK_COUNT", Data: map[string]any{
		"count": online, "count_text": strconv.Itoa(online), "online_count": online, "online_count_text": strconv.Itoa(online),
	}})
}

// BilibiliWatched is a WATCHED_CHANGE with the cumulative watched count.
func BilibiliWatched(n int) []byte {
	return biliSrvMarshal(biliSrvCmd{Cmd: "WATCHED_CHANGE", Data: map[string]any{
		"num": n, "text_small": strconv.Itoa(n), "text_large": strconv.Itoa(n) + "人看过",
	}})
}

// BilibiliLike is a LIKE_INFO_V3_UPDATE with the room's total likes.
func BilibiliLike(clicks int) []byte {
	return biliSrvMarshal(biliSrvCmd{Cmd: "LIKE_INFO_V3_UPDATE", Data: map[string]any{"click_count": clicks}})
}

// BilibiliLive is a LIVE command: the room's stream started at start (the
// root's live_time, seconds). Like the real server it carries no data
// object; the server sends it more than once per start.
func BilibiliLive(roomID int64, start time.Time) []byte {
	return biliSrvMarshal(map[string]any{
		"cmd": "LIVE", "live_key": "382940138294032001", "voice_background": "", "sub_session_key": "382940138294032001sub_time:" + strconv.FormatInt(start.Unix(), 10),
		"live_platform": "pc_link", "live_model": 0, "live_time": start.Unix(), "roomid": roomID,
	})
}

// BilibiliPreparing is a PREPARING command: the stream ended (the room is
// back to "preparing"). Its roomid is a string, as the real server sends it.
func BilibiliPreparing(roomID int64) []byte {
	return biliSrvMarshal(map[string]any{"cmd": "PREPARING", "roomid": strconv.FormatInt(roomID, 10)})
}
