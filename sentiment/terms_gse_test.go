package sentiment

import (
	"bufio"
	"bytes"
	"slices"
	"strings"

	"github.com/go-ego/gse"

	"lookout/sentiment/model"
)

// gseTermRef is the reference the dictionary-driven extractor is compared
// with: gse's segmenter (DAG route plus HMM for unknown words) over the same
// embedded dictionary and complaint terms, followed by the same selection
// rules (stop words, noise, negators, counters, judgement merging).
type gseTermRef struct {
	seg  gse.Segmenter
	stop map[string]bool
}

func newGseTermRef() (*gseTermRef, error) {
	t := &gseTermRef{stop: map[string]bool{}}
	t.seg.SkipLog = true
	dict, err := model.SegmentDict()
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(dict, "#") {
		if i := strings.IndexByte(dict, '\n'); i >= 0 {
			dict = dict[i+1:]
		}
	}
	if err := t.seg.LoadDictStr(dict); err != nil {
		return nil, err
	}
	for _, w := range sentComplaintTerms {
		if err := t.seg.AddToken(w, 100000, "n"); err != nil {
			return nil, err
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(model.Stopwords()))
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			t.stop[l] = true
		}
	}
	return t, nil
}

// terms normalises text as ExtractTerms does and applies the selection rules
// to gse's segmentation.
func (t *gseTermRef) terms(c *Classifier, text string, dst []string) []string {
	rs := c.feat.norm.normalize(nil, text)
	for i, r := range rs {
		if r >= sentTokenBase && r <= sentTokenMax {
			rs[i] = ' '
		}
	}
	norm := string(rs)
	start := len(dst)
	words := t.seg.Cut(norm, true)
	add := func(w string) {
		for _, d := range dst[start:] {
			if d == w {
				return
			}
		}
		dst = append(dst, w)
	}
	for i := 0; i < len(words); i++ {
		w := strings.TrimSpace(words[i])
		if w == "" {
			continue
		}
		rs := []rune(w)
		han := sentAllHan(w)
		if han && len(rs) >= 2 && i+1 < len(words) && !t.stop[w] && !sentNegatorTerms[w] {
			if j, ok := sentTermJudgement(words[i+1]); ok {
				add(w + j)
				i++
				continue
			}
			if i+2 < len(words) && slices.Contains(sentTermDegrees, words[i+1]) {
				if j, ok := sentTermJudgement(words[i+2]); ok {
					add(w + j)
					i += 2
					continue
				}
			}
		}
		if t.stop[w] || sentTermNoise[w] || sentNegatorTerms[w] {
			continue
		}
		switch {
		case han:
			if len(rs) < 2 || sentTermOrdinal(rs) {
				continue
			}
			add(w)
		case sentTermWord(rs):
			add(w)
		}
	}
	return dst
}
