package collectors

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/item"
)

// pollFakeClock records every wait and lets it pass at once, moving its
// time forward by the wait: polling loops run at full speed and the test
// reads back what they would have slept.
type pollFakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newPollFakeClock() *pollFakeClock {
	return &pollFakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (c *pollFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *pollFakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *pollFakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// pollTestEnv is an Env with a fast rate limit, an in-memory state and the
// given clock.
func pollTestEnv(t *testing.T, clk httpx.Clock, state StateStore) Env {
	env, _ := pollTestEnvLogs(t, clk, state)
	return env
}

// pollTestEnvLogs is pollTestEnv that also returns the log output.
func pollTestEnvLogs(t *testing.T, clk httpx.Clock, state StateStore) (Env, *pollLogBuf) {
	t.Helper()
	logs := &pollLogBuf{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("collector log:\n%s", logs.String())
		}
	})
	m := NewMetrics(nil)
	if state == nil {
		state = NewMemState()
	}
	return Env{
		HTTP:    httpx.NewClient(config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 1000}, Timeout: config.Duration(5 * time.Second)}, m.HTTP()),
		State:   state,
		Log:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: m,
		Clock:   clk,
	}.WithDefaults(), logs
}

// pollLogBuf is a goroutine-safe log sink.
type pollLogBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *pollLogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *pollLogBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mustSourceConfig parses one source block (any kind) for a test.
func mustSourceConfig(t *testing.T, yamlText string) config.SourceConfig {
	t.Helper()
	src, err := config.NewSourceConfig(yamlText)
	if err != nil {
		t.Fatalf("source config: %v", err)
	}
	return src
}

func TestPollStateJudgeAndPersist(t *testing.T) {
	ctx := context.Background()
	mem := NewMemState()
	st, err := LoadPollState(ctx, mem, "s")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if v := st.Judge("a", t0); v != PollFresh {
		t.Fatalf("empty state: got %v, want new", v)
	}
	st.Emitted("a", t0)
	st.Emitted("b", t0.Add(time.Minute))
	st.ETag = `W/"x"`
	if err := st.Save(ctx, mem, "s"); err != nil {
		t.Fatal(err)
	}
	st2, err := LoadPollState(ctx, mem, "s")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		ts   time.Time
		want PollVerdict
	}{
		{"b", time.Time{}, PollReach},
		{"a", time.Time{}, PollSkip},
		{"c", t0.Add(2 * time.Minute), PollFresh},
		{"old", t0.Add(-2 * time.Hour), PollSkip},
		{"c2", time.Time{}, PollFresh},
	} {
		if got := st2.Judge(tc.id, tc.ts); got != tc.want {
			t.Errorf("judge(%s) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if st2.ETag != `W/"x"` || !st2.LastTS.Equal(t0.Add(time.Minute)) {
		t.Errorf("state not restored: %+v", st2)
	}
	for i := range pollMaxSeen + 10 {
		st2.MarkSeen(string(rune('A'+i%26)) + time.Duration(i).String())
	}
	if len(st2.order) != pollMaxSeen || len(st2.seen) != pollMaxSeen {
		t.Errorf("seen not bounded: %d %d", len(st2.order), len(st2.seen))
	}
}

func TestPollLoopBackoffAndRetryAfter(t *testing.T) {
	clk := newPollFakeClock()
	env := pollTestEnv(t, clk, nil)
	src := mustSourceConfig(t, "id: p\nkind: json_api\nevery: 1m\njitter: 0.1\n")
	env.Health = NewSourceHealth(src, HealthOptions{Clock: clk})
	loop := NewPollLoop(src, env)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	errs := []error{
		&httpx.StatusError{URL: "http://x/", Status: http.StatusTooManyRequests, RetryAfter: 120 * time.Second},
		&httpx.StatusError{URL: "http://x/", Status: http.StatusServiceUnavailable},
		PollErrWait("risk_control", 10*time.Minute, errors.New("code -412")),
		nil,
	}
	// The daemon judges after every poll; so does this test, before the
	// next one.
	var health []item.Item
	judge := func() {
		if it, ok := env.Health.Report(); ok {
			health = append(health, it)
		}
	}
	_ = loop.Run(ctx, nil, func(context.Context) error {
		judge()
		calls++
		if calls > len(errs) {
			cancel()
			return nil
		}
		return errs[calls-1]
	})
	w := clk.Waits()
	if len(w) < 4 {
		t.Fatalf("waits = %v", w)
	}
	if w[0] < 120*time.Second {
		t.Errorf("429 with Retry-After 120: waited %s", w[0])
	}
	if w[1] <= 0 || w[1] > pollMaxBackoff {
		t.Errorf("503 backoff out of range: %s", w[1])
	}
	if w[2] < 10*time.Minute {
		t.Errorf("risk control wait %s < 10m", w[2])
	}
	if w[3] < 54*time.Second || w[3] > 66*time.Second {
		t.Errorf("interval after success %s not within 1m±10%%", w[3])
	}
	if got := pollCount(env.Metrics.Errors.WithLabelValues("p", "rate_limited")); got != 1 {
		t.Errorf("rate_limited count = %v", got)
	}
	if got := pollCount(env.Metrics.Errors.WithLabelValues("p", "risk_control")); got != 1 {
		t.Errorf("risk_control count = %v", got)
	}
	// The failures reach the source's health (the one record `lookout
	// status` shows), not the poll state.
	if st := env.Health.Status(); st.LastError == "" || st.LastErrorAt.IsZero() || strings.Contains(st.LastError, "T") && strings.Contains(st.LastError, "Z ") {
		t.Errorf("health after the failures: %+v, want the last error and its time apart", st)
	}
	if v, _, _ := env.State.GetState(ctx, "p", "last_error"); v != "" {
		t.Errorf("poll state still keeps a last_error %q beside the health record", v)
	}
	// Three failures in a row make the source report itself broken after
	// the third; the success that follows reports it recovered, once.
	if len(health) != 2 {
		t.Fatalf("health reports = %+v, want broken then recovered", health)
	}
	b, r := health[0], health[1]
	if b.Kind != item.KindMetric || b.Metric != item.MetricSourceBroken || b.Value != 1 || b.Room != "" ||
		b.Labels["reason"] != "risk_control" || !strings.Contains(b.Labels["detail"], "3 attempts in a row") || b.ID == "" {
		t.Errorf("broken report = %+v", b)
	}
	if r.Metric != item.MetricSourceBroken || r.Value != 0 || r.ID == b.ID {
		t.Errorf("recovery report = %+v", r)
	}
}

func TestPollLoopCookieExpiredIsBrokenAtOnce(t *testing.T) {
	clk := newPollFakeClock()
	env := pollTestEnv(t, clk, nil)
	src := mustSourceConfig(t, "id: wb\nkind: json_api\nevery: 1m\n")
	env.Health = NewSourceHealth(src, HealthOptions{Clock: clk, ReassertEvery: time.Second})
	loop := NewPollLoop(src, env)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var health []item.Item
	calls := 0
	_ = loop.Run(ctx, nil, func(context.Context) error {
		if it, ok := env.Health.Report(); ok {
			health = append(health, it)
		}
		calls++
		if calls == 3 {
			cancel()
			return nil
		}
		return PollErr("cookie_expired", errors.New("weibo: cookie expired (login page)"))
	})
	if len(health) != 2 || health[0].Value != 1 || health[1].Value != 1 || health[0].Labels["reason"] != "cookie_expired" {
		t.Fatalf("want a broken report after the first failed poll and again a poll later, got %+v", health)
	}
	if d := health[0].Labels["detail"]; d != "weibo: cookie expired (login page)" {
		t.Errorf("first report's detail %q, want the error itself", d)
	}
	if d := health[1].Labels["detail"]; !strings.HasPrefix(d, "2 attempts in a row failed; last: weibo: cookie expired") {
		t.Errorf("second report's detail %q", d)
	}
}

// pollCount reads a counter's value.
func pollCount(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
