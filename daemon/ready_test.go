package daemon

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	lcollectors "lookout/collectors"
	"lookout/internal/loopback"
)

// quickBrokenAfter is the tests' BrokenAfter: short, so that "nothing
// usable for a while" takes half a second, not thirty.
const quickBrokenAfter = 500 * time.Millisecond

// quickHealth judges health quickly: the thresholds have the defaults'
// shape (3 failures in a row, or BrokenAfter), only shorter.
func quickHealth(o *Options) {
	o.Health = lcollectors.HealthOptions{FailuresToBreak: 3, BrokenAfter: quickBrokenAfter}
	o.HealthEvery = 50 * time.Millisecond
	o.HealthWriteEvery = 100 * time.Millisecond
}

// readyGet asks the daemon's HTTP handler for path.
func readyGet(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// readyGauge reads one source's series of a gauge from /metrics; -1 when
// it is not there.
func readyGauge(t *testing.T, h http.Handler, name, source string) float64 {
	t.Helper()
	_, body := readyGet(t, h, "/metrics")
	m := regexp.MustCompile(`(?m)^` + name + `\{source="` + source + `"\} (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestReadyzAndSourceGauges: /healthz answers while the process serves;
// /readyz is 503 with a reason when every source is broken or the store
// cannot take a write, 200 otherwise; lookout_source_up and
// lookout_source_last_success_timestamp_seconds follow each source.
func TestReadyzAndSourceGauges(t *testing.T) {
	feeds := loopback.NewFeedServer()
	defer feeds.Close()
	good := loopback.RSSDocument("Acme", []loopback.FeedEntrySpec{{ID: "a", Title: "新品", Published: time.Now()}})
	broken := []byte("<html><body>Maintenance</body></html>")
	for _, p := range []string{"/a.xml", "/b.xml"} {
		feeds.SetFeed(p, good, "")
	}
	dbFile := filepath.Join(t.TempDir(), "lookout.db")
	_, d, stop := healthStart(t, dbFile, `
store: { path: %[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
limits: { default: { rate: 1000/s, burst: 1000 } }
classifier: { terms: false }
sources:
  - { id: feed-a, kind: rss, url: "`+feeds.URL("/a.xml")+`", every: 1s }
  - { id: feed-b, kind: rss, url: "`+feeds.URL("/b.xml")+`", every: 1s }
`, healthQuickClock{}, quickHealth)
	defer stop()
	h := d.Handler()

	up := func(src string) float64 { return readyGauge(t, h, "lookout_source_up", src) }
	waitFor(t, "both feeds up", 10*time.Second, func() bool { return up("feed-a") == 1 && up("feed-b") == 1 })
	if ts := readyGauge(t, h, "lookout_source_last_success_timestamp_seconds", "feed-a"); ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success timestamp %v, want about now", ts)
	}

	steps := []struct {
		name       string
		a, b       []byte // the feeds' documents
		wantUpA    float64
		wantUpB    float64
		wantCode   int
		wantReason string
	}{
		{"both work", good, good, 1, 1, http.StatusOK, ""},
		{"one broken", broken, good, 0, 1, http.StatusOK, ""},
		{"all broken", broken, broken, 0, 0, http.StatusServiceUnavailable, "all 2 sources are broken"},
		{"mended", good, good, 1, 1, http.StatusOK, ""},
	}
	for _, s := range steps {
		feeds.SetFeed("/a.xml", s.a, "")
		feeds.SetFeed("/b.xml", s.b, "")
		var code int
		var body string
		waitFor(t, s.name+": gauges and readiness", 10*time.Second, func() bool {
			code, body = readyGet(t, h, "/readyz")
			return up("feed-a") == s.wantUpA && up("feed-b") == s.wantUpB && code == s.wantCode
		})
		if code != s.wantCode || (s.wantReason == "") != (body == "{\"ready\":true}\n") || !strings.Contains(body, s.wantReason) {
			t.Errorf("%s: /readyz = %d %q, want %d with %q", s.name, code, body, s.wantCode, s.wantReason)
		}
		if code, body := readyGet(t, h, "/healthz"); code != http.StatusOK || body != "ok\n" {
			t.Errorf("%s: /healthz = %d %q", s.name, code, body)
		}
	}

	// Another process holds the write lock: the store takes no writes.
	lock, err := sql.Open("sqlite3", "file:"+dbFile+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	tx, err := lock.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, body := readyGet(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"reason":"store not writable`) {
		t.Errorf("store locked: /readyz = %d %q", code, body)
	}
	if took := time.Since(start); took > readyTimeout+time.Second {
		t.Errorf("/readyz took %s with the store locked", took)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if code, body := readyGet(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("store unlocked: /readyz = %d %q", code, body)
	}
}
