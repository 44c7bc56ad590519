package sentiment

// Emoticon tokens. Emoji, Weibo/Bilibili bracket emoticons ([怒], [笑哭],
// [doge]) and ASCII emoticons (:-) T_T) are replaced during normalisation by
// one rune from the Unicode private use area each, so that the feature
// extractor sees a single unit with a known polarity, whatever the spelling.

const (
	sentTokenBase rune = 0xE000 // first private-use rune used for tokens
	sentTokenMax  rune = 0xE3FF
)

// sentToken is one emoticon class.
type sentToken struct {
	name     string
	polarity float32 // -1 … 1; 0 for tokens whose sentiment depends on context
}

// sentTokenDefs lists each token with the spellings that map to it. The order
// is part of the model (a token's rune is base+index): append only.
var sentTokenDefs = []struct {
	tok       sentToken
	brackets  []string // inside [ ], already case-folded
	emoji     string   // each rune is one emoji
	emoticons []string // ASCII emoticons, already case-folded
}{
	{sentToken{"laugh", 0.6}, []string{"哈哈", "嘻嘻", "偷笑", "笑", "大笑", "嘿哈", "坏笑", "奸笑"}, "😀😃😄😁😆😹😸", []string{":d", ":-d", "xd", "=d", "^_^", "^^", "^o^"}},
	{sentToken{"laugh_cry", 0.3}, []string{"笑哭", "笑cry", "辣眼睛"}, "😂🤣", nil},
	{sentToken{"smile", 0.6}, []string{"可爱", "害羞", "愉快", "开心", "太开心", "嘻嘻哈哈", "憨笑", "调皮"}, "😊🙂☺😌😋😇🥰", []string{":)", ":-)", "=)", ":]", "(:", ";)", ";-)", ":p", ":-p"}},
	{sentToken{"love", 1}, []string{"爱你", "心", "爱心", "花心", "亲亲", "色", "喜欢", "星星眼", "抱抱", "比心", "送心", "飞吻", "给心心"}, "😍😘😗😙😚🤗🥳🤩❤💕💖💗💓💞💘💝♥😻", []string{"<3"}},
	{sentToken{"praise", 1}, []string{"赞", "good", "鼓掌", "威武", "给力", "强", "棒", "666", "牛", "妙啊", "打call", "ok", "好的", "点赞", "耶", "胜利", "加油", "奋斗", "握手", "拳头", "礼物", "蛋糕", "鲜花", "送花花", "干杯", "太阳", "赞啊", "酷", "支持", "喝彩", "v5"}, "👍👏🙌💪🎉🎊💯👌✌🌹🌸💐🎁🍾👑🏆✨⭐🌟😎", nil},
	{sentToken{"doge", 0}, []string{"doge", "二哈", "滑稽", "狗头", "吃瓜", "思考", "微笑", "呵呵", "阴险", "嘘", "喵喵"}, "🐶🐕🤔🍉🙃😏", nil},
	{sentToken{"angry", -1}, []string{"怒", "怒骂", "愤怒", "生气", "抓狂", "哼", "鄙视", "左哼哼", "右哼哼", "打脸", "发怒", "暴怒", "敲打"}, "😡😠🤬😤👿💢😾🖕", []string{">:(", ">:-("}},
	{sentToken{"sad", -1}, []string{"泪", "衰", "悲伤", "伤心", "失望", "委屈", "可怜", "大哭", "哭泣", "难过", "流泪", "哭", "泪目", "心碎", "伤心欲绝", "惨"}, "😢😭😞😔😟😕🙁☹😣😖😫😩😿💔😥😪😓", []string{":(", ":-(", ":'(", ":,(", "t_t", "t.t", "qaq", "qwq", ";_;", ":[", "):"}},
	{sentToken{"disgust", -1}, []string{"吐", "呕吐", "嫌弃", "白眼", "翻白眼", "抠鼻", "挖鼻", "挖鼻屎", "黑线", "弱", "no", "鄙视你", "吐血", "晕", "汗", "囧", "尴尬", "捂脸", "无语", "惊恐", "傲慢", "不屑"}, "🤮🤢😒🙄👎💩😑😬🤦😱😨😰🤡😷", []string{":/", ":-/", "-_-", "-.-", "orz", ":|", ":-|", "=_="}},
	{sentToken{"misc", 0}, []string{"再见", "拜拜", "疑问", "问号", "困", "睡", "睡觉", "钱", "猪头", "月亮", "话筒", "蜡烛", "围观"}, "🙏😮😯😲😳😴🌚", nil},
}
