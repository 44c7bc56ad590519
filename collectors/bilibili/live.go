// Package bilibili collects from Bilibili: bilibili_live reads a live
// room's danmaku WebSocket (frames, command parsing, a fast scan for the
// common chat command, WBI signing of the bootstrap API) and
// bilibili_comments polls a video's comments.
package bilibili

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/encoding/protowire"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/item"
)

// bilibili_live: a Bilibili live room's danmaku stream (protocols.md §1).
// Bootstrap over HTTP (room id, buvid, WBI keys, token + hosts), then a
// WebSocket per attempt: auth (op 7), heartbeats (op 2), commands (op 5).

const (
	biliDefaultAPIBase   = "https://api.live.bilibili.com"
	biliDefaultNavBase   = "https://api.bilibili.com"
	biliDefaultHeartbeat = 30 * time.Second
	biliAuthTimeout      = 5 * time.Second
	biliWriteTimeout     = 10 * time.Second
	biliMaxUnknownCmds   = 256 // distinct unknown cmds tracked per source
	biliPlatform         = "bilibili"
)

// biliLiveSpec is the kind-specific config.
type biliLiveSpec struct {
	Room      int64           `yaml:"room"`      // short or long room id
	APIBase   string          `yaml:"api_base"`  // live API, default https://api.live.bilibili.com
	NavBase   string          `yaml:"nav_base"`  // main API (nav/WBI keys, buvid), default https://api.bilibili.com
	Hosts     []string        `yaml:"hosts"`     // ws(s)://host:port/sub overrides for host_list
	Cookie    config.Secret   `yaml:"cookie"`    // e.g. "SESSDATA=…; bili_jct=…"
	UID       int64           `yaml:"uid"`       // account uid matching the cookie; 0 = guest
	Heartbeat config.Duration `yaml:"heartbeat"` // default 30s
}

type biliLive struct {
	src    config.SourceConfig
	spec   biliLiveSpec
	env    collectors.Env
	http   *httpx.Client
	dialer websocket.Dialer
	wbi    *WBI
	log    *slog.Logger

	// Touched only by the Run goroutine.
	dec         Decoder
	arena       biliArena
	navMid      int64 // account uid nav reported for the cookie (set while fetching WBI keys)
	unknownSeen map[string]bool
	items       []item.Item
}

// NewLive builds a bilibili_live source (a collectors.Factory).
func NewLive(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec biliLiveSpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	if spec.Room <= 0 {
		return nil, fmt.Errorf("room: required, a positive Bilibili room id (short or long)")
	}
	if spec.APIBase == "" {
		spec.APIBase = biliDefaultAPIBase
	}
	if spec.NavBase == "" {
		spec.NavBase = biliDefaultNavBase
	}
	for name, base := range map[string]*string{"api_base": &spec.APIBase, "nav_base": &spec.NavBase} {
		u, err := url.Parse(*base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: %q is not an http(s) URL", name, *base)
		}
		*base = strings.TrimRight(*base, "/")
	}
	for i, h := range spec.Hosts {
		u, err := url.Parse(h)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return nil, fmt.Errorf("hosts[%d]: %q is not a ws:// or wss:// URL", i, h)
		}
	}
	if spec.Cookie.Missing() {
		return nil, fmt.Errorf("cookie: environment variable %s is empty", spec.Cookie.Var)
	}
	if spec.UID < 0 {
		return nil, fmt.Errorf("uid: must not be negative")
	}
	if spec.Heartbeat == 0 {
		spec.Heartbeat = config.Duration(biliDefaultHeartbeat)
	}
	hc, err := env.HTTP.ForSource(src)
	if err != nil {
		return nil, err
	}
	c := &biliLive{
		src:         src,
		spec:        spec,
		env:         env,
		http:        hc,
		log:         env.Log,
		unknownSeen: map[string]bool{},
		dialer:      websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 16 << 10, WriteBufferSize: 4 << 10},
	}
	if src.Proxy != "" {
		pu, _ := url.Parse(src.Proxy) // validated by ForSource
		c.dialer.Proxy = http.ProxyURL(pu)
	}
	c.wbi = &WBI{Fetch: c.fetchWBIKeys, Clock: env.Clock}
	return c, nil
}

// biliAPIError is a Bilibili JSON answer with a non-zero code.
type biliAPIError struct {
	api  string
	code int
	msg  string
}

func (e *biliAPIError) Error() string {
	return fmt.Sprintf("bilibili %s: code %d: %s", e.api, e.code, e.msg)
}

// biliAuthError is an op-8 reply with a non-zero code (-101: bad token).
type biliAuthError struct{ code int }

func (e *biliAuthError) Error() string { return fmt.Sprintf("bilibili auth rejected: code %d", e.code) }

// biliBoot is what one bootstrap learns.
type biliBoot struct {
	roomID int64
	uid    int64
	buvid  string
	token  string
	hosts  []string // ws URLs
	next   int      // index of the host to try next
}

// Run connects, reads and reconnects until ctx is done.
func (c *biliLive) Run(ctx context.Context, emit collectors.Emit) error {
	backoff := stream.NewBackoff(c.src.ID)
	// last is the latest bootstrap whose token the server has not
	// refused: while the HTTP API is down (or its host's circuit breaker
	// still fails fast after an outage) the danmaku hosts are dialled
	// with it, so the stream is back as soon as they are.
	var boot, last *biliBoot
	fails := 0
	for ctx.Err() == nil {
		if boot == nil {
			b, err := c.bootstrap(ctx)
			switch {
			case err == nil:
				boot, last = b, b
			case ctx.Err() != nil:
				return nil
			case last != nil:
				c.env.Metrics.Errors.WithLabelValues(c.src.ID, "bootstrap").Inc()
				c.log.Warn("bilibili bootstrap failed; dialling with the previous token", "room", c.spec.Room, "err", err)
				boot = last
			default:
				c.env.Metrics.Errors.WithLabelValues(c.src.ID, "bootstrap").Inc()
				reason, permanent := collectors.HealthReason(err)
				if reason == "disconnected" {
					reason = "bootstrap"
				}
				c.env.Health.Failed(reason, err, permanent)
				d := httpx.RetryDelay(err, backoff)
				c.log.Warn("bilibili bootstrap failed", "room", c.spec.Room, "err", err, "retry_in", d)
				if httpx.Sleep(ctx, c.env.Clock, d) != nil {
					return nil
				}
				continue
			}
		}
		wsURL := boot.hosts[boot.next%len(boot.hosts)]
		authed, err := c.session(ctx, boot, wsURL, emit)
		if ctx.Err() != nil {
			return nil
		}
		c.env.Metrics.Reconnects.WithLabelValues(c.src.ID).Inc()
		c.env.Health.StreamEnded(err)
		if authed {
			backoff.Reset()
			fails = 0
		} else {
			fails++
			boot.next++
		}
		var ae *biliAuthError
		refused := errors.As(err, &ae)
		rebootstrap := refused || (fails > 0 && fails%max(3, len(boot.hosts)) == 0)
		if refused {
			last = nil // its token is no good any more
		}
		if rebootstrap {
			boot = nil
		}
		d := backoff.Next()
		c.log.Warn("bilibili connection ended", "room", c.spec.Room, "url", wsURL, "err", err, "authed", authed,
			"failures", fails, "rebootstrap", rebootstrap, "retry_in", d)
		if httpx.Sleep(ctx, c.env.Clock, d) != nil {
			return nil
		}
	}
	return nil
}

// --- bootstrap over HTTP ---------------------------------------------------

func (c *biliLive) bootstrap(ctx context.Context) (*biliBoot, error) {
	b := &biliBoot{uid: c.spec.UID}
	// a. real room id
	var info struct {
		RoomID int64 `json:"room_id"`
		UID    int64 `json:"uid"`
	}
	q := url.Values{"room_id": {strconv.FormatInt(c.spec.Room, 10)}}
	if err := c.getJSON(ctx, "get_info", c.spec.APIBase+"/room/v1/Room/get_info?"+q.Encode(), "", &info); err != nil {
		return nil, err
	}
	if info.RoomID <= 0 {
		return nil, &biliAPIError{api: "get_info", msg: "no room_id in answer"}
	}
	b.roomID = info.RoomID
	// b. buvid3 cookie: optional, the server degrades without it.
	var bv struct {
		Buvid string `json:"buvid"`
	}
	if err := c.getJSON(ctx, "getbuvid", c.spec.NavBase+"/x/web-frontend/getbuvid", "", &bv); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.log.Debug("bilibili buvid unavailable, continuing without", "err", err)
	}
	b.buvid = bv.Buvid
	// c. token and hosts, WBI-signed; -352 means our keys are stale.
	var dm struct {
		Token    string `json:"token"`
		HostList []struct {
			Host    string `json:"host"`
			WSSPort int    `json:"wss_port"`
		} `json:"host_list"`
	}
	params := url.Values{"id": {strconv.FormatInt(b.roomID, 10)}, "type": {"0"}}
	for attempt := 0; ; attempt++ {
		signed, err := c.wbi.Sign(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("wbi keys: %w", err)
		}
		err = c.getJSON(ctx, "getDanmuInfo", c.spec.APIBase+"/xlive/web-room/v1/index/getDanmuInfo?"+signed, b.buvid, &dm)
		var ae *biliAPIError
		if errors.As(err, &ae) && ae.code == -352 && attempt == 0 {
			c.env.Metrics.Errors.WithLabelValues(c.src.ID, "wbi").Inc()
			c.log.Info("bilibili WBI signature rejected, refreshing keys")
			c.wbi.Invalidate()
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	b.token = dm.Token
	if b.uid == 0 && c.navMid > 0 {
		// The token is bound to the cookie's account; auth with another
		// uid (or 0 while logged in) gets the connection dropped.
		b.uid = c.navMid
	}
	if len(c.spec.Hosts) > 0 {
		b.hosts = c.spec.Hosts
	} else {
		for _, h := range dm.HostList {
			if h.Host == "" {
				continue
			}
			port := h.WSSPort
			if port == 0 {
				port = 443
			}
			b.hosts = append(b.hosts, fmt.Sprintf("wss://%s:%d/sub", h.Host, port))
		}
	}
	if len(b.hosts) == 0 {
		// blivedm's fallback server; without a token the room is masked.
		b.hosts = []string{"wss://broadcastlv.chat.bilibili.com:443/sub"}
	}
	return b, nil
}

func (c *biliLive) fetchWBIKeys(ctx context.Context) (string, string, error) {
	var nav struct {
		IsLogin bool  `json:"isLogin"`
		Mid     int64 `json:"mid"`
		WbiImg  struct {
			ImgURL string `json:"img_url"`
			SubURL string `json:"sub_url"`
		} `json:"wbi_img"`
	}
	err := c.getJSON(ctx, "nav", c.spec.NavBase+"/x/web-interface/nav", "", &nav)
	var ae *biliAPIError
	if errors.As(err, &ae) && ae.code == -101 {
		err = nil // not logged in: the answer still carries the keys
	}
	if err != nil {
		return "", "", err
	}
	if nav.IsLogin && nav.Mid > 0 {
		c.navMid = nav.Mid
	}
	img, sub := WBIKeyFromURL(nav.WbiImg.ImgURL), WBIKeyFromURL(nav.WbiImg.SubURL)
	if img == "" || sub == "" {
		return "", "", &biliAPIError{api: "nav", msg: "no wbi_img keys in answer"}
	}
	return img, sub, nil
}

// getJSON fetches a Bilibili {code, message, data} answer and decodes data
// into v. A non-zero code is a *biliAPIError; data is still decoded.
func (c *biliLive) getJSON(ctx context.Context, api, rawURL, buvid string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("bilibili %s: %w", api, err)
	}
	req.Header.Set("Referer", "https://live.bilibili.com/")
	if ck := c.cookieHeader(buvid); ck != "" {
		req.Header.Set("Cookie", ck)
	}
	resp, err := c.http.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("bilibili %s: %w", api, err)
	}
	if err := httpx.CheckStatus(resp, c.env.Clock.Now()); err != nil {
		return fmt.Errorf("bilibili %s: %w", api, err)
	}
	defer resp.Body.Close()
	var env struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Msg     string          `json:"msg"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&env); err != nil {
		return fmt.Errorf("bilibili %s: decode answer: %w", api, err)
	}
	if len(env.Data) > 0 && string(env.Data) != "null" {
		if err := json.Unmarshal(env.Data, v); err != nil && env.Code == 0 {
			return fmt.Errorf("bilibili %s: decode data: %w", api, err)
		}
	}
	if env.Code != 0 {
		msg := env.Message
		if msg == "" {
			msg = env.Msg
		}
		return &biliAPIError{api: api, code: env.Code, msg: msg}
	}
	return nil
}

func (c *biliLive) cookieHeader(buvid string) string {
	var parts []string
	if buvid != "" {
		parts = append(parts, "buvid3="+buvid)
	}
	if v := strings.TrimSpace(c.spec.Cookie.Value()); v != "" {
		parts = append(parts, v)
	}
	return strings.Join(parts, "; ")
}

// --- one WebSocket session ---------------------------------------------------

// session dials one host, authenticates and reads until the connection
// fails or ctx is done. authed reports whether op 8 code 0 was received.
func (c *biliLive) session(ctx context.Context, boot *biliBoot, wsURL string, emit collectors.Emit) (authed bool, err error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return false, fmt.Errorf("ws url %q: %w", wsURL, err)
	}
	release, err := c.http.Wait(ctx, u.Host)
	if err != nil {
		return false, err
	}
	hdr := http.Header{}
	hdr.Set("User-Agent", c.http.UserAgent())
	hdr.Set("Origin", "https://live.bilibili.com")
	if ck := c.cookieHeader(boot.buvid); ck != "" {
		hdr.Set("Cookie", ck)
	}
	conn, resp, err := c.dialer.DialContext(ctx, wsURL, hdr)
	release()
	status := 0
	if resp != nil {
		status = resp.StatusCode
		if resp.Body != nil {
			resp.Body.Close()
		}
	}
	if err != nil {
		c.env.Metrics.Errors.WithLabelValues(c.src.ID, "dial").Inc()
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			return false, collectors.WithReason("auth", true, fmt.Errorf("dial %s: HTTP %d: %w", wsURL, status, err))
		}
		if status != 0 {
			return false, fmt.Errorf("dial %s: HTTP %d: %w", wsURL, status, err)
		}
		return false, fmt.Errorf("dial %s: %w", wsURL, err)
	}
	// Closing the conn is how every blocked read or write is interrupted:
	// on ctx done, on a heartbeat failure and on return.
	var hbWG sync.WaitGroup
	hbCtx, hbCancel := context.WithCancel(ctx)
	stopAfter := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stopAfter()
		hbCancel()
		conn.Close()
		hbWG.Wait()
	}()
	conn.SetReadLimit(stream.MaxFrame)

	auth := biliAuthBody(boot.uid, boot.roomID, boot.buvid, boot.token)
	conn.SetWriteDeadline(time.Now().Add(biliWriteTimeout))
	if err := conn.WriteMessage(websocket.BinaryMessage, AppendBilibiliPacket(nil, VerInt, OpAuth, 1, auth)); err != nil {
		c.env.Metrics.Errors.WithLabelValues(c.src.ID, "auth").Inc()
		return false, fmt.Errorf("send auth: %w", err)
	}

	room := strconv.FormatInt(boot.roomID, 10)
	readTimeout := c.spec.Heartbeat.D() + 5*time.Second
	conn.SetReadDeadline(time.Now().Add(biliAuthTimeout))
	handle := func(p Packet) error {
		switch p.Op {
		case OpAuthReply:
			code, ok := biliAuthCode(p.Body)
			if !ok || code != 0 {
				return &biliAuthError{code: code}
			}
			if !authed {
				authed = true
				c.env.Health.Succeeded() // the room took our token
				conn.SetReadDeadline(time.Now().Add(readTimeout))
				hbWG.Go(func() { c.heartbeat(hbCtx, conn) })
			}
			return nil
		case OpHeartbeatReply:
			pop, _ := p.Popularity()
			now := c.env.Clock.Now()
			it := biliMetric(room, item.MetricPopularity, float64(pop), now, nil)
			return c.emit(ctx, emit, it)
		case OpMessage:
			return c.handleCommand(ctx, emit, room, p.Body)
		}
		return nil
	}
	for {
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return authed, ctx.Err()
			}
			reason := "read"
			if !authed {
				reason = "auth"
			}
			c.env.Metrics.Errors.WithLabelValues(c.src.ID, reason).Inc()
			return authed, fmt.Errorf("read: %w", err)
		}
		if authed {
			conn.SetReadDeadline(time.Now().Add(readTimeout))
		}
		if mt != websocket.BinaryMessage {
			c.env.Metrics.Errors.WithLabelValues(c.src.ID, "decode").Inc()
			c.env.Health.Unusable("decode", errors.New("text frame on the binary danmaku stream"))
			continue
		}
		err = c.dec.Decode(msg, handle)
		var ae *biliAuthError
		switch {
		case err == nil:
		case errors.As(err, &ae):
			c.env.Metrics.Errors.WithLabelValues(c.src.ID, "auth").Inc()
			// Not permanent: a stale token is the usual cause, and the
			// next bootstrap fetches a new one.
			return false, collectors.WithReason("auth", false, err)
		case ctx.Err() != nil:
			return authed, ctx.Err()
		case errors.Is(err, ErrBilibiliTruncated), errors.Is(err, ErrBilibiliBadHeader), errors.Is(err, ErrBilibiliTooDeep),
			errors.Is(err, ErrBilibiliTooLarge), errors.Is(err, ErrBilibiliDecompress):
			// The rest of this message is lost; the stream itself is fine.
			c.env.Metrics.Errors.WithLabelValues(c.src.ID, "decode").Inc()
			c.log.Warn("bilibili frame decode failed", "room", room, "err", err, "bytes", len(msg))
			c.env.Health.Unusable("decode", err)
		default:
			return authed, err
		}
	}
}

func (c *biliLive) heartbeat(ctx context.Context, conn *websocket.Conn) {
	pkt := AppendBilibiliPacket(nil, VerInt, OpHeartbeat, 1, []byte("{}"))
	t := time.NewTicker(c.spec.Heartbeat.D())
	defer t.Stop()
	for {
		conn.SetWriteDeadline(time.Now().Add(biliWriteTimeout))
		if err := conn.WriteMessage(websocket.BinaryMessage, pkt); err != nil {
			if ctx.Err() == nil {
				c.log.Debug("bilibili heartbeat failed", "err", err)
				conn.Close() // wakes the reader, which reconnects
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *biliLive) handleCommand(ctx context.Context, emit collectors.Emit, room string, body []byte) error {
	var (
		cmd   string
		known bool
		err   error
	)
	c.items, cmd, known, err = biliParseCommand(c.items[:0], body, room, c.env.Clock.Now(), c.arena.copy)
	if err != nil {
		c.env.Metrics.Errors.WithLabelValues(c.src.ID, "decode").Inc()
		c.log.Warn("bilibili command not understood", "room", room, "cmd", cmd, "err", err)
		c.env.Health.Unusable("decode", err)
		return nil
	}
	if !known {
		label := cmd
		if !c.unknownSeen[cmd] {
			if len(c.unknownSeen) < biliMaxUnknownCmds {
				c.unknownSeen[cmd] = true
				c.log.Debug("bilibili unknown cmd ignored", "room", room, "cmd", cmd)
			} else {
				label = "(other)"
			}
		}
		c.env.Metrics.Unknown.WithLabelValues(c.src.ID, label).Inc()
		return nil
	}
	for i := range c.items {
		if err := c.emit(ctx, emit, c.items[i]); err != nil {
			return err
		}
	}
	return nil
}

func (c *biliLive) emit(ctx context.Context, emit collectors.Emit, it item.Item) error {
	it.Source = c.src.ID
	if len(c.src.Labels) > 0 {
		it.Labels = c.src.Labels
	}
	stream.CapItem(c.env, c.src.ID, &it, len(it.Raw))
	if err := emit(ctx, it); err != nil {
		return err
	}
	c.env.Metrics.Items.WithLabelValues(c.src.ID, string(it.Kind)).Inc()
	return nil
}

// biliAuthBody is the op-7 JSON, fields in the web client's order.
func biliAuthBody(uid, roomID int64, buvid, token string) []byte {
	b, _ := json.Marshal(struct {
		UID      int64  `json:"uid"`
		RoomID   int64  `json:"roomid"`
		Protover int    `json:"protover"`
		Platform string `json:"platform"`
		Type     int    `json:"type"`
		Buvid    string `json:"buvid"`
		Key      string `json:"key"`
	}{uid, roomID, VerBrotli, "web", 2, buvid, token})
	return b
}

func biliAuthCode(body []byte) (int, bool) {
	var r struct {
		Code *int `json:"code"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Code == nil {
		return 0, false
	}
	return *r.Code, true
}

// --- command parsing ---------------------------------------------------------

// ParseCommand turns one op-5 command body into items appended to
// dst (Platform and Room set, Source left to the caller). cmd is the
// command name without its ":…" suffix; known is false for commands the
// collector does not map (dst unchanged). now stamps items whose payload
// carries no time. Every item's Raw is one copy of body.
func ParseCommand(dst []item.Item, body []byte, room string, now time.Time) (out []item.Item, cmd string, known bool, err error) {
	return biliParseCommand(dst, body, room, now, bytes.Clone)
}

// biliArena hands out copies of command bodies from shared chunks, so a
// busy stream pays one allocation per ~32 KiB instead of one per message.
// A chunk lives as long as any item whose Raw points into it.
type biliArena struct{ buf []byte }

// biliArenaChunk stays just under 32 KiB: a small-object size class, so
// a new chunk comes from the per-P cache, not the large-object path.
const biliArenaChunk = 32<<10 - 64

func (a *biliArena) copy(b []byte) []byte {
	if cap(a.buf)-len(a.buf) < len(b) {
		if len(b) > biliArenaChunk/4 {
			return bytes.Clone(b) // big ones get their own allocation
		}
		a.buf = make([]byte, 0, biliArenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start:len(a.buf):len(a.buf)] // capped: appending to Raw cannot spill into a neighbour
}

// biliParseCommand is ParseCommand with the copy of body (for Raw)
// made by clone.
func biliParseCommand(dst []item.Item, body []byte, room string, now time.Time, clone func([]byte) []byte) (out []item.Item, cmd string, known bool, err error) {
	it, ok := biliIterate(body[biliWS(body, 0):])
	if !ok || !it.obj {
		return dst, "", false, errors.New("command is not a JSON object")
	}
	// One pass: DANMU_MSG (cmd first, then info, as the server sends it)
	// is parsed in place, and the walk stops once the payload is found.
	var (
		info, data []byte
		haveCmd    bool
		parsed     bool
		n          = len(dst)
	)
	for !parsed {
		k, more := it.advance()
		if !more {
			break
		}
		switch string(k) {
		case "cmd":
			cmd, ok = biliCmdName(it.skip())
			if !ok {
				return dst, "", false, errors.New(`command's "cmd" is not a string`)
			}
			haveCmd = true
			parsed = data != nil && !biliIsDanmaku(cmd)
		case "info":
			if haveCmd && biliIsDanmaku(cmd) {
				sub, ok := it.enter()
				if !ok || sub.obj {
					return dst[:n], cmd, true, fmt.Errorf("%s: info is not an array", cmd)
				}
				// The rest of info (medal, level, …) is not read: the
				// walk ends here either way.
				dst, err = biliParseDanmakuIter(dst, &sub, room, now)
				if err != nil {
					return dst[:n], cmd, true, fmt.Errorf("%s: %w", cmd, err)
				}
				parsed = true
			} else {
				info = it.skip()
			}
		case "data":
			data = it.skip()
			parsed = haveCmd && !biliIsDanmaku(cmd)
		default:
			it.skip()
		}
	}
	if it.bad && !parsed {
		return dst[:n], "", false, errors.New("malformed command JSON")
	}
	if !haveCmd {
		return dst, "", false, errors.New(`command has no "cmd" string`)
	}
	if len(dst) > n { // DANMU_MSG parsed in place
		raw := clone(body)
		dst[n].Raw = raw
		return dst, cmd, true, nil
	}
	switch cmd {
	case "DANMU_MSG", "DANMU_MSG_MIRROR":
		dst, err = biliParseDanmaku(dst, info, room, now)
	case "SEND_GIFT":
		dst, err = biliParseGift(dst, data, room, now)
	case "SEND_GIFT_V2":
		dst, err = biliParseGiftV2(dst, data, room, now)
	case "SUPER_CHAT_MESSAGE":
		dst, err = biliParseSuperChat(dst, data, room, now)
	case "INTERACT_WORD":
		dst, err = biliParseInteract(dst, data, room, now)
	case "INTERACT_WORD_V2":
		dst, err = biliParseInteractV2(dst, data, room, now)
	case "LIKE_INFO_V3_CLICK":
		dst, err = biliParseLikeClick(dst, data, room, now)
	case "WATCHED_CHANGE", "ONLINE_RANK_COUNT", "LIKE_INFO_V3_UPDATE":
		dst, err = biliParseMetrics(dst, cmd, data, room, now)
	case "LIVE", "PREPARING":
		dst, err = biliParseLiveStatus(dst, cmd, body, room, now)
	default:
		return dst, cmd, false, nil
	}
	if err != nil {
		return dst[:n], cmd, true, fmt.Errorf("%s: %w", cmd, err)
	}
	if len(dst) > n {
		raw := clone(body)
		for i := n; i < len(dst); i++ {
			dst[i].Raw = raw
		}
	}
	return dst, cmd, true, nil
}

func biliMetric(room, name string, v float64, now time.Time, raw []byte) item.Item {
	// The payload carries no time or id: received time and value identify
	// the sample (identical samples in the same millisecond are one).
	id := make([]byte, 0, 48)
	id = append(id, name...)
	id = append(id, ':')
	id = strconv.AppendInt(id, now.UnixMilli(), 10)
	id = append(id, ':')
	id = strconv.AppendFloat(id, v, 'g', -1, 64)
	return item.Item{Platform: biliPlatform, Kind: item.KindMetric, Room: room, ID: string(id), TS: now, Metric: name, Value: v, Raw: raw}
}

// biliParseLiveStatus maps the stream-state commands to
// item.MetricLiveStatus: LIVE (the stream started; 1) and PREPARING (it
// ended; 0). Both carry their fields at the root, not in data. LIVE's
// live_time (seconds) is when the stream started, and the server sends LIVE
// more than once per start: with live_time the repeats share one id.
func biliParseLiveStatus(dst []item.Item, cmd string, body []byte, room string, now time.Time) ([]item.Item, error) {
	var c struct {
		LiveTime biliFlex `json:"live_time"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return dst, fmt.Errorf("command: %w", err)
	}
	if cmd == "PREPARING" {
		return append(dst, biliMetric(room, item.MetricLiveStatus, 0, now, nil)), nil
	}
	it := biliMetric(room, item.MetricLiveStatus, 1, now, nil)
	if t := c.LiveTime.int(); t > 0 && t < 1<<40 {
		it.TS = time.Unix(t, 0)
		it.ID = item.MetricLiveStatus + ":1:" + strconv.FormatInt(t, 10)
	}
	return append(dst, it), nil
}

// biliParseDanmaku reads DANMU_MSG's info array without a generic JSON
// decode: this is the hot path (thousands per second in a busy room).
func biliIsDanmaku(cmd string) bool { return cmd == "DANMU_MSG" || cmd == "DANMU_MSG_MIRROR" }

// biliParseDanmaku parses DANMU_MSG from its raw info array.
func biliParseDanmaku(dst []item.Item, info []byte, room string, now time.Time) ([]item.Item, error) {
	it, ok := biliIterate(info)
	if !ok || it.obj {
		return dst, errors.New("info is not an array")
	}
	return biliParseDanmakuIter(dst, &it, room, now)
}

// biliParseDanmakuIter reads DANMU_MSG's info array in one pass without a
// generic JSON decode: this is the hot path (thousands per second in a
// busy room). info is positioned inside the array.
func biliParseDanmakuIter(dst []item.Item, info *biliIter, room string, now time.Time) ([]item.Item, error) {
	var (
		tsMS         int64
		rnd, crc     []byte
		extra        []byte
		text, uidRaw []byte
		nameRaw      []byte
		uid          int64
		haveText     bool
	)
	// info[0]: metadata
	if _, ok := info.advance(); !ok {
		return dst, errors.New("info is empty")
	}
	meta, ok := info.enter()
	if !ok || meta.obj {
		return dst, errors.New("info[0] is not an array")
	}
	for i := 0; i <= 15; i++ {
		if _, ok := meta.advance(); !ok {
			break
		}
		switch i {
		case 4:
			tsMS, _ = biliInt(meta.skip())
		case 5:
			rnd = meta.skip()
		case 7:
			crc = meta.skip()
		case 15:
			obj, ok := meta.enter()
			if !ok || !obj.obj {
				meta.skip()
				break
			}
			for {
				k, ok := obj.advance()
				if !ok {
					break
				}
				v := obj.skip()
				if string(k) == "extra" {
					extra = v
					break
				}
			}
			meta.leave(&obj)
		default:
			meta.skip()
		}
	}
	info.leave(&meta)
	// info[1]: text
	if _, ok := info.advance(); ok {
		text, haveText = info.skip(), true
	}
	// info[2]: [uid, name, …]
	if _, ok := info.advance(); ok {
		if user, ok := info.enter(); ok && !user.obj {
			if _, ok := user.advance(); ok {
				uidRaw = user.skip()
				if _, ok := user.advance(); ok {
					nameRaw = user.skip()
				}
			}
			info.leave(&user)
		} else {
			info.skip()
		}
	}
	if info.bad {
		return dst, errors.New("malformed info array")
	}
	if !haveText {
		return dst, errors.New("info[1] (text) missing")
	}
	uid, _ = biliInt(uidRaw)
	// All of the item's strings share one allocation: text, author,
	// author id and id are cut from it.
	var scratch [512]byte
	buf := scratch[:0]
	buf, ok = biliAppendString(buf, text)
	if !ok {
		return dst, errors.New("info[1] (text) is not a string")
	}
	textEnd := len(buf)
	if b, ok := biliAppendString(buf, nameRaw); ok {
		buf = b
	}
	nameEnd := len(buf)
	var crcStr []byte // decoded only when needed: uid 0 or no id_str
	crcDecoded := false
	crcOf := func() []byte {
		if !crcDecoded {
			crcDecoded = true
			crcStr, _ = biliAppendString(nil, crc)
		}
		return crcStr
	}
	if uid != 0 {
		buf = strconv.AppendInt(buf, uid, 10)
	} else if c := crcOf(); len(c) > 0 {
		// Guests see uid 0; the CRC of the uid still tells senders apart.
		buf = append(buf, "crc:"...)
		buf = append(buf, c...)
	}
	authorIDEnd := len(buf)
	buf = biliAppendExtraIDStr(buf, extra)
	if len(buf) == authorIDEnd {
		buf = append(buf, "dm:"...)
		buf = strconv.AppendInt(buf, tsMS, 10)
		buf = append(buf, '-')
		buf = append(buf, crcOf()...)
		buf = append(buf, '-')
		buf = append(buf, bytes.Trim(rnd, `"`)...)
	}
	all := string(buf)
	ts := now
	if tsMS > 0 {
		ts = time.UnixMilli(tsMS)
	}
	return append(dst, item.Item{
		Platform: biliPlatform, Kind: item.KindChat, Room: room,
		ID: all[authorIDEnd:], AuthorID: all[nameEnd:authorIDEnd], Author: all[textEnd:nameEnd], Text: all[:textEnd],
		TS: ts, Count: 1,
	}), nil
}

var biliIDStrKey = []byte(`id_str\":\"`)

// biliAppendExtraIDStr appends to dst the id_str of info[0][15].extra, a
// JSON object encoded as a JSON string. The fast path reads it from the
// escaped text (ids are alphanumeric); anything unusual takes the full
// decode. The pattern
// starts at "i", not at the backslash, because escaped JSON is full of
// backslashes and Index would stop at each.
func biliAppendExtraIDStr(dst, extra []byte) []byte {
	if len(extra) < 2 || extra[0] != '"' {
		return dst
	}
	if i := bytes.Index(extra, biliIDStrKey); i >= 2 && extra[i-1] == '"' && extra[i-2] == '\\' {
		rest := extra[i+len(biliIDStrKey):]
		j := 0
		for j < len(rest) && biliIDChar(rest[j]) {
			j++
		}
		if j > 0 && j+1 < len(rest) && rest[j] == '\\' && rest[j+1] == '"' {
			return append(dst, rest[:j]...)
		}
	}
	s, ok := biliString(extra)
	if !ok {
		return dst
	}
	var e struct {
		IDStr string `json:"id_str"`
	}
	if json.Unmarshal([]byte(s), &e) != nil {
		return dst
	}
	return append(dst, e.IDStr...)
}

func biliIDChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}

// biliFlex accepts a JSON number or string and keeps its text.
type biliFlex string

func (f *biliFlex) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = biliFlex(s)
		return nil
	}
	if string(b) == "null" {
		*f = ""
		return nil
	}
	*f = biliFlex(b)
	return nil
}

func (f biliFlex) int() int64 {
	if n, err := strconv.ParseInt(string(f), 10, 64); err == nil {
		return n
	}
	if x, err := strconv.ParseFloat(string(f), 64); err == nil && !math.IsNaN(x) && !math.IsInf(x, 0) {
		return int64(x)
	}
	return 0
}

func (f biliFlex) float() float64 {
	x, err := strconv.ParseFloat(string(f), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func biliObject(data []byte, v any) error {
	if len(data) == 0 {
		return errors.New(`no "data" object`)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}

func biliTime(sec int64, now time.Time) time.Time {
	if sec > 0 {
		return time.Unix(sec, 0)
	}
	return now
}

// biliGift is one gift, from SEND_GIFT JSON or a SEND_GIFT_V2 protobuf.
type biliGift struct {
	UID       biliFlex `json:"uid"`
	Uname     string   `json:"uname"`
	GiftID    biliFlex `json:"giftId"`
	GiftName  string   `json:"giftName"`
	Num       biliFlex `json:"num"`
	Price     biliFlex `json:"price"`
	TotalCoin biliFlex `json:"total_coin"`
	CoinType  string   `json:"coin_type"`
	Timestamp biliFlex `json:"timestamp"`
	Rnd       biliFlex `json:"rnd"`
	TID       biliFlex `json:"tid"`
}

func (g *biliGift) item(room string, now time.Time) item.Item {
	num := g.Num.int()
	total := g.TotalCoin.float()
	if total == 0 {
		total = g.Price.float() * float64(num)
	}
	var value float64
	if g.CoinType != "silver" { // silver gifts are free
		value = total / 1000 // 1000 gold = 1 CNY
	}
	id := "gift:" + string(g.TID)
	if g.TID == "" || g.TID == "0" {
		id = fmt.Sprintf("gift:%s-%s-%s-%s-%d", g.UID, g.Timestamp, g.GiftID, g.Rnd, num)
	}
	return item.Item{
		Platform: biliPlatform, Kind: item.KindGift, Room: room, ID: id,
		AuthorID: string(g.UID), Author: g.Uname, Text: g.GiftName,
		TS: biliTime(g.Timestamp.int(), now), Value: value, Count: num,
	}
}

func biliParseGift(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	var g biliGift
	if err := biliObject(data, &g); err != nil {
		return dst, err
	}
	return append(dst, g.item(room, now)), nil
}

// biliPB decodes data.pb (base64 protobuf) of the *_V2 commands.
func biliPB(data []byte) ([]byte, error) {
	var d struct {
		PB string `json:"pb"`
	}
	if err := biliObject(data, &d); err != nil {
		return nil, err
	}
	if d.PB == "" {
		return nil, errors.New("data.pb is empty")
	}
	b, err := base64.StdEncoding.DecodeString(d.PB)
	if err != nil {
		return nil, fmt.Errorf("data.pb: %w", err)
	}
	return b, nil
}

// biliPBFields walks one protobuf message, handing each field's number and
// value (varint as decimal text, bytes raw) to fn.
func biliPBFields(b []byte, fn func(num protowire.Number, varint uint64, isVarint bool, bytes []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("protobuf: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(n))
			}
			fn(num, v, true, nil)
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(n))
			}
			fn(num, 0, false, v)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return nil
}

func biliPBText(varint uint64, isVarint bool, b []byte) biliFlex {
	if isVarint {
		return biliFlex(strconv.FormatInt(int64(varint), 10))
	}
	return biliFlex(strings.ToValidUTF8(string(b), "\uFFFD"))
}

// biliParseGiftV2: SendGiftBroadcast {1 uid, 2 uname, 10 repeated gift
// {1 gift_id, 2 gift_name, 3 num, 5 price, 7 total_coin, 8 coin_type,
// 9 tid, 10 timestamp, 12 rnd}}.
func biliParseGiftV2(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	pb, err := biliPB(data)
	if err != nil {
		return dst, err
	}
	var base biliGift
	var gifts [][]byte
	err = biliPBFields(pb, func(num protowire.Number, v uint64, isV bool, b []byte) {
		switch num {
		case 1:
			base.UID = biliPBText(v, isV, b)
		case 2:
			base.Uname = string(biliPBText(v, isV, b))
		case 10:
			if !isV {
				gifts = append(gifts, b)
			}
		}
	})
	if err != nil {
		return dst, err
	}
	if len(gifts) == 0 {
		return dst, errors.New("SendGiftBroadcast has no gift items")
	}
	for _, gb := range gifts {
		g := base
		err := biliPBFields(gb, func(num protowire.Number, v uint64, isV bool, b []byte) {
			t := biliPBText(v, isV, b)
			switch num {
			case 1:
				g.GiftID = t
			case 2:
				g.GiftName = string(t)
			case 3:
				g.Num = t
			case 5:
				g.Price = t
			case 7:
				g.TotalCoin = t
			case 8:
				g.CoinType = string(t)
			case 9:
				g.TID = t
			case 10:
				g.Timestamp = t
			case 12:
				g.Rnd = t
			}
		})
		if err != nil {
			return dst, err
		}
		dst = append(dst, g.item(room, now))
	}
	return dst, nil
}

func biliParseSuperChat(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	var sc struct {
		ID        biliFlex `json:"id"`
		UID       biliFlex `json:"uid"`
		Message   string   `json:"message"`
		Price     biliFlex `json:"price"`
		StartTime biliFlex `json:"start_time"`
		UserInfo  struct {
			Uname string `json:"uname"`
		} `json:"user_info"`
	}
	if err := biliObject(data, &sc); err != nil {
		return dst, err
	}
	id := "sc:" + string(sc.ID)
	if sc.ID == "" || sc.ID == "0" {
		id = fmt.Sprintf("sc:%s-%s", sc.UID, sc.StartTime)
	}
	return append(dst, item.Item{
		Platform: biliPlatform, Kind: item.KindSuperChat, Room: room, ID: id,
		AuthorID: string(sc.UID), Author: sc.UserInfo.Uname, Text: sc.Message,
		TS: biliTime(sc.StartTime.int(), now), Value: sc.Price.float(), Count: 1,
	}), nil
}

// biliInteractText names INTERACT_WORD's msg_type.
func biliInteractText(t int64) string {
	switch t {
	case 1:
		return "enter"
	case 2:
		return "follow"
	case 3:
		return "share"
	case 4:
		return "special_follow"
	case 5:
		return "mutual_follow"
	case 6:
		return "like"
	}
	return "interact_" + strconv.FormatInt(t, 10)
}

type biliInteract struct {
	UID         biliFlex `json:"uid"`
	Uname       string   `json:"uname"`
	MsgType     biliFlex `json:"msg_type"`
	Timestamp   biliFlex `json:"timestamp"`
	TriggerTime biliFlex `json:"trigger_time"`
}

func (w *biliInteract) item(room string, now time.Time) item.Item {
	when := w.TriggerTime
	if when == "" || when == "0" {
		when = w.Timestamp
	}
	return item.Item{
		Platform: biliPlatform, Kind: item.KindEnter, Room: room,
		ID:       fmt.Sprintf("iw:%s-%s-%s", w.UID, w.MsgType, when),
		AuthorID: string(w.UID), Author: w.Uname, Text: biliInteractText(w.MsgType.int()),
		TS: biliTime(w.Timestamp.int(), now), Count: 1,
	}
}

func biliParseInteract(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	var w biliInteract
	if err := biliObject(data, &w); err != nil {
		return dst, err
	}
	return append(dst, w.item(room, now)), nil
}

// biliParseInteractV2: InteractWordV2 {1 uid, 2 uname, 5 msg_type, 7 timestamp}.
func biliParseInteractV2(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	pb, err := biliPB(data)
	if err != nil {
		return dst, err
	}
	var w biliInteract
	err = biliPBFields(pb, func(num protowire.Number, v uint64, isV bool, b []byte) {
		t := biliPBText(v, isV, b)
		switch num {
		case 1:
			w.UID = t
		case 2:
			w.Uname = string(t)
		case 5:
			w.MsgType = t
		case 7:
			w.Timestamp = t
		}
	})
	if err != nil {
		return dst, err
	}
	return append(dst, w.item(room, now)), nil
}

func biliParseLikeClick(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	var l struct {
		UID      biliFlex `json:"uid"`
		Uname    string   `json:"uname"`
		LikeText string   `json:"like_text"`
	}
	if err := biliObject(data, &l); err != nil {
		return dst, err
	}
	return append(dst, item.Item{
		Platform: biliPlatform, Kind: item.KindLike, Room: room,
		ID:       fmt.Sprintf("like:%s-%d", l.UID, now.UnixMilli()),
		AuthorID: string(l.UID), Author: l.Uname, Text: l.LikeText, TS: now, Count: 1,
	}), nil
}

func biliParseMetrics(dst []item.Item, cmd string, data []byte, room string, now time.Time) ([]item.Item, error) {
	var m struct {
		Num         *biliFlex `json:"num"`
		Count       *biliFlex `json:"count"`
		OnlineCount *biliFlex `json:"online_count"`
		ClickCount  *biliFlex `json:"click_count"`
	}
	if err := biliObject(data, &m); err != nil {
		return dst, err
	}
	n := len(dst)
	switch cmd {
	case "WATCHED_CHANGE":
		if m.Num != nil {
			dst = append(dst, biliMetric(room, item.MetricWatched, m.Num.float(), now, nil))
		}
	case "ONLINE_RANK_COUNT":
		if m.OnlineCount != nil {
			dst = append(dst, biliMetric(room, item.MetricViewers, m.OnlineCount.float(), now, nil))
		}
		if m.Count != nil {
			dst = append(dst, biliMetric(room, item.MetricHighEnergy, m.Count.float(), now, nil))
		}
	case "LIKE_INFO_V3_UPDATE":
		if m.ClickCount != nil {
			dst = append(dst, biliMetric(room, item.MetricLikes, m.ClickCount.float(), now, nil))
		}
	}
	if len(dst) == n {
		return dst, errors.New("no metric field in data")
	}
	return dst, nil
}

// --- a minimal JSON scanner for the hot path ---------------------------------

// biliIter walks the members of one JSON object or the elements of one
// array in place, without decoding them: advance to a member, then either
// skip its value or enter it (a container) and leave it. Malformed input
// sets bad and ends the walk.
type biliIter struct {
	b     []byte
	i     int // after advance: start of the value; when done: after the closer
	obj   bool
	first bool
	done  bool
	bad   bool
}

// biliIterate starts a walk over raw, which must begin with { or [.
func biliIterate(raw []byte) (biliIter, bool) {
	if len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') {
		return biliIter{done: true, bad: true}, false
	}
	return biliIter{b: raw, i: 1, obj: raw[0] == '{', first: true}, true
}

// advance moves to the next member and returns its key (raw, without
// quotes; nil in arrays). The caller must then skip or enter the value.
func (it *biliIter) advance() (key []byte, ok bool) {
	if it.done {
		return nil, false
	}
	b := it.b
	i := biliWS(b, it.i)
	closer := byte(']')
	if it.obj {
		closer = '}'
	}
	if i >= len(b) {
		return it.fail()
	}
	if b[i] == closer {
		it.done, it.i = true, i+1
		return nil, false
	}
	if !it.first {
		if b[i] != ',' {
			return it.fail()
		}
		i = biliWS(b, i+1)
	}
	it.first = false
	if it.obj {
		if i >= len(b) || b[i] != '"' {
			return it.fail()
		}
		e := biliSkipString(b, i)
		if e < 0 {
			return it.fail()
		}
		key = b[i+1 : e-1]
		i = biliWS(b, e)
		if i >= len(b) || b[i] != ':' {
			return it.fail()
		}
		i = biliWS(b, i+1)
	}
	if i >= len(b) {
		return it.fail()
	}
	it.i = i
	return key, true
}

// skip passes over the current value and returns it raw (nil if bad).
func (it *biliIter) skip() []byte {
	if it.done {
		return nil
	}
	e := biliSkipValue(it.b, it.i)
	if e < 0 {
		it.fail()
		return nil
	}
	v := it.b[it.i:e]
	it.i = e
	return v
}

// enter starts a walk over the current value if it is a container; when
// it is not, the caller must skip it.
func (it *biliIter) enter() (biliIter, bool) {
	if it.done || it.i >= len(it.b) || (it.b[it.i] != '{' && it.b[it.i] != '[') {
		return biliIter{done: true}, false
	}
	return biliIter{b: it.b, i: it.i + 1, obj: it.b[it.i] == '{', first: true}, true
}

// leave continues after c, entered from it, skipping what c did not read.
func (it *biliIter) leave(c *biliIter) {
	for !c.done {
		if _, ok := c.advance(); !ok {
			break
		}
		c.skip()
	}
	if c.bad {
		it.fail()
		return
	}
	it.i = c.i
}

func (it *biliIter) fail() ([]byte, bool) {
	it.done, it.bad = true, true
	return nil, false
}

func biliWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// biliString decodes a raw JSON string. The common case (no escapes, valid
// UTF-8) is one allocation.
func biliString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// biliInt reads a JSON integer (or a quoted one); floats are truncated.
func biliInt(raw []byte) (int64, bool) {
	if len(raw) >= 2 && raw[0] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	if len(raw) == 0 {
		return 0, false
	}
	neg := raw[0] == '-'
	d := raw
	if neg {
		d = raw[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return biliIntSlow(raw)
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return biliIntSlow(raw)
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func biliIntSlow(raw []byte) (int64, bool) {
	x, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > math.MaxInt64/2 {
		return 0, false
	}
	return int64(x), true
}
