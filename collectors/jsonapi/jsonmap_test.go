package jsonapi

import (
	"fmt"
	"lookout/config"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lookout/item"
)

func TestParseJSONPath(t *testing.T) {
	doc, err := DecodeJSON([]byte(`{"data":{"replies":[{"a":1},{"a":2}],"items":[{"text":"x"}],"odd.key":{"b":"dot"},"m":{"0":"zero-key"}},"user":{"screen_name":"s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want []string // rendered matches from All
	}{
		{"user.screen_name", []string{"s"}},
		{"$.user.screen_name", []string{"s"}},
		{"data.replies[*].a", []string{"1", "2"}},
		{"data.replies.*.a", []string{"1", "2"}},
		{"data.replies[1].a", []string{"2"}},
		{"data.items.0.text", []string{"x"}},
		{`data["odd.key"].b`, []string{"dot"}},
		{"data.m.0", []string{"zero-key"}},
		{"data.m.*", []string{"zero-key"}},
		{"user[*].screen_name", []string{"s"}}, // [*] over a lone object: the object
		{"data.*.b", []string{"dot"}},          // .* over an object: its values
		{"data.replies[5].a", nil},
		{"nope.deeper", nil},
	} {
		p, err := ParsePath(tc.path)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		var got []string
		for _, v := range p.All(doc) {
			got = append(got, jsonmapString(v))
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: got %v, want %v", tc.path, got, tc.want)
		}
	}
	for _, bad := range []string{"a.", "a[", "a[x]", "a[-1]", `a["x]`, "a]b", "a[0]b"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted", bad)
		}
	}
}

func TestJSONMapFixtures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		mapping Mapping
		want    []Record // ID, Text, Author, AuthorID, URL, TS, Value, Metrics checked
	}{
		{
			file: "bilicomments/wbi_main.json",
			mapping: Mapping{Items: "data.replies[*]", ID: "rpid_str", Text: "content.message", Author: "member.uname",
				AuthorID: "mid", Time: "ctime", TimeFormat: "unix", Value: "like", Kind: "comment"},
			want: []Record{
				{ID: "237494917584", Text: "great video", Author: "alice", AuthorID: "12345", TS: time.Unix(1723979200, 0), Value: 42},
				{ID: "237494917001", Text: "客服不理人，要求退款", Author: "小明", AuthorID: "67890", TS: time.Unix(1723975600, 0)},
			},
		},
		{
			file: "weibo/hotflow.json",
			mapping: Mapping{Items: "data.data", ID: "id", Text: "text", Author: "user.screen_name", AuthorID: "user.id",
				Time: "created_at", TimeFormat: "Mon Jan 02 15:04:05 -0700 2006", Value: "like_count", StripHTML: true},
			want: []Record{
				{ID: "4609573219287049", Text: "物流太慢了[怒] @品牌官博 & 客服", Author: "用户甲", AuthorID: "5678901234",
					TS: time.Date(2021, 2, 23, 4, 28, 47, 0, time.UTC), Value: 12},
				{ID: "4609573219280001", Text: "好评\n推荐", Author: "用户乙", AuthorID: "5678900001",
					TS: time.Date(2021, 2, 23, 4, 20, 1, 0, time.UTC), Value: 3},
			},
		},
		{
			file: "jsonapi/mastodon_statuses.json",
			mapping: Mapping{ID: "id", Text: "content", StripHTML: true, Author: "account.acct", AuthorID: "account.id",
				Time: "created_at", TimeFormat: "rfc3339", URL: "url", Metrics: map[string]string{"favourites": "favourites_count", "reblogs": "reblogs_count"}},
			want: []Record{
				{ID: "113500000000000002", Text: "Refund took three weeks & counting", Author: "bob", AuthorID: "1002",
					URL: "https://mastodon.example/@bob/113500000000000002", TS: time.Date(2026, 11, 20, 9, 15, 30, 0, time.UTC),
					Metrics: map[string]float64{"favourites": 4, "reblogs": 1}},
				{ID: "113500000000000001", Text: "Love the new release", Author: "amy", AuthorID: "1001",
					URL: "https://mastodon.example/@amy/113500000000000001", TS: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC),
					Metrics: map[string]float64{"favourites": 10, "reblogs": 2}},
			},
		},
		{
			// 64-bit ids must survive (9007199254740993 is not a float64)
			file: "jsonapi/nested.json",
			mapping: Mapping{Items: "result.pages[*].entries[*]", ID: "meta.id", Text: "title", Author: "author.names.0",
				Time: "meta.ts_ms", TimeFormat: "unix_ms", Metrics: map[string]string{"views": "counters.views"}, Count: "counters.likes"},
			want: []Record{
				{ID: "9007199254740993", Text: "first", Author: "Zhang San", TS: time.UnixMilli(1732100000123), Count: 7, Metrics: map[string]float64{"views": 1200}},
				{ID: "9007199254740994", Text: "second", Author: "Li Si", TS: time.UnixMilli(1732100001000), Metrics: map[string]float64{"views": 80}},
			},
		},
		{
			file: "jsonapi/rsshub_xiaohongshu.json",
			mapping: Mapping{Items: "items", ID: "id", Text: "content_html", StripHTML: true, Author: "authors[0].name",
				Time: "date_published", URL: "url"},
			want: []Record{
				{ID: "https://www.xiaohongshu.com/explore/65f000000000000000000002", Text: "包装破损，已申请退款", Author: "小红薯A",
					URL: "https://www.xiaohongshu.com/explore/65f000000000000000000002", TS: time.Date(2026, 11, 19, 8, 0, 0, 0, time.UTC)},
				{ID: "https://www.xiaohongshu.com/explore/65f000000000000000000001", Text: "很好用", Author: "小红薯B",
					URL: "https://www.xiaohongshu.com/explore/65f000000000000000000001", TS: time.Date(2026, 11, 18, 8, 0, 0, 0, time.UTC)},
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := NewMapper(tc.mapping)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := DecodeJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			els, found := m.Elements(doc)
			if !found || len(els) != len(tc.want) {
				t.Fatalf("elements: found=%v n=%d, want %d", found, len(els), len(tc.want))
			}
			for i, el := range els {
				r, err := m.Record(doc, el)
				if err != nil {
					t.Errorf("record %d: %v", i, err)
				}
				w := tc.want[i]
				if r.ID != w.ID || r.Text != w.Text || r.Author != w.Author || r.AuthorID != w.AuthorID || r.URL != w.URL ||
					!r.TS.Equal(w.TS) || r.Value != w.Value || r.Count != w.Count {
					t.Errorf("record %d:\n got %+v\nwant %+v", i, r, w)
				}
				if len(r.Metrics) != len(w.Metrics) {
					t.Errorf("record %d metrics: got %v want %v", i, r.Metrics, w.Metrics)
				}
				for k, v := range w.Metrics {
					if r.Metrics[k] != v {
						t.Errorf("record %d metric %s: got %v want %v", i, k, r.Metrics[k], v)
					}
				}
				if len(r.Raw) == 0 {
					t.Errorf("record %d: no raw payload", i)
				}
			}
		})
	}
}

func TestJSONMapItemsAndDefaults(t *testing.T) {
	m, err := NewMapper(Mapping{Text: "msg", Metrics: map[string]string{"viewers": "online"}, Kind: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := DecodeJSON([]byte(`{"msg":"hi","online":"321"}`))
	els, _ := m.Elements(doc)
	r, err := m.Record(doc, els[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.ID, "h") || len(r.ID) != 21 {
		t.Errorf("content-hash id = %q", r.ID)
	}
	r2, _ := m.Record(doc, els[0])
	if r2.ID != r.ID {
		t.Error("content-hash id not stable")
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	its := m.Items(r, item.Item{Source: "s", Room: "r"}, now)
	if len(its) != 2 || its[0].Kind != item.KindChat || its[0].Text != "hi" || !its[0].TS.Equal(now) ||
		its[1].Kind != item.KindMetric || its[1].Metric != "viewers" || its[1].Value != 321 || its[1].ID != r.ID+"#viewers" {
		t.Errorf("items = %+v", its)
	}

	for _, bad := range []Mapping{
		{Text: "a", Kind: "tweet"},
		{Text: "a", TimeFormat: "yesterday"},
		{Kind: "metric"},
		{},
		{Text: "a[", ID: "x"},
		{Text: "a", Metrics: map[string]string{"x": ""}},
		{Text: "a", TimeZone: "Mars/Olympus"},
	} {
		if _, err := NewMapper(bad); err == nil {
			t.Errorf("NewMapper(%+v) accepted", bad)
		}
	}
}

func TestJSONMapTimeFormats(t *testing.T) {
	sh := time.FixedZone("CST", 8*3600)
	for _, tc := range []struct {
		in     string
		format string
		want   time.Time
		bad    bool
	}{
		{`1723979200`, "unix", time.Unix(1723979200, 0), false},
		{`"1723979200"`, "unix", time.Unix(1723979200, 0), false},
		{`1723979200123`, "unix_ms", time.UnixMilli(1723979200123), false},
		{`1723979200123456`, "unix_us", time.UnixMicro(1723979200123456), false},
		{`1723979200123`, "auto", time.UnixMilli(1723979200123), false},
		{`1723979200`, "", time.Unix(1723979200, 0), false},
		{`"2026-11-20T09:15:30+08:00"`, "rfc3339", time.Date(2026, 11, 20, 1, 15, 30, 0, time.UTC), false},
		{`"Tue Feb 23 12:28:47 +0800 2021"`, "auto", time.Date(2021, 2, 23, 12, 28, 47, 0, sh), false},
		// No offset: the default zone, Beijing time (see TestJSONMapTimeZone).
		{`"2026-11-20 09:15"`, "2006-01-02 15:04", time.Date(2026, 11, 20, 9, 15, 0, 0, sh), false},
		{`"soon"`, "auto", time.Time{}, true},
		{`"x"`, "unix", time.Time{}, true},
		{`1e300`, "unix", time.Time{}, true},
		{`"2026-11-20"`, "rfc3339", time.Time{}, true},
	} {
		m, err := NewMapper(Mapping{Text: "t", Time: "ts", TimeFormat: tc.format})
		if err != nil {
			t.Fatal(err)
		}
		doc, err := DecodeJSON([]byte(`{"t":"x","ts":` + tc.in + `}`))
		if err != nil {
			t.Fatal(err)
		}
		r, err := m.Record(doc, doc)
		if tc.bad {
			if err == nil || !r.TS.IsZero() {
				t.Errorf("%s (%s): want error, got %v", tc.in, tc.format, r.TS)
			}
			continue
		}
		if err != nil || !r.TS.Equal(tc.want) {
			t.Errorf("%s (%s): got %v, %v; want %v", tc.in, tc.format, r.TS, err, tc.want)
		}
	}
}

// Times without an offset are in mapping.time_zone, else the source's
// timezone, else Asia/Shanghai; times with one keep it.
func TestJSONMapTimeZone(t *testing.T) {
	for _, tc := range []struct {
		mapZone, srcZone string
		in               string
		want             time.Time
	}{
		{"", "", `"2026-11-20 09:15:00"`, time.Date(2026, 11, 20, 1, 15, 0, 0, time.UTC)},
		{"", "UTC", `"2026-11-20 09:15:00"`, time.Date(2026, 11, 20, 9, 15, 0, 0, time.UTC)},
		{"Asia/Tokyo", "UTC", `"2026-11-20 09:15:00"`, time.Date(2026, 11, 20, 0, 15, 0, 0, time.UTC)},
		{"", "UTC", `"2026-11-20T09:15:00+08:00"`, time.Date(2026, 11, 20, 1, 15, 0, 0, time.UTC)},
	} {
		m, err := NewMapper(Mapping{Text: "t", Time: "ts", TimeZone: tc.mapZone}.TimeZoneFrom(config.SourceConfig{Timezone: tc.srcZone}))
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := DecodeJSON([]byte(`{"t":"x","ts":` + tc.in + `}`))
		r, err := m.Record(doc, doc)
		if err != nil || !r.TS.Equal(tc.want) {
			t.Errorf("%s (mapping %q, source %q): got %v, %v; want %v", tc.in, tc.mapZone, tc.srcZone, r.TS, err, tc.want)
		}
	}
}

func TestJSONMapStripHTML(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                            "plain",
		"a &amp; b":                        "a & b",
		`<p>x</p><p>y</p>`:                 "x\ny",
		`hi<img alt="[doge]" src="d.png">`: "hi[doge]",
		`<script>alert(1)</script>ok`:      "ok",
		`<a href="/n/x">@x</a> 说<br/>好`:    "@x 说\n好",
	} {
		if got := jsonmapStripHTML(in); got != want {
			t.Errorf("strip(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzJSONMap(f *testing.F) {
	for _, name := range []string{"bilicomments/wbi_main.json", "weibo/hotflow.json", "jsonapi/nested.json", "jsonapi/mastodon_statuses.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b, "data.replies[*]", "rpid_str")
		}
	}
	f.Add([]byte(`{"a":[{"b":1}]}`), "a[*]", "b")
	f.Add([]byte(`[1,2,3]`), "", "x")
	f.Add([]byte(`{"a":{"b":{"c":"<p>x</p>"}}}`), `a["b"]`, "c")
	f.Fuzz(func(t *testing.T, data []byte, items, id string) {
		p, err := ParsePath(items)
		if err != nil {
			return
		}
		m, err := NewMapper(Mapping{Items: items, ID: id, Text: "text", Time: "ts", Metrics: map[string]string{"v": "v"}, StripHTML: true})
		if err != nil {
			return
		}
		doc, err := DecodeJSON(data)
		if err != nil {
			return
		}
		_ = p.All(doc)
		els, _ := m.Elements(doc)
		for _, el := range els {
			r, _ := m.Record(doc, el)
			if r.ID == "" {
				t.Fatalf("empty id for element %v", el)
			}
			_ = m.Items(r, item.Item{}, time.Unix(0, 0))
		}
	})
}

func BenchmarkJSONMap(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "bilicomments", "wbi_main.json"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewMapper(Mapping{Items: "data.replies[*]", ID: "rpid_str", Text: "content.message", Author: "member.uname",
		AuthorID: "mid", Time: "ctime", TimeFormat: "unix", Value: "like", Kind: "comment"})
	if err != nil {
		b.Fatal(err)
	}
	base := item.Item{Source: "s", Platform: "bilibili"}
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	n := 0
	for b.Loop() {
		doc, err := DecodeJSON(data)
		if err != nil {
			b.Fatal(err)
		}
		els, _ := m.Elements(doc)
		for _, el := range els {
			r, _ := m.Record(doc, el)
			n += len(m.Items(r, base, now))
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "items/s")
}

func TestJSONMapRootPaths(t *testing.T) {
	m, err := NewMapper(Mapping{Items: "data[*]", ID: "id", Text: "t", Room: "^.room", Metrics: map[string]string{"viewers": "^online", "likes": "likes"}, Kind: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasFrameMetrics() {
		t.Error("^online is a frame metric")
	}
	doc, _ := DecodeJSON([]byte(`{"room":"r1","online":42,"data":[{"id":"1","t":"a","likes":3,"online":7}]}`))
	els, _ := m.Elements(doc)
	r, err := m.Record(doc, els[0])
	if err != nil || r.Room != "r1" || len(r.Metrics) != 1 || r.Metrics["likes"] != 3 {
		t.Errorf("record = %+v, %v: room from the root, only the item's own metric", r, err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fm := m.FrameMetrics(doc, "f1", item.Item{Source: "s"}, now)
	if len(fm) != 1 || fm[0].ID != "f1#viewers" || fm[0].Value != 42 || fm[0].Kind != item.KindMetric || !fm[0].TS.Equal(now) {
		t.Errorf("frame metrics = %+v", fm)
	}
	if fm := m.FrameMetrics(map[string]any{}, "f2", item.Item{}, now); len(fm) != 0 {
		t.Errorf("frame without the count: %+v", fm)
	}
	var names []string
	for _, f := range m.Fields() {
		names = append(names, fmt.Sprintf("%s=%s/%v", f.Name, f.Path, f.Path.Root()))
	}
	if got := strings.Join(names, " "); got != "items=data[*]/false id=id/false text=t/false room=^.room/true metrics.likes=likes/false metrics.viewers=^online/true" {
		t.Errorf("fields = %s", got)
	}
	if p, err := ParsePath("^"); err != nil || !p.Root() || p.IsZero() {
		t.Errorf("^ = %+v, %v", p, err)
	}
}
