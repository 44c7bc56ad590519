package sentiment

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// TrainDoc is one labelled training text.
type TrainDoc struct {
	Text   string
	Class  int     // ClassNegative, ClassPositive or ClassNeutral
	Weight float64 // example weight (class and source balancing)
	Source string
}

// TrainConfig holds the training hyperparameters. The defaults (see
// DefaultTrainConfig) were chosen by held-out-domain cross-validation
// (go run ./sentiment/train -heldout: each dataset scored by a model
// trained without it), never on the dev file of a dataset in the model.
type TrainConfig struct {
	HashBits uint
	Epochs   int
	LR       float64 // AdaGrad step size
	L2       float64 // L2 penalty per update
	Seed     uint64
	// CalibrationEvery: every n-th example (after the seeded shuffle) is held
	// out of the first pass to fit the calibration, then the model is
	// retrained on everything with the same settings. 0 disables calibration.
	CalibrationEvery int
	// NeutralNgramRate scales the step size of the neutral head's n-gram
	// weights (1 when 0): below 1 the neutral head leans more on the dense
	// features (lexicon evidence, question form) that carry over to text
	// of a kind it never saw, and less on what the neutral texts of the
	// training sets happen to talk about.
	NeutralNgramRate float64
	// SparseDropout is the share of example visits (drawn per visit from a
	// PCG seeded with Seed) on which the n-gram features are left out, so
	// that the dense features (lexicon evidence, negation, question form)
	// learn to carry a verdict alone, as they must on text whose n-grams
	// the training sets never had. 0 disables it.
	SparseDropout float64
	// NeutralShift is added to the calibrated neutral logit of the trained
	// model (see Model.ShiftNeutral): a prior against (below 0) or for the
	// neutral class, chosen by held-out-domain cross-validation.
	NeutralShift float64
	// AverageFrom > 0 makes the trained weights the mean of the weights
	// at the end of epochs AverageFrom…Epochs (counted from 1) instead of
	// the last epoch's: an average of points along the last passes, which
	// sits in a flatter part of the loss than any one of them. 0 keeps the
	// last epoch's weights.
	AverageFrom int
	// Models > 1 trains that many models, each on its own shuffle of the
	// examples and its own dropout draws (seeds Seed, Seed+1, …), and
	// averages their weights; for a linear model that is the mean of their
	// logits, an ensemble that costs nothing at scoring time. 0 or 1: one.
	Models int
	// NeutralPolarity says what a neutral example teaches the positive
	// head (the polarity logit, positive against negative): "" (softmax)
	// pushes it down with the rest of the three-class loss, so whatever
	// neutral texts talk about leans negative when a verdict is forced;
	// "none" leaves the positive head alone on neutral examples; "balanced"
	// pulls the polarity of a neutral text towards even (σ(z)→½).
	NeutralPolarity string
	// Mine, when set, mines a polarity lexicon from the training files it
	// names (see MineConfig) and trains the mined-lexicon dense features.
	// A training text of a mined file gets those features from the lexicon
	// mined without its own file, so the model learns how far mined
	// evidence carries to a file it did not come from; every other text,
	// and the model at scoring time, uses the lexicon mined from all of
	// them. nil: no mined lexicon.
	Mine *MineConfig
}

// DefaultTrainConfig is what the embedded model was trained with.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{HashBits: 21, Epochs: 6, LR: 0.2, L2: 1e-7, Seed: 20261125, CalibrationEvery: 10,
		NeutralNgramRate: 0.3, SparseDropout: 0.3}
}

type sentTrainEx struct {
	idx    []uint32
	scale  float64
	dense  [NumDense]float64
	class  int
	weight float64
}

// TrainReport says how the held-out calibration slice scored.
type TrainReport struct {
	Examples      int
	CalibExamples int
	CalibAccuracy float64 // three-class accuracy on the calibration slice before it was trained on
	CalA, CalB    [numHeads]float64
}

// sentHeadWeights are the float weights of both heads during training.
type sentHeadWeights struct {
	w     [numHeads][]float64
	dense [numHeads][NumDense]float64
}

// add adds o's weights to hw's.
func (hw *sentHeadWeights) add(o *sentHeadWeights) {
	for h := 0; h < numHeads; h++ {
		for k, v := range o.w[h] {
			hw.w[h][k] += v
		}
		for j, v := range o.dense[h] {
			hw.dense[h][j] += v
		}
	}
}

// scale multiplies hw's weights by f (each product rounded: no fused
// multiply-add).
func (hw *sentHeadWeights) scale(f float64) {
	for h := 0; h < numHeads; h++ {
		for k, v := range hw.w[h] {
			hw.w[h][k] = float64(v * f)
		}
		for j, v := range hw.dense[h] {
			hw.dense[h][j] = float64(v * f)
		}
	}
}

// Train fits the model on docs. The result depends only on docs, their
// order and cfg: training is single-threaded, iterates slices only, uses a
// seeded PCG shuffle and float64 arithmetic without fused multiply-adds.
func Train(f *Featurizer, docs []TrainDoc, cfg TrainConfig) (*Model, TrainReport, error) {
	switch cfg.NeutralPolarity {
	case "", "softmax", "none", "balanced":
	default:
		return nil, TrainReport{}, errorf("neutral polarity %q: want softmax, none or balanced", cfg.NeutralPolarity)
	}
	if f.bits != cfg.HashBits {
		return nil, TrainReport{}, errorf("featurizer has %d hash bits, config %d", f.bits, cfg.HashBits)
	}
	exs := make([]sentTrainEx, len(docs))
	var fs FeatureScratch
	featOf := func(string) *Featurizer { return f }
	var mined *MinedLexicon
	if cfg.Mine != nil {
		miner := newLexMiner(f, docs, *cfg.Mine)
		mined = miner.table("")
		full := f.withMined(mined)
		byFile := map[string]*Featurizer{}
		for _, name := range miner.files {
			byFile[name] = f.withMined(miner.table(name))
		}
		featOf = func(src string) *Featurizer {
			if fx, ok := byFile[src]; ok {
				return fx
			}
			return full
		}
	}
	for i, d := range docs {
		if d.Class < 0 || d.Class >= NumClasses {
			return nil, TrainReport{}, errorf("doc %d (%s): class %d out of range", i, d.Source, d.Class)
		}
		featOf(d.Source).Extract(&fs, d.Text)
		ex := sentTrainEx{idx: append([]uint32(nil), fs.Idx...), scale: float64(fs.SparseScale), weight: d.Weight, class: d.Class}
		for j, v := range fs.Dense {
			ex.dense[j] = float64(v)
		}
		exs[i] = ex
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	order := make([]int, len(exs))
	for i := range order {
		order[i] = i
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })

	rep := TrainReport{Examples: len(exs), CalA: [numHeads]float64{1, 1}}
	if cfg.CalibrationEvery > 1 {
		var fit, cal []int
		for k, i := range order {
			if k%cfg.CalibrationEvery == cfg.CalibrationEvery-1 {
				cal = append(cal, i)
			} else {
				fit = append(fit, i)
			}
		}
		hw := sentSGDModels(exs, fit, cfg)
		zs := make([][numHeads]float64, len(cal))
		cls := make([]int, len(cal))
		ws := make([]float64, len(cal))
		correct := 0
		for k, i := range cal {
			zs[k] = sentTrainLogits(&exs[i], hw)
			cls[k], ws[k] = exs[i].class, exs[i].weight
			p := sentSoftmax(zs[k][headPos], zs[k][headNeu])
			if sentArgmax(&p) == exs[i].class {
				correct++
			}
		}
		rep.CalibExamples = len(cal)
		if len(cal) > 0 {
			rep.CalibAccuracy = float64(correct) / float64(len(cal))
			rep.CalA, rep.CalB = sentFitCalibration(zs, cls, ws)
		}
	}
	hw := sentSGDModels(exs, order, cfg)
	var w32 [numHeads][]float32
	var d32 [numHeads][NumDense]float32
	var a32, b32 [numHeads]float32
	for h := 0; h < numHeads; h++ {
		w32[h] = make([]float32, len(hw.w[h]))
		for i, v := range hw.w[h] {
			w32[h][i] = float32(v)
		}
		for i, v := range hw.dense[h] {
			d32[h][i] = float32(v)
		}
		a32[h], b32[h] = float32(rep.CalA[h]), float32(rep.CalB[h])
	}
	m := Quantize(w32, d32, cfg.HashBits, a32, b32)
	m.Mined = mined
	m.ShiftNeutral(cfg.NeutralShift)
	return m, rep, nil
}

func sentArgmax(p *[NumClasses]float64) int {
	best := 0
	for k := 1; k < NumClasses; k++ {
		if p[k] > p[best] {
			best = k
		}
	}
	return best
}

func sentTrainLogits(ex *sentTrainEx, hw *sentHeadWeights) [numHeads]float64 {
	return sentTrainLogitsOf(ex, hw, true)
}

// sentTrainLogitsOf is sentTrainLogits, without the n-gram features when
// sparse is false.
func sentTrainLogitsOf(ex *sentTrainEx, hw *sentHeadWeights, sparse bool) [numHeads]float64 {
	var z [numHeads]float64
	for h := 0; h < numHeads; h++ {
		v := 0.0
		if sparse {
			s := 0.0
			w := hw.w[h]
			for _, i := range ex.idx {
				s += w[i]
			}
			v = float64(s * ex.scale)
		}
		for j, x := range ex.dense {
			v += float64(hw.dense[h][j] * x)
		}
		z[h] = v
	}
	return z
}

// sentSGDModels is sentSGD, or with cfg.Models > 1 the mean of the
// weights of cfg.Models runs: the first over order, each further one over
// order shuffled by a PCG seeded with Seed+m, with dropout drawn from
// Seed+m.
func sentSGDModels(exs []sentTrainEx, order []int, cfg TrainConfig) *sentHeadWeights {
	if cfg.Models <= 1 {
		return sentSGD(exs, order, cfg)
	}
	sum := sentSGD(exs, order, cfg)
	for m := 1; m < cfg.Models; m++ {
		c := cfg
		c.Seed = cfg.Seed + uint64(m)
		o := append([]int(nil), order...)
		rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
		rng.Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
		sum.add(sentSGD(exs, o, c))
	}
	sum.scale(1 / float64(cfg.Models))
	return sum
}

// sentSGD is weighted multinomial logistic regression (negative the
// reference class) by AdaGrad over the examples in order, for cfg.Epochs
// passes (the same order each pass).
func sentSGD(exs []sentTrainEx, order []int, cfg TrainConfig) *sentHeadWeights {
	n := 1 << cfg.HashBits
	hw := &sentHeadWeights{}
	var g2 [numHeads][]float64
	var dg2 [numHeads][NumDense]float64
	for h := 0; h < numHeads; h++ {
		hw.w[h] = make([]float64, n)
		g2[h] = make([]float64, n)
	}
	// Start the polarity head where a lexicon scorer would put it, and the
	// neutral head favouring texts without any lexicon evidence, so the
	// model begins from a sensible scorer.
	d := &hw.dense[headPos]
	d[DenseZhPos], d[DenseZhNeg] = 1, -1
	d[DenseEnPos], d[DenseEnNeg] = 1, -1
	d[DenseTokPos], d[DenseTokNeg] = 1, -1
	hw.dense[headNeu][DenseNoLex] = 1
	const eps = 1e-8
	drop := rand.New(rand.NewPCG(cfg.Seed^0x5deece66d, cfg.Seed))
	var avg *sentHeadWeights
	nAvg := 0
	if cfg.AverageFrom > 0 && cfg.AverageFrom <= cfg.Epochs {
		avg = &sentHeadWeights{}
		for h := 0; h < numHeads; h++ {
			avg.w[h] = make([]float64, n)
		}
	}
	for ep := 0; ep < cfg.Epochs; ep++ {
		for _, i := range order {
			ex := &exs[i]
			sparse := cfg.SparseDropout <= 0 || drop.Float64() >= cfg.SparseDropout
			z := sentTrainLogitsOf(ex, hw, sparse)
			p := sentSoftmax(z[headPos], z[headNeu])
			var g [numHeads]float64
			g[headPos] = p[ClassPositive] * ex.weight
			g[headNeu] = p[ClassNeutral] * ex.weight
			switch ex.class {
			case ClassPositive:
				g[headPos] -= ex.weight
			case ClassNeutral:
				g[headNeu] -= ex.weight
				switch cfg.NeutralPolarity {
				case "none":
					g[headPos] = 0
				case "balanced":
					g[headPos] = float64((1/(1+math.Exp(-z[headPos])) - 0.5) * ex.weight)
				}
			}
			for h := 0; h < numHeads; h++ {
				if g[h] == 0 {
					continue
				}
				w, gg := hw.w[h], g2[h]
				gs := float64(g[h] * ex.scale)
				lr := cfg.LR
				if h == headNeu && cfg.NeutralNgramRate > 0 {
					lr = float64(lr * cfg.NeutralNgramRate)
				}
				idx := ex.idx
				if !sparse {
					idx = nil
				}
				for _, k := range idx {
					gr := float64(gs + float64(cfg.L2*w[k]))
					gg[k] += float64(gr * gr)
					w[k] -= float64(lr * gr / math.Sqrt(gg[k]+eps))
				}
				for j, v := range ex.dense {
					if v == 0 {
						continue
					}
					gr := float64(g[h] * v)
					dg2[h][j] += float64(gr * gr)
					hw.dense[h][j] -= float64(cfg.LR * gr / math.Sqrt(dg2[h][j]+eps))
				}
			}
		}
		if avg != nil && ep+1 >= cfg.AverageFrom {
			avg.add(hw)
			nAvg++
		}
	}
	if avg == nil {
		return hw
	}
	avg.scale(1 / float64(nAvg))
	return avg
}

// sentFitCalibration fits vector scaling — logit_h' = a_h·logit_h + b_h
// for the positive and neutral heads — by Newton's method on the weighted
// multinomial log loss of the calibration slice, with a small ridge that
// pulls a towards 1 and b towards 0.
func sentFitCalibration(z [][numHeads]float64, cls []int, wt []float64) (a, b [numHeads]float64) {
	// θ = (a_pos, b_pos, a_neu, b_neu)
	theta := [4]float64{1, 0, 1, 0}
	const ridge = 1e-3
	var tw float64
	for _, w := range wt {
		tw += w
	}
	if tw == 0 {
		return [numHeads]float64{1, 1}, [numHeads]float64{}
	}
	for it := 0; it < 50; it++ {
		var g [4]float64
		var H [4][4]float64
		for i := range z {
			w := wt[i] / tw
			zp := float64(theta[0]*z[i][headPos]) + theta[1]
			zn := float64(theta[2]*z[i][headNeu]) + theta[3]
			p := sentSoftmax(zp, zn)
			pp, pu := p[ClassPositive], p[ClassNeutral]
			yp, yu := 0.0, 0.0
			switch cls[i] {
			case ClassPositive:
				yp = 1
			case ClassNeutral:
				yu = 1
			}
			// d loss / d logit, and the Jacobian of the logits in θ.
			dp, du := pp-yp, pu-yu
			jp := [4]float64{z[i][headPos], 1, 0, 0}
			ju := [4]float64{0, 0, z[i][headNeu], 1}
			hpp, huu, hpu := float64(pp*(1-pp)), float64(pu*(1-pu)), -float64(pp*pu)
			for r := 0; r < 4; r++ {
				g[r] += float64(w * (float64(dp*jp[r]) + float64(du*ju[r])))
				for c := 0; c < 4; c++ {
					h := float64(hpp*jp[r]*jp[c]) + float64(huu*ju[r]*ju[c]) + float64(hpu*(float64(jp[r]*ju[c])+float64(ju[r]*jp[c])))
					H[r][c] += float64(w * h)
				}
			}
		}
		prior := [4]float64{1, 0, 1, 0}
		for r := 0; r < 4; r++ {
			g[r] += float64(ridge * (theta[r] - prior[r]))
			H[r][r] += ridge
		}
		step, ok := sentSolve4(H, g)
		if !ok {
			break
		}
		done := true
		for r := range theta {
			theta[r] -= step[r]
			if math.Abs(step[r]) > 1e-10 {
				done = false
			}
		}
		if done {
			break
		}
	}
	return [numHeads]float64{theta[0], theta[2]}, [numHeads]float64{theta[1], theta[3]}
}

// sentSolve4 solves H·x = g by Gaussian elimination with partial pivoting.
func sentSolve4(H [4][4]float64, g [4]float64) ([4]float64, bool) {
	var x [4]float64
	for c := 0; c < 4; c++ {
		p := c
		for r := c + 1; r < 4; r++ {
			if math.Abs(H[r][c]) > math.Abs(H[p][c]) {
				p = r
			}
		}
		if math.Abs(H[p][c]) < 1e-15 {
			return x, false
		}
		H[c], H[p] = H[p], H[c]
		g[c], g[p] = g[p], g[c]
		for r := c + 1; r < 4; r++ {
			f := H[r][c] / H[c][c]
			for k := c; k < 4; k++ {
				H[r][k] -= float64(f * H[c][k])
			}
			g[r] -= float64(f * g[c])
		}
	}
	for r := 3; r >= 0; r-- {
		s := g[r]
		for k := r + 1; k < 4; k++ {
			s -= float64(H[r][k] * x[k])
		}
		x[r] = s / H[r][r]
	}
	return x, true
}

// LoadOptions tune LoadTrainingFiles.
type LoadOptions struct {
	// MaxPerFile > 0 keeps only the first rows of each file, balanced
	// across its classes (for tests).
	MaxPerFile int
	// Exclude leaves out the dataset of this name (a file name without
	// _train.csv), to measure how the model does on a domain it never saw.
	Exclude string
	// NeutralOnlyKeep is how many rows a single-class file contributes at
	// most (0: sentNeutralOnlyKeep).
	NeutralOnlyKeep int
}

// sentNeutralOnlyKeep is how many rows a single-class file contributes at
// most: a large file of one class (77k customer-service questions, all
// neutral) would otherwise swamp the rest. Rows are taken evenly spread.
const sentNeutralOnlyKeep = 8000

// LoadTrainingFiles reads every *_train.csv in dir (sorted by name) and
// balances classes within each file: a file's examples weigh
// mult·N/(K·N_class) for its K classes, so each file's classes count
// equally and a skewed file (airline tweets are 80 % negative, Weibo
// emotion 62 % neutral) teaches no prior. Two-class files (reviews) teach
// positive against negative only; three-class files (Weibo, tweets) teach
// neutral as well; a one-class file (customer-service questions, all
// neutral) is thinned to sentNeutralOnlyKeep rows. mult gives small
// social-media files more weight than the large review file.
func LoadTrainingFiles(dir string, opts LoadOptions) ([]TrainDoc, []string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*_train.csv"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		return nil, nil, errorf("no *_train.csv in %s", dir)
	}
	var docs []TrainDoc
	var used []string
	for _, p := range paths {
		name := filepath.Base(p)
		if strings.Contains(name, "_dev") || strings.Contains(name, "groundtruth") {
			continue
		}
		if opts.Exclude != "" && strings.TrimSuffix(name, "_train.csv") == opts.Exclude {
			continue
		}
		rows, err := readLabelledCSV(p)
		if err != nil {
			return nil, nil, err
		}
		if opts.MaxPerFile > 0 {
			rows = sentHeadBalanced(rows, opts.MaxPerFile)
		}
		var count [NumClasses]int
		for _, r := range rows {
			count[r.class]++
		}
		k := 0
		for _, c := range count {
			if c > 0 {
				k++
			}
		}
		keep := opts.NeutralOnlyKeep
		if keep <= 0 {
			keep = sentNeutralOnlyKeep
		}
		if k == 1 && len(rows) > keep {
			rows = sentSpread(rows, keep)
			count = [NumClasses]int{}
			for _, r := range rows {
				count[r.class]++
			}
		}
		mult := 1.0
		switch {
		case strings.HasPrefix(name, "weibo"):
			mult = 3
		case strings.HasPrefix(name, "online_shopping"):
			mult = 0.6
		}
		for _, r := range rows {
			docs = append(docs, TrainDoc{Text: r.text, Class: r.class, Source: name,
				Weight: mult * float64(len(rows)) / (float64(k) * float64(count[r.class]))})
		}
		used = append(used, name)
	}
	return docs, used, nil
}

// sentSpread keeps n rows spread evenly over rows, in order.
func sentSpread(rows []sentLabelled, n int) []sentLabelled {
	out := make([]sentLabelled, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, rows[i*len(rows)/n])
	}
	return out
}

// sentHeadBalanced keeps up to n/K rows of each of the file's K labels, in
// file order.
func sentHeadBalanced(rows []sentLabelled, n int) []sentLabelled {
	var present [NumClasses]bool
	k := 0
	for _, r := range rows {
		if !present[r.class] {
			present[r.class] = true
			k++
		}
	}
	var out []sentLabelled
	var taken [NumClasses]int
	for _, r := range rows {
		if taken[r.class] < n/k {
			out = append(out, r)
			taken[r.class]++
		}
	}
	return out
}

// LexiconDocs turns strong lexicon words into one-word training examples
// (weight w each) so that n-gram weights for lexicon words start right even
// where the review corpora never use them.
func LexiconDocs(lexicon []byte, w float64) []TrainDoc {
	var docs []TrainDoc
	for _, l := range strings.Split(string(lexicon), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 4 || f[1] != "sent" {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(f[3], &v); err != nil || math.Abs(v) < 0.75 {
			continue
		}
		c := ClassNegative
		if v > 0 {
			c = ClassPositive
		}
		docs = append(docs, TrainDoc{Text: f[2], Class: c, Weight: w, Source: "lexicon"})
	}
	return docs
}

type sentLabelled struct {
	text  string
	class int
}

// sentParseLabel reads a label: 1/positive, 0/negative, neutral.
func sentParseLabel(s string) (int, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "positive", "pos":
		return ClassPositive, true
	case "0", "negative", "neg":
		return ClassNegative, true
	case "neutral", "neu":
		return ClassNeutral, true
	}
	return 0, false
}

// ClassName is the label word of a class.
func ClassName(c int) string {
	switch c {
	case ClassPositive:
		return "positive"
	case ClassNeutral:
		return "neutral"
	}
	return "negative"
}

// readLabelledCSV reads a CSV whose header has label and review columns
// (labels 1/0 or positive/neutral/negative). Rows with another label are
// skipped.
func readLabelledCSV(path string) ([]sentLabelled, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	hdr, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	li, ri := -1, -1
	for i, h := range hdr {
		switch strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF")) {
		case "label":
			li = i
		case "review":
			ri = i
		}
	}
	if li < 0 || ri < 0 {
		return nil, fmt.Errorf("%s: header needs label and review columns, got %q", path, hdr)
	}
	var out []sentLabelled
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(rec) <= li || len(rec) <= ri {
			continue
		}
		if c, ok := sentParseLabel(rec[li]); ok {
			out = append(out, sentLabelled{rec[ri], c})
		}
	}
	return out, nil
}

// ChatLine is one line of a hand-labelled chat file.
type ChatLine struct {
	Class int
	Kind  string // question, greeting, grumble, complaint, …
	Text  string
}

// ReadChatTSV reads a hand-labelled chat file: a header line, then
// label<TAB>kind<TAB>text per line. Errors name the line.
func ReadChatTSV(path string) ([]ChatLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []ChatLine
	for n, l := range strings.Split(strings.TrimPrefix(string(b), "\uFEFF"), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if n == 0 || strings.TrimSpace(l) == "" {
			continue
		}
		f := strings.SplitN(l, "\t", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want label<TAB>kind<TAB>text", path, n+1)
		}
		c, ok := sentParseLabel(f[0])
		if !ok {
			return nil, fmt.Errorf("%s:%d: label %q is not positive, neutral or negative", path, n+1, f[0])
		}
		out = append(out, ChatLine{Class: c, Kind: f[1], Text: f[2]})
	}
	return out, nil
}
