package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCheckpointerKeepsWALShort: no connection checkpoints at its own
// commit; the checkpointer copies the log into the database beside the
// writer, and the batch writer finishes the copy once the log passes its
// limit, so the log starts again from its beginning and its file stays a
// few batches long however much is written. Without that restart the file
// would hold every batch.
func TestCheckpointerKeepsWALShort(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wal.db")
	const limit = 1 << 20
	s, err := Open(ctx, path, func(o *storeOptions) { o.checkpointEvery = 5 * time.Millisecond; o.walRestartBytes = limit })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size := func(name string) int64 {
		t.Helper()
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	const batches, per = 60, 1000
	var oneBatch int64
	for b := range batches {
		if _, err := s.WriteItems(ctx, storeBenchRoomItems(per, 20, b*per)); err != nil {
			t.Fatal(err)
		}
		if b == 0 {
			oneBatch = size(path + "-wal")
		}
		time.Sleep(2 * time.Millisecond)
	}
	wal := size(path + "-wal")
	t.Logf("one batch %d KiB of WAL; after %d batches the WAL file is %d KiB, the database %d KiB",
		oneBatch>>10, batches, wal>>10, size(path)>>10)
	if oneBatch*batches < 4*(limit+8*oneBatch) {
		t.Fatalf("a batch writes %d bytes of WAL: too little for this test to tell a restarting log from a growing one", oneBatch)
	}
	if wal > limit+8*oneBatch {
		t.Fatalf("WAL file %d bytes after %d batches of %d bytes each, want at most the %d-byte limit and eight batches: the log did not restart",
			wal, batches, oneBatch, limit)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil || n != batches*per {
		t.Fatalf("%d items (%v), want %d", n, err, batches*per)
	}
}

// TestCheckpointerCopiesWithoutWriter: a log below the restart limit is
// copied into the database by the checkpointer alone, with no commit
// after it.
func TestCheckpointerCopiesWithoutWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wal.db")
	s, err := Open(ctx, path, func(o *storeOptions) { o.checkpointEvery = 5 * time.Millisecond })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteItems(ctx, storeBenchRoomItems(2000, 20, 0)); err != nil {
		t.Fatal(err)
	}
	storeEventually(t, "the checkpointer to copy a 2,000-item commit into the database file", func() bool {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size() > before.Size()+1<<20
	})
}
