package sentiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lookout/item"
)

// sentTrainingPathProbs scores text the way training sees it: Extract fills
// the n-gram index list and Model.Probs sums the weights over it.
func sentTrainingPathProbs(c *Classifier, text string) [NumClasses]float64 {
	var fs FeatureScratch
	c.feat.Extract(&fs, text)
	return c.model.Probs(&fs)
}

// sentDataDirOptional is $LOOKOUT_DATA when it has the sentiment files, or
// "" (tests then use only their own texts).
func sentDataDirOptional() string {
	d := os.Getenv("LOOKOUT_DATA")
	if d == "" {
		return ""
	}
	if _, err := os.Stat(filepath.Join(d, "sentiment")); err != nil {
		return ""
	}
	return d
}

// TestScorePathMatchesTrainingPath: ScoreInto takes fast paths (inline UTF-8
// decoding of ideographs, n-gram weights summed while hashing, negators
// marked during lexicon matching). Its scores must equal, bit for bit, those
// of the plain Extract + Probs path that training uses, or the embedded model
// would be scored on features it was not trained on.
func TestScorePathMatchesTrainingPath(t *testing.T) {
	c := sentNewTest(t, Options{Groups: sentBenchGroups})
	texts := []string{
		"", " ", "不是很好", "不错", "好个屁", "物流慢死了[怒]", "质量很爛，客服態度差", "ＡＢＣ全角！！！", "好好好好好好",
		"I don't like it at all :(", "not bad, never again", "http://x.cn/a 好 @某人: 你好", "[doge][笑哭]😂👍🏻",
		"\xe4\xb8", "\xe4\xb8\xe5", "\xe9\xbf\xbf\xe4", "\xed\xa0\x80坏", "ｶﾀｶﾅ와 한국어", "这个主播的客服态度差 but the refund was fast",
		strings.Repeat("很好", 100), "\u4e00\u9fff\u3400\U00020000",
	}
	if dir := sentDataDirOptional(); dir != "" {
		for _, f := range []string{"weibo_senti_2400_dev.csv", "en_airline_tweets_dev.csv", "ChnSentiCorp_htl_all_dev.csv"} {
			exs, err := ReadEvalFile(filepath.Join(dir, "sentiment", f))
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range exs {
				if i%3 == 0 {
					texts = append(texts, e.Text)
				}
			}
		}
	}
	var s item.Score
	for _, text := range texts {
		c.ScoreInto(&s, text)
		p := sentTrainingPathProbs(c, text)
		if s.Value == 0 && s.Prob == 1 && s.Label == item.Neutral {
			continue // no content: not scored by the model
		}
		if want := p[ClassPositive] - p[ClassNegative]; s.Value != want {
			t.Errorf("ScoreInto(%q) = %v, training path gives %v", text, s.Value, want)
		}
	}
}
