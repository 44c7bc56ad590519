package stream

import (
	"maps"
	"strconv"
	"unicode/utf8"

	"lookout/collectors"
	"lookout/item"
)

// One size cap per message for every stream collector. Real messages are a
// few KiB at most (a danmaku command, a Douyin typed message, a Twitch IRC
// line with its tags, a Jetstream or Mastodon event), so anything bigger is
// a broken or hostile server, and storing it whole would bloat the store
// and every sample an alert quotes.
const (
	// MaxMessage is the most bytes of one message a stream item
	// keeps as its Raw payload; a message beyond it is oversized.
	MaxMessage = 64 << 10
	// MaxText is the most bytes of text a stream item keeps; longer
	// text is cut (at a character boundary) and the item is oversized.
	MaxText = 4 << 10
	// MaxFrame is the WebSocket read limit of every stream: a frame
	// may batch many messages, but not this many bytes. A bigger frame
	// ends the connection (the stream reconnects) without being stored.
	MaxFrame = 16 * MaxMessage
)

// CapItem enforces the caps on it, built from a message of msgLen
// bytes: an oversized item keeps the first MaxText bytes of its text
// and of its Raw payload, gets the label "oversized" (the message's size in
// bytes), and is counted (errors_total{reason="oversized"}) and logged.
// It reports whether the item was oversized.
func CapItem(env collectors.Env, source string, it *item.Item, msgLen int) bool {
	msgLen = max(msgLen, len(it.Raw))
	if msgLen <= MaxMessage && len(it.Text) <= MaxText {
		return false
	}
	textLen := len(it.Text)
	it.Text = truncUTF8(it.Text, MaxText)
	if len(it.Raw) > MaxText {
		it.Raw = it.Raw[:MaxText:MaxText]
	}
	labels := make(map[string]string, len(it.Labels)+1)
	maps.Copy(labels, it.Labels) // the source's map is shared by its items
	labels["oversized"] = strconv.Itoa(msgLen)
	it.Labels = labels
	env.Metrics.Errors.WithLabelValues(source, "oversized").Inc()
	env.Log.Warn("oversized stream message truncated", "room", it.Room, "id", Trunc(it.ID, 64),
		"message_bytes", msgLen, "text_bytes", textLen, "kept_text_bytes", len(it.Text))
	return true
}

// truncUTF8 cuts s to at most n bytes without splitting a character.
func truncUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
