package sentiment

import (
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"lookout/config"
	"lookout/item"
)

func FuzzScore(f *testing.F) {
	for _, s := range []string{
		"不是很好", "好个屁", "not good :(", "[怒][笑哭][doge]", "😡👍🏻", "\xff\xfe\x00", "@@@@", "[[[[]]]]",
		"https://", "www.", "&amp;&lt;&", "ＡＢＣ！！？？", strings.Repeat("好", 300), "\ufeff\u200b\u202e",
		"\ue000\ue001", "T_T:-)<3", "don't isn't n't '", "但是但是但是", "个屁个屁",
	} {
		f.Add(s)
	}
	c, err := New(Options{Groups: map[string]config.KeywordGroup{
		"crisis": {Category: "crisis", Severity: "red", Any: []string{"退款", "假货", "refund", "[怒]"}, None: []string{"已解决"}},
		"all":    {All: []string{"客服", "差"}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var s item.Score
		c.ScoreInto(&s, text)
		if !s.Scored || s.Value < -1 || s.Value > 1 || s.Prob < 0 || s.Prob > 1 || s.Value != s.Value {
			t.Fatalf("Score(%q) out of range: %+v", text, s)
		}
		switch s.Label {
		case item.Positive:
			if s.Value <= 0 {
				t.Fatalf("positive with score %v", s.Value)
			}
		case item.Negative:
			if s.Value >= 0 {
				t.Fatalf("negative with score %v", s.Value)
			}
		case item.Neutral:
		default:
			t.Fatalf("label %v", s.Label)
		}
		switch s.Lang {
		case "zh", "en", "mixed", "other":
		default:
			t.Fatalf("lang %q", s.Lang)
		}
		p := sentTrainingPathProbs(c, text)
		if want := p[ClassPositive] - p[ClassNegative]; s.Value != want && !(s.Value == 0 && s.Prob == 1) {
			t.Fatalf("Score(%q) = %v, the training path (Extract + Probs) gives %v", text, s.Value, want)
		}
		n := c.feat.Normalize(text)
		if !utf8.ValidString(n) {
			t.Fatalf("normal form of %q is not valid UTF-8: %q", text, n)
		}
		if utf8.RuneCountInString(n) > utf8.RuneCountInString(text)+1 && len(text) <= MaxTextBytes {
			// Emoticons may turn into " tok " but never grow much.
			if utf8.RuneCountInString(n) > 3*utf8.RuneCountInString(text) {
				t.Fatalf("normal form grew: %q → %q", text, n)
			}
		}
	})
}

// A 1 MB line with control characters and invalid UTF-8 is scored on its
// first MaxTextBytes and does not make memory grow with its size.
func TestHugeInputBounded(t *testing.T) {
	c := sentNewTest(t, Options{Groups: map[string]config.KeywordGroup{"crisis": {Any: []string{"退款"}}}})
	var b strings.Builder
	for b.Len() < 1<<20 {
		b.WriteString("退款\x00\xff好好好好好!!!!! not good 😡[怒]\t")
	}
	huge := b.String()
	var s item.Score
	c.ScoreInto(&s, huge)
	if s.Label != item.Negative || len(s.Groups) != 1 {
		t.Errorf("huge: %v groups %v", s.Label, s.Groups)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 10
	for i := 0; i < n; i++ {
		c.ScoreInto(&s, huge)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 8<<20 {
		t.Errorf("a 1 MB line allocates %d bytes per score, want a bound independent of its length (< 8 MB)", per)
	}
}
