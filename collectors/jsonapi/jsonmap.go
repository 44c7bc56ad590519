package jsonapi

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"lookout/collectors/poll"
	"lookout/config"
	"lookout/item"

	"lookout/internal/htmltext"
)

// Mapping is the config block that turns an arbitrary JSON document into
// items. json_api and websocket_json share it. Every field is a JSON path:
// keys separated by dots, array indexes as `.0` or `[0]`, `[*]` for every
// element of an array (a lone object is taken as the one element), `.*` for
// every value of an object, and `["odd.key"]` for keys that contain dots.
// A path starting with `^` is read from the root of the whole document (a
// websocket_json frame, a json_api page) instead of from the item: `^.online`
// is the online count beside the item array. In websocket_json a metric
// with such a path is taken once per frame, not once per item.
//
//	mapping:
//	  items: data.replies[*]      # where the list of items is; empty = the document
//	  id: rpid_str
//	  text: content.message
//	  author: member.uname
//	  author_id: mid
//	  time: ctime
//	  time_format: unix           # unix, unix_ms, unix_us, rfc3339, auto or a Go layout
//	  url: link
//	  value: like                 # → Item.Value
//	  metrics: {likes: like}      # each → a separate metric item
//	  kind: comment
type Mapping struct {
	Items      string            `yaml:"items"`
	ID         string            `yaml:"id"`
	Text       string            `yaml:"text"`
	Author     string            `yaml:"author"`
	AuthorID   string            `yaml:"author_id"`
	Time       string            `yaml:"time"`
	TimeFormat string            `yaml:"time_format"`
	TimeZone   string            `yaml:"time_zone"` // for layouts without an offset; default the source's timezone
	URL        string            `yaml:"url"`
	Room       string            `yaml:"room"`  // path; the source's room when empty or absent
	Value      string            `yaml:"value"` // numeric path → Item.Value
	Count      string            `yaml:"count"` // numeric path → Item.Count
	Metrics    map[string]string `yaml:"metrics"`
	Kind       string            `yaml:"kind"`       // item kind, default post
	StripHTML  bool              `yaml:"strip_html"` // text is HTML: keep only its text
}

// Path is a compiled path such as `data.items[*].text`.
type Path struct {
	src  string
	segs []jsonmapSeg
	root bool // starts with ^: read from the document's root, not the item
}

type jsonmapSeg struct {
	key   string
	index int  // >= 0: array index
	all   bool // every element of an array; with dot (.*) also every value of an object
	elems bool // [*]: an object is one element, not a set of values
}

// String returns the path as written.
func (p Path) String() string { return p.src }

// IsZero reports whether the path is empty (it then selects the document).
func (p Path) IsZero() bool { return len(p.segs) == 0 && !p.root }

// Root reports whether the path is read from the document's root (it
// starts with ^) rather than from the item.
func (p Path) Root() bool { return p.root }

// from is what p is read from: the document for a root path, else el.
func (p Path) from(doc, el any) any {
	if p.root {
		return doc
	}
	return el
}

// ParsePath compiles a path. An empty string selects the whole document.
func ParsePath(s string) (Path, error) {
	p := Path{src: s}
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "^"); ok {
		p.root = true
		s = strings.TrimPrefix(rest, ".")
	}
	s = strings.TrimPrefix(s, "$")
	i := 0
	expectKey := true
	for i < len(s) {
		c := s[i]
		switch {
		case c == '.':
			if i == len(s)-1 {
				return p, fmt.Errorf("json path %q: ends with a dot", p.src)
			}
			i++
			expectKey = true
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return p, fmt.Errorf("json path %q: unclosed [", p.src)
			}
			inner := s[i+1 : i+end]
			if len(inner) >= 2 && (inner[0] == '"' || inner[0] == '\'') {
				// quoted key may itself contain ']': find the closing quote first
				q := inner[0]
				close := strings.IndexByte(s[i+2:], q)
				if close < 0 || i+2+close+1 >= len(s) || s[i+2+close+1] != ']' {
					return p, fmt.Errorf("json path %q: bad quoted key", p.src)
				}
				p.segs = append(p.segs, jsonmapSeg{key: s[i+2 : i+2+close], index: -1})
				i = i + 2 + close + 2
				expectKey = false
				continue
			}
			switch inner {
			case "*", "":
				p.segs = append(p.segs, jsonmapSeg{all: true, elems: true, index: -1})
			default:
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return p, fmt.Errorf("json path %q: [%s] is neither an index nor *", p.src, inner)
				}
				p.segs = append(p.segs, jsonmapSeg{index: n})
			}
			i += end + 1
			expectKey = false
		default:
			if !expectKey {
				return p, fmt.Errorf("json path %q: missing dot before %q", p.src, s[i:])
			}
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			tok := s[i:j]
			if strings.ContainsAny(tok, "]\"'") {
				return p, fmt.Errorf("json path %q: unexpected character in key %q", p.src, tok)
			}
			switch {
			case tok == "*":
				p.segs = append(p.segs, jsonmapSeg{all: true, index: -1})
			default:
				seg := jsonmapSeg{key: tok, index: -1}
				if n, err := strconv.Atoi(tok); err == nil && n >= 0 {
					// `items.0` indexes arrays but still works as an object key
					seg.index = n
				}
				p.segs = append(p.segs, seg)
			}
			i = j
			expectKey = false
		}
	}
	return p, nil
}

// Get returns the first value the path selects.
func (p Path) Get(v any) (any, bool) {
	var out any
	found := false
	p.walk(v, 0, func(x any) bool {
		out, found = x, true
		return false
	})
	return out, found
}

// All returns every value the path selects; a path ending at an array
// yields the array's elements.
func (p Path) All(v any) []any {
	var out []any
	p.walk(v, 0, func(x any) bool {
		if arr, ok := x.([]any); ok {
			out = append(out, arr...)
		} else {
			out = append(out, x)
		}
		return true
	})
	return out
}

// walk calls fn for each match; fn returns false to stop.
func (p Path) walk(v any, i int, fn func(any) bool) bool {
	if i == len(p.segs) {
		return fn(v)
	}
	s := p.segs[i]
	switch x := v.(type) {
	case map[string]any:
		if s.all && s.elems {
			// data[*] over a lone object: the object is the one element
			return p.walk(x, i+1, fn)
		}
		if s.all {
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if !p.walk(x[k], i+1, fn) {
					return false
				}
			}
			return true
		}
		if s.key == "" && s.index >= 0 {
			return true
		}
		if c, ok := x[s.key]; ok {
			return p.walk(c, i+1, fn)
		}
	case []any:
		if s.all {
			for _, c := range x {
				if !p.walk(c, i+1, fn) {
					return false
				}
			}
			return true
		}
		if s.index >= 0 && s.index < len(x) {
			return p.walk(x[s.index], i+1, fn)
		}
	}
	return true
}

// Mapper is a compiled Mapping.
type Mapper struct {
	items, id, text, author, authorID, ts, url, room, value, count Path
	metrics                                                        []jsonmapMetric
	timeFormat                                                     string
	loc                                                            *time.Location
	kind                                                           item.Kind
	stripHTML                                                      bool
}

type jsonmapMetric struct {
	name string
	path Path
}

// NewMapper validates and compiles m. Times without an offset are in
// m.TimeZone, config.DefaultTimezone when empty (see TimeZoneFrom).
func NewMapper(m Mapping) (*Mapper, error) {
	jm := &Mapper{timeFormat: strings.TrimSpace(m.TimeFormat), stripHTML: m.StripHTML}
	for _, f := range []struct {
		name string
		src  string
		dst  *Path
	}{
		{"items", m.Items, &jm.items}, {"id", m.ID, &jm.id}, {"text", m.Text, &jm.text},
		{"author", m.Author, &jm.author}, {"author_id", m.AuthorID, &jm.authorID}, {"time", m.Time, &jm.ts},
		{"url", m.URL, &jm.url}, {"room", m.Room, &jm.room}, {"value", m.Value, &jm.value}, {"count", m.Count, &jm.count},
	} {
		p, err := ParsePath(f.src)
		if err != nil {
			return nil, fmt.Errorf("mapping.%s: %w", f.name, err)
		}
		*f.dst = p
	}
	names := make([]string, 0, len(m.Metrics))
	for k := range m.Metrics {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		p, err := ParsePath(m.Metrics[name])
		if err != nil {
			return nil, fmt.Errorf("mapping.metrics.%s: %w", name, err)
		}
		if p.IsZero() {
			return nil, fmt.Errorf("mapping.metrics.%s: empty path", name)
		}
		jm.metrics = append(jm.metrics, jsonmapMetric{name: name, path: p})
	}
	jm.kind = item.KindPost
	if m.Kind != "" {
		jm.kind = item.Kind(m.Kind)
		if !jm.kind.Valid() {
			return nil, fmt.Errorf("mapping.kind: unknown kind %q (post, comment, chat, gift, superchat, enter, like, metric)", m.Kind)
		}
	}
	if jm.kind == item.KindMetric && len(jm.metrics) == 0 && jm.value.IsZero() {
		return nil, fmt.Errorf("mapping: kind metric needs metrics or value")
	}
	if jm.kind != item.KindMetric && jm.id.IsZero() && jm.text.IsZero() {
		return nil, fmt.Errorf("mapping: set at least id or text")
	}
	switch strings.ToLower(jm.timeFormat) {
	case "", "auto", "unix", "unix_s", "s", "unix_ms", "ms", "unix_us", "us", "rfc3339":
		jm.timeFormat = strings.ToLower(jm.timeFormat)
	default:
		if !strings.ContainsAny(jm.timeFormat, "0123456789") {
			return nil, fmt.Errorf("mapping.time_format: %q is neither unix, unix_ms, unix_us, rfc3339 nor a Go layout such as 2006-01-02 15:04:05", jm.timeFormat)
		}
	}
	loc, err := config.LoadTimezone(m.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("mapping.time_zone: %w", err)
	}
	jm.loc = loc
	return jm, nil
}

// TimeZoneFrom fills m.TimeZone from the source's timezone when the
// mapping sets none.
func (m Mapping) TimeZoneFrom(src config.SourceConfig) Mapping {
	if m.TimeZone == "" {
		m.TimeZone = src.Timezone
	}
	return m
}

// Kind is the item kind the mapping produces.
func (m *Mapper) Kind() item.Kind { return m.kind }

// Record is one mapped element, before it becomes items.
type Record struct {
	ID       string
	Text     string
	Author   string
	AuthorID string
	URL      string
	Room     string
	TS       time.Time // zero when the element has no time
	Value    float64
	HasValue bool // the value path held a number (0 included)
	Count    int64
	Metrics  map[string]float64
	Raw      []byte
}

// DecodeJSON parses a document the way the mapper expects it: numbers are
// kept as json.Number so that 64-bit ids survive.
func DecodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// Elements returns the item elements in doc: what the items path selects
// (an array is expanded), or the document itself (an array is expanded).
// found is false when the items path selects nothing at all, which is
// Shape drift rather than an empty page.
func (m *Mapper) Elements(doc any) (els []any, found bool) {
	if m.items.IsZero() {
		if arr, ok := doc.([]any); ok {
			return arr, true
		}
		if doc == nil {
			return nil, false
		}
		return []any{doc}, true
	}
	if _, ok := m.items.Get(doc); !ok {
		return nil, false
	}
	all := m.items.All(doc)
	out := all[:0]
	for _, e := range all {
		if e != nil {
			out = append(out, e)
		}
	}
	return out, true
}

// Record maps one element el of the document doc (root paths read doc).
// The record is usable even when err is not nil: err reports a field that
// was present but unreadable (a bad time), and the field is then left
// zero.
func (m *Mapper) Record(doc, el any) (Record, error) {
	var r Record
	var errs []error
	r.Text = m.str(m.text, doc, el)
	if m.stripHTML {
		r.Text = jsonmapStripHTML(r.Text)
	}
	r.Author = m.str(m.author, doc, el)
	r.AuthorID = m.idStr(m.authorID, doc, el)
	r.URL = m.str(m.url, doc, el)
	r.Room = m.str(m.room, doc, el)
	if !m.ts.IsZero() {
		if v, ok := m.ts.Get(m.ts.from(doc, el)); ok && v != nil {
			t, err := jsonmapTime(v, m.timeFormat, m.loc)
			if err != nil {
				errs = append(errs, fmt.Errorf("time %s: %w", m.ts.src, err))
			} else {
				r.TS = t
			}
		}
	}
	if !m.value.IsZero() {
		if f, ok := jsonmapFloat(m.value.Get(m.value.from(doc, el))); ok {
			r.Value, r.HasValue = f, true
		}
	}
	if !m.count.IsZero() {
		if f, ok := jsonmapFloat(m.count.Get(m.count.from(doc, el))); ok {
			r.Count = int64(f)
		}
	}
	for _, mt := range m.metrics {
		if mt.path.root {
			continue // a frame metric: FrameMetrics
		}
		if f, ok := jsonmapFloat(mt.path.Get(el)); ok {
			if r.Metrics == nil {
				r.Metrics = make(map[string]float64, len(m.metrics))
			}
			r.Metrics[mt.name] = f
		}
	}
	raw, err := json.Marshal(el)
	if err == nil {
		r.Raw = raw
	}
	r.ID = m.idStr(m.id, doc, el)
	if r.ID == "" {
		// No id in the payload: a content hash is stable across polls, so
		// dedupe still works.
		h := sha1.Sum(raw)
		r.ID = "h" + hex.EncodeToString(h[:10])
	}
	return r, errors.Join(errs...)
}

func (m *Mapper) str(p Path, doc, el any) string {
	if p.IsZero() {
		return ""
	}
	v, ok := p.Get(p.from(doc, el))
	if !ok {
		return ""
	}
	return jsonmapString(v)
}

// idStr reads an id: a number written with a fraction or an exponent
// that is a whole number (9006.0, 9.006e3) is the same id as 9006, so
// that an API switching between forms does not emit every item again.
func (m *Mapper) idStr(p Path, doc, el any) string {
	if p.IsZero() {
		return ""
	}
	v, ok := p.Get(p.from(doc, el))
	if !ok {
		return ""
	}
	return jsonmapID(v)
}

// jsonmapID renders an id value (see idStr).
func jsonmapID(v any) string {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	default:
		return jsonmapString(v)
	}
	if !strings.ContainsAny(s, ".eE") {
		return s
	}
	f, _, err := big.ParseFloat(s, 10, 256, big.ToNearestEven)
	if err != nil || !f.IsInt() || f.MantExp(nil) > 256 {
		return s // a fraction, or too long a number to spell out
	}
	return f.Text('f', 0)
}

// Items turns a record into pipeline items: the record itself (unless the
// mapping's kind is metric) followed by one metric item per mapped metric.
// base carries Source, Platform, Room and Labels.
func (m *Mapper) Items(r Record, base item.Item, now time.Time) []item.Item {
	ts := r.TS
	if ts.IsZero() {
		ts = now
	}
	room := base.Room
	if r.Room != "" {
		room = r.Room
	}
	out := make([]item.Item, 0, 1+len(r.Metrics))
	if m.kind != item.KindMetric {
		it := base
		it.Kind = m.kind
		it.Room = room
		it.ID, it.Text, it.Author, it.AuthorID, it.URL = r.ID, r.Text, r.Author, r.AuthorID, r.URL
		it.TS = ts
		it.Value, it.Count, it.HasValue = r.Value, r.Count, r.HasValue
		it.Raw = r.Raw
		out = append(out, it)
	} else if !m.value.IsZero() {
		it := base
		it.Kind = item.KindMetric
		it.Room = room
		it.ID = r.ID
		it.Metric = "value"
		it.Value = r.Value
		it.TS = ts
		out = append(out, it)
	}
	for _, mt := range m.metrics {
		v, ok := r.Metrics[mt.name]
		if !ok {
			continue
		}
		it := base
		it.Kind = item.KindMetric
		it.Room = room
		it.ID = r.ID + "#" + mt.name
		it.Metric = mt.name
		it.Value = v
		it.TS = ts
		out = append(out, it)
	}
	return out
}

// HasFrameMetrics reports whether a metric is read from the document's
// root (a ^ path).
func (m *Mapper) HasFrameMetrics() bool {
	for _, mt := range m.metrics {
		if mt.path.root {
			return true
		}
	}
	return false
}

// FrameMetrics returns one metric item per metric read from doc's root (a
// ^ path) that doc holds a number at. docID names this delivery of the
// document: the items' ids are docID#name.
func (m *Mapper) FrameMetrics(doc any, docID string, base item.Item, now time.Time) []item.Item {
	var out []item.Item
	for _, mt := range m.metrics {
		if !mt.path.root {
			continue
		}
		f, ok := jsonmapFloat(mt.path.Get(doc))
		if !ok {
			continue
		}
		it := base
		it.Kind = item.KindMetric
		it.ID = docID + "#" + mt.name
		it.Metric = mt.name
		it.Value = f
		it.TS = now
		out = append(out, it)
	}
	return out
}

// Field is one configured path of a mapping, by its config name
// ("text", "metrics.viewers").
type Field struct {
	Name string
	Path Path
}

// Fields lists the mapping's configured paths, items first.
func (m *Mapper) Fields() []Field {
	var out []Field
	for _, f := range []struct {
		name string
		p    Path
	}{
		{"items", m.items}, {"id", m.id}, {"text", m.text}, {"author", m.author}, {"author_id", m.authorID}, {"time", m.ts},
		{"url", m.url}, {"room", m.room}, {"value", m.value}, {"count", m.count},
	} {
		if !f.p.IsZero() {
			out = append(out, Field{Name: f.name, Path: f.p})
		}
	}
	for _, mt := range m.metrics {
		out = append(out, Field{Name: "metrics." + mt.name, Path: mt.path})
	}
	return out
}

// jsonmapString renders a scalar as text; containers have no text.
func jsonmapString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func jsonmapFloat(v any, ok bool) (float64, bool) {
	if !ok {
		return 0, false
	}
	var f float64
	var err error
	switch x := v.(type) {
	case json.Number:
		f, err = x.Float64()
	case float64:
		f = x
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
	case bool:
		if x {
			f = 1
		}
	default:
		return 0, false
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// jsonmapBool reads true/false, 1/0 and their string forms.
func jsonmapBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(x)
		return b, err == nil
	}
	if f, ok := jsonmapFloat(v, true); ok {
		return f != 0, true
	}
	return false, false
}

// jsonmapTime reads a timestamp in the given format (see poll.ParseStamp).
func jsonmapTime(v any, format string, loc *time.Location) (time.Time, error) {
	s := strings.TrimSpace(jsonmapString(v))
	if s == "" {
		return time.Time{}, fmt.Errorf("not a scalar")
	}
	return poll.ParseStamp(s, format, loc)
}

// jsonmapStripHTML returns the text of an HTML fragment: tags dropped,
// entities decoded, <br> and block ends as newlines, and emoticon images
// replaced by their alt text (Weibo writes [doge] as an <img alt>).
func jsonmapStripHTML(s string) string {
	return htmltext.Text(s, htmltext.Options{Paragraph: "\n", Alt: true})
}
