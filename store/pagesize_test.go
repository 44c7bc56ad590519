package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestOpenPageSize: a database Open creates has StorePageSize pages; one
// created before (SQLite's default 4096) keeps its page size, and its
// items stay readable and writable.
func TestOpenPageSize(t *testing.T) {
	ctx := context.Background()
	pageSize := func(t *testing.T, s *Store) int {
		t.Helper()
		var p int
		if err := s.DB().QueryRowContext(ctx, `PRAGMA page_size`).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// walCheckpoint: no connection checkpoints at its own commits, and the
	// log restarts after the same number of bytes whatever the page size.
	walCheckpoint := func(t *testing.T, s *Store, want int64) {
		t.Helper()
		var n int
		if err := s.DB().QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("wal_autocheckpoint %d (%v), want 0", n, err)
		}
		if s.walRestartFrames != want {
			t.Fatalf("WAL restarts after %d frames, want %d", s.walRestartFrames, want)
		}
	}
	t.Run("new file", func(t *testing.T) {
		s := storeOpenTest(t)
		if got := pageSize(t, s); got != StorePageSize {
			t.Fatalf("page_size %d, want %d", got, StorePageSize)
		}
		var mode string
		if err := s.DB().QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode %q (%v), want wal", mode, err)
		}
		walCheckpoint(t, s, storeWALRestartBytes/StorePageSize)
	})
	t.Run("existing 4096-page file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "old.db")
		raw, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`PRAGMA page_size = 4096; PRAGMA journal_mode = WAL`); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteItems(ctx, storeBenchRoomItems(500, 5, 0)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err = Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := pageSize(t, s); got != 4096 {
			t.Fatalf("page_size %d after reopening, want the file's 4096", got)
		}
		walCheckpoint(t, s, storeWALRestartBytes/4096)
		var n int
		if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil || n != 500 {
			t.Fatalf("items %d (%v), want 500", n, err)
		}
	})
}
