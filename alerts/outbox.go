package alerts

import (
	"crypto/sha256"
	"encoding/hex"
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
