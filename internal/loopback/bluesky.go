package loopback

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// BlueskyServer is a loopback Jetstream instance: GET /subscribe upgrades
// to a WebSocket that streams JSON events, one per text frame, filtered by
// wantedCollections (NSIDs, ".*" prefix wildcards) and wantedDids as the
// real service does — identity and account events go to every subscriber
// whatever the collections. A cursor (Unix µs, inclusive) replays the
// published history from that time before the live tail. Bad parameters get
// HTTP 400. It records each subscription's query.
type BlueskyServer struct {
	URL string // ws://127.0.0.1:port/subscribe

	srv  *httptest.Server
	subs *twitchRec[BlueskySubscription]

	mu      sync.Mutex
	history []bskyLBEvent
	conns   map[*bskyLBConn]bool
	total   int
}

// BlueskySubscription is one accepted /subscribe request.
type BlueskySubscription struct {
	Conn  int // 1 for the first
	Query url.Values
}

type bskyLBEvent struct {
	did, kind, collection string
	timeUS                int64
	raw                   []byte
}

type bskyLBConn struct {
	ws    *websocket.Conn
	wmu   sync.Mutex
	colls []string
	dids  map[string]bool
}

var bskyLBNSID = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+)*(\.\*|(\.[a-zA-Z0-9-]+))$`)

// NewBlueskyServer starts the server; Close stops it.
func NewBlueskyServer() *BlueskyServer {
	s := &BlueskyServer{subs: newTwitchRec[BlueskySubscription](), conns: map[*bskyLBConn]bool{}}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/subscribe", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		c := &bskyLBConn{dids: map[string]bool{}}
		for _, col := range q["wantedCollections"] {
			if !bskyLBNSID.MatchString(col) {
				http.Error(w, fmt.Sprintf("invalid collection: %s", col), http.StatusBadRequest)
				return
			}
			c.colls = append(c.colls, col)
		}
		for _, d := range q["wantedDids"] {
			if !strings.HasPrefix(d, "did:") {
				http.Error(w, fmt.Sprintf("invalid did: %s", d), http.StatusBadRequest)
				return
			}
			c.dids[d] = true
		}
		var cursor int64
		if v := q.Get("cursor"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				http.Error(w, "invalid cursor", http.StatusBadRequest)
				return
			}
			cursor = n
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c.ws = ws
		// Replay and registration happen under the lock so that an event
		// published meanwhile is neither lost nor sent twice.
		s.mu.Lock()
		s.total++
		n := s.total
		if cursor > 0 {
			for _, ev := range s.history {
				if ev.timeUS >= cursor && c.wants(ev) {
					_ = c.write(ev.raw)
				}
			}
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.subs.add(BlueskySubscription{Conn: n, Query: q})
		for { // read until the client goes away; clients send nothing we need
			if _, _, err := ws.ReadMessage(); err != nil {
				break
			}
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = ws.Close()
	})
	s.srv = httptest.NewServer(mux)
	s.URL = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/subscribe"
	return s
}

func (c *bskyLBConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *bskyLBConn) wants(ev bskyLBEvent) bool {
	if len(c.dids) > 0 && !c.dids[ev.did] {
		return false
	}
	if ev.kind != "commit" || len(c.colls) == 0 {
		return true
	}
	for _, col := range c.colls {
		if p, ok := strings.CutSuffix(col, ".*"); ok {
			if strings.HasPrefix(ev.collection, p+".") {
				return true
			}
		} else if col == ev.collection {
			return true
		}
	}
	return false
}

// Publish adds events (Jetstream JSON) to the history and sends each to
// the subscribers that want it. An event whose did, time_us or kind cannot
// be read is still sent to everyone, raw, so clients can be fed garbage.
func (s *BlueskyServer) Publish(events ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range events {
		var head struct {
			DID    string `json:"did"`
			TimeUS int64  `json:"time_us"`
			Kind   string `json:"kind"`
			Commit struct {
				Collection string `json:"collection"`
			} `json:"commit"`
		}
		ev := bskyLBEvent{raw: []byte(e)}
		if json.Unmarshal(ev.raw, &head) == nil {
			ev.did, ev.kind, ev.collection, ev.timeUS = head.DID, head.Kind, head.Commit.Collection, head.TimeUS
			s.history = append(s.history, ev)
		}
		for c := range s.conns {
			if ev.kind == "" || c.wants(ev) {
				_ = c.write(ev.raw)
			}
		}
	}
}

// Subscriptions returns every accepted subscription so far.
func (s *BlueskyServer) Subscriptions() []BlueskySubscription { return s.subs.all() }

// WaitSubscription waits for the from-th (0-based) subscription.
func (s *BlueskyServer) WaitSubscription(from int, timeout time.Duration) (BlueskySubscription, bool) {
	sub, _, ok := s.subs.wait(from, timeout, func(BlueskySubscription) bool { return true })
	return sub, ok
}

// Open is how many subscribers are connected now.
func (s *BlueskyServer) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Drop closes every connection, as an instance restart would.
func (s *BlueskyServer) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.ws.Close()
	}
}

// Close stops the server.
func (s *BlueskyServer) Close() {
	s.Drop()
	s.srv.Close()
}
