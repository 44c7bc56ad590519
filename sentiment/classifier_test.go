package sentiment

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"lookout/config"
	"lookout/item"
)

func sentNewTest(t testing.TB, opts Options) *Classifier {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNormalize(t *testing.T) {
	c := sentNewTest(t, Options{})
	tok := func(name string) string {
		for i, d := range sentTokenDefs {
			if d.tok.name == name {
				return string(sentTokenBase + rune(i))
			}
		}
		t.Fatalf("no token %q", name)
		return ""
	}
	cases := []struct{ in, want string }{
		{"好好好好好", "好好"},
		{"!!!!!", "!!"},
		{"！！！？？", "!!??"},
		{"ＡＢＣ１２３", "abc123"},
		{"Hello WORLD", "hello world"},
		{"\ufeff开头有BOM", "开头有bom"},
		{"质量很爛，服務態度差", "质量很烂,服务态度差"},
		{"看这个 https://t.cn/abc?x=1 好坑", "看这个 好坑"},
		{"链接http://example.com/a结束", "链接 结束"},
		{"@张三 你说得对", "你说得对"},
		{"转发//@李四:太差了", "转发// :太差了"},
		{"[怒]退款", tok("angry") + "退款"},
		{"[Doge]", tok("doge")},
		{"[笑哭][笑哭]", tok("laugh_cry") + tok("laugh_cry")},
		{"[未知表情]", "[未知表情]"},
		{"😡😡😡😡", tok("angry") + tok("angry")},
		{"赞👍🏻", "赞" + tok("praise")},
		{"great :) really", "great " + tok("smile") + " really"},
		{"T_T 好难过", tok("sad") + " 好难过"},
		{"a\x00b\tc\r\nd", "a b c d"},
		{"AT&amp;T", "at&t"},
		{"1000元", "1000元"},
		{"   ", ""},
		{"\xff\xfe坏", "坏"},
	}
	for _, tc := range cases {
		if got := c.feat.Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLabels(t *testing.T) {
	c := sentNewTest(t, Options{})
	cases := []struct {
		name string
		text string
		want item.Label
	}{
		{"negation zh 不是很好", "不是很好", item.Negative},
		{"negation zh 不错", "不错", item.Positive},
		{"post-negation 好个屁", "好个屁", item.Negative},
		{"negation zh 不太满意", "不太满意", item.Negative},
		{"double word 不满意", "这次购物很不满意", item.Negative},
		{"negation en not good", "not good", item.Negative},
		{"negation en isn't great", "the service isn't great", item.Negative},
		{"plain en good", "good", item.Positive},
		{"plain zh 很好", "很好", item.Positive},
		{"degree zh 非常好", "非常好", item.Positive},
		{"degree en very bad", "very bad", item.Negative},
		{"emoticon bracket angry", "[怒]", item.Negative},
		{"emoticon bracket love", "[爱你][爱你]", item.Positive},
		{"emoji angry", "😡😡", item.Negative},
		{"emoji thumbs up", "👍", item.Positive},
		{"ascii emoticon", "I love it :)", item.Positive},
		{"chat crisis", "客服不理人，要退款！！", item.Negative},
		{"chat praise", "主播好可爱啊哈哈哈哈", item.Positive},
		{"mixed zh en", "用了一下iPhone真的不错", item.Positive},
		{"mixed en zh neg", "这个app太垃圾了 totally useless", item.Negative},
		{"traditional", "質量很爛", item.Negative},
		{"empty", "", item.Neutral},
		{"only link", "https://example.com/x", item.Neutral},
		{"only punctuation", "？？？", item.Neutral},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := c.Score(tc.text)
			if s.Label != tc.want {
				t.Errorf("Score(%q) = %v (score %.3f prob %.3f), want %v", tc.text, s.Label, s.Value, s.Prob, tc.want)
			}
			if !s.Scored || s.Value < -1 || s.Value > 1 || s.Prob < 0 || s.Prob > 1 {
				t.Errorf("Score(%q) out of range: %+v", tc.text, s)
			}
		})
	}
}

// Degree words strengthen, negation flips: compare the polarity log-odds
// log P(positive)/P(negative), not just labels.
func TestDegreeAndNegationOrder(t *testing.T) {
	c := sentNewTest(t, Options{})
	v := func(s string) float64 {
		p := sentTrainingPathProbs(c, s)
		return math.Log(p[ClassPositive] / p[ClassNegative])
	}
	pairs := []struct{ weaker, stronger string }{
		{"好", "非常好"},
		{"满意", "非常满意"},
		{"失望", "很不满意"}, // both negative
	}
	// "very good" is not checked against "good": the n-grams of "very",
	// which precedes negative words in tweets as often as positive ones,
	// cancel the degree boost (log-odds 3.8 against 4.2); both are strongly
	// positive.
	for _, w := range []string{"good", "very good"} {
		if v(w) < 2 {
			t.Errorf("%q log-odds %.3f, want clearly positive", w, v(w))
		}
	}
	for _, p := range pairs[:2] {
		if !(v(p.stronger) > v(p.weaker)) {
			t.Errorf("%q (%.3f) should score above %q (%.3f)", p.stronger, v(p.stronger), p.weaker, v(p.weaker))
		}
	}
	if !(v("bad") > v("very bad")) {
		t.Errorf("very bad (%.3f) should score below bad (%.3f)", v("very bad"), v("bad"))
	}
	if !(v("满意") > 0 && v("不满意") < 0) {
		t.Errorf("满意 %.3f / 不满意 %.3f: negation should flip", v("满意"), v("不满意"))
	}
	if !(v("good") > 0 && v("not good") < 0) {
		t.Errorf("good %.3f / not good %.3f: negation should flip", v("good"), v("not good"))
	}
}

func TestLang(t *testing.T) {
	c := sentNewTest(t, Options{})
	cases := map[string]string{
		"今天天气很好":                  "zh",
		"what a lovely day":       "en",
		"iPhone 15 的拍照效果真的很好用":    "zh",
		"我觉得这个 feature 很 useful":  "mixed",
		"😀😀":                      "other",
		"12345":                   "other",
		"hello there my friend 你": "en",
	}
	for in, want := range cases {
		if got := c.Score(in).Lang; got != want {
			t.Errorf("lang(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestNeutralThreshold(t *testing.T) {
	strict := sentNewTest(t, Options{NeutralThreshold: 0.999})
	loose := sentNewTest(t, Options{NeutralThreshold: 0.5})
	text := "还可以吧"
	if got := loose.Score(text).Label; got == item.Neutral {
		t.Errorf("threshold 0.5: %q should not be neutral", text)
	}
	if got := strict.Score(text); got.Label != item.Neutral {
		t.Errorf("threshold 0.999: %q = %v (prob %.3f), want neutral", text, got.Label, got.Prob)
	}
	if _, err := New(Options{NeutralThreshold: 1.5}); err == nil {
		t.Error("threshold 1.5 accepted")
	}
}

func TestKeywordGroups(t *testing.T) {
	groups := map[string]config.KeywordGroup{
		"crisis":       {Category: "crisis", Severity: "red", Any: []string{"投诉", "退款", "曝光", "假货", "维权"}, None: []string{"已解决"}},
		"service":      {Category: "service", Severity: "yellow", Any: []string{"物流慢", "客服态度差", "客服不理人"}},
		"refund_fraud": {Category: "crisis", Severity: "red", All: []string{"退款", "骗"}},
		// Overlapping patterns: 客服 inside 客服态度差, refund inside refunds.
		"support": {Any: []string{"客服", "Refund"}},
		"en_all":  {Category: "quality", Severity: "green", Any: []string{"broken"}, All: []string{"iPhone"}},
	}
	c := sentNewTest(t, Options{Groups: groups})
	cases := []struct {
		text string
		want map[string][]string // group → terms
	}{
		{"我要投诉，还要退款", map[string][]string{"crisis": {"投诉", "退款"}}},
		{"投诉已解决，谢谢", map[string][]string{}},
		{"物流慢，客服态度差", map[string][]string{"service": {"物流慢", "客服态度差"}, "support": {"客服"}}},
		{"退款被骗了", map[string][]string{"crisis": {"退款"}, "refund_fraud": {"退款", "骗"}}},
		{"ＲＥＦＵＮＤＳ please", map[string][]string{"support": {"Refund"}}},
		{"My IPHONE arrived BROKEN", map[string][]string{"en_all": {"broken", "iPhone"}}},
		{"broken toaster", map[string][]string{}},
		{"曝光！！[怒]", map[string][]string{"crisis": {"曝光"}}},
		{"要求退款", map[string][]string{"crisis": {"退款"}}},
		{"一切正常", map[string][]string{}},
		{"客服不理人", map[string][]string{"service": {"客服不理人"}, "support": {"客服"}}},
		{"這是假貨", map[string][]string{"crisis": {"假货"}}}, // traditional folded
	}
	for _, tc := range cases {
		s := c.Score(tc.text)
		got := map[string][]string{}
		for _, m := range s.Groups {
			got[m.Group] = m.Terms
			g := groups[m.Group]
			wantCat := g.Category
			if wantCat == "" {
				wantCat = m.Group
			}
			if m.Category != wantCat {
				t.Errorf("%q: group %s category %q, want %q", tc.text, m.Group, m.Category, wantCat)
			}
			if g.Severity != "" && m.Severity != g.Severity || g.Severity == "" && m.Severity != "yellow" {
				t.Errorf("%q: group %s severity %q", tc.text, m.Group, m.Severity)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("groups(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	// Output order is by group name.
	s := c.Score("退款被骗了 客服")
	for i := 1; i < len(s.Groups); i++ {
		if s.Groups[i-1].Group > s.Groups[i].Group {
			t.Errorf("groups not sorted: %v", s.Groups)
		}
	}
}

func TestKeywordGroupErrors(t *testing.T) {
	for name, g := range map[string]config.KeywordGroup{
		"empty":     {},
		"only_none": {None: []string{"x"}},
		"url_only":  {Any: []string{"https://example.com"}},
	} {
		if _, err := New(Options{Groups: map[string]config.KeywordGroup{name: g}}); err == nil {
			t.Errorf("group %s: no error", name)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("group %s: error %q does not name the group", name, err)
		}
	}
}

// The same scratch reuse must not leak one text's groups into the next.
func TestScoreIntoReuse(t *testing.T) {
	c := sentNewTest(t, Options{Groups: map[string]config.KeywordGroup{
		"crisis": {Category: "crisis", Severity: "red", Any: []string{"退款", "假货"}},
	}})
	var s item.Score
	c.ScoreInto(&s, "假货，退款")
	if len(s.Groups) != 1 || len(s.Groups[0].Terms) != 2 {
		t.Fatalf("first: %+v", s.Groups)
	}
	c.ScoreInto(&s, "今天很开心")
	if len(s.Groups) != 0 {
		t.Fatalf("second: stale groups %+v", s.Groups)
	}
	c.ScoreInto(&s, "退款")
	if len(s.Groups) != 1 || !reflect.DeepEqual(s.Groups[0].Terms, []string{"退款"}) {
		t.Fatalf("third: %+v", s.Groups)
	}
}

func TestConcurrentScore(t *testing.T) {
	c := sentNewTest(t, Options{Groups: map[string]config.KeywordGroup{"crisis": {Any: []string{"退款"}}}})
	texts := []string{"不是很好", "不错", "退款!!", "great :)", "not good at all"}
	want := make([]item.Score, len(texts))
	for i, s := range texts {
		want[i] = c.Score(s)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s item.Score
			for k := 0; k < 200; k++ {
				i := k % len(texts)
				c.ScoreInto(&s, texts[i])
				if s.Label != want[i].Label || s.Value != want[i].Value || len(s.Groups) != len(want[i].Groups) {
					t.Errorf("concurrent %q: %+v, want %+v", texts[i], s, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestScoreIntoZeroAllocs(t *testing.T) {
	if sentRaceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random: allocation counts are meaningless under -race")
	}
	c := sentNewTest(t, Options{Groups: map[string]config.KeywordGroup{
		"crisis": {Any: []string{"退款", "假货", "refund"}, None: []string{"已解决"}},
	}})
	var s item.Score
	texts := []string{"客服不理人，要退款！！[怒]", "主播好可爱哈哈哈👍", "not good, I want a refund :(", "质量很爛"}
	for _, x := range texts {
		c.ScoreInto(&s, x) // warm up pool and dst
	}
	allocs := testing.AllocsPerRun(200, func() {
		for _, x := range texts {
			c.ScoreInto(&s, x)
		}
	})
	if allocs != 0 {
		t.Errorf("ScoreInto allocates %.1f times per run, want 0", allocs)
	}
}

func TestExtractTerms(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the segmentation dictionary")
	}
	c := sentNewTest(t, Options{Terms: true})
	cases := []struct {
		text string
		want []string
	}{
		{"物流慢，客服也不理人，我要退款", []string{"物流慢", "客服", "不理人", "退款"}},
		{"这个主播的客服态度差", []string{"主播", "客服态度差"}},
		{"The refund took forever, terrible support", []string{"refund", "forever", "terrible", "support"}},
		// A degree word between the topic and its judgement.
		{"我要退款，物流太慢了", []string{"退款", "物流慢"}},
		{"物流这么慢，质量很差", []string{"物流慢", "质量差"}},
		// Negators, counters and reporting verbs are no topic.
		{"不是很好用，客服态度差", []string{"客服态度差"}},
		{"这个价格太值了，已经第三次买了", []string{"价格", "太值"}},
		{"收到的是假货！要求退款！", []string{"假货", "退款"}},
	}
	for _, tc := range cases {
		got := c.ExtractTerms(tc.text, nil)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("ExtractTerms(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
	// Score fills Terms when asked.
	if s := c.Score("物流慢还不退款"); len(s.Terms) == 0 {
		t.Errorf("Score with Terms: no terms")
	}
	// And not otherwise.
	off := sentNewTest(t, Options{})
	if s := off.Score("物流慢还不退款"); len(s.Terms) != 0 {
		t.Errorf("Score without Terms: %q", s.Terms)
	}
	// Without Terms the segmentation dictionary is never loaded.
	if off.termsExt != nil || off.termsErr != nil {
		t.Errorf("Score without Terms loaded the segmentation dictionary")
	}
}

func TestEvalFileFormats(t *testing.T) {
	c := sentNewTest(t, Options{NeutralThreshold: 0.5})
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "x.csv")
	os.WriteFile(csvPath, []byte("cat,label,review\n书籍,1,非常好的一本书，推荐\n书籍,0,\"太差了,退货\"\n书籍,1,很满意\n书籍,0,垃圾\n"), 0o644)
	r, err := EvalFile(c, csvPath)
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 4 || r.Accuracy != 1 || r.MacroF1 != 1 || r.NeutralRate != 0 {
		t.Errorf("csv: %+v", r)
	}
	tsvPath := filepath.Join(dir, "x.tsv")
	os.WriteFile(tsvPath, []byte("id\tmean_score\ttext\n1\t2.5\tI love it, wonderful\n2\t-1.5\tterrible, awful service\n3\t0\tneutral line dropped\n4\t1.1\t\n"), 0o644)
	r, err = EvalFile(c, tsvPath)
	if err != nil {
		t.Fatal(err)
	}
	// The empty text is neutral: counted wrong, and in the neutral rate.
	if r.N != 3 || r.Accuracy < 0.66 || r.Accuracy > 0.67 || r.NeutralRate < 0.33 || r.NeutralRate > 0.34 {
		t.Errorf("tsv: %+v", r)
	}
	b, _ := json.Marshal(r)
	for _, k := range []string{`"file"`, `"n"`, `"accuracy"`, `"macro_f1"`, `"neutral_rate"`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("json %s lacks %s", b, k)
		}
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("a,b\n1,2\n"), 0o644)
	if _, err := EvalFile(c, bad); err == nil {
		t.Error("CSV without label/review accepted")
	}
	if _, err := EvalFile(c, filepath.Join(dir, "missing.csv")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestModelRoundTrip(t *testing.T) {
	var w [numHeads][]float32
	for h := range w {
		w[h] = make([]float32, 1<<8)
		for i := range w[h] {
			w[h][i] = float32((i+h)%7) - 3
		}
	}
	var d [numHeads][NumDense]float32
	d[headPos][DenseZhPos] = 0.75
	d[headNeu][DenseNoLex] = -0.5
	m := Quantize(w, d, 8, [numHeads]float32{1.5, 0.9}, [numHeads]float32{-0.25, 0.1})
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := UnmarshalModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Error("model does not round-trip")
	}
	for _, cut := range []int{0, 5, 20, len(b) - 1} {
		if _, err := UnmarshalModel(b[:cut]); err == nil {
			t.Errorf("truncated model (%d bytes) accepted", cut)
		}
	}
	for i, v := range m.Weights {
		for h := 0; h < numHeads; h++ {
			q := int8(v >> (8 * h))
			if q < -127 {
				t.Fatalf("weight %d head %d = %d outside ±127", i, h, q)
			}
			// The pair holds each head's own weight, at its own scale.
			if got, want := float32(q)*m.Scale[h], w[h][i]; math.Abs(float64(got-want)) > float64(m.Scale[h])/2+1e-6 {
				t.Fatalf("weight %d head %d = %v, want %v", i, h, got, want)
			}
		}
	}
	// Files of the earlier two-class formats are rejected with an error that
	// names the format.
	for magic := range sentOldMagics {
		old := append([]byte(magic), b[len(sentModelMagic):]...)
		if _, err := UnmarshalModel(old); err == nil || !strings.Contains(err.Error(), "old format "+magic) {
			t.Errorf("%s model: err = %v, want an old-format error", magic, err)
		}
	}
}

// Every emoji in the token table must lie in the blocks sentMaybeEmoji
// admits, or the normaliser would never look it up.
func TestTokenEmojiInRange(t *testing.T) {
	for _, d := range sentTokenDefs {
		for _, r := range d.emoji {
			if !sentMaybeEmoji(r) {
				t.Errorf("token %s: emoji %q (%U) outside sentMaybeEmoji", d.tok.name, r, r)
			}
		}
	}
}

func TestHintLang(t *testing.T) {
	cases := []struct {
		in   string
		want Lang
		ok   bool
	}{
		{"", LangOther, false},
		{" , ", LangOther, false},
		{"zh", LangZH, true},
		{"zh-Hant", LangZH, true},
		{"ZH-cn", LangZH, true},
		{"en-US", LangEN, true},
		{"en,zh-TW", LangMixed, true},
		{"ja", LangOther, true},
		{"ja,en", LangEN, true},
		{"zhx", LangOther, true},
	}
	for _, tc := range cases {
		if got, ok := HintLang(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("HintLang(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestScoreHinted(t *testing.T) {
	c := sentNewTest(t, Options{})
	const ja = "最悪の対応でした、二度と買いません"
	var s item.Score
	c.ScoreInto(&s, ja)
	if !s.Scored {
		t.Fatalf("undeclared Japanese text not scored: %+v", s)
	}
	// Declared Japanese: no model judges it.
	c.ScoreHinted(&s, ja, "ja")
	if s.Scored || s.Label != item.Neutral || s.Prob != 0 || s.Value != 0 || s.Lang != "other" || len(s.Groups) != 0 {
		t.Errorf("ja-declared post: %+v, want unscored neutral with Prob 0", s)
	}
	// A zh or en hint replaces detection.
	c.ScoreHinted(&s, "OK 好", "en")
	if !s.Scored || s.Lang != "en" {
		t.Errorf("en hint on mostly-Han text: %+v, want scored as en", s)
	}
	c.ScoreHinted(&s, "hello there my friend 你", "zh-Hans")
	if !s.Scored || s.Lang != "zh" {
		t.Errorf("zh hint on English-looking text: %+v, want scored as zh", s)
	}
	// No hint is ScoreInto.
	want := c.Score("质量太差了，要求退款")
	c.ScoreHinted(&s, "质量太差了，要求退款", "")
	if s.Label != want.Label || s.Value != want.Value || s.Lang != want.Lang {
		t.Errorf("no hint: %+v, want %+v", s, want)
	}
}
