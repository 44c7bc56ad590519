package alerts

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/text/width"

	"lookout/config"
)

// consoleNotifier prints alerts for a terminal: this is what `lookout demo`
// shows. One aligned line per event (light, severity, state, rule, room,
// summary), then the numbers and the top sample messages indented below.
type consoleNotifier struct {
	name  string
	out   io.Writer
	color bool
	mu    sync.Mutex // one message at a time, lines never interleave
}

func newConsoleNotifier(name string, c *config.ConsoleConfig, opts NotifierOptions) (*consoleNotifier, error) {
	color := consoleIsTerminal(opts.Out) && os.Getenv("NO_COLOR") == ""
	if os.Getenv("FORCE_COLOR") != "" {
		color = true
	}
	if c != nil && c.Color != nil {
		color = *c.Color
	}
	return &consoleNotifier{name: name, out: opts.Out, color: color}, nil
}

// consoleIsTerminal reports whether w is a character device (a TTY).
func consoleIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (c *consoleNotifier) Name() string { return c.name }

const (
	consoleReset  = "\x1b[0m"
	consoleBold   = "\x1b[1m"
	consoleDim    = "\x1b[2m"
	consoleRed    = "\x1b[1;31m"
	consoleYellow = "\x1b[1;33m"
	consoleGreen  = "\x1b[1;32m"
	consoleCyan   = "\x1b[36m"
)

func (c *consoleNotifier) paint(code, s string) string {
	if !c.color || s == "" {
		return s
	}
	return code + s + consoleReset
}

func (c *consoleNotifier) Notify(_ context.Context, n Notification) (bool, error) {
	var b strings.Builder
	if n.Report != nil {
		fmt.Fprintf(&b, "%s\n%s\n", c.paint(consoleBold, n.Report.Title), reportText(n.Report))
	}
	if len(n.Events) > 1 {
		d := newTemplateData(n, time.Now())
		fmt.Fprintf(&b, "%s %s\n", templateLight(d.Severity), c.paint(consoleBold, d.Title))
	}
	for _, e := range n.Events {
		c.writeEvent(&b, e)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.out, b.String()); err != nil {
		return false, &NotifyError{Reason: "io", Err: fmt.Errorf("console: %w", err)}
	}
	return false, nil
}

func (c *consoleNotifier) sevColor(e Event) string {
	if e.State == Resolved {
		return consoleGreen
	}
	switch e.Severity {
	case Red:
		return consoleRed
	case Yellow:
		return consoleYellow
	}
	return consoleGreen
}

// writeEvent renders:
//
//	🔴 RED     FIRING    complaint_storm    room 21452505   14:03:07  62% negative over 2m (74/120)
//	   numbers             items 120 · negative 74 · negative_ratio 62.0%
//	   said                「退款！假货」 — 小明
func (c *consoleNotifier) writeEvent(b *strings.Builder, e Event) {
	sev := strings.ToUpper(string(e.Severity))
	state := strings.ToUpper(templateStateWord(&e))
	col := c.sevColor(e)
	fmt.Fprintf(b, "%s %s %s %s %s %s  %s\n",
		templateEventLight(e),
		c.paint(col, consolePad(sev, 6)),
		c.paint(col, consolePad(state, 12)),
		c.paint(consoleBold, consolePad(e.Rule, 20)),
		consolePad(templateWhereShort(&e), 16),
		c.paint(consoleDim, e.At.UTC().Format("15:04:05")),
		e.Summary)
	// Continuation lines put their label under the severity and state
	// columns so the figures line up with the rule name.
	const indent = "   "
	label := func(l string) string { return c.paint(consoleDim, consolePad(l, 19)) }
	var nums []string
	for _, nn := range templateNumbers(e) {
		nums = append(nums, nn.Name+" "+c.paint(consoleCyan, nn.Text))
	}
	if len(nums) > 0 {
		fmt.Fprintf(b, "%s%s %s\n", indent, label("numbers"), strings.Join(nums, " · "))
	}
	for i, s := range templateSamples(e, 3) {
		text := strings.NewReplacer("\n", " ", "\r", " ").Replace(templateTruncate(s.Text, 70))
		line := "「" + text + "」"
		if s.Author != "" {
			line += c.paint(consoleDim, " — "+s.Author)
		}
		l := ""
		if i == 0 {
			l = "said"
		}
		fmt.Fprintf(b, "%s%s %s\n", indent, label(l), line)
	}
}

// consolePad pads s to n terminal columns (CJK characters take two).
func consolePad(s string, n int) string {
	w := consoleWidth(s)
	if w >= n {
		return s
	}
	return s + strings.Repeat(" ", n-w)
}

func consoleWidth(s string) int {
	w := 0
	for _, r := range s {
		if r < utf8.RuneSelf {
			w++
			continue
		}
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			w += 2
		default:
			w++
		}
	}
	return w
}
