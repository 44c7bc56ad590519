package demo

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// A scripted live-commerce show: a calm start, a complaint storm with the
// audience leaving, a tail. Lines are written like real chat, with the
// usual noise (emoji, repeated characters, brand names).

var calmLines = []string{
	"主播好漂亮！", "这个颜色好好看啊啊啊", "已下单，期待收货～", "支持主播[爱你]", "价格很实惠，好评",
	"上次买的很好用，回购了", "666666", "主播讲得很清楚", "哈哈哈哈哈", "包装很精致，送人很合适",
	"有没有优惠券？", "几点发货呀", "这款适合干皮吗", "求链接", "第一次来，关注了",
	"质量不错，推荐", "太划算了吧", "主播声音好好听", "love it!", "great deal, thanks",
}

var stormLines = []string{
	"收到的是假货！要求退款！", "客服不理人，已经投诉了", "物流慢得离谱，半个月没到", "骗子主播，大家别买",
	"质量太差了，退款！", "我要去12315投诉你们", "买到假货了，曝光你们", "客服态度差，再也不买了",
	"东西是坏的，退款都不给办", "垃圾产品，差评", "退款申请三天了没人回复", "这就是假货，和描述完全不一样",
	"发货慢，客服不理人，失望", "要维权，大家一起投诉", "太失望了，再也不来了", "what a scam, refund now",
	"主播别装死，回复一下退款", "又是假货，上当了", "收到就坏了，客服不理人", "骗人的，别买！！！",
}

var stormNeutral = []string{"怎么回事？", "真的假的", "我的还没到", "有人收到了吗", "主播说句话啊"}

var viewerNames = []string{"小鹿", "阿杰", "橙子酱", "momo", "路人甲", "大白", "Kiki", "老王", "小七", "夏天", "星河", "阿狸"}

// showPhase says what the room is doing at a point in the show.
type showPhase int

const (
	phaseCalm showPhase = iota
	phaseStorm
	phaseTail
)

// showScript turns elapsed/total into a phase and the room's numbers.
type showScript struct {
	total time.Duration
	rnd   *rand.Rand
}

func newShowScript(total time.Duration) *showScript {
	return &showScript{total: total, rnd: rand.New(rand.NewPCG(2026, 11))}
}

func (s *showScript) phase(elapsed time.Duration) showPhase {
	f := float64(elapsed) / float64(s.total)
	switch {
	case f < 0.4:
		return phaseCalm
	case f < 0.8:
		return phaseStorm
	}
	return phaseTail
}

// viewers is the online count: rising gently, then collapsing in the storm.
func (s *showScript) viewers(elapsed time.Duration) int {
	f := float64(elapsed) / float64(s.total)
	switch {
	case f < 0.4:
		return 4800 + int(f/0.4*500) + s.rnd.IntN(40)
	case f < 0.8:
		g := (f - 0.4) / 0.4
		return 5300 - int(g*4100) + s.rnd.IntN(40)
	}
	return 1150 + s.rnd.IntN(60)
}

// chatPerTick is how many chat lines arrive in one 100 ms tick.
func (s *showScript) chatPerTick(p showPhase) int {
	switch p {
	case phaseCalm:
		return 1 + s.rnd.IntN(2)
	case phaseStorm:
		return 2 + s.rnd.IntN(3)
	}
	return s.rnd.IntN(2)
}

// line picks a chat line for the phase.
func (s *showScript) line(p showPhase) string {
	switch p {
	case phaseStorm:
		if s.rnd.IntN(10) < 8 {
			return stormLines[s.rnd.IntN(len(stormLines))]
		}
		return stormNeutral[s.rnd.IntN(len(stormNeutral))]
	case phaseTail:
		if s.rnd.IntN(2) == 0 {
			return stormLines[s.rnd.IntN(len(stormLines))]
		}
		return stormNeutral[s.rnd.IntN(len(stormNeutral))]
	}
	return calmLines[s.rnd.IntN(len(calmLines))]
}

func (s *showScript) viewer() (int64, string) {
	i := s.rnd.IntN(len(viewerNames))
	uid := int64(100000 + i*7919 + s.rnd.IntN(50))
	return uid, fmt.Sprintf("%s%d", viewerNames[i], uid%100)
}
