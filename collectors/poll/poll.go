// Package poll is the loop the polling collectors (json_api, html,
// bilibili_comments, weibo) share: poll, wait the source's interval with
// jitter, and after a failure wait for the server's Retry-After or an
// exponential backoff. Every failure is logged with its reason and counted
// in Metrics.Errors, and the loop keeps going: a poller only returns when
// ctx is done. State keeps what a source emitted across polls and restarts;
// ParseTime and ParseStamp read the timestamps pages and APIs show.
package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/config"
)

// defaultEvery is the interval when the source sets none.
const defaultEvery = 5 * time.Minute

// maxBackoff caps the wait after repeated failures that carry no
// Retry-After.
const maxBackoff = 30 * time.Minute

// Loop runs one poller.
type Loop struct {
	source  string
	every   time.Duration
	floor   time.Duration // set by AtLeast
	jitter  float64
	env     collectors.Env
	backoff *httpx.Backoff
	health  *collectors.SourceHealth
}

// NewLoop is the loop of one polling source: its interval and jitter from
// src (every 5 minutes ± 10% by default), its health and metrics from env.
func NewLoop(src config.SourceConfig, env collectors.Env) *Loop {
	every := src.Every.D()
	if every <= 0 {
		every = defaultEvery
	}
	jitter := src.Jitter
	if jitter <= 0 {
		jitter = 0.1
	}
	jitter = min(jitter, 0.9)
	base := min(max(every/4, 5*time.Second), time.Minute)
	env.Health.PollsEvery(every)
	return &Loop{source: src.ID, every: every, jitter: jitter, env: env,
		backoff: &httpx.Backoff{Base: base, Max: max(maxBackoff, every)}, health: env.Health}
}

// interval is every ± jitter·every, every raised to the AtLeast floor.
func (p *Loop) interval() time.Duration { return Interval(max(p.every, p.floor), p.jitter) }

// Interval is the regular wait between polls, with jitter: for a failure
// that polling sooner would not mend (ErrWait with it as the least wait).
func (p *Loop) Interval() time.Duration { return p.interval() }

// AtLeast raises the regular interval to d for the polls that follow, for
// a source that names its own minimum (a feed's <ttl>); 0 returns to the
// source's own interval. Call it from the poll function.
func (p *Loop) AtLeast(d time.Duration) { p.floor = d }

// Run calls once until ctx is done, reporting each poll's outcome to the
// source's health (see SourceHealth).
func (p *Loop) Run(ctx context.Context, _ collectors.Emit, once func(context.Context) error) error {
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
func (p *Loop) failed(ctx context.Context, err error) time.Duration {
	reason := Reason(err)
	p.env.Metrics.Errors.WithLabelValues(p.source, reason).Inc()
	wait := httpx.RetryDelay(err, p.backoff)
	var pe *reasonError
	if errors.As(err, &pe) && pe.wait > wait {
		wait = pe.wait
	}
	var co *httpx.CircuitOpenError
	if errors.As(err, &co) && co.RetryAfter > wait {
		wait = co.RetryAfter
	}
	level := slog.LevelWarn
	if reason == "cookie_expired" || reason == "auth" || reason == "robots_disallowed" {
		level = slog.LevelError
	}
	p.env.Log.Log(ctx, level, "poll failed", "reason", reason, "err", err, "retry_in", wait.Round(time.Second))
	p.health.Failed(reason, err, level == slog.LevelError)
	return wait
}

// Keep saves the state of a poll cut short (emit failed: the daemon is
// stopping), so that what went out is not emitted again. A failure is
// logged and counted; the poll's own error is the one it returns.
func (p *Loop) Keep(ctx context.Context, st *State) {
	sctx, cancel := collectors.StateContext(ctx)
	defer cancel()
	if err := st.Save(sctx, p.env.State, p.source); err != nil {
		p.env.StateSaveFailed(ctx, p.source, "poll state", err)
	}
}

// reasonError attaches a metrics reason and a minimum wait to an error.
type reasonError struct {
	reason string
	wait   time.Duration
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// Err names err's reason for the errors counter and the health report.
func Err(reason string, err error) error { return &reasonError{reason: reason, err: err} }

// ErrWait is Err with the least time to wait before the next poll.
func ErrWait(reason string, wait time.Duration, err error) error {
	return &reasonError{reason: reason, wait: wait, err: err}
}

// Reason names err for the errors counter.
func Reason(err error) string {
	var pe *reasonError
	if errors.As(err, &pe) && pe.reason != "" {
		return pe.reason
	}
	if errors.Is(err, httpx.ErrCircuitOpen) {
		return "circuit_open"
	}
	if errors.Is(err, httpx.ErrTooLarge) {
		return "too_large"
	}
	if errors.Is(err, httpx.ErrRobotsDisallowed) {
		return "robots_disallowed"
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

// maxSeen bounds the remembered ids per source.
const maxSeen = 500

// State is a source's incremental state. Each field is its own key in
// the StateStore so that `lookout query` can show it; save writes them all
// in one write, after the items they cover were emitted (see StateStore).
type State struct {
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

// NewState is an empty state: nothing emitted yet.
func NewState() *State { return &State{seen: map[string]bool{}} }

// LoadState reads a source's state (empty when it has none).
func LoadState(ctx context.Context, st collectors.StateStore, source string) (*State, error) {
	s := NewState()
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
				s.MarkSeen(id)
			}
		}
	}
	return s, nil
}

// Save writes the state in one write (see StateStore for when).
func (s *State) Save(ctx context.Context, st collectors.StateStore, source string) error {
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

// Seen reports whether id was emitted by a poll the state remembers.
func (s *State) Seen(id string) bool { return s.seen[id] }

// MarkSeen remembers id as emitted (the oldest ids are forgotten past
// maxSeen).
func (s *State) MarkSeen(id string) {
	if id == "" || s.seen[id] {
		return
	}
	s.seen[id] = true
	s.order = append(s.order, id)
	if len(s.order) > maxSeen {
		drop := len(s.order) - maxSeen
		for _, old := range s.order[:drop] {
			delete(s.seen, old)
		}
		s.order = append(s.order[:0:0], s.order[drop:]...)
	}
}

// Verdict says what to do with one entry of a newest-first listing.
type Verdict int

const (
	Fresh Verdict = iota // emit it
	Skip                 // already emitted (or pinned and old): skip, keep reading
	Reach                // reached the newest item of the last poll: stop paging
)

// Judge classifies an entry. Listings are newest first, so the last poll's
// newest id marks where this poll's new items end. Ids emitted before are
// skipped wherever they appear (pinned posts, reshuffles), and so is
// anything older than the last poll's newest timestamp minus slack, which
// keeps a deleted last id from replaying the whole history.
func (s *State) Judge(id string, ts time.Time) Verdict {
	if id != "" && id == s.LastID {
		return Reach
	}
	if s.seen[id] {
		return Skip
	}
	if !ts.IsZero() && !s.LastTS.IsZero() && ts.Before(s.LastTS.Add(-timeSlack)) {
		return Skip
	}
	return Fresh
}

// timeSlack tolerates clock skew and late indexing between posts.
const timeSlack = time.Hour

// Emitted records an item as emitted.
func (s *State) Emitted(id string, ts time.Time) {
	s.MarkSeen(id)
	s.LastID = id
	if ts.After(s.LastTS) {
		s.LastTS = ts
	}
}

// Shape records how many entries a successful (HTTP 200) page yielded.
// Zero where there used to be entries is shape drift: the site changed its
// markup or the API its payload, and a quiet source would hide it. It is
// logged as source_broken (loudly once per breakage: the state key
// "shape_drift" remembers it across restarts), counted, and reported to
// the source's health, which the daemon turns into item.MetricSourceBroken
// so that a source_broken rule alerts on it.
func (p *Loop) Shape(ctx context.Context, st *State, n int, where string) {
	p.ShapeFields(ctx, st, n, "", where)
}

// ShapeFields is Shape for a page whose n entries all came with a mapped
// field empty (missing names it, e.g. `mapping.text "body"`; "" when
// none is): a renamed field is shape drift too, even on a source's first
// poll, rather than items stored without their text.
func (p *Loop) ShapeFields(ctx context.Context, st *State, n int, missing, where string) {
	if n > 0 && missing == "" {
		st.Yielded = true
		p.health.Drifted("", "")
		if st.Drift != "" {
			p.env.Log.Info("source recovered from shape drift", "where", where, "since", st.Drift)
			st.Drift = ""
		}
		return
	}
	detail := "page answered 200 but yielded no items where earlier polls did; check the selectors or mapping"
	if n > 0 {
		st.Yielded = true
		detail = fmt.Sprintf("%d entries came with %s empty in every one; the field was renamed or moved: check the mapping", n, missing)
	} else if !st.Yielded {
		return
	}
	if n > 0 {
		p.health.Drifted(where, detail)
	} else {
		p.health.Drifted(where, "")
	}
	p.env.Metrics.Errors.WithLabelValues(p.source, "shape_drift").Inc()
	level := slog.LevelWarn // once per breakage; every poll after is counted, not shouted
	if st.Drift != "" {
		level = slog.LevelDebug
	}
	p.env.Log.Log(ctx, level, "source_broken", "reason", "shape_drift", "where", where, "detail", detail)
	if st.Drift == "" {
		st.Drift = p.env.Clock.Now().UTC().Format(time.RFC3339) + " " + where
	}
}

// Location is the zone of a source's times written without an offset:
// the kind's own option when set (html time_zone, mapping.time_zone), else
// the source's timezone, else config.DefaultTimezone (Asia/Shanghai).
func Location(kindZone string, src config.SourceConfig) (*time.Location, error) {
	name := kindZone
	if name == "" {
		name = src.Timezone
	}
	return config.LoadTimezone(name)
}

var relativeTime = regexp.MustCompile(`^(\d+)\s*(秒|分钟|小时|天)前$`)

// ParseTime reads a timestamp as pages show it: with layout when given,
// otherwise the formats jsonmap knows plus the relative forms Chinese sites
// use (刚刚, 5分钟前, 今天 12:00, 昨天 12:00, 11-20 12:00, 11-20). Times
// without an offset are in loc.
func ParseTime(s, layout string, loc *time.Location, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if layout != "" {
		t, err := time.ParseInLocation(layout, s, loc)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q does not match layout %q", s, layout)
		}
		return t, nil
	}
	if t, err := ParseStamp(s, "auto", loc); err == nil {
		return t, nil
	}
	local := now.In(loc)
	if s == "刚刚" {
		return now, nil
	}
	if m := relativeTime.FindStringSubmatch(s); m != nil {
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

// Layouts tried by the auto time format, after numbers and RFC 3339.
var layouts = []string{
	time.RFC3339Nano,
	"Mon Jan 02 15:04:05 -0700 2006", // Weibo created_at
	time.RFC1123Z, time.RFC1123,
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006/01/02 15:04:05",
	"2006-01-02",
}

// ParseStamp reads a timestamp in format: unix (s), unix_ms (ms),
// unix_us (us), rfc3339, auto (a Unix time at any of those scales or one
// of the common layouts) or a Go layout. Times without an offset are in
// loc.
func ParseStamp(s, format string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty timestamp")
	}
	unix := func(scale string) (time.Time, error) {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			// integers exactly: float64 would blur milliseconds
			if scale == "auto" {
				switch a := max(n, -n); {
				case a >= 1e14:
					scale = "us"
				case a >= 1e11:
					scale = "ms"
				default:
					scale = "s"
				}
			}
			const limit = int64(math.MaxInt64 / 1000000000)
			switch {
			case scale == "s" && n > -limit && n < limit:
				return time.Unix(n, 0).UTC(), nil
			case scale == "ms":
				return time.UnixMilli(n).UTC(), nil
			case scale == "us":
				return time.UnixMicro(n).UTC(), nil
			}
			return time.Time{}, fmt.Errorf("%q is out of range", s)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return time.Time{}, fmt.Errorf("%q is not a number", s)
		}
		if scale == "auto" {
			switch a := math.Abs(f); {
			case a >= 1e14:
				scale = "us"
			case a >= 1e11:
				scale = "ms"
			default:
				scale = "s"
			}
		}
		var ns float64
		switch scale {
		case "s":
			ns = f * 1e9
		case "ms":
			ns = f * 1e6
		case "us":
			ns = f * 1e3
		}
		if math.Abs(ns) > math.MaxInt64/2 {
			return time.Time{}, fmt.Errorf("%q is out of range", s)
		}
		return time.Unix(0, int64(ns)).UTC(), nil
	}
	switch format {
	case "unix", "unix_s", "s":
		return unix("s")
	case "unix_ms", "ms":
		return unix("ms")
	case "unix_us", "us":
		return unix("us")
	case "rfc3339":
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not RFC 3339", s)
		}
		return t, nil
	case "", "auto":
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return unix("auto")
		}
		for _, l := range layouts {
			if t, err := time.ParseInLocation(l, s, loc); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("%q: unknown time format (set time_format)", s)
	default:
		t, err := time.ParseInLocation(format, s, loc)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q does not match layout %q", s, format)
		}
		return t, nil
	}
}

// Interval spreads a poller's period: every scaled by a uniform factor
// in [1-jitter, 1+jitter] (jitter clamped to [0, 0.9]), so that sources
// configured alike do not poll in lockstep.
func Interval(every time.Duration, jitter float64) time.Duration {
	if every <= 0 {
		return 0
	}
	if jitter <= 0 || math.IsNaN(jitter) {
		return every
	}
	jitter = min(jitter, 0.9)
	f := 1 - jitter + 2*jitter*rand.Float64()
	return time.Duration(float64(every) * f)
}
