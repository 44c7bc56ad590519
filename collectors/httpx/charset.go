package httpx

import (
	"bytes"
	"fmt"
	"mime"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// Decoded is a body converted to UTF-8.
type Decoded struct {
	Text    []byte
	Charset string // the encoding's WHATWG name, e.g. utf-8, gbk, big5, windows-1252
	// How the charset was found: forced (the source's charset option),
	// bom, header (Content-Type), declared (<meta> or the XML declaration),
	// or sniffed (from the bytes: nothing declared one).
	How string
	// Replacements counts U+FFFD in Text that the body did not spell as
	// such: bytes the charset could not decode. See Garbled.
	Replacements int
}

// Garbled reports whether the decoding lost enough text to say so: at
// least 8 replacement characters and 1 in 200 of the text's runes. A
// single stray byte is common and harmless; more means the charset is
// wrong or the body is not text.
func (d Decoded) Garbled() bool {
	return d.Replacements >= 8 && d.Replacements*200 >= utf8.RuneCount(d.Text)
}

// Describe is a one-line account for logs and health warnings.
func (d Decoded) Describe() string {
	return fmt.Sprintf("%d undecodable byte sequences as %s (%s)", d.Replacements, d.Charset, d.How)
}

// sniffSample is how many bytes Sniff scores each candidate on.
const sniffSample = 8 << 10

var xmlDeclEncoding = regexp.MustCompile(`^\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']+)["']`)

// ToUTF8 converts an HTML page's body to UTF-8. The charset is, in order:
// forced (when not empty), a byte-order mark, the Content-Type charset, a
// <meta> declaration in the first 1024 bytes, and otherwise sniffed from
// the bytes (see Sniff): valid UTF-8 stays UTF-8, and text that is not is
// tried as GB18030, Big5, Shift_JIS and Windows-1252, whichever reads as
// the most plausible text. Undeclared GBK pages therefore come out as
// Chinese, not as mojibake.
func ToUTF8(body []byte, contentType, forced string) (Decoded, error) {
	if forced != "" {
		enc, name := charset.Lookup(forced)
		if enc == nil {
			return Decoded{}, fmt.Errorf("unknown charset %q", forced)
		}
		return decodeWith(body, enc, name, "forced"), nil
	}
	enc, name, certain := charset.DetermineEncoding(body, contentType)
	if certain {
		how := "header"
		if hasBOM(body) {
			how = "bom"
			body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
		}
		return decodeWith(body, enc, name, how), nil
	}
	if name != "utf-8" && name != "windows-1252" {
		return decodeWith(body, enc, name, "declared"), nil // <meta charset>
	}
	if name == "windows-1252" && declaresCharset(body) {
		return decodeWith(body, enc, name, "declared"), nil
	}
	return Sniff(body), nil
}

// ToUTF8XML converts an XML document (a feed) to UTF-8 only when nothing
// declares its charset: no byte-order mark, no Content-Type charset and no
// encoding in the XML declaration. Then it is sniffed (see Sniff) and, when
// it is not UTF-8, converted; ok reports a conversion. A declared charset
// is left to the XML parser, which honours it.
func ToUTF8XML(body []byte, contentType string) (d Decoded, ok bool) {
	if hasBOM(body) || xmlDeclEncoding.Match(body[:min(len(body), 1024)]) {
		return Decoded{}, false
	}
	if _, params, err := mime.ParseMediaType(contentType); err == nil && params["charset"] != "" {
		return Decoded{}, false
	}
	if utf8.Valid(body) {
		return Decoded{}, false
	}
	d = Sniff(body)
	return d, d.Charset != "utf-8"
}

// Sniff guesses the charset of text that declares none. Valid UTF-8 is
// UTF-8. Otherwise each candidate (GB18030, Big5, Shift_JIS, then
// Windows-1252 as the fallback) decodes the body and is scored by how
// much of its non-ASCII text lands in the characters that language writes
// most (common Hanzi, kana, Latin letters) against how much fails to
// decode; the best score wins.
func Sniff(body []byte) Decoded {
	if utf8.Valid(body) {
		return Decoded{Text: body, Charset: "utf-8", How: "sniffed"}
	}
	type cand struct {
		name  string
		enc   encoding.Encoding
		score func(r rune) bool
	}
	cands := []cand{
		{"gb18030", simplifiedchinese.GB18030, commonHanzi(simplifiedchinese.GBK, 0xB0, 0xD7)},
		{"big5", traditionalchinese.Big5, commonHanzi(traditionalchinese.Big5, 0xA4, 0xC6)},
		{"shift_jis", japanese.ShiftJIS, func(r rune) bool {
			return unicode.In(r, unicode.Hiragana, unicode.Katakana) || r == 'ー' || r == '、' || r == '。'
		}},
	}
	// Score on a sample: the first sniffSample bytes after the first
	// non-ASCII byte are as telling as the whole page, and much cheaper.
	sample := body
	if i := bytes.IndexFunc(body, func(r rune) bool { return r >= utf8.RuneSelf }); i > 0 {
		sample = body[i:]
	}
	sample = sample[:min(len(sample), sniffSample)]
	var best cand
	bestScore := 0.0
	for _, c := range cands {
		d := decodeWith(sample, c.enc, c.name, "sniffed")
		var good, other int
		for _, r := range string(d.Text) {
			switch {
			case r < utf8.RuneSelf:
			case c.score(r) || isCJKPunct(r):
				good++
			default:
				other++
			}
		}
		if len(sample) < len(body) && d.Replacements > 0 {
			d.Replacements-- // the sample may end inside a character
		}
		total := good + other + d.Replacements
		if total == 0 {
			continue
		}
		s := (float64(good) - 0.5*float64(other) - 4*float64(d.Replacements)) / float64(total)
		if s > bestScore {
			best, bestScore = c, s
		}
	}
	if bestScore >= 0.5 {
		return decodeWith(body, best.enc, best.name, "sniffed")
	}
	return decodeWith(body, charmap.Windows1252, "windows-1252", "sniffed")
}

// commonHanzi says whether a rune is in the first level of its national
// standard (the most frequent 3,500 to 5,400 characters): its encoding in
// enc starts with a lead byte in [lo, hi]. Text in the wrong Chinese
// encoding decodes to rare characters and symbols instead.
func commonHanzi(enc encoding.Encoding, lo, hi byte) func(rune) bool {
	e := enc.NewEncoder()
	seen := map[rune]bool{}
	var buf [8]byte
	return func(r rune) bool {
		if !unicode.Is(unicode.Han, r) {
			return false
		}
		if v, ok := seen[r]; ok {
			return v
		}
		n := utf8.EncodeRune(buf[:], r)
		b, err := e.Bytes(buf[:n])
		v := err == nil && len(b) == 2 && b[0] >= lo && b[0] <= hi
		seen[r] = v
		return v
	}
}

// isCJKPunct: the ideographic punctuation and full-width forms every
// CJK text uses.
func isCJKPunct(r rune) bool {
	return (r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF)
}

func hasBOM(b []byte) bool {
	return bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) || bytes.HasPrefix(b, []byte("\xfe\xff")) || bytes.HasPrefix(b, []byte("\xff\xfe"))
}

// declaresCharset: the first 1024 bytes carry a charset declaration.
func declaresCharset(b []byte) bool {
	return bytes.Contains(bytes.ToLower(b[:min(len(b), 1024)]), []byte("charset"))
}

// decodeWith converts body with enc, counting the replacement characters
// the conversion introduced.
func decodeWith(body []byte, enc encoding.Encoding, name, how string) Decoded {
	before := bytes.Count(body, []byte("\uFFFD"))
	out, err := enc.NewDecoder().Bytes(body)
	if err != nil {
		out = []byte(strings.ToValidUTF8(string(body), "\uFFFD"))
	}
	if name == "utf-8" {
		out = []byte(strings.ToValidUTF8(string(out), "\uFFFD"))
	}
	n := bytes.Count(out, []byte("\uFFFD")) - before
	return Decoded{Text: out, Charset: name, How: how, Replacements: max(n, 0)}
}
