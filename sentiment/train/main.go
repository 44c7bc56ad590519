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
// a domain it never saw; it scores each fold under a grid of neutral-logit
// shifts and reports the shift chosen by nested held-out-domain
// cross-validation. The defaults of -bits, -sparse-dropout and
// -neutral-ngram-rate were chosen with -heldout (mean accuracy over all
// folds), never on a dev file of a dataset in the model; -mined (on by
// default: a polarity lexicon mined from the training files, each fold's
// from that fold's training files only) by nested selection on held-out
// polarity (-nested … -criterion polarity).
//
// -heldout -heldout-json FILE also writes the folds' results; -nested
// a.json,b.json,… then compares candidate configurations without letting
// a fold choose for itself: each fold is reported under the candidate with
// the best mean accuracy over the other folds.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"math"
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
	neuKeep   int
	mine      *sentiment.MineConfig // nil: no mined lexicon
	only      map[string]bool       // -folds: held-out folds to run (nil: all)
	foldsOut  string                // -heldout-json
	args      string                // the command line, recorded in -heldout-json
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
	dropout := flag.Float64("sparse-dropout", def.SparseDropout, "share of example visits trained without the n-gram features")
	shift := flag.Float64("neutral-shift", def.NeutralShift, "added to the trained model's neutral logit (choose it with -heldout)")
	avgFrom := flag.Int("average-from", def.AverageFrom, "average the weights at the end of epochs N…-epochs (0: last epoch's weights)")
	models := flag.Int("models", def.Models, "train this many models on different shuffles and average their weights (0 or 1: one)")
	neuPol := flag.String("neutral-polarity", def.NeutralPolarity, "what a neutral example teaches the polarity head: softmax (the three-class loss), none, or balanced (towards even)")
	neuKeep := flag.Int("neutral-keep", 0, "rows kept of a single-class (all neutral) training file (0: the default, 8000)")
	foldsOut := flag.String("heldout-json", "", "with -heldout: also write the folds' results (configured shift) to this JSON file")
	nested := flag.String("nested", "", "comma-separated -heldout-json files of candidate configurations: for each fold, pick the configuration with the best mean accuracy over the other folds, and report that fold under it")
	only := flag.String("folds", "", "with -heldout: comma-separated dataset names to hold out (a quick look; -heldout-json and the nested view need all folds)")
	mined := flag.Bool("mined", true, "mine a polarity lexicon from the training files (each fold's from its own training files) and train its dense features (-mined=false: the LKSENT04 model without one)")
	defMine := sentiment.DefaultMineConfig()
	mineCount := flag.Int("mine-min-count", defMine.MinCount, "with -mined: texts of one file that must contain an n-gram for the file to count as evidence")
	mineFiles := flag.Int("mine-min-files", defMine.MinFiles, "with -mined: files that must agree on an n-gram's polarity")
	mineScore := flag.Float64("mine-min-score", defMine.MinScore, "with -mined: smallest |log-odds| kept")
	criterion := flag.String("criterion", "accuracy", "with -nested: choose by the mean accuracy over all folds (accuracy) or the mean polarity over the two-class folds (polarity)")
	flag.Parse()
	if *nested != "" {
		if err := nestedSelect(strings.Split(*nested, ","), *criterion); err != nil {
			fmt.Fprintln(os.Stderr, "train:", err)
			os.Exit(1)
		}
		return
	}
	if *data == "" {
		fmt.Fprintln(os.Stderr, "train: -data (or LOOKOUT_DATA) is required")
		os.Exit(2)
	}
	r := &trainRun{data: *data, lexW: *lexW, chat: *chat, chatW: *chatW, threshold: *threshold,
		neuKeep: *neuKeep, foldsOut: *foldsOut, args: strings.Join(os.Args[1:], " "),
		cfg: sentiment.TrainConfig{HashBits: *bits, Epochs: *epochs, LR: *lr, L2: *l2, Seed: *seed, CalibrationEvery: def.CalibrationEvery, NeutralNgramRate: *neuRate,
			SparseDropout: *dropout, NeutralShift: *shift, AverageFrom: *avgFrom, Models: *models, NeutralPolarity: *neuPol},
		log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if *only != "" {
		r.only = map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			r.only[strings.TrimSpace(n)] = true
		}
	}
	if *mined {
		r.mine = &sentiment.MineConfig{MinCount: *mineCount, MinFiles: *mineFiles, MinScore: *mineScore, Smooth: defMine.Smooth}
	}
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
	docs, files, err := sentiment.LoadTrainingFiles(filepath.Join(r.data, "sentiment"), sentiment.LoadOptions{Exclude: exclude, NeutralOnlyKeep: r.neuKeep})
	if err != nil {
		return nil, err
	}
	cfg := r.cfg
	if r.mine != nil {
		mc := *r.mine
		mc.Sources = append([]string(nil), files...)
		cfg.Mine = &mc
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
	r.log.Info("training", "files", files, "docs", len(docs), "config", fmt.Sprintf("%+v", r.cfg), "mine", fmt.Sprintf("%+v", r.mine))
	m, rep, err := sentiment.Train(r.feat, docs, cfg)
	if err != nil {
		return nil, err
	}
	if m.Mined != nil {
		r.log.Info("mined lexicon", "ngrams", m.Mined.Len())
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
// and evaluates on its dev file. The folds are trained without a neutral
// shift and scored under every shift of a grid, which yields three views:
// the folds under the configured shift; the folds each under the shift
// that maximises the mean accuracy of the other folds (nested, so no
// fold's figure comes from a shift chosen on it); and the shift that
// maximises the mean accuracy of all folds, the one to train with.
func (r *trainRun) heldOut() error {
	files, err := filepath.Glob(filepath.Join(r.data, "sentiment", "*_dev.csv"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	shifts := shiftGrid(r.cfg.NeutralShift)
	configured := r.cfg.NeutralShift
	r.cfg.NeutralShift = 0
	var folds [][]sentiment.EvalResult // [fold][shift]
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), "_dev.csv")
		if r.only != nil && !r.only[name] {
			continue
		}
		m, err := r.train(name)
		if err != nil {
			return err
		}
		c, err := sentiment.New(sentiment.Options{Model: m, NeutralThreshold: r.threshold})
		if err != nil {
			return err
		}
		exs, err := sentiment.ReadEvalFile(f)
		if err != nil {
			return err
		}
		res := sentiment.EvaluateNeutralShifts(c, filepath.Base(f)+" (held out)", exs, shifts)
		folds = append(folds, res)
		printResults([]sentiment.EvalResult{res[shiftIndex(shifts, configured)]})
	}
	at := func(pick func(fold int) int) []sentiment.EvalResult {
		out := make([]sentiment.EvalResult, len(folds))
		for i := range folds {
			out[i] = folds[i][pick(i)]
		}
		return out
	}
	ci := shiftIndex(shifts, configured)
	if r.only != nil {
		fmt.Println("\nselected folds only (-folds):")
		printTwoClassMean(at(func(int) int { return ci }))
		return nil
	}
	if r.foldsOut != "" {
		if err := writeFolds(r.foldsOut, r.args, at(func(int) int { return ci })); err != nil {
			return err
		}
	}
	fmt.Printf("\nall held-out folds, neutral shift %+.2f (configured):\n", configured)
	printResults(at(func(int) int { return ci }))
	printTwoClassMean(at(func(int) int { return ci }))
	fmt.Println("\nnested: each fold under the shift that maximises the mean accuracy of the other folds:")
	nested := at(func(i int) int { return bestShift(shifts, folds, i) })
	printResults(nested)
	for i := range folds {
		fmt.Printf("  %s: shift %+.2f\n", folds[i][0].File, shifts[bestShift(shifts, folds, i)])
	}
	printTwoClassMean(nested)
	fmt.Printf("\nshift maximising the mean held-out accuracy of all folds: %+.2f\n", shifts[bestShift(shifts, folds, -1)])
	return nil
}

// shiftGrid is -3 … +1 in steps of 0.1, plus the configured shift.
func shiftGrid(configured float64) []float64 {
	var g []float64
	for k := -30; k <= 10; k++ {
		g = append(g, float64(k)/10)
	}
	if shiftIndex(g, configured) < 0 {
		g = append(g, configured)
	}
	return g
}

func shiftIndex(g []float64, d float64) int {
	for i, v := range g {
		if math.Abs(v-d) < 1e-9 {
			return i
		}
	}
	return -1
}

// bestShift is the grid index maximising the mean accuracy over every fold
// but skip (-1: all folds); ties go to the shift nearest 0.
func bestShift(shifts []float64, folds [][]sentiment.EvalResult, skip int) int {
	order := make([]int, len(shifts))
	for k := range order {
		order[k] = k
	}
	sort.SliceStable(order, func(a, b int) bool { return math.Abs(shifts[order[a]]) < math.Abs(shifts[order[b]]) })
	best, bestAcc := -1, -1.0
	for _, k := range order {
		sum, n := 0.0, 0
		for i := range folds {
			if i != skip {
				sum += folds[i][k].Accuracy
				n++
			}
		}
		acc := sum / float64(n)
		if acc > bestAcc+1e-12 {
			best, bestAcc = k, acc
		}
	}
	return best
}

// printTwoClassMean prints the mean accuracy over all folds (what the
// shift is chosen by) and the mean accuracy and polarity over the
// two-class (positive/negative) folds.
func printTwoClassMean(res []sentiment.EvalResult) {
	var all float64
	for _, e := range res {
		all += e.Accuracy
	}
	fmt.Printf("mean accuracy over all %d folds: %.2f %%\n", len(res), 100*all/float64(len(res)))
	var acc, pol float64
	n := 0
	for _, e := range res {
		if e.Classes == 2 {
			acc += e.Accuracy
			pol += e.Polarity
			n++
		}
	}
	if n > 0 {
		fmt.Printf("mean over the %d two-class folds: accuracy %.2f %%, polarity %.2f %%\n", n, 100*acc/float64(n), 100*pol/float64(n))
	}
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
