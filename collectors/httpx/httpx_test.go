package httpx

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"lookout/config"
)

// httpxFakeClock is a Clock whose time moves only when told to (Advance) or
// when someone waits on it: After records the wait, moves time forward by
// it and fires at once. Tests read Waits to see what was asked for.
type httpxFakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newHTTPXFakeClock() *httpxFakeClock {
	return &httpxFakeClock{now: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *httpxFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *httpxFakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *httpxFakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *httpxFakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// httpxCount reads one counter of a vector.
func httpxCount(cv *prometheus.CounterVec, labels ...string) float64 {
	var m dto.Metric
	if err := cv.WithLabelValues(labels...).Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// httpxFastLimits lets tests send as fast as they like unless they test
// the limiter itself.
func httpxFastLimits() config.LimitsConfig {
	return config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 1000}, Timeout: config.Duration(5 * time.Second)}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2015, 10, 21, 7, 28, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{" 2 ", 2 * time.Second, true},
		{"0", 0, true},
		{"-5", 0, false},
		{"99999999999", MaxRetryAfter, true}, // clamped
		{"Wed, 21 Oct 2015 07:30:00 GMT", 2 * time.Minute, true},
		{"Wednesday, 21-Oct-15 07:29:00 GMT", time.Minute, true}, // RFC 850
		{"Wed Oct 21 07:28:30 2015", 30 * time.Second, true},     // ANSI C
		{"Wed, 21 Oct 2015 07:00:00 GMT", 0, true},               // in the past: go now
		{"Thu, 21 Oct 2055 07:00:00 GMT", MaxRetryAfter, true},   // clamped
		{"", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
	}
	for _, tc := range cases {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffGrowthAndJitterBounds(t *testing.T) {
	const base, mx = time.Second, 30 * time.Second
	a := NewBackoff(base, mx, 42)
	b := NewBackoff(base, mx, 42)
	c := NewBackoff(base, mx, 43)
	differs := false
	for i := range 12 {
		capd := min(mx, base<<i)
		da, db, dc := a.Next(), b.Next(), c.Next()
		if da < capd/2 || da > capd {
			t.Errorf("attempt %d: wait %v outside [%v, %v]", i, da, capd/2, capd)
		}
		if da != db {
			t.Errorf("attempt %d: same seed gave %v and %v", i, da, db)
		}
		if da != dc {
			differs = true
		}
	}
	if !differs {
		t.Error("seeds 42 and 43 gave identical sequences: no jitter")
	}
	if a.Attempt() != 12 {
		t.Errorf("Attempt() = %d", a.Attempt())
	}
	a.Reset()
	if d := a.Next(); d < base/2 || d > base {
		t.Errorf("after Reset: %v", d)
	}
	// The zero Backoff uses the defaults (1s … 2m) and never overflows.
	var z Backoff
	for range 100 {
		if d := z.Next(); d <= 0 || d > 2*time.Minute {
			t.Fatalf("zero Backoff gave %v", d)
		}
	}
}

func TestRetryDelayHonoursServer(t *testing.T) {
	b := NewBackoff(time.Second, time.Minute, 1)
	for range 50 {
		if d := RetryDelay(&StatusError{Status: 429, RetryAfter: 2 * time.Minute}, b); d < 2*time.Minute || d > 132*time.Second {
			t.Fatalf("429 Retry-After 2m: waited %v, want 2m plus at most 10%% jitter", d)
		}
		b.Reset()
	}
	if d := RetryDelay(&CircuitOpenError{Host: "h", RetryAfter: 20 * time.Second}, b); d < 20*time.Second {
		t.Errorf("open breaker: waited %v", d)
	}
	b.Reset()
	if d := RetryDelay(errors.New("connection reset"), b); d < 500*time.Millisecond || d > time.Second {
		t.Errorf("plain error: %v, want the backoff's first step", d)
	}
}

func TestHostLimiterSharedAcrossSources(t *testing.T) {
	root := NewClient(config.LimitsConfig{
		Default: config.HostLimit{Rate: 1000, Burst: 1000},
		Hosts:   map[string]config.HostLimit{"feeds.example.com": {Rate: config.Rate(1.0 / 3600), Burst: 2}},
	}, nil)
	a, err := root.ForSource(config.SourceConfig{ID: "a", UserAgent: "a-agent"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := root.ForSource(config.SourceConfig{ID: "b", Timeout: config.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Limiter("feeds.example.com") != b.Limiter("feeds.example.com") || a.Limiter("feeds.example.com") != root.Limiter("feeds.example.com") {
		t.Fatal("sources got different limiters for one host")
	}
	if a.UserAgent() != "a-agent" || b.UserAgent() != config.UserAgent("") || b.Timeout() != time.Second {
		t.Errorf("per-source settings: ua %q / %q, timeout %v", a.UserAgent(), b.UserAgent(), b.Timeout())
	}
	ctx := context.Background()
	for _, c := range []*Client{a, b} {
		release, err := c.Wait(ctx, "feeds.example.com")
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	// Two waits, one from each source, emptied the shared bucket of two
	// (the refill is one token an hour).
	if tok := root.Limiter("feeds.example.com").Tokens(); tok > 0.01 {
		t.Errorf("shared bucket has %.3f tokens left, want 0", tok)
	}
	// A third request would have to wait: a reservation tells how long.
	r := a.Limiter("feeds.example.com").Reserve()
	if d := r.Delay(); d < 30*time.Minute {
		t.Errorf("third request would wait %v, want most of an hour", d)
	}
	r.Cancel()
	// Another host is untouched.
	if tok := b.Limiter("other.example.com").Tokens(); tok < 999 {
		t.Errorf("other host's bucket: %.1f tokens", tok)
	}
	// A waiting request gives up with its context.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := b.Wait(cctx, "feeds.example.com"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait on an empty bucket: %v", err)
	}
}

func TestConcurrencyCap(t *testing.T) {
	limits := httpxFastLimits()
	limits.MaxConcurrency = 2
	root := NewClient(limits, nil)
	src, _ := root.ForSource(config.SourceConfig{ID: "s"})
	ctx := context.Background()
	r1, err := root.Wait(ctx, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := src.Wait(ctx, "b.example") // other host, other source: same global cap
	if err != nil {
		t.Fatal(err)
	}
	full, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := root.Wait(full, "c.example"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third request with the cap full: %v", err)
	}
	r1()
	r1() // release is idempotent: must not free a second slot
	r3, err := src.Wait(ctx, "c.example")
	if err != nil {
		t.Fatal(err)
	}
	full2, cancel2 := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel2()
	if _, err := root.Wait(full2, "d.example"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("double release freed a slot: %v", err)
	}
	r2()
	r3()

	// Through real requests: a server that counts what is in flight never
	// sees more than the cap.
	var inflight, peak atomic.Int32
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-gate
		inflight.Add(-1)
	}))
	defer srv.Close()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			resp, err := root.Do(ctx, req)
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	for inflight.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want exactly the cap 2", p)
	}
}

func TestBreakerStates(t *testing.T) {
	clk := newHTTPXFakeClock()
	b := NewBreaker("h.example", 3, 30*time.Second, clk)
	for i := range 2 {
		if err := b.Allow(); err != nil {
			t.Fatalf("closed breaker refused request %d: %v", i, err)
		}
		b.Record(false)
	}
	if b.State() != BreakerClosed {
		t.Fatalf("after 2 of 3 failures: %v", b.State())
	}
	_ = b.Allow()
	b.Record(true) // a success resets the count
	for range 3 {
		_ = b.Allow()
		b.Record(false)
	}
	if b.State() != BreakerOpen {
		t.Fatalf("after 3 consecutive failures: %v", b.State())
	}
	err := b.Allow()
	var ce *CircuitOpenError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCircuitOpen) || ce.RetryAfter != 30*time.Second || !strings.Contains(err.Error(), "h.example") {
		t.Fatalf("open breaker: %v", err)
	}
	clk.Advance(29 * time.Second)
	if err := b.Allow(); err == nil {
		t.Fatal("open breaker let a request through before the cool-down ended")
	}
	clk.Advance(time.Second)
	if b.State() != BreakerHalfOpen {
		t.Fatalf("after cool-down: %v", b.State())
	}
	if err := b.Allow(); err != nil {
		t.Fatalf("half-open breaker refused the probe: %v", err)
	}
	if err := b.Allow(); err == nil {
		t.Fatal("half-open breaker let a second request through while probing")
	}
	b.Record(false) // probe failed: open again for a full cool-down
	if b.State() != BreakerOpen {
		t.Fatalf("failed probe: %v", b.State())
	}
	clk.Advance(30 * time.Second)
	if err := b.Allow(); err != nil {
		t.Fatal(err)
	}
	b.Cancel() // the probe's caller gave up: the next request probes
	if err := b.Allow(); err != nil {
		t.Fatalf("after a cancelled probe: %v", err)
	}
	b.Record(true)
	if b.State() != BreakerClosed {
		t.Fatalf("successful probe: %v", b.State())
	}
	if err := b.Allow(); err != nil {
		t.Fatal(err)
	}
}

func TestBreakerThroughHTTPClient(t *testing.T) {
	var hits atomic.Int32
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !healthy.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	clk := newHTTPXFakeClock()
	m := NewMetrics(nil)
	c := NewClientWith(httpxFastLimits(), m, Options{Clock: clk, BreakerThreshold: 3, BreakerCooldown: time.Minute})
	host := mustURL(srv.URL).Host
	get := func() error {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/x?token=s3cret", nil)
		resp, err := c.Do(context.Background(), req)
		if err != nil {
			return err
		}
		return CheckStatus(resp, clk.Now())
	}
	for range 3 {
		if err := get(); err == nil {
			t.Fatal("want 502")
		}
	}
	err := get()
	if !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("4th request: %v, want ErrCircuitOpen", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("breaker error leaks the query: %v", err)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("server saw %d requests, want 3 (the 4th failed fast)", n)
	}
	if v := httpxCount(m.Requests, host, "breaker_open"); v != 1 {
		t.Errorf("breaker_open metric = %v", v)
	}
	// Another source on the same host has its own breaker: one source's
	// failures do not stop it.
	other, _ := c.ForSource(config.SourceConfig{ID: "other", UserAgent: "x"})
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if _, err := other.Do(context.Background(), req); errors.Is(err, ErrCircuitOpen) {
		t.Errorf("other source blocked by the first source's breaker: %v", err)
	}
	healthy.Store(true)
	clk.Advance(time.Minute)
	if err := get(); err != nil {
		t.Fatalf("probe after cool-down: %v", err)
	}
	if c.Breaker(host).State() != BreakerClosed {
		t.Errorf("after a good probe: %v", c.Breaker(host).State())
	}
	// 429 is the host being alive and asking for patience, not a failure.
	healthy.Store(false)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	for range 5 {
		_ = get()
	}
	if c.Breaker(host).State() != BreakerClosed {
		t.Errorf("429s opened the breaker")
	}
}

func TestParseRateLimitReset(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2026-11-25T12:05:00.000Z", 5 * time.Minute, true},            // Mastodon
		{"2026-11-25T13:00:00+01:00", 0, true},                         // the same instant as now
		{"2026-11-25T11:00:00Z", 0, true},                              // past: go now
		{"2036-11-25T12:00:00Z", MaxRetryAfter, true},                  // clamped
		{strconv.FormatInt(now.Unix()+90, 10), 90 * time.Second, true}, // Unix seconds
		{"30", 30 * time.Second, true},                                 // seconds from now
		{"1.5", 1500 * time.Millisecond, true},
		{"999999999", MaxRetryAfter, true},
		{"-1", 0, false},
		{"", 0, false},
		{"tomorrow", 0, false},
		{"NaN", 0, false},
	} {
		got, ok := ParseRateLimitReset(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRateLimitReset(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestRateLimitHeaders: Twitch Helix's unprefixed RateLimit-Remaining and
// RateLimit-Reset (Unix seconds) count like the X- forms: a spent window
// waits until its reset, and a 429 without Retry-After retries then.
func TestRateLimitHeaders(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	reset := strconv.FormatInt(now.Unix()+45, 10)
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   time.Duration
		ok     bool
	}{
		{"helix spent", map[string]string{"Ratelimit-Remaining": "0", "Ratelimit-Reset": reset}, 45 * time.Second, true},
		{"helix left", map[string]string{"Ratelimit-Remaining": "799", "Ratelimit-Reset": reset}, 0, false},
		{"x- spent", map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}, 30 * time.Second, true},
		{"spent, no reset", map[string]string{"Ratelimit-Remaining": "0"}, 0, false},
		{"no headers", nil, 0, false},
		{"garbage", map[string]string{"Ratelimit-Remaining": "none", "Ratelimit-Reset": reset}, 0, false},
	} {
		h := http.Header{}
		for k, v := range tc.header {
			h.Set(k, v)
		}
		got, ok := RateLimitSpent(h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: RateLimitSpent = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}
	resp.Header.Set("Ratelimit-Remaining", "0")
	resp.Header.Set("Ratelimit-Reset", reset)
	var se *StatusError
	if err := CheckStatus(resp, now); !errors.As(err, &se) || se.RetryAfter != 45*time.Second {
		t.Errorf("Helix 429: %v, want a retry after 45s", err)
	}
}

func TestCheckStatusRetryAfter(t *testing.T) {
	var status atomic.Int32
	var retryAfter, reset atomic.Value
	reset.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ra := retryAfter.Load().(string); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		if rs := reset.Load().(string); rs != "" {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", rs)
		}
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte("  slow down please  \n"))
	}))
	defer srv.Close()
	now := time.Now().UTC().Truncate(time.Second)
	c := NewClient(httpxFastLimits(), nil)
	cases := []struct {
		status    int
		ra        string
		reset     string
		wantErr   bool
		wantWait  time.Duration
		temporary bool
	}{
		{429, "2", "", true, 2 * time.Second, true},
		{429, "", now.Add(40 * time.Second).Format(time.RFC3339), true, 40 * time.Second, true}, // Mastodon's 429: no Retry-After
		{429, "3", now.Add(40 * time.Second).Format(time.RFC3339), true, 3 * time.Second, true}, // Retry-After wins
		{503, "", now.Add(40 * time.Second).Format(time.RFC3339), true, 0, true},                // only a 429 is a rate limit
		{503, now.Add(90 * time.Second).Format(http.TimeFormat), "", true, 90 * time.Second, true},
		{503, "", "", true, 0, true},
		{404, "", "", true, 0, false},
		{304, "", "", false, 0, false},
		{200, "", "", false, 0, false},
	}
	for _, tc := range cases {
		status.Store(int32(tc.status))
		retryAfter.Store(tc.ra)
		reset.Store(tc.reset)
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/feed?key=abc", nil)
		resp, err := c.Do(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckStatus(resp, now)
		if !tc.wantErr {
			if err != nil {
				t.Errorf("%d: %v", tc.status, err)
			}
			resp.Body.Close()
			continue
		}
		var se *StatusError
		if !errors.As(err, &se) {
			t.Fatalf("%d: %v is not a StatusError", tc.status, err)
		}
		if se.Status != tc.status || se.RetryAfter != tc.wantWait || se.Temporary() != tc.temporary || se.Body != "slow down please" {
			t.Errorf("%d: %+v (temporary %v)", tc.status, se, se.Temporary())
		}
		if strings.Contains(err.Error(), "abc") {
			t.Errorf("error leaks query: %v", err)
		}
	}
}

func TestRedaction(t *testing.T) {
	se := &StatusError{URL: "https://user:pw@api.example.com/v1/feed?access_token=SECRET&x=1#frag", Status: 401}
	msg := se.Error()
	for _, leak := range []string{"SECRET", "pw", "frag"} {
		if strings.Contains(msg, leak) {
			t.Errorf("StatusError %q leaks %q", msg, leak)
		}
	}
	if !strings.Contains(msg, "https://api.example.com/v1/feed") {
		t.Errorf("StatusError %q lost the path", msg)
	}
	// Transport errors carry the URL too (url.Error): redacted.
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	c := NewClient(httpxFastLimits(), nil)
	req, _ := http.NewRequest(http.MethodGet, dead+"/feed?sign=SECRET", nil)
	_, err := c.Do(context.Background(), req)
	if err == nil {
		t.Fatal("want a connection error")
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("transport error leaks the query: %v", err)
	}
	_, err = c.GetConditional(context.Background(), dead+"/feed?sign=SECRET", Validators{}, nil)
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("GetConditional error: %v", err)
	}
	// A bad proxy setting names the problem without the password.
	_, err = c.ForSource(config.SourceConfig{Proxy: "ftp://bob:hunter2@proxy.example:21"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("proxy error: %v", err)
	}
}

func TestForSourceProxy(t *testing.T) {
	// A plain HTTP proxy on loopback: the request for another host must go
	// through it (absolute-form request line).
	var sawHost atomic.Value
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHost.Store(r.URL.Host)
		_, _ = w.Write([]byte("via proxy"))
	}))
	defer proxy.Close()
	c := NewClient(httpxFastLimits(), nil)
	for _, p := range []string{"socks5://127.0.0.1:1080", "socks5h://127.0.0.1:1080", "https://proxy.example:8443"} {
		if _, err := c.ForSource(config.SourceConfig{Proxy: p}); err != nil {
			t.Errorf("proxy %s rejected: %v", p, err)
		}
	}
	src, err := c.ForSource(config.SourceConfig{Proxy: proxy.URL})
	if err != nil {
		t.Fatal(err)
	}
	res, err := src.GetConditional(context.Background(), "http://feeds.invalid/feed.xml", Validators{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != "via proxy" || sawHost.Load() != "feeds.invalid" {
		t.Errorf("body %q, proxy saw host %v", res.Body, sawHost.Load())
	}
}

func TestGetConditional(t *testing.T) {
	const etag = `W/"v1"`
	const lastMod = "Wed, 21 Oct 2015 07:28:00 GMT"
	var gotINM, gotIMS, gotAccept atomic.Value
	var sendNewETag atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotINM.Store(r.Header.Get("If-None-Match"))
		gotIMS.Store(r.Header.Get("If-Modified-Since"))
		gotAccept.Store(r.Header.Get("Accept"))
		if r.Header.Get("If-None-Match") == etag {
			if sendNewETag.Load() {
				w.Header().Set("ETag", `W/"v1-renewed"`)
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", lastMod)
		_, _ = w.Write([]byte("<rss/>"))
	}))
	defer srv.Close()
	c := NewClient(httpxFastLimits(), nil)
	ctx := context.Background()
	hdr := http.Header{"Accept": {"application/rss+xml"}}

	first, err := c.GetConditional(ctx, srv.URL+"/f", Validators{}, hdr)
	if err != nil {
		t.Fatal(err)
	}
	if first.NotModified || string(first.Body) != "<rss/>" || first.Validators != (Validators{ETag: etag, LastModified: lastMod}) {
		t.Fatalf("first: %+v", first)
	}
	if gotINM.Load() != "" || gotIMS.Load() != "" || gotAccept.Load() != "application/rss+xml" {
		t.Errorf("first request headers: %v %v %v", gotINM.Load(), gotIMS.Load(), gotAccept.Load())
	}

	second, err := c.GetConditional(ctx, srv.URL+"/f", first.Validators, hdr)
	if err != nil {
		t.Fatal(err)
	}
	// Validators go back verbatim (weak prefix and quotes included).
	if gotINM.Load() != etag || gotIMS.Load() != lastMod {
		t.Errorf("revalidation sent If-None-Match %q, If-Modified-Since %q", gotINM.Load(), gotIMS.Load())
	}
	if !second.NotModified || second.Body != nil || second.Validators != first.Validators {
		t.Errorf("304 must keep the old validators: %+v", second)
	}

	sendNewETag.Store(true)
	third, err := c.GetConditional(ctx, srv.URL+"/f", first.Validators, hdr)
	if err != nil {
		t.Fatal(err)
	}
	if !third.NotModified || third.Validators.ETag != `W/"v1-renewed"` || third.Validators.LastModified != lastMod {
		t.Errorf("304 with a new ETag: %+v", third.Validators)
	}

	// Oversized bodies are refused, not buffered without bound.
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range MaxBodyBytes/len(chunk) + 2 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer big.Close()
	// 18 MiB over loopback: a timeout that a loaded machine running the
	// race detector cannot hit.
	slow := httpxFastLimits()
	slow.Timeout = config.Duration(2 * time.Minute)
	var tl *TooLargeError
	if _, err := NewClient(slow, nil).GetConditional(ctx, big.URL, Validators{}, nil); !errors.As(err, &tl) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized body: %v", err)
	}
}

func TestPerRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	clk := newHTTPXFakeClock()
	c := NewClientWith(httpxFastLimits(), nil, Options{Clock: clk, BreakerThreshold: 2})
	src, err := c.ForSource(config.SourceConfig{Timeout: config.Duration(50 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err = src.GetConditional(context.Background(), srv.URL+"/slow?k=SECRET", Validators{}, nil)
		var ue *url.Error
		if !errors.As(err, &ue) || !ue.Timeout() {
			t.Fatalf("want a timeout url.Error, got %v", err)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("timeout error leaks the query: %v", err)
		}
	}
	// Timeouts count as failures for the breaker.
	if st := c.Breaker(mustURL(srv.URL).Host).State(); st != BreakerOpen {
		t.Errorf("breaker after 2 timeouts: %v", st)
	}
}

// httpxSOCKS5 is a minimal SOCKS5 server (RFC 1928: no authentication,
// CONNECT only) that sends every connection to target and records the
// address the client asked for.
type httpxSOCKS5 struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	asked  []string
}

func newHTTPXSOCKS5(t *testing.T, target string) *httpxSOCKS5 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &httpxSOCKS5{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *httpxSOCKS5) serve(c net.Conn) {
	defer c.Close()
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(c, hdr); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	if _, err := c.Write([]byte{5, 0}); err != nil { // no authentication
		return
	}
	req := make([]byte, 4)
	if _, err := io.ReadFull(c, req); err != nil || req[1] != 1 { // CONNECT
		return
	}
	var host string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		io.ReadFull(c, ip)
		host = net.IP(ip).String()
	case 3:
		n := make([]byte, 1)
		io.ReadFull(c, n)
		name := make([]byte, n[0])
		io.ReadFull(c, name)
		host = string(name)
	case 4:
		ip := make([]byte, 16)
		io.ReadFull(c, ip)
		host = net.IP(ip).String()
	default:
		return
	}
	port := make([]byte, 2)
	if _, err := io.ReadFull(c, port); err != nil {
		return
	}
	p.mu.Lock()
	p.asked = append(p.asked, net.JoinHostPort(host, fmt.Sprint(binary.BigEndian.Uint16(port))))
	p.mu.Unlock()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Write([]byte{5, 1, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	if _, err := c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		return
	}
	go io.Copy(up, c)
	io.Copy(c, up)
}

func TestForSourceSOCKS5Proxy(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("hello from " + r.Host))
	}))
	defer origin.Close()
	proxy := newHTTPXSOCKS5(t, mustURL(origin.URL).Host)
	c := NewClient(httpxFastLimits(), nil)
	for _, scheme := range []string{"socks5", "socks5h"} {
		src, err := c.ForSource(config.SourceConfig{Proxy: scheme + "://" + proxy.ln.Addr().String()})
		if err != nil {
			t.Fatal(err)
		}
		res, err := src.GetConditional(context.Background(), "http://feeds.invalid:8080/feed.xml", Validators{}, nil)
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		if string(res.Body) != "hello from feeds.invalid:8080" {
			t.Errorf("%s: body %q", scheme, res.Body)
		}
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	// The proxy resolved the name: the client never looked it up itself.
	if len(proxy.asked) != 2 || proxy.asked[0] != "feeds.invalid:8080" {
		t.Errorf("proxy was asked for %v", proxy.asked)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
