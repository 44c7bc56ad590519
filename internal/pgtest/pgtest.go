// Package pgtest gives tests a PostgreSQL database of their own on the
// server named by LOOKOUT_TEST_POSTGRES (a DSN; .ci/run starts a throwaway
// cluster and sets it). Without the variable the tests that need one skip
// and say why.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the variable holding the test server's DSN.
const EnvVar = "LOOKOUT_TEST_POSTGRES"

// ServerDSN returns the test server's DSN, skipping t when none is set.
func ServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvVar)
	if dsn == "" {
		t.Skipf("%s is not set: no PostgreSQL server to test against (.ci/run starts one: .ci/postgres start DIR prints its DSN)", EnvVar)
	}
	return dsn
}

// NewDatabase creates an empty database for t on the test server and
// returns its DSN; the database is dropped when t ends. It skips t when
// LOOKOUT_TEST_POSTGRES is unset.
func NewDatabase(t testing.TB) string {
	t.Helper()
	server := ServerDSN(t)
	var b [6]byte
	rand.Read(b[:])
	name := "lookout_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvVar, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	dsn, err := WithDatabase(server, name)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvVar, err)
	}
	return dsn
}

// WithDatabase returns dsn (a URL or key=value DSN) naming database name.
func WithDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil
}
