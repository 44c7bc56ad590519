package sentiment

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

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
// merged into it (物流 + 慢 → 物流慢, 质量 + 差 → 质量差), also across a
// degree word (物流 + 太慢 → 物流慢, 东西 + 这么差 → 东西差).
const sentComplaintSuffixes = "慢差贵烂假坏臭脏吵少小"

// sentTermDegrees are the degree words that may stand between a word and
// its judgement.
var sentTermDegrees = []string{"太", "很", "好", "超", "真", "挺", "蛮", "巨", "特", "这么", "那么", "非常", "特别", "超级", "实在", "有点", "有些"}

// sentTermNoise is our own list of words the stop lists let through that
// are never what people complain or rave about: pronoun and modal pairs,
// reporting verbs, fillers. Negators (不是, 没有) are dropped as terms by
// sentNegatorTerm; inside a compound (不发货) they stay.
var sentTermNoise = map[string]bool{
	"我要": true, "你要": true, "我们": true, "你们": true, "他们": true, "大家": true, "自己": true,
	"收到": true, "要求": true, "觉得": true, "感觉": true, "知道": true, "看到": true, "希望": true,
	"需要": true, "应该": true, "可能": true, "一下": true, "一直": true, "已经": true, "还是": true,
	"就是": true, "真的": true, "这个": true, "那个": true, "什么": true, "怎么": true, "为什么": true,
	"今天": true, "现在": true, "时候": true, "一个": true, "东西": true, "别装": true,
}

// sentNegatorTerms are the negators, which alone are no topic.
var sentNegatorTerms = func() map[string]bool {
	m := make(map[string]bool, len(sentOwnZhNegators))
	for _, w := range sentOwnZhNegators {
		m[w] = true
	}
	return m
}()

// sentTermJudgement returns the judgement character of w when w is a
// complaint suffix alone or after a degree word (慢, 太慢, 这么差).
func sentTermJudgement(w string) (string, bool) {
	for _, d := range sentTermDegrees {
		if rest, ok := strings.CutPrefix(w, d); ok && rest != "" {
			w = rest
			break
		}
	}
	if utf8.RuneCountInString(w) == 1 && strings.Contains(sentComplaintSuffixes, w) {
		return w, true
	}
	return "", false
}

// sentTermOrdinal reports counters such as 第三次, 第一, 两个.
func sentTermOrdinal(rs []rune) bool {
	return len(rs) >= 2 && (rs[0] == '第' || strings.ContainsRune("一二两三四五六七八九十几每", rs[0]) &&
		strings.ContainsRune("次个件单回天年", rs[len(rs)-1]))
}

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
		// Merge word + (太)慢/差/… into one complaint term.
		if han && len(rs) >= 2 && i+1 < len(words) && !t.stop[w] && !sentNegatorTerms[w] {
			if j, ok := sentTermJudgement(words[i+1]); ok {
				add(w + j)
				i++
				continue
			}
			if i+2 < len(words) && slices.Contains(sentTermDegrees, words[i+1]) {
				if j, ok := sentTermJudgement(words[i+2]); ok { // 物流 这么 慢
					add(w + j)
					i += 2
					continue
				}
			}
		}
		if t.stop[w] || sentTermNoise[w] || sentNegatorTerms[w] {
			continue
		}
		switch {
		case han:
			if len(rs) < 2 || sentTermOrdinal(rs) {
				continue // single characters and counters are rarely a topic
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
