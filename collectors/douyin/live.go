// Package douyin is the douyin_live collector: a Douyin live room's
// webcast push stream, its URL signer and (douyinpb) its protobuf messages.
package douyin

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"lookout/collectors"
	"lookout/collectors/douyin/douyinpb"
	"lookout/collectors/httpx"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/internal/httpurl"
	"lookout/item"
)

// The douyin_live collector reads a Douyin (抖音) live room through the
// webcast push WebSocket: bootstrap over HTTP (ttwid
// cookie, real room id from the room page), a signed WebSocket URL, then
// binary PushFrames whose gzip payload is a Response holding typed
// messages. It acks when the server asks, sends a heartbeat frame every few
// seconds and reconnects with backoff; when the broadcast ends it waits
// longer before trying again.
//
// The URL signature is produced by Douyin's obfuscated browser SDK and is
// not public, so signing is a seam (DouyinSigner): `signer_url` names an
// external signer service (see douyinHTTPSigner for its HTTP contract);
// `loopback_sign_key` selects the test-only scheme the loopback server
// understands.
//
//	- id: dy-shop
//	  kind: douyin_live
//	  room: "646454278948"                 # web_rid: the number in live.douyin.com/<web_rid>
//	  signer_url: http://127.0.0.1:3000/sign
//	  cookie: ${DOUYIN_COOKIE}             # optional; ttwid is fetched when absent
//	  # ws_base, page_base: endpoints (tests and demo point them at loopback)

const (
	// DouyinDefaultWSBase and DouyinDefaultPageBase are Douyin's endpoints.
	DouyinDefaultWSBase   = "wss://webcast100-ws-web-lq.douyin.com/webcast/im/push/v2/"
	DouyinDefaultPageBase = "https://live.douyin.com"

	douyinDefaultHeartbeat = 10 * time.Second
	// douyinReadTimeout: the room pushes at least room-user-seq updates
	// every few seconds while live; silence this long means a dead socket.
	douyinReadTimeout = 90 * time.Second
	// douyinMaxPayload bounds a gunzipped Response (a gzip bomb stops here).
	douyinMaxPayload = 8 << 20
	// douyinComboWindow: a gift combo not updated for this long is over
	// even if its end message was lost.
	douyinComboWindow = 30 * time.Second
	douyinMaxCombos   = 10000
	// douyinDiamondCNY is what one Douyin diamond costs the viewer.
	douyinDiamondCNY = 0.1
	// douyinHiddenUserID is the id every viewer arrives with in a room
	// that hides its audience (their nicknames masked): it names nobody.
	douyinHiddenUserID = 111111
)

type douyinSpec struct {
	Room      string          `yaml:"room"`
	WSBase    string          `yaml:"ws_base"`
	PageBase  string          `yaml:"page_base"`
	SignerURL string          `yaml:"signer_url"`
	Cookie    config.Secret   `yaml:"cookie"`
	Heartbeat config.Duration `yaml:"heartbeat"`
	// LoopbackSignKey selects the test-only signing scheme of the loopback
	// server (tests, demo). Real Douyin rejects it.
	LoopbackSignKey config.Secret `yaml:"loopback_sign_key"`
}

var (
	douyinRoomRe = regexp.MustCompile(`^[0-9]{1,20}$`)
	// In the room page the id sits inside an escaped JSON string:
	// roomId\":\"7300000000000000000\".
	douyinRoomIDRe = regexp.MustCompile(`roomId\\?"\s*:\s*\\?"([0-9]{6,20})\\?"`)
)

type douyinCollector struct {
	id        string
	labels    map[string]string
	env       collectors.Env
	room      string // web_rid
	wsBase    *url.URL
	pageBase  string
	cookie    string // from config; may be empty
	signer    DouyinSigner
	heartbeat time.Duration
	dialer    *websocket.Dialer
	uid       string // user_unique_id, stable for the collector's life
	userAgent string // Douyin serves other pages to non-browser agents

	// Owned by Run's goroutine.
	roomID      string
	cookieHdr   string
	cursor      string // last Response.cursor, sent on reconnect
	internalExt string
	// endedAt is when the broadcast ended (WebcastControlMessage status
	// 3), zero while it is not known to have ended. Douyin sends nothing
	// when a broadcast starts, so the first message created after endedAt
	// is taken as the stream being live again; replayed history (the push
	// URL asks for the last messages) was created before it.
	endedAt    time.Time
	combos     map[string]douyinCombo
	gz         *gzip.Reader
	payload    bytes.Buffer
	rd         stream.Reader // the connection's message buffer and read deadline
	counted    *collectors.KindCounter
	maxPayload int64 // douyinMaxPayload; tests lower it
}

type douyinCombo struct {
	count uint64
	at    time.Time
}

// errDouyinEnded reports WebcastControlMessage status 3.
var errDouyinEnded = errors.New("broadcast ended (control status 3)")

// New builds a douyin_live source (a collectors.Factory).
func New(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec douyinSpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	if !douyinRoomRe.MatchString(spec.Room) {
		return nil, fmt.Errorf("room %q: want the web_rid, the number in https://live.douyin.com/<web_rid>", spec.Room)
	}
	if spec.WSBase == "" {
		spec.WSBase = DouyinDefaultWSBase
	}
	ws, err := url.Parse(spec.WSBase)
	if err != nil || (ws.Scheme != "ws" && ws.Scheme != "wss") || ws.Host == "" {
		return nil, fmt.Errorf("ws_base %q: want a ws:// or wss:// URL", spec.WSBase)
	}
	if spec.PageBase == "" {
		spec.PageBase = DouyinDefaultPageBase
	}
	if pu, err := url.Parse(spec.PageBase); err != nil || !httpurl.OK(pu) {
		return nil, fmt.Errorf("page_base %q: want an http:// or https:// URL", spec.PageBase)
	}
	var signer DouyinSigner
	switch {
	case spec.SignerURL != "" && spec.LoopbackSignKey.IsSet():
		return nil, errors.New("signer_url and loopback_sign_key: set one, not both")
	case spec.SignerURL != "":
		su, err := url.Parse(spec.SignerURL)
		if err != nil || !httpurl.OK(su) {
			return nil, fmt.Errorf("signer_url %q: want an http:// or https:// URL", httpx.RedactURL(spec.SignerURL))
		}
		signer = &douyinHTTPSigner{url: spec.SignerURL, http: env.HTTP}
	case spec.LoopbackSignKey.IsSet():
		if spec.LoopbackSignKey.Missing() {
			return nil, fmt.Errorf("loopback_sign_key: environment variable %s is empty", spec.LoopbackSignKey.Var)
		}
		signer = douyinLocalSigner{key: []byte(spec.LoopbackSignKey.Value())}
	default:
		return nil, errors.New("signer_url: Douyin's URL signature is not public; run an external signer (e.g. a Node service around webmssdk.js) and set signer_url to it (see collectors/douyinpb/README.md, \"Douyin signer\")")
	}
	if spec.Cookie.Missing() {
		return nil, fmt.Errorf("cookie: environment variable %s is empty", spec.Cookie.Var)
	}
	hb := spec.Heartbeat.D()
	if hb == 0 {
		hb = douyinDefaultHeartbeat
	}
	if hb < time.Second || hb > time.Minute {
		return nil, fmt.Errorf("heartbeat %s: want between 1s and 1m (clients use 5–10s)", hb)
	}
	dialer, hdr, err := stream.Dialer(src, env)
	if err != nil {
		return nil, err
	}
	return &douyinCollector{
		id: src.ID, labels: src.Labels, env: env, room: spec.Room, wsBase: ws,
		pageBase: strings.TrimRight(spec.PageBase, "/"), cookie: spec.Cookie.Value(), signer: signer,
		heartbeat: hb, dialer: dialer, uid: strconv.FormatUint(7_000_000_000_000_000_000+rand.Uint64N(1_000_000_000_000_000_000), 10),
		combos: map[string]douyinCombo{}, userAgent: hdr.Get("User-Agent"), maxPayload: douyinMaxPayload,
	}, nil
}

func (c *douyinCollector) ua() string { return c.userAgent }

func (c *douyinCollector) Run(ctx context.Context, emit collectors.Emit) error {
	bo := stream.NewBackoff(c.id)
	ended := &httpx.Backoff{Base: time.Minute, Max: 10 * time.Minute}
	for {
		healthy, err := c.session(ctx, emit)
		if ctx.Err() != nil {
			return nil
		}
		c.env.Metrics.Reconnects.WithLabelValues(c.id).Inc()
		var wait time.Duration
		if errors.Is(err, errDouyinEnded) {
			bo.Reset()
			wait = ended.Next()
			c.env.Log.Info("douyin: broadcast ended; checking again later", "room", c.room, "wait", wait)
		} else {
			c.env.Health.StreamEnded(err)
			if healthy {
				bo.Reset()
				ended.Reset()
			}
			wait = httpx.RetryDelay(err, bo)
			c.env.Log.Warn("douyin: connection ended; reconnecting", "room", c.room, "err", err, "wait", wait)
		}
		if err := httpx.Sleep(ctx, c.env.Clock, wait); err != nil {
			return nil
		}
	}
}

// bootstrap gets a ttwid cookie (unless the configured cookie has one) and
// the numeric room id from the room page.
func (c *douyinCollector) bootstrap(ctx context.Context) error {
	cookie := c.cookie
	if !strings.Contains(cookie, "ttwid=") {
		resp, err := c.get(ctx, c.pageBase+"/", cookie)
		if err != nil {
			return fmt.Errorf("ttwid cookie: %w", err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		var ttwid string
		for _, ck := range resp.Cookies() {
			if ck.Name == "ttwid" {
				ttwid = ck.Value
			}
		}
		if ttwid == "" {
			return fmt.Errorf("ttwid cookie: %s/ set no ttwid cookie", c.pageBase)
		}
		if cookie != "" {
			cookie += "; "
		}
		cookie += "ttwid=" + ttwid
	}
	resp, err := c.get(ctx, c.pageBase+"/"+c.room, cookie)
	if err != nil {
		return fmt.Errorf("room page: %w", err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("room page: %w", err)
	}
	m := douyinRoomIDRe.FindSubmatch(page)
	if m == nil {
		return fmt.Errorf("room page %s/%s has no roomId: wrong web_rid, or Douyin wants a fresh cookie", c.pageBase, c.room)
	}
	c.roomID, c.cookieHdr = string(m[1]), cookie
	return nil
}

func (c *douyinCollector) get(ctx context.Context, u, cookie string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.ua())
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.env.HTTP.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := httpx.CheckStatus(resp, c.env.Clock.Now()); err != nil {
		return nil, err
	}
	return resp, nil
}

// wsURL builds the push URL for the current room and signs it.
func (c *douyinCollector) wsURL(ctx context.Context) (string, error) {
	q := url.Values{}
	for _, kv := range [][2]string{
		{"app_name", "douyin_web"}, {"version_code", "180800"}, {"webcast_sdk_version", "1.0.14-beta.0"},
		{"update_version_code", "1.0.14-beta.0"}, {"compress", "gzip"}, {"device_platform", "web"},
		{"cookie_enabled", "true"}, {"screen_width", "1536"}, {"screen_height", "864"},
		{"browser_language", "zh-CN"}, {"browser_platform", "Win32"}, {"browser_name", "Mozilla"},
		{"browser_online", "true"}, {"tz_name", "Asia/Shanghai"}, {"host", "https://live.douyin.com"},
		{"aid", "6383"}, {"live_id", "1"}, {"did_rule", "3"}, {"endpoint", "live_pc"}, {"support_wrds", "1"},
		{"user_unique_id", c.uid}, {"im_path", "/webcast/im/fetch/"}, {"identity", "audience"},
		{"need_persist_msg_count", "15"}, {"room_id", c.roomID}, {"heartbeatDuration", "0"},
		{"internal_ext", c.internalExt}, {"cursor", c.cursor},
	} {
		q.Set(kv[0], kv[1])
	}
	sig, err := c.signer.Sign(ctx, DouyinSignatureStub(q))
	if err != nil {
		return "", err
	}
	q.Set("signature", sig)
	u := *c.wsBase
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (c *douyinCollector) session(ctx context.Context, emit collectors.Emit) (healthy bool, err error) {
	if c.roomID == "" {
		if err := c.bootstrap(ctx); err != nil {
			c.env.Metrics.Errors.WithLabelValues(c.id, "bootstrap").Inc()
			reason, permanent := collectors.HealthReason(err)
			if reason == "disconnected" {
				reason = "bootstrap"
			}
			return false, collectors.WithReason(reason, permanent, err)
		}
	}
	wsURL, err := c.wsURL(ctx)
	if err != nil {
		c.env.Metrics.Errors.WithLabelValues(c.id, "signer").Inc()
		return false, collectors.WithReason("signer", false, fmt.Errorf("signing the push URL: %w", err))
	}
	h := http.Header{}
	h.Set("User-Agent", c.ua())
	h.Set("Cookie", c.cookieHdr)
	h.Set("Origin", "https://live.douyin.com")
	conn, err := stream.Dial(ctx, c.env, c.dialer, wsURL, h)
	if err != nil {
		var se *httpx.StatusError
		if errors.As(err, &se) && (se.Status == http.StatusForbidden || se.Status == http.StatusUnauthorized) {
			c.env.Metrics.Errors.WithLabelValues(c.id, "signature").Inc()
			c.roomID = "" // re-bootstrap: the cookie may have gone stale too
			c.env.Log.Error("douyin: the push server rejected the signed URL; check the signer (signer_url) and the cookie", "room", c.room, "status", se.Status)
			return false, collectors.WithReason("signature", true,
				fmt.Errorf("push server rejected the signature (HTTP %d): the signer's output is wrong or out of date: %w", se.Status, err))
		}
		c.env.Metrics.Errors.WithLabelValues(c.id, "dial").Inc()
		return false, err
	}
	c.env.Health.Succeeded() // the signature was accepted
	defer conn.Close()
	defer stream.CloseOnDone(ctx, conn)()
	conn.SetReadLimit(stream.MaxFrame)

	var wmu sync.Mutex
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return conn.WriteMessage(websocket.BinaryMessage, b)
	}
	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	defer func() { stopHB(); <-hbDone }()
	go func() {
		defer close(hbDone)
		for httpx.Sleep(hbCtx, c.env.Clock, c.heartbeat) == nil {
			if err := write(douyinHeartbeatFrame); err != nil {
				return // the reader sees the broken socket
			}
		}
	}()

	if c.counted == nil {
		c.counted = c.env.Metrics.ItemCounter(c.id)
	}
	c.rd.ResetDeadline() // a new connection: the first read gets its deadline
	for {
		c.rd.ExtendDeadline(conn, time.Now(), douyinReadTimeout)
		typ, data, err := c.rd.Read(conn)
		if err != nil {
			if ctx.Err() != nil {
				return healthy, ctx.Err()
			}
			c.env.Metrics.Errors.WithLabelValues(c.id, "read").Inc()
			return healthy, fmt.Errorf("read: %w", err)
		}
		if typ != websocket.BinaryMessage {
			c.env.Metrics.Unknown.WithLabelValues(c.id, "text_frame").Inc()
			c.env.Health.Unusable("text_frame", errors.New("text frame on the binary push stream"))
			continue
		}
		items, ack, ferr := c.handleFrame(data)
		if ack != nil {
			if err := write(ack); err != nil {
				return healthy, fmt.Errorf("send ack: %w", err)
			}
		}
		if ferr != nil && !errors.Is(ferr, errDouyinEnded) {
			c.env.Metrics.Errors.WithLabelValues(c.id, "decode").Inc()
			c.env.Log.Warn("douyin: bad frame", "room", c.room, "err", ferr, "len", len(data))
			c.env.Health.Unusable("decode", ferr)
			continue
		}
		healthy = true
		c.env.Health.Succeeded()
		for i := range items {
			stream.CapItem(c.env, c.id, &items[i], len(items[i].Raw))
			if err := emit(ctx, items[i]); err != nil {
				return healthy, err
			}
			c.counted.Inc(items[i].Kind)
		}
		if ferr != nil { // ended, after emitting what came before it
			return healthy, ferr
		}
	}
}

// douyinHeartbeatFrame is PushFrame{payloadType: "hb"}.
var douyinHeartbeatFrame = func() []byte {
	b, err := proto.Marshal(&douyinpb.PushFrame{PayloadType: "hb"})
	if err != nil {
		panic(err)
	}
	return b
}()

// handleFrame decodes one PushFrame and maps its messages. ack is the frame
// to send back (nil when none is due). err is errDouyinEnded when the
// broadcast ended, or a decode error for the frame as a whole; a bad
// message inside a good frame is counted and skipped.
func (c *douyinCollector) handleFrame(data []byte) (items []item.Item, ack []byte, err error) {
	var f douyinpb.PushFrame
	if err := proto.Unmarshal(data, &f); err != nil {
		return nil, nil, fmt.Errorf("PushFrame: %w", err)
	}
	switch f.PayloadType {
	case "msg", "":
	case "hb", "ack":
		return nil, nil, nil
	case "close":
		return nil, nil, errors.New("server sent a close frame")
	default:
		c.env.Metrics.Unknown.WithLabelValues(c.id, "payload_type:"+stream.Trunc(f.PayloadType, 32)).Inc()
		return nil, nil, nil
	}
	payload, err := c.gunzip(f.Payload)
	if err != nil {
		return nil, nil, err
	}
	var resp douyinpb.Response
	if err := proto.Unmarshal(payload, &resp); err != nil {
		return nil, nil, fmt.Errorf("response: %w", err)
	}
	if resp.NeedAck {
		ack, err = proto.Marshal(&douyinpb.PushFrame{LogId: f.LogId, PayloadType: "ack", Payload: []byte(resp.InternalExt)})
		if err != nil {
			return nil, nil, fmt.Errorf("ack: %w", err)
		}
	}
	if resp.Cursor != "" {
		c.cursor = resp.Cursor
	}
	if resp.InternalExt != "" {
		c.internalExt = resp.InternalExt
	}
	items = make([]item.Item, 0, len(resp.MessagesList)+len(resp.MessagesList)/4)
	for _, m := range resp.MessagesList {
		var merr error
		n := len(items)
		items, merr = c.mapMessage(items, m, resp.Now)
		if merr == nil && !c.endedAt.IsZero() && len(items) > n && items[n].TS.After(c.endedAt) {
			c.endedAt = time.Time{}
			items = slices.Insert(items, n, c.metric(items[n], item.MetricLiveStatus, 1))
		}
		if merr != nil {
			if errors.Is(merr, errDouyinEnded) {
				return items, ack, merr
			}
			c.env.Metrics.Errors.WithLabelValues(c.id, "decode").Inc()
			c.env.Log.Warn("douyin: bad message", "room", c.room, "method", stream.Trunc(m.Method, 64), "err", merr)
		}
	}
	return items, ack, nil
}

// gunzip inflates a gzip payload into c.payload (reused), capped at
// douyinMaxPayload. A payload without the gzip magic is returned as is.
func (c *douyinCollector) gunzip(p []byte) ([]byte, error) {
	if len(p) < 2 || p[0] != 0x1f || p[1] != 0x8b {
		return p, nil
	}
	var err error
	if c.gz == nil {
		c.gz, err = gzip.NewReader(bytes.NewReader(p))
	} else {
		err = c.gz.Reset(bytes.NewReader(p))
	}
	if err != nil {
		return nil, fmt.Errorf("gzip payload: %w", err)
	}
	c.payload.Reset()
	n, err := c.payload.ReadFrom(io.LimitReader(c.gz, c.maxPayload+1))
	if err != nil {
		return nil, fmt.Errorf("gzip payload: %w", err)
	}
	if n > c.maxPayload {
		return nil, fmt.Errorf("gzip payload: more than %d bytes inflated", c.maxPayload)
	}
	return c.payload.Bytes(), nil
}

// douyinIgnored are methods seen in every room that lookout has no use
// for; they are not counted as unknown.
var douyinIgnored = map[string]bool{
	"WebcastRoomStatsMessage": true, "WebcastRoomRankMessage": true, "WebcastFansclubMessage": true,
	"WebcastRoomMessage": true, "WebcastRankMessage": true,
	"WebcastInRoomBannerMessage": true, "WebcastRoomStreamAdaptationMessage": true,
	"WebcastRoomDataSyncMessage": true, "WebcastProductChangeMessage": true, "WebcastUpdateFanTicketMessage": true,
}

func (c *douyinCollector) base(common *douyinpb.Common, m *douyinpb.Message, now uint64, u *douyinpb.User) item.Item {
	it := item.Item{Source: c.id, Platform: "douyin", Room: c.room, Labels: c.labels, Raw: m.Payload}
	switch {
	case common.GetCreateTime() > 0:
		it.TS = time.UnixMilli(int64(common.GetCreateTime())).UTC()
	case now > 0:
		it.TS = time.UnixMilli(int64(now)).UTC()
	default:
		it.TS = c.env.Clock.Now().UTC()
	}
	switch {
	case common.GetMsgId() != 0:
		it.ID = strconv.FormatUint(common.GetMsgId(), 10)
	case m.MsgId != 0:
		it.ID = strconv.FormatInt(m.MsgId, 10)
	default: // stable for the same message content
		it.ID = fmt.Sprintf("%s/%d/%d", m.Method, it.TS.UnixMilli(), u.GetId())
	}
	if u != nil {
		if u.Id != 0 && u.Id != douyinHiddenUserID {
			it.AuthorID = strconv.FormatUint(u.Id, 10)
		}
		it.Author = u.NickName
	}
	return it
}

// douyinEmojiText is the text form of a sticker chat line ("[怒]"):
// defaultContent, else the rich text's pattern or pieces, else the
// sticker's id.
func douyinEmojiText(x *douyinpb.EmojiChatMessage) string {
	if x.DefaultContent != "" {
		return x.DefaultContent
	}
	if p := x.EmojiContent.GetDefaultPattern(); p != "" {
		return p
	}
	var b strings.Builder
	for _, pc := range x.EmojiContent.GetPiecesList() {
		b.WriteString(pc.GetStringValue())
	}
	if b.Len() > 0 {
		return b.String()
	}
	return fmt.Sprintf("[emoji %d]", x.EmojiId)
}

func (c *douyinCollector) metric(b item.Item, name string, v float64) item.Item {
	b.Kind = item.KindMetric
	b.ID += "/" + name
	b.Metric = name
	b.Value = v
	b.AuthorID, b.Author, b.Count, b.Text = "", "", 0, ""
	return b
}

// mapMessage appends the items of one typed message to dst. On error dst
// comes back unchanged, except for errDouyinEnded, which comes with the
// live_status 0 sample of the end appended.
func (c *douyinCollector) mapMessage(dst []item.Item, m *douyinpb.Message, now uint64) ([]item.Item, error) {
	switch m.Method {
	case "WebcastChatMessage":
		var x douyinpb.ChatMessage
		if err := proto.Unmarshal(m.Payload, &x); err != nil {
			return dst, err
		}
		it := c.base(x.Common, m, now, x.User)
		if x.Common.GetCreateTime() == 0 && x.EventTime > 0 {
			it.TS = time.Unix(int64(x.EventTime), 0).UTC()
		}
		it.Kind = item.KindChat
		it.Text = x.Content
		return append(dst, it), nil
	case "WebcastEmojiChatMessage":
		var x douyinpb.EmojiChatMessage
		if err := proto.Unmarshal(m.Payload, &x); err != nil {
			return dst, err
		}
		it := c.base(x.Common, m, now, x.User)
		it.Kind = item.KindChat
		it.Text = douyinEmojiText(&x)
		return append(dst, it), nil
	case "WebcastMemberMessage":
		var x douyinpb.MemberMessage
		if err := proto.Unmarshal(m.Payload, &x); err != nil {
			return dst, err
		}
		it := c.base(x.Common, m, now, x.User)
		it.Kind = item.KindEnter
		out := append(dst, it)
		if x.MemberCount > 0 {
			out = append(out, c.metric(it, item.MetricMemberCount, float64(x.MemberCount)))
		}
		return out, nil
	case "WebcastLikeMessage":
		var x douyinpb.LikeMessage
		if err := proto.Unmarshal(m.Payload, &x); err != nil {
			return dst, err
		}
		it := c.base(x.Common, m, now, x.User)
		it.Kind = item.KindLike
		it.Count = int64(min(x.Count, 1<<62))
		out := append(dst, it)
		if x.Total > 0 {
			out = append(out, c.metric(it, item.MetricLikes, float64(x.Total)))
		}
		return out, nil
	case "WebcastGiftMessage":
		var x douyinpb.GiftMessage
		if err := proto.Unmarshal(m.Payload, &x); err != nil {
			return dst, err
		}
		return c.mapGift(dst, &x, m, now), nil
	case "WebcastSocialMessage":
		var x douyinpb.SocialMessage
		if err := proto.Unmarshal(m.Payload, &x); err != nil {
			return dst, err
		}
		it := c.base(x.Common, m, now, x.User)
		it.Kind = item.KindEnter
		if x.Action == 1 {
			it.Text = "followed"
		}
		out := append(dst, it)
		if x.FollowCount > 0 {
			out = append(out, c.metric(it, item.MetricFollowers, float64(x.FollowCount)))
		}
		return out, nil
	case "WebcastRoomUserSeqMessage":
		var x douyinpb.RoomUserSeqMessage
		if err := proto.Unmarshal(m.Payload, &x); err != nil {
			return dst, err
		}
		b := c.base(x.Common, m, now, nil)
		out := dst
		if x.Total >= 0 {
			out = append(out, c.metric(b, item.MetricViewers, float64(x.Total)))
		}
		if v, ok := douyinParseCount(x.TotalPvForAnchor); ok {
			out = append(out, c.metric(b, item.MetricCumViewers, v))
		}
		return out, nil
	case "WebcastControlMessage":
		var x douyinpb.ControlMessage
		if err := proto.Unmarshal(m.Payload, &x); err != nil {
			return dst, err
		}
		if x.Status == 3 {
			b := c.base(x.Common, m, now, nil)
			c.endedAt = b.TS
			return append(dst, c.metric(b, item.MetricLiveStatus, 0)), errDouyinEnded
		}
		return dst, nil
	}
	if !douyinIgnored[m.Method] {
		c.env.Metrics.Unknown.WithLabelValues(c.id, "method:"+stream.Trunc(m.Method, 64)).Inc()
	}
	return dst, nil
}

// mapGift emits a gift once per increment: Douyin repeats a combo gift's
// message with a growing repeatCount and marks the last with repeatEnd=1,
// so only the part not yet counted is emitted.
//
// A combo is keyed by its groupId. Keying by sender, gift and recipient
// alone merged different viewers' combos in rooms that hide their viewers
// (every sender is douyinHiddenUserID there): 5 + 1 + 3 hearts from three
// viewers counted as one combo of 5. Without a groupId the sender's id
// keys the combo when it names someone; otherwise the message stands
// alone and counts its whole repeatCount.
func (c *douyinCollector) mapGift(dst []item.Item, x *douyinpb.GiftMessage, m *douyinpb.Message, now uint64) []item.Item {
	it := c.base(x.Common, m, now, x.User)
	giftID := x.GiftId
	if giftID == 0 {
		giftID = x.Gift.GetId()
	}
	var key string
	switch uid := x.User.GetId(); {
	case x.GroupId != 0:
		key = fmt.Sprintf("g%d/%d/%d/%d", x.GroupId, uid, giftID, x.ToUser.GetId())
	case uid != 0 && uid != douyinHiddenUserID:
		key = fmt.Sprintf("u%d/%d/%d", uid, giftID, x.ToUser.GetId())
	}
	rc := max(x.RepeatCount, 1)
	if key == "" {
		return append(dst, douyinGiftItem(it, x, rc))
	}
	prev, ok := c.combos[key]
	if ok && it.TS.Sub(prev.at) > douyinComboWindow {
		prev = douyinCombo{}
	}
	if x.RepeatEnd == 1 {
		delete(c.combos, key)
	} else {
		if len(c.combos) >= douyinMaxCombos {
			clear(c.combos)
		}
		c.combos[key] = douyinCombo{count: max(prev.count, rc), at: it.TS}
	}
	if rc <= prev.count {
		return dst // already counted
	}
	return append(dst, douyinGiftItem(it, x, rc-prev.count))
}

// douyinGiftItem makes it the gift item for n more of x's gift.
func douyinGiftItem(it item.Item, x *douyinpb.GiftMessage, n uint64) item.Item {
	it.Kind = item.KindGift
	it.Text = x.Gift.GetName()
	it.Count = int64(min(n, 1<<40))
	it.Value = float64(it.Count) * float64(x.Gift.GetDiamondCount()) * douyinDiamondCNY
	return it
}

// douyinParseCount reads Douyin's display counts: "22164", "43.6万",
// "1.2亿", "10万+", "1,234".
func douyinParseCount(s string) (float64, bool) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "+"))
	s = strings.ReplaceAll(s, ",", "")
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "万"):
		s, mult = strings.TrimSuffix(s, "万"), 1e4
	case strings.HasSuffix(s, "亿"):
		s, mult = strings.TrimSuffix(s, "亿"), 1e8
	case strings.HasSuffix(s, "w"), strings.HasSuffix(s, "W"):
		s, mult = s[:len(s)-1], 1e4
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || v != v || v > 1e15 {
		return 0, false
	}
	return float64(int64(v*mult + 0.5)), true
}
