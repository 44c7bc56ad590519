// Package ui is the live dashboard the daemon serves on ui.listen (or
// --ui ADDR): an overview of every source and room with its traffic light,
// a room view that updates live over Server-Sent Events, the alerts with a
// silence action, and a search over stored items. Pages and history are
// read from the SQLite log through its own read-only connection; a room's
// live stream gets what each committed batch added from the store's
// writer, in memory (store.LiveSink). The one write it makes, a silence,
// goes through the store exactly as `lookout silence add` does. Pages, styles and scripts are embedded: it works
// offline.
package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"lookout/store"
)

//go:embed assets templates
var files embed.FS

// TokenEnv is the environment variable the daemon reads the dashboard's
// access token from.
const TokenEnv = "LOOKOUT_UI_TOKEN"

// Options configure a Server.
type Options struct {
	// Store is the daemon's read-write store: silences are written
	// through it, and its writer hands the live views every committed
	// batch (the Server is its LiveSink until Close). Reads use a
	// read-only connection to the same file.
	Store *store.Store
	// Token, when set, is required of every request (cookie, bearer
	// header, or ?token= once, which sets the cookie).
	Token string
	Log   *slog.Logger
	// Tick is how often a room's live stream sends one coalesced update
	// of what was committed since the last (default 500ms).
	Tick time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Server is the dashboard.
type Server struct {
	opts    Options
	ro      *store.Store
	log     *slog.Logger
	csrf    []byte // key for the per-session CSRF tokens
	pages   map[string]*template.Template
	hub     *hub
	stop    context.CancelFunc // ends the live streams
	mux     *http.ServeMux
	cacheM  sync.Mutex
	cache   map[string]cached
	tracker tracker
}

type cached struct {
	at   time.Time
	data any
}

// New opens the read-only connection and builds the handlers. Live
// streams run under ctx and stop with it; Close releases the connection.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("ui: no store")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Tick <= 0 {
		opts.Tick = 500 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ro, err := store.OpenReadOnly(ctx, opts.Store.Path())
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	s := &Server{opts: opts, ro: ro, log: opts.Log, csrf: make([]byte, 32), cache: map[string]cached{}}
	if _, err := rand.Read(s.csrf); err != nil {
		ro.Close()
		return nil, err
	}
	if s.pages, err = parsePages(); err != nil {
		ro.Close()
		return nil, err
	}
	ctx, s.stop = context.WithCancel(ctx)
	s.hub = newHub(ctx, s)
	opts.Store.SetLiveSink(s.hub)
	s.hub.wg.Add(1)
	go func() {
		defer s.hub.wg.Done()
		s.hub.loop(ctx)
	}()
	s.routes()
	return s, nil
}

// Close stops the live streams and releases the read-only connection.
func (s *Server) Close() error {
	s.opts.Store.SetLiveSink(nil)
	s.stop()
	s.hub.wg.Wait()
	return s.ro.Close()
}

// Handler is the dashboard's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(files, "assets")
	m.Handle("GET /assets/", http.StripPrefix("/assets/", cacheFor(time.Hour, http.FileServerFS(static))))
	m.HandleFunc("GET /{$}", s.page("overview", s.overviewData))
	m.HandleFunc("GET /overview.part", s.part("overview", "rows", s.overviewData))
	m.HandleFunc("GET /room", s.page("room", s.roomPageData))
	m.HandleFunc("GET /alerts", s.page("alerts", s.alertsData))
	m.HandleFunc("GET /search", s.page("search", s.searchData))
	m.HandleFunc("GET /report", s.reportPage)
	m.HandleFunc("GET /reviews", s.page("reviews", s.reviewsData))
	m.HandleFunc("GET /api/overview", s.jsonAPI(func(r *http.Request) (any, error) { return s.overviewData(r) }))
	m.HandleFunc("GET /api/room", s.jsonAPI(s.roomHistory))
	m.HandleFunc("GET /api/room/stream", s.stream)
	m.HandleFunc("POST /alerts/silence", s.silence)
	m.HandleFunc("POST /alerts/ack", s.ack)
	m.HandleFunc("POST /silences/expire", s.expire)
	s.mux = http.NewServeMux()
	s.mux.Handle("/", s.secure(m))
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

const tokenCookie = "lookout_ui"

// secure checks the access token (when one is set), lets ?token= set the
// cookie once, and adds headers that keep the pages from being framed or
// loading anything from elsewhere.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
		if s.opts.Token == "" {
			next.ServeHTTP(w, r)
			return
		}
		if q := r.URL.Query().Get("token"); q != "" && r.Method == http.MethodGet {
			if !s.tokenOK(q) {
				http.Error(w, "wrong token", http.StatusUnauthorized)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: q, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			u := *r.URL
			v := u.Query()
			v.Del("token")
			u.RawQuery = v.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		given := ""
		if c, err := r.Cookie(tokenCookie); err == nil {
			given = c.Value
		}
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			given = strings.TrimPrefix(a, "Bearer ")
		}
		if !s.tokenOK(given) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lookout"`)
			http.Error(w, "this dashboard needs its access token: open it once as /?token=… (the value of "+TokenEnv+" where the daemon runs)", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tokenOK(given string) bool {
	return subtle.ConstantTimeCompare([]byte(given), []byte(s.opts.Token)) == 1
}

// csrfToken is what a form must carry back: an HMAC of the caller's
// access cookie (or of nothing, without a token), so a page on another
// site cannot forge it.
func (s *Server) csrfToken(r *http.Request) string {
	m := hmac.New(sha256.New, s.csrf)
	if c, err := r.Cookie(tokenCookie); err == nil {
		m.Write([]byte(c.Value))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// checkPost refuses a state change that did not come from one of the
// dashboard's own forms: the CSRF token must match and, when the browser
// says where the request came from, it must be this origin.
func (s *Server) checkPost(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("cross-site request (%s) refused", site)
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if !strings.EqualFold(strings.TrimPrefix(strings.TrimPrefix(o, "http://"), "https://"), r.Host) {
			return fmt.Errorf("request from origin %s refused", o)
		}
	}
	if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrfToken(r))) {
		return errors.New("missing or stale form token: reload the page and try again")
	}
	return nil
}

// ListenWarning says why addr deserves a warning, or "": a dashboard
// reachable from other machines without a token shows every message and
// lets anyone silence alerts.
func ListenWarning(addr, token string) string {
	if token != "" {
		return ""
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if host == "localhost" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	return "ui listens on " + addr + ", beyond loopback, without an access token: anyone who reaches it sees every message and can silence alerts; set " + TokenEnv
}
