package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"lookout/item"
	"lookout/sentiment"
)

// scoreLines is `lookout sentiment score`: it reads one text per line from
// r and writes one JSON object per line to w:
// {"label","score","prob","lang","question","groups","terms"}. Empty lines
// are scored too (as neutral) so output lines match input lines.
func scoreLines(c *sentiment.Classifier, r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	type line struct {
		Label    string       `json:"label"`
		Score    float64      `json:"score"`
		Prob     float64      `json:"prob"`
		Lang     string       `json:"lang"`
		Question bool         `json:"question"`
		Groups   []item.Match `json:"groups"`
		Terms    []string     `json:"terms"`
	}
	var s item.Score
	for n := 1; sc.Scan(); n++ {
		c.ScoreInto(&s, strings.TrimSuffix(sc.Text(), "\r"))
		out := line{Label: s.Label.String(), Score: round4(s.Value), Prob: round4(s.Prob), Lang: s.Lang,
			Question: s.Question, Groups: s.Groups, Terms: s.Terms}
		if out.Groups == nil {
			out.Groups = []item.Match{}
		}
		if out.Terms == nil {
			out.Terms = []string{}
		}
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("write line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	return bw.Flush()
}

// round4 keeps four decimals for output people read.
func round4(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 4, 64), 64)
	return f
}
