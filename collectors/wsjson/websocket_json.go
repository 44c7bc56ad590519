// Package wsjson is the websocket_json collector: any JSON-over-WebSocket
// feed, mapped with a jsonapi.Mapping.
package wsjson

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/jsonapi"
	"lookout/collectors/poll"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/item"
)

// websocket_json reads any JSON-over-WebSocket feed: each text frame is one
// JSON object or an array of them, mapped with the same jsonapi.Mapping as
// json_api. It is also the seam for a user's own bridge to platforms that
// need signing (a small service that signs, connects and re-publishes
// JSON).
//
//   - id: my-bridge
//     kind: websocket_json
//     url: wss://bridge.example.com/feed
//     subscribe: '{"op":"subscribe","room":"12345"}'
//     mapping: {items: "data[*]", id: msg_id, text: content, author: user.nick, time: ts, time_format: unix_ms, kind: chat,
//               metrics: {viewers: ^.online}}   # ^: read from the frame, once per frame
//     unmatched_frames: 20   # default; a mapped path that matches nothing in this many frames in a row is a warning (0: off)

type wsjsonSpec struct {
	URL           string                   `yaml:"url"`
	Subscribe     string                   `yaml:"subscribe"` // text message sent after each connect
	Headers       map[string]string        `yaml:"headers"`
	SecretHeaders map[string]config.Secret `yaml:"secret_headers"`
	Platform      string                   `yaml:"platform"` // default websocket
	Room          string                   `yaml:"room"`     // default the source id
	PingInterval  config.Duration          `yaml:"ping_interval"`
	IdleTimeout   config.Duration          `yaml:"idle_timeout"` // reconnect when nothing arrives for this long
	Mapping       jsonapi.Mapping          `yaml:"mapping"`
	// UnmatchedFrames: a mapped path that matches nothing in this many
	// frames in a row is reported (default 20, 0: never).
	UnmatchedFrames *int `yaml:"unmatched_frames"`
}

// wsjsonDefaultUnmatched is the default of unmatched_frames.
const wsjsonDefaultUnmatched = 20

type wsjsonCollector struct {
	src    config.SourceConfig
	spec   wsjsonSpec
	env    collectors.Env
	mapper *jsonapi.Mapper
	dialer websocket.Dialer
	header http.Header
	host   string

	// Owned by Run's goroutine.
	unmatchedAfter int
	fields         []jsonapi.Field
	misses         []int  // per field: frames in a row it matched nothing in
	warned         []bool // per field: reported, not matched since
	frames         uint64 // frames read, for frame metrics' ids
}

// wsjsonMaxFrame bounds one frame: the read limit every stream shares.
const wsjsonMaxFrame = stream.MaxFrame

// New builds a websocket_json source (a collectors.Factory).
func New(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec wsjsonSpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	u, err := url.Parse(spec.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("url %q: want a ws:// or wss:// URL", httpx.RedactURL(spec.URL))
	}
	c := &wsjsonCollector{src: src, spec: spec, env: env, host: u.Host, header: http.Header{}, unmatchedAfter: wsjsonDefaultUnmatched}
	if c.mapper, err = jsonapi.NewMapper(spec.Mapping.TimeZoneFrom(src)); err != nil {
		return nil, err
	}
	if spec.UnmatchedFrames != nil {
		if *spec.UnmatchedFrames < 0 {
			return nil, fmt.Errorf("unmatched_frames: %d is negative (0: never warn)", *spec.UnmatchedFrames)
		}
		c.unmatchedAfter = *spec.UnmatchedFrames
	}
	c.fields = c.mapper.Fields()
	c.misses, c.warned = make([]int, len(c.fields)), make([]bool, len(c.fields))
	for k, v := range spec.Headers {
		if strings.Contains(v, "${") {
			return nil, fmt.Errorf("headers.%s: secrets go in secret_headers (written ${ENV_VAR}), not in headers", k)
		}
		c.header.Set(k, v)
	}
	for k, s := range spec.SecretHeaders {
		if s.Missing() {
			return nil, fmt.Errorf("secret_headers.%s: environment variable %s is empty", k, s.Var)
		}
		c.header.Set(k, s.Value())
	}
	ua := env.HTTP.UserAgent()
	if src.UserAgent != "" {
		ua = src.UserAgent
	}
	c.header.Set("User-Agent", ua)
	c.dialer = websocket.Dialer{HandshakeTimeout: 15 * time.Second, Proxy: http.ProxyFromEnvironment}
	if src.Timeout > 0 {
		c.dialer.HandshakeTimeout = src.Timeout.D()
	}
	if src.Proxy != "" {
		pu, err := url.Parse(src.Proxy)
		if err != nil || pu.Host == "" {
			return nil, fmt.Errorf("proxy %s: want an http:// or socks5:// URL", httpx.RedactURL(src.Proxy))
		}
		c.dialer.Proxy = http.ProxyURL(pu)
	}
	if c.spec.PingInterval <= 0 {
		c.spec.PingInterval = config.Duration(30 * time.Second)
	}
	if c.spec.IdleTimeout <= 0 {
		c.spec.IdleTimeout = config.Duration(5 * time.Minute)
	}
	if c.spec.Platform == "" {
		c.spec.Platform = "websocket"
	}
	if c.spec.Room == "" {
		c.spec.Room = src.ID
	}
	return c, nil
}

// Run connects, reads until the connection ends, and reconnects with
// backoff until ctx is done; the state (seen ids) is saved between
// connections.
func (c *wsjsonCollector) Run(ctx context.Context, emit collectors.Emit) error {
	st, err := poll.LoadState(ctx, c.env.State, c.src.ID)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	return stream.Reconnect(ctx, c.env, c.src.ID, "websocket_json", func(ctx context.Context) (bool, error) {
		got, err := c.session(ctx, emit, st)
		if ctx.Err() == nil {
			reason := "disconnected"
			var se *httpx.StatusError
			switch {
			case errors.As(err, &se):
				reason = poll.Reason(err)
			case errors.Is(err, errWSJSONDial):
				reason = "dial"
			}
			c.env.Metrics.Errors.WithLabelValues(c.src.ID, reason).Inc()
		}
		return got > 0, err
	}, func() {
		sctx, cancel := collectors.StateContext(ctx)
		defer cancel()
		if err := st.Save(sctx, c.env.State, c.src.ID); err != nil {
			c.env.StateSaveFailed(ctx, c.src.ID, "seen ids", err)
		}
	}, nil)
}

var errWSJSONDial = errors.New("dial")

// session runs one connection and returns how many items it emitted.
func (c *wsjsonCollector) session(ctx context.Context, emit collectors.Emit, st *poll.State) (int, error) {
	release, err := c.env.HTTP.Wait(ctx, c.host)
	if err != nil {
		return 0, err
	}
	conn, resp, err := c.dialer.DialContext(ctx, c.spec.URL, c.header)
	release()
	if err != nil {
		if resp != nil && resp.StatusCode >= 300 {
			se := &httpx.StatusError{URL: c.spec.URL, Status: resp.StatusCode}
			if d, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), c.env.Clock.Now()); ok {
				se.RetryAfter = d
			}
			return 0, fmt.Errorf("%w: %w", errWSJSONDial, se)
		}
		return 0, fmt.Errorf("%w %s: %w", errWSJSONDial, httpx.RedactURL(c.spec.URL), err)
	}
	conn.SetReadLimit(wsjsonMaxFrame)
	idle := c.spec.IdleTimeout.D()
	_ = conn.SetReadDeadline(time.Now().Add(idle))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(idle)) })

	var wg sync.WaitGroup
	done := make(chan struct{})
	defer func() {
		close(done)
		conn.Close()
		wg.Wait()
	}()
	var writeMu sync.Mutex
	wg.Add(1)
	go func() { // owner: this session; closes the connection on ctx, pings meanwhile
		defer wg.Done()
		t := time.NewTicker(c.spec.PingInterval.D())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				writeMu.Lock()
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				writeMu.Unlock()
				conn.Close()
				return
			case <-done:
				return
			case <-t.C:
				writeMu.Lock()
				err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second))
				writeMu.Unlock()
				if err != nil {
					conn.Close()
					return
				}
			}
		}
	}()
	if c.spec.Subscribe != "" {
		writeMu.Lock()
		err := conn.WriteMessage(websocket.TextMessage, []byte(c.spec.Subscribe))
		writeMu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("subscribe: %w", err)
		}
	}
	c.env.Log.Info("websocket feed connected", "url", httpx.RedactURL(c.spec.URL))
	c.env.Health.Succeeded()
	base := item.Item{Source: c.src.ID, Platform: c.spec.Platform, Room: c.spec.Room, Labels: c.src.Labels}
	got := 0
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			return got, fmt.Errorf("read: %w", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		if typ != websocket.TextMessage {
			c.env.Metrics.Unknown.WithLabelValues(c.src.ID, "binary_frame").Inc()
			c.env.Health.Unusable("binary_frame", errors.New("binary frame on a JSON feed"))
			continue
		}
		recs, err := c.frame(data, base, st)
		if err != nil {
			c.env.Metrics.Errors.WithLabelValues(c.src.ID, "decode").Inc()
			c.env.Log.Warn("websocket frame skipped", "err", err, "bytes", len(data))
			c.env.Health.Unusable("decode", err)
			continue
		}
		for _, r := range recs {
			for _, it := range r.items {
				stream.CapItem(c.env, c.src.ID, &it, len(it.Raw))
				if err := emit(ctx, it); err != nil {
					return got, err
				}
				c.env.Metrics.Items.WithLabelValues(c.src.ID, string(it.Kind)).Inc()
				got++
			}
			st.Emitted(r.id, r.ts)
		}
	}
}

// wsjsonRecord is one mapped element of a frame.
type wsjsonRecord struct {
	id    string
	ts    time.Time
	items []item.Item
}

// frame maps one text frame. Ids seen before (a feed replaying its backlog
// after a reconnect) are dropped. Metrics read from the frame's root come
// last, as a record of their own (no id: they are samples, not seen ids).
func (c *wsjsonCollector) frame(data []byte, base item.Item, st *poll.State) ([]wsjsonRecord, error) {
	doc, err := jsonapi.DecodeJSON(data)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	els, found := c.mapper.Elements(doc)
	c.checkMatches(doc, els, found)
	now := c.env.Clock.Now()
	var out []wsjsonRecord
	for _, el := range els {
		rec, err := c.mapper.Record(doc, el)
		if err != nil {
			c.env.Metrics.Errors.WithLabelValues(c.src.ID, "bad_field").Inc()
		}
		if st.Seen(rec.ID) || slices.ContainsFunc(out, func(r wsjsonRecord) bool { return r.id == rec.ID }) {
			continue
		}
		out = append(out, wsjsonRecord{id: rec.ID, ts: rec.TS, items: c.mapper.Items(rec, base, now)})
	}
	c.frames++
	if fm := c.mapper.FrameMetrics(doc, fmt.Sprintf("frame:%d.%d", now.UnixNano(), c.frames), base, now); len(fm) > 0 {
		out = append(out, wsjsonRecord{items: fm})
	}
	return out, nil
}

// checkMatches counts, per mapped path, the frames in a row it matched
// nothing in, and reports a path that reaches unmatched_frames: a
// mapping that silently stores nothing is a misconfiguration or a feed
// that changed shape. Item paths are judged on frames with items, root
// paths (^) and items on every frame.
func (c *wsjsonCollector) checkMatches(doc any, els []any, found bool) {
	if c.unmatchedAfter == 0 {
		return
	}
	for i, f := range c.fields {
		var matched bool
		switch {
		case f.Name == "items":
			matched = found
		case f.Path.Root():
			_, matched = f.Path.Get(doc)
		case len(els) == 0:
			continue
		default:
			matched = slices.ContainsFunc(els, func(el any) bool { _, ok := f.Path.Get(el); return ok })
		}
		if matched {
			if c.warned[i] {
				c.env.Log.Info("websocket_json: mapping path matches again", "field", "mapping."+f.Name, "path", f.Path.String())
			}
			c.misses[i], c.warned[i] = 0, false
			continue
		}
		c.misses[i]++
		if c.misses[i] == c.unmatchedAfter {
			c.warned[i] = true
			err := fmt.Errorf("mapping.%s: path %q matched nothing in the last %d frames", f.Name, f.Path.String(), c.misses[i])
			c.env.Metrics.Errors.WithLabelValues(c.src.ID, "unmatched_path").Inc()
			c.env.Log.Warn("websocket_json: a mapping path matches nothing", "field", "mapping."+f.Name, "path", f.Path.String(), "frames", c.misses[i])
			c.env.Health.Warned("unmatched_path", err)
		}
	}
}
