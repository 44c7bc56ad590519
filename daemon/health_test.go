package daemon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lcollectors "lookout/collectors"
	"lookout/collectors/all"
	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/internal/loopback"
	"lookout/item"
	"lookout/store"
)

// healthRun starts the daemon on cfgText (with %[1]q as the database path)
// and returns a read-only handle on its database and a stop function that
// waits for a clean shutdown (safe to call twice). tune (optional) adjusts
// the daemon's options.
func healthRun(t *testing.T, cfgText string, clock httpx.Clock, tune ...func(*Options)) (*sql.DB, func()) {
	t.Helper()
	ro, _, stop := healthStart(t, filepath.Join(t.TempDir(), "lookout.db"), cfgText, clock, tune...)
	return ro, stop
}

// healthRunAt is healthRun on a given database file.
func healthRunAt(t *testing.T, dbPath, cfgText string, clock httpx.Clock) (*sql.DB, func()) {
	t.Helper()
	ro, _, stop := healthStart(t, dbPath, cfgText, clock)
	return ro, stop
}

// healthStart is healthRunAt that also returns the running daemon.
func healthStart(t *testing.T, dbPath, cfgText string, clock httpx.Clock, tune ...func(*Options)) (*sql.DB, *Daemon, func()) {
	t.Helper()
	cfg, err := config.Parse(fmt.Appendf(nil, cfgText, dbPath), "health.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	opts := Options{Config: cfg, Log: log, Out: &strings.Builder{}, Clock: clock, ShutdownGrace: 10 * time.Second}
	for _, f := range tune {
		f(&opts)
	}
	d, err := New(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("daemon stopped with error: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("daemon did not stop within 20s")
			}
		})
	}
	return ro, d, stop
}

func healthAlert(t *testing.T, ro *sql.DB, rule string) (state, severity, summary string) {
	t.Helper()
	err := ro.QueryRow(`SELECT state, severity, summary FROM alerts WHERE rule = ? ORDER BY updated_at DESC LIMIT 1`, rule).
		Scan(&state, &severity, &summary)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return state, severity, summary
}

// TestSourceBrokenAlertOnShapeDrift: a forum page that is redesigned under
// the scraper (200 OK, no items where there were some) raises a
// source_broken alert through the real pipeline; the fix resolves it. An
// absent rule on the same source keeps counting the source as silent: the
// health report is not the source speaking.
func TestSourceBrokenAlertOnShapeDrift(t *testing.T) {
	site := loopback.NewHTMLSiteServer()
	defer site.Close()
	site.Add(loopback.HTMLPost{ID: 1, Title: "新品开箱", Author: "用户1", Time: time.Now().Add(-time.Hour), Body: "很好用"})

	ro, stop := healthRun(t, `
store: { path: %[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
limits: { default: { rate: 100/s, burst: 100 } }
sources:
  - id: forum
    kind: html
    url: `+site.URL+`/forum
    every: 1s
    jitter: 0.01
    room: brand-forum
    selectors: { item: li.post, id: "@data-pid", title: a.title, text: div.content, author: span.author }
rules:
  - name: forum-broken
    kind: source_broken
    severity: red
  - name: forum-quiet
    kind: absent
    window: 1h
route: { receiver: console, group_wait: 0s }
receivers:
  - name: console
    console: {}
`, nil)
	defer stop()

	waitFor(t, "the first post in SQLite", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source='forum'`) == 1
	})
	if n := countRows(t, ro, `SELECT count(*) FROM metrics WHERE name = ?`, item.MetricSourceBroken); n != 0 {
		t.Fatalf("%d health reports from a working source", n)
	}
	site.SetDrift(true)
	waitFor(t, "a firing source_broken alert", 15*time.Second, func() bool {
		state, _, _ := healthAlert(t, ro, "forum-broken")
		return state == "firing"
	})
	_, severity, summary := healthAlert(t, ro, "forum-broken")
	if severity != "red" || !strings.Contains(summary, "forum") || !strings.Contains(summary, "shape_drift") ||
		!strings.Contains(summary, "/forum") {
		t.Errorf("alert: severity %s, summary %q", severity, summary)
	}
	// The alert engine sees the report before the store's batch commits it.
	waitFor(t, "the health report in the metrics table", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM metrics WHERE name = ? AND value = 1 AND room = ''
		AND json_extract(labels, '$.reason') = 'shape_drift'`, item.MetricSourceBroken) > 0
	})

	// `lookout status` says why while it lasts (its row is rewritten when
	// the state changes, through the same writer).
	var status strings.Builder
	waitFor(t, "lookout status showing the breakage", 15*time.Second, func() bool {
		status.Reset()
		if err := Query(context.Background(), dbPath(t, ro), StatusQuery, "csv", store.QueryOptions{}, &status); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(status.String(), "shape_drift: answered but yielded no items")
	})

	site.SetDrift(false)
	site.Add(loopback.HTMLPost{ID: 2, Title: "修好了", Author: "用户2", Time: time.Now(), Body: "页面回来了"})
	waitFor(t, "the alert resolved", 15*time.Second, func() bool {
		state, _, _ := healthAlert(t, ro, "forum-broken")
		return state == "resolved"
	})
	if _, _, summary := healthAlert(t, ro, "forum-broken"); !strings.Contains(summary, "works again") {
		t.Errorf("resolved summary %q", summary)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM alerts WHERE rule = 'forum-quiet'`); n != 0 {
		t.Errorf("absent fired %d times within its hour", n)
	}
}

// healthFlaky is a collector that gives up on its first run and delivers
// one chat line on the next: the supervisor's last-resort health report.
type healthFlaky struct{ runs *atomic.Int32 }

func (c healthFlaky) Run(ctx context.Context, emit lcollectors.Emit) error {
	if c.runs.Add(1) == 1 {
		return errors.New("room 42 was closed by the platform")
	}
	if err := emit(ctx, item.Item{Platform: "test", Kind: item.KindChat, Room: "42", ID: "back-1", Text: "回来了"}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// withHealthFlaky adds the kind daemon_test_flaky (a healthFlaky counting
// its runs in runs) to the daemon's collector kinds.
func withHealthFlaky(runs *atomic.Int32) func(*Options) {
	return func(o *Options) {
		o.Collectors = all.Registry()
		o.Collectors["daemon_test_flaky"] = func(config.SourceConfig, lcollectors.Env) (lcollectors.Collector, error) {
			return healthFlaky{runs: runs}, nil
		}
	}
}

// healthQuickClock is the real clock except that the supervisor's restart
// pause is skipped, so the test does not wait out a 5 s backoff.
type healthQuickClock struct{}

func (healthQuickClock) Now() time.Time { return time.Now() }
func (healthQuickClock) After(d time.Duration) <-chan time.Time {
	return time.After(min(d, 100*time.Millisecond))
}

// TestSourceBrokenWhenCollectorGivesUp: a collector that returns an error
// is restarted, and the stop is a source_broken alert until it delivers.
func TestSourceBrokenWhenCollectorGivesUp(t *testing.T) {
	var runs atomic.Int32
	ro, stop := healthRun(t, `
store: { path: %[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
sources:
  - id: flaky
    kind: daemon_test_flaky
rules:
  - name: broken
    kind: source_broken
route: { receiver: console, group_wait: 0s }
receivers:
  - name: console
    console: {}
`, healthQuickClock{}, withHealthFlaky(&runs))
	defer stop()
	waitFor(t, "the chat line after the restart", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source='flaky'`) == 1
	})
	if n := countRows(t, ro, `SELECT count(*) FROM metrics WHERE name = ? AND value = 1
		AND json_extract(labels, '$.reason') = 'collector_stopped'
		AND json_extract(labels, '$.detail') LIKE '%room 42 was closed%'`, item.MetricSourceBroken); n != 1 {
		t.Errorf("broken reports = %d, want 1", n)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM metrics WHERE name = ? AND value = 0`, item.MetricSourceBroken); n != 1 {
		t.Errorf("recovery reports = %d, want 1", n)
	}
	// The report and the recovery may land in one evaluation round, so
	// the alert may have gone pending → cleared or firing → resolved; it
	// must not be left open.
	waitFor(t, "no open source_broken alert", 15*time.Second, func() bool {
		state, _, _ := healthAlert(t, ro, "broken")
		return state != "firing" && state != "pending"
	})
	stop() // writes source_health one last time
	if n := countRows(t, ro, `SELECT items FROM source_health WHERE source='flaky'`); n != 1 {
		t.Errorf("source_health.items = %d: the health report counted as a delivery", n)
	}
}

// dbPath is the file behind a database handle.
func dbPath(t *testing.T, db *sql.DB) string {
	t.Helper()
	var seq int
	var name, file string
	if err := db.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}
