package jsonapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// weibo polls the m.weibo.cn JSON API: the comments of a post, a user's
// timeline, or a real-time keyword search. Weibo has no public reference
// for these endpoints, so the bases are configurable
// and the collector is strict about what it accepts: when the login cookie
// has expired Weibo answers with a redirect to a login page, {"ok":-100} or
// an HTML page, and each of those is a clear error, never an empty result.
//
//   - id: brand-weibo-comments
//     kind: weibo
//     mode: comments            # comments | timeline | search
//     post_id: "4609570000000001"
//     cookie: ${WEIBO_COOKIE}   # SUB=…; required for comments

type weiboSpec struct {
	Mode     string        `yaml:"mode"`      // comments, timeline or search
	PostID   string        `yaml:"post_id"`   // comments: the post's id (mid)
	UID      string        `yaml:"uid"`       // timeline: the user's numeric id
	Keyword  string        `yaml:"keyword"`   // search: the query
	APIBase  string        `yaml:"api_base"`  // default https://m.weibo.cn
	Cookie   config.Secret `yaml:"cookie"`    // the browser's Cookie header (SUB=…)
	MaxPages int           `yaml:"max_pages"` // per poll, default 3
	Room     string        `yaml:"room"`      // default the post id, uid or keyword
}

// ErrWeiboLogin is wrapped by every error that means the login is gone.
var ErrWeiboLogin = errors.New("weibo: cookie expired or not logged in")

// WeiboLoginError says Weibo wants a login: the cookie in Var has expired,
// or none was configured.
type WeiboLoginError struct {
	Var string // environment variable that holds the cookie
	Why string // what Weibo answered
}

func (e *WeiboLoginError) Error() string {
	return fmt.Sprintf("%s; refresh %s (%s)", ErrWeiboLogin, e.Var, e.Why)
}

func (e *WeiboLoginError) Unwrap() error { return ErrWeiboLogin }

type weiboCollector struct {
	src  config.SourceConfig
	spec weiboSpec
	env  collectors.Env
	http *httpx.Client
	loc  *time.Location
	loop *poll.Loop
}

// NewWeibo builds a weibo source (a collectors.Factory).
func NewWeibo(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec weiboSpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	c := &weiboCollector{src: src, spec: spec, env: env}
	switch spec.Mode {
	case "comments":
		if _, err := strconv.ParseUint(spec.PostID, 10, 64); err != nil {
			return nil, fmt.Errorf("post_id: %q is not a numeric post id (mid)", spec.PostID)
		}
		if !spec.Cookie.IsSet() {
			return nil, errors.New("cookie: required for mode comments (write cookie: ${WEIBO_COOKIE} with the browser's SUB=… cookie)")
		}
		c.spec.Room = cmp.Or(spec.Room, "weibo"+spec.PostID)
	case "timeline":
		if _, err := strconv.ParseUint(spec.UID, 10, 64); err != nil {
			return nil, fmt.Errorf("uid: %q is not a numeric user id", spec.UID)
		}
		c.spec.Room = cmp.Or(spec.Room, "u"+spec.UID)
	case "search":
		if strings.TrimSpace(spec.Keyword) == "" {
			return nil, errors.New("keyword: required for mode search")
		}
		c.spec.Room = cmp.Or(spec.Room, "search:"+spec.Keyword)
	default:
		return nil, fmt.Errorf("mode: %q is not comments, timeline or search", spec.Mode)
	}
	if spec.Cookie.Missing() {
		return nil, fmt.Errorf("cookie: environment variable %s is empty", spec.Cookie.Var)
	}
	if c.spec.APIBase == "" {
		c.spec.APIBase = "https://m.weibo.cn"
	}
	if u, err := url.Parse(c.spec.APIBase); err != nil || !httpurl.OK(u) {
		return nil, fmt.Errorf("api_base %q: want an absolute http(s) URL", c.spec.APIBase)
	}
	c.spec.APIBase = strings.TrimRight(c.spec.APIBase, "/")
	if c.spec.MaxPages <= 0 {
		c.spec.MaxPages = 3
	}
	var err error
	if c.loc, err = poll.Location("", src); err != nil {
		return nil, err
	}
	if c.http, err = env.HTTP.ForSource(src); err != nil {
		return nil, err
	}
	c.loop = poll.NewLoop(src, env)
	return c, nil
}

func (c *weiboCollector) Run(ctx context.Context, emit collectors.Emit) error {
	return c.loop.Run(ctx, emit, func(ctx context.Context) error { return c.poll(ctx, emit) })
}

// weiboID reads ids Weibo sends as numbers or strings.
type weiboID string

func (w *weiboID) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		s = ""
	}
	*w = weiboID(s)
	return nil
}

type weiboUser struct {
	ID         weiboID `json:"id"`
	ScreenName string  `json:"screen_name"`
}

// weiboEntry is a comment or a status (mblog): the fields both carry.
type weiboEntry struct {
	ID         weiboID         `json:"id"`
	CreatedAt  string          `json:"created_at"`
	Text       string          `json:"text"`
	LikeCount  int64           `json:"like_count"`      // comments
	Attitudes  int64           `json:"attitudes_count"` // statuses
	IsTop      int             `json:"isTop"`
	User       weiboUser       `json:"user"`
	RawMessage json.RawMessage `json:"-"`
}

// weiboEnvelope is m.weibo.cn's envelope.
type weiboEnvelope struct {
	OK   json.Number     `json:"ok"`
	Msg  string          `json:"msg"`
	URL  string          `json:"url"`
	Data json.RawMessage `json:"data"`
}

var weiboLoginMarkers = []string{"passport.weibo", "/signin", "/login", "visitor", "登录"}

// get fetches one API page and returns its data, or a WeiboLoginError when
// Weibo wants a login.
func (c *weiboCollector) get(ctx context.Context, path string, q url.Values) (json.RawMessage, bool, error) {
	rawURL := c.spec.APIBase + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Accept", "application/json, text/plain, */*")
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	req.Header.Set("MWeibo-Pwa", "1")
	req.Header.Set("Referer", c.spec.APIBase+"/")
	if v := c.spec.Cookie.Value(); v != "" {
		req.Header.Set("Cookie", v)
	}
	resp, err := c.http.Do(ctx, req)
	if err != nil {
		return nil, false, fmt.Errorf("weibo %s: %w", path, err)
	}
	if final := resp.Request.URL; final != nil && final.Path != req.URL.Path {
		// net/http followed a redirect off the API: Weibo sends logged-out
		// clients to a login or visitor page.
		for _, m := range weiboLoginMarkers {
			if strings.Contains(strings.ToLower(final.Host+final.Path), m) {
				resp.Body.Close()
				return nil, false, c.loginErr("redirected to " + final.Host + final.Path)
			}
		}
	}
	if err := httpx.CheckStatus(resp, c.env.Clock.Now()); err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, httpx.MaxBodyBytes))
	if err != nil {
		return nil, false, fmt.Errorf("weibo %s: read: %w", path, err)
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '<' || strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		low := strings.ToLower(string(body[:min(len(body), 4096)]))
		for _, m := range weiboLoginMarkers {
			if strings.Contains(low, m) {
				return nil, false, c.loginErr("HTML login page instead of JSON")
			}
		}
		return nil, false, poll.Err("decode", fmt.Errorf("weibo %s: HTML instead of JSON (HTTP %d)", path, resp.StatusCode))
	}
	var env weiboEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, false, poll.Err("decode", fmt.Errorf("weibo %s: invalid JSON: %w", path, err))
	}
	switch env.OK.String() {
	case "1":
		return env.Data, true, nil
	case "-100":
		return nil, false, c.loginErr("ok:-100")
	case "0":
		return nil, false, nil // no content (a post without comments, an empty search)
	}
	return nil, false, poll.Err("api_error", fmt.Errorf("weibo %s: ok:%s %q", path, env.OK, env.Msg))
}

func (c *weiboCollector) loginErr(why string) error {
	v := c.spec.Cookie.Var
	if v == "" {
		v = "WEIBO_COOKIE"
	}
	return poll.Err("cookie_expired", &WeiboLoginError{Var: v, Why: why})
}

// weiboPage is one page's entries and how to ask for the next one.
type weiboPage struct {
	entries []weiboEntry
	next    string // max_id or page number; "" at the end
}

func (c *weiboCollector) fetch(ctx context.Context, cursor string) (weiboPage, error) {
	var p weiboPage
	switch c.spec.Mode {
	case "comments":
		q := url.Values{"id": {c.spec.PostID}, "mid": {c.spec.PostID}, "max_id_type": {"0"}}
		if cursor != "" {
			q.Set("max_id", cursor)
		}
		data, ok, err := c.get(ctx, "/comments/hotflow", q)
		if err != nil || !ok {
			return p, err
		}
		var d struct {
			Data  []json.RawMessage `json:"data"`
			MaxID json.Number       `json:"max_id"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return p, poll.Err("decode", fmt.Errorf("weibo hotflow: %w", err))
		}
		for _, raw := range d.Data {
			var e weiboEntry
			if err := json.Unmarshal(raw, &e); err != nil {
				return p, poll.Err("decode", fmt.Errorf("weibo hotflow comment: %w", err))
			}
			e.RawMessage = raw
			p.entries = append(p.entries, e)
		}
		if m := d.MaxID.String(); m != "" && m != "0" {
			p.next = m
		}
		return p, nil
	}
	containerID := "107603" + c.spec.UID
	if c.spec.Mode == "search" {
		containerID = "100103type=61&q=" + c.spec.Keyword // 61: real time, newest first
	}
	page := cursor
	if page == "" {
		page = "1"
	}
	q := url.Values{"containerid": {containerID}, "page": {page}}
	if c.spec.Mode == "search" {
		q.Set("page_type", "searchall")
	}
	data, ok, err := c.get(ctx, "/api/container/getIndex", q)
	if err != nil || !ok {
		return p, err
	}
	var d struct {
		Cards []struct {
			CardType  int               `json:"card_type"`
			Mblog     json.RawMessage   `json:"mblog"`
			CardGroup []json.RawMessage `json:"card_group"`
		} `json:"cards"`
		CardlistInfo struct {
			Page json.RawMessage `json:"page"`
		} `json:"cardlistInfo"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return p, poll.Err("decode", fmt.Errorf("weibo getIndex: %w", err))
	}
	add := func(raw json.RawMessage) error {
		var e weiboEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return poll.Err("decode", fmt.Errorf("weibo mblog: %w", err))
		}
		e.RawMessage = raw
		p.entries = append(p.entries, e)
		return nil
	}
	for _, card := range d.Cards {
		if card.CardType == 9 && len(card.Mblog) > 0 {
			if err := add(card.Mblog); err != nil {
				return p, err
			}
		}
		for _, g := range card.CardGroup {
			var sub struct {
				CardType int             `json:"card_type"`
				Mblog    json.RawMessage `json:"mblog"`
			}
			if json.Unmarshal(g, &sub) == nil && sub.CardType == 9 && len(sub.Mblog) > 0 {
				if err := add(sub.Mblog); err != nil {
					return p, err
				}
			}
		}
	}
	if n := strings.Trim(string(d.CardlistInfo.Page), `"`); n != "" && n != "null" && n != "0" {
		p.next = n
	}
	return p, nil
}

func (c *weiboCollector) poll(ctx context.Context, emit collectors.Emit) error {
	st, err := poll.LoadState(ctx, c.env.State, c.src.ID)
	if err != nil {
		return poll.Err("state", err)
	}
	now := c.env.Clock.Now()
	// hotflow orders comments by heat, not time: there the seen set alone
	// decides. Timelines and real-time search are newest first.
	ordered := c.spec.Mode != "comments"
	var fresh []item.Item
	var badTimes int
	cursor := ""
pages:
	for n := 0; n < c.spec.MaxPages; n++ {
		p, err := c.fetch(ctx, cursor)
		if err != nil {
			return err
		}
		if n == 0 && ordered {
			c.loop.Shape(ctx, st, len(p.entries), c.spec.Mode)
		}
		anyNew := false
		for _, e := range p.entries {
			it, terr := c.item(e, now)
			if terr != nil {
				badTimes++
			}
			if it.ID == "" {
				continue
			}
			if st.Seen(it.ID) {
				continue
			}
			if ordered && e.IsTop == 0 {
				switch st.Judge(it.ID, it.TS) {
				case poll.Reach:
					break pages
				case poll.Skip:
					continue
				}
			}
			anyNew = true
			fresh = append(fresh, it)
		}
		if len(p.entries) == 0 || p.next == "" || p.next == cursor || (ordered && !anyNew) {
			break
		}
		cursor = p.next
	}
	if badTimes > 0 {
		c.env.Metrics.Errors.WithLabelValues(c.src.ID, "bad_field").Add(float64(badTimes))
		c.env.Log.Warn("weibo created_at unreadable; used the poll time", "count", badTimes)
	}
	slices.SortStableFunc(fresh, func(a, b item.Item) int { return a.TS.Compare(b.TS) })
	for _, it := range fresh {
		if err := emit(ctx, it); err != nil {
			c.loop.Keep(ctx, st) // what went out
			return err
		}
		c.env.Metrics.Items.WithLabelValues(c.src.ID, string(it.Kind)).Inc()
		st.Emitted(it.ID, it.TS)
	}
	if err := st.Save(ctx, c.env.State, c.src.ID); err != nil {
		return poll.Err("state", err)
	}
	return nil
}

// weiboTimeLayout is created_at: "Tue Feb 23 12:28:47 +0800 2021".
const weiboTimeLayout = "Mon Jan 02 15:04:05 -0700 2006"

// weiboParseTime reads created_at, falling back to the relative forms the
// mobile site sometimes sends (刚刚, 5分钟前, 昨天 12:00).
func weiboParseTime(s string, loc *time.Location, now time.Time) (time.Time, error) {
	if t, err := time.Parse(weiboTimeLayout, strings.TrimSpace(s)); err == nil {
		return t, nil
	}
	return poll.ParseTime(s, "", loc, now)
}

func (c *weiboCollector) item(e weiboEntry, now time.Time) (item.Item, error) {
	ts, err := weiboParseTime(e.CreatedAt, c.loc, now)
	if err != nil {
		ts = now
	}
	it := item.Item{
		Source: c.src.ID, Platform: "weibo", Room: c.spec.Room, ID: string(e.ID),
		AuthorID: string(e.User.ID), Author: e.User.ScreenName, Text: jsonmapStripHTML(e.Text),
		TS: ts.UTC(), Labels: c.src.Labels, Raw: e.RawMessage,
	}
	if c.spec.Mode == "comments" {
		it.Kind = item.KindComment
		it.Value = float64(e.LikeCount)
		it.URL = "https://m.weibo.cn/detail/" + c.spec.PostID
	} else {
		it.Kind = item.KindPost
		it.Value = float64(e.Attitudes)
		it.URL = "https://m.weibo.cn/detail/" + it.ID
	}
	return it, err
}
