package store

/*
// The SQLite functions below are go-sqlite3's: its bundled SQLite is
// linked into the same binary, and these are resolved against it when the
// binary is linked (cgo's own trial link of this package alone does not
// see them, hence the flag).
#cgo LDFLAGS: -Wl,--unresolved-symbols=ignore-in-object-files
#include <stdint.h>
#include <string.h>

typedef struct sqlite3_stmt sqlite3_stmt;
typedef struct sqlite3 sqlite3;
int sqlite3_bind_null(sqlite3_stmt*, int);
int sqlite3_bind_int64(sqlite3_stmt*, int, long long);
int sqlite3_bind_double(sqlite3_stmt*, int, double);
int sqlite3_bind_text64(sqlite3_stmt*, int, const char*, unsigned long long, void(*)(void*), unsigned char);
int sqlite3_bind_blob64(sqlite3_stmt*, int, const void*, unsigned long long, void(*)(void*));
int sqlite3_step(sqlite3_stmt*);
int sqlite3_reset(sqlite3_stmt*);
int sqlite3_clear_bindings(sqlite3_stmt*);
sqlite3 *sqlite3_db_handle(sqlite3_stmt*);
const char *sqlite3_errmsg(sqlite3*);

#define LOOKOUT_OK 0
#define LOOKOUT_ROW 100
#define LOOKOUT_DONE 101
#define LOOKOUT_UTF8 1

// Value tags of the row encoding (storeEncodedRows).
enum { ROWS_NULL, ROWS_INT, ROWS_FLOAT, ROWS_TEXT, ROWS_BLOB };

// lookout_bind binds cols values from *p to st from parameter first on,
// and advances *p. Text and blobs point into the buffer (SQLITE_STATIC):
// the statement is stepped and its bindings cleared before the buffer is
// let go.
static int lookout_bind(sqlite3_stmt *st, int first, int cols, const unsigned char **p) {
	const unsigned char *q = *p;
	for (int c = 0; c < cols; c++) {
		int n = first + c, rc;
		unsigned char tag = *q++;
		switch (tag) {
		case ROWS_NULL:
			rc = sqlite3_bind_null(st, n);
			break;
		case ROWS_INT: {
			int64_t v;
			memcpy(&v, q, 8);
			q += 8;
			rc = sqlite3_bind_int64(st, n, v);
			break;
		}
		case ROWS_FLOAT: {
			double v;
			memcpy(&v, q, 8);
			q += 8;
			rc = sqlite3_bind_double(st, n, v);
			break;
		}
		default: {
			uint32_t len;
			memcpy(&len, q, 4);
			q += 4;
			if (tag == ROWS_TEXT) {
				rc = sqlite3_bind_text64(st, n, (const char *)q, len, (void (*)(void *))0, LOOKOUT_UTF8);
			} else {
				rc = sqlite3_bind_blob64(st, n, q, len, (void (*)(void *))0);
			}
			q += len;
		}
		}
		if (rc != LOOKOUT_OK) {
			return rc;
		}
	}
	*p = q;
	return LOOKOUT_OK;
}

// lookout_insert_rows inserts nrows rows of cols values encoded in buf:
// per rows rows with many (a statement of per rows), the rest with tail
// (a statement of exactly the rest; NULL when there is none). It returns
// SQLite's result code of the first failure (0 when all went in) and
// leaves both statements reset with their bindings cleared. On failure
// the message is copied to msg (size msgcap).
static int lookout_insert_rows(sqlite3_stmt *many, int per, sqlite3_stmt *tail, int cols,
		const unsigned char *buf, int nrows, char *msg, int msgcap) {
	const unsigned char *p = buf;
	int rc = LOOKOUT_OK;
	sqlite3_stmt *failed = 0;
	for (int done = 0; done < nrows && rc == LOOKOUT_OK; ) {
		int k = nrows - done >= per ? per : nrows - done;
		sqlite3_stmt *st = k == per ? many : tail;
		if (st == 0) {
			rc = 21; // SQLITE_MISUSE: no statement for a short tail
			break;
		}
		sqlite3_reset(st);
		for (int r = 0; r < k && rc == LOOKOUT_OK; r++) {
			rc = lookout_bind(st, r * cols + 1, cols, &p);
		}
		if (rc == LOOKOUT_OK) {
			int s = sqlite3_step(st);
			if (s != LOOKOUT_DONE && s != LOOKOUT_ROW) {
				rc = s;
			}
		}
		if (rc != LOOKOUT_OK) {
			failed = st;
		}
		done += k;
	}
	if (failed != 0 && msgcap > 0) {
		const char *m = sqlite3_errmsg(sqlite3_db_handle(failed));
		strncpy(msg, m ? m : "", msgcap - 1);
		msg[msgcap - 1] = 0;
	}
	sqlite3_reset(many);
	sqlite3_clear_bindings(many);
	if (tail != 0) {
		sqlite3_reset(tail);
		sqlite3_clear_bindings(tail);
	}
	return rc;
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"unsafe"

	"github.com/mattn/go-sqlite3"

	"lookout/item"
)

// storeEncodedRows holds rows of statement arguments encoded for one call into
// SQLite (storeInsertRows): the fast path inserts a whole batch's items in
// one cgo call instead of one per storeFastRows items, and each child
// table's rows (storeRowBuffer) in one more. Each call into
// SQLite that runs long lets the Go runtime hand the writer's processor to
// the pipeline's goroutines, and the writer then waits behind them when
// it returns; one call per batch waits once.
//
// Encoding, per value: a tag byte (null, int, float, text, blob), then 8
// bytes little-endian for int and float, or a 4-byte length and the bytes
// for text and blob.
type storeEncodedRows struct {
	buf []byte
	n   int // rows in buf
	// items and ts are the rows' items and their ts column, for the
	// work that follows their insert (children, rollups, live views),
	// when the rows are items' (endItem).
	items []*item.Item
	ts    []string

	mark int   // where the row begun last starts in buf
	err  error // the row begun last cannot be encoded
}

const (
	storeEncNull = iota
	storeEncInt
	storeEncFloat
	storeEncText
	storeEncBlob
)

// begin starts a row; its columns follow (storeColumns), then end.
func (r *storeEncodedRows) begin() {
	r.mark, r.err = len(r.buf), nil
}

func (r *storeEncodedRows) null() { r.buf = append(r.buf, storeEncNull) }

func (r *storeEncodedRows) text(s string) {
	if uint64(len(s)) > math.MaxUint32 {
		r.tooLong(len(s))
		return
	}
	r.buf = append(r.buf, storeEncText)
	r.buf = binary.LittleEndian.AppendUint32(r.buf, uint32(len(s)))
	r.buf = append(r.buf, s...)
}

func (r *storeEncodedRows) textBytes(b []byte) {
	if uint64(len(b)) > math.MaxUint32 {
		r.tooLong(len(b))
		return
	}
	r.buf = append(r.buf, storeEncText)
	r.buf = binary.LittleEndian.AppendUint32(r.buf, uint32(len(b)))
	r.buf = append(r.buf, b...)
}

// blob puts a blob column (NULL for a nil b, as go-sqlite3 binds it).
func (r *storeEncodedRows) blob(b []byte) {
	switch {
	case b == nil:
		r.null()
	case uint64(len(b)) > math.MaxUint32:
		r.tooLong(len(b))
	default:
		r.buf = append(r.buf, storeEncBlob)
		r.buf = binary.LittleEndian.AppendUint32(r.buf, uint32(len(b)))
		r.buf = append(r.buf, b...)
	}
}

func (r *storeEncodedRows) int(v int64) {
	r.buf = append(r.buf, storeEncInt)
	r.buf = binary.LittleEndian.AppendUint64(r.buf, uint64(v))
}

func (r *storeEncodedRows) float(v float64) {
	r.buf = append(r.buf, storeEncFloat)
	r.buf = binary.LittleEndian.AppendUint64(r.buf, math.Float64bits(v))
}

// tooLong records a value the encoding's 4-byte length cannot carry (a
// NULL holds its place until end reports it).
func (r *storeEncodedRows) tooLong(n int) {
	if r.err == nil {
		r.err = fmt.Errorf("a value of %d bytes, over the %d a row value may have", n, uint32(math.MaxUint32))
	}
	r.null()
}

// end finishes the row begun last. On error the row is taken out again.
func (r *storeEncodedRows) end() error {
	if r.err != nil {
		r.buf = r.buf[:r.mark]
		return r.err
	}
	r.n++
	return nil
}

// endItem finishes the row begun last as the row of it, whose ts column
// is ts.
func (r *storeEncodedRows) endItem(it *item.Item, ts string) error {
	if err := r.end(); err != nil {
		return err
	}
	r.items, r.ts = append(r.items, it), append(r.ts, ts)
	return nil
}

// reset empties r, keeping its buffers unless they grew past what a
// busy batch needs (so that one huge batch does not pin its size).
func (r *storeEncodedRows) reset() {
	if cap(r.buf) > 64<<20 {
		r.buf = nil
	}
	if cap(r.items) > 1<<16 {
		r.items, r.ts = nil, nil
	}
	clear(r.items)
	clear(r.ts)
	r.buf, r.items, r.ts, r.n = r.buf[:0], r.items[:0], r.ts[:0], 0
}

// storeStmtHandle is the SQLite statement under a go-sqlite3 statement.
// go-sqlite3 does not export it: this reads its field, and returns nil
// when a driver version has moved it (storeInsertRows then fails, and
// every batch goes the exact path; TestStoreStmtHandle catches that on
// the driver's upgrade).
func storeStmtHandle(st *sqlite3.SQLiteStmt) unsafe.Pointer {
	f := reflect.ValueOf(st).Elem().FieldByName("s")
	if !f.IsValid() || f.Kind() != reflect.Pointer {
		return nil
	}
	return f.UnsafePointer()
}

// storeInsertRows inserts rows with many (a statement of per rows of cols
// values each) and, for the rows left over, tail (nil when there are
// none), in one call into SQLite.
func storeInsertRows(many *storeStmt, per int, tail *storeStmt, cols int, rows *storeEncodedRows) error {
	if rows.n == 0 {
		return nil
	}
	hm := storeStmtHandle(many.st)
	var ht unsafe.Pointer
	if tail != nil {
		ht = storeStmtHandle(tail.st)
	}
	if hm == nil || (tail != nil && ht == nil) {
		return errors.New("store: the driver's statement handle is not where it was")
	}
	var msg [256]C.char
	rc := C.lookout_insert_rows((*C.sqlite3_stmt)(hm), C.int(per), (*C.sqlite3_stmt)(ht), C.int(cols),
		(*C.uchar)(unsafe.Pointer(unsafe.SliceData(rows.buf))), C.int(rows.n), &msg[0], C.int(len(msg)))
	if rc != 0 {
		return fmt.Errorf("%s: %w", C.GoString(&msg[0]), sqlite3.Error{Code: sqlite3.ErrNo(rc & 0xff), ExtendedCode: sqlite3.ErrNoExtended(rc)})
	}
	return nil
}
