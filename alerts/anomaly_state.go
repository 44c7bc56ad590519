package alerts

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// An anomaly detector's learned state in a room profile (profile formats
// 3 and 4): its recent values and residuals, the |z| values that calibrate its
// tail, its seasonal slots, its smoothing span, its flatline run, the
// relative-entropy member's regimes, and where the series stood (the
// volume bucket being counted, the latest gauge sample). Restored, the
// detector scores the next point it is fed against what it had learned,
// with no warm-up; the span the engine did not see feeds it nothing (see
// advanceVolume).

// anomalyStateJSON is one detector's state. Period, Slots and History are
// the shape it was learned with: a detector of another shape (the rule's
// window or seasonality changed) learns again.
type anomalyStateJSON struct {
	Period  float64 `json:"period_seconds"`
	Slots   int     `json:"slots"`
	History int     `json:"history"`

	N         int           `json:"n"`
	First     time.Time     `json:"first,omitzero"`
	Quantum   float64       `json:"quantum"`
	Last      float64       `json:"last"`
	FlatRun   int           `json:"flat_run,omitempty"`
	FlatScale float64       `json:"flat_scale,omitempty"`
	FlatLong  int           `json:"flat_long,omitempty"`
	Span      profileFloats `json:"span,omitempty"` // oldest first
	SpanSum   float64       `json:"span_sum,omitempty"`

	Point   anomalyModelJSON   `json:"point"`
	Smooth  anomalyModelJSON   `json:"smooth"`
	Entropy anomalyEntropyJSON `json:"entropy"`

	// The series: the volume bucket being counted, or the latest gauge
	// sample.
	VolIdx    int64     `json:"vol_idx,omitempty"`
	VolCount  float64   `json:"vol_count,omitempty"`
	VolOpen   bool      `json:"vol_open,omitempty"`
	LastTS    time.Time `json:"last_ts,omitzero"`
	LastValue float64   `json:"last_value,omitempty"`
}

// anomalyModelJSON is one anomalyModel; windows oldest first.
type anomalyModelJSON struct {
	Recent    profileFloats `json:"recent,omitempty"`
	Residuals profileFloats `json:"residuals,omitempty"`
	Tail      []byte        `json:"tail,omitempty"` // bucket of each remembered |z|
	Seasonal  bool          `json:"seasonal,omitempty"`
	// Per seasonal slot: how many values it holds, where its ring goes
	// next, the period of its newest value and how many points that
	// averages; SlotVals holds the slots' values one after the other.
	SlotLen   []byte        `json:"slot_len,omitempty"`
	SlotNext  []byte        `json:"slot_next,omitempty"`
	SlotEpoch profileFloats `json:"slot_epoch,omitempty"`
	SlotCount profileFloats `json:"slot_count,omitempty"`
	SlotVals  profileFloats `json:"slot_vals,omitempty"`
}

// anomalyEntropyJSON is the relative-entropy member; Hyp holds the
// regimes' histograms one after the other.
type anomalyEntropyJSON struct {
	Ring  profileFloats `json:"ring,omitempty"` // oldest first
	Lo    float64       `json:"lo"`
	Hi    float64       `json:"hi"`
	HypLo float64       `json:"hyp_lo"`
	HypHi float64       `json:"hyp_hi"`
	Hyp   profileFloats `json:"hyp,omitempty"`
	Count []int         `json:"count,omitempty"`
	Rest  int           `json:"rest,omitempty"`
}

// profileFloats is a list of numbers stored exactly and compactly: the
// little-endian IEEE 754 bytes, base64 (11 characters a number, where
// decimal JSON takes up to 24).
type profileFloats []float64

func (f profileFloats) MarshalJSON() ([]byte, error) {
	b := make([]byte, 8*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return json.Marshal(b)
}

func (f *profileFloats) UnmarshalJSON(data []byte) error {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	if len(b)%8 != 0 {
		return fmt.Errorf("%d bytes are not whole numbers", len(b))
	}
	out := make(profileFloats, len(b)/8)
	for i := range out {
		v := math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("not a finite number")
		}
		out[i] = v
	}
	*f = out
	return nil
}

// anomalyExport copies s's detector state (under the engine's lock).
func anomalyExport(s *signalSeries) *anomalyStateJSON {
	d := s.det
	st := &anomalyStateJSON{Period: d.period.Seconds(), Slots: d.nslots, History: len(d.point.recent.ring),
		N: d.n, First: d.first, Quantum: d.quantum, Last: d.lastValue,
		FlatRun: d.flatRun, FlatScale: d.flatScale, FlatLong: d.flatLong, SpanSum: d.spanSum,
		Point: d.point.export(), Smooth: d.smooth.export(), Entropy: d.entropy.export(),
		VolIdx: s.volIdx, VolCount: s.volCount, VolOpen: s.volOpen, LastTS: s.lastTS, LastValue: s.lastValue}
	st.Span = make(profileFloats, 0, len(d.span))
	if len(d.span) == anomalySmoothSpan {
		st.Span = append(append(st.Span, d.span[d.spanAt:]...), d.span[:d.spanAt]...)
	} else {
		st.Span = append(st.Span, d.span...)
	}
	return st
}

// oldestFirst is a ring's values in the order they came.
func (w *anomalySortedWindow) oldestFirst() profileFloats {
	if !w.full {
		return append(profileFloats(nil), w.ring[:w.next]...)
	}
	return append(append(make(profileFloats, 0, len(w.ring)), w.ring[w.next:]...), w.ring[:w.next]...)
}

func (m *anomalyModel) export() anomalyModelJSON {
	j := anomalyModelJSON{Recent: m.recent.oldestFirst(), Residuals: m.residuals.oldestFirst(), Seasonal: m.seasonal}
	h := &m.tail
	if h.n == len(h.ring) {
		j.Tail = append(append(make([]byte, 0, h.n), h.ring[h.next:]...), h.ring[:h.next]...)
	} else {
		j.Tail = append([]byte(nil), h.ring[:h.n]...)
	}
	if m.slots != nil {
		n := len(m.slots)
		j.SlotLen, j.SlotNext = make([]byte, n), append([]byte(nil), m.slotNext...)
		j.SlotEpoch, j.SlotCount = make(profileFloats, n), make(profileFloats, n)
		for i, vals := range m.slots {
			j.SlotLen[i] = byte(len(vals))
			j.SlotEpoch[i], j.SlotCount[i] = float64(m.slotEpoch[i]), float64(m.slotCount[i])
			j.SlotVals = append(j.SlotVals, vals...)
		}
	}
	return j
}

func (e *anomalyEntropy) export() anomalyEntropyJSON {
	j := anomalyEntropyJSON{Lo: e.lo, Hi: e.hi, HypLo: e.hypLo, HypHi: e.hypHi, Count: append([]int(nil), e.count...), Rest: e.rest}
	if e.n == anomalyEntropyWindow {
		j.Ring = append(append(make(profileFloats, 0, e.n), e.ring[e.next:]...), e.ring[:e.next]...)
	} else {
		j.Ring = append(profileFloats(nil), e.ring[:e.n]...)
	}
	for i := range e.hyp {
		j.Hyp = append(j.Hyp, e.hyp[i][:]...)
	}
	return j
}

// errAnomalyShape: the saved detector was learned by a rule configured
// otherwise; the detector learns again.
var errAnomalyShape = errors.New("anomaly detector of another shape")

// anomalyRestore puts a saved state into s (whose detector is fresh). It
// returns an error, and leaves s as it was, when the state does not fit
// the rule's detector or does not hold together.
func anomalyRestore(s *signalSeries, st *anomalyStateJSON) error {
	d := newAnomalyDetector(s.det.p)
	if st.Period != d.period.Seconds() || st.Slots != d.nslots || st.History != len(d.point.recent.ring) {
		return fmt.Errorf("%w: learned with %v s periods, %d slots, %d points of history; the rule now keeps %v s, %d, %d",
			errAnomalyShape, st.Period, st.Slots, st.History, d.period.Seconds(), d.nslots, len(d.point.recent.ring))
	}
	if st.N < 0 || len(st.Span) > anomalySmoothSpan || st.FlatRun < 0 || st.FlatLong < 0 ||
		!anomalyFinite(st.Quantum, st.Last, st.FlatScale, st.SpanSum, st.VolCount, st.LastValue) {
		return errors.New("detector counters out of range")
	}
	for _, m := range []struct {
		to   *anomalyModel
		from *anomalyModelJSON
	}{{&d.point, &st.Point}, {&d.smooth, &st.Smooth}} {
		if err := m.to.restore(m.from); err != nil {
			return err
		}
	}
	if err := d.entropy.restore(&st.Entropy); err != nil {
		return err
	}
	d.n, d.first, d.quantum, d.lastValue = st.N, st.First, st.Quantum, st.Last
	d.flatRun, d.flatScale, d.flatLong = st.FlatRun, st.FlatScale, st.FlatLong
	d.span, d.spanAt, d.spanSum = append(d.span[:0], st.Span...), 0, st.SpanSum
	s.det = d
	s.volIdx, s.volCount, s.volOpen = st.VolIdx, st.VolCount, st.VolOpen
	s.lastTS, s.lastValue = st.LastTS, st.LastValue
	return nil
}

func anomalyFinite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// restore fills a fresh window of the same capacity with vals, oldest
// first (the newest cap of them when there are more).
func (w *anomalySortedWindow) restore(vals []float64) {
	if n := len(w.ring); len(vals) > n {
		vals = vals[len(vals)-n:]
	}
	copy(w.ring, vals)
	w.next, w.full = len(vals)%len(w.ring), len(vals) == len(w.ring)
	w.sorted = append(w.sorted[:0], vals...)
	slices.Sort(w.sorted)
}

func (m *anomalyModel) restore(j *anomalyModelJSON) error {
	m.recent.restore(j.Recent)
	m.residuals.restore(j.Residuals)
	for _, b := range j.Tail {
		if int(b) >= anomalyTailBuckets {
			return fmt.Errorf("tail bucket %d", b)
		}
		m.tail.pushBucket(b)
	}
	m.seasonal = j.Seasonal
	if len(j.SlotLen) == 0 {
		return nil
	}
	n := len(m.slots)
	if len(j.SlotLen) != n || len(j.SlotNext) != n || len(j.SlotEpoch) != n || len(j.SlotCount) != n {
		return fmt.Errorf("%d seasonal slots saved, the detector has %d", len(j.SlotLen), n)
	}
	vals := j.SlotVals
	for i := range n {
		k := int(j.SlotLen[i])
		if k > anomalySeasonDays || k > len(vals) || int(j.SlotNext[i]) >= anomalySeasonDays ||
			j.SlotCount[i] < 0 || j.SlotCount[i] > math.MaxUint16 {
			return fmt.Errorf("seasonal slot %d does not hold together", i)
		}
		if k > 0 {
			m.slots[i] = append(make([]float64, 0, k), vals[:k]...)
		}
		vals = vals[k:]
		m.slotNext[i], m.slotEpoch[i], m.slotCount[i] = j.SlotNext[i], int64(j.SlotEpoch[i]), uint16(j.SlotCount[i])
	}
	if len(vals) != 0 {
		return fmt.Errorf("%d seasonal values left over", len(vals))
	}
	return nil
}

func (e *anomalyEntropy) restore(j *anomalyEntropyJSON) error {
	if len(j.Ring) > anomalyEntropyWindow || len(j.Hyp)%anomalyEntropyBins != 0 ||
		len(j.Hyp)/anomalyEntropyBins != len(j.Count) || len(j.Count) > anomalyEntropyMaxHyp || j.Rest < 0 ||
		!anomalyFinite(j.Lo, j.Hi, j.HypLo, j.HypHi) {
		return errors.New("relative-entropy member does not hold together")
	}
	e.reset()
	e.n = copy(e.ring[:], j.Ring)
	e.next = e.n % anomalyEntropyWindow
	e.lo, e.hi, e.hypLo, e.hypHi, e.rest = j.Lo, j.Hi, j.HypLo, j.HypHi, j.Rest
	for i := range j.Count {
		var h [anomalyEntropyBins]float64
		copy(h[:], j.Hyp[i*anomalyEntropyBins:])
		e.hyp, e.count = append(e.hyp, h), append(e.count, j.Count[i])
	}
	return nil
}

// Profile format 4 stores a detector packed (anomaly_z): the state above
// with its lists of numbers taken out as JSON, then each list's length
// and its numbers as little-endian IEEE 754 bytes, deflated and base64'd.
// Values are stored exactly, as in format 3: a restored detector scores
// every later point as the one that kept running. A fully learned
// detector of a whole-number series (viewers, messages per bucket) packs
// to about a quarter of its format-3 size; one of a series of arbitrary
// fractions to about 85 % (its residuals and smoothed values are
// fractions either way, and they set the size). Deflate runs at its
// fastest level: the default packs 7 % smaller for twice the CPU.

// anomalyPackMax bounds an unpacked detector: a fully learned one is
// about 170 KB.
const anomalyPackMax = 4 << 20

// floatLists are the state's lists of numbers, in the packed order.
func (st *anomalyStateJSON) floatLists() [13]*profileFloats {
	return [13]*profileFloats{&st.Span,
		&st.Point.Recent, &st.Point.Residuals, &st.Point.SlotEpoch, &st.Point.SlotCount, &st.Point.SlotVals,
		&st.Smooth.Recent, &st.Smooth.Residuals, &st.Smooth.SlotEpoch, &st.Smooth.SlotCount, &st.Smooth.SlotVals,
		&st.Entropy.Ring, &st.Entropy.Hyp}
}

// anomalyPacker packs detector states; one is reused for every detector
// of an export (a deflate writer is large to set up).
type anomalyPacker struct {
	raw bytes.Buffer
	z   bytes.Buffer
	fw  *flate.Writer
}

// pack returns st packed (format 4). st's lists are left as they were.
func (p *anomalyPacker) pack(st *anomalyStateJSON) (string, error) {
	lists := st.floatLists()
	var saved [len(lists)]profileFloats
	for i, l := range lists {
		saved[i], *l = *l, nil
	}
	head, err := json.Marshal(st)
	for i, l := range lists {
		*l = saved[i]
	}
	if err != nil {
		return "", err
	}
	p.raw.Reset()
	p.raw.Write(binary.AppendUvarint(nil, uint64(len(head))))
	p.raw.Write(head)
	var b [binary.MaxVarintLen64]byte
	for _, l := range saved {
		p.raw.Write(b[:binary.PutUvarint(b[:], uint64(len(l)))])
	}
	for _, l := range saved {
		for _, v := range l {
			binary.LittleEndian.PutUint64(b[:8], math.Float64bits(v))
			p.raw.Write(b[:8])
		}
	}
	p.z.Reset()
	if p.fw == nil {
		if p.fw, err = flate.NewWriter(&p.z, flate.BestSpeed); err != nil {
			return "", err
		}
	} else {
		p.fw.Reset(&p.z)
	}
	if _, err := p.fw.Write(p.raw.Bytes()); err != nil {
		return "", err
	}
	if err := p.fw.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(p.z.Bytes()), nil
}

// anomalyUnpack undoes pack, checking that the packed state holds
// together as far as its layout goes (anomalyRestore checks the rest).
func anomalyUnpack(s string) (*anomalyStateJSON, error) {
	z, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("packed detector: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(z)), anomalyPackMax+1))
	if err != nil {
		return nil, fmt.Errorf("packed detector: inflate: %w", err)
	}
	if len(raw) > anomalyPackMax {
		return nil, fmt.Errorf("packed detector: more than %d bytes unpacked", anomalyPackMax)
	}
	next := func() (uint64, error) {
		v, n := binary.Uvarint(raw)
		if n <= 0 {
			return 0, errors.New("packed detector: truncated")
		}
		raw = raw[n:]
		return v, nil
	}
	hl, err := next()
	if err != nil {
		return nil, err
	}
	if hl > uint64(len(raw)) {
		return nil, errors.New("packed detector: truncated")
	}
	var st anomalyStateJSON
	if err := json.Unmarshal(raw[:hl], &st); err != nil {
		return nil, fmt.Errorf("packed detector: %w", err)
	}
	raw = raw[hl:]
	lists := st.floatLists()
	var lens [len(lists)]uint64
	for i := range lens {
		if lens[i], err = next(); err != nil {
			return nil, err
		}
	}
	for i, l := range lists {
		if lens[i] > uint64(len(raw)/8) {
			return nil, errors.New("packed detector: truncated")
		}
		out := make(profileFloats, lens[i])
		for k := range out {
			v := math.Float64frombits(binary.LittleEndian.Uint64(raw[8*k:]))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, errors.New("packed detector: not a finite number")
			}
			out[k] = v
		}
		raw = raw[8*len(out):]
		*l = out
	}
	if len(raw) != 0 {
		return nil, fmt.Errorf("packed detector: %d bytes left over", len(raw))
	}
	return &st, nil
}
