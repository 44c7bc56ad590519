package store

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func storeCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZVariants(t *testing.T) {
	if os.Getenv("STORE_EXP") == "" {
		t.Skip("experiment")
	}
	for round := 0; round < 2; round++ {
		for _, name := range []string{"full", "noraw", "noterms", "bare", "trivial"} {
			s, err := Open(context.Background(), filepath.Join(t.TempDir(), "x.db"))
			if err != nil {
				t.Fatal(err)
			}
			s.DB().Exec(`CREATE TABLE triv (a TEXT, b TEXT)`)
			items := storeBenchItems(512, 0)
			for i := range items {
				if name == "noraw" || name == "bare" {
					items[i].Raw = nil
				}
				if name == "noterms" || name == "bare" {
					items[i].Score.Terms = nil
					items[i].Score.Groups = nil
				}
			}
			start, c0 := time.Now(), storeCPU()
			const batches = 100
			for r := 0; r < batches; r++ {
				for i := range items {
					id := r*512 + i
					items[i].ID = strconv.Itoa(id)
					items[i].TS = storeT0.Add(time.Duration(id) * time.Millisecond)
				}
				if name == "trivial" {
					tx, _ := s.DB().Begin()
					st, _ := tx.Prepare(`INSERT INTO triv VALUES (?, ?)`)
					for i := range items {
						st.Exec(items[i].ID, items[i].Text)
					}
					tx.Commit()
					continue
				}
				if _, err := s.WriteItems(context.Background(), items); err != nil {
					t.Fatal(err)
				}
			}
			el, cpu := time.Since(start), storeCPU()-c0
			n := float64(batches * 512)
			t.Logf("%-8s wall %.0f items/s  cpu %.1f µs/item", name, n/el.Seconds(), float64(cpu.Microseconds())/n)
			s.Close()
		}
	}
}
