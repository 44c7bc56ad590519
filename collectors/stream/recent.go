package stream

import "sync"

// RecentIDs is a bounded set of the ids a stream handed on lately: an
// event delivered twice (a resumed cursor's overlap, a status seen live
// and in a catch-up page) is dropped before it reaches the pipeline.
// When full, the oldest id makes room. Safe for concurrent use.
type RecentIDs struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	pos  int
}

// NewRecentIDs returns a set that remembers the last n ids.
func NewRecentIDs(n int) *RecentIDs {
	n = max(n, 1)
	return &RecentIDs{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// Add remembers id and reports whether it is new.
func (r *RecentIDs) Add(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.set[id]; dup {
		return false
	}
	if old := r.ring[r.pos]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.pos] = id
	r.pos = (r.pos + 1) % len(r.ring)
	r.set[id] = struct{}{}
	return true
}

// Has reports whether id was added lately.
func (r *RecentIDs) Has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[id]
	return ok
}

// Forget drops id, so that it is new again (an edited status).
func (r *RecentIDs) Forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, id)
}
