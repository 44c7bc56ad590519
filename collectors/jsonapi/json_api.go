// Package jsonapi polls JSON HTTP APIs: json_api (any API, mapped with a
// Mapping) and weibo. Its Mapper is also what websocket_json maps frames
// with.
package jsonapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/poll"
	"lookout/config"
	"lookout/internal/httpurl"
	"lookout/item"
)

// json_api polls any JSON HTTP API and maps its payload with a Mapping.
// It is also the seam for platforms lookout does not scrape itself
// (Xiaohongshu, Kuaishou, WeChat articles): point it at an RSSHub JSON
// route or at the user's own signing bridge.
//
//   - id: brand-posts
//     kind: json_api
//     every: 2m
//     url: https://api.example.com/v1/posts
//     params: {q: "brand", since: "{{.LastID}}"}
//     secret_headers: {Authorization: ${EXAMPLE_TOKEN}}
//     pagination: {type: cursor, param: cursor, cursor_path: data.next, max_pages: 5}
//     mapping: {items: "data.items[*]", id: id, text: body, author: user.name, time: created_at}

type jsonapiSpec struct {
	URL           string                   `yaml:"url"`
	Method        string                   `yaml:"method"` // GET (default) or POST
	Body          string                   `yaml:"body"`   // templated request body for POST
	Params        map[string]string        `yaml:"params"` // templated query parameters
	Headers       map[string]string        `yaml:"headers"`
	SecretHeaders map[string]config.Secret `yaml:"secret_headers"`
	Cookie        config.Secret            `yaml:"cookie"`
	Platform      string                   `yaml:"platform"` // Item.Platform, default json_api
	Room          string                   `yaml:"room"`     // Item.Room, default the source id
	Order         string                   `yaml:"order"`    // newest_first (default) or oldest_first
	Pagination    jsonapiPagination        `yaml:"pagination"`
	Mapping       Mapping                  `yaml:"mapping"`
}

type jsonapiPagination struct {
	Type          string `yaml:"type"`            // "" (one request), page or cursor
	Param         string `yaml:"param"`           // query parameter that carries the page or cursor
	Start         int    `yaml:"start"`           // first page number, default 1
	CursorPath    string `yaml:"cursor_path"`     // where the next cursor is in the payload
	StopWhenEmpty *bool  `yaml:"stop_when_empty"` // stop at an empty page, default true
	HasMorePath   string `yaml:"has_more_path"`   // a boolean in the payload; false stops paging
	MaxPages      int    `yaml:"max_pages"`       // per poll, default 5
	// Resume keeps the cursor across polls, for APIs whose cursor walks
	// towards the present (since_id, after). The listing is then read
	// oldest first.
	Resume bool `yaml:"resume"`
}

// jsonapiTemplateData is what url, params and body templates see.
type jsonapiTemplateData struct {
	Cursor string
	Page   int
	Now    time.Time
	LastID string
}

type jsonapiCollector struct {
	src     config.SourceConfig
	spec    jsonapiSpec
	env     collectors.Env
	http    *httpx.Client
	mapper  *Mapper
	urlTmpl *template.Template
	body    *template.Template
	params  []jsonapiParam
	cursor  Path
	hasMore Path
	loop    *poll.Loop
	newest  bool
	stopMT  bool
}

type jsonapiParam struct {
	key  string
	tmpl *template.Template
}

// NewJSONAPI builds a json_api source (a collectors.Factory).
func NewJSONAPI(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec jsonapiSpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	c := &jsonapiCollector{src: src, spec: spec, env: env, stopMT: true}
	if spec.URL == "" {
		return nil, errors.New("url: required")
	}
	var err error
	if c.urlTmpl, err = template.New("url").Option("missingkey=error").Parse(spec.URL); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	probe, err := jsonapiExec(c.urlTmpl, jsonapiTemplateData{Page: 1, Now: time.Unix(0, 0)})
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if u, err := url.Parse(probe); err != nil || !httpurl.OK(u) {
		return nil, fmt.Errorf("url %q: want an absolute http(s) URL", httpx.RedactURL(probe))
	}
	keys := make([]string, 0, len(spec.Params))
	for k := range spec.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t, err := template.New(k).Option("missingkey=error").Parse(spec.Params[k])
		if err != nil {
			return nil, fmt.Errorf("params.%s: %w", k, err)
		}
		c.params = append(c.params, jsonapiParam{key: k, tmpl: t})
	}
	switch strings.ToUpper(spec.Method) {
	case "", "GET":
		c.spec.Method = http.MethodGet
	case "POST":
		c.spec.Method = http.MethodPost
		if c.body, err = template.New("body").Option("missingkey=error").Parse(spec.Body); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	default:
		return nil, fmt.Errorf("method: %q is neither GET nor POST", spec.Method)
	}
	for k, v := range spec.Headers {
		if strings.Contains(v, "${") {
			return nil, fmt.Errorf("headers.%s: secrets go in secret_headers (written ${ENV_VAR}), not in headers", k)
		}
	}
	for k, s := range spec.SecretHeaders {
		if s.Missing() {
			return nil, fmt.Errorf("secret_headers.%s: environment variable %s is empty", k, s.Var)
		}
	}
	if spec.Cookie.Missing() {
		return nil, fmt.Errorf("cookie: environment variable %s is empty", spec.Cookie.Var)
	}
	switch spec.Order {
	case "", "newest_first":
		c.newest = true
	case "oldest_first":
	default:
		return nil, fmt.Errorf("order: %q is neither newest_first nor oldest_first", spec.Order)
	}
	pg := &c.spec.Pagination
	switch pg.Type {
	case "":
		pg.MaxPages = 1
	case "page":
		if pg.Start == 0 {
			pg.Start = 1
		}
		if pg.Param == "" && !strings.Contains(spec.URL, ".Page") && !jsonapiParamsUse(spec.Params, ".Page") {
			return nil, errors.New("pagination.param: required for page pagination (or use {{.Page}} in url or params)")
		}
	case "cursor":
		if pg.CursorPath == "" {
			return nil, errors.New("pagination.cursor_path: required for cursor pagination")
		}
		if pg.Param == "" && !strings.Contains(spec.URL, ".Cursor") && !jsonapiParamsUse(spec.Params, ".Cursor") {
			return nil, errors.New("pagination.param: required for cursor pagination (or use {{.Cursor}} in url or params)")
		}
		if c.cursor, err = ParsePath(pg.CursorPath); err != nil {
			return nil, fmt.Errorf("pagination.cursor_path: %w", err)
		}
	default:
		return nil, fmt.Errorf("pagination.type: %q is neither page nor cursor", pg.Type)
	}
	if c.hasMore, err = ParsePath(pg.HasMorePath); err != nil {
		return nil, fmt.Errorf("pagination.has_more_path: %w", err)
	}
	if pg.Resume && pg.Type != "cursor" {
		return nil, errors.New("pagination.resume: only for cursor pagination")
	}
	if pg.Resume {
		c.newest = false
	}
	if pg.MaxPages <= 0 {
		pg.MaxPages = 5
	}
	if pg.StopWhenEmpty != nil {
		c.stopMT = *pg.StopWhenEmpty
	}
	if c.mapper, err = NewMapper(spec.Mapping.TimeZoneFrom(src)); err != nil {
		return nil, err
	}
	if c.mapper.HasFrameMetrics() {
		return nil, errors.New("mapping.metrics: a ^ path (a metric read once per document) is for websocket_json frames; json_api takes metrics from each item")
	}
	if c.spec.Platform == "" {
		c.spec.Platform = "json_api"
	}
	if c.spec.Room == "" {
		c.spec.Room = src.ID
	}
	if c.http, err = env.HTTP.ForSource(src); err != nil {
		return nil, err
	}
	c.loop = poll.NewLoop(src, env)
	return c, nil
}

func jsonapiParamsUse(params map[string]string, field string) bool {
	for _, v := range params {
		if strings.Contains(v, field) {
			return true
		}
	}
	return false
}

func jsonapiExec(t *template.Template, data jsonapiTemplateData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

func (c *jsonapiCollector) Run(ctx context.Context, emit collectors.Emit) error {
	return c.loop.Run(ctx, emit, func(ctx context.Context) error { return c.poll(ctx, emit) })
}

// jsonapiEntry is a mapped element waiting to be emitted.
type jsonapiEntry struct {
	rec   Record
	items []item.Item
}

// poll reads up to max_pages pages and emits what is new, oldest first.
func (c *jsonapiCollector) poll(ctx context.Context, emit collectors.Emit) error {
	st, err := poll.LoadState(ctx, c.env.State, c.src.ID)
	if err != nil {
		return poll.Err("state", err)
	}
	pg := c.spec.Pagination
	data := jsonapiTemplateData{Page: pg.Start, Now: c.env.Clock.Now(), LastID: st.LastID}
	if pg.Resume {
		data.Cursor = st.Cursor
	}
	base := item.Item{Source: c.src.ID, Platform: c.spec.Platform, Room: c.spec.Room, Labels: c.src.Labels}
	var fresh []jsonapiEntry
	var badFields int
	var firstBad error
	conditional := !pg.Resume // a resumed cursor already says where we are
pages:
	for n := 0; n < pg.MaxPages; n++ {
		req, err := c.request(ctx, data)
		if err != nil {
			return poll.Err("config", err)
		}
		if n == 0 && conditional {
			if st.ETag != "" {
				req.Header.Set("If-None-Match", st.ETag)
			}
			if st.LastModified != "" {
				req.Header.Set("If-Modified-Since", st.LastModified)
			}
		}
		body, resp, err := c.fetch(ctx, req)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusNotModified {
			return nil // nothing new since the validators were stored
		}
		if n == 0 && conditional {
			st.ETag, st.LastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		}
		doc, err := DecodeJSON(body)
		if err != nil {
			return poll.Err("decode", fmt.Errorf("%s page %d: invalid JSON: %w", httpx.RedactURL(req.URL.String()), n+1, err))
		}
		els, found := c.mapper.Elements(doc)
		if len(els) == 0 {
			if ae := DetectAPIError(doc); ae != nil {
				return poll.Err("api_error", fmt.Errorf("%s page %d: %w", httpx.RedactURL(req.URL.String()), n+1, ae))
			}
		}
		if n == 0 {
			c.loop.ShapeFields(ctx, st, len(els), c.mapper.TextMissing(doc, els), httpx.RedactURL(req.URL.String()))
			if !found && !st.Yielded {
				c.env.Metrics.Errors.WithLabelValues(c.src.ID, "no_items").Inc()
				c.env.Log.Warn("mapping.items selects nothing in the payload", "items", c.spec.Mapping.Items)
			}
		}
		anyNew := false
		for _, el := range els {
			rec, err := c.mapper.Record(doc, el)
			if err != nil {
				badFields++
				if firstBad == nil {
					firstBad = err
				}
			}
			if c.newest {
				switch st.Judge(rec.ID, rec.TS) {
				case poll.Reach:
					break pages
				case poll.Skip:
					continue
				}
			} else if st.Seen(rec.ID) {
				continue
			}
			anyNew = true
			fresh = append(fresh, jsonapiEntry{rec: rec, items: c.mapper.Items(rec, base, data.Now)})
		}
		if len(els) == 0 && c.stopMT {
			break
		}
		if len(els) > 0 && !anyNew && c.newest {
			break // a newest-first page with nothing new: older pages hold nothing new either
		}
		if !c.hasMore.IsZero() {
			if v, ok := c.hasMore.Get(doc); ok {
				if more, ok := jsonmapBool(v); ok && !more {
					break pages
				}
			}
		}
		switch pg.Type {
		case "":
			break pages
		case "page":
			data.Page++
		case "cursor":
			v, ok := c.cursor.Get(doc)
			next := jsonmapString(v)
			if !ok || next == "" || next == "0" || next == data.Cursor {
				break pages
			}
			data.Cursor = next
			if pg.Resume {
				st.Cursor = next
			}
		}
	}
	if badFields > 0 {
		c.env.Metrics.Errors.WithLabelValues(c.src.ID, "bad_field").Add(float64(badFields))
		c.env.Log.Warn("mapped fields unreadable; used defaults", "count", badFields, "first", firstBad)
	}
	if c.newest {
		slices.Reverse(fresh)
	}
	for _, e := range fresh {
		for _, it := range e.items {
			if err := emit(ctx, it); err != nil {
				// Keep what went out; the page was not fully consumed, so fetch it
				// again next time.
				st.ETag, st.LastModified = "", ""
				c.loop.Keep(ctx, st)
				return err
			}
			c.env.Metrics.Items.WithLabelValues(c.src.ID, string(it.Kind)).Inc()
		}
		st.Emitted(e.rec.ID, e.rec.TS)
	}
	if err := st.Save(ctx, c.env.State, c.src.ID); err != nil {
		return poll.Err("state", err)
	}
	return nil
}

func (c *jsonapiCollector) request(ctx context.Context, data jsonapiTemplateData) (*http.Request, error) {
	raw, err := jsonapiExec(c.urlTmpl, data)
	if err != nil {
		return nil, fmt.Errorf("url template: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url template gave an invalid URL: %w", err)
	}
	q := u.Query()
	for _, p := range c.params {
		v, err := jsonapiExec(p.tmpl, data)
		if err != nil {
			return nil, fmt.Errorf("params.%s: %w", p.key, err)
		}
		if v == "" {
			q.Del(p.key) // an empty cursor on the first page is simply left out
			continue
		}
		q.Set(p.key, v)
	}
	pg := c.spec.Pagination
	switch pg.Type {
	case "page":
		if pg.Param != "" {
			q.Set(pg.Param, strconv.Itoa(data.Page))
		}
	case "cursor":
		if pg.Param != "" && data.Cursor != "" {
			q.Set(pg.Param, data.Cursor)
		}
	}
	u.RawQuery = q.Encode()
	var body io.Reader
	if c.body != nil {
		b, err := jsonapiExec(c.body, data)
		if err != nil {
			return nil, fmt.Errorf("body template: %w", err)
		}
		body = strings.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, c.spec.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.spec.Headers {
		req.Header.Set(k, v)
	}
	for k, s := range c.spec.SecretHeaders {
		req.Header.Set(k, s.Value())
	}
	if c.spec.Cookie.Value() != "" {
		req.Header.Set("Cookie", c.spec.Cookie.Value())
	}
	return req, nil
}

// jsonapiMaxBody bounds what one page may weigh.
const jsonapiMaxBody = 16 << 20

func (c *jsonapiCollector) fetch(ctx context.Context, req *http.Request) ([]byte, *http.Response, error) {
	resp, err := c.http.Do(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", httpx.RedactURL(req.URL.String()), err)
	}
	if err := httpx.CheckStatus(resp, c.env.Clock.Now()); err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, resp, nil
	}
	body, err := httpx.ReadBody(resp, jsonapiMaxBody)
	if err != nil {
		return nil, nil, err
	}
	return bytes.TrimSpace(body), resp, nil
}
