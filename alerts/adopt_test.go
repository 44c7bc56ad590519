package alerts

import (
	"strings"
	"testing"
	"time"

	"lookout/store"
)

// adoptRows is what the alerts table holds after evs: one row per alert,
// as store.OpenAlerts returns it.
func adoptRows(evs []Event) []store.AlertRow {
	var rows []store.AlertRow
	at := map[string]int{}
	for _, ev := range evs {
		i, ok := at[ev.AlertID]
		if !ok {
			i = len(rows)
			at[ev.AlertID] = i
			rows = append(rows, store.AlertRow{})
		}
		notified := rows[i].Notified || ev.State == Firing
		rows[i] = store.AlertRow{ID: ev.AlertID, Rule: ev.Rule, RuleKind: ev.RuleKind, Severity: string(ev.Severity),
			State: string(ev.State), Room: ev.Room, Source: ev.Source, Platform: ev.Platform, StartedAt: ev.StartedAt,
			UpdatedAt: ev.At, Summary: ev.Summary, Labels: ev.Labels, LastSeq: ev.Seq, Notified: notified}
	}
	return rows
}

const adoptRatioRule = `
  - name: neg
    kind: negative_ratio
    window: 2m
    min_volume: 20
    levels: { yellow: 0.3, red: 0.5 }
`

// adoptFiring fires the ratio rule in a first engine and returns its
// open alert as the next run finds it.
func adoptFiring(t *testing.T) (Event, []store.AlertRow) {
	t.Helper()
	e, rec := engineTestEngine(t, adoptRatioRule)
	evs := engineRun(t, e, rec, []engineStep{{at: 60 * time.Second, items: chats("1", 0, 60*time.Second, 40, 24), want: []string{"firing/red"}}})
	return evs[0], adoptRows(evs)
}

func TestAdoptedAlertGoesOnWithoutTellingAgainThenResolves(t *testing.T) {
	const s = time.Second
	fired, rows := adoptFiring(t)
	e, rec := engineTestEngine(t, adoptRatioRule)
	if n := e.Adopt(rows, engineTestStart.Add(70*s)); n != 1 {
		t.Fatalf("adopted %d", n)
	}
	evs := engineRun(t, e, rec, []engineStep{
		{at: 80 * s, want: nil}, // no data yet: nothing to say
		// A window half refilled since the restart is no verdict, even when
		// it reads clear.
		{at: 100 * s, items: chats("1", 85*s, 10*s, 20, 2), want: nil},
		{at: 140 * s, items: chats("1", 80*s, 60*s, 40, 24), want: nil}, // the storm goes on: nobody is told again
		{at: 330 * s, items: chats("1", 270*s, 60*s, 40, 0), want: []string{"resolved/red"}},
	})
	if ev := evs[0]; ev.AlertID != fired.AlertID || ev.Seq != fired.Seq+1 || ev.ID != fired.AlertID+"/2" {
		t.Errorf("resolution %s (seq %d) does not continue alert %s (seq %d)", ev.ID, ev.Seq, fired.AlertID, fired.Seq)
	}
	if !evs[0].StartedAt.Equal(fired.StartedAt) || !strings.HasPrefix(evs[0].Summary, "Resolved: Negative share 0%") {
		t.Errorf("resolution: started %v (want %v), summary %q", evs[0].StartedAt, fired.StartedAt, evs[0].Summary)
	}
}

func TestAdoptedAlertWithoutDataResolvesAfterTheGrace(t *testing.T) {
	_, rows := adoptFiring(t)
	e, rec := engineTestEngine(t, adoptRatioRule)
	start := 70 * time.Second
	e.Adopt(rows, engineTestStart.Add(start))
	// Too little to judge (below min_volume) counts as no verdict.
	evs := engineRun(t, e, rec, []engineStep{
		{at: start + time.Minute, items: chats("1", start, time.Minute, 5, 5), want: nil},
		{at: start + adoptMinGrace - time.Second, want: nil},
		{at: start + adoptMinGrace + time.Second, want: []string{"resolved/red"}},
	})
	if !strings.Contains(evs[0].Summary, "no verdict since the daemon restarted") || evs[0].Room != "1" {
		t.Errorf("summary %q room %q", evs[0].Summary, evs[0].Room)
	}
}

func TestAdoptedAlertOfARemovedRuleResolves(t *testing.T) {
	fired, rows := adoptFiring(t)
	e, rec := engineTestEngine(t, `
  - name: other
    kind: volume_spike
    window: 1m
    levels: { yellow: 3 }
`)
	if n := e.Adopt(rows, engineTestStart.Add(time.Hour)); n != 0 {
		t.Fatalf("adopted %d alerts of a rule that is gone", n)
	}
	evs := engineRun(t, e, rec, []engineStep{{at: time.Hour, want: []string{"resolved/red"}}})
	if ev := evs[0]; ev.AlertID != fired.AlertID || ev.Seq != 2 || ev.Prev != Firing || !strings.Contains(ev.Summary, "no longer in the config") {
		t.Errorf("got %+v", ev)
	}
}

func TestAdoptedAbsentAlertStaysWhileTheRoomIsSilent(t *testing.T) {
	const m = time.Minute
	rules := `
  - name: quiet
    kind: absent
    window: 1m
`
	e, rec := engineTestEngine(t, rules)
	first := engineRun(t, e, rec, []engineStep{
		{at: 0, items: chats("1", 0, time.Second, 1, 0), want: nil},
		{at: 2 * m, want: []string{"firing/yellow"}},
	})
	e2, rec2 := engineTestEngine(t, rules)
	e2.Adopt(adoptRows(first), engineTestStart.Add(10*m))
	evs := engineRun(t, e2, rec2, []engineStep{
		{at: 11 * m, want: nil}, // still silent: still firing, nobody told again
		{at: 30 * m, want: nil}, // beyond the grace too: the silence is a verdict
		{at: 31 * m, items: chats("1", 31*m, time.Second, 1, 0), want: []string{"resolved/yellow"}},
	})
	if evs[0].AlertID != first[0].AlertID {
		t.Errorf("resolved %s, want %s", evs[0].AlertID, first[0].AlertID)
	}
}
