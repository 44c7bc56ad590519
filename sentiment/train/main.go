// Command train builds the sentiment model embedded in sentiment/model:
//
//	go run ./sentiment/train -data $LOOKOUT_DATA -out sentiment/model
//
// It reads only sentiment/*_train.csv and lexicons/* under -data (never a
// _dev file, never en_tweets_groundtruth.tsv) and the hand-written chat
// seed sentiment/train/chat_seed.tsv, writes lexicon.tsv, stopwords.txt and
// model.bin into -out, and prints their sha256. The output is the same
// bytes on every run for the same data, flags and Go version.
//
// -eval also scores the new model on every dev file and the chat probe
// (sentiment/testdata/chat_probe.tsv). -heldout writes nothing: for each
// dataset with a dev file it trains without that dataset's training file
// and evaluates on its dev file, so the table shows how the model does on
// a domain it never saw.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"lookout/sentiment"
)

// probePath is the hand-labelled live-chat probe (never trained on).
const probePath = "sentiment/testdata/chat_probe.tsv"

type trainRun struct {
	data      string
	cfg       sentiment.TrainConfig
	lexW      float64
	chat      string
	chatW     float64
	threshold float64
	lex, stop []byte
	feat      *sentiment.Featurizer
	log       *slog.Logger
}

func main() {
	def := sentiment.DefaultTrainConfig()
	data := flag.String("data", os.Getenv("LOOKOUT_DATA"), "shared data directory (with sentiment/ and lexicons/)")
	out := flag.String("out", "sentiment/model", "output directory")
	bits := flag.Uint("bits", def.HashBits, "n-gram hash space bits")
	epochs := flag.Int("epochs", def.Epochs, "training passes (0: lexicon-only model)")
	lr := flag.Float64("lr", def.LR, "AdaGrad step size")
	l2 := flag.Float64("l2", def.L2, "L2 penalty")
	seed := flag.Uint64("seed", def.Seed, "shuffle seed")
	neuRate := flag.Float64("neutral-ngram-rate", def.NeutralNgramRate, "step size of the neutral head's n-gram weights, relative to -lr")
	lexW := flag.Float64("lexicon-weight", 0.3, "weight of each one-word lexicon example")
	chat := flag.String("chat", "sentiment/train/chat_seed.tsv", "hand-written chat seed (label<TAB>kind<TAB>text); empty: none")
	chatW := flag.Float64("chat-weight", 0, "weight of each chat seed line (0: the seed as a whole weighs as much as the median training file)")
	eval := flag.Bool("eval", false, "after training, score the new model on every dev file and the chat probe")
	threshold := flag.Float64("neutral-threshold", 0, "with -eval/-heldout: the classifier's neutral threshold (0: its default)")
	heldout := flag.Bool("heldout", false, "write nothing; train once per dev dataset without it and evaluate on it")
	flag.Parse()
	if *data == "" {
		fmt.Fprintln(os.Stderr, "train: -data (or LOOKOUT_DATA) is required")
		os.Exit(2)
	}
	r := &trainRun{data: *data, lexW: *lexW, chat: *chat, chatW: *chatW, threshold: *threshold,
		cfg: sentiment.TrainConfig{HashBits: *bits, Epochs: *epochs, LR: *lr, L2: *l2, Seed: *seed, CalibrationEvery: def.CalibrationEvery, NeutralNgramRate: *neuRate},
		log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	err := r.prepare()
	if err == nil && *heldout {
		err = r.heldOut()
	} else if err == nil {
		err = r.build(*out, *eval)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

func (r *trainRun) prepare() error {
	var err error
	if r.lex, err = sentiment.BuildLexicon(filepath.Join(r.data, "lexicons")); err != nil {
		return err
	}
	if r.stop, err = sentiment.BuildStopwords(filepath.Join(r.data, "lexicons"), r.lex); err != nil {
		return err
	}
	r.feat, err = sentiment.NewFeaturizer(r.lex, r.cfg.HashBits)
	return err
}

// train trains on every training file except the dataset named exclude.
func (r *trainRun) train(exclude string) (*sentiment.Model, error) {
	start := time.Now()
	docs, files, err := sentiment.LoadTrainingFiles(filepath.Join(r.data, "sentiment"), sentiment.LoadOptions{Exclude: exclude})
	if err != nil {
		return nil, err
	}
	if r.chat != "" {
		lines, err := sentiment.ReadChatTSV(r.chat)
		if err != nil {
			return nil, err
		}
		w := r.chatW
		if w == 0 && len(lines) > 0 {
			w = medianFileWeight(docs) / float64(len(lines))
		}
		for _, l := range lines {
			docs = append(docs, sentiment.TrainDoc{Text: l.Text, Class: l.Class, Weight: w, Source: "chat_seed"})
		}
		r.log.Info("chat seed", "lines", len(lines), "weight_each", w)
		files = append(files, filepath.Base(r.chat))
	}
	docs = append(docs, sentiment.LexiconDocs(r.lex, r.lexW)...)
	r.log.Info("training", "files", files, "docs", len(docs), "config", fmt.Sprintf("%+v", r.cfg))
	m, rep, err := sentiment.Train(r.feat, docs, r.cfg)
	if err != nil {
		return nil, err
	}
	r.log.Info("trained", "calib_examples", rep.CalibExamples, "calib_accuracy", rep.CalibAccuracy,
		"cal_a", rep.CalA, "cal_b", rep.CalB, "took", time.Since(start).Round(time.Millisecond))
	return m, nil
}

// medianFileWeight is the median of the training files' total example
// weights: the hand-written chat seed counts as one more domain, as heavy
// as a typical file, rather than by a weight tuned on the probe.
func medianFileWeight(docs []sentiment.TrainDoc) float64 {
	tot := map[string]float64{}
	for _, d := range docs {
		tot[d.Source] += d.Weight
	}
	var ws []float64
	for _, w := range tot {
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		return 0
	}
	sort.Float64s(ws)
	if n := len(ws); n%2 == 0 {
		return (ws[n/2-1] + ws[n/2]) / 2
	}
	return ws[len(ws)/2]
}

func (r *trainRun) build(out string, eval bool) error {
	m, err := r.train("")
	if err != nil {
		return err
	}
	bin, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"lexicon.tsv", r.lex}, {"stopwords.txt", r.stop}, {"model.bin", bin}} {
		p := filepath.Join(out, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		sum := sha256.Sum256(f.data)
		fmt.Printf("%s  %s  (%d bytes)\n", hex.EncodeToString(sum[:]), p, len(f.data))
	}
	if !eval {
		return nil
	}
	c, err := sentiment.New(sentiment.Options{Model: m, NeutralThreshold: r.threshold})
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(r.data, "sentiment", "*_dev.csv"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	files = append(files, filepath.Join(r.data, "sentiment", "en_tweets_groundtruth.tsv"))
	if _, err := os.Stat(probePath); err == nil {
		files = append(files, probePath)
	}
	var res []sentiment.EvalResult
	for _, f := range files {
		e, err := sentiment.EvalFile(c, f)
		if err != nil {
			return err
		}
		e.File = filepath.Base(f)
		res = append(res, e)
	}
	printResults(res)
	return nil
}

// heldOut trains once per dataset with a dev file, without that dataset,
// and evaluates on its dev file.
func (r *trainRun) heldOut() error {
	files, err := filepath.Glob(filepath.Join(r.data, "sentiment", "*_dev.csv"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var res []sentiment.EvalResult
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), "_dev.csv")
		m, err := r.train(name)
		if err != nil {
			return err
		}
		c, err := sentiment.New(sentiment.Options{Model: m, NeutralThreshold: r.threshold})
		if err != nil {
			return err
		}
		e, err := sentiment.EvalFile(c, f)
		if err != nil {
			return err
		}
		e.File = filepath.Base(f) + " (held out)"
		res = append(res, e)
		printResults(res[len(res)-1:])
	}
	fmt.Println("\nall held-out folds:")
	printResults(res)
	return nil
}

func printResults(res []sentiment.EvalResult) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "file\tn\tclasses\taccuracy\tmacro F1\tmacro recall\tpolarity\tneutral answers\tneutral→negative\t")
	for _, e := range res {
		nn := e.Confusion[sentiment.ClassNeutral]
		tot := nn[0] + nn[1] + nn[2]
		neuNeg := "-"
		if tot > 0 {
			neuNeg = fmt.Sprintf("%.1f %%", 100*float64(nn[sentiment.ClassNegative])/float64(tot))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f %%\t%.3f\t%.3f\t%.2f %%\t%.1f %%\t%s\t\n", e.File, e.N, e.Classes,
			100*e.Accuracy, e.MacroF1, e.MacroRecall, 100*e.Polarity, 100*e.NeutralRate, neuNeg)
	}
	tw.Flush()
}
