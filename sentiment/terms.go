package sentiment

import (
	"bufio"
	"bytes"
	"strings"
	"unicode"

	"github.com/go-ego/gse"

	"lookout/sentiment/model"
)

// sentTermExtractor finds hot terms: gse segmentation with the compact
// dictionary embedded in sentiment/model (the top 50k words of gse's own; see
// sentiment/termsdict), loaded once and lazily, plus English words, stop
// words removed, complaint compounds kept whole.
type sentTermExtractor struct {
	seg  gse.Segmenter
	stop map[string]bool
}

// sentComplaintTerms are added to the segmentation dictionary with a high
// frequency so that the segmenter keeps them whole (物流慢, not 物流/慢).
var sentComplaintTerms = []string{
	"物流慢", "发货慢", "客服", "退款", "退货", "假货", "维权", "投诉", "曝光", "质量差", "态度差", "客服态度差",
	"不发货", "不退款", "不理人", "售后", "智商税", "割韭菜", "翻车", "卡顿", "掉线", "差评", "好评", "破损",
	"漏发", "错发", "缺货", "虚假宣传", "以次充好", "性价比", "掉帧", "延迟", "主播",
}

// sentComplaintSuffixes: a single-character judgement right after a word is
// merged into it (物流 + 慢 → 物流慢, 质量 + 差 → 质量差).
const sentComplaintSuffixes = "慢差贵烂假坏臭脏吵少小"

// newTermExtractor loads the embedded segmentation dictionary. gse's own
// embedded dictionaries (LoadDictEmbed) are never loaded: the full one has
// 352k words and takes seconds.
func newTermExtractor() (*sentTermExtractor, error) {
	t := &sentTermExtractor{stop: map[string]bool{}}
	t.seg.SkipLog = true
	dict, err := model.SegmentDict()
	if err != nil {
		return nil, errorf("load segmentation dictionary: %w", err)
	}
	if strings.HasPrefix(dict, "#") {
		if i := strings.IndexByte(dict, '\n'); i >= 0 {
			dict = dict[i+1:]
		}
	}
	if err := t.seg.LoadDictStr(dict); err != nil {
		return nil, errorf("load segmentation dictionary: %w", err)
	}
	for _, w := range sentComplaintTerms {
		if err := t.seg.AddToken(w, 100000, "n"); err != nil {
			return nil, errorf("add term %q: %w", w, err)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(model.Stopwords()))
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			t.stop[l] = true
		}
	}
	return t, nil
}

// ExtractTerms appends the hot terms of text to dst (each once, in order of
// appearance) and returns it. The first call loads the segmentation
// dictionary; later calls are safe for concurrent use.
func (c *Classifier) ExtractTerms(text string, dst []string) []string {
	c.termsOnce.Do(func() { c.termsExt, c.termsErr = newTermExtractor() })
	if c.termsErr != nil {
		return dst
	}
	s := c.pool.Get().(*sentScratch)
	s.fs.runes = c.feat.norm.normalize(s.fs.runes[:0], text)
	// Tokens (emoji) are not terms; make them separators.
	for i, r := range s.fs.runes {
		if r >= sentTokenBase && r <= sentTokenMax {
			s.fs.runes[i] = ' '
		}
	}
	norm := string(s.fs.runes)
	if cap(s.fs.runes) <= sentMaxPooledRunes {
		c.pool.Put(s)
	}
	return c.termsExt.extract(norm, dst)
}

func (t *sentTermExtractor) extract(norm string, dst []string) []string {
	start := len(dst)
	words := t.seg.Cut(norm, true)
	add := func(w string) {
		for _, d := range dst[start:] {
			if d == w {
				return
			}
		}
		dst = append(dst, w)
	}
	for i := 0; i < len(words); i++ {
		w := strings.TrimSpace(words[i])
		if w == "" {
			continue
		}
		rs := []rune(w)
		han := sentAllHan(w)
		// Merge word + 慢/差/… into one complaint term.
		if han && len(rs) >= 2 && i+1 < len(words) {
			if n := words[i+1]; len([]rune(n)) == 1 && strings.Contains(sentComplaintSuffixes, n) {
				add(w + n)
				i++
				continue
			}
		}
		if t.stop[w] {
			continue
		}
		switch {
		case han:
			if len(rs) < 2 {
				continue // single characters are rarely a topic
			}
			add(w)
		case sentTermWord(rs):
			add(w)
		}
	}
	return dst
}

// sentTermWord accepts English-like words of two or more letters that are
// not numbers.
func sentTermWord(rs []rune) bool {
	if len(rs) < 2 || len(rs) > 40 {
		return false
	}
	letters := 0
	for _, r := range rs {
		switch {
		case unicode.IsLetter(r):
			letters++
		case unicode.IsDigit(r), r == '\'', r == '-', r == '_':
		default:
			return false
		}
	}
	return letters > 0
}
