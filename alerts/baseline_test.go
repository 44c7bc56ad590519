package alerts

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"lookout/config"
	"lookout/item"
)

// baselineFeed describes one second of a live room: how many chat
// messages, what share of them the classifier calls negative, how many
// match the crisis group as questions and as statements, and the viewer
// count (0: no sample).
type baselineFeed func(sec int) (msgs int, negShare float64, crisisQ, crisisS int, viewers float64)

// baselineRun drives an engine second by second for the given span,
// evaluating every second, and returns every event with its second.
func baselineRun(t *testing.T, rules string, secs int, feed baselineFeed) []baselineEvent {
	t.Helper()
	e, rec, clk := engineTestEngineClock(t, rules)
	return baselineRunOn(t, e, rec, clk, 0, secs, feed)
}

// baselineRunOn is baselineRun on a given engine, for the seconds
// [from, to).
func baselineRunOn(t *testing.T, e *Engine, rec *engineRecorder, clk *engineTestClock, from, to int, feed baselineFeed) []baselineEvent {
	t.Helper()
	var out []baselineEvent
	negAcc := 0.0
	for sec := from; sec < to; sec++ {
		now := engineTestStart.Add(time.Duration(sec) * time.Second)
		clk.Set(now)
		msgs, share, q, st, viewers := feed(sec)
		for i := 0; i < msgs; i++ {
			at := now.Add(time.Duration(i) * time.Second / time.Duration(msgs))
			label := item.Neutral
			negAcc += share
			if negAcc >= 1 {
				negAcc--
				label = item.Negative
			}
			it := chatItem("1", at, label, "看看")
			switch {
			case i < q:
				it.Text, it.Score.Question, it.Score.Label = "怎么申请退款", true, item.Neutral
				it.Score.Groups = []item.Match{crisisMatch}
			case i < q+st:
				it.Text, it.Score.Label = "我要退款", item.Neutral
				it.Score.Groups = []item.Match{crisisMatch}
			}
			e.Observe(&it)
		}
		if viewers > 0 {
			m := metricItem("1", "viewers", now, viewers)
			e.Observe(&m)
		}
		if err := e.Evaluate(context.Background(), now.Add(time.Second-time.Nanosecond)); err != nil {
			t.Fatal(err)
		}
		for _, ev := range rec.take() {
			out = append(out, baselineEvent{sec, ev})
		}
	}
	return out
}

type baselineEvent struct {
	sec int
	ev  Event
}

func (b baselineEvent) String() string {
	return fmt.Sprintf("%ds %s/%s %s", b.sec, b.ev.State, b.ev.Severity, b.ev.Summary)
}

// baselineFirst is the second of the first event with state and severity
// ("" matches any), or -1.
func baselineFirst(evs []baselineEvent, state State, sev Severity) int {
	for _, e := range evs {
		if e.ev.State == state && (sev == "" || e.ev.Severity == sev) {
			return e.sec
		}
	}
	return -1
}

const baselineNegRule = `
  - name: surge
    kind: negative_ratio
    window: 30s
    baseline: 15m
    min_history: 5m
    min_volume: 60
    floor: 0.12
    levels: { yellow: 0.05, red: 0.08 }
    for: 10s
`

// A room that always grumbles (20 % negative) is its own normal: no page,
// where the same share against an absolute level of 0.15 would page at
// once. A jump to 40 % is red within a minute and stays red for the ten
// minutes it lasts (the baseline is held while the alert is open), then
// resolves when the room calms down.
func TestNegativeRatioAgainstTheRoomsNormal(t *testing.T) {
	const crisisAt, calmAt, end = 20 * 60, 30 * 60, 34 * 60
	evs := baselineRun(t, baselineNegRule, end, func(sec int) (int, float64, int, int, float64) {
		if sec >= crisisAt && sec < calmAt {
			return 20, 0.40, 0, 0, 0
		}
		return 20, 0.20, 0, 0, 0
	})
	for _, e := range evs {
		if e.sec < crisisAt {
			t.Fatalf("paged on the room's ordinary grumbling: %v", e)
		}
	}
	red := baselineFirst(evs, Firing, Red)
	if red < 0 || red-crisisAt > 60 {
		t.Fatalf("red %ds after the jump, want ≤ 60s; events:\n%v", red-crisisAt, evs)
	}
	res := baselineFirst(evs, Resolved, "")
	if res < calmAt {
		t.Fatalf("resolved at %ds while the room was still at 40 %% (until %ds); events:\n%v", res, calmAt, evs)
	}
	if res < 0 || res-calmAt > 90 {
		t.Fatalf("resolved %ds after the room calmed down, want ≤ 90s; events:\n%v", res-calmAt, evs)
	}
	if s := evs[len(evs)-1].ev.Summary; !strings.Contains(s, "above this room's normal of 20%") {
		t.Errorf("summary %q does not name the room's normal", s)
	}

	// The same room under the old absolute rule pages on ordinary chatter.
	abs := baselineRun(t, `
  - name: surge
    kind: negative_ratio
    window: 30s
    min_volume: 60
    levels: { yellow: 0.15 }
`, 120, func(int) (int, float64, int, int, float64) { return 20, 0.20, 0, 0, 0 })
	if len(abs) == 0 {
		t.Fatal("an absolute 15 % level did not fire on a 20 % room: the baseline test above proves nothing")
	}
}

// No verdict before the room has min_history of chat, however negative it
// starts; the floor keeps a room that is almost never negative from paging
// over a few grumbles.
func TestNegativeRatioWarmUpAndFloor(t *testing.T) {
	evs := baselineRun(t, baselineNegRule, 4*60, func(int) (int, float64, int, int, float64) { return 20, 0.6, 0, 0, 0 })
	if len(evs) != 0 {
		t.Fatalf("judged before min_history: %v", evs)
	}
	// 1 % → 10 %: 9 points above normal, red by the levels, but below the
	// 12 % floor.
	evs = baselineRun(t, baselineNegRule, 12*60, func(sec int) (int, float64, int, int, float64) {
		if sec >= 8*60 {
			return 20, 0.10, 0, 0, 0
		}
		return 20, 0.01, 0, 0, 0
	})
	if len(evs) != 0 {
		t.Fatalf("fired under the floor: %v", evs)
	}
}

const baselineKeywordRule = `
  - name: crisis
    kind: keyword_burst
    category: crisis
    window: 1m
    per: 1000
    complaints_only: true
    baseline: 15m
    min_history: 2m
    levels: { yellow: 8, red: 20 }
`

// In a room of 50 messages a second, refund questions (怎么申请退款) never
// count, however many; refund demands (我要退款) at 0.2 % are below the
// rate levels; at 3 % they are a crisis.
func TestKeywordBurstIsARateOfComplaints(t *testing.T) {
	questions := baselineRun(t, baselineKeywordRule, 10*60, func(sec int) (int, float64, int, int, float64) {
		return 50, 0.1, 2, 0, 0 // 4 % of the room asks about refunds
	})
	if len(questions) != 0 {
		t.Fatalf("questions counted as complaints: %v", questions)
	}
	calm := baselineRun(t, baselineKeywordRule, 10*60, func(sec int) (int, float64, int, int, float64) {
		if sec%10 == 0 {
			return 50, 0.1, 0, 1, 0 // one demand in 500 messages
		}
		return 50, 0.1, 0, 0, 0
	})
	if len(calm) != 0 {
		t.Fatalf("a busy room's 0.2 %% of refund demands paged: %v", calm)
	}
	crisis := baselineRun(t, baselineKeywordRule, 10*60, func(sec int) (int, float64, int, int, float64) {
		if sec >= 5*60 {
			return 50, 0.1, 0, 2, 0
		}
		return 50, 0.1, 0, 0, 0
	})
	red := baselineFirst(crisis, Firing, Red)
	if red < 0 || red-5*60 > 45 {
		t.Fatalf("refund demands at 4 %%: red at %ds, want within 45s of 300s; events %v", red, crisis)
	}
	if s := crisis[len(crisis)-1].ev.Summary; !strings.Contains(s, "per 1000") {
		t.Errorf("summary %q does not give the rate", s)
	}
}

// A halved audience is red within 90 s and stays red while it stays away;
// it resolves when the audience comes back. The previous-window rule it
// replaces resolved a minute after the drop.
func TestMetricDropHoldsWhileTheAudienceIsAway(t *testing.T) {
	const dropAt, backAt, end = 10 * 60, 20 * 60, 23 * 60
	audience := func(sec int) (int, float64, int, int, float64) {
		v := 1000.0
		switch {
		case sec >= dropAt && sec < dropAt+60:
			v = 1000 - 500*float64(sec-dropAt)/60
		case sec >= dropAt+60 && sec < backAt:
			v = 500
		}
		if sec%5 != 0 {
			return 0, 0, 0, 0, 0
		}
		return 0, 0, 0, 0, v
	}
	evs := baselineRun(t, `
  - name: drop
    kind: metric_drop
    metric: viewers
    window: 30s
    baseline: 5m
    levels: { yellow: 0.25, red: 0.4 }
    for: 10s
`, end, audience)
	red := baselineFirst(evs, Firing, Red)
	if red < 0 || red-dropAt > 90 {
		t.Fatalf("red %ds after the drop began, want ≤ 90s; events:\n%v", red-dropAt, evs)
	}
	res := baselineFirst(evs, Resolved, "")
	if res < backAt {
		t.Fatalf("resolved at %ds with the audience still halved until %ds; events:\n%v", res, backAt, evs)
	}
	if res < 0 || res-backAt > 60 {
		t.Fatalf("resolved %ds after the audience came back; events:\n%v", res-backAt, evs)
	}
	old := baselineRun(t, `
  - name: drop
    kind: metric_drop
    metric: viewers
    window: 1m
    levels: { yellow: 0.3, red: 0.5 }
`, end, audience)
	if r := baselineFirst(old, Resolved, ""); r < 0 || r >= backAt {
		t.Fatalf("the previous-window rule resolved at %ds: this test no longer shows the difference", r)
	}
}

// A 30 % bleed over 30 minutes is a yellow trend alert; a flat audience
// with noise is not; op above watches for a rise.
func TestMetricTrend(t *testing.T) {
	rule := `
  - name: bleed
    kind: metric_trend
    metric: viewers
    window: 30m
    levels: { yellow: 0.2 }
    for: 1m
`
	bleed := func(sec int) (int, float64, int, int, float64) {
		if sec%5 != 0 {
			return 0, 0, 0, 0, 0
		}
		v := 1000.0
		if sec > 10*60 {
			v = 1000 * (1 - 0.3*min(1, float64(sec-10*60)/1800))
		}
		return 0, 0, 0, 0, v + float64(sec%7)*10
	}
	evs := baselineRun(t, rule, 45*60, bleed)
	y := baselineFirst(evs, Firing, Yellow)
	if y < 0 {
		t.Fatalf("a 30 %% bleed over 30 minutes raised nothing: %v", evs)
	}
	if !strings.Contains(evs[0].ev.Summary, "declining steadily") {
		t.Errorf("summary %q", evs[0].ev.Summary)
	}
	flat := baselineRun(t, rule, 45*60, func(sec int) (int, float64, int, int, float64) {
		if sec%5 != 0 {
			return 0, 0, 0, 0, 0
		}
		return 0, 0, 0, 0, 1000 + float64(sec%13)*15
	})
	if len(flat) != 0 {
		t.Fatalf("a flat audience raised %v", flat)
	}
	rise := baselineRun(t, strings.Replace(rule, "window: 30m", "window: 30m\n    op: above", 1), 45*60, func(sec int) (int, float64, int, int, float64) {
		if sec%5 != 0 {
			return 0, 0, 0, 0, 0
		}
		return 0, 0, 0, 0, 1000 + float64(sec)
	})
	if baselineFirst(rise, Firing, Yellow) < 0 {
		t.Fatalf("op above did not see a rising metric: %v", rise)
	}
}

func TestBaselineConfigErrors(t *testing.T) {
	for want, rules := range map[string]string{
		"only negative_ratio, keyword_burst and metric_drop take a baseline": `
  - name: r
    kind: volume_spike
    window: 2m
    baseline: 10m
    levels: { yellow: 3 }
`,
		"floor is a share": `
  - name: r
    kind: negative_ratio
    window: 2m
    min_volume: 5
    floor: 1.5
    levels: { yellow: 0.1 }
`,
		"per, min_matches and complaints_only are for keyword_burst": `
  - name: r
    kind: negative_ratio
    window: 2m
    min_volume: 5
    per: 1000
    levels: { yellow: 0.1 }
`,
		"metric_trend needs a metric": `
  - name: r
    kind: metric_trend
    window: 30m
    levels: { yellow: 0.2 }
`,
	} {
		_, err := config.Parse([]byte(engineTestHeader+rules), "bad.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config error %v, want one mentioning %q", err, want)
		}
	}
	// Levels of a trend are fractions.
	cfg := engineTestConfig(t, `
  - name: r
    kind: metric_trend
    metric: viewers
    window: 30m
    levels: { yellow: 20 }
`)
	if _, err := NewEngine(cfg, &engineRecorder{}, EngineOptions{}); err == nil || !strings.Contains(err.Error(), "fractions") {
		t.Errorf("trend level 20: err %v, want one about fractions", err)
	}
}

// The room's own activity as KPIs: chat_rate counts messages a minute,
// gift_value sums gift values a minute. Chat falling from 10 to 3 messages a
// second while the audience stays is a drop; gifts drying up over half an
// hour is a trend.
func TestDerivedRateMetrics(t *testing.T) {
	evs := baselineRun(t, `
  - name: chat-drop
    kind: metric_drop
    metric: chat_rate
    window: 1m
    baseline: 5m
    levels: { yellow: 0.3, red: 0.6 }
    for: 10s
`, 20*60, func(sec int) (int, float64, int, int, float64) {
		if sec >= 10*60 {
			return 3, 0, 0, 0, 1000
		}
		return 10, 0, 0, 0, 1000
	})
	red := baselineFirst(evs, Firing, Red)
	if red < 10*60 || red-10*60 > 90 {
		t.Fatalf("chat down 70%%: red at %ds, want within 90s of 600s; events:\n%v", red, evs)
	}
	if baselineFirst(evs, Resolved, "") >= 0 {
		t.Fatalf("resolved while the chat stayed down: %v", evs)
	}
	if s := evs[len(evs)-1].ev.Summary; !strings.Contains(s, "over the last 1m against 600 a minute before the drop") {
		t.Errorf("summary %q: want the rates a minute", s)
	}

	// Gifts: one of value 10 a second, thinning to a third over 30 minutes.
	e, rec, clk := engineTestEngineClock(t, `
  - name: gifts-bleed
    kind: metric_trend
    metric: gift_value
    window: 30m
    levels: { yellow: 0.3 }
`)
	var fired []Event
	for sec := 0; sec < 45*60; sec++ {
		now := engineTestStart.Add(time.Duration(sec) * time.Second)
		clk.Set(now)
		every := 1
		if sec > 10*60 {
			every = 1 + min(2, (sec-10*60)/600) // one a second, then one in two, then one in three
		}
		if sec%every == 0 {
			g := item.Item{Source: "live", Platform: "douyin", Kind: item.KindGift, Room: "1", TS: now, Value: 10}
			e.Observe(&g)
		}
		if err := e.Evaluate(context.Background(), now.Add(time.Second-time.Nanosecond)); err != nil {
			t.Fatal(err)
		}
		fired = append(fired, rec.take()...)
	}
	if len(fired) == 0 || fired[0].State != Firing {
		t.Fatalf("gift value falling to a third over 30 minutes raised %v", fired)
	}
	if !strings.Contains(fired[0].Summary, "gift_value declining steadily") {
		t.Errorf("summary %q", fired[0].Summary)
	}
}

// A room's earlier streams set its normal for each minute of a stream. The
// first stream is judged only after min_history; in the next one a crisis
// in the second minute is red at once, while the usual noisy start (35 %
// negative in the first four minutes of every stream: 怎么还不开始, 卡了)
// pages nobody.
func TestNegativeRatioStageOfEarlierStreams(t *testing.T) {
	const stream2 = 90 * 60 // after an hour of silence
	feed := func(sec int, crisis bool) (int, float64, int, int, float64) {
		in := sec
		if sec >= stream2 {
			in = sec - stream2
		}
		switch {
		case sec >= 30*60 && sec < stream2:
			return 0, 0, 0, 0, 0 // off air
		case crisis && sec >= stream2 && in >= 60 && in < 5*60:
			return 20, 0.6, 0, 0, 0
		case in < 4*60:
			return 20, 0.35, 0, 0, 0
		}
		return 20, 0.15, 0, 0, 0
	}
	quiet := baselineRun(t, baselineNegRule, stream2+20*60, func(sec int) (int, float64, int, int, float64) { return feed(sec, false) })
	if len(quiet) != 0 {
		t.Fatalf("the room's usual noisy start paged: %v", quiet)
	}
	evs := baselineRun(t, baselineNegRule, stream2+20*60, func(sec int) (int, float64, int, int, float64) { return feed(sec, true) })
	red := baselineFirst(evs, Firing, Red)
	if red < stream2+60 || red > stream2+60+45 {
		t.Fatalf("a crisis a minute into the second stream: red at %ds, want within 45s of %ds (min_history is 5m); events:\n%v", red, stream2+60, evs)
	}
}
