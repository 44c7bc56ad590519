package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"lookout/config"
	"lookout/internal/pgtest"
)

// TestOpenPostgresHidesDSN: the shared store's DSN comes from the variable
// store.dsn_env names, and neither the log nor an error shows its
// password; a missing variable is named in the error.
func TestOpenPostgresHidesDSN(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "pw-4f9c1e") // the test server trusts loopback: any password opens
	cfg, err := config.Parse([]byte("transport: { kind: nats, nats: { url: nats://127.0.0.1:1 } }\nstore: { driver: postgres, dsn_env: LOOKOUT_TEST_SHARED_DSN }\n"), "pg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	t.Setenv("LOOKOUT_TEST_SHARED_DSN", "")
	if _, err := openPostgres(context.Background(), cfg, log); err == nil || !strings.Contains(err.Error(), "LOOKOUT_TEST_SHARED_DSN") {
		t.Errorf("without the variable: err = %v", err)
	}
	t.Setenv("LOOKOUT_TEST_SHARED_DSN", u.String())
	ps, err := openPostgres(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ps.Close()
	bad := *u
	bad.Host = "127.0.0.1:1" // nothing listens
	t.Setenv("LOOKOUT_TEST_SHARED_DSN", bad.String())
	_, err = openPostgres(context.Background(), cfg, log)
	if err == nil {
		t.Fatal("opened a store on a closed port")
	}
	t.Logf("error on a closed port: %v", err)
	for _, s := range []string{logs.String(), err.Error()} {
		if strings.Contains(s, "pw-4f9c1e") {
			t.Errorf("the password shows: %s", s)
		}
	}
	if !strings.Contains(logs.String(), "shared store on PostgreSQL") {
		t.Errorf("no log line naming the server: %s", logs.String())
	}
}
