package bilibili

import (
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

// bilibili_comments polls the replies under a video or a dynamic, newest
// first, and stops at the newest reply it emitted last time.
// The default endpoint is x/v2/reply/wbi/main (cursor,
// WBI-signed); `api: paged` uses the older x/v2/reply.
//
//   - id: launch-video-comments
//     kind: bilibili_comments
//     every: 2m
//     bvid: BV17x411w7KC        # or aid: 170001, or dynamic_id: "9123…", or oid + type
//     cookie: ${BILI_COOKIE}    # optional: SESSDATA=…; buvid3=…

type bilicmtSpec struct {
	BVID        string          `yaml:"bvid"`
	AID         int64           `yaml:"aid"`
	DynamicID   string          `yaml:"dynamic_id"` // a text dynamic's id (type 17)
	OID         string          `yaml:"oid"`        // any comment area: with type
	Type        int             `yaml:"type"`       // comment-area type: 1 video, 11 picture dynamic, 12 article, 17 text dynamic
	API         string          `yaml:"api"`        // wbi (default) or paged
	APIBase     string          `yaml:"api_base"`   // default https://api.bilibili.com
	Cookie      config.Secret   `yaml:"cookie"`
	PageSize    int             `yaml:"page_size"`    // paged API, 1..20, default 20
	MaxPages    int             `yaml:"max_pages"`    // per poll, default 5
	RiskBackoff config.Duration `yaml:"risk_backoff"` // wait after -412/-352, default 10m
	Room        string          `yaml:"room"`         // default the bvid, av id or dynamic id
}

type bilicmtCollector struct {
	src     config.SourceConfig
	spec    bilicmtSpec
	env     collectors.Env
	http    *httpx.Client
	wbi     *WBI
	oid     string
	typ     string
	link    string // page the comments are on
	referer string
	loop    *poll.Loop
}

// NewComments builds a bilibili_comments source (a collectors.Factory).
func NewComments(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec bilicmtSpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	c := &bilicmtCollector{src: src, spec: spec, env: env}
	set := 0
	for _, b := range []bool{spec.BVID != "", spec.AID != 0, spec.DynamicID != "", spec.OID != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("set exactly one of bvid, aid, dynamic_id or oid (with type)")
	}
	switch {
	case spec.BVID != "":
		aid, err := BVIDToAID(spec.BVID)
		if err != nil {
			return nil, fmt.Errorf("bvid: %w", err)
		}
		c.oid, c.typ = strconv.FormatInt(aid, 10), "1"
		c.link = "https://www.bilibili.com/video/" + spec.BVID
		c.spec.Room = bilicmtOr(spec.Room, spec.BVID)
	case spec.AID != 0:
		if spec.AID < 0 {
			return nil, errors.New("aid: must be positive")
		}
		c.oid, c.typ = strconv.FormatInt(spec.AID, 10), "1"
		c.link = "https://www.bilibili.com/video/av" + c.oid
		c.spec.Room = bilicmtOr(spec.Room, "av"+c.oid)
	case spec.DynamicID != "":
		if _, err := strconv.ParseUint(spec.DynamicID, 10, 64); err != nil {
			return nil, fmt.Errorf("dynamic_id: %q is not a number", spec.DynamicID)
		}
		c.oid, c.typ = spec.DynamicID, "17"
		c.link = "https://t.bilibili.com/" + spec.DynamicID
		c.spec.Room = bilicmtOr(spec.Room, "dynamic"+spec.DynamicID)
	default:
		if _, err := strconv.ParseUint(spec.OID, 10, 64); err != nil {
			return nil, fmt.Errorf("oid: %q is not a number", spec.OID)
		}
		if spec.Type <= 0 {
			return nil, errors.New("type: required with oid (1 video, 11 picture dynamic, 12 article, 17 text dynamic)")
		}
		c.oid = spec.OID
		c.spec.Room = bilicmtOr(spec.Room, fmt.Sprintf("reply%d-%s", spec.Type, spec.OID))
	}
	if spec.Type > 0 {
		c.typ = strconv.Itoa(spec.Type)
	}
	c.referer = "https://www.bilibili.com/"
	if c.link != "" {
		c.referer = c.link
	}
	switch spec.API {
	case "", "wbi":
		c.spec.API = "wbi"
	case "paged":
	default:
		return nil, fmt.Errorf("api: %q is neither wbi nor paged", spec.API)
	}
	if c.spec.APIBase == "" {
		c.spec.APIBase = "https://api.bilibili.com"
	}
	if u, err := url.Parse(c.spec.APIBase); err != nil || !httpurl.OK(u) {
		return nil, fmt.Errorf("api_base %q: want an absolute http(s) URL", c.spec.APIBase)
	}
	c.spec.APIBase = strings.TrimRight(c.spec.APIBase, "/")
	if spec.Cookie.Missing() {
		return nil, fmt.Errorf("cookie: environment variable %s is empty", spec.Cookie.Var)
	}
	if c.spec.PageSize <= 0 || c.spec.PageSize > 20 {
		c.spec.PageSize = 20
	}
	if c.spec.MaxPages <= 0 {
		c.spec.MaxPages = 5
	}
	if c.spec.RiskBackoff <= 0 {
		c.spec.RiskBackoff = config.Duration(10 * time.Minute)
	}
	var err error
	if c.http, err = env.HTTP.ForSource(src); err != nil {
		return nil, err
	}
	c.wbi = &WBI{Fetch: c.navKeys, Clock: env.Clock}
	c.loop = poll.NewLoop(src, env)
	return c, nil
}

func bilicmtOr(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// ---------------------------------------------------------------------------
// BV ids. A bvid is the av number XORed, written in base 58 with a shuffled
// alphabet and two swapped digit pairs (the 2024 scheme that covers av
// numbers up to 2^51).

const (
	bilicmtXOR      = 23442827791579
	bilicmtMask     = 1<<51 - 1
	bilicmtMaxAID   = 1 << 51
	bilicmtAlphabet = "FcwAPNKTMug3GV5Lj7EJnHpWsx4tb8haYeviqBz6rkCy12mUSDQX9RdoZf"
)

// BVIDToAID converts "BV17x411w7KC" to 170001.
func BVIDToAID(bvid string) (int64, error) {
	if len(bvid) != 12 || !strings.EqualFold(bvid[:3], "BV1") {
		return 0, fmt.Errorf("%q is not a bvid (BV1 followed by 9 characters)", bvid)
	}
	b := []byte(bvid)
	b[3], b[9] = b[9], b[3]
	b[4], b[7] = b[7], b[4]
	var n int64
	for _, ch := range b[3:] {
		i := strings.IndexByte(bilicmtAlphabet, ch)
		if i < 0 {
			return 0, fmt.Errorf("%q is not a bvid: bad character %q", bvid, ch)
		}
		n = n*58 + int64(i)
	}
	aid := (n & bilicmtMask) ^ bilicmtXOR
	if aid <= 0 {
		return 0, fmt.Errorf("%q is not a valid bvid", bvid)
	}
	return aid, nil
}

// AIDToBVID converts 170001 to "BV17x411w7KC".
func AIDToBVID(aid int64) string {
	b := []byte("BV1000000000")
	n := (bilicmtMaxAID | aid) ^ bilicmtXOR
	for i := len(b) - 1; n > 0 && i >= 3; i-- {
		b[i] = bilicmtAlphabet[n%58]
		n /= 58
	}
	b[3], b[9] = b[9], b[3]
	b[4], b[7] = b[7], b[4]
	return string(b)
}

// ---------------------------------------------------------------------------
// API

// bilicmtEnvelope is every answer's envelope.
type bilicmtEnvelope struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

type bilicmtReply struct {
	RPIDStr string      `json:"rpid_str"`
	RPID    json.Number `json:"rpid"`
	MID     json.Number `json:"mid"`
	CTime   int64       `json:"ctime"`
	Like    int64       `json:"like"`
	Root    json.Number `json:"root"`
	Member  struct {
		Uname string `json:"uname"`
		MID   string `json:"mid"`
	} `json:"member"`
	Content struct {
		Message string `json:"message"`
	} `json:"content"`
	Replies []bilicmtReply `json:"replies"`
}

type bilicmtData struct {
	Cursor struct {
		IsEnd           bool `json:"is_end"`
		PaginationReply struct {
			NextOffset string `json:"next_offset"`
		} `json:"pagination_reply"`
	} `json:"cursor"`
	Page struct {
		Num   int `json:"num"`
		Size  int `json:"size"`
		Count int `json:"count"`
	} `json:"page"`
	Replies []bilicmtReply `json:"replies"`
}

// APIError is a non-zero code in a Bilibili JSON answer.
type APIError struct {
	API     string
	Code    int
	Message string
}

func (e *APIError) Error() string {
	hint := ""
	switch e.Code {
	case -101:
		hint = " (not logged in: set cookie to a valid SESSDATA)"
	case -403:
		hint = " (WBI signature rejected)"
	case -412, -352:
		hint = " (risk control: requests blocked, backing off)"
	case 12002:
		hint = " (comments are closed)"
	case -404:
		hint = " (no such video or dynamic)"
	}
	return fmt.Sprintf("bilibili %s: code %d %q%s", e.API, e.Code, e.Message, hint)
}

func (c *bilicmtCollector) get(ctx context.Context, api, rawURL string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Referer", c.referer)
	req.Header.Set("Origin", "https://www.bilibili.com")
	if v := c.spec.Cookie.Value(); v != "" {
		req.Header.Set("Cookie", v)
	}
	resp, err := c.http.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("bilibili %s: %w", api, err)
	}
	if err := httpx.CheckStatus(resp, c.env.Clock.Now()); err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, httpx.MaxBodyBytes))
	if err != nil {
		return fmt.Errorf("bilibili %s: read: %w", api, err)
	}
	var env bilicmtEnvelope
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		return poll.Err("decode", fmt.Errorf("bilibili %s: invalid JSON: %w", api, err))
	}
	if env.Code != 0 && !(api == "nav" && env.Code == -101) { // nav answers -101 with keys when logged out
		return &APIError{API: api, Code: env.Code, Message: env.Message}
	}
	if out != nil && len(env.Data) > 0 && string(env.Data) != "null" {
		d := json.NewDecoder(strings.NewReader(string(env.Data)))
		d.UseNumber()
		if err := d.Decode(out); err != nil {
			return poll.Err("decode", fmt.Errorf("bilibili %s: data: %w", api, err))
		}
	}
	return nil
}

// navKeys fetches the WBI keys (img_key and sub_key from /x/web-interface/nav).
func (c *bilicmtCollector) navKeys(ctx context.Context) (string, string, error) {
	var nav struct {
		WbiImg struct {
			ImgURL string `json:"img_url"`
			SubURL string `json:"sub_url"`
		} `json:"wbi_img"`
	}
	if err := c.get(ctx, "nav", c.spec.APIBase+"/x/web-interface/nav", &nav); err != nil {
		return "", "", err
	}
	img, sub := WBIKeyFromURL(nav.WbiImg.ImgURL), WBIKeyFromURL(nav.WbiImg.SubURL)
	if img == "" || sub == "" {
		return "", "", &APIError{API: "nav", Message: "no wbi_img keys in the answer"}
	}
	return img, sub, nil
}

// page fetches one page: the wbi cursor API (offset "" first) or the paged
// API (pn from 1).
func (c *bilicmtCollector) page(ctx context.Context, offset string, pn int) (*bilicmtData, error) {
	var data bilicmtData
	if c.spec.API == "paged" {
		q := url.Values{"type": {c.typ}, "oid": {c.oid}, "sort": {"0"}, "nohot": {"1"},
			"ps": {strconv.Itoa(c.spec.PageSize)}, "pn": {strconv.Itoa(pn)}}
		err := c.get(ctx, "reply", c.spec.APIBase+"/x/v2/reply?"+q.Encode(), &data)
		return &data, c.classify(err)
	}
	ps, _ := json.Marshal(map[string]string{"offset": offset})
	q := url.Values{"type": {c.typ}, "oid": {c.oid}, "mode": {"2"}, "plat": {"1"}, "pagination_str": {string(ps)}}
	for attempt := 0; ; attempt++ {
		signed, err := c.wbi.Sign(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("bilibili WBI keys: %w", err)
		}
		err = c.get(ctx, "reply/wbi/main", c.spec.APIBase+"/x/v2/reply/wbi/main?"+signed, &data)
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == -403 && attempt == 0 {
			// Keys rotated under us: fetch fresh ones and try once more.
			c.env.Log.Info("bilibili WBI signature rejected; refreshing keys")
			c.wbi.Invalidate()
			continue
		}
		return &data, c.classify(err)
	}
}

// classify attaches reasons and waits to API errors.
func (c *bilicmtCollector) classify(err error) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Code {
	case -412, -352:
		return poll.ErrWait("risk_control", c.spec.RiskBackoff.D(), err)
	case -403:
		return poll.Err("wbi_rejected", err)
	case -101:
		return poll.Err("auth", err)
	case 12002:
		return poll.ErrWait("comments_closed", time.Hour, err)
	}
	return poll.Err("api_error", err)
}

func (c *bilicmtCollector) Run(ctx context.Context, emit collectors.Emit) error {
	return c.loop.Run(ctx, emit, func(ctx context.Context) error { return c.poll(ctx, emit) })
}

func (c *bilicmtCollector) poll(ctx context.Context, emit collectors.Emit) error {
	st, err := poll.LoadState(ctx, c.env.State, c.src.ID)
	if err != nil {
		return poll.Err("state", err)
	}
	var fresh, subs []bilicmtReply
	offset := ""
pages:
	for pn := 1; pn <= c.spec.MaxPages; pn++ {
		data, err := c.page(ctx, offset, pn)
		if err != nil {
			return err
		}
		if pn == 1 {
			c.loop.Shape(ctx, st, len(data.Replies), c.spec.Room)
		}
		anyNew := false
		for _, r := range data.Replies {
			id := r.id()
			for _, s := range r.Replies {
				if !st.Seen(s.id()) {
					subs = append(subs, s)
				}
			}
			var ts time.Time
			if r.CTime > 0 {
				ts = time.Unix(r.CTime, 0)
			}
			switch st.Judge(id, ts) {
			case poll.Reach:
				break pages
			case poll.Skip:
				continue
			}
			anyNew = true
			fresh = append(fresh, r)
		}
		if len(data.Replies) == 0 || !anyNew {
			break
		}
		if c.spec.API == "paged" {
			if data.Page.Count > 0 && pn*max(data.Page.Size, 1) >= data.Page.Count {
				break
			}
			continue
		}
		if data.Cursor.IsEnd || data.Cursor.PaginationReply.NextOffset == "" || data.Cursor.PaginationReply.NextOffset == offset {
			break
		}
		offset = data.Cursor.PaginationReply.NextOffset
	}
	slices.Reverse(fresh)
	// Sub-reply previews have no order guarantee; they go after the roots,
	// oldest first, deduplicated by the seen set.
	slices.SortStableFunc(subs, func(a, b bilicmtReply) int { return int(a.CTime - b.CTime) })
	for _, r := range append(fresh, subs...) {
		if st.Seen(r.id()) {
			continue
		}
		it := c.item(r)
		if err := emit(ctx, it); err != nil {
			c.loop.Keep(ctx, st) // what went out
			return err
		}
		c.env.Metrics.Items.WithLabelValues(c.src.ID, string(it.Kind)).Inc()
		if r.Root.String() == "" || r.Root.String() == "0" {
			st.Emitted(it.ID, it.TS)
		} else {
			st.MarkSeen(it.ID) // a sub-reply is not the listing's newest root
		}
	}
	if err := st.Save(ctx, c.env.State, c.src.ID); err != nil {
		return poll.Err("state", err)
	}
	return nil
}

func (r *bilicmtReply) id() string {
	if r.RPIDStr != "" {
		return r.RPIDStr
	}
	return r.RPID.String()
}

func (c *bilicmtCollector) item(r bilicmtReply) item.Item {
	authorID := r.MID.String()
	if authorID == "" || authorID == "0" {
		authorID = r.Member.MID
	}
	it := item.Item{
		Source: c.src.ID, Platform: "bilibili", Kind: item.KindComment, Room: c.spec.Room,
		ID: r.id(), AuthorID: authorID, Author: r.Member.Uname, Text: r.Content.Message,
		TS: time.Unix(r.CTime, 0).UTC(), Value: float64(r.Like), Labels: c.src.Labels,
	}
	if c.link != "" {
		it.URL = c.link + "#reply" + it.ID
	}
	if raw, err := json.Marshal(r); err == nil {
		it.Raw = raw
	}
	return it
}
