package collectors

import (
	"errors"
	"strings"
	"testing"
	"time"

	"lookout/collectors/httpx"
	"lookout/config"
)

// healthClock is a clock the test moves by hand.
type healthClock struct{ now time.Time }

func (c *healthClock) Now() time.Time                       { return c.now }
func (c *healthClock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

// healthStep is one thing that happens to a source, then what its health
// must say.
type healthStep struct {
	after  time.Duration // clock advance before the event
	event  string        // ok, fail, reject, junk, drift, undrift, "" (none)
	state  HealthState
	sample string // "1", "0" or "" (no sample due)
	reason string // the broken sample's reason, when sample is "1"
	detail string // a part of its detail
}

func TestSourceHealthVerdicts(t *testing.T) {
	dropErr := errors.New("read: connection reset by peer")
	cases := []struct {
		name  string
		opts  HealthOptions
		polls time.Duration
		steps []healthStep
	}{
		{name: "three failures in a row break, a success mends", steps: []healthStep{
			{event: "ok", state: HealthOK},
			{after: time.Second, event: "fail", state: HealthConnecting},
			{after: time.Second, event: "fail", state: HealthConnecting},
			{after: time.Second, event: "fail", state: HealthBroken, sample: "1", reason: "dial", detail: "3 attempts in a row failed; last: read: connection reset"},
			{after: time.Second, event: "fail", state: HealthBroken},
			{after: time.Second, event: "ok", state: HealthOK, sample: "0"},
			{after: time.Second, event: "ok", state: HealthOK},
		}},
		{name: "a refused login breaks at once", steps: []healthStep{
			{event: "reject", state: HealthBroken, sample: "1", reason: "auth", detail: "refused"},
			{after: time.Second, event: "ok", state: HealthOK, sample: "0"},
		}},
		{name: "failing for BrokenAfter breaks before the third failure", steps: []healthStep{
			{event: "ok", state: HealthOK},
			{after: time.Second, event: "fail", state: HealthConnecting},
			{after: 29 * time.Second, state: HealthConnecting},
			{after: time.Second, state: HealthBroken, sample: "1", reason: "dial", detail: "failing for 30s"},
		}},
		{name: "a poller waits FailuresToBreak polls, not BrokenAfter", polls: 5 * time.Minute, steps: []healthStep{
			{event: "ok", state: HealthOK},
			{event: "fail", state: HealthConnecting},
			{after: 5 * time.Minute, state: HealthConnecting},
			{after: 10 * time.Minute, state: HealthBroken, sample: "1", detail: "failing for 15m"},
		}},
		{name: "only undecodable frames for BrokenAfter break", steps: []healthStep{
			{event: "ok", state: HealthOK},
			{after: time.Second, event: "junk", state: HealthConnecting},
			{after: 15 * time.Second, event: "junk", state: HealthConnecting},
			{after: 15 * time.Second, event: "junk", state: HealthBroken, sample: "1", reason: "decode", detail: "nothing usable for 30s"},
			{after: time.Second, event: "ok", state: HealthOK, sample: "0"},
		}},
		{name: "one bad frame then silence is not broken", steps: []healthStep{
			{event: "ok", state: HealthOK},
			{event: "junk", state: HealthConnecting},
			{after: time.Hour, state: HealthConnecting},
		}},
		{name: "connections that keep dropping are flapping", opts: HealthOptions{FlapLimit: 3}, steps: []healthStep{
			{event: "ok"}, {after: time.Second, event: "fail"},
			{event: "ok"}, {after: time.Second, event: "fail"},
			{event: "ok", state: HealthOK},
			{after: time.Second, event: "fail", state: HealthBroken, sample: "1", reason: "flapping", detail: "3 connections failed within 1m0s"},
			{event: "ok", state: HealthBroken},
			{after: time.Minute, state: HealthOK, sample: "0"},
		}},
		{name: "shape drift breaks, items mend", polls: time.Minute, steps: []healthStep{
			{event: "ok", state: HealthOK},
			{after: time.Minute, event: "drift", state: HealthBroken, sample: "1", reason: "shape_drift", detail: "li.post"},
			{after: time.Minute, event: "undrift", state: HealthOK, sample: "0"},
		}},
		{name: "a broken source is said again every ReassertEvery", opts: HealthOptions{ReassertEvery: 10 * time.Second}, steps: []healthStep{
			{event: "reject", state: HealthBroken, sample: "1"},
			{after: 5 * time.Second, state: HealthBroken},
			{after: 5 * time.Second, state: HealthBroken, sample: "1"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &healthClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			tc.opts.Clock = clk
			h := NewSourceHealth(config.SourceConfig{ID: "s", Kind: "test"}, tc.opts)
			h.PollsEvery(tc.polls)
			for i, s := range tc.steps {
				clk.now = clk.now.Add(s.after)
				switch s.event {
				case "ok":
					h.Succeeded()
				case "fail":
					h.Failed("dial", dropErr, false)
				case "reject":
					h.Failed("auth", errors.New("token refused"), true)
				case "junk":
					h.Unusable("decode", errors.New("invalid JSON"))
				case "drift":
					h.Drifted("li.post", "")
				case "undrift":
					h.Succeeded()
					h.Drifted("", "")
				}
				it, due := h.Report()
				st := h.Status()
				if s.state != "" && st.State != s.state {
					t.Errorf("step %d: state %s, want %s (%+v)", i, st.State, s.state, st)
				}
				switch {
				case s.sample == "" && due:
					t.Errorf("step %d: unexpected sample %v %v", i, it.Value, it.Labels)
				case s.sample != "" && !due:
					t.Errorf("step %d: no sample, want %s", i, s.sample)
				case s.sample == "1" && (it.Value != 1 || (s.reason != "" && it.Labels["reason"] != s.reason) ||
					!strings.Contains(it.Labels["detail"], s.detail)):
					t.Errorf("step %d: sample %v %v, want 1 with reason %q and detail containing %q", i, it.Value, it.Labels, s.reason, s.detail)
				case s.sample == "0" && (it.Value != 0 || it.Labels["reason"] != "recovered"):
					t.Errorf("step %d: sample %v %v, want 0", i, it.Value, it.Labels)
				}
			}
		})
	}
}

// TestSourceHealthStatus: the status keeps the last error and its time
// apart, the last success, and when the state began.
func TestSourceHealthStatus(t *testing.T) {
	clk := &healthClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	h := NewSourceHealth(config.SourceConfig{ID: "s", Kind: "test"}, HealthOptions{Clock: clk})
	if st := h.Status(); st.State != HealthConnecting || !st.Since.Equal(clk.now) || !st.LastSuccess.IsZero() {
		t.Fatalf("new: %+v", st)
	}
	clk.now = clk.now.Add(time.Second)
	okAt := clk.now
	h.Succeeded()
	clk.now = clk.now.Add(time.Second)
	errAt := clk.now
	h.Failed("dial", errors.New("dial tcp: connection refused"), true)
	st := h.Status()
	if st.State != HealthBroken || !st.Since.Equal(errAt) || !st.LastSuccess.Equal(okAt) ||
		st.LastError != "dial tcp: connection refused" || !st.LastErrorAt.Equal(errAt) || st.Reason != "dial" {
		t.Errorf("broken: %+v", st)
	}
	var nilHealth *SourceHealth // collectors built without a daemon report into nothing
	nilHealth.Succeeded()
	nilHealth.Failed("x", errors.New("x"), true)
	if _, due := nilHealth.Report(); due {
		t.Error("a nil health reported")
	}
}

// TestSourceHealthWarned: a warning is shown as the last error and leaves a
// working source working.
func TestSourceHealthWarned(t *testing.T) {
	clk := &healthClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	h := NewSourceHealth(config.SourceConfig{ID: "s", Kind: "test"}, HealthOptions{Clock: clk})
	h.Succeeded()
	clk.now = clk.now.Add(time.Second)
	h.Warned("gap", errors.New("statuses 5..9 not fetched"))
	st := h.Status()
	if st.State != HealthOK || st.LastError != "gap: statuses 5..9 not fetched" || !st.LastErrorAt.Equal(clk.now) {
		t.Errorf("after a warning: %+v", st)
	}
	if it, due := h.Report(); due {
		t.Errorf("a warning made a source_broken sample: %+v", it)
	}
	var nilHealth *SourceHealth
	nilHealth.Warned("gap", errors.New("x"))
}

// TestSourceHealthResumeBroken: a source the last run left broken is said
// to work at its first success, and said broken again at once if it is.
func TestSourceHealthResumeBroken(t *testing.T) {
	clk := &healthClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h := NewSourceHealth(config.SourceConfig{ID: "s"}, HealthOptions{Clock: clk})
	h.ResumeBroken()
	if _, due := h.Report(); due {
		t.Error("a sample before anything happened")
	}
	h.Succeeded()
	if it, due := h.Report(); !due || it.Value != 0 {
		t.Errorf("first success after a broken run: %v %v", it, due)
	}
	h2 := NewSourceHealth(config.SourceConfig{ID: "s"}, HealthOptions{Clock: clk})
	h2.ResumeBroken()
	h2.Failed("auth", errors.New("refused"), true)
	if it, due := h2.Report(); !due || it.Value != 1 {
		t.Errorf("still broken after a broken run: %v %v", it, due)
	}
}

func TestHealthReason(t *testing.T) {
	cases := []struct {
		err       error
		reason    string
		permanent bool
	}{
		{WithReason("signature", true, errors.New("403")), "signature", true},
		{errors.Join(errors.New("websocket handshake"), &httpx.StatusError{Status: 401}), "auth", true},
		{&httpx.StatusError{Status: 429}, "rate_limited", false},
		{&httpx.StatusError{Status: 502}, "http_502", false},
		{errors.New("read: EOF"), "disconnected", false},
	}
	for _, c := range cases {
		if r, p := HealthReason(c.err); r != c.reason || p != c.permanent {
			t.Errorf("HealthReason(%v) = %s, %v; want %s, %v", c.err, r, p, c.reason, c.permanent)
		}
	}
}
