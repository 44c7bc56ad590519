package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"lookout/alerts/scenario"
	"lookout/config"
)

// backtestScenarios is `lookout backtest --scenario NAME|all|list`: it
// runs scripted live-room scenarios through the config's rules and prints
// what an ops team would have been paged, against the targets. It fails
// when a scenario misses its target, so it can gate a rules change.
func backtestScenarios(ctx context.Context, which, cfgPath, format string, seeds int, w io.Writer) error {
	if format == "nab" { // the flag's default belongs to --input
		format = "text"
	}
	if format != "text" && format != "json" {
		return fmt.Errorf("--format: text or json with --scenario, not %q", format)
	}
	if which == "list" {
		return scenarioList(w, format)
	}
	var list []*scenario.Scenario
	if which == "all" {
		list = scenario.Library()
	} else {
		for _, name := range strings.Split(which, ",") {
			s, ok := scenario.Lookup(strings.TrimSpace(name))
			if !ok {
				return fmt.Errorf("--scenario: no scenario %q (try --scenario list)", name)
			}
			list = append(list, s)
		}
	}
	if seeds < 1 {
		return fmt.Errorf("--seeds must be at least 1, not %d", seeds)
	}
	if seeds > 1 {
		var all []*scenario.Scenario
		for _, s := range list {
			for k := range seeds {
				all = append(all, s.Reseed(k))
			}
		}
		list = all
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	sc, err := scenario.NewScorer(cfg)
	if err != nil {
		return err
	}
	began := time.Now()
	results, err := scenario.RunAll(ctx, cfg, sc, list)
	if err != nil {
		return err
	}
	if format == "json" {
		err = scenarioJSON(w, results)
	} else {
		err = scenarioTable(w, cfgPath, results, time.Since(began))
	}
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios miss their targets with %s", failed, len(results), cfgPath)
	}
	return nil
}

func scenarioList(w io.Writer, format string) error {
	lib := scenario.Library()
	if format == "json" {
		type row struct {
			Name        string  `json:"name"`
			Kind        string  `json:"kind"`
			DurationS   float64 `json:"duration_s"`
			Target      string  `json:"target"`
			Description string  `json:"description"`
		}
		rows := make([]row, 0, len(lib))
		for _, s := range lib {
			rows = append(rows, row{s.Name, string(s.Kind), s.Duration.Seconds(), s.Target.String(), s.Description})
		}
		return scenarioEncode(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tKIND\tDURATION\tTARGET\tDESCRIPTION")
	for _, s := range lib {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, scenarioDur(s.Duration), s.Target, s.Description)
	}
	return tw.Flush()
}

func scenarioTable(w io.Writer, cfgPath string, results []*scenario.Result, took time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tKIND\tMSGS\tNOTIFY (Y/R)\tPER HOUR\tTO ALERT\tTO RED\tKPI HOLD\tTARGET\tRESULT\tRULES (Y/R)")
	passed := 0
	for _, r := range results {
		verdict := "pass"
		if r.Pass {
			passed++
		} else {
			verdict = "FAIL"
		}
		toRed := scenarioDelay(r.ToRed)
		if r.ToRed == scenario.Never && r.RedAtOnset {
			toRed = "red before onset"
		}
		hold := "-"
		if r.Hold >= 0 {
			hold = fmt.Sprintf("%.0f%%", 100*r.Hold)
			if r.Truth.Recovers && !r.Resolved {
				hold += ", no resolve"
			}
			if r.AfterRecovery > 0 {
				hold += fmt.Sprintf(", %d after recovery", r.AfterRecovery)
			}
		}
		var rules []string
		for _, rc := range r.ByRule {
			rules = append(rules, fmt.Sprintf("%s %d/%d", rc.Rule, rc.Yellow, rc.Red))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d (%d/%d)\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Kind, r.Messages,
			len(r.Notifications), r.Yellow, r.Red, r.PerHour, scenarioDelay(r.ToAlert), toRed, hold, r.Target, verdict,
			cmp.Or(strings.Join(rules, ", "), "-"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d of %d scenarios meet their targets with %s (%s).\n", passed, len(results), cfgPath, took.Round(time.Millisecond))
	fmt.Fprintln(w, "TO ALERT / TO RED: crisis from when complaints reach 5% of the last 30 s of chat; KPI from when the audience starts to fall (KPI rules only).")
	for _, r := range results {
		for _, c := range r.Checks {
			if !c.Pass {
				fmt.Fprintf(w, "  %s: %s %s, want %s\n", r.Scenario, c.What, c.Got, c.Want)
			}
		}
	}
	return nil
}

func scenarioJSON(w io.Writer, results []*scenario.Result) error {
	type notice struct {
		AtS        float64 `json:"at_s"`
		Rule       string  `json:"rule"`
		Severity   string  `json:"severity"`
		Escalation bool    `json:"escalation,omitempty"`
		Summary    string  `json:"summary"`
	}
	type row struct {
		Scenario      string               `json:"scenario"`
		Kind          string               `json:"kind"`
		Description   string               `json:"description"`
		DurationS     float64              `json:"duration_s"`
		Source        string               `json:"source"`
		Messages      int                  `json:"messages"`
		Metrics       int                  `json:"metrics"`
		Notifications int                  `json:"notifications"`
		Yellow        int                  `json:"yellow"`
		Red           int                  `json:"red"`
		PerHour       float64              `json:"per_hour"`
		BeforeOnset   int                  `json:"before_onset"`
		RedAtOnset    bool                 `json:"red_at_onset"`
		OnsetS        *float64             `json:"onset_s"`
		VisibleS      *float64             `json:"visible_s"`
		ToAlertS      *float64             `json:"to_alert_s"`
		ToRedS        *float64             `json:"to_red_s"`
		Hold          *float64             `json:"kpi_hold"`
		Resolved      *bool                `json:"resolved_after_recovery"`
		ResolvedS     *float64             `json:"resolved_s_after_recovery"`
		AfterRecovery *int                 `json:"notifications_after_recovery"`
		ByRule        []scenario.RuleCount `json:"by_rule"`
		Target        string               `json:"target"`
		Pass          bool                 `json:"pass"`
		Checks        []scenario.Check     `json:"checks"`
		Notices       []notice             `json:"notices"`
		Labels        map[string]int       `json:"messages_by_label"`
		ElapsedS      float64              `json:"elapsed_s"`
	}
	secs := func(d time.Duration) *float64 {
		if d == scenario.Never {
			return nil
		}
		v := d.Seconds()
		return &v
	}
	offset := func(d time.Duration) *float64 {
		if d < 0 {
			return nil
		}
		return secs(d)
	}
	rows := make([]row, 0, len(results))
	for _, r := range results {
		x := row{Scenario: r.Scenario, Kind: string(r.Kind), Description: r.Description, DurationS: r.Duration.Seconds(),
			Source: r.Source, Messages: r.Messages, Metrics: r.Metrics, Notifications: len(r.Notifications),
			Yellow: r.Yellow, Red: r.Red, PerHour: r.PerHour, BeforeOnset: r.BeforeOnset, RedAtOnset: r.RedAtOnset,
			OnsetS: offset(r.Truth.Onset), VisibleS: offset(r.Truth.Visible), ToAlertS: secs(r.ToAlert), ToRedS: secs(r.ToRed),
			ByRule: r.ByRule, Target: r.Target.String(), Pass: r.Pass, Checks: r.Checks, Labels: r.Truth.Messages,
			ElapsedS: r.Elapsed.Seconds(), Notices: []notice{}}
		if r.Hold >= 0 {
			h := r.Hold
			x.Hold = &h
			if r.Truth.Recovers {
				ok, n := r.Resolved, r.AfterRecovery
				x.Resolved, x.AfterRecovery = &ok, &n
				if ok {
					x.ResolvedS = secs(r.ResolvedAfter)
				}
			}
		}
		for _, n := range r.Notifications {
			x.Notices = append(x.Notices, notice{AtS: n.At.Seconds(), Rule: n.Rule, Severity: string(n.Severity),
				Escalation: n.Escalation, Summary: n.Summary})
		}
		rows = append(rows, x)
	}
	return scenarioEncode(w, rows)
}

func scenarioEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// scenarioDelay writes a delay in whole seconds, or "never".
func scenarioDelay(d time.Duration) string {
	if d == scenario.Never {
		return "never"
	}
	return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
}

func scenarioDur(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return d.String()
}
