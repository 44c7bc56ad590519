package collectors

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"lookout/item"
)

func TestKindCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	a, b := m.ItemCounter("a"), m.ItemCounter("b")
	for _, k := range []item.Kind{item.KindChat, item.KindChat, item.KindGift, item.KindChat} {
		a.Inc(k)
	}
	b.Inc(item.KindChat)
	m.Items.WithLabelValues("a", string(item.KindChat)).Inc() // the same series, counted elsewhere
	for _, tc := range []struct {
		source string
		kind   item.Kind
		want   float64
	}{
		{"a", item.KindChat, 4},
		{"a", item.KindGift, 1},
		{"b", item.KindChat, 1},
		{"b", item.KindGift, 0},
	} {
		if got := testutil.ToFloat64(m.Items.WithLabelValues(tc.source, string(tc.kind))); got != tc.want {
			t.Errorf("items_total{source=%q,kind=%q} = %v, want %v", tc.source, tc.kind, got, tc.want)
		}
	}
}
