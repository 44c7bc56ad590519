// Package bluesky is the bluesky collector: posts and likes from the
// Jetstream firehose.
package bluesky

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/internal/httpurl"
	"lookout/item"
)

// The bluesky collector reads the Jetstream JSON firehose:
// one WebSocket to /subscribe with wantedCollections/wantedDids filters,
// commit create events mapped to posts (replies to comments), likes when
// that collection is wanted; update events are edits (item.ChangeEdit, the
// new version under the same id, its TS the record's createdAt) and
// delete events deletes (item.ChangeDelete), which the store applies to
// the item stored before. The firehose is huge, so keywords filter posts
// on our side. The cursor (time_us of the last event seen) is saved in the
// state store every few seconds and on shutdown; a new connection resumes
// from it minus a few seconds, so a restart leaves no gap. The overlap is
// re-delivered by design (Jetstream is at-least-once): within a process a
// bounded set of recent ids drops it, across restarts the store's dedupe by
// item id does. Items' Room is the keyword that matched (with keywords) or
// the collection.
//
// A post's text is made whole before keywords are matched and it is
// scored: a link facet's target replaces the shortened link the text
// shows, and a post without text (an image, a quote with media) takes its
// images' alt text. Link targets (facets and link cards) are kept in the
// label "links", quoted posts in "quote", mentioned accounts in "mentions"
// (handles where known, else DIDs), and the record's languages in "langs".
// Authors are handles: from identity events, from mention facets (their
// text is the handle), and, for an author still unknown, from a cached,
// rate-limited app.bsky.actor.getProfile lookup (handle_lookup) that never
// makes the stream wait for the rate limit.
//
//	- id: bsky-golang
//	  kind: bluesky
//	  url: wss://jetstream2.us-east.bsky.network/subscribe   # default
//	  collections: [app.bsky.feed.post]                      # default
//	  dids: []                                               # optional
//	  keywords: [golang, "#go"]                              # optional, case-insensitive
//	  handle_lookup: https://public.api.bsky.app             # default; "off": authors stay DIDs until an identity event names them

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
	// bskyHandles bounds the did → handle cache.
	bskyHandles = 50000
	// BlueskyDefaultLookup is the public AppView that resolves DIDs to
	// handles.
	BlueskyDefaultLookup = "https://public.api.bsky.app"
	// bskyLookupTimeout bounds one handle lookup (it holds the stream).
	bskyLookupTimeout = 3 * time.Second
	// bskyLookupRetry: a DID whose lookup failed is not looked up again
	// for this long, and after a failed request no lookup is made for
	// bskyLookupPause.
	bskyLookupRetry = 10 * time.Minute
	bskyLookupPause = time.Minute
)

type bskySpec struct {
	URL         string          `yaml:"url"`
	Collections []string        `yaml:"collections"`
	DIDs        []string        `yaml:"dids"`
	Keywords    []string        `yaml:"keywords"`
	Rewind      config.Duration `yaml:"rewind"`
	// HandleLookup is the AppView base URL for did → handle lookups; "off"
	// disables them.
	HandleLookup *string `yaml:"handle_lookup"`
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
	lookup   string // AppView base URL, "" when lookups are off
	dialer   *websocket.Dialer
	header   http.Header

	// Owned by Run's goroutine.
	cursor      int64 // time_us of the last event seen
	saved       int64 // cursor value last written to the state store
	lastSave    time.Time
	recent      *stream.RecentIDs
	handles     map[string]string    // did → handle
	lookupFail  map[string]time.Time // did → when its lookup failed
	lookupPause time.Time            // no lookups before this
	// lookupLimiter is the AppView host's token bucket, shared with every
	// source that calls it.
	lookupLimiter *rate.Limiter
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
	lookup := BlueskyDefaultLookup
	if spec.HandleLookup != nil {
		lookup = strings.TrimRight(*spec.HandleLookup, "/")
	}
	if lookup == "off" {
		lookup = ""
	} else if lu, err := url.Parse(lookup); err != nil || !httpurl.OK(lu) {
		return nil, fmt.Errorf("handle_lookup %q: want an AppView's https:// URL such as %s, or off", lookup, BlueskyDefaultLookup)
	}
	dialer, header, err := stream.Dialer(src, env)
	if err != nil {
		return nil, err
	}
	var limiter *rate.Limiter
	if lookup != "" {
		lu, _ := url.Parse(lookup)
		limiter = env.HTTP.Limiter(lu.Host)
	}
	return &bskyCollector{
		id: src.ID, labels: src.Labels, env: env, base: u, colls: spec.Collections, dids: spec.DIDs,
		keywords: kws, rewind: rewind, lookup: lookup, dialer: dialer, header: header,
		recent: stream.NewRecentIDs(bskyRecentIDs), handles: map[string]string{}, lookupFail: map[string]time.Time{},
		lookupLimiter: limiter,
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
	decode := func(data []byte) (item.Item, bool, error) {
		it, ok, err := c.decode(data)
		if ok && it.Author == it.AuthorID {
			if h := c.lookupHandle(ctx, it.AuthorID); h != "" {
				it.Author = h
			}
		}
		return it, ok, err
	}
	return stream.EventLoop(ctx, conn, c.env, c.id, "bluesky", 3*bskyPingEvery, decode, emit, func(*item.Item) {
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
	Text      string      `json:"text"`
	CreatedAt string      `json:"createdAt"`
	Langs     []string    `json:"langs"`
	Facets    []bskyFacet `json:"facets"`
	Embed     *bskyEmbed  `json:"embed"`
	Reply     *struct {
		Parent struct {
			URI string `json:"uri"`
		} `json:"parent"`
	} `json:"reply"`
}

// bskyFacet is app.bsky.richtext.facet: a byte range of the text (UTF-8)
// and what it is.
type bskyFacet struct {
	Index struct {
		ByteStart int `json:"byteStart"`
		ByteEnd   int `json:"byteEnd"`
	} `json:"index"`
	Features []struct {
		Type string `json:"$type"`
		URI  string `json:"uri"` // #link
		DID  string `json:"did"` // #mention
	} `json:"features"`
}

// bskyEmbed is the union of the embeds a post carries: images (with alt
// text), a video (alt), a link card (external), a quoted record, or a
// quote with media.
type bskyEmbed struct {
	Type   string `json:"$type"`
	Images []struct {
		Alt string `json:"alt"`
	} `json:"images"`
	Alt      string `json:"alt"`
	External *struct {
		URI         string `json:"uri"`
		Title       string `json:"title"`
		Description string `json:"description"`
	} `json:"external"`
	// Record is a strongRef {uri, cid} in app.bsky.embed.record and
	// {record: strongRef} in app.bsky.embed.recordWithMedia.
	Record *struct {
		URI    string `json:"uri"`
		Record *struct {
			URI string `json:"uri"`
		} `json:"record"`
	} `json:"record"`
	Media *bskyEmbed `json:"media"`
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
		// An identity event says the DID's identity changed; most carry
		// no handle, and then the cached one may be stale.
		if ev.Identity != nil && ev.Identity.Handle != "" && ev.Identity.Handle != "handle.invalid" {
			c.learnHandle(ev.DID, ev.Identity.Handle)
		} else {
			delete(c.handles, ev.DID)
			delete(c.lookupFail, ev.DID)
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
	var change item.Change
	switch cm.Operation {
	case "create":
	case "update":
		change = item.ChangeEdit
	case "delete":
		return c.deleted(&ev, data)
	default:
		c.env.Metrics.Unknown.WithLabelValues(c.id, "operation:"+stream.Trunc(cm.Operation, 32)).Inc()
		return it, false, nil
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
		it.Text = c.postText(&p, &it)
		it.URL = "https://bsky.app/profile/" + ev.DID + "/post/" + cm.RKey
		if len(c.keywords) > 0 {
			kw := c.matchKeyword(it.Text)
			if kw == "" && (change == "" || !c.recent.Has(it.ID)) {
				return it, false, nil // an edit of a post handed on is kept even when it no longer matches
			}
			if kw != "" {
				it.Room = kw
			}
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
	if h := c.handles[ev.DID]; h != "" {
		it.Author = h
	}
	if change != "" {
		// An edit: the new version of an item stored before. Its id
		// stays; the event's time is when it was edited.
		c.recent.Add(it.ID)
		it.Change, it.ChangedAt = change, it.TS
		if p, err := time.Parse(time.RFC3339Nano, createdAt(cm.Record)); err == nil {
			it.TS = p.UTC()
		}
	} else if !c.recent.Add(it.ID) {
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

// deleted maps a delete commit. With keywords only deletes of posts
// handed on lately (the recent set) are passed on: the others were never
// stored, and the firehose deletes far more than a keyword filter keeps.
func (c *bskyCollector) deleted(ev *bskyEvent, data []byte) (item.Item, bool, error) {
	cm := ev.Commit
	if cm.Collection != bskyPostNSID && cm.Collection != bskyLikeNSID {
		return item.Item{}, false, nil
	}
	id := "at://" + ev.DID + "/" + cm.Collection + "/" + cm.RKey
	if len(c.keywords) > 0 && !c.recent.Has(id) {
		return item.Item{}, false, nil
	}
	kind := item.KindPost
	if cm.Collection == bskyLikeNSID {
		kind = item.KindLike
	}
	at := time.UnixMicro(ev.TimeUS).UTC()
	return item.Item{Source: c.id, Platform: "bluesky", Kind: kind, Room: cm.Collection, ID: id, AuthorID: ev.DID, TS: at,
		Labels: c.labels, Raw: append([]byte(nil), data...), Change: item.ChangeDelete, ChangedAt: at}, true, nil
}

// createdAt is a record's createdAt, "" when it has none.
func createdAt(record json.RawMessage) string {
	var r struct {
		CreatedAt string `json:"createdAt"`
	}
	_ = json.Unmarshal(record, &r)
	return r.CreatedAt
}

// learnHandle caches did's handle (bounded: a full cache starts over;
// handles come back with later events and lookups).
func (c *bskyCollector) learnHandle(did, handle string) {
	if len(c.handles) >= bskyHandles {
		clear(c.handles)
	}
	c.handles[did] = handle
}

// postText is the post's text made whole, and it fills it's labels from
// the record: each link facet's target replaces the text it covers (the
// app shows "example.com/very/lo…"); a post without text takes its
// images' (or video's) alt text, else its link card's title.
func (c *bskyCollector) postText(p *bskyPost, it *item.Item) string {
	text := p.Text
	var links, mentions []string
	facets := slices.Clone(p.Facets)
	slices.SortFunc(facets, func(a, b bskyFacet) int { return a.Index.ByteStart - b.Index.ByteStart })
	var b strings.Builder
	done := 0 // bytes of text already written
	for _, f := range facets {
		start, end := f.Index.ByteStart, f.Index.ByteEnd
		valid := start >= done && start < end && end <= len(text) && utf8.ValidString(text[start:end])
		for _, ft := range f.Features {
			switch ft.Type {
			case "app.bsky.richtext.facet#link":
				if ft.URI == "" {
					continue
				}
				links = append(links, ft.URI)
				if valid {
					b.WriteString(text[done:start])
					b.WriteString(ft.URI)
					done = end
					valid = false // one replacement per range
				}
			case "app.bsky.richtext.facet#mention":
				if ft.DID == "" {
					continue
				}
				who := ft.DID
				if start >= 0 && start < end && end <= len(p.Text) {
					if h := strings.TrimPrefix(p.Text[start:end], "@"); h != p.Text[start:end] && bskyHandleRe.MatchString(h) {
						c.learnHandle(ft.DID, strings.ToLower(h))
					}
				}
				if h := c.handles[ft.DID]; h != "" {
					who = h
				}
				mentions = append(mentions, who)
			}
		}
	}
	b.WriteString(text[done:])
	text = b.String()
	var quote string
	if e := p.Embed; e != nil {
		var alts []string
		for _, m := range []*bskyEmbed{e, e.Media} {
			if m == nil {
				continue
			}
			for _, img := range m.Images {
				if a := strings.TrimSpace(img.Alt); a != "" {
					alts = append(alts, a)
				}
			}
			if a := strings.TrimSpace(m.Alt); a != "" {
				alts = append(alts, a)
			}
			if m.External != nil && m.External.URI != "" {
				links = append(links, m.External.URI)
				if len(alts) == 0 && strings.TrimSpace(text) == "" {
					alts = append(alts, strings.TrimSpace(m.External.Title+"\n"+m.External.Description))
				}
			}
		}
		if r := e.Record; r != nil {
			quote = r.URI
			if r.Record != nil && r.Record.URI != "" {
				quote = r.Record.URI
			}
		}
		if strings.TrimSpace(text) == "" && len(alts) > 0 {
			text = strings.Join(alts, "\n")
		}
	}
	if len(links) > 0 || len(mentions) > 0 || quote != "" || len(p.Langs) > 0 {
		labels := make(map[string]string, len(c.labels)+4)
		maps.Copy(labels, c.labels)
		for k, v := range map[string]string{"links": strings.Join(slices.Compact(links), " "), "mentions": strings.Join(mentions, " "),
			"quote": quote, "langs": strings.Join(p.Langs, ",")} {
			if v != "" {
				labels[k] = v
			}
		}
		it.Labels = labels
	}
	return text
}

// bskyHandleRe is a handle: a domain name.
var bskyHandleRe = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// lookupHandle resolves did to its handle through the AppView's
// app.bsky.actor.getProfile, caching the answer. Lookups go through the
// shared HTTP client (the host's rate limit and breaker); a DID whose
// lookup failed waits bskyLookupRetry, and a failed request pauses every
// lookup for bskyLookupPause, so a down AppView costs the stream little.
// "" when unknown.
func (c *bskyCollector) lookupHandle(ctx context.Context, did string) string {
	if h := c.handles[did]; h != "" || c.lookup == "" {
		return h
	}
	now := c.env.Clock.Now()
	if now.Before(c.lookupPause) {
		return ""
	}
	if t, ok := c.lookupFail[did]; ok && now.Sub(t) < bskyLookupRetry {
		return ""
	}
	if c.lookupLimiter.Tokens() < 1 {
		// The AppView's rate limit is spent: the stream does not wait
		// for it (a busy firehose would fall behind); this author is
		// asked about at a later post.
		return ""
	}
	h, err := c.fetchHandle(ctx, did)
	if err != nil {
		if ctx.Err() != nil {
			return ""
		}
		if len(c.lookupFail) >= bskyHandles {
			clear(c.lookupFail)
		}
		c.lookupFail[did] = now
		c.lookupPause = now.Add(bskyLookupPause)
		c.env.Metrics.Errors.WithLabelValues(c.id, "handle_lookup").Inc()
		c.env.Log.Warn("bluesky: handle lookup failed; authors stay DIDs for a while", "did", did, "err", err, "pause", bskyLookupPause)
		return ""
	}
	if h == "" {
		c.lookupFail[did] = now // no valid handle: not worth asking again soon
		return ""
	}
	c.learnHandle(did, h)
	return h
}

func (c *bskyCollector) fetchHandle(ctx context.Context, did string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, bskyLookupTimeout)
	defer cancel()
	u := c.lookup + "/xrpc/app.bsky.actor.getProfile?actor=" + url.QueryEscape(did)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.env.HTTP.Do(ctx, req)
	if err != nil {
		return "", err
	}
	if err := httpx.CheckStatus(resp, c.env.Clock.Now()); err != nil {
		var se *httpx.StatusError
		if errors.As(err, &se) && se.Status == http.StatusBadRequest {
			return "", nil // unknown or taken-down actor: an answer, not a failure
		}
		return "", err
	}
	defer resp.Body.Close()
	var prof struct {
		DID    string `json:"did"`
		Handle string `json:"handle"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&prof); err != nil {
		return "", fmt.Errorf("getProfile %s: %w", did, err)
	}
	if prof.DID != did || prof.Handle == "handle.invalid" || !bskyHandleRe.MatchString(prof.Handle) {
		return "", nil
	}
	return strings.ToLower(prof.Handle), nil
}
