package loopback

import (
	"encoding/xml"
	"io"
	"net/http"
	"testing"
	"time"
)

func feedGet(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestFeedServerConditionalGET(t *testing.T) {
	s := NewFeedServer()
	defer s.Close()
	doc := RSSDocument("Acme", []FeedEntrySpec{{ID: "1", Title: "t", Text: "x", Link: "https://e.example/1", Published: time.Unix(1717000000, 0)}})
	s.SetFeed("/f.xml", doc, "")

	resp, body := feedGet(t, s.URL("/f.xml"), nil)
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if resp.StatusCode != 200 || string(body) != string(doc) || etag == "" || lm == "" || etag != s.ETag("/f.xml") {
		t.Fatalf("first GET: %d etag %q lm %q", resp.StatusCode, etag, lm)
	}
	cases := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"etag", map[string]string{"If-None-Match": etag}, 304},
		{"weak etag in a list", map[string]string{"If-None-Match": `"nope", W/` + etag}, 304},
		{"star", map[string]string{"If-None-Match": "*"}, 304},
		{"other etag", map[string]string{"If-None-Match": `"other"`}, 200},
		{"last-modified", map[string]string{"If-Modified-Since": lm}, 304},
		{"older date", map[string]string{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 200},
		// If-None-Match decides alone when present (RFC 9110 §13.2.2).
		{"etag mismatch beats date", map[string]string{"If-None-Match": `"other"`, "If-Modified-Since": lm}, 200},
	}
	for _, tc := range cases {
		resp, body := feedGet(t, s.URL("/f.xml"), tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == 304 && (len(body) != 0 || resp.Header.Get("ETag") != etag) {
			t.Errorf("%s: 304 with body %q / etag %q", tc.name, body, resp.Header.Get("ETag"))
		}
	}
	// A new document gets new validators, and the old ones no longer match.
	s.SetFeed("/f.xml", RSSDocument("Acme v2", nil), "")
	if s.ETag("/f.xml") == etag {
		t.Fatal("ETag unchanged for a new body")
	}
	if resp, _ := feedGet(t, s.URL("/f.xml"), map[string]string{"If-None-Match": etag}); resp.StatusCode != 200 {
		t.Errorf("stale ETag: %d", resp.StatusCode)
	}
	if resp, _ := feedGet(t, s.URL("/f.xml"), map[string]string{"If-Modified-Since": lm}); resp.StatusCode != 200 {
		t.Errorf("stale Last-Modified: %d", resp.StatusCode)
	}
	reqs := s.Requests("/f.xml")
	if len(reqs) != 1+len(cases)+2 {
		t.Fatalf("recorded %d requests", len(reqs))
	}
	if r := reqs[1]; r.Method != http.MethodGet || r.Header.Get("If-None-Match") != etag || r.Status != 304 || r.Time.IsZero() {
		t.Errorf("recorded request: %+v", r)
	}
	if resp, _ := feedGet(t, s.URL("/missing.xml"), nil); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

func TestFeedServerFailures(t *testing.T) {
	s := NewFeedServer()
	defer s.Close()
	s.SetFeed("/f.xml", AtomDocument("Acme", nil), "application/atom+xml")
	s.FailNext("/f.xml", 429, "2", 2)
	s.FailNext("/f.xml", 503, "", 1)
	want := []struct {
		status int
		ra     string
	}{{429, "2"}, {429, "2"}, {503, ""}, {200, ""}}
	for i, w := range want {
		resp, _ := feedGet(t, s.URL("/f.xml"), nil)
		if resp.StatusCode != w.status || resp.Header.Get("Retry-After") != w.ra {
			t.Errorf("request %d: %d Retry-After %q, want %d %q", i, resp.StatusCode, resp.Header.Get("Retry-After"), w.status, w.ra)
		}
	}
	if ct := s.Requests("/f.xml")[3]; ct.Status != 200 {
		t.Errorf("recorded status %d", ct.Status)
	}

	s.HangNext("/f.xml", 1)
	c := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := c.Get(s.URL("/f.xml")); err == nil {
		t.Error("hanging request answered")
	}
	if resp, _ := feedGet(t, s.URL("/f.xml"), nil); resp.StatusCode != 200 {
		t.Errorf("after the hang: %d", resp.StatusCode)
	}
}

func TestFeedDocumentsAreWellFormed(t *testing.T) {
	entries := []FeedEntrySpec{
		{ID: "id-1", Title: "退款 & <投诉>", Text: "<p>客服不理人</p>", Link: "https://e.example/1?a=1&b=2", Author: "王芳", Published: time.Date(2024, 6, 1, 8, 0, 0, 0, time.UTC)},
		{Title: "no id", Link: "https://e.example/2"},
	}
	var rss struct {
		Channel struct {
			Title string `xml:"title"`
			Items []struct {
				Title       string `xml:"title"`
				Link        string `xml:"link"`
				Description string `xml:"description"`
				PubDate     string `xml:"pubDate"`
				Guid        string `xml:"guid"`
			} `xml:"item"`
		} `xml:"channel"`
	}
	if err := xml.Unmarshal(RSSDocument("Acme 品牌新闻", entries), &rss); err != nil {
		t.Fatal(err)
	}
	if rss.Channel.Title != "Acme 品牌新闻" || len(rss.Channel.Items) != 2 {
		t.Fatalf("rss: %+v", rss)
	}
	if it := rss.Channel.Items[0]; it.Title != "退款 & <投诉>" || it.Link != "https://e.example/1?a=1&b=2" || it.Description != "<p>客服不理人</p>" || it.PubDate != "Sat, 01 Jun 2024 08:00:00 +0000" || it.Guid != "id-1" {
		t.Errorf("rss item: %+v", it)
	}
	var atom struct {
		Entries []struct {
			ID      string `xml:"id"`
			Summary string `xml:"summary"`
			Link    struct {
				Href string `xml:"href,attr"`
			} `xml:"link"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal(AtomDocument("Acme", entries), &atom); err != nil {
		t.Fatal(err)
	}
	if len(atom.Entries) != 2 || atom.Entries[0].Summary != "<p>客服不理人</p>" || atom.Entries[1].ID != "https://e.example/2" || atom.Entries[0].Link.Href != "https://e.example/1?a=1&b=2" {
		t.Errorf("atom: %+v", atom)
	}
}
