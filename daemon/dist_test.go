package daemon

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lookout/config"
	"lookout/internal/embednats"
	"lookout/internal/loopback"
	"lookout/internal/pgtest"
	"lookout/item"
	"lookout/transport"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to read the PostgreSQL store
)

// distRig is an embedded NATS server, loopback live rooms and a webhook
// receiver, with a config for collect and process daemons.
type distRig struct {
	t *testing.T
	// pgDSN, when set, puts the process role on this PostgreSQL database
	// (store.driver postgres) instead of its SQLite file.
	pgDSN string
	nats  *embednats.Server
	rooms []*loopback.BilibiliServer
	hook  *loopback.WebhookServer
	dir   string
}

func newDistRig(t *testing.T, rooms int) *distRig {
	t.Helper()
	r := &distRig{t: t, dir: t.TempDir()}
	ns, err := embednats.Start(filepath.Join(r.dir, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	r.nats = ns
	for i := range rooms {
		live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: 51_000_000 + int64(i), Compression: loopback.BilibiliPushPlain})
		t.Cleanup(live.Close)
		r.rooms = append(r.rooms, live)
	}
	r.hook = loopback.NewWebhookServer()
	t.Cleanup(r.hook.Close)
	t.Setenv("DIST_HOOK_URL", r.hook.URL())
	return r
}

// config is the one config every role shares but for the store path.
func (r *distRig) config(dbPath string) *config.Config {
	r.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `store: { path: %q, batch_size: 64, flush_interval: 50ms }
http: { listen: "off" }
transport: { kind: nats, nats: { url: %q, partitions: 4 } }
limits: { default: { rate: 1000/s, burst: 1000 } }
classifier: { terms: false }
keywords:
  crisis: { severity: red, any: [假货, 退款] }
sources:
`, dbPath, r.nats.URL())
	for i, live := range r.rooms {
		fmt.Fprintf(&b, "  - { id: live-%d, kind: bilibili_live, room: %d, api_base: %q, nav_base: %q, hosts: [%q] }\n",
			i, live.RoomID(), live.URL(), live.URL(), live.WSURL())
	}
	b.WriteString(`rules:
  - name: crisis-burst
    kind: keyword_burst
    category: crisis
    window: 30s
    levels: { red: 5 }
route: { receiver: hook, group_by: [room], group_wait: 0s, group_interval: 0s }
receivers:
  - name: hook
    webhook: { url: "${DIST_HOOK_URL}" }
`)
	cfg, err := config.Parse([]byte(b.String()), "dist.yaml")
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

// start runs a daemon of role on dbPath and returns its stop.
func (r *distRig) start(role, dbPath string, partitions []int) (*Daemon, func()) {
	return r.startAs(role, "", dbPath, partitions)
}

// startAs is start with a processor id.
func (r *distRig) startAs(role, id, dbPath string, partitions []int) (*Daemon, func()) {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("role", role)
	cfg := r.config(dbPath)
	if r.pgDSN != "" && role == RoleProcess {
		cfg.Store.Driver, cfg.Store.DSNEnv = config.StorePostgres, "DIST_PG_DSN"
		t.Setenv("DIST_PG_DSN", r.pgDSN)
	}
	d, err := New(ctx, Options{Config: cfg, Log: log, ShutdownGrace: 10 * time.Second,
		Role: role, Partitions: partitions, EvalInterval: 50 * time.Millisecond,
		ProcessorID: id, PartitionLease: 3 * time.Second})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s daemon stopped with error: %v", role, err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("%s daemon did not stop within 20s", role)
			}
		})
	}
	t.Cleanup(stop)
	return d, stop
}

// push sends n chat lines with ids prefix-0…, spread over the rooms, a
// frame per room per call; crisis lines carry the crisis keyword and all
// go to the first room.
func (r *distRig) push(prefix string, n int, crisis bool) {
	text := "主播好，今天的链接在哪"
	if crisis {
		text = "买到假货了，要求退款"
	}
	frames := make([][][]byte, len(r.rooms))
	for i := range n {
		ri := i % len(r.rooms)
		if crisis {
			ri = 0 // the rule counts per room
		}
		frames[ri] = append(frames[ri], loopback.BilibiliDanmaku(int64(1000+i), "viewer", text, time.Now(), fmt.Sprintf("%s-%d", prefix, i)))
	}
	for ri, cmds := range frames {
		if len(cmds) > 0 {
			r.rooms[ri].Push(cmds...)
		}
	}
}

func (r *distRig) waitConnected(n int) {
	r.t.Helper()
	for _, live := range r.rooms {
		waitFor(r.t, "the collector in every room", 15*time.Second, func() bool { return live.AuthCount() >= n && live.Connections() == 1 })
	}
}

func openRO(t *testing.T, dbPath string) *sql.DB {
	t.Helper()
	ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	return ro
}

// TestRedeliveryStoredScored: a message delivered again while its first
// copy is still waiting for the classifier goes straight to the store,
// and the store keeps whichever copy it commits first; the copy sent there
// carries the classifier's score, so the item is never stored unscored.
func TestRedeliveryStoredScored(t *testing.T) {
	r := newDistRig(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := New(ctx, Options{Config: r.config(filepath.Join(r.dir, "proc.db")), Log: slog.New(slog.DiscardHandler),
		Role: RoleProcess, Partitions: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.dist.conn.Close()
	defer d.store.Close()
	it := item.Item{Source: "live-0", Platform: "bilibili", Room: "1", Kind: item.KindChat, ID: "m-1", Text: "买到假货了，要求退款", TS: time.Now()}
	raw, toStore := make(chan item.Item, 4), make(chan []item.Item, 4)
	for seq := uint64(1); seq <= 2; seq++ { // the message, then its redelivery
		del := transport.Delivery{Items: []item.Item{it}, Consumer: "c", Partition: 0, Seq: seq}
		if err := d.dist.handOn(ctx, del, raw, toStore); err != nil {
			t.Fatal(err)
		}
	}
	if len(raw) != 1 {
		t.Fatalf("%d copies went to the classifier, want the first only", len(raw))
	}
	if first := <-raw; first.Score.Scored {
		t.Fatalf("the first copy was scored before the classifier: %+v", first.Score)
	}
	if len(toStore) != 1 {
		t.Fatalf("%d runs went straight to the store, want the redelivery's", len(toStore))
	}
	again := <-toStore
	var want item.Score
	d.classifier.Load().ScoreHinted(&want, it.Text, "")
	if got := again[0].Score; !got.Scored || got.Label != want.Label || got.Value != want.Value {
		t.Fatalf("the redelivered copy went to the store with score %+v, want the classifier's %+v", got, want)
	}
}

// TestDistCollectProcessRestart runs the collect role and the process role
// as two daemons over an embedded NATS server, stops the processor while
// chat keeps coming and starts it again: every line is stored exactly
// once, and the crisis alert is notified exactly once.
func TestDistCollectProcessRestart(t *testing.T) {
	r := newDistRig(t, 3)
	collectDB := filepath.Join(r.dir, "collect.db")
	procDB := filepath.Join(r.dir, "proc.db")
	_, stopCollect := r.start(RoleCollect, collectDB, nil)
	r.waitConnected(1)
	_, stopProc := r.start(RoleProcess, procDB, nil)
	ro := openRO(t, procDB)

	r.push("a", 300, false)
	r.push("crisis", 6, true)
	waitFor(t, "some items stored by the first processor", 15*time.Second, func() bool {
		var n int
		ro.QueryRow(`SELECT count(*) FROM items`).Scan(&n)
		return n >= 100
	})
	waitFor(t, "the crisis alert notified", 15*time.Second, func() bool { return len(r.hook.Messages()) >= 1 })

	// The processor stops while chat keeps arriving; the collector
	// publishes on.
	pushing := make(chan struct{})
	go func() {
		defer close(pushing)
		for i := range 10 {
			r.push(fmt.Sprintf("b%d", i), 30, false)
			time.Sleep(30 * time.Millisecond)
		}
	}()
	stopProc()
	<-pushing
	proc2, stopProc2 := r.start(RoleProcess, procDB, nil)
	// A reload that adds a source starts no collector in a processor.
	cfg2 := r.config(procDB)
	extra := cfg2.Sources[0]
	extra.ID = "live-extra"
	cfg2.Sources = append(cfg2.Sources, extra)
	waitFor(t, "the restarted processor running", 10*time.Second, func() bool {
		_, err := proc2.Reload(context.Background(), cfg2)
		return err == nil
	})
	if n := len(proc2.sourceList()); n != 0 {
		t.Errorf("processor runs %d sources after a reload that added one, want 0", n)
	}
	r.push("c", 90, false)
	r.push("crisis2", 3, true)

	want := 300 + 6 + 300 + 90 + 3
	waitFor(t, fmt.Sprintf("all %d lines stored", want), 30*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE kind = 'chat'`) >= want
	})
	// A moment for late redeliveries and notifications to show up.
	time.Sleep(500 * time.Millisecond)
	stopProc2()
	stopCollect()

	if n := countRows(t, ro, `SELECT count(*) FROM items WHERE kind = 'chat'`); n != want {
		t.Errorf("%d chat rows, want %d", n, want)
	}
	if n := countRows(t, ro, `SELECT count(DISTINCT source || '/' || item_id) FROM items WHERE kind = 'chat'`); n != want {
		t.Errorf("%d distinct chat items, want %d", n, want)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM alert_events WHERE state = 'firing'`); n != 1 {
		t.Errorf("%d firing events, want 1 (the restarted processor takes the open alert over)", n)
	}
	keys := map[string]int{}
	for _, k := range r.hook.IdempotencyKeys() {
		keys[k]++
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("notification %s delivered %d times", k, n)
		}
	}
	if events := countRows(t, ro, `SELECT count(*) FROM alert_events`); len(keys) != events || events == 0 {
		t.Errorf("%d distinct notifications for %d alert events, want one each", len(keys), events)
	}
	// The collector's database holds state only: no items.
	cro := openRO(t, collectDB)
	if n := countRows(t, cro, `SELECT count(*) FROM items`); n != 0 {
		t.Errorf("collector stored %d items itself, want 0", n)
	}
}

// TestDistFailover: two processors share the partitions of one stream
// and one store; the second to start gets half of them; when one stops the
// other takes every partition over and the open alerts of its rooms, and
// every line is stored once.
func TestDistFailover(t *testing.T) {
	distFailover(t, "")
}

// TestDistFailoverPostgres is TestDistFailover with the processors on one
// PostgreSQL database.
func TestDistFailoverPostgres(t *testing.T) {
	distFailover(t, pgtest.NewDatabase(t))
}

// reader opens the store the processors write: their SQLite file, or the
// PostgreSQL database.
func (r *distRig) reader(dbPath string) *sql.DB {
	if r.pgDSN == "" {
		return openRO(r.t, dbPath)
	}
	db, err := sql.Open("pgx", r.pgDSN)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { db.Close() })
	return db
}

func distFailover(t *testing.T, pgDSN string) {
	r := newDistRig(t, 6)
	r.pgDSN = pgDSN
	procDB := filepath.Join(r.dir, "proc.db")
	r.start(RoleCollect, filepath.Join(r.dir, "collect.db"), nil)
	r.waitConnected(1)
	a, stopA := r.startAs(RoleProcess, "a", procDB, nil)
	waitFor(t, "processor a owning all 4 partitions", 10*time.Second, func() bool { return len(a.dist.Owned()) == 4 })
	b, stopB := r.startAs(RoleProcess, "b", procDB, nil)
	waitFor(t, "the partitions shared 2 and 2", 10*time.Second, func() bool {
		return len(a.dist.Owned()) == 2 && len(b.dist.Owned()) == 2
	})
	if ov := intersect(a.dist.Owned(), b.dist.Owned()); len(ov) > 0 {
		t.Errorf("partitions %v owned by both", ov)
	}
	st, err := b.dist.conn.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]int{}
	for _, p := range st {
		owners[p.Owner]++
	}
	if owners["a"] != 2 || owners["b"] != 2 {
		t.Errorf("status shows owners %v, want a and b with 2 each", owners)
	}
	var table strings.Builder
	if err := Partitions(context.Background(), r.config(procDB), "csv", &table); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(table.String()), "\n"); len(lines) != 5 || lines[0] != "partition,owner,consumer,lag,ack_pending,redelivered,ack_floor" ||
		strings.Count(table.String(), ",a,") != 2 || strings.Count(table.String(), ",b,") != 2 {
		t.Errorf("lookout status -c shows\n%s\nwant 4 partitions, 2 owned by a and 2 by b", table.String())
	}
	// /metrics: each processor marks the partitions it owns and exports
	// every partition's lag.
	waitFor(t, "the owned-partition gauges of b", 10*time.Second, func() bool {
		return gaugeSum(t, b, "lookout_transport_partition_owned") == 2
	})
	// One consumer per processor: its lag and pending acknowledgements
	// are exported per consumer, and every partition shows its consumer.
	waitFor(t, "the lag gauges of both processors' consumers", 10*time.Second, func() bool {
		return gaugeCount(t, b, "lookout_transport_consumer_lag") == 2
	})
	st, err = b.dist.conn.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	consumers := map[string]map[string]bool{} // owner → its consumers
	for _, p := range st {
		if consumers[p.Owner] == nil {
			consumers[p.Owner] = map[string]bool{}
		}
		consumers[p.Owner][p.Consumer] = true
	}
	if len(consumers["a"]) != 1 || len(consumers["b"]) != 1 || consumers["a"][""] || consumers["b"][""] {
		t.Errorf("consumers by owner %v, want one each for a and b", consumers)
	}

	// A crisis alert fires in the first room; the processor owning that
	// room's partition stops while chat keeps coming and the crisis goes
	// on: the other carries the alert on (no second firing).
	ro := r.reader(procDB)
	r.push("crisis", 6, true)
	waitFor(t, "the crisis alert firing", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM alert_events WHERE state = 'firing'`) == 1
	})
	var src, room string
	if err := ro.QueryRow(`SELECT source, room FROM alerts`).Scan(&src, &room); err != nil {
		t.Fatal(err)
	}
	stopOwner, other := stopA, b
	if slices.Contains(b.dist.Owned(), transport.Partition(src, room, 4)) {
		stopOwner, other = stopB, a
	}
	pushing := make(chan struct{})
	go func() {
		defer close(pushing)
		for i := range 20 {
			r.push(fmt.Sprintf("f%d", i), 30, false)
			time.Sleep(25 * time.Millisecond)
		}
	}()
	time.Sleep(150 * time.Millisecond)
	stopOwner()
	began := time.Now()
	waitFor(t, "the other processor owning all 4 partitions", 10*time.Second, func() bool { return len(other.dist.Owned()) == 4 })
	t.Logf("partitions taken over %v after the other processor stopped", time.Since(began).Round(time.Millisecond))
	r.push("crisis-more", 6, true)
	<-pushing
	const want = 600 + 6 + 6
	waitFor(t, fmt.Sprintf("all %d lines stored", want), 20*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE kind = 'chat'`) >= want
	})
	time.Sleep(500 * time.Millisecond)
	stopA()
	stopB()
	if n := countRows(t, ro, `SELECT count(*) FROM items WHERE kind = 'chat'`); n != want {
		t.Errorf("%d chat rows, want %d", n, want)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM alert_events WHERE state = 'firing'`); n != 1 {
		t.Errorf("%d firing events, want 1: the processor taking the partition over carries the open alert on", n)
	}
}

// gaugeSum adds up every series of a gauge in d's registry.
func gaugeSum(t *testing.T, d *Daemon, name string) float64 {
	t.Helper()
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// gaugeCount counts the series of a gauge in d's registry.
func gaugeCount(t *testing.T, d *Daemon, name string) int {
	t.Helper()
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func intersect(a, b []int) []int {
	var out []int
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// distKillEnv name the config file and role of the helper process
// TestDistKill9 starts.
const (
	distKillEnvConfig = "LOOKOUT_DIST_KILL_CONFIG"
	distKillEnvRole   = "LOOKOUT_DIST_KILL_ROLE"
	distKillEnvReady  = "LOOKOUT_DIST_KILL_READY" // written once the daemon is built
	distKillEnvID     = "LOOKOUT_DIST_KILL_ID"
)

// TestDistKillChild is a collect or process daemon in a process of its
// own; TestDistKill9 runs it and kills it with SIGKILL.
func TestDistKillChild(t *testing.T) {
	path := os.Getenv(distKillEnvConfig)
	if path == "" {
		t.Skip("helper process for TestDistKill9; runs only when started by it")
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	d, err := New(ctx, Options{Config: cfg, Log: log, Out: io.Discard, Role: os.Getenv(distKillEnvRole), EvalInterval: 50 * time.Millisecond,
		ProcessorID: os.Getenv(distKillEnvID)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(distKillEnvReady), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDistKill9: a poller feeds a collect-role process, which publishes to
// an embedded NATS server (each run of it with a database of its own, as
// if on another machine: its cursor lives in the stream's bucket); two process-role processes share the
// partitions, store the items in one database and notify a webhook of a
// crisis alert. The collector and the first processor are killed with
// SIGKILL in turn at random moments under load and started again on the
// same files. The dead processor's partitions must be owned again within
// 10 s; in the end every entry the source published is stored once, and
// the receiver got every alert event (deduplicating on Idempotency-Key)
// with one firing.
func TestDistKill9(t *testing.T) {
	distKill9(t, "")
}

// TestDistKill9Postgres is TestDistKill9 with the two processors sharing a
// PostgreSQL store (store.driver postgres) instead of one SQLite file.
func TestDistKill9Postgres(t *testing.T) {
	distKill9(t, pgtest.NewDatabase(t))
}

// distKill9 runs the kill test with the processors on the SQLite file, or
// on the PostgreSQL database pgDSN names.
func distKill9(t *testing.T, pgDSN string) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	if pgDSN != "" {
		t.Setenv(config.DefaultPostgresDSNEnv, pgDSN) // the helpers inherit it
	}
	const (
		perPoll = 100
		window  = 500
		kills   = 4 // collector and processor in turn
	)
	ns, err := embednats.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	hook := loopback.NewWebhookServer()
	defer hook.Close()
	pub := &stateKillPublisher{}
	srv := loopback.NewFeedServer()
	defer srv.Close()
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	srv.OnRequest(func(path string) {
		ids := pub.publish(perPoll)
		var entries []loopback.FeedEntrySpec
		for i := len(ids) - 1; i >= max(0, len(ids)-window); i-- {
			text := "entry " + ids[i]
			if i%20 == 0 {
				text += " 假货，要求退款"
			}
			entries = append(entries, loopback.FeedEntrySpec{ID: ids[i], Title: ids[i], Text: text,
				Link: "https://news.example.com/" + ids[i], Published: base.Add(time.Duration(i) * time.Second)})
		}
		srv.SetFeed(path, loopback.RSSDocument("kill", entries), "")
	})
	t.Setenv("DIST_KILL_HOOK_URL", hook.URL()) // the helpers inherit it
	dir := t.TempDir()
	procDB := filepath.Join(dir, RoleProcess+".db")
	paths := map[string]string{}
	templates := map[string]string{}
	for _, role := range []string{RoleCollect, RoleProcess} {
		paths[role] = filepath.Join(dir, role+".yaml")
		driver := ""
		if pgDSN != "" && role == RoleProcess {
			driver = ", driver: postgres"
		}
		// outbox_claim_timeout 3s: a notification a killed processor
		// claimed is sent by the other within the test.
		cfg := fmt.Sprintf(`store: { path: %q, flush_interval: 200ms%s }
http: { listen: "off" }
transport: { kind: nats, nats: { url: %q, partitions: 4, outbox_claim_timeout: 3s } }
classifier: { terms: false }
keywords:
  crisis: { severity: red, any: [假货, 退款] }
sources:
  - id: src
    every: 300ms
    jitter: 0.05
    kind: rss
    url: %q
rules:
  - name: crisis-burst
    kind: keyword_burst
    category: crisis
    window: 120s
    levels: { red: 5 }
route: { receiver: hook, group_wait: 0s, group_interval: 0s }
receivers:
  - name: hook
    webhook: { url: "${DIST_KILL_HOOK_URL}" }
`, filepath.Join(dir, role+".db"), driver, ns.URL(), srv.URL("/feed.xml"))
		if err := os.WriteFile(paths[role], []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		templates[role] = cfg
	}
	var out bytes.Buffer
	var outMu sync.Mutex
	t.Cleanup(func() {
		if t.Failed() {
			outMu.Lock()
			t.Logf("helper output:\n%s", out.String())
			outMu.Unlock()
		}
	})
	ready := func(name string) string { return filepath.Join(dir, name+".ready") }
	runs := 0
	ids := map[string]string{} // helper → processor id of its current run
	// start runs helper name ("collect", "a" or "b") in its role.
	start := func(name string) *exec.Cmd {
		role := RoleProcess
		if name == RoleCollect {
			role = RoleCollect
		}
		runs++
		ids[name] = fmt.Sprintf("%s%d", name, runs)
		if name == RoleCollect {
			// Each collector run gets a database of its own, as on
			// another machine: its cursor must come from the stream's
			// key-value bucket.
			cfg := strings.Replace(templates[RoleCollect], filepath.Join(dir, "collect.db"), filepath.Join(dir, fmt.Sprintf("collect-%d.db", runs)), 1)
			if err := os.WriteFile(paths[RoleCollect], []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		os.Remove(ready(name))
		cmd := exec.Command(os.Args[0], "-test.run=^TestDistKillChild$", "-test.v")
		cmd.Env = append(os.Environ(), distKillEnvConfig+"="+paths[role], distKillEnvRole+"="+role,
			distKillEnvReady+"="+ready(name), distKillEnvID+"="+ids[name])
		w := &lockedWriter{mu: &outMu, w: &out}
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	var ro *sql.DB
	if pgDSN != "" {
		if ro, err = sql.Open("pgx", pgDSN); err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
	} else {
		ro = openRO(t, procDB)
	}
	stored := func() int {
		var n int
		ro.QueryRow(`SELECT count(*) FROM items WHERE source = 'src'`).Scan(&n)
		return n
	}
	status, err := transport.Connect(context.Background(), config.NATSConfig{URL: ns.URL(), Stream: "LOOKOUT_ITEMS", Partitions: 4}, "test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer status.Close()
	// reassigned says every partition has a live owner, none of them
	// dead, and is read through that owner's consumer.
	reassigned := func(dead string) bool {
		st, err := status.Status(context.Background())
		if err != nil {
			return false
		}
		for _, p := range st {
			if p.Owner == "" || p.Owner == dead || !strings.HasPrefix(p.Consumer, "lookout-"+p.Owner+"-") {
				return false
			}
		}
		return true
	}
	procs := map[string]*exec.Cmd{RoleCollect: start(RoleCollect), "a": start("a"), "b": start("b")}
	defer func() {
		for _, c := range procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	var worst time.Duration
	for i := range kills {
		name := RoleCollect
		if i%2 == 1 {
			name = "a"
		}
		// Kill when items are flowing: the store grew since the last
		// kill, then 0–300 ms on.
		mark := stored()
		waitFor(t, fmt.Sprintf("items flowing before kill %d", i+1), 30*time.Second, func() bool { return stored() > mark })
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		_ = procs[name].Process.Kill()
		killed := time.Now()
		_ = procs[name].Wait()
		if name == "a" {
			dead := ids["a"]
			waitFor(t, "the dead processor's partitions owned and read again", 10*time.Second, func() bool { return reassigned(dead) })
			worst = max(worst, time.Since(killed))
		}
		procs[name] = start(name)
	}
	t.Logf("partitions of a killed processor owned and read again after %v at worst", worst.Round(10*time.Millisecond))
	want := pub.freeze()
	missing := stateKillAwaitAllDB(ro, want, 30*time.Second)
	// A notification a killed processor claimed goes out from the other
	// once the claim expires.
	waitFor(t, "the outbox drained", 20*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM outbox WHERE state IN ('pending','sending')`) == 0
	})
	for _, name := range []string{RoleCollect, "a", "b"} {
		waitFor(t, name+" helper handling SIGTERM", 20*time.Second, func() bool {
			_, err := os.Stat(ready(name))
			return err == nil
		})
		_ = procs[name].Process.Signal(syscall.SIGTERM)
		if err := procs[name].Wait(); err != nil {
			t.Errorf("last %s run: %v", name, err)
		}
	}
	procs = nil
	dups := stateKillDuplicatesDB(t, ro)
	t.Logf("%d entries published over %d polls and %d kills: %d missing, %d duplicates",
		len(want), pub.pollCount(), kills, len(missing), dups)
	outMu.Lock()
	defer outMu.Unlock()
	if len(missing) > 0 || dups > 0 {
		t.Errorf("%d of %d entries missing (first %v), %d stored twice; output:\n%s",
			len(missing), len(want), missing[:min(len(missing), 5)], dups, out.String())
	}
	if n := countRows(t, ro, `SELECT count(*) FROM alert_events WHERE state = 'firing'`); n != 1 {
		t.Errorf("%d firing events, want 1", n)
	}
	keys := map[string]bool{}
	messages := hook.IdempotencyKeys()
	for _, k := range messages {
		keys[k] = true
	}
	if events := countRows(t, ro, `SELECT count(*) FROM alert_events`); len(keys) != events || events == 0 {
		t.Errorf("receiver got %d distinct notifications for %d alert events, want one each", len(keys), events)
	}
	// The processors share one outbox and claim its rows: a notification
	// goes out twice only when a processor is killed between sending it
	// and recording it sent, at most once per processor kill.
	t.Logf("receiver got %d messages, %d distinct", len(messages), len(keys))
	if resent := len(messages) - len(keys); resent > kills/2 {
		t.Errorf("receiver got %d messages for %d notifications: %d resent, more than the %d processor kills explain",
			len(messages), len(keys), resent, kills/2)
	}
}

// lockedWriter serialises the writes of several child processes.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
