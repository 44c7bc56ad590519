package scenario

import (
	"math"
	"strconv"
	"time"
)

// A room's audience per chat message per second: a room chatting at 50
// messages a second has about 7,500 viewers.
const viewersPerMsg = 150

// calmMix is an ordinary room's mix with the given shares of grumbles and
// harmless refund questions; the other classes split the rest.
func calmMix(grumble, refund float64) mix {
	rest := 1 - grumble - refund
	return mix{
		chatter:  rest * 0.36,
		greeting: rest * 0.08,
		question: rest * 0.18,
		praise:   rest * 0.20,
		emote:    rest * 0.18,
		grumble:  grumble,
		refund:   refund,
	}
}

// ramp is v0 before t0, v1 after t1 and linear in between.
func ramp(t, t0, t1, v0, v1 float64) float64 {
	switch {
	case t <= t0:
		return v0
	case t >= t1:
		return v1
	}
	return v0 + (v1-v0)*(t-t0)/(t1-t0)
}

func room(rate float64, m mix) script {
	return script{baseRate: rate, baseViewers: rate * viewersPerMsg, mix: m, onset: -1, badTo: -1}
}

// Library returns every scenario, in a stable order. Each call builds new
// values: callers may change them.
func Library() []*Scenario {
	var lib []*Scenario
	add := func(s *Scenario) { lib = append(lib, s) }

	for _, c := range []struct {
		name            string
		rate            float64
		grumble, refund float64
		seed            uint64
	}{
		{"calm-20", 20, 0.12, 0.003, 20},
		{"calm-50", 50, 0.15, 0.004, 50},
		{"calm-200", 200, 0.18, 0.003, 200},
	} {
		add(&Scenario{Name: c.name, Kind: KindCalm, Target: TargetSilent, Duration: 30 * time.Minute, Seed: c.seed,
			Description: "ordinary evening stream, " + formatRate(c.rate) + " msgs/s, " + formatPct(c.grumble) +
				" grumbling, " + formatPct(c.refund) + " refund questions",
			script: room(c.rate, calmMix(c.grumble, c.refund))})
	}

	start := room(50, calmMix(0.12, 0.003))
	start.audience = func(t float64) float64 {
		// Slow at first, while the platform starts to recommend the
		// room, then quicker, then levelling off.
		x := ramp(t, 0, 360, 0, 1)
		return x * x * (3 - 2*x)
	}
	start.greetings = func(t float64) float64 { return 0.06 + 0.5*math.Exp(-t/120) }
	add(&Scenario{Name: "stream-start", Kind: KindCalm, Target: TargetSilent, Duration: 20 * time.Minute, Seed: 101,
		Description: "the stream opens: audience and chat ramp up from zero over 6 min, half of the first messages greetings",
		script:      start})

	give := room(50, calmMix(0.12, 0.003))
	give.audience = func(t float64) float64 {
		if t < 600 {
			return ramp(t, 420, 480, 1, 1.3)
		}
		return ramp(t, 600, 690, 1.3, 1)
	}
	give.floods = []flood{{from: 480, to: 600, rate: 300, label: LabelGiveaway}}
	add(&Scenario{Name: "giveaway-flood", Kind: KindCalm, Target: TargetSilent, Duration: 20 * time.Minute, Seed: 102,
		Description: "a giveaway at 8 min: 2 min of 300 identical 扣1/抽奖 lines a second; 30% more viewers come for it and leave after the draw",
		script:      give})

	bots := room(50, calmMix(0.12, 0.003))
	bots.floods = []flood{{from: 360, to: 960, rate: 3, label: LabelAd, authors: 3}}
	add(&Scenario{Name: "bot-spam", Kind: KindOther, Target: TargetYellowAtMost, Duration: 20 * time.Minute, Seed: 103,
		Description: "3 bot accounts post one ad line word for word, 3 a second from 6 to 16 min",
		script:      bots})

	for i, c := range []struct {
		name   string
		crisis Crisis
		what   string
	}{
		{"crisis-fake-goods", CrisisFakeGoods, "fake goods (假货, 不是正品, 验货是假的)"},
		{"crisis-quality", CrisisQuality, "quality (质量差, 一洗就掉色, 用了过敏)"},
		{"crisis-service", CrisisService, "customer service (客服不理人, 退款一直不处理, 我要投诉)"},
		{"crisis-host-remark", CrisisHostRemark, "a remark of the host's (主播说话太难听, 道歉, 脱粉了)"},
	} {
		sc := room(50, calmMix(0.12, 0.003))
		sc.crisis = c.crisis
		sc.complaints = func(t float64) float64 { return ramp(t, 600, 780, 0.02, 0.40) }
		sc.volume = func(t float64) float64 { return ramp(t, 600, 780, 1, 1.4) }
		sc.audience = func(t float64) float64 { return ramp(t, 600, 1200, 1, 0.9) }
		sc.onset = 600
		add(&Scenario{Name: c.name, Kind: KindCrisis, Target: TargetCrisisRed, Duration: 20 * time.Minute, Seed: 200 + uint64(i),
			Description: "complaints about " + c.what + " rise from 2% to 40% of chat over 3 min from 10 min; chat grows 40%",
			script:      sc})
	}

	halved := room(50, calmMix(0.12, 0.003))
	halved.audience = func(t float64) float64 {
		if t < 1260 {
			return ramp(t, 600, 660, 1, 0.5)
		}
		return ramp(t, 1260, 1320, 0.5, 1)
	}
	halved.onset, halved.badFrom, halved.badTo, halved.recovers = 600, 600, 1260, true
	add(&Scenario{Name: "audience-halved", Kind: KindKPI, Target: TargetAudienceDrop, Duration: 32 * time.Minute, Seed: 301,
		Description: "viewers halve within 1 min at 10 min, stay down 10 min, recover over 1 min; chat follows the audience",
		script:      halved})

	bleed := room(50, calmMix(0.12, 0.003))
	bleed.audience = func(t float64) float64 { return ramp(t, 300, 2100, 1, 0.7) }
	bleed.onset, bleed.badFrom, bleed.badTo = 300, 300, 2400
	add(&Scenario{Name: "audience-bleed", Kind: KindKPI, Target: TargetBleed, Duration: 40 * time.Minute, Seed: 302,
		Description: "viewers bleed 30% over 30 min from 5 min and stay down; chat follows",
		script:      bleed})

	end := room(50, calmMix(0.12, 0.003))
	end.audience = func(t float64) float64 {
		x := ramp(t, 840, 1080, 0, 1)
		return 1 - x*x
	}
	end.farewells = func(t float64) float64 { return ramp(t, 780, 900, 0, 0.5) }
	end.onset = 840
	add(&Scenario{Name: "stream-end", Kind: KindOther, Target: TargetNone, Duration: 20 * time.Minute, Seed: 401,
		Description: "the host says goodbye at 13 min; audience and chat fall to zero by 18 min; viewers report 0 until 20 min",
		script:      end})

	// Two streams of one room, an hour apart, with a restart of the
	// daemon in between: the second is judged from its first minutes
	// against what the first looked like at the same minute (the rules'
	// stage history, carried over in the room profiles), before the room
	// has a recent normal of its own.
	const second = 3600 // the second stream starts after 40 min off air
	twoStreams := func() script {
		sc := room(50, calmMix(0.12, 0.003))
		sc.offFrom, sc.offTo, sc.restart = 1200, second, true
		sc.greetings = func(t float64) float64 {
			if t >= second {
				t -= second
			}
			return 0.06 + 0.5*math.Exp(-t/120)
		}
		return sc
	}
	add(&Scenario{Name: "two-streams", Kind: KindCalm, Target: TargetSilent, Duration: 70 * time.Minute, Seed: 501,
		Description: "a 20 min stream, 40 min off air (the daemon restarts meanwhile), a second stream of 10 min; both open with a burst of greetings",
		script:      twoStreams()})
	early := twoStreams()
	early.crisis = CrisisQuality
	early.complaints = func(t float64) float64 { return ramp(t, second+60, second+240, 0.02, 0.40) }
	early.volume = func(t float64) float64 { return ramp(t, second+60, second+240, 1, 1.4) }
	early.onset = second + 60
	add(&Scenario{Name: "second-stream-crisis", Kind: KindCrisis, Target: TargetCrisisRed, Duration: 70 * time.Minute, Seed: 502,
		Description: "as two-streams, with complaints about quality rising from 2% to 40% over 3 min from the second stream's 2nd minute, before it has a recent normal",
		script:      early})

	// The daemon restarts in the middle of a room's first stream, down for
	// a minute: the recent history (the 15 minutes before now) comes back
	// from the saved room profiles, the minute it was down is a gap, not
	// silence, and the stream is judged on as before. A room's first
	// stream has no earlier streams: without its recent history it would
	// have no normal at all until min_history after the restart. The
	// kill -9 variants take over profiles saved a minute before the stop
	// (the daemon saves every minute).
	const downAt, downFor = 540, 60
	restartMid := func(sc script, stale float64) script {
		sc.downAt, sc.downFor, sc.stale = downAt, downFor, stale
		return sc
	}
	add(&Scenario{Name: "restart-calm", Kind: KindCalm, Target: TargetSilent, Duration: 30 * time.Minute, Seed: 601,
		Description: "calm-50, the daemon stopped at 9 min and back at 10 min (clean shutdown)",
		script:      restartMid(room(50, calmMix(0.15, 0.004)), 0)})
	add(&Scenario{Name: "restart-calm-kill9", Kind: KindCalm, Target: TargetSilent, Duration: 30 * time.Minute, Seed: 602,
		Description: "calm-50, the daemon killed at 9 min (profiles saved a minute before) and back at 10 min",
		script:      restartMid(room(50, calmMix(0.15, 0.004)), 60)})
	for i, stale := range []float64{0, 60} {
		sc := room(50, calmMix(0.12, 0.003))
		sc.crisis = CrisisQuality
		sc.complaints = func(t float64) float64 { return ramp(t, 660, 840, 0.02, 0.40) }
		sc.volume = func(t float64) float64 { return ramp(t, 660, 840, 1, 1.4) }
		sc.audience = func(t float64) float64 { return ramp(t, 660, 1260, 1, 0.9) }
		sc.onset = 660
		name, how := "restart-crisis", "stopped at 9 min (clean shutdown)"
		if stale > 0 {
			name, how = "restart-crisis-kill9", "killed at 9 min (profiles saved a minute before)"
		}
		add(&Scenario{Name: name, Kind: KindCrisis, Target: TargetCrisisRed, Duration: 20 * time.Minute, Seed: 611 + uint64(i),
			Description: "the daemon " + how + ", back at 10 min; complaints about quality rise from 2% to 40% over 3 min from 11 min",
			script:      restartMid(sc, stale)})
	}
	for i, stale := range []float64{0, 60} {
		sc := room(50, calmMix(0.12, 0.003))
		sc.audience = func(t float64) float64 {
			if t < 1260 {
				return ramp(t, 300, 360, 1, 0.5)
			}
			return ramp(t, 1260, 1320, 0.5, 1)
		}
		sc.onset, sc.badFrom, sc.badTo, sc.recovers = 300, 300, 1260, true
		name, how := "restart-audience-halved", "stopped at 9 min (clean shutdown)"
		if stale > 0 {
			name, how = "restart-audience-halved-kill9", "killed at 9 min (profiles saved a minute before)"
		}
		add(&Scenario{Name: name, Kind: KindKPI, Target: TargetAudienceDrop, Duration: 32 * time.Minute, Seed: 621 + uint64(i),
			Description: "viewers halve within 1 min at 5 min and stay down until 21 min; the daemon " + how + " and back at 10 min, while the alert fires",
			script:      restartMid(sc, stale)})
	}
	// A giveaway flood half a minute after the restart: the shipped rules
	// stay quiet (a flood of 扣1 is no crisis); a volume_spike or anomaly
	// rule judges it against the room's volume saved before the stop,
	// not against nothing.
	for i, stale := range []float64{0, 60} {
		sc := room(50, calmMix(0.12, 0.003))
		sc.audience = func(t float64) float64 {
			if t < 750 {
				return ramp(t, 570, 630, 1, 1.3)
			}
			return ramp(t, 750, 840, 1.3, 1)
		}
		sc.floods = []flood{{from: 630, to: 750, rate: 300, label: LabelGiveaway}}
		name, how := "restart-flood", "stopped at 9 min (clean shutdown)"
		if stale > 0 {
			name, how = "restart-flood-kill9", "killed at 9 min (profiles saved a minute before)"
		}
		add(&Scenario{Name: name, Kind: KindCalm, Target: TargetSilent, Duration: 20 * time.Minute, Seed: 631 + uint64(i),
			Description: "the daemon " + how + ", back at 10 min; a giveaway at 10.5 min: 2 min of 300 identical 扣1/抽奖 lines a second",
			script:      restartMid(sc, stale)})
	}

	return lib
}

// Lookup finds a scenario of the library by name.
func Lookup(name string) (*Scenario, bool) {
	for _, s := range Library() {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

// Names lists the library's scenario names in order.
func Names() []string {
	var out []string
	for _, s := range Library() {
		out = append(out, s.Name)
	}
	return out
}

func formatRate(r float64) string { return strconv.FormatFloat(r, 'f', -1, 64) }

func formatPct(p float64) string {
	return strconv.FormatFloat(math.Round(1000*p)/10, 'f', -1, 64) + "%"
}
