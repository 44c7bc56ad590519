package pg

import (
	"context"
	"fmt"
	"testing"
	"time"

	"lookout/item"
	"lookout/store"
)

// TestPruneProfilesRecentIDs: retention deletes old raw payloads, items
// (with their keyword matches) and metric samples and keeps the rest; room
// profiles round-trip and age out; recent ids come newest first.
func TestPruneProfilesRecentIDs(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := t0.Add(48 * time.Hour)
	var batch []item.Item
	for i := range 10 {
		it := chat(fmt.Sprintf("p%d", i), t0.Add(time.Duration(i)*6*time.Hour), "退款", item.Negative, -0.5)
		it.Score.Groups = []item.Match{{Group: "refund", Category: "crisis", Severity: "red"}}
		batch = append(batch, it)
	}
	batch = append(batch, item.Item{Source: "bili", Platform: "bilibili", Room: "100", Kind: item.KindMetric, Metric: "viewers", Value: 1, TS: t0, ID: "m-old"},
		item.Item{Source: "bili", Platform: "bilibili", Room: "100", Kind: item.KindMetric, Metric: "viewers", Value: 2, TS: now, ID: "m-new"})
	if _, err := s.WriteItems(ctx, batch); err != nil {
		t.Fatal(err)
	}
	ids, err := s.RecentItemIDs(ctx, "bili", 3)
	if err != nil || fmt.Sprint(ids) != "[p9 p8 p7]" {
		t.Errorf("recent ids = %v, %v", ids, err)
	}
	// Raw payloads older than 12 h before now, items older than 24 h.
	n, err := s.Prune(ctx, now, 12*time.Hour, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Items are 6 h apart from t0; now is t0+48h. Raw payloads before
	// t0+36h go (p0–p5), items before t0+24h (p0–p3) with their matches,
	// and the old metric sample.
	if got := count(t, s, `SELECT count(*) FROM items`); got != 6 {
		t.Errorf("items left = %d, want 6 (p4–p9)", got)
	}
	if got := count(t, s, `SELECT count(*) FROM raw_payloads`); got != 4 {
		t.Errorf("raw payloads left = %d, want 4 (p6–p9)", got)
	}
	if got := count(t, s, `SELECT count(*) FROM item_groups`); got != 6 {
		t.Errorf("keyword matches left = %d, want 6", got)
	}
	if got := count(t, s, `SELECT count(*) FROM metrics`); got != 1 {
		t.Errorf("metrics left = %d, want 1", got)
	}
	if n != 6+4+1 { // raws p0–p5, items p0–p3, one metric
		t.Errorf("Prune reported %d rows", n)
	}

	rows := []store.RoomProfile{{Rule: "neg", Source: "bili", Room: "100", Profile: `{"a":1}`}, {Rule: "neg", Source: "bili", Room: "200", Profile: `{"b":2}`}}
	if err := s.PutRoomProfiles(ctx, rows); err != nil {
		t.Fatal(err)
	}
	got, err := s.RoomProfiles(ctx)
	if err != nil || len(got) != 2 || got[1].Room != "200" || got[1].Profile != `{"b":2}` || got[0].UpdatedAt.IsZero() {
		t.Fatalf("profiles = %+v, %v", got, err)
	}
	if n, err := s.DeleteRoomProfilesBefore(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("delete of fresh profiles = %d, %v", n, err)
	}
	if n, err := s.DeleteRoomProfilesBefore(ctx, time.Now().Add(time.Hour)); err != nil || n != 2 {
		t.Errorf("delete of old profiles = %d, %v", n, err)
	}
}
