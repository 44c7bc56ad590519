package loopback

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HelixServer is a loopback Twitch API: the client-credentials token
// endpoint (POST /oauth2/token, as id.twitch.tv serves it) and Get Streams
// (GET /helix/streams, as api.twitch.tv serves it) on one address.
//
// The token endpoint takes client_id, client_secret and
// grant_type=client_credentials as form fields and answers
// {"access_token","expires_in","token_type":"bearer"}; wrong credentials
// get 403 and a wrong grant 400, with Twitch's {"status","message"} body.
// Get Streams wants the Client-Id header of the registered client and
// "Authorization: Bearer" with a token it issued and has not revoked (401
// otherwise), takes up to 100 user_login parameters and first up to 100
// (400 otherwise), lists the live ones among them in data (an offline
// channel is absent) and sends RateLimit-Limit, -Remaining and -Reset
// (Unix seconds) on every answer.
type HelixServer struct {
	URL string // http://127.0.0.1:port; TokenURL and APIBase are under it

	srv *httptest.Server

	mu        sync.Mutex
	clientID  string
	secret    string
	expiresIn int
	tokens    map[string]bool // issued and still valid
	issued    int
	live      map[string]HelixStream
	fail      []helixFail
	remaining int
	streamReq []HelixRequest
	tokenReqs int
	now       func() time.Time
}

// HelixStream is one live stream as Get Streams lists it.
type HelixStream struct {
	ID          string
	UserID      string
	UserName    string
	Title       string
	ViewerCount int64
	StartedAt   time.Time
	// Type is "live" when empty; Twitch sets "" on an error.
	Type string
}

// HelixRequest is one Get Streams request the server answered.
type HelixRequest struct {
	Logins []string
	First  string
	Status int
}

type helixFail struct {
	status int
	header http.Header
}

// NewHelixServer starts the server for one registered client; Close stops
// it. Tokens it issues say they expire in an hour.
func NewHelixServer(clientID, secret string) *HelixServer {
	s := &HelixServer{clientID: clientID, secret: secret, expiresIn: 3600, tokens: map[string]bool{},
		live: map[string]HelixStream{}, remaining: 800, now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/token", s.token)
	mux.HandleFunc("/helix/streams", s.streams)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// TokenURL is the client-credentials endpoint.
func (s *HelixServer) TokenURL() string { return s.URL + "/oauth2/token" }

// APIBase is the Helix base (Get Streams is APIBase + "/streams").
func (s *HelixServer) APIBase() string { return s.URL + "/helix" }

// Close stops the server.
func (s *HelixServer) Close() { s.srv.Close() }

// SetExpiresIn sets the lifetime (seconds) the next tokens are given.
func (s *HelixServer) SetExpiresIn(sec int) {
	s.mu.Lock()
	s.expiresIn = sec
	s.mu.Unlock()
}

// SetLive lists login's stream as live (st.StartedAt defaults to now).
func (s *HelixServer) SetLive(login string, st HelixStream) {
	if st.StartedAt.IsZero() {
		st.StartedAt = time.Now()
	}
	s.mu.Lock()
	s.live[login] = st
	s.mu.Unlock()
}

// SetOffline takes login's stream off the list.
func (s *HelixServer) SetOffline(login string) {
	s.mu.Lock()
	delete(s.live, login)
	s.mu.Unlock()
}

// RevokeTokens makes every token issued so far invalid (Get Streams
// answers 401 to them), as Twitch may at any time.
func (s *HelixServer) RevokeTokens() {
	s.mu.Lock()
	clear(s.tokens)
	s.mu.Unlock()
}

// FailNext makes the next n Get Streams requests fail with status and the
// given headers (Retry-After, RateLimit-Reset…).
func (s *HelixServer) FailNext(n, status int, header http.Header) {
	s.mu.Lock()
	for range n {
		s.fail = append(s.fail, helixFail{status, header})
	}
	s.mu.Unlock()
}

// SetClock sets the time RateLimit-Reset is counted from (a test's fake
// clock; default the wall clock).
func (s *HelixServer) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// SetRemaining sets the RateLimit-Remaining the next answers carry.
func (s *HelixServer) SetRemaining(n int) {
	s.mu.Lock()
	s.remaining = n
	s.mu.Unlock()
}

// TokenRequests is how many token requests the server has had.
func (s *HelixServer) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenReqs
}

// StreamRequests lists the Get Streams requests answered so far.
func (s *HelixServer) StreamRequests() []HelixRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]HelixRequest(nil), s.streamReq...)
}

func helixError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": http.StatusText(status), "status": status, "message": msg})
}

func (s *HelixServer) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenReqs++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		helixError(w, http.StatusNotFound, "Not Found")
		return
	}
	if err := r.ParseForm(); err != nil {
		helixError(w, http.StatusBadRequest, "bad form")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.PostForm.Get("client_id") != s.clientID:
		helixError(w, http.StatusBadRequest, "invalid client")
		return
	case r.PostForm.Get("client_secret") != s.secret:
		helixError(w, http.StatusForbidden, "invalid client secret")
		return
	case r.PostForm.Get("grant_type") != "client_credentials":
		helixError(w, http.StatusBadRequest, "unsupported grant type")
		return
	}
	s.issued++
	tok := fmt.Sprintf("apptoken%04d", s.issued)
	s.tokens[tok] = true
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": s.expiresIn, "token_type": "bearer"})
}

func (s *HelixServer) streams(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	logins := q["user_login"]
	s.mu.Lock()
	rec := HelixRequest{Logins: logins, First: q.Get("first")}
	w.Header().Set("Ratelimit-Limit", "800")
	w.Header().Set("Ratelimit-Remaining", strconv.Itoa(max(s.remaining, 0)))
	w.Header().Set("Ratelimit-Reset", strconv.FormatInt(s.now().Add(time.Minute).Unix(), 10))
	status, msg := 0, ""
	auth, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	first, firstErr := strconv.Atoi(q.Get("first"))
	switch {
	case r.Method != http.MethodGet:
		status, msg = http.StatusNotFound, "Not Found"
	case r.Header.Get("Client-Id") != s.clientID:
		status, msg = http.StatusUnauthorized, "Client ID and OAuth token do not match"
	case !hasBearer || !s.tokens[auth]:
		status, msg = http.StatusUnauthorized, "Invalid OAuth token"
	case len(logins) > 100:
		status, msg = http.StatusBadRequest, "The request may specify only up to 100 user_login query parameters"
	case q.Has("first") && (firstErr != nil || first < 1 || first > 100):
		status, msg = http.StatusBadRequest, "first must be 1 to 100"
	case len(s.fail) > 0:
		f := s.fail[0]
		s.fail = s.fail[1:]
		for k, v := range f.header {
			w.Header()[k] = v
		}
		status, msg = f.status, "failing as asked"
	}
	if status != 0 {
		rec.Status = status
		s.streamReq = append(s.streamReq, rec)
		s.mu.Unlock()
		helixError(w, status, msg)
		return
	}
	if first == 0 {
		first = 20
	}
	data := []map[string]any{}
	for _, l := range logins {
		st, ok := s.live[strings.ToLower(l)]
		if !ok || len(data) == first {
			continue
		}
		typ := st.Type
		if typ == "" {
			typ = "live"
		}
		name := st.UserName
		if name == "" {
			name = l
		}
		data = append(data, map[string]any{
			"id": st.ID, "user_id": st.UserID, "user_login": strings.ToLower(l), "user_name": name,
			"game_id": "509658", "game_name": "Just Chatting", "type": typ, "title": st.Title,
			"tags": []string{"English"}, "viewer_count": st.ViewerCount,
			"started_at": st.StartedAt.UTC().Format(time.RFC3339), "language": "en",
			"thumbnail_url": "https://static-cdn.jtvnw.net/previews-ttv/live_user_" + url.PathEscape(l) + "-{width}x{height}.jpg",
			"tag_ids":       []string{}, "is_mature": false,
		})
	}
	rec.Status = http.StatusOK
	s.streamReq = append(s.streamReq, rec)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data, "pagination": map[string]any{}})
}
