package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"lookout/store"
)

// outboxReportPayload is the payload of an outbox row that carries a
// report instead of an alert event.
type outboxReportPayload struct {
	Report *Report `json:"report"`
}

// outboxReport is the report an outbox payload carries, nil for an alert
// event (events have no "report" field).
func outboxReport(payload []byte) *Report {
	var p outboxReportPayload
	if json.Unmarshal(payload, &p) != nil || p.Report == nil || p.Report.Key == "" {
		return nil
	}
	return p.Report
}

// RouteReceivers lists the receivers the routing tree picks for a message
// with these labels (a stream review goes where the room's alerts go).
func (d *Delivery) RouteReceivers(labels map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range d.root.Match(labels) {
		if r.Receiver != "" && !seen[r.Receiver] {
			seen[r.Receiver] = true
			out = append(out, r.Receiver)
		}
	}
	sort.Strings(out)
	return out
}

// PublishReport stores a generated report and queues it for
// rec.Receivers, in one transaction: the report row says it was queued,
// and the outbox sends it at least once and, short of a crash during the
// very send, exactly once. rep.Key becomes rec.ID; the same id published
// again changes nothing (queued false). Receivers that are not configured
// are left out and logged.
func (d *Delivery) PublishReport(ctx context.Context, rec store.ReportRecord, rep Report) (queued bool, err error) {
	if d.st == nil {
		return false, errors.New("delivery: no store")
	}
	if rec.ID == "" {
		return false, errors.New("delivery: report without id")
	}
	rep.Key = rec.ID
	payload, err := json.Marshal(outboxReportPayload{Report: &rep})
	if err != nil {
		return false, fmt.Errorf("delivery: encode report %s: %w", rec.ID, err)
	}
	now := d.now()
	var rows []store.OutboxInsert
	var receivers []string
	for _, name := range rec.Receivers {
		if _, ok := d.notifiers[name]; !ok {
			d.log.Error("report receiver is not configured; leaving it out", "report", rec.ID, "receiver", name)
			continue
		}
		receivers = append(receivers, name)
		rows = append(rows, store.OutboxInsert{Receiver: name, GroupKey: "report:" + rec.ID, Payload: payload, NotBefore: now})
	}
	rec.Receivers = receivers
	q, ok := d.st.(reportQueuer)
	if !ok {
		return false, fmt.Errorf("delivery: report %s: reports need the SQLite store", rec.ID)
	}
	queued, err = q.QueueReport(ctx, rec, rows, now)
	if err != nil {
		return false, fmt.Errorf("delivery: %w", err)
	}
	if !queued {
		d.mPublished.WithLabelValues("duplicate").Inc()
		return false, nil
	}
	d.mPublished.WithLabelValues("report").Inc()
	for _, r := range receivers {
		d.kick(r)
	}
	d.mPending.Add(float64(len(rows)))
	return true, nil
}
