// Package mastodon is the mastodon collector: timelines through the
// streaming API.
package mastodon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/internal/httpurl"
	"lookout/item"

	"lookout/internal/htmltext"
)

// The mastodon collector follows timelines through the streaming API over
// one WebSocket: the first stream goes in the URL, the
// others are added with subscribe messages on the same socket. Events
// update becomes a post (a reply: a comment); the payload is a JSON string
// holding the Status. status.update (an edit) becomes the new version of
// the status, an item.ChangeEdit, and delete (whose payload is the bare
// id) an item.ChangeDelete: the store keeps the replaced version and marks
// a deleted status. A boost (a status whose reblog holds
// the original) becomes the original, by its author, with its text and URL
// and under its id, so it is scored once and deduplicated against the
// original; the labels "boost" (the boost's own status id) and
// "boosted_by" (the booster's acct) say it came as a boost. The status's
// language (ISO 639) is the label "langs". Items' Room
// names the stream: "public", "hashtag#golang", "list:42".
//
// Streaming has no cursor, so each stream keeps a position in the state
// store: the id of a status such that every status of the stream up to it
// has been handed on. After a reconnect (and at start, once a stream has
// been seen before) the stream catches up from its REST timeline in the
// background while live statuses flow: pages of 40 forward from the
// position (min_id, then the Link header's rel="prev"), oldest first, until
// a page comes back short. Until then the stream has an open gap and live
// statuses do not move its position, so a catch-up cut short by a
// disconnect or a crash starts again from where it stopped. A failed page
// is retried from the same position after the server's Retry-After or
// X-RateLimit-Reset (or the backoff). A catch-up that reaches catchup_max
// statuses jumps to the newest page and reports the statuses it skipped
// (their id range) as a gap: a warning in `lookout status`, a log line and
// lookout_collector_errors_total{reason="gap"}. Statuses seen twice (live
// and in a catch-up page) are handed on once.
//
// Since Mastodon 4.2 every timeline stream needs a user token with
// read:statuses; it comes from the environment and is sent as
// Authorization: Bearer.
//
//	- id: masto-golang
//	  kind: mastodon
//	  url: https://mastodon.social          # the instance (REST API)
//	  streaming_url: wss://streaming.mastodon.social   # optional; default: url with wss://
//	  token: ${MASTODON_TOKEN}
//	  streams: [hashtag]                    # public, public:local, public:remote, hashtag, hashtag:local, list
//	  tags: [golang, rust]                  # for hashtag streams
//	  lists: ["42"]                         # for list streams
//	  backfill: true                        # default: catch up after reconnects and restarts
//	  catchup_max: 2000                     # default: statuses per stream per catch-up before a gap is reported

const (
	mastoPingEvery = 30 * time.Second
	mastoSaveEvery = 5 * time.Second
	// mastoPageLimit is the page size of a catch-up request (the REST
	// maximum).
	mastoPageLimit = 40
	// mastoDefaultCatchupMax bounds one stream's catch-up (statuses).
	mastoDefaultCatchupMax = 2000
	// mastoRecentIDs bounds the in-process set of ids handed on, which
	// drops a status seen both live and in a catch-up page.
	mastoRecentIDs = 8192
	// Labels a boost carries.
	mastoBoostLabel     = "boost"      // the boost's own status id
	mastoBoostedByLabel = "boosted_by" // the booster's acct
)

type mastoSpec struct {
	URL          string        `yaml:"url"`
	StreamingURL string        `yaml:"streaming_url"`
	Token        config.Secret `yaml:"token"`
	Streams      []string      `yaml:"streams"`
	Tags         []string      `yaml:"tags"`
	Lists        []string      `yaml:"lists"`
	Backfill     *bool         `yaml:"backfill"`
	CatchupMax   *int          `yaml:"catchup_max"`
}

// mastoSub is one subscription on the socket.
type mastoSub struct {
	Stream string // e.g. hashtag:local
	Tag    string // for hashtag streams
	List   string // for list streams
}

// key names the subscription the way stream arrays in events do, and is
// the room of its items and the state key of its since_id.
func (s mastoSub) key() string {
	switch {
	case s.Tag != "":
		return s.Stream + "#" + s.Tag
	case s.List != "":
		return "list:" + s.List
	}
	return s.Stream
}

// timelinePath is the REST timeline that backfills this stream.
func (s mastoSub) timelinePath() (string, url.Values) {
	q := url.Values{}
	switch s.Stream {
	case "public", "public:local", "public:remote":
		if strings.HasSuffix(s.Stream, ":local") {
			q.Set("local", "true")
		}
		if strings.HasSuffix(s.Stream, ":remote") {
			q.Set("remote", "true")
		}
		return "/api/v1/timelines/public", q
	case "hashtag", "hashtag:local":
		if s.Stream == "hashtag:local" {
			q.Set("local", "true")
		}
		return "/api/v1/timelines/tag/" + url.PathEscape(s.Tag), q
	case "list":
		return "/api/v1/timelines/list/" + url.PathEscape(s.List), q
	}
	return "", nil
}

type mastoCollector struct {
	id         string
	labels     map[string]string
	env        collectors.Env
	api        string // https://host, no trailing slash
	stream     *url.URL
	token      string
	subs       []mastoSub
	backfill   bool
	catchupMax int // 0: unbounded
	dialer     *websocket.Dialer
	header     http.Header

	// Shared by the live read loop and the catch-up worker of a session.
	mu    sync.Mutex
	since map[string]string // sub key → position: every status up to it handed on
	dirty map[string]bool   // positions moved by live statuses, not yet saved
	// gaps holds the sub keys catching up, whose position live statuses
	// do not move, each with the newest live status handed on meanwhile
	// ("" for none yet).
	gaps     map[string]string
	recent   *stream.RecentIDs // ids handed on lately
	lastSave time.Time
}

var mastoStreams = map[string]bool{
	"public": true, "public:local": true, "public:remote": true, "hashtag": true, "hashtag:local": true, "list": true,
	"public:media": true, "public:local:media": true, "public:remote:media": true,
}

// New builds a mastodon source (a collectors.Factory).
func New(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec mastoSpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	api, err := url.Parse(spec.URL)
	if err != nil || !httpurl.OK(api) {
		return nil, fmt.Errorf("url %q: want the instance's https:// URL", spec.URL)
	}
	streamRaw := spec.StreamingURL
	if streamRaw == "" {
		su := *api
		su.Scheme = map[string]string{"https": "wss", "http": "ws"}[api.Scheme]
		streamRaw = su.String()
	}
	su, err := url.Parse(streamRaw)
	if err != nil || (su.Scheme != "wss" && su.Scheme != "ws") || su.Host == "" {
		return nil, fmt.Errorf("streaming_url %q: want a wss:// URL", streamRaw)
	}
	su.Path = strings.TrimRight(su.Path, "/") + "/api/v1/streaming"
	if !spec.Token.IsSet() {
		return nil, errors.New("token: Mastodon (4.2+) streams need a user token with read:statuses; write token: ${MASTODON_TOKEN}")
	}
	if spec.Token.Missing() {
		return nil, fmt.Errorf("token: environment variable %s is empty", spec.Token.Var)
	}
	streams := spec.Streams
	if len(streams) == 0 {
		switch {
		case len(spec.Tags) > 0:
			streams = []string{"hashtag"}
		case len(spec.Lists) > 0:
			streams = []string{"list"}
		default:
			streams = []string{"public"}
		}
	}
	var subs []mastoSub
	seen := map[string]bool{}
	for _, st := range streams {
		if !mastoStreams[st] {
			return nil, fmt.Errorf("streams: unknown stream %q (known: public, public:local, public:remote, hashtag, hashtag:local, list)", st)
		}
		switch {
		case strings.HasPrefix(st, "hashtag"):
			if len(spec.Tags) == 0 {
				return nil, fmt.Errorf("streams: %s needs tags", st)
			}
			for _, t := range spec.Tags {
				t = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(t), "#"))
				if t == "" || strings.ContainsAny(t, " /?#&") {
					return nil, fmt.Errorf("tags: %q is not a hashtag", t)
				}
				subs = append(subs, mastoSub{Stream: st, Tag: t})
			}
		case st == "list":
			if len(spec.Lists) == 0 {
				return nil, errors.New("streams: list needs lists (list ids)")
			}
			for _, l := range spec.Lists {
				if _, err := strconv.ParseUint(l, 10, 64); err != nil {
					return nil, fmt.Errorf("lists: %q is not a list id", l)
				}
				subs = append(subs, mastoSub{Stream: st, List: l})
			}
		default:
			subs = append(subs, mastoSub{Stream: st})
		}
	}
	var uniq []mastoSub
	for _, s := range subs {
		if !seen[s.key()] {
			seen[s.key()] = true
			uniq = append(uniq, s)
		}
	}
	dialer, header, err := stream.Dialer(src, env)
	if err != nil {
		return nil, err
	}
	header.Set("Authorization", "Bearer "+spec.Token.Value())
	backfill := spec.Backfill == nil || *spec.Backfill
	catchupMax := mastoDefaultCatchupMax
	if spec.CatchupMax != nil {
		if *spec.CatchupMax < 0 {
			return nil, fmt.Errorf("catchup_max: %d is negative (0: no bound)", *spec.CatchupMax)
		}
		catchupMax = *spec.CatchupMax
	}
	return &mastoCollector{
		id: src.ID, labels: src.Labels, env: env, api: strings.TrimRight(api.String(), "/"), stream: su,
		token: spec.Token.Value(), subs: uniq, backfill: backfill, catchupMax: catchupMax, dialer: dialer, header: header,
		since: map[string]string{}, dirty: map[string]bool{}, gaps: map[string]string{}, recent: stream.NewRecentIDs(mastoRecentIDs),
	}, nil
}

func (c *mastoCollector) Run(ctx context.Context, emit collectors.Emit) error {
	for _, s := range c.subs {
		v, ok, err := c.env.State.GetState(ctx, c.id, "since:"+s.key())
		if err != nil {
			c.env.Metrics.Errors.WithLabelValues(c.id, "state").Inc()
			c.env.Log.Warn("mastodon: cannot read saved state", "err", err)
		} else if ok {
			c.since[s.key()] = v
		}
	}
	c.lastSave = c.env.Clock.Now()

	return stream.Reconnect(ctx, c.env, c.id, "mastodon", func(ctx context.Context) (bool, error) { return c.session(ctx, emit) },
		func() { c.saveState(context.WithoutCancel(ctx)) }, nil)
}

// saveState writes, in one write, the positions live statuses moved. It
// runs on the read loop's goroutine, which emitted the statuses, after
// them (see StateStore); a stream catching up saves its own position from
// its worker.
func (c *mastoCollector) saveState(ctx context.Context) {
	c.mu.Lock()
	kv := make(map[string]string, len(c.dirty))
	for k := range c.dirty {
		if _, catchingUp := c.gaps[k]; !catchingUp {
			kv["since:"+k] = c.since[k]
			delete(c.dirty, k)
		}
	}
	c.mu.Unlock()
	c.put(ctx, kv)
}

// put writes kv to the state store (bounded even when ctx is done); a
// failure marks the keys dirty again so a later save retries them.
func (c *mastoCollector) put(ctx context.Context, kv map[string]string) {
	if len(kv) == 0 {
		return
	}
	ctx, cancel := collectors.StateContext(ctx)
	defer cancel()
	err := c.env.State.PutStates(ctx, c.id, kv)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		for k := range kv {
			c.dirty[strings.TrimPrefix(k, "since:")] = true
		}
		c.env.StateSaveFailed(ctx, c.id, "since ids", err)
		return
	}
	c.lastSave = c.env.Clock.Now()
}

func (c *mastoCollector) streamURL() string {
	u := *c.stream
	q := url.Values{}
	first := c.subs[0]
	q.Set("stream", first.Stream)
	if first.Tag != "" {
		q.Set("tag", first.Tag)
	}
	if first.List != "" {
		q.Set("list", first.List)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *mastoCollector) session(ctx context.Context, emit collectors.Emit) (healthy bool, err error) {
	conn, err := stream.Dial(ctx, c.env, c.dialer, c.streamURL(), c.header)
	if err != nil {
		var se *httpx.StatusError
		if errors.As(err, &se) && (se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden) {
			c.env.Metrics.Errors.WithLabelValues(c.id, "auth").Inc()
			c.env.Log.Error("mastodon: the instance refused the token; it needs a user token with read:statuses", "status", se.Status)
			return false, collectors.WithReason("auth", true, fmt.Errorf("token refused (HTTP %d): %w", se.Status, err))
		}
		c.env.Metrics.Errors.WithLabelValues(c.id, "dial").Inc()
		return false, err
	}
	c.env.Health.Succeeded() // the instance took the token
	defer conn.Close()
	defer stream.CloseOnDone(ctx, conn)()
	conn.SetReadLimit(stream.MaxFrame)
	for _, s := range c.subs[1:] {
		msg := map[string]string{"type": "subscribe", "stream": s.Stream}
		if s.Tag != "" {
			msg["tag"] = s.Tag
		}
		if s.List != "" {
			msg["list"] = s.List
		}
		b, _ := json.Marshal(msg)
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
			return false, fmt.Errorf("subscribe %s: %w", s.key(), err)
		}
	}
	// The pinger starts after the subscribe writes: WriteControl may run
	// alongside the reader, but not alongside another WriteMessage.
	defer stream.Keepalive(ctx, conn, c.env.Clock, mastoPingEvery)()

	// Streaming is live only: what was missed while we were away comes
	// from the REST timelines, in the background, while live statuses flow.
	if c.backfill {
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() { cancel(); wg.Wait() }()
		for _, s := range c.subs {
			c.mu.Lock()
			pos := c.since[s.key()]
			if pos != "" {
				c.gaps[s.key()] = ""
			}
			c.mu.Unlock()
			if pos == "" {
				continue // never seen: nothing to catch up with
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.catchUp(wctx, s, emit)
			}()
		}
	}

	return stream.EventLoop(ctx, conn, c.env, c.id, "mastodon", 3*mastoPingEvery, c.decodeEvent, emit, func(it *item.Item) {
		if it != nil {
			c.emitted(it)
		}
		c.mu.Lock()
		due := len(c.dirty) > 0 && c.env.Clock.Now().Sub(c.lastSave) >= mastoSaveEvery
		c.mu.Unlock()
		if due {
			c.saveState(ctx)
		}
	})
}

// catchUp brings stream s up to date from its REST timeline, retrying a
// failed page from the same position until it succeeds or ctx ends. A
// failure does not end the session: live statuses keep flowing.
func (c *mastoCollector) catchUp(ctx context.Context, s mastoSub, emit collectors.Emit) {
	bo := stream.NewBackoff(c.id + "/" + s.key())
	for {
		err := c.catchUpOnce(ctx, s, emit)
		if err == nil || ctx.Err() != nil {
			return
		}
		wait := httpx.RetryDelay(err, bo)
		c.env.Metrics.Errors.WithLabelValues(c.id, "catchup").Inc()
		c.env.Log.Warn("mastodon: catch-up failed; retrying from the same position", "stream", s.key(), "err", err, "wait", wait)
		c.env.Health.Warned("catchup", fmt.Errorf("%s: catching up: %w (retrying in %s)", s.key(), err, wait.Round(time.Second)))
		if httpx.Sleep(ctx, c.env.Clock, wait) != nil {
			return
		}
	}
}

// catchUpOnce pages forward from s's position until a short page, handing
// each page on oldest first and saving the position after it.
func (c *mastoCollector) catchUpOnce(ctx context.Context, s mastoSub, emit collectors.Emit) error {
	key := s.key()
	c.mu.Lock()
	pos := c.since[key]
	c.mu.Unlock()
	start, fetched := pos, 0
	next := ""
	for {
		path, q := s.timelinePath()
		q.Set("min_id", pos)
		q.Set("limit", strconv.Itoa(mastoPageLimit))
		u := c.api + path + "?" + q.Encode()
		if next != "" {
			u = next
		}
		page, prev, err := c.fetchTimeline(ctx, u)
		if err != nil {
			return err
		}
		if err := c.handOn(ctx, key, page, emit); err != nil {
			return err
		}
		fetched += len(page)
		progress := len(page) > 0 && mastoNewer(page[0].ID, pos)
		if progress {
			pos = page[0].ID
		}
		// A short page is the end; so is a page that does not move
		// forward (a server that ignores min_id would page forever).
		if len(page) < mastoPageLimit || !progress {
			c.closeGap(key)
			if fetched > 0 {
				c.env.Log.Info("mastodon: caught up", "stream", key, "statuses", fetched, "from_id", start, "to_id", pos)
			}
			return nil
		}
		if c.catchupMax > 0 && fetched >= c.catchupMax {
			return c.skipToNewest(ctx, s, emit, start, pos, fetched)
		}
		next = c.samePrefix(prev)
	}
}

// skipToNewest ends a catch-up that reached catchup_max: it hands on the
// newest page and reports the statuses between pos and that page as a gap.
func (c *mastoCollector) skipToNewest(ctx context.Context, s mastoSub, emit collectors.Emit, start, pos string, fetched int) error {
	key := s.key()
	path, q := s.timelinePath()
	q.Set("limit", strconv.Itoa(mastoPageLimit))
	page, _, err := c.fetchTimeline(ctx, c.api+path+"?"+q.Encode())
	if err != nil {
		return err
	}
	if len(page) > 0 {
		oldest := page[len(page)-1].ID
		if mastoNewer(oldest, pos) {
			gap := fmt.Errorf("%s: catch-up stopped at catchup_max (%d statuses, ids %s to %s); statuses after id %s (%s) and before id %s (%s) were not fetched",
				key, fetched, start, pos, pos, mastoIDTime(pos), oldest, mastoIDTime(oldest))
			c.env.Metrics.Errors.WithLabelValues(c.id, "gap").Inc()
			c.env.Log.Warn("mastodon: gap", "stream", key, "caught_up", fetched, "after_id", pos, "before_id", oldest, "err", gap)
			c.env.Health.Warned("gap", gap)
		}
	}
	if err := c.handOn(ctx, key, page, emit); err != nil {
		return err
	}
	c.closeGap(key)
	return nil
}

// handOn emits a timeline page (newest first) oldest first, then moves
// and saves key's position to its newest status. The worker owns key's
// position while the gap is open, so it saves it itself, after the items.
func (c *mastoCollector) handOn(ctx context.Context, key string, page []mastoStatus, emit collectors.Emit) error {
	if len(page) == 0 {
		return nil
	}
	for i := len(page) - 1; i >= 0; i-- {
		it, ok := c.mapStatus(&page[i], key, nil)
		if !ok || !c.recent.Add(it.ID) {
			continue
		}
		stream.CapItem(c.env, c.id, &it, len(it.Raw))
		if err := emit(ctx, it); err != nil {
			return err
		}
		c.env.Metrics.Items.WithLabelValues(c.id, string(it.Kind)).Inc()
	}
	newest := page[0].ID
	c.mu.Lock()
	moved := mastoNewer(newest, c.since[key])
	if moved {
		c.since[key] = newest
	}
	c.mu.Unlock()
	if moved {
		c.put(ctx, map[string]string{"since:" + key: newest})
	}
	return nil
}

// closeGap lets live statuses move key's position again, and moves it to
// the newest live status handed on while the gap was open: the stream was
// subscribed before the catch-up began, so every status up to that one has
// now been handed on, by the catch-up or live.
func (c *mastoCollector) closeGap(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if live := c.gaps[key]; mastoNewer(live, c.since[key]) {
		c.since[key] = live
		c.dirty[key] = true
	}
	delete(c.gaps, key)
}

// samePrefix returns link when it points at this instance's API (the
// bearer token goes nowhere else), "" otherwise.
func (c *mastoCollector) samePrefix(link string) string {
	if link != "" && strings.HasPrefix(link, c.api+"/") {
		return link
	}
	return ""
}

// emitted moves the stream's position past a live status handed on,
// unless the stream is catching up: a position saved past a status the
// pipeline never got would make the next catch-up skip it; closeGap moves
// it once the catch-up is done. A boost's position is its own status id,
// the one timelines are ordered by.
func (c *mastoCollector) emitted(it *item.Item) {
	if it.Change != "" {
		return // an edit or delete of a status handed on before
	}
	id := it.ID
	if b := it.Labels[mastoBoostLabel]; b != "" {
		id = b
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	live, catchingUp := c.gaps[it.Room]
	switch {
	case catchingUp:
		if mastoNewer(id, live) {
			c.gaps[it.Room] = id
		}
	case mastoNewer(id, c.since[it.Room]):
		c.since[it.Room] = id
		c.dirty[it.Room] = true
	}
}

// fetchTimeline gets one timeline page and its Link rel="prev" (the page
// of newer statuses).
func (c *mastoCollector) fetchTimeline(ctx context.Context, u string) ([]mastoStatus, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.env.HTTP.Do(ctx, req)
	if err != nil {
		return nil, "", err
	}
	if err := httpx.CheckStatus(resp, c.env.Clock.Now()); err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var raws []json.RawMessage
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&raws); err != nil {
		return nil, "", fmt.Errorf("timeline %s: %w", httpx.RedactURL(u), err)
	}
	out := make([]mastoStatus, 0, len(raws))
	for _, r := range raws {
		var st mastoStatus
		if err := json.Unmarshal(r, &st); err != nil || st.ID == "" {
			c.env.Metrics.Errors.WithLabelValues(c.id, "decode").Inc()
			c.env.Log.Warn("mastodon: bad status in a timeline page", "err", err, "status", stream.Trunc(string(r), 300))
			continue
		}
		st.raw = r
		out = append(out, st)
	}
	return out, mastoLink(resp.Header.Values("Link"), "prev"), nil
}

// mastoLink returns the URL of the Link header entry with rel, "" when
// there is none (RFC 8288; Mastodon sends next and prev).
func mastoLink(values []string, rel string) string {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			end := strings.IndexByte(part, '>')
			if !strings.HasPrefix(part, "<") || end < 0 {
				continue
			}
			for _, p := range strings.Split(part[end+1:], ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(k, "rel") && slices.Contains(strings.Fields(strings.Trim(val, `"`)), rel) {
					return part[1:end]
				}
			}
		}
	}
	return ""
}

// mastoIDTime is when a status with this id was created: Mastodon ids are
// snowflakes whose bits above the lowest 16 are Unix milliseconds. "" for
// an id that is not one.
func mastoIDTime(id string) string {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n>>16 == 0 {
		return ""
	}
	return time.UnixMilli(int64(n >> 16)).UTC().Format(time.RFC3339)
}

// mastoEvent is one streaming WebSocket message.
type mastoEvent struct {
	Stream  []string `json:"stream"`
	Event   string   `json:"event"`
	Payload *string  `json:"payload"`
	Error   string   `json:"error"`
	Status  int      `json:"status"`
}

type mastoStatus struct {
	ID          string    `json:"id"`
	CreatedAt   time.Time `json:"created_at"`
	InReplyToID *string   `json:"in_reply_to_id"`
	SpoilerText string    `json:"spoiler_text"`
	Language    string    `json:"language"`
	URL         string    `json:"url"`
	URI         string    `json:"uri"`
	Content     string    `json:"content"`
	Account     struct {
		ID          string `json:"id"`
		Acct        string `json:"acct"`
		Username    string `json:"username"`
		DisplayName string `json:"display_name"`
	} `json:"account"`
	EditedAt *time.Time   `json:"edited_at"`
	Reblog   *mastoStatus `json:"reblog"` // a boost: the boosted status

	raw json.RawMessage // the status as received in a timeline page
}

// mastoIgnored are events that carry no post.
var mastoIgnored = map[string]bool{
	"notification": true, "conversation": true, "filters_changed": true, "announcement": true,
	"announcement.reaction": true, "announcement.delete": true, "notifications_merged": true, "encrypted_message": true,
}

// decodeEvent maps one WebSocket message. ok is false for events that
// produce no item.
func (c *mastoCollector) decodeEvent(data []byte) (it item.Item, ok bool, err error) {
	var ev mastoEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return it, false, fmt.Errorf("event JSON: %w", err)
	}
	if ev.Error != "" {
		return it, false, fmt.Errorf("server error %d: %s", ev.Status, stream.Trunc(ev.Error, 200))
	}
	switch ev.Event {
	case "update", "status.update":
	case "delete":
		// The payload is the deleted status's id, bare.
		if ev.Payload == nil || strings.TrimSpace(*ev.Payload) == "" {
			return it, false, errors.New("delete without a status id")
		}
		now := c.env.Clock.Now().UTC()
		return item.Item{Source: c.id, Platform: "mastodon", Kind: item.KindPost, Room: c.roomOf(ev.Stream),
			ID: strings.TrimSpace(*ev.Payload), TS: now, Labels: c.labels, Raw: data, Change: item.ChangeDelete, ChangedAt: now}, true, nil
	case "":
		return it, false, errors.New("message without event")
	default:
		if !mastoIgnored[ev.Event] {
			c.env.Metrics.Unknown.WithLabelValues(c.id, "event:"+stream.Trunc(ev.Event, 32)).Inc()
		}
		return it, false, nil
	}
	if ev.Payload == nil {
		return it, false, fmt.Errorf("%s without payload", ev.Event)
	}
	// The payload is a JSON document inside a JSON string.
	var st mastoStatus
	if err := json.Unmarshal([]byte(*ev.Payload), &st); err != nil {
		return it, false, fmt.Errorf("%s payload: %w", ev.Event, err)
	}
	it, ok = c.mapStatus(&st, c.roomOf(ev.Stream), data)
	if !ok {
		return it, false, fmt.Errorf("%s payload: status without id", ev.Event)
	}
	if ev.Event == "status.update" {
		it.Change, it.ChangedAt = item.ChangeEdit, c.env.Clock.Now().UTC()
		if st.EditedAt != nil && !st.EditedAt.IsZero() {
			it.ChangedAt = st.EditedAt.UTC()
		}
		c.recent.Add(it.ID)
		return it, true, nil
	}
	if !c.recent.Add(it.ID) {
		return it, false, nil // handed on already (a catch-up page, the original of a boost)
	}
	return it, true, nil
}

// roomOf turns an event's stream array into the subscription key.
func (c *mastoCollector) roomOf(stream []string) string {
	switch {
	case len(stream) == 0 || stream[0] == "":
		return c.subs[0].key()
	case len(stream) >= 2 && strings.HasPrefix(stream[0], "hashtag"):
		return stream[0] + "#" + strings.ToLower(stream[1])
	case len(stream) >= 2 && stream[0] == "list":
		return "list:" + stream[1]
	}
	return stream[0]
}

// mapStatus maps a status; raw is the message it came in (nil: the status
// as received). A boost maps to the original it carries, labelled with
// the boost's id and booster.
func (c *mastoCollector) mapStatus(st *mastoStatus, room string, raw []byte) (item.Item, bool) {
	if st.ID == "" {
		return item.Item{}, false
	}
	orig := st
	if st.Reblog != nil && st.Reblog.ID != "" {
		orig = st.Reblog
	}
	labels := c.labels
	if orig != st || orig.Language != "" {
		labels = make(map[string]string, len(c.labels)+3)
		maps.Copy(labels, c.labels)
		if orig != st {
			labels[mastoBoostLabel] = st.ID
			labels[mastoBoostedByLabel] = st.Account.Acct
		}
		if orig.Language != "" {
			labels["langs"] = orig.Language // as Bluesky's: rules can select by it
		}
	}
	it := item.Item{
		Source:   c.id,
		Platform: "mastodon",
		Kind:     item.KindPost,
		Room:     room,
		ID:       orig.ID,
		AuthorID: orig.Account.ID,
		Author:   orig.Account.Acct,
		URL:      orig.URL,
		TS:       orig.CreatedAt.UTC(),
		Labels:   labels,
		Raw:      raw,
	}
	if it.URL == "" {
		it.URL = orig.URI
	}
	if orig.InReplyToID != nil && *orig.InReplyToID != "" {
		it.Kind = item.KindComment
	}
	if it.TS.IsZero() {
		it.TS = c.env.Clock.Now().UTC()
	}
	text := mastoStripHTML(orig.Content)
	if orig.SpoilerText != "" {
		text = strings.TrimSpace(orig.SpoilerText + "\n" + text)
	}
	it.Text = text
	if raw == nil {
		it.Raw = st.raw
		if it.Raw == nil {
			it.Raw, _ = json.Marshal(st)
		}
	}
	return it, true
}

// mastoNewer compares Mastodon ids, which are decimal snowflakes: a longer
// id is newer, equal lengths compare as strings.
func mastoNewer(a, b string) bool {
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a > b
}

// mastoStripHTML turns status HTML into text: a paragraph ends with a blank
// line, <br> is a line break, tags go, entities are decoded.
func mastoStripHTML(s string) string {
	return htmltext.Text(s, htmltext.Options{Paragraph: "\n\n"})
}
