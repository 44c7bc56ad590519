package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

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

// TestSilenceCLIPostgres: `lookout silence --db postgres` adds, lists and
// expires silences in the shared store, where the processors' delivery
// reads them.
func TestSilenceCLIPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	t.Setenv(pgDSNEnv, dsn)
	out := captureStdout(t, func() error {
		return cmdSilence(context.Background(), []string{"add", "--db", "postgres", "--for", "1h", "--by", "ops", "room=21452505"})
	})
	if !strings.HasPrefix(out, "silence ") || !strings.Contains(out, `room="21452505"`) {
		t.Fatalf("add: %q", out)
	}
	id := strings.Fields(out)[1]
	s, err := pg.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	active, err := s.ListSilences(context.Background(), time.Now(), false)
	if err != nil || len(active) != 1 || active[0].ID != id || !active[0].Matches(map[string]string{"room": "21452505"}) {
		t.Fatalf("stored silences = %+v, %v", active, err)
	}
	out = captureStdout(t, func() error { return cmdSilence(context.Background(), []string{"expire", "--db", "postgres", id}) })
	if !strings.Contains(out, "expired") {
		t.Errorf("expire: %q", out)
	}
	if active, _ := s.ListSilences(context.Background(), time.Now(), false); len(active) != 0 {
		t.Errorf("still active after expire: %+v", active)
	}
}

// TestQueryCLIConfigPostgres: `lookout query -c config.yaml` queries the
// config's shared PostgreSQL store, DSN from the variable store.dsn_env
// names.
func TestQueryCLIConfigPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s, err := pg.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := t.TempDir() + "/pg.yaml"
	cfg := "transport: { kind: nats, nats: { url: nats://127.0.0.1:4222 } }\nstore: { driver: postgres, dsn_env: QUERY_TEST_PG }\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("QUERY_TEST_PG", dsn)
	out := captureStdout(t, func() error {
		return cmdQuery(context.Background(), []string{"-c", path, "--format", "csv", "SELECT count(*) AS n FROM schema_migrations"})
	})
	if out != "n\n1\n" {
		t.Errorf("output = %q", out)
	}
}
