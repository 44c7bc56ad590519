package sentiment

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// This file builds the derived word lists embedded in sentiment/model from
// the shared lexicons (HowNet, NTUSD, Tsinghua Li Jun, HowNet degree levels,
// VADER) plus the project's own hand-made lists below. It is called by the
// training program; the classifier only reads the generated files.

// Own lists: internet and live-chat words the academic lexicons lack or get
// wrong, with weights on the same ±0.5…2 scale as the merged lexicon.
var sentOwnZh = map[string]float64{
	"好": 1, "不错": 1.5, "棒": 1.5, "赞": 1.5, "喜欢": 1.5, "满意": 1.5, "推荐": 1, "好评": 2, "给力": 1.5,
	"牛逼": 1.5, "厉害": 1.5, "绝绝子": 2, "好看": 1.5, "好吃": 1.5, "好用": 1.5, "划算": 1, "实惠": 1,
	"流畅": 1, "舒服": 1.5, "漂亮": 1.5, "开心": 1.5, "感谢": 1, "谢谢": 1, "支持": 1, "爱了": 2, "太爱": 2,
	"宝藏": 1.5, "值得": 1, "惊艳": 1.5, "完美": 2, "优秀": 1.5, "专业": 1, "热情": 1, "及时": 1, "干净": 1,
	"方便": 1, "正品": 1.5, "物美价廉": 2, "性价比高": 2, "回购": 1.5, "点赞": 1.5, "加油": 1, "哈哈": 1,
	"可爱": 1.5, "帅": 1.5, "稳": 0.5, "耐用": 1, "好评如潮": 2, "神作": 2, "良心": 1.5, "靠谱": 1.5, "上头": 0.5,
	"yyds": 2,
	"差":    -1.5, "差评": -2, "垃圾": -2, "坑": -1.5, "坑爹": -2, "骗子": -2, "骗": -1.5, "假货": -2, "退款": -1,
	"退货": -1, "投诉": -1.5, "维权": -1.5, "曝光": -1, "失望": -1.5, "后悔": -1.5, "恶心": -2, "无语": -1.5,
	"太慢": -1.5, "慢": -0.5, "难吃": -2, "难用": -2, "难看": -1.5, "烂": -1.5, "坏了": -1.5, "卡顿": -1.5,
	"掉线": -1, "翻车": -1.5, "智商税": -2, "割韭菜": -2, "劝退": -2, "避雷": -2, "踩雷": -2, "拉黑": -1.5,
	"脏": -1.5, "吵": -1, "臭": -1.5, "态度差": -2, "不理人": -2, "敷衍": -1.5, "忽悠": -1.5, "欺骗": -2,
	"虚假": -2, "山寨": -1.5, "劣质": -2, "不值": -1.5, "退钱": -2, "辣鸡": -2, "无聊": -1, "烦": -1,
	"气死": -2, "生气": -1.5, "滚": -1.5, "傻逼": -2, "脑残": -2, "失败": -1.5, "糟糕": -2, "心累": -1.5,
	"难受": -1.5, "崩溃": -1.5, "惨": -1.5, "毛病": -1, "故障": -1.5, "发霉": -2, "过期": -1.5, "缩水": -1.5,
	"破": -0.5, "坏": -1, "差劲": -2, "太差": -2, "很差": -2, "不行": -1.5, "不好": -1.5, "不满": -1.5,
	"不满意": -2, "没用": -1.5, "骗钱": -2, "黑心": -2, "坑人": -2, "跑路": -1.5, "拖延": -1, "不发货": -2,
	"麻烦": -1, "贵": -0.5, "问题": -0.5, "呵呵": -0.5,
}

var sentOwnZhNegators = []string{
	"不", "没", "没有", "无", "未", "别", "非", "不是", "并非", "毫无", "绝不", "从不", "从未", "并未", "尚未",
	"不会", "不能", "不太", "不怎么", "不够", "不大", "不甚", "难以", "没什么", "莫", "勿", "甭", "木有",
	"不用", "不必", "不要", "决不", "永不", "缺乏", "缺少", "毫不", "绝非", "远非", "从没", "不曾", "未曾",
	"一点也不", "一点都不", "并不", "也不", "都不", "没怎么",
}

var sentOwnZhContrast = []string{"但是", "但", "可是", "不过", "然而", "只是", "却"}
var sentOwnZhPostNeg = []string{"个屁", "个鬼", "才怪", "个毛线", "个锤子"}

// VADER's negation list and booster dictionary (vaderSentiment.py, MIT).
var sentOwnEnNegators = []string{
	"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "cannot", "cant", "dont",
	"wont", "isnt", "arent", "wasnt", "werent", "doesnt", "didnt", "hasnt", "havent", "hadnt", "shouldnt",
	"wouldnt", "couldnt", "aint", "without", "rarely", "seldom", "hardly", "neednt", "mightnt", "mustnt",
}
var sentOwnEnBoost = []string{
	"absolutely", "amazingly", "awfully", "completely", "considerably", "decidedly", "deeply", "enormously",
	"entirely", "especially", "exceptionally", "extremely", "fabulously", "fully", "greatly", "hella", "highly",
	"hugely", "incredibly", "intensely", "majorly", "more", "most", "particularly", "purely", "quite", "really",
	"remarkably", "so", "substantially", "thoroughly", "totally", "tremendously", "uber", "unbelievably",
	"unusually", "utterly", "very", "super", "sooo", "soo", "too",
}
var sentOwnEnDamp = []string{
	"almost", "barely", "kinda", "less", "little", "marginally", "occasionally", "partly", "scarcely",
	"slightly", "somewhat", "sorta", "kindof",
}
var sentOwnEnContrast = []string{"but", "however"}

func sentReadLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lexicon: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\uFEFF"))
		if l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

func sentAllHan(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.Is(unicode.Han, r) {
			return false
		}
	}
	return true
}

// BuildLexicon merges the shared lexicons in dir with the own lists into the
// lexicon file format (see parseLexicon), sorted so the output is the same
// bytes on every run.
func BuildLexicon(dir string) ([]byte, error) {
	type key struct{ lang, word string }
	type val struct {
		kind LexKind
		w    float64
	}
	entries := map[key]val{}
	// Chinese polarity: one vote per list, merged.
	votes := map[string]int{}
	for _, f := range []struct {
		name string
		sign int
	}{
		{"zh_hownet_positive_emotion.txt", 1}, {"zh_hownet_positive_evaluation.txt", 1},
		{"zh_ntusd_positive.txt", 1}, {"zh_tsinghua_lijun_positive.txt", 1},
		{"zh_hownet_negative_emotion.txt", -1}, {"zh_hownet_negative_evaluation.txt", -1},
		{"zh_ntusd_negative.txt", -1}, {"zh_tsinghua_lijun_negative.txt", -1},
	} {
		lines, err := sentReadLines(filepath.Join(dir, f.name))
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, l := range lines {
			w := strings.TrimSpace(strings.Fields(l)[0])
			if !sentAllHan(w) || seen[w] {
				continue // header lines, ASCII, duplicates within a list
			}
			seen[w] = true
			votes[w] += f.sign
		}
	}
	for w, v := range votes {
		if v == 0 {
			continue
		}
		a := math.Abs(float64(v))
		if len([]rune(w)) == 1 && a < 2 {
			continue // single characters are too ambiguous on one vote
		}
		entries[key{"zh", w}] = val{LexSentiment, math.Copysign(math.Min(1+0.25*(a-1), 1.75), float64(v))}
	}
	// Degree words: HowNet levels.
	lines, err := sentReadLines(filepath.Join(dir, "zh_hownet_degree.txt"))
	if err != nil {
		return nil, err
	}
	levels := []float64{2.0, 1.6, 1.3, 0.7, 0.5, 1.8}
	level := -1
	for _, l := range lines {
		if len(l) > 2 && l[0] >= '1' && l[0] <= '6' && l[1] == '.' {
			level = int(l[0] - '1')
			continue
		}
		if level < 0 || !sentAllHan(l) {
			continue
		}
		if _, own := sentOwnZh[l]; own || l == "不" {
			continue
		}
		entries[key{"zh", l}] = val{LexDegree, levels[level]}
	}
	lines, err = sentReadLines(filepath.Join(dir, "zh_degree_adverbs.txt"))
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		w, _, _ := strings.Cut(l, ",")
		if _, ok := entries[key{"zh", w}]; ok || !sentAllHan(w) {
			continue
		}
		if _, own := sentOwnZh[w]; own {
			continue
		}
		entries[key{"zh", w}] = val{LexDegree, 1.5}
	}
	for w, s := range sentOwnZh {
		if sentAllHan(w) {
			entries[key{"zh", w}] = val{LexSentiment, s}
		} else {
			entries[key{"en", w}] = val{LexSentiment, s}
		}
	}
	for _, w := range sentOwnZhNegators {
		entries[key{"zh", w}] = val{LexNegator, 1}
	}
	for _, w := range sentOwnZhContrast {
		entries[key{"zh", w}] = val{LexContrast, 1}
	}
	for _, w := range sentOwnZhPostNeg {
		entries[key{"zh", w}] = val{LexPostNeg, -1.5}
	}
	// English: VADER valences (mean of 10 ratings, -4..4) halved to the
	// same scale; tokens that are not plain words (emoticons) are handled by
	// the normaliser's token table instead.
	lines, err = sentReadLines(filepath.Join(dir, "vader_lexicon.txt"))
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) < 2 {
			continue
		}
		w := f[0]
		ok := true
		for _, r := range w {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '\'') {
				ok = false
				break
			}
		}
		if !ok || w == "" {
			continue
		}
		m, err := strconv.ParseFloat(f[1], 64)
		if err != nil || math.Abs(m) < 0.3 {
			continue
		}
		entries[key{"en", w}] = val{LexSentiment, m / 2}
	}
	for _, w := range sentOwnEnBoost {
		entries[key{"en", w}] = val{LexDegree, 1.3}
	}
	for _, w := range sentOwnEnDamp {
		entries[key{"en", w}] = val{LexDegree, 0.7}
	}
	for _, w := range sentOwnEnNegators {
		entries[key{"en", w}] = val{LexNegator, 1}
	}
	for _, w := range sentOwnEnContrast {
		entries[key{"en", w}] = val{LexContrast, 1}
	}
	keys := make([]key, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].lang != keys[j].lang {
			return keys[i].lang < keys[j].lang
		}
		return keys[i].word < keys[j].word
	})
	var b bytes.Buffer
	b.WriteString("# Generated by go run ./sentiment/train from shared/data/lexicons (HowNet, NTUSD, Tsinghua Li Jun,\n")
	b.WriteString("# HowNet degree levels, VADER) and the own lists in sentiment/lexbuild.go. Do not edit.\n")
	b.WriteString("# lang\tkind\tword\tweight\n")
	for _, k := range keys {
		v := entries[k]
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", k.lang, LexKindName(v.kind), k.word, strconv.FormatFloat(v.w, 'g', 4, 64))
	}
	return b.Bytes(), nil
}

// sentOwnKeepTerms are never dropped as stop words from hot terms: negators
// and complaint words that stop lists contain.
var sentOwnKeepTerms = []string{"不", "没", "没有", "差", "慢", "贵", "假", "坏", "烂", "退", "骗", "问题", "客服", "退款", "投诉"}

// BuildStopwords merges the four Chinese stop lists in dir with an English
// stop list into one sorted word list for hot-term extraction, minus
// negators, lexicon sentiment words and complaint words.
func BuildStopwords(dir string, lexicon []byte) ([]byte, error) {
	keep := map[string]bool{}
	for _, w := range sentOwnKeepTerms {
		keep[w] = true
	}
	for _, w := range sentOwnZhNegators {
		keep[w] = true
	}
	sc := bufio.NewScanner(bytes.NewReader(lexicon))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) == 4 && f[1] == "sent" {
			keep[f[2]] = true
		}
	}
	stop := map[string]bool{}
	for _, name := range []string{"zh_stopwords_cn.txt", "zh_stopwords_hit.txt", "zh_stopwords_baidu.txt", "zh_stopwords_scu.txt"} {
		lines, err := sentReadLines(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			l = strings.ToLower(l)
			if !keep[l] && !strings.ContainsAny(l, "\t\n") {
				stop[l] = true
			}
		}
	}
	for _, w := range strings.Fields(sentEnStopwords) {
		if !keep[w] {
			stop[w] = true
		}
	}
	words := make([]string, 0, len(stop))
	for w := range stop {
		words = append(words, w)
	}
	sort.Strings(words)
	var b bytes.Buffer
	b.WriteString("# Generated by go run ./sentiment/train from shared/data/lexicons zh_stopwords_{cn,hit,baidu,scu}.txt\n")
	b.WriteString("# and an English list, minus negators and sentiment words. Do not edit.\n")
	for _, w := range words {
		b.WriteString(w)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// A common English stop list (function words only).
const sentEnStopwords = `a about above after again against all am an and any are as at be because been before being below
between both by could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just let me my myself of off on once only or other ought our ours
ourselves out over own same she should some such than that the their theirs them themselves then there these they this
those through to under until up us was we were what when where which while who whom why will with would you your yours
yourself yourselves im ive id ill youre youve its it's i'm i've that's there's what's let's rt via amp get got go going
one also would can will still even much many lot lots`
