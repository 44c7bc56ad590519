package alerts

import (
	"hash/maphash"
	"time"

	"lookout/item"
)

// Edits, deletes and moderation. A message can be taken back after the
// engine counted it: its author deletes it (Mastodon, Bluesky), edits it
// (a complaint turned into 已解决，已退款), or a moderator removes it
// (Twitch CLEARMSG) or bans its author (CLEARCHAT, which removes the
// user's messages). Within a rule window the engine corrects its counts:
//
//   - a delete takes the message out of every negative_ratio and
//     keyword_burst bucket it was counted in (window, baseline, the
//     stream's minutes) and out of the samples an alert quotes;
//   - an edit takes the old version out and counts the new one at the
//     same time, with its own label and keyword matches;
//   - a moderator's delete of one message is a delete; a ban or timeout
//     deletes the user's messages the engine still holds; clearing the
//     whole chat deletes nothing (the room did say it).
//
// To find a message again each room keeps a record of the messages it
// counted over the longest window of its text rules (msgRing): ids and
// authors as 64-bit hashes, when it counted, its label and keyword
// matches. A change to a message older than that, never counted, or
// counted before a restart (the record is not saved with the room
// profiles) changes nothing (lookout_alert_changes_total{result="not_held"}):
// windows have moved past it, and baselines keep what they counted.
// Other rule kinds (volume_spike, chat_rate, anomaly) count that a
// message was sent, which a delete does not undo. A reload of the rules
// forgets the record (rules are numbered anew): changes to messages
// counted before it change nothing.

// msgRingMin and msgRingMax bound a room's record of messages: it starts
// small and doubles while its oldest record is still inside the span it
// must cover, up to msgRingMax (about 80 messages a second over a
// 15-minute window; beyond that the oldest are forgotten early).
const (
	msgRingMin = 256
	msgRingMax = 1 << 16
)

// indexTextSignals numbers the keyword_burst signals (kwBit) and sets
// retractSpan, for the rules just compiled.
func (e *Engine) indexTextSignals() {
	kw := 0
	e.retractSpan = 0
	for _, r := range e.rules {
		for _, sig := range r.signals {
			sig.kwBit = -1
			if sig.kind == KindKeywordBurst && kw < 64 {
				sig.kwBit = kw
				kw++
			}
			if sig.kind == KindNegativeRatio || sig.kind == KindKeywordBurst {
				e.retractSpan = max(e.retractSpan, sig.window)
			}
		}
	}
}

// msgRecord is what the engine remembers of one counted message.
type msgRecord struct {
	id, author uint64 // msgHash of the item's ID and AuthorID (0: none)
	ts, at     int64  // the item's time and the engine's clock when counted (unix ns)
	rules      uint64 // rules (by index, the first 64) that counted it
	kw         uint64 // keyword_burst signals (by kwBit) whose group or category it matched
	label      item.Label
	question   bool
	scored     bool
}

// msgRing is one room's record of recent messages, oldest overwritten.
type msgRing struct {
	buf  []msgRecord
	next int
	n    int
}

// counted is when m counted in the windows (unix ns): at its own time,
// or on arrival when that was more than span earlier.
func (m *msgRecord) counted(span int64) int64 {
	if m.ts >= m.at-span {
		return m.ts
	}
	return m.at
}

// add records m; the ring grows while its oldest record counted within
// span (ns) of m.
func (r *msgRing) add(m msgRecord, span int64) {
	if r.n == len(r.buf) && (len(r.buf) == 0 || (r.buf[r.next].counted(span) >= m.counted(span)-span && len(r.buf) < msgRingMax)) {
		size := max(msgRingMin, 2*len(r.buf))
		nb := make([]msgRecord, size)
		// Oldest first, so that next wraps to the oldest again.
		copied := copy(nb, r.buf[r.next:])
		copy(nb[copied:], r.buf[:r.next])
		r.buf, r.next = nb, r.n
	}
	r.buf[r.next] = m
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

// each calls f on the records, newest first, until f returns false.
func (r *msgRing) each(f func(*msgRecord) bool) {
	for i := 1; i <= r.n; i++ {
		if !f(&r.buf[(r.next-i+len(r.buf))%len(r.buf)]) {
			return
		}
	}
}

// msgHash is the 64-bit hash ids and authors are remembered by; 0 is
// kept for none.
func (e *Engine) msgHash(s string) uint64 {
	if s == "" {
		return 0
	}
	h := maphash.String(e.seed, s)
	if h == 0 {
		h = 1
	}
	return h
}

// recordLocked remembers a textual item the rules counted (rules: the
// mask of rules that matched it; kw: the keyword signals it matched).
func (e *Engine) recordLocked(ent *engineKeyEntry, it *item.Item, id uint64, ts, now time.Time, rules, kw uint64) {
	m := msgRecord{id: id, author: e.msgHash(it.AuthorID), ts: ts.UnixNano(), at: now.UnixNano(), rules: rules, kw: kw,
		label: it.Score.Label, question: it.Score.Question, scored: it.Score.Scored}
	ent.msgs.add(m, int64(e.retractSpan))
}

// keywordMask is the set of keyword_burst signals whose group or
// category sc matched.
func (e *Engine) keywordMask(sc *item.Score) uint64 {
	var kw uint64
	if len(sc.Groups) == 0 {
		return 0
	}
	for _, r := range e.rules {
		for _, sig := range r.signals {
			kw |= sig.keywordBit(sc)
		}
	}
	return kw
}

// changeLocked applies an edit or delete (it.Change) of a message the
// engine may have counted.
func (e *Engine) changeLocked(it *item.Item, now time.Time) {
	id := e.msgHash(it.ID)
	if id == 0 || e.retractSpan == 0 {
		e.metrics.changesNotHeld.Inc()
		return
	}
	// Ids are unique within a source; the change's room (the stream it
	// came on) is only where to look first, then the source's other rooms.
	var found *msgRecord
	var fent *engineKeyEntry
	find := func(ent *engineKeyEntry) bool {
		ent.msgs.each(func(m *msgRecord) bool {
			if m.id == id {
				found = m
			}
			return found == nil
		})
		if found != nil {
			fent = ent
		}
		return found != nil
	}
	first := e.keys[engineKey{it.Source, it.Room}]
	if first == nil || !find(first) {
		for _, ent := range e.rooms[it.Source] {
			if ent != first && find(ent) {
				break
			}
		}
	}
	if found == nil {
		e.metrics.changesNotHeld.Inc()
		return
	}
	e.retractLocked(fent, found)
	if it.Change == item.ChangeEdit {
		e.recountLocked(fent, found, it)
		e.metrics.changesEdited.Inc()
		return
	}
	found.id = 0 // gone: a second delete finds nothing
	e.metrics.changesDeleted.Inc()
}

// moderateLocked applies a moderation action (item.MetricModeration) in
// ent's room: a deleted message, or a banned or timed-out user's messages.
func (e *Engine) moderateLocked(ent *engineKeyEntry, it *item.Item) {
	if e.retractSpan == 0 {
		return
	}
	switch it.Labels["action"] {
	case "delete":
		id := e.msgHash(it.Labels["target_msg_id"])
		if id == 0 {
			return
		}
		done := false
		ent.msgs.each(func(m *msgRecord) bool {
			if m.id == id {
				e.retractLocked(ent, m)
				m.id, done = 0, true
				return false
			}
			return true
		})
		if done {
			e.metrics.changesDeleted.Inc()
		} else {
			e.metrics.changesNotHeld.Inc()
		}
	case "ban", "timeout":
		author := e.msgHash(it.Labels["target_user_id"])
		if author == 0 {
			return
		}
		ent.msgs.each(func(m *msgRecord) bool {
			if m.author == author && m.id != 0 {
				e.retractLocked(ent, m)
				m.id = 0
				e.metrics.changesDeleted.Inc()
			}
			return true
		})
	}
}

// retractLocked takes m's contribution out of every text signal that
// counted it.
func (e *Engine) retractLocked(ent *engineKeyEntry, m *msgRecord) {
	e.eachTextSignal(ent, m, func(sig *ruleSignal, s *signalSeries, ts time.Time) {
		neg, hit := sig.recordCounts(m)
		sig.count(s, ts, s.ring.held(ts), m.scored, neg, hit, -1)
		s.samples.drop(m.id)
	})
}

// recountLocked counts the new version it of m where m was counted, and
// remembers it as m.
func (e *Engine) recountLocked(ent *engineKeyEntry, m *msgRecord, it *item.Item) {
	m.label, m.question, m.scored = it.Score.Label, it.Score.Question, it.Score.Scored
	m.kw = e.keywordMask(&it.Score)
	e.eachTextSignal(ent, m, func(sig *ruleSignal, s *signalSeries, ts time.Time) {
		neg, hit := sig.recordCounts(m)
		sig.count(s, ts, s.ring.at(ts), m.scored, neg, hit, 1)
		if (sig.kind == KindNegativeRatio && m.scored && neg) || (sig.kind == KindKeywordBurst && hit) {
			sm := ruleSample(it, ts)
			if it.TS.IsZero() {
				sm.TS = time.Unix(0, m.ts)
			}
			s.samples.add(sm, ts, m.id)
		}
	})
}

// eachTextSignal calls f for every negative_ratio and keyword_burst
// signal of the rules that counted m, with the time m counted at there.
func (e *Engine) eachTextSignal(ent *engineKeyEntry, m *msgRecord, f func(*ruleSignal, *signalSeries, time.Time)) {
	for ri, r := range e.rules {
		if ri >= 64 || m.rules&(1<<ri) == 0 {
			continue
		}
		for _, sig := range r.signals {
			if sig.kind != KindNegativeRatio && sig.kind != KindKeywordBurst {
				continue
			}
			s := ent.series[sig.idx]
			if s == nil {
				continue
			}
			// Where observe counted it: at its own time, or on arrival
			// when that was older than the window.
			ts := m.ts
			if sig.window > 0 && ts < m.at-int64(sig.window) {
				ts = m.at
			}
			f(sig, s, time.Unix(0, ts))
		}
	}
}

// recordCounts is what m counted as in sig: negative (negative_ratio),
// a keyword hit (keyword_burst).
func (sig *ruleSignal) recordCounts(m *msgRecord) (neg, hit bool) {
	neg = m.label == item.Negative
	if sig.kind == KindKeywordBurst {
		hit = sig.kwBit >= 0 && m.kw&(1<<sig.kwBit) != 0
		if hit && sig.complaintsOnly {
			hit = complains(m.label, m.question)
		}
	}
	return neg, hit
}
