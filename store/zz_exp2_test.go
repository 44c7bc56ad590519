package store

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestZZDissect(t *testing.T) {
	if os.Getenv("STORE_EXP") == "" {
		t.Skip("experiment")
	}
	const full = `(source, platform, room, kind, item_id, author_id, author, text, url, ts, metric, value, count, sentiment, score, prob, lang, labels, inserted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	for round := 0; round < 3; round++ {
		for _, name := range []string{"items", "items-nockpt", "items-sync-off"} {
			s, err := Open(context.Background(), filepath.Join(t.TempDir(), "x.db"))
			if err != nil {
				t.Fatal(err)
			}
			s.DB().SetMaxOpenConns(1)
			table := "items"
			switch name {
			case "items-noidx":
				for _, d := range []string{"items_source_room_ts", "items_ts", "items_kind_ts"} {
					s.DB().Exec("DROP INDEX " + d)
				}
			case "plain19", "plain19-fkoff", "plain6":
				s.DB().Exec(`CREATE TABLE plain (source, platform, room, kind, item_id, author_id, author, text, url, ts, metric, value, count, sentiment, score, prob, lang, labels, inserted_at)`)
				table = "plain"
			}
			if name == "items-nockpt" {
				s.DB().Exec(`PRAGMA wal_autocheckpoint = 0`)
			}
			if name == "items-sync-off" {
				s.DB().Exec(`PRAGMA synchronous = OFF`)
			}
			if name == "plain19-fkoff" {
				s.DB().Exec(`PRAGMA foreign_keys = off`)
			}
			q := `INSERT INTO ` + table + ` ` + full
			if name == "plain6" {
				q = `INSERT INTO plain (source, platform, room, kind, item_id, ts) VALUES (?, ?, ?, ?, ?, ?)`
			}
			items := storeBenchItems(512, 0)
			start, c0 := time.Now(), storeCPU()
			const batches = 100
			for r := 0; r < batches; r++ {
				tx, _ := s.DB().Begin()
				st, err := tx.Prepare(q)
				if err != nil {
					t.Fatal(err)
				}
				for i := range items {
					it := &items[i]
					id := r*512 + i
					ts := FormatTime(storeT0.Add(time.Duration(id) * time.Millisecond))
					if name == "plain6" {
						_, err = st.Exec(it.Source, it.Platform, it.Room, "chat", strconv.Itoa(id), ts)
					} else {
						_, err = st.Exec(it.Source, it.Platform, it.Room, "chat", strconv.Itoa(id), it.AuthorID, it.Author, it.Text, nil, ts, nil, nil, nil, "negative", 0.5, 0.8, "zh", nil, "2026-11-25T12:00:00.000Z")
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				tx.Commit()
			}
			el, cpu := time.Since(start), storeCPU()-c0
			n := float64(batches * 512)
			t.Logf("%-14s wall %.0f rows/s  cpu %.1f µs/row", name, n/el.Seconds(), float64(cpu.Microseconds())/n)
			s.Close()
		}
	}
}
