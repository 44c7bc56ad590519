package store

import (
	"context"
	"testing"
	"time"

	"lookout/item"
)

// TestWriteItemsEditsAndDeletes: an edit replaces the stored version and
// keeps the old one in item_versions (also when it arrives in the batch
// of its original, and when the original was never stored); a delete
// marks the item and leaves it out of the sentiment shares, on a real
// SQLite file.
func TestWriteItemsEditsAndDeletes(t *testing.T) {
	ctx := context.Background()
	edit := func(it item.Item, text string, label item.Label, at time.Time) item.Item {
		it.Text, it.Score.Label, it.Score.Value = text, label, 0.7
		it.Score.Groups = nil
		it.Change, it.ChangedAt = item.ChangeEdit, at
		it.Raw = []byte(`{"edited":true}`)
		return it
	}
	del := func(it item.Item, at time.Time) item.Item {
		return item.Item{Source: it.Source, ID: it.ID, Kind: it.Kind, Change: item.ChangeDelete, ChangedAt: at}
	}
	complaint := storeChat("c1", storeT0, "退款三周了还没到账，客服不理人", item.Negative, -0.9)
	complaint.Score.Groups = []item.Match{{Group: "refund", Category: "crisis", Severity: "red", Terms: []string{"退款"}}}
	other := storeChat("c2", storeT0.Add(time.Second), "不错", item.Positive, 0.8)
	spam := storeChat("c3", storeT0.Add(2*time.Second), "差评差评", item.Negative, -0.9)
	for _, tc := range []struct {
		name    string
		batches [][]item.Item
	}{
		{"separate batches", [][]item.Item{{complaint, other, spam}, {edit(complaint, "已解决，已退款", item.Positive, storeT0.Add(time.Hour))}, {del(spam, storeT0.Add(2*time.Hour))}}},
		{"one batch", [][]item.Item{{complaint, other, spam, edit(complaint, "已解决，已退款", item.Positive, storeT0.Add(time.Hour)), del(spam, storeT0.Add(2*time.Hour))}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storeOpenTest(t)
			for _, b := range tc.batches {
				if _, err := s.WriteItems(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			var text, sentiment, edited string
			if err := s.DB().QueryRow(`SELECT text, sentiment, edited_at FROM items WHERE item_id = 'c1'`).Scan(&text, &sentiment, &edited); err != nil {
				t.Fatal(err)
			}
			if text != "已解决，已退款" || sentiment != "positive" || edited != FormatTime(storeT0.Add(time.Hour)) {
				t.Errorf("edited item = %q %s %s", text, sentiment, edited)
			}
			if n := storeCount(t, s, `SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id
				WHERE i.item_id = 'c1' AND v.text = '退款三周了还没到账，客服不理人' AND v.sentiment = 'negative' AND v.replaced_at = ?`,
				FormatTime(storeT0.Add(time.Hour))); n != 1 {
				t.Errorf("versions kept = %d, want the complaint", n)
			}
			if n := storeCount(t, s, `SELECT count(*) FROM crisis_items`); n != 0 {
				t.Errorf("crisis_items = %d: the edit dropped its refund match", n)
			}
			if n := storeCount(t, s, `SELECT count(*) FROM raw_payloads r JOIN items i ON i.id = r.item_id WHERE i.item_id = 'c1' AND CAST(r.payload AS TEXT) = '{"edited":true}'`); n != 1 {
				t.Errorf("raw payload of the edit not kept")
			}
			if n := storeCount(t, s, `SELECT count(*) FROM items WHERE item_id = 'c3' AND deleted_at = ?`, FormatTime(storeT0.Add(2*time.Hour))); n != 1 {
				t.Error("deleted item not kept with deleted_at")
			}
			// The hour's share: c1 now positive, c3 deleted, c2 positive.
			var items, negative int
			if err := s.DB().QueryRow(`SELECT items, negative FROM sentiment_hourly`).Scan(&items, &negative); err != nil {
				t.Fatal(err)
			}
			if items != 2 || negative != 0 {
				t.Errorf("sentiment_hourly items %d negative %d, want 2 and 0", items, negative)
			}
			// A backtest replays the current versions, without the deleted.
			var replayed []string
			err := s.ReplayItems(ctx, storeT0.Add(-time.Hour), storeT0.Add(time.Hour), func(it item.Item) error {
				if it.Kind != item.KindMetric {
					replayed = append(replayed, it.ID+":"+it.Text+":"+it.Score.Label.String())
				}
				return nil
			})
			if err != nil || len(replayed) != 2 || replayed[0] != "c1:已解决，已退款:positive" || replayed[1] != "c2:不错:positive" {
				t.Errorf("replayed %q, %v", replayed, err)
			}
		})
	}

	t.Run("edit of an item never stored", func(t *testing.T) {
		s := storeOpenTest(t)
		n, err := s.WriteItems(ctx, []item.Item{edit(storeChat("x", storeT0, "", item.Neutral, 0), "late edit", item.Neutral, storeT0.Add(time.Minute))})
		if err != nil || n != 1 {
			t.Fatalf("inserted %d, %v", n, err)
		}
		if c := storeCount(t, s, `SELECT count(*) FROM items WHERE item_id = 'x' AND text = 'late edit' AND edited_at IS NOT NULL`); c != 1 {
			t.Error("the edit was not stored as the item")
		}
		if c := storeCount(t, s, `SELECT count(*) FROM item_versions`); c != 0 {
			t.Errorf("versions = %d", c)
		}
		if _, err := s.WriteItems(ctx, []item.Item{del(storeChat("nope", storeT0, "", item.Neutral, 0), storeT0)}); err != nil {
			t.Errorf("delete of an unknown item: %v", err)
		}
	})
}

// TestWriteItemsTwoEditsOneBatch: two edits of one item in one batch
// leave the item with the second edit's keyword matches only.
func TestWriteItemsTwoEditsOneBatch(t *testing.T) {
	ctx := context.Background()
	orig := storeChat("c1", storeT0, "退款", item.Negative, -0.9)
	orig.Score.Groups = []item.Match{{Group: "orig", Category: "crisis", Severity: "red", Terms: []string{"退款"}}}
	edit := func(text, group string, at time.Duration) item.Item {
		it := orig
		it.Text = text
		it.Score.Groups = []item.Match{{Group: group, Category: "other", Severity: "yellow", Terms: []string{text}}}
		it.Change, it.ChangedAt = item.ChangeEdit, storeT0.Add(at)
		return it
	}
	for _, batches := range [][][]item.Item{
		{{orig}, {edit("一", "first", time.Minute), edit("二", "second", 2*time.Minute)}},
		{{orig, edit("一", "first", time.Minute), edit("二", "second", 2*time.Minute)}},
	} {
		s := storeOpenTest(t)
		for _, b := range batches {
			if _, err := s.WriteItems(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := s.DB().Query(`SELECT grp FROM item_groups ORDER BY grp`)
		if err != nil {
			t.Fatal(err)
		}
		var groups []string
		for rows.Next() {
			var g string
			if err := rows.Scan(&g); err != nil {
				t.Fatal(err)
			}
			groups = append(groups, g)
		}
		rows.Close()
		if len(groups) != 1 || groups[0] != "second" {
			t.Errorf("%d batches: keyword groups %q, want [second]", len(batches), groups)
		}
	}
}
