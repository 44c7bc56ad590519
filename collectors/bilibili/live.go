// Package bilibili collects from Bilibili: bilibili_live reads a live
// room's danmaku WebSocket (frames, command parsing, a fast scan for the
// common chat command, WBI signing of the bootstrap API) and
// bilibili_comments polls a video's comments.
package bilibili

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/internal/httpurl"
	"lookout/item"
)

// bilibili_live: a Bilibili live room's danmaku stream.
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
	rd          stream.Reader // the connection's message buffer and read deadline
	counted     *collectors.KindCounter
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
		if err != nil || !httpurl.OK(u) {
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

// biliNoRaw stands for the copy of a command body when raw payloads are not
// stored.
func biliNoRaw([]byte) []byte { return nil }

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
				c.rd.ResetDeadline()
				c.rd.ExtendDeadline(conn, time.Now(), readTimeout)
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
		mt, msg, err := c.rd.Read(conn)
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
			c.rd.ExtendDeadline(conn, time.Now(), readTimeout)
		}
		if mt != websocket.BinaryMessage {
			c.env.Metrics.Errors.WithLabelValues(c.src.ID, "decode").Inc()
			c.env.Health.Unusable("decode", errors.New("text frame on the binary danmaku stream"))
			continue
		}
		if err = c.dec.Decode(msg, handle); err == nil {
			continue
		}
		switch {
		case errors.As(err, new(*biliAuthError)):
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
	clone := c.arena.copy
	if c.env.DropRaw {
		clone = biliNoRaw
	}
	c.items, cmd, known, err = biliParseCommand(c.items[:0], body, room, c.env.Clock.Now(), clone)
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
	if c.counted == nil {
		c.counted = c.env.Metrics.ItemCounter(c.src.ID)
	}
	c.counted.Inc(it.Kind)
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
