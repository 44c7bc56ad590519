// Package feed is the rss collector: it polls RSS, Atom and JSON Feed
// documents (parsed by ParseFeed) with conditional requests, and stores new
// entries and edits of seen ones.
//
// It runs on poll.Loop like the other pollers (interval, jitter, backoff,
// Retry-After, error counting and health), with the period stretched to a
// feed's <ttl> through Loop.AtLeast. Its state is its own, not poll.State:
// the keys rss.seen (up to max_seen ids, default 2000), rss.digests and
// rss.validators (bound to the feed's URL) keep the format earlier
// versions wrote, so a restart after an upgrade emits nothing again.
package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/poll"
	"lookout/config"
	"lookout/internal/httpurl"
	"lookout/item"
)

// rssDefaultMaxSeen is how many entry ids a source remembers by default.
const rssDefaultMaxSeen = 2000

// State keys (per source) that survive restarts.
const (
	rssStateValidators = "rss.validators" // JSON rssStoredValidators
	rssStateSeen       = "rss.seen"       // JSON array of entry ids, oldest first
	rssStateDigests    = "rss.digests"    // JSON object: seen entry id -> FeedEntry.Digest of the version last emitted
)

// rssAccept prefers feeds but takes whatever the server has, so that an
// HTML error page still reaches the parser and is reported as such.
var rssAccept = http.Header{"Accept": {"application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.9, */*;q=0.8"}}

// rssSpec is the rss kind's own config keys.
type rssSpec struct {
	URL     string `yaml:"url"`      // the feed, http(s)
	Room    string `yaml:"room"`     // topic name; default host+path of url
	MaxSeen int    `yaml:"max_seen"` // entry ids remembered for dedupe, default 2000
}

// rssStoredValidators ties validators to the URL they were issued for, so
// that editing the config's url never sends a stale ETag.
type rssStoredValidators struct {
	URL string `json:"url"`
	httpx.Validators
}

// rssCollector polls one feed.
type rssCollector struct {
	src     config.SourceConfig
	env     collectors.Env
	http    *httpx.Client
	url     string
	room    string
	maxSeen int
	loop    *poll.Loop
	health  *collectors.SourceHealth
	loc     *time.Location // zone of dates the feed writes without one

	loaded     bool // state read from the store
	validators httpx.Validators
	seen       []string // oldest first
	seenSet    map[string]struct{}
	savedSeen  string            // last persisted rssStateSeen value
	digests    map[string]string // seen id -> digest of the version last emitted (ids seen before digests were kept have none)
	savedDig   string            // last persisted rssStateDigests value
}

// NewRSS builds an rss source (a collectors.Factory).
func NewRSS(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec rssSpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	field := fmt.Sprintf("sources[%s].", src.ID)
	u, err := url.Parse(strings.TrimSpace(spec.URL))
	switch {
	case spec.URL == "":
		return nil, &config.FieldError{Line: src.Line, Field: field + "url", Msg: "required: the feed's http(s) URL"}
	case err != nil || !httpurl.OK(u):
		return nil, &config.FieldError{Line: src.Line, Field: field + "url", Msg: fmt.Sprintf("%s is not an http(s) URL", httpx.RedactURL(spec.URL))}
	case spec.MaxSeen < 0:
		return nil, &config.FieldError{Line: src.Line, Field: field + "max_seen", Msg: "must not be negative"}
	}
	hc, err := env.HTTP.ForSource(src)
	if err != nil {
		return nil, &config.FieldError{Line: src.Line, Field: field + "proxy", Msg: err.Error()}
	}
	loc, err := poll.Location("", src)
	if err != nil {
		return nil, &config.FieldError{Line: src.Line, Field: field + "timezone", Msg: err.Error()}
	}
	c := &rssCollector{
		loc:     loc,
		src:     src,
		env:     env,
		http:    hc,
		url:     u.String(),
		room:    spec.Room,
		maxSeen: spec.MaxSeen,
		loop:    poll.NewLoop(src, env),
		seenSet: map[string]struct{}{},
		digests: map[string]string{},
		health:  env.Health,
	}
	if c.room == "" {
		c.room = u.Host + u.EscapedPath()
	}
	if c.maxSeen == 0 {
		c.maxSeen = rssDefaultMaxSeen
	}
	return c, nil
}

// Run polls until ctx is done. Until the stored state loads nothing is
// fetched, so that old entries are not emitted again.
func (c *rssCollector) Run(ctx context.Context, emit collectors.Emit) error {
	return c.loop.Run(ctx, emit, func(ctx context.Context) error {
		if !c.loaded {
			if err := c.load(ctx); err != nil {
				return poll.Err("state", fmt.Errorf("not polling until the stored state loads: %w", err))
			}
			c.loaded = true
		}
		return c.poll(ctx, emit)
	})
}

// load reads validators and seen ids from the state store.
func (c *rssCollector) load(ctx context.Context) error {
	if v, ok, err := c.env.State.GetState(ctx, c.src.ID, rssStateValidators); err != nil {
		return fmt.Errorf("read %s: %w", rssStateValidators, err)
	} else if ok {
		var sv rssStoredValidators
		if err := json.Unmarshal([]byte(v), &sv); err != nil {
			c.env.Log.Warn("rss: ignoring unreadable stored validators", "err", err)
		} else if sv.URL == c.url {
			c.validators = sv.Validators
		}
	}
	v, ok, err := c.env.State.GetState(ctx, c.src.ID, rssStateSeen)
	if err != nil {
		return fmt.Errorf("read %s: %w", rssStateSeen, err)
	}
	if ok {
		var ids []string
		if err := json.Unmarshal([]byte(v), &ids); err != nil {
			// Without the seen list every current entry would come again;
			// say so loudly but keep working.
			c.env.Log.Error("rss: stored seen ids unreadable; current entries will be emitted again", "err", err)
		} else {
			c.seen = ids
			for _, id := range ids {
				c.seenSet[id] = struct{}{}
			}
			c.savedSeen = v
		}
	}
	v, ok, err = c.env.State.GetState(ctx, c.src.ID, rssStateDigests)
	if err != nil {
		return fmt.Errorf("read %s: %w", rssStateDigests, err)
	}
	if ok {
		// Unreadable digests cost only edit detection until the entries'
		// digests are recorded again; state written before digests were
		// kept has none, and its entries get theirs on the next poll.
		var d map[string]string
		if err := json.Unmarshal([]byte(v), &d); err != nil {
			c.env.Log.Warn("rss: ignoring unreadable stored digests; edits of entries seen so far go unnoticed once", "err", err)
		} else {
			c.digests, c.savedDig = d, v
		}
	}
	return nil
}

// poll fetches the feed once and emits what is new. The loop logs and
// counts a failure, reports it to health and picks the wait.
func (c *rssCollector) poll(ctx context.Context, emit collectors.Emit) error {
	fetched := c.env.Clock.Now()
	res, err := c.http.GetConditional(ctx, c.url, c.validators, rssAccept)
	if err != nil {
		return poll.Err(rssReason(err), fmt.Errorf("rss: %w", err)) // httpx errors name the (redacted) URL
	}
	if res.NotModified {
		if res.Validators != c.validators {
			c.validators = res.Validators
			c.saveState(ctx, false, true)
		}
		return nil
	}
	body := res.Body
	dec, converted := httpx.ToUTF8XML(body, res.Header.Get("Content-Type"))
	if converted {
		body = dec.Text // no charset declared anywhere and not UTF-8: sniffed
	}
	feed, err := ParseFeed(body, res.Header.Get("Content-Type"), res.URL)
	if err == nil {
		if !converted {
			dec = rssDecoded(feed, res.Body)
		}
		c.env.TextDecoded(ctx, c.src.ID, httpx.RedactURL(c.url), dec)
	}
	if err != nil {
		// The server is fine; what it sent is not a feed. Polling faster
		// would not fix that, so wait at least the regular interval, and
		// keep the old validators so that the next good document is
		// fetched in full.
		err = fmt.Errorf("rss: feed unparseable: %s (Content-Type %q, %d bytes): %w",
			httpx.RedactURL(c.url), res.Header.Get("Content-Type"), len(res.Body), err)
		return poll.ErrWait("parse", c.loop.Interval(), err)
	}
	if len(feed.Warnings) > 0 {
		// The document was damaged but yielded entries: say what it cost.
		c.env.Metrics.Errors.WithLabelValues(c.src.ID, "parse_repaired").Inc()
		c.env.Log.Warn("rss: feed damaged, kept what parsed", "url", httpx.RedactURL(c.url), "entries", len(feed.Entries), "warnings", strings.Join(feed.Warnings, "; "))
	}
	c.loop.AtLeast(feed.TTL)

	fresh := c.news(feed.Entries, fetched.UTC())
	// Feeds list newest first (mostly); the pipeline wants time order.
	slices.SortStableFunc(fresh, func(a, b FeedEntry) int { return rssItemTime(a).Compare(rssItemTime(b)) })

	complete := true
	for _, e := range fresh {
		if err := emit(ctx, c.item(e)); err != nil {
			complete = false
			break
		}
		c.env.Metrics.Items.WithLabelValues(c.src.ID, string(item.KindPost)).Inc()
		if e.EditOf != "" {
			c.digests[e.EditOf] = e.Digest()
			continue
		}
		c.seen = append(c.seen, e.ID)
		c.seenSet[e.ID] = struct{}{}
		c.digests[e.ID] = e.Digest()
	}
	c.compactSeen(feed.Entries)
	newValidators := complete && res.Validators != c.validators
	if newValidators {
		// Only when every entry went out: with the new ETag stored, a
		// restart would get a 304 and never see entries we failed to hand on.
		c.validators = res.Validators
	}
	// After the emits: the seen ids and the ETag are committed with the
	// entries they cover, or after them (see StateStore).
	c.saveState(ctx, true, newValidators)
	if complete && len(fresh) > 0 {
		c.env.Log.Debug("rss: new entries", "url", httpx.RedactURL(c.url), "n", len(fresh))
	}
	return nil // emit fails only when the daemon stops, and then the loop ends
}

// news picks what to emit from a fetched feed: entries never seen, and
// edits — seen entries whose title or text changed since the version last
// emitted. An edit goes out under the entry's id as an item.ChangeEdit
// noticed now (EditOf and EditedAt set): the store replaces the text and
// keeps the earlier version in item_versions. A seen entry without a recorded digest (state
// from before digests were kept) only has its digest recorded.
func (c *rssCollector) news(entries []FeedEntry, now time.Time) []FeedEntry {
	var out []FeedEntry
	for _, e := range entries {
		e.Published, e.Zoneless = e.InZone(c.loc), false
		if e.Published.IsZero() {
			e.Published = now
		}
		if _, ok := c.seenSet[e.ID]; !ok {
			out = append(out, e)
			continue
		}
		d := e.Digest()
		old, ok := c.digests[e.ID]
		switch {
		case !ok:
			c.digests[e.ID] = d
		case old != d:
			e.EditOf, e.EditedAt = e.ID, now
			out = append(out, e)
		}
	}
	return out
}

// rssItemTime is when an entry happened for the pipeline: an edit when it
// was noticed, else its date.
func rssItemTime(e FeedEntry) time.Time {
	if !e.EditedAt.IsZero() {
		return e.EditedAt
	}
	return e.Published
}

func (c *rssCollector) item(e FeedEntry) item.Item {
	raw, _ := json.Marshal(e)
	it := item.Item{
		Source:   c.src.ID,
		Platform: "rss",
		Kind:     item.KindPost,
		Room:     c.room,
		ID:       e.ID,
		Author:   e.Author,
		Text:     e.Text(),
		URL:      e.URL,
		TS:       e.Published,
		Labels:   c.src.Labels,
		Raw:      raw,
	}
	if e.EditOf != "" {
		it.Change, it.ChangedAt = item.ChangeEdit, e.EditedAt
	}
	return it
}

// compactSeen keeps the seen list bounded to the newest maxSeen ids, but
// never forgets an id the feed still lists (it would come back as new):
// those move to the young end.
func (c *rssCollector) compactSeen(current []FeedEntry) {
	inFeed := make(map[string]struct{}, len(current))
	for _, e := range current {
		if _, ok := c.seenSet[e.ID]; ok {
			inFeed[e.ID] = struct{}{}
		}
	}
	keep := max(c.maxSeen, len(inFeed))
	out := make([]string, 0, min(len(c.seen), keep))
	for _, id := range c.seen {
		if _, ok := inFeed[id]; !ok {
			out = append(out, id)
		}
	}
	if drop := len(out) + len(inFeed) - keep; drop > 0 {
		for _, id := range out[:drop] {
			delete(c.seenSet, id)
		}
		out = out[drop:]
	}
	// Oldest-listed (last in document order) first, so the newest stay longest.
	for i := len(current) - 1; i >= 0; i-- {
		id := current[i].ID
		if _, ok := inFeed[id]; ok {
			out = append(out, id)
			delete(inFeed, id) // a duplicate id in the document counts once
		}
	}
	c.seen = out
	for id := range c.digests {
		if _, ok := c.seenSet[id]; !ok {
			delete(c.digests, id)
		}
	}
}

// saveState writes the seen ids and their digests (when they changed)
// and the validators in one write. It gets a few seconds even when ctx was cancelled
// mid-poll: losing the seen list at shutdown would re-emit entries.
func (c *rssCollector) saveState(ctx context.Context, seen, validators bool) {
	kv := map[string]string{}
	seenJSON, digJSON := "", ""
	if seen {
		b, err := json.Marshal(c.seen)
		if err != nil {
			c.env.StateSaveFailed(ctx, c.src.ID, rssStateSeen, err)
			return
		}
		if seenJSON = string(b); seenJSON != c.savedSeen {
			kv[rssStateSeen] = seenJSON
		}
		b, err = json.Marshal(c.digests) // keys sorted: the same map writes the same text
		if err != nil {
			c.env.StateSaveFailed(ctx, c.src.ID, rssStateDigests, err)
			return
		}
		if digJSON = string(b); digJSON != c.savedDig {
			kv[rssStateDigests] = digJSON
		}
	}
	if validators {
		b, err := json.Marshal(rssStoredValidators{URL: c.url, Validators: c.validators})
		if err != nil {
			c.env.StateSaveFailed(ctx, c.src.ID, rssStateValidators, err)
			return
		}
		kv[rssStateValidators] = string(b)
	}
	if len(kv) == 0 {
		return
	}
	sctx, cancel := collectors.StateContext(ctx)
	defer cancel()
	if err := c.env.State.PutStates(sctx, c.src.ID, kv); err != nil {
		// A restart may emit entries again (the store drops the copies) or
		// refetch the whole feed.
		c.env.StateSaveFailed(ctx, c.src.ID, "seen ids and validators", err)
		return
	}
	if _, ok := kv[rssStateSeen]; ok {
		c.savedSeen = seenJSON
	}
	if _, ok := kv[rssStateDigests]; ok {
		c.savedDig = digJSON
	}
}

// rssReason names a fetch error for the errors counter.
// rssDecoded accounts for a feed the parser decoded with its declared
// charset: the replacement characters its entries gained (a charset
// declared wrong shows as many).
func rssDecoded(feed *Feed, raw []byte) httpx.Decoded {
	var b strings.Builder
	for _, e := range feed.Entries {
		b.WriteString(e.Title)
		b.WriteString(e.Summary)
		b.WriteString(e.Author)
	}
	text := b.String()
	n := strings.Count(text, "\uFFFD") - bytes.Count(raw, []byte("\uFFFD"))
	return httpx.Decoded{Text: []byte(text), Charset: "declared", How: "declared", Replacements: max(n, 0)}
}

func rssReason(err error) string {
	var se *httpx.StatusError
	if errors.As(err, &se) {
		if se.Status == http.StatusTooManyRequests || (se.Status == http.StatusServiceUnavailable && se.RetryAfter > 0) {
			return "rate_limited"
		}
		return "http_" + strconv.Itoa(se.Status)
	}
	if errors.Is(err, httpx.ErrCircuitOpen) {
		return "circuit_open"
	}
	if errors.Is(err, httpx.ErrTooLarge) {
		return "too_large"
	}
	if errors.Is(err, httpx.ErrRobotsDisallowed) {
		return "robots_disallowed"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "network"
}
