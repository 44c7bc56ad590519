package sentiment

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"lookout/item"
)

// EvalResult is the evaluation of one labelled file.
type EvalResult struct {
	File string `json:"file"`
	N    int    `json:"n"`
	// Classes is how many classes the file's labels use: 2 (positive,
	// negative) or 3 (with neutral).
	Classes int `json:"classes"`
	// Accuracy is the share of exact labels (on a two-class file a neutral
	// answer is wrong).
	Accuracy float64 `json:"accuracy"`
	// MacroF1 is the mean F1 over the classes the file uses (a neutral
	// answer on a two-class file is a miss for the true class).
	MacroF1 float64 `json:"macro_f1"`
	// MacroRecall is the mean recall over the classes the file uses
	// (SemEval's and TweetEval's sentiment measure).
	MacroRecall float64 `json:"macro_recall"`
	// Polarity is the accuracy on the file's positive and negative texts
	// when the answer is forced to the likelier polarity (the sign of the
	// score), as two-class benchmarks count it.
	Polarity float64 `json:"polarity_accuracy"`
	// NeutralRate is the share of neutral answers.
	NeutralRate float64 `json:"neutral_rate"`
	// Confusion[truth][answer] counts texts by class (Class*).
	Confusion [NumClasses][NumClasses]int `json:"confusion"`
}

// EvalExample is one labelled text of an evaluation file.
type EvalExample struct {
	Text  string
	Class int
}

// ReadEvalFile reads a labelled file: a CSV whose header has label and
// review columns (others ignored; labels 1/0 or positive/neutral/negative),
// a chat TSV label<TAB>kind<TAB>text with a header (see ReadChatTSV), or
// the English TSV id<TAB>mean_score<TAB>text (positive when mean > 0,
// negative when < 0, 0 dropped).
func ReadEvalFile(path string) ([]EvalExample, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(fh)
	head, _ := br.Peek(64)
	fh.Close()
	if strings.HasPrefix(strings.TrimPrefix(string(head), "\uFEFF"), "label\tkind\ttext") {
		lines, err := ReadChatTSV(path)
		if err != nil {
			return nil, err
		}
		out := make([]EvalExample, len(lines))
		for i, l := range lines {
			out[i] = EvalExample{Text: l.Text, Class: l.Class}
		}
		return out, nil
	}
	if sentLooksTSV(string(head)) {
		return readMeanScoreTSV(path)
	}
	rows, err := readLabelledCSV(path)
	if err != nil {
		return nil, err
	}
	out := make([]EvalExample, len(rows))
	for i, r := range rows {
		out[i] = EvalExample{Text: r.text, Class: r.class}
	}
	return out, nil
}

func sentLooksTSV(head string) bool {
	first, _, _ := strings.Cut(head, "\n")
	first = strings.TrimPrefix(first, "\uFEFF")
	return strings.Count(first, "\t") >= 2 && !strings.Contains(first, ",label") && !strings.HasPrefix(first, "label,")
}

func readMeanScoreTSV(path string) ([]EvalExample, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var out []EvalExample
	for n := 1; sc.Scan(); n++ {
		f := strings.SplitN(strings.TrimSuffix(sc.Text(), "\r"), "\t", 3)
		if len(f) != 3 {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			return nil, fmt.Errorf("%s:%d: want id<TAB>mean_score<TAB>text", path, n)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f[1]), 64)
		if err != nil {
			if n == 1 {
				continue // header
			}
			return nil, fmt.Errorf("%s:%d: mean_score: %w", path, n, err)
		}
		if v == 0 {
			continue
		}
		c := ClassNegative
		if v > 0 {
			c = ClassPositive
		}
		out = append(out, EvalExample{Text: f[2], Class: c})
	}
	return out, sc.Err()
}

// EvalFile scores every example of a labelled file (see ReadEvalFile) with
// c.
func EvalFile(c *Classifier, path string) (EvalResult, error) {
	exs, err := ReadEvalFile(path)
	if err != nil {
		return EvalResult{File: path}, err
	}
	return Evaluate(c, path, exs), nil
}

// sentClassOf maps a label to its class index.
func sentClassOf(l item.Label) int {
	switch l {
	case item.Positive:
		return ClassPositive
	case item.Negative:
		return ClassNegative
	}
	return ClassNeutral
}

// Evaluate scores labelled examples (see EvalResult).
func Evaluate(c *Classifier, name string, exs []EvalExample) EvalResult {
	var t sentTally
	var s item.Score
	for _, e := range exs {
		c.ScoreInto(&s, e.Text)
		t.add(e.Class, sentClassOf(s.Label), s.Value)
	}
	return t.result(name)
}

// EvaluateNeutralShifts scores labelled examples once and reports, for
// each shift d, what a model whose neutral logit were moved by d (see
// Model.ShiftNeutral) would score. Polarity does not depend on d.
func EvaluateNeutralShifts(c *Classifier, name string, exs []EvalExample, shifts []float64) []EvalResult {
	ts := make([]sentTally, len(shifts))
	s := c.pool.Get().(*sentScratch)
	defer c.pool.Put(s)
	fs := &s.fs
	var sc item.Score
	for _, e := range exs {
		acc := c.feat.extractSum(fs, e.Text, c.model.Weights)
		z := c.model.logitsSum(acc, fs)
		for i, d := range shifts {
			p := c.model.calibrateShifted(z, d)
			c.verdict(&sc, fs, &p)
			ts[i].add(e.Class, sentClassOf(sc.Label), sc.Value)
		}
	}
	out := make([]EvalResult, len(shifts))
	for i := range ts {
		out[i] = ts[i].result(name)
	}
	return out
}

// sentTally accumulates an EvalResult.
type sentTally struct {
	conf        [NumClasses][NumClasses]int
	n           int
	polN, polOK int
}

func (t *sentTally) add(truth, answer int, value float64) {
	t.n++
	t.conf[truth][answer]++
	if truth != ClassNeutral {
		t.polN++
		if (truth == ClassPositive && value > 0) || (truth == ClassNegative && value < 0) {
			t.polOK++
		}
	}
}

func (t *sentTally) result(name string) EvalResult {
	r := EvalResult{File: name, N: t.n, Confusion: t.conf}
	if t.n == 0 {
		return r
	}
	correct, neutral := 0, 0
	f1, rec := 0.0, 0.0
	for k := 0; k < NumClasses; k++ {
		correct += r.Confusion[k][k]
		tp, fp, fn := r.Confusion[k][k], 0, 0
		truth := 0
		for j := 0; j < NumClasses; j++ {
			truth += r.Confusion[k][j]
			if j != k {
				fn += r.Confusion[k][j]
				fp += r.Confusion[j][k]
			}
		}
		neutral += r.Confusion[k][ClassNeutral]
		if truth == 0 {
			continue // a class the file does not use
		}
		r.Classes++
		rec += float64(tp) / float64(truth)
		if d := 2*tp + fp + fn; d > 0 {
			f1 += float64(2*tp) / float64(d)
		}
	}
	r.Accuracy = float64(correct) / float64(t.n)
	r.NeutralRate = float64(neutral) / float64(t.n)
	if r.Classes > 0 {
		r.MacroF1 = f1 / float64(r.Classes)
		r.MacroRecall = rec / float64(r.Classes)
	}
	if t.polN > 0 {
		r.Polarity = float64(t.polOK) / float64(t.polN)
	}
	return r
}
