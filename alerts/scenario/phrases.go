package scenario

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// The phrase pools below are written for these scenarios: what a Chinese
// live-commerce room says on an ordinary evening, and what it says when
// something goes wrong. Templates carry slots that the composer fills so
// that a pool of a few dozen lines yields thousands of distinct messages:
//
//	{item}  a product         {color} a colour      {size} a size
//	{n}     a small number    {h} {w} height (cm) and weight (斤)
//	{days}  a span of days    {e}     an emote code
//
// Every message is labelled by the pool it came from (its ground truth);
// the classifier never sees the label.

var phraseItems = []string{
	"羽绒服", "卫衣", "连衣裙", "牛仔裤", "面膜", "口红", "粉底液", "洗面奶", "保温杯", "空气炸锅",
	"四件套", "运动鞋", "羊毛衫", "防晒霜", "精华液", "零食礼包", "蓝牙耳机", "扫地机", "茶叶", "坚果礼盒",
	"打底衫", "阔腿裤", "眼霜", "电动牙刷", "行李箱",
}

var phraseColors = []string{"黑色", "白色", "奶白", "雾霾蓝", "焦糖色", "浅灰", "酒红", "卡其", "燕麦色", "墨绿"}

var phraseSizes = []string{"S", "M", "L", "XL", "2XL", "3XL", "均码"}

var phraseDays = []string{"三天", "五天", "一周", "十天", "半个月", "两个星期"}

// phraseEmotes are the platform's emote codes as they arrive in chat text.
var phraseEmotes = []string{
	"[doge]", "[笑哭]", "[赞]", "[比心]", "[鼓掌]", "[玫瑰]", "[666]", "[爱心]", "[捂脸]", "[送心]",
	"[呲牙]", "[偷笑]", "[可爱]", "[灵机一动]", "[耶]",
}

// phraseAngryEmotes close complaints.
var phraseAngryEmotes = []string{"[怒]", "[生气]", "[抓狂]", "[白眼]", "[鄙视]", "[流泪]"}

var phraseChatter = []string{
	"今天的{item}好好看", "刚下班，赶上了", "在看{item}", "主播今天的发型不错", "背景音乐叫什么",
	"我家猫也在看{e}", "第一次来，随便看看", "蹲一个{item}", "等{item}等半天了", "这个颜色显白吗",
	"有人买过{item}吗", "上次买的{item}还没用完", "助理小姐姐好可爱", "今晚有什么福利", "刷到就进来了",
	"这个价格可以", "看看{color}的", "家人们冲", "我妈让我帮她买{item}", "主播喝口水吧", "今天人好多",
	"一边吃饭一边看", "哈哈哈哈", "讲得真细", "已经加购了", "我已经拍了{n}件", "终于等到{item}了",
	"{color}{item}绝了", "试穿一下{color}的看看", "上身效果怎么样", "主播穿{size}吗", "想要{color}",
	"明天还播吗", "在公司偷偷看", "助理笑死我了", "这个灯光好舒服", "镜头拉近一点", "放大看看细节",
	"等下一个", "我朋友推荐来的", "{item}和{item}一起拍了", "囤了{n}盒", "先收藏了", "主播口才真好",
	"刚才那个{item}是几号", "又被种草了", "钱包在哭泣", "今晚必须拿下{item}", "看了好几场了",
}

var phraseGreetings = []string{
	"主播晚上好", "晚上好", "来啦", "签到", "打卡", "扣1", "1111", "来了来了", "主播好", "姐姐好",
	"大家好", "报到", "又来了", "第{n}天打卡", "每日签到", "路过支持一下", "点赞了", "关注了", "冒泡",
	"前排", "晚上好呀家人们", "下班就来了", "主播晚上好{e}", "签到签到", "守护主播",
}

var phraseQuestions = []string{
	"什么时候发货", "有没有大码", "链接在哪", "{n}号链接还有吗", "{size}码还有吗", "{h} {w}斤穿什么码", "身高{h}体重{w}斤选哪个码",
	"{item}有{color}吗", "能再讲一下{item}吗", "今天有优惠券吗", "满减怎么算", "包邮吗", "偏远地区发吗",
	"保质期多久", "敏感肌能用吗", "男生能穿吗", "下单了多久能到", "能开发票吗", "{item}会返场吗",
	"赠品还有吗", "和上次那款有什么区别", "{item}是什么材质", "孕妇能用吗", "有小样吗", "几点上{item}",
	"{color}和{color}哪个好看", "{n}号是什么价", "可以备注颜色吗", "一单能买几件", "学生党有优惠吗",
	"{item}怎么洗", "{w}斤选{size}还是{size}",
}

// phraseRefundQuestions are harmless after-sales questions: people asking
// how things work, not complaining. Several contain 退款.
var phraseRefundQuestions = []string{
	"怎么申请退款", "退货运费谁出", "不合适可以退款吗", "七天无理由能退吗", "退款多久到账", "拍错了怎么退款",
	"有运费险吗", "尺码不对能换吗", "退款要寄回去吗", "拍了{size}码不合适能换{size}吗", "未发货可以直接退款吗",
}

var phrasePraise = []string{
	"主播好美", "太好看了", "已经回购第{n}次了", "{item}真的好用", "上次买的{item}很好", "物美价廉",
	"性价比绝了", "主播讲得好清楚", "爱了爱了", "质量真不错", "已下单", "支持主播", "很划算", "回购了",
	"好评", "宝藏主播", "面料很舒服", "穿着很显瘦", "发货很快", "包装很用心", "质量一点都不差",
	"{color}的绝美", "上次的{item}全家都说好", "用了{days}皮肤变好了", "闭眼入", "主播人美心善",
	"价格真香", "比超市便宜多了", "给{item}打call", "这场福利太好了",
}

// phraseGrumbles are the everyday grumbles of a healthy room: price,
// stock, lag. Negative in tone, not a crisis.
var phraseGrumbles = []string{
	"太贵了", "又没抢到", "卡了", "好卡啊", "手慢了没抢到", "怎么又涨价了", "库存太少了吧", "一上架就没了",
	"优惠券领不了", "链接打不开", "网好卡", "画面卡住了", "声音好小", "主播能不能快点", "讲太慢了",
	"等好久了", "上次也没抢到", "运费好贵", "怎么还不上链接", "又是这个", "没意思", "有点贵", "比别家贵",
	"抢不到啊", "怎么又断了", "{item}又没了", "{size}码又断货了", "付款一直转圈", "又卡又慢",
	"讲了半天还不上", "这价格不如去超市",
}

// Complaint pools, one per kind of crisis.
var (
	phraseFakeGoods = []string{
		"假货", "卖假货", "是假货吧", "不是正品", "验货是假的", "专柜验了是假的", "防伪码查不到",
		"扫码查不到", "和专柜的完全不一样", "高仿吧这是", "拿去鉴定说是假的", "标签都是错的", "骗子",
		"卖假货还不承认", "要曝光你们", "我要去12315", "大家别买了是假的", "包装都是山寨的",
		"买的{item}是假的", "{item}验货是假的", "{item}跟正品差太多", "这{item}绝对不是正品",
		"专柜说这批{item}不是他们的货", "收到的{item}是高仿",
	}
	phraseQuality = []string{
		"质量差", "质量太差了", "一洗就掉色", "洗了一次就缩水", "穿了两天就起球", "用了过敏", "脸用了过敏红肿",
		"收到就是坏的", "线头到处都是", "做工太粗糙了", "味道很大", "拉链坏了", "鞋底开胶了", "跟图片差太多",
		"掉色掉得厉害", "质量坏得离谱", "破了个洞", "根本没法穿", "垃圾质量", "一碰就坏",
		"{item}一洗就掉色", "{item}用了过敏", "{item}质量差", "{color}的{item}染了一洗衣机", "{item}穿{days}就破了",
	}
	phraseService = []string{
		"客服不理人", "退款一直不处理", "我要投诉", "客服态度差", "找客服没人回复", "申请退款{days}了没人管",
		"售后踢皮球", "打电话一直占线", "客服只会复制粘贴", "退货寄回去{days}了钱还没退", "发货慢死了",
		"说好48小时发货{days}了还没动", "客服已读不回", "投诉无门", "订单莫名其妙被取消", "不给退",
		"要去消协投诉了", "维权群在哪", "{item}退款一直不处理", "{item}坏了客服不理人",
	}
	phraseHostRemark = []string{
		"主播说话太难听了", "道歉", "主播道歉", "必须道歉", "脱粉了", "取关了", "这什么态度", "看不起谁呢",
		"说谁穷呢", "太不尊重人了", "再也不来了", "寒心", "恶心", "粉丝白疼你了", "说话注意点", "失望透顶",
		"就这素质", "拉黑了", "主播飘了", "刚才那句话什么意思", "嫌我们穷别卖给我们", "给粉丝道歉",
	}
)

// Lines of the giveaway flood and of the farewells when a stream ends.
var (
	phraseGiveaway  = []string{"扣1", "抽奖"}
	phraseFarewells = []string{
		"下播了吗", "拜拜", "明天见", "主播辛苦了", "晚安", "早点休息", "明天还来", "拜拜{e}", "下次见",
		"舍不得", "今天收获满满", "等下一场",
	}
)

// phraseBotAd is the one line the spam bots post, word for word.
const phraseBotAd = "关注主页私信领取百元无门槛券，名额有限先到先得"

// Decorations.
var (
	phraseOpeners          = []string{"主播", "家人们", "姐妹们", "宝宝们", "哈哈", "啊啊啊", "诶"}
	phraseComplaintOpeners = []string{"我真的服了，", "家人们，", "主播，", "刚收到，", "无语，", "说真的，", "气死了，"}
	phraseComplaintClosers = []string{"避雷", "大家别买", "什么玩意", "太离谱了", "必须给个说法", "等回复"}
	phraseTails            = []string{"啊", "呀", "哈哈哈", "嘛", "吧", "哦", "~", "呢"}
	phrasePuncts           = []string{"!", "!!", "！！！", "?", "？？", "。", "...", "~~"}
)

// composer builds messages from the pools. It is not safe for concurrent
// use; each generator has its own.
type composer struct {
	r *rand.Rand
	b strings.Builder
}

func (c *composer) pick(pool []string) string { return pool[c.r.IntN(len(pool))] }

func (c *composer) chance(p float64) bool { return c.r.Float64() < p }

// fill writes tmpl with its slots filled.
func (c *composer) fill(tmpl string) {
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			c.b.WriteString(tmpl)
			return
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			c.b.WriteString(tmpl)
			return
		}
		c.b.WriteString(tmpl[:i])
		switch tmpl[i+1 : i+j] {
		case "item":
			c.b.WriteString(c.pick(phraseItems))
		case "color":
			c.b.WriteString(c.pick(phraseColors))
		case "size":
			c.b.WriteString(c.pick(phraseSizes))
		case "days":
			c.b.WriteString(c.pick(phraseDays))
		case "e":
			c.b.WriteString(c.pick(phraseEmotes))
		case "n":
			c.b.WriteString(strconv.Itoa(1 + c.r.IntN(40)))
		case "h":
			c.b.WriteString(strconv.Itoa(150 + c.r.IntN(36)))
		case "w":
			c.b.WriteString(strconv.Itoa(85 + c.r.IntN(80)))
		default:
			c.b.WriteString(tmpl[i : i+j+1])
		}
		tmpl = tmpl[i+j+1:]
	}
}

func (c *composer) emotes(max int) {
	for n := 1 + c.r.IntN(max); n > 0; n-- {
		c.b.WriteString(c.pick(phraseEmotes))
	}
}

// message composes one message of class l (crisis names the complaint
// pool for complaints).
func (c *composer) message(l Label, crisis Crisis) string {
	c.b.Reset()
	switch l {
	case LabelChatter, LabelQuestion, LabelPraise:
		pool := phraseChatter
		switch l {
		case LabelQuestion:
			pool = phraseQuestions
		case LabelPraise:
			pool = phrasePraise
		}
		if c.chance(0.12) {
			c.b.WriteString(c.pick(phraseOpeners))
			if c.chance(0.5) {
				c.b.WriteString("，")
			}
		}
		c.fill(c.pick(pool))
		c.decorate(0.2, 0.25)
	case LabelGreeting:
		start := c.b.Len()
		c.fill(c.pick(phraseGreetings))
		if c.chance(0.15) { // rituals get repeated
			g := c.b.String()[start:]
			c.b.WriteString(" ")
			c.b.WriteString(g)
		}
		c.decorate(0.25, 0.15)
	case LabelRefundQuestion:
		c.fill(c.pick(phraseRefundQuestions))
		if c.chance(0.3) {
			c.b.WriteString(c.pick([]string{"？", "?", "呀", "啊", "？？"}))
		}
	case LabelEmote:
		switch c.r.IntN(4) {
		case 0:
			c.b.WriteString(c.pick([]string{"666", "哈哈哈哈", "hhhh", "2333", "牛", "绝了"}))
			c.emotes(2)
		default:
			c.emotes(4)
		}
	case LabelGrumble:
		if c.chance(0.1) {
			c.b.WriteString(c.pick([]string{"唉，", "服了，", "啊这，", "害，"}))
		}
		c.fill(c.pick(phraseGrumbles))
		c.decorate(0.1, 0.3)
	case LabelComplaint:
		if c.chance(0.25) {
			c.b.WriteString(c.pick(phraseComplaintOpeners))
		}
		start := c.b.Len()
		c.fill(c.pick(crisis.pool()))
		if c.chance(0.12) { // shouted twice
			c.b.WriteString(c.b.String()[start:])
		}
		if c.chance(0.2) {
			c.b.WriteString("，")
			c.b.WriteString(c.pick(phraseComplaintClosers))
		}
		if c.chance(0.4) {
			c.b.WriteString(c.pick(phrasePuncts))
		}
		if c.chance(0.15) {
			c.b.WriteString(c.pick(phraseAngryEmotes))
		}
	case LabelGiveaway:
		// The flood is mostly word for word; a few vary it.
		switch c.r.IntN(10) {
		case 0:
			c.b.WriteString(c.pick([]string{"扣1扣1扣1", "抽奖抽奖", "1", "我要我要", "抽我抽我", "求中奖"}))
		default:
			c.b.WriteString(c.pick(phraseGiveaway))
		}
	case LabelAd:
		c.b.WriteString(phraseBotAd)
	case LabelFarewell:
		c.fill(c.pick(phraseFarewells))
		c.decorate(0.2, 0.2)
	}
	return c.b.String()
}

// decorate adds an emote (probability pe) or a tail and punctuation
// (probability pp).
func (c *composer) decorate(pe, pp float64) {
	if c.chance(pp) {
		if c.chance(0.4) {
			c.b.WriteString(c.pick(phraseTails))
		}
		c.b.WriteString(c.pick(phrasePuncts))
	}
	if c.chance(pe) {
		c.emotes(3)
	}
}

// Author names: a nickname stem and a number, as platforms show them.
var phraseNickStems = []string{
	"小鱼", "阿杰", "momo", "快乐星球", "柠檬不酸", "大橘", "晚风", "一只喵", "奶茶续命", "小太阳",
	"Echo", "橙子", "路人甲", "木子", "团团", "七七", "夏天", "阿May", "土豆", "星星",
}

func authorName(i int) string {
	return phraseNickStems[i%len(phraseNickStems)] + strconv.Itoa(1000+i)
}
