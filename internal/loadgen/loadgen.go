// Package loadgen drives the real daemon at a paced rate from loopback
// Bilibili live rooms (real danmaku protocol, brotli frames) into a real
// SQLite store, and reports throughput, loss, latency and peak RSS.
package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"lookout/config"
	"lookout/daemon"
	"lookout/internal/embednats"
	"lookout/internal/loopback"
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
	// Transport "nats" runs the collectors here as a collect-role daemon
	// publishing to an embedded NATS server, and Processors process-role
	// daemons as processes of their own (Exe run --role process), each
	// with its own SQLite file; "" or "memory" is one all-role daemon.
	Transport  string
	Processors int
	Partitions int    // transport.nats.partitions (default 16)
	Exe        string // the lookout binary the processors run
}

// Result is what a run measured. Latency is arrival (the push to the
// room's client) to the row being visible in SQLite, observed by a reader
// polling every 20 ms, so it is an upper bound with that granularity.
type Result struct {
	Rooms        int      `json:"rooms"`
	TargetRate   int      `json:"target_rate"`
	AchievedRate float64  `json:"achieved_rate"`
	Sent         int      `json:"sent"`
	Stored       int      `json:"stored"`
	Lost         int      `json:"lost"`
	P50ms        float64  `json:"p50_ms"`
	P99ms        float64  `json:"p99_ms"`
	RSSMB        *float64 `json:"rss_mb"` // nil where /proc is absent
	// CeilingRate is Ceiling's items/s for the same items in the same
	// process, and CeilingRatio AchievedRate over it; set with
	// Options.Ceiling.
	CeilingRate  float64 `json:"ceiling_rate,omitempty"`
	CeilingRatio float64 `json:"ceiling_ratio,omitempty"`
	// CPUSeconds is user+system CPU time of this process and of the
	// processor processes from the daemon's start to its stop (the
	// loopback rooms and the pacing included, the same in every mode);
	// CPUPerMsgUs is that per stored message. On a machine shared with
	// other work it compares modes better than the achieved rate does.
	CPUSeconds  float64 `json:"cpu_seconds"`
	CPUPerMsgUs float64 `json:"cpu_us_per_msg"`
}

var chat = []string{
	"主播好棒，已下单", "这个颜色好看吗", "什么时候发货？", "求链接求链接", "hello from Shanghai",
	"收到的是假货，要求退款！", "客服一直不回复，投诉了", "物流太慢了", "worst customer service ever", "姐妹们冲啊",
}

const tick = 50 * time.Millisecond

// Run starts the rooms and the daemon, pushes for o.Duration, waits up to
// 30 s for the store to catch up, stops the daemon and reports.
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
	if nats && (o.Processors < 1 || o.Exe == "") {
		return res, fmt.Errorf("loadgen: --transport nats needs --processors ≥ 1 and the lookout binary")
	}
	if o.Partitions <= 0 {
		o.Partitions = 16
	}
	var ns *embednats.Server
	if nats {
		var err error
		if ns, err = embednats.Start(filepath.Join(filepath.Dir(o.DBPath), "nats")); err != nil {
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
		fmt.Fprintf(&b, "transport: { kind: nats, nats: { url: %q, partitions: %d } }\n", ns.URL(), o.Partitions)
	}
	b.WriteString("http: { listen: \"off\" }\nlimits: { default: { rate: 100000/s, burst: 100000 }, max_concurrency: 1024 }\n")
	fmt.Fprintf(&b, "classifier: { terms: %t }\n", o.Terms)
	b.WriteString("keywords:\n  crisis: { severity: red, any: [退款, 假货, 投诉, refund] }\nsources:\n")
	for i, r := range rooms {
		fmt.Fprintf(&b, "  - { id: bili-%03d, kind: bilibili_live, room: %d, api_base: %q, nav_base: %q, hosts: [%q] }\n",
			i, r.RoomID(), r.URL(), r.URL(), r.WSURL())
	}
	// The config names its store with %q: each daemon gets its own file.
	cfgFor := func(dbPath string) string { return strings.Replace(b.String(), "%q", strconv.Quote(dbPath), 1) }
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
	var procs *processors
	if nats {
		if procs, err = startProcessors(ctx, o, cfg, dbPaths, cfgFor); err != nil {
			return res, err
		}
		defer procs.kill()
	}
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM (Linux ≥ 4.0)
	cpu0 := cpuTime()
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d, err := daemon.New(dctx, daemon.Options{Config: cfg, Log: o.Log, ShutdownGrace: 20 * time.Second, Role: role})
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
	wcancel()

	var readers []*sql.DB
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

	var mu sync.Mutex
	var pollOne func(*sql.DB, *int64) error
	sentAt := map[string]time.Time{}
	var lat []time.Duration
	var lastSeen time.Time // when the reader last saw new rows
	poll := func() error {
		for i, ro := range readers {
			if err := pollOne(ro, &lastRows[i]); err != nil {
				return err
			}
		}
		return nil
	}
	pollOne = func(ro *sql.DB, lastRow *int64) error {
		rows, err := ro.Query(`SELECT rowid, item_id FROM items WHERE rowid > ? AND kind='chat'`, *lastRow)
		if err != nil {
			return err
		}
		defer rows.Close()
		now := time.Now()
		for rows.Next() {
			var id string
			if err := rows.Scan(lastRow, &id); err != nil {
				return err
			}
			mu.Lock()
			if t, ok := sentAt[id]; ok {
				lat = append(lat, now.Sub(t))
				delete(sentAt, id)
			}
			mu.Unlock()
			res.Stored++
			lastSeen = now
		}
		return rows.Err()
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

	// Pace: at every tick each room pushes, in one frame, its share of
	// the messages due since the start. Frames are encoded before the
	// start (encoding is the platform's work, not lookout's).
	plan := encode(len(rooms), o.Rate, o.Duration)
	start := time.Now()
	for k := range plan {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(start.Add(time.Duration(k+1) * tick))):
		}
		if ctx.Err() != nil {
			break
		}
		ts := time.Now()
		for ri, r := range rooms {
			f := plan[k][ri]
			if len(f.ids) == 0 {
				continue
			}
			mu.Lock()
			for _, id := range f.ids {
				sentAt[id] = ts
			}
			mu.Unlock()
			if r.PushRaw(f.data) == 1 {
				res.Sent += len(f.ids)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= res.Sent || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
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
	res.CPUSeconds = (cpuTime() - cpu0).Seconds()
	if res.Stored > 0 {
		res.CPUPerMsgUs = res.CPUSeconds * 1e6 / float64(res.Stored)
	}
	mu.Lock()
	if !lastSeen.IsZero() {
		res.AchievedRate = float64(res.Stored) / lastSeen.Sub(start).Seconds()
	}
	mu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50ms = float64(lat[len(lat)/2].Microseconds()) / 1000
		res.P99ms = float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()) / 1000
	}
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
	}
	return res, nil
}

type frame struct {
	data []byte
	ids  []string
}

// encode builds plan[tick][room]: the frame each room pushes at each tick.
func encode(rooms, rate int, d time.Duration) [][]frame {
	ticks := int((d + tick - 1) / tick)
	plan := make([][]frame, ticks)
	seq := make([]int, rooms)
	for k := range plan {
		plan[k] = make([]frame, rooms)
		due := int(float64(rate) * min(d, time.Duration(k+1)*tick).Seconds())
		for ri := range rooms {
			want := due / rooms
			if ri < due%rooms {
				want++
			}
			for j := seq[ri]; j < want; j++ {
				plan[k][ri].ids = append(plan[k][ri].ids, "lg"+strconv.Itoa(ri)+"x"+strconv.Itoa(j))
			}
			seq[ri] = max(seq[ri], want)
		}
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for k := range next {
				base := time.Now()
				for ri := range plan[k] {
					f := &plan[k][ri]
					if len(f.ids) == 0 {
						continue
					}
					cmds := make([][]byte, len(f.ids))
					for n, id := range f.ids {
						j := len(cmds) + n // varies the text within a frame
						cmds[n] = loopback.BilibiliDanmaku(int64(100000+(k*rooms+n)%5000), "viewer", chat[(ri+j)%len(chat)], base, id)
					}
					f.data = loopback.BilibiliFrame(loopback.BilibiliPushBrotli, cmds...)
				}
			}
		})
	}
	for k := range plan {
		next <- k
	}
	close(next)
	wg.Wait()
	return plan
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
