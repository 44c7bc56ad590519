package loopback

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file holds loopback servers for the chat sinks lookout notifies:
// Feishu, WeCom and a generic JSON webhook (DingTalk is in dingtalk.go).
// They check what the real services check (signatures, keys, sizes, rate
// limits) and answer with the real error codes, so a notifier that passes
// against them speaks the protocol. Tests can make them fail for a while
// (down, 5xx, 429, throttling codes) and read back what they accepted.

// SinkFault is a failure a sink server plays instead of answering.
type SinkFault struct {
	Down       bool   // drop the connection without an answer
	Status     int    // answer with this HTTP status (500, 503, 429…)
	RetryAfter string // Retry-After header sent with Status
	ErrCode    int    // answer HTTP 200 with this platform error code (DingTalk 130101, Feishu 11232, WeCom 45009…)
	ErrMsg     string
}

// SinkMessage is one request a sink server saw.
type SinkMessage struct {
	At     time.Time
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte // the raw JSON body
	Code   int    // the platform code answered (0 = accepted)
}

// JSON decodes the body into a generic map (nil when it is not JSON).
func (m SinkMessage) JSON() map[string]any {
	var v map[string]any
	if json.Unmarshal(m.Body, &v) != nil {
		return nil
	}
	return v
}

// sinkBase is what every sink server shares: fault injection, rate
// limiting, recording.
type sinkBase struct {
	srv *httptest.Server

	mu        sync.Mutex
	now       func() time.Time
	faultsN   []sinkFaultN
	faultTill time.Time
	faultFor  SinkFault
	accepted  []SinkMessage
	rejected  []SinkMessage
	requests  int
	limitN    int
	limitPer  time.Duration
	sentAt    []time.Time
	onAccept  func(SinkMessage)
	notify    chan struct{}
}

type sinkFaultN struct {
	f SinkFault
	n int
}

func (b *sinkBase) init(h http.Handler, limitN int, limitPer time.Duration) {
	b.now = time.Now
	b.limitN, b.limitPer = limitN, limitPer
	b.notify = make(chan struct{}, 1)
	b.srv = httptest.NewServer(h)
}

// Close stops the server.
func (b *sinkBase) Close() { b.srv.Close() }

// BaseURL is http://127.0.0.1:port.
func (b *sinkBase) BaseURL() string { return b.srv.URL }

// SetClock replaces the clock signatures and rate limits are checked
// against.
func (b *sinkBase) SetClock(now func() time.Time) {
	b.mu.Lock()
	b.now = now
	b.mu.Unlock()
}

// SetRateLimit changes how many messages the server accepts per period
// before it answers with its throttling code (n = 0: no limit).
func (b *sinkBase) SetRateLimit(n int, per time.Duration) {
	b.mu.Lock()
	b.limitN, b.limitPer, b.sentAt = n, per, nil
	b.mu.Unlock()
}

// FailNext plays f for the next n requests.
func (b *sinkBase) FailNext(f SinkFault, n int) {
	b.mu.Lock()
	b.faultsN = append(b.faultsN, sinkFaultN{f, n})
	b.mu.Unlock()
}

// FailFor plays f for every request during d.
func (b *sinkBase) FailFor(f SinkFault, d time.Duration) {
	b.mu.Lock()
	b.faultFor, b.faultTill = f, b.now().Add(d)
	b.mu.Unlock()
}

// Heal clears every pending fault.
func (b *sinkBase) Heal() {
	b.mu.Lock()
	b.faultsN, b.faultTill = nil, time.Time{}
	b.mu.Unlock()
}

// OnAccept registers f to run for each accepted message before the server
// answers (tests use it to kill a client between send and acknowledgement).
func (b *sinkBase) OnAccept(f func(SinkMessage)) {
	b.mu.Lock()
	b.onAccept = f
	b.mu.Unlock()
}

// Messages returns the messages accepted so far, in arrival order.
func (b *sinkBase) Messages() []SinkMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]SinkMessage(nil), b.accepted...)
}

// Rejected returns the requests refused with a platform error code
// (signature, key, format, throttling), in arrival order.
func (b *sinkBase) Rejected() []SinkMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]SinkMessage(nil), b.rejected...)
}

// Requests counts every request, faults included.
func (b *sinkBase) Requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests
}

// WaitMessages waits until at least n messages were accepted or timeout
// passes, and reports whether they were.
func (b *sinkBase) WaitMessages(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		got := len(b.accepted)
		b.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-b.notify:
		case <-deadline:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sinkFaultNow pops the fault to play, if any.
func (b *sinkBase) faultNow() (SinkFault, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests++
	if len(b.faultsN) > 0 {
		f := b.faultsN[0].f
		b.faultsN[0].n--
		if b.faultsN[0].n <= 0 {
			b.faultsN = b.faultsN[1:]
		}
		return f, true
	}
	if b.now().Before(b.faultTill) {
		return b.faultFor, true
	}
	return SinkFault{}, false
}

// play answers a fault; code/msg builds the platform's JSON error body.
// It reports whether it answered.
func (b *sinkBase) play(w http.ResponseWriter, f SinkFault, errBody func(code int, msg string) any) {
	switch {
	case f.Down:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		w.WriteHeader(http.StatusBadGateway)
	case f.Status != 0:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		http.Error(w, http.StatusText(f.Status), f.Status)
	default:
		sinkWriteJSON(w, errBody(f.ErrCode, f.ErrMsg))
	}
}

// overLimit records a send and reports whether it exceeds the rate limit.
func (b *sinkBase) overLimit() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limitN <= 0 {
		return false
	}
	now := b.now()
	keep := b.sentAt[:0]
	for _, t := range b.sentAt {
		if now.Sub(t) < b.limitPer {
			keep = append(keep, t)
		}
	}
	b.sentAt = keep
	if len(b.sentAt) >= b.limitN {
		return true
	}
	b.sentAt = append(b.sentAt, now)
	return false
}

func (b *sinkBase) record(r *http.Request, body []byte, code int) SinkMessage {
	m := SinkMessage{At: time.Now(), Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body, Code: code}
	b.mu.Lock()
	hook := b.onAccept
	if code == 0 {
		b.accepted = append(b.accepted, m)
	} else {
		b.rejected = append(b.rejected, m)
	}
	b.mu.Unlock()
	if code == 0 {
		if hook != nil {
			hook(m)
		}
		select {
		case b.notify <- struct{}{}:
		default:
		}
	}
	return m
}

func (b *sinkBase) clock() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now()
}

func sinkWriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func sinkReadBody(r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, limit))
}

func sinkIsJSON(r *http.Request) bool {
	return strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/json")
}

// ---------------------------------------------------------------- Feishu

// FeishuServer is a Feishu/Lark custom bot: POST
// /open-apis/bot/v2/hook/<hook>, signature in the body (timestamp in
// seconds, HMAC key = ts+"\n"+secret over an empty message), 20 KB body
// limit, 5 messages a second.
type FeishuServer struct {
	sinkBase
	hook, secret string
}

// NewFeishuServer starts a bot whose webhook is .../hook/<hook>; with a
// secret every request must be signed.
func NewFeishuServer(hook, secret string) *FeishuServer {
	s := &FeishuServer{hook: hook, secret: secret}
	s.init(http.HandlerFunc(s.serve), 5, time.Second)
	return s
}

// WebhookURL is the bot's webhook address.
func (s *FeishuServer) WebhookURL() string { return s.BaseURL() + "/open-apis/bot/v2/hook/" + s.hook }

func feishuErr(code int, msg string) any {
	return map[string]any{"code": code, "msg": msg, "data": map[string]any{}}
}

func (s *FeishuServer) serve(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.faultNow(); ok {
		s.play(w, f, feishuErr)
		return
	}
	body, _ := sinkReadBody(r, 1<<20)
	reject := func(code int, msg string) {
		s.record(r, body, code)
		sinkWriteJSON(w, feishuErr(code, msg))
	}
	if r.Method != http.MethodPost || r.URL.Path != "/open-apis/bot/v2/hook/"+s.hook {
		reject(19001, "param invalid: incoming webhook access token invalid")
		return
	}
	if len(body) > 20<<10 {
		reject(9499, "Bad Request: request body exceeds 20KB")
		return
	}
	var msg struct {
		Timestamp string          `json:"timestamp"`
		Sign      string          `json:"sign"`
		MsgType   string          `json:"msg_type"`
		Content   json.RawMessage `json:"content"`
		Card      json.RawMessage `json:"card"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		reject(9499, "Bad Request")
		return
	}
	if s.secret != "" {
		ts, err := strconv.ParseInt(msg.Timestamp, 10, 64)
		d := s.clock().Sub(time.Unix(ts, 0))
		if err != nil || d > time.Hour || d < -time.Hour || msg.Sign != feishuServerSign(s.secret, ts) {
			reject(19021, "sign match fail or timestamp is not within one hour from current time")
			return
		}
	}
	switch msg.MsgType {
	case "text", "post", "image", "share_chat":
		if len(msg.Content) == 0 || string(msg.Content) == "null" {
			reject(9499, "Bad Request: content is empty")
			return
		}
	case "interactive":
		if len(msg.Card) == 0 || string(msg.Card) == "null" {
			reject(9499, "Bad Request: card is empty")
			return
		}
	default:
		reject(9499, "Bad Request: unknown msg_type")
		return
	}
	if s.overLimit() {
		reject(11232, "frequency limited")
		return
	}
	s.record(r, body, 0)
	sinkWriteJSON(w, map[string]any{"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": map[string]any{}, "msg": "success"})
}

// feishuServerSign is the server's own computation of the signature.
func feishuServerSign(secret string, ts int64) string {
	mac := hmac.New(sha256.New, []byte(strconv.FormatInt(ts, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ----------------------------------------------------------------- WeCom

// WeComServer is a WeCom group robot: POST /cgi-bin/webhook/send?key=K,
// markdown ≤ 4096 bytes, text ≤ 2048 bytes, 20 messages a minute.
type WeComServer struct {
	sinkBase
	key string
}

// NewWeComServer starts a robot with the given key.
func NewWeComServer(key string) *WeComServer {
	s := &WeComServer{key: key}
	s.init(http.HandlerFunc(s.serve), 20, time.Minute)
	return s
}

// WebhookURL is the robot's webhook address.
func (s *WeComServer) WebhookURL() string {
	return s.BaseURL() + "/cgi-bin/webhook/send?key=" + url.QueryEscape(s.key)
}

func wecomErr(code int, msg string) any { return map[string]any{"errcode": code, "errmsg": msg} }

func (s *WeComServer) serve(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.faultNow(); ok {
		s.play(w, f, wecomErr)
		return
	}
	body, _ := sinkReadBody(r, 1<<20)
	reject := func(code int, msg string) {
		s.record(r, body, code)
		sinkWriteJSON(w, wecomErr(code, msg))
	}
	if r.Method != http.MethodPost || r.URL.Path != "/cgi-bin/webhook/send" || r.URL.Query().Get("key") != s.key {
		reject(93000, "invalid webhook url")
		return
	}
	var msg struct {
		MsgType  string `json:"msgtype"`
		Markdown *struct {
			Content string `json:"content"`
		} `json:"markdown"`
		Text *struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		reject(40058, "invalid json request")
		return
	}
	switch {
	case msg.MsgType == "markdown" && msg.Markdown != nil:
		if msg.Markdown.Content == "" || len(msg.Markdown.Content) > 4096 {
			reject(40058, "markdown.content exceed max length 4096 or is empty")
			return
		}
	case msg.MsgType == "text" && msg.Text != nil:
		if msg.Text.Content == "" || len(msg.Text.Content) > 2048 {
			reject(40058, "text.content exceed max length 2048 or is empty")
			return
		}
	default:
		reject(40008, "invalid message type")
		return
	}
	if s.overLimit() {
		reject(45009, "api freq out of limit")
		return
	}
	s.record(r, body, 0)
	sinkWriteJSON(w, wecomErr(0, "ok"))
}

// --------------------------------------------------------------- webhook

// WebhookServer accepts any JSON POST with 200 and records it, with its
// Idempotency-Key, so tests can count deliveries per event.
type WebhookServer struct {
	sinkBase
}

// NewWebhookServer starts a generic JSON receiver.
func NewWebhookServer() *WebhookServer {
	s := &WebhookServer{}
	s.init(http.HandlerFunc(s.serve), 0, 0)
	return s
}

// URL is the receiver's address (any path works).
func (s *WebhookServer) URL() string { return s.BaseURL() + "/hook" }

func (s *WebhookServer) serve(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.faultNow(); ok {
		s.play(w, f, func(code int, msg string) any { return map[string]any{"error": msg, "code": code} })
		return
	}
	body, _ := sinkReadBody(r, 4<<20)
	if r.Method != http.MethodPost || !sinkIsJSON(r) || !json.Valid(bytes.TrimSpace(body)) {
		s.record(r, body, 400)
		http.Error(w, "expected a JSON POST", http.StatusBadRequest)
		return
	}
	s.record(r, body, 0)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

// IdempotencyKeys returns the Idempotency-Key of each accepted message.
func (s *WebhookServer) IdempotencyKeys() []string {
	var out []string
	for _, m := range s.Messages() {
		out = append(out, m.Header.Get("Idempotency-Key"))
	}
	return out
}
