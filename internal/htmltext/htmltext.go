// Package htmltext is lookout's one way of turning an HTML fragment (a feed
// entry, a status, an API's rich text) into the plain text it stores and
// scores: tags dropped, script and style skipped, entities decoded.
package htmltext

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// Options say how structure survives.
type Options struct {
	// Paragraph is written after a paragraph-like block ends (p, div, li),
	// and a <br> is a line break. Empty: the text becomes one line, every
	// tag but inline ones (a, b, span, …) a space, white space collapsed.
	Paragraph string
	// Alt writes an <img>'s alt text in its place (Weibo writes its
	// emoticons, [doge], as images).
	Alt bool
}

// Text returns the text of the HTML fragment s.
func Text(s string, o Options) string {
	if !strings.ContainsAny(s, "<&") {
		if o.Paragraph == "" {
			return Collapse(s)
		}
		return strings.TrimSpace(s)
	}
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	b.Grow(len(s))
	skip := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if o.Paragraph == "" {
				return Collapse(b.String())
			}
			return strings.TrimSpace(b.String())
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			switch {
			case tag == "script" || tag == "style":
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case tag == "img" && o.Alt && tt != html.EndTagToken:
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "alt" {
						b.Write(v)
					}
				}
			case o.Paragraph == "":
				if !inline[tag] {
					b.WriteByte(' ')
				}
			case tag == "br" && tt != html.EndTagToken:
				b.WriteByte('\n')
			case tt == html.EndTagToken && (tag == "p" || tag == "div" || tag == "li"):
				b.WriteString(o.Paragraph)
			}
		}
	}
}

// inline tags run on without a separator in one-line text.
var inline = map[string]bool{"a": true, "b": true, "i": true, "em": true, "strong": true, "span": true, "code": true,
	"small": true, "sub": true, "sup": true, "u": true, "s": true, "abbr": true, "font": true, "mark": true}

// Collapse turns every run of white space into one space and trims both
// ends.
func Collapse(s string) string {
	if collapsed(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// collapsed reports whether s is already collapsed (ASCII fast path).
func collapsed(s string) bool {
	prevSpace := true // a leading space needs trimming
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return false // let the slow path judge Unicode spaces
		}
		if c == ' ' {
			if prevSpace {
				return false
			}
			prevSpace = true
			continue
		}
		if c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' {
			return false
		}
		prevSpace = false
	}
	return !prevSpace || s == ""
}
