package httpx

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the series a Client counts its requests in. collectors.Metrics
// carries the daemon's registered ones (see its HTTP method).
type Metrics struct {
	Requests *prometheus.CounterVec // host, code: outbound HTTP requests
	Waits    *prometheus.CounterVec // host: requests that waited for the rate limiter
}

// NewMetrics creates the series and registers them on reg (nil: not
// registered anywhere, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_http_requests_total", Help: "Outbound HTTP requests by host and status code."}, []string{"host", "code"}),
		Waits:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_http_ratelimit_waits_total", Help: "Requests delayed by the per-host rate limiter."}, []string{"host"}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Waits)
	}
	return m
}
