package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkSchemaCost says what each part of the items schema costs the
// writer: the same 200-room chat items (batches of 32768, as the daemon's
// load run writes them) into the schema as shipped (keep_raw off, search
// off, no hot terms: the loadgen configuration) and into that schema with
// one part added or taken away. Compare items/s and cpu-µs/item of the
// sub-benchmarks within one run; the machine's load moves all of them.
func BenchmarkSchemaCost(b *testing.B) {
	raw := []byte(`{"cmd":"DANMU_MSG:4:0:2:2:2:0","info":[[0,1,25,16777215,1764000000000,-123456789,0,"3a5b7c9d",0,0,0,"",0,"{}","{}",` +
		`{"mode":0,"show_player_type":0,"extra":"{\"send_from_me\":false,\"mode\":0,\"color\":16777215,\"dm_type\":0,\"font_size\":25,\"player_mode\":1,` +
		`\"content\":\"主播好棒，已下单\",\"user_hash\":\"1234567890\",\"emoticon_unique\":\"\",\"recommend_score\":3,\"id_str\":\"lg1x1\"}",` +
		`"user":{"uid":100001,"base":{"name":"viewer","face":"https://i0.hdslb.com/bfs/face/member/noface.jpg","name_color":0,"is_mystery":false}}}],` +
		`"主播好棒，已下单",[100001,"viewer",0,0,0,10000,1,""],[21,"粉丝团","主播",21452505,1725515,"",0,6809855,1725515,5414290,0,0,12345],` +
		`[16,0,6406234,">50000",0],["",""],0,0,null,{"ts":1764000000,"ct":"F8A4326B"},0,0,null,null,0,105,[12],null],` +
		`"dm_v2":"` + strings.Repeat("5Li75pKt5aW95qOS", 12) + `"}`)
	for _, v := range []struct {
		name   string
		search bool
		keep   bool
		terms  bool
		sql    []string
	}{
		{name: "as-shipped"},
		{name: "+hot-terms-json", terms: true},
		{name: "+raw-payloads", keep: true},
		{name: "+search-fts", search: true},
		{name: "-index-items_ts", sql: []string{`DROP INDEX items_ts`}},
		{name: "-index-items_source_room_ts", sql: []string{`DROP INDEX items_source_room_ts`}},
		{name: "-both-ts-indexes", sql: []string{`DROP INDEX items_ts`, `DROP INDEX items_source_room_ts`}},
	} {
		b.Run(v.name, func(b *testing.B) {
			s, err := Open(context.Background(), filepath.Join(b.TempDir(), "lookout.db"), WithSearch(v.search))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.SetKeepRaw(v.keep)
			for _, q := range v.sql {
				if _, err := s.DB().Exec(q); err != nil {
					b.Fatalf("%s: %v", q, err)
				}
			}
			items := storeBenchRoomItems(b.N, 200, 0)
			for i := range items {
				if v.terms {
					items[i].Score.Terms = []string{"主播", "下单"}
				}
				if v.keep {
					items[i].Raw = raw
				}
			}
			storeBenchWrite(b, s, items, 32768)
		})
	}
}
