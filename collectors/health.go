package collectors

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"lookout/collectors/httpx"
	"lookout/config"
	"lookout/item"
)

// SourceBrokenAfter is how many attempts (polls, connections) in a row may
// fail before a source counts as broken. A failure time will not mend (an
// expired cookie, a refused login or signature) counts at once.
const SourceBrokenAfter = 3

// HealthState is what `lookout status` and lookout_source_up say about a
// source.
type HealthState string

const (
	// HealthConnecting: not working yet: starting, or retrying after a
	// failure that has not crossed a threshold.
	HealthConnecting HealthState = "connecting"
	// HealthOK: the last thing the source did was work.
	HealthOK HealthState = "ok"
	// HealthBroken: a threshold was crossed (see SourceHealth).
	HealthBroken HealthState = "broken"
)

// HealthOptions set when a source counts as broken. Zero fields get the
// defaults.
type HealthOptions struct {
	// FailuresToBreak: attempts in a row that failed (default
	// SourceBrokenAfter).
	FailuresToBreak int
	// BrokenAfter: how long a source may go without working while it
	// fails, or while it answers only with what cannot be used (default
	// 30s).
	BrokenAfter time.Duration
	// FlapLimit connections that got going and then failed within
	// FlapWindow make a source broken even though each reconnect works
	// (defaults 5 and twice BrokenAfter).
	FlapLimit  int
	FlapWindow time.Duration
	// ReassertEvery: while broken, the 1 sample is repeated this often so
	// that an alert adopted after a restart gets its verdict (default 1m).
	ReassertEvery time.Duration
	// httpx.Clock is the time source (default the wall clock).
	Clock httpx.Clock
	// Changed is called, outside any lock, after a report that may change
	// the source's state; it must not block. The daemon uses it to judge
	// at once instead of at its next tick.
	Changed func()
}

func (o HealthOptions) withDefaults() HealthOptions {
	if o.FailuresToBreak <= 0 {
		o.FailuresToBreak = SourceBrokenAfter
	}
	if o.BrokenAfter <= 0 {
		o.BrokenAfter = 30 * time.Second
	}
	if o.FlapLimit <= 0 {
		o.FlapLimit = 5
	}
	if o.FlapWindow <= 0 {
		o.FlapWindow = 2 * o.BrokenAfter
	}
	if o.ReassertEvery <= 0 {
		o.ReassertEvery = time.Minute
	}
	if o.Clock == nil {
		o.Clock = httpx.RealClock
	}
	return o
}

// SourceHealth is the one way a source says whether it works. Collectors
// report what happens (Succeeded, Failed, Unusable, Drifted); whoever runs
// the source (the daemon, one SourceHealth per source, handed over in
// Env.Health) judges the reports against HealthOptions, shows the result
// (Status) and turns it into item.MetricSourceBroken samples (Report).
//
// A source is broken while any of these holds:
//   - the last failure will not mend by waiting (permanent: a refused
//     login, token or signature, an expired cookie);
//   - FailuresToBreak attempts in a row failed;
//   - it has failed for BrokenAfter without working in between (a poller,
//     see PollsEvery: for FailuresToBreak polls' time);
//   - for BrokenAfter it answered only with what cannot be used
//     (undecodable frames, unparseable documents);
//   - FlapLimit connections got going and failed again within FlapWindow
//     (streams only);
//   - its last answer yielded nothing where earlier ones did (shape drift).
//
// Every method is safe for concurrent use, and does nothing on a nil
// *SourceHealth.
type SourceHealth struct {
	source, platform string
	opts             HealthOptions

	mu          sync.Mutex
	pollEvery   time.Duration // set by PollsEvery; 0 for a stream
	state       HealthState
	since       time.Time
	lastOK      time.Time
	lastErr     string
	lastErrAt   time.Time
	streak      int  // failures since the last success
	permanent   bool // the latest failure will not mend by waiting
	failReason  string
	failDetail  string
	badSince    time.Time   // first failure or unusable answer since the last success
	junkSince   time.Time   // first unusable answer since the last success
	junkLast    time.Time   // latest of them
	failSince   time.Time   // first failure (not unusable answer) since the last success
	drift       string      // where the last answer yielded nothing, "" when fine
	driftDetail string      // what was wrong with it, "" for "no items"
	drops       []time.Time // failures right after a success, newest last
	reported    bool        // the last sample said broken
	reportedAt  time.Time
	warnings    map[string]string // see Warn
}

// NewSourceHealth starts a source's health as connecting.
func NewSourceHealth(src config.SourceConfig, opts HealthOptions) *SourceHealth {
	opts = opts.withDefaults()
	return &SourceHealth{source: src.ID, platform: src.Kind, opts: opts, state: HealthConnecting, since: opts.Clock.Now()}
}

// ResumeBroken says the previous run left the source reported broken, so
// that the first success reports it recovered and a source still broken is
// reported again at once.
func (h *SourceHealth) ResumeBroken() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.reported, h.reportedAt = true, time.Time{}
	h.mu.Unlock()
}

// PollsEvery says the source polls about every d rather than holding a
// connection: a failed poll is followed by a wait, not by a live
// connection, so "failing for BrokenAfter" stretches to FailuresToBreak
// polls, and flapping (a connection concept) does not apply.
func (h *SourceHealth) PollsEvery(d time.Duration) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.pollEvery = d
	h.mu.Unlock()
}

// Polls reports whether the source said it polls (PollsEvery) rather
// than holding a connection.
func (h *SourceHealth) Polls() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pollEvery > 0
}

// Succeeded records that the source just worked: a poll got an answer it
// could read, a connection was accepted, a message was decoded.
func (h *SourceHealth) Succeeded() {
	if h == nil {
		return
	}
	now := h.opts.Clock.Now()
	h.mu.Lock()
	h.lastOK = now
	h.streak, h.permanent = 0, false
	h.badSince, h.failSince, h.junkSince, h.junkLast = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	notify := h.state != HealthOK
	h.mu.Unlock()
	if notify {
		h.changed()
	}
}

// Failed records a failed attempt (a poll, a dial, a connection that
// ended) with its metrics reason. permanent marks a failure waiting will
// not mend.
func (h *SourceHealth) Failed(reason string, err error, permanent bool) {
	if h == nil {
		return
	}
	now := h.opts.Clock.Now()
	h.mu.Lock()
	if h.streak == 0 && !h.lastOK.IsZero() && h.badSince.IsZero() {
		h.drops = append(h.drops, now)
	}
	h.streak++
	h.permanent = permanent
	if h.failSince.IsZero() {
		h.failSince = now
	}
	h.bad(now, reason, err)
	h.mu.Unlock()
	h.changed()
}

// Unusable records an answer that arrived but could not be used (an
// undecodable frame, a document that does not parse). Unlike Failed it
// does not count as a failed attempt: only a stretch of BrokenAfter with
// nothing usable in between makes the source broken.
func (h *SourceHealth) Unusable(reason string, err error) {
	if h == nil {
		return
	}
	now := h.opts.Clock.Now()
	h.mu.Lock()
	if h.junkSince.IsZero() {
		h.junkSince = now
	}
	h.junkLast = now
	h.bad(now, reason, err)
	h.mu.Unlock()
	h.changed()
}

func (h *SourceHealth) bad(now time.Time, reason string, err error) {
	if h.badSince.IsZero() {
		h.badSince = now
	}
	h.failReason, h.failDetail = reason, err.Error()
	h.lastErr, h.lastErrAt = err.Error(), now
}

// Warned records something people should know that does not stop the
// source working: statuses a catch-up could not fetch (a gap), a mapping
// that has matched nothing for a while. It becomes the source's last
// error (`lookout status`) without changing its state; the caller logs
// it and counts it under reason.
func (h *SourceHealth) Warned(reason string, err error) {
	if h == nil {
		return
	}
	now := h.opts.Clock.Now()
	h.mu.Lock()
	h.lastErr, h.lastErrAt = reason+": "+err.Error(), now
	h.mu.Unlock()
	h.changed()
}

// Drifted records where an answer yielded no items where earlier ones did
// ("" once items are back); detail, when not empty, says what else was
// wrong with it (entries whose mapped text is gone).
func (h *SourceHealth) Drifted(where, detail string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.drift, h.driftDetail = where, detail
	h.mu.Unlock()
	h.changed()
}

// Warn records a problem that leaves the source working but its output
// doubtful (text that decoded to replacement characters, a redirect the
// config should follow), under kind; an empty detail clears it. Warnings
// show in Status; they do not make the source broken.
func (h *SourceHealth) Warn(kind, detail string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	if detail == "" {
		delete(h.warnings, kind)
	} else {
		if h.warnings == nil {
			h.warnings = map[string]string{}
		}
		h.warnings[kind] = detail
	}
	h.mu.Unlock()
}

func (h *SourceHealth) changed() {
	if h.opts.Changed != nil {
		h.opts.Changed()
	}
}

// HealthStatus is a source's health at one moment.
type HealthStatus struct {
	State       HealthState
	Since       time.Time // when it entered State
	LastSuccess time.Time // zero: never
	LastError   string    // the latest failure or unusable answer, "" if none
	LastErrorAt time.Time
	Reason      string // while broken: the metrics reason, e.g. dial, auth, decode, flapping
	Detail      string // while broken: what happened, for people
	// Warnings are "kind: detail" lines (see Warn), sorted.
	Warnings []string
}

// Status judges the source now.
func (h *SourceHealth) Status() HealthStatus {
	if h == nil {
		return HealthStatus{State: HealthConnecting}
	}
	now := h.opts.Clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	reason, detail := h.judge(now)
	var warnings []string
	for k, v := range h.warnings {
		warnings = append(warnings, k+": "+v)
	}
	sort.Strings(warnings)
	return HealthStatus{State: h.state, Since: h.since, LastSuccess: h.lastOK, LastError: h.lastErr, LastErrorAt: h.lastErrAt,
		Reason: reason, Detail: detail, Warnings: warnings}
}

// Report judges the source now and returns the item.MetricSourceBroken
// sample that is due, if any: 1 (with reason and detail labels) when it
// turns broken and every ReassertEvery while it stays so, 0 once when it
// works again, nothing while all is well.
func (h *SourceHealth) Report() (item.Item, bool) {
	if h == nil {
		return item.Item{}, false
	}
	now := h.opts.Clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	reason, detail := h.judge(now)
	broken := reason != ""
	switch {
	case broken && (!h.reported || now.Sub(h.reportedAt) >= h.opts.ReassertEvery):
	case !broken && h.reported && h.state == HealthOK:
	default:
		return item.Item{}, false
	}
	h.reported, h.reportedAt = broken, now
	return SourceBrokenItem(h.source, h.platform, now, reason, detail), true
}

// Judge works out the verdict at now and moves state along; h.mu is held.
func (h *SourceHealth) judge(now time.Time) (reason, detail string) {
	o := h.opts
	keep := 0
	for _, t := range h.drops {
		if now.Sub(t) < o.FlapWindow {
			h.drops[keep] = t
			keep++
		}
	}
	h.drops = h.drops[:keep]
	switch {
	case h.streak > 0 && (h.permanent || h.streak >= o.FailuresToBreak):
		reason, detail = h.failReason, h.failDetail
		if h.streak > 1 {
			detail = fmt.Sprintf("%d attempts in a row failed; last: %s", h.streak, h.failDetail)
		}
	case !h.failSince.IsZero() && now.Sub(h.failSince) >= max(o.BrokenAfter, time.Duration(o.FailuresToBreak)*h.pollEvery):
		reason = h.failReason
		detail = fmt.Sprintf("failing for %s; last: %s", now.Sub(h.failSince).Round(time.Second), h.failDetail)
	case !h.junkSince.IsZero() && h.junkLast.Sub(h.junkSince) >= o.BrokenAfter:
		reason = h.failReason
		detail = fmt.Sprintf("nothing usable for %s; last: %s", h.junkLast.Sub(h.junkSince).Round(time.Second), h.failDetail)
	case h.pollEvery == 0 && len(h.drops) >= o.FlapLimit:
		reason = "flapping"
		detail = fmt.Sprintf("%d connections failed within %s after getting going; last: %s", len(h.drops), o.FlapWindow, h.lastErr)
	case h.drift != "":
		reason = "shape_drift"
		detail = "answered but yielded no items where earlier polls did (" + h.drift + "); check the selectors or mapping"
		if h.driftDetail != "" {
			detail = h.driftDetail + " (" + h.drift + ")"
		}
	}
	state := HealthConnecting
	switch {
	case reason != "":
		state = HealthBroken
	case !h.lastOK.IsZero() && h.badSince.IsZero():
		state = HealthOK
	}
	if state != h.state {
		h.state, h.since = state, now
	}
	return reason, detail
}

// SourceBrokenItem is one item.MetricSourceBroken sample: value 1 with
// the reason and detail as labels, or, with reason "", value 0 and reason
// "recovered". It has no room, so the alert engine keeps it apart from the
// source's rooms.
func SourceBrokenItem(source, platform string, now time.Time, reason, detail string) item.Item {
	it := item.Item{Source: source, Platform: platform, Kind: item.KindMetric,
		ID: fmt.Sprintf("%s:%d", item.MetricSourceBroken, now.UnixNano()), TS: now,
		Metric: item.MetricSourceBroken, Labels: map[string]string{"reason": "recovered"}}
	if reason != "" {
		it.Value = 1
		it.Labels = map[string]string{"reason": reason, "detail": detail}
	}
	return it
}

// ErrPlannedEnd marks the end of a stream session the server announced
// (a restart notice): not a failure.
var ErrPlannedEnd = errors.New("planned end")

// healthError names a failure for the health report. permanent marks one
// waiting will not mend: the platform refused our login, token or
// signature.
type healthError struct {
	reason    string
	permanent bool
	err       error
}

func (e *healthError) Error() string { return e.err.Error() }
func (e *healthError) Unwrap() error { return e.err }

// WithReason names err for the health report (see HealthReason); permanent
// marks a failure waiting will not mend.
func WithReason(reason string, permanent bool, err error) error {
	return &healthError{reason: reason, permanent: permanent, err: err}
}

// HealthReason names a stream failure for the health report and says
// whether it is permanent: a reason given with WithReason wins; HTTP 401
// and 403 on a handshake are refused credentials.
func HealthReason(err error) (reason string, permanent bool) {
	var he *healthError
	if errors.As(err, &he) {
		return he.reason, he.permanent
	}
	var se *httpx.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden:
			return "auth", true
		case se.Status == http.StatusTooManyRequests:
			return "rate_limited", false
		}
		return fmt.Sprintf("http_%d", se.Status), false
	}
	if errors.Is(err, httpx.ErrCircuitOpen) {
		return "circuit_open", false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout", false
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return "dial", false
	}
	return "disconnected", false
}

// StreamEnded reports a stream session's end as a failure, unless ctx
// ended it (err nil) or the server announced it (ErrPlannedEnd).
func (h *SourceHealth) StreamEnded(err error) {
	if err == nil || errors.Is(err, ErrPlannedEnd) {
		return
	}
	reason, permanent := HealthReason(err)
	h.Failed(reason, err, permanent)
}
