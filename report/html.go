package report

import (
	"embed"
	"fmt"
	"html/template"
	"io"
)

//go:embed templates/report.html
var templates embed.FS

var htmlTemplate = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"count": func(v any) string {
		switch n := v.(type) {
		case int:
			return Count(float64(n))
		case int64:
			return Count(float64(n))
		case float64:
			return Count(n)
		}
		return ""
	},
	"pct":   Percent,
	"money": Money,
	"short": func(s string) string { return Shorten(s, 140) },
	"mul":   func(a, b int) int { return a * b },
	"width": func(f float64) template.CSS { return template.CSS(fmt.Sprintf("%.0f%%", 100*f)) },
	"themes": func(v htmlView, ts []Theme) htmlThemes {
		return htmlThemes{R: v.R, Themes: ts}
	},
}).ParseFS(templates, "templates/report.html"))

type htmlView struct {
	R     *Report
	Rooms []htmlRoom
}

type htmlRoom struct {
	Room      *Room
	Audience  template.HTML
	Sentiment template.HTML
}

type htmlThemes struct {
	R      *Report
	Themes []Theme
}

// RenderHTML writes the report as one self-contained HTML page: styles
// inline, charts as inline SVG, no scripts and nothing fetched, so it opens
// offline and can be mailed or archived as it is.
func RenderHTML(w io.Writer, r *Report) error {
	v := htmlView{R: r}
	for i := range r.Rooms {
		rm := &r.Rooms[i]
		v.Rooms = append(v.Rooms, htmlRoom{Room: rm, Audience: AudienceSVG(r, rm), Sentiment: SentimentSVG(r, rm)})
	}
	return htmlTemplate.Execute(w, v)
}
