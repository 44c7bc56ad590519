package alerts

// Delivery: the durable path from an alert event to the people who must
// hear about it.
//
// Guarantees (proven by delivery_test.go):
//
//  1. Committed before sent. Publish records the event (alerts row,
//     alert_events row) and its outbox rows — one per receiver the routing
//     tree selects — in ONE SQLite transaction. Nothing is sent from
//     memory: the sender only ever reads committed outbox rows, so an
//     event that Publish acknowledged survives any crash.
//  2. Idempotent publish. The event id is the primary key of alert_events
//     and (event_id, receiver) is unique in the outbox: publishing the
//     same event twice changes nothing.
//  3. Never lost. A row leaves the outbox only as 'sent' (the sink said
//     yes) or 'failed' (the sink said a permanent no: bad token, 4xx,
//     DingTalk 310000, Slack invalid_auth — logged with the receiver's
//     name and counted). Retryable failures (5xx, timeouts, network, 429,
//     DingTalk 130101) go back to 'pending' with a backoff, forever; an
//     outage longer than the test window only delays delivery.
//  4. At most one resend per crash. Before the sink is called, the rows
//     of the message are claimed: committed as 'sending' with a batch id,
//     all or none, only while still pending (store.OutboxClaimTimeout), so
//     of several processes sending from one outbox (SharedOutbox) only one
//     sends a row. After the call they become 'sent' (or pending/failed).
//     If the process dies in between (kill -9, power loss), the rows stay
//     'sending': OutboxRecover puts them back to 'pending' with the same
//     batch id and counts crash_resends — at the next start when this is
//     the outbox's only sender, or, with SharedOutbox, in whichever sender
//     finds the claim older than ClaimTimeout — and they are sent once
//     more as exactly the same batch. So a crash can duplicate at most the
//     one message in flight per receiver (the sender sends one message at
//     a time per receiver), once; rows marked 'sent' are never sent again.
//     Sinks that support idempotency get the stable batch id (the event id
//     for a one-event message) as their key: the generic webhook sends it
//     as the Idempotency-Key header, so such a receiver can drop the
//     duplicate and see every event exactly once.
//  5. Order per group. A group's messages go out one at a time, oldest
//     rows first; a batch that is being retried holds back newer rows of
//     its group until it is through.
//
// Muting. Publish does not queue a firing change that an active silence
// matches or a firing alert inhibits (default: a red alert mutes yellow
// and green ones of the same room); the sender checks again just before a
// row first goes out, so a silence or a red alert that appears during
// group_wait or an outage still mutes it (outbox state 'suppressed'). A
// resolution goes only to the receivers that were told the alert fired.
//
// A graceful shutdown (context cancelled) lets an in-flight send finish
// (bounded by SendTimeout) and records its outcome; unsent rows simply
// stay in the outbox for the next start.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"lookout/config"
	"lookout/store"

	"lookout/internal/metrics"
)

// DeliveryOptions tune a Delivery; zero values take the defaults.
type DeliveryOptions struct {
	Log        *slog.Logger
	Registerer prometheus.Registerer // nil: a private registry
	Now        func() time.Time
	// Notifiers overrides (or adds) notifiers by receiver name; tests use
	// it to wrap real notifiers.
	Notifiers  map[string]Notifier
	HTTPClient *http.Client
	Out        io.Writer // console receivers' output

	// RateLimits overrides the pace of a receiver (messages per second,
	// burst 1 unless Burst is set).
	RateLimits map[string]ReceiverRate
	// ThrottleBackoff is how long a receiver is left alone after DingTalk
	// 130101 (default 10m).
	ThrottleBackoff time.Duration
	RetryBase       time.Duration // first retry wait, default 2s
	RetryMax        time.Duration // cap, default 5m
	PollInterval    time.Duration // how often the sender re-reads the outbox without a wake-up, default 1s
	SendTimeout     time.Duration // bound on one Notify call, default 30s (at most half of ClaimTimeout)
	MaxBatch        int           // events per message, default 100
	// OutboxRetention is how long sent and failed outbox rows are kept
	// (alert_events keep the history); default 30 days.
	OutboxRetention time.Duration
	// SharedOutbox says other processes may send from the same outbox
	// (several `lookout run --role process` on one SQLite file or one
	// PostgreSQL database). Run then takes back, at start and before
	// every read of a receiver's rows, only claims older than
	// ClaimTimeout: a row another live process is sending stays its own.
	// Without it, Run takes back every claim at start (they can only be
	// this process's, left by a crash), so the message a crash
	// interrupted goes out again at once.
	SharedOutbox bool
	// ClaimTimeout is how long a row may stay claimed before another
	// sender sends it again (default store.OutboxClaimTimeout); it must
	// exceed SendTimeout.
	ClaimTimeout time.Duration
}

// ReceiverRate is a token bucket for one receiver.
type ReceiverRate struct {
	Limit rate.Limit
	Burst int
}

// deliveryDefaultRate is each sink's documented pace.
// DingTalk and WeCom allow 20 a minute: 19/min with burst 1 keeps any
// 60-second window at ≤ 20. Feishu: 5/s and 100/min.
func deliveryDefaultRate(kind string) ReceiverRate {
	switch kind {
	case "slack":
		return ReceiverRate{Limit: 1, Burst: 1}
	case "dingtalk", "wecom":
		return ReceiverRate{Limit: rate.Limit(19.0 / 60), Burst: 1}
	case "feishu":
		return ReceiverRate{Limit: rate.Limit(99.0 / 60), Burst: 1}
	case "webhook", "alertmanager":
		return ReceiverRate{Limit: 10, Burst: 10}
	}
	return ReceiverRate{Limit: rate.Inf, Burst: 1}
}

// DeliveryStore is the store a Delivery records events in and drains its
// outbox from: the SQLite store (store.Store) or the PostgreSQL one
// (store/pg). Reports (PublishReport) also need QueueReport, which only
// the SQLite store has.
type DeliveryStore interface {
	RecordAlertEvent(ctx context.Context, rec store.AlertEventRecord, now time.Time,
		decide func(tx store.AlertView, prior *store.AlertRow) (store.AlertDecision, error)) (store.AlertDecision, error)
	FiringAlerts(ctx context.Context, room string, all bool) ([]store.AlertRow, error)
	ListSilences(ctx context.Context, now time.Time, all bool) ([]store.Silence, error)

	OutboxRecover(ctx context.Context, receiver string, olderThan time.Duration) (int64, error)
	OutboxReceivers(ctx context.Context) ([]string, error)
	OutboxPendingRows(ctx context.Context, receiver string, limit int) ([]store.OutboxRow, error)
	OutboxUnsentRows(ctx context.Context) ([]store.OutboxRow, error)
	OutboxLastSent(ctx context.Context, receiver string, since time.Time) (map[string]time.Time, error)
	OutboxMarkSending(ctx context.Context, ids []int64, batchID string) error
	OutboxMarkSent(ctx context.Context, ids []int64, now time.Time) error
	OutboxMarkRetry(ctx context.Context, ids []int64, next time.Time, lastErr string) error
	OutboxMarkFailed(ctx context.Context, ids []int64, lastErr string) error
	OutboxMarkSuppressed(ctx context.Context, ids []int64, reason string) error
	OutboxUnsent(ctx context.Context) (int, error)
	OutboxPrune(ctx context.Context, before time.Time) (int64, error)
}

// reportQueuer is the part of the SQLite store reports need.
type reportQueuer interface {
	QueueReport(ctx context.Context, rec store.ReportRecord, rows []store.OutboxInsert, now time.Time) (bool, error)
}

// Delivery stores, routes and sends alert events. It implements Sink.
type Delivery struct {
	st      DeliveryStore
	log     *slog.Logger
	now     func() time.Time
	opts    DeliveryOptions
	root    *Route
	inhibit []inhibitRule
	// inhibitByRoom: every inhibition rule needs equal rooms, so only the
	// event's room has to be searched for a source alert.
	inhibitByRoom bool
	notifiers     map[string]Notifier
	rates         map[string]ReceiverRate
	wake          map[string]chan struct{}
	flushing      atomic.Bool

	mNotifications *prometheus.CounterVec
	mErrors        *prometheus.CounterVec
	mPending       prometheus.Gauge
	mPublished     *prometheus.CounterVec

	// deliveryCrashAfterSend, when set (tests), is called after a send and
	// before its outcome is recorded; returning true makes the sender stop
	// right there, as if the process had been killed.
	deliveryCrashAfterSend func(Notification) bool
}

var _ Sink = (*Delivery)(nil)

// errDeliveryCrashed is the sender's exit after a simulated crash.
var errDeliveryCrashed = errors.New("delivery: simulated crash")

// NewDelivery builds the notifiers of every receiver and the routing tree.
// st may be nil (or a nil *store.Store) for a Delivery that only sends
// test alerts.
func NewDelivery(cfg *config.Config, st DeliveryStore, opts DeliveryOptions) (*Delivery, error) {
	if s, ok := st.(*store.Store); ok && s == nil {
		st = nil
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ThrottleBackoff <= 0 {
		opts.ThrottleBackoff = DefaultThrottleBackoff
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 2 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Minute
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.ClaimTimeout <= 0 {
		opts.ClaimTimeout = store.OutboxClaimTimeout
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = min(30*time.Second, opts.ClaimTimeout/2)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 100
	}
	if opts.OutboxRetention <= 0 {
		opts.OutboxRetention = 30 * 24 * time.Hour
	}
	if opts.SharedOutbox && opts.SendTimeout >= opts.ClaimTimeout {
		return nil, fmt.Errorf("delivery: send timeout %s must be shorter than the outbox claim timeout %s, or another processor may send a message again while it is still being sent",
			opts.SendTimeout, opts.ClaimTimeout)
	}
	d := &Delivery{st: st, log: opts.Log, now: opts.Now, opts: opts,
		notifiers: map[string]Notifier{}, rates: map[string]ReceiverRate{}, wake: map[string]chan struct{}{}}
	var err error
	if d.root, err = NewRoute(cfg.Route); err != nil {
		return nil, err
	}
	if d.inhibit, err = inhibitBuild(cfg.Route.Inhibit); err != nil {
		return nil, err
	}
	d.inhibitByRoom = true
	for _, r := range d.inhibit {
		if !slices.Contains(r.equal, "room") {
			d.inhibitByRoom = false
		}
	}
	nopts := NotifierOptions{HTTPClient: opts.HTTPClient, Out: opts.Out, Now: opts.Now, ThrottleBackoff: opts.ThrottleBackoff}
	for _, rc := range cfg.Receivers {
		d.rates[rc.Name] = deliveryDefaultRate(rc.Type())
		if rc.RateLimit > 0 {
			d.rates[rc.Name] = ReceiverRate{Limit: rate.Limit(rc.RateLimit), Burst: 1}
		}
		if n, ok := opts.Notifiers[rc.Name]; ok {
			d.notifiers[rc.Name] = n
			continue
		}
		n, err := NewNotifier(rc, nopts)
		if err != nil {
			return nil, err
		}
		d.notifiers[rc.Name] = n
	}
	for name, n := range opts.Notifiers {
		if _, ok := d.notifiers[name]; !ok {
			d.notifiers[name] = n
			d.rates[name] = deliveryDefaultRate("")
		}
	}
	for name, r := range opts.RateLimits {
		if r.Burst <= 0 {
			r.Burst = 1
		}
		d.rates[name] = r
	}
	for name := range d.notifiers {
		d.wake[name] = make(chan struct{}, 1)
	}
	d.registerMetrics(opts.Registerer)
	return d, nil
}

func (d *Delivery) registerMetrics(reg prometheus.Registerer) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	d.mNotifications = deliveryRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lookout_alert_notifications_total",
		Help: "Notification messages by receiver and result (sent, retry, failed).",
	}, []string{"receiver", "result"}))
	d.mErrors = deliveryRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lookout_notify_errors_total",
		Help: "Failed notification attempts by receiver and reason.",
	}, []string{"receiver", "reason"}))
	d.mPending = deliveryRegister(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lookout_outbox_pending",
		Help: "Outbox rows not yet sent or failed.",
	}))
	d.mPublished = deliveryRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lookout_alert_events_stored_total",
		Help: "Alert events recorded, by outcome (queued, suppressed reason, duplicate, recorded).",
	}, []string{"outcome"}))
}

// deliveryRegister registers c, sharing the series of a delivery already
// on reg. A conflicting registration keeps c unregistered: its numbers are
// then missing from /metrics, but delivery goes on.
func deliveryRegister[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	c, _ = metrics.Register(reg, c)
	return c
}

// Receivers lists the configured receiver names.
func (d *Delivery) Receivers() []string {
	out := make([]string, 0, len(d.notifiers))
	for n := range d.notifiers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func deliveryRecord(ev *Event) store.AlertEventRecord {
	return store.AlertEventRecord{
		EventID: ev.ID, AlertID: ev.AlertID, Seq: ev.Seq, Rule: ev.Rule, RuleKind: ev.RuleKind,
		Severity: string(ev.Severity), State: string(ev.State), Prev: string(ev.Prev),
		Room: ev.Room, Source: ev.Source, Platform: ev.Platform, Summary: ev.Summary, Labels: ev.Labels,
		StartedAt: ev.StartedAt, At: ev.At, ResolvedAt: ev.ResolvedAt, Value: ev.Value, Threshold: ev.Threshold,
		Numbers: ev.Numbers, Samples: ev.Samples,
	}
}

// Publish records one event and queues its notifications, all in one
// transaction (see the guarantees at the top of this file). Pending
// changes are recorded, never sent. A firing change is not queued when an
// active silence matches it or a firing alert inhibits it; alert_events
// .suppressed says which. A resolved change is queued only to people who
// were told the alert fired. Publishing an event id again does nothing.
func (d *Delivery) Publish(ctx context.Context, ev Event) error {
	if d.st == nil {
		return errors.New("delivery: no store")
	}
	if ev.ID == "" || ev.AlertID == "" {
		return fmt.Errorf("delivery: event of rule %q has no id", ev.Rule)
	}
	if ev.Severity.Rank() == 0 {
		d.log.Warn("alert event without a valid severity; recording it as yellow", "rule", ev.Rule, "event", ev.ID, "severity", ev.Severity)
		ev.Severity = Yellow
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("delivery: encode event %s: %w", ev.ID, err)
	}
	labels := EventLabels(&ev)
	now := d.now()
	dec, err := d.st.RecordAlertEvent(ctx, deliveryRecord(&ev), now, func(tx store.AlertView, prior *store.AlertRow) (store.AlertDecision, error) {
		return d.decide(tx, prior, &ev, labels, payload, now)
	})
	if errors.Is(err, store.ErrDuplicateEvent) {
		d.mPublished.WithLabelValues("duplicate").Inc()
		return nil
	}
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	switch {
	case len(dec.Outbox) > 0:
		d.mPublished.WithLabelValues("queued").Inc()
		for _, o := range dec.Outbox {
			d.kick(o.Receiver)
		}
		d.mPending.Add(float64(len(dec.Outbox)))
	case dec.Suppressed != "":
		reason := dec.Suppressed
		if i := indexByte(reason, ':'); i >= 0 {
			reason = reason[:i]
		}
		d.mPublished.WithLabelValues(reason).Inc()
		d.log.Info("alert not notified", "rule", ev.Rule, "room", ev.Room, "state", ev.State, "event", ev.ID, "why", dec.Suppressed)
	default:
		d.mPublished.WithLabelValues("recorded").Inc()
	}
	return nil
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func (d *Delivery) decide(tx store.AlertView, prior *store.AlertRow, ev *Event, labels map[string]string, payload []byte, now time.Time) (store.AlertDecision, error) {
	if !ev.Notifies() {
		return store.AlertDecision{}, nil
	}
	var notified []string // receivers a resolution goes to
	if ev.State == Resolved {
		if prior == nil || !prior.Notified {
			return store.AlertDecision{Suppressed: "not_notified"}, nil
		}
		var err error
		if notified, err = tx.NotifiedReceivers(ev.AlertID); err != nil {
			return store.AlertDecision{}, err
		}
		if len(notified) == 0 {
			return store.AlertDecision{Suppressed: "not_notified"}, nil
		}
	} else {
		silences, err := tx.ActiveSilences(now)
		if err != nil {
			return store.AlertDecision{}, err
		}
		if id := silencedBy(silences, labels, now); id != "" {
			return store.AlertDecision{Suppressed: "silenced:" + id}, nil
		}
		var firing []store.AlertRow
		if d.inhibitByRoom {
			firing, err = tx.FiringAlertsInRoom(ev.Room)
		} else {
			firing, err = tx.FiringAlerts()
		}
		if err != nil {
			return store.AlertDecision{}, err
		}
		if id := inhibitedBy(d.inhibit, ev.AlertID, labels, firing); id != "" {
			return store.AlertDecision{Suppressed: "inhibited:" + id}, nil
		}
	}
	var dec store.AlertDecision
	seen := map[string]bool{}
	add := func(r *Route, receiver string) {
		seen[receiver] = true
		dec.Outbox = append(dec.Outbox, store.OutboxInsert{
			Receiver: receiver, GroupKey: r.GroupKey(ev, labels), Payload: payload,
			NotBefore: now.Add(r.GroupWait), GroupInterval: r.GroupInterval,
		})
	}
	for _, r := range d.root.Match(labels) {
		if r.Receiver == "" || seen[r.Receiver] || ev.State == Resolved && !slices.Contains(notified, r.Receiver) {
			continue
		}
		add(r, r.Receiver)
	}
	// A resolution reaches everyone who heard the alert fire, even when
	// the routing tree would now send it elsewhere.
	for _, rcv := range notified {
		if !seen[rcv] {
			if _, ok := d.notifiers[rcv]; ok {
				add(d.root, rcv)
			}
		}
	}
	if len(dec.Outbox) == 0 {
		dec.Suppressed = "unrouted"
	}
	dec.MarkNotified = ev.State == Firing && len(dec.Outbox) > 0
	return dec, nil
}

func (d *Delivery) kick(receiver string) {
	if ch, ok := d.wake[receiver]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run drains the outbox until ctx is done: one sender goroutine per
// receiver, each sending one message at a time at the receiver's pace.
// It returns nil on a clean shutdown; unsent rows stay for the next start.
func (d *Delivery) Run(ctx context.Context) error {
	if d.st == nil {
		return errors.New("delivery: no store")
	}
	var stale time.Duration // a lone sender: every claim is a crash's
	if d.opts.SharedOutbox {
		stale = d.opts.ClaimTimeout
	}
	n, err := d.st.OutboxRecover(ctx, "", stale)
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	if n > 0 {
		d.log.Warn("resending notifications interrupted by an unclean shutdown; each may arrive twice (at most once more)", "rows", n)
	}
	if queued, err := d.st.OutboxReceivers(ctx); err == nil {
		for _, r := range queued {
			if _, ok := d.notifiers[r]; !ok {
				d.log.Error("outbox holds notifications for a receiver that is not configured; they stay queued", "receiver", r)
			}
		}
	}
	d.refreshPending(ctx)
	// runCtx also ends when a sender stops on a simulated crash (tests),
	// so that every goroutine of this Run is gone when it returns.
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var (
		wg      sync.WaitGroup
		crashed atomic.Bool
	)
	for name, nt := range d.notifiers {
		if bg, ok := nt.(notifierLoop); ok {
			// Notifiers with work of their own (resending firing alerts
			// to an Alertmanager) run beside their sender.
			wg.Go(func() { bg.Run(runCtx, d.log.With("receiver", name)) })
		}
		r := d.rates[name]
		w := &deliveryWorker{d: d, receiver: name, n: nt, lim: rate.NewLimiter(r.Limit, r.Burst), wake: d.wake[name], lastSent: map[string]time.Time{}}
		wg.Go(func() {
			if err := w.run(runCtx); errors.Is(err, errDeliveryCrashed) {
				crashed.Store(true)
				stopAll()
			}
		})
	}
	wg.Go(func() { d.pruneLoop(runCtx) })
	wg.Wait()
	if crashed.Load() {
		return errDeliveryCrashed
	}
	return nil
}

// pruneLoop drops old sent and failed outbox rows once an hour until ctx
// is done (or the senders crashed, in tests).
func (d *Delivery) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := d.st.OutboxPrune(ctx, d.now().Add(-d.opts.OutboxRetention)); err != nil && ctx.Err() == nil {
			d.log.Warn("outbox prune failed", "err", err)
		} else if n > 0 {
			d.log.Info("pruned old outbox rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Flush asks the senders to send what is queued now, without waiting for
// group_wait or group_interval, and waits until the outbox holds nothing
// ready to send or max has passed. It returns how many rows are still
// unsent (retrying or throttled ones stay queued). Run must be running.
func (d *Delivery) Flush(ctx context.Context, max time.Duration) int {
	if d.st == nil {
		return 0
	}
	d.flushing.Store(true)
	defer d.flushing.Store(false)
	for name := range d.wake {
		d.kick(name)
	}
	deadline := time.Now().Add(max)
	for {
		n, err := d.readyRows(ctx)
		if err != nil || n == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			left, _ := d.st.OutboxUnsent(context.WithoutCancel(ctx))
			return left
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readyRows counts unsent rows whose retry time has come (pending and
// ready, or sending now).
func (d *Delivery) readyRows(ctx context.Context) (int, error) {
	rows, err := d.st.OutboxUnsentRows(ctx)
	if err != nil {
		return 0, err
	}
	now := d.now()
	n := 0
	for _, r := range rows {
		if r.State == store.OutboxSending || r.State == store.OutboxPending && !r.NextAttemptAt.After(now) {
			if _, ok := d.notifiers[r.Receiver]; ok {
				n++
			}
		}
	}
	return n, nil
}

func (d *Delivery) refreshPending(ctx context.Context) {
	if n, err := d.st.OutboxUnsent(context.WithoutCancel(ctx)); err == nil {
		d.mPending.Set(float64(n))
	}
}

// TestAlert sends SampleEvent straight to one receiver, bypassing the
// outbox, and reports the sink's answer (`lookout test-alert`).
func (d *Delivery) TestAlert(ctx context.Context, receiver string) error {
	n, ok := d.notifiers[receiver]
	if !ok {
		return fmt.Errorf("test-alert: no receiver named %q (have %v)", receiver, d.Receivers())
	}
	ev := SampleEvent(d.now())
	retry, err := n.Notify(ctx, Notification{Receiver: receiver, GroupKey: "test", Events: []Event{ev}, BatchID: ev.ID})
	if err != nil {
		d.mErrors.WithLabelValues(receiver, NotifyReason(err)).Inc()
		kind := "permanent"
		if retry {
			kind = "temporary"
		}
		return fmt.Errorf("test-alert: receiver %s: %s failure: %w", receiver, kind, err)
	}
	d.mNotifications.WithLabelValues(receiver, "sent").Inc()
	return nil
}

// SampleEvent is the alert `lookout test-alert` sends: a red complaint
// storm with numbers and samples, so every part of a template shows.
func SampleEvent(now time.Time) Event {
	now = now.UTC().Truncate(time.Millisecond)
	id := "test-alert/" + now.Format("20060102T150405.000")
	return Event{
		ID: id + "/1", AlertID: id, Seq: 1,
		Rule: "test_alert", RuleKind: "negative_ratio", Severity: Red, State: Firing, Prev: Pending,
		Labels: map[string]string{"rule": "test_alert", "severity": "red", "room": "test-room", "source": "lookout", "platform": "test"},
		Source: "lookout", Platform: "test", Room: "test-room",
		StartedAt: now.Add(-time.Minute), At: now, Window: 2 * time.Minute,
		Value: 0.62, Threshold: 0.4,
		Numbers: map[string]float64{"items": 120, "negative": 74, "negative_ratio": 0.62},
		Summary: "This is a test alert from lookout: 62% negative over 2m (74 of 120)",
		Samples: []Sample{
			{Source: "lookout", Author: "viewer_1", Text: "退款！假货！", TS: now.Add(-20 * time.Second), Score: -0.9},
			{Source: "lookout", Author: "viewer_2", Text: "客服不理人", TS: now.Add(-10 * time.Second), Score: -0.8},
		},
	}
}
