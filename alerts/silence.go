package alerts

import (
	"time"

	"lookout/store"
)

// silencedBy returns the id of an active silence matching the labels, or "".
func silencedBy(silences []store.Silence, ls map[string]string, now time.Time) string {
	for _, s := range silences {
		if s.ActiveAt(now) && s.Matches(ls) {
			return s.ID
		}
	}
	return ""
}
