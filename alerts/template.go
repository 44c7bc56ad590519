package alerts

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"
)

// TemplateData is what a receiver's `template` (Go text/template) sees.
//
//	{{.Title}} {{.Count}} {{.Severity}} {{.Status}} {{.Room}}
//	{{range .Shown}}{{.Rule}} {{.Summary}} {{range numbers .}}{{.Name}}={{.Text}}{{end}}{{end}}
type TemplateData struct {
	Receiver string
	GroupKey string
	Title    string   // e.g. "RED · negative_ratio firing · room 21452505"
	Count    int      // events in this message
	Severity Severity // the highest severity among them
	Status   string   // firing when any event fires, else resolved
	Room     string   // the room all events share, "" when mixed
	Events   []Event  // all events, oldest first
	Shown    []Event  // the first templateShownMax events
	More     int      // events not in Shown
	Firing   int
	Resolved int
	Footer   string // "lookout · 2026-01-01 12:00:00 UTC"
}

// templateShownMax is how many events a message spells out; the rest are
// counted ("…and 40 more").
const templateShownMax = 10

// NamedNumber is one figure of an event, formatted for people.
type NamedNumber struct {
	Name  string
	Value float64
	Text  string
}

func newTemplateData(n Notification, now time.Time) TemplateData {
	d := TemplateData{Receiver: n.Receiver, GroupKey: n.GroupKey, Events: n.Events, Count: len(n.Events)}
	rooms := map[string]bool{}
	for i := range n.Events {
		e := &n.Events[i]
		if e.Severity.Rank() > d.Severity.Rank() {
			d.Severity = e.Severity
		}
		if e.State == Resolved {
			d.Resolved++
		} else {
			d.Firing++
		}
		rooms[e.Room] = true
	}
	if d.Severity == "" {
		d.Severity = Green
	}
	d.Status = "resolved"
	if d.Firing > 0 {
		d.Status = "firing"
	}
	if len(rooms) == 1 {
		for r := range rooms {
			d.Room = r
		}
	}
	d.Shown = n.Events
	if len(d.Shown) > templateShownMax {
		d.Shown = d.Shown[:templateShownMax]
		d.More = len(n.Events) - templateShownMax
	}
	d.Title = templateTitle(&d)
	d.Footer = "lookout · " + now.UTC().Format("2006-01-02 15:04:05 UTC")
	return d
}

// templateWhereShort names where an event happened in a column: its room,
// or its source for source-wide alerts (source_broken) that have none.
func templateWhereShort(e *Event) string {
	if e.Room == "" && e.Source != "" {
		return "source " + e.Source
	}
	return "room " + e.Room
}

func templateTitle(d *TemplateData) string {
	sev := strings.ToUpper(string(d.Severity))
	var b strings.Builder
	b.WriteString(sev)
	b.WriteString(" · ")
	if d.Count == 1 {
		e := &d.Events[0]
		b.WriteString(e.Rule)
		b.WriteString(" ")
		b.WriteString(templateStateWord(e))
	} else {
		switch {
		case d.Resolved == 0:
			fmt.Fprintf(&b, "%d alerts firing", d.Count)
		case d.Firing == 0:
			fmt.Fprintf(&b, "%d alerts resolved", d.Count)
		default:
			fmt.Fprintf(&b, "%d alerts (%d firing, %d resolved)", d.Count, d.Firing, d.Resolved)
		}
	}
	if d.Room != "" {
		b.WriteString(" · room ")
		b.WriteString(d.Room)
	}
	return b.String()
}

func templateStateWord(e *Event) string {
	switch e.State {
	case Resolved:
		return "resolved"
	case Firing:
		if e.Prev == Firing {
			if e.PrevSeverity != "" && e.PrevSeverity.Rank() < e.Severity.Rank() {
				return "escalated"
			}
			return "still firing"
		}
		return "firing"
	}
	return string(e.State)
}

// templateLight is the KPI light (红黄绿灯) of a severity; a resolved
// alert is green whatever its severity was.
func templateLight(s Severity) string {
	switch s {
	case Red:
		return "🔴"
	case Yellow:
		return "🟡"
	}
	return "🟢"
}

func templateEventLight(e Event) string {
	if e.State == Resolved {
		return "🟢"
	}
	return templateLight(e.Severity)
}

// templateNumbers lists an event's figures: the value and threshold first,
// then Numbers by name.
func templateNumbers(e Event) []NamedNumber {
	var out []NamedNumber
	names := make([]string, 0, len(e.Numbers))
	for k := range e.Numbers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := e.Numbers[k]
		out = append(out, NamedNumber{Name: k, Value: v, Text: templateFormatNumber(templateNumberHint(e, k), v)})
	}
	if len(out) == 0 && e.RuleKind != KindSourceBroken { // a yes/no alert has no figures to show
		out = append(out,
			NamedNumber{Name: "value", Value: e.Value, Text: templateFormatNumber(templateNumberHint(e, "value"), e.Value)},
			NamedNumber{Name: "threshold", Value: e.Threshold, Text: templateFormatNumber(templateNumberHint(e, "threshold"), e.Threshold)})
	}
	return out
}

// templateNumberHint names what a figure measures so that it is printed
// right: the value and threshold of a ratio rule are ratios, a metric
// drop is a fraction.
func templateNumberHint(e Event, name string) string {
	switch name {
	case "value", "threshold", "level":
		switch e.RuleKind {
		case "negative_ratio":
			return "ratio"
		case "metric_drop":
			return "drop_rate"
		}
	case "drop", "fall":
		return "drop_rate"
	}
	return name
}

// templateFormatNumber prints ratios as percentages and counts without
// decimals.
func templateFormatNumber(name string, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	lname := strings.ToLower(name)
	if (strings.Contains(lname, "ratio") || strings.Contains(lname, "share") || strings.HasSuffix(lname, "rate") || strings.Contains(lname, "pct")) && math.Abs(v) <= 1 {
		return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// templateSamples returns up to n samples.
func templateSamples(e Event, n int) []Sample {
	if len(e.Samples) <= n {
		return e.Samples
	}
	return e.Samples[:n]
}

// templateTruncate cuts s to at most n runes, marking the cut.
func templateTruncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}

// templateCutMarker ends a message cut to fit a platform's size limit.
const templateCutMarker = "\n\n…(cut to fit the message size limit)"

// templateCutBytes cuts a message body to at most n bytes on a rune
// boundary, ending it with templateCutMarker.
func templateCutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(0, n-len(templateCutMarker))
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + templateCutMarker
}

// templateTruncateBytes cuts s to at most n bytes on a rune boundary.
func templateTruncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// templateMarkdownEscape keeps user text (chat lines, names) from turning
// into markdown: it neutralises the characters DingTalk, Feishu and WeCom
// render, and folds newlines so a sample stays one quoted line.
func templateMarkdownEscape(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '#', '<', '>', '|', '~':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// slackEscape is Slack mrkdwn's escaping: &, < and > only.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// wecomColor maps an event to WeCom's markdown font colours.
func wecomColor(e Event) string {
	switch {
	case e.State == Resolved || e.Severity == Green:
		return "info"
	case e.Severity == Red:
		return "warning"
	}
	return "comment"
}

func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"light":      templateLight,
		"eventLight": templateEventLight,
		"upper":      strings.ToUpper,
		"lower":      strings.ToLower,
		"join":       strings.Join,
		"numbers":    templateNumbers,
		"num":        templateFormatNumber,
		"samples":    templateSamples,
		"truncate":   templateTruncate,
		"md":         templateMarkdownEscape,
		"mrkdwn":     slackEscape,
		"state":      func(e Event) string { return templateStateWord(&e) },
		"time":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"clock":      func(t time.Time) string { return t.UTC().Format("15:04:05") },
		"label":      func(e Event, k string) string { return e.Labels[k] },
		"wecomColor": wecomColor,
		"wecomTitleColor": func(d TemplateData) string {
			return wecomColor(Event{Severity: d.Severity, State: State(d.Status)})
		},
		"json": func(v any) (string, error) {
			b, err := notifyJSON(v)
			return string(b), err
		},
	}
}

// parseReceiverTemplate parses a receiver's template, or def when it has
// none.
func parseReceiverTemplate(name, text, def string) (*template.Template, error) {
	if text == "" {
		text = def
	}
	t, err := template.New(name).Funcs(templateFuncs()).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return t, nil
}

func executeTemplate(t *template.Template, d TemplateData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", &NotifyError{Reason: "template", Err: fmt.Errorf("template: %w", err)}
	}
	return b.String(), nil
}

// templateMarkdownDefault is the DingTalk and Feishu body: a light and a
// title, then per event the summary, the numbers that fired and the top
// sample messages.
const templateMarkdownDefault = `### {{light .Severity}} {{.Title}}
{{$many := gt .Count 1}}{{range .Shown}}{{if $many}}
**{{eventLight .}} {{upper (printf "%s" .Severity)}} · {{.Rule}} {{state .}}** · room {{md .Room}}
{{end}}
> {{md .Summary}}

{{range numbers .}}- {{.Name}}: **{{.Text}}**
{{end}}{{range samples . 3}}
> 「{{md (truncate .Text 80)}}」 — {{md .Author}}
{{end}}{{end}}{{if .More}}
…and {{.More}} more
{{end}}
###### {{.Footer}}`

// templateWeComDefault uses WeCom's font colours: warning (orange-red),
// comment (grey), info (green).
const templateWeComDefault = `{{light .Severity}} <font color="{{wecomTitleColor .}}">**{{.Title}}**</font>
{{$many := gt .Count 1}}{{range .Shown}}
{{if $many}}> <font color="{{wecomColor .}}">{{upper (printf "%s" .Severity)}}</font> **{{.Rule}}** {{state .}} · room {{md .Room}}
{{end}}> {{md .Summary}}
{{range numbers .}}> {{.Name}}: <font color="comment">{{.Text}}</font>
{{end}}{{range samples . 2}}> 「{{md (truncate .Text 60)}}」 — {{md .Author}}
{{end}}{{end}}{{if .More}}
…and {{.More}} more
{{end}}
<font color="comment">{{.Footer}}</font>`
