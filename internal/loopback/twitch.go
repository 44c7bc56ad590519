package loopback

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// twitchRec is an append-only log the loopback servers keep of what clients
// sent, with a way to wait for an entry. The douyin, mastodon and bluesky
// servers use it too.
type twitchRec[T any] struct {
	mu      sync.Mutex
	entries []T
	changed chan struct{} // closed and replaced on every append
}

func newTwitchRec[T any]() *twitchRec[T] { return &twitchRec[T]{changed: make(chan struct{})} }

func (r *twitchRec[T]) add(v T) {
	r.mu.Lock()
	r.entries = append(r.entries, v)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *twitchRec[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.entries...)
}

// wait returns the first entry at index >= from that match accepts.
func (r *twitchRec[T]) wait(from int, timeout time.Duration, match func(T) bool) (T, int, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i := from; i < len(r.entries); i++ {
			if match(r.entries[i]) {
				v := r.entries[i]
				r.mu.Unlock()
				return v, i, true
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			var zero T
			return zero, -1, false
		}
	}
}

// TwitchServer is a loopback Twitch chat server speaking IRC over
// WebSocket as irc-ws.chat.twitch.tv does for an anonymous reader: it
// acknowledges CAP REQ, accepts only justinfan<digits> nicks (no PASS),
// answers NICK with the 001–004 and MOTD numerics and JOIN with the JOIN
// echo, NAMES and ROOMSTATE, answers client PINGs, and delivers channel
// messages only to connections that joined the channel. It records every
// line clients send.
type TwitchServer struct {
	URL string // ws://127.0.0.1:port/

	srv   *httptest.Server
	lines *twitchRec[TwitchLine]

	mu    sync.Mutex
	conns []*twitchConn
	total int
	hold  bool             // JOINs wait for ReleaseJoins
	held  []twitchHeldJoin // JOINs waiting
}

type twitchHeldJoin struct {
	c    *twitchConn
	line string
}

// HoldJoins makes the server sit on JOINs (a slow server after a restart)
// until ReleaseJoins.
func (s *TwitchServer) HoldJoins() {
	s.mu.Lock()
	s.hold = true
	s.mu.Unlock()
}

// ReleaseJoins answers the JOINs held so far and stops holding.
func (s *TwitchServer) ReleaseJoins() {
	s.mu.Lock()
	held := s.held
	s.hold, s.held = false, nil
	s.mu.Unlock()
	for _, h := range held {
		s.handle(h.c, h.line)
	}
}

// TwitchLine is one line a client sent, with the number of the connection
// (1 for the first accepted) it came on.
type TwitchLine struct {
	Conn int
	Line string
}

type twitchConn struct {
	n        int
	ws       *websocket.Conn
	wmu      sync.Mutex
	mu       sync.Mutex
	nick     string
	caps     bool
	channels map[string]bool
}

func (c *twitchConn) write(lines ...string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, []byte(strings.Join(lines, "\r\n")+"\r\n"))
}

var twitchAnonNick = regexp.MustCompile(`^justinfan[0-9]+$`)

// NewTwitchServer starts the server; Close stops it.
func NewTwitchServer() *TwitchServer {
	s := &TwitchServer{lines: newTwitchRec[TwitchLine]()}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.total++
		c := &twitchConn{n: s.total, ws: ws, channels: map[string]bool{}}
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.serve(c)
	}))
	s.URL = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/"
	return s
}

func (s *TwitchServer) serve(c *twitchConn) {
	defer func() {
		_ = c.ws.Close()
		s.mu.Lock()
		for i, x := range s.conns {
			if x == c {
				s.conns = append(s.conns[:i], s.conns[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
	}()
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if typ != websocket.TextMessage {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimRight(line, "\r")
			if line == "" {
				continue
			}
			// Recorded after handling, so a test that saw a JOIN knows
			// the channel is joined.
			ok := s.handle(c, line)
			s.lines.add(TwitchLine{Conn: c.n, Line: line})
			if !ok {
				return
			}
		}
	}
}

// handle answers one client line; false closes the connection.
func (s *TwitchServer) handle(c *twitchConn, line string) bool {
	cmd, arg, _ := strings.Cut(line, " ")
	c.mu.Lock()
	nick := c.nick
	c.mu.Unlock()
	switch strings.ToUpper(cmd) {
	case "CAP":
		if strings.HasPrefix(arg, "REQ :") {
			c.mu.Lock()
			c.caps = true
			c.mu.Unlock()
			_ = c.write(":tmi.twitch.tv CAP * ACK :" + strings.TrimPrefix(arg, "REQ :"))
		}
	case "PASS":
		// Anonymous server: a PASS makes the next NICK an authenticated
		// login, which this server cannot verify.
		_ = c.write(":tmi.twitch.tv NOTICE * :Login authentication failed")
		return false
	case "NICK":
		if !twitchAnonNick.MatchString(arg) {
			_ = c.write(":tmi.twitch.tv NOTICE * :Login authentication failed")
			return false
		}
		c.mu.Lock()
		c.nick = arg
		c.mu.Unlock()
		_ = c.write(
			":tmi.twitch.tv 001 "+arg+" :Welcome, GLHF!",
			":tmi.twitch.tv 002 "+arg+" :Your host is tmi.twitch.tv",
			":tmi.twitch.tv 003 "+arg+" :This server is rather new",
			":tmi.twitch.tv 004 "+arg+" :-",
			":tmi.twitch.tv 375 "+arg+" :-",
			":tmi.twitch.tv 372 "+arg+" :You are in a maze of twisty passages, all alike.",
			":tmi.twitch.tv 376 "+arg+" :>",
		)
	case "JOIN":
		s.mu.Lock()
		if s.hold {
			s.held = append(s.held, twitchHeldJoin{c, line})
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
		if nick == "" {
			_ = c.write(":tmi.twitch.tv 451 * :You have not registered")
			return true
		}
		for _, ch := range strings.Split(arg, ",") {
			ch = strings.TrimSpace(ch)
			if !strings.HasPrefix(ch, "#") || len(ch) < 2 {
				continue
			}
			c.mu.Lock()
			c.channels[ch[1:]] = true
			c.mu.Unlock()
			_ = c.write(
				":"+nick+"!"+nick+"@"+nick+".tmi.twitch.tv JOIN "+ch,
				":"+nick+".tmi.twitch.tv 353 "+nick+" = "+ch+" :"+nick,
				":"+nick+".tmi.twitch.tv 366 "+nick+" "+ch+" :End of /NAMES list",
				"@emote-only=0;followers-only=-1;r9k=0;room-id=12345678;slow=0;subs-only=0 :tmi.twitch.tv ROOMSTATE "+ch,
			)
		}
	case "PART":
		for _, ch := range strings.Split(arg, ",") {
			c.mu.Lock()
			delete(c.channels, strings.TrimPrefix(strings.TrimSpace(ch), "#"))
			c.mu.Unlock()
		}
	case "PING":
		_ = c.write(":tmi.twitch.tv PONG tmi.twitch.tv " + arg)
	case "PONG":
	default:
		_ = c.write(":tmi.twitch.tv 421 " + nick + " " + cmd + " :Unknown command")
	}
	return true
}

// Close stops the server and drops every connection.
func (s *TwitchServer) Close() {
	s.Drop()
	s.srv.Close()
}

// Lines returns every line clients have sent so far.
func (s *TwitchServer) Lines() []TwitchLine { return s.lines.all() }

// WaitLine waits for a client line (on any connection, from the from-th
// recorded line on) that match accepts.
func (s *TwitchServer) WaitLine(from int, timeout time.Duration, match func(TwitchLine) bool) (TwitchLine, bool) {
	l, _, ok := s.lines.wait(from, timeout, match)
	return l, ok
}

// WaitJoined waits until some connection has joined all channels (logins
// without '#') and returns its number.
func (s *TwitchServer) WaitJoined(timeout time.Duration, channels ...string) (int, bool) {
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		for _, c := range s.conns {
			c.mu.Lock()
			all := true
			for _, ch := range channels {
				all = all && c.channels[ch]
			}
			c.mu.Unlock()
			if all {
				s.mu.Unlock()
				return c.n, true
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			return 0, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Send writes lines, CRLF-joined in one WebSocket frame as Twitch does, to
// every connection that joined channel (a login without '#'); it returns
// how many connections got them.
func (s *TwitchServer) Send(channel string, lines ...string) int {
	n := 0
	for _, c := range s.snapshot() {
		c.mu.Lock()
		in := c.channels[channel]
		c.mu.Unlock()
		if in && c.write(lines...) == nil {
			n++
		}
	}
	return n
}

// Broadcast writes lines in one frame to every registered connection
// (PING, RECONNECT).
func (s *TwitchServer) Broadcast(lines ...string) int {
	n := 0
	for _, c := range s.snapshot() {
		c.mu.Lock()
		reg := c.nick != ""
		c.mu.Unlock()
		if reg && c.write(lines...) == nil {
			n++
		}
	}
	return n
}

// Drop closes every open connection, as a server restart would.
func (s *TwitchServer) Drop() {
	for _, c := range s.snapshot() {
		_ = c.ws.Close()
	}
}

// Accepted is how many connections the server has accepted.
func (s *TwitchServer) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Open is how many connections are open now.
func (s *TwitchServer) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *TwitchServer) snapshot() []*twitchConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*twitchConn(nil), s.conns...)
}
