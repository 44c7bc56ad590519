package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/item"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Dialer builds the WebSocket dialer for a source: its proxy and
// timeout, and the User-Agent the HTTP client would send.
func Dialer(src config.SourceConfig, env collectors.Env) (*websocket.Dialer, http.Header, error) {
	d := &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 15 * time.Second,
		ReadBufferSize:   16 << 10,
		WriteBufferSize:  4 << 10,
	}
	if src.Timeout != 0 {
		d.HandshakeTimeout = src.Timeout.D()
	}
	if src.Proxy != "" {
		pu, err := url.Parse(src.Proxy)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "socks5") {
			return nil, nil, fmt.Errorf("proxy %q: want an http://, https:// or socks5:// URL", src.Proxy)
		}
		d.Proxy = http.ProxyURL(pu)
	}
	h := http.Header{}
	ua := src.UserAgent
	if ua == "" && env.HTTP != nil {
		ua = env.HTTP.UserAgentFor(src)
	}
	if ua == "" {
		ua = config.UserAgent("")
	}
	h.Set("User-Agent", ua)
	return d, h, nil
}

// Dial waits for the host's rate limiter and concurrency slot (a
// dial is a request like any other), then opens the WebSocket. A handshake
// answered with an HTTP status comes back as *httpx.StatusError.
func Dial(ctx context.Context, env collectors.Env, d *websocket.Dialer, rawURL string, h http.Header) (*websocket.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	release, err := env.HTTP.Wait(ctx, u.Host)
	if err != nil {
		return nil, err
	}
	defer release()
	conn, resp, err := d.DialContext(ctx, rawURL, h)
	if err != nil {
		if resp != nil {
			se := &httpx.StatusError{URL: rawURL, Status: resp.StatusCode}
			if resp.Body != nil { // gorilla keeps the first KiB of the body
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
				se.Body = Trunc(strings.TrimSpace(string(b)), 200)
			}
			if ra, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), env.Clock.Now()); ok {
				se.RetryAfter = ra
			}
			return nil, fmt.Errorf("websocket handshake: %w", se)
		}
		return nil, fmt.Errorf("dial %s: %w", httpx.RedactURL(rawURL), err)
	}
	return conn, nil
}

// CloseOnDone closes conn when ctx ends so that a blocked read
// returns; the returned stop ends the watcher when the session is over.
func CloseOnDone(ctx context.Context, conn *websocket.Conn) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = conn.Close()
		case <-done:
		}
	}()
	return func() { close(done) }
}

// Trunc shortens s to at most n runes and makes it valid UTF-8, so
// that it can go into a log line or a Prometheus label (which rejects
// invalid UTF-8).
func Trunc(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}

// Keepalive pings the server every interval so that a dead connection
// fails the read deadline and a live one extends it (on pong). The
// returned stop ends the pinger.
func Keepalive(ctx context.Context, conn *websocket.Conn, clock httpx.Clock, every time.Duration) (stop func()) {
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(3 * every))
	})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for httpx.Sleep(ctx, clock, every) == nil {
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// EventLoop is the read loop the JSON event streams (bluesky, mastodon)
// share: read a text frame within the deadline, decode it, emit the item,
// then run after (cursor or state saving) with the item handed on, or nil
// for an event that made none; after does not run for an item emit
// refused. Binary frames are counted as unknown, undecodable events as
// decode errors; neither ends the session, both are reported to env.Health
// as unusable, and every decoded event as a success (filtered out or not,
// it shows the stream works).
// healthy reports whether any frame arrived.
func EventLoop(ctx context.Context, conn *websocket.Conn, env collectors.Env, id, platform string, deadline time.Duration,
	decode func([]byte) (item.Item, bool, error), emit collectors.Emit, after func(emitted *item.Item)) (healthy bool, err error) {
	for {
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		typ, data, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return healthy, ctx.Err()
			}
			env.Metrics.Errors.WithLabelValues(id, "read").Inc()
			return healthy, fmt.Errorf("read: %w", err)
		}
		healthy = true
		if typ != websocket.TextMessage {
			// Neither stream sends binary frames unless asked (Jetstream's
			// compress=true would send zstd); we never ask.
			env.Metrics.Unknown.WithLabelValues(id, "binary_frame").Inc()
			env.Health.Unusable("binary_frame", errors.New("binary frame on a JSON event stream"))
			continue
		}
		it, ok, err := decode(data)
		if err != nil {
			env.Metrics.Errors.WithLabelValues(id, "decode").Inc()
			env.Log.Warn(platform+": bad event", "err", err, "event", Trunc(string(data), 300))
			env.Health.Unusable("decode", err)
			continue
		}
		env.Health.Succeeded()
		if !ok {
			after(nil)
			continue
		}
		CapItem(env, id, &it, len(data))
		if err := emit(ctx, it); err != nil {
			return healthy, err
		}
		env.Metrics.Items.WithLabelValues(id, string(it.Kind)).Inc()
		after(&it)
	}
}
