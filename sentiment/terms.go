package sentiment

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

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
