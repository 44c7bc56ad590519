package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"lookout/alerts"
	lcollectors "lookout/collectors"
	"lookout/collectors/all"
	"lookout/config"
	"lookout/item"
	"lookout/sentiment"
	"lookout/store"
	"lookout/store/pg"

	"strings"

	"text/tabwriter"

	"lookout/internal/labels"
)

// Check builds every part of a config without starting anything, so that
// check-config catches what Load alone cannot: a collector's own keys, a
// rule that names a missing group, a receiver that cannot be built.
func Check(cfg *config.Config) error {
	var errs []error
	// Every error names its line; prefix the file like Parse does.
	at := func(err error) error { return fmt.Errorf("%s:%w", cfg.File, err) }
	env := lcollectors.Env{State: lcollectors.NewMemState(), Log: slog.New(slog.DiscardHandler)}
	for _, src := range cfg.Sources {
		if _, err := all.Registry().New(src, env); err != nil {
			errs = append(errs, at(err))
		}
	}
	if _, err := sentiment.New(sentiment.Options{NeutralThreshold: cfg.Classifier.NeutralThreshold, Groups: cfg.Keywords}); err != nil {
		errs = append(errs, fmt.Errorf("keywords: %w", err))
	}
	if _, err := alerts.NewEngine(cfg, discardSink{}, alerts.EngineOptions{}); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, receiverErrors(cfg)...)
	return errors.Join(errs...)
}

// receiverErrors builds every receiver's notifier of cfg and returns the
// errors, each naming the file, line and receiver.
func receiverErrors(cfg *config.Config) []error {
	var errs []error
	for _, rc := range cfg.Receivers {
		if _, err := alerts.NewNotifier(rc, alerts.NotifierOptions{HTTPClient: http.DefaultClient, Out: io.Discard}); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: receivers[%s]: %w", cfg.File, rc.Line, rc.Name, err))
		}
	}
	return errs
}

type discardSink struct{}

func (discardSink) Publish(context.Context, alerts.Event) error { return nil }

// Backtest replays stored items between from and to through cfg's rules and
// prints the alerts they would have raised.
func Backtest(ctx context.Context, cfg *config.Config, dbPath string, from, to time.Time, w io.Writer) error {
	st, err := store.OpenReadOnly(ctx, dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := sentiment.New(sentiment.Options{NeutralThreshold: cfg.Classifier.NeutralThreshold, Groups: cfg.Keywords})
	if err != nil {
		return err
	}
	events, err := alerts.Backtest(ctx, cfg, func(fn func(item.Item) error) error {
		return st.ReplayItems(ctx, from, to, func(it item.Item) error {
			// Keyword groups may differ from the ones in force when the
			// item was stored: re-score with this config.
			if it.Kind.Textual() && it.Text != "" {
				c.ScoreInto(&it.Score, it.Text)
			}
			return fn(it)
		})
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d alert state changes between %s and %s\n", len(events), from.Format(time.RFC3339), to.Format(time.RFC3339))
	for _, ev := range events {
		fmt.Fprintf(w, "%s  %-8s %-6s %-20s %-14s %s\n", ev.At.Format("2006-01-02 15:04:05"), ev.State, ev.Severity, ev.Rule, ev.Room, ev.Summary)
	}
	return nil
}

// TestAlert sends a sample alert to one receiver.
func TestAlert(ctx context.Context, cfg *config.Config, receiver string, w io.Writer) error {
	for _, rc := range cfg.Receivers {
		if rc.Name != receiver {
			continue
		}
		n, err := alerts.NewNotifier(rc, alerts.NotifierOptions{HTTPClient: &http.Client{Timeout: 15 * time.Second}, Out: w})
		if err != nil {
			return err
		}
		ev := alerts.SampleEvent(time.Now())
		retry, err := n.Notify(ctx, alerts.Notification{Receiver: receiver, GroupKey: "test", Events: []alerts.Event{ev}})
		if err != nil {
			return fmt.Errorf("send to %s failed (retryable: %v): %w", receiver, retry, err)
		}
		fmt.Fprintf(w, "sent a sample alert to %s (%s)\n", receiver, rc.Type())
		return nil
	}
	return fmt.Errorf("no receiver named %q in the config", receiver)
}

// silenceStore is where `lookout silence` keeps silences: the SQLite
// file, or the PostgreSQL store the processors share.
type silenceStore interface {
	AddSilence(ctx context.Context, sil store.Silence, now time.Time) (store.Silence, error)
	ListSilences(ctx context.Context, now time.Time, all bool) ([]store.Silence, error)
	ExpireSilence(ctx context.Context, id string, now time.Time) error
}

// Silence implements `lookout silence add|list|expire` on the SQLite file
// at dbPath, or on the PostgreSQL store when dbPath is a postgres:// URL.
func Silence(ctx context.Context, dbPath, sub string, args []string, dur time.Duration, comment, by string, w io.Writer) error {
	if pg.IsDSN(dbPath) {
		ps, err := pg.Open(ctx, dbPath)
		if err != nil {
			return err
		}
		defer ps.Close()
		return silenceCommand(ctx, ps, sub, args, dur, comment, by, time.Now(), w)
	}
	// Listing or expiring silences in a database that is not there must
	// not leave an empty one behind.
	open := openExisting
	if sub == "add" {
		open = func(ctx context.Context, path string) (*store.Store, error) { return store.Open(ctx, path) }
	}
	st, err := open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	return silenceCommand(ctx, st, sub, args, dur, comment, by, time.Now(), w)
}

// openExisting opens the store at dbPath for a command that only works
// on what the daemon stored: a missing file is an error, not a new empty
// database.
func openExisting(ctx context.Context, dbPath string) (*store.Store, error) {
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("no database at %s (give --db, or run the daemon first): %w", dbPath, err)
	}
	return store.Open(ctx, dbPath)
}

// Ack acknowledges alerts by id (`lookout ack ID…`) in the database at
// dbPath, as the dashboard's Acknowledge button does, and says what it
// did on w.
func Ack(ctx context.Context, dbPath string, ids []string, by, comment string, w io.Writer) error {
	if len(ids) == 0 {
		return errors.New("ack: give the id of at least one alert (the id column of the alerts table, or the dashboard's alert page)")
	}
	st, err := openExisting(ctx, dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	var errs []error
	for _, id := range ids {
		ack, isNew, err := st.AckAlert(ctx, id, by, comment, time.Now())
		switch {
		case err != nil:
			errs = append(errs, err)
		case isNew:
			fmt.Fprintf(w, "acknowledged %s (by %s)\n", id, ack.By)
		default:
			fmt.Fprintf(w, "%s was already acknowledged by %s at %s\n", id, ack.By, ack.At.Local().Format("2006-01-02 15:04:05"))
		}
	}
	return errors.Join(errs...)
}

// StatusQuery is what `lookout status` shows: each source's health as the
// daemon last judged and recorded it (state ok, connecting or broken, and
// since when; the last success; the last error and, in its own column, when
// it happened; why it is broken), its recent item rate from the items
// table, its counters, and the URLs that moved for good (a 301 or 308 the
// daemon follows for the rest of its run: update the configured URL).
// updated_at tells how fresh the row is: the daemon rewrites it every 15 s
// and whenever a state changes.
const StatusQuery = `SELECT h.source, h.kind,
       coalesce(h.state, 'unknown') AS state,
       h.state_since AS since,
       h.last_success,
       round((SELECT count(*) FROM items i
               WHERE i.source = h.source
                 AND i.ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 minutes')) / 10.0, 1) AS items_per_min,
       h.items, h.reconnects, h.errors,
       substr(h.last_error, 1, 80) AS last_error,
       h.last_error_at,
       substr(h.broken, 1, 100) AS broken,
       (SELECT group_concat(m.key || ' -> ' || m.value, '; ') FROM json_each(h.moved) m) AS moved,
       h.updated_at
  FROM source_health h
 ORDER BY h.source`

// silenceCommand implements `lookout silence add|list|expire`:
//
//	add MATCHER… [--for 2h] [--comment C] [--by WHO]   e.g. room=21452505 'severity=~"yellow|green"'
//	list [all]                                          active (and with "all", ended) silences
//	expire ID…                                          end silences now
//
// Matchers are in Alertmanager's syntax (see package labels); an argument
// may hold several, separated by commas: '{rule=~"neg.*", room="1"}'.
func silenceCommand(ctx context.Context, st silenceStore, sub string, args []string, dur time.Duration, comment, by string, now time.Time, w io.Writer) error {
	switch sub {
	case "add":
		if len(args) == 0 {
			return errors.New(`silence add: give at least one matcher, e.g. room=21452505 or 'rule=~"crisis.*"'`)
		}
		ms, err := labels.ParseAll(args)
		if err != nil {
			return fmt.Errorf("silence add: %w", err)
		}
		if dur <= 0 {
			return fmt.Errorf("silence add: --for must be positive, not %s", dur)
		}
		sil, err := st.AddSilence(ctx, store.Silence{Matchers: ms, EndsAt: now.Add(dur), Comment: comment, CreatedBy: by}, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "silence %s added: %s until %s\n", sil.ID, sil.MatchersString(), sil.EndsAt.UTC().Format(time.RFC3339))
		return nil
	case "list":
		all := len(args) > 0 && args[0] == "all"
		ss, err := st.ListSilences(ctx, now, all)
		if err != nil {
			return err
		}
		if len(ss) == 0 {
			fmt.Fprintln(w, "no silences")
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tMATCHERS\tENDS\tBY\tCOMMENT")
		for _, s := range ss {
			state := "active"
			switch {
			case !s.ExpiredAt.IsZero():
				state = "expired"
			case !now.Before(s.EndsAt):
				state = "ended"
			case now.Before(s.StartsAt):
				state = "pending"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, state, s.MatchersString(),
				s.EndsAt.UTC().Format(time.RFC3339), s.CreatedBy, strings.ReplaceAll(s.Comment, "\n", " "))
		}
		return tw.Flush()
	case "expire":
		if len(args) == 0 {
			return errors.New("silence expire: give the id(s) to expire (see lookout silence list)")
		}
		for _, id := range args {
			if err := st.ExpireSilence(ctx, id, now); err != nil {
				return err
			}
			fmt.Fprintf(w, "silence %s expired\n", id)
		}
		return nil
	}
	return fmt.Errorf("silence: unknown subcommand %q (want add, list or expire)", sub)
}
