package alerts

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"lookout/config"
	"lookout/item"
	"lookout/store"
)

// DefaultAnomalyCooldown is how long the default anomaly rule stays quiet
// after an alert resolves. Real alerting does the same: one page per
// incident, not one per anomalous point. It is a span of time, not a count
// of points, so an hourly series is not muted for twelve days.
const DefaultAnomalyCooldown = 24 * time.Hour

// DefaultAnomalyRefractory is DefaultAnomalyCooldown in points of NAB's
// 5-minute cadence (288), for the NAB robustness harness.
const DefaultAnomalyRefractory = int(DefaultAnomalyCooldown / (5 * time.Minute))

// DefaultAnomalyRule is the anomaly rule `lookout backtest --format nab`
// applies when no rule is named: spikes and drops (robust z), seasonal
// baseline once enough history exists, first crossing alerts, then a
// refractory period. step is the cadence of the series.
func DefaultAnomalyRule(metric string, step time.Duration) config.RuleConfig {
	y, r := DefaultAnomalyYellow, DefaultAnomalyRed
	return config.RuleConfig{
		Name:     "anomaly",
		Kind:     KindAnomaly,
		Metric:   metric,
		Window:   config.Duration(step),
		Levels:   config.Levels{Yellow: &y, Red: &r},
		Cooldown: config.Duration(max(DefaultAnomalyCooldown, step)),
	}
}

// BacktestOptions tunes BacktestNAB.
type BacktestOptions struct {
	// Rule is the rule to replay; nil → DefaultAnomalyRule for the
	// series' cadence. Its metric names the series (default "value").
	Rule *config.RuleConfig
	// Step is the cadence of the series; 0 → the median gap of its first
	// rows.
	Step time.Duration
	Log  *slog.Logger
}

// nabRow is one row of a NAB-format file.
type nabRow struct {
	rawTS, rawValue string
	ts              time.Time
	value           float64
	line            int  // line number in the file (the header is line 1)
	skip            bool // out of time order or a repeated timestamp: not fed to the detector
}

// backtestTimeLayouts are the timestamp forms NAB files use.
var backtestTimeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04:05.999999", time.RFC3339Nano, "2006-01-02T15:04:05"}

func backtestParseTime(s string) (time.Time, error) {
	for _, l := range backtestTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not YYYY-MM-DD HH:MM:SS", s)
}

// readNAB reads a NAB-format series: a header with timestamp and value
// columns, then one row per point in time order. Real exports are not
// always in order: a clock set back (an hour at a daylight-saving change)
// repeats a stretch of timestamps, and some exports write a row twice. A
// row whose timestamp is not after the latest accepted one is kept, so
// that the output lines up with the input, but marked skip: the engine
// never sees it (its clock cannot run backwards). nabSkipped counts them.
func readNAB(r io.Reader) ([]nabRow, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("nab csv: empty input")
		}
		return nil, fmt.Errorf("nab csv header: %w", err)
	}
	tsCol, valCol := -1, -1
	for i, h := range head {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case "timestamp":
			tsCol = i
		case "value":
			valCol = i
		}
	}
	if tsCol < 0 || valCol < 0 {
		return nil, fmt.Errorf("nab csv header %q: needs timestamp and value columns", strings.Join(head, ","))
	}
	var rows []nabRow
	var last time.Time // latest accepted timestamp
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("nab csv line %d: %w", line, err)
		}
		if len(rec) <= tsCol || len(rec) <= valCol {
			return nil, fmt.Errorf("nab csv line %d: %d fields, want at least %d", line, len(rec), max(tsCol, valCol)+1)
		}
		ts, err := backtestParseTime(strings.TrimSpace(rec[tsCol]))
		if err != nil {
			return nil, fmt.Errorf("nab csv line %d: %w", line, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[valCol]), 64)
		if err != nil {
			return nil, fmt.Errorf("nab csv line %d: value %q is not a number", line, rec[valCol])
		}
		row := nabRow{rawTS: rec[tsCol], rawValue: rec[valCol], ts: ts, value: v, line: line}
		if !last.IsZero() && !ts.After(last) {
			row.skip = true
		} else {
			last = ts
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// nabSkipped counts the rows readNAB marked skip and returns the line of
// the first (0 if none).
func nabSkipped(rows []nabRow) (n, firstLine int) {
	for _, r := range rows {
		if r.skip {
			if n == 0 {
				firstLine = r.line
			}
			n++
		}
	}
	return n, firstLine
}

// backtestStep is the median gap between the first accepted rows of a
// series.
func backtestStep(rows []nabRow) time.Duration {
	var gaps []time.Duration
	var prev time.Time
	for i := 0; i < len(rows) && len(gaps) < 20; i++ {
		if rows[i].skip {
			continue
		}
		if !prev.IsZero() {
			if g := rows[i].ts.Sub(prev); g > 0 {
				gaps = append(gaps, g)
			}
		}
		prev = rows[i].ts
	}
	if len(gaps) == 0 {
		return time.Minute
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	step := gaps[len(gaps)/2]
	if step < time.Second {
		step = time.Second
	}
	return step
}

// backtestCollector is the Sink of a backtest: it keeps every event.
type backtestCollector struct{ events []Event }

func (c *backtestCollector) Publish(_ context.Context, ev Event) error {
	c.events = append(c.events, ev)
	return nil
}

// BacktestRestart is a daemon restart during a backtest: the engine stops
// at At and a new one starts Down later; items of the span between are
// not seen (the daemon was down). The new engine takes over what a
// restarted daemon takes over: the alerts the old one left open (as the
// alerts table holds them at At) and its room profiles as last saved,
// Stale before At (0: saved at the stop, as on a clean shutdown; after a
// kill -9 up to the daemon's profile save interval).
type BacktestRestart struct {
	At          time.Time
	Down, Stale time.Duration
}

// backtestStart builds the engine that takes over at `at`: the open
// alerts and the saved room profiles of the run before.
func backtestStart(cfg *config.Config, opts EngineOptions, open []store.AlertRow, profiles []store.RoomProfile, sink *backtestCollector, at time.Time) (*Engine, error) {
	e, err := NewEngine(cfg, sink, opts)
	if err != nil {
		return nil, err
	}
	e.Adopt(open, at)
	if _, err := e.ImportProfiles(profiles, at); err != nil {
		return nil, fmt.Errorf("backtest restart at %s: %w", at.Format(time.RFC3339), err)
	}
	return e, nil
}

// backtestOpenAlerts is what the alerts table would hold as open after
// events: each pending or firing alert's latest state, in the order the
// alerts began.
func backtestOpenAlerts(events []Event) []store.AlertRow {
	var order []string
	rows := map[string]*store.AlertRow{}
	for i := range events {
		ev := &events[i]
		r := rows[ev.AlertID]
		if r == nil {
			r = &store.AlertRow{ID: ev.AlertID}
			rows[ev.AlertID] = r
			order = append(order, ev.AlertID)
		}
		r.Rule, r.RuleKind, r.Severity, r.State = ev.Rule, ev.RuleKind, string(ev.Severity), string(ev.State)
		r.Room, r.Source, r.Platform, r.Labels = ev.Room, ev.Source, ev.Platform, ev.Labels
		r.StartedAt, r.LastSeq, r.Summary, r.UpdatedAt = ev.StartedAt, ev.Seq, ev.Summary, ev.At
		r.Notified = r.Notified || ev.State == Firing
	}
	var out []store.AlertRow
	for _, id := range order {
		if r := rows[id]; r.State == string(Pending) || r.State == string(Firing) {
			out = append(out, *r)
		}
	}
	return out
}

// BacktestNAB reads a NAB series (timestamp,value) and writes
// timestamp,value,anomaly_score,alert: the score in [0, 1] of each point
// and 1 where the engine's rule (by default DefaultAnomalyRule) starts
// firing. The engine runs for real, its clock driven by the timestamps.
// Rows out of time order or repeating a timestamp (a clock set back at a
// daylight-saving change, a row written twice) are not fed to the engine:
// they keep their place in the output, with score 0 and alert 0, so that
// it lines up with the input row for row, and one warning on opts.Log
// gives their count and the first one's line.
func BacktestNAB(r io.Reader, w io.Writer, opts BacktestOptions) error {
	rows, err := readNAB(r)
	if err != nil {
		return err
	}
	if n, line := nabSkipped(rows); n > 0 && opts.Log != nil {
		opts.Log.Warn("backtest: rows out of time order or with a repeated timestamp were skipped (score 0, alert 0 in the output)",
			"skipped", n, "first_line", line, "rows", len(rows))
	}
	scores, alerts, err := backtestNABRows(rows, opts)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	if err := cw.Write([]string{"timestamp", "value", "anomaly_score", "alert"}); err != nil {
		return err
	}
	for i, row := range rows {
		a := "0"
		if alerts[i] {
			a = "1"
		}
		if err := cw.Write([]string{row.rawTS, row.rawValue, strconv.FormatFloat(scores[i], 'f', 6, 64), a}); err != nil {
			return fmt.Errorf("write backtest row: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write backtest: %w", err)
	}
	return bw.Flush()
}

// backtestNABRows runs the engine over parsed rows.
func backtestNABRows(rows []nabRow, opts BacktestOptions) (scores []float64, alerts []bool, err error) {
	step := opts.Step
	if step <= 0 {
		step = backtestStep(rows)
	}
	var rule config.RuleConfig
	if opts.Rule != nil {
		rule = *opts.Rule
	} else {
		rule = DefaultAnomalyRule("value", step)
	}
	metric := rule.Metric
	if metric == "" {
		metric = "value"
		if rule.Kind == KindMetricThreshold || rule.Kind == KindMetricDrop || rule.Kind == KindAnomaly {
			rule.Metric = metric
		}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := &config.Config{Rules: []config.RuleConfig{rule}, File: "backtest"}
	sink := &backtestCollector{}
	var now time.Time
	e, err := NewEngine(cfg, sink, EngineOptions{Now: func() time.Time { return now }, Log: log})
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	scores = make([]float64, len(rows))
	alerts = make([]bool, len(rows))
	key := engineKey{source: "nab"}
	r := e.rules[0]
	for i := range rows {
		if rows[i].skip {
			continue // score 0, no alert: the engine's clock cannot go back
		}
		now = rows[i].ts
		it := item.Item{Source: "nab", Platform: "nab", Kind: item.KindMetric, Metric: metric, TS: now, Value: rows[i].value}
		e.Observe(&it)
		sink.events = sink.events[:0]
		if err := e.Evaluate(ctx, now); err != nil {
			return nil, nil, err
		}
		for _, ev := range sink.events {
			if ev.State == Firing && ev.Prev != Firing {
				alerts[i] = true
			}
		}
		ent := e.keys[key]
		if ent == nil {
			continue
		}
		s := ent.series[r.signals[0].idx]
		switch {
		case s == nil:
		case r.kind == KindAnomaly:
			if s.point.ready && s.point.ts.Equal(now) {
				scores[i] = s.point.score
			}
		default:
			if ent.alerts[0].state == Firing {
				scores[i] = 1
			}
		}
	}
	return scores, alerts, nil
}

// Backtest replays stored items (in time order) through cfg's rules and
// returns the events the engine would have published. Time is driven by
// the items' timestamps, with evaluations every second in between (coarser
// across long gaps).
//
// At each of restarts (in time order) the engine is replaced by a new one,
// as when the daemon restarts: the new engine takes over the old one's open
// alerts (Adopt) and its room profiles (ExportProfiles, ImportProfiles),
// and nothing else.
func Backtest(ctx context.Context, cfg *config.Config, replay func(fn func(item.Item) error) error, restarts ...time.Time) ([]Event, error) {
	rs := make([]BacktestRestart, len(restarts))
	for i, at := range restarts {
		rs[i] = BacktestRestart{At: at}
	}
	return BacktestRestarts(ctx, cfg, replay, rs)
}

// BacktestRestarts is Backtest with restarts that take the daemon down
// for a while and may hand over profiles saved before the stop (see
// BacktestRestart). Restarts must be in time order and not overlap.
func BacktestRestarts(ctx context.Context, cfg *config.Config, replay func(fn func(item.Item) error) error, restarts []BacktestRestart) ([]Event, error) {
	sink := &backtestCollector{}
	var now time.Time
	opts := EngineOptions{Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	e, err := NewEngine(cfg, sink, opts)
	if err != nil {
		return nil, err
	}
	const tick = time.Second
	const maxTicksPerGap = 600
	// The restart under way: profiles saved, engine stopped.
	var (
		saved, stopped bool
		profiles       []store.RoomProfile
		open           []store.AlertRow
	)
	var last time.Time // last evaluation
	evalUpTo := func(t time.Time) error {
		if last.IsZero() {
			return nil
		}
		gap := t.Sub(last)
		step := tick
		if gap > maxTicksPerGap*tick {
			step = (gap / maxTicksPerGap).Truncate(time.Second)
		}
		for at := last.Add(step); !at.After(t); at = at.Add(step) {
			now = at
			if err := e.Evaluate(ctx, at); err != nil {
				return err
			}
			last = at
		}
		return nil
	}
	err = replay(func(it item.Item) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if it.TS.IsZero() {
			return fmt.Errorf("backtest: item %s/%s has no timestamp", it.Source, it.ID)
		}
		for len(restarts) > 0 {
			rs := restarts[0]
			if !saved && rs.Stale > 0 && !it.TS.Before(rs.At.Add(-rs.Stale)) {
				// The last periodic save before the stop.
				at := rs.At.Add(-rs.Stale)
				if err := evalUpTo(at.Truncate(tick)); err != nil {
					return err
				}
				now = at
				profiles, saved = e.ExportProfiles(), true
			}
			if !stopped && !it.TS.Before(rs.At) {
				if err := evalUpTo(rs.At.Truncate(tick)); err != nil {
					return err
				}
				now = rs.At
				if !saved {
					profiles, saved = e.ExportProfiles(), true
				}
				open, stopped = backtestOpenAlerts(sink.events), true
			}
			if !stopped {
				break
			}
			back := rs.At.Add(rs.Down)
			if it.TS.Before(back) {
				return nil // the daemon is down: nobody sees this item
			}
			now = back
			ne, rerr := backtestStart(cfg, opts, open, profiles, sink, back)
			if rerr != nil {
				return rerr
			}
			e, last = ne, back.Truncate(tick)
			restarts, saved, stopped, profiles, open = restarts[1:], false, false, nil, nil
		}
		if !last.IsZero() && it.TS.Before(last) {
			// Out of order by less than a tick is fine; the windows take it.
			if last.Sub(it.TS) > tick {
				return fmt.Errorf("backtest: items out of time order at %s/%s (%s after %s)", it.Source, it.ID, it.TS.Format(time.RFC3339), last.Format(time.RFC3339))
			}
		} else if err := evalUpTo(it.TS.Truncate(tick)); err != nil {
			return err
		}
		if last.IsZero() {
			last = it.TS.Truncate(tick)
		}
		now = it.TS
		e.Observe(&it)
		return nil
	})
	if err != nil {
		return sink.events, fmt.Errorf("backtest replay: %w", err)
	}
	if !last.IsZero() {
		now = last.Add(tick)
		if err := e.Evaluate(ctx, now); err != nil {
			return sink.events, err
		}
	}
	return sink.events, nil
}
