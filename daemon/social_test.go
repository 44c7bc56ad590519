package daemon

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"lookout/collectors/httpx"
	"lookout/internal/loopback"
)

// TestMastodonThroughDaemon runs the real daemon on a real SQLite file
// against a loopback Mastodon instance: 55 statuses posted while lookout
// is stopped are all stored after the restart (more than one catch-up
// page), and an edit and a delete reach the database as data: the
// complaint resolved by its edit keeps its first version in item_versions
// and leaves the negative share, the deleted status stays with deleted_at;
// a status declared in Japanese is stored unscored.
func TestMastodonThroughDaemon(t *testing.T) {
	t.Setenv("LOOKOUT_SOCIAL_MASTO_TOKEN", "social-token")
	srv := loopback.NewMastodonServer("social-token")
	defer srv.Close()
	dbPath := filepath.Join(t.TempDir(), "lookout.db")
	cfg := fmt.Sprintf(`
store: { path: %%[1]q, batch_size: 16, flush_interval: 50ms }
http: { listen: "off" }
limits: { default: { rate: 1000/s, burst: 1000 } }
classifier: { terms: false }
sources:
  - id: masto
    kind: mastodon
    url: %s
    streaming_url: %s
    token: ${LOOKOUT_SOCIAL_MASTO_TOKEN}
    tags: [acme]
`, srv.URL, srv.StreamingURL)
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	post := func(id int, text string) loopback.MastodonStatus {
		return loopback.MastodonStatus{ID: fmt.Sprint(id), CreatedAt: t0.Add(time.Duration(id) * time.Second), Content: "<p>" + text + "</p>",
			AccountID: "7", Acct: "alice", Tags: []string{"acme"}, Language: "zh"}
	}

	ro, stop := healthRunAt(t, dbPath, cfg, httpx.RealClock)
	waitFor(t, "the stream", 10*time.Second, func() bool { return srv.WaitSub(1, "hashtag:acme", 0) })
	srv.Post(post(100, "first"))
	waitFor(t, "the first status stored", 10*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source = 'masto'`) == 1
	})
	stop()

	for i := 101; i <= 155; i++ {
		srv.Publish(post(i, fmt.Sprintf("hello %d", i)))
	}
	ro, stop = healthRunAt(t, dbPath, cfg, httpx.RealClock)
	defer stop()
	waitFor(t, "the 55 missed statuses", 15*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE source = 'masto'`) == 56
	})
	if n := countRows(t, ro, `SELECT count(DISTINCT item_id) FROM items WHERE source = 'masto' AND CAST(item_id AS INTEGER) BETWEEN 100 AND 155`); n != 56 {
		t.Errorf("%d distinct statuses 100…155 stored, want 56", n)
	}

	waitFor(t, "the stream again", 10*time.Second, func() bool { return srv.WaitSub(2, "hashtag:acme", 0) })
	complaint := post(200, "退款三周了还没到账，客服不理人，太差了")
	srv.Post(complaint)
	srv.Post(post(201, "垃圾，骗子"))
	// Declared Japanese: neither model scores it, whatever its characters.
	foreign := post(202, "垃圾，骗子，最悪")
	foreign.Language = "ja"
	srv.Post(foreign)
	waitFor(t, "the complaints stored", 10*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE item_id IN ('200', '201') AND sentiment = 'negative'`) == 2 &&
			countRows(t, ro, `SELECT count(*) FROM items WHERE item_id = '202' AND sentiment IS NULL`) == 1
	})
	complaint.Content = "<p>问题解决了，很满意，好评</p>"
	complaint.EditedAt = t0.Add(time.Hour)
	srv.Edit(complaint)
	srv.Delete("201")
	waitFor(t, "the edit and the delete applied", 10*time.Second, func() bool {
		return countRows(t, ro, `SELECT count(*) FROM items WHERE item_id = '200' AND text = '问题解决了，很满意，好评' AND edited_at IS NOT NULL`) == 1 &&
			countRows(t, ro, `SELECT count(*) FROM items WHERE item_id = '201' AND deleted_at IS NOT NULL`) == 1
	})
	if n := countRows(t, ro, `SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id
		WHERE i.item_id = '200' AND v.text = '退款三周了还没到账，客服不理人，太差了' AND v.sentiment = 'negative'`); n != 1 {
		t.Errorf("first version kept %d times, want 1", n)
	}
	if n := countRows(t, ro, `SELECT count(*) FROM items WHERE item_id = '200' AND sentiment = 'negative'`); n != 0 {
		t.Error("the resolved complaint is still negative")
	}
	if n := countRows(t, ro, `SELECT coalesce(sum(negative), 0) FROM sentiment_hourly WHERE source = 'masto'`); n != 0 {
		t.Errorf("negative share counts %d items, want 0 (one resolved, one deleted)", n)
	}
}
