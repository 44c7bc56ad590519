package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"

	"lookout/internal/testutil"
)

// trySite is a loopback site with what `lookout try` has to get right: a
// robots.txt, a feed that moved for good, an undeclared-GBK forum page with
// zone-less times, a JSON API with float-spelled ids and zero likes, and an
// API that answers with an error body.
func trySite(t *testing.T) *httptest.Server {
	forum, err := simplifiedchinese.GBK.NewEncoder().String(`<html><body><ul>
<li class="post" data-pid="11"><b>李四</b><p>客服不理人，要求退款</p><span>2026-11-20 09:15</span></li>
<li class="post" data-pid="10"><b>张三</b><p>物流很快，好评</p><span>2026-11-20 08:00</span></li>
</ul></body></html>`)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "User-agent: *\nDisallow: /private/\n")
	})
	mux.HandleFunc("/old.xml", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/feed.xml", http.StatusMovedPermanently)
	})
	feed := `<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>News</title>
<item><guid>n2</guid><title>Refund delays</title><description>Customers wait weeks.</description><link>https://news.example.com/2</link><pubDate>Wed, 20 Nov 2026 09:00:00 +0800</pubDate></item>
<item><guid>n1</guid><title>Launch</title><author>desk@example.com (Desk)</author><link>https://news.example.com/1</link><pubDate>Tue, 19 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>`
	for _, p := range []string{"/feed.xml", "/private/feed.xml"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/rss+xml")
			io.WriteString(w, feed)
		})
	}
	mux.HandleFunc("/forum", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, forum)
	})
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"code":0,"data":{"replies":[{"rpid":9006.0,"content":{"message":"还行"},"member":{"uname":"王五"},"ctime":1763601300,"like":0}]}}`)
	})
	mux.HandleFunc("/blocked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"code":-412,"message":"请求被拦截","ttl":1}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

const tryAPISpec = `{mapping: {items: "data.replies[*]", id: rpid, text: content.message, author: member.uname, time: ctime, value: like}}`

func TestTryGolden(t *testing.T) {
	srv := trySite(t)
	cfgPath := filepath.Join(t.TempDir(), "lookout.yaml")
	cfg := fmt.Sprintf("sources:\n  - id: news\n    kind: rss\n    url: %s/feed.xml\n    labels: {brand: acme}\n", srv.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		args    []string
		wantErr bool
	}{
		{[]string{"news", "--config", cfgPath}, false},
		{[]string{"--kind", "rss", srv.URL + "/old.xml"}, false},
		{[]string{"--kind", "html", srv.URL + "/forum", "--spec", `{selectors: {item: li.post, id: "@data-pid", author: b, text: p, time: span}}`}, false},
		{[]string{"--kind", "json_api", srv.URL + "/api", "--spec", tryAPISpec, "--format", "jsonl"}, false},
		{[]string{"--kind", "json_api", srv.URL + "/blocked", "--spec", tryAPISpec}, true},
		{[]string{"--kind", "rss", srv.URL + "/private/feed.xml"}, true},
	}
	var out bytes.Buffer
	for _, r := range runs {
		fmt.Fprintf(&out, "$ lookout try %s\n", strings.Join(r.args, " "))
		err := runTry(context.Background(), r.args, &out, &out)
		if (err != nil) != r.wantErr {
			t.Errorf("try %v: err %v, want error %v", r.args, err, r.wantErr)
		}
		if err != nil {
			fmt.Fprintf(&out, "error: %v\n", err)
		}
		out.WriteString("\n")
	}
	got := strings.ReplaceAll(out.String(), srv.URL, "http://SITE")
	got = strings.ReplaceAll(got, strings.TrimPrefix(srv.URL, "http://"), "SITE")
	got = strings.ReplaceAll(got, cfgPath, "lookout.yaml")
	got = regexp.MustCompile(`retry_in=\S+`).ReplaceAllString(got, "retry_in=…")
	got = regexp.MustCompile(`lookout/\S+ \(\+`).ReplaceAllString(got, "lookout/VERSION (+")
	testutil.Golden(t, filepath.Join("testdata", "try.golden"), []byte(got))
}
