package sentiment

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"lookout/config"
	"lookout/item"
)

// sentBenchGroups is a typical config: the crisis and service groups.
var sentBenchGroups = map[string]config.KeywordGroup{
	"crisis":  {Category: "crisis", Severity: "red", Any: []string{"投诉", "退款", "曝光", "假货", "维权", "refund", "scam"}, None: []string{"已解决"}},
	"service": {Category: "service", Severity: "yellow", Any: []string{"物流慢", "客服态度差", "客服不理人", "发货慢", "customer service"}},
	"quality": {Category: "quality", Severity: "yellow", All: []string{"质量", "差"}},
}

var sentBenchChatFallback = []string{
	"主播好可爱", "哈哈哈哈哈哈", "来了来了", "退款！！客服不理人", "这也太卡了吧", "[doge][doge]", "666666",
	"假货吧这是", "好听👍", "what is this lol", "主播唱歌跑调了", "不是很好用", "前排", "买了买了", "物流慢死了[怒]",
}

// sentBenchLines returns dev-file texts whose length fits: short lines of at
// most maxRunes (chat-like), or texts cut to exactly cut runes (reviews).
func sentBenchLines(b *testing.B, maxRunes, cut int) []string {
	dir := os.Getenv("LOOKOUT_DATA")
	var out []string
	if dir != "" {
		for _, f := range []string{"weibo_senti_2400_dev.csv", "en_airline_tweets_dev.csv", "ChnSentiCorp_htl_all_dev.csv", "online_shopping_10_cats_dev.csv"} {
			exs, err := ReadEvalFile(filepath.Join(dir, "sentiment", f))
			if err != nil {
				continue
			}
			for _, e := range exs {
				n := utf8.RuneCountInString(e.Text)
				switch {
				case maxRunes > 0 && n > 0 && n <= maxRunes:
					out = append(out, e.Text)
				case cut > 0 && n >= cut:
					out = append(out, string([]rune(e.Text)[:cut]))
				}
			}
		}
	}
	if len(out) == 0 {
		if cut > 0 {
			b.Skip("LOOKOUT_DATA not set: no review texts for the 150-character benchmark")
		}
		out = sentBenchChatFallback
	}
	return out
}

func sentBenchScore(b *testing.B, lines []string) {
	c, err := New(Options{Groups: sentBenchGroups})
	if err != nil {
		b.Fatal(err)
	}
	var s item.Score
	for _, l := range lines {
		c.ScoreInto(&s, l)
	}
	b.ReportAllocs()
	cpu0 := sentCPUTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.ScoreInto(&s, lines[i%len(lines)])
	}
	b.StopTimer()
	sentReportRate(b, cpu0)
}

// sentCPUTime is the process's user+system CPU time. On a shared, loaded
// machine msgs per CPU-second is steadier than wall-clock msgs/s; both are
// reported.
func sentCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sentReportRate(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if cpu := sentCPUTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "msgs/cpu-s")
	}
}

// BenchmarkScoreChat: full pipeline (normalise, language, features, model,
// keyword groups; no terms) on dev texts of at most 30 characters.
func BenchmarkScoreChat(b *testing.B) { sentBenchScore(b, sentBenchLines(b, 30, 0)) }

// BenchmarkScoreReview150: the same on dev reviews cut to 150 characters.
func BenchmarkScoreReview150(b *testing.B) { sentBenchScore(b, sentBenchLines(b, 0, 150)) }

// BenchmarkExtractTerms: hot-term extraction alone (the dictionary-driven
// segmenter) on chat lines; the dictionary is loaded before the timer starts.
func BenchmarkExtractTerms(b *testing.B) {
	lines := sentBenchLines(b, 30, 0)
	c, err := New(Options{Terms: true})
	if err != nil {
		b.Fatal(err)
	}
	dst := c.ExtractTerms("预热", nil)
	b.ReportAllocs()
	cpu0 := sentCPUTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst = c.ExtractTerms(lines[i%len(lines)], dst[:0])
	}
	b.StopTimer()
	sentReportRate(b, cpu0)
}

// BenchmarkExtractTermsGse: the same lines through gse's segmenter with the
// same dictionary and selection rules, the extractor used before.
func BenchmarkExtractTermsGse(b *testing.B) {
	lines := sentBenchLines(b, 30, 0)
	c, err := New(Options{Terms: true})
	if err != nil {
		b.Fatal(err)
	}
	ref, err := newGseTermRef()
	if err != nil {
		b.Fatal(err)
	}
	dst := ref.terms(c, "预热", nil)
	b.ReportAllocs()
	cpu0 := sentCPUTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst = ref.terms(c, lines[i%len(lines)], dst[:0])
	}
	b.StopTimer()
	sentReportRate(b, cpu0)
}

// BenchmarkScoreChatTerms: BenchmarkScoreChat with hot terms on.
func BenchmarkScoreChatTerms(b *testing.B) {
	lines := sentBenchLines(b, 30, 0)
	c, err := New(Options{Groups: sentBenchGroups, Terms: true})
	if err != nil {
		b.Fatal(err)
	}
	var s item.Score
	for _, l := range lines {
		c.ScoreInto(&s, l)
	}
	b.ReportAllocs()
	cpu0 := sentCPUTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.ScoreInto(&s, lines[i%len(lines)])
	}
	b.StopTimer()
	sentReportRate(b, cpu0)
}

// BenchmarkLoadTermsDict: building the term extractor (decompressing the
// segmentation dictionary and building its automaton), which Terms pays once per Classifier.
func BenchmarkLoadTermsDict(b *testing.B) {
	b.ReportAllocs()
	cpu0 := sentCPUTime()
	for i := 0; i < b.N; i++ {
		if _, err := newTermExtractor(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if cpu := sentCPUTime() - cpu0; cpu > 0 {
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	}
}
