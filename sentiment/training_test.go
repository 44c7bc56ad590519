package sentiment

import (
	"bytes"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"lookout/sentiment/model"
)

// sentTrainTwice trains twice on the same docs and returns both files.
func sentTrainTwice(t *testing.T, lexicon []byte, docs []TrainDoc) ([]byte, []byte) {
	t.Helper()
	cfg := DefaultTrainConfig()
	cfg.HashBits = 16
	cfg.Epochs = 2
	var out [2][]byte
	for i := range out {
		f, err := NewFeaturizer(lexicon, cfg.HashBits)
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := Train(f, docs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = m.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	}
	return out[0], out[1]
}

// Training on a small deterministic subset of the real files twice yields
// identical bytes, as does the lexicon build.
func TestTrainingReproducible(t *testing.T) {
	dir := sentDataDir(t)
	lex1, err := BuildLexicon(filepath.Join(dir, "lexicons"))
	if err != nil {
		t.Fatal(err)
	}
	lex2, err := BuildLexicon(filepath.Join(dir, "lexicons"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lex1, lex2) {
		t.Fatal("BuildLexicon is not deterministic")
	}
	if !bytes.Equal(lex1, model.Lexicon()) {
		t.Error("embedded lexicon.tsv differs from BuildLexicon on LOOKOUT_DATA: regenerate with go run ./sentiment/train")
	}
	docs, files, err := LoadTrainingFiles(filepath.Join(dir, "sentiment"), LoadOptions{MaxPerFile: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if bytes.Contains([]byte(f), []byte("_dev")) || bytes.Contains([]byte(f), []byte("groundtruth")) {
			t.Errorf("training read %s", f)
		}
	}
	docs = append(docs, LexiconDocs(lex1, 0.3)[:500]...)
	a, b := sentTrainTwice(t, lex1, docs)
	if !bytes.Equal(a, b) {
		t.Fatalf("two training runs differ: %x vs %x", sha256.Sum256(a), sha256.Sum256(b))
	}
	// And the seed matters (the test can fail).
	f, _ := NewFeaturizer(lex1, 16)
	cfg := DefaultTrainConfig()
	cfg.HashBits, cfg.Epochs, cfg.Seed = 16, 2, cfg.Seed+1
	m, _, err := Train(f, docs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := m.MarshalBinary()
	if bytes.Equal(a, c) {
		t.Error("a different seed gave the same bytes")
	}
}

// Without the shared data: synthetic docs, embedded lexicon.
func TestTrainingReproducibleSynthetic(t *testing.T) {
	var docs []TrainDoc
	pos := []string{"很好", "非常满意", "great service", "推荐购买", "物超所值"}
	neg := []string{"太差了", "不满意", "terrible delay", "要退款", "质量很烂"}
	neu := []string{"什么时候发货", "几点开播", "when does it ship", "有没有大码", "链接在哪"}
	for i := 0; i < 40; i++ {
		docs = append(docs, TrainDoc{Text: pos[i%len(pos)], Class: ClassPositive, Weight: 1},
			TrainDoc{Text: neg[i%len(neg)], Class: ClassNegative, Weight: 1},
			TrainDoc{Text: neu[i%len(neu)], Class: ClassNeutral, Weight: 1})
	}
	a, b := sentTrainTwice(t, model.Lexicon(), docs)
	if !bytes.Equal(a, b) {
		t.Fatal("two training runs differ")
	}
	m, err := UnmarshalModel(a)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := NewFeaturizer(model.Lexicon(), m.HashBits)
	var fs FeatureScratch
	for _, tc := range []struct {
		text  string
		class int
	}{{"物超所值", ClassPositive}, {"质量很烂", ClassNegative}, {"什么时候发货", ClassNeutral}} {
		f.Extract(&fs, tc.text)
		p := m.Probs(&fs)
		if sentArgmax(&p) != tc.class {
			t.Errorf("trained model scores training text %q as %v, want class %s", tc.text, p, ClassName(tc.class))
		}
	}
}

// Sparse dropout draws from its own seeded generator: two runs agree, and
// the dropout changes the model (the test can fail).
func TestTrainingSparseDropoutReproducible(t *testing.T) {
	var docs []TrainDoc
	texts := []struct {
		s string
		c int
	}{{"很好", ClassPositive}, {"太差了", ClassNegative}, {"什么时候发货", ClassNeutral}, {"great service", ClassPositive}, {"terrible delay", ClassNegative}}
	for i := 0; i < 60; i++ {
		tx := texts[i%len(texts)]
		docs = append(docs, TrainDoc{Text: tx.s, Class: tx.c, Weight: 1})
	}
	train := func(dropout float64) []byte {
		cfg := DefaultTrainConfig()
		cfg.HashBits, cfg.Epochs, cfg.SparseDropout = 12, 2, dropout
		f, err := NewFeaturizer(model.Lexicon(), cfg.HashBits)
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := Train(f, docs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := train(0.5), train(0.5)
	if !bytes.Equal(a, b) {
		t.Fatal("two training runs with sparse dropout differ")
	}
	if bytes.Equal(a, train(0)) {
		t.Error("sparse dropout 0.5 gave the same model as none")
	}
}

// Epoch averaging, several averaged models and the neutral-polarity modes
// are reproducible and each changes the model (the test can fail); an
// unknown mode is an error.
func TestTrainingAveragingReproducible(t *testing.T) {
	var docs []TrainDoc
	texts := []struct {
		s string
		c int
	}{{"很好", ClassPositive}, {"太差了", ClassNegative}, {"什么时候发货", ClassNeutral}, {"great service", ClassPositive}, {"terrible delay", ClassNegative}}
	for i := 0; i < 60; i++ {
		tx := texts[i%len(texts)]
		docs = append(docs, TrainDoc{Text: tx.s, Class: tx.c, Weight: 1})
	}
	train := func(set func(*TrainConfig)) []byte {
		cfg := DefaultTrainConfig()
		cfg.HashBits, cfg.Epochs = 12, 3
		set(&cfg)
		f, err := NewFeaturizer(model.Lexicon(), cfg.HashBits)
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := Train(f, docs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain := train(func(*TrainConfig) {})
	for _, tc := range []struct {
		name string
		set  func(*TrainConfig)
	}{
		{"average from epoch 2", func(c *TrainConfig) { c.AverageFrom = 2 }},
		{"three models", func(c *TrainConfig) { c.Models = 3 }},
		{"both", func(c *TrainConfig) { c.AverageFrom, c.Models = 2, 2 }},
		{"neutral polarity none", func(c *TrainConfig) { c.NeutralPolarity = "none" }},
		{"neutral polarity balanced", func(c *TrainConfig) { c.NeutralPolarity = "balanced" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := train(tc.set), train(tc.set)
			if !bytes.Equal(a, b) {
				t.Fatal("two training runs differ")
			}
			if bytes.Equal(a, plain) {
				t.Error("gave the same model as plain training")
			}
		})
	}
	f, _ := NewFeaturizer(model.Lexicon(), 12)
	cfg := DefaultTrainConfig()
	cfg.HashBits, cfg.NeutralPolarity = 12, "ignore"
	if _, _, err := Train(f, docs, cfg); err == nil {
		t.Error("an unknown neutral-polarity mode was accepted")
	}
	// Averaging from the last epoch is the last epoch's weights.
	if !bytes.Equal(train(func(c *TrainConfig) { c.AverageFrom = 3 }), plain) {
		t.Error("averaging only the last epoch changed the model")
	}
}
