package collectors

import (
	"context"
	"fmt"
	"time"

	"lookout/config"
	"lookout/item"
)

// SourceBrokenAfter is how many polls in a row may fail before a source
// reports itself broken. A failure time will not mend (an expired cookie,
// a refused login) counts at once.
const SourceBrokenAfter = 3

// SourceHealth is what a polling source knows about whether it works, and
// what it last said about it. After each poll the source calls Report,
// which emits an item.MetricSourceBroken sample: 1 after every poll while
// the source is broken (so a rule sees it again after a restart), 0 once
// when it recovers, nothing while all is well. Broken means the last
// page answered but yielded nothing where earlier polls did (shape drift),
// or SourceBrokenAfter polls in a row failed, or one failed for good.
//
// A SourceHealth belongs to the goroutine that polls; it is not safe for
// concurrent use.
type SourceHealth struct {
	source, platform string
	env              Env

	failStreak int
	permanent  bool // the last failure will not mend by waiting
	failReason string
	failDetail string
	drift      string // where the last page yielded nothing, "" when fine
	reported   bool   // the last report said broken
}

// NewSourceHealth starts a source's health as working.
func NewSourceHealth(src config.SourceConfig, env Env) *SourceHealth {
	return &SourceHealth{source: src.ID, platform: src.Kind, env: env}
}

// Failed records a failed poll with its metrics reason. permanent marks
// a failure waiting will not mend.
func (h *SourceHealth) Failed(reason string, err error, permanent bool) {
	h.failStreak++
	h.failReason, h.failDetail, h.permanent = reason, err.Error(), permanent
}

// Succeeded records a poll that got an answer it could read.
func (h *SourceHealth) Succeeded() {
	h.failStreak, h.failReason, h.failDetail, h.permanent = 0, "", "", false
}

// Drifted records where an answer yielded no items where it used to
// ("" once items are back).
func (h *SourceHealth) Drifted(where string) { h.drift = where }

// Report emits the source's health sample if there is something to say;
// it fails only when emit does (the daemon is stopping).
func (h *SourceHealth) Report(ctx context.Context, emit Emit) error {
	reason, detail := "", ""
	switch {
	case h.permanent || h.failStreak >= SourceBrokenAfter:
		reason, detail = h.failReason, h.failDetail
		if h.failStreak > 1 {
			detail = fmt.Sprintf("%d polls in a row failed; last: %s", h.failStreak, h.failDetail)
		}
	case h.drift != "":
		reason = "shape_drift"
		detail = "answered but yielded no items where earlier polls did (" + h.drift + "); check the selectors or mapping"
	}
	broken := reason != ""
	if !broken && !h.reported {
		return nil
	}
	h.reported = broken
	if !broken {
		h.env.Log.Info("source recovered")
	}
	return emit(ctx, SourceBrokenItem(h.source, h.platform, h.env.Clock.Now(), reason, detail))
}

// SourceBrokenItem is one item.MetricSourceBroken sample: value 1 with
// the reason and detail as labels, or, with reason "", value 0 and reason
// "recovered". It has no room, so the alert engine keeps it apart from the
// source's rooms.
func SourceBrokenItem(source, platform string, now time.Time, reason, detail string) item.Item {
	it := item.Item{Source: source, Platform: platform, Kind: item.KindMetric,
		ID: fmt.Sprintf("%s:%d", item.MetricSourceBroken, now.UnixNano()), TS: now,
		Metric: item.MetricSourceBroken, Labels: map[string]string{"reason": "recovered"}}
	if reason != "" {
		it.Value = 1
		it.Labels = map[string]string{"reason": reason, "detail": detail}
	}
	return it
}
