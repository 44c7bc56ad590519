package pg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"lookout/store"
)

// queryFirstWords are the statements `lookout query` runs on PostgreSQL.
// Everything else (COPY, which can write files or run programs even in a
// read-only transaction; SET, which could lift the read-only mode; DO,
// CALL, LISTEN, transaction control, DDL, DML) is refused before it
// reaches the server. What a permitted statement could still change
// (a data-modifying WITH, SELECT … INTO, nextval, EXPLAIN ANALYZE of an
// INSERT) the server refuses: it runs in a READ ONLY transaction on a
// session whose transactions default to read-only.
var queryFirstWords = map[string]bool{"SELECT": true, "WITH": true, "VALUES": true, "TABLE": true, "EXPLAIN": true, "SHOW": true}

// IsDSN reports whether db names a PostgreSQL database (a postgres:// or
// postgresql:// URL) rather than a SQLite file.
func IsDSN(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Query runs one read-only statement against the PostgreSQL database dsn
// names and hands its columns and rows to sink, with the rules of
// store.Query: one statement, nothing that writes (ErrQueryReadOnly),
// interrupted after opts.Timeout (the server's statement_timeout).
// Values reach sink as int64, float64, string, []byte, bool, time.Time or
// nil; numeric as float64, jsonb and arrays as JSON text.
func Query(ctx context.Context, dsn, sqlText string, opts store.QueryOptions, sink store.RowSink) (err error) {
	if err := store.CheckOneStatement(sqlText); err != nil {
		return err
	}
	if w := store.FirstWord(sqlText); !queryFirstWords[w] {
		return fmt.Errorf("%w (PostgreSQL: SELECT, WITH, VALUES, TABLE, EXPLAIN or SHOW; got %s)", store.ErrQueryReadOnly, w)
	}
	if opts.Explain {
		sqlText = "EXPLAIN " + sqlText
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = store.DefaultQueryTimeout
	}
	name := Redact(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("query: cannot parse the DSN %s", name)
	}
	cfg.RuntimeParams["application_name"] = "lookout query"
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.RuntimeParams["timezone"] = "UTC"
	if timeout > 0 {
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(max(timeout.Milliseconds(), 1), 10)
		// The client gives up a little after the server should have.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout+5*time.Second)
		defer cancel()
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("query: connect to %s: %w", name, scrub(err, dsn))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("query: %s: %w", name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The extended protocol (a prepared statement) refuses a second
	// statement on the server too.
	rows, err := tx.Query(ctx, sqlText)
	if err != nil {
		return queryError(err, timeout)
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	cols := make([]string, len(fds))
	for i, f := range fds {
		cols[i] = f.Name
	}
	if err := sink.Columns(cols); err != nil {
		return fmt.Errorf("query: write output: %w", err)
	}
	out := make([]any, len(cols))
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return queryError(err, timeout)
		}
		for i, v := range vals {
			out[i] = queryValue(v)
		}
		if err := sink.Row(out); err != nil {
			return fmt.Errorf("query: write output: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return queryError(err, timeout)
	}
	return nil
}

// queryError maps the server's refusals to store.Query's messages.
func queryError(err error, timeout time.Duration) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "25006", pe.Code == "25001": // read_only_sql_transaction; read-write mode asked for too late
			return fmt.Errorf("%w (postgres: %s)", store.ErrQueryReadOnly, pe.Message)
		case pe.Code == "57014" && timeout > 0: // query_canceled by statement_timeout
			return fmt.Errorf("query: stopped after %s (the time limit; raise it with --timeout): %w", timeout, context.DeadlineExceeded)
		case pe.Code == "42601" && strings.Contains(pe.Message, "multiple commands"):
			return errors.New("query: give one statement at a time")
		}
	}
	return fmt.Errorf("query: %w", err)
}

// queryValue turns a pgx value into one a store.RowSink shows.
func queryValue(v any) any {
	switch x := v.(type) {
	case nil, int64, float64, string, []byte, bool, time.Time:
		return x
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int8:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	case pgtype.Numeric:
		if f, err := x.Float64Value(); err == nil && f.Valid {
			return f.Float64
		}
		if x.Int != nil {
			return new(big.Float).SetInt(x.Int).String()
		}
		return nil
	case fmt.Stringer:
		return x.String()
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}
