package ui

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"lookout/report"
)

// reportWindow is the window of /report without from: the last 24 hours.
const reportWindow = 24 * time.Hour

// ReportPath is the dashboard's path of the HTML report of room (every room
// for "") over [from, to), as reportPage reads it.
func ReportPath(room string, from, to time.Time) string {
	v := url.Values{}
	if room != "" {
		v.Set("room", room)
	}
	v.Set("from", from.UTC().Format(time.RFC3339Nano))
	v.Set("to", to.UTC().Format(time.RFC3339Nano))
	return "/report?" + v.Encode()
}

// reportPage serves the post-live review of one room (or every room without
// room) as the same one-file HTML that `lookout report` writes:
// /report?room=R&from=T&to=T, times in RFC 3339.
func (s *Server) reportPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	to := s.opts.Now()
	if v := q.Get("to"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, fmt.Sprintf("to: %v", err), http.StatusBadRequest)
			return
		}
		to = t
	}
	from := to.Add(-reportWindow)
	if v := q.Get("from"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, fmt.Sprintf("from: %v", err), http.StatusBadRequest)
			return
		}
		from = t
	}
	if !from.Before(to) {
		http.Error(w, "from must be before to", http.StatusBadRequest)
		return
	}
	rep, err := report.FromDB(r.Context(), s.ro.DB(), report.Options{Room: q.Get("room"), From: from, To: to, Now: s.opts.Now()})
	if err != nil {
		s.log.Error("report page", "room", q.Get("room"), "err", err)
		http.Error(w, "cannot build the report", http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	if err := report.RenderHTML(&b, rep); err != nil {
		s.log.Error("report page render", "err", err)
		http.Error(w, "cannot render the report", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}
