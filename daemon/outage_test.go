package daemon

import (
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"lookout/internal/loopback"
	"lookout/item"
)

// outageRig is one source against its loopback server, with a way to break
// the server and to mend it.
type outageRig struct {
	source  string   // the source's YAML lines after "- id: src"
	breakIt func()   // kill the server, or make it refuse or talk nonsense
	heal    func()   // bring it back
	reasons []string // reasons the broken sample may give
}

// outageKilled are the reasons a killed server may show as: the
// connection fails on dial, during the handshake or while reading.
var outageKilled = []string{"dial", "disconnected", "bootstrap", "timeout"}

// TestSourceOutage kills (or makes refuse, or makes talk nonsense) the
// loopback server of every streaming kind, and of a polling one, under the
// real daemon: the source must show as broken in `lookout status` with its
// last error and when it happened, write a source_broken sample that fires
// the source_broken rule, and recover (0 sample, alert resolved, state ok)
// once the server is back.
func TestSourceOutage(t *testing.T) {
	t.Setenv("LOOKOUT_OUTAGE_MASTO_TOKEN", "outage-token")
	t.Setenv("LOOKOUT_OUTAGE_DOUYIN_KEY", "outage-key")
	cases := []struct {
		kind  string
		start func(t *testing.T) outageRig
	}{
		{"bilibili_live", func(t *testing.T) outageRig {
			srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: 5550001})
			t.Cleanup(srv.Close)
			g := loopback.NewGate(srv.URL())
			t.Cleanup(g.Close)
			return outageRig{
				source: fmt.Sprintf("kind: bilibili_live\n    room: 5550001\n    api_base: %s\n    nav_base: %s\n    hosts: [%q]",
					g.URL(srv.URL()), g.URL(srv.URL()), g.URL(srv.WSURL())),
				breakIt: g.Down, heal: g.Up, reasons: outageKilled,
			}
		}},
		{"douyin_live", func(t *testing.T) outageRig {
			srv := loopback.NewDouyinServer("646454278948", 7300000000000000001, []byte("outage-key"))
			t.Cleanup(srv.Close)
			return outageRig{
				source: fmt.Sprintf("kind: douyin_live\n    room: \"646454278948\"\n    ws_base: %s\n    page_base: %s\n    loopback_sign_key: ${LOOKOUT_OUTAGE_DOUYIN_KEY}",
					srv.WSBase, srv.PageBase),
				// Douyin changes its signing: our signatures are refused
				// with 403 from the next connection on.
				breakIt: func() { srv.SetKey([]byte("changed")); srv.Drop() },
				heal:    func() { srv.SetKey([]byte("outage-key")) },
				reasons: []string{"signature"},
			}
		}},
		{"twitch", func(t *testing.T) outageRig {
			srv := loopback.NewTwitchServer()
			t.Cleanup(srv.Close)
			g := loopback.NewGate(srv.URL)
			t.Cleanup(g.Close)
			return outageRig{source: fmt.Sprintf("kind: twitch\n    url: %s\n    channels: [outage]", g.URL(srv.URL)),
				breakIt: g.Down, heal: g.Up, reasons: outageKilled}
		}},
		{"mastodon", func(t *testing.T) outageRig {
			srv := loopback.NewMastodonServer("outage-token")
			t.Cleanup(srv.Close)
			g := loopback.NewGate(srv.URL)
			t.Cleanup(g.Close)
			return outageRig{
				source: fmt.Sprintf("kind: mastodon\n    url: %s\n    streaming_url: %s\n    token: ${LOOKOUT_OUTAGE_MASTO_TOKEN}\n    tags: [golang]",
					g.URL(srv.URL), g.URL(srv.StreamingURL)),
				breakIt: g.Down, heal: g.Up, reasons: outageKilled,
			}
		}},
		{"bluesky", func(t *testing.T) outageRig {
			srv := loopback.NewBlueskyServer()
			t.Cleanup(srv.Close)
			g := loopback.NewGate(srv.URL)
			t.Cleanup(g.Close)
			return outageRig{source: fmt.Sprintf("kind: bluesky\n    url: %s\n    handle_lookup: \"off\"", g.URL(srv.URL)),
				breakIt: g.Down, heal: g.Up, reasons: outageKilled}
		}},
		{"websocket_json", func(t *testing.T) outageRig {
			// Connected all along, but the feed sends only frames that do
			// not decode: nothing usable for BrokenAfter is broken.
			srv := loopback.NewWSJSONServer()
			t.Cleanup(srv.Close)
			var garbage atomic.Bool
			outageEvery(t, 20*time.Millisecond, func(i int) {
				if garbage.Load() {
					srv.Send(`{"data": [{"id": 1, "text": "cut off`)
				} else if i%10 == 0 {
					srv.Send(fmt.Sprintf(`{"data": [{"id": "m%d", "text": "hello"}]}`, i))
				}
			})
			return outageRig{
				source: fmt.Sprintf("kind: websocket_json\n    url: ws%s/feed\n    mapping: {items: \"data[*]\", id: id, text: text, kind: chat}",
					strings.TrimPrefix(srv.URL, "http")),
				breakIt: func() { garbage.Store(true) },
				heal:    func() { garbage.Store(false) },
				reasons: []string{"decode"},
			}
		}},
		{"rss (polling)", func(t *testing.T) outageRig {
			srv := loopback.NewFeedServer()
			t.Cleanup(srv.Close)
			good := loopback.RSSDocument("Acme", []loopback.FeedEntrySpec{{ID: "a", Title: "新品", Published: time.Now()}})
			srv.SetFeed("/feed.xml", good, "")
			return outageRig{source: fmt.Sprintf("kind: rss\n    url: %s\n    every: 1s", srv.URL("/feed.xml")),
				breakIt: func() { srv.SetFeed("/feed.xml", []byte("<html><body>Maintenance</body></html>"), "text/html") },
				heal:    func() { srv.SetFeed("/feed.xml", good, "") },
				reasons: []string{"parse"},
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			rig := tc.start(t)
			ro, stop := healthRun(t, `
store: { path: %[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
limits: { default: { rate: 1000/s, burst: 1000 } }
classifier: { terms: false } # no segmentation dictionary to load per daemon
sources:
  - id: src
    `+rig.source+`
rules:
  - name: broken
    kind: source_broken
route: { receiver: console, group_wait: 0s }
receivers:
  - name: console
    console: {}
`, healthQuickClock{}, quickHealth)
			defer stop()

			outageWaitState(t, ro, "ok", 15*time.Second)
			if n := countRows(t, ro, `SELECT count(*) FROM metrics WHERE name = ?`, item.MetricSourceBroken); n != 0 {
				t.Fatalf("%d source_broken samples from a working source", n)
			}

			rig.breakIt()
			broke := time.Now()
			outageWaitState(t, ro, "broken", 10*time.Second)
			// Three failures come within a few capped backoffs, nothing
			// usable within BrokenAfter; a health round and a store write
			// come on top.
			if took := time.Since(broke); took > quickBrokenAfter+4*time.Second {
				t.Errorf("broken after %s", took)
			}
			row := outageStatus(t, ro)
			if !slices.Contains(rig.reasons, strings.SplitN(row["broken"], ":", 2)[0]) {
				t.Errorf("status broken = %q, want one of the reasons %v", row["broken"], rig.reasons)
			}
			if row["last_error"] == "" || row["last_error_at"] == "" || row["since"] == "" {
				t.Errorf("status lacks the last error, its time or the state's start: %v", row)
			}
			if regexp.MustCompile(`^\d{4}-\d\d-\d\d`).MatchString(row["last_error"]) {
				t.Errorf("last_error has a time glued on: %q", row["last_error"])
			}
			waitFor(t, "a source_broken sample", 5*time.Second, func() bool {
				return countRows(t, ro, `SELECT count(*) FROM metrics WHERE name = ? AND value = 1 AND room = ''
					AND json_extract(labels, '$.detail') <> ''`, item.MetricSourceBroken) > 0
			})
			waitFor(t, "the source_broken alert firing", 5*time.Second, func() bool {
				state, _, _ := healthAlert(t, ro, "broken")
				return state == "firing"
			})

			rig.heal()
			outageWaitState(t, ro, "ok", 15*time.Second)
			waitFor(t, "the recovery sample", 5*time.Second, func() bool {
				return countRows(t, ro, `SELECT count(*) FROM metrics WHERE name = ? AND value = 0`, item.MetricSourceBroken) == 1
			})
			waitFor(t, "the alert resolved", 5*time.Second, func() bool {
				state, _, _ := healthAlert(t, ro, "broken")
				return state == "resolved"
			})
			if row := outageStatus(t, ro); row["last_success"] <= row["last_error_at"] || row["broken"] != "" {
				t.Errorf("status after recovery: %v", row)
			}
		})
	}
}

// outageEvery calls f every d (with a counter) until the test ends.
func outageEvery(t *testing.T, d time.Duration, f func(i int)) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // owner: the test; stopped by its cleanup
		defer close(done)
		tick := time.NewTicker(d)
		defer tick.Stop()
		for i := 0; ; i++ {
			f(i)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// outageStatus is the `lookout status` row of source src, by column.
func outageStatus(t *testing.T, ro *sql.DB) map[string]string {
	t.Helper()
	rows, err := ro.Query(StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, c := range cols {
			row[c] = vals[i].String
		}
		if row["source"] == "src" {
			return row
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return nil
}

// outageWaitState waits until `lookout status` shows the source in state.
func outageWaitState(t *testing.T, ro *sql.DB, state string, timeout time.Duration) {
	t.Helper()
	var last map[string]string
	deadline := time.Now().Add(timeout)
	for {
		last = outageStatus(t, ro)
		if last["state"] == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed %s within %s; last: %v", state, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
