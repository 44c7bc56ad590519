package twitch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"lookout/collectors"
	"lookout/collectors/collectortest"
	"lookout/config"
	"lookout/internal/loopback"
	"lookout/item"
)

const (
	helixTestID     = "lookout-test-client"
	helixTestSecret = "s3cr3t-never-logged"
)

// helixEnv sets the credentials' variables and returns a poller env on clk
// with its log.
func helixEnv(t *testing.T, clk *collectortest.SteppedClock) (collectors.Env, *collectortest.LogBuf) {
	t.Helper()
	t.Setenv("TW_HELIX_ID", helixTestID)
	t.Setenv("TW_HELIX_SECRET", helixTestSecret)
	return collectortest.PollEnvLogs(t, clk, nil)
}

// helixSource is a twitch source reading chat from irc and Helix from srv.
func helixSource(t *testing.T, irc string, srv *loopback.HelixServer, channels string, extra string) config.SourceConfig {
	t.Helper()
	return collectortest.SourceConfig(t, fmt.Sprintf(`id: tw
kind: twitch
url: %s
channels: [%s]
labels: {team: ops}
helix:
  client_id: ${TW_HELIX_ID}
  client_secret: ${TW_HELIX_SECRET}
  every: 60s
  api_base: %s
  token_url: %s
%s`, irc, channels, srv.APIBase(), srv.TokenURL(), extra))
}

// nextPoll lets the poller's wait between polls pass on clk.
func nextPoll(t *testing.T, clk *collectortest.SteppedClock) time.Duration {
	t.Helper()
	d := clk.WaitAsked(t, "the wait before the next helix poll", func(d time.Duration) bool { return d >= 50*time.Second })
	clk.Advance(d)
	return d
}

func TestHelixConfig(t *testing.T) {
	t.Setenv("TW_HELIX_ID", helixTestID)
	t.Setenv("TW_HELIX_SECRET", helixTestSecret)
	t.Setenv("TW_HELIX_EMPTY", "")
	base := "id: t\nkind: twitch\nchannels: [a]\nhelix:\n"
	collectortest.RequireConfigErrors(t, registry(), []collectortest.ConfigError{
		{YAML: base + "  client_secret: ${TW_HELIX_SECRET}\n", Want: "5: sources[t].helix.client_id: required"},
		{YAML: base + "  client_id: ${TW_HELIX_ID}\n", Want: "5: sources[t].helix.client_secret: required"},
		{YAML: base + "  client_id: ${TW_HELIX_ID}\n  client_secret: plain\n", Want: "6: sources[t].helix.client_secret: secrets must come from the environment"},
		{YAML: base + "  client_id: ${TW_HELIX_EMPTY}\n  client_secret: ${TW_HELIX_SECRET}\n", Want: "5: sources[t].helix.client_id: environment variable TW_HELIX_EMPTY is empty"},
		{YAML: base + "  client_id: ${TW_HELIX_ID}\n  client_secret: ${TW_HELIX_SECRET}\n  every: 100ms\n", Want: "7: sources[t].helix.every: 100ms: poll at most once a second"},
		{YAML: base + "  client_id: ${TW_HELIX_ID}\n  client_secret: ${TW_HELIX_SECRET}\n  every: soon\n", Want: "7: sources[t].helix.every"},
		{YAML: base + "  client_id: ${TW_HELIX_ID}\n  client_secret: ${TW_HELIX_SECRET}\n  api_base: ftp://x/\n", Want: "7: sources[t].helix.api_base: \"ftp://x/\" is not an http(s) URL"},
		{YAML: base + "  client_id: ${TW_HELIX_ID}\n  client_secret: ${TW_HELIX_SECRET}\n  token_url: nowhere\n", Want: "7: sources[t].helix.token_url"},
		{YAML: base + "  client_id: ${TW_HELIX_ID}\n  client_secret: ${TW_HELIX_SECRET}\n  evry: 60s\n", Want: "7: sources[t].helix.evry: unknown field"},
		{YAML: base + "  - client_id\n", Want: "sources[t].helix"},
	})
	env := collectortest.StreamEnv(t, collectortest.NewSteppedClock())
	c, err := registry().New(collectortest.SourceConfig(t, base+"  client_id: ${TW_HELIX_ID}\n  client_secret: ${TW_HELIX_SECRET}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	h := c.(*twitchCollector).helix
	if h == nil || h.spec.Every.D() != time.Minute || h.spec.APIBase != HelixDefaultAPIBase || h.spec.TokenURL != HelixDefaultTokenURL ||
		h.spec.ClientID.Value() != helixTestID || h.spec.ClientSecret.Value() != helixTestSecret {
		t.Errorf("helix defaults: %+v", h)
	}
	// Without helix: nothing polls.
	c, err = registry().New(collectortest.SourceConfig(t, "id: t\nkind: twitch\nchannels: [a]\n"), env)
	if err != nil || c.(*twitchCollector).helix != nil {
		t.Errorf("no helix block: %v, poller %v", err, c.(*twitchCollector).helix)
	}
}

// TestHelixStreamLifecycle runs the whole collector against loopback chat
// and Helix servers: a channel going live gives live_status 1 at the
// stream's start and a viewers sample per poll, chat flows beside it, and
// the channel leaving the list gives live_status 0; one token serves every
// poll, and the request asks for all channels in one page.
func TestHelixStreamLifecycle(t *testing.T) {
	irc := loopback.NewTwitchServer()
	defer irc.Close()
	srv := loopback.NewHelixServer(helixTestID, helixTestSecret)
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	srv.SetClock(clk.Now)
	env, logs := helixEnv(t, clk)
	started := clk.Now().Add(-30 * time.Minute).Truncate(time.Second)
	srv.SetLive("examplechannel", loopback.HelixStream{ID: "40952121085", UserID: "1", Title: "new stream", ViewerCount: 1490, StartedAt: started})
	c, err := registry().New(helixSource(t, irc.URL, srv, "examplechannel, quiet", ""), env)
	if err != nil {
		t.Fatal(err)
	}
	sink := collectortest.NewChanSink()
	stop := collectortest.Start(t, c, sink.Emit)

	// First poll: the stream is live.
	st := sink.Next(t)
	if st.Kind != item.KindMetric || st.Metric != item.MetricLiveStatus || st.Value != 1 || st.Room != "examplechannel" ||
		!st.TS.Equal(started) || st.ID != "helix/40952121085/live_status/1" || st.Source != "tw" || st.Platform != "twitch" || st.Labels["team"] != "ops" {
		t.Errorf("first item %+v, want live_status 1 at the stream's start", st)
	}
	v := sink.Next(t)
	if v.Metric != item.MetricViewers || v.Value != 1490 || v.Room != "examplechannel" || !v.TS.Equal(clk.Now()) {
		t.Errorf("viewers %+v, want 1490 now", v)
	}

	// Chat goes on beside the poller.
	if _, ok := irc.WaitJoined(10*time.Second, "examplechannel", "quiet"); !ok {
		t.Fatal("channels not joined")
	}
	irc.Send("examplechannel", twitchFixtureLine)
	if it := sink.Next(t); it.Kind != item.KindChat || it.Text != "hello Kappa" {
		t.Errorf("chat item %+v", it)
	}

	// Second poll: more viewers, no second live_status.
	srv.SetLive("examplechannel", loopback.HelixStream{ID: "40952121085", ViewerCount: 2000, StartedAt: started})
	nextPoll(t, clk)
	if v := sink.Next(t); v.Metric != item.MetricViewers || v.Value != 2000 {
		t.Errorf("second poll %+v, want viewers 2000 only", v)
	}
	var saved map[string]helixLive
	if s, ok, _ := env.State.GetState(context.Background(), "tw", helixStateKey); !ok || json.Unmarshal([]byte(s), &saved) != nil ||
		saved["examplechannel"].ID != "40952121085" || !saved["examplechannel"].Started.Equal(started) {
		t.Errorf("state %q, want the live stream", s)
	}

	// The stream ends: absent from the next answer, and from the one asked
	// a quarter interval later to confirm it.
	srv.SetOffline("examplechannel")
	nextPoll(t, clk)
	firstAbsent := clk.Now()
	d := clk.WaitAsked(t, "the confirming poll", func(d time.Duration) bool { return d < 50*time.Second })
	if d != 15*time.Second {
		t.Errorf("confirming poll in %v, want a quarter of every (15s)", d)
	}
	clk.Advance(d)
	end := sink.Next(t)
	if end.Metric != item.MetricLiveStatus || end.Value != 0 || end.Room != "examplechannel" || !end.TS.Equal(firstAbsent) ||
		end.ID != "helix/40952121085/live_status/0" {
		t.Errorf("end %+v, want live_status 0 at the first poll without the stream", end)
	}
	nextPoll(t, clk) // offline stays quiet
	sink.None(t)
	stop()

	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1 for every poll", n)
	}
	reqs := srv.StreamRequests()
	if len(reqs) < 5 || strings.Join(reqs[0].Logins, ",") != "examplechannel,quiet" || reqs[0].First != "100" || reqs[0].Status != 200 {
		t.Errorf("requests %+v", reqs)
	}
	saved = nil
	if s, _, _ := env.State.GetState(context.Background(), "tw", helixStateKey); json.Unmarshal([]byte(s), &saved) != nil ||
		len(saved) != 1 || saved["examplechannel"].Live || saved["examplechannel"].ID != "40952121085" {
		t.Errorf("state after the end %q, want the stream, ended", s)
	}
	if n := collectortest.Count(env.Metrics.Items, "tw", "metric"); n != 4 {
		t.Errorf("items{metric} = %v, want 4", n)
	}
	if strings.Contains(logs.String(), helixTestSecret) || strings.Contains(logs.String(), "apptoken") {
		t.Errorf("the log shows a credential:\n%s", logs.String())
	}
}

// TestHelixTokenRefresh: a revoked token (401) gets one new token and the
// same poll goes on; a token near its expiry is replaced before it is used.
func TestHelixTokenRefresh(t *testing.T) {
	srv := loopback.NewHelixServer(helixTestID, helixTestSecret)
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env, _ := helixEnv(t, clk)
	srv.SetExpiresIn(100)
	srv.SetLive("a", loopback.HelixStream{ID: "1", ViewerCount: 5, StartedAt: clk.Now().Add(-time.Minute)})
	h := helixTestPoller(t, env, srv, "a")
	sink := &collectortest.Sink{}
	ctx := context.Background()
	poll := func() {
		t.Helper()
		if _, err := h.pollOnce(ctx, sink.Emit); err != nil {
			t.Fatal(err)
		}
	}
	poll()
	if n := srv.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests", n)
	}
	srv.RevokeTokens()
	poll()
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests after a 401, want 2", n)
	}
	reqs := srv.StreamRequests()
	if len(reqs) != 3 || reqs[1].Status != http.StatusUnauthorized || reqs[2].Status != http.StatusOK {
		t.Errorf("requests %+v, want ok, 401, ok", reqs)
	}
	clk.Advance(80 * time.Second) // within the lifetime less a tenth
	poll()
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests 80s into a 100s token", n)
	}
	clk.Advance(11 * time.Second) // past 90s: refreshed ahead of the expiry
	poll()
	if n := srv.TokenRequests(); n != 3 {
		t.Errorf("%d token requests 91s into a 100s token, want a new one", n)
	}
	if n := len(sink.All()); n != 5 { // live_status 1 and four viewers samples
		t.Errorf("%d items: %v", n, sink.IDs())
	}
}

func helixTestPoller(t *testing.T, env collectors.Env, srv *loopback.HelixServer, channels ...string) *helixPoller {
	t.Helper()
	src := collectortest.SourceConfig(t, "id: tw\nkind: twitch\n")
	spec := helixSpec{ClientID: config.NewSecret(helixTestID), ClientSecret: config.NewSecret(helixTestSecret),
		APIBase: srv.APIBase(), TokenURL: srv.TokenURL()}
	if err := spec.check(src); err != nil {
		t.Fatal(err)
	}
	h, err := newHelixPoller(src, env, spec, channels)
	if err != nil {
		t.Fatal(err)
	}
	h.load(context.Background())
	return h
}

// TestHelixRateLimit: a spent window (RateLimit-Remaining 0) makes the
// next poll wait for RateLimit-Reset, and a 429 is retried at its reset,
// not sooner.
func TestHelixRateLimit(t *testing.T) {
	srv := loopback.NewHelixServer(helixTestID, helixTestSecret)
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	srv.SetClock(func() time.Time { return clk.Now().Add(2 * time.Minute) }) // reset 3 minutes on
	env, _ := helixEnv(t, clk)
	h := helixTestPoller(t, env, srv, "a")
	srv.SetRemaining(0)
	wait, err := h.pollOnce(context.Background(), (&collectortest.Sink{}).Emit)
	if err != nil || wait < 3*time.Minute-time.Second || wait > 3*time.Minute {
		t.Errorf("spent window: wait %v, %v; want the reset, 3m", wait, err)
	}
	srv.SetRemaining(700)
	reset := strconv.FormatInt(clk.Now().Add(5*time.Minute).Unix(), 10)
	srv.FailNext(1, http.StatusTooManyRequests, http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {reset}})
	_, err = h.pollOnce(context.Background(), (&collectortest.Sink{}).Emit)
	if err == nil {
		t.Fatal("a 429 poll succeeded")
	}
	if d := h.failed(context.Background(), err); d < 5*time.Minute || d > 6*time.Minute {
		t.Errorf("429: retry in %v, want the reset (5m) and a little jitter", d)
	}
	if n := collectortest.Count(env.Metrics.Errors, "tw", "helix_rate_limited"); n != 1 {
		t.Errorf("errors{helix_rate_limited} = %v", n)
	}
}

// TestHelixFailureKeepsChat: credentials Twitch refuses make every Helix
// poll fail. The chat still flows, the source is not broken, the failure
// shows as the source's helix warning and in errors{reason="helix_auth"},
// the poller waits long before trying again, and the secret is in no log
// line.
func TestHelixFailureKeepsChat(t *testing.T) {
	irc := loopback.NewTwitchServer()
	defer irc.Close()
	srv := loopback.NewHelixServer(helixTestID, "the-right-secret")
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env, logs := helixEnv(t, clk)
	c, err := registry().New(helixSource(t, irc.URL, srv, "examplechannel", ""), env)
	if err != nil {
		t.Fatal(err)
	}
	health := c.(*twitchCollector).env.Health
	sink := collectortest.NewChanSink()
	stop := collectortest.Start(t, c, sink.Emit)
	if _, ok := irc.WaitJoined(10*time.Second, "examplechannel"); !ok {
		t.Fatal("chat not joined")
	}
	d := clk.WaitAsked(t, "the wait after a refused token", func(d time.Duration) bool { return d >= time.Minute })
	if d != helixMaxBackoff {
		t.Errorf("refused credentials: retry in %v, want %v", d, helixMaxBackoff)
	}
	irc.Send("examplechannel", twitchFixtureLine)
	if it := sink.Next(t); it.Kind != item.KindChat {
		t.Errorf("chat item %+v", it)
	}
	st := health.Status()
	if st.State != collectors.HealthOK || len(st.Warnings) != 1 || !strings.HasPrefix(st.Warnings[0], "helix: live status and viewers unknown: helix_auth") {
		t.Errorf("health %+v, want ok with a helix warning", st)
	}
	if n := collectortest.Count(env.Metrics.Errors, "tw", "helix_auth"); n != 1 {
		t.Errorf("errors{helix_auth} = %v", n)
	}
	sink.None(t)
	stop()
	if strings.Contains(logs.String(), helixTestSecret) {
		t.Errorf("the log shows the secret:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "invalid client secret") {
		t.Errorf("the log does not say why:\n%s", logs.String())
	}
}

// TestHelixStreamsAcrossRestartAndReplacement: a stream known live in the
// saved state and gone at the first poll of the next run is ended; a
// stream replaced by another between two polls is ended before the new
// one starts; an entry that cannot be used (type "") neither starts nor
// ends anything.
func TestHelixStreamsAcrossRestartAndReplacement(t *testing.T) {
	srv := loopback.NewHelixServer(helixTestID, helixTestSecret)
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env, _ := helixEnv(t, clk)
	ctx := context.Background()
	first := clk.Now().Add(-time.Hour)
	srv.SetLive("a", loopback.HelixStream{ID: "100", ViewerCount: 3, StartedAt: first})
	srv.SetLive("b", loopback.HelixStream{ID: "200", ViewerCount: 4, StartedAt: first})
	h := helixTestPoller(t, env, srv, "a", "b")
	if _, err := h.pollOnce(ctx, (&collectortest.Sink{}).Emit); err != nil {
		t.Fatal(err)
	}

	// The daemon stops; a ends, b's stream is replaced, then it restarts.
	srv.SetOffline("a")
	clk.Advance(time.Minute)
	second := clk.Now().Add(-5 * time.Minute)
	srv.SetLive("b", loopback.HelixStream{ID: "201", ViewerCount: 9, StartedAt: second})
	h = helixTestPoller(t, env, srv, "a", "b")
	sink := &collectortest.Sink{}
	pollAt := func(after time.Duration) []string {
		t.Helper()
		clk.Advance(after)
		sink.Reset()
		if _, err := h.pollOnce(ctx, sink.Emit); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range sink.All() {
			got = append(got, fmt.Sprintf("%s %s %s=%v @%s", it.Room, strings.TrimSuffix(it.ID, "/"+strconv.FormatInt(it.TS.UnixMilli(), 10)),
				it.Metric, it.Value, it.TS.Sub(clk.Now())))
		}
		return got
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	check("first poll after the restart", pollAt(0),
		"b helix/200/live_status/0 live_status=0 @-5m0.001s", // ended just before its successor began
		"b helix/201/live_status/1 live_status=1 @-5m0s",
		"b helix/201/viewers viewers=9 @0s")
	check("the confirming poll", pollAt(15*time.Second),
		"b helix/201/viewers viewers=9 @0s",
		"a helix/100/live_status/0 live_status=0 @-15s") // ended at the first poll without it

	// b's entry turns unusable: b is neither live nor ended.
	srv.SetLive("b", loopback.HelixStream{ID: "201", Type: "-", StartedAt: second})
	check("an unusable entry", pollAt(time.Minute))
	if n := collectortest.Count(env.Metrics.Errors, "tw", "helix_entry"); n != 1 {
		t.Errorf("errors{helix_entry} = %v", n)
	}
	if l := h.live["b"]; !l.Live || l.ID != "201" {
		t.Errorf("b after an unusable entry: %+v", l)
	}

	// b drops out of one answer only: nothing ends.
	srv.SetOffline("b")
	check("b missing once", pollAt(time.Minute))
	srv.SetLive("b", loopback.HelixStream{ID: "201", ViewerCount: 8, StartedAt: second})
	check("b back", pollAt(15*time.Second), "b helix/201/viewers viewers=8 @0s")

	// a's ended stream is listed again: it starts anew, now, under new ids,
	// and its next end is stored too.
	srv.SetLive("a", loopback.HelixStream{ID: "100", ViewerCount: 2, StartedAt: first})
	check("a's stream back after its end", pollAt(time.Minute),
		"a helix/100/live_status/1/r1 live_status=1 @0s",
		"a helix/100/viewers viewers=2 @0s",
		"b helix/201/viewers viewers=8 @0s")
	srv.SetOffline("a")
	pollAt(time.Minute)
	check("a's second end", pollAt(15*time.Second),
		"b helix/201/viewers viewers=8 @0s",
		"a helix/100/live_status/0/r1 live_status=0 @-15s")
}

func TestDecodeHelixStreams(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		want    string // login:problem,… ("" problem when usable)
		dropped int
		err     bool
	}{
		{"live", `{"data":[{"id":"1","user_login":"Afro","type":"live","viewer_count":3,"started_at":"2021-03-10T03:18:11Z"}],"pagination":{}}`, "afro:", 0, false},
		{"empty", `{"data":[],"pagination":{}}`, "", 0, false},
		{"no data", `{"error":"Unauthorized","status":401}`, "", 0, true},
		{"not json", `<html>`, "", 0, true},
		{"data not array", `{"data":{}}`, "", 0, true},
		{"type error", `{"data":[{"id":"1","user_login":"a","type":"","viewer_count":3,"started_at":"2021-03-10T03:18:11Z"}]}`, `a:type "", not live`, 0, false},
		{"no id", `{"data":[{"user_login":"a","type":"live","started_at":"2021-03-10T03:18:11Z"}]}`, "a:no stream id", 0, false},
		{"negative viewers", `{"data":[{"id":"1","user_login":"a","type":"live","viewer_count":-1,"started_at":"2021-03-10T03:18:11Z"}]}`, "a:viewer_count -1", 0, false},
		{"bad time", `{"data":[{"id":"1","user_login":"a","type":"live","started_at":"yesterday"}]}`, `a:started_at "yesterday" is not an RFC 3339 time`, 0, false},
		{"viewers a string", `{"data":[{"id":"1","user_login":"a","type":"live","viewer_count":"3","started_at":"2021-03-10T03:18:11Z"}]}`, "a:entry does not decode", 0, false},
		{"bad login", `{"data":[{"id":"1","user_login":"no spaces","type":"live"},{"id":2},7]}`, "", 3, false},
	} {
		streams, dropped, err := decodeHelixStreams([]byte(tc.body))
		var got []string
		for _, s := range streams {
			p := s.Problem
			if strings.HasPrefix(p, "entry does not decode") {
				p = "entry does not decode" // the JSON error's wording is Go's
			}
			got = append(got, s.UserLogin+":"+p)
		}
		if strings.Join(got, ",") != tc.want || dropped != tc.dropped || (err != nil) != tc.err {
			t.Errorf("%s: %q dropped %d err %v; want %q dropped %d err %v", tc.name, got, dropped, err, tc.want, tc.dropped, tc.err)
		}
	}
}

// FuzzHelixStreams: any answer decodes without panicking, and every entry
// that comes back usable has what the poller relies on.
func FuzzHelixStreams(f *testing.F) {
	f.Add([]byte(`{"data":[{"id":"40952121085","user_id":"101051819","user_login":"afro","user_name":"Afro","game_id":"32982","game_name":"Grand Theft Auto V","type":"live","title":"Jacob: Digital Den Laptops & Tablets","tags":["English"],"viewer_count":1490,"started_at":"2021-03-10T03:18:11Z","language":"en","thumbnail_url":"https://static-cdn.jtvnw.net/previews-ttv/live_user_afro-{width}x{height}.jpg","tag_ids":[],"is_mature":false}],"pagination":{"cursor":"eyJiIjp7IkN1cnNvciI6ImV5SnpJam94TlRBeUxqazFOVEl4TURJNU1EWTVPQ3dpWkNJNlptRnNjMlVzSW5RaU9uUnlkV1Y5In0sImEiOnsiQ3Vyc29yIjoiIn19"}}`))
	f.Add([]byte(`{"data":[],"pagination":{}}`))
	f.Add([]byte(`{"error":"Unauthorized","status":401,"message":"Invalid OAuth token"}`))
	f.Add([]byte(`{"data":[{"user_login":"A_1","type":"live","id":"1","viewer_count":1e3,"started_at":"2026-12-03T10:00:00+08:00"},null,{"user_login":7}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		streams, dropped, err := decodeHelixStreams(body)
		if err != nil && (len(streams) > 0 || dropped > 0) {
			t.Fatalf("error %v with %d streams", err, len(streams))
		}
		for _, s := range streams {
			if !twitchChannelRe.MatchString(s.UserLogin) {
				t.Fatalf("login %q", s.UserLogin)
			}
			if s.Problem == "" && (s.ID == "" || s.Type != "live" || s.ViewerCount < 0 || s.Started.IsZero()) {
				t.Fatalf("usable entry %+v", s)
			}
		}
	})
}

// BenchmarkHelixPoll measures one Get Streams answer for a full batch of
// 100 live channels: decoding it and turning it into items (the viewers
// samples of a poll; no live_status, the streams are known).
func BenchmarkHelixPoll(b *testing.B) {
	var entries []string
	batch := make([]string, helixBatch)
	live := map[string]helixLive{}
	for i := range helixBatch {
		batch[i] = fmt.Sprintf("channel_%03d", i)
		id := strconv.Itoa(40952121000 + i)
		live[batch[i]] = helixLive{ID: id, Live: true}
		entries = append(entries, fmt.Sprintf(`{"id":"%s","user_id":"%d","user_login":"%s","user_name":"Channel%d","game_id":"509658","game_name":"Just Chatting","type":"live","title":"直播间 sale %d","tags":["English"],"viewer_count":%d,"started_at":"2026-12-03T10:00:00Z","language":"en","thumbnail_url":"https://static-cdn.jtvnw.net/previews-ttv/live_user_%s-{width}x{height}.jpg","tag_ids":[],"is_mature":false}`,
			id, 1000+i, batch[i], i, i, 100*i, batch[i]))
	}
	body := []byte(`{"data":[` + strings.Join(entries, ",") + `],"pagination":{}}`)
	env := collectors.Env{State: collectors.NewMemState()}.WithDefaults()
	h := &helixPoller{id: "tw", env: env, live: live}
	emit := func(context.Context, item.Item) error { return nil }
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		streams, _, err := decodeHelixStreams(body)
		if err != nil || len(streams) != helixBatch {
			b.Fatal(err, len(streams))
		}
		if err := h.apply(ctx, emit, batch, streams); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHelixOutageRecovers: a Helix outage (503s) ends nothing, is retried
// with backoff, counted and shown as the helix warning and the last error;
// the first poll that works again clears the warning, and the stream that
// was live all along is neither restarted nor ended.
func TestHelixOutageRecovers(t *testing.T) {
	srv := loopback.NewHelixServer(helixTestID, helixTestSecret)
	defer srv.Close()
	clk := collectortest.NewSteppedClock()
	env, _ := helixEnv(t, clk)
	env.Health = collectors.NewSourceHealth(collectortest.SourceConfig(t, "id: tw\nkind: twitch\n"), collectors.HealthOptions{Clock: clk})
	srv.SetLive("a", loopback.HelixStream{ID: "7", ViewerCount: 10, StartedAt: clk.Now().Add(-time.Minute)})
	h := helixTestPoller(t, env, srv, "a")
	sink := collectortest.NewChanSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(ctx, sink.Emit)
	}()
	defer func() {
		cancel()
		<-done
	}()
	if it := sink.Next(t); it.Metric != item.MetricLiveStatus || it.Value != 1 {
		t.Fatalf("first item %+v", it)
	}
	sink.Next(t) // viewers

	srv.FailNext(2, http.StatusServiceUnavailable, nil)
	nextPoll(t, clk)
	// Two failed polls: each waits the backoff (a quarter of every, then
	// doubled) rather than the full interval.
	for i, want := range []time.Duration{15 * time.Second, 30 * time.Second} {
		d := clk.WaitAsked(t, "the backoff after a 503", func(time.Duration) bool { return true })
		if d < want/2 || d > want {
			t.Errorf("wait after failure %d: %v, want %v with jitter", i+1, d, want)
		}
		st := env.Health.Status()
		if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "helix_http_503") || !strings.HasPrefix(st.LastError, "helix_http_503: ") {
			t.Errorf("while failing: %+v", st)
		}
		clk.Advance(d)
	}
	if it := sink.Next(t); it.Metric != item.MetricViewers || it.Value != 10 {
		t.Errorf("after the outage %+v, want viewers only", it)
	}
	clk.WaitAsked(t, "the regular wait", func(d time.Duration) bool { return d >= 50*time.Second })
	if st := env.Health.Status(); len(st.Warnings) != 0 {
		t.Errorf("warning left after recovery: %v", st.Warnings)
	}
	if n := collectortest.Count(env.Metrics.Errors, "tw", "helix_http_503"); n != 2 {
		t.Errorf("errors{helix_http_503} = %v, want 2", n)
	}
	sink.None(t)
}
