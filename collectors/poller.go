package collectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"lookout/collectors/httpx"
	"lookout/config"
)

// The polling collectors (json_api, html, bilibili_comments, weibo) share
// this loop: poll, wait the source's interval with jitter, and after a
// failure wait for the server's Retry-After or an exponential backoff. Every
// failure is logged with its reason and counted in Metrics.Errors, and the
// loop keeps going: a poller only returns when ctx is done.

// pollDefaultEvery is the interval when the source sets none.
const pollDefaultEvery = 5 * time.Minute

// pollMaxBackoff caps the wait after repeated failures that carry no
// Retry-After.
const pollMaxBackoff = 30 * time.Minute

// pollLoop runs one poller.
type pollLoop struct {
	source  string
	every   time.Duration
	jitter  float64
	env     Env
	backoff *httpx.Backoff
	health  *SourceHealth
}

func pollNewLoop(src config.SourceConfig, env Env) *pollLoop {
	every := src.Every.D()
	if every <= 0 {
		every = pollDefaultEvery
	}
	jitter := src.Jitter
	if jitter <= 0 {
		jitter = 0.1
	}
	jitter = min(jitter, 0.9)
	base := min(max(every/4, 5*time.Second), time.Minute)
	env.Health.PollsEvery(every)
	return &pollLoop{source: src.ID, every: every, jitter: jitter, env: env,
		backoff: &httpx.Backoff{Base: base, Max: max(pollMaxBackoff, every)}, health: env.Health}
}

// interval is every ± jitter·every.
func (p *pollLoop) interval() time.Duration { return httpx.PollInterval(p.every, p.jitter) }

// run calls once until ctx is done, reporting each poll's outcome to the
// source's health (see SourceHealth).
func (p *pollLoop) run(ctx context.Context, _ Emit, once func(context.Context) error) error {
	for {
		err := once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := p.interval()
		if err != nil {
			wait = p.failed(ctx, err)
		} else {
			p.health.Succeeded()
			p.backoff.Reset()
		}
		if httpx.Sleep(ctx, p.env.Clock, wait) != nil {
			return nil
		}
	}
}

// failed logs and counts err and returns how long to wait before retrying.
func (p *pollLoop) failed(ctx context.Context, err error) time.Duration {
	reason := pollReason(err)
	p.env.Metrics.Errors.WithLabelValues(p.source, reason).Inc()
	wait := httpx.RetryDelay(err, p.backoff)
	var pe *pollError
	if errors.As(err, &pe) && pe.wait > wait {
		wait = pe.wait
	}
	var co *httpx.CircuitOpenError
	if errors.As(err, &co) && co.RetryAfter > wait {
		wait = co.RetryAfter
	}
	level := slog.LevelWarn
	if reason == "cookie_expired" || reason == "auth" {
		level = slog.LevelError
	}
	p.env.Log.Log(ctx, level, "poll failed", "reason", reason, "err", err, "retry_in", wait.Round(time.Second))
	p.health.Failed(reason, err, level == slog.LevelError)
	return wait
}

// keep saves the state of a poll cut short (emit failed: the daemon is
// stopping), so that what went out is not emitted again. A failure is
// logged and counted; the poll's own error is the one it returns.
func (p *pollLoop) keep(ctx context.Context, st *pollState) {
	sctx, cancel := stateCtx(ctx)
	defer cancel()
	if err := st.save(sctx, p.env.State, p.source); err != nil {
		stateSaveFailed(ctx, p.env, p.source, "poll state", err)
	}
}

// pollError attaches a metrics reason and a minimum wait to an error.
type pollError struct {
	reason string
	wait   time.Duration
	err    error
}

func (e *pollError) Error() string { return e.err.Error() }
func (e *pollError) Unwrap() error { return e.err }

func pollErr(reason string, err error) error { return &pollError{reason: reason, err: err} }

func pollErrWait(reason string, wait time.Duration, err error) error {
	return &pollError{reason: reason, wait: wait, err: err}
}

// pollReason names err for the errors counter.
func pollReason(err error) string {
	var pe *pollError
	if errors.As(err, &pe) && pe.reason != "" {
		return pe.reason
	}
	if errors.Is(err, httpx.ErrCircuitOpen) {
		return "circuit_open"
	}
	var se *httpx.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Status == http.StatusTooManyRequests:
			return "rate_limited"
		case se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden:
			return "auth"
		}
		return "http_" + strconv.Itoa(se.Status)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return "timeout"
		}
		return "network"
	}
	var syn *json.SyntaxError
	var ute *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &ute) {
		return "decode"
	}
	return "error"
}

// pollMaxSeen bounds the remembered ids per source.
const pollMaxSeen = 500

// pollState is a source's incremental state. Each field is its own key in
// the StateStore so that `lookout query` can show it; save writes them all
// in one write, after the items they cover were emitted (see StateStore).
type pollState struct {
	LastID       string    // newest id emitted
	LastTS       time.Time // newest timestamp emitted
	Cursor       string    // forward cursor for APIs that page towards the present
	ETag         string
	LastModified string
	Yielded      bool   // some poll has produced items (shape drift needs a before)
	Drift        string // non-empty while the source is broken

	seen  map[string]bool
	order []string // seen ids, oldest first
}

func pollLoadState(ctx context.Context, st StateStore, source string) (*pollState, error) {
	s := &pollState{seen: map[string]bool{}}
	get := func(key string) (string, error) {
		v, _, err := st.GetState(ctx, source, key)
		if err != nil {
			return "", fmt.Errorf("load state %s: %w", key, err)
		}
		return v, nil
	}
	var err error
	var ts, yielded, seen string
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"last_id", &s.LastID}, {"last_ts", &ts}, {"cursor", &s.Cursor}, {"etag", &s.ETag},
		{"last_modified", &s.LastModified}, {"yielded", &yielded}, {"shape_drift", &s.Drift}, {"seen", &seen},
	} {
		if *f.dst, err = get(f.key); err != nil {
			return nil, err
		}
	}
	if ts != "" {
		s.LastTS, _ = time.Parse(time.RFC3339Nano, ts)
	}
	s.Yielded = yielded == "1"
	if seen != "" {
		var ids []string
		if json.Unmarshal([]byte(seen), &ids) == nil {
			for _, id := range ids {
				s.markSeen(id)
			}
		}
	}
	return s, nil
}

func (s *pollState) save(ctx context.Context, st StateStore, source string) error {
	ts := ""
	if !s.LastTS.IsZero() {
		ts = s.LastTS.UTC().Format(time.RFC3339Nano)
	}
	yielded := ""
	if s.Yielded {
		yielded = "1"
	}
	seen, err := json.Marshal(s.order)
	if err != nil {
		return fmt.Errorf("save state: seen ids: %w", err)
	}
	kv := map[string]string{
		"last_id": s.LastID, "last_ts": ts, "cursor": s.Cursor, "etag": s.ETag,
		"last_modified": s.LastModified, "yielded": yielded, "shape_drift": s.Drift, "seen": string(seen),
	}
	if err := st.PutStates(ctx, source, kv); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

func (s *pollState) markSeen(id string) {
	if id == "" || s.seen[id] {
		return
	}
	s.seen[id] = true
	s.order = append(s.order, id)
	if len(s.order) > pollMaxSeen {
		drop := len(s.order) - pollMaxSeen
		for _, old := range s.order[:drop] {
			delete(s.seen, old)
		}
		s.order = append(s.order[:0:0], s.order[drop:]...)
	}
}

// pollVerdict says what to do with one entry of a newest-first listing.
type pollVerdict int

const (
	pollNew   pollVerdict = iota // emit it
	pollSkip                     // already emitted (or pinned and old): skip, keep reading
	pollReach                    // reached the newest item of the last poll: stop paging
)

// judge classifies an entry. Listings are newest first, so the last poll's
// newest id marks where this poll's new items end. Ids emitted before are
// skipped wherever they appear (pinned posts, reshuffles), and so is
// anything older than the last poll's newest timestamp minus slack, which
// keeps a deleted last id from replaying the whole history.
func (s *pollState) judge(id string, ts time.Time) pollVerdict {
	if id != "" && id == s.LastID {
		return pollReach
	}
	if s.seen[id] {
		return pollSkip
	}
	if !ts.IsZero() && !s.LastTS.IsZero() && ts.Before(s.LastTS.Add(-pollTimeSlack)) {
		return pollSkip
	}
	return pollNew
}

// pollTimeSlack tolerates clock skew and late indexing between posts.
const pollTimeSlack = time.Hour

// emitted records an item as emitted.
func (s *pollState) emitted(id string, ts time.Time) {
	s.markSeen(id)
	s.LastID = id
	if ts.After(s.LastTS) {
		s.LastTS = ts
	}
}

// shape records how many entries a successful (HTTP 200) page yielded.
// Zero where there used to be entries is shape drift: the site changed its
// markup or the API its payload, and a quiet source would hide it. It is
// logged as source_broken (loudly once per breakage: the state key
// "shape_drift" remembers it across restarts), counted, and reported to
// the source's health, which the daemon turns into item.MetricSourceBroken
// so that a source_broken rule alerts on it.
func (p *pollLoop) shape(ctx context.Context, st *pollState, n int, where string) {
	if n > 0 {
		st.Yielded = true
		p.health.Drifted("")
		if st.Drift != "" {
			p.env.Log.Info("source recovered from shape drift", "where", where, "since", st.Drift)
			st.Drift = ""
		}
		return
	}
	if !st.Yielded {
		return
	}
	p.health.Drifted(where)
	p.env.Metrics.Errors.WithLabelValues(p.source, "shape_drift").Inc()
	level := slog.LevelWarn // once per breakage; every poll after is counted, not shouted
	if st.Drift != "" {
		level = slog.LevelDebug
	}
	p.env.Log.Log(ctx, level, "source_broken", "reason", "shape_drift", "where", where,
		"detail", "page answered 200 but yielded no items where earlier polls did; check the selectors or mapping")
	if st.Drift == "" {
		st.Drift = p.env.Clock.Now().UTC().Format(time.RFC3339) + " " + where
	}
}

// pollLocation loads a time zone. Asia/Shanghai is built in so that the
// common case works on machines without tzdata.
func pollLocation(name string) (*time.Location, error) {
	loc, err := time.LoadLocation(name)
	if err == nil {
		return loc, nil
	}
	switch name {
	case "Asia/Shanghai", "Asia/Chongqing", "PRC", "Asia/Hong_Kong", "Asia/Taipei":
		return time.FixedZone("CST", 8*3600), nil
	}
	return nil, err
}

var pollRelative = regexp.MustCompile(`^(\d+)\s*(秒|分钟|小时|天)前$`)

// pollParseTime reads a timestamp as pages show it: with layout when given,
// otherwise the formats jsonmap knows plus the relative forms Chinese sites
// use (刚刚, 5分钟前, 今天 12:00, 昨天 12:00, 11-20 12:00, 11-20). Times
// without an offset are in loc.
func pollParseTime(s, layout string, loc *time.Location, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if layout != "" {
		t, err := time.ParseInLocation(layout, s, loc)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q does not match layout %q", s, layout)
		}
		return t, nil
	}
	if t, err := jsonmapTime(s, "auto", loc); err == nil {
		return t, nil
	}
	local := now.In(loc)
	if s == "刚刚" {
		return now, nil
	}
	if m := pollRelative.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"秒": time.Second, "分钟": time.Minute, "小时": time.Hour, "天": 24 * time.Hour}[m[2]]
		return now.Add(-time.Duration(n) * unit), nil
	}
	day := func(d time.Time, hm string) (time.Time, error) {
		t, err := time.ParseInLocation("15:04", strings.TrimSpace(hm), loc)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: unknown time format", s)
		}
		return time.Date(d.Year(), d.Month(), d.Day(), t.Hour(), t.Minute(), 0, 0, loc), nil
	}
	switch {
	case strings.HasPrefix(s, "今天"):
		return day(local, strings.TrimPrefix(s, "今天"))
	case strings.HasPrefix(s, "昨天"):
		return day(local.AddDate(0, 0, -1), strings.TrimPrefix(s, "昨天"))
	}
	for _, l := range []string{"01-02 15:04", "01-02"} {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			t = time.Date(local.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, loc)
			if t.After(now.Add(24 * time.Hour)) {
				t = t.AddDate(-1, 0, 0) // "12-31" seen in January is last year
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: unknown time format (set time_layout)", s)
}
