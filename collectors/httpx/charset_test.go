package httpx

import (
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

func TestSniffUndeclaredCharsets(t *testing.T) {
	for _, c := range []struct {
		enc  encoding.Encoding
		text string
		want string
	}{
		{simplifiedchinese.GBK, "李四 发表了评论：今天天气很好，我们去公园散步吧。", "gb18030"},
		{simplifiedchinese.GBK, "李四", "gb18030"},
		{simplifiedchinese.GBK, "<html><body><li class=post>张三：产品质量太差了，退货！</li></body></html>", "gb18030"},
		{traditionalchinese.Big5, "李四發表了評論：今天天氣很好，我們去公園散步吧。", "big5"},
		{traditionalchinese.Big5, "<li>張三：產品質量太差了，退貨！</li>", "big5"},
		{japanese.ShiftJIS, "こんにちは世界。今日はいい天気ですね。", "shift_jis"},
		{charmap.Windows1252, "Café crème brûlée à la française, naïve señor", "windows-1252"},
		{charmap.ISO8859_1, "Grüße aus München", "windows-1252"},
		{encoding.Nop, "plain ASCII and UTF-8: 李四 Grüße", "utf-8"},
	} {
		b, err := c.enc.NewEncoder().Bytes([]byte(c.text))
		if err != nil {
			t.Fatal(err)
		}
		d := Sniff(b)
		if d.Charset != c.want || string(d.Text) != c.text || d.Replacements != 0 {
			t.Errorf("%q: sniffed %s %q (%d replacements), want %s", c.text, d.Charset, d.Text, d.Replacements, c.want)
		}
	}
}

func TestToUTF8Precedence(t *testing.T) {
	gbk, _ := simplifiedchinese.GBK.NewEncoder().Bytes([]byte("<p>李四</p>"))
	metaGBK, _ := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(`<meta charset="gbk"><p>李四</p>`))
	for _, c := range []struct {
		name         string
		body         []byte
		ct, forced   string
		charset, how string
		want         string
		garbled      bool
	}{
		{"undeclared GBK", gbk, "text/html", "", "gb18030", "sniffed", "<p>李四</p>", false},
		{"header", gbk, "text/html; charset=GBK", "", "gbk", "header", "<p>李四</p>", false},
		{"meta", metaGBK, "text/html", "", "gbk", "declared", `<meta charset="gbk"><p>李四</p>`, false},
		{"forced", gbk, "text/html; charset=utf-8", "gbk", "gbk", "forced", "<p>李四</p>", false},
		{"bom", []byte("\xef\xbb\xbf<p>李四</p>"), "text/html; charset=gbk", "", "utf-8", "bom", "<p>李四</p>", false},
		{"wrong header", []byte(strings.Repeat(string(gbk), 20)), "text/html; charset=utf-8", "", "utf-8", "header", "", true},
	} {
		d, err := ToUTF8(c.body, c.ct, c.forced)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if d.Charset != c.charset || d.How != c.how || (c.want != "" && string(d.Text) != c.want) || d.Garbled() != c.garbled {
			t.Errorf("%s: got %s/%s %q garbled=%v (%d), want %s/%s %q garbled=%v", c.name, d.Charset, d.How, d.Text, d.Garbled(), d.Replacements, c.charset, c.how, c.want, c.garbled)
		}
	}
	if _, err := ToUTF8(gbk, "", "klingon"); err == nil {
		t.Error("unknown forced charset accepted")
	}
}

func TestToUTF8XMLOnlyWhenUndeclared(t *testing.T) {
	gbk, _ := simplifiedchinese.GBK.NewEncoder().Bytes([]byte("<rss><channel><item><title>李四</title></item></channel></rss>"))
	if d, ok := ToUTF8XML(gbk, "application/rss+xml"); !ok || d.Charset != "gb18030" || !strings.Contains(string(d.Text), "李四") {
		t.Errorf("undeclared GBK feed: ok=%v %s %q", ok, d.Charset, d.Text)
	}
	declared := append([]byte(`<?xml version="1.0" encoding="gbk"?>`), gbk...)
	if _, ok := ToUTF8XML(declared, "application/rss+xml"); ok {
		t.Error("converted a feed whose XML declaration names its charset")
	}
	if _, ok := ToUTF8XML(gbk, "application/rss+xml; charset=gbk"); ok {
		t.Error("converted a feed whose Content-Type names its charset")
	}
	if _, ok := ToUTF8XML([]byte("<rss>李四</rss>"), ""); ok {
		t.Error("converted a UTF-8 feed")
	}
}

func FuzzSniff(f *testing.F) {
	gbk, _ := simplifiedchinese.GBK.NewEncoder().Bytes([]byte("李四发表了评论"))
	f.Add(gbk)
	f.Add([]byte("Café"))
	f.Add([]byte{0xff, 0xfe, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Sniff(b)
		if !strings.Contains("utf-8 gb18030 big5 shift_jis windows-1252", d.Charset) {
			t.Fatalf("charset %q", d.Charset)
		}
		if d.Replacements < 0 {
			t.Fatal("negative replacements")
		}
		if _, err := ToUTF8(b, "text/html", ""); err != nil {
			t.Fatal(err)
		}
	})
}

// charsetBenchPage is a forum page of about 64 KiB.
func charsetBenchPage() []byte {
	var b strings.Builder
	b.WriteString("<html><head><title>论坛</title></head><body><ul>\n")
	for i := 0; b.Len() < 64<<10; i++ {
		b.WriteString(`<li class="post"><a href="/t/1.html">客服不理人，退款迟迟不到账</a><span class="author">用户`)
		b.WriteString(strings.Repeat("甲", i%5+1))
		b.WriteString(`</span><div class="content">物流很快，包装完好，但是售后服务太差了，要求维权。</div></li>` + "\n")
	}
	b.WriteString("</ul></body></html>\n")
	return []byte(b.String())
}

func BenchmarkToUTF8(b *testing.B) {
	utf, _ := encoding.Nop.NewEncoder().Bytes(charsetBenchPage())
	gbk, _ := simplifiedchinese.GBK.NewEncoder().Bytes(charsetBenchPage())
	for _, c := range []struct {
		name, ct string
		body     []byte
	}{
		{"utf8_undeclared", "text/html", utf},
		{"gbk_header", "text/html; charset=gbk", gbk},
		{"gbk_undeclared", "text/html", gbk},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if _, err := ToUTF8(c.body, c.ct, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
