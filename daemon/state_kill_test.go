package daemon

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"lookout/config"
	"lookout/internal/loopback"
)

// startKillChild starts the daemon of the config at cfgPath in a child
// process (TestStateKillChild), env added to its environment and its
// output written to out, for a test to kill and restart.
func startKillChild(t *testing.T, cfgPath string, out io.Writer, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStateKillChild$", "-test.v")
	cmd.Env = append(append(os.Environ(), stateKillEnvConfig+"="+cfgPath), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// stateKillEnvConfig names the config file of the helper process
// TestStateKill9 starts.
const stateKillEnvConfig = "LOOKOUT_STATE_KILL_CONFIG"

// TestStateKillChild is a whole daemon in a process of its own;
// TestStateKill9 runs it and kills it with SIGKILL.
func TestStateKillChild(t *testing.T) {
	path := os.Getenv(stateKillEnvConfig)
	if path == "" {
		t.Skip("helper process for TestStateKill9; runs only when started by it")
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// SIGTERM ends the last run the graceful way; SIGKILL ends the others.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	d, err := New(ctx, Options{Config: cfg, Log: log, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// stateKillPublisher is a loopback source that publishes perPoll new
// entries each time the daemon polls it, until frozen.
type stateKillPublisher struct {
	mu        sync.Mutex
	published []string // ids, oldest first
	polls     int
	frozen    bool
}

// publish records a poll and, unless frozen, n new ids; it returns the
// ids published so far.
func (p *stateKillPublisher) publish(n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.polls++
	if !p.frozen {
		for range n {
			p.published = append(p.published, fmt.Sprintf("e%05d", len(p.published)))
		}
	}
	return append([]string(nil), p.published...)
}

func (p *stateKillPublisher) pollCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.polls
}

func (p *stateKillPublisher) freeze() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = true
	return append([]string(nil), p.published...)
}

// A poller's seen ids, cursor and ETag reach the database with the items
// they cover, or after them: the daemon is killed with SIGKILL at random
// moments shortly after a poll, several times, and restarted on the same
// file each time; in the end every entry the source published is stored,
// once.
func TestStateKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	const (
		perPoll = 100 // new entries per poll
		window  = 500 // entries a feed document lists, newest first
		kills   = 6
	)
	for _, tc := range []struct {
		name string
		// serve starts the source's server and returns its config block.
		serve func(t *testing.T, pub *stateKillPublisher) string
	}{
		{"rss", func(t *testing.T, pub *stateKillPublisher) string {
			srv := loopback.NewFeedServer()
			t.Cleanup(srv.Close)
			base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
			srv.OnRequest(func(path string) {
				ids := pub.publish(perPoll)
				var entries []loopback.FeedEntrySpec
				for i := len(ids) - 1; i >= max(0, len(ids)-window); i-- {
					entries = append(entries, loopback.FeedEntrySpec{ID: ids[i], Title: ids[i], Text: "entry " + ids[i],
						Link: "https://news.example.com/" + ids[i], Published: base.Add(time.Duration(i) * time.Second)})
				}
				srv.SetFeed(path, loopback.RSSDocument("kill", entries), "")
			})
			return fmt.Sprintf("kind: rss\n    url: %q", srv.URL("/feed.xml"))
		}},
		{"json_api", func(t *testing.T, pub *stateKillPublisher) string {
			srv := loopback.NewJSONAPIServer()
			t.Cleanup(srv.Close)
			base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
			known := 0 // ids already added to srv; only the hook touches it
			srv.OnRequest(func(r *http.Request) {
				if p := r.URL.Query().Get("page"); p != "" && p != "1" {
					return // one poll reads several pages; it publishes on the first
				}
				ids := pub.publish(perPoll)
				for _, id := range ids[known:] {
					srv.Add(loopback.JSONAPIPost{ID: id, Body: "post " + id, Author: "a", AuthorID: 1,
						Created: base.Add(time.Duration(known) * time.Second)})
					known++
				}
			})
			return fmt.Sprintf(`kind: json_api
    url: %q
    pagination: {type: page, param: page, max_pages: 20, has_more_path: data.has_more}
    mapping: {items: "data.items[*]", id: id, text: body, author: user.name, time: created_at, time_format: rfc3339}`,
				srv.URL+fmt.Sprintf("/api/posts?per_page=%d", perPoll))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pub := &stateKillPublisher{}
			source := tc.serve(t, pub)
			dir := t.TempDir()
			dbPath := filepath.Join(dir, "lookout.db")
			cfgPath := filepath.Join(dir, "lookout.yaml")
			cfg := fmt.Sprintf(`store: { path: %q, flush_interval: 200ms }
http: { listen: "off" }
classifier: { terms: false }
sources:
  - id: src
    every: 300ms
    jitter: 0.05
    %s
`, dbPath, source)
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, 0))
			t.Logf("seed %d", seed)

			ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			var out bytes.Buffer
			for i := range kills + 1 {
				cmd := exec.Command(os.Args[0], "-test.run=^TestStateKillChild$", "-test.v")
				cmd.Env = append(os.Environ(), stateKillEnvConfig+"="+cfgPath)
				fmt.Fprintf(&out, "--- run %d\n", i+1)
				cmd.Stdout, cmd.Stderr = &out, &out
				start, mark := pub.pollCount(), stateKillMark(t, ro)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				if i == kills {
					// The last run: nothing new is published; it must
					// store everything the killed runs left behind.
					want := pub.freeze()
					missing := stateKillAwaitAll(t, dbPath, want, 20*time.Second)
					// Everything may have been stored before this run
					// started; its first poll shows it has set up its
					// SIGTERM handler, without which SIGTERM kills it.
					for deadline := time.Now().Add(20 * time.Second); pub.pollCount() == start && time.Now().Before(deadline); {
						time.Sleep(5 * time.Millisecond)
					}
					_ = cmd.Process.Signal(syscall.SIGTERM)
					if err := cmd.Wait(); err != nil {
						t.Errorf("last run: %v", err)
					}
					dups := stateKillDuplicates(t, dbPath)
					t.Logf("%d entries published over %d polls and %d kills: %d missing, %d duplicates",
						len(want), pub.pollCount(), kills, len(missing), dups)
					if len(missing) > 0 || dups > 0 {
						t.Errorf("%d of %d entries missing (first %v), %d stored twice; child output:\n%s",
							len(missing), len(want), missing[:min(len(missing), 5)], dups, out.String())
					}
					return
				}
				// Two kinds of moment, in turn: 0–100 ms after the state
				// stored in the file moved (the writer may not have
				// stored the items it covers yet), and 0–300 ms after
				// the run's 1st or 2nd poll (its entries may be anywhere
				// between the collector and the file).
				var delay time.Duration
				var arrived func() bool
				if i%2 == 0 {
					delay = time.Duration(rng.IntN(100)) * time.Millisecond
					arrived = func() bool { return stateKillMark(t, ro) != mark }
				} else {
					delay = time.Duration(rng.IntN(300)) * time.Millisecond
					polls := 1 + rng.IntN(2)
					arrived = func() bool { return pub.pollCount() >= start+polls }
				}
				deadline := time.Now().Add(30 * time.Second)
				for !arrived() && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				if !arrived() {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
					t.Fatalf("run %d never got to the moment to kill it; its output:\n%s", i+1, out.String())
				}
				time.Sleep(delay)
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
	}
}

// stateKillMark says when the source's state covering items last moved
// ("" before the file or the state exists).
func stateKillMark(t *testing.T, ro *sql.DB) string {
	t.Helper()
	var mark sql.NullString
	err := ro.QueryRow(`SELECT max(updated_at) FROM source_state
		WHERE source = 'src' AND key NOT IN ('last_success', 'last_error', 'shape_drift')`).Scan(&mark)
	if err != nil {
		return "" // not created yet
	}
	return mark.String
}

// stateKillAwaitAll waits until every id in want is stored, or timeout;
// it returns the ids still missing.
func stateKillAwaitAll(t *testing.T, dbPath string, want []string, timeout time.Duration) []string {
	t.Helper()
	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	return stateKillAwaitAllDB(ro, want, timeout)
}

// stateKillAwaitAllDB is stateKillAwaitAll on an open database (SQLite or
// PostgreSQL).
func stateKillAwaitAllDB(ro *sql.DB, want []string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		stored := map[string]bool{}
		rows, err := ro.Query(`SELECT item_id FROM items WHERE source = 'src'`)
		if err == nil {
			for rows.Next() {
				var id string
				if rows.Scan(&id) == nil {
					stored[id] = true
				}
			}
			err = rows.Err()
			rows.Close()
		}
		var missing []string
		for _, id := range want {
			if !stored[id] {
				missing = append(missing, id)
			}
		}
		if err == nil && len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stateKillDuplicates counts stored items beyond the first of each id.
func stateKillDuplicates(t *testing.T, dbPath string) int {
	t.Helper()
	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	return stateKillDuplicatesDB(t, ro)
}

// stateKillDuplicatesDB is stateKillDuplicates on an open database.
func stateKillDuplicatesDB(t *testing.T, ro *sql.DB) int {
	t.Helper()
	var n int
	if err := ro.QueryRow(`SELECT count(*) - count(DISTINCT item_id) FROM items WHERE source = 'src'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
