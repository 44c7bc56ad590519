package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestItemQueriesUseIndexes runs EXPLAIN QUERY PLAN on the queries that
// lookout itself and its users run against items (the dashboard's room
// history, the report's room walk, retention, replay, dedupe lookups, the
// README's examples) and checks that each is served by the index it relies
// on. A change to the items indexes must keep this passing or say which
// query it gives up.
func TestItemQueriesUseIndexes(t *testing.T) {
	s := storeOpenTest(t)
	ctx := context.Background()
	// A few rows and fresh statistics, so the planner judges as it does on
	// a database in use.
	items := storeBenchRoomItems(2000, 20, 0)
	if _, err := s.WriteItems(ctx, items); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		query string
		index string // the plan must name this index
	}{
		{"dashboard room history", `SELECT CAST(strftime('%s', ts) AS INTEGER) / 60 * 60 AS b, count(*) FROM items
			WHERE source = ?1 AND room = ?2 AND ts >= ?3 AND id <= ?4 AND deleted_at IS NULL GROUP BY b ORDER BY b`, "items_source_room_ts"},
		{"report room walk", `SELECT source, room FROM items WHERE (source, room) > (?1, ?2) ORDER BY source, room LIMIT 1`, "items_source_room_ts"},
		{"report first item in window", `SELECT ts FROM items WHERE source = ?1 AND room = ?2 AND ts >= ?3 AND ts < ?4 ORDER BY ts LIMIT 1`, "items_source_room_ts"},
		{"report examples", `SELECT id, text FROM items i WHERE i.source = ?1 AND i.room = ?2 AND i.ts >= ?3 AND i.ts < ?4
			AND i.sentiment = 'negative' AND i.text IS NOT NULL`, "items_source_room_ts"},
		{"README room terms, last 10 minutes", `SELECT t.term, count(*) AS mentions
			FROM items i JOIN item_terms t ON t.item_id = i.id
			WHERE i.room = '21452505' AND i.sentiment = 'negative'
			  AND i.ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 minutes')
			GROUP BY t.term ORDER BY mentions DESC, t.term LIMIT 10`, "items_ts"},
		{"last N minutes", `SELECT ts, text FROM items WHERE ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 minutes') ORDER BY ts DESC LIMIT 20`, "items_ts"},
		{"retention", `SELECT id FROM items WHERE ts < ?1 LIMIT ?2`, "items_ts"},
		{"replay", `SELECT id FROM items WHERE ts >= ?1 AND ts < ?2 AND deleted_at IS NULL ORDER BY ts, id`, "items_ts"},
		{"dedupe lookup", `SELECT id FROM items WHERE source = ?1 AND item_id = ?2`, "sqlite_autoindex_items_1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var args []any // placeholders are ?1…?N, numbered without gaps
			for i := 1; strings.Contains(c.query, fmt.Sprintf("?%d", i)); i++ {
				args = append(args, "x")
			}
			rows, err := s.DB().QueryContext(ctx, `EXPLAIN QUERY PLAN `+c.query, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			if !strings.Contains(text, c.index) {
				t.Errorf("plan does not use %s:\n%s", c.index, text)
			}
		})
	}
}
