// Package labels is lookout's one label matcher, with Alertmanager's syntax
// and meaning: `name=value`, `name!=value`, `name=~regex`, `name!~regex`.
// Routes, inhibition rules, silences and rule `match:` all use it.
//
// A label that is absent reads as the empty string, so `team!="live"`
// matches an alert without a team label and `team=""` matches only such
// alerts. Regular expressions are fully anchored: `rule=~"neg"` matches the
// rule named neg, not negative_share.
package labels

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"lookout/item"
)

// MatchType is a matcher's operator.
type MatchType int

const (
	MatchEqual     MatchType = iota // =
	MatchNotEqual                   // !=
	MatchRegexp                     // =~
	MatchNotRegexp                  // !~
)

func (t MatchType) String() string {
	switch t {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	}
	return fmt.Sprintf("MatchType(%d)", int(t))
}

// The item fields a matcher may read without looking at item labels.
const (
	fieldLabel = iota
	fieldSource
	fieldPlatform
	fieldRoom
	fieldKind
)

// Matcher is one condition on one label.
type Matcher struct {
	Name  string
	Type  MatchType
	Value string

	re    *regexp.Regexp // =~ and !~: Value anchored at both ends
	field int            // what MatchItem reads: an item field or a label
}

// New builds a matcher; for =~ and !~ the value must be a valid regular
// expression (RE2 syntax, as in Go's regexp).
func New(t MatchType, name, value string) (*Matcher, error) {
	if !validName(name) {
		return nil, fmt.Errorf("bad label name %q: want letters, digits, _ or :, not starting with a digit", name)
	}
	m := &Matcher{Name: name, Type: t, Value: value}
	switch t {
	case MatchEqual, MatchNotEqual:
	case MatchRegexp, MatchNotRegexp:
		// Checked alone first, so that an error quotes what was written.
		if _, err := regexp.Compile(value); err != nil {
			return nil, fmt.Errorf("bad regular expression: %w", err)
		}
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return nil, fmt.Errorf("bad regular expression: %w", err)
		}
		m.re = re
	default:
		return nil, fmt.Errorf("unknown match type %d", int(t))
	}
	switch name {
	case "source":
		m.field = fieldSource
	case "platform":
		m.field = fieldPlatform
	case "room":
		m.field = fieldRoom
	case "kind":
		m.field = fieldKind
	}
	return m, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Matches tests one value (the empty string for an absent label).
func (m *Matcher) Matches(v string) bool {
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	case MatchNotRegexp:
		return !m.re.MatchString(v)
	}
	return false
}

// String writes the matcher back in the syntax Parse reads, the value
// always quoted: severity=~"red|yellow".
func (m *Matcher) String() string {
	return m.Name + m.Type.String() + quote(m.Value)
}

// quote double-quotes v, escaping backslash, double quote and line feed.
func quote(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Matchers are conditions that must all hold. No matchers match
// everything.
type Matchers []*Matcher

// Matches tests a label set; an absent label reads as "".
func (ms Matchers) Matches(labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels[m.Name]) {
			return false
		}
	}
	return true
}

// MatchItem tests an item. The names source, platform, room and kind read
// the item's fields; any other name reads the item's labels. It does not
// allocate: rules call it for every item.
func (ms Matchers) MatchItem(it *item.Item) bool {
	for _, m := range ms {
		var v string
		switch m.field {
		case fieldSource:
			v = it.Source
		case fieldPlatform:
			v = it.Platform
		case fieldRoom:
			v = it.Room
		case fieldKind:
			v = string(it.Kind)
		default:
			v = it.Labels[m.Name]
		}
		if !m.Matches(v) {
			return false
		}
	}
	return true
}

// String is the list in braces, as ParseList reads it:
// {room="1", severity=~"red|yellow"}.
func (ms Matchers) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Strings is each matcher's String.
func (ms Matchers) Strings() []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

// FromMap reads the older map form `match: {label: value}`: each pair is an
// equality, except that a value written "~regex" is an anchored regular
// expression. The matchers come sorted by label name.
func FromMap(m map[string]string) (Matchers, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(Matchers, 0, len(m))
	for _, k := range names {
		mt, err := FromPair(k, m[k])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out = append(out, mt)
	}
	return out, nil
}

// FromPair is one pair of the map form: name=value, or name=~regex when the
// value is written "~regex".
func FromPair(name, value string) (*Matcher, error) {
	if strings.HasPrefix(value, "~") {
		return New(MatchRegexp, name, value[1:])
	}
	return New(MatchEqual, name, value)
}

// Parse reads one matcher in Alertmanager's syntax: a label name, an
// operator (=, !=, =~, !~) and a value, with optional spaces between them.
// The value may be double-quoted; inside quotes \" is a quote, \\ a
// backslash and \n a line feed. Unquoted, it runs to the end of the string
// (trailing spaces dropped) and must not contain a double quote.
//
//	room=21452505
//	severity=~"red|yellow"
//	rule !~ "test.*"
func Parse(s string) (*Matcher, error) {
	rest := strings.TrimSpace(s)
	n := 0
	for n < len(rest) && nameByte(rest[n], n) {
		n++
	}
	name := rest[:n]
	if name == "" {
		return nil, fmt.Errorf("matcher %q: want a label name first, as in room=21452505 or severity=~\"red|yellow\"", s)
	}
	rest = strings.TrimLeft(rest[n:], " \t")
	var t MatchType
	switch {
	case strings.HasPrefix(rest, "=~"):
		t, rest = MatchRegexp, rest[2:]
	case strings.HasPrefix(rest, "!~"):
		t, rest = MatchNotRegexp, rest[2:]
	case strings.HasPrefix(rest, "!="):
		t, rest = MatchNotEqual, rest[2:]
	case strings.HasPrefix(rest, "="):
		t, rest = MatchEqual, rest[1:]
	default:
		return nil, fmt.Errorf("matcher %q: want an operator after %q: =, !=, =~ or !~", s, name)
	}
	raw := strings.TrimSpace(rest)
	value, err := unquote(raw)
	if err != nil {
		return nil, fmt.Errorf("matcher %q: %w", s, err)
	}
	m, err := New(t, name, value)
	if err != nil {
		return nil, fmt.Errorf("matcher %q: %w", s, err)
	}
	return m, nil
}

func nameByte(c byte, i int) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
}

// unquote reads a matcher's value: quoted with escapes, or bare.
func unquote(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", fmt.Errorf("value is not valid UTF-8")
	}
	if !strings.HasPrefix(raw, `"`) {
		if strings.Contains(raw, `"`) {
			return "", fmt.Errorf("unquoted value contains a double quote; quote the value and write \\\" inside")
		}
		return raw, nil
	}
	var b strings.Builder
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '"':
			if i != len(raw)-1 {
				return "", fmt.Errorf("text after the closing quote: %q", raw[i+1:])
			}
			return b.String(), nil
		case '\\':
			if i+1 < len(raw) {
				switch raw[i+1] {
				case '"', '\\':
					b.WriteByte(raw[i+1])
					i++
					continue
				case 'n':
					b.WriteByte('\n')
					i++
					continue
				}
			}
			// A backslash before anything else is a backslash.
			b.WriteByte('\\')
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("value %s has no closing quote", raw)
}

// ParseList reads matchers separated by commas, optionally in braces, as
// Alertmanager's matchers lists and amtool do: `{room="1", severity="red"}`
// or `room=1,severity=red`. Commas inside double quotes do not separate.
// A trailing comma is allowed; an empty list is an error.
func ParseList(s string) (Matchers, error) {
	body := strings.TrimSpace(s)
	if strings.HasPrefix(body, "{") {
		if !strings.HasSuffix(body, "}") {
			return nil, fmt.Errorf("matchers %q: { without closing }", s)
		}
		body = body[1 : len(body)-1]
	}
	var (
		out     Matchers
		inQuote bool
		start   int
	)
	flush := func(part string, last bool) error {
		if strings.TrimSpace(part) == "" {
			if last && len(out) > 0 {
				return nil // trailing comma
			}
			return fmt.Errorf("matchers %q: empty matcher", s)
		}
		m, err := Parse(part)
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	}
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '\\':
			if inQuote {
				i++ // the escaped byte cannot open, close or separate
			}
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				if err := flush(body[start:i], false); err != nil {
					return nil, err
				}
				start = i + 1
			}
		}
	}
	if err := flush(body[start:], true); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseAll reads each string with ParseList and joins the results: a
// `matchers:` list, or a command line's arguments.
func ParseAll(list []string) (Matchers, error) {
	var out Matchers
	for _, s := range list {
		ms, err := ParseList(s)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// MustParseList is ParseList for matchers written in the program; it
// panics on an error.
func MustParseList(s string) Matchers {
	ms, err := ParseList(s)
	if err != nil {
		panic(err)
	}
	return ms
}
