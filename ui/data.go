package ui

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"lookout/internal/labels"
	"lookout/report"
	"lookout/store"
)

// RoomStatus is one row of the overview.
type RoomStatus struct {
	Source   string `json:"source"`
	Platform string `json:"platform"`
	Room     string `json:"room"`
	// Light is green, yellow or red: the worst open alert's severity
	// (red and yellow only when firing; a pending alert makes yellow).
	Light    string  `json:"light"`
	Live     string  `json:"live"`     // live, ended, active (items in the last 10 minutes) or quiet
	PerMin   float64 `json:"per_min"`  // items in the last minute
	Negative float64 `json:"negative"` // negative share, last 5 minutes
	Scored   int     `json:"scored"`   // scored items behind Negative
	// Normal is the negative share of the last hour (of the last 15
	// minutes right after the dashboard starts, growing to the hour).
	Normal      float64 `json:"normal"`
	Viewers     float64 `json:"viewers"` // latest sample, -1 when none
	OpenAlerts  int     `json:"open_alerts"`
	Health      string  `json:"health"` // ok, connecting, broken, unknown
	HealthNote  string  `json:"health_note,omitempty"`
	LastItemAgo string  `json:"last_item_ago,omitempty"`
}

// overviewTTL is how long an overview is reused by every viewer.
const overviewTTL = 2 * time.Second

func (s *Server) overviewData(r *http.Request) (any, error) {
	s.cacheM.Lock()
	c, ok := s.cache["overview"]
	s.cacheM.Unlock()
	if ok && time.Since(c.at) < overviewTTL {
		return c.data, nil
	}
	rows, err := s.overview(r.Context())
	if err != nil {
		return nil, err
	}
	s.cacheM.Lock()
	s.cache["overview"] = cached{at: time.Now(), data: rows}
	s.cacheM.Unlock()
	return rows, nil
}

// Overview is the overview page's data: every room, and the brands side
// by side when the last hour has items of two or more.
type Overview struct {
	Rooms  []RoomStatus  `json:"rooms"`
	Brands []BrandStatus `json:"brands,omitempty"`
}

// BrandStatus is one brand's last hour.
type BrandStatus struct {
	Name          string  `json:"name"`
	Role          string  `json:"role,omitempty"` // own or competitor (brands.own in config)
	Items         int     `json:"items"`
	ShareOfVoice  float64 `json:"share_of_voice"` // of all branded items
	NegativeShare float64 `json:"negative_share"`
	PositiveShare float64 `json:"positive_share"`
	// HotTerms are the brand's most said terms of the last ten minutes
	// (among the latest brandTermItems branded items).
	HotTerms []report.Term `json:"hot_terms,omitempty"`
}

func (s *Server) overview(ctx context.Context) (Overview, error) {
	db := s.ro.DB()
	now := s.opts.Now()
	ts := func(d time.Duration) string { return store.FormatTime(now.Add(-d)) }
	byKey := map[string]*RoomStatus{}
	var order []string
	get := func(source, room string) *RoomStatus {
		k := source + "\x00" + room
		if r, ok := byKey[k]; ok {
			return r
		}
		r := &RoomStatus{Source: source, Room: room, Light: "green", Viewers: -1, Health: "unknown", Live: "quiet"}
		byKey[k] = r
		order = append(order, k)
		return r
	}
	if err := s.tracker.update(ctx, db, now); err != nil {
		return Overview{}, err
	}
	brands := map[string]*BrandStatus{}
	brandScored := map[string][3]int{}
	for k, c := range s.tracker.counts(now) {
		if c.brand != "" && c.hour > 0 {
			b, ok := brands[c.brand]
			if !ok {
				b = &BrandStatus{Name: c.brand, Role: c.role}
				brands[c.brand] = b
			}
			b.Items += c.hour
			sc := brandScored[c.brand]
			brandScored[c.brand] = [3]int{sc[0] + c.scoredHour, sc[1] + c.negHour, sc[2] + c.posHour}
		}
		r := get(k[0], k[1])
		r.Platform = c.platform
		r.PerMin = float64(c.lastMin)
		r.Scored = c.scored5
		if c.scored5 > 0 {
			r.Negative = float64(c.neg5) / float64(c.scored5)
		}
		if c.scoredHour > 0 {
			r.Normal = float64(c.negHour) / float64(c.scoredHour)
		}
		if c.last10m > 0 {
			r.Live = "active"
		}
		if t, err := store.ParseTime(c.lastTS); err == nil {
			r.LastItemAgo = now.Sub(t).Round(time.Second).String()
		}
	}
	// Latest viewers and live status of every room that has samples in
	// the last hour.
	rows, err := db.QueryContext(ctx, `SELECT m.source, m.room, m.platform, m.name, m.value FROM metrics m
		JOIN (SELECT source, room, name, max(ts) AS ts FROM metrics WHERE ts >= ? AND name IN ('viewers', 'live_status') AND room != ''
		      GROUP BY source, room, name) l
		  ON m.source = l.source AND m.room = l.room AND m.name = l.name AND m.ts = l.ts`, ts(time.Hour))
	if err != nil {
		return Overview{}, fmt.Errorf("overview viewers: %w", err)
	}
	for rows.Next() {
		var source, room, platform, name string
		var v float64
		if err := rows.Scan(&source, &room, &platform, &name, &v); err != nil {
			rows.Close()
			return Overview{}, fmt.Errorf("overview viewers: %w", err)
		}
		r := get(source, room)
		if r.Platform == "" {
			r.Platform = platform
		}
		switch name {
		case "viewers":
			r.Viewers = v
		case "live_status":
			r.Live = map[bool]string{true: "live", false: "ended"}[v > 0]
		}
	}
	rows.Close()
	// Open alerts: a room's own, and a source's (room '') on each of its
	// rooms.
	rows, err = db.QueryContext(ctx, `SELECT source, room, severity, state FROM alerts WHERE state IN ('pending', 'firing')`)
	if err != nil {
		return Overview{}, fmt.Errorf("overview alerts: %w", err)
	}
	type open struct{ source, room, sev, state string }
	var opens []open
	for rows.Next() {
		var o open
		if err := rows.Scan(&o.source, &o.room, &o.sev, &o.state); err != nil {
			rows.Close()
			return Overview{}, fmt.Errorf("overview alerts: %w", err)
		}
		opens = append(opens, o)
	}
	rows.Close()
	// Health of every configured source, whether or not it said anything.
	hs, err := healthBySource(ctx, db)
	if err != nil {
		return Overview{}, err
	}
	for src := range hs {
		found := false
		for _, k := range order {
			if byKey[k].Source == src {
				found = true
			}
		}
		if !found {
			get(src, "")
		}
	}
	for _, o := range opens {
		if o.room == "" && o.source != "" {
			for _, k := range order {
				if byKey[k].Source == o.source {
					raise(byKey[k], o.sev, o.state)
				}
			}
			continue
		}
		matched := false
		for _, k := range order {
			r := byKey[k]
			if r.Room == o.room && (o.source == "" || r.Source == o.source) {
				raise(r, o.sev, o.state)
				matched = true
			}
		}
		if !matched {
			raise(get(o.source, o.room), o.sev, o.state)
		}
	}
	out := make([]RoomStatus, 0, len(order))
	for _, k := range order {
		r := byKey[k]
		if h, ok := hs[r.Source]; ok {
			r.Health, r.HealthNote = h[0], h[1]
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		li, lj := lightRank(out[i].Light), lightRank(out[j].Light)
		if li != lj {
			return li > lj
		}
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Room < out[j].Room
	})
	ov := Overview{Rooms: out}
	if len(brands) >= 2 {
		total := 0
		for _, b := range brands {
			total += b.Items
		}
		for name, b := range brands {
			b.ShareOfVoice = float64(b.Items) / float64(total)
			if sc := brandScored[name]; sc[0] > 0 {
				b.NegativeShare = float64(sc[1]) / float64(sc[0])
				b.PositiveShare = float64(sc[2]) / float64(sc[0])
			}
			ov.Brands = append(ov.Brands, *b)
		}
		// Your own brands first, then the competitors, each by volume.
		sort.Slice(ov.Brands, func(i, j int) bool {
			a, b := ov.Brands[i], ov.Brands[j]
			if (a.Role == "own") != (b.Role == "own") {
				return a.Role == "own"
			}
			return a.Items > b.Items || a.Items == b.Items && a.Name < b.Name
		})
		terms, err := brandTerms(ctx, db, now)
		if err != nil {
			return Overview{}, err
		}
		for i := range ov.Brands {
			ov.Brands[i].HotTerms = terms[ov.Brands[i].Name]
		}
	}
	return ov, nil
}

// brandTermItems and brandTermSpan bound what the overview reads for
// each brand's hot terms: the newest branded items of the last ten
// minutes, a fixed amount however busy the rooms.
const (
	brandTermItems = 5000
	brandTermSpan  = 10 * time.Minute
)

// brandTerms counts the terms of the newest branded items, by brand: the
// five most said of each.
func brandTerms(ctx context.Context, db *sql.DB, now time.Time) (map[string][]report.Term, error) {
	rows, err := db.QueryContext(ctx, `SELECT b, j.value, count(*) AS n, coalesce(sum(sentiment = 'negative'), 0)
		FROM (SELECT json_extract(labels, '$.brand') AS b, terms, sentiment FROM items INDEXED BY items_ts
			WHERE ts >= ? AND labels IS NOT NULL AND terms IS NOT NULL AND deleted_at IS NULL AND json_extract(labels, '$.brand') IS NOT NULL
			ORDER BY ts DESC LIMIT ?) i, json_each(i.terms) j
		WHERE b != '' GROUP BY b, j.value ORDER BY b, n DESC, j.value`, store.FormatTime(now.Add(-brandTermSpan)), brandTermItems)
	if err != nil {
		return nil, fmt.Errorf("overview: brand terms: %w", err)
	}
	defer rows.Close()
	out := map[string][]report.Term{}
	for rows.Next() {
		var b string
		var t report.Term
		if err := rows.Scan(&b, &t.Term, &t.Mentions, &t.Negative); err != nil {
			return nil, fmt.Errorf("overview: brand terms: %w", err)
		}
		if len(out[b]) < 5 {
			out[b] = append(out[b], t)
		}
	}
	return out, rows.Err()
}

func lightRank(l string) int {
	return map[string]int{"green": 0, "yellow": 1, "red": 2}[l]
}

func raise(r *RoomStatus, sev, state string) {
	r.OpenAlerts++
	l := "yellow"
	if state == "firing" && sev == "red" {
		l = "red"
	}
	if lightRank(l) > lightRank(r.Light) {
		r.Light = l
	}
}

func healthBySource(ctx context.Context, db *sql.DB) (map[string][2]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT source, coalesce(state, 'unknown'), coalesce(broken, last_error, '') FROM source_health`)
	if err != nil {
		return nil, fmt.Errorf("overview health: %w", err)
	}
	defer rows.Close()
	out := map[string][2]string{}
	for rows.Next() {
		var src, state, note string
		if err := rows.Scan(&src, &state, &note); err != nil {
			return nil, fmt.Errorf("overview health: %w", err)
		}
		if state == "ok" {
			note = ""
		}
		out[src] = [2]string{state, note}
	}
	return out, rows.Err()
}

type roomPage struct {
	Source, Room string
}

func roomKey(r *http.Request) (string, string, error) {
	q := r.URL.Query()
	src, room := q.Get("source"), q.Get("room")
	if src == "" {
		return "", "", badRequest{fmt.Errorf("give ?source= (and ?room=)")}
	}
	return src, room, nil
}

func (s *Server) roomPageData(r *http.Request) (any, error) {
	src, room, err := roomKey(r)
	if err != nil {
		return nil, err
	}
	return roomPage{Source: src, Room: room}, nil
}

// Message is one item as the live feed shows it.
type Message struct {
	ID        int64    `json:"id"`
	TS        string   `json:"ts"`
	Kind      string   `json:"kind"`
	Author    string   `json:"author"`
	Text      string   `json:"text"`
	Sentiment string   `json:"sentiment"`
	Value     float64  `json:"value,omitempty"`
	Keywords  []string `json:"keywords,omitempty"`
}

// Slice is one bucket of a room's live timeline.
type Slice struct {
	T         int64   `json:"t"` // unix seconds, the bucket's start
	Messages  int     `json:"messages"`
	Positive  int     `json:"positive"`
	Neutral   int     `json:"neutral"`
	Negative  int     `json:"negative"`
	Likes     int64   `json:"likes"`
	Gifts     int64   `json:"gifts"`
	GiftValue float64 `json:"gift_value"`
	Viewers   float64 `json:"viewers"` // latest sample in the bucket, -1 when none
}

// AlertMark is an alert on a room's timeline.
type AlertMark struct {
	ID       string `json:"id"`
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	State    string `json:"state"`
	Start    int64  `json:"start"`
	End      int64  `json:"end,omitempty"` // 0 while open
	Summary  string `json:"summary"`
}

// History is what the room view starts from before the live stream.
type History struct {
	Source   string      `json:"source"`
	Room     string      `json:"room"`
	Step     int64       `json:"step"` // seconds per slice
	Now      int64       `json:"now"`
	Slices   []Slice     `json:"slices"`
	Messages []Message   `json:"messages"` // newest last
	Alerts   []AlertMark `json:"alerts"`
	Terms    []TermCount `json:"terms"`
	LastID   int64       `json:"last_id"` // the stream continues after this row
}

// TermCount is a hot term and its mentions.
type TermCount struct {
	Term     string `json:"term"`
	Mentions int    `json:"mentions"`
	Negative int    `json:"negative"`
}

// historySpan and historyStep are the room view's window and slice.
const (
	historySpan = 15 * time.Minute
	historyStep = 10
)

func (s *Server) roomHistory(r *http.Request) (any, error) {
	src, room, err := roomKey(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	db := s.ro.DB()
	now := s.opts.Now()
	h := History{Source: src, Room: room, Step: historyStep, Now: now.Unix(), Slices: []Slice{}, Messages: []Message{}, Alerts: []AlertMark{}, Terms: []TermCount{}}
	// The stream continues from the newest row now, so nothing falls
	// between the history and the first update.
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM items`).Scan(&h.LastID); err != nil {
		return nil, fmt.Errorf("room: %w", err)
	}
	from := store.FormatTime(now.Add(-historySpan))
	rows, err := db.QueryContext(ctx, `SELECT CAST(strftime('%s', ts) AS INTEGER) / ?1 * ?1 AS b,
		sum(kind IN ('chat','comment','post','superchat')), sum(sentiment = 'positive'), sum(sentiment = 'neutral'), sum(sentiment = 'negative'),
		coalesce(sum(CASE WHEN kind = 'like' THEN max(coalesce(count, 1), 1) END), 0),
		coalesce(sum(CASE WHEN kind = 'gift' THEN max(coalesce(count, 1), 1) END), 0),
		coalesce(sum(CASE WHEN kind IN ('gift', 'superchat') THEN value END), 0)
		FROM items WHERE source = ?2 AND room = ?3 AND ts >= ?4 AND id <= ?5 AND deleted_at IS NULL GROUP BY b ORDER BY b`, historyStep, src, room, from, h.LastID)
	if err != nil {
		return nil, fmt.Errorf("room timeline: %w", err)
	}
	slices := map[int64]Slice{}
	for rows.Next() {
		var sl Slice
		if err := rows.Scan(&sl.T, &sl.Messages, &sl.Positive, &sl.Neutral, &sl.Negative, &sl.Likes, &sl.Gifts, &sl.GiftValue); err != nil {
			rows.Close()
			return nil, fmt.Errorf("room timeline: %w", err)
		}
		sl.Viewers = -1
		slices[sl.T] = sl
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("room timeline: %w", err)
	}
	rows, err = db.QueryContext(ctx, `SELECT CAST(strftime('%s', ts) AS INTEGER) / ?1 * ?1 AS b, value, max(ts) FROM metrics
		WHERE room = ?2 AND name = 'viewers' AND ts >= ?3 AND source = ?4 GROUP BY b ORDER BY b`, historyStep, room, from, src)
	if err != nil {
		return nil, fmt.Errorf("room viewers: %w", err)
	}
	for rows.Next() {
		var b int64
		var v float64
		var last string
		if err := rows.Scan(&b, &v, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("room viewers: %w", err)
		}
		sl, ok := slices[b]
		if !ok {
			sl = Slice{T: b}
		}
		sl.Viewers = v
		slices[b] = sl
	}
	rows.Close()
	for _, sl := range slices {
		h.Slices = append(h.Slices, sl)
	}
	sort.Slice(h.Slices, func(i, j int) bool { return h.Slices[i].T < h.Slices[j].T })
	if h.Messages, err = s.messages(ctx, `WHERE source = ? AND room = ? AND id <= ? AND kind IN ('chat','comment','post','superchat','gift') ORDER BY ts DESC, id DESC LIMIT 60`, src, room, h.LastID); err != nil {
		return nil, err
	}
	for i, j := 0, len(h.Messages)-1; i < j; i, j = i+1, j-1 {
		h.Messages[i], h.Messages[j] = h.Messages[j], h.Messages[i]
	}
	if h.Alerts, err = s.alertMarks(ctx, src, room, now.Add(-historySpan)); err != nil {
		return nil, err
	}
	if h.Terms, err = s.hotTerms(ctx, src, room, now.Add(-10*time.Minute)); err != nil {
		return nil, err
	}
	return h, nil
}

func (s *Server) messages(ctx context.Context, where string, args ...any) ([]Message, error) {
	rows, err := s.ro.DB().QueryContext(ctx, `SELECT id, ts, kind, coalesce(author, ''), coalesce(text, ''), coalesce(sentiment, ''), coalesce(value, 0),
		coalesce((SELECT group_concat(DISTINCT keyword) FROM item_groups g WHERE g.item_id = i.id AND g.keyword != ''), '')
		FROM items i `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		var m Message
		var kw string
		if err := rows.Scan(&m.ID, &m.TS, &m.Kind, &m.Author, &m.Text, &m.Sentiment, &m.Value, &kw); err != nil {
			return nil, fmt.Errorf("messages: %w", err)
		}
		if kw != "" {
			m.Keywords = strings.Split(kw, ",")
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *Server) alertMarks(ctx context.Context, src, room string, since time.Time) ([]AlertMark, error) {
	rows, err := s.ro.DB().QueryContext(ctx, `SELECT id, rule, severity, state, started_at, coalesce(resolved_at, ''), summary FROM alerts
		WHERE ((room = ? AND (source = ? OR source = '')) OR (room = '' AND source = ?))
		  AND (state IN ('pending', 'firing') OR resolved_at >= ?) ORDER BY started_at`, room, src, src, store.FormatTime(since))
	if err != nil {
		return nil, fmt.Errorf("alert marks: %w", err)
	}
	defer rows.Close()
	out := []AlertMark{}
	for rows.Next() {
		var a AlertMark
		var start, end string
		if err := rows.Scan(&a.ID, &a.Rule, &a.Severity, &a.State, &start, &end, &a.Summary); err != nil {
			return nil, fmt.Errorf("alert marks: %w", err)
		}
		if t, err := store.ParseTime(start); err == nil {
			a.Start = t.Unix()
		}
		if t, err := store.ParseTime(end); err == nil && end != "" {
			a.End = t.Unix()
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// hotTerms reads a room's hot terms from the per-minute rollups, from the
// minute that holds since on: what it costs follows the minutes and terms,
// not the items of a busy room.
func (s *Server) hotTerms(ctx context.Context, src, room string, since time.Time) ([]TermCount, error) {
	rows, err := s.ro.DB().QueryContext(ctx, `SELECT term, sum(mentions) AS n, sum(CASE WHEN sentiment = 'negative' THEN mentions ELSE 0 END)
		FROM room_minute_terms WHERE source = ? AND room = ? AND minute >= ?
		GROUP BY term HAVING n > 0 ORDER BY n DESC, term LIMIT 12`, src, room, store.RollupMinute(store.FormatTime(since)))
	if err != nil {
		return nil, fmt.Errorf("hot terms: %w", err)
	}
	defer rows.Close()
	out := []TermCount{}
	for rows.Next() {
		var t TermCount
		if err := rows.Scan(&t.Term, &t.Mentions, &t.Negative); err != nil {
			return nil, fmt.Errorf("hot terms: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// AlertRow is one alert as the alerts page shows it.
type AlertRow struct {
	ID, Rule, Severity, State, Source, Room, Summary string
	Started, Resolved                                time.Time
	Lasted                                           time.Duration
	Numbers                                          map[string]float64
	Samples                                          []string
	Silenced                                         string // id of a silence that matches it now
	AckedBy                                          string // who acknowledged it, "" while nobody has
	AckedAt                                          time.Time
	AckComment                                       string
}

type alertsPage struct {
	Pending, Firing, Resolved []AlertRow
	Silences                  []store.Silence
	Flash                     string
}

func (s *Server) alertsData(r *http.Request) (any, error) {
	ctx := r.Context()
	now := s.opts.Now()
	rows, err := s.ro.DB().QueryContext(ctx, `SELECT a.id, a.rule, a.severity, a.state, a.source, a.room, a.summary, a.started_at,
		coalesce(a.resolved_at, ''), a.labels,
		coalesce((SELECT e.numbers FROM alert_events e WHERE e.alert_id = a.id ORDER BY e.seq DESC LIMIT 1), '{}'),
		coalesce((SELECT e.samples FROM alert_events e WHERE e.alert_id = a.id AND e.samples != '[]' ORDER BY e.seq DESC LIMIT 1), '[]'),
		coalesce(a.acked_at, ''), a.acked_by, a.ack_comment
		FROM alerts a WHERE a.state IN ('pending', 'firing') OR a.started_at >= ?
		ORDER BY a.started_at DESC LIMIT 200`, store.FormatTime(now.Add(-24*time.Hour)))
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	defer rows.Close()
	sils, err := listSilences(ctx, s.ro.DB(), now)
	if err != nil {
		return nil, err
	}
	var p alertsPage
	p.Silences = sils
	p.Flash = r.URL.Query().Get("done")
	for rows.Next() {
		var a AlertRow
		var started, resolved, lbls, numbers, samples, acked string
		if err := rows.Scan(&a.ID, &a.Rule, &a.Severity, &a.State, &a.Source, &a.Room, &a.Summary, &started, &resolved, &lbls, &numbers, &samples,
			&acked, &a.AckedBy, &a.AckComment); err != nil {
			return nil, fmt.Errorf("alerts: %w", err)
		}
		if acked != "" {
			a.AckedAt, _ = store.ParseTime(acked)
		} else {
			a.AckedBy = ""
		}
		a.Started, _ = store.ParseTime(started)
		end := now
		if resolved != "" {
			a.Resolved, _ = store.ParseTime(resolved)
			end = a.Resolved
		}
		a.Lasted = end.Sub(a.Started)
		json.Unmarshal([]byte(numbers), &a.Numbers)
		a.Samples = sampleTexts(samples)
		var ls map[string]string
		json.Unmarshal([]byte(lbls), &ls)
		if ls == nil {
			ls = map[string]string{}
		}
		ls["rule"], ls["severity"], ls["state"] = a.Rule, a.Severity, a.State
		if _, ok := ls["room"]; !ok {
			ls["room"] = a.Room
		}
		for _, sil := range sils {
			if sil.ActiveAt(now) && sil.Matches(ls) {
				a.Silenced = sil.ID
			}
		}
		switch a.State {
		case "pending":
			p.Pending = append(p.Pending, a)
		case "firing":
			p.Firing = append(p.Firing, a)
		default:
			p.Resolved = append(p.Resolved, a)
		}
	}
	return p, rows.Err()
}

// sampleTexts reads the quoted messages an alert event keeps, whatever
// their shape (strings, or objects with a text field).
func sampleTexts(raw string) []string {
	var list []json.RawMessage
	if json.Unmarshal([]byte(raw), &list) != nil {
		return nil
	}
	var out []string
	for _, a := range list {
		var s string
		if json.Unmarshal(a, &s) == nil {
			out = append(out, s)
			continue
		}
		var o map[string]any
		if json.Unmarshal(a, &o) == nil {
			if t, ok := o["text"].(string); ok {
				if au, ok := o["author"].(string); ok && au != "" {
					t = au + ": " + t
				}
				out = append(out, t)
			}
		}
		if len(out) == 5 {
			break
		}
	}
	return out
}

func listSilences(ctx context.Context, db *sql.DB, now time.Time) ([]store.Silence, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, matchers, starts_at, ends_at, comment, created_by FROM silences
		WHERE expired_at IS NULL AND ends_at > ? ORDER BY ends_at`, store.FormatTime(now))
	if err != nil {
		return nil, fmt.Errorf("silences: %w", err)
	}
	defer rows.Close()
	var out []store.Silence
	for rows.Next() {
		var sil store.Silence
		var ms, start, end string
		if err := rows.Scan(&sil.ID, &ms, &start, &end, &sil.Comment, &sil.CreatedBy); err != nil {
			return nil, fmt.Errorf("silences: %w", err)
		}
		var list []string
		json.Unmarshal([]byte(ms), &list)
		if m, err := labels.ParseAll(list); err == nil {
			sil.Matchers = m
		} else {
			sil.Unreadable = ms
		}
		sil.StartsAt, _ = store.ParseTime(start)
		sil.EndsAt, _ = store.ParseTime(end)
		out = append(out, sil)
	}
	return out, rows.Err()
}

// silence adds, through the store, the silence `lookout silence add
// rule=R room=X --for D` would: the alert's rule and room (and source,
// for an alert of a whole source).
func (s *Server) silence(w http.ResponseWriter, r *http.Request) {
	if err := s.checkPost(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	ctx := r.Context()
	id := r.PostFormValue("alert")
	var rule, room, source string
	if err := s.ro.DB().QueryRowContext(ctx, `SELECT rule, room, source FROM alerts WHERE id = ?`, id).Scan(&rule, &room, &source); err != nil {
		http.Error(w, fmt.Sprintf("no alert %q: %v", id, err), http.StatusNotFound)
		return
	}
	dur, err := time.ParseDuration(r.PostFormValue("for"))
	if err != nil || dur <= 0 || dur > 7*24*time.Hour {
		http.Error(w, "for: a duration between 1m and 168h, e.g. 2h", http.StatusBadRequest)
		return
	}
	args := []string{"rule=" + strconv.Quote(rule), "room=" + strconv.Quote(room)}
	if room == "" && source != "" {
		args = append(args, "source="+strconv.Quote(source))
	}
	ms, err := labels.ParseAll(args)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	comment := strings.TrimSpace(r.PostFormValue("comment"))
	if comment == "" {
		comment = "silenced from the dashboard"
	}
	now := s.opts.Now()
	sil, err := s.opts.Store.AddSilence(ctx, store.Silence{Matchers: ms, EndsAt: now.Add(dur), Comment: comment, CreatedBy: "dashboard"}, now)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("silence added from the dashboard", "id", sil.ID, "matchers", sil.MatchersString(), "until", store.FormatTime(sil.EndsAt))
	http.Redirect(w, r, "/alerts?done="+url.QueryEscape("silenced "+sil.MatchersString()+" until "+sil.EndsAt.Local().Format("15:04")), http.StatusSeeOther)
}

// ack acknowledges an alert through the store, as `lookout ack` does.
func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	if err := s.checkPost(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	id := r.PostFormValue("alert")
	comment := strings.TrimSpace(r.PostFormValue("comment"))
	ack, isNew, err := s.opts.Store.AckAlert(r.Context(), id, "dashboard", comment, s.opts.Now())
	if errors.Is(err, store.ErrNoAlert) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	msg := "acknowledged " + id
	if !isNew {
		msg = id + " was already acknowledged by " + ack.By
	} else {
		s.log.Info("alert acknowledged from the dashboard", "alert", id)
	}
	http.Redirect(w, r, "/alerts?done="+url.QueryEscape(msg), http.StatusSeeOther)
}

func (s *Server) expire(w http.ResponseWriter, r *http.Request) {
	if err := s.checkPost(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	id := r.PostFormValue("id")
	if err := s.opts.Store.ExpireSilence(r.Context(), id, s.opts.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, "/alerts?done="+url.QueryEscape("expired silence "+id), http.StatusSeeOther)
}

// SearchQuery is the search form.
type SearchQuery struct {
	Q, Platform, Room, Sentiment, From, To string
}

type searchPage struct {
	Query     SearchQuery
	Results   []Message
	Rooms     []string
	Platforms []string
	Searched  bool
	Limit     int
}

const searchLimit = 200

// searchData finds stored items by words, platform, room, sentiment and
// time. It is a plain query: the time range walks the ts index and the
// words are matched with instr (no full-text index).
func (s *Server) searchData(r *http.Request) (any, error) {
	q := r.URL.Query()
	sq := SearchQuery{Q: strings.TrimSpace(q.Get("q")), Platform: q.Get("platform"), Room: q.Get("room"), Sentiment: q.Get("sentiment"), From: q.Get("from"), To: q.Get("to")}
	p := searchPage{Query: sq, Limit: searchLimit}
	ctx := r.Context()
	db := s.ro.DB()
	now := s.opts.Now()
	for _, f := range []struct {
		col string
		dst *[]string
	}{{"room", &p.Rooms}, {"platform", &p.Platforms}} {
		rows, err := db.QueryContext(ctx, `SELECT DISTINCT `+f.col+` FROM items WHERE ts >= ? ORDER BY 1 LIMIT 200`, store.FormatTime(now.Add(-7*24*time.Hour)))
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		for rows.Next() {
			var v string
			rows.Scan(&v)
			*f.dst = append(*f.dst, v)
		}
		rows.Close()
	}
	if len(q) == 0 {
		return p, nil
	}
	p.Searched = true
	from, to := now.Add(-24*time.Hour), now
	parse := func(s string, def time.Time) (time.Time, error) {
		if s == "" {
			return def, nil
		}
		for _, l := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
			if t, err := time.ParseInLocation(l, s, time.Local); err == nil {
				return t, nil
			}
		}
		if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil {
			return now.Add(-d), nil
		}
		return def, badRequest{fmt.Errorf("search: cannot read time %q (2026-11-25T12:00, or 2h for two hours ago)", s)}
	}
	var err error
	if from, err = parse(sq.From, from); err != nil {
		return nil, err
	}
	if to, err = parse(sq.To, to); err != nil {
		return nil, err
	}
	where := []string{"ts >= ?", "ts < ?"}
	args := []any{store.FormatTime(from), store.FormatTime(to)}
	add := func(cond string, v string) {
		if v != "" {
			where = append(where, cond)
			args = append(args, v)
		}
	}
	add("platform = ?", sq.Platform)
	add("room = ?", sq.Room)
	switch sq.Sentiment {
	case "", "positive", "neutral", "negative":
		add("sentiment = ?", sq.Sentiment)
	default:
		return nil, badRequest{fmt.Errorf("search: sentiment must be positive, neutral or negative")}
	}
	for _, w := range strings.Fields(sq.Q) {
		add("instr(lower(text), lower(?)) > 0", w)
	}
	res, err := s.messages(ctx, `WHERE `+strings.Join(where, " AND ")+` ORDER BY ts DESC LIMIT `+strconv.Itoa(searchLimit), args...)
	if err != nil {
		return nil, err
	}
	p.Results = res
	return p, nil
}
