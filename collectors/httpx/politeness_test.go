package httpx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lookout/config"
)

// politeServer is a site with a robots.txt, a moved page and a counter of
// what was asked.
type politeServer struct {
	*httptest.Server
	mu     sync.Mutex
	hits   map[string]int
	agents []string
	robots atomic.Value // string
}

func newPoliteServer(t *testing.T) *politeServer {
	s := &politeServer{hits: map[string]int{}}
	s.robots.Store("User-agent: *\nDisallow: /private\n\nUser-agent: lookout\nDisallow: /no-bots\n")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.agents = append(s.agents, r.UserAgent())
		s.mu.Unlock()
		switch r.URL.Path {
		case "/robots.txt":
			io.WriteString(w, s.robots.Load().(string))
		case "/old":
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
		case "/temp":
			http.Redirect(w, r, "/new", http.StatusFound)
		case "/hop1":
			http.Redirect(w, r, "/hop2", http.StatusPermanentRedirect)
		case "/hop2":
			http.Redirect(w, r, "/new", http.StatusFound)
		case "/big":
			w.Write(bytes.Repeat([]byte("x"), 2048))
		case "/fail":
			http.Error(w, "down", http.StatusBadGateway)
		default:
			io.WriteString(w, "ok "+r.URL.Path)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *politeServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func politeGet(t *testing.T, c *Client, url string) (*ConditionalResponse, error) {
	t.Helper()
	return c.GetConditional(context.Background(), url, Validators{}, nil)
}

func TestRobotsObeyedByGenericKinds(t *testing.T) {
	srv := newPoliteServer(t)
	clk := newHTTPXFakeClock()
	root := NewClientWith(httpxFastLimits(), nil, Options{Clock: clk, Version: "1.2.3"})
	rss, _ := root.ForSource(config.SourceConfig{ID: "feed", Kind: "rss"})
	if _, err := politeGet(t, rss, srv.URL+"/public"); err != nil {
		t.Fatalf("allowed path: %v", err)
	}
	for _, p := range []string{"/no-bots/x", "/no-bots?page=2"} {
		_, err := politeGet(t, rss, srv.URL+p)
		var re *RobotsError
		if !errors.As(err, &re) || !errors.Is(err, ErrRobotsDisallowed) {
			t.Fatalf("%s: err %v, want a RobotsError", p, err)
		}
	}
	// The lookout group applies (most specific), not the * group.
	if _, err := politeGet(t, rss, srv.URL+"/private"); err != nil {
		t.Errorf("/private is only closed to other agents: %v", err)
	}
	if n := srv.count("/no-bots/x"); n != 0 {
		t.Errorf("disallowed page was fetched %d times", n)
	}
	// Cached: a second source on the same site does not fetch it again.
	html, _ := root.ForSource(config.SourceConfig{ID: "page", Kind: "html"})
	if _, err := politeGet(t, html, srv.URL+"/no-bots/y"); !errors.Is(err, ErrRobotsDisallowed) {
		t.Errorf("html source: %v", err)
	}
	if n := srv.count("/robots.txt"); n != 1 {
		t.Errorf("robots.txt fetched %d times, want 1 (cached)", n)
	}
	// Fetched again once the cache expires, and the new rules apply.
	srv.robots.Store("User-agent: *\nAllow: /\n")
	clk.Advance(DefaultRobotsTTL + time.Second)
	if _, err := politeGet(t, rss, srv.URL+"/no-bots/x"); err != nil {
		t.Errorf("after the robots.txt changed and the cache expired: %v", err)
	}
	if n := srv.count("/robots.txt"); n != 2 {
		t.Errorf("robots.txt fetched %d times, want 2", n)
	}
}

func TestRobotsOverrideAndPlatformKinds(t *testing.T) {
	srv := newPoliteServer(t)
	var logs bytes.Buffer
	root := NewClientWith(httpxFastLimits(), nil, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	ignoring, _ := root.ForSource(config.SourceConfig{ID: "mine", Kind: "html", IgnoreRobots: true})
	if _, err := politeGet(t, ignoring, srv.URL+"/no-bots/x"); err != nil {
		t.Errorf("ignore_robots: %v", err)
	}
	if !strings.Contains(logs.String(), "robots.txt ignored") || !strings.Contains(logs.String(), "source=mine") {
		t.Errorf("ignore_robots was not logged as a warning: %s", logs.String())
	}
	platform, _ := root.ForSource(config.SourceConfig{ID: "bili", Kind: "bilibili_comments"})
	if _, err := politeGet(t, platform, srv.URL+"/no-bots/x"); err != nil {
		t.Errorf("platform kind: %v", err)
	}
	if n := srv.count("/robots.txt"); n != 0 {
		t.Errorf("robots.txt fetched %d times by sources that do not obey it", n)
	}
}

func TestRobotsServerErrorDisallowsUntilRetry(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			w.WriteHeader(int(status.Load()))
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	clk := newHTTPXFakeClock()
	c, _ := NewClientWith(httpxFastLimits(), nil, Options{Clock: clk}).ForSource(config.SourceConfig{ID: "s", Kind: "json_api"})
	if _, err := politeGet(t, c, srv.URL+"/x"); !errors.Is(err, ErrRobotsDisallowed) {
		t.Errorf("robots.txt 503: %v, want disallowed", err)
	}
	status.Store(http.StatusNotFound)
	clk.Advance(robotsRetry)
	if _, err := politeGet(t, c, srv.URL+"/x"); err != nil {
		t.Errorf("robots.txt 404 (none): %v", err)
	}
}

func TestPermanentRedirectRemembered(t *testing.T) {
	srv := newPoliteServer(t)
	var logs bytes.Buffer
	root := NewClientWith(httpxFastLimits(), nil, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	c, _ := root.ForSource(config.SourceConfig{ID: "feed", Kind: "rss"})
	for range 3 {
		res, err := politeGet(t, c, srv.URL+"/old?token=s3cret")
		if err != nil {
			t.Fatal(err)
		}
		if res.URL.Path != "/new" {
			t.Errorf("final URL %s", res.URL)
		}
	}
	if n := srv.count("/old"); n != 1 {
		t.Errorf("/old asked %d times, want 1: a 301 is followed once and remembered", n)
	}
	if n := srv.count("/new"); n != 3 {
		t.Errorf("/new asked %d times, want 3", n)
	}
	if got := strings.Count(logs.String(), "permanent redirect"); got != 1 {
		t.Errorf("logged %d times, want once: %s", got, logs.String())
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("log leaks the query: %s", logs.String())
	}
	if m := c.Moved(); m[RedactURL(srv.URL+"/old?token=s3cret")] != srv.URL+"/new" {
		t.Errorf("Moved() = %v", m)
	}
	// A temporary redirect, or a chain with a temporary hop, is followed
	// every time.
	for _, p := range []string{"/temp", "/hop1"} {
		for range 2 {
			if _, err := politeGet(t, c, srv.URL+p); err != nil {
				t.Fatal(err)
			}
		}
		if n := srv.count(p); n != 2 {
			t.Errorf("%s asked %d times, want 2 (not permanent)", p, n)
		}
	}
}

func TestRedirectHopsWaitForTheHostLimiter(t *testing.T) {
	srv := newPoliteServer(t)
	host := mustURL(srv.URL).Host
	limits := config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 1000},
		Hosts: map[string]config.HostLimit{host: {Rate: config.Rate(1.0 / 3600), Burst: 3}}}
	m := NewMetrics(nil)
	c, _ := NewClientWith(limits, m, Options{}).ForSource(config.SourceConfig{ID: "s", Kind: "html", IgnoreRobots: true})
	// /temp → /new takes two tokens of the three.
	if _, err := politeGet(t, c, srv.URL+"/temp"); err != nil {
		t.Fatal(err)
	}
	if tok := c.Limiter(host).Tokens(); tok > 1.01 || tok < 0.99 {
		t.Errorf("%.2f tokens left after a request and one redirect hop, want 1", tok)
	}
	// The next redirect's hop finds the bucket empty and waits (here: until
	// the context gives up), instead of bypassing the limit.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.GetConditional(ctx, srv.URL+"/temp", Validators{}, nil); err == nil {
		t.Fatal("second redirect went through an empty bucket")
	}
	if n := srv.count("/new"); n != 1 {
		t.Errorf("/new reached %d times, want 1", n)
	}
}

func TestBreakerIsolatesSources(t *testing.T) {
	srv := newPoliteServer(t)
	clk := newHTTPXFakeClock()
	root := NewClientWith(httpxFastLimits(), nil, Options{Clock: clk, BreakerThreshold: 3, BreakerCooldown: time.Minute})
	bad, _ := root.ForSource(config.SourceConfig{ID: "bad", Kind: "json_api", IgnoreRobots: true})
	var healthy []*Client
	for _, id := range []string{"a", "b", "c"} {
		h, _ := root.ForSource(config.SourceConfig{ID: id, Kind: "json_api", IgnoreRobots: true})
		healthy = append(healthy, h)
	}
	for range 5 {
		_, _ = politeGet(t, bad, srv.URL+"/fail")
	}
	if _, err := politeGet(t, bad, srv.URL+"/fail"); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("failing source: %v, want its breaker open", err)
	}
	if n := srv.count("/fail"); n != 3 {
		t.Errorf("/fail asked %d times, want 3 (then the breaker held)", n)
	}
	for i, h := range healthy {
		if _, err := politeGet(t, h, srv.URL+"/ok"); err != nil {
			t.Errorf("healthy source %d on the same host: %v", i, err)
		}
	}
}

func TestTooLargeIsNotANetworkError(t *testing.T) {
	srv := newPoliteServer(t)
	c := NewClient(httpxFastLimits(), nil)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/big", nil)
	resp, err := c.Do(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = ReadBody(resp, 1024)
	var te *TooLargeError
	if !errors.As(err, &te) || !errors.Is(err, ErrTooLarge) || te.Limit != 1024 {
		t.Fatalf("err %v, want a TooLargeError", err)
	}
}

func TestDefaultUserAgent(t *testing.T) {
	srv := newPoliteServer(t)
	root := NewClientWith(httpxFastLimits(), nil, Options{Version: "1.2.3"})
	want := "lookout/1.2.3 (+" + config.ProjectURL + ")"
	for _, c := range []struct {
		src  config.SourceConfig
		want string
	}{
		{config.SourceConfig{ID: "f", Kind: "rss"}, want},
		{config.SourceConfig{ID: "w", Kind: "weibo"}, config.BrowserUserAgent},
		{config.SourceConfig{ID: "o", Kind: "rss", UserAgent: "mine/1"}, "mine/1"},
	} {
		cl, _ := root.ForSource(c.src)
		srv.mu.Lock()
		srv.agents = nil
		srv.mu.Unlock()
		if _, err := politeGet(t, cl, srv.URL+"/x"); err != nil {
			t.Fatal(err)
		}
		srv.mu.Lock()
		got := srv.agents[len(srv.agents)-1]
		for _, a := range srv.agents {
			if a != c.want {
				t.Errorf("%s: sent %q (robots.txt included), want %q", c.src.ID, a, c.want)
			}
		}
		srv.mu.Unlock()
		if got != c.want {
			t.Errorf("%s: User-Agent %q, want %q", c.src.ID, got, c.want)
		}
	}
	// A configured limits.user_agent applies to every kind.
	conf := NewClientWith(config.LimitsConfig{UserAgent: "ops/2"}, nil, Options{})
	if ua := conf.UserAgentFor(config.SourceConfig{Kind: "weibo"}); ua != "ops/2" {
		t.Errorf("limits.user_agent: %q", ua)
	}
}

// With one request allowed in flight, a redirect to another site whose
// robots.txt is not cached yet must not wait for a second slot.
func TestRobotsOnRedirectWithOneSlot(t *testing.T) {
	other := newPoliteServer(t)
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
	}))
	defer first.Close()
	limits := httpxFastLimits()
	limits.MaxConcurrency = 1
	c, _ := NewClient(limits, nil).ForSource(config.SourceConfig{ID: "s", Kind: "html"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.GetConditional(ctx, first.URL+"/go", Validators{}, nil)
	if err != nil {
		t.Fatalf("redirect with one slot: %v", err)
	}
	if res.URL.Path != "/landing" || other.count("/robots.txt") != 1 {
		t.Errorf("landed on %s, other site's robots.txt fetched %d times", res.URL, other.count("/robots.txt"))
	}
}
