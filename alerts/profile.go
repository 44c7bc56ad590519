package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"lookout/store"
)

// Room profiles: what the engine has learned about a room that a restart
// should not forget. Today that is, for every negative_ratio rule with a
// baseline, the room's stage profile (its negative share minute by minute
// from the start of its earlier streams, and the counts of the stream
// under way) and where the room's current stream stands (when it began,
// its last message, its latest live_status), so that a restart in the
// middle of a stream does not start a new one.
//
// The recent-history baseline is not part of it: it covers the last
// minutes only, and after a restart those minutes hold a gap the engine
// did not see, so it is learned again (min_history counts from the
// restart). A profile never holds more than the engine counted, and the
// daemon stores it behind the items it counted (store.RoomProfilesItem),
// so a stored profile never counts a message that is not stored.

// profileVersion is the format of the JSON below; a row of another
// version is skipped.
const profileVersion = 1

type profileJSON struct {
	Version     int                 `json:"v"`
	SlotSeconds int                 `json:"slot_seconds"`
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
	Cur   [][2]float64 `json:"cur"`
	Past  [][2]float64 `json:"past"`
}

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
	p      stageProfile
}

// ExportProfiles returns one row per rule and room for which the engine
// keeps a profile (a negative_ratio rule with a baseline that has seen the
// room's messages). Profile is JSON; UpdatedAt is left to the store.
func (e *Engine) ExportProfiles() []store.RoomProfile {
	var snaps []profileSnapshot
	e.mu.Lock()
	for _, ent := range e.keyList {
		for _, r := range e.rules {
			var stages []profileStageCopy
			for i, sig := range r.signals {
				if !sig.keepsStage() {
					continue
				}
				if s := ent.series[sig.idx]; s != nil && s.stage != nil {
					stages = append(stages, profileStageCopy{signal: i, p: *s.stage})
				}
			}
			if len(stages) == 0 {
				continue
			}
			snaps = append(snaps, profileSnapshot{rule: r.name, key: ent.key, stages: stages,
				head: profileJSON{Version: profileVersion, SlotSeconds: int(stageSlot / time.Second),
					StreamStart: ent.streamStart, LastTalk: ent.lastTalk, LastSeen: ent.lastSeen, Live: ent.live}})
		}
	}
	e.mu.Unlock()
	out := make([]store.RoomProfile, 0, len(snaps))
	for i := range snaps {
		sn := &snaps[i]
		pj := sn.head
		for _, st := range sn.stages {
			pj.Signals = append(pj.Signals, profileSignalJSON{Signal: st.signal, Start: st.p.start,
				Cur: profileCounts(&st.p.cur), Past: profileCounts(&st.p.past)})
		}
		b, err := json.Marshal(&pj)
		if err != nil {
			// Counts are finite and times valid: this cannot happen, but
			// a profile is worth less than the rest.
			e.log.Error("room profile not exported", "rule", sn.rule, "source", sn.key.source, "room", sn.key.room, "err", err)
			continue
		}
		out = append(out, store.RoomProfile{Rule: sn.rule, Source: sn.key.source, Room: sn.key.room, Profile: string(b)})
	}
	return out
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
// (ExportProfiles, as stored) and returns how many rows it used. Call it
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
		k := engineKey{row.Source, row.Room}
		ent := e.keys[k]
		if ent == nil {
			ent = &engineKeyEntry{key: k, series: make([]*signalSeries, e.nsignals), alerts: make([]alertState, len(e.rules)), live: -1}
			e.keys[k] = ent
			e.keyList = append(e.keyList, ent)
		}
		if pj.LastSeen.After(ent.lastSeen) {
			ent.lastSeen = pj.LastSeen
		}
		if pj.LastTalk.After(ent.lastTalk) {
			ent.lastTalk, ent.streamStart, ent.live = pj.LastTalk, pj.StreamStart, pj.Live
		}
		n := 0
		for _, ps := range pj.Signals {
			if ps.Signal >= len(r.signals) || !r.signals[ps.Signal].keepsStage() {
				continue
			}
			sig := r.signals[ps.Signal]
			s := ent.series[sig.idx]
			if s == nil {
				s = newSignalSeries(sig, now) // its recent history starts now
				ent.series[sig.idx] = s
			}
			s.stage = &stageProfile{start: ps.Start}
			copy(s.stage.cur[:], profileSlots(ps.Cur))
			copy(s.stage.past[:], profileSlots(ps.Past))
			n++
		}
		if n > 0 {
			used++
		}
	}
	e.metrics.keys.Set(float64(len(e.keyList)))
	return used, errors.Join(errs...)
}

// profileDecode parses and checks one stored profile.
func profileDecode(s string) (*profileJSON, error) {
	var pj profileJSON
	if err := json.Unmarshal([]byte(s), &pj); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if pj.Version != profileVersion {
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
