package alerts

import (
	"os"
	"sync"
	"testing"
)

// nabRun holds the default detector's decisions over the shared NAB
// subset, computed once per test binary (the corpus is ~200k rows).
var nabRun struct {
	once       sync.Once
	files      []nabCorpusFile
	detections [][]bool
	err        error
}

func nabDetections(t *testing.T) ([]nabCorpusFile, [][]bool) {
	t.Helper()
	dir := nabDataDir(t)
	nabRun.once.Do(func() {
		nabRun.files = nabLoadCorpus(t, dir)
		nabRun.detections = make([][]bool, len(nabRun.files))
		var wg sync.WaitGroup
		errs := make([]error, len(nabRun.files))
		sem := make(chan struct{}, 2)
		for i := range nabRun.files {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				// The default rule, exactly as `lookout backtest --format nab`
				// runs it: no per-file settings.
				_, alerts, err := backtestNABRows(nabRun.files[i].rows, BacktestOptions{})
				nabRun.detections[i], errs[i] = alerts, err
			}(i)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil && nabRun.err == nil {
				nabRun.err = err
			}
		}
	})
	if nabRun.err != nil {
		t.Fatal(nabRun.err)
	}
	return nabRun.files, nabRun.detections
}

// TestNABScore runs the engine's default anomaly rule over every series of
// the shared NAB subset (realTweets, artificialNoAnomaly,
// artificialWithAnomaly) and scores its alerts with the NAB method.
//
// This is an IN-SAMPLE figure: the default settings were chosen on these
// same 21 files, so it says how well they fit them, not how the rule does
// on series it has not seen (TestNABCrossValidated gives the held-out
// figures). It guards the engine path end to end against regressions. The
// published scoreboard is over the full 58-file corpus: the numbers are
// not comparable one to one.
func TestNABScore(t *testing.T) {
	files, detections := nabDetections(t)
	if len(files) != 21 {
		t.Fatalf("loaded %d NAB files, want the 21 of the shared subset", len(files))
	}
	windows := 0
	for _, f := range files {
		windows += len(f.windows)
	}
	if windows != 39 {
		t.Fatalf("%d windows in the subset, SCORING.md says 39", windows)
	}
	if os.Getenv("NAB_VERBOSE") != "" {
		for i, f := range files {
			s := nabScoreFile(f.windows, detections[i], nabProbation(len(f.rows)), nabProfiles[0])
			n := 0
			for _, d := range detections[i] {
				if d {
					n++
				}
			}
			t.Logf("%-55s alerts %3d  TP %d FN %d FP %3d raw %6.2f %v", f.name, n, s.tp, s.fn, s.fp, s.raw, s.bestTPPosition)
		}
	}
	scores := map[string]float64{}
	for _, p := range nabProfiles {
		score, raw, w, tp, fp, fn := nabCorpusScore(files, detections, p)
		scores[p.name] = score
		t.Log(nabFormatRow(p, score, raw, w, tp, fp, fn))
	}
	if scores["standard"] < 70 {
		t.Errorf("NAB standard profile %.1f in-sample on the shared subset, want ≥ 70", scores["standard"])
	}
}
