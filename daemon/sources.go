package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	lcollectors "lookout/collectors"

	"lookout/config"
	"lookout/item"
	"lookout/store"
)

// sourceRunner supervises one collector and keeps its health figures.
type sourceRunner struct {
	src config.SourceConfig
	c   lcollectors.Collector
	log *slog.Logger

	mu          sync.Mutex
	items       int64
	restarts    int64
	errors      int64
	lastItem    time.Time
	lastError   string
	lastErrorAt time.Time
	broken      bool // the collector gave up and has delivered nothing since
}

// noteItem counts a delivered item. It reports true for the first item
// after the collector was restarted on an error: the source works again.
func (r *sourceRunner) noteItem(now time.Time) (recovered bool) {
	r.mu.Lock()
	r.items++
	r.lastItem = now
	recovered, r.broken = r.broken, false
	r.mu.Unlock()
	return recovered
}

// reportHealth emits the source's item.MetricSourceBroken report from the
// supervisor's side: 1 with the error when the collector gave up, 0 (cause
// nil) when it delivers again. Pollers report their own health (shape
// drift, failing polls); this covers every collector's last resort.
func (r *sourceRunner) reportHealth(ctx context.Context, emit lcollectors.Emit, cause error) error {
	reason, detail := "", ""
	if cause != nil {
		reason, detail = "collector_stopped", cause.Error()
	}
	return emit(ctx, lcollectors.SourceBrokenItem(r.src.ID, r.src.Kind, time.Now(), reason, detail))
}

func (r *sourceRunner) noteError(err error, now time.Time) {
	r.mu.Lock()
	r.errors++
	r.lastError = err.Error()
	r.lastErrorAt = now
	r.mu.Unlock()
}

// health reports the source's figures: its own reconnects and survived
// errors (from the collector metrics) plus the supervisor's restarts.
func (r *sourceRunner) health(m *lcollectors.Metrics) store.SourceHealth {
	reconnects := counterValue(m.Reconnects, r.src.ID)
	errs := counterValue(m.Errors, r.src.ID)
	r.mu.Lock()
	defer r.mu.Unlock()
	return store.SourceHealth{
		Source:      r.src.ID,
		Kind:        r.src.Kind,
		LastSuccess: r.lastItem,
		LastError:   r.lastError,
		LastErrorAt: r.lastErrorAt,
		Items:       r.items,
		Reconnects:  r.restarts + reconnects,
		Errors:      r.errors + errs,
		UpdatedAt:   time.Now(),
	}
}

// counterValue sums the series of vec whose "source" label is source.
func counterValue(vec *prometheus.CounterVec, source string) int64 {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		vec.Collect(ch)
		close(ch)
	}()
	var total float64
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == "source" && l.GetValue() == source {
				total += pb.GetCounter().GetValue()
			}
		}
	}
	return int64(total)
}

// supervise runs the collector until ctx is done. Collectors retry their
// own transient failures; an error that reaches here is one the collector
// gave up on, so it is restarted after a growing pause. One source failing
// never stops the others.
func (r *sourceRunner) supervise(ctx context.Context, d *Daemon, raw chan<- item.Item) {
	emit := d.emit(r, raw)
	b := &lcollectors.Backoff{Base: 5 * time.Second, Max: 5 * time.Minute}
	for {
		started := time.Now()
		err := runSafely(ctx, r.c, emit)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("collector returned without error before shutdown")
		}
		if time.Since(started) > 10*time.Minute {
			b.Reset()
		}
		wait := b.Next()
		r.noteError(err, time.Now())
		r.mu.Lock()
		r.restarts++
		r.broken = true
		r.mu.Unlock()
		d.metrics.restarts.WithLabelValues(r.src.ID).Inc()
		r.log.Error("collector stopped; restarting", "err", err, "in", wait.Round(time.Second))
		if r.reportHealth(ctx, emit, err) != nil {
			return
		}
		if lcollectors.Sleep(ctx, d.opts.Clock, wait) != nil {
			return
		}
	}
}

// runSafely turns a collector panic into an error so a bug in one
// platform's decoder cannot take the daemon down.
func runSafely(ctx context.Context, c lcollectors.Collector, emit lcollectors.Emit) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{p}
		}
	}()
	return c.Run(ctx, emit)
}

type panicError struct{ v any }

func (p *panicError) Error() string { return "collector panicked: " + toString(p.v) }

func toString(v any) string {
	switch x := v.(type) {
	case error:
		return x.Error()
	case string:
		return x
	}
	return "unknown panic value"
}

func (d *Daemon) healthLoop(ctx context.Context) {
	d.writeHealth(ctx) // `lookout status` lists every source from the start
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.writeHealth(ctx)
		}
	}
}

func (d *Daemon) writeHealth(ctx context.Context) {
	for _, s := range d.sources {
		if err := d.store.UpdateHealth(ctx, s.health(d.collectorMetrics)); err != nil && ctx.Err() == nil {
			d.log.Warn("write source health", "source", s.src.ID, "err", err)
		}
	}
}

// dedupeSet remembers the most recent keys (FIFO eviction): streams replay
// on reconnect and pollers overlap pages, and the same item must not be
// scored and counted twice.
type dedupeSet struct {
	mu   sync.Mutex
	max  int
	keys map[string]struct{}
	ring []string
	next int
}

func newDedupeSet(max int) *dedupeSet {
	return &dedupeSet{max: max, keys: make(map[string]struct{}, max), ring: make([]string, 0, max)}
}

func (s *dedupeSet) add(k string) { s.addIfNew(k) }

// addIfNew records k and reports whether it was unseen.
func (s *dedupeSet) addIfNew(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k]; ok {
		return false
	}
	if len(s.ring) < s.max {
		s.ring = append(s.ring, k)
	} else {
		delete(s.keys, s.ring[s.next])
		s.ring[s.next] = k
		s.next = (s.next + 1) % s.max
	}
	s.keys[k] = struct{}{}
	return true
}
