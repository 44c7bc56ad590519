package alerts

// A NAB scorer, written from the NAB corpus's SCORING.md (the NAB method in
// our own words): windows, probationary period, scaled sigmoid, the three
// application profiles and normalisation against the null and perfect
// detectors. It is a test helper: the product never scores itself.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// nabProfile is one application profile's cost matrix.
type nabProfile struct {
	name           string
	tp, fp, fn     float64
	publishedHTM   float64 // numenta HTM on the full corpus (SCORING.md §6)
	publishedARTim float64
}

var nabProfiles = []nabProfile{
	{name: "standard", tp: 1.0, fp: 0.11, fn: 1.0, publishedHTM: 70.1, publishedARTim: 74.9},
	{name: "reward_low_FP_rate", tp: 1.0, fp: 0.22, fn: 1.0, publishedHTM: 63.1, publishedARTim: 65.2},
	{name: "reward_low_FN_rate", tp: 1.0, fp: 0.11, fn: 2.0, publishedHTM: 74.3, publishedARTim: 80.4},
}

// nabSigmoid is the scaled sigmoid: 2/(1+e^(5y)) - 1, fixed at -1 past
// y = 3.
func nabSigmoid(y float64) float64 {
	if y > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*y)) - 1
}

// nabWindow is an inclusive range of row indices.
type nabWindow struct{ start, end int }

// nabProbation is the number of leading rows ignored in scoring.
func nabProbation(rows int) int {
	return int(math.Min(math.Floor(0.15*float64(rows)), 0.15*5000))
}

// nabFileScore is one file's raw score for one profile.
type nabFileScore struct {
	raw            float64
	tp, fp, fn     int
	windows        int
	bestTPPosition []float64
}

// nabScoreFile scores detections (one bool per row) against windows.
func nabScoreFile(windows []nabWindow, detections []bool, probation int, p nabProfile) nabFileScore {
	var out nabFileScore
	out.windows = len(windows)
	maxTP := nabSigmoid(-1)
	best := make([]float64, len(windows))
	hit := make([]bool, len(windows))
	w := 0 // next/current window
	prevEnd, prevWidth := -1, 0
	for i, det := range detections {
		for w < len(windows) && i > windows[w].end {
			prevEnd, prevWidth = windows[w].end, windows[w].end-windows[w].start+1
			w++
		}
		if !det || i < probation {
			continue
		}
		if w < len(windows) && i >= windows[w].start {
			width := float64(windows[w].end - windows[w].start + 1)
			y := -float64(windows[w].end-i+1) / width
			v := nabSigmoid(y) * p.tp / maxTP
			if !hit[w] || v > best[w] {
				best[w], hit[w] = v, true
			}
			continue
		}
		var v float64
		if prevEnd < 0 {
			v = -1
		} else {
			den := float64(prevWidth - 1)
			if den <= 0 {
				den = 1
			}
			v = nabSigmoid(math.Abs(float64(i-prevEnd)) / den)
		}
		out.raw += v * p.fp
		out.fp++
	}
	for k := range windows {
		if hit[k] {
			out.raw += best[k]
			out.tp++
			out.bestTPPosition = append(out.bestTPPosition, best[k])
		} else {
			out.raw -= p.fn
			out.fn++
		}
	}
	return out
}

// nabNormalise maps a corpus raw score to 0..100 against the null
// (never fires: every window missed) and perfect detectors.
func nabNormalise(raw float64, windows int, p nabProfile) float64 {
	perfect := float64(windows) * p.tp
	null := -float64(windows) * p.fn
	return 100 * (raw - null) / (perfect - null)
}

// nabCorpus is the shared NAB subset: per file its rows' times and
// windows as row ranges.
type nabCorpusFile struct {
	name    string // e.g. realTweets/Twitter_volume_AAPL.csv
	rows    []nabRow
	windows []nabWindow
}

func nabDataDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("LOOKOUT_DATA")
	if root == "" {
		t.Skip("LOOKOUT_DATA is not set: skipping the NAB test (set it to the data folder; CI sets it)")
	}
	dir := filepath.Join(root, "nab")
	if _, err := os.Stat(filepath.Join(dir, "labels", "combined_windows.json")); err != nil {
		t.Skipf("LOOKOUT_DATA=%s has no nab/labels/combined_windows.json: skipping the NAB test", root)
	}
	return dir
}

func nabLoadCorpus(t testing.TB, dir string) []nabCorpusFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "labels", "combined_windows.json"))
	if err != nil {
		t.Fatal(err)
	}
	var windows map[string][][2]string
	if err := json.Unmarshal(raw, &windows); err != nil {
		t.Fatalf("combined_windows.json: %v", err)
	}
	var names []string
	for name := range windows {
		if _, err := os.Stat(filepath.Join(dir, "data", name)); err == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []nabCorpusFile
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, "data", name))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := readNAB(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cf := nabCorpusFile{name: name, rows: rows}
		for _, w := range windows[name] {
			start, err1 := backtestParseTime(w[0])
			end, err2 := backtestParseTime(w[1])
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: window %v: %v %v", name, w, err1, err2)
			}
			cf.windows = append(cf.windows, nabRowRange(rows, start, end))
		}
		out = append(out, cf)
	}
	return out
}

// nabRowRange maps a window's times to the first row at or after start
// and the last row at or before end.
func nabRowRange(rows []nabRow, start, end time.Time) nabWindow {
	s := sort.Search(len(rows), func(i int) bool { return !rows[i].ts.Before(start) })
	e := sort.Search(len(rows), func(i int) bool { return rows[i].ts.After(end) }) - 1
	return nabWindow{s, e}
}

// nabCorpusScore scores per-file detections over the corpus for a profile.
func nabCorpusScore(files []nabCorpusFile, detections [][]bool, p nabProfile) (score float64, raw float64, windows, tp, fp, fn int) {
	for i, f := range files {
		s := nabScoreFile(f.windows, detections[i], nabProbation(len(f.rows)), p)
		raw += s.raw
		windows += s.windows
		tp += s.tp
		fp += s.fp
		fn += s.fn
	}
	return nabNormalise(raw, windows, p), raw, windows, tp, fp, fn
}

func TestNABScorerHandComputed(t *testing.T) {
	std, lowFP, lowFN := nabProfiles[0], nabProfiles[1], nabProfiles[2]
	det := func(n int, at ...int) []bool {
		d := make([]bool, n)
		for _, i := range at {
			d[i] = true
		}
		return d
	}
	win := []nabWindow{{4, 6}} // width 3, right edge 6
	cases := []struct {
		name      string
		windows   []nabWindow
		det       []bool
		probation int
		p         nabProfile
		want      float64
		tp, fp    int
	}{
		{"earliest detection earns exactly A_TP", win, det(20, 4), 0, std, 1.0, 1, 0},
		{"later rows in the same window add nothing", win, det(20, 4, 5, 6), 0, std, 1.0, 1, 0},
		// y = -2/3: (2/(1+e^(-10/3))-1) / (2/(1+e^-5)-1) = 0.943742
		{"middle of the window", win, det(20, 5), 0, std, 0.9437422611978669, 1, 0},
		// y = -1/3 → 0.691518
		{"last row of the window", win, det(20, 6), 0, std, 0.6915182473196357, 1, 0},
		{"missed window costs A_FN", win, det(20), 0, std, -1.0, 0, 0},
		{"missed window, low-FN profile", win, det(20), 0, lowFN, -2.0, 0, 0},
		// FP before any window: -1 × A_FP; plus the miss.
		{"FP before the first window", win, det(20, 1), 0, std, -1.0 - 0.11, 0, 1},
		// Row 8: y = |8-6|/(3-1) = 1 → -0.986614 × 0.11 = -0.108528; plus TP at 4.
		{"FP right after a window", win, det(20, 4, 8), 0, std, 1.0 - 0.10852757279665734, 1, 1},
		{"FP right after a window, low-FP", win, det(20, 4, 8), 0, lowFP, 1.0 - 0.21705514559331468, 1, 1},
		// Row 7: y = 0.5 → -0.847 × 0.11 = -0.093311.
		{"FP next to a window", win, det(20, 4, 7), 0, std, 1.0 - 0.09331120039532642, 1, 1},
		// Row 19: y = 13/2 > 3 → exactly -1.
		{"FP far after a window", win, det(20, 4, 19), 0, std, 1.0 - 0.11, 1, 1},
		{"detections in the probationary period are ignored", win, det(20, 0, 1, 2, 4), 3, std, 1.0, 1, 0},
		{"no windows: every detection is a full FP", nil, det(10, 2, 5), 0, std, -0.22, 0, 2},
		// Two windows; FP between them is scored against the first.
		{"two windows", []nabWindow{{2, 3}, {10, 12}}, det(15, 2, 5, 12), 0, std,
			1.0 + nabSigmoid(2.0/1.0)*0.11 + 0.6915182473196357, 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := nabScoreFile(tc.windows, tc.det, tc.probation, tc.p)
			if math.Abs(got.raw-tc.want) > 1e-9 || got.tp != tc.tp || got.fp != tc.fp {
				t.Errorf("raw %.9f tp %d fp %d, want %.9f tp %d fp %d", got.raw, got.tp, got.fp, tc.want, tc.tp, tc.fp)
			}
		})
	}
	if v := nabSigmoid(2.0); math.Abs(v-(-0.9999092042625951)) > 1e-12 {
		t.Errorf("sigmoid(2) = %v", v)
	}
	// Normalisation: null scores 0, perfect 100, on 39 windows.
	for _, p := range nabProfiles {
		if got := nabNormalise(-39*p.fn, 39, p); math.Abs(got) > 1e-9 {
			t.Errorf("%s: null normalises to %v", p.name, got)
		}
		if got := nabNormalise(39*p.tp, 39, p); math.Abs(got-100) > 1e-9 {
			t.Errorf("%s: perfect normalises to %v", p.name, got)
		}
	}
	// Probationary period: 15% of the file, at most 750 rows.
	for rows, want := range map[int]int{4032: 604, 15902: 750, 100: 15} {
		if got := nabProbation(rows); got != want {
			t.Errorf("probation(%d) = %d, want %d", rows, got, want)
		}
	}
}

func nabFormatRow(p nabProfile, score, raw float64, windows, tp, fp, fn int) string {
	return fmt.Sprintf("%-20s %6.1f  (raw %7.2f, %d windows: %d TP, %d FN, %d FP)  published full corpus: HTM %.1f, ARTime %.1f",
		p.name, score, raw, windows, tp, fn, fp, p.publishedHTM, p.publishedARTim)
}
