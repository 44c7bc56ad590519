package loopback

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// MastodonServer is a loopback Mastodon instance: the streaming API over
// WebSocket at /api/v1/streaming (?stream=…&tag=…&list=…, further streams
// added with {"type":"subscribe",…} messages; unknown streams answered with
// {"error":"Unknown stream type","status":400}), and the REST timelines
// (/api/v1/timelines/tag/:tag, /public, /list/:id with max_id, since_id,
// min_id and limit, newest first, and a Link header whose rel="next" pages
// to older statuses and rel="prev" to newer ones, as Mastodon paginates).
// Both demand "Authorization: Bearer <token>" (HTTP 401 otherwise), as
// Mastodon 4.2+ does for every timeline. Timeline requests can be made to
// fail (FailTimelines: e.g. a 429 with X-RateLimit-* headers and no
// Retry-After, as Mastodon's rate limiter answers). It records
// connections, subscriptions and REST requests.
type MastodonServer struct {
	URL          string // http://127.0.0.1:port  (config url)
	StreamingURL string // ws://127.0.0.1:port   (config streaming_url)

	token    string
	srv      *httptest.Server
	dials    *twitchRec[MastodonDial]
	subs     *twitchRec[MastodonSub]
	requests *twitchRec[string] // REST path?query

	mu       sync.Mutex
	conns    map[*mastoLBConn]bool
	total    int
	statuses []mastoLBStatus // every status ever published, in order
	fails    []MastodonFailure
}

// MastodonFailure is how one timeline request is answered instead of with
// statuses.
type MastodonFailure struct {
	Status int
	Header http.Header
	Body   string
}

// MastodonDial is one streaming connection attempt.
type MastodonDial struct {
	Conn          int // 0 when refused
	Query         url.Values
	Authorization string
	Refused       bool
}

// MastodonSub is one stream a connection subscribed to.
type MastodonSub struct {
	Conn int
	Key  string // "public", "hashtag:golang", "hashtag:local:golang", "list:42"
}

// MastodonStatus is the part of a Status the loopback server fills in.
type MastodonStatus struct {
	ID          string
	CreatedAt   time.Time
	Content     string // HTML
	SpoilerText string
	AccountID   string
	Acct        string
	InReplyToID string
	Tags        []string // lower case, without '#'
	Lists       []string // list ids whose timelines and streams carry it
	Local       bool
	Language    string          // ISO 639-1; default "en"
	Reblog      *MastodonStatus // a boost: this status is the booster's wrapper around Reblog
	EditedAt    time.Time       // set on an edited status
	Deleted     bool            // deleted: gone from timelines
}

type mastoLBStatus struct {
	st   MastodonStatus
	json string
}

type mastoLBConn struct {
	n    int
	ws   *websocket.Conn
	wmu  sync.Mutex
	mu   sync.Mutex
	subs map[string]bool
}

var mastoLBStreams = map[string]bool{
	"public": true, "public:local": true, "public:remote": true, "hashtag": true, "hashtag:local": true, "list": true,
	"user": true, "user:notification": true, "direct": true,
}

// NewMastodonServer starts an instance accepting token.
func NewMastodonServer(token string) *MastodonServer {
	s := &MastodonServer{
		token: token, dials: newTwitchRec[MastodonDial](), subs: newTwitchRec[MastodonSub](),
		requests: newTwitchRec[string](), conns: map[*mastoLBConn]bool{},
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/streaming", func(w http.ResponseWriter, r *http.Request) {
		d := MastodonDial{Query: r.URL.Query(), Authorization: r.Header.Get("Authorization")}
		if !s.authorized(r) {
			d.Refused = true
			s.dials.add(d)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"Error: Invalid access token"}`)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.total++
		c := &mastoLBConn{n: s.total, ws: ws, subs: map[string]bool{}}
		s.conns[c] = true
		s.mu.Unlock()
		d.Conn = c.n
		s.dials.add(d)
		q := r.URL.Query()
		if st := q.Get("stream"); st != "" {
			s.subscribe(c, st, q.Get("tag"), q.Get("list"))
		}
		s.serve(c)
	})
	mux.HandleFunc("GET /api/v1/timelines/tag/{tag}", func(w http.ResponseWriter, r *http.Request) {
		tag := strings.ToLower(r.PathValue("tag"))
		local := r.URL.Query().Get("local") == "true"
		s.timeline(w, r, func(st MastodonStatus) bool {
			return (!local || st.Local) && mastoLBContains(st.Tags, tag)
		})
	})
	mux.HandleFunc("GET /api/v1/timelines/public", func(w http.ResponseWriter, r *http.Request) {
		local := r.URL.Query().Get("local") == "true"
		s.timeline(w, r, func(st MastodonStatus) bool { return !local || st.Local })
	})
	mux.HandleFunc("GET /api/v1/timelines/list/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		s.timeline(w, r, func(st MastodonStatus) bool { return mastoLBContains(st.Lists, id) })
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	s.StreamingURL = "ws" + strings.TrimPrefix(s.srv.URL, "http")
	return s
}

func mastoLBContains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (s *MastodonServer) authorized(r *http.Request) bool {
	return r.Header.Get("Authorization") == "Bearer "+s.token
}

// FailTimelines makes the next len(fails) timeline requests fail, one
// failure each, in order.
func (s *MastodonServer) FailTimelines(fails ...MastodonFailure) {
	s.mu.Lock()
	s.fails = append(s.fails, fails...)
	s.mu.Unlock()
}

// RateLimited is Mastodon's answer to a client over its limit: HTTP 429
// with X-RateLimit-Limit, -Remaining and -Reset (an ISO 8601 time) and no
// Retry-After.
func RateLimited(reset time.Time) MastodonFailure {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "300")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", reset.UTC().Format("2006-01-02T15:04:05.000Z"))
	return MastodonFailure{Status: http.StatusTooManyRequests, Header: h, Body: `{"error":"Too many requests"}`}
}

// timeline answers a REST timeline request: statuses match accepts, newest
// first, at most limit (default 20, max 40). max_id keeps the ones older
// than it; since_id the newest ones newer than it; min_id the ones right
// after it (the oldest newer ones), still listed newest first.
func (s *MastodonServer) timeline(w http.ResponseWriter, r *http.Request, match func(MastodonStatus) bool) {
	s.requests.add(r.URL.Path + "?" + r.URL.RawQuery)
	w.Header().Set("Content-Type", "application/json")
	if !s.authorized(r) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"The access token is invalid"}`)
		return
	}
	s.mu.Lock()
	if len(s.fails) > 0 {
		f := s.fails[0]
		s.fails = s.fails[1:]
		s.mu.Unlock()
		for k, vs := range f.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(f.Status)
		fmt.Fprint(w, f.Body)
		return
	}
	q := r.URL.Query()
	limit := 20
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		limit = min(n, 40)
	}
	maxID, since, minID := q.Get("max_id"), q.Get("since_id"), q.Get("min_id")
	var out []mastoLBStatus
	for _, st := range s.statuses {
		if st.st.Deleted || !match(st.st) || (maxID != "" && !mastoLBNewer(maxID, st.st.ID)) {
			continue
		}
		if (since != "" && !mastoLBNewer(st.st.ID, since)) || (minID != "" && !mastoLBNewer(st.st.ID, minID)) {
			continue
		}
		out = append(out, st)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return mastoLBNewer(out[i].st.ID, out[j].st.ID) })
	if len(out) > limit {
		if minID != "" && since == "" {
			out = out[len(out)-limit:] // the page right after min_id
		} else {
			out = out[:limit]
		}
	}
	if len(out) > 0 {
		base := s.URL + r.URL.Path + "?limit=" + strconv.Itoa(limit)
		for _, k := range []string{"local", "remote"} {
			if v := q.Get(k); v != "" {
				base += "&" + k + "=" + v
			}
		}
		w.Header().Set("Link", fmt.Sprintf(`<%s&max_id=%s>; rel="next", <%s&min_id=%s>; rel="prev"`,
			base, out[len(out)-1].st.ID, base, out[0].st.ID))
	}
	parts := make([]string, len(out))
	for i, st := range out {
		parts[i] = st.json
	}
	fmt.Fprint(w, "["+strings.Join(parts, ",")+"]")
}

func mastoLBNewer(a, b string) bool {
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a > b
}

func (s *MastodonServer) subscribe(c *mastoLBConn, stream, tag, list string) {
	if !mastoLBStreams[stream] {
		_ = c.write(`{"error":"Unknown stream type","status":400}`)
		return
	}
	key := stream
	switch {
	case strings.HasPrefix(stream, "hashtag"):
		if tag == "" {
			_ = c.write(`{"error":"Missing tag name parameter","status":400}`)
			return
		}
		key += ":" + strings.ToLower(tag)
	case stream == "list":
		if list == "" {
			_ = c.write(`{"error":"Missing list name parameter","status":400}`)
			return
		}
		key += ":" + list
	}
	c.mu.Lock()
	c.subs[key] = true
	c.mu.Unlock()
	s.subs.add(MastodonSub{Conn: c.n, Key: key})
}

func (s *MastodonServer) serve(c *mastoLBConn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.ws.Close()
	}()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m struct{ Type, Stream, Tag, List string }
		if json.Unmarshal(data, &m) != nil {
			_ = c.write(`{"error":"Invalid JSON","status":400}`)
			continue
		}
		switch m.Type {
		case "subscribe":
			s.subscribe(c, m.Stream, m.Tag, m.List)
		case "unsubscribe":
			c.mu.Lock()
			for k := range c.subs {
				if k == m.Stream || k == m.Stream+":"+strings.ToLower(m.Tag) || k == m.Stream+":"+m.List {
					delete(c.subs, k)
				}
			}
			c.mu.Unlock()
		}
	}
}

func (c *mastoLBConn) write(msg string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, []byte(msg))
}

// StatusJSON renders st as Mastodon's Status entity.
func (s *MastodonServer) StatusJSON(st MastodonStatus) string {
	b, _ := json.Marshal(s.statusMap(st))
	return string(b)
}

func (s *MastodonServer) statusMap(st MastodonStatus) map[string]any {
	tags := make([]map[string]string, 0, len(st.Tags))
	for _, t := range st.Tags {
		tags = append(tags, map[string]string{"name": t, "url": s.URL + "/tags/" + t})
	}
	var reply, reblog, edited any
	if st.InReplyToID != "" {
		reply = st.InReplyToID
	}
	if st.Reblog != nil {
		reblog = s.statusMap(*st.Reblog)
	}
	if !st.EditedAt.IsZero() {
		edited = st.EditedAt.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	lang := st.Language
	if lang == "" {
		lang = "en"
	}
	return map[string]any{
		"id": st.ID, "created_at": st.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z"), "in_reply_to_id": reply,
		"sensitive": st.SpoilerText != "", "spoiler_text": st.SpoilerText, "visibility": "public", "language": lang,
		"uri": s.URL + "/users/" + st.Acct + "/statuses/" + st.ID, "url": s.URL + "/@" + st.Acct + "/" + st.ID,
		"replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "content": st.Content, "reblog": reblog,
		"edited_at": edited,
		"account":   map[string]any{"id": st.AccountID, "username": st.Acct, "acct": st.Acct, "display_name": st.Acct},
		"tags":      tags,
	}
}

// Post publishes a new status: it joins the REST timelines and goes, as an
// update event, to every connection subscribed to public, to one of its
// tags or lists, or (Local only) to the local variants. A boost (Reblog
// set) is filed under the original's tags, as Mastodon does. It returns
// how many deliveries were made.
func (s *MastodonServer) Post(st MastodonStatus) int {
	if st.Reblog != nil && len(st.Tags) == 0 {
		st.Tags = st.Reblog.Tags
	}
	js := s.StatusJSON(st)
	s.mu.Lock()
	s.statuses = append(s.statuses, mastoLBStatus{st: st, json: js})
	s.mu.Unlock()
	return s.broadcast(st, "update", js)
}

// Publish files st in the timelines without a streaming event: a status
// posted while nobody was connected.
func (s *MastodonServer) Publish(st MastodonStatus) {
	if st.Reblog != nil && len(st.Tags) == 0 {
		st.Tags = st.Reblog.Tags
	}
	js := s.StatusJSON(st)
	s.mu.Lock()
	s.statuses = append(s.statuses, mastoLBStatus{st: st, json: js})
	s.mu.Unlock()
}

// Edit replaces the status with st's id (its text, language…) in the
// timelines and sends status.update with the new version to the streams
// it is in.
func (s *MastodonServer) Edit(st MastodonStatus) int {
	if st.EditedAt.IsZero() {
		st.EditedAt = time.Now()
	}
	js := s.StatusJSON(st)
	s.mu.Lock()
	for i := range s.statuses {
		if s.statuses[i].st.ID == st.ID {
			s.statuses[i] = mastoLBStatus{st: st, json: js}
		}
	}
	s.mu.Unlock()
	return s.broadcast(st, "status.update", js)
}

// Delete removes the status with id from the timelines and sends delete
// (the payload is the bare id) to the streams it was in.
func (s *MastodonServer) Delete(id string) int {
	var st MastodonStatus
	s.mu.Lock()
	for i := range s.statuses {
		if s.statuses[i].st.ID == id {
			s.statuses[i].st.Deleted = true
			st = s.statuses[i].st
		}
	}
	s.mu.Unlock()
	return s.broadcast(st, "delete", id)
}

func (s *MastodonServer) broadcast(st MastodonStatus, event, payload string) int {
	keys := [][]string{{"public"}}
	if st.Local {
		keys = append(keys, []string{"public:local"})
	}
	for _, t := range st.Tags {
		keys = append(keys, []string{"hashtag", t})
		if st.Local {
			keys = append(keys, []string{"hashtag:local", t})
		}
	}
	for _, l := range st.Lists {
		keys = append(keys, []string{"list", l})
	}
	n := 0
	for _, k := range keys {
		n += s.Event(k, event, payload)
	}
	return n
}

// Event sends {"stream": stream, "event": event, "payload": payload} to
// every connection subscribed to that stream; payload "" sends none.
func (s *MastodonServer) Event(stream []string, event, payload string) int {
	key := strings.Join(stream, ":")
	m := map[string]any{"stream": stream, "event": event}
	if payload != "" {
		m["payload"] = payload
	}
	b, _ := json.Marshal(m)
	return s.sendTo(key, string(b))
}

// Raw sends msg as is to every connection.
func (s *MastodonServer) Raw(msg string) int { return s.sendTo("", msg) }

func (s *MastodonServer) sendTo(key, msg string) int {
	s.mu.Lock()
	conns := make([]*mastoLBConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		c.mu.Lock()
		in := key == "" || c.subs[key]
		c.mu.Unlock()
		if in && c.write(msg) == nil {
			n++
		}
	}
	return n
}

// Dials returns every streaming connection attempt.
func (s *MastodonServer) Dials() []MastodonDial { return s.dials.all() }

// WaitDial waits for the from-th (0-based) streaming connection attempt.
func (s *MastodonServer) WaitDial(from int, timeout time.Duration) (MastodonDial, bool) {
	d, _, ok := s.dials.wait(from, timeout, func(MastodonDial) bool { return true })
	return d, ok
}

// WaitSub waits for connection conn to subscribe to key.
func (s *MastodonServer) WaitSub(conn int, key string, timeout time.Duration) bool {
	_, _, ok := s.subs.wait(0, timeout, func(m MastodonSub) bool { return m.Conn == conn && m.Key == key })
	return ok
}

// Requests returns the REST requests so far (path?query).
func (s *MastodonServer) Requests() []string { return s.requests.all() }

// WaitRequest waits for a REST request containing substr.
func (s *MastodonServer) WaitRequest(substr string, timeout time.Duration) (string, bool) {
	r, _, ok := s.requests.wait(0, timeout, func(r string) bool { return strings.Contains(r, substr) })
	return r, ok
}

// Drop closes every streaming connection.
func (s *MastodonServer) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.ws.Close()
	}
}

// Close stops the server.
func (s *MastodonServer) Close() {
	s.Drop()
	s.srv.Close()
}
