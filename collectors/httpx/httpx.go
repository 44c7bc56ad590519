// Package httpx is the shared HTTP politeness of every collector: one
// Client with per-host rate limits, per-source circuit breakers, a global
// concurrency cap, robots.txt, remembered permanent redirects and an
// honest User-Agent; Backoff with jitter, Retry-After parsing, charset
// detection (ToUTF8) and URL redaction for logs and errors.
package httpx

import (
	"context"
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

	"golang.org/x/time/rate"

	"lookout/config"

	"lookout/internal/redact"
)

// Client is the one way collectors reach the network. Every request
// passes its source's circuit breaker for the host, robots.txt (for the
// sources that obey it), waits for its host's token bucket (shared by all
// sources that hit the host; redirect hops wait for it too) and for a slot
// under the global concurrency cap. Copies made by ForSource share the
// buckets, the cap, the robots.txt cache and the remembered redirects.
//
// Breakers are per source and host: a source whose requests keep failing
// (a wrong path that answers 5xx, a token the API chokes on) stops only
// itself, and the other sources on the same host go on polling. When the
// host itself is down, every source's breaker opens after its own few
// failures, which costs each source Threshold requests before it backs
// off — the price of never starving a healthy source.
type Client struct {
	base    *http.Client
	limits  config.LimitsConfig
	metrics *Metrics
	sem     chan struct{}
	ua      string
	clock   Clock
	log     *slog.Logger
	source  string // "" for the root client
	robots  bool   // obey robots.txt

	hosts *hostState // shared by every ForSource copy
}

// hostState is the per-host state shared by a root client and its copies.
type hostState struct {
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	breakers map[string]*Breaker          // by source and host
	moved    map[string]string            // permanent redirects seen this run: from → to
	movedBy  map[string]map[string]string // the same by the source that met them
	robots   map[string]*robotsEntry

	breakerThreshold int
	breakerCooldown  time.Duration
	robotsTTL        time.Duration
	honestUA         bool // the User-Agent is lookout's own, not a configured one
}

// Options tunes what LimitsConfig does not cover. The zero value is the
// production default.
type Options struct {
	// Clock drives breaker cool-downs and Retry-After dates (RealClock when nil).
	Clock Clock
	// BreakerThreshold is the number of consecutive failures (transport
	// errors, timeouts, 5xx) that opens a host's breaker; default 5, negative
	// disables breakers.
	BreakerThreshold int
	// BreakerCooldown is how long an open breaker fails fast before letting
	// one probe through; default 30s.
	BreakerCooldown time.Duration
	// Version goes into the default User-Agent (config.UserAgent).
	Version string
	// Log receives the permanent redirects and robots.txt notices (discarded
	// when nil).
	Log *slog.Logger
	// RobotsTTL is how long a fetched robots.txt is trusted; default 24h.
	RobotsTTL time.Duration
}

// Defaults for Options.
const (
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 30 * time.Second
)

// NewClient builds the shared client from limits (zero values get the
// config package defaults).
func NewClient(limits config.LimitsConfig, m *Metrics) *Client {
	return NewClientWith(limits, m, Options{})
}

// NewClientWith is NewClient with options (a test clock, breaker
// tuning).
func NewClientWith(limits config.LimitsConfig, m *Metrics, opts Options) *Client {
	if limits.Default.Rate == 0 {
		limits.Default.Rate = 2
	}
	if limits.MaxConcurrency <= 0 {
		limits.MaxConcurrency = 32
	}
	if limits.Timeout == 0 {
		limits.Timeout = config.Duration(15 * time.Second)
	}
	honest := limits.UserAgent == ""
	if honest {
		limits.UserAgent = config.UserAgent(opts.Version)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RobotsTTL <= 0 {
		opts.RobotsTTL = DefaultRobotsTTL
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if opts.Clock == nil {
		opts.Clock = RealClock
	}
	if opts.BreakerThreshold == 0 {
		opts.BreakerThreshold = DefaultBreakerThreshold
	}
	if opts.BreakerCooldown <= 0 {
		opts.BreakerCooldown = DefaultBreakerCooldown
	}
	c := &Client{
		limits:  limits,
		metrics: m,
		sem:     make(chan struct{}, limits.MaxConcurrency),
		ua:      limits.UserAgent,
		clock:   opts.Clock,
		log:     opts.Log,
		hosts: &hostState{
			limiters:         map[string]*rate.Limiter{},
			breakers:         map[string]*Breaker{},
			moved:            map[string]string{},
			movedBy:          map[string]map[string]string{},
			robots:           map[string]*robotsEntry{},
			breakerThreshold: opts.BreakerThreshold,
			breakerCooldown:  opts.BreakerCooldown,
			robotsTTL:        opts.RobotsTTL,
			honestUA:         honest,
		},
	}
	c.base = &http.Client{Timeout: limits.Timeout.D(), CheckRedirect: c.checkRedirect}
	return c
}

// DefaultRobotsTTL is how long a robots.txt is cached.
const DefaultRobotsTTL = 24 * time.Hour

// ObeysRobots reports whether sources of kind fetch and obey robots.txt
// by default: the generic kinds that can be pointed at any site. Platform
// kinds talk to documented APIs of the platforms they are named after.
func ObeysRobots(kind string) bool {
	switch kind {
	case "rss", "html", "json_api":
		return true
	}
	return false
}

// ForSource returns a client that shares this one's limiters, cap,
// robots.txt cache and remembered redirects but has the source's own
// breakers and applies the source's User-Agent (see UserAgentFor), proxy,
// timeout and robots.txt policy. A source that ignores robots.txt is
// logged as a warning here, once.
func (c *Client) ForSource(src config.SourceConfig) (*Client, error) {
	cp := *c
	cp.source = src.ID
	cp.ua = c.UserAgentFor(src)
	cp.log = c.log.With("source", src.ID)
	cp.robots = ObeysRobots(src.Kind) && !src.IgnoreRobots
	if ObeysRobots(src.Kind) && src.IgnoreRobots {
		cp.log.Warn("robots.txt ignored for this source (ignore_robots: true); make sure the site allows it")
	}
	hc := *c.base
	hc.CheckRedirect = cp.checkRedirect
	if src.Timeout != 0 {
		hc.Timeout = src.Timeout.D()
	}
	if src.Proxy != "" {
		pu, err := proxyURL(src.Proxy)
		if err != nil {
			return nil, err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// net/http dials socks5:// (and socks5h://) proxies itself.
		tr.Proxy = http.ProxyURL(pu)
		hc.Transport = tr
	}
	cp.base = &hc
	return &cp, nil
}

// UserAgentFor is the User-Agent a source sends: its own user_agent; else
// limits.user_agent; else, for the platform kinds that need one
// (config.NeedsBrowserUserAgent), a browser's; else lookout's own.
func (c *Client) UserAgentFor(src config.SourceConfig) string {
	switch {
	case src.UserAgent != "":
		return src.UserAgent
	case c.hosts.honestUA && c.source == "" && config.NeedsBrowserUserAgent(src.Kind):
		return config.BrowserUserAgent
	}
	return c.ua
}

// proxyURL checks a proxy setting. The error never echoes the URL's
// password.
func proxyURL(raw string) (*url.URL, error) {
	pu, err := url.Parse(raw)
	if err != nil || pu.Host == "" {
		return nil, fmt.Errorf("proxy %s: want an http://, https://, socks5:// or socks5h:// URL with a host", RedactURL(raw))
	}
	switch pu.Scheme {
	case "http", "https", "socks5", "socks5h":
		return pu, nil
	}
	return nil, fmt.Errorf("proxy %s: scheme %q not supported (want http, https, socks5 or socks5h)", RedactURL(raw), pu.Scheme)
}

// UserAgent is the User-Agent this client sends.
func (c *Client) UserAgent() string { return c.ua }

// Timeout is the per-request timeout (connect, headers and body).
func (c *Client) Timeout() time.Duration { return c.base.Timeout }

// Limiter returns the token bucket for host, creating it from the config.
func (c *Client) Limiter(host string) *rate.Limiter {
	h := c.hosts
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.limiters[host]; ok {
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
	h.limiters[host] = l
	return l
}

// Breaker returns this client's source's circuit breaker for host, or nil
// when breakers are disabled.
func (c *Client) Breaker(host string) *Breaker {
	h := c.hosts
	if h.breakerThreshold < 0 {
		return nil
	}
	key := c.source + "\x00" + host
	h.mu.Lock()
	defer h.mu.Unlock()
	if b, ok := h.breakers[key]; ok {
		return b
	}
	b := NewBreaker(host, h.breakerThreshold, h.breakerCooldown, c.clock)
	h.breakers[key] = b
	return b
}

// Wait blocks until host's limiter and the concurrency cap allow one more
// request; release must be called when the request is done. WebSocket
// dials use it too.
func (c *Client) Wait(ctx context.Context, host string) (release func(), err error) {
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

// Do sends req after its source's breaker for the host lets it through,
// robots.txt allows it (*RobotsError otherwise) and its turn has come. A
// URL that answered with a permanent redirect earlier in the run is
// requested at its new location directly. The caller closes the body.
// Non-2xx responses are returned as they are; use CheckStatus. Errors
// never carry the URL's query string.
func (c *Client) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	orig := req.URL.String()
	if to, ok := c.movedTo(req); ok {
		u, err := url.Parse(to)
		if err == nil {
			req = req.Clone(ctx)
			req.URL, req.Host = u, ""
		}
	}
	if c.robots {
		if err := c.robotsAllow(ctx, req.URL, false); err != nil {
			c.metrics.Requests.WithLabelValues(req.URL.Host, "robots_disallowed").Inc()
			return nil, err
		}
	}
	host := req.URL.Host
	br := c.Breaker(host)
	if br != nil {
		if err := br.Allow(); err != nil {
			c.metrics.Requests.WithLabelValues(host, "breaker_open").Inc()
			return nil, err
		}
	}
	release, err := c.Wait(ctx, host)
	if err != nil {
		br.Cancel()
		return nil, err
	}
	defer release()
	req = req.WithContext(ctx)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.ua)
	}
	resp, err := c.base.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			br.Cancel() // the caller gave up; says nothing about the host
		} else {
			br.Record(false)
		}
		c.metrics.Requests.WithLabelValues(host, "error").Inc()
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = RedactURL(ue.URL)
		}
		return nil, err
	}
	switch {
	case resp.StatusCode >= 500:
		br.Record(false)
	case resp.StatusCode == http.StatusTooManyRequests:
		// The host is up and asks us to slow down; Retry-After handles it.
		br.Cancel()
	default:
		br.Record(true)
	}
	c.metrics.Requests.WithLabelValues(host, strconv.Itoa(resp.StatusCode)).Inc()
	c.rememberMove(orig, req.Method, resp)
	return resp, nil
}

// maxRedirects bounds a redirect chain.
const maxRedirects = 10

// checkRedirect is the http.Client's redirect policy: at most maxRedirects
// hops, each waiting for its host's token bucket like any request, and
// each checked against robots.txt when the source obeys it.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	ctx := req.Context()
	host := req.URL.Host
	l := c.Limiter(host)
	if r := l.Reserve(); r.OK() {
		if d := r.Delay(); d > 0 {
			c.metrics.Waits.WithLabelValues(host).Inc()
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				r.Cancel()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	if c.robots {
		if err := c.robotsAllow(ctx, req.URL, true); err != nil {
			return err
		}
	}
	return nil
}

// movedTo returns where req's URL moved for good earlier in the run.
func (c *Client) movedTo(req *http.Request) (string, bool) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return "", false
	}
	h := c.hosts
	h.mu.Lock()
	defer h.mu.Unlock()
	to, ok := h.moved[req.URL.String()]
	return to, ok
}

// rememberMove records orig's new location when resp was reached only
// through permanent redirects (301, 308), so that the rest of the run
// asks the new URL directly, and logs it once: the configured URL should
// be updated.
func (c *Client) rememberMove(orig, method string, resp *http.Response) {
	if method != http.MethodGet && method != http.MethodHead {
		return
	}
	if resp.Request == nil || resp.Request.URL == nil || resp.Request.URL.String() == orig {
		return
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		return // a chain ending in an error proves nothing about the new URL
	}
	for r := resp.Request; r != nil && r.Response != nil; r = r.Response.Request {
		if s := r.Response.StatusCode; s != http.StatusMovedPermanently && s != http.StatusPermanentRedirect {
			return
		}
	}
	to := resp.Request.URL.String()
	h := c.hosts
	h.mu.Lock()
	prev, seen := h.moved[orig]
	h.moved[orig] = to
	if c.source != "" {
		if h.movedBy[c.source] == nil {
			h.movedBy[c.source] = map[string]string{}
		}
		h.movedBy[c.source][orig] = to
	}
	h.mu.Unlock()
	if !seen || prev != to {
		c.log.Warn("permanent redirect: using the new URL for the rest of this run; update the configured URL",
			"configured", RedactURL(orig), "moved_to", RedactURL(to), "status", resp.Request.Response.StatusCode)
	}
}

// Moved lists the permanent redirects seen in this run, configured URL →
// new URL (queries redacted).
func (c *Client) Moved() map[string]string {
	h := c.hosts
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]string, len(h.moved))
	for from, to := range h.moved {
		out[RedactURL(from)] = RedactURL(to)
	}
	return out
}

// MovedFor lists the permanent redirects source met in this run,
// configured URL → new URL (queries redacted); nil when none.
func (c *Client) MovedFor(source string) map[string]string {
	h := c.hosts
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.movedBy[source]) == 0 {
		return nil
	}
	out := make(map[string]string, len(h.movedBy[source]))
	for from, to := range h.movedBy[source] {
		out[RedactURL(from)] = RedactURL(to)
	}
	return out
}

// Validators are the HTTP cache validators of a stored representation,
// kept verbatim as the server sent them (RFC 9110 §8.8).
type Validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// IsZero reports whether there is nothing to revalidate with.
func (v Validators) IsZero() bool { return v.ETag == "" && v.LastModified == "" }

// ConditionalResponse is the outcome of GetConditional.
type ConditionalResponse struct {
	NotModified bool        // 304: the stored representation is current
	Status      int         // 200…299 or 304
	Body        []byte      // nil on 304
	Header      http.Header // response headers
	URL         *url.URL    // final URL after redirects: the base for relative links
	Validators  Validators  // what to send next time
}

// MaxBodyBytes caps the bodies GetConditional reads.
const MaxBodyBytes = 16 << 20

// GetConditional fetches rawURL, revalidating with prev (If-None-Match and
// If-Modified-Since carry the stored strings verbatim). A 304 keeps prev's
// validators unless the server sent new ones; a 200 replaces them with the
// response's own. Non-2xx answers come back as *StatusError (with
// RetryAfter on 429/503). header adds request headers (e.g. Accept).
func (c *Client) GetConditional(ctx context.Context, rawURL string, prev Validators, header http.Header) (*ConditionalResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", RedactURL(rawURL), redactErr(err, rawURL))
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := CheckStatus(resp, c.clock.Now()); err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &ConditionalResponse{Status: resp.StatusCode, Header: resp.Header, URL: resp.Request.URL}
	if resp.StatusCode == http.StatusNotModified {
		out.NotModified = true
		out.Validators = prev
		if v := resp.Header.Get("ETag"); v != "" {
			out.Validators.ETag = v
		}
		if v := resp.Header.Get("Last-Modified"); v != "" {
			out.Validators.LastModified = v
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return out, nil
	}
	body, err := ReadBody(resp, MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	out.Body = body
	out.Validators = Validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	return out, nil
}

// ErrTooLarge is what a body over its cap fails with (wrapped in a
// *TooLargeError).
var ErrTooLarge = errors.New("body too large")

// TooLargeError is a response body longer than the cap the caller set.
type TooLargeError struct {
	URL   string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("read %s: body larger than %d bytes", RedactURL(e.URL), e.Limit)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// ReadBody reads resp's body up to limit bytes: a longer one is a
// *TooLargeError, not a network failure. It does not close the body.
func ReadBody(resp *http.Response, limit int64) ([]byte, error) {
	raw := ""
	if resp.Request != nil && resp.Request.URL != nil {
		raw = resp.Request.URL.String()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", RedactURL(raw), redactErr(err, raw))
	}
	if int64(len(body)) > limit {
		return nil, &TooLargeError{URL: raw, Limit: limit}
	}
	return body, nil
}

// redactErr strips raw (and its query) from err's text.
func redactErr(err error, raw string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURL(ue.URL)
		return err
	}
	if raw != "" && strings.Contains(err.Error(), raw) {
		return errors.New(strings.ReplaceAll(err.Error(), raw, RedactURL(raw)))
	}
	return err
}

// StatusError is a non-success HTTP answer. RetryAfter is set from the
// Retry-After header on 429 and 503 (and 3xx that carry it), or, on a 429
// without Retry-After, from X-RateLimit-Reset or RateLimit-Reset (see
// ParseRateLimitReset).
type StatusError struct {
	URL        string
	Status     int
	RetryAfter time.Duration
	Body       string // first bytes of the body, for the log
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", RedactURL(e.URL), e.Status)
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
	se := &StatusError{Status: resp.StatusCode, Body: strings.ToValidUTF8(strings.TrimSpace(string(b)), "")}
	if resp.Request != nil && resp.Request.URL != nil {
		se.URL = resp.Request.URL.String()
	}
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
		se.RetryAfter = d
	} else if resp.StatusCode == http.StatusTooManyRequests {
		if d, ok := rateLimitReset(resp.Header, now); ok {
			se.RetryAfter = d
		}
	}
	return se
}

// rateLimitReset reads the rate-limit window's reset from X-RateLimit-Reset
// or, without it, from the unprefixed RateLimit-Reset (Twitch Helix).
func rateLimitReset(h http.Header, now time.Time) (time.Duration, bool) {
	if d, ok := ParseRateLimitReset(h.Get("X-RateLimit-Reset"), now); ok {
		return d, true
	}
	return ParseRateLimitReset(h.Get("RateLimit-Reset"), now)
}

// RateLimitSpent reports how long to wait before the next request when a
// response says the rate-limit window has no requests left
// (X-RateLimit-Remaining or RateLimit-Remaining is 0): until the window's
// reset. ok is false while requests remain or the headers are absent.
func RateLimitSpent(h http.Header, now time.Time) (wait time.Duration, ok bool) {
	rem := h.Get("X-RateLimit-Remaining")
	if rem == "" {
		rem = h.Get("RateLimit-Remaining")
	}
	if n, err := strconv.Atoi(strings.TrimSpace(rem)); err != nil || n > 0 {
		return 0, false
	}
	return rateLimitReset(h, now)
}

// ParseRateLimitReset reads X-RateLimit-Reset, the moment a rate-limit
// window starts over, relative to now, clamped to [0, MaxRetryAfter]. APIs
// write it three ways: an ISO 8601 / RFC 3339 time (Mastodon), Unix
// seconds (GitHub, Twitter), or seconds from now (small numbers: values
// below one billion cannot be a Unix time of this century).
func ParseRateLimitReset(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		switch {
		case n < 0 || math.IsNaN(n) || math.IsInf(n, 0):
			return 0, false
		case n >= 1e9:
			d = time.Unix(0, 0).Add(time.Duration(n * float64(time.Second))).Sub(now)
		case n > MaxRetryAfter.Seconds():
			return MaxRetryAfter, true
		default:
			d = time.Duration(n * float64(time.Second))
		}
	} else {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, false
		}
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter), true
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
// server's Retry-After (or an open breaker's cool-down) when there is one,
// never less, plus up to 10% jitter so that clients told the same instant
// do not all return at once; else b.Next().
func RetryDelay(err error, b *Backoff) time.Duration {
	next := b.Next()
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		d := max(se.RetryAfter, next/4)
		return d + b.jitter(d/10)
	}
	var ce *CircuitOpenError
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		d := max(ce.RetryAfter, next/4)
		return d + b.jitter(d/10)
	}
	return next
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

// RedactURL keeps scheme, host and path but drops the query, which often
// carries tokens (access_token, key, sign), and any userinfo (redact.URL).
func RedactURL(raw string) string { return redact.URL(raw) }

// ErrCircuitOpen is what requests to a host with an open breaker fail with
// (wrapped in a *CircuitOpenError).
var ErrCircuitOpen = errors.New("circuit breaker open")

// CircuitOpenError says a request was not sent because its host failed
// too often; RetryAfter is when the breaker lets a probe through.
type CircuitOpenError struct {
	Host       string
	Failures   int
	RetryAfter time.Duration
}

func (e *CircuitOpenError) Error() string {
	return fmt.Sprintf("%s: not sent: circuit breaker open after %d consecutive failures (next probe in %s)", e.Host, e.Failures, e.RetryAfter.Round(time.Millisecond))
}

func (e *CircuitOpenError) Unwrap() error { return ErrCircuitOpen }

// BreakerState is a circuit breaker's state.
type BreakerState int

const (
	BreakerClosed   BreakerState = iota // requests flow
	BreakerOpen                         // requests fail fast until the cool-down ends
	BreakerHalfOpen                     // one probe is allowed; its outcome decides
)

func (s BreakerState) String() string {
	switch s {
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "closed"
}

// Breaker is a per-host circuit breaker: Threshold consecutive failures open
// it; while open every request fails fast; after Cooldown one probe goes
// through (half-open) and its success closes the breaker, its failure opens
// it for another cool-down. It protects both the host (no hammering a dead
// server from every source) and us (no piling up of timeouts).
type Breaker struct {
	host      string
	threshold int
	cooldown  time.Duration
	clock     Clock

	mu       sync.Mutex
	state    BreakerState
	failures int
	until    time.Time // end of the open period
	probing  bool      // a half-open probe is in flight
}

// NewBreaker returns a closed breaker.
func NewBreaker(host string, threshold int, cooldown time.Duration, clock Clock) *Breaker {
	if threshold <= 0 {
		threshold = DefaultBreakerThreshold
	}
	if cooldown <= 0 {
		cooldown = DefaultBreakerCooldown
	}
	if clock == nil {
		clock = RealClock
	}
	return &Breaker{host: host, threshold: threshold, cooldown: cooldown, clock: clock}
}

// State reports the current state (an open breaker whose cool-down is over
// reports half-open).
func (b *Breaker) State() BreakerState {
	if b == nil {
		return BreakerClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !b.clock.Now().Before(b.until) {
		return BreakerHalfOpen
	}
	return b.state
}

// Allow asks to send one request. A nil answer obliges the caller to call
// Record or Cancel when the request is over.
func (b *Breaker) Allow() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	switch b.state {
	case BreakerOpen:
		if now.Before(b.until) {
			return &CircuitOpenError{Host: b.host, Failures: b.failures, RetryAfter: b.until.Sub(now)}
		}
		b.state = BreakerHalfOpen
		b.probing = true
		return nil
	case BreakerHalfOpen:
		if b.probing {
			return &CircuitOpenError{Host: b.host, Failures: b.failures, RetryAfter: b.cooldown}
		}
		b.probing = true
		return nil
	}
	return nil
}

// Record reports an allowed request's outcome.
func (b *Breaker) Record(ok bool) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.state, b.failures, b.probing = BreakerClosed, 0, false
		return
	}
	b.failures++
	switch b.state {
	case BreakerHalfOpen:
		b.state, b.probing = BreakerOpen, false
		b.until = b.clock.Now().Add(b.cooldown)
	case BreakerClosed:
		if b.failures >= b.threshold {
			b.state = BreakerOpen
			b.until = b.clock.Now().Add(b.cooldown)
		}
	}
}

// Cancel reports that an allowed request ended without telling anything
// about the host (the caller gave up, the server asked to slow down).
func (b *Breaker) Cancel() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerHalfOpen {
		b.probing = false
	}
}
