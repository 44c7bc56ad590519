package config

import (
	"strings"
	"testing"
)

// TestStorePostgres: store.driver postgres is the process role's, reads
// its DSN from the variable store.dsn_env names (never from the file),
// and refuses, naming them, the features that read the SQLite file.
func TestStorePostgres(t *testing.T) {
	const nats = "transport: { kind: nats, nats: { url: nats://127.0.0.1:4222 } }\n"
	for _, tc := range []struct {
		name, yaml string
		want       string // "" for a valid config
	}{
		{"sqlite default", nats, ""},
		{"postgres", nats + "store: { driver: postgres }\n", ""},
		{"unknown driver", nats + "store: { driver: mysql }\n", "store.driver"},
		{"dashboard", nats + "store: { driver: postgres }\nui: { listen: 127.0.0.1:8080 }\n", "dashboard"},
		{"search", nats + "store: { driver: postgres, search: true }\n", "lookout search"},
		{"review", nats + "store: { driver: postgres }\nreports: { review: { enabled: true } }\n", "stream reviews"},
		{"digest", nats + "store: { driver: postgres }\nreports: { daily: { cron: \"0 9 * * *\" } }\n", "digests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "pg.yaml")
			if tc.want == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
	cfg, err := Parse([]byte(nats+"store: { driver: postgres, dsn_env: MY_PG }\n"), "pg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for role, ok := range map[string]bool{"process": true, "collect": false, "all": false} {
		if err := cfg.ValidRole(role); (err == nil) != ok {
			t.Errorf("--role %s: err %v, want ok=%v", role, err, ok)
		}
	}
	t.Setenv("MY_PG", "")
	if _, err := cfg.Store.PostgresDSN(); err == nil || !strings.Contains(err.Error(), "$MY_PG") {
		t.Errorf("empty MY_PG: err = %v", err)
	}
	t.Setenv("MY_PG", "postgres://u:secret@db:5432/lookout")
	if dsn, err := cfg.Store.PostgresDSN(); err != nil || dsn != "postgres://u:secret@db:5432/lookout" {
		t.Errorf("PostgresDSN = %q, %v", dsn, err)
	}
}
