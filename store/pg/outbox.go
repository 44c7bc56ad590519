package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"lookout/store"
)

const outboxCols = `id, event_id, receiver, group_key, payload, state, batch_id, attempts, crash_resends,
	not_before, group_interval_ms, next_attempt_at, last_error, created_at, sent_at`

func scanOutbox(rows pgx.Rows) ([]store.OutboxRow, error) {
	defer rows.Close()
	var out []store.OutboxRow
	for rows.Next() {
		var r store.OutboxRow
		var payload string
		var batch, lastErr *string
		var sent *time.Time
		var gi int64
		if err := rows.Scan(&r.ID, &r.EventID, &r.Receiver, &r.GroupKey, &payload, &r.State, &batch, &r.Attempts,
			&r.CrashResends, &r.NotBefore, &gi, &r.NextAttemptAt, &lastErr, &r.CreatedAt, &sent); err != nil {
			return nil, fmt.Errorf("pg: read outbox: %w", err)
		}
		r.Payload = []byte(payload)
		if batch != nil {
			r.BatchID = *batch
		}
		if lastErr != nil {
			r.LastError = *lastErr
		}
		r.GroupInterval = time.Duration(gi) * time.Millisecond
		r.NotBefore, r.NextAttemptAt, r.CreatedAt = r.NotBefore.UTC(), r.NextAttemptAt.UTC(), r.CreatedAt.UTC()
		if sent != nil {
			r.SentAt = sent.UTC()
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// OutboxRecover puts rows of receiver (every receiver when it is "")
// claimed longer than olderThan ago back to pending with their batch id,
// counting a crash resend; olderThan 0 takes back every claim (see
// store.Store.OutboxRecover). It returns how many rows it recovered.
func (s *Store) OutboxRecover(ctx context.Context, receiver string, olderThan time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE outbox SET state = 'pending', crash_resends = crash_resends + 1, claimed_at = NULL
		WHERE state = 'sending' AND ($1 = '' OR receiver = $1)
		  AND ($2::interval = '0' OR claimed_at IS NULL OR claimed_at < now() - $2::interval)`, receiver, olderThan)
	if err != nil {
		return 0, fmt.Errorf("pg: recover outbox: %w", err)
	}
	return tag.RowsAffected(), nil
}

// OutboxReceivers lists receivers with rows still to send.
func (s *Store) OutboxReceivers(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT receiver FROM outbox WHERE state IN ('pending','sending') ORDER BY receiver`)
	if err != nil {
		return nil, fmt.Errorf("pg: outbox receivers: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// OutboxPendingRows returns up to limit pending rows of a receiver in
// arrival order.
func (s *Store) OutboxPendingRows(ctx context.Context, receiver string, limit int) ([]store.OutboxRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+outboxCols+` FROM outbox
		WHERE receiver = $1 AND state = 'pending' ORDER BY id LIMIT $2`, receiver, limit)
	if err != nil {
		return nil, fmt.Errorf("pg: outbox rows of %s: %w", receiver, err)
	}
	return scanOutbox(rows)
}

// OutboxRows returns every row of the outbox in arrival order.
func (s *Store) OutboxRows(ctx context.Context) ([]store.OutboxRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+outboxCols+` FROM outbox ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("pg: outbox rows: %w", err)
	}
	return scanOutbox(rows)
}

// OutboxUnsentRows returns the rows still to send in arrival order.
func (s *Store) OutboxUnsentRows(ctx context.Context) ([]store.OutboxRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+outboxCols+` FROM outbox WHERE state IN ('pending','sending') ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("pg: unsent outbox rows: %w", err)
	}
	return scanOutbox(rows)
}

// OutboxLastSent returns, per group key of a receiver, when a message last
// went out, looking back to since.
func (s *Store) OutboxLastSent(ctx context.Context, receiver string, since time.Time) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT group_key, max(sent_at) FROM outbox
		WHERE receiver = $1 AND state = 'sent' AND sent_at >= $2 GROUP BY group_key`, receiver, since)
	if err != nil {
		return nil, fmt.Errorf("pg: outbox last sent: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var k string
		var t time.Time
		if err := rows.Scan(&k, &t); err != nil {
			return nil, err
		}
		out[k] = t.UTC()
	}
	return out, rows.Err()
}

func (s *Store) outboxUpdate(ctx context.Context, what, set string, ids []int64, args ...any) error {
	if len(ids) == 0 {
		return nil
	}
	args = append(args, ids)
	if _, err := s.pool.Exec(ctx, `UPDATE outbox SET `+set+` WHERE id = ANY($`+fmt.Sprint(len(args))+`::bigint[])`, args...); err != nil {
		return fmt.Errorf("pg: outbox %s: %w", what, err)
	}
	return nil
}

// OutboxMarkSending claims rows before a message goes out (see
// store.OutboxClaimTimeout): all of them move to 'sending' in batch
// batchID and count an attempt, or, when any is no longer pending or
// belongs to another batch, none does and the error wraps
// store.ErrOutboxClaimed.
func (s *Store) OutboxMarkSending(ctx context.Context, ids []int64, batchID string) error {
	if len(ids) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE outbox SET state = 'sending', batch_id = $1, attempts = attempts + 1, claimed_at = now()
			WHERE id = ANY($2::bigint[]) AND state = 'pending' AND (batch_id IS NULL OR batch_id = $1)`, batchID, ids)
		if err != nil {
			return fmt.Errorf("pg: outbox mark sending: %w", err)
		}
		return store.OutboxClaimResult(int(tag.RowsAffected()), len(ids), batchID)
	})
}

// OutboxMarkSent records a delivered message.
func (s *Store) OutboxMarkSent(ctx context.Context, ids []int64, now time.Time) error {
	return s.outboxUpdate(ctx, "mark sent", `state = 'sent', sent_at = $1, last_error = NULL`, ids, now)
}

// OutboxMarkRetry puts rows back to pending until next, keeping their batch.
func (s *Store) OutboxMarkRetry(ctx context.Context, ids []int64, next time.Time, lastErr string) error {
	return s.outboxUpdate(ctx, "mark retry", `state = 'pending', next_attempt_at = $1, last_error = $2, claimed_at = NULL`, ids, next, clean(lastErr))
}

// OutboxMarkFailed gives up on rows after a permanent error.
func (s *Store) OutboxMarkFailed(ctx context.Context, ids []int64, lastErr string) error {
	return s.outboxUpdate(ctx, "mark failed", `state = 'failed', last_error = $1`, ids, clean(lastErr))
}

// OutboxMarkSuppressed drops rows a silence or inhibition now covers,
// only rows still pending that never went out, all or none (see
// store.Store.OutboxMarkSuppressed).
func (s *Store) OutboxMarkSuppressed(ctx context.Context, ids []int64, reason string) error {
	if len(ids) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE outbox SET state = 'suppressed', last_error = $1
			WHERE id = ANY($2::bigint[]) AND state = 'pending' AND batch_id IS NULL`, clean(reason), ids)
		if err != nil {
			return fmt.Errorf("pg: outbox mark suppressed: %w", err)
		}
		return store.OutboxClaimResult(int(tag.RowsAffected()), len(ids), "(unsent)")
	})
}

// OutboxUnsent counts rows pending or sending.
func (s *Store) OutboxUnsent(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE state IN ('pending','sending')`).Scan(&n); err != nil {
		return 0, fmt.Errorf("pg: count outbox: %w", err)
	}
	return n, nil
}

// OutboxPrune deletes sent, failed and suppressed rows created before before.
func (s *Store) OutboxPrune(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE state IN ('sent','failed','suppressed') AND created_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("pg: prune outbox: %w", err)
	}
	return tag.RowsAffected(), nil
}
