package transport

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"lookout/item"
)

func TestCodecRoundTrip(t *testing.T) {
	ts := time.Date(2026, 12, 3, 7, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		it   item.Item
	}{
		{"minimal", item.Item{Source: "s", ID: "1"}},
		{"chat", item.Item{Source: "bili-01", Platform: "bilibili", Kind: item.KindChat, Room: "7734", ID: "m1",
			AuthorID: "u9", Author: "观众", Text: "买到假货了，要求退款", URL: "https://live.bilibili.com/7734", TS: ts,
			Labels: map[string]string{"team": "a", "langs": "zh"}, Raw: []byte(`{"cmd":"DANMU_MSG"}`)}},
		{"gift", item.Item{Source: "dy", Kind: item.KindGift, Room: "r", ID: "g1", TS: ts, Value: 52.5, Count: -3, HasValue: true}},
		{"metric zero", item.Item{Source: "dy", Kind: item.KindMetric, Room: "r", ID: "v1", TS: ts, Metric: item.MetricViewers, HasValue: true, Labels: map[string]string{}}},
		{"edit", item.Item{Source: "m", Kind: item.KindPost, ID: "p1", Text: "edited", TS: ts, Change: item.ChangeEdit, ChangedAt: ts.Add(time.Minute)}},
		{"scored", item.Item{Source: "m", Kind: item.KindPost, ID: "p2", Text: "bad", Score: item.Score{Scored: true, Label: item.Negative,
			Value: -0.7, Prob: 0.9, Lang: "en", Question: true, Groups: []item.Match{{Group: "crisis", Category: "crisis", Severity: "red", Terms: []string{"refund"}}}, Terms: []string{"refund"}}}},
		{"state", item.Item{Source: "feed", ID: "x", Kind: item.KindState, State: map[string]string{"cursor": "10"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(&tc.it)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.it) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, tc.it)
			}
			// Every truncation is an error, never a panic or a partial item.
			for i := 1; i < len(b); i++ {
				if _, err := Decode(b[:i]); err == nil {
					t.Fatalf("truncated to %d of %d bytes: no error", i, len(b))
				}
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "unknown item encoding"},
		{"other version", "\x02abc", "unknown item encoding"},
		{"json without id", `{"Source":"s"}`, "without source or id"},
		{"bad json", `{"Source":`, "unexpected end"},
	} {
		if _, err := Decode([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// A batch carries its items in order; every truncation of it is an error;
// a bad item in it is reported by its place and the others still decode;
// the single-item forms (binary and JSON) read as a message of one item.
func TestDecodeMessage(t *testing.T) {
	ts := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	items := []item.Item{
		{Source: "bili-01", Platform: "bilibili", Kind: item.KindChat, Room: "7734", ID: "m1", Text: "假货", TS: ts},
		{Source: "bili-01", Kind: item.KindGift, Room: "7734", ID: "g1", Value: 5, HasValue: true, Labels: map[string]string{}},
		{Source: "m", Kind: item.KindPost, ID: "p1", Text: "edited", Change: item.ChangeEdit, ChangedAt: ts},
	}
	b, err := EncodeBatch(items)
	if err != nil {
		t.Fatal(err)
	}
	got, bad, err := DecodeMessage(b)
	if err != nil || len(bad) != 0 || !reflect.DeepEqual(got, items) {
		t.Fatalf("round trip: %+v, bad %v, err %v", got, bad, err)
	}
	for i := 1; i < len(b); i++ {
		if got, _, err := DecodeMessage(b[:i]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error, %d items", i, len(b), len(got))
		}
	}
	// The second item without an id.
	noID := slices.Clone(items)
	noID[1].ID = ""
	b, err = EncodeBatch(noID)
	if err != nil {
		t.Fatal(err)
	}
	got, bad, err = DecodeMessage(b)
	if err != nil || len(got) != 2 || got[0].ID != "m1" || got[1].ID != "p1" || len(bad) != 1 || bad[0].Index != 1 {
		t.Errorf("batch with a bad item: %+v, bad %v, err %v; want m1 and p1, item 1 bad", got, bad, err)
	}
	for _, single := range [][]byte{must(Encode(&items[0])), []byte(`{"Source":"bili-01","ID":"m1","Room":"7734"}`)} {
		got, bad, err := DecodeMessage(single)
		if err != nil || len(bad) != 0 || len(got) != 1 || got[0].ID != "m1" || got[0].Room != "7734" {
			t.Errorf("single-item message %q: %+v, %v, %v", single, got, bad, err)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func BenchmarkCodec(b *testing.B) {
	it := item.Item{Source: "bili-01", Platform: "bilibili", Kind: item.KindChat, Room: "7734", ID: "m1",
		AuthorID: "u9", Author: "观众", Text: "买到假货了，要求退款", TS: time.Now(), Labels: map[string]string{"team": "a", "region": "east"}}
	b.ReportAllocs()
	for b.Loop() {
		data, err := Encode(&it)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// A Decoder hands out one copy of the strings that repeat from item to
// item, also across messages, and decodes the same items as DecodeMessage.
func TestDecoderShares(t *testing.T) {
	ts := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	items := []item.Item{
		{Source: "bili-01", Platform: "bilibili", Kind: item.KindChat, Room: "7734", ID: "m1", Text: "假货", TS: ts, Labels: map[string]string{"team": "a"}},
		{Source: "bili-01", Platform: "bilibili", Kind: item.KindChat, Room: "7734", ID: "m2", Text: "好", TS: ts, Labels: map[string]string{"team": "a"}},
	}
	b := must(EncodeBatch(items))
	var d Decoder
	first, bad, err := d.DecodeMessage(b)
	if err != nil || len(bad) != 0 || !reflect.DeepEqual(first, items) {
		t.Fatalf("decode: %+v, bad %v, err %v", first, bad, err)
	}
	second, _, err := d.DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	for _, it := range [][2]item.Item{{first[0], first[1]}, {first[0], second[1]}} {
		if !same(it[0].Source, it[1].Source) || !same(it[0].Room, it[1].Room) || !same(it[0].Labels["team"], it[1].Labels["team"]) {
			t.Errorf("source, room and labels not shared between items")
		}
	}
	if same(first[0].ID, second[0].ID) || same(first[0].Text, second[0].Text) {
		t.Errorf("id and text shared between messages: they must be the item's own")
	}
	// The set of shared strings is bounded.
	for i := range 2 * maxInterned {
		d.in.get([]byte(strconv.Itoa(i)))
	}
	if n := len(d.in.m); n > maxInterned {
		t.Errorf("interner holds %d strings, want at most %d", n, maxInterned)
	}
}

// BenchmarkDecodeBatch decodes a message of 128 chat items of one
// partition, as a processor receives it.
func BenchmarkDecodeBatch(b *testing.B) {
	items := make([]item.Item, 128)
	for i := range items {
		items[i] = item.Item{Source: "bili-" + strconv.Itoa(i%4), Platform: "bilibili", Kind: item.KindChat, Room: strconv.Itoa(7734 + i%4),
			ID: "m" + strconv.Itoa(i), AuthorID: "u" + strconv.Itoa(i), Author: "观众", Text: "买到假货了，要求退款", TS: time.Now(),
			Labels: map[string]string{"team": "a", "region": "east"}}
	}
	data := must(EncodeBatch(items))
	var d Decoder
	b.ReportAllocs()
	for b.Loop() {
		if got, _, err := d.DecodeMessage(data); err != nil || len(got) != len(items) {
			b.Fatal(err)
		}
	}
}
