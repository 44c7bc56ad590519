package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"lookout/internal/loopback"
	"lookout/report"
	"lookout/ui"
)

// TestBrandsOwnAndCompetitor: one room is the own brand's (brand: on its
// source), the other a competitor's (brands.rooms). The daemon labels
// their items with brand and brand_role, and the report and the
// dashboard put them side by side, own first, with share of voice against
// SQL, sentiment and hot terms.
func TestBrandsOwnAndCompetitor(t *testing.T) {
	const ownRoom, rivalRoom = 7734201, 7734202
	ours := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: ownRoom})
	defer ours.Close()
	rival := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: rivalRoom})
	defer rival.Close()
	cfg := fmt.Sprintf(`
store: { path: %%[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
brands:
  own: [acme]
  rooms: { "%d": rival }
sources:
  - id: ours
    kind: bilibili_live
    brand: acme
    room: %d
    api_base: %q
    nav_base: %q
    hosts: [%q]
  - id: theirs
    kind: bilibili_live
    room: %d
    api_base: %q
    nav_base: %q
    hosts: [%q]
`, rivalRoom, ownRoom, ours.URL(), ours.URL(), ours.WSURL(), rivalRoom, rival.URL(), rival.URL(), rival.WSURL())
	dbPath := filepath.Join(t.TempDir(), "lookout.db")
	ro, d, stop := healthStart(t, dbPath, cfg, nil)
	defer stop()
	waitFor(t, "both rooms connected", 15*time.Second, func() bool { return ours.Connections() == 1 && rival.Connections() == 1 })
	now := time.Now()
	var own, theirs [][]byte
	for i := range 6 {
		own = append(own, loopback.BilibiliDanmaku(int64(i), "fan", "口红颜色很好看，喜欢", now, fmt.Sprintf("o%d", i)))
	}
	for i := range 3 {
		theirs = append(theirs, loopback.BilibiliDanmaku(int64(i), "buyer", "面霜太贵了，不买", now, fmt.Sprintf("r%d", i)))
	}
	ours.Push(own...)
	rival.Push(theirs...)
	waitFor(t, "all chat stored", 15*time.Second, func() bool { return countRows(t, ro, `SELECT count(*) FROM items`) == 9 })

	for _, c := range []struct{ source, brand, role string }{{"ours", "acme", "own"}, {"theirs", "rival", "competitor"}} {
		if n := countRows(t, ro, `SELECT count(*) FROM items WHERE source = ? AND json_extract(labels, '$.brand') = ?
			AND json_extract(labels, '$.brand_role') = ?`, c.source, c.brand, c.role); n == 0 {
			t.Errorf("items of %s lack brand %s / brand_role %s", c.source, c.brand, c.role)
		}
	}
	ctx := context.Background()
	rep, err := report.FromDB(ctx, ro, report.Options{From: now.Add(-time.Hour), To: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Brands) != 2 || rep.Brands[0].Name != "acme" || rep.Brands[0].Role != "own" || rep.Brands[1].Role != "competitor" {
		t.Fatalf("report brands %+v, want acme (own) then rival (competitor)", rep.Brands)
	}
	acme := float64(countRows(t, ro, `SELECT count(*) FROM items WHERE json_extract(labels, '$.brand') = 'acme'`))
	if got := rep.Brands[0].ShareOfVoice; math.Abs(got-acme/9) > 1e-12 {
		t.Errorf("acme share of voice %v, SQL %v", got, acme/9)
	}
	if r := rep.Brands[1]; r.NegativeShare <= rep.Brands[0].NegativeShare || len(r.HotTerms) == 0 {
		t.Errorf("the rival's complaints do not show: %+v vs %+v", r, rep.Brands[0])
	}

	srv, err := ui.New(ctx, ui.Options{Store: d.Store(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/api/overview")
	if err != nil {
		t.Fatal(err)
	}
	var ov ui.Overview
	err = json.NewDecoder(resp.Body).Decode(&ov)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(ov.Brands) != 2 || ov.Brands[0].Name != "acme" || ov.Brands[0].Role != "own" || ov.Brands[1].Role != "competitor" {
		t.Fatalf("dashboard brands %+v, want acme (own) then rival (competitor)", ov.Brands)
	}
	if ov.Brands[1].Items != 3 || ov.Brands[1].NegativeShare != rep.Brands[1].NegativeShare || len(ov.Brands[1].HotTerms) == 0 {
		t.Errorf("dashboard rival %+v, report %+v", ov.Brands[1], rep.Brands[1])
	}
}
