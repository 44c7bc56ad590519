package alerts

// The outbox sender: one deliveryWorker per receiver drains that
// receiver's rows one message at a time (see the guarantees in
// delivery.go).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"golang.org/x/time/rate"

	"lookout/store"
)

// outboxBatchID names a batch of events by their ids, so the same batch
// resent after a crash carries the same idempotency key.
func outboxBatchID(evs []Event) string {
	if len(evs) == 1 {
		return evs[0].ID
	}
	h := sha256.New()
	for _, e := range evs {
		h.Write([]byte(e.ID))
		h.Write([]byte{0})
	}
	return "batch-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// deliveryWorker sends one receiver's messages, one at a time.
type deliveryWorker struct {
	d            *Delivery
	receiver     string
	n            Notifier
	lim          *rate.Limiter
	wake         chan struct{}
	lastSent     map[string]time.Time
	blockedUntil time.Time
}

func (w *deliveryWorker) run(ctx context.Context) error {
	d := w.d
	if last, err := d.st.OutboxLastSent(ctx, w.receiver, d.now().Add(-24*time.Hour)); err == nil {
		w.lastSent = last
	}
	for {
		wait, err := w.step(ctx)
		if errors.Is(err, errDeliveryCrashed) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d.log.Error("outbox sender error", "receiver", w.receiver, "err", err)
			wait = d.opts.PollInterval
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(min(wait, d.opts.PollInterval))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-w.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// step sends at most one message and says how long to wait before the
// next step (0: go on at once).
func (w *deliveryWorker) step(ctx context.Context) (time.Duration, error) {
	d := w.d
	now := d.now()
	if now.Before(w.blockedUntil) {
		return w.blockedUntil.Sub(now), nil
	}
	if d.opts.SharedOutbox {
		// A row another sender claimed and never finished: that sender
		// died (kill -9, power loss) between claim and outcome.
		n, err := d.st.OutboxRecover(ctx, w.receiver, d.opts.ClaimTimeout)
		if err != nil {
			return 0, err
		}
		if n > 0 {
			d.log.Warn("resending notifications a processor claimed and never finished (it died mid-send); each may arrive twice (at most once more)",
				"receiver", w.receiver, "rows", n, "claimed_for_more_than", d.opts.ClaimTimeout)
		}
	}
	rows, err := d.st.OutboxPendingRows(ctx, w.receiver, 10*d.opts.MaxBatch)
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return d.opts.PollInterval, nil
	}
	flush := d.flushing.Load()
	var (
		best      []store.OutboxRow
		bestKey   string
		bestReady time.Time
	)
	for _, g := range groupPending(rows) {
		batch, ready := g.nextBatch(w.lastSent[g.key], d.opts.MaxBatch, flush)
		if best == nil || ready.Before(bestReady) {
			best, bestKey, bestReady = batch, g.key, ready
		}
	}
	if bestReady.After(now) {
		return bestReady.Sub(now), nil
	}
	if err := w.lim.Wait(ctx); err != nil {
		return 0, nil // shutting down
	}
	return 0, w.send(ctx, bestKey, best)
}

func (w *deliveryWorker) send(ctx context.Context, groupKey string, rows []store.OutboxRow) error {
	d := w.d
	// Record the outcome even when shutdown begins mid-send.
	bg := context.WithoutCancel(ctx)
	if rep := outboxReport(rows[0].Payload); rep != nil {
		return w.sendReport(bg, groupKey, rows[0], rep)
	}
	var (
		ids    []int64
		events []Event
	)
	for _, r := range rows {
		var ev Event
		if err := json.Unmarshal(r.Payload, &ev); err != nil {
			// Cannot happen with rows Publish wrote; a hand-edited row
			// must not block its group forever.
			d.log.Error("outbox row does not decode; marking it failed", "receiver", w.receiver, "row", r.ID, "event", r.EventID, "err", err)
			d.mErrors.WithLabelValues(w.receiver, "decode").Inc()
			if err := d.st.OutboxMarkFailed(bg, []int64{r.ID}, "payload does not decode: "+err.Error()); err != nil {
				return err
			}
			continue
		}
		ids = append(ids, r.ID)
		events = append(events, ev)
	}
	if rows[0].BatchID == "" {
		// A silence or a red alert may have appeared while the rows waited
		// (group_wait, an outage): check again before anything goes out.
		// A batch that already went out once is resent as it was.
		var err error
		if ids, events, err = w.dropSuppressed(bg, ids, events); err != nil {
			if errors.Is(err, store.ErrOutboxClaimed) {
				return nil // another processor sends them
			}
			return err
		}
	}
	if len(ids) == 0 {
		return nil
	}
	batchID := rows[0].BatchID
	if batchID == "" {
		batchID = outboxBatchID(events)
	}
	if err := d.st.OutboxMarkSending(bg, ids, batchID); err != nil {
		if errors.Is(err, store.ErrOutboxClaimed) {
			return nil // another processor sends them
		}
		return err
	}
	n := Notification{Receiver: w.receiver, GroupKey: groupKey, Events: events, BatchID: batchID}
	return w.notify(bg, n, ids, rows[0].Attempts, len(events))
}

// sendReport sends one report row: a message of its own, never batched,
// with the report's key as its idempotency key.
func (w *deliveryWorker) sendReport(bg context.Context, groupKey string, row store.OutboxRow, rep *Report) error {
	if err := w.d.st.OutboxMarkSending(bg, []int64{row.ID}, rep.Key); err != nil {
		if errors.Is(err, store.ErrOutboxClaimed) {
			return nil // another processor sends it
		}
		return err
	}
	n := Notification{Receiver: w.receiver, GroupKey: groupKey, BatchID: rep.Key, Report: rep}
	return w.notify(bg, n, []int64{row.ID}, row.Attempts, 1)
}

// notify makes the call for rows already marked sending and records its
// outcome.
func (w *deliveryWorker) notify(bg context.Context, n Notification, ids []int64, attempted, events int) error {
	d := w.d
	groupKey, batchID := n.GroupKey, n.BatchID
	sendCtx, cancel := context.WithTimeout(bg, d.opts.SendTimeout)
	retry, err := w.n.Notify(sendCtx, n)
	cancel()
	if d.deliveryCrashAfterSend != nil && d.deliveryCrashAfterSend(n) {
		return errDeliveryCrashed
	}
	now := d.now()
	defer d.refreshPending(bg)
	if err == nil {
		w.lastSent[groupKey] = now
		d.mNotifications.WithLabelValues(w.receiver, "sent").Inc()
		d.log.Info("alert notification sent", "receiver", w.receiver, "group", groupKey, "events", events, "batch", batchID)
		return d.st.OutboxMarkSent(bg, ids, now)
	}
	reason := NotifyReason(err)
	d.mErrors.WithLabelValues(w.receiver, reason).Inc()
	if !retry {
		d.mNotifications.WithLabelValues(w.receiver, "failed").Inc()
		d.log.Error("alert notification failed permanently; not retrying (fix the receiver's config)",
			"receiver", w.receiver, "group", groupKey, "events", events, "reason", reason, "err", err)
		return d.st.OutboxMarkFailed(bg, ids, err.Error())
	}
	attempts := attempted + 1
	wait := deliveryBackoff(d.opts.RetryBase, d.opts.RetryMax, attempts)
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.Wait > 0 {
		// The server said how long: the whole receiver pauses.
		wait = ra.Wait
		w.blockedUntil = now.Add(wait)
	}
	d.mNotifications.WithLabelValues(w.receiver, "retry").Inc()
	d.log.Warn("alert notification failed; will retry", "receiver", w.receiver, "group", groupKey,
		"events", events, "attempt", attempts, "retry_in", wait, "reason", reason, "err", err)
	return d.st.OutboxMarkRetry(bg, ids, now.Add(wait), err.Error())
}

// dropSuppressed marks the rows of firing events that an active silence
// or a firing alert now mutes as suppressed, and returns the rest.
func (w *deliveryWorker) dropSuppressed(ctx context.Context, ids []int64, events []Event) ([]int64, []Event, error) {
	d := w.d
	now := d.now()
	silences, err := d.st.ListSilences(ctx, now, false)
	if err != nil {
		return nil, nil, err
	}
	firingByRoom := map[string][]store.AlertRow{}
	keepIDs, keepEvents := ids[:0:0], events[:0:0]
	for i, ev := range events {
		reason := ""
		if ev.State == Firing {
			labels := EventLabels(&ev)
			if id := silencedBy(silences, labels, now); id != "" {
				reason = "silenced:" + id
			} else {
				key := ev.Room
				if !d.inhibitByRoom {
					key = "\x00all"
				}
				firing, ok := firingByRoom[key]
				if !ok {
					if firing, err = d.st.FiringAlerts(ctx, ev.Room, !d.inhibitByRoom); err != nil {
						return nil, nil, err
					}
					firingByRoom[key] = firing
				}
				if id := inhibitedBy(d.inhibit, ev.AlertID, labels, firing); id != "" {
					reason = "inhibited:" + id
				}
			}
		}
		if reason == "" {
			keepIDs, keepEvents = append(keepIDs, ids[i]), append(keepEvents, ev)
			continue
		}
		if err := d.st.OutboxMarkSuppressed(ctx, []int64{ids[i]}, reason); err != nil {
			return nil, nil, err // ErrOutboxClaimed: another processor took the row
		}
		d.mNotifications.WithLabelValues(w.receiver, "suppressed").Inc()
		d.log.Info("queued alert muted before sending", "receiver", w.receiver, "rule", ev.Rule, "room", ev.Room, "event", ev.ID, "why", reason)
	}
	return keepIDs, keepEvents, nil
}

// deliveryBackoff is exponential backoff with equal jitter: between half
// and all of min(max, base·2^(attempt-1)).
func deliveryBackoff(base, maxWait time.Duration, attempt int) time.Duration {
	d := base << min(max(attempt-1, 0), 30)
	if d <= 0 || d > maxWait {
		d = maxWait
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}
