package sentiment

import (
	"os"
	"path/filepath"
	"testing"
)

// sentDataDir returns $LOOKOUT_DATA or skips the test.
func sentDataDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("LOOKOUT_DATA")
	if d == "" {
		t.Skip("LOOKOUT_DATA is not set: skipping tests that need the shared sentiment data (CI sets it to ../shared/data)")
	}
	if _, err := os.Stat(filepath.Join(d, "sentiment")); err != nil {
		t.Skipf("LOOKOUT_DATA=%s has no sentiment/ directory: %v", d, err)
	}
	return d
}

// sentDevTargets are issue 4's accuracy targets on held-out files.
var sentDevTargets = []struct {
	file string
	min  float64
}{
	{"ChnSentiCorp_htl_all_dev.csv", 0.91},
	{"online_shopping_10_cats_dev.csv", 0.91},
	{"weibo_senti_2400_dev.csv", 0.90},
	{"en_airline_tweets_dev.csv", 0.85},
	{"en_tweets_groundtruth.tsv", 0.85}, // never trained on
}

// TestEmbeddedModelDevTargets evaluates the embedded model on the dev splits
// and fails below the targets at the default neutral threshold (what
// `lookout sentiment eval` users get; binary accuracy counts a neutral answer
// as wrong). The numbers at 0.5 (neutral only without evidence) are logged
// too.
func TestEmbeddedModelDevTargets(t *testing.T) {
	dir := sentDataDir(t)
	bin, err := New(Options{NeutralThreshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	def, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if def.Threshold() != DefaultNeutralThreshold {
		t.Fatalf("default classifier threshold %v, want %v", def.Threshold(), DefaultNeutralThreshold)
	}
	for _, tc := range sentDevTargets {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, "sentiment", tc.file)
			exs, err := ReadEvalFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r := Evaluate(bin, tc.file, exs)
			rd := Evaluate(def, tc.file, exs)
			t.Logf("%s n=%d default %.2f: accuracy %.4f macro-F1 %.4f neutral %.4f | threshold 0.5: accuracy %.4f macro-F1 %.4f neutral %.4f",
				tc.file, rd.N, def.Threshold(), rd.Accuracy, rd.MacroF1, rd.NeutralRate, r.Accuracy, r.MacroF1, r.NeutralRate)
			if rd.Accuracy < tc.min {
				t.Errorf("%s: accuracy %.4f at the default threshold %.2f below target %.2f", tc.file, rd.Accuracy, def.Threshold(), tc.min)
			}
		})
	}
}
