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
// and fails below the targets. Binary accuracy counts neutral as wrong, so it
// is measured with the binary threshold 0.5 (neutral only without evidence);
// the default threshold's numbers are logged too.
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
	for _, tc := range sentDevTargets {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, "sentiment", tc.file)
			exs, err := ReadEvalFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r := Evaluate(bin, tc.file, exs)
			rd := Evaluate(def, tc.file, exs)
			t.Logf("%s n=%d threshold 0.5: accuracy %.4f macro-F1 %.4f neutral %.4f | default %.2f: accuracy %.4f macro-F1 %.4f neutral %.4f",
				tc.file, r.N, r.Accuracy, r.MacroF1, r.NeutralRate, def.Threshold(), rd.Accuracy, rd.MacroF1, rd.NeutralRate)
			if r.Accuracy < tc.min {
				t.Errorf("%s: accuracy %.4f below target %.2f", tc.file, r.Accuracy, tc.min)
			}
		})
	}
}
