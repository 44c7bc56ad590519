package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// storeMigrationFiles holds every schema migration. A migration is a file
// migrations/NNNN_name.sql; files are applied in version order, each in its
// own transaction, and recorded in schema_migrations. Never edit a released
// migration: add the next number.
//
//go:embed migrations/*.sql
var storeMigrationFiles embed.FS

// Migration is one schema step.
type Migration struct {
	Version int
	Name    string // file name without the version prefix and .sql
	SQL     string
}

var storeMigrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migrations lists the embedded migrations in the order they apply.
func Migrations() ([]Migration, error) {
	return storeLoadMigrations(storeMigrationFiles, "migrations")
}

func storeLoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := storeMigrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("store: migration file %s: name must look like 0001_some_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v == 0 {
			return nil, fmt.Errorf("store: migration file %s: versions start at 0001", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("store: migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// SchemaVersion is the highest migration applied to the database, 0 for a
// fresh file.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var exists int
	if err := s.db.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", storeExplain(err))
	}
	if exists == 0 {
		return 0, nil
	}
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", storeExplain(err))
	}
	return int(v.Int64), nil
}

func (s *Store) migrate(ctx context.Context) error {
	migs, err := Migrations()
	if err != nil {
		return err
	}
	return storeApplyMigrations(ctx, s.db, s.path, migs)
}

// storeApplyMigrations brings db up to the last of migs. Each step runs in
// an IMMEDIATE transaction (the DSN's _txlock) and re-checks whether it is
// already applied inside it, so two processes opening a fresh file at once
// do not both apply a step.
func storeApplyMigrations(ctx context.Context, db *sql.DB, path string, migs []Migration) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY, -- the NNNN of migrations/NNNN_name.sql
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL        -- UTC, when this database got the step
	)`); err != nil {
		return fmt.Errorf("store: open %s: create schema_migrations: %w", path, storeExplain(err))
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("store: open %s: read schema version: %w", path, storeExplain(err))
	}
	if len(migs) > 0 && have > migs[len(migs)-1].Version {
		return fmt.Errorf("store: %s has schema version %d but this lookout knows only up to %d; use a newer lookout",
			path, have, migs[len(migs)-1].Version)
	}
	for _, m := range migs {
		if m.Version <= have {
			continue
		}
		if err := storeApplyOne(ctx, db, m); err != nil {
			return fmt.Errorf("store: open %s: migration %04d_%s: %w", path, m.Version, m.Name, storeExplain(err))
		}
	}
	return nil
}

func storeApplyOne(ctx context.Context, db *sql.DB, m Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var done int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&done); err != nil {
		return err
	}
	if done > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, FormatTime(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
}
