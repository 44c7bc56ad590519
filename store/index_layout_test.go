package store

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkRoomSpread asks whether the store's cost per item grows with the
// number of rooms a batch is spread over: the same number of chat items
// from 10 and from 500 rooms, in batches of 5000 (what the writer's 500 ms
// flush collects at 10k msgs/s) and 32768 (its batch size in the load run), into the schema as shipped and into index layouts that keep each
// commit's index writes together. Compare cpu-µs/item between the room
// counts of one layout, and between layouts at 500 rooms; the machine's
// load moves every figure, CPU per item less than items/s.
func BenchmarkRoomSpread(b *testing.B) {
	for _, v := range []struct {
		name string
		sql  []string
	}{
		{name: "as-shipped"},
		{name: "-items_source_room_ts", sql: []string{`DROP INDEX items_source_room_ts`}},
		{name: "-items_ts", sql: []string{`DROP INDEX items_ts`}},
		{name: "-both-ts-indexes", sql: []string{`DROP INDEX items_ts`, `DROP INDEX items_source_room_ts`}},
		{name: "ts-leading", sql: []string{`DROP INDEX items_ts`, `DROP INDEX items_source_room_ts`,
			`CREATE INDEX items_ts_source_room ON items (ts, source, room)`}},
	} {
		for _, c := range []struct{ rooms, batch int }{{10, 5000}, {500, 5000}, {10, 32768}, {500, 32768}} {
			rooms, batch := c.rooms, c.batch
			b.Run(fmt.Sprintf("%s/rooms=%d/batch=%d", v.name, rooms, batch), func(b *testing.B) {
				s, err := Open(context.Background(), filepath.Join(b.TempDir(), "lookout.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				for _, q := range v.sql {
					if _, err := s.DB().Exec(q); err != nil {
						b.Fatalf("%s: %v", q, err)
					}
				}
				storeBenchWrite(b, s, storeBenchRoomItems(b.N, rooms, 0), batch)
			})
		}
	}
}

// BenchmarkDedupeKey compares, on their own, the two ways of keeping items
// unique per source: the shipped UNIQUE (source, item_id) text index, and a
// 64-bit hash of the pair in an INTEGER column with a unique index (which
// would also need the pair compared on a hit, to keep distinct items whose
// hashes collide). Each variant is a table of just those columns in a
// database opened with the store's pragmas, written in transactions of 5000
// rows, 32 rows per statement, from 10 and from 500 rooms; the table with
// no unique index is what either index costs on top.
func BenchmarkDedupeKey(b *testing.B) {
	for _, v := range []struct {
		name, create, insert string
		hash                 bool
	}{
		{name: "no-dedupe-index", create: `CREATE TABLE d (id INTEGER PRIMARY KEY, source TEXT NOT NULL, item_id TEXT, key INTEGER)`},
		{name: "text-pair", create: `CREATE TABLE d (id INTEGER PRIMARY KEY, source TEXT NOT NULL, item_id TEXT, key INTEGER, UNIQUE (source, item_id))`},
		{name: "hash64", hash: true, create: `CREATE TABLE d (id INTEGER PRIMARY KEY, source TEXT NOT NULL, item_id TEXT, key INTEGER NOT NULL);
			CREATE UNIQUE INDEX d_key ON d (key)`},
	} {
		for _, rooms := range []int{10, 500} {
			b.Run(fmt.Sprintf("%s/rooms=%d", v.name, rooms), func(b *testing.B) {
				s, err := Open(context.Background(), filepath.Join(b.TempDir(), "lookout.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				db := s.DB()
				if _, err := db.Exec(v.create); err != nil {
					b.Fatal(err)
				}
				const per = 32
				ins := `INSERT OR IGNORE INTO d (source, item_id, key) VALUES (?, ?, ?)` + strings.Repeat(`, (?, ?, ?)`, per-1)
				items := storeBenchRoomItems(b.N, rooms, 0)
				args := make([]any, 0, 3*per)
				ctx := context.Background()
				cpu0 := storeCPUTime()
				b.ResetTimer()
				const batch = 5000
				for off := 0; off < b.N; off += batch {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					st, err := tx.Prepare(ins)
					if err != nil {
						b.Fatal(err)
					}
					end := min(off+batch, b.N)
					for i := off; i+per <= end; i += per {
						args = args[:0]
						for _, it := range items[i : i+per] {
							var key any
							if v.hash {
								h := fnv.New64a()
								h.Write([]byte(it.Source))
								h.Write([]byte{0})
								h.Write([]byte(it.ID))
								key = int64(h.Sum64())
							}
							args = append(args, it.Source, it.ID, key)
						}
						if _, err := st.Exec(args...); err != nil {
							b.Fatal(err)
						}
					}
					st.Close()
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64((storeCPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/item")
			})
		}
	}
}

// BenchmarkRoomSpreadPageSize is BenchmarkRoomSpread's shipped layout in
// databases created with other page sizes: at 500 rooms a commit of 5000
// items adds about ten rows per room to each per-room index run, a few
// hundred bytes, but writes each page it touched whole to the WAL.
func BenchmarkRoomSpreadPageSize(b *testing.B) {
	for _, page := range []int{1024, 2048, 4096, 8192, 16384} {
		for _, rooms := range []int{10, 500} {
			b.Run(fmt.Sprintf("page=%d/rooms=%d", page, rooms), func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "lookout.db")
				raw, err := sql.Open("sqlite3", path)
				if err != nil {
					b.Fatal(err)
				}
				// The page size holds from the database's first table on.
				if _, err := raw.Exec(fmt.Sprintf(`PRAGMA page_size = %d; CREATE TABLE page_size_probe (x); DROP TABLE page_size_probe`, page)); err != nil {
					b.Fatal(err)
				}
				raw.Close()
				s, err := Open(context.Background(), path)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var got int
				if err := s.DB().QueryRow(`PRAGMA page_size`).Scan(&got); err != nil || got != page {
					b.Fatalf("page_size %d (%v), want %d", got, err, page)
				}
				storeBenchWrite(b, s, storeBenchRoomItems(b.N, rooms, 0), 5000)
			})
		}
	}
}
