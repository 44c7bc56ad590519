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
	Pos    bool
	Weight float64 // example weight (class and source balancing)
	Source string
}

// TrainConfig holds the training hyperparameters. They are fixed defaults
// (see DefaultTrainConfig), not tuned on any dev file.
type TrainConfig struct {
	HashBits uint
	Epochs   int
	LR       float64 // AdaGrad step size
	L2       float64 // L2 penalty per update
	Seed     uint64
	// CalibrationEvery: every n-th example (after the seeded shuffle) is held
	// out of the first pass to fit Platt scaling, then the model is retrained
	// on everything with the same settings. 0 disables calibration.
	CalibrationEvery int
}

// DefaultTrainConfig is what the embedded model was trained with.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{HashBits: 19, Epochs: 6, LR: 0.2, L2: 1e-7, Seed: 20261125, CalibrationEvery: 10}
}

type sentTrainEx struct {
	idx    []uint32
	scale  float64
	dense  [NumDense]float64
	y      float64
	weight float64
}

// TrainReport says how the held-out calibration slice scored.
type TrainReport struct {
	Examples       int
	CalibExamples  int
	CalibAccuracy  float64 // accuracy on the calibration slice before it was trained on
	PlattA, PlattB float64
}

// Train fits the model on docs. The result depends only on docs, their
// order and cfg: training is single-threaded, iterates slices only, uses a
// seeded PCG shuffle and float64 arithmetic without fused multiply-adds.
func Train(f *Featurizer, docs []TrainDoc, cfg TrainConfig) (*Model, TrainReport, error) {
	if f.bits != cfg.HashBits {
		return nil, TrainReport{}, errorf("featurizer has %d hash bits, config %d", f.bits, cfg.HashBits)
	}
	exs := make([]sentTrainEx, len(docs))
	var fs FeatureScratch
	for i, d := range docs {
		f.Extract(&fs, d.Text)
		ex := sentTrainEx{idx: append([]uint32(nil), fs.Idx...), scale: float64(fs.SparseScale), weight: d.Weight}
		for j, v := range fs.Dense {
			ex.dense[j] = float64(v)
		}
		if d.Pos {
			ex.y = 1
		}
		exs[i] = ex
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	order := make([]int, len(exs))
	for i := range order {
		order[i] = i
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })

	rep := TrainReport{Examples: len(exs), PlattA: 1, PlattB: 0}
	if cfg.CalibrationEvery > 1 {
		var fit, cal []int
		for k, i := range order {
			if k%cfg.CalibrationEvery == cfg.CalibrationEvery-1 {
				cal = append(cal, i)
			} else {
				fit = append(fit, i)
			}
		}
		w, dense := sentSGD(exs, fit, cfg)
		zs := make([]float64, len(cal))
		ys := make([]float64, len(cal))
		correct := 0
		for k, i := range cal {
			zs[k] = sentLogit(&exs[i], w, dense)
			ys[k] = exs[i].y
			if (zs[k] >= 0) == (exs[i].y == 1) {
				correct++
			}
		}
		rep.CalibExamples = len(cal)
		if len(cal) > 0 {
			rep.CalibAccuracy = float64(correct) / float64(len(cal))
			rep.PlattA, rep.PlattB = sentFitPlatt(zs, ys)
		}
	}
	w, dense := sentSGD(exs, order, cfg)
	var d32 [NumDense]float32
	for i, v := range dense {
		d32[i] = float32(v)
	}
	w32 := make([]float32, len(w))
	for i, v := range w {
		w32[i] = float32(v)
	}
	return Quantize(w32, d32, cfg.HashBits, float32(rep.PlattA), float32(rep.PlattB)), rep, nil
}

func sentLogit(ex *sentTrainEx, w []float64, dense *[NumDense]float64) float64 {
	s := 0.0
	for _, i := range ex.idx {
		s += w[i]
	}
	z := float64(s * ex.scale)
	for j, v := range ex.dense {
		z += float64(dense[j] * v)
	}
	return z
}

// sentSGD is weighted logistic regression by AdaGrad over the examples in
// order, for cfg.Epochs passes (the same order each pass).
func sentSGD(exs []sentTrainEx, order []int, cfg TrainConfig) ([]float64, *[NumDense]float64) {
	n := 1 << cfg.HashBits
	w := make([]float64, n)
	g2 := make([]float64, n)
	var dense, dg2 [NumDense]float64
	// Start the lexicon features where a lexicon scorer would put them, so
	// the model begins from a sensible scorer.
	dense[DenseZhPos], dense[DenseZhNeg] = 1, -1
	dense[DenseEnPos], dense[DenseEnNeg] = 1, -1
	dense[DenseTokPos], dense[DenseTokNeg] = 1, -1
	const eps = 1e-8
	for ep := 0; ep < cfg.Epochs; ep++ {
		for _, i := range order {
			ex := &exs[i]
			z := sentLogit(ex, w, &dense)
			g := float64((sentSigmoid(z) - ex.y) * ex.weight)
			if g == 0 {
				continue
			}
			gs := float64(g * ex.scale)
			for _, k := range ex.idx {
				gr := float64(gs + float64(cfg.L2*w[k]))
				g2[k] += float64(gr * gr)
				w[k] -= float64(cfg.LR * gr / math.Sqrt(g2[k]+eps))
			}
			for j, v := range ex.dense {
				if v == 0 {
					continue
				}
				gr := float64(g * v)
				dg2[j] += float64(gr * gr)
				dense[j] -= float64(cfg.LR * gr / math.Sqrt(dg2[j]+eps))
			}
		}
	}
	return w, &dense
}

// sentFitPlatt fits P(y=1|z) = sigmoid(a·z + b) by Newton's method with
// Platt's smoothed targets.
func sentFitPlatt(z, y []float64) (a, b float64) {
	var np, nn float64
	for _, v := range y {
		if v == 1 {
			np++
		} else {
			nn++
		}
	}
	hi, lo := (np+1)/(np+2), 1/(nn+2)
	t := make([]float64, len(y))
	for i, v := range y {
		if v == 1 {
			t[i] = hi
		} else {
			t[i] = lo
		}
	}
	a, b = 1, 0
	for it := 0; it < 100; it++ {
		var gA, gB, hAA, hAB, hBB float64
		for i := range z {
			p := sentSigmoid(float64(a*z[i]) + b)
			d := p - t[i]
			gA += float64(d * z[i])
			gB += d
			q := float64(p * (1 - p))
			hAA += float64(q * z[i] * z[i])
			hAB += float64(q * z[i])
			hBB += q
		}
		hAA += 1e-9
		hBB += 1e-9
		det := float64(hAA*hBB) - float64(hAB*hAB)
		if det == 0 {
			break
		}
		da := (float64(hBB*gA) - float64(hAB*gB)) / det
		db := (float64(hAA*gB) - float64(hAB*gA)) / det
		a -= da
		b -= db
		if math.Abs(da) < 1e-10 && math.Abs(db) < 1e-10 {
			break
		}
	}
	return a, b
}

// LoadTrainingFiles reads every *_train.csv in dir (sorted by name) and
// balances classes within each file: a file's examples weigh
// mult·N/(2·N_class), so each file's two classes count equally and a
// skewed file (airline tweets are 80 % negative) teaches no prior. mult
// gives small social-media files more weight than the large review file.
// maxPerFile > 0 keeps only the first rows of each file (for tests).
func LoadTrainingFiles(dir string, maxPerFile int) ([]TrainDoc, []string, error) {
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
		rows, err := readLabelledCSV(p)
		if err != nil {
			return nil, nil, err
		}
		if maxPerFile > 0 {
			rows = sentHeadBalanced(rows, maxPerFile)
		}
		npos := 0
		for _, r := range rows {
			if r.pos {
				npos++
			}
		}
		nneg := len(rows) - npos
		mult := 1.0
		switch {
		case strings.HasPrefix(name, "weibo"):
			mult = 3
		case strings.HasPrefix(name, "online_shopping"):
			mult = 0.6
		}
		for _, r := range rows {
			nc := nneg
			if r.pos {
				nc = npos
			}
			docs = append(docs, TrainDoc{Text: r.text, Pos: r.pos, Source: name,
				Weight: mult * float64(len(rows)) / (2 * float64(nc))})
		}
		used = append(used, name)
	}
	return docs, used, nil
}

// sentHeadBalanced keeps up to n/2 rows of each label, in file order.
func sentHeadBalanced(rows []sentLabelled, n int) []sentLabelled {
	var out []sentLabelled
	p, q := 0, 0
	for _, r := range rows {
		if r.pos && p < n/2 {
			out = append(out, r)
			p++
		} else if !r.pos && q < n/2 {
			out = append(out, r)
			q++
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
		docs = append(docs, TrainDoc{Text: f[2], Pos: v > 0, Weight: w, Source: "lexicon"})
	}
	return docs
}

type sentLabelled struct {
	text string
	pos  bool
}

// readLabelledCSV reads a CSV whose header has label and review columns
// (1 positive, 0 negative). Rows with another label are skipped.
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
	for line := 2; ; line++ {
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
		switch strings.TrimSpace(rec[li]) {
		case "1":
			out = append(out, sentLabelled{rec[ri], true})
		case "0":
			out = append(out, sentLabelled{rec[ri], false})
		}
	}
	return out, nil
}
