package bilibili

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"lookout/item"
	"math"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Command parsing: an op-5 command body (JSON) to items. DANMU_MSG, the
// bulk of the traffic, goes through the scanner in scan.go and
// fastjson.go; the rarer commands through encoding/json.

// ParseCommand turns one op-5 command body into items appended to
// dst (Platform and Room set, Source left to the caller). cmd is the
// command name without its ":…" suffix; known is false for commands the
// collector does not map (dst unchanged). now stamps items whose payload
// carries no time. Every item's Raw is one copy of body.
func ParseCommand(dst []item.Item, body []byte, room string, now time.Time) (out []item.Item, cmd string, known bool, err error) {
	return biliParseCommand(dst, body, room, now, bytes.Clone)
}

// biliArena hands out copies of command bodies from shared chunks, so a
// busy stream pays one allocation per ~32 KiB instead of one per message.
// A chunk lives as long as any item whose Raw points into it.
type biliArena struct{ buf []byte }

// biliArenaChunk stays just under 32 KiB: a small-object size class, so
// a new chunk comes from the per-P cache, not the large-object path.
const biliArenaChunk = 32<<10 - 64

func (a *biliArena) copy(b []byte) []byte {
	if cap(a.buf)-len(a.buf) < len(b) {
		if len(b) > biliArenaChunk/4 {
			return bytes.Clone(b) // big ones get their own allocation
		}
		a.buf = make([]byte, 0, biliArenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start:len(a.buf):len(a.buf)] // capped: appending to Raw cannot spill into a neighbour
}

// biliParseCommand is ParseCommand with the copy of body (for Raw)
// made by clone.
func biliParseCommand(dst []item.Item, body []byte, room string, now time.Time, clone func([]byte) []byte) (out []item.Item, cmd string, known bool, err error) {
	it, ok := biliIterate(body[biliWS(body, 0):])
	if !ok || !it.obj {
		return dst, "", false, errors.New("command is not a JSON object")
	}
	// One pass: DANMU_MSG (cmd first, then info, as the server sends it)
	// is parsed in place, and the walk stops once the payload is found.
	var (
		info, data []byte
		haveCmd    bool
		parsed     bool
		n          = len(dst)
	)
	for !parsed {
		k, more := it.advance()
		if !more {
			break
		}
		switch string(k) {
		case "cmd":
			cmd, ok = biliCmdName(it.skip())
			if !ok {
				return dst, "", false, errors.New(`command's "cmd" is not a string`)
			}
			haveCmd = true
			parsed = data != nil && !biliIsDanmaku(cmd)
		case "info":
			if haveCmd && biliIsDanmaku(cmd) {
				sub, ok := it.enter()
				if !ok || sub.obj {
					return dst[:n], cmd, true, fmt.Errorf("%s: info is not an array", cmd)
				}
				// The rest of info (medal, level, …) is not read: the
				// walk ends here either way.
				dst, err = biliParseDanmakuIter(dst, &sub, room, now)
				if err != nil {
					return dst[:n], cmd, true, fmt.Errorf("%s: %w", cmd, err)
				}
				parsed = true
			} else {
				info = it.skip()
			}
		case "data":
			data = it.skip()
			parsed = haveCmd && !biliIsDanmaku(cmd)
		default:
			it.skip()
		}
	}
	if it.bad && !parsed {
		return dst[:n], "", false, errors.New("malformed command JSON")
	}
	if !haveCmd {
		return dst, "", false, errors.New(`command has no "cmd" string`)
	}
	if len(dst) > n { // DANMU_MSG parsed in place
		raw := clone(body)
		dst[n].Raw = raw
		return dst, cmd, true, nil
	}
	switch cmd {
	case "DANMU_MSG", "DANMU_MSG_MIRROR":
		dst, err = biliParseDanmaku(dst, info, room, now)
	case "SEND_GIFT":
		dst, err = biliParseGift(dst, data, room, now)
	case "SEND_GIFT_V2":
		dst, err = biliParseGiftV2(dst, data, room, now)
	case "SUPER_CHAT_MESSAGE":
		dst, err = biliParseSuperChat(dst, data, room, now)
	case "INTERACT_WORD":
		dst, err = biliParseInteract(dst, data, room, now)
	case "INTERACT_WORD_V2":
		dst, err = biliParseInteractV2(dst, data, room, now)
	case "LIKE_INFO_V3_CLICK":
		dst, err = biliParseLikeClick(dst, data, room, now)
	case "WATCHED_CHANGE", "ONLINE_RANK_COUNT", "LIKE_INFO_V3_UPDATE":
		dst, err = biliParseMetrics(dst, cmd, data, room, now)
	case "LIVE", "PREPARING":
		dst, err = biliParseLiveStatus(dst, cmd, body, room, now)
	default:
		return dst, cmd, false, nil
	}
	if err != nil {
		return dst[:n], cmd, true, fmt.Errorf("%s: %w", cmd, err)
	}
	if len(dst) > n {
		raw := clone(body)
		for i := n; i < len(dst); i++ {
			dst[i].Raw = raw
		}
	}
	return dst, cmd, true, nil
}

func biliMetric(room, name string, v float64, now time.Time, raw []byte) item.Item {
	// The payload carries no time or id: received time and value identify
	// the sample (identical samples in the same millisecond are one).
	id := make([]byte, 0, 48)
	id = append(id, name...)
	id = append(id, ':')
	id = strconv.AppendInt(id, now.UnixMilli(), 10)
	id = append(id, ':')
	id = strconv.AppendFloat(id, v, 'g', -1, 64)
	return item.Item{Platform: biliPlatform, Kind: item.KindMetric, Room: room, ID: string(id), TS: now, Metric: name, Value: v, Raw: raw}
}

// biliParseLiveStatus maps the stream-state commands to
// item.MetricLiveStatus: LIVE (the stream started; 1) and PREPARING (it
// ended; 0). Both carry their fields at the root, not in data. LIVE's
// live_time (seconds) is when the stream started, and the server sends LIVE
// more than once per start: with live_time the repeats share one id.
func biliParseLiveStatus(dst []item.Item, cmd string, body []byte, room string, now time.Time) ([]item.Item, error) {
	var c struct {
		LiveTime biliFlex `json:"live_time"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return dst, fmt.Errorf("command: %w", err)
	}
	if cmd == "PREPARING" {
		return append(dst, biliMetric(room, item.MetricLiveStatus, 0, now, nil)), nil
	}
	it := biliMetric(room, item.MetricLiveStatus, 1, now, nil)
	if t := c.LiveTime.int(); t > 0 && t < 1<<40 {
		it.TS = time.Unix(t, 0)
		it.ID = item.MetricLiveStatus + ":1:" + strconv.FormatInt(t, 10)
	}
	return append(dst, it), nil
}

// biliParseDanmaku reads DANMU_MSG's info array without a generic JSON
// decode: this is the hot path (thousands per second in a busy room).
func biliIsDanmaku(cmd string) bool { return cmd == "DANMU_MSG" || cmd == "DANMU_MSG_MIRROR" }

// biliParseDanmaku parses DANMU_MSG from its raw info array.
func biliParseDanmaku(dst []item.Item, info []byte, room string, now time.Time) ([]item.Item, error) {
	it, ok := biliIterate(info)
	if !ok || it.obj {
		return dst, errors.New("info is not an array")
	}
	return biliParseDanmakuIter(dst, &it, room, now)
}

// biliParseDanmakuIter reads DANMU_MSG's info array in one pass without a
// generic JSON decode: this is the hot path (thousands per second in a
// busy room). info is positioned inside the array.
func biliParseDanmakuIter(dst []item.Item, info *biliIter, room string, now time.Time) ([]item.Item, error) {
	var (
		tsMS         int64
		rnd, crc     []byte
		extra        []byte
		text, uidRaw []byte
		nameRaw      []byte
		uid          int64
		haveText     bool
	)
	// info[0]: metadata
	if _, ok := info.advance(); !ok {
		return dst, errors.New("info is empty")
	}
	meta, ok := info.enter()
	if !ok || meta.obj {
		return dst, errors.New("info[0] is not an array")
	}
	for i := 0; i <= 15; i++ {
		if _, ok := meta.advance(); !ok {
			break
		}
		switch i {
		case 4:
			tsMS, _ = biliInt(meta.skip())
		case 5:
			rnd = meta.skip()
		case 7:
			crc = meta.skip()
		case 15:
			obj, ok := meta.enter()
			if !ok || !obj.obj {
				meta.skip()
				break
			}
			for {
				k, ok := obj.advance()
				if !ok {
					break
				}
				v := obj.skip()
				if string(k) == "extra" {
					extra = v
					break
				}
			}
			meta.leave(&obj)
		default:
			meta.skip()
		}
	}
	info.leave(&meta)
	// info[1]: text
	if _, ok := info.advance(); ok {
		text, haveText = info.skip(), true
	}
	// info[2]: [uid, name, …]
	if _, ok := info.advance(); ok {
		if user, ok := info.enter(); ok && !user.obj {
			if _, ok := user.advance(); ok {
				uidRaw = user.skip()
				if _, ok := user.advance(); ok {
					nameRaw = user.skip()
				}
			}
			info.leave(&user)
		} else {
			info.skip()
		}
	}
	if info.bad {
		return dst, errors.New("malformed info array")
	}
	if !haveText {
		return dst, errors.New("info[1] (text) missing")
	}
	uid, _ = biliInt(uidRaw)
	// All of the item's strings share one allocation: text, author,
	// author id and id are cut from it.
	var scratch [512]byte
	buf := scratch[:0]
	buf, ok = biliAppendString(buf, text)
	if !ok {
		return dst, errors.New("info[1] (text) is not a string")
	}
	textEnd := len(buf)
	if b, ok := biliAppendString(buf, nameRaw); ok {
		buf = b
	}
	nameEnd := len(buf)
	var crcStr []byte // decoded only when needed: uid 0 or no id_str
	crcDecoded := false
	crcOf := func() []byte {
		if !crcDecoded {
			crcDecoded = true
			crcStr, _ = biliAppendString(nil, crc)
		}
		return crcStr
	}
	if uid != 0 {
		buf = strconv.AppendInt(buf, uid, 10)
	} else if c := crcOf(); len(c) > 0 {
		// Guests see uid 0; the CRC of the uid still tells senders apart.
		buf = append(buf, "crc:"...)
		buf = append(buf, c...)
	}
	authorIDEnd := len(buf)
	buf = biliAppendExtraIDStr(buf, extra)
	if len(buf) == authorIDEnd {
		buf = append(buf, "dm:"...)
		buf = strconv.AppendInt(buf, tsMS, 10)
		buf = append(buf, '-')
		buf = append(buf, crcOf()...)
		buf = append(buf, '-')
		buf = append(buf, bytes.Trim(rnd, `"`)...)
	}
	all := string(buf)
	ts := now
	if tsMS > 0 {
		ts = time.UnixMilli(tsMS)
	}
	return append(dst, item.Item{
		Platform: biliPlatform, Kind: item.KindChat, Room: room,
		ID: all[authorIDEnd:], AuthorID: all[nameEnd:authorIDEnd], Author: all[textEnd:nameEnd], Text: all[:textEnd],
		TS: ts, Count: 1,
	}), nil
}

var biliIDStrKey = []byte(`id_str\":\"`)

// biliAppendExtraIDStr appends to dst the id_str of info[0][15].extra, a
// JSON object encoded as a JSON string. The fast path reads it from the
// escaped text (ids are alphanumeric); anything unusual takes the full
// decode. The pattern
// starts at "i", not at the backslash, because escaped JSON is full of
// backslashes and Index would stop at each.
func biliAppendExtraIDStr(dst, extra []byte) []byte {
	if len(extra) < 2 || extra[0] != '"' {
		return dst
	}
	if i := bytes.Index(extra, biliIDStrKey); i >= 2 && extra[i-1] == '"' && extra[i-2] == '\\' {
		rest := extra[i+len(biliIDStrKey):]
		j := 0
		for j < len(rest) && biliIDChar(rest[j]) {
			j++
		}
		if j > 0 && j+1 < len(rest) && rest[j] == '\\' && rest[j+1] == '"' {
			return append(dst, rest[:j]...)
		}
	}
	s, ok := biliString(extra)
	if !ok {
		return dst
	}
	var e struct {
		IDStr string `json:"id_str"`
	}
	if json.Unmarshal([]byte(s), &e) != nil {
		return dst
	}
	return append(dst, e.IDStr...)
}

func biliIDChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}

// biliFlex accepts a JSON number or string and keeps its text.
type biliFlex string

func (f *biliFlex) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = biliFlex(s)
		return nil
	}
	if string(b) == "null" {
		*f = ""
		return nil
	}
	*f = biliFlex(b)
	return nil
}

func (f biliFlex) int() int64 {
	if n, err := strconv.ParseInt(string(f), 10, 64); err == nil {
		return n
	}
	if x, err := strconv.ParseFloat(string(f), 64); err == nil && !math.IsNaN(x) && !math.IsInf(x, 0) {
		return int64(x)
	}
	return 0
}

func (f biliFlex) float() float64 {
	x, err := strconv.ParseFloat(string(f), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func biliObject(data []byte, v any) error {
	if len(data) == 0 {
		return errors.New(`no "data" object`)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}

func biliTime(sec int64, now time.Time) time.Time {
	if sec > 0 {
		return time.Unix(sec, 0)
	}
	return now
}

// biliGift is one gift, from SEND_GIFT JSON or a SEND_GIFT_V2 protobuf.
type biliGift struct {
	UID       biliFlex `json:"uid"`
	Uname     string   `json:"uname"`
	GiftID    biliFlex `json:"giftId"`
	GiftName  string   `json:"giftName"`
	Num       biliFlex `json:"num"`
	Price     biliFlex `json:"price"`
	TotalCoin biliFlex `json:"total_coin"`
	CoinType  string   `json:"coin_type"`
	Timestamp biliFlex `json:"timestamp"`
	Rnd       biliFlex `json:"rnd"`
	TID       biliFlex `json:"tid"`
}

func (g *biliGift) item(room string, now time.Time) item.Item {
	num := g.Num.int()
	total := g.TotalCoin.float()
	if total == 0 {
		total = g.Price.float() * float64(num)
	}
	var value float64
	if g.CoinType != "silver" { // silver gifts are free
		value = total / 1000 // 1000 gold = 1 CNY
	}
	id := "gift:" + string(g.TID)
	if g.TID == "" || g.TID == "0" {
		id = fmt.Sprintf("gift:%s-%s-%s-%s-%d", g.UID, g.Timestamp, g.GiftID, g.Rnd, num)
	}
	return item.Item{
		Platform: biliPlatform, Kind: item.KindGift, Room: room, ID: id,
		AuthorID: string(g.UID), Author: g.Uname, Text: g.GiftName,
		TS: biliTime(g.Timestamp.int(), now), Value: value, Count: num,
	}
}

func biliParseGift(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	var g biliGift
	if err := biliObject(data, &g); err != nil {
		return dst, err
	}
	return append(dst, g.item(room, now)), nil
}

// biliPB decodes data.pb (base64 protobuf) of the *_V2 commands.
func biliPB(data []byte) ([]byte, error) {
	var d struct {
		PB string `json:"pb"`
	}
	if err := biliObject(data, &d); err != nil {
		return nil, err
	}
	if d.PB == "" {
		return nil, errors.New("data.pb is empty")
	}
	b, err := base64.StdEncoding.DecodeString(d.PB)
	if err != nil {
		return nil, fmt.Errorf("data.pb: %w", err)
	}
	return b, nil
}

// biliPBFields walks one protobuf message, handing each field's number and
// value (varint as decimal text, bytes raw) to fn.
func biliPBFields(b []byte, fn func(num protowire.Number, varint uint64, isVarint bool, bytes []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("protobuf: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(n))
			}
			fn(num, v, true, nil)
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(n))
			}
			fn(num, 0, false, v)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return nil
}

func biliPBText(varint uint64, isVarint bool, b []byte) biliFlex {
	if isVarint {
		return biliFlex(strconv.FormatInt(int64(varint), 10))
	}
	return biliFlex(strings.ToValidUTF8(string(b), "\uFFFD"))
}

// biliParseGiftV2: SendGiftBroadcast {1 uid, 2 uname, 10 repeated gift
// {1 gift_id, 2 gift_name, 3 num, 5 price, 7 total_coin, 8 coin_type,
// 9 tid, 10 timestamp, 12 rnd}}.
func biliParseGiftV2(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	pb, err := biliPB(data)
	if err != nil {
		return dst, err
	}
	var base biliGift
	var gifts [][]byte
	err = biliPBFields(pb, func(num protowire.Number, v uint64, isV bool, b []byte) {
		switch num {
		case 1:
			base.UID = biliPBText(v, isV, b)
		case 2:
			base.Uname = string(biliPBText(v, isV, b))
		case 10:
			if !isV {
				gifts = append(gifts, b)
			}
		}
	})
	if err != nil {
		return dst, err
	}
	if len(gifts) == 0 {
		return dst, errors.New("SendGiftBroadcast has no gift items")
	}
	for _, gb := range gifts {
		g := base
		err := biliPBFields(gb, func(num protowire.Number, v uint64, isV bool, b []byte) {
			t := biliPBText(v, isV, b)
			switch num {
			case 1:
				g.GiftID = t
			case 2:
				g.GiftName = string(t)
			case 3:
				g.Num = t
			case 5:
				g.Price = t
			case 7:
				g.TotalCoin = t
			case 8:
				g.CoinType = string(t)
			case 9:
				g.TID = t
			case 10:
				g.Timestamp = t
			case 12:
				g.Rnd = t
			}
		})
		if err != nil {
			return dst, err
		}
		dst = append(dst, g.item(room, now))
	}
	return dst, nil
}

func biliParseSuperChat(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	var sc struct {
		ID        biliFlex `json:"id"`
		UID       biliFlex `json:"uid"`
		Message   string   `json:"message"`
		Price     biliFlex `json:"price"`
		StartTime biliFlex `json:"start_time"`
		UserInfo  struct {
			Uname string `json:"uname"`
		} `json:"user_info"`
	}
	if err := biliObject(data, &sc); err != nil {
		return dst, err
	}
	id := "sc:" + string(sc.ID)
	if sc.ID == "" || sc.ID == "0" {
		id = fmt.Sprintf("sc:%s-%s", sc.UID, sc.StartTime)
	}
	return append(dst, item.Item{
		Platform: biliPlatform, Kind: item.KindSuperChat, Room: room, ID: id,
		AuthorID: string(sc.UID), Author: sc.UserInfo.Uname, Text: sc.Message,
		TS: biliTime(sc.StartTime.int(), now), Value: sc.Price.float(), Count: 1,
	}), nil
}

// biliInteractText names INTERACT_WORD's msg_type.
func biliInteractText(t int64) string {
	switch t {
	case 1:
		return "enter"
	case 2:
		return "follow"
	case 3:
		return "share"
	case 4:
		return "special_follow"
	case 5:
		return "mutual_follow"
	case 6:
		return "like"
	}
	return "interact_" + strconv.FormatInt(t, 10)
}

type biliInteract struct {
	UID         biliFlex `json:"uid"`
	Uname       string   `json:"uname"`
	MsgType     biliFlex `json:"msg_type"`
	Timestamp   biliFlex `json:"timestamp"`
	TriggerTime biliFlex `json:"trigger_time"`
}

func (w *biliInteract) item(room string, now time.Time) item.Item {
	when := w.TriggerTime
	if when == "" || when == "0" {
		when = w.Timestamp
	}
	return item.Item{
		Platform: biliPlatform, Kind: item.KindEnter, Room: room,
		ID:       fmt.Sprintf("iw:%s-%s-%s", w.UID, w.MsgType, when),
		AuthorID: string(w.UID), Author: w.Uname, Text: biliInteractText(w.MsgType.int()),
		TS: biliTime(w.Timestamp.int(), now), Count: 1,
	}
}

func biliParseInteract(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	var w biliInteract
	if err := biliObject(data, &w); err != nil {
		return dst, err
	}
	return append(dst, w.item(room, now)), nil
}

// biliParseInteractV2: InteractWordV2 {1 uid, 2 uname, 5 msg_type, 7 timestamp}.
func biliParseInteractV2(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	pb, err := biliPB(data)
	if err != nil {
		return dst, err
	}
	var w biliInteract
	err = biliPBFields(pb, func(num protowire.Number, v uint64, isV bool, b []byte) {
		t := biliPBText(v, isV, b)
		switch num {
		case 1:
			w.UID = t
		case 2:
			w.Uname = string(t)
		case 5:
			w.MsgType = t
		case 7:
			w.Timestamp = t
		}
	})
	if err != nil {
		return dst, err
	}
	return append(dst, w.item(room, now)), nil
}

func biliParseLikeClick(dst []item.Item, data []byte, room string, now time.Time) ([]item.Item, error) {
	var l struct {
		UID      biliFlex `json:"uid"`
		Uname    string   `json:"uname"`
		LikeText string   `json:"like_text"`
	}
	if err := biliObject(data, &l); err != nil {
		return dst, err
	}
	return append(dst, item.Item{
		Platform: biliPlatform, Kind: item.KindLike, Room: room,
		ID:       fmt.Sprintf("like:%s-%d", l.UID, now.UnixMilli()),
		AuthorID: string(l.UID), Author: l.Uname, Text: l.LikeText, TS: now, Count: 1,
	}), nil
}

func biliParseMetrics(dst []item.Item, cmd string, data []byte, room string, now time.Time) ([]item.Item, error) {
	var m struct {
		Num         *biliFlex `json:"num"`
		Count       *biliFlex `json:"count"`
		OnlineCount *biliFlex `json:"online_count"`
		ClickCount  *biliFlex `json:"click_count"`
	}
	if err := biliObject(data, &m); err != nil {
		return dst, err
	}
	n := len(dst)
	switch cmd {
	case "WATCHED_CHANGE":
		if m.Num != nil {
			dst = append(dst, biliMetric(room, item.MetricWatched, m.Num.float(), now, nil))
		}
	case "ONLINE_RANK_COUNT":
		if m.OnlineCount != nil {
			dst = append(dst, biliMetric(room, item.MetricViewers, m.OnlineCount.float(), now, nil))
		}
		if m.Count != nil {
			dst = append(dst, biliMetric(room, item.MetricHighEnergy, m.Count.float(), now, nil))
		}
	case "LIKE_INFO_V3_UPDATE":
		if m.ClickCount != nil {
			dst = append(dst, biliMetric(room, item.MetricLikes, m.ClickCount.float(), now, nil))
		}
	}
	if len(dst) == n {
		return dst, errors.New("no metric field in data")
	}
	return dst, nil
}
