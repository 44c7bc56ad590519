package scenario

import (
	"fmt"
	"time"
)

// What the rules owe the ops team. The shipped config is held to these by
// this package's test and by `lookout backtest --scenario all`.
const (
	// TargetCalmNotifications is how many notifications a calm stream may
	// send: none (calm rooms at any volume, a stream starting, a giveaway
	// flood).
	TargetCalmNotifications = 0
	// TargetCrisisToRed is the longest a crisis may be visible before a
	// red alert, for every kind of crisis.
	TargetCrisisToRed = 60 * time.Second
	// TargetDropToRed is the longest from an audience halving to a red
	// alert.
	TargetDropToRed = 90 * time.Second
	// TargetDropHold is the share of the time the audience stays halved,
	// from the first alert on, that a KPI alert must keep firing.
	TargetDropHold = 0.95
)

// Check is one target held against a result.
type Check struct {
	What string `json:"what"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

// Evaluate holds a result to its scenario's target.
func Evaluate(r *Result) []Check {
	var out []Check
	add := func(what, want, got string, pass bool) {
		out = append(out, Check{What: what, Want: want, Got: got, Pass: pass})
	}
	switch r.Target {
	case TargetSilent:
		n := len(r.Notifications)
		add("notifications", fmt.Sprint(TargetCalmNotifications), fmt.Sprint(n), n <= TargetCalmNotifications)
	case TargetYellowAtMost:
		add("red notifications", "0", fmt.Sprint(r.Red), r.Red == 0)
	case TargetCrisisRed:
		got := fmtDelay(r.ToRed)
		if r.ToRed == Never && r.RedAtOnset {
			got = "never (a red raised before the onset was still firing)"
		}
		add("visible → red", "≤ "+fmtDelay(TargetCrisisToRed), got,
			r.Truth.Visible >= 0 && r.ToRed <= TargetCrisisToRed)
	case TargetAudienceDrop:
		add("drop → red", "≤ "+fmtDelay(TargetDropToRed), fmtDelay(r.ToRed), r.ToRed <= TargetDropToRed)
		add("KPI alert held", fmt.Sprintf("≥ %.0f%%", 100*TargetDropHold), fmtHold(r.Hold), r.Hold >= TargetDropHold)
	case TargetBleed:
		add("KPI alert during the decline", "yellow or red", fmtDelay(r.ToAlert), r.ToAlert != Never)
	}
	return out
}

// fmtDelay writes a delay in seconds ("42s", "-5s"), or "never".
func fmtDelay(d time.Duration) string {
	if d == Never {
		return "never"
	}
	return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
}

// fmtHold writes a hold share as a percentage, or "-" when it does not
// apply.
func fmtHold(h float64) string {
	if h < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*h)
}
