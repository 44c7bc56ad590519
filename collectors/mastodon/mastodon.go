// Package mastodon is the mastodon collector: timelines through the
// streaming API.
package mastodon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/item"

	"lookout/internal/htmltext"
)

// The mastodon collector follows timelines through the streaming API over
// one WebSocket: the first stream goes in the URL, the
// others are added with subscribe messages on the same socket. Events
// update and status.update become posts (replies: comments); the payload is
// a JSON string holding the Status. Streaming has no cursor, so after a
// reconnect (and at start, once a stream has been seen before) each stream
// is backfilled from its REST timeline with since_id = the newest status
// seen, which is kept in the state store. Items' Room names the stream:
// "public", "hashtag#golang", "list:42".
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
//	  backfill: true                        # default

const (
	mastoPingEvery = 30 * time.Second
	mastoSaveEvery = 5 * time.Second
	// mastoBackfillLimit is the page size of a backfill request (the REST
	// maximum); one page per stream and reconnect.
	mastoBackfillLimit = 40
)

type mastoSpec struct {
	URL          string        `yaml:"url"`
	StreamingURL string        `yaml:"streaming_url"`
	Token        config.Secret `yaml:"token"`
	Streams      []string      `yaml:"streams"`
	Tags         []string      `yaml:"tags"`
	Lists        []string      `yaml:"lists"`
	Backfill     *bool         `yaml:"backfill"`
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
	id       string
	labels   map[string]string
	env      collectors.Env
	api      string // https://host, no trailing slash
	stream   *url.URL
	token    string
	subs     []mastoSub
	backfill bool
	dialer   *websocket.Dialer
	header   http.Header

	// Owned by Run's goroutine.
	since    map[string]string // sub key → newest status id seen
	dirty    map[string]bool
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
	if err != nil || (api.Scheme != "https" && api.Scheme != "http") || api.Host == "" {
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
	return &mastoCollector{
		id: src.ID, labels: src.Labels, env: env, api: strings.TrimRight(api.String(), "/"), stream: su,
		token: spec.Token.Value(), subs: uniq, backfill: backfill, dialer: dialer, header: header,
		since: map[string]string{}, dirty: map[string]bool{},
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

// saveState writes the since ids that moved, in one write. It runs on the
// goroutine that emitted the statuses, after them (see StateStore).
func (c *mastoCollector) saveState(ctx context.Context) {
	if len(c.dirty) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, collectors.StateSaveTimeout)
	defer cancel()
	kv := make(map[string]string, len(c.dirty))
	for k := range c.dirty {
		kv["since:"+k] = c.since[k]
	}
	if err := c.env.State.PutStates(ctx, c.id, kv); err != nil {
		c.env.StateSaveFailed(ctx, c.id, "since ids", err)
		return
	}
	clear(c.dirty)
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

	// Streaming is live only: fetch what was missed while we were away.
	if c.backfill {
		if err := c.backfillAll(ctx, emit); err != nil {
			return false, err
		}
	}

	return stream.EventLoop(ctx, conn, c.env, c.id, "mastodon", 3*mastoPingEvery, c.decodeEvent, emit, func(it *item.Item) {
		if it != nil {
			c.emitted(it)
		}
		if len(c.dirty) > 0 && c.env.Clock.Now().Sub(c.lastSave) >= mastoSaveEvery {
			c.saveState(ctx)
		}
	})
}

// backfillAll fetches, per stream seen before, the statuses newer than the
// newest one seen. A failing request is logged and counted; it does not
// stop the stream (the gap is reported, not hidden).
func (c *mastoCollector) backfillAll(ctx context.Context, emit collectors.Emit) error {
	for _, s := range c.subs {
		since := c.since[s.key()]
		if since == "" {
			continue
		}
		statuses, err := c.fetchTimeline(ctx, s, since)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.env.Metrics.Errors.WithLabelValues(c.id, "backfill").Inc()
			c.env.Log.Warn("mastodon: backfill failed; statuses posted while disconnected may be missing", "stream", s.key(), "err", err)
			continue
		}
		if len(statuses) == mastoBackfillLimit {
			c.env.Log.Warn("mastodon: backfill page full; older missed statuses are skipped", "stream", s.key(), "since_id", since)
		}
		// Timelines are newest first; emit oldest first.
		for i := len(statuses) - 1; i >= 0; i-- {
			it, ok := c.mapStatus(&statuses[i], s.key(), nil)
			if !ok {
				continue
			}
			if err := emit(ctx, it); err != nil {
				return err
			}
			c.env.Metrics.Items.WithLabelValues(c.id, string(it.Kind)).Inc()
			c.emitted(&it)
		}
	}
	return nil
}

// Emitted moves the stream's since id past an item handed on. Only handed
// on: a since id saved past a status the pipeline never got would make
// the next backfill skip it.
func (c *mastoCollector) emitted(it *item.Item) {
	if mastoNewer(it.ID, c.since[it.Room]) {
		c.since[it.Room] = it.ID
		c.dirty[it.Room] = true
	}
}

func (c *mastoCollector) fetchTimeline(ctx context.Context, s mastoSub, since string) ([]mastoStatus, error) {
	path, q := s.timelinePath()
	q.Set("since_id", since)
	q.Set("limit", strconv.Itoa(mastoBackfillLimit))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.env.HTTP.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := httpx.CheckStatus(resp, c.env.Clock.Now()); err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []mastoStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("timeline %s: %w", path, err)
	}
	return out, nil
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
	Reblog *json.RawMessage `json:"reblog"`
}

// mastoIgnored are events that carry no post.
var mastoIgnored = map[string]bool{
	"delete": true, "notification": true, "conversation": true, "filters_changed": true, "announcement": true,
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

func (c *mastoCollector) mapStatus(st *mastoStatus, room string, raw []byte) (item.Item, bool) {
	if st.ID == "" {
		return item.Item{}, false
	}
	it := item.Item{
		Source:   c.id,
		Platform: "mastodon",
		Kind:     item.KindPost,
		Room:     room,
		ID:       st.ID,
		AuthorID: st.Account.ID,
		Author:   st.Account.Acct,
		URL:      st.URL,
		TS:       st.CreatedAt.UTC(),
		Labels:   c.labels,
		Raw:      raw,
	}
	if it.URL == "" {
		it.URL = st.URI
	}
	if st.InReplyToID != nil && *st.InReplyToID != "" {
		it.Kind = item.KindComment
	}
	if it.TS.IsZero() {
		it.TS = c.env.Clock.Now().UTC()
	}
	text := mastoStripHTML(st.Content)
	if st.SpoilerText != "" {
		text = strings.TrimSpace(st.SpoilerText + "\n" + text)
	}
	it.Text = text
	if raw == nil {
		it.Raw, _ = json.Marshal(st)
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
