// Command lookoutscore is the Go side of bench/compare.js: it scores the same
// labelled files as the npm packages, on one core, and prints one JSON object
// per file (accuracy counting neutral as wrong, and messages per second).
//
//	go run ./bench/lookoutscore -threshold 0.5 FILE...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"lookout/item"
	"lookout/sentiment"
)

type result struct {
	File        string  `json:"file"`
	N           int     `json:"n"`
	Accuracy    float64 `json:"accuracy"`
	MacroF1     float64 `json:"macro_f1"`
	NeutralRate float64 `json:"neutral_rate"`
	MsgsPerSec  float64 `json:"msgs_per_s"`
}

func main() {
	threshold := flag.Float64("threshold", 0, "neutral threshold (0: the classifier's default)")
	minTime := flag.Duration("min-time", time.Second, "minimum timed scoring per file")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	c, err := sentiment.New(sentiment.Options{NeutralThreshold: *threshold})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lookoutscore:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, path := range flag.Args() {
		exs, err := sentiment.ReadEvalFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lookoutscore:", err)
			os.Exit(1)
		}
		ev := sentiment.Evaluate(c, filepath.Base(path), exs)
		var s item.Score
		n := 0
		start := time.Now()
		for time.Since(start) < *minTime {
			for _, e := range exs {
				c.ScoreInto(&s, e.Text)
			}
			n += len(exs)
		}
		el := time.Since(start)
		enc.Encode(result{File: ev.File, N: ev.N, Accuracy: ev.Accuracy, MacroF1: ev.MacroF1, NeutralRate: ev.NeutralRate,
			MsgsPerSec: float64(n) / el.Seconds()})
	}
}
