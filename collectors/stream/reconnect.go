// Package stream is what the live-stream collectors share: the reconnect
// loop and its backoff policy, the per-message size caps, and WebSocket
// dialing, keepalive and the JSON event read loop.
package stream

import (
	"context"
	"hash/crc32"
	"lookout/collectors"
	"lookout/collectors/httpx"
	"time"
)

// Reconnect runs session until ctx is done, reconnecting after each end:
// a session that got going resets the backoff, a server's Retry-After is
// honoured, every end but a planned one is reported to env.Health as a
// failure (sessions report their own successes), and after (may be nil)
// runs after every session, the last one at shutdown included (saving cursors; ctx may be done by then, so it
// should write with context.WithoutCancel).
// adjust (may be nil) may change the wait for a known kind of ending. The
// bluesky, mastodon, twitch and websocket_json streams share it; bilibili_live
// (bootstrap and host rotation) and douyin_live (a slower backoff for an
// ended broadcast) keep loops of their own.
func Reconnect(ctx context.Context, env collectors.Env, id, platform string, session func(context.Context) (bool, error),
	after func(), adjust func(error, time.Duration) time.Duration) error {
	bo := NewBackoff(id)
	for {
		healthy, err := session(ctx)
		if after != nil {
			after()
		}
		if ctx.Err() != nil {
			return nil
		}
		if healthy {
			bo.Reset()
		}
		env.Health.StreamEnded(err)
		env.Metrics.Reconnects.WithLabelValues(id).Inc()
		wait := httpx.RetryDelay(err, bo)
		if adjust != nil {
			wait = adjust(err, wait)
		}
		env.Log.Warn(platform+": connection ended; reconnecting", "err", err, "wait", wait)
		if err := httpx.Sleep(ctx, env.Clock, wait); err != nil {
			return nil
		}
	}
}

// Stream reconnect policy. A live room that drops us is usually back within
// seconds (a server restart, a network blip), and every second spent
// waiting is chat lost, so the wait starts at BackoffBase and never
// grows past BackoffMax, however long the outage: once the server is
// back, the next attempt comes within BackoffMax. The equal jitter
// keeps many rooms reconnecting to one host from arriving in lockstep. A
// server's Retry-After (httpx.RetryDelay) still overrides the cap: it asked.
const (
	BackoffBase = time.Second
	BackoffMax  = 5 * time.Second
)

// NewBackoff is the reconnect backoff of one stream source, its
// jitter seeded from the source id and the clock so that sources started
// together still spread out.
func NewBackoff(sourceID string) *httpx.Backoff {
	seed := uint64(crc32.ChecksumIEEE([]byte(sourceID))) ^ uint64(time.Now().UnixNano())
	return httpx.NewBackoff(BackoffBase, BackoffMax, seed)
}
