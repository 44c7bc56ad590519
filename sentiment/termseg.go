package sentiment

import (
	"bufio"
	"bytes"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"lookout/sentiment/model"
)

// sentTermExtractor finds hot terms with a dictionary-driven segmenter: an
// Aho–Corasick automaton over the segmentation dictionary embedded in
// sentiment/model (the top 50k words of gse's own, see sentiment/termsdict,
// plus the complaint terms) finds every dictionary word of a text in one
// pass, and the segmentation is the most probable route through them (the
// largest sum of log word frequencies: the rule of jieba and gse). Runs of
// Han characters that no dictionary word covers go through jieba's HMM
// (termhmm.go), which finds names and slang; letters and digits outside the
// dictionary form words; single characters are no terms. Stop words are
// removed and complaint compounds kept whole. Read-only after construction;
// safe for concurrent use.
type sentTermExtractor struct {
	ac    *acMatcher
	words []sentTermInfo // by dictionary pattern index
	logp  []float64      // words[i].logp, packed for the route search
	// unk is the log-probability of a character no dictionary word starts
	// with.
	unk  float64
	hmm  *sentHMM
	stop map[string]bool
	pool sync.Pool // *sentTermScratch
}

// sentTermInfo is what term selection needs to know of a dictionary word,
// worked out once when the dictionary is built.
type sentTermInfo struct {
	text  string
	logp  float64
	judge string // the judgement character of 慢, 太慢, 这么差; "" for others
	flags uint8
}

const (
	termSkip    uint8 = 1 << iota // stop word, noise or negator: never a term
	termNoMerge                   // stop word or negator: takes no judgement suffix
	termDegree                    // a degree word (太, 这么)
	termHanWord                   // all Han, two or more characters, no counter: a term
	termHan                       // all Han
)

// sentSeg is one segment of the normalised text: runes [start, end) and the
// dictionary pattern it is, or segOther (a character or word outside the
// dictionary) or segSep (spaces and punctuation).
type sentSeg struct {
	start, end int32
	pat        int32
	// text is set for a word the HMM found among characters outside the
	// dictionary.
	text string
}

const (
	segOther int32 = -1
	segSep   int32 = -2
)

type sentSegInfo struct {
	judge string
	flags uint8
}

type sentTermEdge struct {
	start, end int32
	pat        int32
}

type sentTermScratch struct {
	edges    []sentTermEdge
	hasStart []bool
	best     []float64
	back     []uint8 // HMM back pointers
	from     []int32
	bpat     []int32
	ends     []int32
	segs     []sentSeg
	rev      []sentSeg
	han      []sentSeg // a run of single Han characters on the route
	buf      []byte
	infos    []sentSegInfo // by segment
	// words interns the words the HMM found, so that a word seen before
	// costs no allocation; cleared when it reaches sentTermInternMax.
	words map[string]string
}

const sentTermInternMax = 4096

// internJoin returns w+j, from sc.words when it was seen before.
func (t *sentTermExtractor) internJoin(sc *sentTermScratch, w, j string) string {
	sc.buf = append(append(sc.buf[:0], w...), j...)
	return t.internBuf(sc)
}

// intern returns rs as a string, from sc.words when it was seen before.
func (t *sentTermExtractor) intern(sc *sentTermScratch, rs []rune) string {
	sc.buf = sc.buf[:0]
	for _, r := range rs {
		sc.buf = utf8.AppendRune(sc.buf, r)
	}
	return t.internBuf(sc)
}

func (t *sentTermExtractor) internBuf(sc *sentTermScratch) string {
	if w, ok := sc.words[string(sc.buf)]; ok {
		return w
	}
	if sc.words == nil || len(sc.words) >= sentTermInternMax {
		sc.words = make(map[string]string, 256)
	}
	w := string(sc.buf)
	sc.words[w] = w
	return w
}

// newTermExtractor builds the automaton over the embedded segmentation
// dictionary.
func newTermExtractor() (*sentTermExtractor, error) {
	dict, err := model.SegmentDict()
	if err != nil {
		return nil, errorf("load segmentation dictionary: %w", err)
	}
	t := &sentTermExtractor{stop: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(model.Stopwords()))
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			t.stop[l] = true
		}
	}
	var (
		patterns [][]rune
		freqs    []float64
		seen     = map[string]bool{}
		total    float64
	)
	line := 0
	for l := range strings.SplitSeq(dict, "\n") {
		line++
		if l == "" || l[0] == '#' {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 2 {
			return nil, errorf("segmentation dictionary line %d: want \"word freq pos\", got %q", line, l)
		}
		freq, err := strconv.ParseFloat(f[1], 64)
		if err != nil || freq <= 0 {
			return nil, errorf("segmentation dictionary line %d: frequency %q", line, f[1])
		}
		if seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		patterns = append(patterns, []rune(f[0]))
		freqs = append(freqs, freq)
		total += freq
	}
	// The complaint terms join with a high frequency so that segmentation
	// keeps them whole; a word the dictionary has keeps its frequency.
	for _, w := range sentComplaintTerms {
		if seen[w] {
			continue
		}
		seen[w] = true
		patterns = append(patterns, []rune(w))
		freqs = append(freqs, 100000)
		total += 100000
	}
	logT := math.Log(total)
	t.unk = -logT
	t.words = make([]sentTermInfo, len(patterns))
	for i, p := range patterns {
		w := string(p)
		t.words[i] = sentTermInfo{text: w, logp: math.Log(freqs[i]) - logT, flags: t.wordFlags(w, p)}
		if j, ok := sentTermJudgement(w); ok {
			t.words[i].judge = j
		}
	}
	t.logp = make([]float64, len(t.words))
	for i := range t.words {
		t.logp[i] = t.words[i].logp
	}
	t.ac = newACMatcher(patterns)
	t.pool.New = func() any { return new(sentTermScratch) }
	if t.hmm, err = newSentHMM(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *sentTermExtractor) wordFlags(w string, rs []rune) uint8 {
	var f uint8
	if t.stop[w] || sentTermNoise[w] || sentNegatorTerms[w] {
		f |= termSkip
	}
	if t.stop[w] || sentNegatorTerms[w] {
		f |= termNoMerge
	}
	for _, d := range sentTermDegrees {
		if w == d {
			f |= termDegree
		}
	}
	if sentAllHan(w) {
		f |= termHan
		if len(rs) >= 2 && !sentTermOrdinal(rs) {
			f |= termHanWord
		}
	}
	return f
}

// ExtractTerms appends the hot terms of text to dst (each once, in order of
// appearance) and returns it. The first call builds the dictionary
// automaton; later calls are safe for concurrent use.
func (c *Classifier) ExtractTerms(text string, dst []string) []string {
	s := c.pool.Get().(*sentScratch)
	s.fs.runes = c.feat.norm.normalize(s.fs.runes[:0], text)
	dst = c.termsFrom(s.fs.runes, dst)
	if cap(s.fs.runes) <= sentMaxPooledRunes {
		c.pool.Put(s)
	}
	return dst
}

// termsFrom appends the hot terms of normalised text rs to dst; it
// overwrites the tokens (emoji) of rs, which are no terms, with separators.
func (c *Classifier) termsFrom(rs []rune, dst []string) []string {
	c.termsOnce.Do(func() { c.termsExt, c.termsErr = newTermExtractor() })
	if c.termsErr != nil {
		return dst
	}
	for i, r := range rs {
		if r >= sentTokenBase && r <= sentTokenMax {
			rs[i] = ' '
		}
	}
	return c.termsExt.extract(rs, dst)
}

// segment fills sc.segs with the segmentation of rs.
func (t *sentTermExtractor) segment(sc *sentTermScratch, rs []rune) {
	n := len(rs)
	sc.edges = sc.edges[:0]
	sc.hasStart = sentGrow(sc.hasStart, n)
	clear(sc.hasStart)
	// Every dictionary word in rs, in order of its end.
	s := int32(0)
	for i, r := range rs {
		s = t.ac.step(s, r)
		m := s
		if t.ac.st[m].out < 0 {
			m = t.ac.st[m].dict
		}
		for m > 0 {
			st := &t.ac.st[m]
			start := int32(i+1) - st.depth
			sc.edges = append(sc.edges, sentTermEdge{start: start, end: int32(i + 1), pat: st.out})
			sc.hasStart[start] = true
			m = st.dict
		}
	}
	// The most probable route: best[j] is the best log-probability of rs[:j].
	sc.best = sentGrow(sc.best, n+1)
	sc.from = sentGrow(sc.from, n+1)
	sc.bpat = sentGrow(sc.bpat, n+1)
	sc.best[0] = 0
	ei := 0
	for j := 1; j <= n; j++ {
		b, from, pat := math.Inf(-1), int32(j-1), segOther
		if !sc.hasStart[j-1] {
			b = sc.best[j-1] + t.unk
		}
		for ; ei < len(sc.edges) && sc.edges[ei].end == int32(j); ei++ {
			e := sc.edges[ei]
			// Ties go to the longer word, as in gse.
			if v := sc.best[e.start] + t.logp[e.pat]; v > b || v == b && e.start < from {
				b, from, pat = v, e.start, e.pat
			}
		}
		sc.best[j], sc.from[j], sc.bpat[j] = b, from, pat
	}
	sc.rev = sc.rev[:0]
	for j := int32(n); j > 0; j = sc.from[j] {
		sc.rev = append(sc.rev, sentSeg{start: sc.from[j], end: j, pat: sc.bpat[j]})
	}
	// Forward order; characters outside the dictionary group into words of
	// letters and digits, and into separators.
	sc.segs = sc.segs[:0]
	sc.han = sc.han[:0]
	for i := len(sc.rev) - 1; i >= 0; i-- {
		sg := sc.rev[i]
		if sg.end-sg.start == 1 && sentIsHan(rs[sg.start]) {
			sc.han = append(sc.han, sg)
			continue
		}
		t.flushHan(sc, rs)
		if sg.pat >= 0 {
			sc.segs = append(sc.segs, sg)
			continue
		}
		r := rs[sg.start]
		kind := segOther
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '_' || r == '-':
			// Extend the previous letter/digit word.
			if k := len(sc.segs) - 1; k >= 0 && sc.segs[k].pat == segOther && sc.segs[k].end == sg.start &&
				!sentIsHan(rs[sc.segs[k].start]) {
				sc.segs[k].end = sg.end
				continue
			}
		default:
			kind = segSep
		}
		sc.segs = append(sc.segs, sentSeg{start: sg.start, end: sg.end, pat: kind})
	}
	t.flushHan(sc, rs)
}

// flushHan moves the pending run of single Han characters to sc.segs. A run
// of two or more that is not itself a dictionary word goes through the HMM
// (as in gse's segmenter), which finds the words the dictionary lacks (names,
// slang); those words are the only term strings built per message.
func (t *sentTermExtractor) flushHan(sc *sentTermScratch, rs []rune) {
	run := sc.han
	sc.han = sc.han[:0]
	if len(run) == 0 {
		return
	}
	a, b := run[0].start, run[len(run)-1].end
	if len(run) == 1 || t.ac.lookup(rs[a:b]) >= 0 {
		sc.segs = append(sc.segs, run...)
		return
	}
	sc.back = sentGrow(sc.back, 4*int(b-a))
	sc.ends = t.hmm.cut(rs[a:b], sc.back, sc.ends[:0])
	pos := int32(0)
	for _, end := range sc.ends {
		if end-pos == 1 {
			sc.segs = append(sc.segs, run[pos])
		} else {
			sg := sentSeg{start: a + pos, end: a + end, pat: segOther}
			if p := t.ac.lookup(rs[sg.start:sg.end]); p >= 0 {
				sg.pat = p
			} else {
				sg.text = t.intern(sc, rs[sg.start:sg.end])
			}
			sc.segs = append(sc.segs, sg)
		}
		pos = end
	}
}

func sentGrow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/2)
	}
	return s[:n]
}

// info describes segment sg as term selection sees it. Outside the
// dictionary: a single Han character (never a term, but may be a
// judgement), a word of letters and digits, or a separator.
func (t *sentTermExtractor) info(sg sentSeg, rs []rune) (judge string, flags uint8) {
	switch {
	case sg.pat >= 0:
		w := &t.words[sg.pat]
		return w.judge, w.flags
	case sg.pat == segSep:
		return "", termSkip | termNoMerge
	}
	if sg.text != "" {
		return t.hmmInfo(sg)
	}
	if sg.end-sg.start == 1 && sentIsHan(rs[sg.start]) {
		f := termHan | termSkip
		if i := strings.IndexRune(sentComplaintSuffixes, rs[sg.start]); i >= 0 {
			return sentComplaintSuffixes[i : i+utf8.RuneLen(rs[sg.start])], f
		}
		return "", f
	}
	return "", 0
}

// hmmInfo works out the flags of a word the HMM found.
func (t *sentTermExtractor) hmmInfo(sg sentSeg) (judge string, flags uint8) {
	var rs [8]rune
	n := 0
	for _, r := range sg.text {
		if n == len(rs) {
			break
		}
		rs[n] = r
		n++
	}
	flags = t.wordFlags(sg.text, rs[:n])
	judge, _ = sentTermJudgement(sg.text)
	return judge, flags
}

func (t *sentTermExtractor) extract(rs []rune, dst []string) []string {
	sc := t.pool.Get().(*sentTermScratch)
	defer t.pool.Put(sc)
	t.segment(sc, rs)
	start := len(dst)
	add := func(w string) {
		for _, d := range dst[start:] {
			if d == w {
				return
			}
		}
		dst = append(dst, w)
	}
	segs := sc.segs
	sc.infos = sentGrow(sc.infos, len(segs))
	infos := sc.infos
	for i, sg := range segs {
		infos[i].judge, infos[i].flags = t.info(sg, rs)
	}
	for i := 0; i < len(segs); i++ {
		sg := segs[i]
		fl := infos[i].flags
		// Merge word + (太)慢/差/… into one complaint term.
		if (sg.pat >= 0 || sg.text != "") && fl&termHan != 0 && sg.end-sg.start >= 2 && fl&termNoMerge == 0 && i+1 < len(segs) {
			w := sg.text
			if sg.pat >= 0 {
				w = t.words[sg.pat].text
			}
			if j := infos[i+1].judge; j != "" {
				add(t.internJoin(sc, w, j))
				i++
				continue
			}
			if infos[i+1].flags&termDegree != 0 && i+2 < len(segs) {
				if j := infos[i+2].judge; j != "" { // 物流 这么 慢
					add(t.internJoin(sc, w, j))
					i += 2
					continue
				}
			}
		}
		switch {
		case fl&termSkip != 0:
		case sg.pat >= 0:
			if fl&termHanWord != 0 {
				add(t.words[sg.pat].text)
			}
		case sg.text != "":
			if fl&termHanWord != 0 {
				add(sg.text)
			}
		case sg.pat == segOther && fl&termHan == 0:
			if sg.end-sg.start < 2 || sg.end-sg.start > 40 {
				continue
			}
			sc.buf = sc.buf[:0]
			letters := false
			for _, r := range rs[sg.start:sg.end] {
				sc.buf = utf8.AppendRune(sc.buf, r)
				letters = letters || unicode.IsLetter(r)
			}
			if !letters || t.stop[string(sc.buf)] || sentTermNoise[string(sc.buf)] {
				continue
			}
			add(t.internBuf(sc))
		}
	}
	return dst
}
