// Package collectortest has what the collector packages' tests share: fake
// clocks, item sinks, test environments, golden files and config checks.
// Only tests import it.
package collectortest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/item"

	"lookout/internal/testutil"
)

// epoch is where the fake clocks start.
var epoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// SteppedClock is an httpx.Clock whose time moves only when the test says
// so. Every After call is reported on Asked so that a test can see what the
// collector is waiting for (a backoff, a heartbeat) and release it.
type SteppedClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	Asked   chan time.Duration
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewSteppedClock returns a SteppedClock at a fixed instant.
func NewSteppedClock() *SteppedClock {
	return &SteppedClock{now: epoch, Asked: make(chan time.Duration, 1024)}
}

// Now is the clock's current time.
func (c *SteppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After fires once Advance has moved the time d forward.
func (c *SteppedClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	c.mu.Unlock()
	select {
	case c.Asked <- d:
	default:
	}
	return ch
}

// Advance moves time forward and fires the waits that are due.
func (c *SteppedClock) Advance(d time.Duration) {
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

// WaitAsked waits for an After call whose duration match accepts and
// returns the duration; other calls are skipped (they stay pending).
func (c *SteppedClock) WaitAsked(t *testing.T, what string, match func(time.Duration) bool) time.Duration {
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

// InstantClock records every wait and lets it pass at once, moving its
// time forward by the wait: polling loops run at full speed and the test
// reads back what they would have slept.
type InstantClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

// NewInstantClock returns an InstantClock at a fixed instant.
func NewInstantClock() *InstantClock {
	return &InstantClock{now: epoch}
}

// Now is the clock's current time.
func (c *InstantClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After records d, moves the time by d and fires at once.
func (c *InstantClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// Waits lists the waits asked for so far.
func (c *InstantClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// ChanSink collects emitted items in a channel, for tests that take them
// one at a time as a stream delivers them.
type ChanSink struct {
	ch chan item.Item
}

// NewChanSink returns an empty ChanSink.
func NewChanSink() *ChanSink { return &ChanSink{ch: make(chan item.Item, 4096)} }

// Emit is the sink's collectors.Emit.
func (s *ChanSink) Emit(ctx context.Context, it item.Item) error {
	select {
	case s.ch <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Next returns the next item or fails the test after a timeout.
func (s *ChanSink) Next(t *testing.T) item.Item {
	t.Helper()
	select {
	case it := <-s.ch:
		return it
	case <-time.After(10 * time.Second):
		t.Fatal("no item emitted within 10s")
		return item.Item{}
	}
}

// None asserts that nothing more is emitted for a short while.
func (s *ChanSink) None(t *testing.T) {
	t.Helper()
	select {
	case it := <-s.ch:
		t.Fatalf("unexpected item emitted: %+v", it)
	case <-time.After(100 * time.Millisecond):
	}
}

// Sink collects emitted items in a slice, for tests that look at what a
// poll produced.
type Sink struct {
	mu    sync.Mutex
	items []item.Item
}

// Emit is the sink's collectors.Emit.
func (s *Sink) Emit(_ context.Context, it item.Item) error {
	s.mu.Lock()
	s.items = append(s.items, it)
	s.mu.Unlock()
	return nil
}

// All returns the items emitted so far.
func (s *Sink) All() []item.Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]item.Item(nil), s.items...)
}

// Reset forgets the items emitted so far.
func (s *Sink) Reset() {
	s.mu.Lock()
	s.items = nil
	s.mu.Unlock()
}

// IDs lists the ids of the items emitted so far.
func (s *Sink) IDs() []string {
	var out []string
	for _, it := range s.All() {
		out = append(out, it.ID)
	}
	return out
}

// Count reads one counter of a vector.
func Count(cv *prometheus.CounterVec, labels ...string) float64 {
	return CounterValue(cv.WithLabelValues(labels...))
}

// CounterValue reads a counter's value.
func CounterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// FastLimits lets tests send as fast as they like unless they test the
// limiter itself.
func FastLimits() config.LimitsConfig {
	return config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 1000}, Timeout: config.Duration(5 * time.Second)}
}

// StreamEnv is an Env for stream tests: a fake clock, fresh metrics, a
// generous rate limit for loopback, logs to the test output on -v.
func StreamEnv(t *testing.T, clk httpx.Clock) collectors.Env {
	t.Helper()
	m := collectors.NewMetrics(nil)
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	return collectors.Env{
		HTTP:    httpx.NewClient(config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 1000}}, m.HTTP()),
		State:   collectors.NewMemState(),
		Log:     slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: m,
		Clock:   clk,
	}
}

// PollEnv is an Env for poller tests: a fast rate limit, state (an
// in-memory one when nil) and the given clock.
func PollEnv(t *testing.T, clk httpx.Clock, state collectors.StateStore) collectors.Env {
	env, _ := PollEnvLogs(t, clk, state)
	return env
}

// PollEnvLogs is PollEnv that also returns the log output, which is
// printed when the test fails.
func PollEnvLogs(t *testing.T, clk httpx.Clock, state collectors.StateStore) (collectors.Env, *LogBuf) {
	t.Helper()
	logs := &LogBuf{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("collector log:\n%s", logs.String())
		}
	})
	m := collectors.NewMetrics(nil)
	if state == nil {
		state = collectors.NewMemState()
	}
	return collectors.Env{
		HTTP:    httpx.NewClient(FastLimits(), m.HTTP()),
		State:   state,
		Log:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: m,
		Clock:   clk,
	}.WithDefaults(), logs
}

// LogBuf is a goroutine-safe log sink.
type LogBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs c until the test ends and checks that Run returns nil
// promptly on cancellation. stop ends it earlier.
func Start(t *testing.T, c collectors.Collector, emit collectors.Emit) (stop func()) {
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

// Wait polls cond until it holds, for at most 10 s.
func Wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, 10*time.Second, cond)
}

// SourceConfig parses one source block (any kind) for a test.
func SourceConfig(t *testing.T, yamlText string) config.SourceConfig {
	t.Helper()
	src, err := config.NewSourceConfig(yamlText)
	if err != nil {
		t.Fatalf("source config: %v", err)
	}
	return src
}

// ConfigError is a source config a factory must refuse, and what its
// error must mention.
type ConfigError struct{ YAML, Want string }

// RequireConfigErrors checks that reg refuses each config with an error
// that mentions what is wrong.
func RequireConfigErrors(t *testing.T, reg collectors.Registry, cases []ConfigError) {
	t.Helper()
	env := PollEnv(t, NewInstantClock(), nil)
	for _, tc := range cases {
		_, err := reg.New(SourceConfig(t, tc.YAML), env)
		if err == nil || !strings.Contains(err.Error(), tc.Want) {
			t.Errorf("%q: err = %v, want it to mention %q", tc.YAML, err, tc.Want)
		}
	}
}

// goldenItem is the part of an Item the golden files pin down.
type goldenItem struct {
	Kind     item.Kind
	Room     string
	ID       string
	AuthorID string `json:",omitempty"`
	Author   string `json:",omitempty"`
	Text     string `json:",omitempty"`
	URL      string `json:",omitempty"`
	TS       time.Time
	Metric   string      `json:",omitempty"`
	Value    float64     `json:",omitempty"`
	Count    int64       `json:",omitempty"`
	Change   item.Change `json:",omitempty"`
	// ChangedAt of an edit or delete.
	ChangedAt *time.Time `json:",omitempty"`
}

// CheckGolden compares items with testdata/<name> (JSON); `go test
// -update` rewrites it (see internal/testutil).
func CheckGolden(t *testing.T, name string, items []item.Item) {
	t.Helper()
	got := make([]goldenItem, 0, len(items))
	for _, it := range items {
		got = append(got, goldenItem{Kind: it.Kind, Room: it.Room, ID: it.ID, AuthorID: it.AuthorID, Author: it.Author,
			Text: it.Text, URL: it.URL, TS: it.TS, Metric: it.Metric, Value: it.Value, Count: it.Count, Change: it.Change})
		if !it.ChangedAt.IsZero() {
			got[len(got)-1].ChangedAt = &it.ChangedAt
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, filepath.Join("testdata", name), buf.Bytes())
}
