package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/internal/loopback"
	"lookout/store"
)

// TestRestartTakesOverOpenAlerts: the daemon stops while a crisis alert
// fires and starts again on the same database while the storm goes on.
// The second run carries on the same alert (no second firing notice),
// and resolves it, under its id, when the storm is over.
func TestRestartTakesOverOpenAlerts(t *testing.T) {
	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: e2eRoom})
	defer live.Close()
	dbPath := filepath.Join(t.TempDir(), "lookout.db")
	cfg := fmt.Sprintf(`
store: { path: %%[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
keywords:
  crisis: { severity: red, any: [退款, 假货] }
sources:
  - id: live
    kind: bilibili_live
    room: %d
    api_base: %q
    nav_base: %q
    hosts: [%q]
rules:
  - name: crisis-burst
    kind: keyword_burst
    category: crisis
    window: 3s
    levels: { red: 3 }
route: { receiver: console, group_wait: 0s }
receivers:
  - name: console
    console: {}
`, e2eRoom, live.URL(), live.URL(), live.WSURL())

	seq := 0
	storm := func(n int) {
		var cmds [][]byte
		for range n {
			seq++
			cmds = append(cmds, loopback.BilibiliDanmaku(int64(100+seq), "viewer", "假货，要求退款！", time.Now(), fmt.Sprintf("storm-%d", seq)))
		}
		live.Push(cmds...)
	}
	connected := func(n int) {
		t.Helper()
		waitFor(t, "the daemon in the room", 10*time.Second, func() bool { return live.AuthCount() >= n && live.Connections() == 1 })
	}

	ro, stop := healthRunAt(t, dbPath, cfg, nil)
	connected(1)
	storm(5)
	waitFor(t, "the crisis alert firing", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM alerts WHERE state = 'firing'`) == 1
	})
	var id string
	if err := ro.QueryRow(`SELECT id FROM alerts`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	stop()

	ro2, stop2 := healthRunAt(t, dbPath, cfg, nil)
	defer stop2()
	connected(2)
	// The storm goes on for a few seconds after the restart.
	for range 6 {
		storm(2)
		time.Sleep(500 * time.Millisecond)
	}
	waitFor(t, "the alert resolved once the storm is over", 20*time.Second, func() bool {
		return countRows(t, ro2, `SELECT count(*) FROM alerts WHERE id = ? AND state = 'resolved'`, id) == 1
	})
	if n := countRows(t, ro2, `SELECT count(*) FROM alerts`); n != 1 {
		var b strings.Builder
		Query(context.Background(), dbPath, "SELECT id, state, started_at, resolved_at, summary FROM alerts", "table", store.QueryOptions{}, &b)
		Query(context.Background(), dbPath, "SELECT event_id, state, at, summary FROM alert_events", "table", store.QueryOptions{}, &b)
		t.Errorf("%d alerts, want the one carried over\n%s", n, b.String())
	}
	if n := countRows(t, ro2, `SELECT count(*) FROM alert_events WHERE alert_id = ? AND state = 'firing'`, id); n != 1 {
		t.Errorf("%d firing events for the alert, want 1 (no second notice after the restart)", n)
	}
	if n := countRows(t, ro2, `SELECT count(*) FROM outbox o JOIN alert_events e ON e.event_id = o.event_id
		WHERE e.alert_id = ? AND e.state = 'resolved'`, id); n != 1 {
		t.Errorf("resolution queued for %d receivers, want the console that heard of the firing", n)
	}
}
