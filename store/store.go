// Package store keeps everything lookout sees in one SQLite file: items and
// their scores, keyword matches, hot terms, raw payloads, metric samples,
// per-source state and health (and, in files of their own, alerts, the
// delivery outbox and silences).
//
// The database runs in WAL mode so that `lookout query` and `sqlite3` can
// read while the daemon writes. Writes come in batches, one transaction per
// batch (see WriteItems and Writer). The schema lives in migrations/*.sql,
// applied in order and recorded in schema_migrations; its comments are the
// reference users read.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// TimeLayout is how every timestamp is stored: UTC, milliseconds, a literal
// Z. Fixed width, so string comparison orders timestamps and SQLite's date
// functions read them.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime renders t the way the store keeps timestamps.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime reads a stored timestamp. It also accepts RFC 3339 text, which
// is what people type when they insert rows by hand.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, s)
	if err == nil {
		return t, nil
	}
	if t2, err2 := time.Parse(time.RFC3339Nano, s); err2 == nil {
		return t2.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("store: bad timestamp %q: %w", s, err)
}

// storeBusyTimeoutMS is how long a statement waits for another writer's lock
// before it fails with "database is locked".
const storeBusyTimeoutMS = 5000

// Store is an open lookout database.
type Store struct {
	db       *sql.DB
	path     string
	readOnly bool
	// busyTimeout is how long a write waits for another writer's lock.
	busyTimeout time.Duration
	// dropRaw turns off raw payload storage (store.keep_raw: false).
	dropRaw atomic.Bool
	// live receives committed batches (SetLiveSink), nil when none;
	// liveDelivering counts batches committing or committed and not yet
	// handed to it.
	live           atomic.Pointer[LiveSink]
	liveDelivering atomic.Int32
	// walFrames is the WAL's length in frames when the checkpointer last
	// looked; walRestartFrames is where the batch writer finishes the copy
	// itself (storeWALRestartBytes in pages). checkpointsStop ends the
	// checkpointer; checkpointsDone is closed when it has.
	walFrames        atomic.Int64
	walRestartFrames int64
	// lastBulk is when a bulk writer last committed (Unix ns).
	lastBulk        atomic.Int64
	checkpointsStop context.CancelFunc
	checkpointsDone chan struct{}
	// checkpointDB runs every checkpoint: a pool of one connection of its
	// own, apart from db. Taken from db, the connection would change the
	// batch writer's: db hands out the connection returned last, so a
	// checkpoint every second gave the writer a different connection,
	// with a cold page cache of its own, each time (peak RSS +30–60 MB,
	// measured); and held out of db for good, it would shrink what db's
	// limit leaves for everyone else.
	checkpointDB *sql.DB
	// fastRows keeps the fast path's row buffers (storeEncodedRows) between
	// batches.
	fastRows sync.Pool

	closeErr error
	closed   sync.Once
}

// Option adjusts how Open connects.
type Option func(*storeOptions)

type storeOptions struct {
	busyTimeout time.Duration
	pragmas     []string
	search      bool
	// checkpointEvery and walRestartBytes: storeCheckpointEvery and
	// storeWALRestartBytes unless a test sets them.
	checkpointEvery time.Duration
	walRestartBytes int64
}

// storeWritePragmas tune every read-write connection:
//   - cache_size: 16 MiB of pages, so the hot ends of the indexes stay in
//     memory between batches;
//   - wal_autocheckpoint = 0: no connection copies the WAL into the
//     database at the end of its own commit; the store's checkpointer does
//     (see checkpoints), so the batch writer never waits for a copy of the
//     whole log and the fsync that ends it;
//   - journal_size_limit: the WAL file shrinks back to 64 MiB after a
//     burst;
//   - temp_store = MEMORY: a statement that may fail halfway (a
//     multi-row INSERT, a row with a foreign key) keeps the pages it
//     changes in a statement journal so that it can undo itself. SQLite
//     moves that journal to a temporary file after 64 KiB, and a batch's
//     multi-row inserts pass that size all the time: the writer spent a
//     fifth of its time writing and rewriting that file (perf). In memory
//     it is a copy per page. Read-only connections (`lookout query`) do
//     not get this pragma, so users' big ad-hoc sorts still spill to disk.
var storeWritePragmas = []string{"PRAGMA cache_size = -16384", "PRAGMA wal_autocheckpoint = 0",
	"PRAGMA journal_size_limit = 67108864", "PRAGMA temp_store = MEMORY"}

// storeWALRestartBytes is how much WAL the batch writer lets gather before
// it copies what the checkpointer has not yet copied, so that the next
// transaction starts the log again from its beginning (64 MiB whatever the
// page size). Copying less often writes a page that many batches touch
// (the right edge of every index) back once, not many times: 600k
// messages from 200 rooms went in at 50–52k msgs/s with 64 MiB against
// 45–50k with 16 MiB, when each commit still ran its own checkpoint.
const storeWALRestartBytes = 64 << 20

// storeCheckpointEvery is how often the checkpointer copies the WAL into
// the database: about once per restart of the log at 100k items/s. Every
// 250 ms it copied the pages every batch touches four times as often, and
// the daemon stored less than with checkpoints in the writer's commits;
// every 2 s the log ran further past its limit before the writer noticed.
const storeCheckpointEvery = time.Second

// storeConnector opens go-sqlite3 connections and runs per-connection
// pragmas that the DSN cannot carry.
type storeConnector struct {
	dsn     string
	pragmas []string
	drv     sqlite3.SQLiteDriver
}

func (c *storeConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*sqlite3.SQLiteConn)
	if !ok {
		return conn, nil
	}
	// The items_fts triggers call it on every insert into items.
	if err := sc.RegisterFunc("lookout_search_text", SearchText, true); err != nil {
		sc.Close()
		return nil, fmt.Errorf("register lookout_search_text: %w", err)
	}
	for _, p := range c.pragmas {
		if _, err := sc.Exec(p, nil); err != nil {
			sc.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return conn, nil
}

func (c *storeConnector) Driver() driver.Driver { return &c.drv }

// WithBusyTimeout sets how long a write waits for another writer's lock
// before failing with "database is locked" (default 5s).
func WithBusyTimeout(d time.Duration) Option {
	return func(o *storeOptions) { o.busyTimeout = d }
}

// WithSearch says whether the full-text index of items.text is kept
// (config store.search; default off: it doubles the store's CPU per
// item). Turning it on indexes, once, the items written while it was off.
func WithSearch(on bool) Option {
	return func(o *storeOptions) { o.search = on }
}

// Open opens (creating if needed) the database at path for reading and
// writing and brings its schema up to date.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := storeOptions{busyTimeout: storeBusyTimeoutMS * time.Millisecond, pragmas: storeWritePragmas,
		checkpointEvery: storeCheckpointEvery, walRestartBytes: storeWALRestartBytes}
	for _, f := range opts {
		f(&o)
	}
	if path == "" {
		return nil, errors.New("store: no database path given")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file::memory:") {
		return nil, errors.New("store: in-memory databases are not supported (WAL needs a file); use a path in a temporary directory")
	}
	if err := storeCheckDir(path); err != nil {
		return nil, err
	}
	if err := storeCreateFile(path); err != nil {
		return nil, err
	}
	// _mutex=no: database/sql never shares a connection between
	// goroutines, so SQLite's own per-call locking is pure overhead.
	params := "_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=on&_txlock=immediate&_mutex=no" +
		fmt.Sprintf("&_busy_timeout=%d", o.busyTimeout.Milliseconds())
	connector := &storeConnector{dsn: storeDSN(path, params), pragmas: o.pragmas}
	db := sql.OpenDB(connector)
	// A handful of connections: one writer at a time (SQLite's rule) and
	// readers beside it. Idle connections are kept so their pragmas and
	// statement caches are not rebuilt on every batch.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(4)
	s := &Store{db: db, path: path, busyTimeout: o.busyTimeout}
	if err := s.checkWAL(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if _, err := storeSetSearch(ctx, db, o.search); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: search index: %w", path, storeExplain(err))
	}
	var page int64
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&page); err != nil || page <= 0 {
		db.Close()
		return nil, fmt.Errorf("store: open %s: page size %d: %w", path, page, storeExplain(err))
	}
	s.walRestartFrames = max(1, o.walRestartBytes/page)
	s.checkpointDB = sql.OpenDB(connector)
	s.checkpointDB.SetMaxOpenConns(1)
	cctx, stop := context.WithCancel(context.Background())
	s.checkpointsStop, s.checkpointsDone = stop, make(chan struct{})
	go s.checkpoints(cctx, o.checkpointEvery)
	return s, nil
}

// checkpoints copies the WAL into the database every period, beside the
// writers, until ctx is done. A PASSIVE checkpoint never waits for a
// lock: it copies what is committed when it starts while writers keep
// appending. The log can start again from its beginning only once every
// frame in it is copied, and under a steady stream of batches the
// checkpointer is always a batch or so behind, so past walRestartFrames
// the bulk writer copies the rest itself between two of its transactions
// (restartWAL); meanwhile this loop leaves the log alone, since SQLite
// runs one checkpoint at a time and the writer's would find the
// checkpoint lock taken. It takes over again when no bulk writer has
// committed for a while. Errors are left to the next round: a busy log (a
// checkpoint in another process) is normal, and a disk that fails fails
// the writers' commits too, where it is reported.
func (s *Store) checkpoints(ctx context.Context, every time.Duration) {
	defer close(s.checkpointsDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if s.walFrames.Load() >= s.walRestartFrames && now.UnixNano()-s.lastBulk.Load() < int64(4*every) {
				continue
			}
		}
		if _, frames, err := s.checkpoint(ctx); err == nil {
			s.walFrames.Store(frames)
		}
	}
}

// restartWAL runs after each commit of a bulk writer (the batch writer,
// retention): once the log is walRestartFrames long it copies the frames
// the checkpointer has not (the last batch or two), so that the next
// transaction starts the log again from its beginning and the WAL file
// stays near storeWALRestartBytes. A failure, or a reader holding frames,
// is harmless: the log grows until a later attempt succeeds.
func (s *Store) restartWAL(ctx context.Context) {
	s.lastBulk.Store(time.Now().UnixNano())
	if s.walFrames.Load() < s.walRestartFrames {
		return
	}
	if done, _, err := s.checkpoint(ctx); err == nil && done {
		s.walFrames.Store(0)
	}
}

// checkpoint runs a PASSIVE checkpoint and reports whether it copied the
// whole log, and the log's length in frames.
func (s *Store) checkpoint(ctx context.Context) (done bool, frames int64, err error) {
	var busy, copied int64
	err = s.checkpointDB.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	return err == nil && busy == 0 && frames == copied, frames, err
}

// OpenReadOnly opens an existing database so that nothing can change it:
// SQLite's read-only mode plus PRAGMA query_only. It never migrates.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: no database path given")
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("store: database %s does not exist (run the daemon or `lookout demo` first, or pass --db)", path)
		}
		return nil, fmt.Errorf("store: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("store: %s is a directory, not a database file", path)
	}
	params := fmt.Sprintf("mode=ro&_query_only=on&_busy_timeout=%d", storeBusyTimeoutMS)
	// The connector registers lookout's SQL functions here too: SQLite
	// prepares a write to items with its triggers, and a read-only
	// connection must reject it as a write, not as an unknown function.
	db := sql.OpenDB(&storeConnector{dsn: storeDSN(path, params)})
	db.SetMaxOpenConns(4)
	s := &Store{db: db, path: path, readOnly: true}
	// Fail now, not at the first query, when the file is not a database.
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s read-only: %w", path, storeExplain(err))
	}
	return s, nil
}

// storeDSN builds a go-sqlite3 URI DSN. Characters that mean something in a
// URI are escaped so that any file name works.
// StorePageSize is the page size of a database lookout creates. A batch
// from many rooms adds a few rows to each room's run of every items index,
// and each commit writes the pages it touched; with 16 KiB pages the writer
// spent about 13 % less CPU per item than with SQLite's default 4 KiB, at
// 10 and at 500 rooms alike (BenchmarkRoomSpreadPageSize, the same 64 MiB
// checkpoint interval for both). The page size of an
// existing database never changes (WAL databases keep theirs for good).
const StorePageSize = 16384

// storeCreateFile creates the database file with StorePageSize pages if it
// does not exist yet. The page size must be set before anything else is
// written, and turning WAL on (which Open's connections do first) writes
// the header, so a fresh file is made here on a connection of its own.
func storeCreateFile(path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // exists, or Open's own connection will report why not
	}
	var drv sqlite3.SQLiteDriver
	conn, err := drv.Open(storeDSN(path, "_txlock=immediate"))
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	defer conn.Close()
	sc, ok := conn.(*sqlite3.SQLiteConn)
	if !ok {
		return nil
	}
	if _, err := sc.Exec(fmt.Sprintf("PRAGMA page_size = %d; PRAGMA journal_mode = WAL", StorePageSize), nil); err != nil {
		return fmt.Errorf("store: create %s: %w", path, storeExplain(err))
	}
	return nil
}

func storeDSN(path, params string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + params
}

// storeCheckDir gives a clear error when the database's directory is
// missing or cannot be written: SQLite itself only says "unable to open
// database file", and it also needs to create the -wal and -shm files next
// to the database.
func storeCheckDir(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: directory %s for database %s does not exist", dir, path)
		}
		return fmt.Errorf("store: database directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("store: %s is not a directory (database path %s)", dir, path)
	}
	f, err := os.CreateTemp(dir, ".lookout-write-check-*")
	if err != nil {
		return fmt.Errorf("store: directory %s is not writable; SQLite needs to create %s and its -wal and -shm files there: %w",
			dir, filepath.Base(path), err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

func (s *Store) checkWAL(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("store: open %s: %w", s.path, storeExplain(err))
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("store: open %s: WAL journal mode unavailable (got %q); is the file on a network file system?", s.path, mode)
	}
	return nil
}

// storeExplain adds a hint to the SQLite errors people meet in practice.
func storeExplain(err error) error {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code {
	case sqlite3.ErrCantOpen:
		return fmt.Errorf("%w (cannot open the file: check the path and that its directory is writable)", err)
	case sqlite3.ErrReadonly:
		return fmt.Errorf("%w (the file or its directory is read-only)", err)
	case sqlite3.ErrFull:
		return fmt.Errorf("%w (the disk is full)", err)
	case sqlite3.ErrBusy, sqlite3.ErrLocked:
		return fmt.Errorf("%w (another process holds a write lock for more than %dms)", err, storeBusyTimeoutMS)
	case sqlite3.ErrNotADB:
		return fmt.Errorf("%w (the file is not a SQLite database)", err)
	}
	return err
}

// DB exposes the connection pool for the other store files and for tests.
func (s *Store) DB() *sql.DB { return s.db }

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// ReadOnly reports whether the store was opened with OpenReadOnly.
func (s *Store) ReadOnly() bool { return s.readOnly }

// SetKeepRaw says whether WriteItems stores raw payloads (config
// store.keep_raw). The default is to keep them.
func (s *Store) SetKeepRaw(keep bool) { s.dropRaw.Store(!keep) }

// Close closes the database; calling it again is harmless. In WAL mode the
// last connection to close checkpoints the log into the main file.
func (s *Store) Close() error {
	s.closed.Do(func() {
		if s.checkpointsStop != nil {
			s.checkpointsStop()
			<-s.checkpointsDone
			s.checkpointDB.Close()
		}
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("store: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// RecentItemIDs returns up to n item ids of a source, newest first, so the
// daemon can preload its in-memory dedupe set after a restart.
func (s *Store) RecentItemIDs(ctx context.Context, source string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	// Rows are inserted roughly in arrival order, and the rowid walk is
	// cheap where ORDER BY ts would need an index per source.
	rows, err := s.db.QueryContext(ctx,
		`SELECT item_id FROM items WHERE source = ? AND item_id IS NOT NULL ORDER BY id DESC LIMIT ?`, source, n)
	if err != nil {
		return nil, fmt.Errorf("store: recent item ids of %s: %w", source, err)
	}
	ids, err := storeScanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("store: recent item ids of %s: %w", source, err)
	}
	return ids, nil
}

// storeScanStrings reads a one-column result of strings and closes rows.
func storeScanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// storePruneChunk bounds how many rows one DELETE removes, so retention
// never holds the write lock long enough to stall the batch writer.
const storePruneChunk = 5000

// Prune applies retention: raw payloads of items older than now-raw, and
// items (with their groups, terms and raw payloads) and metric samples
// older than now-items. A zero duration keeps those rows forever. It
// returns the number of rows deleted from raw_payloads, items and metrics.
func (s *Store) Prune(ctx context.Context, now time.Time, raw, items time.Duration) (int64, error) {
	if s.readOnly {
		return 0, errors.New("store: prune: the database is open read-only")
	}
	var total int64
	if raw > 0 {
		// CROSS JOIN makes SQLite walk raw_payloads (oldest item first)
		// rather than items by ts, which would revisit every old item whose
		// payload is already gone on every run.
		n, err := s.pruneLoop(ctx, `DELETE FROM raw_payloads WHERE item_id IN (
			SELECT r.item_id FROM raw_payloads r CROSS JOIN items i ON i.id = r.item_id WHERE i.ts < ? LIMIT ?)`,
			FormatTime(now.Add(-raw)))
		total += n
		if err != nil {
			return total, fmt.Errorf("store: prune raw payloads: %w", err)
		}
	}
	if items > 0 {
		cut := FormatTime(now.Add(-items))
		n, err := s.pruneLoop(ctx, `DELETE FROM items WHERE id IN (SELECT id FROM items WHERE ts < ? LIMIT ?)`, cut)
		total += n
		if err != nil {
			return total, fmt.Errorf("store: prune items: %w", err)
		}
		n, err = s.pruneLoop(ctx, `DELETE FROM metrics WHERE id IN (SELECT id FROM metrics WHERE ts < ? LIMIT ?)`, cut)
		total += n
		if err != nil {
			return total, fmt.Errorf("store: prune metrics: %w", err)
		}
	}
	return total, nil
}

func (s *Store) pruneLoop(ctx context.Context, query, cut string) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, query, cut, storePruneChunk)
		if err != nil {
			return total, storeExplain(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		s.restartWAL(ctx)
		if n < storePruneChunk {
			return total, nil
		}
	}
}
