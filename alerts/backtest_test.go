package alerts

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"lookout/config"
	"lookout/item"

	"lookout/internal/testutil"
)

// backtestGolden compares got with testdata/engine/name (-update rewrites
// it after a deliberate change).
func backtestGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", "engine", name), got)
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
		"timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01,x\n": "line 3",
		"timestamp,value\n2020-01-01 00:00:00,abc\n":             "not a number",
	}
	for in, want := range cases {
		err := BacktestNAB(strings.NewReader(in), io.Discard, BacktestOptions{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("input %q: error %v, want one mentioning %q", in, err, want)
		}
	}
}

// nabLines writes a NAB file: the header, then one row per value from
// start at step, with the given row indices' timestamps replaced.
func nabLines(start time.Time, step time.Duration, values []float64, ts map[int]string) string {
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	for i, v := range values {
		t := start.Add(time.Duration(i) * step).Format("2006-01-02 15:04:05")
		if s, ok := ts[i]; ok {
			t = s
		}
		b.WriteString(t + "," + strconv.FormatFloat(v, 'g', -1, 64) + "\n")
	}
	return b.String()
}

// Real files are not always in time order: a clock set back an hour at a
// daylight-saving change repeats a stretch of timestamps, some exports
// write a row twice. Such rows are skipped (score 0, alert 0, one warning
// with their count and first line), never a fatal error, and the output
// still has one row per input row.
func TestBacktestNABOutOfOrder(t *testing.T) {
	start := time.Date(2020, 10, 25, 0, 0, 0, 0, time.UTC)
	const step = 5 * time.Minute
	noise := anomalyNoise(600, 100, 3, 21)
	// A daylight-saving fall-back: the clock is set back an hour after row
	// 299, so rows 300..311 repeat the last hour's timestamps (12 rows of 5
	// minutes), then time goes on from where it was.
	const setBack = 12
	dst := make([]float64, 624)
	dstTS := map[int]string{}
	for i := range dst {
		dst[i] = 100 + float64(i%7)
		if i >= 300 {
			dstTS[i] = start.Add(time.Duration(i-setBack) * step).Format("2006-01-02 15:04:05")
		}
	}
	cases := []struct {
		name      string
		in        string
		skipped   []int // row indices (0 = first data row) skipped
		firstLine int
	}{
		{name: "in order", in: nabLines(start, step, noise[:50], nil)},
		{name: "duplicate timestamp", in: nabLines(start, step, noise[:50], map[int]string{10: "2020-10-25 00:45:00"}),
			skipped: []int{10}, firstLine: 12},
		{name: "one row back in time", in: nabLines(start, step, noise[:50], map[int]string{20: "2020-10-24 23:00:00"}),
			skipped: []int{20}, firstLine: 22},
		{name: "first row of the file out of order is kept, later ones compare with it",
			in: nabLines(start, step, noise[:5], map[int]string{0: "2020-10-25 00:10:00"}), skipped: []int{1, 2}, firstLine: 3},
		{name: "daylight-saving fall-back repeats an hour", in: nabLines(start, step, dst, dstTS),
			skipped: seqInts(300, 300+setBack), firstLine: 302},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logBuf, nil))
			var out bytes.Buffer
			if err := BacktestNAB(strings.NewReader(tc.in), &out, BacktestOptions{Log: log}); err != nil {
				t.Fatalf("BacktestNAB: %v", err)
			}
			recs, err := csv.NewReader(&out).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			inRecs, _ := csv.NewReader(strings.NewReader(tc.in)).ReadAll()
			if len(recs) != len(inRecs) {
				t.Fatalf("%d output records for %d input records", len(recs), len(inRecs))
			}
			skip := map[int]bool{}
			for _, i := range tc.skipped {
				skip[i] = true
			}
			for i, r := range recs[1:] {
				if r[0] != inRecs[i+1][0] || r[1] != inRecs[i+1][1] {
					t.Fatalf("row %d: %v does not echo the input %v", i, r[:2], inRecs[i+1])
				}
				if skip[i] && (r[2] != "0.000000" || r[3] != "0") {
					t.Errorf("skipped row %d: score %s alert %s, want 0.000000 and 0", i, r[2], r[3])
				}
			}
			rows, err := readNAB(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for i, r := range rows {
				if r.skip {
					got = append(got, i)
				}
			}
			if !equalInts(got, tc.skipped) {
				t.Errorf("skipped rows %v, want %v", got, tc.skipped)
			}
			warns := strings.Count(logBuf.String(), "level=WARN")
			if len(tc.skipped) == 0 {
				if warns != 0 {
					t.Errorf("warning for an in-order file: %s", logBuf.String())
				}
				return
			}
			want := "skipped=" + strconv.Itoa(len(tc.skipped)) + " first_line=" + strconv.Itoa(tc.firstLine)
			if warns != 1 || !strings.Contains(logBuf.String(), want) {
				t.Errorf("log %q: want one warning with %q", logBuf.String(), want)
			}
		})
	}
}

// The rows that are fed to the engine score exactly as if the skipped
// rows were not in the file at all.
func TestBacktestNABSkippedRowsDoNotReachTheEngine(t *testing.T) {
	start := time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC)
	vals := anomalyNoise(700, 100, 3, 22)
	vals[600] = 400
	clean := nabLines(start, 5*time.Minute, vals, nil)
	// The same file with three stray rows: a duplicate, a row an hour back
	// (with a wild value the detector must never see) and a repeat.
	lines := strings.SplitAfter(clean, "\n")
	dirty := append([]string{}, lines[:101]...)
	dirty = append(dirty, lines[100], "2020-03-01 07:00:00,99999\n")
	dirty = append(dirty, lines[101:501]...)
	dirty = append(dirty, lines[500])
	dirty = append(dirty, lines[501:]...)
	var a, b bytes.Buffer
	if err := BacktestNAB(strings.NewReader(clean), &a, BacktestOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := BacktestNAB(strings.NewReader(strings.Join(dirty, "")), &b, BacktestOptions{}); err != nil {
		t.Fatal(err)
	}
	ar, _ := csv.NewReader(&a).ReadAll()
	br, _ := csv.NewReader(&b).ReadAll()
	if len(br) != len(ar)+3 {
		t.Fatalf("%d rows, want %d", len(br), len(ar)+3)
	}
	var kept [][]string
	for i, r := range br {
		if i == 101 || i == 102 || i == 503 {
			continue
		}
		kept = append(kept, r)
	}
	for i := range ar {
		if strings.Join(ar[i], ",") != strings.Join(kept[i], ",") {
			t.Fatalf("row %d: %v with stray rows, %v without", i, kept[i], ar[i])
		}
	}
}

func seqInts(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
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
	f.Add([]byte("timestamp,value\n2014-10-26 01:50:00,3\n2014-10-26 01:55:00,4\n2014-10-26 01:00:00,5\n2014-10-26 02:00:00,6\n"))
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
		for i, r := range recs[1:] {
			s, err := strconv.ParseFloat(r[2], 64)
			if err != nil || s < 0 || s > 1 || (r[3] != "0" && r[3] != "1") {
				t.Fatalf("bad output row %v", r)
			}
			if rows[i].skip && (s != 0 || r[3] != "0") {
				t.Fatalf("skipped row %d scored %v", i, r)
			}
		}
	})
}

// A restart in the middle of a backtest replaces the engine as a daemon
// restart would: the alert that was firing goes on under its id (no
// second firing) and resolves once the storm is over.
func TestBacktestRestartKeepsOpenAlerts(t *testing.T) {
	cfg := engineTestConfig(t, `
  - name: neg
    kind: negative_ratio
    window: 1m
    min_volume: 10
    for: 20s
    levels: { yellow: 0.3, red: 0.6 }
`)
	var items []item.Item
	items = append(items, chats("1", 0, 2*time.Minute, 60, 0)...)             // calm
	items = append(items, chats("1", 2*time.Minute, time.Minute, 60, 48)...)  // storm
	items = append(items, chats("1", 3*time.Minute, 2*time.Minute, 60, 0)...) // calm again
	replay := func(fn func(item.Item) error) error {
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		return nil
	}
	restart := engineTestStart.Add(2*time.Minute + 45*time.Second)
	evs, err := Backtest(context.Background(), cfg, replay, restart)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, string(ev.State)+"/"+string(ev.Severity)+"@"+ev.At.Sub(engineTestStart).String()+" "+ev.AlertID)
	}
	if len(evs) != 3 || evs[1].State != Firing || evs[2].State != Resolved || evs[2].AlertID != evs[1].AlertID ||
		evs[1].At.After(restart) || !evs[2].At.After(restart) || evs[2].Seq != evs[1].Seq+1 {
		t.Errorf("events across the restart at 2m45s:\n%s\nwant pending, firing before it, and the same alert resolved after it", strings.Join(got, "\n"))
	}
}
