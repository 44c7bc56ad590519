package daemon

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"lookout/config"
	"lookout/internal/loopback"
)

// TestBilibiliRawFollowsKeepRaw: with store.keep_raw on, each danmaku's
// command body is stored as its raw payload; with it off (where the
// collector skips copying the bodies) nothing lands in raw_payloads, and the
// items themselves are stored alike.
func TestBilibiliRawFollowsKeepRaw(t *testing.T) {
	for _, tc := range []struct {
		keep bool
		raw  int
	}{{true, 5}, {false, 0}} {
		t.Run("keep_raw="+strconv.FormatBool(tc.keep), func(t *testing.T) {
			room := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: 4242, Compression: loopback.BilibiliPushBrotli})
			defer room.Close()
			dbPath := t.TempDir() + "/raw.db"
			cfg, err := config.Parse(fmt.Appendf(nil, `store: { path: %q, flush_interval: 50ms, keep_raw: %t }
http: { listen: "off" }
sources:
  - { id: bili, kind: bilibili_live, room: 4242, api_base: %q, nav_base: %q, hosts: [%q] }
`, dbPath, tc.keep, room.URL(), room.URL(), room.WSURL()), "raw.yaml")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d, err := New(ctx, Options{Config: cfg, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			defer wcancel()
			if err := room.WaitConnected(wctx, 1); err != nil {
				t.Fatal(err)
			}
			var cmds [][]byte
			for i := range 5 {
				cmds = append(cmds, loopback.BilibiliDanmaku(int64(100+i), "viewer", "主播好棒", time.Now(), "raw"+strconv.Itoa(i)))
			}
			if room.PushRaw(loopback.BilibiliFrame(loopback.BilibiliPushBrotli, cmds...)) != 1 {
				t.Fatal("frame not delivered")
			}
			ro, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			var items int
			for deadline := time.Now().Add(20 * time.Second); items < 5 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				_ = ro.QueryRow(`SELECT count(*) FROM items WHERE kind='chat'`).Scan(&items)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if items != 5 {
				t.Fatalf("%d chat rows stored, want 5", items)
			}
			var raw int
			if err := ro.QueryRow(`SELECT count(*) FROM raw_payloads r JOIN items i ON i.id = r.item_id WHERE i.kind='chat'`).Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if raw != tc.raw {
				t.Errorf("%d raw payloads of chat rows, want %d", raw, tc.raw)
			}
		})
	}
}
