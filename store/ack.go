package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrNoAlert: no alert has the id given.
var ErrNoAlert = errors.New("no such alert")

// Ack is an alert's acknowledgement: someone has seen it and is on it. It
// mutes nothing (a silence does that); it tells the others.
type Ack struct {
	AlertID string
	By      string
	Comment string
	At      time.Time
}

// AckAlert acknowledges an alert. The first acknowledgement stands: a
// second one changes nothing and returns the first with isNew false. The
// dashboard and `lookout ack` both come here, so either has the same
// effect. An unknown id is an error wrapping ErrNoAlert.
func (s *Store) AckAlert(ctx context.Context, id, by, comment string, now time.Time) (ack Ack, isNew bool, err error) {
	if by == "" {
		by = "unknown"
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Ack{}, false, fmt.Errorf("store: ack %s: %w", id, storeExplain(err))
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE alerts SET acked_at = ?, acked_by = ?, ack_comment = ? WHERE id = ? AND acked_at IS NULL`,
		FormatTime(now), by, comment, id)
	if err != nil {
		return Ack{}, false, fmt.Errorf("store: ack %s: %w", id, storeExplain(err))
	}
	n, _ := res.RowsAffected()
	var at sql.NullString
	ack.AlertID = id
	switch err := tx.QueryRowContext(ctx, `SELECT acked_at, acked_by, ack_comment FROM alerts WHERE id = ?`, id).Scan(&at, &ack.By, &ack.Comment); {
	case errors.Is(err, sql.ErrNoRows):
		return Ack{}, false, fmt.Errorf("ack %q: %w", id, ErrNoAlert)
	case err != nil:
		return Ack{}, false, fmt.Errorf("store: ack %s: %w", id, storeExplain(err))
	}
	ack.At, _ = ParseTime(at.String)
	if err := tx.Commit(); err != nil {
		return Ack{}, false, fmt.Errorf("store: ack %s: %w", id, storeExplain(err))
	}
	return ack, n == 1, nil
}
