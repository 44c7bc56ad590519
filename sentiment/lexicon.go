package sentiment

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// LexKind is the role of a lexicon entry.
type LexKind uint8

const (
	LexSentiment LexKind = iota + 1 // carries a polarity weight
	LexNegator                      // 不, 没有, not, never
	LexDegree                       // 很, 非常, very (weight = multiplier)
	LexContrast                     // 但是, 不过, but
	LexPostNeg                      // 个屁, 才怪: negates what comes right before
)

var sentLexKindNames = map[string]LexKind{
	"sent": LexSentiment, "neg": LexNegator, "deg": LexDegree, "contrast": LexContrast, "postneg": LexPostNeg,
}

// LexKindName is the name used in lexicon files.
func LexKindName(k LexKind) string {
	for n, kk := range sentLexKindNames {
		if kk == k {
			return n
		}
	}
	return "?"
}

type sentLexEntry struct {
	kind LexKind
	w    float32
}

// sentLexicon holds the Chinese entries for forward maximum matching and the
// English ones in a map keyed by the word's hash (the same hash the feature
// extractor computes, so lookups need no string).
//
// Chinese, laid out for few cache misses and few instructions per
// character: at each starting position one bitset test (zhPairBit, 16 KB)
// ends most searches, else one probe of zhPairs answers "is this pair of
// characters a word, and which longer words start with it" (nearly all
// words are two characters or start with a pair that is one). Only then
// are longer words looked up in zhWords (with zhPre3, a bitset of
// 3-character prefixes of the words of four or more characters, ending
// most searches early). One-character words (about a hundred) are flagged
// in the zhSingle bitset. Slots carry the index of the word's
// (kind, weight) pair in zhEntries, a table of a few dozen entries, so a match
// costs no further miss. The lookups at different positions are independent
// of each other, which the CPU overlaps, unlike an automaton walk whose every
// step waits for the previous one's load.
type sentLexicon struct {
	zhPairs   []uint32                                  // open addressing; see "Pair slot" below
	zhPairBit [1 << sentPreBits / 64]uint64             // bitset over hashed pairs (sentPairBit): a clear bit proves a miss
	zhWords   []uint32                                  // open addressing; see "Word slot" below
	zhPre3    [1 << sentPreBits / 64]uint64             // bitset over hashed 3-character prefixes of words of 4+ characters
	zhSingle  [(sentHanHi - sentHanLo + 64) / 64]uint64 // bitset over r-0x4E00: r is a one-character word
	zhEntries []sentLexEntry
	en        map[uint64]sentLexEntry
}

// Pair slot: fingerprint (bits 12–31, never 0 in a used slot), entry+1 of
// the two-character word (bits 6–11, 0: the pair is only a prefix), and bit
// L-3 (bits 0–5) set when a word of L characters, 3 ≤ L ≤ 8, starts with
// the pair.
const (
	sentPairFPMask     = 0xFFFFF000
	sentPairEntryShift = 6
	sentEntryMask      = 63
	sentLenMask        = 63
	// sentMaxZhEntries: the entry index must fit in 6 bits (with 0 = none).
	sentMaxZhEntries = 62
)

// Word slot (words of 1 or 3–8 characters): fingerprint (bits 6–31) and
// entry+1 (bits 0–5, never 0 in a used slot).
const sentWordFPMask = 0xFFFFFFC0

const sentPreBits = 17

func sentBitTest(bs []uint64, b uint64) bool { return bs[b>>6]&(1<<(b&63)) != 0 }

// sentLexMaxLen is the longest Chinese lexicon word matched, in characters.
const sentLexMaxLen = 8

// sentZhHashStep extends the hash of a sequence of ideographs by one rune
// (words of one or of three and more characters).
func sentZhHashStep(h uint64, r rune) uint64 { return (h ^ uint64(r)) * sentFNVPrime }

// sentZhPairHash hashes the first two characters of a word: one multiply.
func sentZhPairHash(a, b rune) uint64 {
	return sentMum(uint64(a)<<32|uint64(b)^0x2d358dccaa6c78a5, 0x9e3779b97f4a7c15)
}

// sentPairBit is the zhPairBit bit of a pair hash: bits independent of the
// slot index (low bits) and of the fingerprint (top bits).
func sentPairBit(h uint64) uint64 { return h >> 20 & (1<<sentPreBits - 1) }

// zhPairProbe returns the slot of the pair with hash h (sentZhPairHash), or
// 0. Callers test zhPairBit first (inline): most pairs end there. Not inlined
// itself, so that the callers stay small.
//
//go:noinline
func (lx *sentLexicon) zhPairProbe(h uint64) uint32 {
	fp := uint32(h>>32)&sentPairFPMask | 1<<12
	mask := uint64(len(lx.zhPairs) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := lx.zhPairs[i]
		if sl&sentPairFPMask == fp || sl == 0 {
			return sl
		}
	}
}

// zhWord returns the entry index of the word with mixed hash m, or -1.
func (lx *sentLexicon) zhWord(m uint64) int {
	fp := uint32(m>>32) & sentWordFPMask
	mask := uint64(len(lx.zhWords) - 1)
	for i := m & mask; ; i = (i + 1) & mask {
		sl := lx.zhWords[i]
		if sl&sentWordFPMask == fp && sl != 0 {
			return int(sl&sentEntryMask) - 1
		}
		if sl == 0 {
			return -1
		}
	}
}

func sentTableSize(n int) int {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	return size
}

// buildZh fills the Chinese tables; entries[i] is the zhEntries index of
// words[i]. The first of duplicate words (or fingerprints) wins.
func (lx *sentLexicon) buildZh(words [][]rune, entries []uint16) {
	npair, nword := 0, 0
	for _, w := range words {
		switch {
		case len(w) > sentLexMaxLen || w[0] < sentHanLo || w[0] > sentHanHi:
		case len(w) == 1:
			nword++
		default:
			npair++ // an upper bound on the distinct pairs
			if len(w) > 2 {
				nword++
			}
		}
	}
	lx.zhPairs = make([]uint32, sentTableSize(npair))
	lx.zhWords = make([]uint32, sentTableSize(nword))
	pmask := uint64(len(lx.zhPairs) - 1)
	wmask := uint64(len(lx.zhWords) - 1)
	// pairSlot finds (or claims) the slot of the pair (a, b).
	pairSlot := func(a, b rune) *uint32 {
		h := sentZhPairHash(a, b)
		fp := uint32(h>>32)&sentPairFPMask | 1<<12
		i := h & pmask
		for lx.zhPairs[i] != 0 && lx.zhPairs[i]&sentPairFPMask != fp {
			i = (i + 1) & pmask
		}
		if lx.zhPairs[i] == 0 {
			lx.zhPairs[i] = fp
			b := sentPairBit(h)
			lx.zhPairBit[b>>6] |= 1 << (b & 63)
		}
		return &lx.zhPairs[i]
	}
	for idx, w := range words {
		if len(w) > sentLexMaxLen || w[0] < sentHanLo || w[0] > sentHanHi {
			continue
		}
		e := uint32(entries[idx]) + 1
		if len(w) == 2 {
			sl := pairSlot(w[0], w[1])
			if *sl>>sentPairEntryShift&sentEntryMask == 0 {
				*sl |= e << sentPairEntryShift
			}
			continue
		}
		h := uint64(sentFNVOffset)
		for k, r := range w {
			h = sentZhHashStep(h, r)
			if k == 2 && len(w) > 3 {
				b := sentMix(h) >> (64 - sentPreBits)
				lx.zhPre3[b>>6] |= 1 << (b & 63)
			}
		}
		m := sentMix(h)
		fp := uint32(m>>32) & sentWordFPMask
		i := m & wmask
		dup := false
		for lx.zhWords[i] != 0 {
			if lx.zhWords[i]&sentWordFPMask == fp {
				dup = true
				break
			}
			i = (i + 1) & wmask
		}
		if dup {
			continue
		}
		lx.zhWords[i] = fp | e
		if len(w) == 1 {
			k := w[0] - sentHanLo
			lx.zhSingle[k>>6] |= 1 << (uint(k) & 63)
		} else {
			*pairSlot(w[0], w[1]) |= 1 << (len(w) - 3)
		}
	}
}

// parseLexicon reads the generated lexicon: lines
// "lang<TAB>kind<TAB>word<TAB>weight", lang zh or en. Lines starting with #
// are comments.
func parseLexicon(data []byte) (*sentLexicon, error) {
	lx := &sentLexicon{en: make(map[uint64]sentLexEntry)}
	var zhWords [][]rune
	var zhWordEntry []uint16 // per word: index into lx.zhEntries
	zhEntryIdx := map[sentLexEntry]uint16{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if t == "" || t[0] == '#' {
			continue
		}
		f := strings.Split(t, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("lexicon line %d: want 4 tab-separated fields, got %d", line, len(f))
		}
		kind, ok := sentLexKindNames[f[1]]
		if !ok {
			return nil, fmt.Errorf("lexicon line %d: unknown kind %q", line, f[1])
		}
		w, err := strconv.ParseFloat(f[3], 32)
		if err != nil {
			return nil, fmt.Errorf("lexicon line %d: weight: %w", line, err)
		}
		e := sentLexEntry{kind: kind, w: float32(w)}
		switch f[0] {
		case "zh":
			rs := []rune(f[2])
			for _, r := range rs {
				if !unicode.Is(unicode.Han, r) {
					return nil, fmt.Errorf("lexicon line %d: zh word %q has a non-Han character", line, f[2])
				}
			}
			ei, ok := zhEntryIdx[e]
			if !ok {
				if len(lx.zhEntries) >= sentMaxZhEntries {
					return nil, fmt.Errorf("lexicon line %d: more than %d distinct Chinese (kind, weight) pairs", line, sentMaxZhEntries)
				}
				ei = uint16(len(lx.zhEntries))
				zhEntryIdx[e] = ei
				lx.zhEntries = append(lx.zhEntries, e)
			}
			zhWords = append(zhWords, rs)
			zhWordEntry = append(zhWordEntry, ei)
		case "en":
			lx.en[sentWordHash(f[2])] = e
		default:
			return nil, fmt.Errorf("lexicon line %d: unknown language %q", line, f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lexicon: %w", err)
	}
	lx.buildZh(zhWords, zhWordEntry)
	return lx, nil
}

// sentWordHash hashes a word the way the tokenizer does (FNV-1a over runes).
func sentWordHash(w string) uint64 {
	h := uint64(sentFNVOffset)
	for _, r := range w {
		h = (h ^ uint64(r)) * sentFNVPrime
	}
	return h
}

const (
	sentFNVOffset = 14695981039346656037
	sentFNVPrime  = 1099511628211
)
