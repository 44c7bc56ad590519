package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	lcollectors "lookout/collectors"
	"lookout/collectors/all"
	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/item"
)

// TryOptions tune Try.
type TryOptions struct {
	// For bounds the run: a stream is watched this long, a poller stops
	// after its first poll or at For, whichever comes first (default 15s).
	For time.Duration
	// MaxItems stops the run once this many items came (default 1000).
	MaxItems int
	// Version goes into the User-Agent, as in the daemon.
	Version string
	// Limits are the politeness settings (a config's limits; zero: the
	// defaults).
	Limits config.LimitsConfig
	// Collectors are the kinds (default all.Registry()).
	Collectors lcollectors.Registry
	// Clock is the wall clock (default httpx.RealClock); tests pin it.
	Clock httpx.Clock
}

// TryResult is what one dry run of a source saw.
type TryResult struct {
	Source config.SourceConfig
	// Items as the collector emitted them, in order: what the daemon would
	// classify and store.
	Items []item.Item
	// Health is the source's health at the end of the run.
	Health lcollectors.HealthStatus
	// Warnings are the collector's warning and error log lines.
	Warnings []string
	// Moved lists permanent redirects, configured URL → new URL.
	Moved map[string]string
	// Polled: a poller finished its poll (false: a stream, or a poll cut
	// short by For).
	Polled  bool
	Elapsed time.Duration
}

// Try runs one source once without the pipeline: nothing is classified or
// stored and no state is kept (it starts from an empty state, as a new
// source would). It is what `lookout try` prints.
func Try(ctx context.Context, src config.SourceConfig, opts TryOptions) (*TryResult, error) {
	if opts.For <= 0 {
		opts.For = 15 * time.Second
	}
	if opts.MaxItems <= 0 {
		opts.MaxItems = 1000
	}
	if opts.Collectors == nil {
		opts.Collectors = all.Registry()
	}
	if opts.Clock == nil {
		opts.Clock = httpx.RealClock
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelWarn,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == "source" || a.Key == "kind") {
				return slog.Attr{}
			}
			return a
		}}))
	runCtx, cancel := context.WithTimeout(ctx, opts.For)
	defer cancel()
	clock := &tryClock{Clock: opts.Clock, done: cancel}
	hc := httpx.NewClientWith(opts.Limits, nil, httpx.Options{Version: opts.Version, Log: log})
	health := lcollectors.NewSourceHealth(src, lcollectors.HealthOptions{Clock: opts.Clock})
	env := lcollectors.Env{HTTP: hc, State: lcollectors.NewMemState(), Log: log, Clock: clock, Health: health}
	c, err := opts.Collectors.New(src, env)
	if err != nil {
		return nil, err
	}
	clock.polls = health.Polls()
	res := &TryResult{Source: src}
	var mu sync.Mutex
	emit := func(ctx context.Context, it item.Item) error {
		mu.Lock()
		defer mu.Unlock()
		if it.Kind == item.KindState {
			return nil
		}
		res.Items = append(res.Items, it)
		if len(res.Items) >= opts.MaxItems {
			cancel()
		}
		return nil
	}
	start := time.Now()
	runErr := c.Run(runCtx, emit)
	res.Elapsed = time.Since(start)
	res.Polled = clock.polls && clock.slept()
	res.Health = health.Status()
	res.Moved = hc.Moved()
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if l != "" {
			res.Warnings = append(res.Warnings, l)
		}
	}
	if runErr != nil && ctx.Err() == nil {
		res.Warnings = append(res.Warnings, "collector stopped: "+runErr.Error())
	}
	return res, ctx.Err()
}

// tryClock ends a poller's run when its loop goes to sleep after the
// first poll (or after a failed attempt): that sleep is the end of "once".
// Streams keep the clock as it is and run until For.
type tryClock struct {
	httpx.Clock
	done  context.CancelFunc
	polls bool

	mu  sync.Mutex
	did bool
}

func (c *tryClock) After(d time.Duration) <-chan time.Time {
	if c.polls {
		c.mu.Lock()
		c.did = true
		c.mu.Unlock()
		c.done()
		return make(chan time.Time) // never fires: the context ended the wait
	}
	return c.Clock.After(d)
}

func (c *tryClock) slept() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.did
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TrySource builds the source `lookout try --kind KIND URL` runs: id
// "try", the kind and url, plus spec: more of the source's keys
// (selectors, mapping, timezone…) as one YAML mapping, e.g.
// "{selectors: {item: li.post, text: p}}".
func TrySource(kind, rawURL, spec string) (config.SourceConfig, error) {
	keys := map[string]any{}
	if strings.TrimSpace(spec) != "" {
		if err := yaml.Unmarshal([]byte(spec), &keys); err != nil {
			return config.SourceConfig{}, fmt.Errorf("--spec: %w", err)
		}
	}
	keys["id"], keys["kind"], keys["url"] = "try", kind, rawURL
	text, err := yaml.Marshal(keys)
	if err != nil {
		return config.SourceConfig{}, fmt.Errorf("--spec: %w", err)
	}
	return config.NewSourceConfig(string(text))
}
