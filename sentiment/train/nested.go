package main

import (
	"encoding/json"
	"fmt"
	"os"

	"lookout/sentiment"
)

// heldOutFolds is what -heldout-json writes: the command line of one
// candidate configuration and its held-out folds, in file order.
type heldOutFolds struct {
	Args  string                 `json:"args"`
	Folds []sentiment.EvalResult `json:"folds"`
}

func writeFolds(path, args string, folds []sentiment.EvalResult) error {
	b, err := json.MarshalIndent(heldOutFolds{Args: args, Folds: folds}, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// nestedSelect chooses among candidate configurations without letting a
// fold choose for itself: for each held-out fold it takes the candidate
// with the best mean accuracy over the other folds (ties: the earlier
// candidate) and reports the fold under it. The per-candidate table is
// the in-sample view (every fold helped choose), printed for reference.
func nestedSelect(paths []string, criterion string) error {
	score, err := criterionScore(criterion)
	if err != nil {
		return err
	}
	cands := make([]heldOutFolds, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &cands[i]); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if len(cands[i].Folds) == 0 {
			return fmt.Errorf("%s: no folds", p)
		}
		if i > 0 {
			if len(cands[i].Folds) != len(cands[0].Folds) {
				return fmt.Errorf("%s: %d folds, %s has %d", p, len(cands[i].Folds), paths[0], len(cands[0].Folds))
			}
			for k, f := range cands[i].Folds {
				if f.File != cands[0].Folds[k].File || f.N != cands[0].Folds[k].N {
					return fmt.Errorf("%s: fold %d is %s (n=%d), %s has %s (n=%d)", p, k, f.File, f.N, paths[0], cands[0].Folds[k].File, cands[0].Folds[k].N)
				}
			}
		}
	}
	fmt.Println("candidates (in-sample: every fold is in its own mean):")
	for i, c := range cands {
		fmt.Printf("  [%d] %s  (%s)\n", i, c.Args, paths[i])
		printTwoClassMean(c.Folds)
	}
	folds := make([][]sentiment.EvalResult, len(cands))
	for i, c := range cands {
		folds[i] = c.Folds
	}
	chosen := nestedPick(folds, score)
	pick := make([]sentiment.EvalResult, len(chosen))
	for k, best := range chosen {
		pick[k] = cands[best].Folds[k]
		fmt.Printf("  %s: chosen on the other folds: [%d]\n", pick[k].File, best)
	}
	fmt.Printf("\nnested (criterion: %s): each fold under the candidate chosen on the other folds:\n", criterion)
	printResults(pick)
	printTwoClassMean(pick)
	return nil
}

// criterionScore is the per-fold figure a candidate is chosen by:
// "accuracy" is every fold's exact accuracy; "polarity" counts only the
// two-class folds' polarity accuracy (other folds do not vote).
func criterionScore(name string) (func(sentiment.EvalResult) (float64, bool), error) {
	switch name {
	case "accuracy":
		return func(e sentiment.EvalResult) (float64, bool) { return e.Accuracy, true }, nil
	case "polarity":
		return func(e sentiment.EvalResult) (float64, bool) { return e.Polarity, e.Classes == 2 }, nil
	}
	return nil, fmt.Errorf("criterion %q: want accuracy or polarity", name)
}

// nestedPick returns, for each fold k, the candidate whose folds other
// than k have the best mean score (only folds the score counts; ties: the
// earlier candidate). cands[i][k] is candidate i's result on fold k.
func nestedPick(cands [][]sentiment.EvalResult, score func(sentiment.EvalResult) (float64, bool)) []int {
	if len(cands) == 0 {
		return nil
	}
	folds := len(cands[0])
	out := make([]int, folds)
	for k := 0; k < folds; k++ {
		best, bestMean := 0, -1.0
		for i, c := range cands {
			sum, n := 0.0, 0
			for j, f := range c {
				if v, ok := score(f); ok && j != k {
					sum += v
					n++
				}
			}
			if n == 0 {
				continue
			}
			if mean := sum / float64(n); mean > bestMean+1e-12 {
				best, bestMean = i, mean
			}
		}
		out[k] = best
	}
	return out
}
