package alerts

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"lookout/config"
	"lookout/item"
)

// Set LOOKOUT_UPDATE_GOLDEN=1 to rewrite golden files after a deliberate
// change.
func backtestGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "engine", name)
	if os.Getenv("LOOKOUT_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (LOOKOUT_UPDATE_GOLDEN=1 creates it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (LOOKOUT_UPDATE_GOLDEN=1 to accept):\n%s", path, backtestFirstDiff(got, want))
	}
}

func backtestFirstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n got  " + a + "\n want " + b
		}
	}
	return ""
}

func TestBacktestNABGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "engine", "nab_input.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := BacktestNAB(bytes.NewReader(in), &out, BacktestOptions{}); err != nil {
		t.Fatal(err)
	}
	backtestGolden(t, "nab_output.golden.csv", out.Bytes())

	// The format: header, one row per input row with the input's own
	// timestamp and value, a score in [0,1] and a 0/1 alert.
	recs, err := csv.NewReader(bytes.NewReader(out.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	inRecs, _ := csv.NewReader(bytes.NewReader(in)).ReadAll()
	if len(recs) != len(inRecs) || strings.Join(recs[0], ",") != "timestamp,value,anomaly_score,alert" {
		t.Fatalf("%d rows (want %d), header %v", len(recs), len(inRecs), recs[0])
	}
	var alertsAt []int
	for i, r := range recs[1:] {
		if r[0] != inRecs[i+1][0] || r[1] != inRecs[i+1][1] {
			t.Fatalf("row %d: %v does not echo the input %v", i, r[:2], inRecs[i+1])
		}
		s, err := strconv.ParseFloat(r[2], 64)
		if err != nil || s < 0 || s > 1 {
			t.Fatalf("row %d: score %q", i, r[2])
		}
		switch r[3] {
		case "1":
			alertsAt = append(alertsAt, i)
		case "0":
		default:
			t.Fatalf("row %d: alert %q", i, r[3])
		}
	}
	// The synthetic series has a spike at 2×288+100 and a sustained drop
	// from 3×288+150: both are caught, the drop at most a few points late,
	// and nothing else fires once the seasonal baseline is learned.
	spike, drop := 2*288+100, 3*288+150
	var gotSpike, gotDrop bool
	for _, a := range alertsAt {
		switch {
		case a == spike:
			gotSpike = true
		case a >= drop && a < drop+12:
			gotDrop = true
		case a >= 2*288:
			t.Errorf("alert at row %d: neither the spike nor the drop", a)
		}
	}
	if !gotSpike || !gotDrop {
		t.Errorf("alerts at rows %v: want the spike at %d and the drop from %d", alertsAt, spike, drop)
	}
}

func TestBacktestNABBadInput(t *testing.T) {
	cases := map[string]string{
		"":                                  "empty input",
		"time,val\n2020-01-01 00:00:00,1\n": "needs timestamp and value",
		"timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01,x\n":          "line 3",
		"timestamp,value\n2020-01-01 00:00:00,abc\n":                      "not a number",
		"timestamp,value\n2020-01-02 00:00:00,1\n2020-01-01 00:00:00,1\n": "before the previous row",
	}
	for in, want := range cases {
		err := BacktestNAB(strings.NewReader(in), io.Discard, BacktestOptions{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("input %q: error %v, want one mentioning %q", in, err, want)
		}
	}
}

// A named rule from a config replays as well: here a threshold.
func TestBacktestNABWithRule(t *testing.T) {
	in := "timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 00:01:00,9\n2020-01-01 00:02:00,9\n2020-01-01 00:03:00,1\n"
	red := 5.0
	rule := config.RuleConfig{Name: "hi", Kind: KindMetricThreshold, Metric: "value", Levels: config.Levels{Red: &red}, Hysteresis: ptr(0.0)}
	var out bytes.Buffer
	if err := BacktestNAB(strings.NewReader(in), &out, BacktestOptions{Rule: &rule}); err != nil {
		t.Fatal(err)
	}
	want := "timestamp,value,anomaly_score,alert\n" +
		"2020-01-01 00:00:00,1,0.000000,0\n" +
		"2020-01-01 00:01:00,9,1.000000,1\n" +
		"2020-01-01 00:02:00,9,1.000000,0\n" +
		"2020-01-01 00:03:00,1,0.000000,0\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestBacktestReplaysItems(t *testing.T) {
	cfg := engineTestConfig(t, `
  - name: neg
    kind: negative_ratio
    window: 1m
    min_volume: 10
    for: 20s
    levels: { yellow: 0.3, red: 0.6 }
  - name: silent
    kind: absent
    window: 5m
`)
	var items []item.Item
	items = append(items, chats("1", 0, 2*time.Minute, 60, 0)...)              // calm
	items = append(items, chats("1", 2*time.Minute, time.Minute, 60, 48)...)   // storm
	items = append(items, chats("1", 3*time.Minute, 2*time.Minute, 60, 0)...)  // calm again
	items = append(items, chats("1", 15*time.Minute, 10*time.Second, 5, 0)...) // back after silence
	replay := func(fn func(item.Item) error) error {
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		return nil
	}
	evs, err := Backtest(context.Background(), cfg, replay)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Rule+":"+string(ev.State)+"/"+string(ev.Severity)+"@"+ev.At.Sub(engineTestStart).String())
	}
	want := []string{
		"neg:pending/yellow@2m11s",     // 30% of the last minute is negative
		"neg:firing/red@2m31s",         // for 20s elapsed; by now above 60%
		"neg:resolved/red@3m36s",       // 11 of 42 negative: below yellow×(1-hysteresis)
		"silent:firing/yellow@9m58s",   // 5m after the last item at 4m58s
		"silent:resolved/yellow@15m1s", // the first evaluation after the item at 15m
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("backtest events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Out-of-order input is an error naming the item.
	bad := func(fn func(item.Item) error) error {
		if err := fn(chatItem("1", engineTestStart.Add(time.Minute), item.Neutral, "a")); err != nil {
			return err
		}
		it := chatItem("1", engineTestStart, item.Neutral, "b")
		it.ID = "late-one"
		return fn(it)
	}
	if _, err := Backtest(context.Background(), cfg, bad); err == nil || !strings.Contains(err.Error(), "late-one") {
		t.Errorf("out-of-order replay: error %v", err)
	}
}

func FuzzBacktestNAB(f *testing.F) {
	f.Add([]byte("timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,2\n"))
	f.Add([]byte("timestamp,value\n2015-02-26 21:42:53,35\n2015-02-26 21:47:53,41\n2015-02-26 21:52:53,NaN\n"))
	f.Add([]byte("value,timestamp\n3,2014-04-01T00:00:00Z\n"))
	f.Add([]byte("timestamp,value\n\"2014-04-01 00:00:00\",\"1e308\"\n2014-04-01 00:00:00,-1e308\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		var out bytes.Buffer
		err := BacktestNAB(bytes.NewReader(data), &out, BacktestOptions{})
		if err != nil {
			return
		}
		rows, rerr := readNAB(bytes.NewReader(data))
		if rerr != nil {
			t.Fatalf("BacktestNAB accepted what readNAB rejects: %v", rerr)
		}
		recs, cerr := csv.NewReader(bytes.NewReader(out.Bytes())).ReadAll()
		if cerr != nil || len(recs) != len(rows)+1 {
			t.Fatalf("output %d records (err %v) for %d rows", len(recs), cerr, len(rows))
		}
		for _, r := range recs[1:] {
			s, err := strconv.ParseFloat(r[2], 64)
			if err != nil || s < 0 || s > 1 || (r[3] != "0" && r[3] != "1") {
				t.Fatalf("bad output row %v", r)
			}
		}
	})
}
