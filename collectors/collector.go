// Package collectors is what every collector shares: the Collector
// interface, the Registry of kinds, the Env the daemon hands each source,
// source health and metrics. The platforms live in subpackages (one per
// platform) and collectors/all lists their factories; the daemon builds a
// Collector per configured source and supervises it, so a dead source never
// stops the others.
package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/item"
)

// Emit hands an item downstream. It blocks while the pipeline is full
// (back-pressure) and returns ctx.Err() when the daemon is stopping.
type Emit func(ctx context.Context, it item.Item) error

// Collector is one configured source. Run blocks until ctx is done, emitting
// items as it sees them, and returns nil on cancellation. It handles its own
// reconnects and retries; an error it returns means the source cannot work
// at all (bad config, permanent auth failure) and is logged by the
// supervisor, which restarts it after a long backoff.
type Collector interface {
	Run(ctx context.Context, emit Emit) error
}

// Factory builds a collector from its config block. It decodes the
// kind-specific keys with src.DecodeSpec and validates them; check-config
// calls it without running the result.
type Factory func(src config.SourceConfig, env Env) (Collector, error)

// StateStore keeps per-source incremental state (cursors, ETags, last seen
// ids) across restarts. The store implements it; in the daemon, writes go
// through the pipeline instead (see below).
//
// A write is ordered after every item the calling goroutine emitted before
// it: the daemon's StateStore queues it behind those items, and the store
// commits it in the same transaction as they or a later one. So a
// collector saves its state after emitting what the state covers, from the
// goroutine that emitted it, and a crash at any moment loses the items and
// the state that claims them together, never the items alone. Reads see
// the collector's own earlier writes.
type StateStore interface {
	GetState(ctx context.Context, source, key string) (string, bool, error)
	PutState(ctx context.Context, source, key, value string) error
	// PutStates writes several keys at once: all of them or none.
	PutStates(ctx context.Context, source string, kv map[string]string) error
}

// StateSaveTimeout bounds a state write made with a context that was
// cancelled (shutdown): the poll's progress is worth a few seconds, not a
// hung stop.
const StateSaveTimeout = 5 * time.Second

// StateContext is ctx for a state write: not cancelled with ctx, but bounded.
func StateContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), StateSaveTimeout)
}

// StateSaveFailed reports a failed state write: logged with what it was
// and counted as errors{reason="state"}. A lost write means a restart may
// emit items again (deduplicated by the store) or, for health keys, that
// `lookout status` shows stale figures.
func (env Env) StateSaveFailed(ctx context.Context, source, what string, err error) {
	env.Metrics.Errors.WithLabelValues(source, "state").Inc()
	env.Log.ErrorContext(ctx, "cannot save source state", "state", what, "err", err)
}

// TextDecoded reports how a fetched body decoded to UTF-8 (httpx.ToUTF8):
// a garbled one (many replacement characters: a wrong or undetectable
// charset) is logged, counted as errors{reason="garbled_text"} and shown
// as the source's "encoding" health warning until a body decodes cleanly.
// The items are kept: a garbled text is still evidence that a post exists.
func (env Env) TextDecoded(ctx context.Context, source, where string, d httpx.Decoded) {
	if !d.Garbled() {
		env.Health.Warn("encoding", "")
		return
	}
	detail := where + ": " + d.Describe() + "; set the source's charset option if the site declares none"
	env.Metrics.Errors.WithLabelValues(source, "garbled_text").Inc()
	env.Log.WarnContext(ctx, "text garbled by decoding", "where", where, "charset", d.Charset, "how", d.How, "replacements", d.Replacements)
	env.Health.Warn("encoding", detail)
}

// Env is what every collector gets from the daemon.
type Env struct {
	HTTP    *httpx.Client // shared: per-host rate limits, global concurrency cap
	State   StateStore    // may be nil in check-config; use MemState in tests
	Log     *slog.Logger
	Metrics *Metrics
	Clock   httpx.Clock
	// Health is where this source reports whether it works. It is per
	// source: the daemon passes each source's own to New, and New makes a
	// standalone one when it is nil.
	Health *SourceHealth
	// DropRaw says the store keeps no raw payloads (store.keep_raw: false,
	// or privacy mode), so a collector may leave Item.Raw empty instead of
	// copying each payload.
	DropRaw bool
}

// WithDefaults fills zero fields so collectors need no nil checks (New
// does it before calling a Factory).
func (e Env) WithDefaults() Env {
	if e.Log == nil {
		e.Log = slog.New(slog.DiscardHandler)
	}
	if e.Clock == nil {
		e.Clock = httpx.RealClock
	}
	if e.Metrics == nil {
		e.Metrics = NewMetrics(nil)
	}
	if e.HTTP == nil {
		e.HTTP = httpx.NewClient(config.LimitsConfig{}, e.Metrics.HTTP())
	}
	if e.State == nil {
		e.State = NewMemState()
	}
	return e
}

// Registry maps collector kinds to their factories. The daemon's lists
// every kind (collectors/all); a test builds one with the kinds it needs.
type Registry map[string]Factory

// Kinds lists the registered kinds, sorted.
func (r Registry) Kinds() []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// New builds the collector for one source with the factory of its kind.
func (r Registry) New(src config.SourceConfig, env Env) (Collector, error) {
	f, ok := r[src.Kind]
	if !ok {
		return nil, fmt.Errorf("%d: sources[%s].kind: unknown collector kind %q (known: %v)", src.Line, src.ID, src.Kind, r.Kinds())
	}
	return Build(f, src, env)
}

// Build builds the collector for one source with f: it fills env's
// defaults, gives the source a logger and (when env has none) a health
// record of its own, and names the source in f's errors.
func Build(f Factory, src config.SourceConfig, env Env) (Collector, error) {
	env = env.WithDefaults()
	env.Log = env.Log.With("source", src.ID, "kind", src.Kind)
	if env.Health == nil {
		env.Health = NewSourceHealth(src, HealthOptions{Clock: env.Clock})
	}
	c, err := f(src, env)
	if err != nil {
		// Errors from DecodeSpec already name their line and field.
		var fe *config.FieldError
		if errors.As(err, &fe) {
			return nil, err
		}
		return nil, fmt.Errorf("%d: sources[%s]: %w", src.Line, src.ID, err)
	}
	return c, nil
}

// MemState is an in-memory StateStore for tests and check-config.
type MemState struct {
	mu sync.Mutex
	m  map[string]string
}

// NewMemState returns an empty MemState.
func NewMemState() *MemState { return &MemState{m: map[string]string{}} }

func (s *MemState) GetState(_ context.Context, source, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[source+"\x00"+key]
	return v, ok, nil
}

func (s *MemState) PutState(_ context.Context, source, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[source+"\x00"+key] = value
	return nil
}

func (s *MemState) PutStates(_ context.Context, source string, kv map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range kv {
		s.m[source+"\x00"+k] = v
	}
	return nil
}
