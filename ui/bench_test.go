package ui_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"lookout/item"
	"lookout/store"
	"lookout/ui"
)

// BenchmarkIngestWatched measures what a browser watching a busy room costs
// the ingest path: each op stores a batch of 512 chat lines of one room
// through the store's writer path, with nobody watching and with the
// room's live stream open (coalesced updates every 500 ms, read by an SSE
// client). Compare items/s of the two, and the process's CPU time per
// item (less disturbed than wall time by other work on the machine).
func BenchmarkIngestWatched(b *testing.B) {
	for _, watched := range []bool{false, true} {
		name := "unwatched"
		if watched {
			name = "watched"
		}
		b.Run(name, func(b *testing.B) {
			st, fill := ingestSetup(b, watched)
			batch := make([]item.Item, 512)
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				fill(batch)
				if _, err := st.WriteItems(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "items/s")
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N*len(batch)), "cpu-µs/item")
		})
	}
}

// BenchmarkIngestWatchedPaced is the same room at the dashboard target's
// 5k msgs/s: each op stores a batch of 500 chat lines and waits for the
// next 100 ms tick. Ingest keeps pace either way, so what the dashboard
// costs shows as the process's CPU time per stored item (user + system,
// every goroutine: the writer, the stream, the SSE client).
func BenchmarkIngestWatchedPaced(b *testing.B) {
	for _, watched := range []bool{false, true} {
		name := "unwatched"
		if watched {
			name = "watched"
		}
		b.Run(name, func(b *testing.B) {
			st, fill := ingestSetup(b, watched)
			batch := make([]item.Item, 500)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				<-tick.C
				fill(batch)
				if _, err := st.WriteItems(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "items/s")
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N*len(batch)), "cpu-µs/item")
		})
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ingestSetup opens a fresh store and, when watched, the dashboard with
// room live/100's stream open and read by an SSE client. fill makes the
// next batch of that room's chat lines.
func ingestSetup(b *testing.B, watched bool) (*store.Store, func([]item.Item)) {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "ingest.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	st.SetKeepRaw(false)
	if watched {
		srv, err := ui.New(ctx, ui.Options{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		b.Cleanup(func() {
			cancel()
			hs.CloseClientConnections()
			hs.Close()
			srv.Close()
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/api/room/stream?source=live&room=100", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { resp.Body.Close() })
		go func() {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
			}
		}()
	}
	seq := 0
	start := time.Now()
	return st, func(batch []item.Item) {
		for i := range batch {
			seq++
			batch[i] = item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindChat, ID: strconv.Itoa(seq),
				Author: "u" + strconv.Itoa(seq%3000), Text: "主播好美，面霜好用", TS: start.Add(time.Duration(seq) * 200 * time.Microsecond),
				Score: item.Score{Scored: true, Label: item.Positive, Value: 0.7, Prob: 0.8, Lang: "zh", Terms: []string{"主播", "面霜"}}}
		}
	}
}

// BenchmarkWatchedIdle is what the dashboard costs with nothing written: each
// op waits 100 ms, with the room's stream open or not; the process's CPU
// time per second is the open stream's fixed cost (its ticks, the SSE
// client), the part of BenchmarkIngestWatchedPaced's difference that does
// not grow with the rate.
func BenchmarkWatchedIdle(b *testing.B) {
	for _, watched := range []bool{false, true} {
		name := "unwatched"
		if watched {
			name = "watched"
		}
		b.Run(name, func(b *testing.B) {
			ingestSetup(b, watched)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				<-tick.C
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/b.Elapsed().Seconds(), "cpu-µs/s")
		})
	}
}
