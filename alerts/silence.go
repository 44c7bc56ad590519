package alerts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"lookout/internal/labels"
	"lookout/store"
)

// silencedBy returns the id of an active silence matching the labels, or "".
func silencedBy(silences []store.Silence, ls map[string]string, now time.Time) string {
	for _, s := range silences {
		if s.ActiveAt(now) && s.Matches(ls) {
			return s.ID
		}
	}
	return ""
}

// SilenceCommand implements `lookout silence add|list|expire`:
//
//	add MATCHER… [--for 2h] [--comment C] [--by WHO]   e.g. room=21452505 'severity=~"yellow|green"'
//	list [all]                                          active (and with "all", ended) silences
//	expire ID…                                          end silences now
//
// Matchers are in Alertmanager's syntax (see package labels); an argument
// may hold several, separated by commas: '{rule=~"neg.*", room="1"}'.
func SilenceCommand(ctx context.Context, st *store.Store, sub string, args []string, dur time.Duration, comment, by string, now time.Time, w io.Writer) error {
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
