package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterSharesAnExistingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	if err != nil || b != a {
		t.Fatalf("second registration: %v, same collector %v", err, b == a)
	}
	// Same name, another kind: an error, not a silent second series.
	if _, err := Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other"})); err == nil {
		t.Fatal("a conflicting collector was accepted")
	}
}

func TestMustRegisterSharesOrPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "y_total", Help: "y"}))
	if b := MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "y_total", Help: "y"})); b != a {
		t.Fatal("a second registration of the same metric did not share the first")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a conflicting registration did not panic")
		}
	}()
	MustRegister(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "y_total", Help: "other help"}))
}
