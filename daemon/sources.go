package daemon

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	lcollectors "lookout/collectors"
	"lookout/collectors/httpx"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"lookout/config"
	"lookout/item"
	"lookout/store"
)

// sourceRunner supervises one collector and keeps its figures; its health
// is the source's one SourceHealth, which the collector reports into.
type sourceRunner struct {
	src    config.SourceConfig
	c      lcollectors.Collector
	log    *slog.Logger
	health *lcollectors.SourceHealth
	emit   lcollectors.Emit   // set by Run before anything starts
	stop   context.CancelFunc // stops this source alone (reload)
	done   chan struct{}      // closed when supervise returned

	// reportMu keeps this source's source_broken samples in the order
	// they were decided (the health loop and the supervisor both report).
	reportMu     sync.Mutex
	reportBroken bool // the last sample said broken

	mu       sync.Mutex
	items    int64
	restarts int64
	errors   int64
	written  lcollectors.HealthStatus // what the last store write said
}

// noteItem counts a delivered item: proof the source works.
func (r *sourceRunner) noteItem() {
	r.mu.Lock()
	r.items++
	r.mu.Unlock()
	r.health.Succeeded()
}

// reportHealth emits the source's item.MetricSourceBroken sample if one is
// due (see SourceHealth.Report); it fails only when emit does (the daemon
// is stopping).
func (r *sourceRunner) reportHealth(ctx context.Context) error {
	r.reportMu.Lock()
	defer r.reportMu.Unlock()
	it, ok := r.health.Report()
	if !ok {
		return nil
	}
	broken := it.Value > 0
	switch {
	case broken && !r.reportBroken:
		r.log.Warn("source broken", "reason", it.Labels["reason"], "detail", it.Labels["detail"])
	case !broken:
		r.log.Info("source works again")
	}
	r.reportBroken = broken
	return r.emit(ctx, it)
}

// healthRow is the source's source_health row: its judged health, its own
// reconnects and survived errors (from the collector metrics) plus the
// supervisor's restarts, and the permanent redirects it met (from hc).
func (r *sourceRunner) healthRow(m *lcollectors.Metrics, st lcollectors.HealthStatus, hc *httpx.Client) store.SourceHealth {
	reconnects := counterValue(m.Reconnects, r.src.ID)
	errs := counterValue(m.Errors, r.src.ID)
	r.mu.Lock()
	defer r.mu.Unlock()
	row := store.SourceHealth{
		Source:      r.src.ID,
		Kind:        r.src.Kind,
		State:       string(st.State),
		Since:       st.Since,
		LastSuccess: st.LastSuccess,
		LastError:   st.LastError,
		LastErrorAt: st.LastErrorAt,
		Items:       r.items,
		Reconnects:  r.restarts + reconnects,
		Errors:      r.errors + errs,
		UpdatedAt:   time.Now(),
		Moved:       hc.MovedFor(r.src.ID),
	}
	if st.State == lcollectors.HealthBroken {
		row.Broken = st.Reason + ": " + st.Detail
	}
	return row
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
func (r *sourceRunner) supervise(ctx context.Context, d *Daemon) {
	b := &httpx.Backoff{Base: 5 * time.Second, Max: 5 * time.Minute}
	for {
		started := time.Now()
		err := runSafely(ctx, r.c, r.emit)
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
		r.mu.Lock()
		r.errors++
		r.restarts++
		r.mu.Unlock()
		d.metrics.restarts.WithLabelValues(r.src.ID).Inc()
		r.log.Error("collector stopped; restarting", "err", err, "in", wait.Round(time.Second))
		// Broken until it delivers again; said at once, not at the health
		// loop's next round, which might come after the restart.
		r.health.Failed("collector_stopped", err, true)
		if r.reportHealth(ctx) != nil {
			return
		}
		if httpx.Sleep(ctx, d.opts.Clock, wait) != nil {
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

// healthLoop judges every source's health each HealthEvery, and at once
// when a collector reports something that may change a state: it emits
// the source_broken samples that are due, sets the lookout_source_up and
// lookout_source_last_success_timestamp_seconds gauges, and writes
// source_health when a state changed or HealthWriteEvery passed.
func (d *Daemon) healthLoop(ctx context.Context) {
	t := time.NewTicker(d.opts.HealthEvery)
	defer t.Stop()
	var lastWrite, lastRound time.Time
	for {
		lastRound = time.Now()
		changed := false
		for _, s := range d.sourceList() {
			if s.reportHealth(ctx) != nil {
				return
			}
			st := s.health.Status()
			up := 0.0
			if st.State == lcollectors.HealthOK {
				up = 1
			}
			d.collectorMetrics.Up.WithLabelValues(s.src.ID).Set(up)
			if !st.LastSuccess.IsZero() {
				d.collectorMetrics.LastSuccess.WithLabelValues(s.src.ID).Set(float64(st.LastSuccess.UnixMilli()) / 1000)
			}
			s.mu.Lock()
			changed = changed || st.State != s.written.State || !st.Since.Equal(s.written.Since)
			s.mu.Unlock()
		}
		if changed || time.Since(lastWrite) >= d.opts.HealthWriteEvery {
			d.writeHealth(ctx)
			lastWrite = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.healthWake:
			// A source reporting undecodable frames by the thousand must
			// not keep this loop spinning: at most one round per
			// healthMinGap.
			if gap := healthMinGap - time.Since(lastRound); gap > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(gap):
				}
			}
		}
	}
}

// healthMinGap is the least time between two rounds of the health loop.
const healthMinGap = 10 * time.Millisecond

// wakeHealth asks the health loop for a round now; it never blocks.
func (d *Daemon) wakeHealth() {
	select {
	case d.healthWake <- struct{}{}:
	default:
	}
}

func (d *Daemon) writeHealth(ctx context.Context) {
	for _, s := range d.sourceList() {
		st := s.health.Status()
		if err := d.store.UpdateHealth(ctx, s.healthRow(d.collectorMetrics, st, d.env.HTTP)); err != nil {
			if ctx.Err() == nil {
				d.log.Warn("write source health", "source", s.src.ID, "err", err)
			}
			continue
		}
		s.mu.Lock()
		s.written = st
		s.mu.Unlock()
	}
}

// dedupeSet remembers the most recent keys (FIFO eviction): streams replay
// on reconnect and pollers overlap pages, and the same item must not be
// scored and counted twice.
//
// A key is kept as its 64-bit hash under a seed of the set's own
// (hash/maphash) in an open-addressing table of twice the set's size,
// so the set holds no pointers for the GC to scan and 200,000 keys take
// 5.6 MB whatever the keys' length (10–13 MB as a map of strings; a Go map
// of the hashes grows to 9 MB under the set's constant churn). Two keys
// with the same hash would make the second item look like a duplicate:
// it would be dropped (not scored, counted or stored) and counted in
// lookout_pipeline_duplicates_total. With n keys remembered a new key
// meets one of their hashes with probability n/2^64, 1.1e-14 at 200,000
// keys: one item lost in about 9·10^13, some 29 years at a sustained 100k
// items/s. The seed is random per process, so no input can be crafted to
// collide.
type dedupeSet struct {
	seed   maphash.Seed
	shards []dedupeShard
	shift  uint // a hash's top bits pick its shard
}

// dedupeShard is one lock's share of the set: its own table and its own
// FIFO of the keys in it. Each collector goroutine calls the set for
// every item; with one lock, hundreds of busy rooms queue on it and the
// runtime's hand-offs of a contended lock keep both cores switching
// between them. Keys spread evenly over the shards by hash, so each
// evicts its oldest and the set as a whole keeps about the max most
// recent.
type dedupeShard struct {
	mu    sync.Mutex
	max   int
	slots []uint64 // linear probing; 0 is an empty slot
	mask  uint64
	ring  []uint64
	next  int
	_     [64]byte // keeps neighbouring shards' locks off one cache line
}

// dedupeShards is how many shards a set of at least dedupeShardFrom keys
// gets; a smaller one has one and evicts in exact FIFO order.
const (
	dedupeShards    = 64
	dedupeShardFrom = 16 * 1024
)

func newDedupeSet(max int) *dedupeSet {
	n := 1
	if max >= dedupeShardFrom {
		n = dedupeShards
	}
	s := &dedupeSet{seed: maphash.MakeSeed(), shards: make([]dedupeShard, n), shift: 64}
	for n > 1 {
		n /= 2
		s.shift--
	}
	per := (max + len(s.shards) - 1) / len(s.shards)
	for i := range s.shards {
		s.shards[i].init(per)
	}
	return s
}

func (s *dedupeShard) init(max int) {
	n := 8
	for n < 2*max {
		n *= 2
	}
	*s = dedupeShard{max: max, slots: make([]uint64, n), mask: uint64(n - 1), ring: make([]uint64, 0, max)}
}

// shard is the shard that holds h (a shift by 64, one shard, is 0).
func (s *dedupeSet) shard(h uint64) *dedupeShard { return &s.shards[h>>s.shift] }

// hash is k's key in the set.
func (s *dedupeSet) hash(k string) uint64 { return nonzero(maphash.String(s.seed, k)) }

// nonzero keeps 0 for the table's empty slots.
func nonzero(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// itemHash is the hash of it.DedupeKey() without building that string.
func (s *dedupeSet) itemHash(it *item.Item) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(it.Source)
	h.WriteByte(0)
	h.WriteString(it.ID)
	if it.Change != "" {
		h.WriteByte(0)
		h.WriteString(string(it.Change))
		h.WriteByte(0)
		var buf [64]byte
		h.Write(it.ChangedAt.UTC().AppendFormat(buf[:0], time.RFC3339Nano))
	}
	return nonzero(h.Sum64())
}

func (s *dedupeSet) add(k string) { s.addHash(s.hash(k)) }

// addIfNew records k and reports whether it was unseen.
func (s *dedupeSet) addIfNew(k string) bool { return s.addHash(s.hash(k)) }

// addItemIfNew records it's dedupe key and reports whether it was unseen.
func (s *dedupeSet) addItemIfNew(it *item.Item) bool { return s.addHash(s.itemHash(it)) }

// forgetItem drops it's dedupe key, so that it counts as unseen again.
// Its slot in the ring stays until evicted.
func (s *dedupeSet) forgetItem(it *item.Item) {
	h := s.itemHash(it)
	sh := s.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.remove(h)
}

func (s *dedupeSet) addHash(h uint64) bool { return s.shard(h).add(h) }

// add records h and reports whether it was unseen.
func (s *dedupeShard) add(h uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.find(h)
	if found {
		return false
	}
	if len(s.ring) < s.max {
		s.ring = append(s.ring, h)
	} else {
		s.remove(s.ring[s.next])
		s.ring[s.next] = h
		s.next = (s.next + 1) % s.max
		i, _ = s.find(h) // the removal may have moved the free slot
	}
	s.slots[i] = h
	return true
}

// find is h's slot, or the empty slot where it would go.
func (s *dedupeShard) find(h uint64) (uint64, bool) {
	i := h & s.mask
	for {
		switch s.slots[i] {
		case 0:
			return i, false
		case h:
			return i, true
		}
		i = (i + 1) & s.mask
	}
}

// remove empties h's slot and shifts back the keys after it that probed
// past it, so that lookups need no tombstones.
func (s *dedupeShard) remove(h uint64) {
	i, found := s.find(h)
	if !found {
		return
	}
	for j := i; ; {
		j = (j + 1) & s.mask
		v := s.slots[j]
		if v == 0 {
			break
		}
		// v may move to i unless its home slot lies cyclically in (i, j].
		if home := v & s.mask; (i < j && i < home && home <= j) || (i > j && (i < home || home <= j)) {
			continue
		}
		s.slots[i] = v
		i = j
	}
	s.slots[i] = 0
}
