// Package bluesky is the bluesky collector: posts and likes from the
// Jetstream firehose.
package bluesky

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"lookout/collectors"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/item"
)

// The bluesky collector reads the Jetstream JSON firehose:
// one WebSocket to /subscribe with wantedCollections/wantedDids filters,
// commit create events mapped to posts (replies to comments), likes when
// that collection is wanted. The firehose is huge, so keywords filter posts
// on our side. The cursor (time_us of the last event seen) is saved in the
// state store every few seconds and on shutdown; a new connection resumes
// from it minus a few seconds, so a restart leaves no gap. The overlap is
// re-delivered by design (Jetstream is at-least-once): within a process a
// bounded set of recent ids drops it, across restarts the store's dedupe by
// item id does. Items' Room is the keyword that matched (with keywords) or
// the collection.
//
//	- id: bsky-golang
//	  kind: bluesky
//	  url: wss://jetstream2.us-east.bsky.network/subscribe   # default
//	  collections: [app.bsky.feed.post]                      # default
//	  dids: []                                               # optional
//	  keywords: [golang, "#go"]                              # optional, case-insensitive

// BlueskyDefaultURL is a public Jetstream instance.
const BlueskyDefaultURL = "wss://jetstream2.us-east.bsky.network/subscribe"

const (
	bskyPostNSID = "app.bsky.feed.post"
	bskyLikeNSID = "app.bsky.feed.like"
	// bskyCursorKey is the state key of the resume cursor (Unix µs).
	bskyCursorKey = "cursor"
	// bskySaveEvery: how often the cursor is written while events flow.
	bskySaveEvery = 5 * time.Second
	// bskyDefaultRewind is how far before the saved cursor a connection
	// resumes; timestamps differ a little between instances.
	bskyDefaultRewind = 5 * time.Second
	// bskyPingEvery and the read deadline (3×) detect a dead connection
	// even when the filters make the stream quiet.
	bskyPingEvery = 30 * time.Second
	// bskyRecentIDs bounds the in-process dedupe set.
	bskyRecentIDs = 8192
	// bskyHandles bounds the did → handle cache fed by identity events.
	bskyHandles = 50000
)

type bskySpec struct {
	URL         string          `yaml:"url"`
	Collections []string        `yaml:"collections"`
	DIDs        []string        `yaml:"dids"`
	Keywords    []string        `yaml:"keywords"`
	Rewind      config.Duration `yaml:"rewind"`
}

var (
	// NSID, optionally ending in a ".*" wildcard, which Jetstream accepts.
	bskyNSIDRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+)+(\.\*)?$|^[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+)*\.\*$`)
	bskyDIDRe  = regexp.MustCompile(`^did:[a-z]+:[a-zA-Z0-9._:%-]+$`)
)

type bskyCollector struct {
	id       string
	labels   map[string]string
	env      collectors.Env
	base     *url.URL
	colls    []string
	dids     []string
	keywords []string // lower-cased
	rewind   time.Duration
	dialer   *websocket.Dialer
	header   http.Header

	// Owned by Run's goroutine.
	cursor    int64 // time_us of the last event seen
	saved     int64 // cursor value last written to the state store
	lastSave  time.Time
	recent    map[string]struct{}
	recentQ   []string
	recentPos int
	handles   map[string]string
}

// New builds a bluesky source (a collectors.Factory).
func New(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec bskySpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	if spec.URL == "" {
		spec.URL = BlueskyDefaultURL
	}
	u, err := url.Parse(spec.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("url %q: want a ws:// or wss:// Jetstream /subscribe URL", spec.URL)
	}
	if len(spec.Collections) == 0 {
		spec.Collections = []string{bskyPostNSID}
	}
	if len(spec.Collections) > 100 {
		return nil, fmt.Errorf("collections: %d given, Jetstream accepts at most 100", len(spec.Collections))
	}
	for _, c := range spec.Collections {
		if !bskyNSIDRe.MatchString(c) {
			return nil, fmt.Errorf("collections: %q is not an NSID such as app.bsky.feed.post", c)
		}
	}
	if len(spec.DIDs) > 10000 {
		return nil, fmt.Errorf("dids: %d given, Jetstream accepts at most 10000", len(spec.DIDs))
	}
	for _, d := range spec.DIDs {
		if !bskyDIDRe.MatchString(d) {
			return nil, fmt.Errorf("dids: %q is not a DID such as did:plc:…", d)
		}
	}
	var kws []string
	for _, k := range spec.Keywords {
		if k = strings.ToLower(strings.TrimSpace(k)); k != "" {
			kws = append(kws, k)
		}
	}
	rewind := spec.Rewind.D()
	if rewind == 0 {
		rewind = bskyDefaultRewind
	}
	dialer, header, err := stream.Dialer(src, env)
	if err != nil {
		return nil, err
	}
	return &bskyCollector{
		id: src.ID, labels: src.Labels, env: env, base: u, colls: spec.Collections, dids: spec.DIDs,
		keywords: kws, rewind: rewind, dialer: dialer, header: header,
		recent: make(map[string]struct{}, bskyRecentIDs), recentQ: make([]string, bskyRecentIDs),
		handles: map[string]string{},
	}, nil
}

// subscribeURL builds the /subscribe URL, resuming from the cursor minus
// the rewind when there is one.
func (c *bskyCollector) subscribeURL() string {
	u := *c.base
	q := u.Query()
	q.Del("wantedCollections")
	q.Del("wantedDids")
	q.Del("cursor")
	for _, col := range c.colls {
		q.Add("wantedCollections", col)
	}
	for _, d := range c.dids {
		q.Add("wantedDids", d)
	}
	if c.cursor > 0 {
		q.Set("cursor", strconv.FormatInt(max(1, c.cursor-c.rewind.Microseconds()), 10))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *bskyCollector) Run(ctx context.Context, emit collectors.Emit) error {
	if v, ok, err := c.env.State.GetState(ctx, c.id, bskyCursorKey); err != nil {
		c.env.Log.Warn("bluesky: cannot read the saved cursor; starting live", "err", err)
		c.env.Metrics.Errors.WithLabelValues(c.id, "state").Inc()
	} else if ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			c.cursor, c.saved = n, n
			c.env.Log.Info("bluesky: resuming", "cursor_us", n, "rewind", c.rewind)
		}
	}
	c.lastSave = c.env.Clock.Now()

	return stream.Reconnect(ctx, c.env, c.id, "bluesky", func(ctx context.Context) (bool, error) { return c.session(ctx, emit) },
		func() { c.saveCursor(context.WithoutCancel(ctx)) }, nil)
}

// saveCursor writes the cursor if it moved since the last write.
func (c *bskyCollector) saveCursor(ctx context.Context) {
	if c.cursor == c.saved || c.cursor == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.env.State.PutState(ctx, c.id, bskyCursorKey, strconv.FormatInt(c.cursor, 10)); err != nil {
		c.env.Metrics.Errors.WithLabelValues(c.id, "state").Inc()
		c.env.Log.Warn("bluesky: cannot save the cursor", "err", err)
		return
	}
	c.saved = c.cursor
	c.lastSave = c.env.Clock.Now()
}

func (c *bskyCollector) session(ctx context.Context, emit collectors.Emit) (healthy bool, err error) {
	conn, err := stream.Dial(ctx, c.env, c.dialer, c.subscribeURL(), c.header)
	if err != nil {
		c.env.Metrics.Errors.WithLabelValues(c.id, "dial").Inc()
		return false, err
	}
	c.env.Health.Succeeded()
	defer conn.Close()
	defer stream.CloseOnDone(ctx, conn)()
	defer stream.Keepalive(ctx, conn, c.env.Clock, bskyPingEvery)()
	conn.SetReadLimit(stream.MaxFrame)
	return stream.EventLoop(ctx, conn, c.env, c.id, "bluesky", 3*bskyPingEvery, c.decode, emit, func(*item.Item) {
		if c.env.Clock.Now().Sub(c.lastSave) >= bskySaveEvery {
			c.saveCursor(ctx)
		}
	})
}

// bskyEvent is a Jetstream event (v1 shape; v2 adds a numeric cursor, which
// is instance-local and not used: time_us resumes on any instance).
type bskyEvent struct {
	DID    string `json:"did"`
	TimeUS int64  `json:"time_us"`
	Kind   string `json:"kind"`
	Commit *struct {
		Rev        string          `json:"rev"`
		Operation  string          `json:"operation"`
		Collection string          `json:"collection"`
		RKey       string          `json:"rkey"`
		CID        string          `json:"cid"`
		Record     json.RawMessage `json:"record"`
	} `json:"commit"`
	Identity *struct {
		DID    string `json:"did"`
		Handle string `json:"handle"`
	} `json:"identity"`
}

type bskyPost struct {
	Text      string   `json:"text"`
	CreatedAt string   `json:"createdAt"`
	Langs     []string `json:"langs"`
	Reply     *struct {
		Parent struct {
			URI string `json:"uri"`
		} `json:"parent"`
	} `json:"reply"`
}

type bskyLike struct {
	Subject struct {
		URI string `json:"uri"`
	} `json:"subject"`
}

// decode maps one event. ok is false for events that produce no item
// (deletes, identity, filtered out, already seen); err is for malformed
// ones.
func (c *bskyCollector) decode(data []byte) (it item.Item, ok bool, err error) {
	var ev bskyEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return it, false, fmt.Errorf("event JSON: %w", err)
	}
	if ev.TimeUS <= 0 {
		return it, false, errors.New("event without time_us")
	}
	if ev.TimeUS > c.cursor {
		c.cursor = ev.TimeUS
	}
	switch ev.Kind {
	case "commit":
	case "identity":
		if ev.Identity != nil && ev.Identity.Handle != "" {
			if len(c.handles) >= bskyHandles {
				clear(c.handles) // crude but bounded; handles come back with later events
			}
			c.handles[ev.DID] = ev.Identity.Handle
		}
		return it, false, nil
	case "account":
		return it, false, nil
	default:
		c.env.Metrics.Unknown.WithLabelValues(c.id, "kind:"+stream.Trunc(ev.Kind, 32)).Inc()
		return it, false, nil
	}
	cm := ev.Commit
	if cm == nil || ev.DID == "" || cm.Collection == "" || cm.RKey == "" {
		return it, false, errors.New("commit event without did, commit.collection or commit.rkey")
	}
	if cm.Operation != "create" {
		return it, false, nil // update/delete: items are immutable downstream
	}
	it = item.Item{
		Source:   c.id,
		Platform: "bluesky",
		Room:     cm.Collection,
		ID:       "at://" + ev.DID + "/" + cm.Collection + "/" + cm.RKey,
		AuthorID: ev.DID,
		Author:   ev.DID,
		TS:       time.UnixMicro(ev.TimeUS).UTC(),
		Labels:   c.labels,
	}
	if h := c.handles[ev.DID]; h != "" {
		it.Author = h
	}
	switch cm.Collection {
	case bskyPostNSID:
		var p bskyPost
		if err := json.Unmarshal(cm.Record, &p); err != nil {
			return it, false, fmt.Errorf("%s record: %w", cm.Collection, err)
		}
		it.Kind = item.KindPost
		if p.Reply != nil {
			it.Kind = item.KindComment
		}
		it.Text = p.Text
		it.URL = "https://bsky.app/profile/" + ev.DID + "/post/" + cm.RKey
		if len(c.keywords) > 0 {
			kw := c.matchKeyword(p.Text)
			if kw == "" {
				return it, false, nil
			}
			it.Room = kw
		}
	case bskyLikeNSID:
		var l bskyLike
		if err := json.Unmarshal(cm.Record, &l); err != nil {
			return it, false, fmt.Errorf("%s record: %w", cm.Collection, err)
		}
		it.Kind = item.KindLike
		it.Count = 1
		it.URL = l.Subject.URI
	default:
		c.env.Metrics.Unknown.WithLabelValues(c.id, "collection:"+stream.Trunc(cm.Collection, 64)).Inc()
		return it, false, nil
	}
	if !c.remember(it.ID) {
		return it, false, nil
	}
	it.Raw = append([]byte(nil), data...)
	return it, true, nil
}

// matchKeyword returns the first configured keyword the text contains
// (case-insensitively), "" when none does.
func (c *bskyCollector) matchKeyword(text string) string {
	lt := strings.ToLower(text)
	for _, k := range c.keywords {
		if strings.Contains(lt, k) {
			return k
		}
	}
	return ""
}

// remember adds id to the recent set; false means it was already there.
func (c *bskyCollector) remember(id string) bool {
	if _, dup := c.recent[id]; dup {
		return false
	}
	if old := c.recentQ[c.recentPos]; old != "" {
		delete(c.recent, old)
	}
	c.recentQ[c.recentPos] = id
	c.recentPos = (c.recentPos + 1) % len(c.recentQ)
	c.recent[id] = struct{}{}
	return true
}
