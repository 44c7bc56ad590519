package bilibili

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/internal/loopback"
	"lookout/item"
)

// BenchmarkBilibiliLiveFrame is the per-frame cost of a live room with
// one message per frame (a quiet room, or one of many rooms sharing a
// modest total rate): a loopback room pushes one brotli frame holding one
// DANMU_MSG over a real WebSocket, the real collector reads, decodes,
// parses and emits it, and the next frame goes out once the item has
// arrived, so every frame is its own read and its own wake-up. cpu-ns/frame
// is the process's user+system CPU per frame (the room's side included),
// which a loaded machine disturbs less than ns/op.
func BenchmarkBilibiliLiveFrame(b *testing.B) {
	srv := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{Compression: loopback.BilibiliPushBrotli})
	defer srv.Close()
	m := collectors.NewMetrics(nil)
	env := collectors.Env{
		HTTP:    httpx.NewClient(config.LimitsConfig{Default: config.HostLimit{Rate: 1000, Burst: 100}}, m.HTTP()),
		Metrics: m,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		DropRaw: true, // keep_raw: false, as the load runs
	}
	src, err := config.NewSourceConfig(fmt.Sprintf("id: live1\nkind: bilibili_live\napi_base: %s\nnav_base: %s\nroom: %d\nhosts: [%q]",
		srv.URL(), srv.URL(), srv.RoomID(), srv.WSURL()))
	if err != nil {
		b.Fatal(err)
	}
	c, err := registry().New(src, env)
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1)
	emit := func(ctx context.Context, it item.Item) error {
		if it.Kind == item.KindChat {
			got <- struct{}{}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, emit) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := srv.WaitConnected(wctx, 1); err != nil {
		b.Fatal(err)
	}
	texts := []string{"主播好", "这个多少钱", "已下单，期待发货", "假货吧？我要退款", "客服不理人", "物流太慢了，三天了还没发", "good stream"}
	ts := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	frames := make([][]byte, 256)
	for i := range frames {
		frames[i] = loopback.BilibiliFrame(loopback.BilibiliPushBrotli,
			loopback.BilibiliDanmaku(int64(100000+i), fmt.Sprintf("观众%d", i), texts[i%len(texts)], ts, fmt.Sprintf("%016x", i)))
	}
	cpu0 := benchCPU()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	timeout := time.NewTimer(time.Hour) // reset per frame: no allocation in the loop
	defer timeout.Stop()
	for b.Loop() {
		if srv.PushRaw(frames[i%len(frames)]) != 1 {
			b.Fatal("the collector is not connected")
		}
		i++
		timeout.Reset(10 * time.Second)
		select {
		case <-got:
		case <-timeout.C:
			b.Fatal("no item 10 s after its frame")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(benchCPU()-cpu0)/float64(i), "cpu-ns/frame")
}

// benchCPU is the process's user+system CPU time in nanoseconds.
func benchCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
