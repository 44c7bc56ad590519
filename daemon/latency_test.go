package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lookout/config"
	"lookout/internal/loopback"
)

// BenchmarkAlertLatency is the alert latency BENCHMARKS.md reports: the time from a
// crisis message leaving a loopback Bilibili room to the alert's arrival at
// a loopback webhook receiver, while the daemon ingests a steady stream of
// ordinary chat (latRate items/s over latRooms rooms).
//
// What the clock measures: t0 is taken just before the server writes the
// frame holding the crisis message (the only crisis hit in its room's
// window, so it is the item that tips the keyword_burst rule); t1 is when
// the receiver has read the POST (loopback.SinkMessage.At). In between:
// WebSocket + decode, dedupe, classifier, the engine's channel, the wait
// for the next evaluation tick (daemon.Options.EvalInterval, 100 ms by
// default), Publish (one SQLite transaction shared
// with the item writer), the outbox sender and the HTTP POST. group_wait
// and group_interval are 0 so routing adds no deliberate delay.
//
// The rule's window (3 s) must exceed EvalInterval plus the pipeline's
// queueing: a crisis item stamped t and evaluated at T > t+window is
// counted but never seen inside a window, so with window 1 s and a 1 s
// tick almost no crisis fired under load (2 of 80 in one run).
//
// Sub-benchmarks: eval=default is the daemon as it ships (100 ms);
// eval=250ms and eval=1s show what the knob buys.
func BenchmarkAlertLatency(b *testing.B) {
	for _, eval := range []time.Duration{0, 250 * time.Millisecond, time.Second} {
		name := "eval=default"
		if eval > 0 {
			name = "eval=" + eval.String()
		}
		b.Run(name, func(b *testing.B) {
			var all, evalWait, deliver []time.Duration
			var fired, injected, undelivered int
			var rate, stored float64
			for range b.N {
				b.StopTimer()
				r := latRun(b, eval, b.StartTimer)
				b.StopTimer()
				all = append(all, r.total...)
				evalWait = append(evalWait, r.toEval...)
				deliver = append(deliver, r.toHook...)
				fired += len(r.total)
				injected += r.injected
				undelivered += r.undelivered
				rate += r.rate
				stored += r.stored
			}
			if len(all) == 0 {
				b.Fatal("no alert reached the receiver")
			}
			b.ReportMetric(latPct(all, 50), "p50-ms")
			b.ReportMetric(latPct(all, 95), "p95-ms")
			b.ReportMetric(latPct(all, 99), "p99-ms")
			b.ReportMetric(latPct(evalWait, 99), "p99-to-eval-ms")
			b.ReportMetric(latPct(deliver, 99), "p99-eval-to-hook-ms")
			b.ReportMetric(float64(fired)/float64(b.N), "alerts/op")
			b.ReportMetric(float64(injected)/float64(b.N), "crises/op")
			b.ReportMetric(float64(undelivered)/float64(b.N), "undelivered-frames/op")
			b.ReportMetric(rate/float64(b.N), "offered-items/s")
			b.ReportMetric(stored/float64(b.N), "stored-items/s")
		})
	}
}

const (
	latRooms    = 25
	latTick     = 10 * time.Millisecond
	latInject   = 400 * time.Millisecond // one crisis message, next room in turn: each room every 10 s
	latDuration = 20 * time.Second
	latWarmup   = 2 * time.Second
)

type latResult struct {
	total, toEval, toHook []time.Duration
	injected              int
	undelivered           int     // frames the servers gave up writing
	rate                  float64 // background items/s actually pushed
	stored                float64 // items/s the store committed while crises were injected
}

// latIDPlaceholder is replaced, in a pre-built danmaku, by each message's
// own id: building every one of 20k messages a second with encoding/json
// would cost the servers more CPU than the daemon spends on them.
// latRate is the background items/s over all rooms: the 20k, or
// LOOKOUT_LAT_RATE to find the rate at which a given machine keeps up.
func latRate() float64 {
	if n, err := strconv.Atoi(os.Getenv("LOOKOUT_LAT_RATE")); err == nil && n > 0 {
		return float64(n)
	}
	return 20_000
}

const latIDPlaceholder = "LATIDXXXXXXXXXXXXXXX"

var latTokenRe = regexp.MustCompile(`#c(\d+)`)

func latRun(b *testing.B, evalInterval time.Duration, onStart func()) latResult {
	b.Helper()
	var rooms []*loopback.BilibiliServer
	for i := range latRooms {
		// Plain (protover 0 concatenated) frames keep the servers' CPU
		// for the daemon; the load benchmark covers brotli/zlib decode.
		srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: 40_000_000 + int64(i), Compression: loopback.BilibiliPushPlain})
		b.Cleanup(srv.Close)
		rooms = append(rooms, srv)
	}
	hook := loopback.NewWebhookServer()
	b.Cleanup(hook.Close)
	b.Setenv("LAT_WEBHOOK_URL", hook.URL())
	dbPath := filepath.Join(b.TempDir(), "lat.db")

	var cfgText strings.Builder
	fmt.Fprintf(&cfgText, "store: { path: %q, batch_size: 1024, flush_interval: 100ms, keep_raw: false }\n", dbPath)
	cfgText.WriteString(`http: { listen: "off" }
limits: { default: { rate: 1000/s, burst: 1000 } }
classifier: { terms: false }
keywords:
  crisis: { severity: red, any: [假货, 退款, 投诉] }
sources:
`)
	for i, r := range rooms {
		fmt.Fprintf(&cfgText, "  - { id: lat-%02d, kind: bilibili_live, room: %d, api_base: %q, nav_base: %q, hosts: [%q] }\n",
			i, r.RoomID(), r.URL(), r.URL(), r.WSURL())
	}
	cfgText.WriteString(`rules:
  - name: crisis-now
    kind: keyword_burst
    category: crisis
    window: 3s
    levels: { yellow: 1 }
    hysteresis: 0
route:
  receiver: hook
  group_by: [room]
  group_wait: 0s
  group_interval: 0s
receivers:
  - name: hook
    rate_limit: 1000/s
    webhook: { url: "${LAT_WEBHOOK_URL}" }
`)
	cfg, err := config.Parse([]byte(cfgText.String()), "latency.yaml")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := New(ctx, Options{Config: cfg, Log: log, ShutdownGrace: 20 * time.Second, EvalInterval: evalInterval})
	if err != nil {
		b.Fatal(err)
	}
	engineReg := prometheus.Gatherer(d.Registry())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("daemon stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			b.Errorf("daemon did not stop within 30s")
		}
	}()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	for _, r := range rooms {
		if err := r.WaitConnected(wctx, 1); err != nil {
			b.Fatal(err)
		}
	}

	// Background chat: every tick each room gets its share of what is
	// due, as one frame; ids are unique so nothing is dropped as a dupe.
	var (
		mu      sync.Mutex
		pushed  = map[int]time.Time{} // crisis token → push time
		bgSent  int
		failed  int
		bgStart time.Time
		bgEnd   time.Time
	)
	genCtx, stopGen := context.WithCancel(ctx)
	var gen sync.WaitGroup
	rate := latRate()
	gen.Go(func() {
		templates := latTemplates(time.Now())
		tmplAt := time.Now()
		t := time.NewTicker(latTick)
		defer t.Stop()
		start := time.Now()
		mu.Lock()
		bgStart = start
		mu.Unlock()
		sent, seq := 0, 0
		for {
			select {
			case <-genCtx.Done():
				mu.Lock()
				bgSent, bgEnd = sent, time.Now()
				mu.Unlock()
				return
			case now := <-t.C:
				if now.Sub(tmplAt) >= time.Second {
					templates, tmplAt = latTemplates(now), now
				}
				due := int(now.Sub(start).Seconds()*rate) - sent
				per := due / latRooms
				if per <= 0 {
					continue
				}
				for _, r := range rooms {
					var frame []byte
					for range per {
						seq++
						cmd := bytes.Replace(templates[seq%len(templates)], []byte(latIDPlaceholder), fmt.Appendf(nil, "LATID%015d", seq), 1)
						frame = append(frame, loopback.BilibiliPacket(0, 5, 0, cmd)...)
					}
					if r.PushRaw(frame) != 1 {
						mu.Lock()
						failed++
						mu.Unlock()
					}
					sent += per
				}
			}
		}
	})

	time.Sleep(latWarmup)
	onStart()
	storedFrom, measureFrom := loadCounter(d, "lookout_store_items_written_total"), time.Now()
	injected := 0
	deadline := time.Now().Add(latDuration)
	t := time.NewTicker(latInject)
	for time.Now().Before(deadline) {
		<-t.C
		room := rooms[injected%latRooms]
		token := injected
		injected++
		cmd := loopback.BilibiliDanmaku(int64(900000+token), "愤怒的买家", fmt.Sprintf("收到的是假货，要求退款！#c%d", token), time.Now(), fmt.Sprintf("LATCRISIS%011d", token))
		frame := loopback.BilibiliFrame(loopback.BilibiliPushPlain, cmd)
		mu.Lock()
		pushed[token] = time.Now()
		mu.Unlock()
		if room.PushRaw(frame) != 1 {
			mu.Lock()
			failed++
			mu.Unlock()
		}
	}
	t.Stop()
	storedRate := (loadCounter(d, "lookout_store_items_written_total") - storedFrom) / time.Since(measureFrom).Seconds()
	// Let the last crises through the pipeline before stopping.
	time.Sleep(2*time.Second + max(evalInterval, time.Second))
	stopGen()
	gen.Wait()

	mu.Lock()
	defer mu.Unlock()
	// A frame the server could not write within its 5 s deadline means
	// the daemon stopped reading for that long: saturation, reported as a
	// figure rather than a failure (a lost crisis shows as alerts < crises).
	res := latResult{undelivered: failed, injected: injected, rate: float64(bgSent) / bgEnd.Sub(bgStart).Seconds(), stored: storedRate}
	seen := map[int]bool{}
	for _, m := range hook.Messages() {
		var p struct {
			Events []struct {
				State   string    `json:"state"`
				At      time.Time `json:"at"`
				Samples []struct {
					Text string `json:"text"`
				} `json:"samples"`
			} `json:"events"`
		}
		if err := json.Unmarshal(m.Body, &p); err != nil {
			b.Fatalf("webhook body: %v", err)
		}
		for _, ev := range p.Events {
			if ev.State != "firing" {
				continue
			}
			// The tipping item is the latest crisis pushed among the
			// samples (one crisis per room per window).
			best, bestAt := -1, time.Time{}
			for _, s := range ev.Samples {
				if mm := latTokenRe.FindStringSubmatch(s.Text); mm != nil {
					var tok int
					fmt.Sscan(mm[1], &tok)
					if at, ok := pushed[tok]; ok && at.After(bestAt) {
						best, bestAt = tok, at
					}
				}
			}
			if best < 0 || seen[best] {
				continue
			}
			seen[best] = true
			res.total = append(res.total, m.At.Sub(bestAt))
			res.toEval = append(res.toEval, ev.At.Sub(bestAt))
			res.toHook = append(res.toHook, m.At.Sub(ev.At))
		}
	}
	if os.Getenv("LOOKOUT_LAT_DEBUG") != "" {
		for _, g := range []prometheus.Gatherer{d.Registry(), engineReg} {
			mfs, _ := g.Gather()
			for _, mf := range mfs {
				n := mf.GetName()
				if !strings.HasPrefix(n, "lookout_alert_evaluation") && !strings.HasPrefix(n, "lookout_store_batch") &&
					!strings.HasPrefix(n, "lookout_pipeline_backpressure") && !strings.HasPrefix(n, "go_gc_duration") {
					continue
				}
				for _, m := range mf.GetMetric() {
					if h := m.GetHistogram(); h != nil {
						var bk []string
						for _, x := range h.GetBucket() {
							bk = append(bk, fmt.Sprintf("le%g:%d", x.GetUpperBound(), x.GetCumulativeCount()))
						}
						b.Logf("%s n=%d sum=%.3fs %s", n, h.GetSampleCount(), h.GetSampleSum(), strings.Join(bk, " "))
					} else if sm := m.GetSummary(); sm != nil {
						b.Logf("%s %v", n, sm.GetQuantile())
					} else {
						b.Logf("%s %v %g", n, m.GetLabel(), m.GetCounter().GetValue())
					}
				}
			}
		}
		for tok := range injected {
			if !seen[tok] {
				b.Logf("crisis #c%d in room %d pushed at %s: no firing alert matched", tok, tok%latRooms, pushed[tok].Format("15:04:05.000"))
			}
		}
		for _, m := range hook.Messages() {
			var p struct {
				Events []struct {
					State, Room string
					At          time.Time
					Samples     []struct{ Text string }
				}
			}
			json.Unmarshal(m.Body, &p)
			for _, ev := range p.Events {
				var txt []string
				for _, s := range ev.Samples {
					txt = append(txt, s.Text)
				}
				b.Logf("hook %s: %s room %s at %s samples %q", m.At.Format("15:04:05.000"), ev.State, ev.Room, ev.At.Format("15:04:05.000"), txt)
			}
		}
	}
	return res
}

// latTemplates are calm danmaku with a placeholder id, stamped at now.
func latTemplates(now time.Time) [][]byte {
	calm := []string{"主播好棒，已下单", "这个颜色好看吗", "666666", "求链接求链接", "质量很好，回购了",
		"hello from Shanghai", "this looks great", "上车上车", "姐妹们冲啊", "这个价格太值了"}
	out := make([][]byte, 0, len(calm))
	for i, text := range calm {
		out = append(out, loopback.BilibiliDanmaku(int64(200000+i), loadNames[i%len(loadNames)], text, now, latIDPlaceholder))
	}
	return out
}

// latPct is the p-th percentile in milliseconds (nearest rank).
func latPct(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i].Microseconds()) / 1000
}
