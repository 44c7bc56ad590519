package alerts

import (
	"iter"
	"math"
	"sort"
	"time"
)

// windowBucket holds the counters of one time bucket of one key for one
// rule signal. idx is the bucket's number (unix nanoseconds / width), so a
// slot of the ring knows whether it still holds the bucket asked for or an
// older one that must be reset first.
type windowBucket struct {
	idx    int64
	items  uint32  // items that matched the signal
	scored uint32  // scored text items
	neg    uint32  // negative among scored
	hits   uint32  // keyword matches
	sum    float64 // metric values
	cnt    uint32  // metric samples
}

func (b *windowBucket) add(o *windowBucket) {
	b.items += o.items
	b.scored += o.scored
	b.neg += o.neg
	b.hits += o.hits
	b.sum += o.sum
	b.cnt += o.cnt
}

// windowRing is a ring of fixed-width buckets covering `span` buckets back
// from the newest one seen. Adding is O(1) and allocation-free; summing a
// window is O(buckets per window). Buckets are window/60 wide (at least one
// second), so a window slides in steps of 1/60 of its length.
type windowRing struct {
	width   int64 // bucket width in nanoseconds
	nb      int64 // buckets per window
	maxIdx  int64 // newest bucket index written
	buckets []windowBucket
}

// windowBucketWidth picks the bucket width for a window.
func windowBucketWidth(window time.Duration) time.Duration {
	w := window / 60
	if w < time.Second {
		w = time.Second
	}
	return w.Truncate(time.Second)
}

// newWindowRing makes a ring that can sum `windows` consecutive windows.
func newWindowRing(window time.Duration, windows int) windowRing {
	width := windowBucketWidth(window)
	nb := int64((window + width - 1) / width)
	if nb < 1 {
		nb = 1
	}
	return windowRing{width: int64(width), nb: nb, buckets: make([]windowBucket, nb*int64(windows)+1)}
}

// at returns the bucket for ts, resetting a stale slot, or nil when ts is
// older than the ring holds (a late item).
func (w *windowRing) at(ts time.Time) *windowBucket {
	idx := ts.UnixNano() / w.width
	n := int64(len(w.buckets))
	if idx <= w.maxIdx-n {
		return nil
	}
	if idx > w.maxIdx {
		w.maxIdx = idx
	}
	b := &w.buckets[windowMod(idx, n)]
	if b.idx != idx {
		*b = windowBucket{idx: idx}
	}
	return b
}

// held returns the bucket for ts if the ring still holds it, or nil;
// unlike at it never claims a slot.
func (w *windowRing) held(ts time.Time) *windowBucket {
	n := int64(len(w.buckets))
	if n == 0 {
		return nil
	}
	idx := ts.UnixNano() / w.width
	b := &w.buckets[windowMod(idx, n)]
	if b.idx != idx || idx > w.maxIdx {
		return nil
	}
	return b
}

// sum adds up the buckets of the k-th window back from now (k=0: the
// window ending at now, k=1: the one before it, …).
func (w *windowRing) sum(now time.Time, k int) windowBucket {
	var out windowBucket
	end := now.UnixNano()/w.width - int64(k)*w.nb
	n := int64(len(w.buckets))
	for idx := end - w.nb + 1; idx <= end; idx++ {
		b := &w.buckets[windowMod(idx, n)]
		if b.idx == idx {
			out.add(b)
		}
	}
	return out
}

// windowOf is the span [from, to) of the k-th window back from now, as
// sum counts it (whole buckets).
func (w *windowRing) windowOf(now time.Time, k int) (from, to time.Time) {
	end := now.UnixNano()/w.width - int64(k)*w.nb
	return time.Unix(0, (end-w.nb+1)*w.width), time.Unix(0, (end+1)*w.width)
}

// sumSpan adds up the buckets that start in [from, to).
func (w *windowRing) sumSpan(from, to time.Time) windowBucket {
	var out windowBucket
	for b := range w.span(from, to) {
		out.add(b)
	}
	return out
}

// span yields the buckets that start in [from, to) and the ring still holds.
func (w *windowRing) span(from, to time.Time) iter.Seq[*windowBucket] {
	return func(yield func(*windowBucket) bool) {
		first := (from.UnixNano() + w.width - 1) / w.width
		last := (to.UnixNano() - 1) / w.width
		n := int64(len(w.buckets))
		for idx := max(first, last-n+1); idx <= last; idx++ {
			b := &w.buckets[windowMod(idx, n)]
			if b.idx == idx && !yield(b) {
				return
			}
		}
	}
}

// points appends one point per bucket of the window ending at now, at the
// bucket's middle (seconds before now, negative): for a gauge the mean of
// every bucket that has samples; for a rate (rate true) every bucket's sum
// per minute, an empty bucket being a rate of 0.
//
// A bucket that lies mostly in one of gaps (a span the engine did not
// see) has no point, not a rate of 0.
func (w *windowRing) points(now time.Time, rate bool, gaps []seriesGap, dst []windowPoint) []windowPoint {
	end := now.UnixNano() / w.width
	n := int64(len(w.buckets))
	perMin := float64(time.Minute) / float64(w.width)
	for idx := end - w.nb + 1; idx <= end; idx++ {
		b := &w.buckets[windowMod(idx, n)]
		held := b.idx == idx
		if len(gaps) > 0 && gapOverlap(gaps, idx*w.width, (idx+1)*w.width) > time.Duration(w.width/2) {
			continue
		}
		var v float64
		switch {
		case rate && held:
			v = b.sum * perMin
		case rate:
		case held && b.cnt > 0:
			v = b.sum / float64(b.cnt)
		default:
			continue
		}
		mid := float64(idx*w.width+w.width/2-now.UnixNano()) / 1e9
		dst = append(dst, windowPoint{mid, v})
	}
	return dst
}

// windowPoint is one bucket's value at its time (seconds relative to now).
type windowPoint struct{ t, v float64 }

func windowMod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

// sampleRing keeps the latest notable items of a key (negative or matching
// texts) so that an alert can quote them. Writing copies string headers
// only: no allocation.
type sampleRing struct {
	buf  []Sample
	at   []int64  // when each sample counted (unix ns): its window time
	ids  []uint64 // each sample's message (msgHash), 0: none
	next int
	full bool
}

func newSampleRing(n int) sampleRing {
	return sampleRing{buf: make([]Sample, n), at: make([]int64, n), ids: make([]uint64, n)}
}

// sampleGone marks a withdrawn sample: older than any window.
const sampleGone = math.MinInt64

// drop withdraws the samples of message id (deleted or edited).
func (r *sampleRing) drop(id uint64) {
	if id == 0 {
		return
	}
	for i, v := range r.ids {
		if v == id {
			r.at[i], r.ids[i] = sampleGone, 0
		}
	}
}

func (r *sampleRing) add(s Sample, at time.Time, id uint64) {
	if len(r.buf) == 0 {
		return
	}
	r.buf[r.next] = s
	r.ids[r.next] = id
	r.at[r.next] = at.UnixNano()
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// top returns up to n samples counted since `since`, most negative first,
// ties newest first.
func (r *sampleRing) top(n int, since time.Time) []Sample {
	if n <= 0 {
		return nil
	}
	var out []Sample
	count := r.next
	if r.full {
		count = len(r.buf)
	}
	sinceNS := since.UnixNano()
	for i := 0; i < count; i++ {
		if r.at[i] >= sinceNS {
			out = append(out, r.buf[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score < out[j].Score
		}
		return out[i].TS.After(out[j].TS)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
