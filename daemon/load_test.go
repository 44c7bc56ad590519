package daemon

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"lookout/collectors/douyin/douyinpb"
	"lookout/config"
	"lookout/internal/loopback"
)

// The many-rooms harness: loopback live rooms of three platforms (Bilibili
// danmaku over brotli/zlib frames, Douyin webcast protobuf frames, Twitch
// IRC over WebSocket with several channels per connection), the real
// daemon (daemon.New + Run, real SQLite file), and pushers that send every
// pre-encoded frame as fast as the daemon takes them. The servers are in
// this process, so CPU and RSS figures include them.

// loadChat is the chat the rooms send: short live-commerce lines in
// Chinese and English, some of them complaints that hit the crisis group.
var loadChat = []string{
	"主播好棒，已下单", "这个颜色好看吗", "666666", "什么时候发货？", "求链接求链接",
	"质量很好，回购了", "刚买的收到了，很满意", "hello from Shanghai", "this looks great, ordered two",
	"价格能再便宜点吗", "主播声音好好听", "上车上车", "How long is shipping to Canada?",
	"收到的是假货，要求退款！", "客服一直不回复，投诉了", "物流太慢了，一个星期还没到", "退款申请被拒，什么垃圾店",
	"scam, the item never arrived, want a refund", "worst customer service ever", "尺码偏小，建议拍大一码",
	"姐妹们冲啊", "这个价格太值了", "love this streamer", "已经第三次买了，质量稳定", "包装破损，差评",
}

// loadNames are viewer nicknames.
var loadNames = []string{"小明", "阿花", "viewer_88", "不吃香菜", "Alice", "路人甲", "momo", "打工人", "Kevin", "小鱼儿"}

type loadPlatform int

const (
	loadBilibili loadPlatform = iota
	loadDouyin
	loadTwitch
)

// loadSpec sizes one harness run.
type loadSpec struct {
	bilibili, douyin, twitch int // rooms per platform
	twitchPerConn            int // channels per Twitch source (one connection each)
	messages                 int // chat messages in total, spread over the rooms
	perFrame                 int // messages per pushed frame
	terms                    bool
	rules                    bool
	// inFlight bounds messages pushed but not yet stored: the loopback
	// servers give up on a write after 5 s, so pushers must not run
	// further ahead of the daemon than it can absorb in that time.
	inFlight int
}

// loadRoom is one live room and what it will push.
type loadRoom struct {
	platform loadPlatform
	source   string
	bili     *loopback.BilibiliServer
	douyin   *loopback.DouyinServer
	channel  string     // twitch login
	frames   [][]byte   // bilibili and douyin frames, pre-encoded
	lines    [][]string // twitch frames: IRC lines per WebSocket message
	counts   []int      // messages in each frame
	ids      []string   // item ids the room sends, in order
}

type loadHarness struct {
	spec    loadSpec
	rooms   []*loadRoom
	twitch  *loopback.TwitchServer
	webhook *loopback.WebhookServer
	twSrcs  map[string][]string // twitch source id → channels
	dbPath  string
	cfg     *config.Config
}

const loadDouyinKey = "load-douyin-key"

// newLoadHarness starts the servers and pre-encodes every frame.
func newLoadHarness(tb testing.TB, spec loadSpec) *loadHarness {
	tb.Helper()
	tb.Setenv("LOAD_DOUYIN_KEY", loadDouyinKey)
	h := &loadHarness{spec: spec, twSrcs: map[string][]string{}}
	for i := range spec.bilibili {
		comp := loopback.BilibiliPushBrotli
		if i%2 == 1 {
			comp = loopback.BilibiliPushZlib // protover 2, still served to some clients
		}
		srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: 30_000_000 + int64(i), Compression: comp})
		tb.Cleanup(srv.Close)
		h.rooms = append(h.rooms, &loadRoom{platform: loadBilibili, source: fmt.Sprintf("bili-%03d", i), bili: srv})
	}
	for i := range spec.douyin {
		srv := loopback.NewDouyinServer(fmt.Sprintf("6464542%05d", i), 7_300_000_000_000_000_000+uint64(i), []byte(loadDouyinKey))
		tb.Cleanup(srv.Close)
		h.rooms = append(h.rooms, &loadRoom{platform: loadDouyin, source: fmt.Sprintf("dy-%03d", i), douyin: srv})
	}
	if spec.twitch > 0 {
		h.twitch = loopback.NewTwitchServer()
		tb.Cleanup(h.twitch.Close)
		per := max(1, spec.twitchPerConn)
		for i := range spec.twitch {
			src := fmt.Sprintf("tw-%03d", i/per)
			ch := fmt.Sprintf("loadchan_%03d", i)
			h.twSrcs[src] = append(h.twSrcs[src], ch)
			h.rooms = append(h.rooms, &loadRoom{platform: loadTwitch, source: src, channel: ch})
		}
	}
	if spec.rules {
		h.webhook = loopback.NewWebhookServer()
		tb.Cleanup(h.webhook.Close)
		tb.Setenv("LOAD_WEBHOOK_URL", h.webhook.URL())
	}
	h.encode()
	h.dbPath = filepath.Join(tb.TempDir(), "load.db")
	h.cfg = h.config(tb)
	return h
}

// encode builds every room's frames, in parallel: the encoding is the
// servers' work and is kept out of the measured time.
func (h *loadHarness) encode() {
	per := h.spec.messages / len(h.rooms)
	extra := h.spec.messages % len(h.rooms)
	base := time.Now()
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				ri := int(next.Add(1) - 1)
				if ri >= len(h.rooms) {
					return
				}
				n := per
				if ri < extra {
					n++
				}
				h.rooms[ri].encode(ri, n, h.spec.perFrame, base)
			}
		})
	}
	wg.Wait()
}

// loadEncoded caches encoded frames across runs: encoding 200k messages
// costs more wall time than the run that pushes them, and the frames do
// not depend on the servers (ids, texts and channels are fixed by the
// room's index).
var loadEncoded = struct {
	sync.Mutex
	m map[string]*loadRoom
}{m: map[string]*loadRoom{}}

func (r *loadRoom) encode(ri, n, perFrame int, base time.Time) {
	key := fmt.Sprint(r.platform, ri, n, perFrame, r.channel)
	loadEncoded.Lock()
	c := loadEncoded.m[key]
	loadEncoded.Unlock()
	if c != nil {
		r.frames, r.lines, r.counts, r.ids = c.frames, c.lines, c.counts, c.ids
		return
	}
	defer func() {
		loadEncoded.Lock()
		loadEncoded.m[key] = &loadRoom{frames: r.frames, lines: r.lines, counts: r.counts, ids: r.ids}
		loadEncoded.Unlock()
	}()
	var dy uint64
	for off := 0; off < n; off += perFrame {
		k := min(perFrame, n-off)
		var cmds [][]byte
		var dmsgs []*douyinpb.Message
		var lines []string
		for j := off; j < off+k; j++ {
			text := loadChat[(ri*7+j)%len(loadChat)]
			name := loadNames[(ri+j)%len(loadNames)]
			uid := int64(100000 + (ri*131+j)%50000)
			switch r.platform {
			case loadBilibili:
				id := fmt.Sprintf("ld%03dx%07d", ri, j)
				r.ids = append(r.ids, id)
				cmds = append(cmds, loopback.BilibiliDanmaku(uid, name, text, base.Add(time.Duration(j)*time.Millisecond), id))
			case loadDouyin:
				dy = 7_400_000_000_000_000_000 + uint64(ri)*10_000_000 + uint64(j)
				r.ids = append(r.ids, strconv.FormatUint(dy, 10))
				dmsgs = append(dmsgs, loopback.DouyinChat(dy, uint64(uid), name, text))
			case loadTwitch:
				id := fmt.Sprintf("%08x-load-%04x-%08x", ri, j>>16, j)
				r.ids = append(r.ids, id)
				login := fmt.Sprintf("viewer%d", uid)
				lines = append(lines, fmt.Sprintf("@badge-info=;badges=;color=#1E90FF;display-name=%s;emotes=;first-msg=0;flags=;id=%s;mod=0;room-id=%d;subscriber=0;tmi-sent-ts=%d;turbo=0;user-id=%d;user-type= :%s!%s@%s.tmi.twitch.tv PRIVMSG #%s :%s",
					login, id, 40_000_000+ri, base.UnixMilli()+int64(j), uid, login, login, login, r.channel, text))
			}
		}
		switch r.platform {
		case loadBilibili:
			comp := loopback.BilibiliPushBrotli
			if ri%2 == 1 {
				comp = loopback.BilibiliPushZlib
			}
			r.frames = append(r.frames, loopback.BilibiliFrame(comp, cmds...))
		case loadDouyin:
			r.frames = append(r.frames, loopback.DouyinFrame(7_392_091_211_001_140_000+uint64(off), false,
				fmt.Sprintf("internal_src:dim|wss_push_room_id:%d|fetch_time:%d", ri, off), dmsgs...))
		case loadTwitch:
			r.lines = append(r.lines, lines)
		}
		r.counts = append(r.counts, k)
	}
}

// push sends frame i and reports whether the room's one client got it.
func (r *loadRoom) push(h *loadHarness, i int) bool {
	switch r.platform {
	case loadBilibili:
		return r.bili.PushRaw(r.frames[i]) == 1
	case loadDouyin:
		return r.douyin.PushRaw(r.frames[i]) == 1
	default:
		return h.twitch.Send(r.channel, r.lines[i]...) == 1
	}
}

func (h *loadHarness) config(tb testing.TB) *config.Config {
	var b strings.Builder
	// 32768, not the default 512: with 200 sources every batch dirties
	// leaf pages at ~200 places in each items index, and each COMMIT
	// writes them all to the WAL, so bigger batches write fewer pages per
	// item (COMMIT took 0.7s of the writer's 3s per run at 4096, 0.4s at
	// 16384). flush_interval still bounds how long an item waits: at 50k
	// msgs/s the 200ms timer flushes ~10k items; the cap matters when the
	// writer catches up after a slow commit, and 32768 measured 10–15%
	// faster than 16384 here. README's tuning note says the same.
	// LOOKOUT_LOAD_BATCH and LOOKOUT_LOAD_FLUSH override them.
	batch := 32768
	if n, err := strconv.Atoi(os.Getenv("LOOKOUT_LOAD_BATCH")); err == nil && n > 0 {
		batch = n
	}
	flush := "200ms"
	if v := os.Getenv("LOOKOUT_LOAD_FLUSH"); v != "" {
		flush = v
	}
	fmt.Fprintf(&b, "store: { path: %q, batch_size: %d, flush_interval: %s, keep_raw: false }\n", h.dbPath, batch, flush)
	b.WriteString("http: { listen: \"off\" }\n")
	b.WriteString("limits: { default: { rate: 10000/s, burst: 10000 }, max_concurrency: 256 }\n")
	fmt.Fprintf(&b, "classifier: { terms: %t }\n", h.spec.terms)
	b.WriteString("keywords:\n  crisis: { severity: red, any: [退款, 假货, 投诉, 差评, refund, scam] }\n  logistics: { category: complaint, any: [物流, 发货, shipping] }\n")
	b.WriteString("sources:\n")
	twDone := map[string]bool{}
	for _, r := range h.rooms {
		switch r.platform {
		case loadBilibili:
			fmt.Fprintf(&b, "  - { id: %s, kind: bilibili_live, room: %d, api_base: %q, nav_base: %q, hosts: [%q] }\n",
				r.source, r.bili.RoomID(), r.bili.URL(), r.bili.URL(), r.bili.WSURL())
		case loadDouyin:
			fmt.Fprintf(&b, "  - { id: %s, kind: douyin_live, room: %q, ws_base: %q, page_base: %q, loopback_sign_key: \"${LOAD_DOUYIN_KEY}\" }\n",
				r.source, r.douyin.WebRID, r.douyin.WSBase, r.douyin.PageBase)
		case loadTwitch:
			if twDone[r.source] {
				continue
			}
			twDone[r.source] = true
			fmt.Fprintf(&b, "  - { id: %s, kind: twitch, url: %q, channels: [%s] }\n", r.source, h.twitch.URL, strings.Join(h.twSrcs[r.source], ", "))
		}
	}
	if h.spec.rules {
		b.WriteString(`rules:
  - name: negative-room
    kind: negative_ratio
    window: 10s
    min_volume: 20
    levels: { yellow: 0.3, red: 0.5 }
  - name: crisis-burst
    kind: keyword_burst
    category: crisis
    window: 5s
    levels: { yellow: 5, red: 20 }
route:
  receiver: hook
  group_wait: 0s
receivers:
  - name: hook
    rate_limit: 1000/s
    webhook: { url: "${LOAD_WEBHOOK_URL}" }
`)
	}
	cfg, err := config.Parse([]byte(b.String()), "load.yaml")
	if err != nil {
		tb.Fatalf("load config: %v", err)
	}
	if m := cfg.MissingSecrets(); len(m) > 0 {
		tb.Fatal(m)
	}
	return cfg
}

// loadRun is what one run measured.
type loadRun struct {
	elapsed   time.Duration
	peakRSSKB int64         // VmHWM over the run (reset at its start when the kernel allows)
	startKB   int64         // VmRSS before the daemon started
	alerts    int           // webhook messages received
	cpu       time.Duration // process CPU time (user + system) over the run
}

// run starts the daemon, waits until every collector is connected, pushes
// all frames and returns once SQLite holds every message. The daemon is
// stopped (gracefully) before run returns.
func (h *loadHarness) run(tb testing.TB, onStart func()) loadRun {
	tb.Helper()
	var res loadRun
	res.startKB = loadProcStatus("VmRSS")
	loadResetHWM()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := New(ctx, Options{Config: h.cfg, Log: log, ShutdownGrace: 20 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("daemon stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			tb.Errorf("daemon did not stop within 30s")
		}
	}
	defer stop()

	h.waitConnected(tb)

	ro, err := sql.Open("sqlite3", "file:"+h.dbPath+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	defer ro.Close()
	chatRows := func() int {
		var n int
		if err := ro.QueryRow(`SELECT count(*) FROM items WHERE kind='chat'`).Scan(&n); err != nil {
			tb.Fatalf("count items: %v", err)
		}
		return n
	}
	if n := chatRows(); n != 0 {
		tb.Fatalf("%d chat rows before anything was pushed", n)
	}

	// stored follows the writer's counter of committed rows, for flow
	// control. A Gather walks the whole registry (Go runtime and process
	// collectors included), so it is polled every 100ms, not faster: the
	// counter only moves once per committed batch anyway.
	var stored, pushed atomic.Int64
	pollDone := make(chan struct{})
	pollStop := make(chan struct{})
	go func() {
		defer close(pollDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-pollStop:
				return
			case <-t.C:
				stored.Store(int64(loadCounter(d, "lookout_store_items_written_total")))
			}
		}
	}()
	defer func() {
		select {
		case <-pollStop:
		default:
			close(pollStop)
		}
		<-pollDone
	}()

	if onStart != nil {
		onStart()
	}
	defer loadProfileWindow(tb)()
	cpu0 := loadCPUTime()
	start := time.Now()
	var failed atomic.Int64
	var wg sync.WaitGroup
	window := int64(h.spec.inFlight)
	for _, r := range h.rooms {
		wg.Go(func() {
			for i, n := range r.counts {
				for pushed.Load()+int64(n)-stored.Load() > window {
					time.Sleep(time.Millisecond)
				}
				pushed.Add(int64(n))
				if !r.push(h, i) {
					failed.Add(1)
					return
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		tb.Fatalf("%d rooms could not deliver a frame to their client", f)
	}
	want := int64(h.spec.messages)
	deadline := time.Now().Add(2 * time.Minute)
	for stored.Load() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("after 2m only %d of %d messages stored (%d chat rows)", stored.Load(), want, chatRows())
		}
		time.Sleep(2 * time.Millisecond)
	}
	// The counter also counts metric samples (heartbeat popularity); the
	// rows themselves decide.
	for chatRows() < int(want) {
		if time.Now().After(deadline) {
			tb.Fatalf("after 2m only %d of %d chat rows in SQLite", chatRows(), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.elapsed = time.Since(start)
	res.cpu = loadCPUTime() - cpu0
	res.peakRSSKB = loadProcStatus("VmHWM")
	if h.webhook != nil {
		res.alerts = len(h.webhook.Messages())
	}
	stop()
	return res
}

// waitConnected blocks until every room's collector is connected (and,
// for Twitch, has joined its channels).
func (h *loadHarness) waitConnected(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range h.rooms {
		switch r.platform {
		case loadBilibili:
			if err := r.bili.WaitConnected(ctx, 1); err != nil {
				tb.Fatalf("%s: %v", r.source, err)
			}
		case loadDouyin:
			for r.douyin.Open() < 1 {
				if ctx.Err() != nil {
					tb.Fatalf("%s: collector never connected", r.source)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	for src, chans := range h.twSrcs {
		dl, _ := ctx.Deadline()
		if _, ok := h.twitch.WaitJoined(time.Until(dl), chans...); !ok {
			tb.Fatalf("%s never joined %v", src, chans)
		}
	}
}

// loadProfileWindow writes a CPU profile of the measured window alone
// (frame encoding and daemon start-up excluded) to the file named by
// LOOKOUT_LOAD_CPUPROFILE, one file per run (suffixed .1, .2, …). It
// returns the function that stops it.
func loadProfileWindow(tb testing.TB) func() {
	path := os.Getenv("LOOKOUT_LOAD_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	loadProfileRuns++
	f, err := os.Create(fmt.Sprintf("%s.%d", path, loadProfileRuns))
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		tb.Fatalf("cpu profile (is -cpuprofile also set?): %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// loadProfileRuns numbers the profiles of one test binary's runs.
var loadProfileRuns int

// loadCounter sums a counter of the daemon's registry.
func loadCounter(d *Daemon, name string) float64 {
	mfs, err := d.Registry().Gather()
	if err != nil {
		return 0
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// loadProcStatus reads a kB field (VmRSS, VmHWM) of /proc/self/status; 0
// where there is no procfs.
func loadProcStatus(field string) int64 {
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

// loadCPUTime is the process's CPU time so far (all threads, user and
// system): on a shared machine msgs/s depends on what else runs, CPU per
// message much less.
func loadCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadResetHWM resets the peak RSS to the current RSS (Linux ≥ 4.0), so
// that each run reports its own peak rather than the process's.
func loadResetHWM() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// TestPipelineManyRoomsSmoke runs the load harness small: six rooms on
// three platforms, a few hundred messages; every pushed message must be in
// SQLite exactly once, with its platform and room.
func TestPipelineManyRoomsSmoke(t *testing.T) {
	h := newLoadHarness(t, loadSpec{bilibili: 2, douyin: 2, twitch: 2, twitchPerConn: 2,
		messages: 600, perFrame: 25, inFlight: 10_000, rules: true})
	h.run(t, nil)

	ro, err := sql.Open("sqlite3", "file:"+h.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rows, err := ro.Query(`SELECT source, item_id, platform, room FROM items WHERE kind='chat'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type key struct{ source, id string }
	got := map[key]int{}
	platforms := map[string]string{}
	for rows.Next() {
		var k key
		var platform, room string
		if err := rows.Scan(&k.source, &k.id, &platform, &room); err != nil {
			t.Fatal(err)
		}
		got[k]++
		platforms[k.source] = platform
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, r := range h.rooms {
		for _, id := range r.ids {
			want++
			if n := got[key{r.source, id}]; n != 1 {
				t.Errorf("%s/%s stored %d times, want once", r.source, id, n)
			}
			delete(got, key{r.source, id})
		}
	}
	if want != 600 {
		t.Fatalf("harness pushed %d messages, want 600", want)
	}
	for k, n := range got {
		t.Errorf("unexpected chat row %s/%s (×%d)", k.source, k.id, n)
	}
	for src, p := range map[string]string{"bili-000": "bilibili", "dy-000": "douyin", "tw-000": "twitch"} {
		if platforms[src] != p {
			t.Errorf("source %s stored platform %q, want %q", src, platforms[src], p)
		}
	}
	var scored int
	if err := ro.QueryRow(`SELECT count(*) FROM items WHERE kind='chat' AND sentiment IS NOT NULL`).Scan(&scored); err != nil {
		t.Fatal(err)
	}
	if scored != 600 {
		t.Errorf("%d of 600 chat rows scored", scored)
	}
}

// BenchmarkPipeline200Rooms is the end-to-end run BENCHMARKS.md reports: 100 Bilibili
// rooms (one loopback server each: a server serves one room id), 50 Douyin
// rooms, 50 Twitch channels on 5 connections (10 channels each), the real
// daemon, all messages into SQLite. msgs/s = messages / (first push → last
// row committed). peak-RSS-MB is the whole process's VmHWM during the run,
// servers and pre-encoded frames included; cpu-µs/msg is the process's CPU
// time over the run per message (steadier than msgs/s on a shared machine).
// LOOKOUT_LOAD_CPUPROFILE=file profiles the measured window alone.
func BenchmarkPipeline200Rooms(b *testing.B) {
	msgs := 200_000
	if s := os.Getenv("LOOKOUT_LOAD_MESSAGES"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			msgs = n
		}
	}
	for _, mode := range []struct {
		name         string
		terms, rules bool
	}{
		{"terms=off", false, false},
		{"terms=on", true, false},
		{"terms=off/rules=on", false, true},
	} {
		b.Run(mode.name, func(b *testing.B) {
			var total, cpu time.Duration
			var peak, startKB int64
			var alerts int
			for range b.N {
				b.StopTimer()
				// inFlight 100k: several store batches, so pushers keep the
				// pipeline busy while a batch commits (with 20k they
				// stalled behind every commit: 41k msgs/s against 48–53k);
				// 100k messages take ~2 s to drain, inside the servers' 5 s
				// write timeout (300k was not: pushes timed out).
				h := newLoadHarness(b, loadSpec{bilibili: 100, douyin: 50, twitch: 50, twitchPerConn: 10,
					messages: msgs, perFrame: 50, inFlight: 100_000, terms: mode.terms, rules: mode.rules})
				debug.FreeOSMemory() // start each run from a compact heap and RSS
				res := h.run(b, b.StartTimer)
				b.StopTimer()
				total += res.elapsed
				cpu += res.cpu
				peak = max(peak, res.peakRSSKB)
				startKB = max(startKB, res.startKB)
				alerts += res.alerts
			}
			b.ReportMetric(float64(msgs)*float64(b.N)/total.Seconds(), "msgs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(msgs*b.N), "cpu-µs/msg")
			b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
			b.ReportMetric(float64(startKB)/1024, "start-RSS-MB")
			if mode.rules {
				b.ReportMetric(float64(alerts)/float64(b.N), "notifications/op")
			}
		})
	}
}
