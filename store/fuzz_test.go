package store

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"lookout/item"
)

// FuzzWriteReplay: whatever bytes a platform sends (invalid UTF-8, NULs,
// SQL quotes, huge lines) are stored and replayed unchanged.
func FuzzWriteReplay(f *testing.F) {
	f.Add("假货!要退款 😡", "viewer", "room-1", "id-1", "退款,假货", []byte(`{"cmd":"DANMU_MSG"}`), int8(-1), 0.5)
	f.Add("it's a \"quote\"; DROP TABLE items; --", "'", "", "", "", []byte{}, int8(1), -1.0)
	f.Add("nul\x00inside\xff\xfe", "\x00", "\xff", "\x00id", "\x00,\xff", []byte{0, 1, 2, 0xff}, int8(0), 0.0)
	s, err := Open(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	var seq int
	f.Fuzz(func(t *testing.T, text, author, room, id, terms string, raw []byte, label int8, score float64) {
		seq++
		ts := storeT0.Add(time.Duration(seq) * time.Second)
		in := item.Item{
			Source: "fuzz", Platform: "p", Kind: item.KindComment, Room: room, ID: id + "#" + string(rune('a'+seq%26)) + time.Duration(seq).String(),
			Author: author, Text: text, TS: ts, Raw: raw,
			Score: item.Score{Scored: true, Label: item.Label(label % 2), Value: score, Prob: 0.5, Lang: "zh"},
		}
		if terms != "" {
			seen := map[string]bool{}
			for _, term := range strings.Split(terms, ",") {
				if !seen[term] {
					seen[term] = true
					in.Score.Terms = append(in.Score.Terms, term)
				}
			}
		}
		if score != score { // NaN is stored as NULL by SQLite; not a value a classifier emits
			in.Score.Value = 0
		}
		if n, err := s.WriteItems(context.Background(), []item.Item{in}); err != nil || n != 1 {
			t.Fatalf("WriteItems = %d, %v", n, err)
		}
		var got []item.Item
		if err := s.ReplayItems(context.Background(), ts, ts.Add(time.Millisecond), func(it item.Item) error {
			got = append(got, it)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("replayed %d items", len(got))
		}
		want := in
		want.Raw = nil
		want.Score.Terms = append([]string(nil), in.Score.Terms...)
		slices.Sort(want.Score.Terms)
		if len(want.Score.Terms) == 0 {
			want.Score.Terms = nil
		}
		if !reflect.DeepEqual(got[0], want) {
			t.Fatalf("round trip\n got %#v\nwant %#v", got[0], want)
		}
		if len(raw) > 0 {
			var stored []byte
			if err := s.DB().QueryRow(`SELECT payload FROM raw_payloads r JOIN items i ON i.id = r.item_id
				WHERE i.source = 'fuzz' AND i.item_id = ?`, in.ID).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stored, raw) {
				t.Fatalf("raw payload %x stored as %x", raw, stored)
			}
		}
	})
}
