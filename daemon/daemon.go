// Package daemon wires the one flow: collectors → classifier → (store,
// alert engine) → delivery. It owns every goroutine it starts and shuts them
// down in flow order, so that nothing a collector saw is lost on SIGTERM.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lookout/alerts"
	lcollectors "lookout/collectors"
	"lookout/collectors/all"
	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/internal/redact"
	"lookout/item"
	"lookout/sentiment"
	"lookout/store"
)

// Options configure a Daemon.
type Options struct {
	Config *config.Config
	Log    *slog.Logger
	// Out receives console alerts (default os.Stdout via the console notifier).
	Out io.Writer
	// Notifiers override receivers by name (tests).
	Notifiers map[string]alerts.Notifier
	// ShutdownGrace bounds how long draining may take after the collectors
	// stop (default 15s).
	ShutdownGrace time.Duration
	// ChannelSize is the capacity of each stage's input (default 4096).
	ChannelSize int
	// Clock for collectors (tests).
	Clock httpx.Clock
	// Version is this build's version, named in the default User-Agent.
	Version string
	// Collectors are the kinds sources may use (default all.Registry()).
	Collectors lcollectors.Registry
	// EvalInterval is how often alert rules are evaluated (default
	// 100ms): the wait for the next evaluation is part of every alert's
	// latency.
	EvalInterval time.Duration
	// Health sets when a source counts as broken (default: 3 failed
	// attempts in a row, 30 s failing or answering only with what cannot
	// be used, 5 dropped connections within a minute). Its Clock defaults
	// to Clock.
	Health lcollectors.HealthOptions
	// HealthEvery is how often every source's health is judged, its
	// gauges set and its source_broken sample emitted when one is due
	// (default 1s). A report that may change a source's state is judged
	// at once.
	HealthEvery time.Duration
	// HealthWriteEvery is how often source_health is written while no
	// source changes state (default 15s).
	HealthWriteEvery time.Duration
	// ProfileSaveEvery is how often what the alert engine learned about
	// each room is saved while running (default 1m; see profiles.go).
	ProfileSaveEvery time.Duration
	// EvalObserver watches the alert engine take in items and evaluate
	// (lookout loadgen measures arrival → alert evaluated with it).
	EvalObserver alerts.EvalObserver
	// UIListen serves the live dashboard there, overriding ui.listen
	// (`--ui ADDR`); see ui.go.
	UIListen string
	// ReviewEvery is how often stored stream ends are checked for a
	// missing review besides the check each end triggers (default 15s;
	// see reports.go).
	ReviewEvery time.Duration
	// Role is what this daemon runs (`run --role`): RoleAll (the default)
	// the whole flow in one process; RoleCollect only the collectors,
	// publishing to the NATS stream; RoleProcess only the rest, consuming
	// from it. See dist.go.
	Role string
	// Partitions are the partitions a RoleProcess daemon consumes. Without
	// them it shares the partitions with the other live processors through
	// leases in the NATS key-value bucket <stream>_owners.
	Partitions []int
	// ProcessorID names this processor among the others (default
	// hostname-pid).
	ProcessorID string
	// PartitionLease is how long a partition stays with a processor that
	// stopped renewing it: the take-over time after a crash. 0: the
	// config's transport.nats.partition_lease (default 6s).
	PartitionLease time.Duration
	// OutboxClaimTimeout is how long a notification a processor claimed
	// and never finished (it died mid-send) waits before another processor
	// sharing the store sends it again. 0: the config's
	// transport.nats.outbox_claim_timeout (default store.OutboxClaimTimeout).
	OutboxClaimTimeout time.Duration
}

// The roles a daemon can run.
const (
	RoleAll     = "all"
	RoleCollect = "collect"
	RoleProcess = "process"
)

// Daemon is a configured pipeline, ready to Run.
type Daemon struct {
	cfg   *config.Config
	log   *slog.Logger
	opts  Options
	reg   *prometheus.Registry
	store *store.Store
	// shared is where items, alerts, the outbox and room profiles go:
	// store itself, or the PostgreSQL store (store.driver postgres, the
	// process role), which several processors share.
	shared sharedStore
	state  *pipelineState // the collectors' view of source_state

	classifier atomic.Pointer[sentiment.Classifier] // a reload may swap it
	engine     *alerts.Engine
	sink       *deliverySink // the engine's sink: the current Delivery
	env        lcollectors.Env
	srcMu      sync.Mutex
	sources    []*sourceRunner // under srcMu: a reload changes it
	dedupe     *dedupeSet
	reload     *reloadState
	users      *redact.Users // privacy mode; nil when off
	healthWake chan struct{} // see wakeHealth

	metrics          *daemonMetrics
	collectorMetrics *lcollectors.Metrics
	uiAddr           atomic.Value // string: where the dashboard listens

	reportSettings atomic.Pointer[reportSettings] // a reload replaces it
	// roomBrands is brands.rooms: room id → {brand, brand_role}; a
	// reload replaces it.
	roomBrands    atomic.Pointer[map[string][2]string]
	reportMetrics *reportMetrics
	reviewWake    chan struct{} // see wakeReviews
	digestWake    chan struct{} // a reload changed the schedules
	role          string
	dist          *distState // the NATS transport; nil in RoleAll
}

type daemonMetrics struct {
	duplicates prometheus.Counter
	restarts   *prometheus.CounterVec
	stageWait  *prometheus.CounterVec
	// blocked is time spent waiting on a full channel to a stage (summed
	// over the goroutines sending: the collectors share the one to the
	// classifier); idle is time a stage waited for input.
	blocked        *prometheus.CounterVec
	classifierIdle waitClock
}

// waitClock adds up the time a goroutine waits; read at any moment it
// includes the wait in progress, so a rate over a short span is right even
// when a wait began long before it.
type waitClock struct {
	total atomic.Int64 // nanoseconds of waits that ended
	since atomic.Int64 // UnixNano when the wait in progress began; 0: none
}

func (c *waitClock) start(now time.Time) { c.since.Store(now.UnixNano()) }

func (c *waitClock) stop(now time.Time) {
	if s := c.since.Swap(0); s != 0 {
		c.total.Add(now.UnixNano() - s)
	}
}

func (c *waitClock) seconds() float64 {
	ns := c.total.Load()
	if s := c.since.Load(); s != 0 {
		ns += time.Now().UnixNano() - s
	}
	return float64(ns) / 1e9
}

// New opens the store and builds every stage. It does not start anything.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("daemon: no config")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = 15 * time.Second
	}
	if opts.ChannelSize == 0 {
		opts.ChannelSize = 4096
	}
	if opts.Clock == nil {
		opts.Clock = httpx.RealClock
	}
	if opts.Collectors == nil {
		opts.Collectors = all.Registry()
	}
	if opts.EvalInterval == 0 {
		opts.EvalInterval = 100 * time.Millisecond
	}
	if opts.HealthEvery == 0 {
		opts.HealthEvery = time.Second
	}
	if opts.HealthWriteEvery == 0 {
		opts.HealthWriteEvery = 15 * time.Second
	}
	if opts.ProfileSaveEvery == 0 {
		opts.ProfileSaveEvery = time.Minute
	}
	if opts.ReviewEvery == 0 {
		opts.ReviewEvery = 15 * time.Second
	}
	if opts.Health.Clock == nil {
		opts.Health.Clock = opts.Clock
	}
	if opts.Role == "" {
		opts.Role = RoleAll
	}
	if err := cfg.ValidRole(opts.Role); err != nil {
		return nil, err
	}
	var users *redact.Users
	if cfg.Privacy.On() {
		u, err := redact.NewUsers(cfg.Privacy.Salt.Value())
		if err != nil {
			return nil, err
		}
		users = u
		opts.Log = slog.New(users.LogHandler(opts.Log.Handler()))
	}
	d := &Daemon{cfg: cfg, log: opts.Log, opts: opts, reg: prometheus.NewRegistry(), healthWake: make(chan struct{}, 1), users: users, role: opts.Role}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.metrics = &daemonMetrics{
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_pipeline_duplicates_total", Help: "Items dropped as duplicates before scoring."}),
		restarts:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_source_restarts_total", Help: "Collector restarts after an error."}, []string{"source"}),
		stageWait:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_pipeline_backpressure_total", Help: "Times a stage found its downstream full."}, []string{"stage"}),
	}
	d.metrics.blocked = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_pipeline_blocked_seconds_total",
		Help: "Time spent waiting to hand items to a stage whose input was full (summed over the senders)."}, []string{"stage"})
	idle := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lookout_pipeline_idle_seconds_total",
		Help: "Time a stage waited for input.", ConstLabels: prometheus.Labels{"stage": "classifier"}},
		d.metrics.classifierIdle.seconds)
	d.reg.MustRegister(d.metrics.duplicates, d.metrics.restarts, d.metrics.stageWait, d.metrics.blocked, idle)
	d.reload = newReloadState(cfg, d.reg)
	d.reportSettings.Store(newReportSettings(cfg))
	d.roomBrands.Store(newRoomBrands(cfg))
	d.reportMetrics = newReportMetrics(d.reg)
	d.reviewWake = make(chan struct{}, 1)
	d.digestWake = make(chan struct{}, 1)

	st, err := store.Open(ctx, cfg.Store.Path, store.WithSearch(cfg.Store.Search))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.Store.Path, err)
	}
	d.store, d.shared = st, st
	st.SetKeepRaw(cfg.Store.KeepRawEnabled() && users == nil)
	fail := func(err error) (*Daemon, error) {
		if d.dist != nil {
			d.dist.conn.Close()
		}
		if d.shared != sharedStore(st) {
			d.shared.Close()
		}
		st.Close()
		return nil, err
	}
	if cfg.Store.Postgres() {
		ps, err := openPostgres(ctx, cfg, opts.Log)
		if err != nil {
			return fail(err)
		}
		ps.SetKeepRaw(cfg.Store.KeepRawEnabled() && users == nil)
		d.shared = ps
	}

	classifier, err := newClassifier(cfg)
	if err != nil {
		return fail(fmt.Errorf("classifier: %w", err))
	}
	d.classifier.Store(classifier)
	delivery, err := d.newDelivery(cfg)
	if err != nil {
		return fail(fmt.Errorf("alert delivery: %w", err))
	}
	d.sink = newDeliverySink(delivery)
	d.engine, err = alerts.NewEngine(cfg, d.sink, alerts.EngineOptions{
		Log:          opts.Log.With("stage", "alerts"),
		Registerer:   d.reg,
		EvalInterval: opts.EvalInterval,
		Observer:     opts.EvalObserver,
		// A save that falls a little short of the interval still takes
		// the detectors.
		DetectorSaveEvery: detectorSavesEvery*opts.ProfileSaveEvery - opts.ProfileSaveEvery/2,
	})
	if err != nil {
		return fail(fmt.Errorf("alert rules: %w", err))
	}
	open, err := d.shared.OpenAlerts(ctx)
	if err != nil {
		return fail(fmt.Errorf("open alerts of the last run: %w", err))
	}
	if n := d.engine.Adopt(open, time.Now()); n > 0 || len(open) > 0 {
		opts.Log.Info("took over the alerts the last run left open", "adopted", n, "rule_gone", len(open)-n)
	}
	if err := d.loadProfiles(ctx, time.Now()); err != nil {
		return fail(fmt.Errorf("room profiles of the last run: %w", err))
	}

	cm := lcollectors.NewMetrics(d.reg)
	d.collectorMetrics = cm
	var states stateBackend = st
	if d.role != RoleAll {
		if d.dist, err = newDistState(ctx, d); err != nil {
			return fail(err)
		}
		if d.role == RoleCollect {
			states = d.dist.states
		}
	}
	d.state = newPipelineState(states)
	d.env = lcollectors.Env{
		HTTP: httpx.NewClientWith(cfg.Limits, cm.HTTP(), httpx.Options{Version: opts.Version,
			Log: opts.Log.With("stage", "collector")}),
		State:   d.state,
		Log:     opts.Log.With("stage", "collector"),
		Metrics: cm,
		Clock:   opts.Clock,
		DropRaw: !(cfg.Store.KeepRawEnabled() && users == nil),
	}
	d.dedupe = newDedupeSet(200_000)
	// A source the last run left reported broken is reported again, or
	// reported recovered, so that its alert does not wait for a verdict.
	broken, err := st.BrokenSources(ctx)
	if err != nil {
		return fail(err)
	}
	for _, src := range cfg.Sources {
		if src.Disabled || d.role == RoleProcess {
			continue
		}
		r, err := d.newSourceRunner(ctx, src, broken[src.ID])
		if err != nil {
			return fail(err)
		}
		d.sources = append(d.sources, r)
	}
	return d, nil
}

// Store is the daemon's store (for the demo's summary).
func (d *Daemon) Store() *store.Store { return d.store }

// Registry exposes the daemon's metrics.
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// Run runs until ctx is cancelled, then drains: collectors stop, the
// classifier finishes what it holds, the writer flushes, the engine does a
// last evaluation and the outbox keeps whatever could not be sent.
func (d *Daemon) Run(ctx context.Context) error {
	if d.role == RoleCollect {
		return d.runCollect(ctx)
	}
	defer d.store.Close()
	if d.shared != sharedStore(d.store) {
		defer d.shared.Close()
	}
	if d.dist != nil {
		defer d.dist.conn.Close()
	}
	log := d.log

	// Stages downstream of the collectors get their own context: they must
	// keep running while the collectors drain, and are only cut off if the
	// drain exceeds the grace period.
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()

	raw := make(chan item.Item, d.opts.ChannelSize)
	// The store gets the deeper buffer: a slow disk should delay the
	// alert engine as late as possible, and only then push back on the
	// collectors. It carries runs of items (up to storeRun, as many as
	// the classifier has ready), so that it holds up to 8 × ChannelSize
	// items when the writer is behind and next to nothing when it is not.
	toStore := make(chan []item.Item, 8*d.opts.ChannelSize/storeRun)
	toEngine := make(chan item.Item, d.opts.ChannelSize)

	var stages sync.WaitGroup
	errs := make(chan error, 8)
	stage := func(name string, f func() error) {
		stages.Add(1)
		go func() {
			defer stages.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("stage stopped with error", "stage", name, "err", err)
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	srv := d.startHTTP(log)
	// The dashboard stops with the collectors, before the store closes.
	waitUI := d.startUI(ctx, log)
	defer waitUI()

	writer := store.NewWriter(d.shared, d.cfg.Store.BatchSize, d.cfg.Store.FlushInterval.D(), log.With("stage", "store"), d.reg)
	if d.dist != nil {
		// A message is acknowledged once its item is committed.
		writer.Settled = d.dist.acks.Committed
	}
	stage("store", func() error { return writer.RunBatches(drainCtx, toStore) })

	engineDone := make(chan struct{})
	stage("alerts", func() error {
		defer close(engineDone)
		return d.engine.Run(drainCtx, toEngine)
	})

	deliveryCtx, stopDelivery := context.WithCancel(drainCtx)
	defer stopDelivery()
	stage("delivery", func() error { return d.sink.run(deliveryCtx) })

	stage("classifier", func() error {
		defer close(toStore)
		defer close(toEngine)
		// run is the store's next run of items, handed on when it is
		// storeRun long or raw has nothing more ready.
		var run []item.Item
		toStoreRun := func() error {
			if len(run) == 0 {
				return nil
			}
			r := run
			run = nil
			return sendTo(drainCtx, d.metrics, toStore, r, "store")
		}
		idle := &d.metrics.classifierIdle
		for {
			var it item.Item
			var ok bool
			select {
			case it, ok = <-raw:
			default:
				idle.start(time.Now())
				it, ok = <-raw
				idle.stop(time.Now())
			}
			if !ok {
				break
			}
			if run == nil {
				run = make([]item.Item, 0, min(len(raw)+1, storeRun))
			}
			if it.Kind != item.KindState {
				// A collector's state follows its items to the store, in
				// order; the engine has no use for it.
				d.score(&it)
				if it.Kind == item.KindMetric && it.Metric == item.MetricLiveStatus && it.Value == 0 {
					d.wakeReviews() // a stream ended: its review is due
				}
				// Both consumers get every item, edits and deletes too (the
				// store applies them to the stored item, the engine takes
				// the old version out of its windows); a full channel blocks here
				// and pushes back on the collectors. The engine goes first so
				// that alerts do not queue behind disk writes.
				if err := d.send(drainCtx, toEngine, it, "alerts"); err != nil {
					return err
				}
			}
			run = append(run, it)
			if len(run) >= storeRun || len(raw) == 0 {
				if err := toStoreRun(); err != nil {
					return err
				}
			}
		}
		return toStoreRun()
	})

	// Collectors: each under a supervisor that restarts it after errors.
	// Their state writes join their items on raw from now on.
	// A reload may start and stop sources until stopSources.
	d.state.attach(raw)
	d.startSources(ctx, raw)
	var loops sync.WaitGroup
	loops.Go(func() { d.healthLoop(ctx) })
	loops.Go(func() { d.retentionLoop(ctx) })
	loops.Go(func() { d.profileLoop(ctx, raw) })
	if !d.cfg.Store.Postgres() {
		// Reviews and digests read the SQLite store; with PostgreSQL
		// they are off (config refuses them when asked for).
		loops.Go(func() { d.reviewLoop(ctx) })
		loops.Go(func() { d.digestLoop(ctx) })
	}
	if d.dist != nil {
		// Process role: the stream's partitions take the collectors' place.
		loops.Go(func() { d.dist.consume(ctx, raw, toStore) })
	}

	timer := d.stopCollecting(ctx, &loops, raw, cancelDrain)
	defer timer.Stop()
	<-engineDone
	// Give the outbox a moment to send what the last evaluation produced;
	// anything left stays queued for the next start.
	delivery, _ := d.sink.current()
	delivery.Flush(drainCtx, 3*time.Second)
	stopDelivery()
	stages.Wait()
	if d.dist != nil {
		d.dist.release(context.WithoutCancel(ctx))
	}
	d.saveProfilesDrained(context.WithoutCancel(ctx), drainCtx.Err() == nil && len(errs) == 0)
	d.finishShutdown(ctx, srv)
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// score classifies an item's text in place: a message, post or comment
// with text, not a delete. Bluesky and Mastodon declare the language
// ("langs"): it picks the model, or leaves a foreign post unscored.
func (d *Daemon) score(it *item.Item) {
	if it.Kind.Textual() && it.Text != "" && it.Change != item.ChangeDelete {
		d.classifier.Load().ScoreHinted(&it.Score, it.Text, it.Labels["langs"])
	}
}

// storeRun is the most items the classifier hands the store writer at once.
const storeRun = 64

// stopCollecting is how every role's shutdown begins: once ctx ends, the
// collectors stop, the loops beside them end, and raw is closed when
// nothing can be sent on it any more. It then arms the grace period of
// the drain: when it runs out, cancelDrain cuts off the stages still
// draining. The caller stops the timer returned once the drain is over.
func (d *Daemon) stopCollecting(ctx context.Context, loops *sync.WaitGroup, raw chan item.Item, cancelDrain context.CancelFunc) *time.Timer {
	<-ctx.Done()
	d.log.Info("shutting down: stopping collectors")
	d.stopSources()
	loops.Wait()
	d.state.attach(nil)
	close(raw)
	return time.AfterFunc(d.opts.ShutdownGrace, func() {
		d.log.Warn("shutdown grace exceeded; aborting drain", "grace", d.opts.ShutdownGrace)
		cancelDrain()
	})
}

// finishShutdown is how every role's shutdown ends, after the drain: the
// sources' health is written and the HTTP endpoint stops.
func (d *Daemon) finishShutdown(ctx context.Context, srv *http.Server) {
	d.writeHealth(context.WithoutCancel(ctx))
	if srv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		srv.Shutdown(shutdownCtx)
		cancel()
	}
	d.log.Info("stopped")
}

// newRoomBrands is the brand and brand role of each room in brands.rooms.
func newRoomBrands(cfg *config.Config) *map[string][2]string {
	m := make(map[string][2]string, len(cfg.Brands.Rooms))
	for room, b := range cfg.Brands.Rooms {
		m[room] = [2]string{b, cfg.Brands.BrandRole(b)}
	}
	return &m
}

func (d *Daemon) send(ctx context.Context, ch chan<- item.Item, it item.Item, name string) error {
	return sendTo(ctx, d.metrics, ch, it, name)
}

// sendTo sends v on ch; when ch is full it counts the wait in m's
// stageWait and blocked under name.
func sendTo[T any](ctx context.Context, m *daemonMetrics, ch chan<- T, v T, name string) error {
	select {
	case ch <- v:
		return nil
	default:
	}
	m.stageWait.WithLabelValues(name).Inc()
	start := time.Now()
	defer func() { m.blocked.WithLabelValues(name).Add(time.Since(start).Seconds()) }()
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// emit is what collectors call: normalise, dedupe, hand on.
func (d *Daemon) emit(r *sourceRunner, raw chan<- item.Item) lcollectors.Emit {
	classifierBlocked := d.metrics.blocked.WithLabelValues("classifier")
	return func(ctx context.Context, it item.Item) error {
		it.Source = r.src.ID
		if it.ID == "" {
			return fmt.Errorf("collector %s emitted an item without an id", r.src.ID)
		}
		if d.users != nil {
			// Privacy mode: the one place items are redacted, before
			// anything (dedupe, classifier, alerts, store) sees them.
			d.users.Item(&it)
		}
		if !d.dedupe.addItemIfNew(&it) {
			d.metrics.duplicates.Inc()
			return nil
		}
		if it.TS.IsZero() {
			it.TS = time.Now()
		}
		var brand [2]string
		hasBrand := false
		if rb := *d.roomBrands.Load(); len(rb) > 0 && it.Room != "" {
			brand, hasBrand = rb[it.Room]
		}
		if len(r.src.Labels) > 0 || hasBrand {
			// One copy: the source's labels, the item's over them, the
			// room's brand (brands.rooms) over both.
			labels := make(map[string]string, len(r.src.Labels)+len(it.Labels)+2)
			for k, v := range r.src.Labels {
				labels[k] = v
			}
			for k, v := range it.Labels {
				labels[k] = v
			}
			if hasBrand {
				labels["brand"] = brand[0]
				if brand[1] != "" {
					labels["brand_role"] = brand[1]
				}
			}
			it.Labels = labels
		}
		if it.Metric != item.MetricSourceBroken { // a health report is not a delivery
			r.noteItem()
		}
		select {
		case raw <- it:
			return nil
		default:
		}
		start := time.Now()
		defer func() { classifierBlocked.Add(time.Since(start).Seconds()) }()
		select {
		case raw <- it:
			return nil
		case <-ctx.Done():
			// Not handed on: a collector that runs again (a reload
			// restarts a source) must be able to emit it then.
			d.dedupe.forgetItem(&it)
			return ctx.Err()
		}
	}
}

func (d *Daemon) startHTTP(log *slog.Logger) *http.Server {
	addr := d.cfg.HTTP.Listen
	if addr == "" || addr == "off" {
		return nil
	}
	if w := d.cfg.HTTP.ListenWarning(); w != "" {
		log.Warn(w, "listen", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		// Metrics are a convenience; a port clash must not stop monitoring.
		log.Warn("metrics endpoint disabled", "listen", addr, "err", err)
		return nil
	}
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	log.Info("metrics endpoint", "url", "http://"+ln.Addr().String()+"/metrics")
	return srv
}

// Handler serves /metrics, /healthz and /readyz:
//
//   - /healthz: the process is alive; 200 "ok" whenever it answers.
//   - /readyz: 200 {"ready":true} when the store takes writes (Store.Ping)
//     and not every source is broken; otherwise 503 with
//     {"ready":false,"reason":"…"}.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/-/reload", d.handleReload)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		reason := d.notReady(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if reason == "" {
			io.WriteString(w, `{"ready":true}`+"\n")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		b, _ := json.Marshal(map[string]any{"ready": false, "reason": reason})
		w.Write(append(b, '\n'))
	})
	return mux
}

// readyTimeout bounds the store check of /readyz: a store that cannot take
// its write lock within it is not ready.
const readyTimeout = time.Second

// notReady says why the daemon is not ready, "" when it is.
func (d *Daemon) notReady(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := d.shared.Ping(ctx); err != nil {
		return "store not writable: " + err.Error()
	}
	broken := 0
	sources := d.sourceList()
	for _, s := range sources {
		if s.health.Status().State == lcollectors.HealthBroken {
			broken++
		}
	}
	if broken > 0 && broken == len(sources) {
		return fmt.Sprintf("all %d sources are broken", broken)
	}
	return ""
}

func (d *Daemon) retentionLoop(ctx context.Context) {
	r := d.cfg.Store.Retention
	if r.Raw == 0 && r.Items == 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := d.shared.Prune(ctx, time.Now(), r.Raw.D(), r.Items.D()); err != nil && ctx.Err() == nil {
			d.log.Warn("retention prune failed", "err", err)
		} else if n > 0 {
			d.log.Info("retention pruned rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
