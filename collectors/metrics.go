package collectors

import (
	"github.com/prometheus/client_golang/prometheus"

	"lookout/collectors/httpx"
	"lookout/item"
)

// Metrics are the sources' Prometheus series. Every failure a collector
// survives is counted here with a reason, so a quiet source can be told
// apart from a broken one.
type Metrics struct {
	Items      *prometheus.CounterVec // source, kind: items emitted
	Errors     *prometheus.CounterVec // source, reason: errors survived
	Reconnects *prometheus.CounterVec // source: stream reconnects
	Unknown    *prometheus.CounterVec // source, what: unknown commands / message types
	Requests   *prometheus.CounterVec // host, code: outbound HTTP requests
	Waits      *prometheus.CounterVec // host: requests that waited for the rate limiter

	// Set by whoever judges source health (the daemon), not by collectors.
	Up          *prometheus.GaugeVec // source: 1 while the source works, 0 while connecting or broken
	LastSuccess *prometheus.GaugeVec // source: Unix time the source last worked
}

// NewMetrics creates the counters and registers them on reg (nil: not
// registered anywhere, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	h := httpx.NewMetrics(nil)
	m := &Metrics{
		Items:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_collector_items_total", Help: "Items emitted by collectors."}, []string{"source", "kind"}),
		Errors:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_collector_errors_total", Help: "Errors collectors survived, by reason."}, []string{"source", "reason"}),
		Reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_collector_reconnects_total", Help: "Stream reconnects."}, []string{"source"}),
		Unknown:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_collector_unknown_total", Help: "Unknown commands or message types seen."}, []string{"source", "what"}),
		Requests:   h.Requests,
		Waits:      h.Waits,
		Up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_source_up",
			Help: "1 while the source works, 0 while it is connecting or broken."}, []string{"source"}),
		LastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_source_last_success_timestamp_seconds",
			Help: "Unix time the source last worked (a poll answered, a connection accepted, an item delivered)."}, []string{"source"}),
	}
	if reg != nil {
		reg.MustRegister(m.Items, m.Errors, m.Reconnects, m.Unknown, m.Requests, m.Waits, m.Up, m.LastSuccess)
	}
	return m
}

// HTTP is the part of m an httpx.Client counts its requests in.
func (m *Metrics) HTTP() *httpx.Metrics {
	return &httpx.Metrics{Requests: m.Requests, Waits: m.Waits}
}

// KindCounter counts one source's emitted items (Items) by kind, with
// the counter of each kind looked up once: WithLabelValues hashes both
// labels and takes the vector's lock, which a busy stream would pay per
// item. Not safe for concurrent use: one per collector goroutine.
type KindCounter struct {
	vec    *prometheus.CounterVec
	source string
	byKind map[item.Kind]prometheus.Counter
}

// ItemCounter returns a KindCounter for source.
func (m *Metrics) ItemCounter(source string) *KindCounter {
	return &KindCounter{vec: m.Items, source: source, byKind: map[item.Kind]prometheus.Counter{}}
}

// Inc counts one item of kind k.
func (c *KindCounter) Inc(k item.Kind) {
	ctr, ok := c.byKind[k]
	if !ok {
		ctr = c.vec.WithLabelValues(c.source, string(k))
		c.byKind[k] = ctr
	}
	ctr.Inc()
}
