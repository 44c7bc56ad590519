package bilibili

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"lookout/internal/loopback"
	"lookout/item"

	"lookout/internal/testutil"
)

var biliNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// biliItemView is the part of an item the parser decides (Raw checked
// separately), in a stable JSON form for the golden file.
type biliItemView struct {
	Kind     item.Kind `json:"kind"`
	Room     string    `json:"room"`
	ID       string    `json:"id"`
	AuthorID string    `json:"author_id,omitempty"`
	Author   string    `json:"author,omitempty"`
	Text     string    `json:"text,omitempty"`
	TS       string    `json:"ts"`
	Metric   string    `json:"metric,omitempty"`
	Value    float64   `json:"value,omitempty"`
	Count    int64     `json:"count,omitempty"`
}

func biliView(it item.Item) biliItemView {
	return biliItemView{it.Kind, it.Room, it.ID, it.AuthorID, it.Author, it.Text, it.TS.UTC().Format(time.RFC3339Nano), it.Metric, it.Value, it.Count}
}

func TestBilibiliParseCommand(t *testing.T) {
	ts := time.Date(2026, 11, 25, 11, 59, 58, 123e6, time.UTC)
	tests := []struct {
		name      string
		cmd       []byte
		wantCmd   string
		wantKnown bool
		want      []biliItemView
	}{
		{"minimal DANMU_MSG", biliFixture(t, "danmu_min.json"), "DANMU_MSG", true, []biliItemView{
			{Kind: item.KindChat, Room: "7", ID: "abc123", AuthorID: "12345", Author: "alice", Text: "hello", TS: "2024-08-18T11:06:40.649Z", Count: 1}}},
		{"realistic DANMU_MSG", loopback.BilibiliDanmaku(42, "小明", "主播好，发货太慢了", ts, "f1e2d3c4b5a6"), "DANMU_MSG", true, []biliItemView{
			{Kind: item.KindChat, Room: "7", ID: "f1e2d3c4b5a6", AuthorID: "42", Author: "小明", Text: "主播好，发货太慢了", TS: "2026-11-25T11:59:58.123Z", Count: 1}}},
		{"DANMU_MSG without id_str falls back to ts-crc-rnd", []byte(`{"cmd":"DANMU_MSG","info":[[0,1,25,16777215,1723979200649,-1312973962,0,"0bc8acd0",0,0,0,"",0,"{}","{}",{"extra":"{\"content\":\"hi\"}"}],"hi",[0,"a***",0]]}`),
			"DANMU_MSG", true, []biliItemView{
				{Kind: item.KindChat, Room: "7", ID: "dm:1723979200649-0bc8acd0--1312973962", AuthorID: "crc:0bc8acd0", Author: "a***", Text: "hi", TS: "2024-08-18T11:06:40.649Z", Count: 1}}},
		{"DANMU_MSG with escapes and odd spacing", []byte(` { "cmd" : "DANMU_MSG" , "info" : [ [ 0 , 1 , 25 , 1 , 1723979200000 , 5 , 0 , "ab" , 0,0,0,"",0,"{}","{}", { "extra" : "{\"id_str\": \"x\\\"y\"}" } ] , "say \"hi\" \u4f60\u597d\n" , [ 7 , "b\\o" ] ] } `),
			"DANMU_MSG", true, []biliItemView{
				{Kind: item.KindChat, Room: "7", ID: `x"y`, AuthorID: "7", Author: `b\o`, Text: "say \"hi\" 你好\n", TS: "2024-08-18T11:06:40Z", Count: 1}}},
		{"DANMU_MSG_MIRROR", bytes.Replace(biliFixture(t, "danmu_min.json"), []byte(`DANMU_MSG:4:0:2:2:2:0`), []byte(`DANMU_MSG_MIRROR`), 1), "DANMU_MSG_MIRROR", true, []biliItemView{
			{Kind: item.KindChat, Room: "7", ID: "abc123", AuthorID: "12345", Author: "alice", Text: "hello", TS: "2024-08-18T11:06:40.649Z", Count: 1}}},
		{"SEND_GIFT gold", loopback.BilibiliGift(42, "小明", "小花花", 5, 100, ts), "SEND_GIFT", true, []biliItemView{
			{Kind: item.KindGift, Room: "7", ID: "gift:1795607998000042", AuthorID: "42", Author: "小明", Text: "小花花", TS: "2026-11-25T11:59:58Z", Value: 0.5, Count: 5}}},
		{"SEND_GIFT silver is worth nothing", loopback.BilibiliGift(43, "b", "辣条", 10, 0, ts), "SEND_GIFT", true, []biliItemView{
			{Kind: item.KindGift, Room: "7", ID: "gift:1795607998000043", AuthorID: "43", Author: "b", Text: "辣条", TS: "2026-11-25T11:59:58Z", Count: 10}}},
		{"SEND_GIFT_V2 protobuf", loopback.BilibiliGiftV2(42, "小明", "小电视飞船", 1, 1245000, ts), "SEND_GIFT_V2", true, []biliItemView{
			{Kind: item.KindGift, Room: "7", ID: "gift:1795607998000042", AuthorID: "42", Author: "小明", Text: "小电视飞船", TS: "2026-11-25T11:59:58Z", Value: 1245, Count: 1}}},
		{"SUPER_CHAT_MESSAGE", loopback.BilibiliSuperChat(9001, 44, "大户", "请回答退款问题", 30, ts), "SUPER_CHAT_MESSAGE", true, []biliItemView{
			{Kind: item.KindSuperChat, Room: "7", ID: "sc:9001", AuthorID: "44", Author: "大户", Text: "请回答退款问题", TS: "2026-11-25T11:59:58Z", Value: 30, Count: 1}}},
		{"INTERACT_WORD enter", loopback.BilibiliInteract(45, "路人", 1, ts), "INTERACT_WORD", true, []biliItemView{
			{Kind: item.KindEnter, Room: "7", ID: "iw:45-1-1795607998123000000", AuthorID: "45", Author: "路人", Text: "enter", TS: "2026-11-25T11:59:58Z", Count: 1}}},
		{"INTERACT_WORD follow", loopback.BilibiliInteract(45, "路人", 2, ts), "INTERACT_WORD", true, []biliItemView{
			{Kind: item.KindEnter, Room: "7", ID: "iw:45-2-1795607998123000000", AuthorID: "45", Author: "路人", Text: "follow", TS: "2026-11-25T11:59:58Z", Count: 1}}},
		{"INTERACT_WORD share", loopback.BilibiliInteract(45, "路人", 3, ts), "INTERACT_WORD", true, []biliItemView{
			{Kind: item.KindEnter, Room: "7", ID: "iw:45-3-1795607998123000000", AuthorID: "45", Author: "路人", Text: "share", TS: "2026-11-25T11:59:58Z", Count: 1}}},
		{"WATCHED_CHANGE", loopback.BilibiliWatched(12345), "WATCHED_CHANGE", true, []biliItemView{
			{Kind: item.KindMetric, Room: "7", ID: "watched:1795608000000:12345", TS: "2026-11-25T12:00:00Z", Metric: "watched", Value: 12345}}},
		{"ONLINE_RANK_COUNT gives viewers and high_energy", []byte(`{"cmd":"ONLINE_RANK_COUNT","data":{"count":12,"count_text":"12","online_count":34,"online_count_text":"34"}}`), "ONLINE_RANK_COUNT", true, []biliItemView{
			{Kind: item.KindMetric, Room: "7", ID: "viewers:1795608000000:34", TS: "2026-11-25T12:00:00Z", Metric: "viewers", Value: 34},
			{Kind: item.KindMetric, Room: "7", ID: "high_energy:1795608000000:12", TS: "2026-11-25T12:00:00Z", Metric: "high_energy", Value: 12}}},
		{"LIKE_INFO_V3_UPDATE", []byte(`{"cmd":"LIKE_INFO_V3_UPDATE","data":{"click_count":3227}}`), "LIKE_INFO_V3_UPDATE", true, []biliItemView{
			{Kind: item.KindMetric, Room: "7", ID: "likes:1795608000000:3227", TS: "2026-11-25T12:00:00Z", Metric: "likes", Value: 3227}}},
		{"LIKE_INFO_V3_CLICK", []byte(`{"cmd":"LIKE_INFO_V3_CLICK","data":{"uid":46,"uname":"fan","like_text":"为主播点赞了"}}`), "LIKE_INFO_V3_CLICK", true, []biliItemView{
			{Kind: item.KindLike, Room: "7", ID: "like:46-1795608000000", AuthorID: "46", Author: "fan", Text: "为主播点赞了", TS: "2026-11-25T12:00:00Z", Count: 1}}},
		{"LIVE: stream started at live_time", loopback.BilibiliLive(7, ts), "LIVE", true, []biliItemView{
			{Kind: item.KindMetric, Room: "7", ID: "live_status:1:1795607998", TS: "2026-11-25T11:59:58Z", Metric: "live_status", Value: 1}}},
		{"LIVE without live_time", []byte(`{"cmd":"LIVE","roomid":7}`), "LIVE", true, []biliItemView{
			{Kind: item.KindMetric, Room: "7", ID: "live_status:1795608000000:1", TS: "2026-11-25T12:00:00Z", Metric: "live_status", Value: 1}}},
		{"PREPARING: stream ended", loopback.BilibiliPreparing(7), "PREPARING", true, []biliItemView{
			{Kind: item.KindMetric, Room: "7", ID: "live_status:1795608000000:0", TS: "2026-11-25T12:00:00Z", Metric: "live_status"}}},
		{"unknown cmd", []byte(`{"cmd":"ENTRY_EFFECT","data":{"id":4}}`), "ENTRY_EFFECT", false, nil},
		{"unknown cmd with suffix", []byte(`{"cmd":"NOTICE_MSG:1:2","data":{}}`), "NOTICE_MSG", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, cmd, known, err := ParseCommand(nil, tc.cmd, "7", biliNow)
			if err != nil {
				t.Fatalf("err: %v", err)
			}
			if cmd != tc.wantCmd || known != tc.wantKnown {
				t.Errorf("cmd, known = %q, %v; want %q, %v", cmd, known, tc.wantCmd, tc.wantKnown)
			}
			if len(items) != len(tc.want) {
				t.Fatalf("got %d items %+v, want %d", len(items), items, len(tc.want))
			}
			for i, it := range items {
				if got := biliView(it); got != tc.want[i] {
					t.Errorf("item %d:\n got %+v\nwant %+v", i, got, tc.want[i])
				}
				if it.Platform != "bilibili" || !bytes.Equal(it.Raw, tc.cmd) || !it.Kind.Valid() {
					t.Errorf("item %d: platform %q, kind %q, raw equal %v", i, it.Platform, it.Kind, bytes.Equal(it.Raw, tc.cmd))
				}
			}
		})
	}
}

func TestBilibiliParseCommandErrors(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `{`, `{"cmd":1}`, `{"info":[]}`, `{"cmd":"DANMU_MSG"}`, `{"cmd":"DANMU_MSG","info":{}}`,
		`{"cmd":"DANMU_MSG","info":[1,"x",[]]}`, `{"cmd":"DANMU_MSG","info":[[],7,[]]}`,
		`{"cmd":"SEND_GIFT"}`, `{"cmd":"SEND_GIFT","data":[]}`, `{"cmd":"SEND_GIFT_V2","data":{"pb":"!!"}}`,
		`{"cmd":"SEND_GIFT_V2","data":{"pb":"CAE="}}`, `{"cmd":"WATCHED_CHANGE","data":{}}`,
		`{"cmd":"SUPER_CHAT_MESSAGE","data":"x"}`, `{"cmd":"INTERACT_WORD_V2","data":{"pb":"/w=="}}`,
	} {
		items, _, _, err := ParseCommand(nil, []byte(in), "7", biliNow)
		if err == nil {
			t.Errorf("%s: no error (items %+v)", in, items)
		}
		if len(items) != 0 {
			t.Errorf("%s: %d items on error", in, len(items))
		}
	}
}

// TestBilibiliGolden decodes a brotli frame holding one of every command
// and compares the items with testdata/bilibili/show.golden.json.
func TestBilibiliGolden(t *testing.T) {
	ts := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	frame := loopback.BilibiliFrame(loopback.BilibiliPushBrotli,
		loopback.BilibiliDanmaku(1001, "观众甲", "东西不错，已下单", ts, "id0001"),
		loopback.BilibiliDanmaku(1002, "观众乙", "假货！我要退款", ts.Add(time.Second), ""),
		loopback.BilibiliGift(1003, "观众丙", "人气票", 3, 100, ts.Add(2*time.Second)),
		loopback.BilibiliSuperChat(77, 1004, "观众丁", "客服不理人", 50, ts.Add(3*time.Second)),
		loopback.BilibiliInteract(1005, "观众戊", 2, ts.Add(4*time.Second)),
		loopback.BilibiliOnlineRankCount(880),
		loopback.BilibiliWatched(15000),
		loopback.BilibiliLike(4321),
		[]byte(`{"cmd":"STOP_LIVE_ROOM_LIST","data":{}}`),
	)
	frame = append(frame, biliFixture(t, "heartbeat_reply.hex")...)
	var d Decoder
	var views []biliItemView
	var unknown []string
	err := d.Decode(frame, func(p Packet) error {
		if pop, ok := p.Popularity(); ok {
			views = append(views, biliView(biliMetric("21452505", item.MetricPopularity, float64(pop), biliNow, nil)))
			return nil
		}
		items, cmd, known, err := ParseCommand(nil, p.Body, "21452505", biliNow)
		if !known {
			unknown = append(unknown, cmd)
		}
		for _, it := range items {
			views = append(views, biliView(it))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 1 || unknown[0] != "STOP_LIVE_ROOM_LIST" {
		t.Errorf("unknown cmds = %v", unknown)
	}
	got, _ := json.MarshalIndent(views, "", "  ")
	got = append(got, '\n')
	testutil.Golden(t, filepath.Join("testdata", "bilibili", "show.golden.json"), got)
}
