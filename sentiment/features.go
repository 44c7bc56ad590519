package sentiment

import (
	"math"
	"math/bits"
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
	DenseQuestion   // the text asks something (吗, 什么时候, 有没有, when…, ?), see question
	// The mined lexicon's evidence (see MinedLexicon, minedFeatures); 0
	// without one. Models of the LKSENT04 format have only the slots above.
	DenseMinedPos     // saturated positive mined polarity outside negation
	DenseMinedNeg     // saturated negative mined polarity outside negation
	DenseMinedNet     // softsign of the net mined polarity
	DenseMinedMean    // softsign of the net mined polarity per n-gram
	DenseMinedNegated // softsign of the net mined polarity under negation
	NumDense
)

// numDenseV4 is the dense feature count of the LKSENT04 format (no mined
// lexicon).
const numDenseV4 = DenseMinedPos

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
	// hint, when hinted, replaces the detected language (the platform
	// said which language the text is in).
	hint   Lang
	hinted bool
	runes  []rune
	units  []sentUnit
	negs   int // English words marked as negators (u.neg), set by lexicon
	hits   []sentHit
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
	norm  *normaliser
	lex   *sentLexicon
	bits  uint
	mined *MinedLexicon // nil: no mined-lexicon features
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

// sentRuneHash is the hash of a one-rune unit of the given kind: one
// multiply (its top bits index the weights, so they must be well mixed).
func sentRuneHash(r rune, kind uint64) uint64 {
	return sentMum(uint64(r)|kind<<40^0x4f1bbcdcbfa53e0b, 0x9fb21c651e98df25)
}

func sentIsHan(r rune) bool {
	return r >= sentHanLo && r <= sentHanHi || r >= 0x3400 && r <= 0x4DBF || r >= 0x20000 && r <= 0x2FA1F || r >= 0xF900 && r <= 0xFAFF
}

// isWordRune: letters and digits below U+3000 (Latin, Greek, Cyrillic …)
// make words.
func (n *normaliser) isWordRune(r rune) bool {
	if r < 0x80 {
		return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z'
	}
	return r < 0x3000 && n.class[r]&(sentClsLetter|sentClsDigit) != 0
}

// tokenize splits the normalised runes into units and detects the language.
// Units are written field by field into a slice sized once for the text (a
// unit per rune at most): appending composite literals made Go copy each
// one through the stack, and the 16-byte reloads of the just-stored fields
// stalled on store forwarding, once per character.
func (f *Featurizer) tokenize(s *FeatureScratch) {
	rs := s.runes
	nm := f.norm
	if cap(s.units) < len(rs) {
		s.units = make([]sentUnit, len(rs))
	}
	units := s.units[:len(rs)]
	n := 0
	han, latin, content := 0, 0, 0
	for i := 0; i < len(rs); {
		r := rs[i]
		if uint32(r-sentHanLo) <= sentHanHi-sentHanLo && n < len(units) {
			// Fast path for the common ideographs (no other test applies).
			u := &units[n]
			u.h, u.start, u.end, u.r, u.kind, u.neg = sentRuneHash(r, 1), int32(i), int32(i+1), r, unitHan, false
			n++
			han++
			i++
			continue
		}
		var h uint64
		var kind uint8
		end := i + 1
		switch {
		case r != ' ' && sentIsHan(r):
			h, kind = sentRuneHash(r, 1), unitHan
			han++
		case r == ' ':
			i++
			continue
		case r >= sentTokenBase && r <= sentTokenMax:
			h, kind = sentRuneHash(r, 2), unitToken
			content++
		case nm.isWordRune(r):
			j := i
			h = uint64(sentFNVOffset)
			letters := 0
			for j < len(rs) && (nm.isWordRune(rs[j]) || rs[j] == '\'' && j+1 < len(rs) && j > i && nm.isWordRune(rs[j+1])) {
				if rs[j] < 0x80 && rs[j] >= 'a' && rs[j] <= 'z' {
					letters++
				}
				h = (h ^ uint64(rs[j])) * sentFNVPrime
				j++
			}
			latin += letters
			kind, r, end = unitWord, 0, j
			content++
		case r >= 0 && nm.has(r, sentClsLetter):
			h, kind = sentRuneHash(r, 3), unitChar
			content++
		default:
			h, kind = sentRuneHash(r, 4), unitSym
		}
		u := &units[n]
		u.h, u.start, u.end, u.r, u.kind, u.neg = h, int32(i), int32(end), r, kind, false
		n++
		i = end
	}
	s.units = units[:n]
	s.Content = content + han
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
// The sums are integers, so the result equals summing over s.Idx.
func (f *Featurizer) extractSum(s *FeatureScratch, text string, ws []uint16) sentHeadSums {
	s.runes = f.norm.normalize(s.runes[:0], text)
	f.tokenize(s)
	if s.hinted {
		s.Lang = s.hint
	}
	f.lexicon(s)
	return f.ngrams(s, ws)
}

// N-gram index hashing: one 64×64→128-bit multiply per n-gram, folded
// (hi^lo, as in wyhash), over unit hashes that are already well mixed. The
// salts keep unigrams, bigrams, trigrams and negated words apart. Changing
// any of this changes the features: the model must be retrained.
const (
	sentSaltUnigram = 0xa0761d6478bd642f
	sentSaltBigram  = 0xe7037ed1a0b428db
	sentSaltTrigram = 0x8ebc6af09c88c6e3
	sentSaltNegated = 0x589965cc75374cc3
	sentSaltFold    = 0x1d8e4e27c47d124f
)

// sentMum is the wyhash mixing step: multiply, fold the 128-bit product.
func sentMum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// ngrams hashes the unit 1–3-grams (after lexicon, which marks negators).
// With ws == nil it appends their indexes to s.Idx; otherwise (len(ws) must
// be 2^f.bits) it returns the sums of their weights per head and leaves
// s.Idx empty. Either way it sets s.SparseScale.
func (f *Featurizer) ngrams(s *FeatureScratch, ws []uint16) sentHeadSums {
	s.Idx = s.Idx[:0]
	shift := 64 - f.bits
	if ws != nil && len(ws) != 1<<f.bits {
		panic("sentiment: weights do not match the featurizer's hash space")
	}
	u := s.units
	tri := s.Lang != LangEN
	var n int
	var acc sentHeadSums
	switch {
	case ws != nil && s.negs == 0:
		acc, n = sentNgramSumNoNeg(u, ws, shift, tri)
	case ws != nil:
		acc, n = sentNgramSum(u, ws, shift, tri)
	default:
		s.Idx = sentNgramIdx(u, s.Idx, shift, tri)
		n = len(s.Idx)
	}
	if n > 0 {
		s.SparseScale = float32(1 / math.Sqrt(float64(n)))
	} else {
		s.SparseScale = 0
	}
	return acc
}

// sentUnigram returns the unigram hash of u (salted when u is an English word
// in a negation scope) and advances the scope *negLeft.
func sentUnigram(u *sentUnit, negLeft *int) uint64 {
	h := u.h
	if u.kind == unitWord {
		if *negLeft > 0 {
			h ^= sentSaltNegated
			*negLeft--
		}
		if u.neg {
			*negLeft = 3
		}
	} else if u.kind == unitSym {
		*negLeft = 0
	}
	return sentMum(h^sentSaltUnigram, sentSaltFold)
}

// sentTrigramIndex places the trigram (prev2, prev1, cur) in the same 64-byte
// line of the weight table as its suffix bigram (prev1, cur), at an offset
// from its own hash: the weight load after the bigram's then hits the line
// the bigram's brought in, one cache miss per character instead of two. The
// price: trigrams that end in the same frequent bigram compete for its 32
// slots. On the held-out tenth of the training data this cost 0.2 points of
// accuracy (0.943 → 0.941, measured on the two-class model with 64 slots
// per line); no dev file was consulted.
func sentTrigramIndex(bi, prev2 uint64, shift uint) uint64 {
	t := sentMum(prev2^sentSaltTrigram, bi)
	return (bi>>(shift&63))&^(sentWeightLine-1) | t>>(64-sentWeightLineBits)
}

const (
	sentWeightLineBits = 5
	sentWeightLine     = 1 << sentWeightLineBits // paired int8 weights (uint16) per 64-byte cache line
)

// sentNgramSum sums the weights of the n-grams of u per head (paired int8
// weights; the sums are exact) and counts them. The loads are independent of each other, so the
// CPU overlaps their cache misses. shift is 64 - log2(len(ws)), so every
// index is in range.
func sentNgramSum(u []sentUnit, ws []uint16, shift uint, tri bool) (sentHeadSums, int) {
	var a0, a1 int64
	negLeft := 0
	var prev1, prev2 uint64
	for i := range u {
		cur := u[i].h
		v := ws[sentUnigram(&u[i], &negLeft)>>shift]
		a0, a1 = a0+int64(int8(v)), a1+int64(int8(v>>8))
		if i >= 1 {
			bi := sentMum(prev1^sentSaltBigram, cur)
			v = ws[bi>>shift]
			a0, a1 = a0+int64(int8(v)), a1+int64(int8(v>>8))
			if tri && i >= 2 {
				v = ws[sentTrigramIndex(bi, prev2, shift)]
				a0, a1 = a0+int64(int8(v)), a1+int64(int8(v>>8))
			}
		}
		prev2, prev1 = prev1, cur
	}
	acc := sentHeadSums{a0, a1}
	n := 2*len(u) - 1
	if tri && len(u) >= 2 {
		n += len(u) - 2
	}
	return acc, max(n, 0)
}

// sentNgramSumNoNeg is sentNgramSum for texts without an English negator
// (nearly all Chinese ones): no negation scope ever opens, so no per-unit
// kind tests, and the loop is split so that its body has no branches.
func sentNgramSumNoNeg(u []sentUnit, ws []uint16, shift uint, tri bool) (sentHeadSums, int) {
	shift &= 63 // (shift < 64 already; saying so spares a check per shift)
	if len(u) == 0 {
		return sentHeadSums{}, 0
	}
	prev1 := u[0].h
	v := ws[sentMum(prev1^sentSaltUnigram, sentSaltFold)>>shift]
	a0, a1 := int64(int8(v)), int64(int8(v>>8))
	if len(u) == 1 {
		return sentHeadSums{a0, a1}, 1
	}
	cur := u[1].h
	bi := sentMum(prev1^sentSaltBigram, cur)
	v, w := ws[sentMum(cur^sentSaltUnigram, sentSaltFold)>>shift], ws[bi>>shift]
	a0 += int64(int8(v)) + int64(int8(w))
	a1 += int64(int8(v>>8)) + int64(int8(w>>8))
	prev2, prev1 := prev1, cur
	rest := u[2:]
	if !tri {
		for i := range rest {
			cur := rest[i].h
			bi := sentMum(prev1^sentSaltBigram, cur)
			v, w := ws[sentMum(cur^sentSaltUnigram, sentSaltFold)>>shift], ws[bi>>shift]
			a0 += int64(int8(v)) + int64(int8(w))
			a1 += int64(int8(v>>8)) + int64(int8(w>>8))
			prev1 = cur
		}
		return sentHeadSums{a0, a1}, 2*len(u) - 1
	}
	for i := range rest {
		cur := rest[i].h
		bi := sentMum(prev1^sentSaltBigram, cur)
		v, w, t := ws[sentMum(cur^sentSaltUnigram, sentSaltFold)>>shift], ws[bi>>shift], ws[sentTrigramIndex(bi, prev2, shift)]
		a0 += int64(int8(v)) + int64(int8(w)) + int64(int8(t))
		a1 += int64(int8(v>>8)) + int64(int8(w>>8)) + int64(int8(t>>8))
		prev2, prev1 = prev1, cur
	}
	return sentHeadSums{a0, a1}, 3*len(u) - 3
}

// sentNgramIdx appends the n-gram indexes of u in the same order and with
// the same hashes as sentNgramSum sums them (training uses this one).
func sentNgramIdx(u []sentUnit, idx []uint32, shift uint, tri bool) []uint32 {
	negLeft := 0
	var prev1, prev2 uint64
	for i := range u {
		cur := u[i].h
		idx = append(idx, uint32(sentUnigram(&u[i], &negLeft)>>shift))
		if i >= 1 {
			bi := sentMum(prev1^sentSaltBigram, cur)
			idx = append(idx, uint32(bi>>shift))
			if tri && i >= 2 {
				idx = append(idx, uint32(sentTrigramIndex(bi, prev2, shift)))
			}
		}
		prev2, prev1 = prev1, cur
	}
	return idx
}

// zhLonger finds the longest word of three or more characters at the
// start of u (whose first two units are Han), given the pair slot's length
// bits; it returns the entry index and length, or -1.
func (lx *sentLexicon) zhLonger(u []sentUnit, lens uint32) (int, int) {
	best, bestLen := -1, 0
	h := sentZhHashStep(sentZhHashStep(sentFNVOffset, u[0].r), u[1].r)
	for k := 2; k < len(u) && lens>>(k-2) != 0 && u[k].kind == unitHan; k++ {
		h = sentZhHashStep(h, u[k].r)
		m := sentMix(h)
		if lens&(1<<(k-2)) != 0 {
			if e := lx.zhWord(m); e >= 0 {
				best, bestLen = e, k+1
			}
		}
		if k == 2 {
			if lens>>1 == 0 || !sentBitTest(lx.zhPre3[:], m>>(64-sentPreBits)) {
				break
			}
		}
	}
	return best, bestLen
}

// addHit appends a lexicon hit, field by field (see tokenize).
func (s *FeatureScratch) addHit(start, end int32, e sentLexEntry) {
	n := len(s.hits)
	if n < cap(s.hits) {
		s.hits = s.hits[:n+1]
	} else {
		s.hits = append(s.hits, sentHit{})
	}
	h := &s.hits[n]
	h.start, h.end, h.e = start, end, e
}

func sentEndsNT(w []rune) bool {
	n := len(w)
	return n >= 3 && w[n-1] == 't' && w[n-2] == '\'' && w[n-3] == 'n'
}

// lexicon finds lexicon words, applies negation, degree, contrast and
// post-negation, and fills the dense features.
func (f *Featurizer) lexicon(s *FeatureScratch) {
	f.lexMatch(s)
	f.lexScore(s)
	if sentIsQuestion(s) {
		s.Dense[DenseQuestion] = 1
	}
	if f.mined != nil {
		f.minedFeatures(s)
	}
}

// sentQuestionWords are the English words that open a question.
var sentQuestionWords = func() (hs [18]uint64) {
	for i, w := range []string{"what", "when", "where", "how", "why", "which", "who", "is", "are", "does",
		"do", "did", "can", "could", "will", "would", "any", "anyone"} {
		h := uint64(sentFNVOffset)
		for _, r := range w {
			h = (h ^ uint64(r)) * sentFNVPrime
		}
		hs[i] = h
	}
	return hs
}()

// sentIsQuestion reports whether a text asks something: a question mark, a
// final 吗 or 呢, a Chinese interrogative (什么, 怎么, 多少, 哪, 几 before
// another character), the A-not-A form (有没有, 能不能, 是不是), or an
// English text opening with a question word. It says nothing about whether
// the question complains (为什么还不发货); the n-grams judge that.
func sentIsQuestion(s *FeatureScratch) bool {
	u := s.units
	lastHan := rune(0)
	for i := range u {
		switch u[i].kind {
		case unitSym:
			if u[i].r == '?' || u[i].r == '？' {
				return true
			}
		case unitHan:
			r := u[i].r
			lastHan = r
			if r == '哪' {
				return true
			}
			if i+1 >= len(u) || u[i+1].kind != unitHan {
				continue
			}
			next := u[i+1].r
			switch {
			case r == '什' && next == '么', r == '怎' && (next == '么' || next == '样'), r == '多' && next == '少',
				r == '几' && next != '乎':
				return true
			case (next == '不' || next == '没') && i+2 < len(u) && u[i+2].kind == unitHan && u[i+2].r == r:
				return true
			}
		}
	}
	if lastHan == '吗' || lastHan == '呢' {
		return true
	}
	if len(u) > 0 && u[0].kind == unitWord {
		for _, h := range sentQuestionWords {
			if u[0].h == h {
				return true
			}
		}
	}
	return false
}

// lexMatch finds the lexicon words (Chinese by forward maximum matching),
// emoji and emoticons, in order, into s.hits, and marks English negators
// (counted in s.negs: without one, ngrams takes its no-negation path).
func (f *Featurizer) lexMatch(s *FeatureScratch) {
	s.hits = s.hits[:0]
	s.negs = 0
	u := s.units
	lx := f.lex
	skipTo := 0 // forward maximum matching: next unit a Chinese word may start at
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
			best, bestLen := -1, 0
			if i+1 < len(u) && u[i+1].kind == unitHan {
				var pair uint32
				if ph := sentZhPairHash(r, u[i+1].r); sentBitTest(lx.zhPairBit[:], sentPairBit(ph)) {
					pair = lx.zhPairProbe(ph)
				}
				if e := int(pair>>sentPairEntryShift&sentEntryMask) - 1; e >= 0 {
					best, bestLen = e, 2
				}
				if lens := pair & sentLenMask; lens != 0 {
					if e, n := lx.zhLonger(u[i:], lens); e >= 0 {
						best, bestLen = e, n
					}
				}
			}
			if best < 0 {
				k := r - sentHanLo
				if lx.zhSingle[k>>6]&(1<<(uint(k)&63)) == 0 {
					continue
				}
				if best = lx.zhWord(sentMix(sentZhHashStep(sentFNVOffset, r))); best < 0 {
					continue
				}
				bestLen = 1
			}
			s.addHit(int32(i), int32(i+bestLen), lx.zhEntries[best])
			skipTo = i + bestLen
		case unitWord:
			if e, ok := lx.en[u[i].h]; ok {
				s.addHit(int32(i), int32(i)+1, e)
				if e.kind == LexNegator || sentEndsNT(s.runes[u[i].start:u[i].end]) {
					u[i].neg = true
					s.negs++
				}
			} else if sentEndsNT(s.runes[u[i].start:u[i].end]) {
				s.addHit(int32(i), int32(i)+1, sentLexEntry{kind: LexNegator, w: 1})
				u[i].neg = true
				s.negs++
			}
		case unitToken:
			if t, ok := f.norm.token(u[i].r); ok && t.polarity != 0 {
				s.addHit(int32(i), int32(i)+1, sentLexEntry{kind: LexSentiment, w: 2 * t.polarity})
			}
		}
	}
}

// lexScore applies negation, degree, contrast and post-negation to the hits
// and fills the dense features.
func (f *Featurizer) lexScore(s *FeatureScratch) {
	u := s.units
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
