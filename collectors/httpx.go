package collectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"lookout/config"
)

// HTTPClient is the one way collectors reach the network. Every request
// waits for its host's token bucket (shared by all sources that hit the
// host) and for a slot under the global concurrency cap.
type HTTPClient struct {
	base    *http.Client
	limits  config.LimitsConfig
	metrics *Metrics
	sem     chan struct{}
	ua      string

	parent   *HTTPClient // set on ForSource copies: limiters live in the root
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// NewHTTPClient builds the shared client from limits (zero values get the
// config package defaults).
func NewHTTPClient(limits config.LimitsConfig, m *Metrics) *HTTPClient {
	if limits.Default.Rate == 0 {
		limits.Default.Rate = 2
	}
	if limits.MaxConcurrency <= 0 {
		limits.MaxConcurrency = 32
	}
	if limits.Timeout == 0 {
		limits.Timeout = config.Duration(15 * time.Second)
	}
	if limits.UserAgent == "" {
		limits.UserAgent = config.DefaultUserAgent
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &HTTPClient{
		base:     &http.Client{Timeout: limits.Timeout.D()},
		limits:   limits,
		metrics:  m,
		sem:      make(chan struct{}, limits.MaxConcurrency),
		ua:       limits.UserAgent,
		limiters: map[string]*rate.Limiter{},
	}
}

// ForSource returns a client that shares this one's limiters and cap but
// applies the source's User-Agent, proxy and timeout.
func (c *HTTPClient) ForSource(src config.SourceConfig) (*HTTPClient, error) {
	cp := &HTTPClient{base: c.base, limits: c.limits, metrics: c.metrics, sem: c.sem, ua: c.ua}
	cp.limiters = nil
	cp.parent = c
	if src.UserAgent != "" {
		cp.ua = src.UserAgent
	}
	if src.Proxy != "" || src.Timeout != 0 {
		hc := *c.base
		if src.Timeout != 0 {
			hc.Timeout = src.Timeout.D()
		}
		if src.Proxy != "" {
			pu, err := url.Parse(src.Proxy)
			if err != nil || (pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "socks5") {
				return nil, fmt.Errorf("proxy %q: want an http://, https:// or socks5:// URL", src.Proxy)
			}
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.Proxy = http.ProxyURL(pu) // net/http speaks socks5 proxies too
			hc.Transport = tr
		}
		cp.base = &hc
	}
	return cp, nil
}

// UserAgent is the User-Agent this client sends.
func (c *HTTPClient) UserAgent() string { return c.ua }

// Limiter returns the token bucket for host, creating it from the config.
func (c *HTTPClient) Limiter(host string) *rate.Limiter {
	if c.parent != nil {
		return c.parent.Limiter(host)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.limiters[host]; ok {
		return l
	}
	hl, ok := c.limits.Hosts[host]
	if !ok {
		hl = c.limits.Default
	}
	burst := hl.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(float64(hl.Rate))))
	}
	l := rate.NewLimiter(rate.Limit(hl.Rate), burst)
	c.limiters[host] = l
	return l
}

// Wait blocks until host's limiter and the concurrency cap allow one more
// request; release must be called when the request is done. WebSocket
// dials use it too.
func (c *HTTPClient) Wait(ctx context.Context, host string) (release func(), err error) {
	l := c.Limiter(host)
	if r := l.Reserve(); r.OK() {
		if d := r.Delay(); d > 0 {
			c.metrics.Waits.WithLabelValues(host).Inc()
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				r.Cancel()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() { once.Do(func() { <-c.sem }) }, nil
}

// Do sends req after waiting for its host's turn. The caller closes the
// body. Non-2xx responses are returned as they are; use CheckStatus.
func (c *HTTPClient) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	release, err := c.Wait(ctx, host)
	if err != nil {
		return nil, err
	}
	defer release()
	req = req.WithContext(ctx)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.ua)
	}
	resp, err := c.base.Do(req)
	if err != nil {
		c.metrics.Requests.WithLabelValues(host, "error").Inc()
		return nil, err
	}
	c.metrics.Requests.WithLabelValues(host, strconv.Itoa(resp.StatusCode)).Inc()
	return resp, nil
}

// StatusError is a non-success HTTP answer. RetryAfter is set from the
// Retry-After header on 429 and 503 (and 3xx that carry it).
type StatusError struct {
	URL        string
	Status     int
	RetryAfter time.Duration
	Body       string // first bytes of the body, for the log
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", redactURL(e.URL), e.Status)
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Temporary reports whether retrying later may help.
func (e *StatusError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Status == http.StatusRequestTimeout
}

// CheckStatus turns a non-2xx/304 response into a *StatusError (closing the
// body) and passes the others through.
func CheckStatus(resp *http.Response, now time.Time) error {
	if resp.StatusCode < 300 || resp.StatusCode == http.StatusNotModified {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	se := &StatusError{URL: resp.Request.URL.String(), Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
		se.RetryAfter = d
	}
	return se
}

// MaxRetryAfter caps what a server may ask us to wait.
const MaxRetryAfter = 6 * time.Hour

// ParseRetryAfter reads either form of Retry-After (delay-seconds or an
// HTTP-date) relative to now, clamped to [0, MaxRetryAfter].
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return min(d, MaxRetryAfter), true
}

// RetryDelay picks the wait before the next attempt after err: the
// server's Retry-After when it gave one (never less), else b.Next().
func RetryDelay(err error, b *Backoff) time.Duration {
	next := b.Next()
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return max(se.RetryAfter, next/4)
	}
	return next
}

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

// Reset starts over after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Attempt is the number of waits handed out since the last Reset.
func (b *Backoff) Attempt() int { return b.attempt }

// NewBackoff returns a Backoff with a seeded jitter source (deterministic
// in tests).
func NewBackoff(base, mx time.Duration, seed uint64) *Backoff {
	return &Backoff{Base: base, Max: mx, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Sleep waits d on clock or until ctx is done.
func Sleep(ctx context.Context, clock Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clock.After(d):
		return nil
	}
}

// redactURL keeps scheme, host and path but drops the query, which often
// carries tokens (access_token, key, sign).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.User = nil
	return u.String()
}
