package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Listing or expiring silences in a database that is not there is an
// error naming it, and leaves no empty database behind; adding one creates
// the database (a silence may come before the daemon's first run).
func TestSilenceDoesNotCreateADatabaseToRead(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "lookout.db")
	for _, sub := range []string{"list", "expire"} {
		err := Silence(context.Background(), db, sub, []string{"x"}, time.Hour, "", "", &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "no database at "+db) {
			t.Errorf("silence %s: err = %v", sub, err)
		}
		if _, err := os.Stat(db); err == nil {
			t.Fatalf("silence %s created %s", sub, db)
		}
	}
	if err := Silence(context.Background(), db, "add", []string{"rule=negative-surge"}, time.Hour, "planned", "ops", &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Silence(context.Background(), db, "list", nil, 0, "", "", &out); err != nil || !strings.Contains(out.String(), "negative-surge") {
		t.Fatalf("list after add: err=%v\n%s", err, out.String())
	}
}
