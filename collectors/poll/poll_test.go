package poll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"lookout/collectors"
	"lookout/collectors/collectortest"
	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/item"
)

func TestPollStateJudgeAndPersist(t *testing.T) {
	ctx := context.Background()
	mem := collectors.NewMemState()
	st, err := LoadState(ctx, mem, "s")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if v := st.Judge("a", t0); v != Fresh {
		t.Fatalf("empty state: got %v, want new", v)
	}
	st.Emitted("a", t0)
	st.Emitted("b", t0.Add(time.Minute))
	st.ETag = `W/"x"`
	if err := st.Save(ctx, mem, "s"); err != nil {
		t.Fatal(err)
	}
	st2, err := LoadState(ctx, mem, "s")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		ts   time.Time
		want Verdict
	}{
		{"b", time.Time{}, Reach},
		{"a", time.Time{}, Skip},
		{"c", t0.Add(2 * time.Minute), Fresh},
		{"old", t0.Add(-2 * time.Hour), Skip},
		{"c2", time.Time{}, Fresh},
	} {
		if got := st2.Judge(tc.id, tc.ts); got != tc.want {
			t.Errorf("judge(%s) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if st2.ETag != `W/"x"` || !st2.LastTS.Equal(t0.Add(time.Minute)) {
		t.Errorf("state not restored: %+v", st2)
	}
	for i := range maxSeen + 10 {
		st2.MarkSeen(string(rune('A'+i%26)) + time.Duration(i).String())
	}
	if len(st2.order) != maxSeen || len(st2.seen) != maxSeen {
		t.Errorf("seen not bounded: %d %d", len(st2.order), len(st2.seen))
	}
}

func TestPollLoopBackoffAndRetryAfter(t *testing.T) {
	clk := collectortest.NewInstantClock()
	env := collectortest.PollEnv(t, clk, nil)
	src := collectortest.SourceConfig(t, "id: p\nkind: json_api\nevery: 1m\njitter: 0.1\n")
	env.Health = collectors.NewSourceHealth(src, collectors.HealthOptions{Clock: clk})
	loop := NewLoop(src, env)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	errs := []error{
		&httpx.StatusError{URL: "http://x/", Status: http.StatusTooManyRequests, RetryAfter: 120 * time.Second},
		&httpx.StatusError{URL: "http://x/", Status: http.StatusServiceUnavailable},
		ErrWait("risk_control", 10*time.Minute, errors.New("code -412")),
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
	if w[1] <= 0 || w[1] > maxBackoff {
		t.Errorf("503 backoff out of range: %s", w[1])
	}
	if w[2] < 10*time.Minute {
		t.Errorf("risk control wait %s < 10m", w[2])
	}
	if w[3] < 54*time.Second || w[3] > 66*time.Second {
		t.Errorf("interval after success %s not within 1m±10%%", w[3])
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("p", "rate_limited")); got != 1 {
		t.Errorf("rate_limited count = %v", got)
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("p", "risk_control")); got != 1 {
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
	clk := collectortest.NewInstantClock()
	env := collectortest.PollEnv(t, clk, nil)
	src := collectortest.SourceConfig(t, "id: wb\nkind: json_api\nevery: 1m\n")
	env.Health = collectors.NewSourceHealth(src, collectors.HealthOptions{Clock: clk, ReassertEvery: time.Second})
	loop := NewLoop(src, env)
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
		return Err("cookie_expired", errors.New("weibo: cookie expired (login page)"))
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

func TestIntervalJitterBounds(t *testing.T) {
	const every = 10 * time.Minute
	seen := map[time.Duration]bool{}
	for range 2000 {
		d := Interval(every, 0.2)
		if d < 8*time.Minute || d > 12*time.Minute {
			t.Fatalf("Interval(10m, 0.2) = %v", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct intervals in 2000 draws", len(seen))
	}
	if d := Interval(every, 0); d != every {
		t.Errorf("no jitter: %v", d)
	}
	for range 100 {
		if d := Interval(every, 5); d < every/10 || d > 2*every {
			t.Fatalf("jitter clamp: %v", d)
		}
	}
}

func TestLoopAtLeast(t *testing.T) {
	src := config.SourceConfig{ID: "s", Every: config.Duration(time.Minute), Jitter: 0.1}
	l := NewLoop(src, collectors.Env{})
	in := func(lo, hi time.Duration) {
		t.Helper()
		for range 50 {
			if iv := l.Interval(); iv < lo || iv > hi {
				t.Fatalf("interval %v, want in [%v, %v]", iv, lo, hi)
			}
		}
	}
	in(54*time.Second, 66*time.Second)
	l.AtLeast(10 * time.Minute) // a feed's ttl
	in(9*time.Minute, 11*time.Minute)
	l.AtLeast(30 * time.Second) // shorter than every: every wins
	in(54*time.Second, 66*time.Second)
	l.AtLeast(0)
	in(54*time.Second, 66*time.Second)
}

func TestReasonNamesTheCause(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("page 1: %w", &httpx.TooLargeError{URL: "http://x/", Limit: 16 << 20}), "too_large"},
		{fmt.Errorf("page 1: %w", &httpx.RobotsError{URL: "http://x/", Agent: "lookout"}), "robots_disallowed"},
		{fmt.Errorf("x: %w", &httpx.CircuitOpenError{Host: "x"}), "circuit_open"},
		{&httpx.StatusError{Status: 429}, "rate_limited"},
		{Err("api_error", errors.New("code -412")), "api_error"},
	} {
		if got := Reason(c.err); got != c.want {
			t.Errorf("Reason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
