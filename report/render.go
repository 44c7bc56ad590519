package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Formats are the renderings Render accepts.
var Formats = []string{"html", "md", "json"}

// Render writes the report in format (html, md or json).
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case "html", "":
		return RenderHTML(w, r)
	case "md", "markdown":
		return RenderMarkdown(w, r)
	case "json":
		return RenderJSON(w, r)
	}
	return fmt.Errorf("report: unknown format %q (use one of %s)", format, strings.Join(Formats, ", "))
}

// RenderJSON writes the report as one indented JSON document.
func RenderJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

func (r *Report) loc() *time.Location {
	if r.Location == nil {
		return time.UTC
	}
	return r.Location
}

// When renders t in the report's time zone.
func (r *Report) When(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(r.loc()).Format("2006-01-02 15:04:05")
}

// Clock renders t's time of day in the report's time zone.
func (r *Report) Clock(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(r.loc()).Format("15:04:05")
}

// Zone names the report's time zone.
func (r *Report) Zone() string {
	name, _ := r.To.In(r.loc()).Zone()
	return name
}

// RenderMarkdown writes the report as Markdown, the form chat receivers
// and pull requests show well.
func RenderMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Live review · 直播复盘\n\n%s – %s (%s)\n", r.When(r.From), r.When(r.To), r.Zone())
	if len(r.Rooms) == 0 {
		b.WriteString("\nNo room had items or samples in this window.\n")
	}
	mdBrands(&b, r)
	for i := range r.Rooms {
		rm := &r.Rooms[i]
		fmt.Fprintf(&b, "\n## %s · %s (%s)\n\n", rm.Source, rm.Room, rm.Platform)
		for _, s := range rm.Summary {
			fmt.Fprintf(&b, "- %s\n", s)
		}
		b.WriteString("\n| figure | value |\n|---|---|\n")
		row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, mdCell(v)) }
		row("items", Count(float64(rm.Items)))
		row("messages", Count(float64(rm.Messages)))
		if rm.Viewers.Samples > 0 {
			row("peak viewers", fmt.Sprintf("%s at %s", Count(rm.Viewers.Peak), r.Clock(rm.Viewers.PeakAt)))
			row("average viewers", Count(rm.Viewers.Average))
		}
		row("interactions", Count(float64(rm.Interactions)))
		if rm.InteractionRate > 0 {
			row("interactions per viewer", fmt.Sprintf("%.2f", rm.InteractionRate))
		}
		if s := rm.Sentiment; s.Scored > 0 {
			row("negative share", fmt.Sprintf("%s of %s scored (normal %s, %s)", Percent(s.NegativeShare), Count(float64(s.Scored)), Percent(s.Normal), s.NormalBasis))
			row("positive share", Percent(float64(s.Positive)/float64(s.Scored)))
		}
		row("gifts", fmt.Sprintf("%s, ¥%s", Count(float64(rm.Gifts.Gifts)), Money(rm.Gifts.GiftValue)))
		row("super chats", fmt.Sprintf("%d, ¥%s", rm.Gifts.SuperChats, Money(rm.Gifts.SuperChatValue)))
		mdThemes(&b, r, "Top complaints", rm.Complaints)
		mdThemes(&b, r, "Top praise", rm.Praise)
		if len(rm.HotTerms) > 0 {
			b.WriteString("\n### Hot terms\n\n")
			var ts []string
			for _, t := range rm.HotTerms {
				ts = append(ts, fmt.Sprintf("%s %d", t.Term, t.Mentions))
			}
			b.WriteString(strings.Join(ts, " · ") + "\n")
		}
		if len(rm.Alerts) > 0 {
			b.WriteString("\n### Alerts\n\n| started | rule | severity | lasted | state |\n|---|---|---|---|---|\n")
			for _, a := range rm.Alerts {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Clock(a.StartedAt), mdCell(a.Rule), a.Severity, a.Duration.D(), a.State)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdBrands writes the brands side by side, when there are any.
func mdBrands(b *strings.Builder, r *Report) {
	if len(r.Brands) == 0 {
		return
	}
	b.WriteString("\n## Brands side by side\n\n| brand | items | share of voice | negative | positive | hot terms |\n|---|---:|---:|---:|---:|---|\n")
	for _, br := range r.Brands {
		var ts []string
		for _, t := range br.HotTerms {
			ts = append(ts, fmt.Sprintf("%s %d", t.Term, t.Mentions))
		}
		name := mdCell(br.Name)
		if br.Role != "" {
			name += " (" + br.Role + ")"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", name, Count(float64(br.Items)), Percent(br.ShareOfVoice),
			Percent(br.NegativeShare), Percent(br.PositiveShare), mdCell(strings.Join(ts, " · ")))
	}
}

func mdThemes(b *strings.Builder, r *Report, title string, themes []Theme) {
	if len(themes) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### %s\n\n", title)
	for _, t := range themes {
		if t.Term != "" {
			fmt.Fprintf(b, "- **%s** (%d)\n", mdCell(t.Term), t.Mentions)
		} else {
			fmt.Fprintf(b, "- %d message%s; the strongest:\n", t.Mentions, plural(t.Mentions))
		}
		for _, m := range t.Examples {
			fmt.Fprintf(b, "  - %s %s: “%s”\n", r.Clock(m.TS), mdCell(m.Author), mdCell(Shorten(m.Text, 120)))
		}
	}
}

// mdCell keeps a value on one line and out of Markdown's syntax.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "*", `\*`, "_", `\_`, "`", "'", "<", "&lt;", "[", `\[`).Replace(s)
}

// Shorten cuts s to n runes with an ellipsis.
func Shorten(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n-1]) + "…"
}
