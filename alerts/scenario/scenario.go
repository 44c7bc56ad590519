// Package scenario is a library of scripted live-room streams — calm
// rooms, a stream starting and ending, a giveaway flood, bot spam,
// complaint storms, an audience leaving fast or slowly — that Run replays
// through the real alert engine with a real config and the real
// classifier, to measure what an ops team would feel: pages per hour on
// calm streams, seconds from a crisis becoming visible to a red alert, how
// long a KPI alert holds while the metric stays bad.
//
// A scenario is deterministic: its generator is seeded, so every run of
// the same scenario yields the same items. The generator labels each
// message with the pool it came from (its ground truth); those labels
// decide when a crisis became visible, and never reach the classifier.
package scenario

import (
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"lookout/alerts"
	"lookout/item"
)

// Kind groups scenarios by what they test.
type Kind string

const (
	KindCalm   Kind = "calm"   // nothing is wrong: every page is a false alarm
	KindCrisis Kind = "crisis" // complaints rise: how soon does red come
	KindKPI    Kind = "kpi"    // the audience leaves: how soon, and for how long
	KindOther  Kind = "other"
)

// Label is the ground truth of one message: the pool it came from.
type Label uint8

const (
	LabelChatter Label = iota
	LabelGreeting
	LabelQuestion
	LabelRefundQuestion // a harmless after-sales question (怎么申请退款)
	LabelPraise
	LabelEmote
	LabelGrumble   // everyday grumbling (太贵了, 卡了)
	LabelComplaint // a complaint of the scenario's crisis
	LabelGiveaway  // the giveaway flood (扣1, 抽奖)
	LabelAd        // a spam bot's ad
	LabelFarewell
	labelCount
)

// LabelNone is what Items yields with a KPI sample: no message, no label.
const LabelNone = labelCount

var labelNames = [labelCount]string{"chatter", "greeting", "question", "refund_question", "praise", "emote",
	"grumble", "complaint", "giveaway", "ad", "farewell"}

func (l Label) String() string {
	if l < labelCount {
		return labelNames[l]
	}
	return "label(" + strconv.Itoa(int(l)) + ")"
}

// Crisis is what a crisis scenario's complaints are about.
type Crisis string

const (
	CrisisNone       Crisis = ""
	CrisisFakeGoods  Crisis = "fake_goods"  // 假货, 不是正品
	CrisisQuality    Crisis = "quality"     // 质量差, 一洗就掉色, 过敏
	CrisisService    Crisis = "service"     // 客服不理人, 退款不处理, 投诉
	CrisisHostRemark Crisis = "host_remark" // the host said something offensive
)

func (c Crisis) pool() []string {
	switch c {
	case CrisisFakeGoods:
		return phraseFakeGoods
	case CrisisQuality:
		return phraseQuality
	case CrisisService:
		return phraseService
	case CrisisHostRemark:
		return phraseHostRemark
	}
	return phraseGrumbles
}

// Target is what a scenario is expected to make the rules do; Check holds
// a Result to it.
type Target int

const (
	TargetNone         Target = iota // report what fired, expect nothing
	TargetSilent                     // no notification at all
	TargetYellowAtMost               // at most yellow notifications, no red
	TargetCrisisRed                  // red soon after the crisis becomes visible
	TargetAudienceDrop               // red soon after the drop, held until recovery
	TargetBleed                      // at least yellow during the decline
)

func (t Target) String() string {
	switch t {
	case TargetSilent:
		return "silent"
	case TargetYellowAtMost:
		return "yellow at most"
	case TargetCrisisRed:
		return fmt.Sprintf("red ≤ %s after visible", TargetCrisisToRed)
	case TargetAudienceDrop:
		return fmt.Sprintf("red ≤ %s, held ≥ %.0f%%", TargetDropToRed, 100*TargetDropHold)
	case TargetBleed:
		return "yellow or red"
	}
	return "report only"
}

// Start is when every scenario's stream starts: an evening broadcast.
var Start = time.Date(2025, time.March, 14, 20, 0, 0, 0, time.FixedZone("CST", 8*3600))

// Item attribution of generated items; Run may attribute them to a
// config's live source instead (see Run).
const (
	Source   = "scenario"
	Platform = "douyin"
	Room     = "room-1"
)

// Visibility of a crisis: the first second at whose end at least
// VisibleShare of the chat messages of the trailing VisibleWindow are
// complaints (by ground truth), with at least visibleMinMessages in it.
const (
	VisibleShare       = 0.05
	VisibleWindow      = 30 * time.Second
	visibleMinMessages = 20
)

// MetricInterval is how often the room's KPIs are sampled.
const MetricInterval = 5 * time.Second

// Scenario is one scripted stream of one room.
type Scenario struct {
	Name        string
	Kind        Kind
	Description string
	Duration    time.Duration
	Seed        uint64
	Target      Target
	script      script
}

// script is what the generator plays. Times are seconds from the start.
type script struct {
	baseRate    float64                 // chat messages per second at full audience
	baseViewers float64                 // audience at 1.0
	audience    func(t float64) float64 // audience at t as a fraction of baseViewers
	// volume multiplies the chat rate on top of the audience (a crisis
	// makes people talk); nil → 1.
	volume func(t float64) float64
	mix    mix
	// greetings is the greeting share at t, replacing mix.greeting; nil →
	// mix.greeting throughout.
	greetings func(t float64) float64
	crisis    Crisis
	// complaints is the share of complaints among organic messages at t;
	// nil → none.
	complaints func(t float64) float64
	// farewells is the farewell share at t; nil → none.
	farewells func(t float64) float64
	floods    []flood
	// chatUntil and metricsUntil end chat and KPI samples early (0 → the
	// whole duration).
	chatUntil, metricsUntil float64
	// offFrom, offTo bound an interval off air between two streams of the
	// room (none when offTo ≤ offFrom): no chat and no KPI samples, a
	// live_status of 0 at its start and of 1 at its end.
	offFrom, offTo float64
	// restart, with an off-air interval, restarts the engine halfway
	// through it (see alerts.Backtest): the second stream is judged by an
	// engine that knows the first only from its saved room profiles.
	restart bool
	// downAt, downFor restart the daemon in the middle of a stream
	// (none when downFor is 0): it stops at downAt and is back downFor
	// later, missing the chat and KPI samples in between; the new engine
	// takes over the room profiles saved stale seconds before the stop (0:
	// at the stop, a clean shutdown; up to the save interval after a
	// kill -9).
	downAt, downFor, stale float64

	// Ground truth that the script knows by construction: when the
	// crisis or the KPI trouble starts, and the interval the KPI is bad.
	onset          float64 // -1: none
	badFrom, badTo float64 // badTo < 0: no bad interval; badTo ≥ duration: bad to the end
	recovers       bool    // the KPI comes back within the scenario
}

// mix is the weights of the organic message classes (any scale).
type mix struct {
	chatter, greeting, question, refund, praise, emote, grumble float64
}

// flood is a burst of repeated lines on top of the organic chat.
type flood struct {
	from, to float64 // seconds
	rate     float64 // lines per second
	label    Label   // LabelGiveaway or LabelAd
	authors  int     // distinct authors (0: the audience)
}

// Truth is a scenario's ground truth. Offsets are from the start.
type Truth struct {
	// Onset is when the trouble starts: complaints begin to rise, the
	// audience begins to fall. -1 when the scenario has none.
	Onset time.Duration `json:"onset"`
	// Visible is when a crisis becomes visible (see VisibleShare); -1 when
	// it never does or the scenario is not a crisis.
	Visible time.Duration `json:"visible"`
	// BadFrom, BadTo bound the interval during which the KPI is bad (KPI
	// scenarios; BadTo is the end of the stream when it never recovers).
	// Both -1 when there is none.
	BadFrom time.Duration `json:"bad_from"`
	BadTo   time.Duration `json:"bad_to"`
	// Recovers says the KPI comes back before the stream ends.
	Recovers bool `json:"recovers"`
	// Messages counts chat messages by label; Metrics counts KPI samples.
	Messages map[string]int `json:"messages"`
	Metrics  int            `json:"metrics"`
}

// Chat is the number of chat messages.
func (t *Truth) Chat() int {
	n := 0
	for _, v := range t.Messages {
		n += v
	}
	return n
}

// Truncate returns a copy of s that stops after d (when d is shorter).
// It suits the steady calm rooms, whose script is the same from start to
// end; a scenario whose events happen after d loses them.
func (s *Scenario) Truncate(d time.Duration) *Scenario {
	c := *s
	if d > 0 && d < c.Duration {
		c.Duration = d
	}
	return &c
}

// Reseed returns a copy of s played with another seed: the same script,
// other messages, authors and noise. k = 0 is s itself; the copy's name
// carries "#k" so reports tell the runs apart.
func (s *Scenario) Reseed(k int) *Scenario {
	c := *s
	if k != 0 {
		c.Seed = s.Seed + uint64(k)*0x9e3779b97f4a7c15
		c.Name = s.Name + "#" + strconv.Itoa(k)
	}
	return &c
}

// restarts is when the engine restarts during the scenario.
func (s *Scenario) restarts() []alerts.BacktestRestart {
	sc := &s.script
	var out []alerts.BacktestRestart
	if sc.restart && sc.offTo > sc.offFrom {
		out = append(out, alerts.BacktestRestart{At: Start.Add(seconds((sc.offFrom + sc.offTo) / 2))})
	}
	if sc.downFor > 0 {
		out = append(out, alerts.BacktestRestart{At: Start.Add(seconds(sc.downAt)), Down: seconds(sc.downFor), Stale: seconds(sc.stale)})
	}
	slices.SortFunc(out, func(a, b alerts.BacktestRestart) int { return a.At.Compare(b.At) })
	return out
}

// Items generates the scenario's items in time order with each one's
// ground-truth label (LabelNone for KPI samples). The item is reused
// between iterations: copy what you keep. Its Score is left for the
// caller to fill.
func (s *Scenario) Items() iter.Seq2[*item.Item, Label] {
	return func(yield func(*item.Item, Label) bool) {
		g := newGenerator(s)
		g.run(yield)
	}
}

// Truth generates the scenario once (without scoring it) and returns its
// ground truth.
func (s *Scenario) Truth() Truth {
	tr := newTruthTracker(s)
	for it, l := range s.Items() {
		tr.add(it, l)
	}
	return tr.truth()
}

// generator plays a script.
type generator struct {
	s       *Scenario
	sc      *script
	r       *rand.Rand
	comp    composer
	it      item.Item
	seq     int
	likes   float64
	authors []string
	phase   [3]float64
}

// authorPool is how many distinct author names a room draws from.
const authorPool = 4000

func newGenerator(s *Scenario) *generator {
	r := rand.New(rand.NewPCG(s.Seed, 0x5ce7a110))
	g := &generator{s: s, sc: &s.script, r: r}
	g.comp.r = r
	g.authors = make([]string, authorPool)
	for i := range g.authors {
		g.authors[i] = authorName(i)
	}
	for i := range g.phase {
		g.phase[i] = r.Float64() * 2 * math.Pi
	}
	g.it = item.Item{Source: Source, Platform: Platform, Room: Room}
	return g
}

// wander is the room's slow, harmless drift: a few percent either way.
func (g *generator) wander(t float64, amp float64) float64 {
	return 1 + amp*(0.6*math.Sin(2*math.Pi*t/173+g.phase[0])+0.3*math.Sin(2*math.Pi*t/61+g.phase[1])+0.1*math.Sin(2*math.Pi*t/23+g.phase[2]))
}

func (g *generator) audience(t float64) float64 {
	a := 1.0
	if g.sc.audience != nil {
		a = g.sc.audience(t)
	}
	return math.Max(a, 0)
}

// poisson draws a count with mean m.
func (g *generator) poisson(m float64) int {
	if m <= 0 {
		return 0
	}
	if m < 30 {
		l, k, p := math.Exp(-m), 0, 1.0
		for {
			p *= g.r.Float64()
			if p <= l {
				return k
			}
			k++
		}
	}
	n := int(math.Round(m + math.Sqrt(m)*g.r.NormFloat64()))
	return max(n, 0)
}

func (g *generator) run(yield func(*item.Item, Label) bool) {
	sc := g.sc
	dur := g.s.Duration.Seconds()
	chatEnd, metricEnd := dur, dur
	if sc.chatUntil > 0 {
		chatEnd = min(chatEnd, sc.chatUntil)
	}
	if sc.metricsUntil > 0 {
		metricEnd = min(metricEnd, sc.metricsUntil)
	}
	step := MetricInterval.Seconds()
	for sec := 0; float64(sec) < dur; sec++ {
		t := float64(sec)
		base := Start.Add(time.Duration(sec) * time.Second)
		aud := g.audience(t)
		if sc.offTo > sc.offFrom {
			if t == sc.offFrom || t == sc.offTo {
				live := 0.0
				if t == sc.offTo {
					live = 1
				}
				if !g.emitMetric(yield, base, item.MetricLiveStatus, live) {
					return
				}
			}
			if t >= sc.offFrom && t < sc.offTo {
				continue
			}
		}
		if t < metricEnd && math.Mod(t, step) == 0 {
			viewers := math.Round(sc.baseViewers * aud * g.wander(t, 0.03) * (1 + 0.01*g.r.NormFloat64()))
			if !g.emitMetric(yield, base, item.MetricViewers, math.Max(viewers, 0)) {
				return
			}
			g.likes += sc.baseViewers * aud * step * 0.02 * (0.5 + g.r.Float64())
			if !g.emitMetric(yield, base, item.MetricLikes, math.Round(g.likes)) {
				return
			}
		}
		if t >= chatEnd {
			continue
		}
		organic := sc.baseRate * aud * g.wander(t, 0.08)
		if sc.volume != nil {
			organic *= sc.volume(t)
		}
		var floodRate float64
		for _, f := range sc.floods {
			if t >= f.from && t < f.to {
				floodRate += f.rate
			}
		}
		n := g.poisson(organic + floodRate)
		for i := range n {
			// Evenly spread over the second, with jitter: in time order.
			off := (float64(i) + g.r.Float64()) / float64(n)
			ts := base.Add(time.Duration(off * float64(time.Second)))
			var l Label
			author := -1
			if floodRate > 0 && g.r.Float64()*(organic+floodRate) < floodRate {
				f := g.pickFlood(t, floodRate)
				l = f.label
				if f.authors > 0 {
					author = authorPool - 1 - g.r.IntN(f.authors) // a few fixed accounts
				}
			} else {
				l = g.organicLabel(t)
			}
			if author < 0 {
				author = g.pickAuthor(aud)
			}
			g.seq++
			g.it.Kind = item.KindChat
			g.it.ID = g.s.Name + "/" + strconv.Itoa(g.seq)
			g.it.AuthorID = "u" + strconv.Itoa(author)
			g.it.Author = g.authors[author]
			g.it.Text = g.comp.message(l, sc.crisis)
			g.it.TS = ts
			g.it.Metric, g.it.Value = "", 0
			if !yield(&g.it, l) {
				return
			}
		}
	}
}

func (g *generator) emitMetric(yield func(*item.Item, Label) bool, ts time.Time, metric string, v float64) bool {
	g.seq++
	g.it.Kind = item.KindMetric
	g.it.ID = g.s.Name + "/" + strconv.Itoa(g.seq)
	g.it.AuthorID, g.it.Author, g.it.Text = "", "", ""
	g.it.TS = ts
	g.it.Metric, g.it.Value = metric, v
	return yield(&g.it, LabelNone)
}

func (g *generator) pickFlood(t, total float64) *flood {
	x := g.r.Float64() * total
	var last *flood
	for i := range g.sc.floods {
		f := &g.sc.floods[i]
		if t < f.from || t >= f.to {
			continue
		}
		last = f
		if x < f.rate {
			return f
		}
		x -= f.rate
	}
	return last
}

// pickAuthor draws a chatting viewer: a few regulars talk a lot, the rest
// of the audience now and then. The audience pool shrinks with the room.
func (g *generator) pickAuthor(aud float64) int {
	if g.r.IntN(5) == 0 {
		return g.r.IntN(60) // regulars
	}
	n := int(float64(authorPool-100) * math.Min(math.Max(aud, 0.05), 1))
	return 60 + g.r.IntN(max(n-60, 1))
}

func (g *generator) organicLabel(t float64) Label {
	sc := g.sc
	if sc.complaints != nil {
		if p := sc.complaints(t); p > 0 && g.r.Float64() < p {
			return LabelComplaint
		}
	}
	if sc.farewells != nil {
		if p := sc.farewells(t); p > 0 && g.r.Float64() < p {
			return LabelFarewell
		}
	}
	m := sc.mix
	if sc.greetings != nil {
		// The greeting share replaces the mix's own.
		p := math.Min(math.Max(sc.greetings(t), 0), 0.95)
		if g.r.Float64() < p {
			return LabelGreeting
		}
		m.greeting = 0
	}
	w := [...]struct {
		w float64
		l Label
	}{
		{m.chatter, LabelChatter}, {m.greeting, LabelGreeting}, {m.question, LabelQuestion},
		{m.refund, LabelRefundQuestion}, {m.praise, LabelPraise}, {m.emote, LabelEmote}, {m.grumble, LabelGrumble},
	}
	var total float64
	for _, e := range w {
		total += e.w
	}
	x := g.r.Float64() * total
	for _, e := range w {
		if x < e.w {
			return e.l
		}
		x -= e.w
	}
	return LabelChatter
}

// truthTracker computes a scenario's ground truth from the labelled
// stream, one second at a time.
type truthTracker struct {
	s       *Scenario
	counts  [labelCount]int
	metrics int
	sec     int64 // second being counted
	secAll  int
	secBad  int
	ringAll []int // per-second chat counts of the trailing window
	ringBad []int
	sumAll  int
	sumBad  int
	visible time.Duration
	crisis  bool
	started bool
	winSecs int
}

func newTruthTracker(s *Scenario) *truthTracker {
	n := int(VisibleWindow / time.Second)
	return &truthTracker{s: s, visible: -1, crisis: s.script.crisis != CrisisNone,
		ringAll: make([]int, n), ringBad: make([]int, n), winSecs: n}
}

func (tr *truthTracker) add(it *item.Item, l Label) {
	if l >= labelCount {
		tr.metrics++
		return
	}
	tr.counts[l]++
	if !tr.crisis {
		return
	}
	sec := it.TS.Sub(Start).Milliseconds() / 1000
	if !tr.started {
		tr.sec, tr.started = sec, true
	}
	for tr.sec < sec {
		tr.closeSecond()
	}
	tr.secAll++
	if l == LabelComplaint {
		tr.secBad++
	}
}

// closeSecond ends the current second: it joins the trailing window,
// which is then judged at the second's end.
func (tr *truthTracker) closeSecond() {
	i := int(tr.sec % int64(tr.winSecs))
	tr.sumAll += tr.secAll - tr.ringAll[i]
	tr.sumBad += tr.secBad - tr.ringBad[i]
	tr.ringAll[i], tr.ringBad[i] = tr.secAll, tr.secBad
	tr.secAll, tr.secBad = 0, 0
	// Judged only on a full trailing window, from the onset on: in the
	// first seconds of a stream, or in the quiet before the crisis, a
	// few of the room's usual complaints can be 5 % of a thin window.
	full := tr.sec+1 >= int64(tr.winSecs) && float64(tr.sec+1) >= tr.s.script.onset
	if tr.visible < 0 && full && tr.sumAll >= visibleMinMessages && float64(tr.sumBad) >= VisibleShare*float64(tr.sumAll) {
		tr.visible = time.Duration(tr.sec+1) * time.Second
	}
	tr.sec++
}

func (tr *truthTracker) truth() Truth {
	if tr.crisis && tr.started {
		tr.closeSecond()
	}
	sc := &tr.s.script
	t := Truth{Onset: -1, Visible: tr.visible, BadFrom: -1, BadTo: -1, Metrics: tr.metrics,
		Messages: map[string]int{}}
	if sc.onset >= 0 {
		t.Onset = seconds(sc.onset)
	}
	if sc.badTo > 0 {
		t.BadFrom = seconds(sc.badFrom)
		t.BadTo = min(seconds(sc.badTo), tr.s.Duration)
		t.Recovers = sc.recovers && seconds(sc.badTo) < tr.s.Duration
	}
	for l, n := range tr.counts {
		if n > 0 {
			t.Messages[Label(l).String()] = n
		}
	}
	return t
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
