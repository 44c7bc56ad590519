package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"lookout/collectors"
	"lookout/config"
	"lookout/daemon"
	"lookout/item"
)

// cmdTry is `lookout try`: one dry run of a source, printed.
func cmdTry(ctx context.Context, args []string) error {
	return runTry(ctx, args, os.Stdout, os.Stderr)
}

func runTry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("try")
	var cfgPath string
	fs.StringVar(&cfgPath, "config", "config.yaml", "config file (for SOURCE_ID)")
	fs.StringVar(&cfgPath, "c", "config.yaml", "config file (for SOURCE_ID)")
	kind := fs.String("kind", "", "try URL as a source of this kind (rss, html, json_api) instead of a configured source")
	spec := fs.String("spec", "", `more source keys for --kind, as YAML, e.g. "{selectors: {item: li.post, text: p}}"`)
	format := fs.String("format", "table", "table or jsonl")
	dur := fs.Duration("for", 15*time.Second, "longest run: streams are watched this long, pollers stop after one poll")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *format != "table" && *format != "jsonl" {
		return fmt.Errorf("--format must be table or jsonl")
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one SOURCE_ID, or --kind KIND and one URL")
	}
	opts := daemon.TryOptions{For: *dur, Version: buildVersion()}
	var src config.SourceConfig
	if *kind != "" {
		if src, err = daemon.TrySource(*kind, pos[0], *spec); err != nil {
			return err
		}
	} else {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return err
		}
		found := false
		for _, s := range cfg.Sources {
			if s.ID == pos[0] {
				src, found = s, true
			}
		}
		if !found {
			return fmt.Errorf("%s: no source with id %q", cfgPath, pos[0])
		}
		opts.Limits = cfg.Limits
	}
	res, err := daemon.Try(ctx, src, opts)
	if err != nil {
		return err
	}
	switch *format {
	case "jsonl":
		if err := writeTryJSONL(stdout, res); err != nil {
			return err
		}
		writeTrySummary(stderr, res)
	default:
		writeTryTable(stdout, res)
		writeTrySummary(stdout, res)
	}
	if res.Health.State == collectors.HealthBroken || (len(res.Items) == 0 && res.Health.LastError != "") {
		return fmt.Errorf("source %s did not work; see above", src.ID)
	}
	return nil
}

// tryItem is one item as `try --format jsonl` prints it.
type tryItem struct {
	ID       string            `json:"id"`
	Kind     item.Kind         `json:"kind"`
	Time     string            `json:"time"`
	Room     string            `json:"room,omitempty"`
	Author   string            `json:"author,omitempty"`
	AuthorID string            `json:"author_id,omitempty"`
	Text     string            `json:"text,omitempty"`
	URL      string            `json:"url,omitempty"`
	Metric   string            `json:"metric,omitempty"`
	Value    *float64          `json:"value,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

func tryTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func writeTryJSONL(w io.Writer, res *daemon.TryResult) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, it := range res.Items {
		ti := tryItem{ID: it.ID, Kind: it.Kind, Time: tryTime(it.TS), Room: it.Room, Author: it.Author, AuthorID: it.AuthorID,
			Text: it.Text, URL: it.URL, Metric: it.Metric, Labels: it.Labels}
		if it.HasValue || it.Value != 0 || it.Metric != "" {
			v := it.Value
			ti.Value = &v
		}
		if err := enc.Encode(ti); err != nil {
			return err
		}
	}
	return nil
}

// tryCell fits s on one line of at most n runes.
func tryCell(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func tryLabels(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + l[k]
	}
	return strings.Join(keys, ",")
}

func writeTryTable(w io.Writer, res *daemon.TryResult) {
	if len(res.Items) == 0 {
		fmt.Fprintln(w, "(no items)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME (UTC)\tAUTHOR\tTEXT\tURL\tLABELS")
	for _, it := range res.Items {
		text := it.Text
		if it.Metric != "" {
			text = fmt.Sprintf("%s = %g", it.Metric, it.Value)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", tryCell(it.ID, 24), tryTime(it.TS), tryCell(it.Author, 16),
			tryCell(text, 60), it.URL, tryLabels(it.Labels))
	}
	tw.Flush()
}

func writeTrySummary(w io.Writer, res *daemon.TryResult) {
	how := "stream watched"
	if res.Polled {
		how = "one poll"
	}
	noun := "items"
	if len(res.Items) == 1 {
		noun = "item"
	}
	fmt.Fprintf(w, "\n%d %s from %s (%s, %s); nothing was stored\n", len(res.Items), noun, res.Source.ID, res.Source.Kind, how)
	h := res.Health
	line := "health: " + string(h.State)
	if h.Reason != "" {
		line += " (" + h.Reason + ": " + h.Detail + ")"
	} else if h.LastError != "" {
		line += " (last error: " + h.LastError + ")"
	}
	fmt.Fprintln(w, line)
	for _, x := range h.Warnings {
		fmt.Fprintln(w, "warning: "+x)
	}
	froms := make([]string, 0, len(res.Moved))
	for from := range res.Moved {
		froms = append(froms, from)
	}
	sort.Strings(froms)
	for _, from := range froms {
		fmt.Fprintf(w, "moved permanently: %s -> %s (update the configured URL)\n", from, res.Moved[from])
	}
	for _, l := range res.Warnings {
		fmt.Fprintln(w, "log: "+l)
	}
}
