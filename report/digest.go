package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// DigestRooms is how many rooms a digest lists in its table; the rest are
// counted.
const DigestRooms = 20

// RenderDigestMarkdown writes a digest: the window's rooms in one table
// (busiest first), the brands side by side, and each listed room's
// headline, short enough for a chat message.
func RenderDigestMarkdown(w io.Writer, r *Report, title string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n%s – %s (%s)\n", title, r.When(r.From), r.When(r.To), r.Zone())
	rooms := make([]*Room, 0, len(r.Rooms))
	var items, messages, alerts int
	for i := range r.Rooms {
		rm := &r.Rooms[i]
		rooms = append(rooms, rm)
		items += rm.Items
		messages += rm.Messages
		alerts += len(rm.Alerts)
	}
	if len(rooms) == 0 {
		b.WriteString("\nNo room had items or samples in this window.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	sort.SliceStable(rooms, func(i, j int) bool { return rooms[i].Messages > rooms[j].Messages })
	fmt.Fprintf(&b, "\n%d room%s, %s items, %s messages, %d alert%s.\n", len(rooms), plural(len(rooms)),
		Count(float64(items)), Count(float64(messages)), alerts, plural(alerts))
	b.WriteString("\n| room | messages | peak viewers | negative (normal) | alerts | gifts ¥ |\n|---|---:|---:|---:|---:|---:|\n")
	shown := rooms[:min(len(rooms), DigestRooms)]
	for _, rm := range shown {
		peak, neg := "–", "–"
		if rm.Viewers.Samples > 0 {
			peak = Count(rm.Viewers.Peak)
		}
		if s := rm.Sentiment; s.Scored > 0 {
			neg = fmt.Sprintf("%s (%s)", Percent(s.NegativeShare), Percent(s.Normal))
		}
		fmt.Fprintf(&b, "| %s · %s | %s | %s | %s | %d | %s |\n", mdCell(rm.Source), mdCell(rm.Room), Count(float64(rm.Messages)),
			peak, neg, len(rm.Alerts), Money(rm.Gifts.GiftValue+rm.Gifts.SuperChatValue))
	}
	if n := len(rooms) - len(shown); n > 0 {
		fmt.Fprintf(&b, "\n…and %d more room%s.\n", n, plural(n))
	}
	mdBrands(&b, r)
	b.WriteString("\n## Rooms\n\n")
	for _, rm := range shown {
		if len(rm.Summary) > 0 {
			fmt.Fprintf(&b, "- **%s · %s**: %s\n", mdCell(rm.Source), mdCell(rm.Room), mdCell(strings.Join(rm.Summary[:min(len(rm.Summary), 2)], " ")))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
