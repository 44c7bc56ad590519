package daemon

// Reload: a changed config applied while the daemon runs (SIGHUP, POST
// /-/reload, `lookout reload`).
//
// The new config is read and checked in full first; any error (the usual
// "file:line: field: message" list) rejects it, is logged and counted, and
// the running config stays. Then:
//
//   - sources: a new one starts; a removed one stops the way every source
//     stops at shutdown (what it emitted goes on to the store and the
//     engine, its cursor is queued behind its items) and its health row says
//     "removed"; a changed one (any of its keys) stops and starts again with
//     the new settings; an unchanged one is not touched: its connection
//     stays up;
//   - rules: see alerts.Engine.Reload (unchanged rules keep windows and
//     open alerts, removed rules' open alerts resolve saying so);
//   - route, inhibitions and receivers: the delivery side is rebuilt; its
//     senders stop after the message in flight and new ones take the
//     outbox over, which holds everything unsent, so nothing queued is
//     lost; silences live in the database and apply as they are;
//   - classifier and keyword groups: the classifier is rebuilt and swapped
//     between two items.
//
// Settings the running pipeline was built on (store.*, http.listen,
// privacy, limits) are reported as needing a restart and keep their
// running values.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lookout/alerts"
	lcollectors "lookout/collectors"
	"lookout/config"
	"lookout/item"
	"lookout/sentiment"
)

// ReloadReport is what a reload changed.
type ReloadReport struct {
	Config         string   `json:"config"`
	SourcesAdded   []string `json:"sources_added,omitempty"`
	SourcesRemoved []string `json:"sources_removed,omitempty"`
	SourcesChanged []string `json:"sources_restarted,omitempty"`
	RulesAdded     []string `json:"rules_added,omitempty"`
	RulesRemoved   []string `json:"rules_removed,omitempty"`
	RulesChanged   []string `json:"rules_changed,omitempty"`
	// AlertsResolved counts the open alerts of removed rules.
	AlertsResolved int  `json:"alerts_resolved,omitempty"`
	Delivery       bool `json:"delivery_rebuilt,omitempty"`
	Classifier     bool `json:"classifier_rebuilt,omitempty"`
	// Reports: the review or digest settings changed and apply from now.
	Reports bool `json:"reports_changed,omitempty"`
	// Brands: brands.own or brands.rooms changed (the sources whose
	// brand role changed restart).
	Brands bool `json:"brands_changed,omitempty"`
	// NeedsRestart lists changed settings that were not applied.
	NeedsRestart []string `json:"needs_restart,omitempty"`
}

// reloadState is the part of the daemon a reload changes; its mutex
// makes reloads one at a time and excludes them from starting and
// stopping the pipeline.
type reloadState struct {
	mu      sync.Mutex
	current *config.Config // what runs now
	run     *runState      // nil outside Run

	total       *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	successful  prometheus.Gauge
}

// runState is what Run hands to sources started later.
type runState struct {
	ctx context.Context // the collectors' context
	raw chan<- item.Item
}

func newReloadState(cfg *config.Config, reg prometheus.Registerer) *reloadState {
	r := &reloadState{current: cfg,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_config_reloads_total",
			Help: "Config reloads by result (success, failure)."}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lookout_config_last_reload_success_timestamp_seconds",
			Help: "When the config was last loaded successfully (start or reload)."}),
		successful: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lookout_config_last_reload_successful",
			Help: "1 when the last reload attempt succeeded (or none was made), 0 when it was rejected."}),
	}
	r.total.WithLabelValues("success")
	r.total.WithLabelValues("failure")
	r.lastSuccess.SetToCurrentTime()
	r.successful.Set(1)
	reg.MustRegister(r.total, r.lastSuccess, r.successful)
	return r
}

// sourceList is a snapshot of the running sources.
func (d *Daemon) sourceList() []*sourceRunner {
	d.srcMu.Lock()
	defer d.srcMu.Unlock()
	return slices.Clone(d.sources)
}

// newSourceRunner builds the collector of src and preloads the dedupe set
// with the ids it stored last. resumeBroken: the last run left the source
// reported broken.
func (d *Daemon) newSourceRunner(ctx context.Context, src config.SourceConfig, resumeBroken bool) (*sourceRunner, error) {
	healthOpts := d.opts.Health
	healthOpts.Changed = d.wakeHealth
	health := lcollectors.NewSourceHealth(src, healthOpts)
	if resumeBroken {
		health.ResumeBroken()
	}
	senv := d.env
	senv.Health = health
	c, err := d.opts.Collectors.New(src, senv)
	if err != nil {
		return nil, err
	}
	ids, err := d.shared.RecentItemIDs(ctx, src.ID, 5000)
	if err != nil {
		return nil, fmt.Errorf("preload dedupe ids for %s: %w", src.ID, err)
	}
	for _, id := range ids {
		d.dedupe.add(src.ID + "\x00" + id)
	}
	return &sourceRunner{src: src, c: c, health: health,
		log: d.log.With("source", src.ID, "kind", src.Kind)}, nil
}

// startSources starts every source under ctx, sending into raw; sources
// added by a reload start the same way until stopSources.
func (d *Daemon) startSources(ctx context.Context, raw chan<- item.Item) {
	d.reload.mu.Lock()
	defer d.reload.mu.Unlock()
	d.reload.run = &runState{ctx: ctx, raw: raw}
	for _, s := range d.sourceList() {
		d.startSource(s)
	}
}

func (d *Daemon) startSource(s *sourceRunner) {
	run := d.reload.run
	s.emit = d.emit(s, run.raw)
	ctx, cancel := context.WithCancel(run.ctx)
	s.stop, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		s.supervise(ctx, d)
	}()
}

// stopSource stops one source and waits until its collector returned.
func (s *sourceRunner) stopSource() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
}

// stopSources waits for every source to stop (their context is done) and
// ends reloads.
func (d *Daemon) stopSources() {
	d.reload.mu.Lock()
	defer d.reload.mu.Unlock()
	d.reload.run = nil
	for _, s := range d.sourceList() {
		s.stopSource()
	}
}

// ReloadFile reads the config file the daemon runs from again and applies
// it (see Reload).
func (d *Daemon) ReloadFile(ctx context.Context) (ReloadReport, error) {
	d.reload.mu.Lock()
	path := d.reload.current.File
	d.reload.mu.Unlock()
	cfg, err := config.Load(path)
	if err == nil {
		if missing := cfg.MissingSecrets(); len(missing) > 0 {
			err = errors.New(strings.Join(missing, "\n"))
		}
	}
	if err != nil {
		d.reloadFailed(path, err)
		return ReloadReport{Config: path}, err
	}
	return d.Reload(ctx, cfg)
}

func (d *Daemon) reloadFailed(path string, err error) {
	d.reload.total.WithLabelValues("failure").Inc()
	d.reload.successful.Set(0)
	d.log.Error("config reload rejected; the running config stays", "config", path, "err", err)
}

// Reload applies cfg while the daemon runs (see the top of this file). It
// fails, changing nothing, when cfg is invalid or the daemon is not
// running. The settings that need a restart are set in cfg to their
// running values.
func (d *Daemon) Reload(ctx context.Context, cfg *config.Config) (ReloadReport, error) {
	d.reload.mu.Lock()
	defer d.reload.mu.Unlock()
	rep, err := d.reloadLocked(ctx, cfg)
	if err != nil {
		d.reloadFailed(cfg.File, err)
		return rep, err
	}
	d.reload.total.WithLabelValues("success").Inc()
	d.reload.successful.Set(1)
	d.reload.lastSuccess.SetToCurrentTime()
	d.log.Info("config reloaded", "config", cfg.File,
		"sources_added", rep.SourcesAdded, "sources_removed", rep.SourcesRemoved, "sources_restarted", rep.SourcesChanged,
		"rules_added", rep.RulesAdded, "rules_removed", rep.RulesRemoved, "rules_changed", rep.RulesChanged,
		"alerts_resolved", rep.AlertsResolved, "delivery_rebuilt", rep.Delivery, "classifier_rebuilt", rep.Classifier)
	if len(rep.NeedsRestart) > 0 {
		d.log.Warn("config settings changed that only a restart applies; they keep their running values",
			"needs_restart", rep.NeedsRestart)
	}
	return rep, nil
}

func (d *Daemon) reloadLocked(ctx context.Context, cfg *config.Config) (ReloadReport, error) {
	rep := ReloadReport{Config: cfg.File}
	run := d.reload.run
	if run == nil || run.ctx.Err() != nil {
		return rep, errNotRunning
	}
	old := d.reload.current
	diff := config.Compare(old, cfg)
	if d.role == RoleProcess {
		// Sources belong to the collect role; a processor runs none.
		diff.SourcesAdded, diff.SourcesChanged, diff.SourcesRemoved = nil, nil, nil
	}
	// Settings that need a restart keep what runs now.
	cfg.Store, cfg.HTTP, cfg.Privacy, cfg.Limits = old.Store, old.HTTP, old.Privacy, old.Limits

	// Build everything that can fail before anything changes, and report
	// every problem at once.
	var errs []error
	byID := map[string]config.SourceConfig{}
	for _, s := range cfg.Sources {
		byID[s.ID] = s
	}
	started := map[string]*sourceRunner{}
	for _, id := range slices.Concat(diff.SourcesAdded, diff.SourcesChanged) {
		r, err := d.newSourceRunner(ctx, byID[id], false)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%w", cfg.File, err))
			continue
		}
		started[id] = r
	}
	var classifier *sentiment.Classifier
	if diff.Classifier {
		c, err := newClassifier(cfg)
		if err != nil {
			errs = append(errs, fmt.Errorf("keywords: %w", err))
		}
		classifier = c
	}
	var delivery *alerts.Delivery
	if diff.Delivery {
		if rerrs := receiverErrors(cfg); len(rerrs) > 0 {
			errs = append(errs, rerrs...)
		} else if dl, err := d.newDelivery(cfg); err != nil {
			errs = append(errs, fmt.Errorf("alert delivery: %w", err))
		} else {
			delivery = dl
		}
	}
	if len(errs) > 0 {
		if _, err := alerts.NewEngine(cfg, discardSink{}, alerts.EngineOptions{}); err != nil {
			errs = append(errs, err)
		}
		return rep, errors.Join(errs...)
	}
	// The rules go last: Engine.Reload applies them only when all are
	// valid, and nothing else can fail after it.
	rules, err := d.engine.Reload(cfg, time.Now())
	if err != nil {
		return rep, err
	}
	rep.RulesAdded, rep.RulesRemoved, rep.RulesChanged, rep.AlertsResolved = rules.Added, rules.Removed, rules.Changed, rules.Resolved

	if classifier != nil {
		d.classifier.Store(classifier)
		rep.Classifier = true
	}
	if delivery != nil {
		d.sink.replace(delivery)
		rep.Delivery = true
	}
	if diff.Brands {
		d.roomBrands.Store(newRoomBrands(cfg))
		rep.Brands = true
	}
	if diff.Reports {
		d.reportSettings.Store(newReportSettings(cfg))
		select {
		case d.digestWake <- struct{}{}:
		default:
		}
		rep.Reports = true
	}
	gone := slices.Concat(diff.SourcesRemoved, diff.SourcesChanged)
	var stopping []*sourceRunner
	d.srcMu.Lock()
	kept := d.sources[:0:0]
	for _, s := range d.sources {
		if slices.Contains(gone, s.src.ID) {
			stopping = append(stopping, s)
			continue
		}
		kept = append(kept, s)
	}
	d.srcMu.Unlock()
	for _, s := range stopping {
		s.stopSource()
		if slices.Contains(diff.SourcesRemoved, s.src.ID) {
			d.retireSource(ctx, s)
		}
	}
	for _, s := range cfg.Sources {
		if r, ok := started[s.ID]; ok {
			kept = append(kept, r)
			d.startSource(r)
		}
	}
	d.srcMu.Lock()
	d.sources = kept
	d.srcMu.Unlock()
	d.wakeHealth()
	rep.SourcesAdded, rep.SourcesRemoved, rep.SourcesChanged = diff.SourcesAdded, diff.SourcesRemoved, diff.SourcesChanged
	rep.NeedsRestart = diff.NeedsRestart
	d.reload.current = cfg
	return rep, nil
}

// retireSource records a removed source's last health as "removed" and
// drops its per-source gauges.
func (d *Daemon) retireSource(ctx context.Context, s *sourceRunner) {
	row := s.healthRow(d.collectorMetrics, s.health.Status(), d.env.HTTP)
	row.State, row.Broken = "removed", ""
	if err := d.store.UpdateHealth(context.WithoutCancel(ctx), row); err != nil {
		d.log.Warn("write health of a removed source", "source", s.src.ID, "err", err)
	}
	d.collectorMetrics.Up.DeleteLabelValues(s.src.ID)
	d.collectorMetrics.LastSuccess.DeleteLabelValues(s.src.ID)
}

// newClassifier builds the classifier cfg asks for, its segmentation
// dictionary loaded.
func newClassifier(cfg *config.Config) (*sentiment.Classifier, error) {
	c, err := sentiment.New(sentiment.Options{
		NeutralThreshold: cfg.Classifier.NeutralThreshold,
		Groups:           cfg.Keywords,
		Terms:            cfg.Classifier.TermsEnabled(),
	})
	if err != nil {
		return nil, err
	}
	if cfg.Classifier.TermsEnabled() {
		// The segmentation dictionary loads on first use; load it now so
		// the first live message does not stall the pipeline behind it.
		c.ExtractTerms("预热", nil)
	}
	return c, nil
}

// newDelivery builds the delivery side of cfg on the daemon's store and
// registry.
func (d *Daemon) newDelivery(cfg *config.Config) (*alerts.Delivery, error) {
	return alerts.NewDelivery(cfg, d.shared, alerts.DeliveryOptions{
		Log:        d.log.With("stage", "delivery"),
		Registerer: d.reg,
		Notifiers:  d.opts.Notifiers,
		Out:        d.opts.Out,
		// Other processes may send from the same outbox: processors on
		// one SQLite file or one PostgreSQL database. Only `--role all`
		// on its own SQLite file is the outbox's one sender.
		SharedOutbox: d.role != RoleAll || cfg.Store.Postgres(),
		ClaimTimeout: cmp.Or(d.opts.OutboxClaimTimeout, cfg.Transport.NATS.OutboxClaimTimeout.D()),
	})
}

// deliverySink is the engine's sink: the current Delivery, which a reload
// may replace.
type deliverySink struct {
	mu       sync.Mutex
	cur      *alerts.Delivery
	replaced chan struct{} // closed when cur is replaced
}

func newDeliverySink(dl *alerts.Delivery) *deliverySink {
	return &deliverySink{cur: dl, replaced: make(chan struct{})}
}

func (s *deliverySink) current() (*alerts.Delivery, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.replaced
}

func (s *deliverySink) replace(dl *alerts.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = dl
	close(s.replaced)
	s.replaced = make(chan struct{})
}

// Publish records ev through the current Delivery: what it commits is in
// the outbox, which whichever Delivery runs then sends.
func (s *deliverySink) Publish(ctx context.Context, ev alerts.Event) error {
	dl, _ := s.current()
	return dl.Publish(ctx, ev)
}

// run runs the current Delivery until ctx is done; when a reload replaces
// it, the old one's senders finish the message in flight and record its
// outcome, then the new one takes the outbox over.
func (s *deliverySink) run(ctx context.Context) error {
	for {
		dl, replaced := s.current()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- dl.Run(runCtx) }()
		select {
		case err := <-done:
			cancel()
			return err
		case <-replaced:
			cancel()
			if err := <-done; err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// handleReload serves POST /-/reload: it reloads the config file and
// answers with the ReloadReport (200) or the error (400, or 503 when the
// daemon is not running). Only loopback clients may ask: the endpoint
// changes what the daemon does, and the metrics listener may be bound
// wider than the machine.
func (d *Daemon) handleReload(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	reply := func(code int, v any) {
		w.WriteHeader(code)
		b, _ := json.Marshal(v)
		w.Write(append(b, '\n'))
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		reply(http.StatusMethodNotAllowed, map[string]any{"ok": false, "error": "use POST"})
		return
	}
	if !loopbackClient(r.RemoteAddr) {
		reply(http.StatusForbidden, map[string]any{"ok": false, "error": "reload is accepted from loopback clients only; send SIGHUP on the daemon's host instead"})
		return
	}
	// Once started, a reload finishes even if the client goes away.
	rep, err := d.ReloadFile(context.WithoutCancel(r.Context()))
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errNotRunning) {
			code = http.StatusServiceUnavailable
		}
		reply(code, map[string]any{"ok": false, "config": rep.Config, "error": err.Error()})
		return
	}
	reply(http.StatusOK, struct {
		OK bool `json:"ok"`
		ReloadReport
	}{true, rep})
}

var errNotRunning = errors.New("the daemon is not running (starting or stopping)")

func loopbackClient(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
