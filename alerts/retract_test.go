package alerts

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"lookout/item"
)

const retractRules = `
  - name: neg
    kind: negative_ratio
    window: 1m
    baseline: 10m
    min_volume: 10
    levels: { red: 0.1 }
  - name: burst
    kind: keyword_burst
    group: crisis
    window: 1m
    complaints_only: true
    levels: { red: 5 }
`

// retractRoom is what retractRun counts in room 1: 6 complaints (c0…c5,
// negative, matching crisis, by "troll") and 6 neutral lines (n0…n5, by
// "fan"), one a second from the start.
func retractRoom() []item.Item {
	var out []item.Item
	for i := range 6 {
		c := chatItem("1", engineTestStart.Add(time.Duration(2*i)*time.Second), item.Negative, "假货，我要退款", crisisMatch)
		c.ID, c.AuthorID = fmt.Sprintf("c%d", i), "troll"
		n := chatItem("1", engineTestStart.Add(time.Duration(2*i+1)*time.Second), item.Neutral, "有大码吗")
		n.ID, n.AuthorID = fmt.Sprintf("n%d", i), "fan"
		n.Score.Question = true
		out = append(out, c, n)
	}
	return out
}

func retractDelete(id string) item.Item {
	return item.Item{Source: "live", ID: id, Change: item.ChangeDelete, ChangedAt: engineTestStart.Add(20 * time.Second)}
}

func retractEdit(id string, label item.Label, text string, groups ...item.Match) item.Item {
	it := chatItem("1", engineTestStart, label, text, groups...)
	it.ID, it.Change, it.ChangedAt = id, item.ChangeEdit, engineTestStart.Add(20*time.Second)
	return it
}

func retractModeration(labels map[string]string) item.Item {
	m := metricItem("1", item.MetricModeration, engineTestStart.Add(20*time.Second), 1)
	m.Labels = labels
	return m
}

// Deletes, edits and moderation arriving while the messages are inside
// the window: each rule's window (and baseline) counts what the room says
// now, and alerts quote only messages that still stand.
func TestChangesCorrectRuleWindows(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes []item.Item
		// what the windows hold afterwards: scored and negative (neg),
		// messages and crisis complaints (burst)
		scored, neg, items, hits uint32
		deleted, edited, notHeld float64
		quoted                   []string // authors of the quoted negative samples' ids
	}{
		{name: "nothing changes", scored: 12, neg: 6, items: 12, hits: 6},
		{name: "the author deletes two complaints", changes: []item.Item{retractDelete("c0"), retractDelete("c3")},
			scored: 10, neg: 4, items: 10, hits: 4, deleted: 2},
		{name: "a delete of a neutral line", changes: []item.Item{retractDelete("n2")},
			scored: 11, neg: 6, items: 11, hits: 6, deleted: 1},
		{name: "the same delete twice counts once", changes: []item.Item{retractDelete("c1"), retractDelete("c1")},
			scored: 11, neg: 5, items: 11, hits: 5, deleted: 1, notHeld: 1},
		{name: "an edit resolves a complaint", changes: []item.Item{retractEdit("c2", item.Positive, "已解决，已退款，谢谢")},
			scored: 12, neg: 5, items: 12, hits: 5, edited: 1},
		{name: "an edit turns a question into a complaint",
			changes: []item.Item{retractEdit("n0", item.Negative, "一直不发货，我要退款", crisisMatch)},
			scored:  12, neg: 7, items: 12, hits: 7, edited: 1},
		{name: "an edited line deleted later", changes: []item.Item{retractEdit("n1", item.Negative, "退款", crisisMatch), retractDelete("n1")},
			scored: 11, neg: 6, items: 11, hits: 6, edited: 1, deleted: 1},
		{name: "a moderator deletes one message",
			changes: []item.Item{retractModeration(map[string]string{"action": "delete", "target_msg_id": "c4"})},
			scored:  11, neg: 5, items: 11, hits: 5, deleted: 1},
		{name: "a ban removes the user's messages",
			changes: []item.Item{retractModeration(map[string]string{"action": "ban", "target_user_id": "troll"})},
			scored:  6, neg: 0, items: 6, hits: 0, deleted: 6},
		{name: "clearing the whole chat removes nothing",
			changes: []item.Item{retractModeration(map[string]string{"action": "clear"})},
			scored:  12, neg: 6, items: 12, hits: 6},
		{name: "a change to a message never counted", changes: []item.Item{retractDelete("elsewhere"), retractEdit("gone", item.Neutral, "ok")},
			scored: 12, neg: 6, items: 12, hits: 6, notHeld: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _, clk := engineTestEngineClock(t, retractRules)
			for _, it := range retractRoom() {
				clk.Set(it.TS)
				e.Observe(&it)
			}
			clk.Set(engineTestStart.Add(20 * time.Second))
			for _, it := range tc.changes {
				e.Observe(&it)
			}
			now := clk.Now()
			ent := e.keys[engineKey{"live", "1"}]
			neg, burst := ent.series[e.rules[0].signals[0].idx], ent.series[e.rules[1].signals[0].idx]
			w, b := neg.ring.sum(now, 0), burst.ring.sum(now, 0)
			if w.scored != tc.scored || w.neg != tc.neg || b.items != tc.items || b.hits != tc.hits {
				t.Errorf("windows hold %d scored / %d negative, %d messages / %d complaints; want %d / %d, %d / %d",
					w.scored, w.neg, b.items, b.hits, tc.scored, tc.neg, tc.items, tc.hits)
			}
			base := neg.base.sumSpan(engineTestStart.Add(-time.Minute), now.Add(time.Minute))
			if base.scored != tc.scored || base.neg != tc.neg {
				t.Errorf("baseline holds %d scored / %d negative, want %d / %d", base.scored, base.neg, tc.scored, tc.neg)
			}
			if st := neg.stage; st == nil || st.cur[0].scored != float64(tc.scored) || st.cur[0].neg != float64(tc.neg) {
				t.Errorf("stream minutes %+v, want %d scored / %d negative", neg.stage, tc.scored, tc.neg)
			}
			// Quoted samples: the negative messages that still stand.
			quoted := neg.samples.top(100, engineTestStart)
			if len(quoted) != int(tc.neg) {
				t.Errorf("%d negative samples quoted, want %d: %+v", len(quoted), tc.neg, quoted)
			}
			if tc.name == "an edit resolves a complaint" {
				for _, s := range quoted {
					if strings.Contains(s.Text, "已解决") {
						t.Errorf("the resolved complaint is quoted: %+v", s)
					}
				}
			}
			for _, c := range []struct {
				what string
				got  float64
				want float64
			}{
				{"deleted", counterValue(e.metrics.changesDeleted), tc.deleted},
				{"edited", counterValue(e.metrics.changesEdited), tc.edited},
				{"not_held", counterValue(e.metrics.changesNotHeld), tc.notHeld},
			} {
				if c.got != c.want {
					t.Errorf("lookout_alert_changes_total{result=%q} = %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

// A change to a message that has left every window (older than the
// longest text window) is not held: the windows are not touched, and the
// baseline keeps what it counted.
func TestChangesOutsideTheWindow(t *testing.T) {
	e, _, clk := engineTestEngineClock(t, retractRules)
	for _, it := range retractRoom() {
		clk.Set(it.TS)
		e.Observe(&it)
	}
	// Four minutes of calm chat, two lines a second, push c0 out of the
	// room's record (which covers the one-minute window).
	for i := range 480 {
		at := engineTestStart.Add(12*time.Second + time.Duration(i)*500*time.Millisecond)
		clk.Set(at)
		it := chatItem("1", at, item.Neutral, "好看")
		it.ID = fmt.Sprintf("later%d", i)
		e.Observe(&it)
	}
	ent := e.keys[engineKey{"live", "1"}]
	neg := ent.series[e.rules[0].signals[0].idx]
	before := neg.base.sumSpan(engineTestStart.Add(-time.Minute), clk.Now().Add(time.Minute))
	if before.neg == 0 {
		t.Fatal("the baseline no longer holds the complaints: the test shows nothing")
	}
	if len(ent.msgs.buf) > 512 {
		t.Errorf("the room's record grew to %d for a minute of two lines a second", len(ent.msgs.buf))
	}
	d := retractDelete("c0")
	e.Observe(&d)
	after := neg.base.sumSpan(engineTestStart.Add(-time.Minute), clk.Now().Add(time.Minute))
	if after != before || counterValue(e.metrics.changesNotHeld) != 1 {
		t.Fatalf("a change older than the window touched the baseline (%+v → %+v) or was not counted as not held (%v)",
			before, after, counterValue(e.metrics.changesNotHeld))
	}
}

// A troll's storm (40 lines in 10 s beside one calm line a second) fires
// negative_ratio; banning the troll takes the storm out of the window and
// the alert resolves, while the same storm left standing keeps it firing
// for as long as it is in the window.
func TestBanResolvesTheTrollsStorm(t *testing.T) {
	const rules = `
  - name: neg
    kind: negative_ratio
    window: 1m
    min_volume: 10
    levels: { red: 0.3 }
`
	for _, ban := range []bool{false, true} {
		e, rec, clk := engineTestEngineClock(t, rules)
		var events []Event
		for sec := range 78 { // the storm stays in the window until 80 s
			at := engineTestStart.Add(time.Duration(sec) * time.Second)
			clk.Set(at)
			calm := chatItem("1", at, item.Neutral, "好看")
			calm.ID, calm.AuthorID = fmt.Sprintf("n%d", sec), fmt.Sprintf("fan%d", sec%7)
			e.Observe(&calm)
			for k := range 4 {
				if sec < 20 || sec >= 30 {
					break
				}
				storm := chatItem("1", at, item.Negative, "垃圾主播")
				storm.ID, storm.AuthorID = fmt.Sprintf("t%d-%d", sec, k), "troll"
				e.Observe(&storm)
			}
			if ban && sec == 40 {
				m := retractModeration(map[string]string{"action": "ban", "target_user_id": "troll"})
				m.TS = at
				e.Observe(&m)
			}
			if err := e.Evaluate(t.Context(), at); err != nil {
				t.Fatal(err)
			}
			for _, ev := range rec.take() {
				events = append(events, ev)
				t.Logf("ban=%v %ds: %s %s", ban, sec, ev.State, ev.Summary)
			}
		}
		if len(events) == 0 || events[0].State != Firing {
			t.Fatalf("ban=%v: the storm did not fire: %v", ban, events)
		}
		resolved := len(events) > 1 && events[len(events)-1].State == Resolved
		if resolved != ban {
			t.Fatalf("ban=%v: resolved=%v before the storm left the window; events: %v", ban, resolved, events)
		}
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
