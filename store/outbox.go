package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Outbox row states.
const (
	OutboxPending = "pending"
	OutboxSending = "sending"
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
	// OutboxSuppressed: a silence or inhibition began before the row
	// went out.
	OutboxSuppressed = "suppressed"
)

// storeQueueOutbox inserts an event's outbox rows, pending from now, in
// the caller's transaction: with the alert event or the report they
// announce, so that a notification is queued exactly when its event is
// stored. A row already queued (same event and receiver) is left alone.
func storeQueueOutbox(ctx context.Context, tx *sql.Tx, eventID string, rows []OutboxInsert, now time.Time) error {
	for _, o := range rows {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO outbox (event_id, receiver, group_key, payload, state,
				not_before, group_interval_ms, next_attempt_at, created_at)
			VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)`,
			eventID, o.Receiver, o.GroupKey, string(o.Payload), FormatTime(o.NotBefore),
			o.GroupInterval.Milliseconds(), FormatTime(now), FormatTime(now)); err != nil {
			return fmt.Errorf("store: queue %s for %s: %w", eventID, o.Receiver, storeExplain(err))
		}
	}
	return nil
}

// OutboxRow is one queued notification.
type OutboxRow struct {
	ID            int64
	EventID       string
	Receiver      string
	GroupKey      string
	Payload       []byte
	State         string
	BatchID       string
	Attempts      int
	CrashResends  int
	NotBefore     time.Time
	GroupInterval time.Duration
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	SentAt        time.Time
}

const storeOutboxCols = `id, event_id, receiver, group_key, payload, state, batch_id, attempts, crash_resends,
	not_before, group_interval_ms, next_attempt_at, last_error, created_at, sent_at`

func storeScanOutbox(rows *sql.Rows) ([]OutboxRow, error) {
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		var payload, notBefore, next, created string
		var batch, lastErr, sent sql.NullString
		var gi int64
		if err := rows.Scan(&r.ID, &r.EventID, &r.Receiver, &r.GroupKey, &payload, &r.State, &batch, &r.Attempts,
			&r.CrashResends, &notBefore, &gi, &next, &lastErr, &created, &sent); err != nil {
			return nil, fmt.Errorf("store: read outbox: %w", err)
		}
		r.Payload = []byte(payload)
		r.BatchID, r.LastError = batch.String, lastErr.String
		r.GroupInterval = time.Duration(gi) * time.Millisecond
		r.NotBefore, _ = ParseTime(notBefore)
		r.NextAttemptAt, _ = ParseTime(next)
		r.CreatedAt, _ = ParseTime(created)
		if sent.Valid {
			r.SentAt, _ = ParseTime(sent.String)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// OutboxRecover puts rows of receiver (every receiver when it is "")
// claimed longer than olderThan ago back to 'pending' with their batch id,
// so that they are sent again exactly as they were, and counts a crash
// resend for each. olderThan 0 takes back every claim: only a sender that
// knows no other sends from this file (the one process on it, at start)
// may do so. It returns how many rows it recovered.
func (s *Store) OutboxRecover(ctx context.Context, receiver string, olderThan time.Duration) (int64, error) {
	cond := `state = 'sending'`
	var args []any
	if olderThan > 0 {
		cond += ` AND (claimed_at IS NULL OR claimed_at < ?)`
		args = append(args, FormatTime(time.Now().Add(-olderThan)))
	}
	if receiver != "" {
		cond += ` AND receiver = ?`
		args = append(args, receiver)
	}
	// Senders call this on every poll: look first, so that an outbox with
	// no stale claim costs a read, not a write lock.
	var stale int
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM outbox WHERE `+cond+`)`, args...).Scan(&stale); err != nil {
		return 0, fmt.Errorf("store: recover outbox: %w", storeExplain(err))
	}
	if stale == 0 {
		return 0, nil
	}
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET state = 'pending', crash_resends = crash_resends + 1, claimed_at = NULL
		WHERE `+cond, args...)
	if err != nil {
		return 0, fmt.Errorf("store: recover outbox: %w", storeExplain(err))
	}
	return res.RowsAffected()
}

// OutboxReceivers lists receivers with rows still to send.
func (s *Store) OutboxReceivers(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT receiver FROM outbox WHERE state IN ('pending','sending') ORDER BY receiver`)
	if err != nil {
		return nil, fmt.Errorf("store: outbox receivers: %w", storeExplain(err))
	}
	return storeScanStrings(rows)
}

// OutboxPendingRows returns up to limit pending rows of a receiver in
// arrival order.
func (s *Store) OutboxPendingRows(ctx context.Context, receiver string, limit int) ([]OutboxRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+storeOutboxCols+` FROM outbox
		WHERE receiver = ? AND state = 'pending' ORDER BY id LIMIT ?`, receiver, limit)
	if err != nil {
		return nil, fmt.Errorf("store: outbox rows of %s: %w", receiver, storeExplain(err))
	}
	return storeScanOutbox(rows)
}

// OutboxRows returns every row of the outbox (any state) in arrival order;
// tests and `lookout query` users read it.
func (s *Store) OutboxRows(ctx context.Context) ([]OutboxRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+storeOutboxCols+` FROM outbox ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: outbox rows: %w", storeExplain(err))
	}
	return storeScanOutbox(rows)
}

// OutboxUnsentRows returns the rows still to send (pending or sending) in
// arrival order.
func (s *Store) OutboxUnsentRows(ctx context.Context) ([]OutboxRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+storeOutboxCols+` FROM outbox
		WHERE state IN ('pending','sending') ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: unsent outbox rows: %w", storeExplain(err))
	}
	return storeScanOutbox(rows)
}

// OutboxLastSent returns, per group key of a receiver, when a message last
// went out, looking back to since.
func (s *Store) OutboxLastSent(ctx context.Context, receiver string, since time.Time) (map[string]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT group_key, max(sent_at) FROM outbox
		WHERE receiver = ? AND state = 'sent' AND sent_at >= ? GROUP BY group_key`, receiver, FormatTime(since))
	if err != nil {
		return nil, fmt.Errorf("store: outbox last sent: %w", storeExplain(err))
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var k, ts string
		if err := rows.Scan(&k, &ts); err != nil {
			return nil, err
		}
		if t, err := ParseTime(ts); err == nil {
			out[k] = t
		}
	}
	return out, rows.Err()
}

func storeIDList(ids []int64) (string, []any) {
	ph := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return ph, args
}

func (s *Store) outboxUpdate(ctx context.Context, what, set string, ids []int64, args ...any) error {
	if len(ids) == 0 {
		return nil
	}
	ph, idArgs := storeIDList(ids)
	if _, err := s.db.ExecContext(ctx, `UPDATE outbox SET `+set+` WHERE id IN (`+ph+`)`, append(args, idArgs...)...); err != nil {
		return fmt.Errorf("store: outbox %s: %w", what, storeExplain(err))
	}
	return nil
}

// OutboxMarkSending claims rows before a message goes out (see
// OutboxClaimTimeout): in one write transaction (BEGIN IMMEDIATE, so no
// other process writes between the check and the claim) all of them move
// to 'sending' in batch batchID and count an attempt, or, when any is no
// longer pending or belongs to another batch, none does and the error
// wraps ErrOutboxClaimed.
func (s *Store) OutboxMarkSending(ctx context.Context, ids []int64, batchID string) error {
	if len(ids) == 0 {
		return nil
	}
	ph, idArgs := storeIDList(ids)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: outbox mark sending: %w", storeExplain(err))
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = 'sending', batch_id = ?, attempts = attempts + 1, claimed_at = ?
		WHERE id IN (`+ph+`) AND state = 'pending' AND (batch_id IS NULL OR batch_id = ?)`,
		append(append([]any{batchID, FormatTime(time.Now())}, idArgs...), batchID)...)
	if err != nil {
		return fmt.Errorf("store: outbox mark sending: %w", storeExplain(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: outbox mark sending: %w", err)
	}
	if err := OutboxClaimResult(int(n), len(ids), batchID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: outbox mark sending: %w", storeExplain(err))
	}
	return nil
}

// OutboxMarkSent records a delivered message.
func (s *Store) OutboxMarkSent(ctx context.Context, ids []int64, now time.Time) error {
	return s.outboxUpdate(ctx, "mark sent", `state = 'sent', sent_at = ?, last_error = NULL`, ids, FormatTime(now))
}

// OutboxMarkRetry puts rows back to pending until next, keeping their
// batch.
func (s *Store) OutboxMarkRetry(ctx context.Context, ids []int64, next time.Time, lastErr string) error {
	return s.outboxUpdate(ctx, "mark retry", `state = 'pending', next_attempt_at = ?, last_error = ?, claimed_at = NULL`, ids, FormatTime(next), lastErr)
}

// OutboxMarkFailed gives up on rows after a permanent error.
func (s *Store) OutboxMarkFailed(ctx context.Context, ids []int64, lastErr string) error {
	return s.outboxUpdate(ctx, "mark failed", `state = 'failed', last_error = ?`, ids, lastErr)
}

// OutboxMarkSuppressed drops rows a silence or inhibition now covers,
// only rows still pending that never went out: a row another sender
// claimed meanwhile is that sender's (it may have gone out, and a
// resolution must then reach its receiver). It returns an error wrapping
// ErrOutboxClaimed, and drops nothing, when any row was no longer such.
func (s *Store) OutboxMarkSuppressed(ctx context.Context, ids []int64, reason string) error {
	if len(ids) == 0 {
		return nil
	}
	ph, idArgs := storeIDList(ids)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: outbox mark suppressed: %w", storeExplain(err))
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = 'suppressed', last_error = ?
		WHERE id IN (`+ph+`) AND state = 'pending' AND batch_id IS NULL`, append([]any{reason}, idArgs...)...)
	if err != nil {
		return fmt.Errorf("store: outbox mark suppressed: %w", storeExplain(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: outbox mark suppressed: %w", err)
	}
	if err := OutboxClaimResult(int(n), len(ids), "(unsent)"); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: outbox mark suppressed: %w", storeExplain(err))
	}
	return nil
}

// OutboxUnsent counts rows not yet sent or failed (pending or sending).
func (s *Store) OutboxUnsent(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE state IN ('pending','sending')`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count outbox: %w", storeExplain(err))
	}
	return n, nil
}

// OutboxPrune deletes sent and failed rows created before before; pending
// and sending rows are never pruned.
func (s *Store) OutboxPrune(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE state IN ('sent','failed','suppressed') AND created_at < ?`, FormatTime(before))
	if err != nil {
		return 0, fmt.Errorf("store: prune outbox: %w", storeExplain(err))
	}
	return res.RowsAffected()
}
