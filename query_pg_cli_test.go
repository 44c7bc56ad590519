package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"lookout/internal/pgtest"
	"lookout/store/pg"
)

// TestQueryCLIPostgres: `lookout query --db postgres` reads the DSN from
// LOOKOUT_POSTGRES_DSN and answers from the PostgreSQL store; a write is
// refused; without the variable it says which one to set.
func TestQueryCLIPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s, err := pg.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	t.Setenv(pgDSNEnv, dsn)
	out := captureStdout(t, func() error {
		return cmdQuery(context.Background(), []string{"--db", "postgres", "--format", "csv", "SELECT count(*) AS n, 'x' AS y FROM items"})
	})
	if out != "n,y\n0,x\n" {
		t.Errorf("output = %q", out)
	}
	err = cmdQuery(context.Background(), []string{"--db", "postgres", "DELETE FROM items"})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("DELETE: err = %v", err)
	}
	t.Setenv(pgDSNEnv, "")
	err = cmdQuery(context.Background(), []string{"--db", "postgres", "SELECT 1"})
	if err == nil || !strings.Contains(err.Error(), pgDSNEnv) {
		t.Errorf("without %s: err = %v", pgDSNEnv, err)
	}
}

func captureStdout(t *testing.T, f func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	ferr := f()
	os.Stdout = old
	w.Close()
	out := <-done
	if ferr != nil {
		t.Fatal(ferr)
	}
	return out
}
