package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"lookout/collectors/httpx"
	"lookout/store"
)

// TestStatusShowsMovedURL: a feed whose configured URL answers 301 (with a
// secret in its query) is followed to its new home, and `lookout status`
// names both URLs, the query redacted, so the operator can fix the config.
func TestStatusShowsMovedURL(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/old.xml", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new.xml", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/new.xml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rss+xml")
		w.Write([]byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><guid>a1</guid><title>新品发布</title><description>物流很快</description><pubDate>Mon, 30 Nov 2026 10:00:00 +0000</pubDate></item>
</channel></rss>`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ro, stop := healthRun(t, `
store: { path: %[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
sources:
  - id: feed
    kind: rss
    url: `+srv.URL+`/old.xml?token=s3cret
    every: 1s
    jitter: 0.01
    ignore_robots: true
`, nil, func(o *Options) { o.HealthWriteEvery = 200 * time.Millisecond })
	defer stop()
	var status strings.Builder
	want := httpx.RedactURL(srv.URL+"/old.xml?token=s3cret") + " -> " + srv.URL + "/new.xml"
	waitFor(t, "lookout status naming the moved URL", 15*time.Second, func() bool {
		status.Reset()
		if err := Query(context.Background(), dbPath(t, ro), StatusQuery, "csv", store.QueryOptions{}, &status); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(status.String(), want)
	})
	if strings.Contains(status.String(), "s3cret") {
		t.Errorf("status shows the secret: %s", status.String())
	}
	waitFor(t, "the moved feed's item in SQLite", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source='feed'`) == 1
	})
}
