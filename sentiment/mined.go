package sentiment

import (
	"math"
	"sort"
)

// MinedLexicon is a polarity lexicon mined from labelled training files: the
// smoothed log-odds of unit unigrams and bigrams (Chinese characters and
// character pairs, English words and word pairs) between positive and
// negative texts, kept only where at least two files agree on the sign. It
// is separate from the hand lexicon (which is matched by forward maximum
// matching: mining into it would change how its own words are found) and
// feeds dense features of its own (see minedFeatures).
//
// It is a hash table of 4-slot buckets (16 bytes, one cache line access per
// lookup, no probing), keyed by the same 64-bit n-gram hashes the n-gram
// features use; each slot holds a 24-bit fingerprint and the polarity as an
// int8 (in units of 1/minedScoreUnit log-odds). Lookups do not allocate.
type MinedLexicon struct {
	bits  uint     // log2 of len(slots)
	slots []uint32 // 4 per bucket; fingerprint<<8 | uint8(score); 0: empty
	// filter has bit k>>48 set for every key k in the table (8 KB, stays
	// in the L1 cache): most n-grams are not in the lexicon, and the
	// filter turns them away without touching the table.
	filter [1 << 10]uint64
}

// minedScoreUnit: an int8 polarity q is the log-odds q/minedScoreUnit.
const minedScoreUnit = 32

const minedBucket = 4

func minedFingerprint(k uint64) uint32 { return uint32(k>>41) | 1<<23 }

// setFilter sets the filter bit of the key a slot holds (its top 16 bits
// are bits 7–22 of the fingerprint).
func (ml *MinedLexicon) setFilter(slot uint32) {
	top := slot >> 15 & 0xffff
	ml.filter[top>>6] |= 1 << (top & 63)
}

// Len is the number of n-grams in the lexicon.
func (ml *MinedLexicon) Len() int {
	if ml == nil {
		return 0
	}
	n := 0
	for _, v := range ml.slots {
		if v != 0 {
			n++
		}
	}
	return n
}

// lookup returns the polarity of key k (0 when absent).
func (ml *MinedLexicon) lookup(k uint64) int64 {
	if ml.filter[k>>54]&(1<<(k>>48&63)) == 0 {
		return 0
	}
	b := int(k&uint64(len(ml.slots)/minedBucket-1)) * minedBucket
	s := ml.slots[b : b+minedBucket : b+minedBucket]
	fp := minedFingerprint(k)
	var v int64
	if s[0]>>8 == fp {
		v = int64(int8(s[0]))
	}
	if s[1]>>8 == fp {
		v = int64(int8(s[1]))
	}
	if s[2]>>8 == fp {
		v = int64(int8(s[2]))
	}
	if s[3]>>8 == fp {
		v = int64(int8(s[3]))
	}
	return v
}

// newMinedLexicon builds the table for the given keys and polarities (a key
// given twice keeps its first polarity): the smallest power-of-two number
// of buckets, at least one per two keys, in which no bucket overflows.
func newMinedLexicon(keys []uint64, scores []int8) *MinedLexicon {
	bits := uint(4)
	for 1<<bits < 2*len(keys) {
		bits++
	}
	for ; ; bits++ {
		if ml, ok := fillMinedLexicon(bits, keys, scores); ok {
			return ml
		}
	}
}

func fillMinedLexicon(bits uint, keys []uint64, scores []int8) (*MinedLexicon, bool) {
	ml := &MinedLexicon{bits: bits, slots: make([]uint32, 1<<bits)}
	nb := uint64(len(ml.slots) / minedBucket)
next:
	for j, k := range keys {
		fp := minedFingerprint(k)
		b := int(k&(nb-1)) * minedBucket
		for i := b; i < b+minedBucket; i++ {
			switch ml.slots[i] >> 8 {
			case 0:
				ml.slots[i] = fp<<8 | uint32(uint8(scores[j]))
				ml.setFilter(ml.slots[i])
				continue next
			case fp:
				continue next
			}
		}
		return nil, false
	}
	return ml, true
}

// minedKeys calls fn with the key of every unit unigram and bigram of u, in
// order: the unigram of unit i, then the bigram ending at unit i. The keys
// are the n-gram features' hashes before negation salting.
func minedKeys(u []sentUnit, fn func(i int, bigram bool, k uint64)) {
	for i := range u {
		fn(i, false, sentMum(u[i].h^sentSaltUnigram, sentSaltFold))
		if i >= 1 {
			fn(i, true, sentMum(u[i-1].h^sentSaltBigram, u[i].h))
		}
	}
}

// minedFeatures fills the mined-lexicon dense features (after lexScore,
// which zeroes them, and after lexMatch, whose negator hits open the
// negation scopes). An n-gram in a negation scope (up to three units after
// a negator, not past punctuation; a bigram entirely inside it) counts in
// DenseMinedNegated, the others in DenseMinedPos / DenseMinedNeg.
func (f *Featurizer) minedFeatures(s *FeatureScratch) {
	ml := f.mined
	u := s.units
	var pos, neg, negated int64
	negator := false
	for i := range s.hits {
		if s.hits[i].e.kind == LexNegator {
			negator = true
			break
		}
	}
	if !negator {
		// No negation scope: both lookups per unit, no scope tests.
		var prev uint64
		for i := range u {
			cur := u[i].h
			v := ml.lookup(sentMum(cur^sentSaltUnigram, sentSaltFold))
			if i >= 1 {
				v2 := ml.lookup(sentMum(prev^sentSaltBigram, cur))
				pos, neg = pos+max(v2, 0), neg+max(-v2, 0)
			}
			pos, neg = pos+max(v, 0), neg+max(-v, 0)
			prev = cur
		}
	} else {
		hits := s.hits
		hp := 0
		scopeStart, scopeEnd := -1, -1
		for i := range u {
			for hp < len(hits) && int(hits[hp].end) <= i {
				if hits[hp].e.kind == LexNegator {
					scopeStart, scopeEnd = int(hits[hp].end), int(hits[hp].end)+3
				}
				hp++
			}
			if u[i].kind == unitSym {
				scopeEnd = -1
			}
			inScope := i >= scopeStart && i < scopeEnd
			cur := u[i].h
			v := ml.lookup(sentMum(cur^sentSaltUnigram, sentSaltFold))
			if inScope {
				negated += v
			} else {
				pos, neg = pos+max(v, 0), neg+max(-v, 0)
			}
			if i >= 1 {
				v = ml.lookup(sentMum(u[i-1].h^sentSaltBigram, cur))
				if inScope && i-1 >= scopeStart {
					negated += v
				} else {
					pos, neg = pos+max(v, 0), neg+max(-v, 0)
				}
			}
		}
	}
	d := &s.Dense
	const unit = minedScoreUnit
	d[DenseMinedPos] = sentSat(float64(pos) / unit)
	d[DenseMinedNeg] = sentSat(float64(neg) / unit)
	d[DenseMinedNet] = sentSoftsign(float64(pos-neg) / unit / 2)
	if n := 2*len(u) - 1; n > 0 {
		d[DenseMinedMean] = sentSoftsign(4 * float64(pos-neg) / unit / float64(n))
	}
	d[DenseMinedNegated] = sentSoftsign(float64(negated) / unit / 2)
}

// sentSoftsign is x/(1+|x|).
func sentSoftsign(x float64) float32 {
	if x < 0 {
		return float32(x / (1 - x))
	}
	return float32(x / (1 + x))
}

// MineConfig says how a mined lexicon is mined.
type MineConfig struct {
	// Sources are the training files (TrainDoc.Source) mined from; every
	// other document (the chat seed, one-word lexicon examples) is neither
	// mined from nor left out of a table.
	Sources []string
	// MinCount is how many positive plus negative texts of one file must
	// contain an n-gram for that file to count as evidence for it.
	MinCount int
	// MinFiles is how many files must count as evidence, all with the same
	// sign of the log-odds, for the n-gram to enter the lexicon.
	MinFiles int
	// MinScore is the smallest |log-odds| (mean over the evidence files)
	// kept.
	MinScore float64
	// Smooth is the pseudo-count added to each class's count.
	Smooth float64
}

// DefaultMineConfig are the mining settings -mined uses (set once, not
// searched).
func DefaultMineConfig() MineConfig {
	return MineConfig{MinCount: 5, MinFiles: 2, MinScore: 0.5, Smooth: 1}
}

// lexMiner holds, per n-gram key that at least cfg.MinFiles files give
// evidence for, the per-file log-odds; Table combines them leaving files
// out.
type lexMiner struct {
	cfg   MineConfig
	files []string
	keys  []uint64
	ev    [][]minedEvidence // per key, sorted by file
}

type minedEvidence struct {
	file int32
	lo   float32
}

// newLexMiner counts, file by file, in how many positive and negative texts
// each unit unigram and bigram occurs (once per text), and keeps the
// smoothed log-odds of the n-grams frequent enough in that file.
func newLexMiner(f *Featurizer, docs []TrainDoc, cfg MineConfig) *lexMiner {
	lm := &lexMiner{cfg: cfg, files: append([]string(nil), cfg.Sources...)}
	sort.Strings(lm.files)
	byKey := map[uint64][]minedEvidence{}
	var fs FeatureScratch
	var seen []uint64
	for fi, file := range lm.files {
		counts := map[uint64][2]int32{}
		var nPos, nNeg int
		for _, d := range docs {
			if d.Source != file || d.Class == ClassNeutral {
				continue
			}
			if d.Class == ClassPositive {
				nPos++
			} else {
				nNeg++
			}
			fs.runes = f.norm.normalize(fs.runes[:0], d.Text)
			f.tokenize(&fs)
			seen = seen[:0]
			minedKeys(fs.units, func(_ int, _ bool, k uint64) { seen = append(seen, k) })
			sort.Slice(seen, func(a, b int) bool { return seen[a] < seen[b] })
			for j, k := range seen {
				if j > 0 && seen[j-1] == k {
					continue
				}
				c := counts[k]
				if d.Class == ClassPositive {
					c[0]++
				} else {
					c[1]++
				}
				counts[k] = c
			}
		}
		if nPos == 0 || nNeg == 0 {
			continue
		}
		a := cfg.Smooth
		for k, c := range counts {
			if int(c[0]+c[1]) < cfg.MinCount {
				continue
			}
			lo := math.Log((float64(c[0])+a)/(float64(nPos)+2*a)) - math.Log((float64(c[1])+a)/(float64(nNeg)+2*a))
			byKey[k] = append(byKey[k], minedEvidence{file: int32(fi), lo: float32(lo)})
		}
	}
	for k, ev := range byKey {
		if len(ev) >= cfg.MinFiles {
			lm.keys = append(lm.keys, k)
		}
	}
	sort.Slice(lm.keys, func(a, b int) bool { return lm.keys[a] < lm.keys[b] })
	lm.ev = make([][]minedEvidence, len(lm.keys))
	for i, k := range lm.keys {
		lm.ev[i] = byKey[k]
	}
	return lm
}

// table mines the lexicon from every file but exclude ("" : all files).
func (lm *lexMiner) table(exclude string) *MinedLexicon {
	skip := int32(-1)
	for i, f := range lm.files {
		if f == exclude {
			skip = int32(i)
		}
	}
	var keys []uint64
	var scores []int8
	for i, k := range lm.keys {
		n, sum := 0, 0.0
		sign := 0
		agree := true
		for _, e := range lm.ev[i] {
			if e.file == skip {
				continue
			}
			s := 1
			if e.lo < 0 {
				s = -1
			}
			if sign == 0 {
				sign = s
			} else if s != sign {
				agree = false
				break
			}
			n++
			sum += float64(e.lo)
		}
		if !agree || n < lm.cfg.MinFiles {
			continue
		}
		lo := sum / float64(n)
		if math.Abs(lo) < lm.cfg.MinScore {
			continue
		}
		q := math.Round(lo * minedScoreUnit)
		keys = append(keys, k)
		scores = append(scores, int8(max(-127, min(127, q))))
	}
	return newMinedLexicon(keys, scores)
}

// withMined is a copy of f whose features include the mined lexicon ml
// (nil: none).
func (f *Featurizer) withMined(ml *MinedLexicon) *Featurizer {
	c := *f
	c.mined = ml
	return &c
}
