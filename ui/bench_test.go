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
	"testing"
	"time"

	"lookout/item"
	"lookout/store"
	"lookout/ui"
)

// BenchmarkIngestWatched measures what a browser watching a busy room costs
// the ingest path: each op stores a batch of 512 chat lines of one room
// through the store's writer path, with nobody watching and with the
// room's live stream open (one poller reading the new rows every 500 ms,
// coalesced updates read by an SSE client). Compare items/s of the two.
func BenchmarkIngestWatched(b *testing.B) {
	for _, watched := range []bool{false, true} {
		name := "unwatched"
		if watched {
			name = "watched"
		}
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := store.Open(ctx, filepath.Join(b.TempDir(), "ingest.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			st.SetKeepRaw(false)
			if watched {
				srv, err := ui.New(ctx, ui.Options{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				hs := httptest.NewServer(srv.Handler())
				defer func() {
					cancel()
					hs.CloseClientConnections()
					hs.Close()
					srv.Close()
				}()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/api/room/stream?source=live&room=100", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				defer resp.Body.Close()
				go func() {
					sc := bufio.NewScanner(resp.Body)
					sc.Buffer(make([]byte, 1<<20), 1<<20)
					for sc.Scan() {
					}
				}()
			}
			batch := make([]item.Item, 512)
			seq := 0
			start := time.Now()
			b.ResetTimer()
			for b.Loop() {
				for i := range batch {
					seq++
					batch[i] = item.Item{Source: "live", Platform: "bilibili", Room: "100", Kind: item.KindChat, ID: strconv.Itoa(seq),
						Author: "u" + strconv.Itoa(seq%3000), Text: "主播好美，面霜好用", TS: start.Add(time.Duration(seq) * 200 * time.Microsecond),
						Score: item.Score{Scored: true, Label: item.Positive, Value: 0.7, Prob: 0.8, Lang: "zh", Terms: []string{"主播", "面霜"}}}
				}
				if _, err := st.WriteItems(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "items/s")
		})
	}
}
