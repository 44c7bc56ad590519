// Package loadgen drives the real daemon at a paced rate from loopback
// Bilibili live rooms (real danmaku protocol, brotli frames) into a real
// SQLite store, and reports throughput, loss, latency and peak RSS.
package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lookout/config"
	"lookout/daemon"
	"lookout/internal/embednats"
	"lookout/internal/loopback"
	"lookout/item"
	"lookout/ui"
)

// Options sizes one run.
type Options struct {
	Rooms    int
	Rate     int // messages per second, all rooms together
	Duration time.Duration
	Terms    bool
	DBPath   string // empty: a file in a temporary directory
	Ceiling  bool   // also measure the store's ceiling (see Ceiling) after the run
	Log      *slog.Logger
	// HeapProfile, when set, receives a heap profile taken when the last
	// frame has been pushed (when the most is in flight).
	HeapProfile io.Writer
	// Trace, when set, receives a Go execution trace of TraceWindow (5 s
	// when 0, the whole push when longer) from the middle of the push: it
	// shows, per goroutine, time running, in cgo calls, and runnable but
	// waiting for a processor (`go tool trace`, Goroutines).
	Trace       io.Writer
	TraceWindow time.Duration
	// Transport "nats" runs the collectors here as a collect-role daemon
	// publishing to an embedded NATS server, and Processors process-role
	// daemons as processes of their own (Exe run --role process), each
	// with its own SQLite file; "" or "memory" is one all-role daemon.
	Transport  string
	Processors int
	Partitions int // transport.nats.partitions (default 16)
	// BatchWindow is transport.nats.batch_window (0: the config's default).
	BatchWindow time.Duration
	Exe         string // the lookout binary the processors run
	// ProcessorProfile, when set, has processor N write a CPU profile of
	// its whole run to this path with ".proc-N" appended.
	ProcessorProfile string
	// UI serves the real dashboard from the daemon under test on a free
	// loopback port, as `run --ui` does; Watch (implies UI) opens that
	// many room pages on the busiest rooms: each loads the room's history
	// and reads its live stream to the end, as a browser does.
	UI    bool
	Watch int
	// PostgresDSN, with Transport "nats", puts the processors on one
	// shared PostgreSQL store (store.driver postgres) instead of a SQLite
	// file each. The database must hold no items yet.
	PostgresDSN string
	// NATSDir, with Transport "nats", is the directory under which the
	// embedded NATS server keeps its stream and consumer files, in a
	// fresh directory removed afterwards ("": next to the SQLite file).
	// The server rewrites each consumer's state file up to ten times a
	// second, so the file system under it shows in the CPU figures.
	NATSDir string
}

// Result is what a run measured. Latency is arrival (the push to the
// room's client) to the row being visible in SQLite, observed by a reader
// polling every 20 ms, so it is an upper bound with that granularity.
// Arrival → alert evaluated is the push to the end of the first alert
// evaluation that counted the message (evaluations run every 100 ms).
type Result struct {
	Rooms        int      `json:"rooms"`
	TargetRate   int      `json:"target_rate"`
	AchievedRate float64  `json:"achieved_rate"`
	Sent         int      `json:"sent"`
	Stored       int      `json:"stored"`
	Lost         int      `json:"lost"`
	P50ms        float64  `json:"p50_ms"`
	P99ms        float64  `json:"p99_ms"`
	EvalP50ms    float64  `json:"eval_p50_ms"`
	EvalP99ms    float64  `json:"eval_p99_ms"`
	RSSMB        *float64 `json:"rss_mb"` // peak; nil where /proc is absent
	// RSSSeriesMB is the resident set sampled at even steps through the
	// push (about 20 samples), to see whether memory stays flat.
	RSSSeriesMB []float64 `json:"rss_series_mb,omitempty"`
	// CPUPerMsgUS is the process's CPU time (user + system: daemon, store,
	// loopback rooms and the frame encoder) from the first push until the
	// last row was stored, per stored message, in microseconds.
	CPUPerMsgUS float64 `json:"cpu_us_per_msg"`
	// LateTicks counts ticks the frame encoder was not ready for (the
	// pacing then slipped; a loaded machine).
	LateTicks int `json:"late_ticks"`
	// CeilingRate is Ceiling's items/s for the run's messages as bare
	// chat rows in the same process, and CeilingRatio AchievedRate over
	// it; CeilingStoredRate is CeilingOf's for the rows the run stored
	// (classified, with keyword groups and terms), and CeilingStoredRatio
	// AchievedRate over that. Set with Options.Ceiling (SQLite only).
	CeilingRate        float64 `json:"ceiling_rate,omitempty"`
	CeilingRatio       float64 `json:"ceiling_ratio,omitempty"`
	CeilingStoredRate  float64 `json:"ceiling_stored_rate,omitempty"`
	CeilingStoredRatio float64 `json:"ceiling_stored_ratio,omitempty"`
	// StageFractions is, from the first push until the last row was
	// stored, the fraction of that time each stage spent in a state, read
	// from the daemon's metrics: store_busy (inside batch writes),
	// classifier_idle (waiting for input), classifier_blocked_on_alerts and
	// classifier_blocked_on_store (its output channel full), and
	// collectors_blocked_on_classifier (summed over the rooms' goroutines,
	// so it can pass 1). A stage busy near 1 while the one before it is
	// blocked on it is the serial limit. Not set with --transport nats.
	StageFractions map[string]float64 `json:"stage_fractions,omitempty"`
	// CPUSeconds is user+system CPU time of this process and of the
	// processor processes from the daemon's start to its stop (the
	// loopback rooms and the pacing included, the same in every mode);
	// CPUTotalPerMsgUS is that per stored message. On a machine shared
	// with other work it compares transports better than the achieved
	// rate does (CPUPerMsgUS cannot: processors' CPU is read when they exit).
	CPUSeconds       float64 `json:"cpu_seconds"`
	CPUTotalPerMsgUS float64 `json:"cpu_total_us_per_msg"`
	// StoreCPUSeconds is, with a PostgreSQL store on this machine, the
	// CPU time of the server's processes (every process named postgres)
	// from the daemon's start until the last row was stored, and
	// StoreCPUPerMsgUS that per stored message; CPUSeconds leaves it out.
	StoreCPUSeconds  float64 `json:"store_cpu_seconds,omitempty"`
	StoreCPUPerMsgUS float64 `json:"store_cpu_us_per_msg,omitempty"`
	// ProcessorCPUSeconds is, with Transport "nats", the user+system CPU
	// time of the processor processes over their whole life (start and
	// exit included), a part of CPUSeconds; ProcessorCPUPerMsgUS is that
	// per stored message.
	ProcessorCPUSeconds  float64 `json:"processor_cpu_seconds,omitempty"`
	ProcessorCPUPerMsgUS float64 `json:"processor_cpu_us_per_msg,omitempty"`
	// UI is whether the daemon served the dashboard; Watched is what its
	// room streams delivered (with Options.Watch).
	UI      bool        `json:"ui"`
	Watched *WatchStats `json:"watched,omitempty"`
}

var chat = []string{
	"主播好棒，已下单", "这个颜色好看吗", "什么时候发货？", "求链接求链接", "hello from Shanghai",
	"收到的是假货，要求退款！", "客服一直不回复，投诉了", "物流太慢了", "worst customer service ever", "姐妹们冲啊",
}

const tick = 50 * time.Millisecond

// Run starts the rooms and the daemon, pushes for o.Duration, waits for the
// store to catch up (while rows keep arriving; 30 s without one ends the
// wait), stops the daemon and reports.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Rooms <= 0 || o.Rate <= 0 || o.Duration <= 0 {
		return Result{}, fmt.Errorf("loadgen: rooms, rate and duration must be positive")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	res := Result{Rooms: o.Rooms, TargetRate: o.Rate}
	if o.DBPath == "" {
		dir, err := os.MkdirTemp("", "lookout-loadgen")
		if err != nil {
			return res, fmt.Errorf("loadgen: %w", err)
		}
		defer os.RemoveAll(dir)
		o.DBPath = filepath.Join(dir, "load.db")
	}
	nats := o.Transport == "nats"
	if o.Watch > 0 {
		o.UI = true
	}
	if o.UI && nats {
		return res, fmt.Errorf("loadgen: --ui serves the dashboard of one all-role daemon; not with --transport nats")
	}
	res.UI = o.UI
	if nats && (o.Processors < 1 || o.Exe == "") {
		return res, fmt.Errorf("loadgen: --transport nats needs --processors ≥ 1 and the lookout binary")
	}
	if o.Partitions <= 0 {
		o.Partitions = 16
	}
	var ns *embednats.Server
	if nats {
		dir := filepath.Join(filepath.Dir(o.DBPath), "nats")
		if o.NATSDir != "" {
			d, err := os.MkdirTemp(o.NATSDir, "lookout-nats")
			if err != nil {
				return res, fmt.Errorf("loadgen: %w", err)
			}
			defer os.RemoveAll(d)
			dir = d
		}
		var err error
		if ns, err = embednats.Start(dir); err != nil {
			return res, fmt.Errorf("loadgen: %w", err)
		}
		defer ns.Stop()
	}
	rooms := make([]*loopback.BilibiliServer, o.Rooms)
	for i := range rooms {
		rooms[i] = loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: 30_000_000 + int64(i), Compression: loopback.BilibiliPushBrotli})
		defer rooms[i].Close()
	}
	var b strings.Builder
	b.WriteString("store: { path: %q, batch_size: " + strconv.Itoa(CeilingBatch) + ", flush_interval: 200ms, keep_raw: false }\n")
	if nats {
		window := ""
		if o.BatchWindow > 0 {
			window = ", batch_window: " + o.BatchWindow.String()
		}
		fmt.Fprintf(&b, "transport: { kind: nats, nats: { url: %q, partitions: %d%s } }\n", ns.URL(), o.Partitions, window)
	}
	b.WriteString("http: { listen: \"off\" }\nlimits: { default: { rate: 100000/s, burst: 100000 }, max_concurrency: 1024 }\n")
	fmt.Fprintf(&b, "classifier: { terms: %t }\n", o.Terms)
	b.WriteString("keywords:\n  crisis: { severity: red, any: [退款, 假货, 投诉, refund] }\nsources:\n")
	for i, r := range rooms {
		fmt.Fprintf(&b, "  - { id: %s, kind: bilibili_live, room: %d, api_base: %q, nav_base: %q, hosts: [%q] }\n",
			sourceID(i), r.RoomID(), r.URL(), r.URL(), r.WSURL())
	}
	// The config names its store with %q: each daemon gets its own file.
	cfgFor := func(dbPath string) string { return strings.Replace(b.String(), "%q", strconv.Quote(dbPath), 1) }
	pg := nats && o.PostgresDSN != ""
	if pg {
		base := cfgFor
		cfgFor = func(dbPath string) string {
			c := base(dbPath)
			if dbPath == o.DBPath { // the collect role keeps its SQLite file
				return c
			}
			return strings.Replace(c, "keep_raw: false }", "keep_raw: false, driver: postgres }", 1)
		}
	}
	dbPaths := []string{o.DBPath}
	role := daemon.RoleAll
	if nats {
		role = daemon.RoleCollect
		dbPaths = nil
		for i := range o.Processors {
			dbPaths = append(dbPaths, strings.TrimSuffix(o.DBPath, ".db")+fmt.Sprintf("-p%d.db", i))
		}
	}
	cfg, err := config.Parse([]byte(cfgFor(o.DBPath)), "loadgen.yaml")
	if err != nil {
		return res, fmt.Errorf("loadgen: config: %w", err)
	}
	var pgReader *sql.DB
	if pg {
		if pgReader, err = openPostgres(ctx, o.PostgresDSN); err != nil {
			return res, err
		}
		defer pgReader.Close()
	}
	var procs *processors
	if nats {
		if procs, err = startProcessors(ctx, o, cfg, dbPaths, cfgFor); err != nil {
			return res, err
		}
		defer procs.kill()
	}
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM (Linux ≥ 4.0)
	cpuStart := cpuTime()
	var storeCPU0 time.Duration
	if pg {
		storeCPU0 = postgresCPU()
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	obs := &observer{} // the alert engine runs here only in the all role
	uiListen := ""
	if o.UI {
		uiListen = "127.0.0.1:0"
	}
	d, err := daemon.New(dctx, daemon.Options{Config: cfg, Log: o.Log, ShutdownGrace: 20 * time.Second, EvalObserver: obs, Role: role, UIListen: uiListen})
	if err != nil {
		return res, fmt.Errorf("loadgen: daemon: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx) }()
	stopDaemon := func() error {
		cancel()
		err := <-done
		if procs != nil {
			err = errors.Join(err, procs.stop())
		}
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	for i, r := range rooms {
		if err := r.WaitConnected(wctx, 1); err != nil {
			wcancel()
			_ = stopDaemon()
			return res, fmt.Errorf("loadgen: room %d never connected: %w", i, err)
		}
	}
	for o.UI && d.UIAddr() == "" && wctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	wcancel()
	if o.UI && d.UIAddr() == "" {
		_ = stopDaemon()
		return res, fmt.Errorf("loadgen: the dashboard did not start (see the daemon's log)")
	}
	// The watchers load their rooms' history before the push, so every
	// message pushed to a watched room reaches them through the stream.
	var watch *watchers
	watched := min(o.Watch, len(rooms))
	vctx, vcancel := context.WithCancel(ctx)
	defer vcancel()
	if watched > 0 {
		keys := make([][2]string, watched)
		for i := range keys { // the first rooms get the most messages
			keys[i] = [2]string{sourceID(i), strconv.FormatInt(rooms[i].RoomID(), 10)}
		}
		watch = startWatchers(vctx, "http://"+d.UIAddr(), os.Getenv(ui.TokenEnv), keys, o.Log)
	}
	var sentTo []int // messages pushed to each room
	sentWatched := func() (n int64) {
		for _, s := range sentTo[:min(watched, len(sentTo))] {
			n += int64(s)
		}
		return n
	}
	stopWatchers := func() {
		if watch != nil {
			vcancel()
			s := watch.stop()
			s.Sent = sentWatched()
			res.Watched = &s
			watch = nil
		}
	}
	defer stopWatchers()

	var readers []*sql.DB
	if pg {
		dbPaths = nil // the processors' files hold no items
		readers = append(readers, pgReader)
	}
	for _, p := range dbPaths {
		ro, err := sql.Open("sqlite3", "file:"+p+"?mode=ro")
		if err != nil {
			_ = stopDaemon()
			return res, fmt.Errorf("loadgen: %w", err)
		}
		defer ro.Close()
		readers = append(readers, ro)
	}
	lastRows := make([]int64, len(readers))
	itemsAfter := `SELECT rowid, item_id FROM items WHERE rowid > ? AND kind='chat'`
	// PostgreSQL: processors take ids from the sequence when their batch
	// begins and commit in any order, so a row may appear below the
	// highest id seen. The reader keeps the ids it has not seen below that
	// (holes) and reads again from the lowest; a hole not filled within
	// holeAge was an id never used (a duplicate, a rolled-back batch).
	var gaps pgHoles
	if pg {
		itemsAfter = `SELECT id, item_id, kind = 'chat' FROM items WHERE id > $1 ORDER BY id`
	}

	ticks := int((o.Duration + tick - 1) / tick)
	sentTo = make([]int, len(rooms))
	tr := &tracker{sentAt: make([]atomic.Int64, ticks), pending: map[int]int64{}}
	obs.t.Store(tr)
	var lastSeen time.Time // when the reader last saw new rows
	pollPostgres := func(ro *sql.DB) error {
		rows, err := ro.Query(itemsAfter, gaps.floor())
		if err != nil {
			return err
		}
		defer rows.Close()
		now := time.Now()
		for rows.Next() {
			var rowID int64
			var id []byte
			var chat bool
			if err := rows.Scan(&rowID, &id, &chat); err != nil {
				return err
			}
			if !gaps.see(rowID, now) || !chat {
				continue
			}
			if k, ok := tickOf(id); ok {
				tr.stored.add(tr.since(k, now), 1)
			}
			res.Stored++
			lastSeen = now
		}
		gaps.expire(now)
		return rows.Err()
	}
	pollOne := func(ro *sql.DB, lastRow *int64) error {
		if pg {
			return pollPostgres(ro)
		}
		rows, err := ro.Query(itemsAfter, *lastRow)
		if err != nil {
			return err
		}
		defer rows.Close()
		now := time.Now()
		for rows.Next() {
			var id []byte
			if err := rows.Scan(lastRow, &id); err != nil {
				return err
			}
			if k, ok := tickOf(id); ok {
				tr.stored.add(tr.since(k, now), 1)
			}
			res.Stored++
			lastSeen = now
		}
		return rows.Err()
	}
	poll := func() error {
		for i, ro := range readers {
			if err := pollOne(ro, &lastRows[i]); err != nil {
				return err
			}
		}
		return nil
	}
	pctx, pcancel := context.WithCancel(ctx)
	pollErr := make(chan error, 1)
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				pollErr <- nil
				return
			case <-t.C:
				if err := poll(); err != nil {
					pollErr <- fmt.Errorf("loadgen: read store: %w", err)
					return
				}
			}
		}
	}()

	// Frames are encoded by one goroutine a few seconds ahead of the
	// pacing (encoding is the platform's work, not lookout's; its CPU
	// counts in cpu_us_per_msg). At each tick every room pushes, in one
	// frame, its share of the messages due since the start; rooms with the
	// same share push the same frame (the dedupe key is per source, so the
	// ids only need to be unique within a room).
	frames := make(chan tickFrames, lookahead)
	ectx, ecancel := context.WithCancel(ctx)
	encDone := make(chan struct{})
	go func() {
		defer close(encDone)
		encodeFrames(ectx, len(rooms), o.Rate, o.Duration, frames)
	}()
	stopEncoder := func() {
		ecancel()
		for range frames { // unblock the encoder
		}
		<-encDone
	}
	for len(frames) < min(lookahead, ticks) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	rssEvery := max(time.Second, o.Duration/20)
	nextRSS := time.Duration(0)
	var stages0 map[string]float64
	if !nats {
		stages0 = stageSeconds(d.Registry(), o.Log)
	}
	cpu0 := cpuTime()
	start := time.Now()
	stopTrace := startTraceWindow(ctx, o)
	defer stopTrace()
	for k := 0; k < ticks; k++ {
		due := start.Add(time.Duration(k+1) * tick)
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(due)):
		}
		if ctx.Err() != nil {
			break
		}
		var tf tickFrames
		select {
		case tf = <-frames:
		default:
			res.LateTicks++
			tf = <-frames
		}
		ts := time.Now()
		tr.sentAt[k].Store(ts.UnixNano())
		for ri, r := range rooms {
			f := tf.byRoom[ri]
			if f.n == 0 {
				continue
			}
			if r.PushRaw(f.data) == 1 {
				res.Sent += f.n
				sentTo[ri] += f.n
			}
		}
		if el := ts.Sub(start); el >= nextRSS {
			if kb := procStatus("VmRSS"); kb > 0 {
				res.RSSSeriesMB = append(res.RSSSeriesMB, float64(kb)/1024)
			}
			nextRSS = el + rssEvery
		}
	}
	stopEncoder()
	stopTrace()
	if o.HeapProfile != nil {
		if err := pprof.Lookup("heap").WriteTo(o.HeapProfile, 0); err != nil {
			o.Log.Warn("loadgen: heap profile", "err", err)
		}
	}
	// Wait for the store to catch up: as long as rows keep arriving (a
	// backlog is drained, not counted lost), until 30 s pass without one.
	last, lastAt := tr.stored.count(), time.Now()
	for tr.stored.count() < int64(res.Sent) && time.Since(lastAt) < 30*time.Second && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if n := tr.stored.count(); n != last {
			last, lastAt = n, time.Now()
		}
	}
	cpu := cpuTime() - cpu0
	if stages0 != nil {
		wall := time.Since(start).Seconds()
		res.StageFractions = map[string]float64{}
		for k, v := range stageSeconds(d.Registry(), o.Log) {
			res.StageFractions[k] = (v - stages0[k]) / wall
		}
	}
	if pg {
		res.StoreCPUSeconds = (postgresCPU() - storeCPU0).Seconds()
	}
	if watch != nil {
		// Let the streams' last updates (one tick after the last batch)
		// arrive before the watchers stop.
		for t0 := time.Now(); watch.sliceMsgs.Load() < sentWatched() && time.Since(t0) < 5*time.Second && ctx.Err() == nil; {
			time.Sleep(20 * time.Millisecond)
		}
		stopWatchers()
	}
	pcancel()
	if err := <-pollErr; err != nil {
		_ = stopDaemon()
		return res, err
	}
	if err := stopDaemon(); err != nil {
		return res, fmt.Errorf("loadgen: daemon: %w", err)
	}
	if err := poll(); err != nil { // rows flushed at shutdown
		return res, fmt.Errorf("loadgen: read store: %w", err)
	}
	res.Lost = res.Sent - res.Stored
	res.CPUSeconds = (cpuTime() - cpuStart).Seconds()
	if procs != nil {
		res.ProcessorCPUSeconds = procs.cpu.Seconds()
	}
	if res.Stored > 0 {
		res.CPUTotalPerMsgUS = res.CPUSeconds * 1e6 / float64(res.Stored)
		res.StoreCPUPerMsgUS = res.StoreCPUSeconds * 1e6 / float64(res.Stored)
		res.ProcessorCPUPerMsgUS = res.ProcessorCPUSeconds * 1e6 / float64(res.Stored)
	}
	if !lastSeen.IsZero() {
		res.AchievedRate = float64(res.Stored) / lastSeen.Sub(start).Seconds()
	}
	if res.Stored > 0 {
		res.CPUPerMsgUS = float64(cpu.Microseconds()) / float64(res.Stored)
	}
	res.P50ms, res.P99ms = tr.stored.quantile(0.5), tr.stored.quantile(0.99)
	tr.mu.Lock()
	res.EvalP50ms, res.EvalP99ms = tr.evaluated.quantile(0.5), tr.evaluated.quantile(0.99)
	tr.mu.Unlock()
	if kb := procStatus("VmHWM"); kb > 0 {
		mb := float64(kb) / 1024
		res.RSSMB = &mb
	}
	if o.Ceiling && res.Sent > 0 {
		dir, err := os.MkdirTemp("", "lookout-ceiling")
		if err != nil {
			return res, fmt.Errorf("loadgen: %w", err)
		}
		defer os.RemoveAll(dir)
		if res.CeilingRate, err = Ceiling(ctx, dir, o.Rooms, res.Sent); err != nil {
			return res, err
		}
		res.CeilingRatio = res.AchievedRate / res.CeilingRate
		if len(dbPaths) > 0 {
			if res.CeilingStoredRate, _, err = CeilingOf(ctx, dir, dbPaths); err != nil {
				return res, err
			}
			res.CeilingStoredRatio = res.AchievedRate / res.CeilingStoredRate
		}
	}
	return res, nil
}

// sourceID is room i's source id in the daemon's config.
func sourceID(i int) string { return fmt.Sprintf("bili-%03d", i) }

// lookahead is how many ticks of frames the encoder keeps ready.
const lookahead = 60

// tickFrames is what each room pushes at one tick.
type tickFrames struct {
	byRoom []frame
}

type frame struct {
	data []byte
	n    int // messages in data
}

// id is a message's item id: its tick and its place in the frame. The
// reader recovers the tick, and with it the push time, from the id.
func id(k, n int) string { return "lg" + strconv.Itoa(k) + "x" + strconv.Itoa(n) }

// tickOf parses the tick out of an id made by id.
func tickOf[S string | []byte](b S) (int, bool) {
	if len(b) < 4 || b[0] != 'l' || b[1] != 'g' {
		return 0, false
	}
	k := 0
	for i := 2; i < len(b); i++ {
		c := b[i]
		if c == 'x' {
			return k, true
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		k = k*10 + int(c-'0')
	}
	return 0, false
}

// encodeFrames sends the frames of every tick, in order, and closes out.
func encodeFrames(ctx context.Context, rooms, rate int, d time.Duration, out chan<- tickFrames) {
	defer close(out)
	ticks := int((d + tick - 1) / tick)
	sent := make([]int, rooms)
	for k := range ticks {
		due := int(float64(rate) * min(d, time.Duration(k+1)*tick).Seconds())
		tf := tickFrames{byRoom: make([]frame, rooms)}
		byCount := map[int][]byte{}
		base := time.Now()
		for ri := range rooms {
			want := due / rooms
			if ri < due%rooms {
				want++
			}
			n := max(0, want-sent[ri])
			sent[ri] = max(sent[ri], want)
			if n == 0 {
				continue
			}
			data, ok := byCount[n]
			if !ok {
				cmds := make([][]byte, n)
				for j := range cmds {
					cmds[j] = loopback.BilibiliDanmaku(int64(100000+(k*31+j)%5000), "viewer", chat[(k+j)%len(chat)], base, id(k, j))
				}
				data = loopback.BilibiliFrame(loopback.BilibiliPushBrotli, cmds...)
				byCount[n] = data
			}
			tf.byRoom[ri] = frame{data: data, n: n}
		}
		select {
		case out <- tf:
		case <-ctx.Done():
			return
		}
	}
}

// observer hands the alert engine's observations to the current run's
// tracker (set once the rooms are connected; nil before).
type observer struct{ t atomic.Pointer[tracker] }

func (o *observer) Observed(it *item.Item) {
	t := o.t.Load()
	if t == nil || it.Kind != item.KindChat {
		return
	}
	if k, ok := tickOf(it.ID); ok && k < len(t.sentAt) {
		t.mu.Lock()
		t.pending[k]++
		t.mu.Unlock()
	}
}

func (o *observer) Evaluated(at time.Time) {
	t := o.t.Load()
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, n := range t.pending {
		t.evaluated.add(t.since(k, at), n)
		delete(t.pending, k)
	}
}

// tracker holds one run's push times (per tick) and latency histograms.
type tracker struct {
	sentAt []atomic.Int64 // unix ns of each tick's push
	stored histogram      // only the reader goroutine adds

	mu        sync.Mutex
	pending   map[int]int64 // tick → messages observed since the last evaluation
	evaluated histogram
}

func (t *tracker) since(k int, now time.Time) time.Duration {
	if k >= len(t.sentAt) {
		return 0
	}
	return now.Sub(time.Unix(0, t.sentAt[k].Load()))
}

// histogram counts latencies in 1 ms buckets up to two minutes (the last
// bucket takes the rest): quantiles exact to the millisecond in constant
// memory, however long the run.
type histogram struct {
	b [120_001]int64
	n atomic.Int64
}

func (h *histogram) add(d time.Duration, n int64) {
	i := max(0, min(int(d/time.Millisecond), len(h.b)-1))
	h.b[i] += n
	h.n.Add(n)
}

func (h *histogram) count() int64 { return h.n.Load() }

// quantile returns the q-quantile in milliseconds (the upper edge of its
// bucket), 0 when empty.
func (h *histogram) quantile(q float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q * float64(n-1))
	var c int64
	for i, v := range h.b {
		c += v
		if c > rank {
			return float64(i + 1)
		}
	}
	return float64(len(h.b))
}

func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// pgHoles tracks, for the reader of a PostgreSQL store, the highest row id
// seen and the ids below it not seen yet.
type pgHoles struct {
	max   int64
	holes map[int64]time.Time // id → when it was found missing
}

// holeAge is how long a missing id is waited for.
const holeAge = 10 * time.Second

// floor is the id to read after: below the lowest hole.
func (h *pgHoles) floor() int64 {
	f := h.max
	for id := range h.holes {
		f = min(f, id-1)
	}
	return f
}

// see records row id and reports whether it is new.
func (h *pgHoles) see(id int64, now time.Time) bool {
	if id > h.max {
		if h.holes == nil {
			h.holes = map[int64]time.Time{}
		}
		for m := h.max + 1; m < id; m++ {
			h.holes[m] = now
		}
		h.max = id
		return true
	}
	if _, ok := h.holes[id]; ok {
		delete(h.holes, id)
		return true
	}
	return false
}

func (h *pgHoles) expire(now time.Time) {
	for id, at := range h.holes {
		if now.Sub(at) > holeAge {
			delete(h.holes, id)
		}
	}
}

// stageMetrics names the daemon's counters of seconds that StageFractions
// reports: metric name and stage label (empty: none) for each key.
var stageMetrics = map[string][2]string{
	"store_busy":                       {"lookout_store_writer_busy_seconds_total", ""},
	"classifier_idle":                  {"lookout_pipeline_idle_seconds_total", "classifier"},
	"classifier_blocked_on_alerts":     {"lookout_pipeline_blocked_seconds_total", "alerts"},
	"classifier_blocked_on_store":      {"lookout_pipeline_blocked_seconds_total", "store"},
	"collectors_blocked_on_classifier": {"lookout_pipeline_blocked_seconds_total", "classifier"},
}

// stageSeconds reads the counters of stageMetrics from reg.
func stageSeconds(reg prometheus.Gatherer, log *slog.Logger) map[string]float64 {
	out := make(map[string]float64, len(stageMetrics))
	mfs, err := reg.Gather()
	if err != nil {
		log.Warn("loadgen: read the daemon's metrics", "err", err)
		return out
	}
	for key, want := range stageMetrics {
		out[key] = 0 // a stage that never blocked has no series yet
		for _, mf := range mfs {
			if mf.GetName() != want[0] {
				continue
			}
			for _, m := range mf.GetMetric() {
				stage := ""
				for _, l := range m.GetLabel() {
					if l.GetName() == "stage" {
						stage = l.GetValue()
					}
				}
				if stage == want[1] {
					out[key] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// startTraceWindow starts o.Trace's execution trace in the middle of the
// push (a trace of a 100k msgs/s run is about 1.5 MB a second) and
// returns a stop that ends it early; it is safe to call more than once.
func startTraceWindow(ctx context.Context, o Options) (stop func()) {
	if o.Trace == nil {
		return func() {}
	}
	window := o.TraceWindow
	if window <= 0 {
		window = 5 * time.Second
	}
	window = min(window, o.Duration)
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-time.After((o.Duration - window) / 2):
		case <-tctx.Done():
			return
		}
		if err := trace.Start(o.Trace); err != nil {
			o.Log.Warn("loadgen: execution trace", "err", err)
			return
		}
		defer trace.Stop()
		select {
		case <-time.After(window):
		case <-tctx.Done():
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
