package bilibili

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Scanning primitives for the DANMU_MSG hot path (biliIter and friends in
// scan.go). A realistic DANMU_MSG is ~1.7 KB of JSON, more than
// half of it info[0][15].extra: a JSON object escaped into a JSON string,
// with an escaped quote every few bytes. Skipping values is most of the
// parse, so strings are scanned eight bytes at a time and containers with
// a table that lets ordinary bytes through with one load and compare.

const (
	biliSWARLo = 0x0101010101010101
	biliSWARQt = biliSWARLo * '"'
	biliSWAR7F = 0x7f7f7f7f7f7f7f7f
)

// biliJSONStructural marks the bytes a container skip must look at.
var biliJSONStructural = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true}

// biliSkipString returns the index after the string starting at b[i] == '"',
// or -1: the first quote preceded by an even run of backslashes ends it.
// Quotes are found eight bytes at a time; in extra they come every few
// bytes, so all the quotes of a word are tried before loading the next.
func biliSkipString(b []byte, i int) int {
	j := i + 1
	for j+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[j:]) ^ biliSWARQt
		// Exact zero-byte mask (no false positives, unlike the shorter
		// (x-0x01…)&^x form): 0x80 in each byte of x that is zero.
		m := ^(((x & biliSWAR7F) + biliSWAR7F) | x | biliSWAR7F)
		for m != 0 {
			k := j + bits.TrailingZeros64(m)>>3
			if biliQuoteEnds(b, i, k) {
				return k + 1
			}
			m &= m - 1
		}
		j += 8
	}
	for ; j < len(b); j++ {
		if b[j] == '"' && biliQuoteEnds(b, i, j) {
			return j + 1
		}
	}
	return -1
}

// biliQuoteEnds reports whether the quote at b[k] ends the string opened
// at b[i]: the backslashes right before it are even in number. Each
// backslash run is counted for one quote only, so the scan stays linear.
func biliQuoteEnds(b []byte, i, k int) bool {
	n := 0
	for p := k - 1; p > i && b[p] == '\\'; p-- {
		n++
	}
	return n%2 == 0
}

// biliSkipValue returns the index after the value starting at b[i], or -1.
// Nested containers are matched by depth only; their content is checked
// when (and if) it is walked.
func biliSkipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return biliSkipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			c := b[j]
			if !biliJSONStructural[c] {
				continue
			}
			switch c {
			case '"':
				e := biliSkipString(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			default: // '}', ']'
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) {
		c := b[j]
		if c == ',' || c == ']' || c == '}' || c == ' ' || c == '\n' || c == '\r' || c == '\t' {
			break
		}
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// biliAppendString appends the decoded raw JSON string to dst, as
// biliString would return it, without allocating a string of its own: the
// DANMU_MSG parser packs all of an item's strings into one allocation.
func biliAppendString(dst, raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return dst, false
	}
	in := raw[1 : len(raw)-1]
	if !biliHasBackslash(in) && utf8.Valid(in) {
		return append(dst, in...), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return dst, false
	}
	return append(dst, s...), true
}

func biliHasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// biliCmdName decodes the raw "cmd" string and cuts its ":…" suffix. The
// names the collector maps come back as constants, so the common commands
// cost no allocation; anything else decodes as biliString does.
func biliCmdName(raw []byte) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		in := raw[1 : len(raw)-1]
		if !biliHasBackslash(in) && utf8.Valid(in) {
			if i := bytes.IndexByte(in, ':'); i >= 0 {
				in = in[:i]
			}
			switch string(in) {
			case "DANMU_MSG":
				return "DANMU_MSG", true
			case "DANMU_MSG_MIRROR":
				return "DANMU_MSG_MIRROR", true
			case "SEND_GIFT":
				return "SEND_GIFT", true
			case "SEND_GIFT_V2":
				return "SEND_GIFT_V2", true
			case "SUPER_CHAT_MESSAGE":
				return "SUPER_CHAT_MESSAGE", true
			case "INTERACT_WORD":
				return "INTERACT_WORD", true
			case "INTERACT_WORD_V2":
				return "INTERACT_WORD_V2", true
			case "LIKE_INFO_V3_CLICK":
				return "LIKE_INFO_V3_CLICK", true
			case "WATCHED_CHANGE":
				return "WATCHED_CHANGE", true
			case "ONLINE_RANK_COUNT":
				return "ONLINE_RANK_COUNT", true
			case "LIKE_INFO_V3_UPDATE":
				return "LIKE_INFO_V3_UPDATE", true
			}
		}
	}
	cmd, ok := biliString(raw)
	if !ok {
		return "", false
	}
	if i := strings.IndexByte(cmd, ':'); i >= 0 {
		cmd = cmd[:i]
	}
	return cmd, true
}
