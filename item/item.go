// Package item defines the one value type that travels the whole pipeline:
// collectors create an Item, the classifier fills in its Score, the store
// writes it and the alert engine counts it. Stages add to an Item rather than
// wrapping it in new types.
package item

import (
	"time"
)

// Kind says what an item is. The set is closed so that rules and queries can
// rely on the names.
type Kind string

const (
	KindPost      Kind = "post"      // a feed entry, article, status, video
	KindComment   Kind = "comment"   // a reply to a post
	KindChat      Kind = "chat"      // a live-room chat line (danmaku)
	KindGift      Kind = "gift"      // a live-room gift
	KindSuperChat Kind = "superchat" // a paid, pinned chat message
	KindEnter     Kind = "enter"     // a viewer entered, followed or shared
	KindLike      Kind = "like"      // a like event in a live room
	KindMetric    Kind = "metric"    // a numeric KPI sample (viewers, likes…)

	// KindState is no observation but a source's incremental state (its
	// cursor, seen ids, ETag) on its way to the store: it travels the
	// pipeline behind the items it covers so that the store commits it
	// with them or after them, never before. Only the store writer reads
	// it; it is not Valid for rules or collectors' mappings.
	KindState Kind = "state"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindPost, KindComment, KindChat, KindGift, KindSuperChat, KindEnter, KindLike, KindMetric:
		return true
	}
	return false
}

// Textual reports whether items of this kind carry text worth scoring.
func (k Kind) Textual() bool {
	switch k {
	case KindPost, KindComment, KindChat, KindSuperChat:
		return true
	}
	return false
}

// Well-known metric names. Collectors may emit others; rules refer to them by
// name.
const (
	MetricViewers     = "viewers"      // people in the room right now
	MetricWatched     = "watched"      // cumulative "watched" count for a broadcast
	MetricPopularity  = "popularity"   // legacy Bilibili 人气 from op 3
	MetricLikes       = "likes"        // total likes in the room
	MetricHighEnergy  = "high_energy"  // Bilibili high-energy-user count
	MetricFollowers   = "followers"    // follow count
	MetricInteraction = "interaction"  // interaction rate
	MetricComplaint   = "complaint"    // complaint rate
	MetricConversion  = "conversion"   // conversion rate
	MetricGiftValue   = "gift_value"   // gift value in CNY
	MetricCumViewers  = "cum_viewers"  // cumulative viewers (Douyin totalPvForAnchor)
	MetricMemberCount = "member_count" // Douyin member count
	// MetricLiveStatus is a room's stream state, emitted when it changes:
	// 1 the stream went live, 0 it went offline or the broadcast ended.
	// The sample's TS is when that happened (the platform's time when it
	// says, else when we heard). An `absent` rule stays quiet for a room
	// whose latest live_status is 0.
	MetricLiveStatus = "live_status"
	// MetricModeration is one moderation action in a room (value 1), with
	// the labels "action" (delete: one message removed; timeout; ban;
	// clear: the whole chat cleared) and, where the platform says,
	// "target_msg_id" (the removed message's item id), "target_user_id",
	// "target_user" and "duration_s" (a timeout's length).
	MetricModeration = "moderation"
)

// Label is the three-way sentiment verdict.
type Label int8

const (
	Neutral  Label = 0
	Positive Label = 1
	Negative Label = -1
)

func (l Label) String() string {
	switch l {
	case Positive:
		return "positive"
	case Negative:
		return "negative"
	}
	return "neutral"
}

// ParseLabel is the inverse of Label.String.
func ParseLabel(s string) Label {
	switch s {
	case "positive":
		return Positive
	case "negative":
		return Negative
	}
	return Neutral
}

// Match is one keyword group that matched an item's text.
type Match struct {
	Group    string   `json:"group"`    // the keyword group's name in config
	Category string   `json:"category"` // e.g. crisis, service
	Severity string   `json:"severity"` // red, yellow, green
	Terms    []string `json:"terms"`    // the keywords that hit
}

// Score is what the classifier adds to an item.
type Score struct {
	Scored bool    `json:"scored"`         // false for kinds that carry no text
	Label  Label   `json:"label"`          // positive, neutral, negative
	Value  float64 `json:"score"`          // in [-1, 1]; sign is polarity
	Prob   float64 `json:"prob"`           // calibrated probability of Label
	Lang   string  `json:"lang,omitempty"` // zh, en, mixed, other
	// Question: the text asks something (吗, 什么时候, 有没有, when…, ?).
	// Rules use it to tell a question about a refund from a demand for one.
	Question bool     `json:"question,omitempty"`
	Groups   []Match  `json:"groups,omitempty"`
	Terms    []string `json:"terms,omitempty"` // hot terms extracted from the text
}

// HasCategory reports whether any matched group has the category.
func (s *Score) HasCategory(cat string) bool {
	for _, m := range s.Groups {
		if m.Category == cat {
			return true
		}
	}
	return false
}

// HasGroup reports whether the named group matched.
func (s *Score) HasGroup(name string) bool {
	for _, m := range s.Groups {
		if m.Group == name {
			return true
		}
	}
	return false
}

// Item is one thing a collector saw.
type Item struct {
	Source   string // source id from config
	Platform string // bilibili, douyin, twitch, rss, …
	Kind     Kind
	Room     string // room, channel, feed or topic the item belongs to
	ID       string // stable id within (Source): the dedupe key
	AuthorID string // platform user id; hashed when privacy.hash_user_ids is on
	Author   string // display name
	Text     string
	URL      string
	TS       time.Time

	// Numeric fields. Metric items carry Metric+Value; gifts carry Value as
	// the gift's worth in CNY and Count as the number of gifts.
	Metric string
	Value  float64
	Count  int64
	// HasValue says Value was given even when it is 0 (a post mapped with
	// value: like and 0 likes): the store keeps 0, not NULL.
	HasValue bool

	Labels map[string]string // labels from the source's config
	Raw    []byte            // the payload as received, for replay and audit

	Score Score // filled in by the classifier

	// Change is ChangeEdit or ChangeDelete on an item that reports what
	// happened to an item stored before (same Source and ID): its author
	// edited it (the item carries the new version, its TS still when it
	// was first said) or deleted it (only Source, ID and ChangedAt
	// count). Empty for an item seen for the first time.
	Change Change
	// ChangedAt is when the edit or delete happened (the platform's time
	// where it says, else when it was heard).
	ChangedAt time.Time

	// State is a KindState item's payload: the source's state keys and
	// their values, stored together in one transaction.
	State map[string]string

	// Delivery is set in a processor by the transport it reads from: the
	// number of the delivery that carried the item, by which the store's
	// commit of it is acknowledged. 0 for an item that came some other
	// way. It stays in the process: it is never encoded or stored.
	Delivery uint64
}

// Change says what an item reports about an item stored before.
type Change string

const (
	ChangeEdit   Change = "edit"   // a new version: the store replaces the item's text and keeps the old one
	ChangeDelete Change = "delete" // the author removed it: the store marks it deleted and keeps it
)

// DedupeKey is what tells two deliveries of the same thing apart: the
// item's id, and for an edit or delete also which change it is.
func (it *Item) DedupeKey() string {
	if it.Change == "" {
		return it.Source + "\x00" + it.ID
	}
	return it.Source + "\x00" + it.ID + "\x00" + string(it.Change) + "\x00" + it.ChangedAt.UTC().Format(time.RFC3339Nano)
}

// StateItem is the item that carries kv, source's state, to the store.
func StateItem(source string, kv map[string]string) Item {
	return Item{Source: source, Kind: KindState, State: kv}
}

// MetricSourceBroken is the health metric the daemon writes for a source:
// 1 while it is broken (its polls or connections keep failing, its login,
// cookie or signature is refused, it sends nothing usable, its pages
// stopped yielding items, its collector gave up), 0 once it recovers.
// It carries the labels "reason" and "detail" and an empty Room, so the
// alert engine keeps it apart from the source's rooms; a `source_broken`
// rule turns it into an alert.
const MetricSourceBroken = "source_broken"

// Key is the grouping key rules evaluate windows over.
func (it *Item) Key() string { return it.Source + "/" + it.Room }
