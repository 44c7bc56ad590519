package bilibili

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"lookout/internal/loopback"
	"lookout/item"
)

// biliBenchFrames builds WebSocket messages the way a busy room sends them:
// each one compressed packet holding a batch of realistic DANMU_MSG
// (~1.5 KB of JSON each, as the web server sends) with the odd metric.
func biliBenchFrames(c loopback.BilibiliCompression, frames, perFrame int) (msgs [][]byte, chats int) {
	texts := []string{"主播好", "这个多少钱", "已下单，期待发货", "假货吧？我要退款", "客服不理人", "哈哈哈哈哈哈", "666", "物流太慢了，三天了还没发", "good stream", "链接在哪里"}
	ts := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	for f := range frames {
		var cmds [][]byte
		for i := range perFrame {
			n := f*perFrame + i
			cmds = append(cmds, loopback.BilibiliDanmaku(int64(100000+n%5000), fmt.Sprintf("观众%d", n%5000), texts[n%len(texts)],
				ts.Add(time.Duration(n)*time.Millisecond), fmt.Sprintf("%016x", n*2654435761)))
			chats++
		}
		if f%4 == 0 {
			cmds = append(cmds, loopback.BilibiliOnlineRankCount(10000+f))
		}
		msgs = append(msgs, loopback.BilibiliFrame(c, cmds...))
	}
	return msgs, chats
}

func BenchmarkBilibiliDecode(b *testing.B) {
	for _, tc := range []struct {
		name string
		c    loopback.BilibiliCompression
	}{{"brotli", loopback.BilibiliPushBrotli}, {"zlib", loopback.BilibiliPushZlib}} {
		msgs, chats := biliBenchFrames(tc.c, 64, 20)
		var wire, inflated int
		for _, m := range msgs {
			wire += len(m)
			var d Decoder
			d.Decode(m, func(p Packet) error { inflated += 16 + len(p.Body); return nil })
		}
		perMsg := float64(chats) / float64(len(msgs))

		// Frames only: split and decompress.
		b.Run(tc.name+"/frames", func(b *testing.B) {
			b.SetBytes(int64(inflated / len(msgs)))
			benchDecodeFrames(b, msgs, perMsg)
		})
		// What the collector does per message: frames + command → items.
		b.Run(tc.name+"/items", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(inflated / len(msgs)))
			var d Decoder
			var arena biliArena
			var items []item.Item
			now := time.Now()
			got := 0
			parse := func(p Packet) error {
				var err error
				items, _, _, err = biliParseCommand(items[:0], p.Body, "21452505", now, arena.copy)
				for i := range items {
					if items[i].Kind == item.KindChat {
						got++
					}
				}
				return err
			}
			for i := 0; b.Loop(); i++ {
				if err := d.Decode(msgs[i%len(msgs)], parse); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "msgs/s")
		})
		// Both cores, one decoder per connection as in the daemon.
		b.Run(tc.name+"/items-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var d Decoder
				var arena biliArena
				var items []item.Item
				now := time.Now()
				parse := func(p Packet) error {
					var err error
					items, _, _, err = biliParseCommand(items[:0], p.Body, "21452505", now, arena.copy)
					return err
				}
				for i := 0; pb.Next(); i++ {
					if err := d.Decode(msgs[i%len(msgs)], parse); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(perMsg*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Logf("%s: %d messages, %d chats, %.0f bytes/message on the wire, %.0f inflated", tc.name, len(msgs), chats,
			float64(wire)/float64(len(msgs)), float64(inflated)/float64(len(msgs)))
	}
}

// BenchmarkBilibiliDecodeParallel is the frame-decode figure: WebSocket
// messages of 20 realistic DANMU_MSG (~1.7 KB of JSON each) in one brotli
// packet, decompressed and parsed into items on every core (-cpu sets
// how many), one decoder per goroutine as one per connection in the
// daemon. msgs/s counts the chat items produced.
func BenchmarkBilibiliDecodeParallel(b *testing.B) {
	msgs, _ := biliBenchFrames(loopback.BilibiliPushBrotli, 64, 20)
	var chats atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var (
			d     Decoder
			arena biliArena
			items []item.Item
			got   int64
		)
		now := time.Now()
		parse := func(p Packet) error {
			if p.Op != OpMessage {
				return nil
			}
			var err error
			items, _, _, err = biliParseCommand(items[:0], p.Body, "21452505", now, arena.copy)
			for i := range items {
				if items[i].Kind == item.KindChat {
					got++
				}
			}
			return err
		}
		for i := 0; pb.Next(); i++ {
			if err := d.Decode(msgs[i%len(msgs)], parse); err != nil {
				b.Error(err)
				return
			}
		}
		chats.Add(got)
	})
	if chats.Load() == 0 {
		b.Fatal("no chat items decoded")
	}
	b.ReportMetric(float64(chats.Load())/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkBilibiliParseDanmaku is the JSON half alone: one realistic
// DANMU_MSG body to an item (Raw copied), no decompression.
func BenchmarkBilibiliParseDanmaku(b *testing.B) {
	body := loopback.BilibiliDanmaku(100123, "观众123", "物流太慢了，三天了还没发", time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC), "00000a1b2c3d4e5f")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var arena biliArena
	var items []item.Item
	now := time.Now()
	for b.Loop() {
		var err error
		items, _, _, err = biliParseCommand(items[:0], body, "21452505", now, arena.copy)
		if err != nil || len(items) != 1 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkBilibiliDecodeBusyFrame decodes the frames of a room at about
// 3,000 msgs/s: 150 DANMU_MSG in one brotli packet (some 250 KB inflated
// from 6–10 KB), split and decompressed, one decoder reused as on one
// connection.
func BenchmarkBilibiliDecodeBusyFrame(b *testing.B) {
	msgs, chats := biliBenchFrames(loopback.BilibiliPushBrotli, 16, 150)
	if benchDecodeFrames(b, msgs, float64(chats)/float64(len(msgs))) == 0 {
		b.Fatal("no packets decoded")
	}
}

// benchDecodeFrames splits and decompresses msgs in turn with one decoder,
// as one connection does, and reports msgs/s for perMsg chat messages a
// frame; it returns how many packets came out.
func benchDecodeFrames(b *testing.B, msgs [][]byte, perMsg float64) int {
	b.ReportAllocs()
	var d Decoder
	n := 0
	count := func(Packet) error { n++; return nil }
	for i := 0; b.Loop(); i++ {
		if err := d.Decode(msgs[i%len(msgs)], count); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perMsg*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	return n
}
