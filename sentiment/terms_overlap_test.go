package sentiment

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"unicode/utf8"
)

// sentTermOverlapFiles are real Chinese texts the extractor was not tuned
// on: Weibo posts (short, chat-like) and product reviews.
var sentTermOverlapFiles = []string{
	"smp2020_ewect_usual_dev.csv",
	"nlpcc2014_weibo_emotion_dev.csv",
	"online_shopping_10_cats_dev.csv",
	"ChnSentiCorp_htl_all_dev.csv",
}

// TestTermsOverlapGse compares the dictionary-driven extractor with gse's
// segmenter (same dictionary, same selection rules) on real text: per message
// (terms in both / terms of either) and over the corpus's hot-term list (the
// 100 most frequent terms, which is what users see).
func TestTermsOverlapGse(t *testing.T) {
	if testing.Short() {
		t.Skip("loads gse's segmenter")
	}
	dir := os.Getenv("LOOKOUT_DATA")
	if dir == "" {
		t.Skip("LOOKOUT_DATA not set: no real text to compare terms on")
	}
	c := sentNewTest(t, Options{Terms: true})
	ref, err := newGseTermRef()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sentTermOverlapFiles {
		exs, err := ReadEvalFile(filepath.Join(dir, "sentiment", f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(exs) > 3000 {
			exs = exs[:3000]
		}
		var both, onlyOurs, onlyGse int
		ours, theirs := map[string]int{}, map[string]int{}
		var a, b []string
		for _, e := range exs {
			a = c.ExtractTerms(e.Text, a[:0])
			b = ref.terms(c, e.Text, b[:0])
			in := map[string]bool{}
			for _, w := range b {
				in[w] = true
				theirs[w]++
			}
			for _, w := range a {
				ours[w]++
				if in[w] {
					both++
					delete(in, w)
				} else {
					onlyOurs++
				}
			}
			onlyGse += len(in)
		}
		jacc := float64(both) / float64(both+onlyOurs+onlyGse)
		recall := float64(both) / float64(both+onlyGse)
		precision := float64(both) / float64(both+onlyOurs)
		top := sentTopTerms(ours, 100)
		topRef := sentTopTerms(theirs, 100)
		inTop := map[string]bool{}
		for _, w := range topRef {
			inTop[w] = true
		}
		shared := 0
		for _, w := range top {
			if inTop[w] {
				shared++
			}
		}
		t.Logf("%s: %d texts; per-message terms: %.1f%% shared of either (precision %.1f%%, recall %.1f%% against gse); top-100 hot terms: %d shared",
			f, len(exs), 100*jacc, 100*precision, 100*recall, shared)
		if jacc < 0.80 || shared < 90 {
			t.Errorf("%s: terms drift from gse's: %.1f%% per message, %d of the top 100", f, 100*jacc, shared)
		}
	}
}

func sentTopTerms(counts map[string]int, k int) []string {
	ws := make([]string, 0, len(counts))
	for w := range counts {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool {
		if counts[ws[i]] != counts[ws[j]] {
			return counts[ws[i]] > counts[ws[j]]
		}
		return ws[i] < ws[j]
	})
	if len(ws) > k {
		ws = ws[:k]
	}
	return ws
}

// FuzzExtractTerms: any text yields valid, non-empty, distinct terms and
// never panics.
func FuzzExtractTerms(f *testing.F) {
	for _, s := range []string{
		"物流慢，客服也不理人，我要退款", "这个价格太值了", "物流这么慢", "The refund took forever", "\xff\xfe\x00",
		"[怒][doge]😡", "好好好好好好好好好好好好好好好好好好", "A股T恤卡拉OK", "〇〇〇", "䶮𠀀𪚥", "太慢", "慢慢慢",
	} {
		f.Add(s)
	}
	c, err := New(Options{Terms: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		terms := c.ExtractTerms(text, nil)
		seen := map[string]bool{}
		for _, w := range terms {
			if w == "" || !utf8.ValidString(w) || seen[w] {
				t.Fatalf("ExtractTerms(%q) = %q: empty, invalid or repeated term %q", text, terms, w)
			}
			seen[w] = true
		}
	})
}
