// Package feed is the rss collector: it polls RSS and Atom feeds (parsed by
// ParseFeed) with conditional requests.
//
// It keeps a loop of its own rather than poll.Loop. Folding it in is not
// safe as a move: its state lives under the keys rss.seen (up to max_seen
// ids, default 2000, where poll.State keeps 500) and rss.validators (bound
// to the feed's URL), so a switch would need a migration of stored state or
// every feed would fetch and emit its entries again once (the store would
// drop the duplicates); and its period stretches to a
// feed's <ttl>, which poll.Loop does not know. Both loops share
// poll.Interval and httpx's backoff and Retry-After handling.
package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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
	"lookout/item"
)

// Defaults for rss sources.
const (
	rssDefaultEvery   = 5 * time.Minute
	rssDefaultMaxSeen = 2000
	rssDefaultJitter  = 0.1
	rssMaxBackoff     = 30 * time.Minute
)

// State keys (per source) that survive restarts.
const (
	rssStateValidators = "rss.validators" // JSON rssStoredValidators
	rssStateSeen       = "rss.seen"       // JSON array of entry ids, oldest first
)

// rssAccept prefers feeds but takes whatever the server has, so that an
// HTML error page still reaches the parser and is reported as such.
var rssAccept = http.Header{"Accept": {"application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"}}

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
	every   time.Duration
	jitter  float64
	maxSeen int
	backoff *httpx.Backoff
	health  *collectors.SourceHealth

	validators httpx.Validators
	ttl        time.Duration
	seen       []string // oldest first
	seenSet    map[string]struct{}
	savedSeen  string // last persisted rssStateSeen value
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
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, &config.FieldError{Line: src.Line, Field: field + "url", Msg: fmt.Sprintf("%s is not an http(s) URL", httpx.RedactURL(spec.URL))}
	case spec.MaxSeen < 0:
		return nil, &config.FieldError{Line: src.Line, Field: field + "max_seen", Msg: "must not be negative"}
	}
	hc, err := env.HTTP.ForSource(src)
	if err != nil {
		return nil, &config.FieldError{Line: src.Line, Field: field + "proxy", Msg: err.Error()}
	}
	c := &rssCollector{
		src:     src,
		env:     env,
		http:    hc,
		url:     u.String(),
		room:    spec.Room,
		every:   src.Every.D(),
		jitter:  src.Jitter,
		maxSeen: spec.MaxSeen,
		seenSet: map[string]struct{}{},
		health:  env.Health,
	}
	if c.room == "" {
		c.room = u.Host + u.EscapedPath()
	}
	if c.every <= 0 {
		c.every = rssDefaultEvery
	}
	env.Health.PollsEvery(c.every)
	if c.jitter == 0 {
		c.jitter = rssDefaultJitter
	}
	if c.maxSeen == 0 {
		c.maxSeen = rssDefaultMaxSeen
	}
	h := fnv.New64a()
	h.Write([]byte(src.ID))
	c.backoff = httpx.NewBackoff(min(max(c.every/4, 5*time.Second), time.Minute), max(rssMaxBackoff, c.every), h.Sum64())
	return c, nil
}

// Run polls until ctx is done.
func (c *rssCollector) Run(ctx context.Context, emit collectors.Emit) error {
	for {
		err := c.load(ctx)
		if err == nil {
			break
		}
		c.env.Metrics.Errors.WithLabelValues(c.src.ID, "state").Inc()
		wait := c.backoff.Next()
		c.env.Log.Error("rss: cannot load state; not polling until it loads, so old entries are not re-emitted", "err", err, "retry_in", wait)
		if httpx.Sleep(ctx, c.env.Clock, wait) != nil {
			return nil
		}
	}
	c.backoff.Reset()
	for {
		wait := c.poll(ctx, emit)
		if ctx.Err() != nil {
			return nil
		}
		if httpx.Sleep(ctx, c.env.Clock, wait) != nil {
			return nil
		}
	}
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
	return nil
}

// interval is the next regular wait: every (or the feed's ttl when that is
// longer), with jitter.
func (c *rssCollector) interval() time.Duration {
	return poll.Interval(max(c.every, c.ttl), c.jitter)
}

// poll fetches the feed once, emits what is new and returns how long to wait.
func (c *rssCollector) poll(ctx context.Context, emit collectors.Emit) time.Duration {
	fetched := c.env.Clock.Now()
	res, err := c.http.GetConditional(ctx, c.url, c.validators, rssAccept)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		reason := rssReason(err)
		wait := httpx.RetryDelay(err, c.backoff)
		c.env.Metrics.Errors.WithLabelValues(c.src.ID, reason).Inc()
		c.env.Log.Warn("rss: fetch failed", "url", httpx.RedactURL(c.url), "reason", reason, "err", err, "retry_in", wait.Round(time.Millisecond))
		c.health.Failed(reason, err, reason == "robots_disallowed")
		return wait
	}
	c.backoff.Reset()
	if res.NotModified {
		c.health.Succeeded()
		if res.Validators != c.validators {
			c.validators = res.Validators
			c.saveState(ctx, false, true)
		}
		return c.interval()
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
		// would not fix that, so keep the regular interval, and keep the old
		// validators so that the next good document is fetched in full.
		c.env.Metrics.Errors.WithLabelValues(c.src.ID, "parse").Inc()
		c.env.Log.Error("rss: feed unparseable", "url", httpx.RedactURL(c.url), "content_type", res.Header.Get("Content-Type"), "bytes", len(res.Body), "err", err)
		err = fmt.Errorf("%s: %w", httpx.RedactURL(c.url), err)
		c.health.Failed("parse", err, false)
		return c.interval()
	}
	c.health.Succeeded()
	c.ttl = feed.TTL

	var fresh []FeedEntry
	for _, e := range feed.Entries {
		if _, ok := c.seenSet[e.ID]; !ok {
			fresh = append(fresh, e)
		}
	}
	for i := range fresh {
		if fresh[i].Published.IsZero() {
			fresh[i].Published = fetched.UTC()
		}
	}
	// Feeds list newest first (mostly); the pipeline wants time order.
	slices.SortStableFunc(fresh, func(a, b FeedEntry) int { return a.Published.Compare(b.Published) })

	complete := true
	for _, e := range fresh {
		if err := emit(ctx, c.item(e)); err != nil {
			complete = false
			break
		}
		c.env.Metrics.Items.WithLabelValues(c.src.ID, string(item.KindPost)).Inc()
		c.seen = append(c.seen, e.ID)
		c.seenSet[e.ID] = struct{}{}
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
	if !complete {
		return c.interval() // emit fails only when the daemon stops
	}
	if len(fresh) > 0 {
		c.env.Log.Debug("rss: new entries", "url", httpx.RedactURL(c.url), "n", len(fresh))
	}
	return c.interval()
}

func (c *rssCollector) item(e FeedEntry) item.Item {
	raw, _ := json.Marshal(e)
	return item.Item{
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
}

// saveState writes the seen ids (when they changed) and the validators
// in one write. It gets a few seconds even when ctx was cancelled
// mid-poll: losing the seen list at shutdown would re-emit entries.
func (c *rssCollector) saveState(ctx context.Context, seen, validators bool) {
	kv := map[string]string{}
	seenJSON := ""
	if seen {
		b, err := json.Marshal(c.seen)
		if err != nil {
			c.env.StateSaveFailed(ctx, c.src.ID, rssStateSeen, err)
			return
		}
		if seenJSON = string(b); seenJSON != c.savedSeen {
			kv[rssStateSeen] = seenJSON
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
