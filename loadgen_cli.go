package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"lookout/internal/loadgen"
)

// cmdLoadgen drives loopback live rooms into the real daemon and store
// and reports throughput, loss, latency and peak RSS.
func cmdLoadgen(ctx context.Context, args []string) error {
	fs := newFlags("loadgen")
	rooms := fs.Int("rooms", 10, "loopback Bilibili live rooms")
	rate := fs.Int("rate", 1000, "messages per second, all rooms together")
	dur := fs.Duration("duration", 10*time.Second, "how long to push")
	terms := fs.Bool("terms", false, "enable hot-term extraction")
	db := fs.String("db", "", "SQLite file (default: a temporary file, removed afterwards)")
	ceiling := fs.Bool("ceiling", false, "after the run, time plain batched inserts of the same items into the same schema and report the ratio")
	format := fs.String("format", "text", "output format: text or json")
	transport := fs.String("transport", "memory", "memory (one daemon, --role all) or nats (collectors here, publishing to an embedded NATS server; --processors process-role daemons as processes of their own, each with its own SQLite file)")
	processors := fs.Int("processors", 1, "with --transport nats: how many processor processes")
	partitions := fs.Int("partitions", 16, "with --transport nats: transport.nats.partitions")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("unknown --format %q (text or json)", *format)
	}
	if *transport != "memory" && *transport != "nats" {
		return fmt.Errorf("unknown --transport %q (memory or nats)", *transport)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	res, err := loadgen.Run(ctx, loadgen.Options{Rooms: *rooms, Rate: *rate, Duration: *dur, Terms: *terms, DBPath: *db, Ceiling: *ceiling,
		Transport: *transport, Processors: *processors, Partitions: *partitions, Exe: exe})
	if err != nil {
		return err
	}
	if *format == "json" {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	rss := "n/a"
	if res.RSSMB != nil {
		rss = fmt.Sprintf("%.0f MB", *res.RSSMB)
	}
	if res.CeilingRate > 0 {
		defer fmt.Printf("store ceiling %.0f items/s (run reached %.2f of it)\n", res.CeilingRate, res.CeilingRatio)
	}
	fmt.Printf("rooms %d  target %d msgs/s  achieved %.0f msgs/s\nsent %d  stored %d  lost %d\narrival→stored p50 %.1f ms  p99 %.1f ms\npeak RSS %s\nCPU %.1f s  (%.1f µs per stored message)\n",
		res.Rooms, res.TargetRate, res.AchievedRate, res.Sent, res.Stored, res.Lost, res.P50ms, res.P99ms, rss, res.CPUSeconds, res.CPUPerMsgUs)
	return nil
}
