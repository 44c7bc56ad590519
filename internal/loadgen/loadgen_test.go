package loadgen

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestRunSmall pushes 2 rooms at 200 msgs/s for 2 s through the real
// daemon: nothing may be lost, and the JSON carries the documented keys.
func TestRunSmall(t *testing.T) {
	res, err := Run(context.Background(), Options{Rooms: 2, Rate: 200, Duration: 2 * time.Second, DBPath: t.TempDir() + "/lg.db", Ceiling: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent < 300 {
		t.Errorf("sent %d, want about 400", res.Sent)
	}
	if res.Lost != 0 || res.Stored != res.Sent {
		t.Errorf("sent %d stored %d lost %d, want nothing lost", res.Sent, res.Stored, res.Lost)
	}
	if res.P50ms <= 0 || res.P99ms < res.P50ms {
		t.Errorf("latency p50 %v p99 %v", res.P50ms, res.P99ms)
	}
	if res.CeilingRate <= 0 || res.CeilingRatio <= 0 {
		t.Errorf("ceiling %v items/s, ratio %v", res.CeilingRate, res.CeilingRatio)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rooms", "target_rate", "achieved_rate", "stored", "lost", "p50_ms", "p99_ms", "rss_mb"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s lacks %q", b, k)
		}
	}
}
