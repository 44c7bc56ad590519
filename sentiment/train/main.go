// Command train builds the sentiment model embedded in sentiment/model:
//
//	go run ./sentiment/train -data $LOOKOUT_DATA -out sentiment/model
//
// It reads only sentiment/*_train.csv and lexicons/* under -data (never a
// _dev file, never en_tweets_groundtruth.tsv), writes lexicon.tsv,
// stopwords.txt and model.bin into -out, and prints their sha256. The output
// is the same bytes on every run for the same data, flags and Go version.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"lookout/sentiment"
)

func main() {
	def := sentiment.DefaultTrainConfig()
	data := flag.String("data", os.Getenv("LOOKOUT_DATA"), "shared data directory (with sentiment/ and lexicons/)")
	out := flag.String("out", "sentiment/model", "output directory")
	bits := flag.Uint("bits", def.HashBits, "n-gram hash space bits")
	epochs := flag.Int("epochs", def.Epochs, "training passes (0: lexicon-only model)")
	lr := flag.Float64("lr", def.LR, "AdaGrad step size")
	l2 := flag.Float64("l2", def.L2, "L2 penalty")
	seed := flag.Uint64("seed", def.Seed, "shuffle seed")
	lexW := flag.Float64("lexicon-weight", 0.3, "weight of each one-word lexicon example")
	flag.Parse()
	if *data == "" {
		fmt.Fprintln(os.Stderr, "train: -data (or LOOKOUT_DATA) is required")
		os.Exit(2)
	}
	cfg := sentiment.TrainConfig{HashBits: *bits, Epochs: *epochs, LR: *lr, L2: *l2, Seed: *seed, CalibrationEvery: def.CalibrationEvery}
	if err := run(*data, *out, cfg, *lexW); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

func run(data, out string, cfg sentiment.TrainConfig, lexW float64) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	start := time.Now()
	lex, err := sentiment.BuildLexicon(filepath.Join(data, "lexicons"))
	if err != nil {
		return err
	}
	stop, err := sentiment.BuildStopwords(filepath.Join(data, "lexicons"), lex)
	if err != nil {
		return err
	}
	feat, err := sentiment.NewFeaturizer(lex, cfg.HashBits)
	if err != nil {
		return err
	}
	docs, files, err := sentiment.LoadTrainingFiles(filepath.Join(data, "sentiment"), 0)
	if err != nil {
		return err
	}
	docs = append(docs, sentiment.LexiconDocs(lex, lexW)...)
	log.Info("training", "files", files, "docs", len(docs), "config", fmt.Sprintf("%+v", cfg))
	m, rep, err := sentiment.Train(feat, docs, cfg)
	if err != nil {
		return err
	}
	log.Info("trained", "calib_examples", rep.CalibExamples, "calib_accuracy", rep.CalibAccuracy,
		"platt_a", rep.PlattA, "platt_b", rep.PlattB, "took", time.Since(start).Round(time.Millisecond))
	bin, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"lexicon.tsv", lex}, {"stopwords.txt", stop}, {"model.bin", bin}} {
		p := filepath.Join(out, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		sum := sha256.Sum256(f.data)
		fmt.Printf("%s  %s  (%d bytes)\n", hex.EncodeToString(sum[:]), p, len(f.data))
	}
	return nil
}
