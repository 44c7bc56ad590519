package redact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"lookout/item"
)

// Users is privacy mode: it replaces who said something (platform user
// ids and display names) with salted hashes before an item reaches the
// classifier, the alert engine, the store or a log. The same person gets
// the same hash everywhere (in author_id, author, a mention in someone
// else's text, an alert sample), so a question such as "how many people
// complained" still has an answer, but nobody can read a name back without
// the salt, and the salt never leaves the process.
type Users struct {
	salt string
}

// NewUsers returns privacy mode with the salt (from the environment; it
// must not be empty, or a dictionary of common names would undo the
// hashes).
func NewUsers(salt string) (*Users, error) {
	if salt == "" {
		return nil, fmt.Errorf("privacy: the salt is empty; set the environment variable privacy.salt names")
	}
	return &Users{salt: salt}, nil
}

// Hash is the stored form of a user id or display name: "h:" and 24 hex
// digits (96 bits) of SHA-256 over the salt and the value. "" stays "".
// Author ids hashed by earlier releases (privacy.hash_user_ids) have the
// same form, so they keep matching.
func (u *Users) Hash(v string) string {
	if v == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(u.salt + "\x00" + v))
	return "h:" + hex.EncodeToString(sum[:12])
}

// IsUserLabel reports whether an item label names a user (a moderation
// target, a gift's recipient): "user", "user_id", or any key ending in
// "_user" or "_user_id". Privacy mode hashes their values.
func IsUserLabel(key string) bool {
	return key == "user" || key == "user_id" || strings.HasSuffix(key, "_user") || strings.HasSuffix(key, "_user_id")
}

// minReplace is the shortest identity (in runes) replaced where it occurs
// inside an item's text, id or URL: a one-letter name would garble every
// message it occurs in. Such a name is still hashed in its own column.
const minReplace = 2

// Item rewrites it for privacy mode:
//   - AuthorID and Author become their hashes;
//   - labels that name users (IsUserLabel) get hashed values;
//   - wherever those ids and names occur in the item's ID, Text or URL
//     (a Twitch notice "Alice subscribed", an id built from a user id, a
//     profile URL), they are replaced by their hashes;
//   - @mentions in Text ("@Bob", "回复 @小明 :") become "@" and the hash of
//     the name;
//   - the raw payload is dropped: it carries the same ids and names in
//     each platform's own encoding (JSON, protobuf, IRC tags), and a
//     rewrite per platform would leak whatever field it missed.
//
// The labels map is copied before it is changed, so a collector's shared
// map is never written.
func (u *Users) Item(it *item.Item) {
	it.Raw = nil
	var ids, names []string
	if it.AuthorID != "" {
		ids = append(ids, it.AuthorID)
	}
	if it.Author != "" {
		names = append(names, it.Author)
	}
	copied := false
	for k, v := range it.Labels {
		if v == "" || !IsUserLabel(k) {
			continue
		}
		if !copied {
			m := make(map[string]string, len(it.Labels))
			for k2, v2 := range it.Labels {
				m[k2] = v2
			}
			it.Labels, copied = m, true
		}
		if strings.HasSuffix(k, "_id") {
			ids = append(ids, v)
		} else {
			names = append(names, v)
		}
		it.Labels[k] = u.Hash(v)
	}
	// Names are replaced in the text too; ids only in the item's id and
	// URL, where they are part of a key, not in what someone wrote (a
	// user id 1000 must not turn "1000块" into a hash).
	if p := u.replacer(names); len(p) > 0 {
		it.Text = strings.NewReplacer(p...).Replace(it.Text)
	}
	if p := u.replacer(append(ids, names...)); len(p) > 0 {
		r := strings.NewReplacer(p...)
		it.ID, it.URL = r.Replace(it.ID), r.Replace(it.URL)
	}
	it.AuthorID, it.Author = u.Hash(it.AuthorID), u.Hash(it.Author)
	it.Text = u.Mentions(it.Text)
}

// replacer turns identities into strings.NewReplacer's old/new pairs,
// longest first (so "Alice A" goes before "Alice"), leaving out those too
// short to replace inside other text.
func (u *Users) replacer(who []string) []string {
	var pairs []string
	sort.Slice(who, func(i, j int) bool { return len(who[i]) > len(who[j]) })
	for i, w := range who {
		if utf8.RuneCountInString(w) >= minReplace && (i == 0 || w != who[i-1]) {
			pairs = append(pairs, w, u.Hash(w))
		}
	}
	return pairs
}

// Mentions replaces every @mention in s with "@" and the hash of the
// mentioned name. A name runs from the '@' over letters, digits, marks
// and "_-." (a trailing '.' ends a sentence, not the name); a hash that
// is already there ("@h:…") is left alone.
func (u *Users) Mentions(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '@')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+1])
		s = s[i+1:]
		n := 0
		for n < len(s) {
			r, size := utf8.DecodeRuneInString(s[n:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) && r != '_' && r != '-' && r != '.' {
				break
			}
			n += size
		}
		name := strings.TrimRight(s[:n], ".")
		if name == "" || strings.HasPrefix(s, "h:") {
			continue
		}
		b.WriteString(u.Hash(name))
		s = s[len(name):]
	}
}

// payloadLogKeys are log attributes that carry what a platform sent
// (a line, an event, a payload, a message's text): privacy mode shows
// their size only.
var payloadLogKeys = map[string]bool{"line": true, "event": true, "payload": true, "text": true, "body": true, "frame": true}

// userLogKeys are log attributes that name a user or an item (whose id
// may be built from a user's id): privacy mode shows their hashes.
var userLogKeys = map[string]bool{"author": true, "author_id": true, "user": true, "user_id": true, "login": true, "nick": true, "id": true}

// LogHandler wraps h for privacy mode: attributes that carry a platform's
// payload (line, event, payload, text, body, frame) are replaced by their
// length, and attributes that name a user or item (author, author_id,
// user, user_id, login, nick, id) by their hashes.
func (u *Users) LogHandler(h slog.Handler) slog.Handler { return &usersLogHandler{u: u, next: h} }

type usersLogHandler struct {
	u    *Users
	next slog.Handler
}

func (h *usersLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *usersLogHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *usersLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.attr(a)
	}
	return &usersLogHandler{u: h.u, next: h.next.WithAttrs(red)}
}

func (h *usersLogHandler) WithGroup(name string) slog.Handler {
	return &usersLogHandler{u: h.u, next: h.next.WithGroup(name)}
}

func (h *usersLogHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch {
	case v.Kind() == slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, x := range g {
			red[i] = h.attr(x)
		}
		return slog.Group(a.Key, red...)
	case payloadLogKeys[a.Key]:
		return slog.String(a.Key, fmt.Sprintf("(%d bytes, not shown in privacy mode)", len(v.String())))
	case userLogKeys[a.Key]:
		return slog.String(a.Key, h.u.Hash(v.String()))
	}
	return a
}
