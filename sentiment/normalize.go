package sentiment

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// MaxTextBytes bounds the work and memory one message can cost: longer texts
// are scored (and matched against keyword groups) on their first
// MaxTextBytes bytes only.
const MaxTextBytes = 64 << 10

const (
	sentHanLo = 0x4E00
	sentHanHi = 0x9FFF
)

// normaliser rewrites text into the rune sequence features are computed on:
// width folded, lower-cased, traditional→simplified for common characters,
// runs of a repeated character cut to two, emoji and emoticons replaced by
// token runes, URLs, @mentions, HTML entities, BOMs and control characters
// removed. It is read-only after construction and safe for concurrent use.
type normaliser struct {
	brackets  map[string]rune // [怒] → token rune (key without brackets)
	emoji     map[rune]rune   // 😡 → token rune
	emoticons []sentEmoticon  // ASCII emoticons, longest first
	tradBits  [(sentHanHi - sentHanLo + 64) / 64]uint64
	trad      map[rune]rune
	tokens    []sentToken // index = rune - sentTokenBase
	// class caches unicode.IsSpace/IsControl/IsUpper/IsLetter/IsDigit for
	// runes below sentClassMax (Latin, general and CJK punctuation, kana):
	// the unicode package's table searches were a tenth of the time on
	// Chinese text, most of it for 。 and ….
	class []uint8
}

// sentClassMax bounds the runes with a cached class.
const sentClassMax = 0x3100

const (
	sentClsSpace uint8 = 1 << iota
	sentClsControl
	sentClsUpper
	sentClsLetter
	sentClsDigit
)

func sentBuildClasses() []uint8 {
	c := make([]uint8, sentClassMax)
	for r := range rune(sentClassMax) {
		var f uint8
		if unicode.IsSpace(r) {
			f |= sentClsSpace
		}
		if unicode.IsControl(r) {
			f |= sentClsControl
		}
		if unicode.IsUpper(r) {
			f |= sentClsUpper
		}
		if unicode.IsLetter(r) {
			f |= sentClsLetter
		}
		if unicode.IsDigit(r) {
			f |= sentClsDigit
		}
		c[r] = f
	}
	return c
}

// has reports whether r has any of the classes in cls (r >= 0).
func (n *normaliser) has(r rune, cls uint8) bool {
	if r < sentClassMax {
		return n.class[r]&cls != 0
	}
	return cls&sentClsSpace != 0 && unicode.IsSpace(r) ||
		cls&sentClsControl != 0 && unicode.IsControl(r) ||
		cls&sentClsUpper != 0 && unicode.IsUpper(r) ||
		cls&sentClsLetter != 0 && unicode.IsLetter(r) ||
		cls&sentClsDigit != 0 && unicode.IsDigit(r)
}

type sentEmoticon struct {
	text string
	tok  rune
	word bool // starts with a letter: needs a word boundary before it
}

func newNormaliser() *normaliser {
	n := &normaliser{
		brackets: make(map[string]rune),
		emoji:    make(map[rune]rune),
		trad:     make(map[rune]rune),
		class:    sentBuildClasses(),
	}
	for i, d := range sentTokenDefs {
		tok := sentTokenBase + rune(i)
		n.tokens = append(n.tokens, d.tok)
		for _, b := range d.brackets {
			n.brackets[b] = tok
		}
		for _, e := range d.emoji {
			n.emoji[e] = tok
		}
		for _, e := range d.emoticons {
			c := e[0]
			n.emoticons = append(n.emoticons, sentEmoticon{text: e, tok: tok, word: c >= 'a' && c <= 'z'})
		}
	}
	// Longest first so that ":-(" wins over ":-".
	for i := 1; i < len(n.emoticons); i++ {
		for j := i; j > 0 && len(n.emoticons[j].text) > len(n.emoticons[j-1].text); j-- {
			n.emoticons[j], n.emoticons[j-1] = n.emoticons[j-1], n.emoticons[j]
		}
	}
	rs := []rune(sentTradSimp)
	for i := 0; i+1 < len(rs); i += 2 {
		t, s := rs[i], rs[i+1]
		n.trad[t] = s
		k := t - sentHanLo
		n.tradBits[k>>6] |= 1 << (uint(k) & 63)
	}
	return n
}

// token returns the emoticon class of a token rune.
func (n *normaliser) token(r rune) (sentToken, bool) {
	if r < sentTokenBase || r >= sentTokenBase+rune(len(n.tokens)) {
		return sentToken{}, false
	}
	return n.tokens[r-sentTokenBase], true
}

func sentIsWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// sentAppend appends r unless it would make a third repeat of the same
// character (好好好 → 好好, !!! → !!) or a second space. Digits are kept:
// 1000 is not 100.
func sentAppend(out []rune, r rune) []rune {
	n := len(out)
	if r == ' ' {
		if n == 0 || out[n-1] == ' ' {
			return out
		}
		return append(out, r)
	}
	if n >= 2 && out[n-1] == r && out[n-2] == r && (r < '0' || r > '9') {
		return out
	}
	return append(out, r)
}

// fold maps one rune to its normal form: width, case, traditional→simplified.
// It returns -1 for runes that are dropped and ' ' for separators.
func (n *normaliser) fold(r rune) rune {
	if r < 0x80 {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		case r < 0x20 || r == 0x7F:
			return ' '
		}
		return r
	}
	if r >= sentHanLo && r <= sentHanHi {
		k := r - sentHanLo
		if n.tradBits[k>>6]&(1<<(uint(k)&63)) != 0 {
			return n.trad[r]
		}
		return r
	}
	switch {
	case r == utf8.RuneError:
		return ' '
	case r == 0xFEFF, r == 0xFE0F, r == 0xFE0E, r >= 0x200B && r <= 0x200F, r == 0x2060, r >= 0x1F3FB && r <= 0x1F3FF:
		// BOM, variation selectors, zero-width characters, skin tones.
		return -1
	case r == 0x3000:
		return ' '
	case r > 0x3000 && r < 0x3040:
		return r // CJK punctuation (。、「」): kept as is
	case r >= 0xFF01 && r <= 0xFF5E:
		// Fullwidth ASCII, the common case of width folding.
		return n.fold(r - 0xFEE0)
	case r >= 0xFF00 && r <= 0xFFEF:
		p := width.LookupRune(r)
		switch p.Kind() {
		case width.EastAsianFullwidth:
			if nr := p.Narrow(); nr != 0 {
				r = nr
			}
		case width.EastAsianHalfwidth:
			if wr := p.Wide(); wr != 0 {
				r = wr
			}
		}
		if r < 0x80 {
			return n.fold(r)
		}
		return r
	case r == '\u2018' || r == '\u2019':
		return '\''
	case r == '\u201C' || r == '\u201D':
		return '"'
	case r < 0xA0, r == 0x2028, r == 0x2029:
		return ' '
	case n.has(r, sentClsSpace|sentClsControl):
		return ' '
	}
	if n.has(r, sentClsUpper) {
		return unicode.ToLower(r)
	}
	return r
}

var sentEntities = [...]struct {
	text string
	r    rune
}{{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''}, {"&apos;", '\''}, {"&nbsp;", ' '}}

// normalize appends the normal form of text to out and returns it.
func (n *normaliser) normalize(out []rune, text string) []rune {
	if len(text) > MaxTextBytes {
		text = text[:MaxTextBytes]
	}
	prevWord := false // the previous input character was a letter or digit
	for i := 0; i < len(text); {
		c := text[i]
		// Fast path first: a CJK ideograph (three bytes, lead 0xE4–0xE9)
		// needs only the traditional→simplified check; none of the
		// ASCII-triggered rules below (URLs, entities, emoticons) applies.
		if c-0xE4 <= 0xE9-0xE4 && i+2 < len(text) {
			if c1, c2 := text[i+1], text[i+2]; (c1&0xC0 | (c2&0xC0)>>2) == 0x80|0x20 {
				// Lead 0xE4–0xE9 with two continuation bytes: U+4000–U+9FFF.
				if r := rune(c&0x0F)<<12 | rune(c1&0x3F)<<6 | rune(c2&0x3F); r >= sentHanLo {
					i += 3
					prevWord = false
					k := r - sentHanLo
					if n.tradBits[k>>6]&(1<<(uint(k)&63)) != 0 {
						r = n.trad[r]
					}
					out = sentAppend(out, r)
					continue
				}
			}
		}
		// Fast path: a letter or digit inside a word starts no URL,
		// emoticon, entity or mention; it only needs lower-casing.
		if prevWord {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
				out = sentAppend(out, rune(c))
				i++
				continue
			case c >= 'A' && c <= 'Z':
				out = sentAppend(out, rune(c+('a'-'A')))
				i++
				continue
			}
		}
		// URLs: dropped up to the next space or non-ASCII character.
		if !prevWord && (c == 'h' || c == 'H' || c == 'w' || c == 'W') && sentHasURL(text[i:]) {
			j := i
			for j < len(text) && text[j] > ' ' && text[j] < 0x80 {
				j++
			}
			i = j
			out = sentAppend(out, ' ')
			continue
		}
		if c == '&' {
			if r, l := sentEntity(text[i:]); l > 0 {
				i += l
				out = sentAppend(out, r)
				prevWord = false
				continue
			}
		}
		if !prevWord && c < 0x80 && c > ' ' {
			if tok, l := n.emoticon(text[i:]); l > 0 {
				out = sentAppend(out, ' ')
				out = sentAppend(out, tok)
				out = sentAppend(out, ' ')
				i += l
				continue
			}
		}
		r, size := rune(c), 1
		if c >= 0x80 {
			r, size = utf8.DecodeRuneInString(text[i:])
			if r >= sentHanLo && r <= sentHanHi {
				// Fast path: CJK ideographs only need the
				// traditional→simplified check.
				i += size
				prevWord = false
				k := r - sentHanLo
				if n.tradBits[k>>6]&(1<<(uint(k)&63)) != 0 {
					r = n.trad[r]
				}
				out = sentAppend(out, r)
				continue
			}
		}
		switch {
		case r == '@' || r == '＠':
			i = sentSkipMention(text, i+size)
			out = sentAppend(out, ' ')
			prevWord = false
			continue
		case r == '[':
			if tok, l := n.bracket(text[i+1:]); l > 0 {
				out = sentAppend(out, tok)
				i += 1 + l
				prevWord = false
				continue
			}
		}
		if sentMaybeEmoji(r) {
			if tok, ok := n.emoji[r]; ok {
				out = sentAppend(out, tok)
				i += size
				prevWord = false
				continue
			}
		}
		if r >= sentTokenBase && r <= sentTokenMax {
			// A private-use rune in the input must not pose as a token.
			r = ' '
		}
		f := n.fold(r)
		i += size
		if f < 0 {
			continue
		}
		prevWord = f < 0x80 && sentIsWordByte(byte(f)) || f >= 0x80 && !(f >= sentHanLo && f <= sentHanHi) && n.has(f, sentClsLetter)
		out = sentAppend(out, f)
	}
	if len(out) > 0 && out[len(out)-1] == ' ' {
		out = out[:len(out)-1]
	}
	return out
}

// sentMaybeEmoji: the blocks the token table's emoji come from (misc
// symbols, dingbats, arrows and stars, the emoji planes).
func sentMaybeEmoji(r rune) bool {
	return r >= 0x2190 && r <= 0x2BFF || r >= 0x1F000 && r <= 0x1FAFF
}

func sentHasURL(s string) bool {
	return len(s) >= 7 && strings.EqualFold(s[:7], "http://") ||
		len(s) >= 8 && strings.EqualFold(s[:8], "https://") ||
		len(s) >= 4 && strings.EqualFold(s[:4], "www.")
}

func sentEntity(s string) (rune, int) {
	for _, e := range sentEntities {
		if strings.HasPrefix(s, e.text) {
			return e.r, len(e.text)
		}
	}
	return 0, 0
}

// sentSkipMention returns the index after an @mention's name: up to a space,
// a colon, common punctuation, another @ or 20 characters.
func sentSkipMention(text string, i int) int {
	for k := 0; i < len(text) && k < 20; k++ {
		r, size := rune(text[i]), 1
		if r >= 0x80 {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		switch r {
		case ' ', '\t', '\n', '\r', ':', '：', ',', '，', '。', '!', '！', '?', '？', '@', ')', '）', '/', '\u3000', '[', '#':
			return i
		}
		i += size
	}
	return i
}

// emoticon reports the ASCII emoticon at the start of s and its length. The
// emoticon must end at a boundary (end, space, non-ASCII or punctuation that
// is not a letter).
func (n *normaliser) emoticon(s string) (rune, int) {
	c := s[0]
	switch c {
	case ':', ';', '=', '<', '>', '^', '-', '(', ')', 'x', 'X', 't', 'T', 'q', 'Q', 'o', 'O':
	default:
		return 0, 0
	}
	for _, e := range n.emoticons {
		l := len(e.text)
		if len(s) < l || !strings.EqualFold(s[:l], e.text) {
			continue
		}
		if len(s) > l && sentIsWordByte(s[l]) {
			continue
		}
		return e.tok, l
	}
	return 0, 0
}

// bracket reports the token for a bracket emoticon whose name starts s (just
// after '['), and the bytes consumed including ']'.
func (n *normaliser) bracket(s string) (rune, int) {
	end := -1
	for j := 0; j < len(s) && j < 24; j++ {
		if s[j] == ']' {
			end = j
			break
		}
		if s[j] == '[' || s[j] == '\n' {
			return 0, 0
		}
	}
	if end <= 0 {
		return 0, 0
	}
	name := s[:end]
	if tok, ok := n.brackets[name]; ok {
		return tok, end + 1
	}
	// Case-fold ASCII names ([Doge], [OK]) without allocating.
	var buf [24]byte
	for j := 0; j < len(name); j++ {
		c := name[j]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[j] = c
	}
	if tok, ok := n.brackets[string(buf[:len(name)])]; ok {
		return tok, end + 1
	}
	return 0, 0
}
