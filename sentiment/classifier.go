// Package sentiment scores the sentiment of Chinese and English short texts
// (live chat, comments, reviews, posts) and matches keyword groups.
//
// The pipeline per text: normalise (width, case, common traditional
// characters, repeats, emoji and emoticons → tokens, URLs and @mentions
// removed) → detect the language → extract features (hashed character 1–3-grams
// for Chinese, word uni/bigrams with negation scope for English, lexicon
// scores with negation, degree and contrast words, emoticon polarity, the
// polarity of n-grams mined from the training files) → a
// three-class (negative / positive / neutral) logistic regression trained by
// ./sentiment/train and embedded from sentiment/model → calibrated class
// probabilities → the label. Neutral is a class the model learned from
// labelled neutral text (questions, greetings, news-like posts), not what
// is left when the other two are unsure.
// Keyword groups are compiled into one Aho–Corasick automaton. Scoring does
// not allocate in the steady state.
package sentiment

import (
	"strings"
	"sync"

	"lookout/config"
	"lookout/item"
	"lookout/sentiment/model"
)

// DefaultNeutralThreshold is the probability a positive or negative verdict
// needs besides being the most probable class. At 0.5 the winning polarity
// must be more likely than the other two classes together.
const DefaultNeutralThreshold = 0.5

// Options configure a Classifier.
type Options struct {
	// NeutralThreshold: a positive or negative verdict needs the most
	// probable class to be that polarity and its probability to reach this;
	// otherwise the verdict is neutral. 0 means DefaultNeutralThreshold;
	// values from 1/3 (plain argmax) to below 1.
	NeutralThreshold float64
	// Groups are the keyword groups from config (any/all/none, category,
	// severity).
	Groups map[string]config.KeywordGroup
	// Terms makes Score extract hot terms (loads the segmentation dictionary
	// on first use).
	Terms bool
	// Model replaces the embedded model (the training program evaluates
	// models it has just trained); nil uses the embedded one.
	Model *Model
}

// Classifier scores texts. It is safe for concurrent use.
type Classifier struct {
	threshold float64
	terms     bool
	feat      *Featurizer
	model     *Model
	groups    *sentGroups
	pool      sync.Pool

	termsOnce sync.Once
	termsExt  *sentTermExtractor
	termsErr  error
}

type sentScratch struct {
	fs FeatureScratch
	gs sentGroupScratch
}

// New loads the embedded model and lexicon (once per Classifier) and compiles
// the keyword groups.
func New(opts Options) (*Classifier, error) {
	th := opts.NeutralThreshold
	if th == 0 {
		th = DefaultNeutralThreshold
	}
	if th < 1.0/3 || th >= 1 {
		return nil, errorf("neutral threshold %v must be in [0.34, 1)", th)
	}
	m := opts.Model
	if m == nil {
		var err error
		if m, err = UnmarshalModel(model.Weights()); err != nil {
			return nil, err
		}
	}
	f, err := NewFeaturizer(model.Lexicon(), m.HashBits)
	if err != nil {
		return nil, err
	}
	f = f.withMined(m.Mined)
	g, err := compileGroups(f.norm, opts.Groups)
	if err != nil {
		return nil, err
	}
	c := &Classifier{threshold: th, terms: opts.Terms, feat: f, model: m, groups: g}
	c.pool.New = func() any { return new(sentScratch) }
	return c, nil
}

// Threshold is the neutral threshold in effect.
func (c *Classifier) Threshold() float64 { return c.threshold }

// Score scores one text.
func (c *Classifier) Score(text string) item.Score {
	var s item.Score
	c.ScoreInto(&s, text)
	return s
}

// sentMaxPooledRunes: scratch buffers that grew beyond this (a huge text)
// are not kept, so one giant message does not pin memory forever.
const sentMaxPooledRunes = 1 << 14

// ScoreInto scores text into dst, reusing dst.Groups and dst.Terms backing
// arrays. Without term extraction it does not allocate in the steady state.
func (c *Classifier) ScoreInto(dst *item.Score, text string) {
	c.scoreInto(dst, text, LangOther, false)
}

// ScoreHinted is ScoreInto with the languages the platform declared for
// the text (langs: comma-separated language tags such as "zh-Hant,en", as
// Bluesky and Mastodon give them; see HintLang). A zh or en hint decides
// the language model instead of detection; a text declared in any other
// language is not scored at all (Scored false, Label neutral, Prob 0,
// Lang "other"), so a Japanese post never goes to the Chinese model. No
// hint (langs empty) is ScoreInto.
func (c *Classifier) ScoreHinted(dst *item.Score, text, langs string) {
	l, ok := HintLang(langs)
	if ok && l == LangOther {
		*dst = item.Score{Label: item.Neutral, Lang: LangOther.String(), Groups: dst.Groups[:0], Terms: dst.Terms[:0]}
		return
	}
	c.scoreInto(dst, text, l, ok)
}

// HintLang reads declared language tags (comma-separated, any case):
// zh* only → LangZH, en* only → LangEN, both → LangMixed, only others →
// LangOther. ok is false when langs names no language.
func HintLang(langs string) (l Lang, ok bool) {
	var zh, en, other bool
	for tag := range strings.SplitSeq(langs, ",") {
		tag = strings.ToLower(strings.TrimSpace(tag))
		switch {
		case tag == "":
		case tag == "zh" || strings.HasPrefix(tag, "zh-") || strings.HasPrefix(tag, "zh_"):
			zh = true
		case tag == "en" || strings.HasPrefix(tag, "en-") || strings.HasPrefix(tag, "en_"):
			en = true
		default:
			other = true
		}
	}
	switch {
	case zh && en:
		return LangMixed, true
	case zh:
		return LangZH, true
	case en:
		return LangEN, true
	}
	return LangOther, other
}

func (c *Classifier) scoreInto(dst *item.Score, text string, hint Lang, hinted bool) {
	s := c.pool.Get().(*sentScratch)
	fs := &s.fs
	fs.hint, fs.hinted = hint, hinted
	acc := c.feat.extractSum(fs, text, c.model.Weights)
	p := c.model.calibrate(c.model.logitsSum(acc, fs))
	c.verdict(dst, fs, &p)
	dst.Groups = c.groups.match(&s.gs, fs.runes, dst.Groups)
	dst.Terms = dst.Terms[:0]
	if c.terms {
		// The terms come from the same normalised text.
		dst.Terms = c.termsFrom(fs.runes, dst.Terms)
	}
	if cap(fs.runes) <= sentMaxPooledRunes {
		c.pool.Put(s)
	}
}

// verdict sets the label, its probability and the polarity value
// P(positive) − P(negative) from the class probabilities.
func (c *Classifier) verdict(dst *item.Score, fs *FeatureScratch, p *[NumClasses]float64) {
	dst.Scored = true
	dst.Lang = fs.Lang.String()
	dst.Question = fs.Dense[DenseQuestion] != 0
	if fs.Content == 0 {
		// Nothing to judge (empty, only punctuation, numbers or links).
		dst.Label, dst.Value, dst.Prob = item.Neutral, 0, 1
		return
	}
	pp, pn, pu := p[ClassPositive], p[ClassNegative], p[ClassNeutral]
	dst.Value = pp - pn
	switch {
	case pp >= pn && pp >= pu && pp >= c.threshold:
		dst.Label, dst.Prob = item.Positive, pp
	case pn > pp && pn >= pu && pn >= c.threshold:
		dst.Label, dst.Prob = item.Negative, pn
	default:
		dst.Label, dst.Prob = item.Neutral, pu
	}
}
