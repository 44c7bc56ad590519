package transport

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"lookout/item"
)

// codecV1 opens the binary form of an item: a version byte, then every
// field in a fixed order, strings and byte slices as a uvarint length and
// the bytes, times as a presence byte and Unix nanoseconds (UTC), floats
// as IEEE bits, maps as a count and key/value pairs, the score as JSON
// (collectors leave it empty: zero bytes). It is several times cheaper
// than JSON of the whole item, which reflects over every field and sorts
// every map's keys.
const codecV1 = 1

// codecBatch opens a batch: the version byte, a uvarint count, then each
// item as a uvarint length and its codecV1 form. One JetStream message then
// carries several items of one partition, in order, and the per-message
// costs (publish, acknowledgement, stream storage, delivery) are paid once
// for all of them.
const codecBatch = 2

// Encode is the wire form of an item.
func Encode(it *item.Item) ([]byte, error) {
	return appendItem(nil, it)
}

// EncodeBatch is the wire form of several items in one message.
func EncodeBatch(items []item.Item) ([]byte, error) {
	b := BatchHeader(make([]byte, 0, 256*len(items)), len(items))
	for i := range items {
		var err error
		if b, err = AppendBatch(b, &items[i]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// AppendBatch appends it to a batch being built: its codecV1 form,
// prefixed with its length. A caller building a batch item by item starts
// it with BatchHeader.
func AppendBatch(b []byte, it *item.Item) ([]byte, error) {
	// Reserve the longest length prefix, encode, then move the item left
	// over the unused bytes: one allocation for the whole batch.
	const room = binary.MaxVarintLen32
	start := len(b)
	b = append(b, make([]byte, room)...)
	b, err := appendItem(b, it)
	if err != nil {
		return b[:start], err
	}
	n := len(b) - start - room
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], uint64(n))
	copy(b[start:], hdr[:h])
	copy(b[start+h:], b[start+room:])
	return b[:start+h+n], nil
}

// BatchHeader starts a batch of n items.
func BatchHeader(b []byte, n int) []byte {
	b = append(b, codecBatch)
	return binary.AppendUvarint(b, uint64(n))
}

func appendItem(b []byte, it *item.Item) ([]byte, error) {
	var score []byte
	if !scoreEmpty(&it.Score) {
		var err error
		if score, err = json.Marshal(it.Score); err != nil {
			return b, err
		}
	}
	n := 64 + len(it.Source) + len(it.Platform) + len(it.Room) + len(it.ID) + len(it.AuthorID) + len(it.Author) +
		len(it.Text) + len(it.URL) + len(it.Metric) + len(it.Raw) + len(score)
	for k, v := range it.Labels {
		n += len(k) + len(v) + 4
	}
	if b == nil {
		b = make([]byte, 0, n)
	} else {
		b = slices.Grow(b, n)
	}
	b = append(b, codecV1)
	for _, s := range [...]string{it.Source, it.Platform, string(it.Kind), it.Room, it.ID, it.AuthorID, it.Author, it.Text, it.URL, it.Metric, string(it.Change)} {
		b = appendString(b, s)
	}
	b = appendTime(b, it.TS)
	b = appendTime(b, it.ChangedAt)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(it.Value))
	b = binary.AppendVarint(b, it.Count)
	if it.HasValue {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendMap(b, it.Labels)
	b = appendMap(b, it.State)
	b = binary.AppendUvarint(b, uint64(len(it.Raw)))
	b = append(b, it.Raw...)
	b = binary.AppendUvarint(b, uint64(len(score)))
	b = append(b, score...)
	return b, nil
}

func scoreEmpty(s *item.Score) bool {
	return !s.Scored && s.Label == 0 && s.Value == 0 && s.Prob == 0 && s.Lang == "" && !s.Question && s.Groups == nil && s.Terms == nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	return binary.AppendVarint(b, t.UnixNano())
}

func appendMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(m))+1) // 1 is an empty, non-nil map
	for k, v := range m {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	return b
}

var errTruncated = errors.New("truncated item")

// reader reads an encoded item. s holds the same bytes as b, as one
// string: the item's strings are cut from it, so that decoding an item
// allocates one string for all its fields instead of one per field.
type reader struct {
	b   []byte
	s   string
	err error
	in  *interner
}

func newReader(b []byte, in *interner) *reader { return &reader{b: b, s: string(b), in: in} }

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b, r.s = r.b[n:], r.s[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b, r.s = r.b[n:], r.s[n:]
	return v
}

// take advances over n bytes and returns them both as bytes and as a
// string; ok is false when fewer are left.
func (r *reader) take(n uint64) (b []byte, s string, ok bool) {
	if r.err != nil {
		return nil, "", false
	}
	if n > uint64(len(r.b)) {
		r.err = errTruncated
		return nil, "", false
	}
	b, s = r.b[:n:n], r.s[:n]
	r.b, r.s = r.b[n:], r.s[n:]
	return b, s, true
}

func (r *reader) bytes(n uint64) []byte {
	b, _, _ := r.take(n)
	return b
}

func (r *reader) string() string {
	_, s, _ := r.take(r.uvarint())
	return s
}

// shared reads a string that repeats from item to item (source, platform,
// kind, room, label keys and values): it is interned, so that an item
// kept for long (the alert engine's state of a room) does not hold on to
// the whole item's bytes.
func (r *reader) shared() string {
	b, s, ok := r.take(r.uvarint())
	if !ok || r.in == nil {
		return s
	}
	return r.in.get(b)
}

func (r *reader) byte() byte {
	v := r.bytes(1)
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func (r *reader) time() time.Time {
	if r.byte() == 0 {
		return time.Time{}
	}
	return time.Unix(0, r.varint()).UTC()
}

func (r *reader) strmap() map[string]string {
	n := r.uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	n--
	if n > uint64(len(r.b)) { // every pair takes at least two bytes
		r.err = errTruncated
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := r.shared()
		m[k] = r.shared()
	}
	return m
}

// frame reads a batch's framing: the item count and each item's length
// and bytes.
type frame struct {
	b   []byte
	err error
}

func (f *frame) uvarint() uint64 {
	if f.err != nil {
		return 0
	}
	v, n := binary.Uvarint(f.b)
	if n <= 0 {
		f.err = errTruncated
		return 0
	}
	f.b = f.b[n:]
	return v
}

func (f *frame) bytes(n uint64) []byte {
	if f.err != nil {
		return nil
	}
	if n > uint64(len(f.b)) {
		f.err = errTruncated
		return nil
	}
	v := f.b[:n:n]
	f.b = f.b[n:]
	return v
}

// interner hands out one copy of each string it has seen; it forgets them
// all when it holds maxInterned, so that a stream of distinct values does
// not grow it without bound.
type interner struct{ m map[string]string }

const maxInterned = 4096

func (in *interner) get(b []byte) string {
	if s, ok := in.m[string(b)]; ok { // no allocation for the lookup
		return s
	}
	if in.m == nil || len(in.m) >= maxInterned {
		in.m = make(map[string]string, 64)
	}
	s := string(b)
	in.m[s] = s
	return s
}

// Decoder decodes messages, sharing one copy of the strings that repeat
// from item to item. It is not safe for concurrent use: give each
// consuming goroutine its own.
type Decoder struct{ in interner }

// ItemError is the error of one item of a batch that does not decode; the
// batch's other items are good.
type ItemError struct {
	Index int // the item's place in the batch
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("item %d of the batch: %v", e.Index, e.Err) }
func (e *ItemError) Unwrap() error { return e.Err }

// DecodeMessage reads every item of a message: a batch (EncodeBatch), or a
// single item in the binary or JSON form (Encode, and what collectors
// published before batches). bad lists the items of a batch that do not
// decode; err is set when the message itself is unreadable, and then no
// item is returned.
func DecodeMessage(data []byte) (items []item.Item, bad []*ItemError, err error) {
	return decodeMessage(data, nil)
}

// DecodeMessage is the package's DecodeMessage with d's shared strings.
func (d *Decoder) DecodeMessage(data []byte) (items []item.Item, bad []*ItemError, err error) {
	return decodeMessage(data, &d.in)
}

func decodeMessage(data []byte, in *interner) (items []item.Item, bad []*ItemError, err error) {
	if len(data) == 0 || data[0] != codecBatch {
		it, err := decode(data, in)
		if err != nil {
			return nil, nil, err
		}
		return []item.Item{it}, nil, nil
	}
	r := &frame{b: data[1:]}
	n := r.uvarint()
	if r.err != nil {
		return nil, nil, fmt.Errorf("batch: %w", r.err)
	}
	if n > uint64(len(r.b)) { // every item takes at least one byte
		return nil, nil, fmt.Errorf("batch of %d items in %d bytes: %w", n, len(r.b), errTruncated)
	}
	items = make([]item.Item, 0, n)
	for i := range int(n) {
		body := r.bytes(r.uvarint())
		if r.err != nil {
			return nil, nil, fmt.Errorf("batch item %d of %d: %w", i, n, r.err)
		}
		it, err := decode(body, in)
		if err != nil {
			bad = append(bad, &ItemError{Index: i, Err: err})
			continue
		}
		items = append(items, it)
	}
	if len(r.b) > 0 {
		return nil, nil, fmt.Errorf("%d bytes after the batch", len(r.b))
	}
	return items, bad, nil
}

// Decode is the inverse of Encode; it also reads the JSON form of an item
// (a message that starts with '{'). An item without a source or id is an
// error: nothing downstream could dedupe or acknowledge it.
func Decode(data []byte) (item.Item, error) { return decode(data, nil) }

// Decode is the package's Decode with d's shared strings.
func (d *Decoder) Decode(data []byte) (item.Item, error) { return decode(data, &d.in) }

func decode(data []byte, in *interner) (item.Item, error) {
	var it item.Item
	if len(data) > 0 && data[0] == '{' {
		if err := json.Unmarshal(data, &it); err != nil {
			return it, err
		}
	} else {
		if len(data) == 0 || data[0] != codecV1 {
			return it, fmt.Errorf("unknown item encoding")
		}
		r := newReader(data[1:], in)
		it.Source, it.Platform, it.Kind, it.Room, it.ID = r.shared(), r.shared(), item.Kind(r.shared()), r.shared(), r.string()
		it.AuthorID, it.Author, it.Text, it.URL, it.Metric = r.string(), r.string(), r.string(), r.string(), r.shared()
		it.Change = item.Change(r.shared())
		it.TS, it.ChangedAt = r.time(), r.time()
		if v := r.bytes(8); len(v) == 8 {
			it.Value = math.Float64frombits(binary.LittleEndian.Uint64(v))
		}
		it.Count = r.varint()
		it.HasValue = r.byte() == 1
		it.Labels, it.State = r.strmap(), r.strmap()
		if raw := r.bytes(r.uvarint()); len(raw) > 0 {
			it.Raw = raw
		}
		if score := r.bytes(r.uvarint()); len(score) > 0 && r.err == nil {
			if err := json.Unmarshal(score, &it.Score); err != nil {
				return it, fmt.Errorf("item score: %w", err)
			}
		}
		if r.err == nil && len(r.b) > 0 {
			r.err = fmt.Errorf("%d bytes after the item", len(r.b))
		}
		if r.err != nil {
			return it, r.err
		}
	}
	if it.Source == "" || it.ID == "" {
		return it, errors.New("item without source or id")
	}
	return it, nil
}
