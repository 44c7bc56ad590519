package alerts

import (
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// A robustness harness for the default anomaly rule on the shared NAB
// subset. One score at one setting says little when that setting was
// picked on the same files: this harness shows the score over a band of
// levels around the default (a plateau or a spike) and a
// leave-one-category-out protocol (pick the level on realTweets, score it
// on the artificial series, and the other way round).
//
// Sweeping levels through the engine would cost one full engine run per
// level, so the detector runs once per file and the rule's lifecycle is
// replayed on its output by nabRobustAlerts; TestNABRobustReplayMatchesEngine
// proves that replay equal to the engine's own decisions at the default
// setting.

// nabRobustSeries is what the default rule's detector produced for one
// file: per row the value compared with the levels (|z|) and whether it was
// scored at all (past warm-up).
type nabRobustSeries struct {
	ts    []time.Time
	value []float64
	ok    []bool
	step  time.Duration
}

var nabRobustRun struct {
	once   sync.Once
	series []nabRobustSeries
}

// nabRobustDetectorOutput runs the default rule's detector over every file
// once.
func nabRobustDetectorOutput(t *testing.T, files []nabCorpusFile) []nabRobustSeries {
	t.Helper()
	nabRobustRun.once.Do(func() { nabRobustRun.series = nabRobustRunDetector(files, 0) })
	return nabRobustRun.series
}

// nabRobustRunDetector runs the default rule's detector over every file,
// with a recent baseline of historyDays days (0: the default).
func nabRobustRunDetector(files []nabCorpusFile, historyDays float64) []nabRobustSeries {
	out := make([]nabRobustSeries, len(files))
	nabEachFile(len(files), func(i int) {
		rows := files[i].rows
		step := backtestStep(rows)
		rule := DefaultAnomalyRule("value", step)
		params := anomalyParamsFor(rule, rule.Window.D())
		if historyDays > 0 {
			params.history = int(historyDays * float64(24*time.Hour/step))
		}
		det := newAnomalyDetector(params)
		s := nabRobustSeries{ts: make([]time.Time, len(rows)), value: make([]float64, len(rows)), ok: make([]bool, len(rows)), step: step}
		for j, r := range rows {
			p := det.update(r.ts, r.value)
			s.ts[j], s.value[j], s.ok[j] = r.ts, p.directional(rule.Op), p.ready
		}
		out[i] = s
	})
	return out
}

// nabEachFile runs fn(i) for i in [0, n), two at a time (the machine's
// cores), and returns when all are done.
func nabEachFile(n int, fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// nabRobustAlerts replays the anomaly rule's lifecycle (no `for`, default
// hysteresis, resolve after one clear evaluation, cooldown from the
// resolution) at one level and refractory: true where an alert starts
// firing.
func nabRobustAlerts(s nabRobustSeries, level float64, refractory int) []bool {
	out := make([]bool, len(s.value))
	cooldown := time.Duration(refractory) * s.step
	firing := false
	var resolvedAt time.Time
	hold := level - math.Abs(level)*defaultHysteresis
	for i, v := range s.value {
		ok := s.ok[i]
		switch {
		case firing && ok && v >= hold:
		case firing:
			firing, resolvedAt = false, s.ts[i]
		case ok && v >= level:
			if !resolvedAt.IsZero() && s.ts[i].Sub(resolvedAt) < cooldown {
				continue
			}
			firing, out[i] = true, true
		}
	}
	return out
}

// nabRobustCategory is the NAB category a file belongs to, with the two
// artificial folders taken as one ("artificial").
func nabRobustCategory(name string) string {
	cat, _, _ := strings.Cut(name, "/")
	if strings.HasPrefix(cat, "artificial") {
		return "artificial"
	}
	return cat
}

// nabRobustScore scores the replayed alerts at one setting over the files
// of one category ("" = all).
func nabRobustScore(files []nabCorpusFile, series []nabRobustSeries, cat string, level float64, refractory int, p nabProfile) float64 {
	var sub []nabCorpusFile
	var det [][]bool
	for i, f := range files {
		if cat != "" && nabRobustCategory(f.name) != cat {
			continue
		}
		sub = append(sub, f)
		det = append(det, nabRobustAlerts(series[i], level, refractory))
	}
	score, _, _, _, _, _ := nabCorpusScore(sub, det, p)
	return score
}

// nabRobustFactors are the multiples of the default level the curve shows.
var nabRobustFactors = []float64{0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1, 1.05, 1.1, 1.15, 1.2, 1.25, 1.4, 1.6, 1.8, 2}

// nabRobustBand is the band the plateau is judged on: 0.8×..1.25× the
// default level.
func nabRobustInBand(f float64) bool { return f >= 0.8-1e-9 && f <= 1.25+1e-9 }

func TestNABRobustReplayMatchesEngine(t *testing.T) {
	files, detections := nabDetections(t)
	series := nabRobustDetectorOutput(t, files)
	for i, f := range files {
		got := nabRobustAlerts(series[i], DefaultAnomalyYellow, DefaultAnomalyRefractory)
		for j := range got {
			if got[j] != detections[i][j] {
				t.Fatalf("%s row %d (%s): replay says alert=%v, the engine %v", f.name, j, f.rows[j].rawTS, got[j], detections[i][j])
			}
		}
	}
}

// TestNABRobustness reports the default rule's score curve over levels and
// refractory periods and the leave-one-category-out protocol, and guards
// the plateau: every level in 0.8×..1.25× the default must keep the
// standard profile within reach of the target.
func TestNABRobustness(t *testing.T) {
	files, _ := nabDetections(t)
	series := nabRobustDetectorOutput(t, files)
	std := nabProfiles[0]

	// Level curve, all three profiles, whole subset.
	var b strings.Builder
	fmt.Fprintf(&b, "level curve (refractory %d points):\n  factor  level   standard  low_FP  low_FN  tweets  artificial\n", DefaultAnomalyRefractory)
	bandMin, bandSum, bandN := math.Inf(1), 0.0, 0
	for _, f := range nabRobustFactors {
		l := f * DefaultAnomalyYellow
		s := make([]float64, len(nabProfiles))
		for k, p := range nabProfiles {
			s[k] = nabRobustScore(files, series, "", l, DefaultAnomalyRefractory, p)
		}
		tw := nabRobustScore(files, series, "realTweets", l, DefaultAnomalyRefractory, std)
		ar := nabRobustScore(files, series, "artificial", l, DefaultAnomalyRefractory, std)
		fmt.Fprintf(&b, "  %5.2f  %6.2f   %6.1f  %6.1f  %6.1f  %6.1f  %6.1f\n", f, l, s[0], s[1], s[2], tw, ar)
		if nabRobustInBand(f) {
			bandMin = math.Min(bandMin, s[0])
			bandSum += s[0]
			bandN++
		}
	}
	fmt.Fprintf(&b, "  standard over 0.8×..1.25×: min %.1f, mean %.1f\n", bandMin, bandSum/float64(bandN))

	// Refractory curve at the default level.
	b.WriteString("refractory curve (default level), standard:\n")
	for _, days := range []float64{0.25, 0.5, 1, 2} {
		n := int(math.Round(days * float64(DefaultAnomalyRefractory)))
		fmt.Fprintf(&b, "  %4.2f× (%d points): %.1f\n", days, n, nabRobustScore(files, series, "", DefaultAnomalyYellow, n, std))
	}

	// Leave one category out: choose the level on one category only,
	// score the other at that level.
	b.WriteString("leave one category out (standard):\n")
	for _, pair := range [][2]string{{"realTweets", "artificial"}, {"artificial", "realTweets"}} {
		train, test := pair[0], pair[1]
		bestF, bestS := 0.0, math.Inf(-1)
		oracleF, oracleS := 0.0, math.Inf(-1)
		for _, f := range nabRobustFactors {
			l := f * DefaultAnomalyYellow
			if s := nabRobustScore(files, series, train, l, DefaultAnomalyRefractory, std); s > bestS {
				bestF, bestS = f, s
			}
			if s := nabRobustScore(files, series, test, l, DefaultAnomalyRefractory, std); s > oracleS {
				oracleF, oracleS = f, s
			}
		}
		heldOut := nabRobustScore(files, series, test, bestF*DefaultAnomalyYellow, DefaultAnomalyRefractory, std)
		fmt.Fprintf(&b, "  level chosen on %-10s %.2f× (%.1f there) → %-10s %.1f  (its own best %.1f at %.2f×, default %.1f)\n",
			train, bestF, bestS, test, heldOut, oracleS, oracleF,
			nabRobustScore(files, series, test, DefaultAnomalyYellow, DefaultAnomalyRefractory, std))
	}
	t.Log("\n" + b.String())
	if os.Getenv("NAB_VERBOSE") != "" {
		fmt.Fprint(os.Stderr, b.String())
	}

	// The plateau guard: 70 at the default (TestNABScore) must not be a
	// knife edge.
	if bandMin < nabRobustBandFloor {
		t.Errorf("standard profile drops to %.1f within 0.8×..1.25× the default level, want ≥ %.0f everywhere in the band", bandMin, nabRobustBandFloor)
	}
}

// nabRobustBandFloor is the least standard score accepted anywhere in the
// band around the default level. It is an in-sample regression guard, not
// a target: the robust-z detector alone measured 64.3 at worst in the band
// (72.0 at 1.0×; with a one-day baseline 57.9), so a change that makes the
// default's neighbourhood worse fails here even if it keeps TestNABScore
// ≥ 70. Held-out figures: TestNABCrossValidated.
const nabRobustBandFloor = 62.0

// TestNABRobustHistory reports how the score depends on the length of the
// recent baseline (anomalyHistoryDays), the one structural setting moved
// after measuring with this harness: the shipped 4 days must sit on a
// plateau of that setting too, not only of the level.
func TestNABRobustHistory(t *testing.T) {
	if os.Getenv("LOOKOUT_NAB_SWEEP") == "" {
		t.Skip("report only, six detector runs over the NAB subset: set LOOKOUT_NAB_SWEEP=1 to run it")
	}
	files, _ := nabDetections(t)
	std := nabProfiles[0]
	var b strings.Builder
	b.WriteString("recent-baseline length (standard; default level and refractory):\n  days  default  band min  band mean  tweets  artificial\n")
	for _, days := range []float64{1, 2, 3, 4, 5, 7} {
		series := nabRobustRunDetector(files, days)
		bandMin, bandSum, bandN := math.Inf(1), 0.0, 0
		for _, f := range nabRobustFactors {
			if !nabRobustInBand(f) {
				continue
			}
			s := nabRobustScore(files, series, "", f*DefaultAnomalyYellow, DefaultAnomalyRefractory, std)
			bandMin = math.Min(bandMin, s)
			bandSum += s
			bandN++
		}
		fmt.Fprintf(&b, "  %4.0f  %7.1f  %8.1f  %9.1f  %6.1f  %6.1f\n", days,
			nabRobustScore(files, series, "", DefaultAnomalyYellow, DefaultAnomalyRefractory, std),
			bandMin, bandSum/float64(bandN),
			nabRobustScore(files, series, "realTweets", DefaultAnomalyYellow, DefaultAnomalyRefractory, std),
			nabRobustScore(files, series, "artificial", DefaultAnomalyYellow, DefaultAnomalyRefractory, std))
	}
	t.Log("\n" + b.String())
}
