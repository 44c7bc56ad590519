package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"lookout/internal/loopback"
	"lookout/internal/testutil"
)

// runChildEnv holds the config path of the `lookout run` that
// TestRunChild runs in a process of its own.
const runChildEnv = "LOOKOUT_RUN_CHILD_CONFIG"

// TestRunChild is `lookout run -c $LOOKOUT_RUN_CHILD_CONFIG` through main,
// signal handling included; the signal tests start it as a child process.
func TestRunChild(t *testing.T) {
	path := os.Getenv(runChildEnv)
	if path == "" {
		t.Skip("helper process for the signal tests; runs only when started by them")
	}
	os.Args = []string{"lookout", "run", "-c", path, "--log-level", "info"}
	main() // exits the process
}

// syncBuffer is a child's output, read while the child writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// feedPublisher is an RSS feed that lists perPoll new entries each time it
// is polled, until frozen.
type feedPublisher struct {
	srv  *loopback.FeedServer
	path string
	base time.Time

	mu     sync.Mutex
	ids    []string
	polls  int
	frozen bool
}

func newFeedPublisher(t *testing.T, path string, perPoll int) *feedPublisher {
	p := &feedPublisher{srv: loopback.NewFeedServer(), path: path, base: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}
	t.Cleanup(p.srv.Close)
	p.srv.OnRequest(func(string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.polls++
		if !p.frozen {
			for range perPoll {
				p.ids = append(p.ids, fmt.Sprintf("%s-%05d", strings.Trim(path, "/."), len(p.ids)))
			}
		}
		var entries []loopback.FeedEntrySpec
		for i := len(p.ids) - 1; i >= max(0, len(p.ids)-200); i-- {
			entries = append(entries, loopback.FeedEntrySpec{ID: p.ids[i], Title: p.ids[i], Text: "entry " + p.ids[i],
				Link: "https://news.example.com/" + p.ids[i], Published: p.base.Add(time.Duration(i) * time.Second)})
		}
		p.srv.SetFeed(path, loopback.RSSDocument("feed", entries), "")
	})
	p.srv.SetFeed(path, loopback.RSSDocument("feed", nil), "")
	return p
}

func (p *feedPublisher) pollCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.polls
}

func (p *feedPublisher) freeze() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = true
	return append([]string(nil), p.ids...)
}

// TestSignalsOfRunningDaemon runs `lookout run` as a child process fed by
// loopback RSS feeds and, while they publish, sends it SIGHUP with the
// config unchanged, changed (a source restarted, one added), broken; asks
// it to reload with `lookout reload`; sends SIGUSR1; then SIGTERM. The
// process lives through all but the last, every reload is counted, and
// every entry the feeds published is stored exactly once.
func TestSignalsOfRunningDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a helper process")
	}
	a := newFeedPublisher(t, "/a.xml", 20)
	b := newFeedPublisher(t, "/b.xml", 20)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lookout.db")
	cfgPath := filepath.Join(dir, "lookout.yaml")
	addr := freeAddr(t)
	writeConfig := func(everyA string, withB bool, extra string) {
		t.Helper()
		text := fmt.Sprintf(`store: { path: %q, flush_interval: 100ms }
http: { listen: %q }
classifier: { terms: false }
sources:
  - id: a
    kind: rss
    url: %q
    every: %s
    jitter: 0.01
`, dbPath, addr, a.srv.URL(a.path), everyA)
		if withB {
			text += fmt.Sprintf("  - id: b\n    kind: rss\n    url: %q\n    every: 100ms\n", b.srv.URL(b.path))
		}
		if err := os.WriteFile(cfgPath, []byte(text+extra), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("100ms", false, "")

	cmd := exec.Command(os.Args[0], "-test.run=^TestRunChild$")
	cmd.Env = append(os.Environ(), runChildEnv+"="+cfgPath)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed when the child is gone; waitErr is then how.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	alive := func(what string) {
		t.Helper()
		select {
		case <-exited:
			t.Fatalf("the daemon exited after %s: %v\n%s", what, waitErr, out.String())
		default:
		}
	}
	signal := func(sig syscall.Signal) {
		t.Helper()
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatalf("send %v: %v", sig, err)
		}
	}
	// polled waits until feed p has been polled n more times: the daemon
	// is alive and its source runs.
	polled := func(p *feedPublisher, n int, what string) {
		t.Helper()
		start := p.pollCount()
		testutil.Eventually(t, what, 15*time.Second, func() bool {
			alive(what)
			return p.pollCount() >= start+n
		})
	}
	reloads := func(n int) func() bool {
		return func() bool { return strings.Count(out.String(), "msg=\"config reloaded\"") >= n }
	}
	// The HTTP endpoint answers once the daemon runs; from then on its
	// signal handling is in place.
	testutil.Eventually(t, "the daemon's HTTP endpoint", 15*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	polled(a, 2, "feed a polled")

	signal(syscall.SIGHUP) // unchanged config
	testutil.Eventually(t, "the first reload logged", 10*time.Second, reloads(1))
	polled(a, 2, "feed a polled after a reload that changed nothing")

	writeConfig("150ms", true, "") // a restarts, b starts
	signal(syscall.SIGHUP)
	testutil.Eventually(t, "the second reload logged", 10*time.Second, reloads(2))
	if !strings.Contains(out.String(), "sources_added=[b]") || !strings.Contains(out.String(), "sources_restarted=[a]") {
		t.Errorf("second reload: want b added and a restarted in the log:\n%s", out.String())
	}
	polled(b, 2, "the added feed b polled")
	polled(a, 2, "the restarted feed a polled")

	writeConfig("150ms", true, "bogus_key: 1\n")
	signal(syscall.SIGHUP)
	testutil.Eventually(t, "the broken config rejected", 10*time.Second, func() bool {
		return strings.Contains(out.String(), "config reload rejected") && strings.Contains(out.String(), "bogus_key")
	})
	polled(a, 2, "feed a polled after a rejected reload")

	writeConfig("100ms", true, "")
	var cli bytes.Buffer
	if err := reload(context.Background(), []string{"-c", cfgPath}, &cli); err != nil {
		t.Fatalf("lookout reload: %v", err)
	}
	if !strings.Contains(cli.String(), "sources restarted: a") {
		t.Errorf("lookout reload printed %q, want a restarted", cli.String())
	}

	signal(syscall.SIGUSR1)
	polled(a, 2, "feed a polled after SIGUSR1")
	polled(b, 2, "feed b polled after SIGUSR1")
	alive("SIGUSR1")

	metrics := httpGet(t, "http://"+addr+"/metrics")
	for _, want := range []string{`lookout_config_reloads_total{result="success"} 3`, `lookout_config_reloads_total{result="failure"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	wantA, wantB := a.freeze(), b.freeze()
	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	stored := func(src string) int {
		var n int
		if err := ro.QueryRow(`SELECT count(DISTINCT item_id) FROM items WHERE source = ?`, src).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for (stored("a") != len(wantA) || stored("b") != len(wantB)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if sa, sb := stored("a"), stored("b"); sa != len(wantA) || sb != len(wantB) {
		t.Fatalf("stored %d of a's %d entries and %d of b's %d\n%s", sa, len(wantA), sb, len(wantB), out.String())
	}
	signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("lookout run after SIGTERM: %v\n%s", waitErr, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon did not stop after SIGTERM\n%s", out.String())
	}
	var rows, distinct int
	if err := ro.QueryRow(`SELECT count(*), count(DISTINCT source || '/' || item_id) FROM items`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d + %d entries published, %d rows stored", len(wantA), len(wantB), rows)
	if rows != len(wantA)+len(wantB) || distinct != rows {
		t.Errorf("%d rows (%d distinct) stored, want the %d published, once each", rows, distinct, len(wantA)+len(wantB))
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Errorf("no graceful stop in the log:\n%s", out.String())
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestClosedStderrDoesNotKillDaemon: the daemon's stderr is a pipe whose
// reader goes away (a log shipper that died). Writing log lines then
// raises SIGPIPE, which by default would end the process; lookout ignores
// it and keeps storing.
func TestClosedStderrDoesNotKillDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a helper process")
	}
	a := newFeedPublisher(t, "/a.xml", 5)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lookout.db")
	cfgPath := filepath.Join(dir, "lookout.yaml")
	addr := freeAddr(t)
	text := fmt.Sprintf("store: { path: %q, flush_interval: 100ms }\nhttp: { listen: %q }\nclassifier: { terms: false }\n"+
		"sources:\n  - id: a\n    kind: rss\n    url: %q\n    every: 100ms\n", dbPath, addr, a.srv.URL(a.path))
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunChild$")
	cmd.Env = append(os.Environ(), runChildEnv+"="+cfgPath)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	testutil.Eventually(t, "the daemon's HTTP endpoint", 15*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	r.Close() // the reader is gone: the next log line raises SIGPIPE
	for range 3 {
		cmd.Process.Signal(syscall.SIGHUP) // each reload logs
		start := a.pollCount()
		testutil.Eventually(t, "the feed polled after a log write to the closed pipe", 15*time.Second, func() bool {
			select {
			case <-exited:
				t.Fatalf("the daemon died writing to a closed stderr: %v", waitErr)
			default:
			}
			return a.pollCount() >= start+2
		})
	}
	metrics := httpGet(t, "http://"+addr+"/metrics")
	if !strings.Contains(metrics, `lookout_config_reloads_total{result="success"} 3`) {
		t.Errorf("the three reloads were not all applied:\n%s", metrics)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not stop after SIGTERM")
	}
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && st.Signaled() {
		t.Errorf("the daemon ended by signal %v, want a graceful exit", st.Signal())
	}
}

// TestSIGQUITDumpsStacksAndStopsGracefully: SIGQUIT writes every
// goroutine's stack, then the daemon stops the way SIGTERM stops it
// (exit 0, everything stored) instead of Go's immediate exit 2.
func TestSIGQUITDumpsStacksAndStopsGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a helper process")
	}
	a := newFeedPublisher(t, "/a.xml", 5)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lookout.db")
	cfgPath := filepath.Join(dir, "lookout.yaml")
	text := fmt.Sprintf("store: { path: %q, flush_interval: 100ms }\nhttp: { listen: \"off\" }\nclassifier: { terms: false }\n"+
		"sources:\n  - id: a\n    kind: rss\n    url: %q\n    every: 100ms\n", dbPath, a.srv.URL(a.path))
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunChild$")
	cmd.Env = append(os.Environ(), runChildEnv+"="+cfgPath)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	testutil.Eventually(t, "the daemon running", 15*time.Second, func() bool {
		return strings.Contains(out.String(), "lookout running") && a.pollCount() >= 2
	})
	cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon did not stop after SIGQUIT\n%s", out.String())
	}
	if waitErr != nil {
		t.Errorf("after SIGQUIT: %v, want a graceful exit 0", waitErr)
	}
	for _, want := range []string{"goroutine 1 [", "SIGQUIT: goroutine stacks written", "msg=stopped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	want := a.freeze()
	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var n int
	if err := ro.QueryRow(`SELECT count(DISTINCT item_id) FROM items WHERE source = 'a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	// The feed lists what was published up to the daemon's last poll; at
	// most the entries of a poll after it stopped are not stored.
	if n < len(want)-5 || n == 0 {
		t.Errorf("%d of %d published entries stored after SIGQUIT", n, len(want))
	}
}
