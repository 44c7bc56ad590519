package scenario

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"lookout/config"
	"lookout/item"
)

// shortCalm is how long the steady calm rooms run under -short or the
// race detector (the CLI always runs them in full).
const shortCalm = 10 * time.Minute

func TestLibraryIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	kinds := map[Kind]int{}
	for _, s := range Library() {
		if seen[s.Name] {
			t.Errorf("duplicate scenario %q", s.Name)
		}
		seen[s.Name] = true
		kinds[s.Kind]++
		if s.Duration <= 0 || s.Description == "" {
			t.Errorf("%s: duration %v, description %q", s.Name, s.Duration, s.Description)
		}
		switch s.Kind {
		case KindCalm, KindCrisis, KindKPI, KindOther:
		default:
			t.Errorf("%s: kind %q", s.Name, s.Kind)
		}
		if got, ok := Lookup(s.Name); !ok || got.Name != s.Name {
			t.Errorf("Lookup(%q) = %v, %v", s.Name, got, ok)
		}
	}
	if kinds[KindCalm] < 5 || kinds[KindCrisis] < 4 || kinds[KindKPI] < 2 {
		t.Errorf("library has %v", kinds)
	}
	if _, ok := Lookup("no-such-scenario"); ok {
		t.Error("Lookup found a scenario that does not exist")
	}
}

// texts collects the first n chat texts of a scenario.
func texts(s *Scenario, n int) []string {
	var out []string
	for it, l := range s.Items() {
		if l < labelCount {
			out = append(out, it.Text)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

func TestGeneratorIsDeterministic(t *testing.T) {
	s, _ := Lookup("crisis-quality")
	a, b := texts(s, 5000), texts(s, 5000)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatal("two runs of the same scenario differ")
	}
	other := *s
	other.Seed++
	if strings.Join(texts(&other, 5000), "\n") == strings.Join(a, "\n") {
		t.Fatal("another seed yields the same stream")
	}
}

func TestItemsAreInTimeOrder(t *testing.T) {
	for _, s := range Library() {
		s = s.Truncate(12 * time.Minute)
		var last time.Time
		for it, _ := range s.Items() {
			if it.TS.Before(last) {
				t.Fatalf("%s: %s after %s", s.Name, it.TS, last)
			}
			last = it.TS
			if it.Kind != item.KindChat && it.Kind != item.KindMetric {
				t.Fatalf("%s: kind %q", s.Name, it.Kind)
			}
		}
		if end := Start.Add(s.Duration); !last.Before(end) {
			t.Errorf("%s: item at %s, stream ends %s", s.Name, last, end)
		}
	}
}

func TestMessagesAreVaried(t *testing.T) {
	s, _ := Lookup("calm-50")
	all := texts(s, 15000) // five minutes
	distinct := map[string]int{}
	for _, x := range all {
		distinct[x]++
	}
	if len(distinct) < 3000 {
		t.Errorf("%d distinct texts in %d messages", len(distinct), len(all))
	}
	for x, n := range distinct {
		if n > len(all)/50 {
			t.Errorf("%q is %d of %d messages", x, n, len(all))
		}
	}
}

func TestGroundTruth(t *testing.T) {
	for _, s := range Library() {
		if s.Kind == KindCalm && s.Duration > shortCalm && s.Name != "giveaway-flood" {
			s = s.Truncate(shortCalm) // the steady rooms: the share is the same throughout
		}
		tr := s.Truth()
		chat := tr.Chat()
		share := func(l Label) float64 { return float64(tr.Messages[l.String()]) / float64(chat) }
		switch {
		case s.Kind == KindCrisis:
			// 2% → 40% over 3 min from the onset: 5% in the trailing
			// 30 s about half a minute in.
			if d := tr.Visible - tr.Onset; tr.Visible < 0 || d < 15*time.Second || d > 45*time.Second {
				t.Errorf("%s: visible at %v, onset at %v", s.Name, tr.Visible, tr.Onset)
			}
		case tr.Visible >= 0:
			t.Errorf("%s is no crisis but becomes visible at %v", s.Name, tr.Visible)
		}
		if strings.HasPrefix(s.Name, "calm-") {
			if g := share(LabelGrumble); g < 0.10 || g > 0.20 {
				t.Errorf("%s: grumbles %.1f%%", s.Name, 100*g)
			}
			if r := share(LabelRefundQuestion); r < 0.002 || r > 0.005 {
				t.Errorf("%s: refund questions %.2f%%", s.Name, 100*r)
			}
			if c := tr.Messages[LabelComplaint.String()]; c != 0 {
				t.Errorf("%s: %d complaints", s.Name, c)
			}
		}
		if s.Kind == KindKPI && (tr.BadFrom < 0 || tr.BadTo <= tr.BadFrom) {
			t.Errorf("%s: bad interval %v–%v", s.Name, tr.BadFrom, tr.BadTo)
		}
		if tr.Metrics == 0 {
			t.Errorf("%s: no KPI samples", s.Name)
		}
	}
	s, _ := Lookup("giveaway-flood")
	if n := s.Truth().Messages[LabelGiveaway.String()]; n < 10000 {
		t.Errorf("giveaway flood has %d lines", n)
	}
}

// Between two streams the room is off air: no chat, no KPI samples, and
// live_status says so at both ends.
func TestOffAirBetweenStreams(t *testing.T) {
	s, _ := Lookup("two-streams")
	off0, off1 := Start.Add(20*time.Minute), Start.Add(60*time.Minute)
	var status []string
	before, after := 0, 0
	for it, _ := range s.Items() {
		switch {
		case it.Metric == item.MetricLiveStatus:
			status = append(status, fmt.Sprintf("%v@%v", it.Value, it.TS.Sub(Start)))
		case it.TS.Before(off0):
			before++
		case !it.TS.Before(off1):
			after++
		default:
			t.Fatalf("%s %q at %v, while off air", it.Kind, it.Text, it.TS.Sub(Start))
		}
	}
	if got := strings.Join(status, " "); got != "0@20m0s 1@1h0m0s" {
		t.Errorf("live_status samples %s, want 0 at 20m and 1 at 1h", got)
	}
	if before < 50000 || after < 25000 {
		t.Errorf("%d items in the first stream, %d in the second", before, after)
	}
}

func TestFloodsAndBots(t *testing.T) {
	s, _ := Lookup("bot-spam")
	authors := map[string]bool{}
	n := 0
	for it, l := range s.Items() {
		if l == LabelAd {
			n++
			authors[it.Author] = true
			if it.Text != phraseBotAd {
				t.Fatalf("ad line %q", it.Text)
			}
		}
	}
	if n < 1000 || len(authors) != 3 {
		t.Errorf("bots: %d lines from %d authors", n, len(authors))
	}
}

func TestHoldShare(t *testing.T) {
	m := func(d int) time.Duration { return time.Duration(d) * time.Minute }
	cases := []struct {
		spans    []*span
		from, to int
		want     float64
	}{
		{nil, 10, 20, 0},
		{[]*span{{from: m(11), to: m(30)}}, 10, 20, 1},
		{[]*span{{from: m(11), to: m(12)}}, 10, 21, 0.1},
		{[]*span{{from: m(11), to: m(13)}, {from: m(12), to: m(14)}, {from: m(16), to: m(21)}}, 10, 21, 0.8},
		{[]*span{{from: m(0), to: m(5)}}, 10, 20, 0},
	}
	for i, c := range cases {
		if got := holdShare(c.spans, m(c.from), m(c.to)); fmt.Sprintf("%.3f", got) != fmt.Sprintf("%.3f", c.want) {
			t.Errorf("case %d: hold %.3f, want %.3f", i, got, c.want)
		}
	}
}

// loadShippedConfig loads the repository's config.yaml as check-config
// does: unset secrets get a placeholder.
func loadShippedConfig(t *testing.T) *config.Config {
	t.Helper()
	return loadConfig(t, "../../config.yaml")
}

func loadConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.ReferencedEnv(text) {
		if os.Getenv(v) == "" {
			t.Setenv(v, config.CheckPlaceholder)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestShippedRulesMeetTargets runs the whole library through the shipped
// config.yaml and holds every scenario to its target.
func TestShippedRulesMeetTargets(t *testing.T) {
	cfg := loadShippedConfig(t)
	sc, err := NewScorer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lib := Library()
	if testing.Short() || scenarioRaceEnabled {
		for i, s := range lib {
			if strings.HasPrefix(s.Name, "calm-") {
				lib[i] = s.Truncate(shortCalm)
			}
		}
	}
	began := time.Now()
	results, err := RunAll(context.Background(), cfg, sc, lib)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tkind\tdur\tmsgs\tyellow\tred\tper h\tby rule\tto alert\tto red\thold\ttarget\tresult")
	for _, r := range results {
		var rules []string
		for _, rc := range r.ByRule {
			rules = append(rules, fmt.Sprintf("%s %d/%d", rc.Rule, rc.Yellow, rc.Red))
		}
		verdict := "pass"
		if !r.Pass {
			verdict = "FAIL"
		}
		toRed := fmtDelay(r.ToRed)
		if r.RedAtOnset && r.ToRed == Never {
			toRed = "red before onset"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Kind, r.Duration,
			r.Messages, r.Yellow, r.Red, r.PerHour, strings.Join(rules, ", "), fmtDelay(r.ToAlert), toRed,
			fmtHold(r.Hold), r.Target, verdict)
	}
	tw.Flush()
	t.Logf("shipped config.yaml against the scenario library (%s):\n%s", time.Since(began).Round(time.Millisecond), b.String())
	for _, r := range results {
		for _, c := range r.Checks {
			if !c.Pass {
				t.Errorf("%s: %s = %s, want %s", r.Scenario, c.What, c.Got, c.Want)
			}
		}
	}
}

// The shipped rules plus a volume_spike and a volume anomaly rule
// (testdata/volume-rules.yaml) across a restart in the middle of a stream:
// a calm room pages nothing (the minute the daemon was down is neither
// silence nor a drop), and a giveaway flood half a minute after the
// restart is red within 30 s on both rules, judged against the volume
// history and the detector saved before the stop. Without them neither
// rule has a verdict during the two-minute flood.
func TestVolumeRulesAcrossRestart(t *testing.T) {
	cfg := loadConfig(t, "testdata/volume-rules.yaml")
	sc, err := NewScorer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const floodAt = 630 * time.Second
	for _, name := range []string{"restart-calm", "restart-calm-kill9", "restart-flood", "restart-flood-kill9"} {
		s, ok := Lookup(name)
		if !ok {
			t.Fatalf("no scenario %s", name)
		}
		if scenarioRaceEnabled || testing.Short() {
			s = s.Truncate(15 * time.Minute)
		}
		r, err := Run(context.Background(), cfg, sc, s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "restart-flood") {
			if len(r.Notifications) != 0 {
				t.Errorf("%s: %d notifications, want 0: %+v", name, len(r.Notifications), r.Notifications)
			}
			continue
		}
		for _, rule := range []string{"volume-spike", "volume-anomaly"} {
			at := time.Duration(-1)
			for _, n := range r.Notifications {
				if n.Rule == rule && n.Severity == "red" {
					at = n.At
					break
				}
			}
			if at < floodAt || at-floodAt > 30*time.Second {
				t.Errorf("%s: %s red at %v, want within 30s of the flood at %v; notifications: %+v", name, rule, at, floodAt, r.Notifications)
			}
		}
	}
}
