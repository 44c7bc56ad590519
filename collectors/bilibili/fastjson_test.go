package bilibili

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"lookout/internal/loopback"
	"lookout/item"
)

// biliSkipStringRef is the obvious definition the SWAR scanner must match:
// the first quote after b[i] preceded by an even run of backslashes.
func biliSkipStringRef(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		if b[j] != '"' {
			continue
		}
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
	}
	return -1
}

// biliDanmakuRef is what encoding/json says a DANMU_MSG item is. Fields
// whose JSON is outside the plain shape (a float timestamp, a quoted uid,
// an extra that is not valid JSON, duplicate keys) are left unchecked:
// there the scanner's documented leniency decides, not a reference.
type biliDanmakuRef struct {
	text, author       string
	checkAuthor        bool
	authorID           string
	checkAuthorID      bool
	id                 string
	checkID            bool
	tsMS               int64
	checkTS            bool
	uidZero, haveIDStr bool
	crc, rnd           string
	checkCRC, checkRnd bool
}

func biliDanmakuReference(body []byte) (r biliDanmakuRef, ok bool) {
	if !json.Valid(body) || bytes.Count(body, []byte(`"info"`)) != 1 || bytes.Count(body, []byte(`"cmd"`)) != 1 {
		return r, false
	}
	var top struct {
		Info []json.RawMessage `json:"info"`
	}
	if json.Unmarshal(body, &top) != nil || len(top.Info) < 2 {
		return r, false
	}
	// null decodes into a Go slice or string without error; the scanner
	// rightly wants an array and a string there.
	if !bytes.HasPrefix(top.Info[0], []byte("[")) || !bytes.HasPrefix(top.Info[1], []byte(`"`)) {
		return r, false
	}
	var meta []json.RawMessage
	if json.Unmarshal(top.Info[0], &meta) != nil || json.Unmarshal(top.Info[1], &r.text) != nil {
		return r, false
	}
	plainInt := func(raw json.RawMessage) (int64, bool) {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		return n, err == nil
	}
	if len(meta) > 4 {
		r.tsMS, r.checkTS = plainInt(meta[4])
	} else {
		r.checkTS = true // no timestamp: received time
	}
	if len(meta) > 7 && json.Unmarshal(meta[7], &r.crc) == nil && !bytes.Contains(meta[7], []byte(`\`)) {
		r.checkCRC = true
	}
	if len(meta) > 5 {
		if _, ok := plainInt(meta[5]); ok {
			r.rnd, r.checkRnd = string(meta[5]), true
		}
	} else {
		r.checkRnd = true
	}
	// id_str, from the JSON object encoded in info[0][15].extra.
	r.checkID = true
	if len(meta) > 15 {
		var o map[string]json.RawMessage
		if json.Unmarshal(meta[15], &o) == nil && bytes.Count(meta[15], []byte(`"extra"`)) == 1 {
			var extra string
			if ex, ok := o["extra"]; ok && json.Unmarshal(ex, &extra) == nil {
				var e map[string]json.RawMessage
				if !json.Valid([]byte(extra)) || strings.Count(extra, `"id_str"`) > 1 || strings.Count(extra, "id_str") != strings.Count(extra, `"id_str"`) {
					r.checkID = false
				} else if json.Unmarshal([]byte(extra), &e) == nil {
					if raw, ok := e["id_str"]; ok {
						var s string
						if json.Unmarshal(raw, &s) == nil {
							r.id, r.haveIDStr = s, s != ""
						} else {
							r.checkID = false
						}
					}
				}
			}
		} else if bytes.HasPrefix(bytes.TrimSpace(meta[15]), []byte("{")) {
			r.checkID = false
		}
	}
	var user []json.RawMessage
	if len(top.Info) > 2 && json.Unmarshal(top.Info[2], &user) == nil && len(user) > 0 {
		if uid, ok := plainInt(user[0]); ok {
			r.checkAuthorID = true
			r.uidZero = uid == 0
			if uid != 0 {
				r.authorID = strconv.FormatInt(uid, 10)
			}
		}
		if len(user) > 1 {
			r.checkAuthor = json.Unmarshal(user[1], &r.author) == nil
		} else {
			r.checkAuthor = true
		}
	}
	if r.checkAuthorID && r.uidZero {
		r.checkAuthorID = r.checkCRC
		if r.crc != "" {
			r.authorID = "crc:" + r.crc
		}
	}
	if r.checkID && !r.haveIDStr {
		r.checkID = r.checkCRC && r.checkRnd && r.checkTS
		r.id = "dm:" + strconv.FormatInt(r.tsMS, 10) + "-" + r.crc + "-" + r.rnd
	}
	return r, true
}

// biliCheckDanmakuAgainstRef compares the scanner with encoding/json on one
// body; it returns false when the body is outside the compared shape.
func biliCheckDanmakuAgainstRef(t *testing.T, body []byte) bool {
	t.Helper()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	items, cmd, known, err := ParseCommand(nil, body, "1", now)
	if !biliIsDanmaku(cmd) || !known {
		return false
	}
	ref, ok := biliDanmakuReference(body)
	if !ok {
		return false
	}
	if err != nil || len(items) != 1 {
		t.Fatalf("scanner: %d items, err %v; encoding/json reads text %q", len(items), err, ref.text)
	}
	it := items[0]
	if it.Kind != item.KindChat || it.Text != ref.text {
		t.Fatalf("text %q, encoding/json says %q", it.Text, ref.text)
	}
	if ref.checkAuthor && it.Author != ref.author {
		t.Fatalf("author %q, encoding/json says %q", it.Author, ref.author)
	}
	if ref.checkAuthorID && it.AuthorID != ref.authorID {
		t.Fatalf("author id %q, encoding/json says %q", it.AuthorID, ref.authorID)
	}
	if ref.checkID && it.ID != ref.id {
		t.Fatalf("id %q, encoding/json says %q", it.ID, ref.id)
	}
	if ref.checkTS {
		want := now
		if ref.tsMS > 0 {
			want = time.UnixMilli(ref.tsMS)
		}
		if !it.TS.Equal(want) {
			t.Fatalf("ts %v, encoding/json says %v", it.TS, want)
		}
	}
	if !bytes.Equal(it.Raw, body) {
		t.Fatal("Raw is not the command")
	}
	return true
}

// biliCheckSkipString compares the SWAR string scanner with the reference
// at the first 256 quotes of b (all of them would be quadratic on the
// fuzzer's long inputs).
func biliCheckSkipString(t *testing.T, b []byte) {
	t.Helper()
	tried := 0
	for i, c := range b {
		if c != '"' {
			continue
		}
		if tried++; tried > 256 {
			return
		}
		if got, want := biliSkipString(b, i), biliSkipStringRef(b, i); got != want {
			t.Fatalf("biliSkipString(%q, %d) = %d, want %d", b, i, got, want)
		}
	}
}

// biliReadCorpus reads the `go test fuzz v1` files of one fuzz target.
func biliReadCorpus(t testing.TB, target string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus for %s: %v", target, err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
			t.Fatalf("%s: not a one-[]byte `go test fuzz v1` file", f)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

func biliDanmakuSeeds() [][]byte {
	ts := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	return [][]byte{
		loopback.BilibiliDanmaku(42, "小明", "主播好，发货太慢了", ts, "f1e2d3c4b5a6"),
		loopback.BilibiliDanmaku(0, "a***", `quote " backslash \ slash / tab	end`, ts, ""),
		loopback.BilibiliDanmaku(7, `name with \"escapes\"`, `\\\"id_str\\\":\\\"fake\\\"`, ts, "real_id-1"),
		loopback.BilibiliDanmaku(1<<40, "😀", "emoji 😀 and \u2028", ts, "x"),
		loopback.BilibiliDanmaku(9, "", "", time.UnixMilli(0), ""),
	}
}

// TestBilibiliDanmakuScannerMatchesEncodingJSON is the differential test:
// on the FuzzBilibiliCommand corpus and on generated messages the
// hand-written DANMU_MSG scanner reads what encoding/json reads.
func TestBilibiliDanmakuScannerMatchesEncodingJSON(t *testing.T) {
	bodies := append(biliReadCorpus(t, "FuzzBilibiliCommand"), biliReadCorpus(t, "FuzzBilibiliDanmakuScan")...)
	bodies = append(bodies, biliDanmakuSeeds()...)
	compared := 0
	for _, b := range bodies {
		biliCheckSkipString(t, b)
		if biliCheckDanmakuAgainstRef(t, b) {
			compared++
		}
	}
	if compared < 8 {
		t.Fatalf("only %d DANMU_MSG bodies compared; the corpus lost its danmaku seeds", compared)
	}
}

func TestBilibiliSkipString(t *testing.T) {
	for _, s := range []string{`""`, `"a"`, `"\""`, `"\\"`, `"\\\"x"`, `"abcdefgh\"ijklmnop"`, `"abcdefg\\"`, `"unterminated`, `"x\`, `"12345678901234567"`, `"1234567\"123456\\\\\\\"78\\"`} {
		biliCheckSkipString(t, []byte(s))
		biliCheckSkipString(t, []byte(` `+s+`,`+s))
	}
}

func FuzzBilibiliDanmakuScan(f *testing.F) {
	for _, b := range biliDanmakuSeeds() {
		f.Add(b)
	}
	for _, b := range biliReadCorpus(f, "FuzzBilibiliCommand") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		biliCheckSkipString(t, body)
		biliCheckDanmakuAgainstRef(t, body)
	})
}
