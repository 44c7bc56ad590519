package sentiment

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"lookout/sentiment/model"
)

// sentHMM finds words among characters outside the segmentation dictionary
// with jieba's four-state character HMM (B begins a word, M is inside one, E
// ends one, S is a word alone), decoded by Viterbi: the model and the
// decoding rules (ties, the final state E or S) of gse's hmm package, without
// its per-character maps and allocations. Read-only after construction.
type sentHMM struct {
	// dense holds the emission log-probabilities of the CJK Unified
	// Ideographs (index r-sentHanLo), other holds the rest.
	dense []sentHMMEmit
	other map[rune]sentHMMEmit
}

// States in the order of sentHMMEmit.
const (
	hmmB = iota
	hmmE
	hmmM
	hmmS
)

type sentHMMEmit [4]float64

// sentHMMMin is jieba's log-probability of the impossible.
const sentHMMMin = -3.14e100

var (
	sentHMMStart = [4]float64{hmmB: -0.26268660809250016, hmmE: sentHMMMin, hmmM: sentHMMMin, hmmS: -1.4652633398537678}
	// sentHMMTrans[from][to]; missing transitions are impossible.
	sentHMMTrans = [4][4]float64{
		hmmB: {hmmB: sentHMMMin, hmmE: -0.510825623765990, hmmM: -0.916290731874155, hmmS: sentHMMMin},
		hmmE: {hmmB: -0.5897149736854513, hmmE: sentHMMMin, hmmM: sentHMMMin, hmmS: -0.8085250474669937},
		hmmM: {hmmB: sentHMMMin, hmmE: -0.33344856811948514, hmmM: -1.2603623820268226, hmmS: sentHMMMin},
		hmmS: {hmmB: -0.7211965654669841, hmmE: sentHMMMin, hmmM: sentHMMMin, hmmS: -0.6658631448798212},
	}
	// sentHMMPrev lists the states that may precede each state, in the
	// order gse sorts them on a tie (the larger state letter wins).
	sentHMMPrev = [4][2]int{hmmB: {hmmE, hmmS}, hmmM: {hmmM, hmmB}, hmmS: {hmmS, hmmE}, hmmE: {hmmB, hmmM}}
	// sentHMMLetter is each state's letter; gse breaks ties by it.
	sentHMMLetter = [4]byte{'B', 'E', 'M', 'S'}
)

func newSentHMM() (*sentHMM, error) {
	text, err := model.HMMEmit()
	if err != nil {
		return nil, errorf("load HMM emission table: %w", err)
	}
	none := sentHMMEmit{sentHMMMin, sentHMMMin, sentHMMMin, sentHMMMin}
	h := &sentHMM{dense: make([]sentHMMEmit, sentHanHi-sentHanLo+1), other: map[rune]sentHMMEmit{}}
	for i := range h.dense {
		h.dense[i] = none
	}
	line := 0
	for l := range strings.SplitSeq(text, "\n") {
		line++
		if l == "" || l[0] == '#' {
			continue
		}
		f := strings.Fields(l)
		r, size := utf8.DecodeRuneInString(l)
		if len(f) != 5 || size != len(f[0]) || r == utf8.RuneError {
			return nil, errorf("HMM emission table line %d: want \"char B E M S\", got %q", line, l)
		}
		e := none
		for s := range 4 {
			if f[s+1] == "x" {
				continue
			}
			v, err := strconv.ParseFloat(f[s+1], 64)
			if err != nil {
				return nil, errorf("HMM emission table line %d: %w", line, err)
			}
			e[s] = v
		}
		if r >= sentHanLo && r <= sentHanHi {
			h.dense[r-sentHanLo] = e
		} else {
			h.other[r] = e
		}
	}
	return h, nil
}

func (h *sentHMM) emit(r rune) sentHMMEmit {
	if r >= sentHanLo && r <= sentHanHi {
		return h.dense[r-sentHanLo]
	}
	if e, ok := h.other[r]; ok {
		return e
	}
	return sentHMMEmit{sentHMMMin, sentHMMMin, sentHMMMin, sentHMMMin}
}

// better reports whether (p, s) beats (bp, bs) under gse's order: the larger
// probability, and on a tie the larger state letter.
func sentHMMBetter(p float64, s int, bp float64, bs int) bool {
	return p > bp || p == bp && sentHMMLetter[s] > sentHMMLetter[bs]
}

// cut appends to ends the end offset (in runes, relative to rs) of each word
// of rs and returns it, as gse's hmm.Cut does for a run of Han characters.
// back is scratch space of at least 4*len(rs) bytes.
func (h *sentHMM) cut(rs []rune, back []uint8, ends []int32) []int32 {
	n := len(rs)
	if n == 0 {
		return ends
	}
	var v [4]float64
	e := h.emit(rs[0])
	for s := range 4 {
		v[s] = sentHMMStart[s] + e[s]
	}
	for t := 1; t < n; t++ {
		e := h.emit(rs[t])
		var nv [4]float64
		for s := range 4 {
			p0, p1 := sentHMMPrev[s][0], sentHMMPrev[s][1]
			a := v[p0] + sentHMMTrans[p0][s] + e[s]
			b := v[p1] + sentHMMTrans[p1][s] + e[s]
			if sentHMMBetter(b, p1, a, p0) {
				nv[s], back[t*4+s] = b, uint8(p1)
			} else {
				nv[s], back[t*4+s] = a, uint8(p0)
			}
		}
		v = nv
	}
	last := hmmE
	if sentHMMBetter(v[hmmS], hmmS, v[hmmE], hmmE) {
		last = hmmS
	}
	// Walk the states back into back[0..n) (reusing the first column).
	state := uint8(last)
	for t := n - 1; t >= 0; t-- {
		prev := back[t*4+int(state)]
		back[t*4] = state
		state = prev
	}
	next := 0
	for t := 0; t < n; t++ {
		switch back[t*4] {
		case hmmE, hmmS:
			ends = append(ends, int32(t+1))
			next = t + 1
		}
	}
	if next < n {
		ends = append(ends, int32(n))
	}
	return ends
}
