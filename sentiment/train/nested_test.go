package main

import (
	"path/filepath"
	"slices"
	"testing"

	"lookout/sentiment"
)

func accs(a ...float64) []sentiment.EvalResult {
	out := make([]sentiment.EvalResult, len(a))
	for i, v := range a {
		out[i] = sentiment.EvalResult{File: string(rune('a' + i)), N: 10, Accuracy: v}
	}
	return out
}

// A fold never chooses for itself: each fold gets the candidate the other
// folds prefer (in the second case candidate 1 is far best on fold 0, yet
// fold 0 is scored under candidate 0).
func TestNestedPick(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cands [][]sentiment.EvalResult
		want  []int
	}{
		{"one candidate", [][]sentiment.EvalResult{accs(0.5, 0.6, 0.7)}, []int{0, 0, 0}},
		{"a fold's own win does not count", [][]sentiment.EvalResult{accs(0.5, 0.8, 0.8), accs(0.99, 0.7, 0.7)}, []int{0, 1, 1}},
		{"the others decide", [][]sentiment.EvalResult{accs(0.9, 0.6, 0.6), accs(0.5, 0.7, 0.7)}, []int{1, 0, 0}},
		{"split", [][]sentiment.EvalResult{accs(0.9, 0.9, 0.5), accs(0.5, 0.5, 0.95)}, []int{1, 1, 0}},
		{"ties go to the earlier", [][]sentiment.EvalResult{accs(0.6, 0.6), accs(0.6, 0.6)}, []int{0, 0}},
		{"mixed", [][]sentiment.EvalResult{accs(0.9, 0.5, 0.5, 0.5), accs(0.5, 0.6, 0.6, 0.9)}, []int{1, 1, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			score, err := criterionScore("accuracy")
			if err != nil {
				t.Fatal(err)
			}
			if got := nestedPick(tc.cands, score); !slices.Equal(got, tc.want) {
				t.Errorf("nestedPick = %v, want %v", got, tc.want)
			}
		})
	}
}

// The JSON written by -heldout-json reads back, and folds that do not
// line up are refused.
func TestNestedSelectFiles(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"), filepath.Join(dir, "c.json")
	if err := writeFolds(a, "-bits 21", accs(0.5, 0.8, 0.8)); err != nil {
		t.Fatal(err)
	}
	if err := writeFolds(b, "-models 2", accs(0.99, 0.7, 0.7)); err != nil {
		t.Fatal(err)
	}
	if err := nestedSelect([]string{a, b}, "accuracy"); err != nil {
		t.Fatal(err)
	}
	if err := writeFolds(c, "-epochs 4", accs(0.5, 0.8)); err != nil {
		t.Fatal(err)
	}
	if err := nestedSelect([]string{a, c}, "accuracy"); err == nil {
		t.Error("candidates with different folds were accepted")
	}
}

// The polarity criterion votes with the two-class folds only.
func TestNestedPickPolarity(t *testing.T) {
	mk := func(pol ...float64) []sentiment.EvalResult {
		out := make([]sentiment.EvalResult, len(pol))
		for i, v := range pol {
			out[i] = sentiment.EvalResult{Classes: 2, Polarity: v, Accuracy: 1 - v}
		}
		out[len(out)-1].Classes = 3 // a three-class fold: no vote
		return out
	}
	score, err := criterionScore("polarity")
	if err != nil {
		t.Fatal(err)
	}
	// Fold 2 (three classes) has candidate 1 far ahead, but does not vote.
	got := nestedPick([][]sentiment.EvalResult{mk(0.9, 0.8, 0.1), mk(0.85, 0.7, 0.99)}, score)
	if want := []int{0, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("nestedPick = %v, want %v", got, want)
	}
	if _, err := criterionScore("f1"); err == nil {
		t.Error("unknown criterion accepted")
	}
}
