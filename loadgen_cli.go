package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
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
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run (rooms, daemon and store) to this file; with --transport nats, processor N's to this file with .proc-N appended")
	memprofile := fs.String("memprofile", "", "write a heap profile, taken when the last frame has been pushed, to this file")
	traceFile := fs.String("trace", "", "write a Go execution trace of --trace-window from the middle of the push to this file (read it with go tool trace)")
	traceWindow := fs.Duration("trace-window", 5*time.Second, "with --trace: how long to trace")
	transport := fs.String("transport", "memory", "memory (one daemon, --role all) or nats (collectors here, publishing to an embedded NATS server; --processors process-role daemons as processes of their own, each with its own SQLite file)")
	processors := fs.Int("processors", 1, "with --transport nats: how many processor processes")
	partitions := fs.Int("partitions", 16, "with --transport nats: transport.nats.partitions")
	batchWindow := fs.Duration("batch-window", 0, "with --transport nats: transport.nats.batch_window (0: its default)")
	natsDir := fs.String("nats-dir", "", "with --transport nats: directory under which the embedded NATS server keeps its files (default: next to the SQLite file)")
	storeKind := fs.String("store", "sqlite", "with --transport nats: sqlite (a file per processor) or postgres (one shared database, DSN from $"+pgDSNEnv+"; it must hold no items)")
	uiOn := fs.Bool("ui", false, "serve the live dashboard from the daemon under test on a free loopback port, as run --ui does")
	watch := fs.Int("watch", 0, "open the room page's live stream (history, then the SSE stream read to the end, as a browser does) on the N busiest rooms; implies --ui")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("unknown --format %q (text or json)", *format)
	}
	if *watch < 0 {
		return fmt.Errorf("--watch %d: want 0 or more rooms", *watch)
	}
	if (*uiOn || *watch > 0) && *transport == "nats" {
		return fmt.Errorf("--ui and --watch serve the dashboard of one all-role daemon: not with --transport nats")
	}
	if *transport != "memory" && *transport != "nats" {
		return fmt.Errorf("unknown --transport %q (memory or nats)", *transport)
	}
	var pgDSN string
	switch *storeKind {
	case "sqlite":
	case "postgres":
		if *transport != "nats" {
			return fmt.Errorf("--store postgres needs --transport nats (PostgreSQL is the processors' shared store)")
		}
		if pgDSN = os.Getenv(pgDSNEnv); pgDSN == "" {
			return fmt.Errorf("--store postgres: $%s is not set", pgDSNEnv)
		}
	default:
		return fmt.Errorf("unknown --store %q (sqlite or postgres)", *storeKind)
	}
	stopProfile, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	opts := loadgen.Options{Rooms: *rooms, Rate: *rate, Duration: *dur, Terms: *terms, DBPath: *db, Ceiling: *ceiling,
		Transport: *transport, Processors: *processors, Partitions: *partitions, PostgresDSN: pgDSN, ProcessorProfile: *cpuprofile, BatchWindow: *batchWindow, NATSDir: *natsDir,
		UI: *uiOn, Watch: *watch}
	if *transport == "nats" {
		// The processors run this binary with --role process.
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		opts.Exe = exe
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			return fmt.Errorf("memprofile: %w", err)
		}
		defer f.Close()
		opts.HeapProfile = f
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer f.Close()
		opts.Trace, opts.TraceWindow = f, *traceWindow
	}
	res, err := loadgen.Run(ctx, opts)
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
		defer func() {
			fmt.Printf("store ceiling, bare chat rows: %.0f items/s (run reached %.2f of it)\n", res.CeilingRate, res.CeilingRatio)
			if res.CeilingStoredRate > 0 {
				fmt.Printf("store ceiling, the rows this run stored: %.0f items/s (run reached %.2f of it)\n", res.CeilingStoredRate, res.CeilingStoredRatio)
			}
		}()
	}
	// With --transport nats the rules run in the processor processes,
	// which report no evaluation latency back.
	eval := "n/a (the rules run in the processors)"
	if *transport != "nats" {
		eval = fmt.Sprintf("p50 %.1f ms  p99 %.1f ms", res.EvalP50ms, res.EvalP99ms)
	}
	fmt.Printf("rooms %d  target %d msgs/s  achieved %.0f msgs/s\nsent %d  stored %d  lost %d\narrival→stored p50 %.1f ms  p99 %.1f ms\narrival→alert evaluated %s\nCPU %.1f µs/msg (%.1f s from start to stop, %.1f µs per stored message)\npeak RSS %s\n",
		res.Rooms, res.TargetRate, res.AchievedRate, res.Sent, res.Stored, res.Lost, res.P50ms, res.P99ms, eval, res.CPUPerMsgUS, res.CPUSeconds, res.CPUTotalPerMsgUS, rss)
	if res.StoreCPUSeconds > 0 {
		fmt.Printf("PostgreSQL server CPU %.1f s (%.1f µs per stored message)\n", res.StoreCPUSeconds, res.StoreCPUPerMsgUS)
	}
	if w := res.Watched; w != nil {
		fmt.Printf("dashboard: %d room streams, %d updates, %d of %d messages counted, %d feed messages, %.1f MB, %d reconnects, %d errors\n",
			w.Streams, w.Updates, w.SliceMessages, w.Sent, w.Messages, float64(w.Bytes)/1e6, w.Reconnects, w.Errors)
	} else if res.UI {
		fmt.Println("dashboard: served, no room stream open")
	}
	if len(res.StageFractions) > 0 {
		keys := slices.Sorted(maps.Keys(res.StageFractions))
		fmt.Print("fraction of the time:")
		for _, k := range keys {
			fmt.Printf("  %s %.2f", k, res.StageFractions[k])
		}
		fmt.Println()
	}
	if res.LateTicks > 0 {
		fmt.Printf("the frame encoder fell behind the pacing at %d ticks\n", res.LateTicks)
	}
	return nil
}
