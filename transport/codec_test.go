package transport

import (
	"reflect"
	"strings"
	"testing"
	"time"

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
