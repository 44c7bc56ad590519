package httpx

import (
	"math/rand/v2"
	"time"
)

// The one home of retry timing: Backoff (exponential, equal jitter, capped).
// The reconnect policy of live streams built on it is in collectors/stream.

// Backoff is exponential backoff with "equal jitter": each wait is between
// half and all of min(Max, Base·2^attempt), so reconnecting clients spread
// out instead of stampeding.
type Backoff struct {
	Base time.Duration // first wait, default 1s
	Max  time.Duration // cap, default 2m

	attempt int
	rnd     *rand.Rand
}

// Next returns the next wait and advances.
func (b *Backoff) Next() time.Duration {
	base, mx := b.Base, b.Max
	if base <= 0 {
		base = time.Second
	}
	if mx <= 0 {
		mx = 2 * time.Minute
	}
	d := base << min(b.attempt, 30)
	if d <= 0 || d > mx {
		d = mx
	}
	b.attempt++
	half := d / 2
	var j int64
	if b.rnd != nil {
		j = b.rnd.Int64N(int64(half) + 1)
	} else {
		j = rand.Int64N(int64(half) + 1)
	}
	return half + time.Duration(j)
}

// jitter is a uniform wait in [0, upTo] from the backoff's random source.
func (b *Backoff) jitter(upTo time.Duration) time.Duration {
	if upTo <= 0 {
		return 0
	}
	if b.rnd != nil {
		return time.Duration(b.rnd.Int64N(int64(upTo) + 1))
	}
	return time.Duration(rand.Int64N(int64(upTo) + 1))
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Attempt is the number of waits handed out since the last Reset.
func (b *Backoff) Attempt() int { return b.attempt }

// NewBackoff returns a Backoff with a seeded jitter source (deterministic
// in tests).
func NewBackoff(base, mx time.Duration, seed uint64) *Backoff {
	return &Backoff{Base: base, Max: mx, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}
