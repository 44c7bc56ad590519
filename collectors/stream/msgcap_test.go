package stream

import (
	"lookout/collectors/collectortest"
	"lookout/item"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCapStreamItem(t *testing.T) {
	big := strings.Repeat("退", 2000) // 6000 bytes
	tests := []struct {
		name              string
		text              string
		raw, msgLen       int
		wantOversized     bool
		wantText, wantRaw int // bytes kept
	}{
		{"small message untouched", "hello", 200, 200, false, 5, 200},
		{"text at the cap untouched", strings.Repeat("a", MaxText), MaxText + 100, MaxText + 100, false, MaxText, MaxText + 100},
		{"long text cut at a character boundary", big, 6100, 6100, true, MaxText - MaxText%3, MaxText},
		{"huge raw, short text", "hi", MaxMessage + 1, MaxMessage + 1, true, 2, MaxText},
		{"huge message, item without raw", "hi", 0, 10 << 20, true, 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := collectortest.StreamEnv(t, nil)
			src := map[string]string{"team": "ops"}
			it := item.Item{Room: "r", ID: "x", Text: tc.text, Raw: make([]byte, tc.raw), Labels: src}
			if got := CapItem(env, "s", &it, tc.msgLen); got != tc.wantOversized {
				t.Fatalf("oversized = %v, want %v", got, tc.wantOversized)
			}
			if len(it.Text) != tc.wantText || len(it.Raw) != tc.wantRaw || !utf8.ValidString(it.Text) {
				t.Errorf("kept text %d raw %d bytes (valid UTF-8 %v), want %d and %d", len(it.Text), len(it.Raw), utf8.ValidString(it.Text), tc.wantText, tc.wantRaw)
			}
			n := collectortest.Count(env.Metrics.Errors, "s", "oversized")
			if tc.wantOversized != (n == 1) || tc.wantOversized != (it.Labels["oversized"] != "") {
				t.Errorf("counted %v, label %q", n, it.Labels["oversized"])
			}
			if len(src) != 1 || it.Labels["team"] != "ops" {
				t.Errorf("source labels changed: %v / item %v", src, it.Labels)
			}
		})
	}
}
