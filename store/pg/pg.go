// Package pg is lookout's store on PostgreSQL, for several processors
// (`lookout run --role process`) sharing one store across machines. Its
// tables and views carry the SQLite store's names and columns with
// PostgreSQL's types (migrations/0001_schema.sql says which); SQLite
// stays the default.
//
// Writes come in batches, one transaction per batch, deduplicated on
// (source, item_id) as in SQLite, so store.Writer runs on either store.
package pg

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"lookout/internal/redact"
	"lookout/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// migrateLock is the advisory lock key under which migrations run, so that
// processors starting at once apply each step once ("lookout" in ASCII).
const migrateLock int64 = 0x6c6f6f6b6f7574

// Store is an open PostgreSQL store.
type Store struct {
	pool     *pgxpool.Pool
	name     string // the DSN, redacted, for errors
	readOnly bool
	dropRaw  atomic.Bool
}

// Open connects to the database dsn names and brings its schema up to
// date. The DSN (which may hold a password) never appears in errors or
// logs: they name its host only.
func Open(ctx context.Context, dsn string) (*Store, error) {
	s, err := connect(ctx, dsn, nil)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

func connect(ctx context.Context, dsn string, tune func(*pgxpool.Config)) (*Store, error) {
	name := Redact(dsn)
	if dsn == "" {
		return nil, errors.New("pg: no DSN given")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors quote the DSN: say only where it failed.
		return nil, fmt.Errorf("pg: cannot parse the DSN %s (postgres://user:password@host:port/database?sslmode=…)", name)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "lookout"
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if tune != nil {
		tune(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pg: connect to %s: %w", name, scrub(err, dsn))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pg: connect to %s: %w", name, scrub(err, dsn))
	}
	return &Store{pool: pool, name: name}, nil
}

// Redact is how a DSN is shown: scheme and host of a URL, host of a
// key=value DSN; never the user, password or parameters.
func Redact(dsn string) string {
	if strings.Contains(dsn, "://") {
		return redact.SecretURL(dsn)
	}
	for _, f := range strings.Fields(dsn) {
		if h, ok := strings.CutPrefix(f, "host="); ok {
			return "postgres host " + h
		}
	}
	return "(postgres DSN)"
}

// scrub keeps a password out of an error that might quote the DSN.
func scrub(err error, dsn string) error {
	cfg, perr := pgconn.ParseConfig(dsn)
	if perr != nil || cfg.Password == "" || !strings.Contains(err.Error(), cfg.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), cfg.Password, "…"))
}

// Pool exposes the connection pool for the package's other files and
// for tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Name is the redacted DSN.
func (s *Store) Name() string { return s.name }

// SetKeepRaw says whether WriteItems stores raw payloads (store.keep_raw).
func (s *Store) SetKeepRaw(keep bool) { s.dropRaw.Store(!keep) }

// Ping reports whether the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pg: %s: %w", s.name, err)
	}
	return nil
}

// Close closes every connection.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Migration is one schema step of migrations/NNNN_name.sql.
type Migration = store.Migration

// Migrations lists the embedded migrations in the order they apply.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("pg: read migrations: %w", err)
	}
	var out []Migration
	seen := map[int]bool{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("pg: migration file %s: name must look like 0001_some_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v == 0 || seen[v] {
			return nil, fmt.Errorf("pg: migration file %s: version 0 or used twice", e.Name())
		}
		seen[v] = true
		body, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("pg: read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// SchemaVersion is the highest migration applied, 0 for an empty database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0
		ELSE (SELECT coalesce(max(version), 0) FROM schema_migrations) END`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("pg: %s: schema version: %w", s.name, err)
	}
	return v, nil
}

// migrate applies the missing migrations in one transaction that holds an
// advisory lock: a second processor starting at the same moment waits for
// the first and then finds every step applied.
func (s *Store) migrate(ctx context.Context) error {
	migs, err := Migrations()
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pg: %s: migrate: %w", s.name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("pg: %s: migrate: lock: %w", s.name, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("pg: %s: create schema_migrations: %w", s.name, err)
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("pg: %s: read schema version: %w", s.name, err)
	}
	if len(migs) > 0 && have > migs[len(migs)-1].Version {
		return fmt.Errorf("pg: %s has schema version %d but this lookout knows only up to %d; use a newer lookout",
			s.name, have, migs[len(migs)-1].Version)
	}
	for _, m := range migs {
		if m.Version <= have {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("pg: %s: migration %04d_%s: %w", s.name, m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("pg: %s: migration %04d_%s: %w", s.name, m.Version, m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pg: %s: migrate: commit: %w", s.name, err)
	}
	return nil
}

// Rejects reports whether err is about the data rather than the server's
// condition: a constraint, a value out of range or malformed (SQLSTATE
// classes 22 and 23). The writer then writes item by item and refuses
// only the bad ones.
func Rejects(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23") || pe.Code == "54000"
	}
	return false
}
