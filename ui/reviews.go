package ui

import (
	"fmt"
	"net/http"
	"time"

	"lookout/store"
)

// reviewsWindow is how far back /reviews lists generated reports.
const reviewsWindow = 30 * 24 * time.Hour

// ReviewRow is one generated report on /reviews.
type ReviewRow struct {
	store.ReportRecord
	// Link opens the report's window as HTML on this dashboard.
	Link string
}

// reviewsData lists the stream reviews and digests the daemon generated
// and posted, newest first, each linking to its HTML report.
func (s *Server) reviewsData(r *http.Request) (any, error) {
	list, err := store.ListReportsFrom(r.Context(), s.ro.DB(), r.URL.Query().Get("kind"), s.opts.Now().Add(-reviewsWindow), 200)
	if err != nil {
		return nil, fmt.Errorf("reviews: %w", err)
	}
	out := make([]ReviewRow, 0, len(list))
	for _, rec := range list {
		to := rec.To
		if rec.Kind == store.ReportReview {
			to = to.Add(time.Millisecond) // a review covers its end sample
		}
		out = append(out, ReviewRow{ReportRecord: rec, Link: ReportPath(rec.Room, rec.From, to)})
	}
	return out, nil
}
