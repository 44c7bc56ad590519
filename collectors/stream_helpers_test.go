package collectors

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/item"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// twitchFakeClock is a httpx.Clock whose time moves only when the test says so.
// Every After call is reported on Asked so that a test can see what the
// collector is waiting for (a backoff, a heartbeat) and release it.
type twitchFakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []twitchWaiter
	Asked   chan time.Duration
}

type twitchWaiter struct {
	at time.Time
	ch chan time.Time
}

func newTwitchFakeClock() *twitchFakeClock {
	return &twitchFakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Asked: make(chan time.Duration, 1024)}
}

func (c *twitchFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *twitchFakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, twitchWaiter{at: c.now.Add(d), ch: ch})
	c.mu.Unlock()
	select {
	case c.Asked <- d:
	default:
	}
	return ch
}

// Advance moves time forward and fires the waits that are due.
func (c *twitchFakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waitAsked waits for an After call whose duration match accepts and
// returns the duration; other calls are skipped (they stay pending).
func (c *twitchFakeClock) waitAsked(t *testing.T, what string, match func(time.Duration) bool) time.Duration {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case d := <-c.Asked:
			if match(d) {
				return d
			}
		case <-timeout:
			t.Fatalf("collector never waited for %s on the clock", what)
			return 0
		}
	}
}

// twitchSink collects emitted items.
type twitchSink struct {
	ch chan item.Item
}

func newTwitchSink() *twitchSink { return &twitchSink{ch: make(chan item.Item, 4096)} }

func (s *twitchSink) emit(ctx context.Context, it item.Item) error {
	select {
	case s.ch <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// next returns the next item or fails the test after a timeout.
func (s *twitchSink) next(t *testing.T) item.Item {
	t.Helper()
	select {
	case it := <-s.ch:
		return it
	case <-time.After(10 * time.Second):
		t.Fatal("no item emitted within 10s")
		return item.Item{}
	}
}

// none asserts that nothing more is emitted for a short while.
func (s *twitchSink) none(t *testing.T) {
	t.Helper()
	select {
	case it := <-s.ch:
		t.Fatalf("unexpected item emitted: %+v", it)
	case <-time.After(100 * time.Millisecond):
	}
}

// twitchCount reads one counter of a vector.
func twitchCount(cv *prometheus.CounterVec, labels ...string) float64 {
	var m dto.Metric
	if err := cv.WithLabelValues(labels...).Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// twitchTestEnv is an Env for stream tests: a fake clock, fresh metrics,
// a generous rate limit for loopback, logs to the test output on -v.
func twitchTestEnv(t *testing.T, clk httpx.Clock) Env {
	t.Helper()
	m := NewMetrics(nil)
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	return Env{
		HTTP:    httpx.NewClient(config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 1000}}, m.HTTP()),
		State:   NewMemState(),
		Log:     slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: m,
		Clock:   clk,
	}
}

// twitchStart runs c until the test ends and checks that Run returns nil
// promptly on cancellation.
func twitchStart(t *testing.T, c Collector, emit Emit) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, emit) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v on cancellation, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10s of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// twitchUpdateGolden rewrites the stream collectors' golden files:
// go test ./collectors/ -run Golden -update-stream-golden
var twitchUpdateGolden = flag.Bool("update-stream-golden", false, "rewrite testdata/{twitch,bluesky,douyin,mastodon} golden files")

// twitchGoldenItem is the part of an Item the golden files pin down.
type twitchGoldenItem struct {
	Kind     item.Kind
	Room     string
	ID       string
	AuthorID string `json:",omitempty"`
	Author   string `json:",omitempty"`
	Text     string `json:",omitempty"`
	URL      string `json:",omitempty"`
	TS       time.Time
	Metric   string  `json:",omitempty"`
	Value    float64 `json:",omitempty"`
	Count    int64   `json:",omitempty"`
}

// twitchCheckGolden compares items with testdata/<name> (JSON), or rewrites
// it under -update-stream-golden.
func twitchCheckGolden(t *testing.T, name string, items []item.Item) {
	t.Helper()
	got := make([]twitchGoldenItem, 0, len(items))
	for _, it := range items {
		got = append(got, twitchGoldenItem{Kind: it.Kind, Room: it.Room, ID: it.ID, AuthorID: it.AuthorID, Author: it.Author,
			Text: it.Text, URL: it.URL, TS: it.TS, Metric: it.Metric, Value: it.Value, Count: it.Count})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	path := filepath.Join("testdata", name)
	if *twitchUpdateGolden {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-stream-golden to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("items differ from %s (rerun with -update-stream-golden after checking):\ngot:\n%s", path, b)
	}
}
