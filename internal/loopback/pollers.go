package loopback

// Loopback servers for the polling collectors (json_api, html,
// bilibili_comments, weibo) and the JSON-over-WebSocket feed. Each speaks
// the real wire shape (paths, parameters, envelopes, error codes) with
// synthetic content, so tests and the demo exercise the collectors'
// real request and parsing code.

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// pollFailure is a queued error answer.
type pollFailure struct {
	status     int
	retryAfter string
}

// pollFailures hands out queued failures, one per request.
type pollFailures struct {
	mu    sync.Mutex
	queue []pollFailure
}

func (f *pollFailures) push(status int, retryAfter string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.queue = append(f.queue, pollFailure{status, retryAfter})
	}
}

// serve answers with the next queued failure and reports whether it did.
func (f *pollFailures) serve(w http.ResponseWriter) bool {
	f.mu.Lock()
	if len(f.queue) == 0 {
		f.mu.Unlock()
		return false
	}
	fl := f.queue[0]
	f.queue = f.queue[1:]
	f.mu.Unlock()
	if fl.retryAfter != "" {
		w.Header().Set("Retry-After", fl.retryAfter)
	}
	http.Error(w, http.StatusText(fl.status), fl.status)
	return true
}

// pollRequests logs request URIs.
type pollRequests struct {
	mu   sync.Mutex
	uris []string
}

func (r *pollRequests) add(req *http.Request) {
	r.mu.Lock()
	r.uris = append(r.uris, req.URL.RequestURI())
	r.mu.Unlock()
}

func (r *pollRequests) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.uris...)
}

// pollRobots is a site's /robots.txt: served apart from the site's other
// paths (not in Requests, never failed by FailNext) and counted.
type pollRobots struct {
	mu      sync.Mutex
	body    string
	fetches int
}

// serve answers r when it asks for /robots.txt.
func (p *pollRobots) serve(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/robots.txt" {
		return false
	}
	p.mu.Lock()
	p.fetches++
	body := p.body
	p.mu.Unlock()
	if body == "" {
		http.NotFound(w, r)
		return true
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, body)
	return true
}

func (p *pollRobots) set(body string) {
	p.mu.Lock()
	p.body = body
	p.mu.Unlock()
}

func (p *pollRobots) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetches
}

func pollWriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func pollAtoi(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

// ---------------------------------------------------------------------------
// Generic JSON API

// JSONAPIPost is one post of the generic JSON API.
type JSONAPIPost struct {
	ID       string
	Body     string
	Author   string
	AuthorID int64
	Created  time.Time
	Likes    int
}

// JSONAPIServer is a JSON API listing posts newest first. Routes:
//
//	GET /api/posts?page=N&per_page=M          page pagination, ETag/304 on page 1
//	GET /api/feed?cursor=C&limit=M            cursor pagination (data.next_cursor)
//	GET /api/since?after=ID&limit=M           oldest first, after an id (data.next = last id)
//
// Payload: {"code":0,"data":{"items":[{"id","body","user":{"name","id"},
// "created_at" (RFC 3339),"stats":{"likes"}}],"next_cursor"/"has_more"}}.
// With Token set, requests must carry "Authorization: Bearer <Token>".
type JSONAPIServer struct {
	*httptest.Server
	PageSize int
	Token    string

	mu     sync.Mutex
	posts  []JSONAPIPost // newest first
	drift  bool
	hook   func(*http.Request)
	fail   pollFailures
	reqs   pollRequests
	robots pollRobots
}

// OnRequest makes the server call f with each request before it answers
// (nil: nothing). f may call Add, to publish posts as a client polls, and
// what it adds is what that request sees.
func (s *JSONAPIServer) OnRequest(f func(*http.Request)) {
	s.mu.Lock()
	s.hook = f
	s.mu.Unlock()
}

// SetDrift renames the payload's items key, as an API redesign would.
func (s *JSONAPIServer) SetDrift(on bool) {
	s.mu.Lock()
	s.drift = on
	s.mu.Unlock()
}

func (s *JSONAPIServer) itemsKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drift {
		return "list"
	}
	return "items"
}

// NewJSONAPIServer starts the server with a page size of 3.
func NewJSONAPIServer() *JSONAPIServer {
	s := &JSONAPIServer{PageSize: 3}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/posts", s.handlePosts)
	mux.HandleFunc("GET /api/feed", s.handleFeed)
	mux.HandleFunc("GET /api/since", s.handleSince)
	s.Server = httptest.NewServer(s.guard(mux))
	return s
}

// Add publishes posts; each becomes the newest.
func (s *JSONAPIServer) Add(posts ...JSONAPIPost) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range posts {
		s.posts = append([]JSONAPIPost{p}, s.posts...)
	}
}

// FailNext makes the next n requests answer status with Retry-After.
func (s *JSONAPIServer) FailNext(status int, retryAfter string, n int) {
	s.fail.push(status, retryAfter, n)
}

// Requests lists the request URIs seen.
func (s *JSONAPIServer) Requests() []string { return s.reqs.all() }

// SetRobots sets the body of /robots.txt ("" answers 404: no robots.txt).
func (s *JSONAPIServer) SetRobots(body string) { s.robots.set(body) }

// RobotsFetches counts the requests for /robots.txt.
func (s *JSONAPIServer) RobotsFetches() int { return s.robots.count() }

func (s *JSONAPIServer) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.robots.serve(w, r) {
			return
		}
		s.reqs.add(r)
		s.mu.Lock()
		hook := s.hook
		s.mu.Unlock()
		if hook != nil {
			hook(r)
		}
		if s.fail.serve(w) {
			return
		}
		if s.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.Token {
			w.WriteHeader(http.StatusUnauthorized)
			pollWriteJSON(w, map[string]any{"code": 401, "message": "invalid token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func jsonapiPostJSON(p JSONAPIPost) map[string]any {
	return map[string]any{
		"id":         p.ID,
		"body":       p.Body,
		"user":       map[string]any{"name": p.Author, "id": p.AuthorID},
		"created_at": p.Created.UTC().Format(time.RFC3339),
		"stats":      map[string]any{"likes": p.Likes},
	}
}

func (s *JSONAPIServer) snapshot() []JSONAPIPost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]JSONAPIPost(nil), s.posts...)
}

func (s *JSONAPIServer) handlePosts(w http.ResponseWriter, r *http.Request) {
	posts := s.snapshot()
	page := max(pollAtoi(r.URL.Query().Get("page"), 1), 1)
	per := pollAtoi(r.URL.Query().Get("per_page"), s.PageSize)
	if per <= 0 {
		per = s.PageSize
	}
	if page == 1 {
		etag := `"n` + strconv.Itoa(len(posts)) + `"`
		if len(posts) > 0 {
			etag = `"` + posts[0].ID + "-" + strconv.Itoa(len(posts)) + `"`
		}
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	from := min((page-1)*per, len(posts))
	to := min(from+per, len(posts))
	items := []any{}
	for _, p := range posts[from:to] {
		items = append(items, jsonapiPostJSON(p))
	}
	pollWriteJSON(w, map[string]any{"code": 0, "data": map[string]any{s.itemsKey(): items, "page": page, "has_more": to < len(posts)}})
}

func (s *JSONAPIServer) handleFeed(w http.ResponseWriter, r *http.Request) {
	posts := s.snapshot()
	per := pollAtoi(r.URL.Query().Get("limit"), s.PageSize)
	if per <= 0 {
		per = s.PageSize
	}
	from := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		// the cursor names the last id of the previous page
		from = len(posts)
		for i, p := range posts {
			if "c_"+p.ID == c {
				from = i + 1
				break
			}
		}
	}
	to := min(from+per, len(posts))
	items := []any{}
	next := ""
	for _, p := range posts[from:to] {
		items = append(items, jsonapiPostJSON(p))
		next = "c_" + p.ID
	}
	if to >= len(posts) {
		next = ""
	}
	pollWriteJSON(w, map[string]any{"code": 0, "data": map[string]any{"items": items, "next_cursor": next}})
}

func (s *JSONAPIServer) handleSince(w http.ResponseWriter, r *http.Request) {
	posts := s.snapshot()
	per := pollAtoi(r.URL.Query().Get("limit"), s.PageSize)
	if per <= 0 {
		per = s.PageSize
	}
	after := r.URL.Query().Get("after")
	var older []JSONAPIPost // oldest first, after the given id
	for i := len(posts) - 1; i >= 0; i-- {
		older = append(older, posts[i])
	}
	if after != "" {
		for i, p := range older {
			if p.ID == after {
				older = older[i+1:]
				break
			}
		}
	}
	older = older[:min(per, len(older))]
	items := []any{}
	next := after
	for _, p := range older {
		items = append(items, jsonapiPostJSON(p))
		next = p.ID
	}
	pollWriteJSON(w, map[string]any{"code": 0, "data": map[string]any{"items": items, "next": next}})
}

// ---------------------------------------------------------------------------
// HTML site

// HTMLPost is one thread on the loopback forum.
type HTMLPost struct {
	ID     int
	Title  string
	Author string
	Time   time.Time // rendered as "2006-01-02 15:04" in Asia/Shanghai
	Body   string
}

// HTMLSiteServer is a brand forum. Routes:
//
//	GET /forum?page=N   UTF-8 list, newest first, <a class="next"> to the next page
//	GET /gbk            the first page encoded as GBK, charset only in Content-Type
//	GET /gbk-meta       the same, charset only in <meta charset="gbk">
//	GET /gbk-bare       the same, charset declared nowhere
//	GET /robots.txt     SetRobots's body, or 404
//
// Items are <li class="post" data-pid>, with a.title (relative href),
// span.author, span.time and div.content. SetDrift renames the classes as a
// site redesign would.
type HTMLSiteServer struct {
	*httptest.Server
	PageSize int

	mu     sync.Mutex
	posts  []HTMLPost // newest first
	drift  bool
	fail   pollFailures
	reqs   pollRequests
	robots pollRobots
}

// NewHTMLSiteServer starts the site with a page size of 3.
func NewHTMLSiteServer() *HTMLSiteServer {
	s := &HTMLSiteServer{PageSize: 3}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /forum", s.handleForum)
	mux.HandleFunc("GET /gbk", s.handleGBK)
	mux.HandleFunc("GET /gbk-meta", s.handleGBK)
	mux.HandleFunc("GET /gbk-bare", s.handleGBK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.robots.serve(w, r) {
			return
		}
		s.reqs.add(r)
		if s.fail.serve(w) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return s
}

// SetRobots sets the body of /robots.txt ("" answers 404: no robots.txt).
func (s *HTMLSiteServer) SetRobots(body string) { s.robots.set(body) }

// RobotsFetches counts the requests for /robots.txt.
func (s *HTMLSiteServer) RobotsFetches() int { return s.robots.count() }

// Add publishes posts; each becomes the newest.
func (s *HTMLSiteServer) Add(posts ...HTMLPost) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range posts {
		s.posts = append([]HTMLPost{p}, s.posts...)
	}
}

// SetDrift switches the markup to a redesign the configured selectors no
// longer match.
func (s *HTMLSiteServer) SetDrift(on bool) {
	s.mu.Lock()
	s.drift = on
	s.mu.Unlock()
}

// FailNext makes the next n requests answer status with Retry-After.
func (s *HTMLSiteServer) FailNext(status int, retryAfter string, n int) {
	s.fail.push(status, retryAfter, n)
}

// Requests lists the request URIs seen.
func (s *HTMLSiteServer) Requests() []string { return s.reqs.all() }

var htmlShanghai = time.FixedZone("CST", 8*3600)

func (s *HTMLSiteServer) render(page int, meta string) []byte {
	s.mu.Lock()
	posts := append([]HTMLPost(nil), s.posts...)
	drift := s.drift
	s.mu.Unlock()
	cls := "post"
	if drift {
		cls = "thread-card"
	}
	from := min((page-1)*s.PageSize, len(posts))
	to := min(from+s.PageSize, len(posts))
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head>%s<title>品牌论坛 - 第%d页</title></head><body>\n<ul class=\"threads\">\n", meta, page)
	for _, p := range posts[from:to] {
		fmt.Fprintf(&b, "<li class=\"%s\" data-pid=\"%d\">\n  <a class=\"title\" href=\"thread/%d.html\">%s</a>\n  <span class=\"author\">%s</span>\n  <span class=\"time\">%s</span>\n  <div class=\"content\"><p>%s</p></div>\n</li>\n",
			cls, p.ID, p.ID, html.EscapeString(p.Title), html.EscapeString(p.Author),
			p.Time.In(htmlShanghai).Format("2006-01-02 15:04"), html.EscapeString(p.Body))
	}
	b.WriteString("</ul>\n<div class=\"pager\">")
	if to < len(posts) {
		fmt.Fprintf(&b, "<a class=\"next\" href=\"?page=%d\">下一页</a>", page+1)
	}
	b.WriteString("</div>\n</body></html>\n")
	return b.Bytes()
}

func (s *HTMLSiteServer) handleForum(w http.ResponseWriter, r *http.Request) {
	page := max(pollAtoi(r.URL.Query().Get("page"), 1), 1)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(s.render(page, `<meta charset="utf-8">`))
}

func (s *HTMLSiteServer) handleGBK(w http.ResponseWriter, r *http.Request) {
	page := max(pollAtoi(r.URL.Query().Get("page"), 1), 1)
	meta := ""
	ct := "text/html; charset=gbk"
	switch r.URL.Path {
	case "/gbk-meta":
		meta, ct = `<meta http-equiv="Content-Type" content="text/html; charset=gbk">`, "text/html"
	case "/gbk-bare":
		ct = "text/html" // declared nowhere: the reader has to sniff
	}
	body, err := simplifiedchinese.GBK.NewEncoder().Bytes(s.render(page, meta))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(body)
}

// ---------------------------------------------------------------------------
// Bilibili replies

// BiliReply is one comment in the loopback reply area.
type BiliReply struct {
	RPID    int64
	MID     int64
	Uname   string
	Message string
	CTime   int64 // Unix seconds
	Like    int
}

// BiliReplyServer serves the Bilibili comment API. Routes:
//
//	GET /x/web-interface/nav      wbi_img keys (logged out: code -101 with data)
//	GET /x/v2/reply               paged: type, oid, sort (0 = time), ps, pn
//	GET /x/v2/reply/wbi/main      cursor: type, oid, mode (2 = time), pagination_str, wts, w_rid; bad sign → -403
//
// Replies are newest first for sort 0 / mode 2.
type BiliReplyServer struct {
	*httptest.Server
	PageSize int
	// Cookie, when set, must appear in the request's Cookie header
	// (e.g. "SESSDATA=abc"); otherwise the API answers -101.
	Cookie string

	mu       sync.Mutex
	imgKey   string
	subKey   string
	replies  map[string][]BiliReply // oid → newest first
	riskLeft int
	navCalls int
	badSigns int
	reqs     pollRequests
}

// NewBiliReplyServer starts the server with the given WBI keys (32 hex
// characters each).
func NewBiliReplyServer(imgKey, subKey string) *BiliReplyServer {
	s := &BiliReplyServer{PageSize: 3, imgKey: imgKey, subKey: subKey, replies: map[string][]BiliReply{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x/web-interface/nav", s.handleNav)
	mux.HandleFunc("GET /x/v2/reply", s.handlePaged)
	mux.HandleFunc("GET /x/v2/reply/wbi/main", s.handleMain)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reqs.add(r)
		mux.ServeHTTP(w, r)
	}))
	return s
}

// Add posts replies under oid; each becomes the newest.
func (s *BiliReplyServer) Add(oid int64, rs ...BiliReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strconv.FormatInt(oid, 10)
	for _, r := range rs {
		s.replies[k] = append([]BiliReply{r}, s.replies[k]...)
	}
}

// SetKeys rotates the WBI keys; signatures made with the old ones fail.
func (s *BiliReplyServer) SetKeys(imgKey, subKey string) {
	s.mu.Lock()
	s.imgKey, s.subKey = imgKey, subKey
	s.mu.Unlock()
}

// RiskControl makes the next n reply requests answer -412.
func (s *BiliReplyServer) RiskControl(n int) {
	s.mu.Lock()
	s.riskLeft = n
	s.mu.Unlock()
}

// NavCalls counts nav requests (WBI key fetches).
func (s *BiliReplyServer) NavCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.navCalls
}

// BadSigns counts requests rejected with -403.
func (s *BiliReplyServer) BadSigns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badSigns
}

// Requests lists the request URIs seen.
func (s *BiliReplyServer) Requests() []string { return s.reqs.all() }

func (s *BiliReplyServer) handleNav(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.navCalls++
	img, sub := s.imgKey, s.subKey
	s.mu.Unlock()
	pollWriteJSON(w, map[string]any{"code": -101, "message": "账号未登录", "ttl": 1, "data": map[string]any{
		"isLogin": false,
		"wbi_img": map[string]any{
			"img_url": "https://i0.hdslb.com/bfs/wbi/" + img + ".png",
			"sub_url": "https://i0.hdslb.com/bfs/wbi/" + sub + ".png",
		},
	}})
}

func bilicmtAPIError(w http.ResponseWriter, code int, msg string) {
	pollWriteJSON(w, map[string]any{"code": code, "message": msg, "ttl": 1})
}

// gate applies cookie and risk-control checks; false means it answered.
func (s *BiliReplyServer) gate(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	risk := s.riskLeft > 0
	if risk {
		s.riskLeft--
	}
	s.mu.Unlock()
	if risk {
		bilicmtAPIError(w, -412, "请求被拦截")
		return false
	}
	if s.Cookie != "" && !strings.Contains(r.Header.Get("Cookie"), s.Cookie) {
		bilicmtAPIError(w, -101, "账号未登录")
		return false
	}
	q := r.URL.Query()
	if q.Get("type") != "1" && q.Get("type") != "11" && q.Get("type") != "17" {
		bilicmtAPIError(w, 12009, "评论主体的type不合法")
		return false
	}
	return true
}

func (s *BiliReplyServer) list(oid string) []BiliReply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs, ok := s.replies[oid]
	if !ok {
		return nil
	}
	return append([]BiliReply{}, rs...)
}

func bilicmtReplyJSON(oid string, typ string, r BiliReply) map[string]any {
	o, _ := strconv.ParseInt(oid, 10, 64)
	t, _ := strconv.Atoi(typ)
	return map[string]any{
		"rpid": r.RPID, "rpid_str": strconv.FormatInt(r.RPID, 10), "oid": o, "type": t,
		"mid": r.MID, "root": 0, "parent": 0, "ctime": r.CTime, "like": r.Like, "rcount": 0, "count": 0,
		"member":  map[string]any{"mid": strconv.FormatInt(r.MID, 10), "uname": r.Uname, "avatar": "https://i0.hdslb.com/bfs/face/x.jpg"},
		"content": map[string]any{"message": r.Message, "emote": map[string]any{}, "members": []any{}},
		"replies": []any{},
	}
}

func (s *BiliReplyServer) handlePaged(w http.ResponseWriter, r *http.Request) {
	if !s.gate(w, r) {
		return
	}
	q := r.URL.Query()
	all := s.list(q.Get("oid"))
	if all == nil {
		bilicmtAPIError(w, -404, "啥都木有")
		return
	}
	ps := min(max(pollAtoi(q.Get("ps"), 20), 1), 20)
	ps = min(ps, s.PageSize)
	pn := max(pollAtoi(q.Get("pn"), 1), 1)
	from := min((pn-1)*ps, len(all))
	to := min(from+ps, len(all))
	replies := []any{}
	for _, rp := range all[from:to] {
		replies = append(replies, bilicmtReplyJSON(q.Get("oid"), q.Get("type"), rp))
	}
	pollWriteJSON(w, map[string]any{"code": 0, "message": "0", "ttl": 1, "data": map[string]any{
		"page":    map[string]any{"num": pn, "size": ps, "count": len(all), "acount": len(all)},
		"replies": replies, "hots": []any{},
	}})
}

// bilicmtMixinTab is MIXIN_KEY_ENC_TAB (the WBI key-mixing table), kept here
// independently of the collector so that the check is a real second
// implementation.
var bilicmtMixinTab = [32]int{46, 47, 18, 2, 53, 8, 23, 32, 15, 50, 10, 31, 58, 3, 45, 35,
	27, 43, 5, 49, 33, 9, 42, 19, 29, 28, 14, 39, 12, 38, 41, 13}

// BiliWBIVerify checks w_rid on a signed query with the given keys, as every
// WBI-signed Bilibili endpoint here does (getDanmuInfo, reply/wbi/main).
func BiliWBIVerify(q url.Values, imgKey, subKey string) bool {
	raw := imgKey + subKey
	if len(raw) < 64 {
		return false
	}
	var mixin [32]byte
	for i, j := range bilicmtMixinTab {
		mixin[i] = raw[j]
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "w_rid" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		v := strings.Map(func(r rune) rune {
			if strings.ContainsRune("!'()*", r) {
				return -1
			}
			return r
		}, q.Get(k))
		b.WriteString(strings.ReplaceAll(url.QueryEscape(k), "+", "%20"))
		b.WriteByte('=')
		b.WriteString(strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
	}
	sum := md5.Sum([]byte(b.String() + string(mixin[:])))
	return q.Get("wts") != "" && hex.EncodeToString(sum[:]) == q.Get("w_rid")
}

func (s *BiliReplyServer) handleMain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	img, sub := s.imgKey, s.subKey
	s.mu.Unlock()
	if !BiliWBIVerify(q, img, sub) {
		s.mu.Lock()
		s.badSigns++
		s.mu.Unlock()
		bilicmtAPIError(w, -403, "访问权限不足")
		return
	}
	if !s.gate(w, r) {
		return
	}
	all := s.list(q.Get("oid"))
	if all == nil {
		bilicmtAPIError(w, -404, "啥都木有")
		return
	}
	from := 0
	if ps := q.Get("pagination_str"); ps != "" {
		var p struct {
			Offset string `json:"offset"`
		}
		if err := json.Unmarshal([]byte(ps), &p); err != nil {
			bilicmtAPIError(w, -400, "请求错误")
			return
		}
		if p.Offset != "" {
			var off struct {
				Type      int `json:"type"`
				Direction int `json:"direction"`
				Data      struct {
					Cursor int `json:"cursor"`
				} `json:"Data"`
			}
			if err := json.Unmarshal([]byte(p.Offset), &off); err != nil {
				bilicmtAPIError(w, -400, "请求错误")
				return
			}
			from = min(max(off.Data.Cursor, 0), len(all))
		}
	}
	to := min(from+s.PageSize, len(all))
	replies := []any{}
	for _, rp := range all[from:to] {
		replies = append(replies, bilicmtReplyJSON(q.Get("oid"), q.Get("type"), rp))
	}
	next, _ := json.Marshal(map[string]any{"type": 3, "direction": 1, "Data": map[string]any{"cursor": to}})
	pollWriteJSON(w, map[string]any{"code": 0, "message": "0", "ttl": 1, "data": map[string]any{
		"cursor": map[string]any{
			"is_begin": from == 0, "is_end": to >= len(all), "next": to, "mode": 2,
			"pagination_reply": map[string]any{"next_offset": string(next)},
		},
		"replies": replies, "top_replies": []any{},
	}})
}

// ---------------------------------------------------------------------------
// Weibo

// WeiboPost is a status or a comment on the loopback Weibo.
type WeiboPost struct {
	ID      int64
	Text    string // HTML, as Weibo sends it
	Created time.Time
	Likes   int
	UID     int64
	Name    string
}

// WeiboServer serves the m.weibo.cn API shapes. Routes:
//
//	GET /comments/hotflow?id=&mid=&max_id=&max_id_type=0   comments of a post
//	GET /api/container/getIndex?containerid=107603<uid>&page=N   a user's timeline
//	GET /api/container/getIndex?containerid=100103type=1&q=<kw>&page=N   search
//	GET /login                                              the HTML login page
//
// Cookie, when set, must appear in the Cookie header (e.g. "SUB=_2A25…");
// otherwise, or after Expire, the server answers the way Weibo does when the
// login is gone, per ExpireMode.
type WeiboServer struct {
	*httptest.Server
	PageSize int
	Cookie   string

	mu       sync.Mutex
	comments map[int64][]WeiboPost // post id → newest first
	statuses map[int64][]WeiboPost // uid → newest first
	mode     WeiboExpireMode
	expired  bool
	reqs     pollRequests
	fail     pollFailures
}

// WeiboExpireMode is how the server says the login is gone.
type WeiboExpireMode int

const (
	WeiboExpireRedirect WeiboExpireMode = iota // 302 to the login page
	WeiboExpireOK100                           // {"ok":-100,"url":"…/signin/…"}
	WeiboExpireHTML                            // 200 with the HTML login page
)

// NewWeiboServer starts the server with a page size of 3.
func NewWeiboServer() *WeiboServer {
	s := &WeiboServer{PageSize: 3, comments: map[int64][]WeiboPost{}, statuses: map[int64][]WeiboPost{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /comments/hotflow", s.handleHotflow)
	mux.HandleFunc("GET /api/container/getIndex", s.handleIndex)
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { weiboLoginPage(w) })
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reqs.add(r)
		if r.URL.Path != "/login" && s.fail.serve(w) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return s
}

// AddComments posts comments under a post; each becomes the newest.
func (s *WeiboServer) AddComments(postID int64, cs ...WeiboPost) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		s.comments[postID] = append([]WeiboPost{c}, s.comments[postID]...)
	}
}

// AddStatuses publishes statuses on a user's timeline; each becomes the
// newest. Search finds them by substring.
func (s *WeiboServer) AddStatuses(uid int64, ps ...WeiboPost) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		p.UID = uid
		s.statuses[uid] = append([]WeiboPost{p}, s.statuses[uid]...)
	}
}

// Expire makes every API request look logged out, in the given way.
func (s *WeiboServer) Expire(mode WeiboExpireMode) {
	s.mu.Lock()
	s.expired, s.mode = true, mode
	s.mu.Unlock()
}

// FailNext makes the next n API requests answer status with Retry-After.
func (s *WeiboServer) FailNext(status int, retryAfter string, n int) {
	s.fail.push(status, retryAfter, n)
}

// Requests lists the request URIs seen.
func (s *WeiboServer) Requests() []string { return s.reqs.all() }

func weiboLoginPage(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>微博 - 登录</title></head><body><div class=\"login\">请登录 Sina Visitor System</div></body></html>"))
}

// loggedIn answers like Weibo for a missing login and reports false.
func (s *WeiboServer) loggedIn(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	expired, mode := s.expired, s.mode
	s.mu.Unlock()
	if !expired && (s.Cookie == "" || strings.Contains(r.Header.Get("Cookie"), s.Cookie)) {
		return true
	}
	switch mode {
	case WeiboExpireRedirect:
		http.Redirect(w, r, "/login?r="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
	case WeiboExpireOK100:
		pollWriteJSON(w, map[string]any{"ok": -100, "url": "https://passport.weibo.cn/signin/welcome?entry=mweibo&r=" + url.QueryEscape(r.URL.RequestURI())})
	default:
		weiboLoginPage(w)
	}
	return false
}

// weiboTime is the created_at layout: "Tue Feb 23 12:28:47 +0800 2021".
const weiboTime = "Mon Jan 02 15:04:05 -0700 2006"

func weiboUser(uid int64, name string) map[string]any {
	return map[string]any{"id": uid, "screen_name": name, "profile_image_url": "https://tvax1.sinaimg.cn/crop.0.0.180.180.180/x.jpg", "verified": false}
}

func (s *WeiboServer) handleHotflow(w http.ResponseWriter, r *http.Request) {
	if !s.loggedIn(w, r) {
		return
	}
	q := r.URL.Query()
	id, _ := strconv.ParseInt(q.Get("id"), 10, 64)
	s.mu.Lock()
	all := append([]WeiboPost(nil), s.comments[id]...)
	s.mu.Unlock()
	if len(all) == 0 {
		// Weibo answers ok:0 with no data when a post has no comments
		pollWriteJSON(w, map[string]any{"ok": 0, "msg": "快来发表你的评论吧"})
		return
	}
	// max_id is an opaque cursor; here it encodes the offset
	from := 0
	if m := pollAtoi(q.Get("max_id"), 0); m > 0 {
		from = min(m-1000, len(all))
	}
	to := min(from+s.PageSize, len(all))
	data := []any{}
	for _, c := range all[max(from, 0):to] {
		data = append(data, map[string]any{
			"id": c.ID, "mid": strconv.FormatInt(c.ID, 10), "rootid": strconv.FormatInt(id, 10),
			"created_at": c.Created.In(htmlShanghai).Format(weiboTime), "text": c.Text, "like_count": c.Likes,
			"source": "来自北京", "user": weiboUser(c.UID, c.Name), "total_number": 0,
		})
	}
	next := 0
	if to < len(all) {
		next = 1000 + to
	}
	pollWriteJSON(w, map[string]any{"ok": 1, "data": map[string]any{"data": data, "total_number": len(all), "max_id": next, "max_id_type": 0}})
}

func weiboMblog(p WeiboPost) map[string]any {
	return map[string]any{
		"id": strconv.FormatInt(p.ID, 10), "mid": strconv.FormatInt(p.ID, 10), "bid": "N" + strconv.FormatInt(p.ID, 36),
		"created_at": p.Created.In(htmlShanghai).Format(weiboTime), "text": p.Text,
		"attitudes_count": p.Likes, "comments_count": 0, "reposts_count": 0,
		"user": weiboUser(p.UID, p.Name), "source": "iPhone客户端",
	}
}

func (s *WeiboServer) handleIndex(w http.ResponseWriter, r *http.Request) {
	if !s.loggedIn(w, r) {
		return
	}
	q := r.URL.Query()
	cid := q.Get("containerid")
	page := max(pollAtoi(q.Get("page"), 1), 1)
	var list []WeiboPost
	search := false
	s.mu.Lock()
	switch {
	case strings.HasPrefix(cid, "107603"):
		uid, _ := strconv.ParseInt(strings.TrimPrefix(cid, "107603"), 10, 64)
		list = append(list, s.statuses[uid]...)
	case strings.HasPrefix(cid, "100103"):
		search = true
		params, _ := url.ParseQuery(strings.TrimPrefix(cid, "100103"))
		kw := params.Get("q")
		for _, ps := range s.statuses {
			for _, p := range ps {
				if kw != "" && strings.Contains(p.Text, kw) {
					list = append(list, p)
				}
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Created.After(list[j].Created) })
	default:
		s.mu.Unlock()
		pollWriteJSON(w, map[string]any{"ok": 0, "msg": "这里还没有内容"})
		return
	}
	s.mu.Unlock()
	from := min((page-1)*s.PageSize, len(list))
	to := min(from+s.PageSize, len(list))
	cards := []any{}
	if search {
		group := []any{}
		for _, p := range list[from:to] {
			group = append(group, map[string]any{"card_type": 9, "mblog": weiboMblog(p)})
		}
		cards = append(cards, map[string]any{"card_type": 11, "card_group": group})
	} else {
		cards = append(cards, map[string]any{"card_type": 58, "desc": "置顶"}) // a non-status card
		for _, p := range list[from:to] {
			cards = append(cards, map[string]any{"card_type": 9, "itemid": "", "mblog": weiboMblog(p)})
		}
	}
	info := map[string]any{"containerid": cid, "page": nil}
	if to < len(list) {
		info["page"] = page + 1
	}
	pollWriteJSON(w, map[string]any{"ok": 1, "data": map[string]any{"cardlistInfo": info, "cards": cards}})
}

// ---------------------------------------------------------------------------
// JSON over WebSocket

// WSJSONServer is a JSON-over-WebSocket feed at /feed. A client that is
// expected to subscribe (Subscribe set) gets frames only after it sent a
// text message; Send broadcasts a frame to every subscribed client.
type WSJSONServer struct {
	*httptest.Server
	// RequireSubscribe holds back frames until the client sent a message.
	RequireSubscribe bool

	mu       sync.Mutex
	conns    map[*websocket.Conn]bool // conn → subscribed
	subs     []string
	accepted int
	changed  chan struct{}
	upgrader websocket.Upgrader
}

// NewWSJSONServer starts the feed.
func NewWSJSONServer() *WSJSONServer {
	s := &WSJSONServer{conns: map[*websocket.Conn]bool{}, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/feed", s.handle)
	s.Server = httptest.NewServer(mux)
	return s
}

func (s *WSJSONServer) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *WSJSONServer) handle(w http.ResponseWriter, r *http.Request) {
	c, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conns[c] = !s.RequireSubscribe
	s.accepted++
	s.notify()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.notify()
		s.mu.Unlock()
		c.Close()
	}()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.subs = append(s.subs, string(msg))
		s.conns[c] = true
		s.notify()
		s.mu.Unlock()
	}
}

// Subscriptions lists the messages clients sent.
func (s *WSJSONServer) Subscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.subs...)
}

// Accepted counts connections so far.
func (s *WSJSONServer) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// WaitReady waits until at least n connections were accepted in total and
// one client is connected and subscribed.
func (s *WSJSONServer) WaitReady(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ready := false
		for _, sub := range s.conns {
			ready = ready || sub
		}
		ready = ready && s.accepted >= n
		ch := s.changed
		s.mu.Unlock()
		if ready {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// Send writes one text frame to every subscribed client and returns how
// many got it.
func (s *WSJSONServer) Send(frame string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c, sub := range s.conns {
		if sub && c.WriteMessage(websocket.TextMessage, []byte(frame)) == nil {
			n++
		}
	}
	return n
}

// Drop closes every connection, as a server restart would. The closed
// connections leave the set at once, so WaitReady after a Drop waits for a
// new subscribed client rather than seeing an old one whose handler has not
// noticed the close yet.
func (s *WSJSONServer) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
		delete(s.conns, c)
	}
	s.notify()
}

// Close drops clients and stops the server.
func (s *WSJSONServer) Close() {
	s.Drop()
	s.Server.CloseClientConnections()
	s.Server.Close()
}
