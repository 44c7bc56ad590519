package sentiment

import (
	"math"
	"math/bits"
	"unicode"
)

// Lang is the detected language of a text.
type Lang uint8

const (
	LangOther Lang = iota
	LangZH
	LangEN
	LangMixed
)

func (l Lang) String() string {
	switch l {
	case LangZH:
		return "zh"
	case LangEN:
		return "en"
	case LangMixed:
		return "mixed"
	}
	return "other"
}

// Dense feature slots. The order is part of the model file format.
const (
	DenseLangOther = iota
	DenseLangZH
	DenseLangEN
	DenseLangMixed
	DenseZhPos      // saturated positive lexicon mass (Chinese lexicon), see sentSat
	DenseZhNeg      // saturated negative lexicon mass
	DenseEnPos      // same for the English (VADER) lexicon
	DenseEnNeg      //
	DenseTokPos     // positive emoji / emoticons
	DenseTokNeg     // negative emoji / emoticons
	DenseNet        // softsign of the net lexicon score
	DenseNegatedPos // positive words under negation (不好, not good)
	DenseNegatedNeg // negative words under negation (不差, not bad)
	DensePostNeg    // 好个屁, 才怪
	DenseNoLex      // no lexicon word, emoji or emoticon at all
	DenseLen        // saturated length in units
	DenseContrast   // a contrast word (但是, but) occurred
	NumDense
)

const (
	unitHan uint8 = iota + 1
	unitWord
	unitToken
	unitChar // kana, hangul and other single-character units
	unitSym  // punctuation, symbols, emoji without a token
)

type sentUnit struct {
	h     uint64
	start int32 // rune offset in the normalised text
	end   int32
	r     rune // the rune of a one-rune unit (Han, token, char, symbol)
	kind  uint8
	neg   bool // a word that opens a negation scope (not, never, don't); set by lexicon
}

type sentHit struct {
	start, end int32 // unit indexes [start, end)
	e          sentLexEntry
}

// FeatureScratch holds the buffers one extraction needs; reuse it (one per
// goroutine) to extract without allocating.
type FeatureScratch struct {
	runes []rune
	units []sentUnit
	hits  []sentHit
	// Idx are the hashed n-gram features (with repeats); each has the value
	// SparseScale.
	Idx         []uint32
	SparseScale float32
	Dense       [NumDense]float32
	Lang        Lang
	// Content is the number of units that carry meaning (Han characters,
	// words, emoticon tokens); 0 means there is no evidence at all.
	Content int
	// LexHits counts lexicon words, emoji and emoticons that fired.
	LexHits int
}

// Featurizer turns text into model features. Read-only after construction;
// safe for concurrent use with one FeatureScratch per goroutine. The training
// program uses the same Featurizer, so training and scoring cannot drift.
type Featurizer struct {
	norm *normaliser
	lex  *sentLexicon
	bits uint
}

// NewFeaturizer builds a featurizer from a lexicon file (see parseLexicon)
// with a hash space of 2^hashBits n-gram buckets.
func NewFeaturizer(lexicon []byte, hashBits uint) (*Featurizer, error) {
	if hashBits < 8 || hashBits > 26 {
		return nil, errorf("hash bits %d out of range 8..26", hashBits)
	}
	lx, err := parseLexicon(lexicon)
	if err != nil {
		return nil, err
	}
	return &Featurizer{norm: newNormaliser(), lex: lx, bits: hashBits}, nil
}

// HashBits is the size of the n-gram hash space in bits.
func (f *Featurizer) HashBits() uint { return f.bits }

// Normalize returns the normal form of text (for tests and tools).
func (f *Featurizer) Normalize(text string) string {
	return string(f.norm.normalize(nil, text))
}

func sentMix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func sentIsHan(r rune) bool {
	return r >= sentHanLo && r <= sentHanHi || r >= 0x3400 && r <= 0x4DBF || r >= 0x20000 && r <= 0x2FA1F || r >= 0xF900 && r <= 0xFAFF
}

func sentIsWordRune(r rune) bool {
	if r < 0x80 {
		return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z'
	}
	return r < 0x3000 && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// tokenize splits the normalised runes into units and detects the language.
func (f *Featurizer) tokenize(s *FeatureScratch) {
	rs := s.runes
	s.units = s.units[:0]
	han, latin, content := 0, 0, 0
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r >= sentHanLo && r <= sentHanHi || r != ' ' && sentIsHan(r):
			s.units = append(s.units, sentUnit{h: sentMix(uint64(r) | 1<<40), start: int32(i), end: int32(i + 1), r: r, kind: unitHan})
			han++
			content++
			i++
		case r == ' ':
			i++
		case r >= sentTokenBase && r <= sentTokenMax:
			s.units = append(s.units, sentUnit{h: sentMix(uint64(r) | 2<<40), start: int32(i), end: int32(i + 1), r: r, kind: unitToken})
			content++
			i++
		case sentIsWordRune(r):
			j := i
			h := uint64(sentFNVOffset)
			letters := 0
			for j < len(rs) && (sentIsWordRune(rs[j]) || rs[j] == '\'' && j+1 < len(rs) && j > i && sentIsWordRune(rs[j+1])) {
				if rs[j] < 0x80 && rs[j] >= 'a' && rs[j] <= 'z' {
					letters++
				}
				h = (h ^ uint64(rs[j])) * sentFNVPrime
				j++
			}
			latin += letters
			s.units = append(s.units, sentUnit{h: h, start: int32(i), end: int32(j), kind: unitWord})
			content++
			i = j
		case unicode.IsLetter(r):
			s.units = append(s.units, sentUnit{h: sentMix(uint64(r) | 3<<40), start: int32(i), end: int32(i + 1), r: r, kind: unitChar})
			content++
			i++
		default:
			s.units = append(s.units, sentUnit{h: sentMix(uint64(r) | 4<<40), start: int32(i), end: int32(i + 1), r: r, kind: unitSym})
			i++
		}
	}
	s.Content = content
	// Chinese words are about two characters, English ones about five
	// letters: compare in words.
	zh, en := float64(han)/2, float64(latin)/5
	switch {
	case han == 0 && latin == 0:
		s.Lang = LangOther
	case han == 0:
		s.Lang = LangEN
	case latin == 0:
		s.Lang = LangZH
	case math.Min(zh, en)/math.Max(zh, en) >= 0.25:
		s.Lang = LangMixed
	case zh > en:
		s.Lang = LangZH
	default:
		s.Lang = LangEN
	}
}

// Extract fills s.Idx, s.SparseScale, s.Dense, s.Lang, s.Content and
// s.LexHits for text.
func (f *Featurizer) Extract(s *FeatureScratch, text string) {
	s.runes = f.norm.normalize(s.runes[:0], text)
	f.tokenize(s)
	f.lexicon(s)
	f.ngrams(s, nil)
}

// extractSum is Extract for scoring: instead of listing the n-gram indexes
// in s.Idx (left empty) it sums their weights in ws as it hashes them, so
// the weight loads overlap the hashing instead of waiting for a second pass.
// The sum is an integer, so the result equals summing over s.Idx.
func (f *Featurizer) extractSum(s *FeatureScratch, text string, ws []int8) int64 {
	s.runes = f.norm.normalize(s.runes[:0], text)
	f.tokenize(s)
	f.lexicon(s)
	return f.ngrams(s, ws)
}

const (
	sentSaltBigram  = 0x5bd1e9955bd1e995
	sentSaltTrigram = 0x27d4eb2f165667c5
	sentSaltNegated = 0x85ebca6b0c2b2ae3
)

// ngrams hashes the unit 1–3-grams (after lexicon, which marks negators). With ws == nil it appends their indexes
// to s.Idx; otherwise (len(ws) must be 2^f.bits) it returns the sum of their
// weights and leaves s.Idx empty. Either way it sets s.SparseScale.
func (f *Featurizer) ngrams(s *FeatureScratch, ws []int8) int64 {
	s.Idx = s.Idx[:0]
	shift := 64 - f.bits
	mask := uint32(1)<<f.bits - 1
	if ws != nil && len(ws) != int(mask)+1 {
		panic("sentiment: weights do not match the featurizer's hash space")
	}
	u := s.units
	tri := s.Lang != LangEN
	negLeft := 0 // English words still under a negator's scope
	var acc int64
	n := 0
	var prev1, prev2 uint64
	for i := range u {
		h := u[i].h
		if u[i].kind == unitWord {
			if negLeft > 0 {
				h ^= sentSaltNegated
				negLeft--
			}
			if u[i].neg {
				negLeft = 3
			}
		} else if u[i].kind == unitSym {
			negLeft = 0
		}
		cur := u[i].h
		uni := uint32(sentMix(h) >> shift)
		if ws != nil {
			acc += int64(ws[uni&mask])
			n++
			if i >= 1 {
				acc += int64(ws[uint32(sentMix(prev1*31^cur^sentSaltBigram)>>shift)&mask])
				n++
				if tri && i >= 2 {
					acc += int64(ws[uint32(sentMix(prev2*961^prev1*31^cur^sentSaltTrigram)>>shift)&mask])
					n++
				}
			}
		} else {
			s.Idx = append(s.Idx, uni)
			if i >= 1 {
				s.Idx = append(s.Idx, uint32(sentMix(prev1*31^cur^sentSaltBigram)>>shift))
				if tri && i >= 2 {
					s.Idx = append(s.Idx, uint32(sentMix(prev2*961^prev1*31^cur^sentSaltTrigram)>>shift))
				}
			}
			n = len(s.Idx)
		}
		prev2, prev1 = prev1, cur
	}
	if n > 0 {
		s.SparseScale = float32(1 / math.Sqrt(float64(n)))
	} else {
		s.SparseScale = 0
	}
	return acc
}

func sentEndsNT(w []rune) bool {
	n := len(w)
	return n >= 3 && w[n-1] == 't' && w[n-2] == '\'' && w[n-3] == 'n'
}

// lexicon finds lexicon words, applies negation, degree, contrast and
// post-negation, and fills the dense features.
func (f *Featurizer) lexicon(s *FeatureScratch) {
	s.hits = s.hits[:0]
	u := s.units
	lx := f.lex
	skipTo := 0 // forward maximum matching: next unit a Chinese word may start at
	runEnd := 0 // end of the run of Han units that the current one is in
	for i := range u {
		switch u[i].kind {
		case unitHan:
			if i < skipTo {
				continue
			}
			r := u[i].r
			if r < sentHanLo || r > sentHanHi {
				continue
			}
			mask := lx.zhFirst[r-sentHanLo]
			if mask == 0 {
				continue
			}
			// Longest word starting here: extend over following Han units,
			// no further than the run of Han units and the longest word
			// starting with r (the highest bit of mask).
			if runEnd <= i {
				runEnd = i + 1
				for runEnd < len(u) && u[runEnd].kind == unitHan {
					runEnd++
				}
			}
			limit := bits.Len8(mask)
			if runEnd-i < limit {
				limit = runEnd - i
			}
			run := u[i : i+limit]
			h := uint64(sentFNVOffset)
			best, bestLen := int32(-1), 0
			for k := range run {
				h = sentZhHashStep(h, run[k].r)
				var m uint64 // sentMix(h), shared by the prefix filter and the table probe
				if k == 1 || k == 2 {
					m = sentMix(h)
					// Prefix filters (L1-resident) end most searches
					// before the word table is touched.
					pre := lx.zhPre2
					if k == 2 {
						pre = lx.zhPre3
					}
					if !sentBitTest(pre, m>>(64-sentPreBits)) {
						break
					}
				} else if mask&(1<<k) != 0 {
					m = sentMix(h)
				}
				if mask&(1<<k) != 0 {
					if idx := lx.zhFindMixed(m); idx >= 0 {
						best, bestLen = idx, k+1
					}
				}
			}
			if best >= 0 {
				s.hits = append(s.hits, sentHit{start: int32(i), end: int32(i + bestLen), e: lx.zhEntries[best]})
				skipTo = i + bestLen
			}
		case unitWord:
			if e, ok := lx.en[u[i].h]; ok {
				s.hits = append(s.hits, sentHit{start: int32(i), end: int32(i) + 1, e: e})
				u[i].neg = e.kind == LexNegator || sentEndsNT(s.runes[u[i].start:u[i].end])
			} else if sentEndsNT(s.runes[u[i].start:u[i].end]) {
				s.hits = append(s.hits, sentHit{start: int32(i), end: int32(i) + 1, e: sentLexEntry{kind: LexNegator, w: 1}})
				u[i].neg = true
			}
		case unitToken:
			if t, ok := f.norm.token(u[i].r); ok && t.polarity != 0 {
				s.hits = append(s.hits, sentHit{start: int32(i), end: int32(i) + 1, e: sentLexEntry{kind: LexSentiment, w: 2 * t.polarity}})
			}
		}
	}

	var (
		sums        [3][2]float64 // [zh, en, token][pos, neg] before the last contrast word
		after       [3][2]float64 // … and after it (or all, without contrast)
		contrastEnd int32         = -1
		negPos      int32         = -1000
		negCount    int
		degPos      int32 = -1000
		degW        float32
		lastSent    = -1 // index in hits of the last sentiment word
		negatedPos  float32
		negatedNeg  float32
		postNeg     float32
	)
	for hi := range s.hits {
		h := &s.hits[hi]
		switch h.e.kind {
		case LexNegator:
			if h.start-negPos <= 1 {
				negCount++
			} else {
				negCount = 1
			}
			negPos = h.end
		case LexDegree:
			degPos, degW = h.end, h.e.w
		case LexContrast:
			contrastEnd = h.end
		case LexPostNeg:
			postNeg++
			if lastSent >= 0 && h.start-s.hits[lastSent].end <= 1 {
				if p := &s.hits[lastSent]; p.e.w > 0 {
					p.e.w = -p.e.w
				}
			}
		case LexSentiment:
			w := h.e.w
			if h.start-degPos >= 0 && h.start-degPos <= 1 && !f.symBetween(s, degPos, h.start) {
				w *= degW
			}
			if negCount%2 == 1 && h.start-negPos >= 0 && h.start-negPos <= 3 && !f.symBetween(s, negPos, h.start) {
				if w > 0 {
					negatedPos++
				} else {
					negatedNeg++
				}
				w = -0.75 * w
			}
			h.e.w = w
			lastSent = hi
		}
	}
	contrast := contrastEnd >= 0
	lexHits := 0
	for hi := range s.hits {
		h := &s.hits[hi]
		if h.e.kind != LexSentiment {
			continue
		}
		lexHits++
		src := 0
		switch u[h.start].kind {
		case unitWord:
			src = 1
		case unitToken:
			src = 2
		}
		pn := 0
		w := float64(h.e.w)
		if w < 0 {
			pn, w = 1, -w
		}
		if h.start < contrastEnd {
			sums[src][pn] += w
		} else {
			after[src][pn] += w
		}
	}
	var tot [3][2]float64
	net := 0.0
	for a := range tot {
		for b := range tot[a] {
			if contrast {
				tot[a][b] = 0.5*sums[a][b] + 1.5*after[a][b]
			} else {
				tot[a][b] = sums[a][b] + after[a][b]
			}
		}
		net += tot[a][0] - tot[a][1]
	}
	d := &s.Dense
	*d = [NumDense]float32{}
	d[DenseLangOther+int(s.Lang)] = 1
	d[DenseZhPos] = sentSat(tot[0][0])
	d[DenseZhNeg] = sentSat(tot[0][1])
	d[DenseEnPos] = sentSat(tot[1][0])
	d[DenseEnNeg] = sentSat(tot[1][1])
	d[DenseTokPos] = sentSat(tot[2][0])
	d[DenseTokNeg] = sentSat(tot[2][1])
	h := net / 2
	if h < 0 {
		d[DenseNet] = float32(h / (1 - h))
	} else {
		d[DenseNet] = float32(h / (1 + h))
	}
	d[DenseNegatedPos] = sentSat(float64(negatedPos))
	d[DenseNegatedNeg] = sentSat(float64(negatedNeg))
	d[DensePostNeg] = sentSat(float64(postNeg))
	if lexHits == 0 {
		d[DenseNoLex] = 1
	}
	d[DenseLen] = sentSat(float64(len(u))/16) / 4
	if contrast {
		d[DenseContrast] = 1
	}
	s.LexHits = lexHits
}

// sentSat is a cheap saturating transform of a non-negative mass (shaped
// like log1p, bounded by 4): x/(1+x/4). Division only, no transcendental
// functions on the per-message path.
func sentSat(x float64) float32 { return float32(x / (1 + x/4)) }

// symBetween reports whether a punctuation or symbol unit lies in [from, to).
func (f *Featurizer) symBetween(s *FeatureScratch, from, to int32) bool {
	if from < 0 {
		from = 0
	}
	for i := from; i < to && int(i) < len(s.units); i++ {
		if s.units[i].kind == unitSym {
			return true
		}
	}
	return false
}
