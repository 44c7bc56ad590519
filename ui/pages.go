package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"golang.org/x/text/language"

	"lookout/report"
)

// messages are the dashboard's words in English and Chinese.
var messages = map[string][2]string{
	"title":          {"lookout · live", "lookout · 实时监控"},
	"overview":       {"Overview", "总览"},
	"alerts":         {"Alerts", "告警"},
	"search":         {"Search", "搜索"},
	"source":         {"Source", "来源"},
	"room":           {"Room", "直播间"},
	"status":         {"Status", "状态"},
	"live":           {"live", "直播中"},
	"ended":          {"ended", "已下播"},
	"active":         {"active", "活跃"},
	"quiet":          {"quiet", "安静"},
	"per_min":        {"Items/min", "条/分钟"},
	"negative":       {"Negative", "负面"},
	"normal":         {"normal", "常态"},
	"viewers":        {"Viewers", "在线人数"},
	"open_alerts":    {"Open alerts", "未解除告警"},
	"health":         {"Health", "采集状态"},
	"messages":       {"Messages", "弹幕/评论"},
	"sentiment":      {"Sentiment", "情绪"},
	"latest":         {"Latest messages", "最新消息"},
	"hot_terms":      {"Hot terms (10 min)", "热词（10分钟）"},
	"gift_value":     {"Gift value", "礼物金额"},
	"interaction":    {"Interactions per viewer (15 min)", "人均互动（15分钟）"},
	"pending":        {"Pending", "待定"},
	"firing":         {"Firing", "告警中"},
	"resolved":       {"Resolved", "已恢复"},
	"silence":        {"Silence", "静默"},
	"silences":       {"Active silences", "生效中的静默"},
	"expire":         {"Expire", "解除"},
	"for":            {"for", "时长"},
	"rule":           {"Rule", "规则"},
	"severity":       {"Severity", "级别"},
	"started":        {"Started", "开始"},
	"lasted":         {"Lasted", "持续"},
	"summary":        {"Summary", "摘要"},
	"samples":        {"Sample messages", "示例消息"},
	"numbers":        {"Numbers", "数值"},
	"query":          {"Words to find", "关键词"},
	"platform":       {"Platform", "平台"},
	"any":            {"any", "全部"},
	"from":           {"From", "从"},
	"to":             {"To", "到"},
	"find":           {"Find", "搜索"},
	"results":        {"results", "条结果"},
	"none":           {"nothing here", "暂无"},
	"positive":       {"positive", "正面"},
	"neutral":        {"neutral", "中性"},
	"negative_label": {"negative", "负面"},
	"connected":      {"live", "实时"},
	"reconnecting":   {"reconnecting…", "重连中…"},
	"silenced":       {"Silenced", "已静默"},
	"matchers":       {"Matchers", "匹配条件"},
	"ends":           {"Ends", "结束"},
	"comment":        {"Comment", "备注"},
	"report":         {"Review (24 h)", "复盘（24小时）"},
	"no_rooms":       {"No source has reported anything yet.", "还没有任何来源的数据。"},
	"brand":          {"Brand (last hour)", "品牌（近1小时）"},
	"items_hour":     {"Items", "条数"},
	"share_of_voice": {"Share of voice", "声量占比"},
	"reviews":        {"Reviews", "复盘"},
	"ack":            {"Acknowledge", "认领"},
	"positive_share": {"Positive", "正面"},
	"brand_terms":    {"Hot terms (10 min)", "热词（10分钟）"},
	"own":            {"own", "自有"},
	"competitor":     {"competitor", "竞品"},
	"acked":          {"Acknowledged by", "已认领："},
	"reviews_note":   {"Stream reviews and digests posted to the receivers (30 days).", "已推送的直播复盘与定时摘要（30天）。"},
	"kind":           {"Kind", "类型"},
	"review":         {"Stream review", "直播复盘"},
	"digest":         {"Digest", "摘要"},
	"daily":          {"daily", "每日"},
	"weekly":         {"weekly", "每周"},
	"receivers":      {"Sent to", "推送至"},
	"open_report":    {"Open report", "查看报告"},
}

var langs = language.NewMatcher([]language.Tag{language.English, language.Chinese})

// lang picks 0 (English) or 1 (Chinese) from ?lang= or Accept-Language.
func lang(r *http.Request) int {
	if l := r.URL.Query().Get("lang"); l != "" {
		if strings.HasPrefix(l, "zh") {
			return 1
		}
		return 0
	}
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, _ := langs.Match(tags...)
	return i
}

var funcs = template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"count": func(v any) string {
		switch n := v.(type) {
		case int:
			return report.Count(float64(n))
		case float64:
			return report.Count(n)
		}
		return fmt.Sprint(v)
	},
	"money": report.Money,
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format("15:04:05")
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format("01-02 15:04:05")
	},
	"dur":   func(d time.Duration) string { return d.Round(time.Second).String() },
	"short": func(s string, n int) string { return report.Shorten(s, n) },
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"add":   func(a, b float64) float64 { return a + b },
	"width": func(f float64) template.CSS { return template.CSS(fmt.Sprintf("%.0f%%", 100*f)) },
	"list3": func(a, b, c string) []string { return []string{a, b, c} },
	"dict3": func(k1, v1, k2, v2, k3, v3 string) map[string]string {
		return map[string]string{k1: v1, k2: v2, k3: v3}
	},
	"group": func(v view, state string, alerts []AlertRow) alertGroup {
		return alertGroup{V: v, State: state, Alerts: alerts}
	},
}

type alertGroup struct {
	V      view
	State  string
	Alerts []AlertRow
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range []string{"overview", "room", "alerts", "search", "reviews"} {
		t, err := template.New("layout.html").Funcs(funcs).Funcs(template.FuncMap{"t": func(string) string { return "" }}).
			ParseFS(files, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// view is what every page template gets.
type view struct {
	Page string
	Lang string
	CSRF string
	Data any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, page, tmpl string, data any) {
	l := lang(r)
	t, err := s.pages[page].Clone()
	if err == nil {
		t = t.Funcs(template.FuncMap{"t": func(k string) string {
			if m, ok := messages[k]; ok {
				return m[l]
			}
			return k
		}})
	}
	var buf bytes.Buffer
	if err == nil {
		err = t.ExecuteTemplate(&buf, tmpl, view{Page: page, Lang: [...]string{"en", "zh"}[l], CSRF: s.csrfToken(r), Data: data})
	}
	if err != nil {
		s.log.Error("ui: render", "page", page, "err", err)
		http.Error(w, "ui: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", [...]string{"en", "zh"}[l])
	w.Header().Set("Vary", "Accept-Language")
	w.Write(buf.Bytes())
}

func (s *Server) page(name string, data func(*http.Request) (any, error)) http.HandlerFunc {
	return s.part(name, "layout.html", data)
}

func (s *Server) part(name, tmpl string, data func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := data(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, name, tmpl, d)
	}
}

// badRequest marks errors caused by the request (a bad filter), not by
// the database.
type badRequest struct{ error }

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	if _, ok := err.(badRequest); ok {
		code = http.StatusBadRequest
	} else if r.Context().Err() == nil {
		s.log.Warn("ui: request failed", "path", r.URL.Path, "err", err)
	}
	http.Error(w, err.Error(), code)
}

func (s *Server) jsonAPI(f func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(v)
	}
}
