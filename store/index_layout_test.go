package store

import (
	"context"
	"fmt"
	"path/filepath"
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
				items := storeBenchRoomItems(b.N, rooms, 0)
				ctx := context.Background()
				b.ReportAllocs()
				cpu0 := storeCPUTime()
				b.ResetTimer()
				written := 0
				for off := 0; off < b.N; off += batch {
					n, err := s.WriteItems(ctx, items[off:min(off+batch, b.N)])
					if err != nil {
						b.Fatal(err)
					}
					written += n
				}
				b.StopTimer()
				if written != b.N {
					b.Fatalf("wrote %d, want %d", written, b.N)
				}
				b.ReportMetric(float64((storeCPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/item")
				b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "items/s")
			})
		}
	}
}
