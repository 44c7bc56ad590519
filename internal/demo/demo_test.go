package demo

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// TestDemoCatchesTheCrisis plays a shortened show and checks what the README
// promises: at least one red crisis alert and one KPI-drop alert, printed
// and stored, and a database the printed query line can ask.
func TestDemoCatchesTheCrisis(t *testing.T) {
	if testing.Short() {
		t.Skip("plays a 20 s show; skipped with -short")
	}
	db := filepath.Join(t.TempDir(), "demo.db")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := Run(ctx, Options{Duration: 20 * time.Second, DBPath: db, Out: &out}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	count := func(q string) int {
		var n int
		if err := conn.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM alerts WHERE severity='red' AND rule IN ('crisis-burst','negative-surge')`); n == 0 {
		t.Errorf("no red crisis alert\n%s", out.String())
	}
	if n := count(`SELECT count(*) FROM alerts WHERE rule IN ('viewers-drop','viewers-low')`); n == 0 {
		t.Errorf("no KPI alert\n%s", out.String())
	}
	if n := count(`SELECT count(*) FROM items WHERE kind='chat'`); n < 100 {
		t.Errorf("only %d chat items stored", n)
	}
	if n := count(`SELECT count(*) FROM items WHERE source='brand-news'`); n != 3 {
		t.Errorf("%d news posts stored, want 3", n)
	}
	if n := count(`SELECT count(*) FROM items WHERE source='brand-forum'`); n != 2 {
		t.Errorf("%d forum posts stored, want 2", n)
	}
	if n := count(`SELECT count(*) FROM alerts WHERE rule='source-broken' AND source='brand-forum'`); n != 1 {
		t.Errorf("%d source-broken alerts for the redesigned forum, want 1\n%s", n, out.String())
	}
	if n := count(`SELECT count(*) FROM reports WHERE kind = 'review'`); n != 1 {
		t.Errorf("%d stream reviews stored, want 1 for the show that ended", n)
	}
	text := out.String()
	for _, want := range []string{"crisis-burst", "viewers-", "source-broken", "shape_drift", "go run . query --db", "直播复盘 Live review"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
