package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"
)

// The report's charts are inline SVG drawn here, so an HTML report is one
// self-contained file that opens offline.

const (
	chartW, chartH = 720, 200
	padL, padR     = 48, 48
	padT, padB     = 10, 24
)

type svgFrame struct {
	from, to time.Time
	loc      *time.Location
	b        strings.Builder
}

func newFrame(from, to time.Time, loc *time.Location, label string) *svgFrame {
	f := &svgFrame{from: from, to: to, loc: loc}
	fmt.Fprintf(&f.b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, html.EscapeString(label))
	return f
}

func (f *svgFrame) x(t time.Time) float64 {
	span := f.to.Sub(f.from).Seconds()
	if span <= 0 {
		return padL
	}
	return padL + (chartW-padL-padR)*t.Sub(f.from).Seconds()/span
}

func yOf(v, max float64) float64 {
	if max <= 0 {
		return chartH - padB
	}
	return chartH - padB - (chartH-padT-padB)*v/max
}

// axes draws the time axis with a few ticks and a left (and optional
// right) value scale.
func (f *svgFrame) axes(leftMax float64, leftFmt func(float64) string, rightMax float64, rightFmt func(float64) string) {
	fmt.Fprintf(&f.b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padL, chartH-padB, chartW-padR, chartH-padB)
	for i := 0; i <= 4; i++ {
		t := f.from.Add(time.Duration(float64(f.to.Sub(f.from)) * float64(i) / 4))
		x := f.x(t)
		layout := "15:04"
		if f.to.Sub(f.from) > 36*time.Hour {
			layout = "01-02 15:04"
		}
		anchor := "middle"
		if i == 0 {
			anchor = "start"
		} else if i == 4 {
			anchor = "end"
		}
		fmt.Fprintf(&f.b, `<text class="tick" x="%.1f" y="%d" text-anchor="%s">%s</text>`, x, chartH-6, anchor, t.In(f.loc).Format(layout))
	}
	for i := 1; i <= 2; i++ {
		v := leftMax * float64(i) / 2
		y := yOf(v, leftMax)
		fmt.Fprintf(&f.b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, padL, y, chartW-padR, y)
		fmt.Fprintf(&f.b, `<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y+4, leftFmt(v))
		if rightFmt != nil {
			fmt.Fprintf(&f.b, `<text class="tick" x="%d" y="%.1f">%s</text>`, chartW-padR+4, yOf(rightMax*float64(i)/2, rightMax)+4, rightFmt(rightMax*float64(i)/2))
		}
	}
}

func (f *svgFrame) alerts(as []Alert, now time.Time) {
	for _, a := range as {
		s, e := a.StartedAt, a.ResolvedAt
		if e.IsZero() {
			e = now
		}
		if s.Before(f.from) {
			s = f.from
		}
		if e.After(f.to) {
			e = f.to
		}
		x0, x1 := f.x(s), f.x(e)
		fmt.Fprintf(&f.b, `<rect class="alert %s" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s %s %s</title></rect>`,
			a.Severity, x0, padT, math.Max(x1-x0, 2), chartH-padT-padB, html.EscapeString(a.Rule), a.Severity, a.Duration.D())
	}
}

func (f *svgFrame) done() template.HTML {
	f.b.WriteString(`</svg>`)
	return template.HTML(f.b.String())
}

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// AudienceSVG draws the audience curve with the room's alerts behind it.
func AudienceSVG(r *Report, rm *Room) template.HTML {
	f := newFrame(r.Start, r.End, r.loc(), "audience curve")
	var max float64
	for _, p := range rm.Audience {
		max = math.Max(max, p.V)
	}
	max = niceMax(max)
	f.alerts(rm.Alerts, r.Generated)
	f.axes(max, func(v float64) string { return Count(v) }, 0, nil)
	if len(rm.Audience) > 0 {
		var pts []string
		half := r.Bucket.D() / 2
		for _, p := range rm.Audience {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", f.x(p.T.Add(half)), yOf(p.V, max)))
		}
		fmt.Fprintf(&f.b, `<polyline class="viewers" points="%s"/>`, strings.Join(pts, " "))
	}
	return f.done()
}

// SentimentSVG draws scored messages per bucket stacked by verdict, the
// negative share as a line and the room's normal as a dashed line.
func SentimentSVG(r *Report, rm *Room) template.HTML {
	f := newFrame(r.Start, r.End, r.loc(), "sentiment over time")
	var max, shareMax float64
	for _, b := range rm.Timeline {
		max = math.Max(max, float64(b.Scored))
		shareMax = math.Max(shareMax, b.NegativeShare)
	}
	max = niceMax(max)
	shareMax = math.Min(1, niceMax(math.Max(shareMax, rm.Sentiment.Normal)*1.1))
	f.alerts(rm.Alerts, r.Generated)
	f.axes(max, func(v float64) string { return Count(v) }, shareMax, func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) })
	bw := math.Max(f.x(r.Start.Add(r.Bucket.D()))-f.x(r.Start)-1, 1)
	var line []string
	half := r.Bucket.D() / 2
	for _, b := range rm.Timeline {
		x := f.x(b.T)
		y := float64(chartH - padB)
		for _, part := range []struct {
			class string
			n     int
		}{{"neg", b.Negative}, {"neu", b.Scored - b.Negative - b.Positive}, {"pos", b.Positive}} {
			h := (chartH - padT - padB) * float64(part.n) / max
			if h <= 0 {
				continue
			}
			y -= h
			fmt.Fprintf(&f.b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, part.class, x, y, bw, h)
		}
		if b.Scored > 0 {
			line = append(line, fmt.Sprintf("%.1f,%.1f", f.x(b.T.Add(half)), yOf(b.NegativeShare, shareMax)))
		}
	}
	if len(line) > 0 {
		fmt.Fprintf(&f.b, `<polyline class="share" points="%s"/>`, strings.Join(line, " "))
	}
	if rm.Sentiment.Scored > 0 {
		y := yOf(rm.Sentiment.Normal, shareMax)
		fmt.Fprintf(&f.b, `<line class="normal" x1="%d" y1="%.1f" x2="%d" y2="%.1f"><title>normal %s</title></line>`, padL, y, chartW-padR, y, Percent(rm.Sentiment.Normal))
	}
	return f.done()
}
