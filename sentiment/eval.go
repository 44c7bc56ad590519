package sentiment

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"lookout/item"
)

// ScoreLines reads one text per line from r and writes one JSON object per
// line to w: {"label","score","prob","lang","groups","terms"}. Empty lines
// are scored too (as neutral) so output lines match input lines.
func ScoreLines(c *Classifier, r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	type line struct {
		Label  string       `json:"label"`
		Score  float64      `json:"score"`
		Prob   float64      `json:"prob"`
		Lang   string       `json:"lang"`
		Groups []item.Match `json:"groups"`
		Terms  []string     `json:"terms"`
	}
	var s item.Score
	for n := 1; sc.Scan(); n++ {
		c.ScoreInto(&s, strings.TrimSuffix(sc.Text(), "\r"))
		out := line{Label: s.Label.String(), Score: sentRound(s.Value), Prob: sentRound(s.Prob), Lang: s.Lang,
			Groups: s.Groups, Terms: s.Terms}
		if out.Groups == nil {
			out.Groups = []item.Match{}
		}
		if out.Terms == nil {
			out.Terms = []string{}
		}
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("write line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	return bw.Flush()
}

func sentRound(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 4, 64), 64)
	return f
}

// EvalResult is the binary evaluation of one labelled file.
type EvalResult struct {
	File        string  `json:"file"`
	N           int     `json:"n"`
	Accuracy    float64 `json:"accuracy"`
	MacroF1     float64 `json:"macro_f1"`
	NeutralRate float64 `json:"neutral_rate"`
}

// EvalExample is one labelled text of an evaluation file.
type EvalExample struct {
	Text string
	Pos  bool
}

// ReadEvalFile reads a labelled file: a CSV whose header has label and
// review columns (others ignored; 1 positive, 0 negative), or the English
// TSV id<TAB>mean_score<TAB>text (positive when mean > 0, negative when < 0,
// 0 dropped).
func ReadEvalFile(path string) ([]EvalExample, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(fh)
	head, _ := br.Peek(64)
	fh.Close()
	if sentLooksTSV(string(head)) {
		return readMeanScoreTSV(path)
	}
	rows, err := readLabelledCSV(path)
	if err != nil {
		return nil, err
	}
	out := make([]EvalExample, len(rows))
	for i, r := range rows {
		out[i] = EvalExample{Text: r.text, Pos: r.pos}
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
		out = append(out, EvalExample{Text: f[2], Pos: v > 0})
	}
	return out, sc.Err()
}

// EvalFile scores every example of a labelled file (see ReadEvalFile) with
// c. Accuracy is binary and counts a neutral answer as wrong; MacroF1 is the
// mean F1 of the positive and negative classes (a neutral answer is a miss
// for the true class); NeutralRate is the share of neutral answers.
func EvalFile(c *Classifier, path string) (EvalResult, error) {
	exs, err := ReadEvalFile(path)
	if err != nil {
		return EvalResult{File: path}, err
	}
	return Evaluate(c, path, exs), nil
}

// Evaluate scores labelled examples (see EvalFile).
func Evaluate(c *Classifier, name string, exs []EvalExample) EvalResult {
	var tp, fp, fn, neutral [2]int // index 0 positive class, 1 negative
	var s item.Score
	correct := 0
	for _, e := range exs {
		c.ScoreInto(&s, e.Text)
		truth := 1
		if e.Pos {
			truth = 0
		}
		switch s.Label {
		case item.Neutral:
			neutral[truth]++
			fn[truth]++
		case item.Positive, item.Negative:
			p := 1
			if s.Label == item.Positive {
				p = 0
			}
			if p == truth {
				correct++
				tp[p]++
			} else {
				fp[p]++
				fn[truth]++
			}
		}
	}
	r := EvalResult{File: name, N: len(exs)}
	if len(exs) == 0 {
		return r
	}
	r.Accuracy = float64(correct) / float64(len(exs))
	r.NeutralRate = float64(neutral[0]+neutral[1]) / float64(len(exs))
	f1 := 0.0
	for k := 0; k < 2; k++ {
		if d := 2*tp[k] + fp[k] + fn[k]; d > 0 {
			f1 += float64(2*tp[k]) / float64(d)
		}
	}
	r.MacroF1 = f1 / 2
	return r
}
