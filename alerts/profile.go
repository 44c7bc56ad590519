package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"lookout/store"
)

// Room profiles: what the engine has learned about a room that a restart
// should not forget:
//
//   - for every negative_ratio rule with a baseline, the room's stage
//     profile (its negative share minute by minute from the start of its
//     earlier streams, and the counts of the stream under way);
//   - for every negative_ratio, keyword_burst, volume_spike, metric_drop
//     and metric_trend signal, its recent history: the buckets of its
//     window (volume_spike: and of the windows its baseline averages) and
//     of its baseline, the baseline an open alert holds, and when the
//     series began;
//   - for every anomaly signal, what its detector learned
//     (anomaly_state.go), in a row of its own (profileDetectorRule) that
//     is written only every DetectorSaveEvery: a learned detector is tens
//     of KB and one point changes little of it;
//   - where the room's current stream stands (when it began, its last
//     message, its latest live_status), so that a restart in the middle of
//     a stream does not start a new one.
//
// The span between the engine's clock when the profile was taken
// (saved_at) and the restart is a gap: the engine did not see it. Rates
// leave it out (a derived rate over a window half unseen has no verdict;
// a baseline's rate is over the part that was seen; a volume_spike
// window mostly unseen is neither judged nor part of a baseline; an
// anomaly detector is fed no point for a span it did not see all of), and
// min_history counts only minutes that were seen, so the minutes the
// daemon was down read neither as silence nor as history.
//
// A detector's row may be older than the rule's row (up to
// DetectorSaveEvery, and a save interval more after a kill -9): restored,
// the detector treats everything since its own saved_at as unseen, so it
// is fed no point it did not see all of and resumes from what it had
// learned then.
//
// A profile never holds more than the engine counted, and the daemon
// stores it behind the items it counted (store.RoomProfilesItem), so a
// stored profile never counts a message that is not stored.

// profileVersion is the format of the JSON below; a row of another
// version is skipped. Versions 1 (stage profiles only), 2 (no
// volume_spike history, no anomaly detectors) and 3 (anomaly detectors
// as JSON, not packed) are still read.
const profileVersion = 4

type profileJSON struct {
	Version     int                 `json:"v"`
	SlotSeconds int                 `json:"slot_seconds"`
	SavedAt     time.Time           `json:"saved_at,omitzero"` // the engine's clock when taken
	StreamStart time.Time           `json:"stream_start,omitzero"`
	LastTalk    time.Time           `json:"last_talk,omitzero"`
	LastSeen    time.Time           `json:"last_seen"`
	Live        float64             `json:"live"` // latest live_status, -1: none
	Signals     []profileSignalJSON `json:"signals"`
}

type profileSignalJSON struct {
	Signal int `json:"signal"` // position in the rule: 0 its own, then its conditions
	// Stage: Start is the stream Cur counts; Cur and Past are [negative,
	// scored] per minute from a stream's start, trailing empty minutes
	// left out.
	Start time.Time    `json:"start,omitzero"`
	Cur   [][2]float64 `json:"cur,omitempty"`
	Past  [][2]float64 `json:"past,omitempty"`
	// Recent history: when the series began, the buckets of its window
	// (Ring) and of its baseline (Base), each with its bucket width, the
	// spans it did not see, and the baseline it holds.
	FirstSeen   time.Time       `json:"first_seen,omitzero"`
	RingSeconds float64         `json:"ring_seconds,omitempty"`
	Ring        []profileBucket `json:"ring,omitempty"`
	BaseSeconds float64         `json:"base_seconds,omitempty"`
	Base        []profileBucket `json:"base,omitempty"`
	Gaps        [][2]time.Time  `json:"gaps,omitempty"`
	Ref         *profileRef     `json:"ref,omitempty"`
	// What an anomaly signal's detector learned: packed (format 4,
	// anomalyPacker), or as JSON (format 3).
	AnomalyZ string            `json:"anomaly_z,omitempty"`
	Anomaly  *anomalyStateJSON `json:"anomaly,omitempty"`
}

// profileBucket is one windowBucket; I is its index (unix time / width).
type profileBucket struct {
	I      int64   `json:"i"`
	Items  uint32  `json:"n,omitempty"`
	Scored uint32  `json:"s,omitempty"`
	Neg    uint32  `json:"neg,omitempty"`
	Hits   uint32  `json:"h,omitempty"`
	Sum    float64 `json:"sum,omitempty"`
	Cnt    uint32  `json:"c,omitempty"`
}

// profileRef is the baseline last computed (signalSeries.ref and its
// companions): while an alert is open it is the one the alert began with.
type profileRef struct {
	Bucket     profileBucket `json:"b"`
	Share      float64       `json:"share,omitempty"`
	At         int64         `json:"at"`
	SpanSecond float64       `json:"span_seconds,omitempty"`
}

// profileDetectorSuffix turns a rule's name into the name of the row
// that holds its anomaly detectors (profileDetectorRule). Rule names hold
// no control characters (config), so no rule is named so.
const profileDetectorSuffix = "\x1fdetectors"

func profileDetectorRule(rule string) string { return rule + profileDetectorSuffix }

// profileSnapshot is one key's profile for one rule, copied under the
// engine's lock and encoded outside it.
type profileSnapshot struct {
	rule   string
	key    engineKey
	head   profileJSON
	stages []profileStageCopy
}

type profileStageCopy struct {
	signal int
	stage  *stageProfile // nil: none
	recent *profileRecent
}

// profileRecent is a series' recent history, copied under the lock.
type profileRecent struct {
	firstSeen  time.Time
	ring, base []windowBucket
	ringW      int64
	baseW      int64
	gaps       []seriesGap
	ref        *profileRef
	anomaly    *anomalyStateJSON
}

// ExportProfiles returns one row per rule and room for which the engine
// keeps something a restart should not forget (see above), and a row of
// its anomaly detectors for those not taken for DetectorSaveEvery.
// Profile is JSON; UpdatedAt is left to the store.
func (e *Engine) ExportProfiles() []store.RoomProfile { return e.exportProfiles(false) }

// ExportAllProfiles is ExportProfiles with every anomaly detector taken
// (a clean shutdown).
func (e *Engine) ExportAllProfiles() []store.RoomProfile { return e.exportProfiles(true) }

func (e *Engine) exportProfiles(allDetectors bool) []store.RoomProfile {
	var snaps []profileSnapshot
	e.mu.Lock()
	savedAt := e.opts.Now()
	for _, ent := range e.keyList {
		for _, r := range e.rules {
			var stages []profileStageCopy
			for i, sig := range r.signals {
				s := ent.series[sig.idx]
				if s == nil {
					continue
				}
				c := profileStageCopy{signal: i}
				if sig.keepsStage() && s.stage != nil {
					st := *s.stage
					c.stage = &st
				}
				if sig.keepsRecent() {
					det := s.det != nil && (allDetectors || savedAt.Sub(s.detSaved) >= e.opts.DetectorSaveEvery)
					c.recent = profileCopyRecent(s, det)
					if det {
						s.detSaved = savedAt
					}
				}
				if c.stage != nil || c.recent != nil {
					stages = append(stages, c)
				}
			}
			if len(stages) == 0 {
				continue
			}
			snaps = append(snaps, profileSnapshot{rule: r.name, key: ent.key, stages: stages,
				head: profileJSON{Version: profileVersion, SlotSeconds: int(stageSlot / time.Second), SavedAt: savedAt,
					StreamStart: ent.streamStart, LastTalk: ent.lastTalk, LastSeen: ent.lastSeen, Live: ent.live}})
		}
	}
	e.mu.Unlock()
	out := make([]store.RoomProfile, 0, len(snaps))
	var packer anomalyPacker
	for i := range snaps {
		sn := &snaps[i]
		pj := sn.head
		dets := profileJSON{Version: pj.Version, SlotSeconds: pj.SlotSeconds, SavedAt: pj.SavedAt, LastSeen: pj.LastSeen} // the detectors' row
		for _, st := range sn.stages {
			ps := profileSignalJSON{Signal: st.signal}
			if st.stage != nil {
				ps.Start, ps.Cur, ps.Past = st.stage.start, profileCounts(&st.stage.cur), profileCounts(&st.stage.past)
			}
			if rc := st.recent; rc != nil {
				ps.FirstSeen, ps.Ref = rc.firstSeen, rc.ref
				if rc.anomaly != nil {
					z, err := packer.pack(rc.anomaly)
					if err != nil {
						// As below: the numbers are finite, so this
						// cannot happen; the detector learns again.
						e.log.Error("anomaly detector not exported", "rule", sn.rule, "source", sn.key.source, "room", sn.key.room, "err", err)
					}
					if z != "" {
						dets.Signals = append(dets.Signals, profileSignalJSON{Signal: st.signal, AnomalyZ: z})
					}
				}
				ps.Ring, ps.RingSeconds = profileBuckets(rc.ring), time.Duration(rc.ringW).Seconds()
				if rc.baseW > 0 {
					ps.Base, ps.BaseSeconds = profileBuckets(rc.base), time.Duration(rc.baseW).Seconds()
				}
				for _, g := range rc.gaps {
					ps.Gaps = append(ps.Gaps, [2]time.Time{time.Unix(0, g.from).UTC(), time.Unix(0, g.to).UTC()})
				}
			}
			pj.Signals = append(pj.Signals, ps)
		}
		b, err := json.Marshal(&pj)
		if err != nil {
			// Counts are finite and times valid: this cannot happen, but
			// a profile is worth less than the rest.
			e.log.Error("room profile not exported", "rule", sn.rule, "source", sn.key.source, "room", sn.key.room, "err", err)
			continue
		}
		out = append(out, store.RoomProfile{Rule: sn.rule, Source: sn.key.source, Room: sn.key.room, Profile: string(b)})
		if len(dets.Signals) == 0 {
			continue
		}
		if b, err = json.Marshal(&dets); err != nil {
			e.log.Error("anomaly detectors not exported", "rule", sn.rule, "source", sn.key.source, "room", sn.key.room, "err", err)
			continue
		}
		out = append(out, store.RoomProfile{Rule: profileDetectorRule(sn.rule), Source: sn.key.source, Room: sn.key.room, Profile: string(b)})
	}
	return out
}

// profileCopyRecent copies the held buckets of s's rings, and its
// detector when det (under the lock).
func profileCopyRecent(s *signalSeries, det bool) *profileRecent {
	rc := &profileRecent{firstSeen: s.firstSeen, ringW: s.ring.width, baseW: s.base.width,
		ring: profileHeld(&s.ring), base: profileHeld(&s.base), gaps: append([]seriesGap(nil), s.gaps[:s.ngaps]...)}
	if s.refOK {
		rc.ref = &profileRef{Bucket: profileBucketOf(&s.ref), Share: s.refShare, At: s.refAt, SpanSecond: s.refSpan.Seconds()}
	}
	if det {
		rc.anomaly = anomalyExport(s)
	}
	return rc
}

// profileHeld returns the buckets the ring still holds, oldest first.
func profileHeld(w *windowRing) []windowBucket {
	n := int64(len(w.buckets))
	if n == 0 {
		return nil
	}
	var out []windowBucket
	for idx := w.maxIdx - n + 1; idx <= w.maxIdx; idx++ {
		b := &w.buckets[windowMod(idx, n)]
		if b.idx == idx && *b != (windowBucket{idx: idx}) {
			out = append(out, *b)
		}
	}
	return out
}

func profileBucketOf(b *windowBucket) profileBucket {
	return profileBucket{I: b.idx, Items: b.items, Scored: b.scored, Neg: b.neg, Hits: b.hits, Sum: b.sum, Cnt: b.cnt}
}

func (p *profileBucket) bucket() windowBucket {
	return windowBucket{idx: p.I, items: p.Items, scored: p.Scored, neg: p.Neg, hits: p.Hits, sum: p.Sum, cnt: p.Cnt}
}

func profileBuckets(bs []windowBucket) []profileBucket {
	out := make([]profileBucket, len(bs))
	for i := range bs {
		out[i] = profileBucketOf(&bs[i])
	}
	return out
}

// keepsRecent reports whether the signal's recent history is saved:
// counts in buckets, or an anomaly detector, that a restart can carry
// over. Signals that keep neither (metric_threshold, absent) are not.
func (sig *ruleSignal) keepsRecent() bool {
	switch sig.kind {
	case KindNegativeRatio, KindKeywordBurst, KindVolumeSpike, KindMetricDrop, KindMetricTrend, KindAnomaly:
		return true
	}
	return false
}

// keepsStage reports whether the signal keeps a stage profile.
func (sig *ruleSignal) keepsStage() bool {
	return sig.kind == KindNegativeRatio && sig.baseline > 0
}

func profileCounts(c *[stageSlots]stageCounts) [][2]float64 {
	n := len(c)
	for n > 0 && c[n-1] == (stageCounts{}) {
		n--
	}
	out := make([][2]float64, n)
	for i := range out {
		out[i] = [2]float64{c[i].neg, c[i].scored}
	}
	return out
}

// ImportProfiles takes over the profiles of an earlier run
// (ExportProfiles, as stored) and returns how many rules' rows it used
// (a detectors' row goes with its rule's row and is not counted). Call it
// before the first Observe. Rows of rules no longer configured, or that
// keep no profile any more, and rows of rooms silent for longer than the
// engine keeps an idle room, are skipped; a row that does not decode is
// skipped, counted in lookout_alert_profiles_rejected_total and named in
// the returned error, and the others are used.
func (e *Engine) ImportProfiles(rows []store.RoomProfile, now time.Time) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	byName := make(map[string]*compiledRule, len(e.rules))
	for _, r := range e.rules {
		byName[r.name] = r
	}
	used := 0
	var errs []error
	type rowKey struct{ rule, source, room string }
	dets := map[rowKey]*profileJSON{}
	for _, row := range rows {
		name, ok := strings.CutSuffix(row.Rule, profileDetectorSuffix)
		if !ok || byName[name] == nil {
			continue
		}
		pj, err := profileDecode(row.Profile)
		if err != nil {
			e.metrics.profilesBad.Inc()
			errs = append(errs, fmt.Errorf("anomaly detectors of rule %q, source %q, room %q: %w", name, row.Source, row.Room, err))
			continue
		}
		dets[rowKey{name, row.Source, row.Room}] = pj
	}
	for _, row := range rows {
		r := byName[row.Rule]
		if r == nil {
			continue
		}
		pj, err := profileDecode(row.Profile)
		if err != nil {
			e.metrics.profilesBad.Inc()
			errs = append(errs, fmt.Errorf("room profile of rule %q, source %q, room %q: %w", row.Rule, row.Source, row.Room, err))
			continue
		}
		if now.Sub(pj.LastSeen) >= e.idleTTL {
			continue
		}
		ent, _ := e.keyEntryLocked(engineKey{row.Source, row.Room})
		if pj.LastSeen.After(ent.lastSeen) {
			ent.lastSeen = pj.LastSeen
		}
		if pj.LastTalk.After(ent.lastTalk) {
			ent.lastTalk, ent.streamStart, ent.live = pj.LastTalk, pj.StreamStart, pj.Live
		}
		dp := dets[rowKey{row.Rule, row.Source, row.Room}]
		n := 0
		for _, ps := range pj.Signals {
			if ps.Signal >= len(r.signals) {
				continue
			}
			sig := r.signals[ps.Signal]
			stage := sig.keepsStage() && (ps.Cur != nil || ps.Past != nil || !ps.Start.IsZero())
			recent := sig.keepsRecent() && !ps.FirstSeen.IsZero()
			if !stage && !recent {
				continue
			}
			s := ent.series[sig.idx]
			if s == nil {
				s = newSignalSeries(sig, now) // its recent history starts now, unless restored below
				ent.series[sig.idx] = s
			}
			if stage {
				s.stage = &stageProfile{start: ps.Start}
				copy(s.stage.cur[:], profileSlots(ps.Cur))
				copy(s.stage.past[:], profileSlots(ps.Past))
			}
			// The detector: in the signal (formats 3 and 4 before the
			// detectors' own row), or in the detectors' row, as of
			// its saved_at.
			st, z, detSaved := ps.Anomaly, ps.AnomalyZ, pj.SavedAt
			if st == nil && z == "" && dp != nil {
				for _, ds := range dp.Signals {
					if ds.Signal == ps.Signal {
						z, detSaved = ds.AnomalyZ, dp.SavedAt
					}
				}
			}
			if recent && (st != nil || z != "") && s.det != nil {
				var err error
				if z != "" {
					st, err = anomalyUnpack(z)
				}
				if err == nil {
					err = anomalyRestore(s, st)
				}
				if err != nil {
					recent = false // it learns again from now
					if !errors.Is(err, errAnomalyShape) {
						e.metrics.profilesBad.Inc()
						errs = append(errs, fmt.Errorf("room profile of rule %q, source %q, room %q: anomaly detector: %w", row.Rule, row.Source, row.Room, err))
					}
				}
			}
			if recent && profileRestoreRecent(s, sig, &ps) {
				// What the engine did not see: the gaps the last run
				// had not yet left behind, and its own downtime.
				for _, g := range ps.Gaps {
					s.addGap(g[0], g[1])
				}
				from := pj.SavedAt
				if s.det != nil && !detSaved.IsZero() && detSaved.Before(from) {
					from = detSaved
				}
				if !pj.SavedAt.IsZero() && now.After(from) {
					s.addGap(from, now)
					s.gapOpen, ent.gapOpen = true, true
				}
			}
			n++
		}
		if n > 0 {
			used++
		}
	}
	e.metrics.keys.Set(float64(len(e.keyList)))
	return used, errors.Join(errs...)
}

// profileRestoreRecent puts a saved recent history back into s. A ring
// whose bucket width no longer matches the rule's window (the config
// changed) is not restored, and then neither is the rest: the series
// learns again from now.
func profileRestoreRecent(s *signalSeries, sig *ruleSignal, ps *profileSignalJSON) bool {
	if time.Duration(s.ring.width).Seconds() != ps.RingSeconds || time.Duration(s.base.width).Seconds() != ps.BaseSeconds {
		return false
	}
	for _, pb := range [...]struct {
		w  *windowRing
		bs []profileBucket
	}{{&s.ring, ps.Ring}, {&s.base, ps.Base}} {
		if len(pb.w.buckets) == 0 {
			continue
		}
		for i := range pb.bs {
			if b := pb.w.at(time.Unix(0, pb.bs[i].I*pb.w.width)); b != nil {
				*b = pb.bs[i].bucket()
			}
		}
	}
	s.firstSeen = ps.FirstSeen
	if ps.Ref != nil && sig.baseline > 0 {
		s.ref, s.refShare, s.refAt, s.refOK = ps.Ref.Bucket.bucket(), ps.Ref.Share, ps.Ref.At, true
		s.refSpan = time.Duration(ps.Ref.SpanSecond * float64(time.Second))
	}
	return true
}

// profileDecode parses and checks one stored profile.
func profileDecode(s string) (*profileJSON, error) {
	var pj profileJSON
	if err := json.Unmarshal([]byte(s), &pj); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if pj.Version < 1 || pj.Version > profileVersion {
		return nil, fmt.Errorf("format version %d, this build reads %d", pj.Version, profileVersion)
	}
	if pj.SlotSeconds != int(stageSlot/time.Second) {
		return nil, fmt.Errorf("minutes of %d s, this build counts %v", pj.SlotSeconds, stageSlot)
	}
	if math.IsNaN(pj.Live) || math.IsInf(pj.Live, 0) {
		return nil, errors.New("live_status is not a number")
	}
	for _, ps := range pj.Signals {
		if ps.Signal < 0 {
			return nil, fmt.Errorf("signal %d", ps.Signal)
		}
		for _, bs := range [][]profileBucket{ps.Ring, ps.Base} {
			for i := range bs {
				b := &bs[i]
				if b.Neg > b.Scored || b.Scored > b.Items || b.Hits > b.Items || math.IsNaN(b.Sum) || math.IsInf(b.Sum, 0) {
					return nil, fmt.Errorf("signal %d: bucket %d is not a count: %+v", ps.Signal, b.I, *b)
				}
			}
		}
		for _, g := range ps.Gaps {
			if g[1].Before(g[0]) {
				return nil, fmt.Errorf("signal %d: gap ends (%v) before it begins (%v)", ps.Signal, g[1], g[0])
			}
		}
		if ps.Ref != nil && (math.IsNaN(ps.Ref.Share) || math.IsNaN(ps.Ref.Bucket.Sum) || math.IsInf(ps.Ref.Bucket.Sum, 0) || ps.Ref.SpanSecond < 0) {
			return nil, fmt.Errorf("signal %d: baseline is not a number", ps.Signal)
		}
		for name, c := range map[string][][2]float64{"cur": ps.Cur, "past": ps.Past} {
			if len(c) > stageSlots {
				return nil, fmt.Errorf("%s has %d minutes, at most %d are kept", name, len(c), stageSlots)
			}
			for i, v := range c {
				neg, scored := v[0], v[1]
				if !(neg >= 0 && scored >= neg && !math.IsInf(scored, 1)) {
					return nil, fmt.Errorf("%s minute %d: %v negative of %v scored", name, i, neg, scored)
				}
			}
		}
	}
	return &pj, nil
}

func profileSlots(c [][2]float64) []stageCounts {
	out := make([]stageCounts, len(c))
	for i, v := range c {
		out[i] = stageCounts{neg: v[0], scored: v[1]}
	}
	return out
}
