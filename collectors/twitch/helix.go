package twitch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/poll"
	"lookout/config"
	"lookout/internal/httpurl"
	"lookout/item"
)

// The Helix poller: IRC chat never says when a stream starts or ends, and
// carries no viewer count. With a `helix:` block the collector also polls
// Twitch's Get Streams endpoint for its channels with an app access token
// (client-credentials flow) and emits, per channel, what the Bilibili and
// Douyin collectors emit from their rooms:
//
//   - item.MetricLiveStatus 1 when a stream is first seen live, at the
//     stream's started_at;
//   - item.MetricViewers (viewer_count) at every poll while it is live;
//   - item.MetricLiveStatus 0 when the stream is gone: its channel is left
//     out of two answers in a row (the second asked a quarter interval
//     after the first), at the time of the first; or it is listed with a
//     new stream id (the old stream ended between two polls).
//
// The channels' streams are kept in the source's state (key helixStateKey)
// after their items are emitted, so a daemon restarted after a stream ended
// still emits that end at its first polls. A failing poll (token refused,
// HTTP errors, an answer that does not decode) is logged, counted under
// errors{reason="helix_…"}, recorded as the source's last error and shown
// as its "helix" health warning until a poll works; it never stops the
// chat or makes the source broken, and no stream is ended by a poll that
// failed. Wire details: docs/twitch-helix.md.
//
//	helix:
//	  client_id: ${TWITCH_CLIENT_ID}
//	  client_secret: ${TWITCH_CLIENT_SECRET}
//	  every: 60s                                   # default; at least 1s
//	  api_base: https://api.twitch.tv/helix        # default
//	  token_url: https://id.twitch.tv/oauth2/token # default

const (
	// HelixDefaultAPIBase is the Helix API (Get Streams is /streams).
	HelixDefaultAPIBase = "https://api.twitch.tv/helix"
	// HelixDefaultTokenURL is Twitch's OAuth token endpoint.
	HelixDefaultTokenURL = "https://id.twitch.tv/oauth2/token"
	helixDefaultEvery    = time.Minute
	helixMinEvery        = time.Second
	// helixBatch is how many user_login parameters one Get Streams request
	// may carry (and the page size asked for, so one page holds them all).
	helixBatch = 100
	// helixMaxBody caps a Get Streams or token answer (100 streams are
	// about 100 KB).
	helixMaxBody = 4 << 20
	// helixStateKey holds the streams known live, by channel.
	helixStateKey = "helix_live"
	// helixMaxBackoff caps the wait after repeated failures.
	helixMaxBackoff = 15 * time.Minute
)

// helixSpec is the `helix:` block of a twitch source.
type helixSpec struct {
	ClientID     config.Secret   `yaml:"client_id"`
	ClientSecret config.Secret   `yaml:"client_secret"`
	Every        config.Duration `yaml:"every"`
	APIBase      string          `yaml:"api_base"`
	TokenURL     string          `yaml:"token_url"`

	line  int            // of the block
	lines map[string]int // of each key
}

// UnmarshalYAML decodes the block strictly (an unknown key names its line)
// and remembers where each key is, for the errors of check.
func (h *helixSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain helixSpec
	var p plain
	if err := config.DecodeStrict(n, &p, ""); err != nil {
		var fe *config.FieldError
		if errors.As(err, &fe) && fe.Field != "" {
			return &config.FieldError{Line: fe.Line, Field: "." + fe.Field, Msg: fe.Msg}
		}
		return err
	}
	p.line, p.lines = n.Line, map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p.lines[n.Content[i].Value] = n.Content[i].Line
	}
	*h = helixSpec(p)
	return nil
}

// check validates the block and fills defaults; errors name the source's
// field and line.
func (h *helixSpec) check(src config.SourceConfig) error {
	bad := func(key, format string, args ...any) error {
		line := h.lines[key]
		if line == 0 {
			line = h.line
		}
		return &config.FieldError{Line: line, Field: fmt.Sprintf("sources[%s].helix.%s", src.ID, key), Msg: fmt.Sprintf(format, args...)}
	}
	for _, s := range []struct {
		key string
		v   config.Secret
	}{{"client_id", h.ClientID}, {"client_secret", h.ClientSecret}} {
		switch {
		case !s.v.IsSet():
			return bad(s.key, "required: ${ENV_VAR} naming the variable that holds the Twitch application's %s", s.key)
		case s.v.Missing():
			return bad(s.key, "environment variable %s is empty", s.v.Var)
		}
	}
	switch every := h.Every.D(); {
	case every == 0:
		h.Every = config.Duration(helixDefaultEvery)
	case every < helixMinEvery:
		return bad("every", "%s: poll at most once a second (default %s)", every, helixDefaultEvery)
	}
	for _, u := range []struct {
		key string
		v   *string
		def string
	}{{"api_base", &h.APIBase, HelixDefaultAPIBase}, {"token_url", &h.TokenURL, HelixDefaultTokenURL}} {
		if *u.v == "" {
			*u.v = u.def
		}
		p, err := url.Parse(*u.v)
		if err != nil || !httpurl.OK(p) {
			return bad(u.key, "%q is not an http(s) URL", httpx.RedactURL(*u.v))
		}
		*u.v = strings.TrimRight(*u.v, "/")
	}
	return nil
}

// helixStream is one entry of Get Streams' data. Problem, when set, says
// why the entry cannot be used; its channel then counts as neither live nor
// offline for that poll.
type helixStream struct {
	ID          string `json:"id"`
	UserLogin   string `json:"user_login"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	ViewerCount int64  `json:"viewer_count"`
	StartedAt   string `json:"started_at"`

	Started time.Time `json:"-"`
	Problem string    `json:"-"`
}

// decodeHelixStreams reads a Get Streams answer. The answer itself must be
// an object with a data array; an entry that is not usable (no id, a login
// that is not one, a negative viewer count, a started_at that is not a
// time, a type other than "live") comes back with Problem set; an entry
// with no readable login at all is dropped and counted in dropped.
func decodeHelixStreams(body []byte) (streams []helixStream, dropped int, err error) {
	var page struct {
		Data *[]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, 0, fmt.Errorf("helix streams: %w", err)
	}
	if page.Data == nil {
		return nil, 0, errors.New("helix streams: the answer has no data array")
	}
	for _, raw := range *page.Data {
		var s helixStream
		if err := json.Unmarshal(raw, &s); err != nil {
			// Keep the login if it can be read, so the channel is not
			// taken for offline.
			var login struct {
				UserLogin string `json:"user_login"`
			}
			if json.Unmarshal(raw, &login) != nil || !twitchChannelRe.MatchString(strings.ToLower(login.UserLogin)) {
				dropped++
				continue
			}
			s = helixStream{UserLogin: login.UserLogin, Problem: "entry does not decode: " + err.Error()}
		}
		s.UserLogin = strings.ToLower(s.UserLogin)
		if !twitchChannelRe.MatchString(s.UserLogin) {
			dropped++
			continue
		}
		if s.Problem == "" {
			switch t, terr := time.Parse(time.RFC3339, s.StartedAt); {
			case s.Type != "live":
				s.Problem = fmt.Sprintf("type %q, not live", s.Type)
			case s.ID == "":
				s.Problem = "no stream id"
			case s.ViewerCount < 0:
				s.Problem = fmt.Sprintf("viewer_count %d", s.ViewerCount)
			case terr != nil:
				s.Problem = fmt.Sprintf("started_at %q is not an RFC 3339 time", s.StartedAt)
			default:
				s.Started = t.UTC()
			}
		}
		streams = append(streams, s)
	}
	return streams, dropped, nil
}

// helixLive is a channel's latest stream as kept in the source's state:
// live, or the one that ended last (so that the same stream listed again
// after its end, which Twitch's listing does now and then, starts anew
// under new item ids instead of being taken for a repeat).
type helixLive struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started_at"`
	Live    bool      `json:"live"`
	// Seq counts the times the stream came back after an end; it makes the
	// ids of its live_status samples differ from the earlier ones.
	Seq int `json:"seq,omitempty"`
}

// suffix is what the stream's live_status item ids end with.
func (l helixLive) suffix() string {
	if l.Seq == 0 {
		return ""
	}
	return "/r" + strconv.Itoa(l.Seq)
}

// helixPoller polls Get Streams for a twitch source's channels. Its fields
// belong to the goroutine running run.
type helixPoller struct {
	id       string
	labels   map[string]string
	env      collectors.Env
	http     *httpx.Client
	spec     helixSpec
	channels []string

	token     string
	refreshAt time.Time
	live      map[string]helixLive
	missing   map[string]time.Time // live channels one poll left out, since when
	backoff   *httpx.Backoff
}

func newHelixPoller(src config.SourceConfig, env collectors.Env, spec helixSpec, channels []string) (*helixPoller, error) {
	hc, err := env.HTTP.ForSource(src)
	if err != nil {
		return nil, err
	}
	every := spec.Every.D()
	return &helixPoller{id: src.ID, labels: src.Labels, env: env, http: hc, spec: spec, channels: channels,
		live: map[string]helixLive{}, missing: map[string]time.Time{}, backoff: &httpx.Backoff{Base: min(max(every/4, 5*time.Second), time.Minute), Max: max(helixMaxBackoff, every)}}, nil
}

// helixError names a failed poll for metrics (errors{reason}) and says
// whether waiting will mend it.
type helixError struct {
	reason    string
	permanent bool
	err       error
}

func (e *helixError) Error() string { return e.err.Error() }
func (e *helixError) Unwrap() error { return e.err }

// run polls until ctx ends.
func (h *helixPoller) run(ctx context.Context, emit collectors.Emit) {
	h.load(ctx)
	for {
		wait, err := h.pollOnce(ctx, emit)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// The backoff, or what the server asked for (a failed poll
			// is retried sooner than the regular interval).
			wait = h.failed(ctx, err)
		} else {
			h.backoff.Reset()
			h.env.Health.Warn("helix", "")
		}
		if httpx.Sleep(ctx, h.env.Clock, wait) != nil {
			return
		}
	}
}

// failed logs, counts and shows err and returns how long to wait.
func (h *helixPoller) failed(ctx context.Context, err error) time.Duration {
	reason := "helix_" + poll.Reason(err)
	var he *helixError
	if errors.As(err, &he) {
		reason = "helix_" + he.reason
	}
	wait := httpx.RetryDelay(err, h.backoff)
	if he != nil && he.permanent {
		wait = h.backoff.Max
	}
	h.env.Metrics.Errors.WithLabelValues(h.id, reason).Inc()
	h.env.Log.WarnContext(ctx, "twitch helix poll failed; chat goes on", "reason", reason, "err", err, "retry_in", wait.Round(time.Millisecond))
	h.env.Health.Warned(reason, err)
	h.env.Health.Warn("helix", fmt.Sprintf("live status and viewers unknown: %s (%v)", reason, err))
	return wait
}

// load reads the streams known live from the source's state.
func (h *helixPoller) load(ctx context.Context) {
	v, ok, err := h.env.State.GetState(ctx, h.id, helixStateKey)
	if err == nil && ok {
		err = json.Unmarshal([]byte(v), &h.live)
	}
	if err != nil {
		h.env.Metrics.Errors.WithLabelValues(h.id, "state").Inc()
		h.env.Log.ErrorContext(ctx, "twitch helix: cannot read the streams known live; a stream that ended while lookout was down gets no end", "err", err)
		h.live = map[string]helixLive{}
	}
	// Channels no longer configured are forgotten.
	keep := make(map[string]bool, len(h.channels))
	for _, ch := range h.channels {
		keep[ch] = true
	}
	for ch := range h.live {
		if !keep[ch] {
			delete(h.live, ch)
		}
	}
}

// save writes the streams known live, after the items that told of them.
func (h *helixPoller) save(ctx context.Context) {
	b, _ := json.Marshal(h.live)
	sctx, cancel := collectors.StateContext(ctx)
	defer cancel()
	if err := h.env.State.PutState(sctx, h.id, helixStateKey, string(b)); err != nil {
		h.env.StateSaveFailed(ctx, h.id, "twitch helix streams known live", err)
	}
}

// pollOnce polls every channel once and returns how long to wait before
// the next poll: the interval, shorter while a live channel's absence
// waits for its confirmation, longer when the rate-limit window is spent.
func (h *helixPoller) pollOnce(ctx context.Context, emit collectors.Emit) (time.Duration, error) {
	every := h.spec.Every.D()
	wait := poll.Interval(every, 0.1)
	var spent time.Duration
	for i := 0; i < len(h.channels); i += helixBatch {
		batch := h.channels[i:min(i+helixBatch, len(h.channels))]
		streams, hdr, err := h.fetch(ctx, batch)
		if err != nil {
			return wait, err
		}
		if d, ok := httpx.RateLimitSpent(hdr, h.env.Clock.Now()); ok {
			// The window is spent: the next request waits for its reset.
			h.env.Log.InfoContext(ctx, "twitch helix rate limit spent; waiting for its reset", "reset_in", d)
			spent = max(spent, d)
		}
		if err := h.apply(ctx, emit, batch, streams); err != nil {
			return wait, err
		}
	}
	if len(h.missing) > 0 {
		wait = min(wait, max(every/4, helixMinEvery))
	}
	return max(wait, spent), nil
}

// apply turns one answer about batch into items, emits them and saves the
// channels' streams.
//
// A stream listed for the first time starts at its started_at (a channel
// whose previous stream was live has that one ended just before). A live
// stream left out of one answer is ended only when the next answer, asked
// sooner than the interval, leaves it out too, at the time of the first:
// Twitch's listing drops a live stream now and then for a poll. A stream
// listed again after its end starts anew at the poll that lists it.
func (h *helixPoller) apply(ctx context.Context, emit collectors.Emit, batch []string, streams []helixStream) error {
	now := h.env.Clock.Now().UTC()
	asked := make(map[string]bool, len(batch))
	for _, ch := range batch {
		asked[ch] = true
	}
	seen := make(map[string]bool, len(streams))
	var items []item.Item
	changed := false
	status := func(ch string, l helixLive, v float64, ts time.Time) {
		items = append(items, h.metric(ch, l.ID, item.MetricLiveStatus, v, ts, "/live_status/"+strconv.Itoa(int(v))+l.suffix()))
	}
	for _, s := range streams {
		if !asked[s.UserLogin] || seen[s.UserLogin] {
			continue
		}
		seen[s.UserLogin] = true
		if s.Problem != "" {
			h.env.Metrics.Errors.WithLabelValues(h.id, "helix_entry").Inc()
			h.env.Log.WarnContext(ctx, "twitch helix: unusable stream entry; the channel's state stays as it was", "channel", s.UserLogin, "problem", s.Problem)
			h.env.Health.Warned("helix_entry", fmt.Errorf("helix stream of %s: %s", s.UserLogin, s.Problem))
			continue
		}
		delete(h.missing, s.UserLogin)
		prev, had := h.live[s.UserLogin]
		var next helixLive
		switch {
		case had && prev.Live && prev.ID == s.ID:
			// Still live.
		case had && !prev.Live && prev.ID == s.ID:
			// Listed again after its end: a new start, now.
			next = helixLive{ID: s.ID, Started: now, Live: true, Seq: prev.Seq + 1}
		default:
			if had && prev.Live {
				// A new stream began since the last poll: the old one
				// ended before it started.
				end := s.Started.Add(-time.Millisecond)
				if !end.After(prev.Started) || end.After(now) {
					end = now
				}
				status(s.UserLogin, prev, 0, end)
				h.env.Log.InfoContext(ctx, "twitch stream ended", "channel", s.UserLogin, "stream", prev.ID)
			}
			next = helixLive{ID: s.ID, Started: s.Started, Live: true}
			if next.Started.After(now) {
				next.Started = now
			}
		}
		if next.Live {
			status(s.UserLogin, next, 1, next.Started)
			h.live[s.UserLogin] = next
			changed = true
			h.env.Log.InfoContext(ctx, "twitch stream live", "channel", s.UserLogin, "stream", s.ID, "started_at", next.Started, "title", s.Title)
		}
		items = append(items, h.metric(s.UserLogin, s.ID, item.MetricViewers, float64(s.ViewerCount), now,
			"/viewers/"+strconv.FormatInt(now.UnixMilli(), 10)))
	}
	for _, ch := range batch {
		prev, had := h.live[ch]
		if !had || !prev.Live || seen[ch] {
			continue
		}
		since, pending := h.missing[ch]
		if !pending {
			h.missing[ch] = now // ended, unless the next answer lists it
			continue
		}
		status(ch, prev, 0, since)
		prev.Live = false
		h.live[ch] = prev
		delete(h.missing, ch)
		changed = true
		h.env.Log.InfoContext(ctx, "twitch stream ended", "channel", ch, "stream", prev.ID)
	}
	counted := h.env.Metrics.ItemCounter(h.id)
	for _, it := range items {
		if err := emit(ctx, it); err != nil {
			return err
		}
		counted.Inc(it.Kind)
	}
	if changed {
		h.save(ctx)
	}
	return nil
}

func (h *helixPoller) metric(room, streamID, name string, v float64, ts time.Time, idSuffix string) item.Item {
	return item.Item{Source: h.id, Platform: "twitch", Kind: item.KindMetric, Room: room, ID: "helix/" + streamID + idSuffix,
		TS: ts, Metric: name, Value: v, Labels: h.labels}
}

// fetch asks Get Streams about logins. A 401 (the token expired or was
// revoked) gets one new token and one retry.
func (h *helixPoller) fetch(ctx context.Context, logins []string) ([]helixStream, http.Header, error) {
	q := url.Values{"user_login": logins, "first": {strconv.Itoa(helixBatch)}}
	u := h.spec.APIBase + "/streams?" + q.Encode()
	for attempt := 0; ; attempt++ {
		tok, err := h.appToken(ctx)
		if err != nil {
			return nil, nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Client-Id", h.spec.ClientID.Value())
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		resp, err := h.http.Do(ctx, req)
		if err != nil {
			return nil, nil, fmt.Errorf("helix streams: %w", err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			_ = resp.Body.Close()
			h.token = "" // expired or revoked: get a new one
			h.env.Log.InfoContext(ctx, "twitch helix refused the app token; getting a new one")
			continue
		}
		if err := httpx.CheckStatus(resp, h.env.Clock.Now()); err != nil {
			var se *httpx.StatusError
			if errors.As(err, &se) && (se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden) {
				h.token = ""
				return nil, nil, &helixError{reason: "auth", err: fmt.Errorf("helix streams refused a new app token: %w", err)}
			}
			return nil, nil, err
		}
		body, err := httpx.ReadBody(resp, helixMaxBody)
		_ = resp.Body.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("helix streams: %w", err)
		}
		streams, dropped, err := decodeHelixStreams(body)
		if err != nil {
			return nil, nil, &helixError{reason: "decode", err: err}
		}
		if dropped > 0 {
			h.env.Metrics.Errors.WithLabelValues(h.id, "helix_entry").Add(float64(dropped))
			h.env.Log.WarnContext(ctx, "twitch helix: stream entries without a usable user_login dropped", "dropped", dropped)
		}
		return streams, resp.Header, nil
	}
}

// appToken returns the app access token, getting a new one by the
// client-credentials flow when there is none or it is near its expiry.
func (h *helixPoller) appToken(ctx context.Context) (string, error) {
	now := h.env.Clock.Now()
	if h.token != "" && now.Before(h.refreshAt) {
		return h.token, nil
	}
	form := url.Values{"client_id": {h.spec.ClientID.Value()}, "client_secret": {h.spec.ClientSecret.Value()},
		"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.spec.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := h.http.Do(ctx, req)
	if err != nil {
		return "", &helixError{reason: "token", err: fmt.Errorf("helix app token: %w", err)}
	}
	if err := httpx.CheckStatus(resp, now); err != nil {
		var se *httpx.StatusError
		if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && se.Status != http.StatusTooManyRequests {
			// Twitch answers 400 for an unknown client id and 403 for a
			// wrong secret: waiting will not mend either.
			return "", &helixError{reason: "auth", permanent: true, err: fmt.Errorf("helix app token refused (check client_id and client_secret): %w", err)}
		}
		return "", &helixError{reason: "token", err: fmt.Errorf("helix app token: %w", err)}
	}
	body, err := httpx.ReadBody(resp, helixMaxBody)
	_ = resp.Body.Close()
	if err != nil {
		return "", &helixError{reason: "token", err: fmt.Errorf("helix app token: %w", err)}
	}
	var t struct {
		AccessToken string  `json:"access_token"`
		ExpiresIn   float64 `json:"expires_in"`
		TokenType   string  `json:"token_type"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return "", &helixError{reason: "token", err: fmt.Errorf("helix app token: answer does not decode: %w", err)}
	}
	switch {
	case t.AccessToken == "":
		return "", &helixError{reason: "token", err: errors.New("helix app token: the answer has no access_token")}
	case t.TokenType != "" && !strings.EqualFold(t.TokenType, "bearer"):
		return "", &helixError{reason: "token", err: fmt.Errorf("helix app token: token_type %q, want bearer", t.TokenType)}
	case !(t.ExpiresIn > 0):
		return "", &helixError{reason: "token", err: fmt.Errorf("helix app token: expires_in %v, want a positive number of seconds", t.ExpiresIn)}
	}
	life := time.Duration(min(t.ExpiresIn, 1e9) * float64(time.Second))
	h.token = t.AccessToken
	// Refresh ahead of the expiry: a tenth of the lifetime, at most an hour.
	h.refreshAt = now.Add(life - min(life/10, time.Hour))
	h.env.Log.DebugContext(ctx, "twitch helix app token obtained", "expires_in", life)
	return h.token, nil
}
