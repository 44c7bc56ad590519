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
// Chinese: zhFirst says, per CJK ideograph, which word lengths (bit k-1 for
// k characters, up to sentLexMaxLen) start with it; words themselves sit in
// an open-addressing table of 32-bit fingerprints. Unlike an automaton walk,
// whose every step waits for the previous one's memory load, the lookups at
// different positions are independent, which the CPU overlaps.
type sentLexicon struct {
	zhFirst   []uint8  // index r-0x4E00
	zhPre2    []uint64 // bitset over hashed 2-character prefixes of words
	zhPre3    []uint64 // … and 3-character prefixes
	zhSlots   []sentLexSlot
	zhShift   uint
	zhEntries []sentLexEntry
	en        map[uint64]sentLexEntry
}

// sentLexSlot is 4 bytes so that the table (256 KB for the shipped
// lexicon) stays in the L2 cache.
type sentLexSlot struct {
	fp  uint16 // 0: empty
	idx uint16
}

const sentPreBits = 17

func sentPreBit(h uint64) uint64 { return sentMix(h) >> (64 - sentPreBits) }

func sentBitTest(bs []uint64, b uint64) bool { return bs[b>>6]&(1<<(b&63)) != 0 }

// sentLexMaxLen is the longest Chinese lexicon word matched, in characters.
const sentLexMaxLen = 8

// sentZhHash hashes a sequence of ideographs; extend it one rune at a time.
func sentZhHashStep(h uint64, r rune) uint64 { return (h ^ uint64(r)) * sentFNVPrime }

func (lx *sentLexicon) zhFind(h uint64) int32 { return lx.zhFindMixed(sentMix(h)) }

// zhFindMixed is zhFind given m = sentMix(h).
func (lx *sentLexicon) zhFindMixed(m uint64) int32 {
	fp := uint16(m>>48) | 1
	mask := uint64(len(lx.zhSlots) - 1)
	for i := m & mask; ; i = (i + 1) & mask {
		sl := lx.zhSlots[i]
		if sl.fp == fp {
			return int32(sl.idx)
		}
		if sl.fp == 0 {
			return -1
		}
	}
}

func (lx *sentLexicon) buildZh(words [][]rune) {
	lx.zhFirst = make([]uint8, sentHanHi-sentHanLo+1)
	lx.zhPre2 = make([]uint64, 1<<sentPreBits/64)
	lx.zhPre3 = make([]uint64, 1<<sentPreBits/64)
	size := 16
	for size < len(words)+len(words)/2 {
		size <<= 1
	}
	lx.zhSlots = make([]sentLexSlot, size)
	mask := uint64(size - 1)
	for idx, w := range words {
		if len(w) > sentLexMaxLen || w[0] < sentHanLo || w[0] > sentHanHi || idx > 0xFFFF {
			continue
		}
		h := uint64(sentFNVOffset)
		for k, r := range w {
			h = sentZhHashStep(h, r)
			if k == 1 {
				b := sentPreBit(h)
				lx.zhPre2[b>>6] |= 1 << (b & 63)
			} else if k == 2 {
				b := sentPreBit(h)
				lx.zhPre3[b>>6] |= 1 << (b & 63)
			}
		}
		m := sentMix(h)
		fp := uint16(m>>48) | 1
		i := m & mask
		dup := false
		for lx.zhSlots[i].fp != 0 {
			if lx.zhSlots[i].fp == fp {
				dup = true // first entry wins
				break
			}
			i = (i + 1) & mask
		}
		if dup {
			continue
		}
		lx.zhSlots[i] = sentLexSlot{fp: fp, idx: uint16(idx)}
		lx.zhFirst[w[0]-sentHanLo] |= 1 << (len(w) - 1)
	}
}

// parseLexicon reads the generated lexicon: lines
// "lang<TAB>kind<TAB>word<TAB>weight", lang zh or en. Lines starting with #
// are comments.
func parseLexicon(data []byte) (*sentLexicon, error) {
	lx := &sentLexicon{en: make(map[uint64]sentLexEntry)}
	var zhWords [][]rune
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
			if len(zhWords) > 0xFFFF {
				return nil, fmt.Errorf("lexicon line %d: more than 65536 Chinese words", line)
			}
			zhWords = append(zhWords, rs)
			lx.zhEntries = append(lx.zhEntries, e)
		case "en":
			lx.en[sentWordHash(f[2])] = e
		default:
			return nil, fmt.Errorf("lexicon line %d: unknown language %q", line, f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lexicon: %w", err)
	}
	lx.buildZh(zhWords)
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
