package ui_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"lookout/daemon"
	"lookout/store"
)

// TestAckLikeCLI: Acknowledge on the alerts page and `lookout ack` land
// the same columns in SQLite; the page shows who acknowledged and stops
// offering the button; forged or unknown requests change nothing.
func TestAckLikeCLI(t *testing.T) {
	f := newFixture(t, "")
	_, page := get(t, http.DefaultClient, f.http.URL+"/alerts")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `action="/alerts/ack"`) {
		t.Fatalf("alerts page lacks the Acknowledge form:\n%s", page)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(form url.Values, hdr ...string) int {
		req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/alerts/ack", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := url.Values{"csrf": {m[1]}, "alert": {"crisis/100/1"}, "comment": {"on it"}}
	for _, c := range []struct {
		name string
		form url.Values
		hdr  []string
		want int
	}{
		{"no form token", url.Values{"alert": {"crisis/100/1"}}, nil, 403},
		{"other origin", good, []string{"Origin", "http://evil.example"}, 403},
		{"cross-site fetch", good, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"unknown alert", url.Values{"csrf": {m[1]}, "alert": {"nope"}}, nil, 404},
	} {
		if got := post(c.form, c.hdr...); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	if n := f.one(t, `SELECT count(*) FROM alerts WHERE acked_at IS NOT NULL`); n != 0 {
		t.Fatalf("%v alerts acknowledged by refused requests", n)
	}
	if got := post(good, "Origin", f.http.URL, "Sec-Fetch-Site", "same-origin"); got != http.StatusSeeOther {
		t.Fatalf("ack from the page: status %d", got)
	}
	var at, by, comment string
	if err := f.db.QueryRow(`SELECT acked_at, acked_by, ack_comment FROM alerts WHERE id = 'crisis/100/1'`).Scan(&at, &by, &comment); err != nil {
		t.Fatal(err)
	}
	if at != store.FormatTime(now) || by != "dashboard" || comment != "on it" {
		t.Errorf("dashboard stored ack %s %q %q", at, by, comment)
	}
	_, page = get(t, http.DefaultClient, f.http.URL+"/alerts")
	if strings.Contains(page, `action="/alerts/ack"`) || !strings.Contains(html.UnescapeString(page), "Acknowledged by dashboard") {
		t.Error("the acknowledged alert still offers Acknowledge, or does not say who")
	}
	// The CLI on the same database: the first acknowledgement stands.
	var out strings.Builder
	if err := daemon.Ack(context.Background(), f.path, []string{"crisis/100/1"}, "me", "also me", &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "already acknowledged by dashboard") {
		t.Errorf("CLI said %q", out.String())
	}
	// The CLI on a database of its own stores what the dashboard did.
	g := newFixture(t, "")
	out.Reset()
	if err := daemon.Ack(context.Background(), g.path, []string{"crisis/100/1"}, "me", "on it", &out); err != nil {
		t.Fatal(err)
	}
	var cliAt, cliBy, cliComment string
	if err := g.db.QueryRow(`SELECT acked_at, acked_by, ack_comment FROM alerts WHERE id = 'crisis/100/1'`).Scan(&cliAt, &cliBy, &cliComment); err != nil {
		t.Fatal(err)
	}
	if cliBy != "me" || cliComment != "on it" || !strings.HasPrefix(out.String(), "acknowledged crisis/100/1") {
		t.Errorf("CLI stored %q %q and said %q", cliBy, cliComment, out.String())
	}
	_, page = get(t, http.DefaultClient, g.http.URL+"/alerts")
	if strings.Contains(page, `action="/alerts/ack"`) || !strings.Contains(html.UnescapeString(page), "Acknowledged by me") {
		t.Error("the page does not show the CLI's acknowledgement")
	}
	if err := daemon.Ack(context.Background(), g.path, []string{"nope"}, "me", "", io.Discard); err == nil {
		t.Error("acknowledging an unknown alert succeeded")
	}
}

// TestReviewsPage: stored reviews and digests are listed newest first,
// each linking to its HTML report, which opens.
func TestReviewsPage(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	end := now.Add(-time.Minute)
	for _, rec := range []store.ReportRecord{
		{ID: "review:live/100@x", Kind: store.ReportReview, Source: "live", Platform: "bilibili", Room: "100",
			From: now.Add(-20 * time.Minute), To: end, Title: "review", Markdown: "m", Receivers: []string{"ding", "slack"}},
		{ID: "digest:daily@y", Kind: store.ReportDigest, Schedule: "daily", From: now.Add(-48 * time.Hour), To: now.Add(-24 * time.Hour),
			Title: "digest", Markdown: "m", Receivers: []string{"ding"}},
	} {
		if _, err := f.st.QueueReport(ctx, rec, nil, now); err != nil {
			t.Fatal(err)
		}
	}
	code, page := get(t, http.DefaultClient, f.http.URL+"/reviews")
	if code != 200 {
		t.Fatalf("/reviews: %d", code)
	}
	i, j := strings.Index(page, `data-report="review:live/100@x"`), strings.Index(page, `data-report="digest:daily@y"`)
	if i < 0 || j < 0 || i > j || !strings.Contains(page, "ding, slack") {
		t.Fatalf("reviews page lacks the two reports, newest first:\n%s", page)
	}
	link := reviewLinkRE.FindStringSubmatch(page[i:])
	if link == nil {
		t.Fatalf("no report link:\n%s", page[i:])
	}
	u := html.UnescapeString(link[1])
	if !strings.Contains(u, "room=100") {
		t.Errorf("review link %s lacks the room", u)
	}
	code, rep := get(t, http.DefaultClient, f.http.URL+u)
	if code != 200 || !strings.Contains(rep, "主播") {
		t.Errorf("review link %s: %d, no report of the room's stream", u, code)
	}
}

var reviewLinkRE = regexp.MustCompile(`<a href="(/report\?[^"]+)"`)
