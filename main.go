// Command lookout watches posts, comments and live-room chat, scores what
// people say and alerts the team when a crisis starts or a KPI falls off a
// cliff. Everything it sees is kept in one SQLite file.
//
// This file only parses the command line; the work lives in the packages.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"lookout/alerts"
	"lookout/config"
	"lookout/daemon"
	"lookout/internal/demo"
	"lookout/report"
	"lookout/sentiment"
	"lookout/store"
	"lookout/store/pg"
	"lookout/transport"
)

const usage = `lookout — social-media and live-room monitoring (舆情监控 + 直播监控)

Usage:
  lookout run [-c config.yaml] [--ui ADDR]     run the daemon (SIGINT/SIGTERM: flush and exit; SIGHUP: reload)
  lookout run --role collect|process [--partitions 0-7] [--id NAME]
                                                split over NATS JetStream (transport.kind nats)
  lookout reload [-c config.yaml] [--url U]    make the running daemon apply its changed config file
  lookout demo [--duration 40s] [--db F] [--ui 127.0.0.1:8080]
                                                watch it catch a crisis in a loopback live room
  lookout query [--db F|postgres://…|postgres] [-c CONFIG] [--format table|csv|json] [--timeout 30s] [--explain] "SELECT …"
                                                ask the database (opened read-only)
  lookout search TEXT [--db F] [--room R] [--source S] [--platform P] [--sentiment neg] [--since 1h]
                 [--limit N] [--format table|json] [--timeout 30s]
                                                find items by their text, newest first (read-only;
                                                needs store.search on)
  lookout check-config [-c config.yaml]        validate a config (errors name field and line)
  lookout status [--db F] [-c CONFIG]          health of every source; with -c, the NATS partitions
  lookout try SOURCE_ID [-c config.yaml] [--format table|jsonl] [--for 15s]
  lookout try --kind rss|html|json_api URL [--spec YAML]
                                                fetch a source once, print its items, store nothing
  lookout report [--db F] [--room R] [--from T] [--to T] [--format html|md|json] [--tz Z]
                                                post-live review per room (default: last 24 h, HTML)
  lookout sentiment score [--format jsonl]     score stdin, one text per line
  lookout sentiment eval [--format json] FILE… accuracy on labelled CSV/TSV files
  lookout backtest --input FILE.csv --format nab
                                                anomaly scores for a NAB-format series
  lookout backtest -c config.yaml --db F [--from T] [--to T]
                                                replay stored items through a config's rules
  lookout backtest [-c config.yaml] --scenario NAME|all|list [--format text|json]
                                                scripted live rooms (calm, crisis, audience loss)
                                                through a config's rules, against paging targets
  lookout silence add|list|expire …            mute alerts matching labels for a while
  lookout ack [--db F] [--by WHO] [--comment C] ALERT_ID…
                                                acknowledge alerts (as the dashboard's button does)
  lookout test-alert -c config.yaml --receiver R
                                                send a sample alert to one receiver
  lookout loadgen [--rooms N --rate R --duration D --terms --format json] [--transport nats --processors N] [--ui] [--watch N]
                                               drive loopback rooms into the real daemon; report rate, loss, latency, RSS
  lookout version [--format text|json]         version, commit and Go toolchain of this binary
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	signals := stopSignals
	if cmd == "run" {
		signals = runStopSignals
	}
	ctx, stop := signal.NotifyContext(context.Background(), signals...)
	defer stop()
	var err error
	switch cmd {
	case "run":
		err = cmdRun(ctx, args)
	case "reload":
		err = cmdReload(ctx, args)
	case "demo":
		err = cmdDemo(ctx, args)
	case "query":
		err = cmdQuery(ctx, args)
	case "search":
		err = cmdSearch(ctx, args)
	case "check-config":
		err = cmdCheckConfig(args)
	case "status":
		err = cmdStatus(ctx, args)
	case "try":
		err = cmdTry(ctx, args)
	case "report":
		err = cmdReport(ctx, args)
	case "sentiment":
		err = cmdSentiment(args)
	case "backtest":
		err = cmdBacktest(ctx, args)
	case "silence":
		err = cmdSilence(ctx, args)
	case "ack":
		err = cmdAck(ctx, args)
	case "test-alert":
		err = cmdTestAlert(ctx, args)
	case "loadgen":
		err = cmdLoadgen(ctx, args)
	case "version", "--version", "-v":
		err = cmdVersion(args)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "lookout: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		// One prefix: packages that already name the command in their
		// errors ("query: …", "demo: …") are not named twice.
		fmt.Fprintln(os.Stderr, "lookout "+cmd+": "+strings.TrimPrefix(err.Error(), cmd+": "))
		os.Exit(1)
	}
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("lookout "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parse parses flags that may come before, between or after the
// positional arguments (lookout query "SELECT …" --format json) and
// returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, o)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json")
}

func cmdRun(ctx context.Context, args []string) error {
	// From the start, so that a SIGHUP while the daemon starts does not
	// kill it (see reload_cli.go for every signal).
	sigs := notifyRunSignals()
	defer signal.Stop(sigs)
	signal.Ignore(syscall.SIGPIPE)
	fs := newFlags("run")
	cfgPath := fs.String("c", "config.yaml", "config file")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	uiAddr := fs.String("ui", "", "serve the live dashboard on this address (overrides ui.listen), e.g. 127.0.0.1:8080")
	role := fs.String("role", "all", "all, collect or process (collect and process need transport.kind nats)")
	parts := fs.String("partitions", "", "process role: consume these partitions only, e.g. 0-7,12 (default: share all with the other processors)")
	procID := fs.String("id", "", "process role: this processor's name among the others (default hostname-pid)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the daemon's whole run to this file")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	log, err := newLogger(*level, *format)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if missing := cfg.MissingSecrets(); len(missing) > 0 {
		return fmt.Errorf("%s", strings.Join(missing, "\n"))
	}
	if err := cfg.ValidRole(*role); err != nil {
		return err
	}
	var partitions []int
	if *role == daemon.RoleProcess && *parts != "" {
		if partitions, err = transport.ParsePartitions(*parts, cfg.Transport.NATS.Partitions); err != nil {
			return fmt.Errorf("--partitions: %w", err)
		}
	}
	d, err := daemon.New(ctx, daemon.Options{Config: cfg, Log: log, Version: buildVersion(), UIListen: *uiAddr,
		Role: *role, Partitions: partitions, ProcessorID: *procID})
	if err != nil {
		return err
	}
	ctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go runSignals(ctx, sigs, d, log, stopRun)
	log.Info("lookout running", "version", buildVersion(), "config", *cfgPath, "db", cfg.Store.Path, "sources", len(cfg.Sources), "rules", len(cfg.Rules))
	return d.Run(ctx)
}

func cmdDemo(ctx context.Context, args []string) error {
	fs := newFlags("demo")
	dur := fs.Duration("duration", 40*time.Second, "length of the show")
	db := fs.String("db", "lookout-demo.db", "database file to write")
	level := fs.String("log-level", "warn", "daemon log level")
	uiAddr := fs.String("ui", "", "serve the live dashboard on this address while the show runs, e.g. 127.0.0.1:8080")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	log, err := newLogger(*level, "text")
	if err != nil {
		return err
	}
	return demo.Run(ctx, demo.Options{Duration: *dur, DBPath: *db, Out: os.Stdout, Log: log, UIListen: *uiAddr})
}

func cmdQuery(ctx context.Context, args []string) error {
	fs := newFlags("query")
	db := fs.String("db", "lookout.db", "database file, or postgres://… (a PostgreSQL store; \"postgres\" alone: the DSN in $"+pgDSNEnv+")")
	format := fs.String("format", "table", "table, csv or json")
	timeout := fs.Duration("timeout", store.DefaultQueryTimeout, "interrupt the statement after this long (0: no limit)")
	explain := fs.Bool("explain", false, "show the query plan instead of running the statement")
	cfgPath := fs.String("c", "", "config file: with store.driver postgres, query its shared store (DSN from store.dsn_env); otherwise its store.path")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New(`give exactly one SQL statement, quoted: lookout query "SELECT …"`)
	}
	opts := store.QueryOptions{Timeout: *timeout, Explain: *explain}
	if *timeout == 0 {
		opts.Timeout = -1
	}
	dbName, err := resolveDB(*db)
	if err != nil {
		return err
	}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		dbName = cfg.Store.Path
		if cfg.Store.Postgres() {
			if dbName, err = cfg.Store.PostgresDSN(); err != nil {
				return err
			}
		}
	}
	return daemon.Query(ctx, dbName, pos[0], *format, opts, os.Stdout)
}

// resolveDB turns --db postgres into the DSN in $LOOKOUT_POSTGRES_DSN: a
// DSN holds a password, which belongs in the environment, not on the
// command line where other users see it. Anything else is returned as is.
func resolveDB(db string) (string, error) {
	if db != "postgres" {
		return db, nil
	}
	dsn := os.Getenv(pgDSNEnv)
	if dsn == "" {
		return "", fmt.Errorf("--db postgres: $%s is not set (postgres://user:password@host:5432/lookout)", pgDSNEnv)
	}
	if !pg.IsDSN(dsn) {
		return "", fmt.Errorf("$%s must be a postgres:// URL", pgDSNEnv)
	}
	return dsn, nil
}

// pgDSNEnv is the environment variable `lookout query --db postgres`
// reads the PostgreSQL DSN from.
const pgDSNEnv = "LOOKOUT_POSTGRES_DSN"

func cmdSearch(ctx context.Context, args []string) error {
	fs := newFlags("search")
	db := fs.String("db", "lookout.db", "database file")
	room := fs.String("room", "", "only this room, channel, feed or topic")
	source := fs.String("source", "", "only this source id")
	platform := fs.String("platform", "", "only this platform (bilibili, douyin, …)")
	sent := fs.String("sentiment", "", "only positive, neutral or negative (pos, neu, neg)")
	since := fs.String("since", "", "only items from this long ago (1h, 7d) or this time (RFC 3339) on")
	limit := fs.Int("limit", 50, "most rows, newest first")
	format := fs.String("format", "table", "table, csv or json")
	timeout := fs.Duration("timeout", store.DefaultQueryTimeout, "interrupt the search after this long (0: no limit)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New(`give the text to look for: lookout search 退款`)
	}
	opts := store.SearchOptions{Text: strings.Join(pos, " "), Room: *room, Source: *source, Platform: *platform,
		Sentiment: *sent, Limit: *limit, Timeout: *timeout}
	if *timeout == 0 {
		opts.Timeout = -1
	}
	if *since != "" {
		if d, derr := config.ParseDuration(*since); derr == nil {
			opts.Since = time.Now().Add(-d)
		} else if t, terr := time.Parse(time.RFC3339, *since); terr == nil {
			opts.Since = t
		} else {
			return fmt.Errorf("--since %q: want a duration (1h, 7d) or an RFC 3339 time", *since)
		}
	}
	out, err := daemon.NewRowWriter(*format, os.Stdout)
	if err != nil {
		return err
	}
	if err := store.Search(ctx, *db, opts, out); err != nil {
		return err
	}
	return out.End()
}

func cmdCheckConfig(args []string) error {
	fs := newFlags("check-config")
	cfgPath := fs.String("c", "config.yaml", "config file")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	text, err := os.ReadFile(*cfgPath)
	if err != nil {
		return err
	}
	// Secrets usually live only where the daemon runs. Unset ones are
	// reported and replaced by a placeholder so the rest can be checked.
	for _, v := range config.ReferencedEnv(text) {
		if os.Getenv(v) == "" {
			fmt.Fprintf(os.Stderr, "warning: environment variable %s is not set; a placeholder stands in for it in this check\n", v)
			os.Setenv(v, config.CheckPlaceholder)
		}
	}
	cfg, err := config.Parse(text, *cfgPath)
	if err != nil {
		return err
	}
	if err := daemon.Check(cfg); err != nil {
		return err
	}
	if w := cfg.HTTP.ListenWarning(); w != "" {
		fmt.Fprintln(os.Stderr, "warning: "+w)
	}
	fmt.Printf("%s: ok (%d sources, %d keyword groups, %d rules, %d receivers)\n", *cfgPath, len(cfg.Sources), len(cfg.Keywords), len(cfg.Rules), len(cfg.Receivers))
	return nil
}

func cmdStatus(ctx context.Context, args []string) error {
	fs := newFlags("status")
	db := fs.String("db", "lookout.db", "database file")
	format := fs.String("format", "table", "table, csv or json")
	cfgPath := fs.String("c", "", "with transport.kind nats: show the stream's partitions (owner, lag, unacknowledged, redelivered) instead")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		return daemon.Partitions(ctx, cfg, *format, os.Stdout)
	}
	return daemon.Query(ctx, *db, daemon.StatusQuery, *format, store.QueryOptions{}, os.Stdout)
}

func cmdReport(ctx context.Context, args []string) error {
	fs := newFlags("report")
	db := fs.String("db", "lookout.db", "database file (opened read-only)")
	room := fs.String("room", "", "only this room (room id or source id); default every room")
	from := fs.String("from", "-24h", "start (RFC 3339, or -24h style: that long ago)")
	to := fs.String("to", "", "end (default now)")
	format := fs.String("format", "html", "html, md or json")
	tz := fs.String("tz", "Local", "time zone for the times shown (IANA name, e.g. Asia/Shanghai)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("--tz: %w", err)
	}
	now := time.Now()
	fromT, toT, err := parseWindow(*from, *to, now)
	if err != nil {
		return err
	}
	r, err := report.Build(ctx, *db, report.Options{Room: *room, From: fromT, To: toT, Location: loc, Now: now})
	if err != nil {
		return err
	}
	return report.Render(os.Stdout, r, *format)
}

// subcommandHelp prints the usage lines of a command with subcommands
// ("lookout silence --help") and reports whether it was asked for.
func subcommandHelp(cmd string, args []string) bool {
	if len(args) == 0 || (args[0] != "-h" && args[0] != "--help" && args[0] != "help") {
		return false
	}
	for _, l := range strings.Split(usage, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "lookout "+cmd+" ") {
			fmt.Println(l)
		}
	}
	return true
}

func cmdSentiment(args []string) error {
	if subcommandHelp("sentiment", args) {
		return nil
	}
	if len(args) == 0 {
		return errors.New("want score or eval")
	}
	sub, args := args[0], args[1:]
	fs := newFlags("sentiment " + sub)
	format := fs.String("format", map[string]string{"score": "jsonl", "eval": "json"}[sub], "output format")
	threshold := fs.Float64("neutral-threshold", 0, "probability below which the verdict is neutral (0: model default)")
	cfgPath := fs.String("c", "", "config file whose keyword groups to match (optional)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	opts := sentiment.Options{NeutralThreshold: *threshold, Terms: sub == "score"}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		opts.Groups = cfg.Keywords
	}
	c, err := sentiment.New(opts)
	if err != nil {
		return err
	}
	switch sub {
	case "score":
		if *format != "jsonl" {
			return errors.New("--format: only jsonl is supported")
		}
		return scoreLines(c, os.Stdin, os.Stdout)
	case "eval":
		if len(pos) == 0 {
			return errors.New("give one or more labelled CSV/TSV files")
		}
		if *format != "json" {
			return errors.New("--format: only json is supported")
		}
		enc := json.NewEncoder(os.Stdout)
		for _, f := range pos {
			res, err := sentiment.EvalFile(c, f)
			if err != nil {
				return err
			}
			if err := enc.Encode(res); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown sentiment command %q (want score or eval)", sub)
}

func cmdBacktest(ctx context.Context, args []string) error {
	fs := newFlags("backtest")
	input := fs.String("input", "", "NAB-format CSV (timestamp,value)")
	format := fs.String("format", "nab", "output format: nab for --input; text or json for --scenario")
	rule := fs.String("rule", "", "anomaly rule from -c to use instead of the default")
	cfgPath := fs.String("c", "", "config whose rules to replay")
	scen := fs.String("scenario", "", "run scripted live-room scenarios through -c's rules: NAME[,NAME…], all, or list")
	seeds := fs.Int("seeds", 1, "with --scenario: play each scenario with this many seeds (other messages, same script)")
	db := fs.String("db", "lookout.db", "database to replay (with -c)")
	from := fs.String("from", "", "replay from (RFC 3339 or 24h ago style: -24h)")
	to := fs.String("to", "", "replay until (default now)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if *scen != "" {
		if *cfgPath == "" {
			*cfgPath = "config.yaml"
		}
		return backtestScenarios(ctx, *scen, *cfgPath, *format, *seeds, os.Stdout)
	}
	if *input != "" {
		if *format != "nab" {
			return errors.New("--format: only nab is supported for --input")
		}
		f, err := os.Open(*input)
		if err != nil {
			return err
		}
		defer f.Close()
		opts := alerts.BacktestOptions{}
		if *rule != "" {
			if *cfgPath == "" {
				return errors.New("--rule needs -c config.yaml to find the rule in")
			}
			cfg, err := config.Load(*cfgPath)
			if err != nil {
				return err
			}
			for i := range cfg.Rules {
				if cfg.Rules[i].Name == *rule {
					opts.Rule = &cfg.Rules[i]
				}
			}
			if opts.Rule == nil {
				return fmt.Errorf("--rule: no rule named %q in %s", *rule, *cfgPath)
			}
		}
		return alerts.BacktestNAB(f, os.Stdout, opts)
	}
	if *cfgPath == "" {
		return errors.New("give --input FILE.csv, or -c config.yaml --db F to replay stored items")
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	fromT, toT, err := parseWindow(*from, *to, time.Now())
	if err != nil {
		return err
	}
	return daemon.Backtest(ctx, cfg, *db, fromT, toT, os.Stdout)
}

func parseWindow(from, to string, now time.Time) (time.Time, time.Time, error) {
	when := func(s string, def time.Time) (time.Time, error) {
		if s == "" {
			return def, nil
		}
		if strings.HasPrefix(s, "-") {
			d, err := config.ParseDuration(s[1:])
			if err != nil {
				return time.Time{}, err
			}
			return now.Add(-d), nil
		}
		return time.Parse(time.RFC3339, s)
	}
	f, err := when(from, now.Add(-24*time.Hour))
	if err != nil {
		return f, f, fmt.Errorf("--from: %w", err)
	}
	t, err := when(to, now)
	if err != nil {
		return f, t, fmt.Errorf("--to: %w", err)
	}
	return f, t, nil
}

func cmdSilence(ctx context.Context, args []string) error {
	if subcommandHelp("silence", args) {
		return nil
	}
	if len(args) == 0 {
		return errors.New("want add, list or expire")
	}
	sub, args := args[0], args[1:]
	fs := newFlags("silence " + sub)
	db := fs.String("db", "lookout.db", "database file, or postgres://… or postgres (the processors' shared store; DSN from $"+pgDSNEnv+")")
	dur := fs.Duration("for", 2*time.Hour, "add: how long the silence lasts")
	comment := fs.String("comment", "", "add: why")
	by := fs.String("by", os.Getenv("USER"), "add: who")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	dbName, err := resolveDB(*db)
	if err != nil {
		return err
	}
	return daemon.Silence(ctx, dbName, sub, pos, *dur, *comment, *by, os.Stdout)
}

func cmdAck(ctx context.Context, args []string) error {
	fs := newFlags("ack")
	db := fs.String("db", "lookout.db", "database file")
	comment := fs.String("comment", "", "what is being done about it")
	by := fs.String("by", os.Getenv("USER"), "who")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	return daemon.Ack(ctx, *db, pos, *by, *comment, os.Stdout)
}

func cmdTestAlert(ctx context.Context, args []string) error {
	fs := newFlags("test-alert")
	cfgPath := fs.String("c", "config.yaml", "config file")
	receiver := fs.String("receiver", "", "receiver name")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if *receiver == "" {
		return errors.New("--receiver is required")
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	return daemon.TestAlert(ctx, cfg, *receiver, os.Stdout)
}

// startCPUProfile writes a CPU profile to path until stop is called (the
// --cpuprofile of run and loadgen); with path empty it does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
