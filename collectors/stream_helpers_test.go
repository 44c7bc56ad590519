package collectors

import (
	"io"
	"log/slog"
	"lookout/collectors/httpx"
	"lookout/config"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

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
