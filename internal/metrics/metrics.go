// Package metrics is the one way lookout's components register their
// Prometheus collectors.
package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns it, or returns the collector
// already registered under the same description, so that two components
// of one kind on one registry (a second store writer, a backtest engine
// beside the daemon's) share their series. Any other registration error is
// returned with c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// MustRegister is Register for components that cannot run with a metric
// missing: a registration error other than sharing is a programming error
// and panics, naming the metric.
func MustRegister[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	c, err := Register(reg, c)
	if err != nil {
		panic(fmt.Sprintf("register metric: %v", err))
	}
	return c
}
