package sentiment

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"lookout/config"
	"lookout/item"
	"lookout/sentiment/model"
)

// sentMinedDocs: three files. "满意" is positive and "失望" negative in
// a.csv and b.csv; "发货" is positive in a.csv and negative in b.csv (the
// files disagree); "惊喜" is positive in a.csv only; "很棒" is positive in
// c.csv and a.csv.
func sentMinedDocs() []TrainDoc {
	var docs []TrainDoc
	add := func(src string, class, n int, text string) {
		for i := 0; i < n; i++ {
			docs = append(docs, TrainDoc{Text: text, Class: class, Weight: 1, Source: src})
		}
	}
	add("a.csv", ClassPositive, 20, "满意 发货 惊喜 很棒")
	add("a.csv", ClassNegative, 20, "失望 物流")
	add("b.csv", ClassPositive, 20, "满意 包装")
	add("b.csv", ClassNegative, 20, "失望 发货")
	add("c.csv", ClassPositive, 20, "很棒 味道")
	add("c.csv", ClassNegative, 20, "难吃 味道差")
	add("chat_seed", ClassPositive, 50, "失望") // not a mined file: never evidence
	return docs
}

// sentMinedPolarity is the mined polarity of a Chinese word's bigram (its
// two characters), in log-odds.
func sentMinedPolarity(f *Featurizer, ml *MinedLexicon, word string) float64 {
	var fs FeatureScratch
	fs.runes = f.norm.normalize(fs.runes[:0], word)
	f.tokenize(&fs)
	u := fs.units
	return float64(ml.lookup(sentMum(u[0].h^sentSaltBigram, u[1].h))) / minedScoreUnit
}

func TestMinedLexicon(t *testing.T) {
	f, err := NewFeaturizer(model.Lexicon(), 12)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultMineConfig()
	cfg.Sources = []string{"a.csv", "b.csv", "c.csv"}
	lm := newLexMiner(f, sentMinedDocs(), cfg)
	all := lm.table("")
	for _, tc := range []struct {
		word string
		sign int // +1, -1, or 0: absent
	}{
		{"满意", 1}, {"失望", -1}, {"很棒", 1},
		{"发货", 0}, // the files disagree
		{"惊喜", 0}, // one file only
		{"味道", 0}, // one file only, and neutral there
	} {
		p := sentMinedPolarity(f, all, tc.word)
		switch {
		case tc.sign == 0 && p != 0, tc.sign > 0 && p < cfg.MinScore, tc.sign < 0 && p > -cfg.MinScore:
			t.Errorf("%s: mined polarity %.2f, want sign %d", tc.word, p, tc.sign)
		}
	}
	// Left out, b.csv no longer supports 满意 or 失望 in two files; 很棒
	// (a.csv and c.csv) stays.
	noB := lm.table("b.csv")
	for w, want := range map[string]bool{"满意": false, "失望": false, "很棒": true} {
		if got := sentMinedPolarity(f, noB, w) != 0; got != want {
			t.Errorf("without b.csv: %s present = %v, want %v", w, got, want)
		}
	}
	// Deterministic: the same docs give the same table.
	if again := newLexMiner(f, sentMinedDocs(), cfg).table(""); !reflect.DeepEqual(again, all) {
		t.Error("mining is not deterministic")
	}
}

func TestMinedFeatures(t *testing.T) {
	base, err := NewFeaturizer(model.Lexicon(), 12)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultMineConfig()
	cfg.Sources = []string{"a.csv", "b.csv", "c.csv"}
	f := base.withMined(newLexMiner(base, sentMinedDocs(), cfg).table(""))
	var fs FeatureScratch
	cases := []struct {
		text                string
		pos, neg, negated   bool
		wantMean, wantNoMin bool
	}{
		{text: "很满意", pos: true},
		{text: "有点失望", neg: true},
		{text: "没有满意", negated: true}, // 满 and 意 in the scope of 没有; the bigram 满意 inside it
		{text: "没有。满意", pos: true},    // punctuation ends the scope
		{text: "hello world"},         // nothing mined
		{text: "满意满意，失望", pos: true, neg: true},
	}
	for _, tc := range cases {
		f.Extract(&fs, tc.text)
		d := fs.Dense
		if got := d[DenseMinedPos] > 0; got != tc.pos {
			t.Errorf("%q: DenseMinedPos %v", tc.text, d[DenseMinedPos])
		}
		if got := d[DenseMinedNeg] > 0; got != tc.neg {
			t.Errorf("%q: DenseMinedNeg %v", tc.text, d[DenseMinedNeg])
		}
		if got := d[DenseMinedNegated] > 0; got != tc.negated {
			t.Errorf("%q: DenseMinedNegated %v", tc.text, d[DenseMinedNegated])
		}
		if (d[DenseMinedNet] > 0) != (d[DenseMinedPos] > d[DenseMinedNeg]) || (d[DenseMinedMean] > 0) != (d[DenseMinedNet] > 0) {
			t.Errorf("%q: net %v / mean %v disagree with pos %v neg %v", tc.text, d[DenseMinedNet], d[DenseMinedMean], d[DenseMinedPos], d[DenseMinedNeg])
		}
	}
	// Without a mined lexicon the features stay 0.
	base.Extract(&fs, "很满意")
	for i := numDenseV4; i < NumDense; i++ {
		if fs.Dense[i] != 0 {
			t.Errorf("no mined lexicon: dense %d = %v", i, fs.Dense[i])
		}
	}
}

// A model with a mined lexicon round-trips through LKSENT05 and scores as
// trained, without allocating; a model without one is written as LKSENT04.
func TestMinedModelFormat(t *testing.T) {
	docs := sentMinedDocs()
	for i := range docs {
		if docs[i].Source == "chat_seed" {
			docs[i].Class = ClassNeutral
		}
	}
	cfg := DefaultTrainConfig()
	cfg.HashBits, cfg.Epochs = 12, 2
	mc := DefaultMineConfig()
	mc.Sources = []string{"a.csv", "b.csv", "c.csv"}
	cfg.Mine = &mc
	f, err := NewFeaturizer(model.Lexicon(), cfg.HashBits)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := Train(f, docs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Mined.Len() == 0 {
		t.Fatal("trained model has an empty mined lexicon")
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:8]) != sentModelMagic {
		t.Fatalf("magic %q, want %s", b[:8], sentModelMagic)
	}
	m2, err := UnmarshalModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatal("model with a mined lexicon does not round-trip")
	}
	b2, _ := m2.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Error("re-marshalled model differs")
	}
	// Truncated or damaged mined sections are refused.
	for _, cut := range []int{len(b) - 1, len(b) - 8*m.Mined.Len() - 1} {
		if _, err := UnmarshalModel(b[:cut]); err == nil {
			t.Errorf("model cut to %d of %d bytes accepted", cut, len(b))
		}
	}
	// An LKSENT04 header on a file with mined-lexicon features is refused
	// clearly (its dense count does not match that format).
	v4 := append([]byte(sentModelMagicV4), b[8:]...)
	if _, err := UnmarshalModel(v4); err == nil || !strings.Contains(err.Error(), "dense features") {
		t.Errorf("LKSENT05 body under LKSENT04 magic: err = %v", err)
	}
	// A model without a mined lexicon keeps the old format; mined-feature
	// weights without a lexicon are an error.
	plain := *m
	plain.Mined = nil
	if _, err := plain.MarshalBinary(); err == nil {
		t.Error("mined-feature weights without a mined lexicon marshalled")
	}
	for h := range plain.Dense {
		for i := numDenseV4; i < NumDense; i++ {
			plain.Dense[h][i] = 0
		}
	}
	pb, err := plain.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if string(pb[:8]) != sentModelMagicV4 {
		t.Errorf("model without a mined lexicon written as %q, want %s", pb[:8], sentModelMagicV4)
	}
	if p2, err := UnmarshalModel(pb); err != nil || !reflect.DeepEqual(p2, &plain) {
		t.Errorf("LKSENT04 round trip: err %v", err)
	}

	// The classifier scores with the model's mined lexicon: training and
	// scoring paths agree, and scoring does not allocate.
	c, err := New(Options{Model: m2, Groups: map[string]config.KeywordGroup{"x": {Any: []string{"退款"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.feat.mined == nil {
		t.Fatal("classifier ignores the model's mined lexicon")
	}
	texts := []string{"很满意", "不满意，要退款", "有点失望 not good", "满意满意"}
	var s item.Score
	for _, x := range texts {
		c.ScoreInto(&s, x)
		p := sentTrainingPathProbs(c, x)
		if want := p[ClassPositive] - p[ClassNegative]; s.Value != want {
			t.Errorf("ScoreInto(%q) = %v, training path gives %v", x, s.Value, want)
		}
	}
	if sentRaceEnabled {
		return // allocation counts are meaningless under -race (sync.Pool)
	}
	allocs := testing.AllocsPerRun(200, func() {
		for _, x := range texts {
			c.ScoreInto(&s, x)
		}
	})
	if allocs != 0 {
		t.Errorf("ScoreInto with a mined lexicon allocates %.1f times per run, want 0", allocs)
	}
}

// FuzzUnmarshalModel: damaged model files are refused or read, never a
// panic; a model read with a mined lexicon scores without a panic and
// marshals again to a file that reads back to the same bytes.
func FuzzUnmarshalModel(f *testing.F) {
	cfg := DefaultMineConfig()
	cfg.Sources = []string{"a.csv", "b.csv", "c.csv"}
	base, err := NewFeaturizer(model.Lexicon(), 8)
	if err != nil {
		f.Fatal(err)
	}
	m := Quantize([numHeads][]float32{make([]float32, 256), make([]float32, 256)}, [numHeads][NumDense]float32{}, 8, [numHeads]float32{1, 1}, [numHeads]float32{})
	m.Mined = newLexMiner(base, sentMinedDocs(), cfg).table("")
	seed, err := m.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	m.Mined = nil
	if v4, err := m.MarshalBinary(); err == nil {
		f.Add(v4)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalModel(b)
		if err != nil {
			return
		}
		var fs FeatureScratch
		base.withMined(m.Mined).Extract(&fs, "很满意，没有失望 not bad")
		_ = m.Probs(&fs)
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("read model does not marshal: %v", err)
		}
		// (Compared as bytes: a damaged file may hold NaN weights.)
		m2, err := UnmarshalModel(out)
		if err != nil {
			t.Fatalf("re-marshalled model does not read back: %v", err)
		}
		if out2, err := m2.MarshalBinary(); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("re-marshalled model reads back differently: %v", err)
		}
	})
}
