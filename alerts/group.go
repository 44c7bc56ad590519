package alerts

import (
	"time"

	"lookout/store"
)

// deliveryGroup is the pending rows of one (receiver, group key): the
// next message to that group is built from them.
type deliveryGroup struct {
	key  string
	rows []store.OutboxRow
}

// groupPending splits a receiver's pending rows (in arrival order) into
// groups, keeping the order of first arrival.
func groupPending(rows []store.OutboxRow) []*deliveryGroup {
	var out []*deliveryGroup
	idx := map[string]*deliveryGroup{}
	for _, r := range rows {
		g := idx[r.GroupKey]
		if g == nil {
			g = &deliveryGroup{key: r.GroupKey}
			idx[r.GroupKey] = g
			out = append(out, g)
		}
		g.rows = append(g.rows, r)
	}
	return out
}

// nextBatch picks the rows of the group's next message and when it may go.
//
// A batch that already went out once (batch id set: it failed retryably,
// or a crash interrupted it) is resent exactly as it was, so the receiver
// sees the same idempotency key and the same events; it waits for its
// retry time. Newer rows of the group wait behind it, which keeps order
// per group. Otherwise the batch is the oldest rows without a batch, up to
// max, and it may go at group_wait after the first row arrived for a group
// that has not sent lately, or group_interval after the group's last
// message (Alertmanager's timing); flush skips both waits.
func (g *deliveryGroup) nextBatch(lastSent time.Time, max int, flush bool) (rows []store.OutboxRow, readyAt time.Time) {
	first := g.rows[0]
	if first.BatchID != "" {
		for _, r := range g.rows {
			if r.BatchID == first.BatchID {
				rows = append(rows, r)
			}
		}
		return rows, first.NextAttemptAt
	}
	for _, r := range g.rows {
		if r.BatchID != "" {
			continue
		}
		rows = append(rows, r)
		if len(rows) == max {
			break
		}
	}
	readyAt = first.NextAttemptAt
	if !flush {
		gate := first.NotBefore
		// A row that arrived while the group was still active (within
		// group_interval of its last message) waits for the next tick;
		// one that arrived after the group went quiet starts afresh with
		// group_wait.
		if !lastSent.IsZero() && first.GroupInterval > 0 {
			if t := lastSent.Add(first.GroupInterval); first.CreatedAt.Before(t) {
				gate = t
			}
		}
		if gate.After(readyAt) {
			readyAt = gate
		}
	}
	return rows, readyAt
}
