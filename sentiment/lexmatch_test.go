package sentiment

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"

	"lookout/sentiment/model"
)

// TestLexiconFindsEveryChineseWord: the Chinese lexicon lives in hashed
// tables (pair slots with length bits, a word table, prefix bitsets; see
// sentLexicon). Every word of the embedded lexicon, scored alone, must be
// found whole with its own kind and weight, whichever of the tables holds
// it; and with a character that starts no word after it, the match must not
// grow.
func TestLexiconFindsEveryChineseWord(t *testing.T) {
	c := sentNewTest(t, Options{})
	first := map[string]bool{} // duplicate words: the first entry wins
	var fs FeatureScratch
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(model.Lexicon()))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 || f[0] != "zh" {
			continue
		}
		word := f[2]
		rs := []rune(word)
		if len(rs) > sentLexMaxLen || rs[0] < sentHanLo || rs[0] > sentHanHi || first[word] {
			continue
		}
		first[word] = true
		if c.feat.Normalize(word) != word {
			continue // contains a traditional character: never seen as is
		}
		w, err := strconv.ParseFloat(f[3], 32)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{word, word + "。", word + "丂"} {
			c.feat.Extract(&fs, text)
			if len(fs.hits) == 0 || fs.hits[0].start != 0 || int(fs.hits[0].end) != len(rs) {
				t.Errorf("%q: hits %+v, want one over the whole word", text, fs.hits)
				continue
			}
			e := fs.hits[0].e
			if LexKindName(e.kind) != f[1] || e.w != float32(w) {
				t.Errorf("%q: entry %s %v, lexicon says %s %s", text, LexKindName(e.kind), e.w, f[1], f[3])
			}
		}
		checked++
	}
	if checked < 20000 {
		t.Fatalf("checked only %d Chinese words", checked)
	}
}

// TestLexiconNoSpuriousChineseMatch: pairs of characters that are not
// lexicon words must not match (the tables keep fingerprints, so a false
// hit is possible only on a fingerprint collision, and none may occur on
// this sample of ordinary text).
func TestLexiconNoSpuriousChineseMatch(t *testing.T) {
	c := sentNewTest(t, Options{})
	words := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(model.Lexicon()))
	for sc.Scan() {
		if f := strings.Split(sc.Text(), "\t"); len(f) == 4 && f[0] == "zh" {
			words[f[2]] = true
		}
	}
	var fs FeatureScratch
	for _, text := range []string{
		"房间很大早餐一般服务员态度还可以就是隔音效果差了点下次还会再来",
		"物流速度快包装完好宝贝和描述的一致性价比高推荐购买",
		"这本书的内容比较空洞作者写得很啰嗦不值这个价钱",
		"第三次买了这次买了两份如果除了运费应该比超市便宜点苹果爽脆甜",
	} {
		c.feat.Extract(&fs, text)
		for _, h := range fs.hits {
			var w []rune
			for i := h.start; i < h.end; i++ {
				w = append(w, fs.units[i].r)
			}
			if !words[string(w)] {
				t.Errorf("%q: matched %q, which is not in the lexicon", text, string(w))
			}
		}
	}
}
