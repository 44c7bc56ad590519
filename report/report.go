// Package report computes the post-live review (直播复盘) of each room from
// the SQLite log (the per-minute rollups of migration 0012, and items for
// what rollups cannot say): audience, interaction, sentiment against the
// room's own normal, what people praised and complained about, hot terms,
// alerts and gifts. It only reads; the renderers (Markdown, JSON, HTML) live beside it
// and take a *Report.
package report

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"lookout/store"
)

// Options select what a report covers.
type Options struct {
	// Room keeps only the rooms whose room id or source id equals it; ""
	// keeps every room with items or samples in the window.
	Room     string
	From, To time.Time
	// Location is the time zone the renderers show times in (default UTC).
	Location *time.Location
	// Now is when the report is generated (default time.Now()); it closes
	// alerts still open.
	Now time.Time
	// Examples is how many example messages each theme carries (default 2).
	Examples int
}

// NormalDays is how far before a report's window a room's normal negative
// share is measured.
const NormalDays = 7

// Report is the review of every selected room over one window.
type Report struct {
	From      time.Time      `json:"from"`
	To        time.Time      `json:"to"`
	Generated time.Time      `json:"generated"`
	Location  *time.Location `json:"-"`
	// Start and End bound the data inside the window (the charts' span):
	// a 24-hour report of a two-hour show draws the two hours.
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Bucket Duration  `json:"bucket"` // width of every time series' buckets
	Rooms  []Room    `json:"rooms"`
	// Brands compares the brands items carry (their source's `brand`
	// label) when there are at least two; empty with --room.
	Brands []Brand `json:"brands,omitempty"`
}

// Brand is one brand's share of the conversation.
type Brand struct {
	Name string `json:"name"`
	// Role is own or competitor (the items' brand_role label, from
	// brands.own in config); "" when the items do not say.
	Role     string `json:"role,omitempty"`
	Items    int    `json:"items"`
	Scored   int    `json:"scored"`
	Positive int    `json:"positive"`
	Negative int    `json:"negative"`
	// ShareOfVoice is the brand's items over all branded items.
	ShareOfVoice  float64 `json:"share_of_voice"`
	NegativeShare float64 `json:"negative_share"`
	PositiveShare float64 `json:"positive_share"`
	HotTerms      []Term  `json:"hot_terms"`
}

// Duration is a time.Duration that reads as "5m0s" in JSON.
type Duration time.Duration

// MarshalText renders the duration as Go writes it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D is the plain duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Room is one room's review.
type Room struct {
	Source   string   `json:"source"`
	Platform string   `json:"platform"`
	Room     string   `json:"room"`
	Summary  []string `json:"summary"` // short plain-language sentences

	Items    int `json:"items"`    // every item (chat, gifts, likes, posts, …)
	Messages int `json:"messages"` // chat lines, comments, posts, super chats

	Viewers  Viewers `json:"viewers"`
	Audience []Point `json:"audience"` // max viewers per bucket

	Interactions int64 `json:"interactions"` // messages + likes + gifts (by count)
	// InteractionRate is interactions per average viewer over the window;
	// 0 when the room reports no viewers.
	InteractionRate float64 `json:"interaction_rate"`

	Sentiment Sentiment `json:"sentiment"`
	Timeline  []Bucket  `json:"timeline"`

	Praise     []Theme   `json:"praise"`
	Complaints []Theme   `json:"complaints"`
	HotTerms   []Term    `json:"hot_terms"`
	Alerts     []Alert   `json:"alerts"`
	Gifts      GiftTotal `json:"gifts"`

	allTerms []Term // every hot term of the window, for the brand comparison
}

// Viewers sums up the viewer samples.
type Viewers struct {
	Samples int       `json:"samples"`
	Peak    float64   `json:"peak"`
	PeakAt  time.Time `json:"peak_at"`
	Average float64   `json:"average"`
	Last    float64   `json:"last"`
}

// Point is one bucket of a numeric series.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// Sentiment is the window's verdicts against the room's normal.
type Sentiment struct {
	Scored        int     `json:"scored"`
	Positive      int     `json:"positive"`
	Negative      int     `json:"negative"`
	NegativeShare float64 `json:"negative_share"`
	// Normal is the room's usual negative share; NormalBasis says where
	// it comes from ("previous 7 days" or "median of this window").
	Normal      float64 `json:"normal"`
	NormalBasis string  `json:"normal_basis"`
	// Worst is the bucket with the highest negative share among those
	// with at least minBucketItems scored items.
	Worst *Bucket `json:"worst,omitempty"`
}

// Bucket is one slice of the timeline.
type Bucket struct {
	T             time.Time `json:"t"`
	Messages      int       `json:"messages"`
	Scored        int       `json:"scored"`
	Positive      int       `json:"positive"`
	Negative      int       `json:"negative"`
	NegativeShare float64   `json:"negative_share"`
}

// Theme is a term people praised or complained about, with examples.
type Theme struct {
	Term     string    `json:"term"` // "" when no hot terms are stored: the examples are the strongest messages
	Mentions int       `json:"mentions"`
	Examples []Message `json:"examples"`
}

// Message is one stored item quoted in a report.
type Message struct {
	TS     time.Time `json:"ts"`
	Author string    `json:"author"`
	Text   string    `json:"text"`
	Score  float64   `json:"score"`
}

// Term is a hot term and how often it was said.
type Term struct {
	Term     string `json:"term"`
	Mentions int    `json:"mentions"`
	Negative int    `json:"negative"`
}

// Alert is an alert that fired in the window.
type Alert struct {
	Rule      string    `json:"rule"`
	Severity  string    `json:"severity"`
	State     string    `json:"state"`
	StartedAt time.Time `json:"started_at"`
	// ResolvedAt is zero while the alert is open; Duration then runs to
	// the report's generation time.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	Duration   Duration  `json:"duration"`
	Summary    string    `json:"summary"`
}

// GiftTotal is what the audience paid.
type GiftTotal struct {
	Gifts          int64   `json:"gifts"` // number of gifts (by count)
	GiftValue      float64 `json:"gift_value"`
	SuperChats     int     `json:"super_chats"`
	SuperChatValue float64 `json:"super_chat_value"`
}

// minBucketItems is how many scored items a bucket needs before its
// negative share counts as the worst moment or towards the normal.
const minBucketItems = 5

// minNormalItems is how many scored items the previous days need before
// they make the room's normal.
const minNormalItems = 30

// Build computes the report from the database at dbPath, opened read-only:
// it never creates or changes a file.
func Build(ctx context.Context, dbPath string, opts Options) (*Report, error) {
	st, err := store.OpenReadOnly(ctx, dbPath)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer st.Close()
	return FromDB(ctx, st.DB(), opts)
}

// FromDB computes the report from an open database.
func FromDB(ctx context.Context, db *sql.DB, opts Options) (*Report, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.To.IsZero() {
		opts.To = opts.Now
	}
	if opts.From.IsZero() {
		opts.From = opts.To.Add(-24 * time.Hour)
	}
	if !opts.To.After(opts.From) {
		return nil, fmt.Errorf("report: --to %s is not after --from %s", store.FormatTime(opts.To), store.FormatTime(opts.From))
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Examples <= 0 {
		opts.Examples = 2
	}
	r := &Report{From: opts.From.UTC(), To: opts.To.UTC(), Generated: opts.Now.UTC(), Location: opts.Location}
	q := &querier{ctx: ctx, db: db, from: store.FormatTime(opts.From), to: store.FormatTime(opts.To), opts: opts}
	rooms, start, end, err := q.rooms()
	if err != nil {
		return nil, err
	}
	r.Start, r.End = r.From, r.To
	if !start.IsZero() {
		b := BucketFor(end.Sub(start))
		r.Start = maxTime(start.Truncate(b), r.From)
		r.End = minTime(end.Truncate(b).Add(b), r.To)
	}
	r.Bucket = Duration(BucketFor(r.End.Sub(r.Start)))
	q.bucket = int64(r.Bucket.D() / time.Second)
	for _, rm := range rooms {
		if err := q.fill(&rm); err != nil {
			return nil, fmt.Errorf("report: room %s/%s: %w", rm.Source, rm.Room, err)
		}
		rm.Summary = summarize(&rm, opts.Location)
		r.Rooms = append(r.Rooms, rm)
	}
	if opts.Room == "" {
		if r.Brands, err = q.brands(r.Rooms); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// brands compares the brands of the window's rooms: volume, share of
// voice, sentiment and hot terms, side by side; nil with fewer than two
// brands. A room's figures are its report's (from the per-minute
// rollups), and its brand and brand_role are the labels of its newest item
// in the window: the labels come from the source's and the room's
// configuration, the same for all of a room's items, so a room whose brand
// changed within the window (a configuration change) counts wholly under
// the newer one.
func (q *querier) brands(rooms []Room) ([]Brand, error) {
	var out []Brand
	idx := map[string]int{}
	terms := map[string]map[string]*Term{}
	total := 0
	for i := range rooms {
		rm := &rooms[i]
		if rm.Items == 0 {
			continue
		}
		var name, role sql.NullString
		err := q.db.QueryRowContext(q.ctx, `SELECT json_extract(labels, '$.brand'), json_extract(labels, '$.brand_role') FROM items
			WHERE source = ? AND room = ? AND ts >= ? AND ts < ? AND deleted_at IS NULL ORDER BY ts DESC LIMIT 1`,
			rm.Source, rm.Room, q.from, q.to).Scan(&name, &role)
		if errors.Is(err, sql.ErrNoRows) || err == nil && name.String == "" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("report: brands: %w", err)
		}
		j, ok := idx[name.String]
		if !ok {
			j = len(out)
			idx[name.String] = j
			out = append(out, Brand{Name: name.String})
			terms[name.String] = map[string]*Term{}
		}
		b := &out[j]
		b.Role = max(b.Role, role.String)
		b.Items += rm.Items
		b.Scored += rm.Sentiment.Scored
		b.Positive += rm.Sentiment.Positive
		b.Negative += rm.Sentiment.Negative
		total += rm.Items
		for _, t := range rm.allTerms {
			bt := terms[name.String][t.Term]
			if bt == nil {
				bt = &Term{Term: t.Term}
				terms[name.String][t.Term] = bt
			}
			bt.Mentions += t.Mentions
			bt.Negative += t.Negative
		}
	}
	if len(out) < 2 {
		return nil, nil
	}
	// Your own brands first, then the competitors, each by volume.
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Items > b.Items || a.Items == b.Items && a.Name < b.Name
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Role == "own" && out[j].Role != "own" })
	for i := range out {
		b := &out[i]
		b.ShareOfVoice = float64(b.Items) / float64(total)
		if b.Scored > 0 {
			b.NegativeShare = float64(b.Negative) / float64(b.Scored)
			b.PositiveShare = float64(b.Positive) / float64(b.Scored)
		}
		for _, t := range terms[b.Name] {
			b.HotTerms = append(b.HotTerms, *t)
		}
		sort.Slice(b.HotTerms, func(i, j int) bool {
			x, y := b.HotTerms[i], b.HotTerms[j]
			return x.Mentions > y.Mentions || x.Mentions == y.Mentions && x.Term < y.Term
		})
		b.HotTerms = b.HotTerms[:min(5, len(b.HotTerms))]
	}
	return out, nil
}

// BucketFor picks a timeline bucket width that gives a window of span
// about 30 to 120 points.
func BucketFor(span time.Duration) time.Duration {
	for _, b := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
		10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour} {
		if span/b <= 120 {
			return b
		}
	}
	return 24 * time.Hour
}

type querier struct {
	ctx      context.Context
	db       *sql.DB
	from, to string
	bucket   int64 // seconds
	opts     Options
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// rooms lists the rooms with items or samples in the window, and the
// first and last timestamp among them. It walks the (source, room, ts)
// index from one room to the next instead of reading the window's rows, so
// it costs a few seeks per room however busy the rooms are.
func (q *querier) rooms() ([]Room, time.Time, time.Time, error) {
	var out []Room
	var start, end time.Time
	seen := map[[2]string]int{}
	add := func(source, platform, room, first, last string) {
		k := [2]string{source, room}
		i, ok := seen[k]
		if !ok {
			i = len(out)
			seen[k] = i
			out = append(out, Room{Source: source, Platform: platform, Room: room})
		}
		if out[i].Platform == "" {
			out[i].Platform = platform
		}
		f, l := parseTS(first), parseTS(last)
		if start.IsZero() || f.Before(start) {
			start = f
		}
		if l.After(end) {
			end = l
		}
	}
	keep := func(source, room string) bool {
		return q.opts.Room == "" || q.opts.Room == source || q.opts.Room == room
	}
	var source, room string
	first := true
	for {
		var err error
		if first {
			err = q.db.QueryRowContext(q.ctx, `SELECT source, room FROM items ORDER BY source, room LIMIT 1`).Scan(&source, &room)
			first = false
		} else {
			err = q.db.QueryRowContext(q.ctx, `SELECT source, room FROM items WHERE (source, room) > (?, ?) ORDER BY source, room LIMIT 1`,
				source, room).Scan(&source, &room)
		}
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return nil, start, end, fmt.Errorf("report: list rooms: %w", err)
		}
		if !keep(source, room) {
			continue
		}
		var f, l sql.NullString
		// Two seeks: min(ts) and max(ts) in one query would read the range.
		if err := q.db.QueryRowContext(q.ctx, `SELECT
			(SELECT ts FROM items WHERE source = ?1 AND room = ?2 AND ts >= ?3 AND ts < ?4 ORDER BY ts LIMIT 1),
			(SELECT ts FROM items WHERE source = ?1 AND room = ?2 AND ts >= ?3 AND ts < ?4 ORDER BY ts DESC LIMIT 1)`,
			source, room, q.from, q.to).Scan(&f, &l); err != nil {
			return nil, start, end, fmt.Errorf("report: list rooms: %w", err)
		}
		if !f.Valid {
			continue
		}
		var platform string
		if err := q.db.QueryRowContext(q.ctx, `SELECT platform FROM items WHERE source = ? AND room = ? AND ts >= ? LIMIT 1`,
			source, room, f.String).Scan(&platform); err != nil {
			return nil, start, end, fmt.Errorf("report: list rooms: %w", err)
		}
		add(source, platform, room, f.String, l.String)
	}
	// Rooms that only reported samples (viewers of a silent room).
	rows, err := q.db.QueryContext(q.ctx, `SELECT source, max(platform), room, min(ts), max(ts) FROM metrics
		WHERE ts >= ? AND ts < ? AND room != '' GROUP BY source, room`, q.from, q.to)
	if err != nil {
		return nil, start, end, fmt.Errorf("report: list rooms: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var src, platform, rm, f, l string
		if err := rows.Scan(&src, &platform, &rm, &f, &l); err != nil {
			return nil, start, end, fmt.Errorf("report: list rooms: %w", err)
		}
		if keep(src, rm) {
			add(src, platform, rm, f, l)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, start, end, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Room < out[j].Room
	})
	return out, start, end, nil
}

// fill computes a room's figures from its per-minute rollups (timeline,
// totals, normal, terms by sentiment; items only at the window's partial
// minutes) and its strongest messages of each polarity.
func (q *querier) fill(r *Room) error {
	key := []any{r.Source, r.Room, q.from, q.to}
	var likes, gifts int64
	if err := q.timeline(r, &likes, &gifts); err != nil {
		return err
	}
	r.Gifts.Gifts = gifts
	r.Interactions = int64(r.Messages) + likes + gifts
	if r.Sentiment.Scored > 0 {
		r.Sentiment.NegativeShare = float64(r.Sentiment.Negative) / float64(r.Sentiment.Scored)
	}
	if err := q.viewers(r, key); err != nil {
		return err
	}
	if r.Viewers.Average > 0 {
		r.InteractionRate = float64(r.Interactions) / r.Viewers.Average
	}
	if err := q.normal(r); err != nil {
		return err
	}
	if err := q.terms(r); err != nil {
		return err
	}
	var perr, cerr error
	r.Praise, perr = q.examples(key, "positive", "DESC", r.Praise, r.Sentiment.Positive)
	r.Complaints, cerr = q.examples(key, "negative", "ASC", r.Complaints, r.Sentiment.Negative)
	if err := errors.Join(perr, cerr); err != nil {
		return err
	}
	return q.alerts(r)
}

func (q *querier) viewers(r *Room, key []any) error {
	var n int
	var avg, peak sql.NullFloat64
	err := q.db.QueryRowContext(q.ctx, `SELECT count(*), avg(value), max(value) FROM metrics
		WHERE source = ? AND room = ? AND ts >= ? AND ts < ? AND name = 'viewers'`, key...).Scan(&n, &avg, &peak)
	if err != nil {
		return fmt.Errorf("viewers: %w", err)
	}
	r.Viewers.Samples = n
	if n == 0 {
		return nil
	}
	r.Viewers.Average, r.Viewers.Peak = avg.Float64, peak.Float64
	var peakAt, lastTS string
	if err := q.db.QueryRowContext(q.ctx, `SELECT ts FROM metrics WHERE source = ? AND room = ? AND ts >= ? AND ts < ?
		AND name = 'viewers' AND value = ? ORDER BY ts LIMIT 1`, append(key, peak.Float64)...).Scan(&peakAt); err != nil {
		return fmt.Errorf("peak viewers: %w", err)
	}
	if err := q.db.QueryRowContext(q.ctx, `SELECT ts, value FROM metrics WHERE source = ? AND room = ? AND ts >= ? AND ts < ?
		AND name = 'viewers' ORDER BY ts DESC LIMIT 1`, key...).Scan(&lastTS, &r.Viewers.Last); err != nil {
		return fmt.Errorf("last viewers: %w", err)
	}
	r.Viewers.PeakAt = parseTS(peakAt)
	rows, err := q.db.QueryContext(q.ctx, `SELECT CAST(strftime('%s', ts) AS INTEGER) / ? AS b, max(value) FROM metrics
		WHERE source = ? AND room = ? AND ts >= ? AND ts < ? AND name = 'viewers' GROUP BY b ORDER BY b`,
		append([]any{q.bucket}, key...)...)
	if err != nil {
		return fmt.Errorf("audience curve: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b int64
		var v float64
		if err := rows.Scan(&b, &v); err != nil {
			return fmt.Errorf("audience curve: %w", err)
		}
		r.Audience = append(r.Audience, Point{T: time.Unix(b*q.bucket, 0).UTC(), V: v})
	}
	return rows.Err()
}

// window splits [lo, hi) into the whole UTC minutes that the rollups
// (room_minutes, room_minute_terms) answer for, as minute keys
// [minLo, minHi), and the partial minutes at either end, which are read
// from items: a report's numbers are exact whatever its bounds.
func window(lo, hi time.Time) (minLo, minHi string, edges [][2]string) {
	first := lo.UTC().Truncate(time.Minute)
	if first.Before(lo) {
		first = first.Add(time.Minute)
	}
	last := hi.UTC().Truncate(time.Minute)
	if !first.Before(last) {
		return "", "", [][2]string{{store.FormatTime(lo), store.FormatTime(hi)}}
	}
	if lo.Before(first) {
		edges = append(edges, [2]string{store.FormatTime(lo), store.FormatTime(first)})
	}
	if last.Before(hi) {
		edges = append(edges, [2]string{store.FormatTime(last), store.FormatTime(hi)})
	}
	return store.RollupMinute(store.FormatTime(first)), store.RollupMinute(store.FormatTime(last)), edges
}

// rollupRows is the query of the room's counts by time, kind and
// sentiment over [lo, hi): per-minute rollups for the whole minutes, items
// for the partial ones at the ends, or items by second (the timestamp's
// first 19 characters) when bySecond.
func rollupRows(source, room string, lo, hi time.Time, bySecond bool) (string, []any) {
	const fromItems = `SELECT %s AS t, kind, coalesce(sentiment, '') AS sentiment, count(*) AS items,
		sum(max(coalesce(count, 1), 1)) AS units, coalesce(sum(value), 0) AS value
		FROM items WHERE source = ? AND room = ? AND ts >= ? AND ts < ? AND deleted_at IS NULL GROUP BY 1, 2, 3`
	if bySecond {
		return fmt.Sprintf(fromItems, "substr(ts, 1, 19)") + ` ORDER BY 1`,
			[]any{source, room, store.FormatTime(lo), store.FormatTime(hi)}
	}
	q, args := rollupUnion(`SELECT minute AS t, kind, sentiment, items, units, value FROM room_minutes
		WHERE source = ? AND room = ? AND minute >= ? AND minute < ?`,
		fmt.Sprintf(fromItems, "substr(ts, 1, 16) || ':00Z'"), source, room, lo, hi)
	return q + ` ORDER BY 1`, args
}

// rollupUnion joins a query of a rollup table over the whole minutes of
// [lo, hi) with the same query of items over each partial minute at the
// ends (see window). Both take source, room and a lower and upper bound.
func rollupUnion(rollup, fromItems, source, room string, lo, hi time.Time) (string, []any) {
	minLo, minHi, edges := window(lo, hi)
	q := rollup
	args := []any{source, room, minLo, minHi}
	for _, e := range edges {
		q += " UNION ALL " + fromItems
		args = append(args, source, room, e[0], e[1])
	}
	return q, args
}

// messageKind says whether items of kind say something: chat lines,
// comments, posts and super chats.
func messageKind(kind string) bool {
	switch kind {
	case "chat", "comment", "post", "superchat":
		return true
	}
	return false
}

// timeline sums the room's per-minute rollups (per-second item counts
// for buckets under a minute) into the buckets and the room's totals.
// Deleted items are left out, and edited ones count as they now read.
func (q *querier) timeline(r *Room, likes, gifts *int64) error {
	bySecond := q.bucket < 60
	query, args := rollupRows(r.Source, r.Room, q.opts.From, q.opts.To, bySecond)
	rows, err := q.db.QueryContext(q.ctx, query, args...)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	defer rows.Close()
	layout := "2006-01-02T15:04:05Z"
	if bySecond {
		layout = "2006-01-02T15:04:05"
	}
	for rows.Next() {
		var t0, kind, sent string
		var n, units int64
		var value float64
		if err := rows.Scan(&t0, &kind, &sent, &n, &units, &value); err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
		if n == 0 {
			continue // every item of the key was deleted or edited away
		}
		t, err := time.Parse(layout, t0)
		if err != nil {
			return fmt.Errorf("timeline: bad timestamp %q: %w", t0, err)
		}
		var k Bucket
		if messageKind(kind) {
			k.Messages = int(n)
		}
		if sent != "" {
			k.Scored = int(n)
		}
		switch sent {
		case "positive":
			k.Positive = int(n)
		case "negative":
			k.Negative = int(n)
		}
		switch kind {
		case "like":
			*likes += units
		case "gift":
			*gifts += units
			r.Gifts.GiftValue += value
		case "superchat":
			r.Gifts.SuperChats += int(n)
			r.Gifts.SuperChatValue += value
		}
		r.Items += int(n)
		r.Messages += k.Messages
		r.Sentiment.Scored += k.Scored
		r.Sentiment.Positive += k.Positive
		r.Sentiment.Negative += k.Negative
		k.T = time.Unix(t.Unix()/q.bucket*q.bucket, 0).UTC()
		if last := len(r.Timeline) - 1; last >= 0 && r.Timeline[last].T.Equal(k.T) {
			p := &r.Timeline[last]
			p.Messages += k.Messages
			p.Scored += k.Scored
			p.Positive += k.Positive
			p.Negative += k.Negative
		} else {
			r.Timeline = append(r.Timeline, k)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	for i := range r.Timeline {
		k := &r.Timeline[i]
		if k.Scored > 0 {
			k.NegativeShare = float64(k.Negative) / float64(k.Scored)
		}
		if k.Scored >= minBucketItems && (r.Sentiment.Worst == nil || k.NegativeShare > r.Sentiment.Worst.NegativeShare) {
			w := *k
			r.Sentiment.Worst = &w
		}
	}
	return nil
}

// normal is the room's negative share over its scored messages in the
// NormalDays before the window (from the rollups); with too little
// history there, the median share of the window's buckets.
func (q *querier) normal(r *Room) error {
	query, args := rollupRows(r.Source, r.Room, q.opts.From.Add(-NormalDays*24*time.Hour), q.opts.From, false)
	var scored, neg int64
	err := q.db.QueryRowContext(q.ctx, `SELECT coalesce(sum(items), 0), coalesce(sum(CASE WHEN sentiment = 'negative' THEN items END), 0)
		FROM (`+query+`) WHERE sentiment != ''`, args...).Scan(&scored, &neg)
	if err != nil {
		return fmt.Errorf("normal: %w", err)
	}
	if scored >= minNormalItems {
		r.Sentiment.Normal = float64(neg) / float64(scored)
		r.Sentiment.NormalBasis = fmt.Sprintf("previous %d days", NormalDays)
		return nil
	}
	var shares []float64
	for _, b := range r.Timeline {
		if b.Scored >= minBucketItems {
			shares = append(shares, b.NegativeShare)
		}
	}
	if len(shares) == 0 {
		r.Sentiment.Normal = r.Sentiment.NegativeShare
		r.Sentiment.NormalBasis = "this window"
		return nil
	}
	r.Sentiment.Normal = median(shares)
	r.Sentiment.NormalBasis = "median of this window"
	return nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// terms counts the room's hot terms by sentiment in one pass: the hot
// terms overall, and the themes (without examples yet) of praise and
// complaint.
func (q *querier) terms(r *Room) error {
	query, args := rollupUnion(`SELECT term, sentiment, mentions FROM room_minute_terms
		WHERE source = ? AND room = ? AND minute >= ? AND minute < ?`,
		`SELECT j.value, coalesce(i.sentiment, ''), 1 FROM items i, json_each(i.terms) j
		WHERE i.source = ? AND i.room = ? AND i.ts >= ? AND i.ts < ? AND i.terms IS NOT NULL AND i.deleted_at IS NULL`,
		r.Source, r.Room, q.opts.From, q.opts.To)
	rows, err := q.db.QueryContext(q.ctx, `SELECT term, sentiment, sum(mentions) AS n FROM (`+query+`)
		GROUP BY term, sentiment HAVING n > 0`, args...)
	if err != nil {
		return fmt.Errorf("hot terms: %w", err)
	}
	defer rows.Close()
	all := map[string]*Term{}
	var pos, neg []Theme
	for rows.Next() {
		var term, sent string
		var n int
		if err := rows.Scan(&term, &sent, &n); err != nil {
			return fmt.Errorf("hot terms: %w", err)
		}
		t, ok := all[term]
		if !ok {
			t = &Term{Term: term}
			all[term] = t
		}
		t.Mentions += n
		switch sent {
		case "negative":
			t.Negative += n
			neg = append(neg, Theme{Term: term, Mentions: n})
		case "positive":
			pos = append(pos, Theme{Term: term, Mentions: n})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("hot terms: %w", err)
	}
	for _, t := range all {
		r.HotTerms = append(r.HotTerms, *t)
	}
	sort.Slice(r.HotTerms, func(i, j int) bool {
		a, b := r.HotTerms[i], r.HotTerms[j]
		return a.Mentions > b.Mentions || a.Mentions == b.Mentions && a.Term < b.Term
	})
	r.allTerms = r.HotTerms
	r.HotTerms = slices.Clip(r.HotTerms[:min(15, len(r.HotTerms))])
	top := func(ts []Theme) []Theme {
		sort.Slice(ts, func(i, j int) bool {
			return ts[i].Mentions > ts[j].Mentions || ts[i].Mentions == ts[j].Mentions && ts[i].Term < ts[j].Term
		})
		return ts[:min(5, len(ts))]
	}
	r.Praise, r.Complaints = top(pos), top(neg)
	return nil
}

// exampleCandidates is how many of the strongest distinct messages of a
// polarity are read to find each theme's examples.
const exampleCandidates = 500

// exampleScan is how many items of a polarity a window may hold for its
// examples to be found by reading them all; above it, they come from the
// example candidates of its minutes, at most exampleWalk of them.
const (
	exampleScan = 20_000
	exampleWalk = 20_000
)

type exampleCand struct {
	m     Message
	terms string
}

// examples gives each theme the strongest distinct messages that say its
// term, from the exampleCandidates strongest distinct messages of the
// polarity; with no themes, one theme without a term holding the
// strongest messages. total is the window's items of the polarity.
//
// A window with more than exampleScan such items takes them from the
// example candidates the writer keeps (the strongest item of each polarity
// per room, minute and kind): the examples of a busy day cost about the
// same as those of a quiet hour. The strongest message is always among
// them; a strong message that shares its minute with a stronger one is
// not, nor one that an edit made strong, and an edit or delete of a
// minute's candidate leaves that minute without one.
//
// Equally strong messages come in time order: the earliest complaint
// first, the latest praise first.
func (q *querier) examples(key []any, sentiment, order string, themes []Theme, total int) ([]Theme, error) {
	var cands []exampleCand
	var err error
	if total > exampleScan {
		cands, err = q.strongest(key, sentiment, order)
	} else {
		cands, err = q.scanStrongest(key, sentiment, order)
	}
	if err != nil {
		return nil, err
	}
	if len(themes) == 0 {
		if len(cands) == 0 {
			return nil, nil
		}
		t := Theme{Mentions: total}
		for _, c := range cands[:min(3, len(cands))] {
			t.Examples = append(t.Examples, c.m)
		}
		return []Theme{t}, nil
	}
	for i := range themes {
		quoted, _ := json.Marshal(themes[i].Term)
		for _, c := range cands {
			if len(themes[i].Examples) == q.opts.Examples {
				break
			}
			if strings.Contains(c.terms, string(quoted)) {
				themes[i].Examples = append(themes[i].Examples, c.m)
			}
		}
	}
	return themes, nil
}

// scanStrongest reads every item of the polarity in the window.
func (q *querier) scanStrongest(key []any, sentiment, order string) ([]exampleCand, error) {
	agg := map[string]string{"ASC": "min", "DESC": "max"}[order]
	// SQLite takes the bare columns (ts, author, terms) from the row that
	// holds the min or max.
	rows, err := q.db.QueryContext(q.ctx, `SELECT i.ts, coalesce(i.author, ''), i.text, `+agg+`(i.score) AS s, coalesce(i.terms, '[]')
		FROM items i WHERE i.source = ? AND i.room = ? AND i.ts >= ? AND i.ts < ? AND i.sentiment = ? AND i.text IS NOT NULL AND i.text != ''
		AND i.deleted_at IS NULL
		GROUP BY i.text ORDER BY s `+order+`, i.ts `+order+` LIMIT ?`, append(key, sentiment, exampleCandidates)...)
	if err != nil {
		return nil, fmt.Errorf("%s examples: %w", sentiment, err)
	}
	defer rows.Close()
	var cands []exampleCand
	for rows.Next() {
		var ts string
		var c exampleCand
		if err := rows.Scan(&ts, &c.m.Author, &c.m.Text, &c.m.Score, &c.terms); err != nil {
			return nil, fmt.Errorf("%s examples: %w", sentiment, err)
		}
		c.m.TS = parseTS(ts)
		cands = append(cands, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s examples: %w", sentiment, err)
	}
	return cands, nil
}

// strongest reads the example candidates of the window's minutes
// (room_minutes.best_id: the strongest item of each polarity per room,
// minute and kind), strongest first, and keeps the first of each distinct
// text among those that stand, still have the polarity and lie inside the
// window.
func (q *querier) strongest(key []any, sentiment, order string) ([]exampleCand, error) {
	from, to := key[2].(string), key[3].(string)
	rows, err := q.db.QueryContext(q.ctx, `SELECT i.ts, i.text, coalesce(i.author, ''), i.score, coalesce(i.terms, '[]')
		FROM room_minutes e JOIN items i ON i.id = e.best_id
		WHERE e.source = ? AND e.room = ? AND e.sentiment = ? AND e.minute >= ? AND e.minute <= ? AND e.best_id IS NOT NULL
		  AND i.ts >= ? AND i.ts < ? AND i.sentiment = ? AND i.deleted_at IS NULL AND i.text IS NOT NULL AND i.text != ''
		ORDER BY i.score `+order+`, i.ts `+order+` LIMIT ?`,
		key[0], key[1], sentiment, store.RollupMinute(from), store.RollupMinute(to), from, to, sentiment, exampleWalk)
	if err != nil {
		return nil, fmt.Errorf("%s examples: %w", sentiment, err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	var cands []exampleCand
	for rows.Next() {
		var ts string
		var c exampleCand
		if err := rows.Scan(&ts, &c.m.Text, &c.m.Author, &c.m.Score, &c.terms); err != nil {
			return nil, fmt.Errorf("%s examples: %w", sentiment, err)
		}
		if seen[c.m.Text] {
			continue
		}
		seen[c.m.Text] = true
		c.m.TS = parseTS(ts)
		cands = append(cands, c)
		if len(cands) == exampleCandidates {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s examples: %w", sentiment, err)
	}
	return cands, nil
}

// alerts are those of the room (or of its whole source, like a broken
// source) that fired and overlap the window.
func (q *querier) alerts(r *Room) error {
	rows, err := q.db.QueryContext(q.ctx, `SELECT a.rule, a.severity, a.state, a.started_at, a.resolved_at, a.summary
		FROM alerts a
		WHERE (a.room = ? AND (a.source = ? OR a.source = '') OR (a.room = '' AND a.source = ?))
		  AND a.started_at < ? AND (a.resolved_at IS NULL OR a.resolved_at >= ?)
		  AND EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id = a.id AND e.state = 'firing')
		ORDER BY a.started_at, a.rule`, r.Room, r.Source, r.Source, q.to, q.from)
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Alert
		var started string
		var resolved sql.NullString
		if err := rows.Scan(&a.Rule, &a.Severity, &a.State, &started, &resolved, &a.Summary); err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
		a.StartedAt = parseTS(started)
		end := q.opts.Now
		if resolved.Valid {
			a.ResolvedAt = parseTS(resolved.String)
			end = a.ResolvedAt
		}
		a.Duration = Duration(end.Sub(a.StartedAt).Round(time.Second))
		r.Alerts = append(r.Alerts, a)
	}
	return rows.Err()
}

func parseTS(s string) time.Time {
	t, err := store.ParseTime(s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// summarize says the room's story in a few sentences.
func summarize(r *Room, loc *time.Location) []string {
	var out []string
	clock := func(t time.Time) string { return t.In(loc).Format("15:04") }
	if r.Viewers.Samples > 0 {
		out = append(out, fmt.Sprintf("Audience peaked at %s viewers at %s and averaged %s; %s at the end.",
			Count(r.Viewers.Peak), clock(r.Viewers.PeakAt), Count(r.Viewers.Average), Count(r.Viewers.Last)))
	}
	if r.Messages > 0 || r.Interactions > 0 {
		s := fmt.Sprintf("%s message%s, %s interaction%s in all", Count(float64(r.Messages)), plural(r.Messages), Count(float64(r.Interactions)), plural(int(r.Interactions)))
		if r.InteractionRate > 0 {
			s += fmt.Sprintf(" (%.2f per viewer)", r.InteractionRate)
		}
		out = append(out, s+".")
	}
	if s := r.Sentiment; s.Scored > 0 {
		verdict := "in line with"
		switch d := s.NegativeShare - s.Normal; {
		case d >= 0.05:
			verdict = "well above"
		case d >= 0.02:
			verdict = "above"
		case d <= -0.02:
			verdict = "below"
		}
		line := fmt.Sprintf("%s negative, %s the room's normal of %s (%s).", Percent(s.NegativeShare), verdict, Percent(s.Normal), s.NormalBasis)
		if s.Worst != nil && s.Worst.NegativeShare > s.Normal+0.05 {
			line += fmt.Sprintf(" Worst at %s: %s negative.", clock(s.Worst.T), Percent(s.Worst.NegativeShare))
		}
		out = append(out, line)
	}
	if len(r.Complaints) > 0 && r.Complaints[0].Term != "" {
		var terms []string
		for _, t := range r.Complaints[:min(3, len(r.Complaints))] {
			terms = append(terms, fmt.Sprintf("%s (%d)", t.Term, t.Mentions))
		}
		out = append(out, "Top complaints: "+strings.Join(terms, ", ")+".")
	}
	if len(r.Praise) > 0 && r.Praise[0].Term != "" {
		out = append(out, fmt.Sprintf("Most praised: %s (%d).", r.Praise[0].Term, r.Praise[0].Mentions))
	}
	if n := len(r.Alerts); n > 0 {
		longest := r.Alerts[0]
		red := 0
		for _, a := range r.Alerts {
			if a.Duration > longest.Duration {
				longest = a
			}
			if a.Severity == "red" {
				red++
			}
		}
		out = append(out, fmt.Sprintf("%d alert%s fired (%d red); the longest, %s, lasted %s.", n, plural(n), red, longest.Rule, longest.Duration.D()))
	} else {
		out = append(out, "No alerts fired.")
	}
	if g := r.Gifts; g.Gifts > 0 || g.SuperChats > 0 {
		out = append(out, fmt.Sprintf("Gifts: %s worth ¥%s; super chats: %d worth ¥%s.",
			Count(float64(g.Gifts)), Money(g.GiftValue), g.SuperChats, Money(g.SuperChatValue)))
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Count renders a count with thousands separators.
func Count(v float64) string {
	n := int64(math.Round(v))
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + Count(-v)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Percent renders a share as "12.5 %".
func Percent(f float64) string { return fmt.Sprintf("%.1f %%", 100*f) }

// Money renders an amount in CNY with two decimals.
func Money(f float64) string { return fmt.Sprintf("%.2f", f) }
