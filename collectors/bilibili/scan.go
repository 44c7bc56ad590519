package bilibili

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// A minimal JSON scanner for the hot path (DANMU_MSG); its scanning
// primitives are in fastjson.go.

// biliIter walks the members of one JSON object or the elements of one
// array in place, without decoding them: advance to a member, then either
// skip its value or enter it (a container) and leave it. Malformed input
// sets bad and ends the walk.
type biliIter struct {
	b     []byte
	i     int // after advance: start of the value; when done: after the closer
	obj   bool
	first bool
	done  bool
	bad   bool
}

// biliIterate starts a walk over raw, which must begin with { or [.
func biliIterate(raw []byte) (biliIter, bool) {
	if len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') {
		return biliIter{done: true, bad: true}, false
	}
	return biliIter{b: raw, i: 1, obj: raw[0] == '{', first: true}, true
}

// advance moves to the next member and returns its key (raw, without
// quotes; nil in arrays). The caller must then skip or enter the value.
func (it *biliIter) advance() (key []byte, ok bool) {
	if it.done {
		return nil, false
	}
	b := it.b
	i := biliWS(b, it.i)
	closer := byte(']')
	if it.obj {
		closer = '}'
	}
	if i >= len(b) {
		return it.fail()
	}
	if b[i] == closer {
		it.done, it.i = true, i+1
		return nil, false
	}
	if !it.first {
		if b[i] != ',' {
			return it.fail()
		}
		i = biliWS(b, i+1)
	}
	it.first = false
	if it.obj {
		if i >= len(b) || b[i] != '"' {
			return it.fail()
		}
		e := biliSkipString(b, i)
		if e < 0 {
			return it.fail()
		}
		key = b[i+1 : e-1]
		i = biliWS(b, e)
		if i >= len(b) || b[i] != ':' {
			return it.fail()
		}
		i = biliWS(b, i+1)
	}
	if i >= len(b) {
		return it.fail()
	}
	it.i = i
	return key, true
}

// skip passes over the current value and returns it raw (nil if bad).
func (it *biliIter) skip() []byte {
	if it.done {
		return nil
	}
	e := biliSkipValue(it.b, it.i)
	if e < 0 {
		it.fail()
		return nil
	}
	v := it.b[it.i:e]
	it.i = e
	return v
}

// enter starts a walk over the current value if it is a container; when
// it is not, the caller must skip it.
func (it *biliIter) enter() (biliIter, bool) {
	if it.done || it.i >= len(it.b) || (it.b[it.i] != '{' && it.b[it.i] != '[') {
		return biliIter{done: true}, false
	}
	return biliIter{b: it.b, i: it.i + 1, obj: it.b[it.i] == '{', first: true}, true
}

// leave continues after c, entered from it, skipping what c did not read.
func (it *biliIter) leave(c *biliIter) {
	for !c.done {
		if _, ok := c.advance(); !ok {
			break
		}
		c.skip()
	}
	if c.bad {
		it.fail()
		return
	}
	it.i = c.i
}

func (it *biliIter) fail() ([]byte, bool) {
	it.done, it.bad = true, true
	return nil, false
}

func biliWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// biliString decodes a raw JSON string. The common case (no escapes, valid
// UTF-8) is one allocation.
func biliString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// biliInt reads a JSON integer (or a quoted one); floats are truncated.
func biliInt(raw []byte) (int64, bool) {
	if len(raw) >= 2 && raw[0] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	if len(raw) == 0 {
		return 0, false
	}
	neg := raw[0] == '-'
	d := raw
	if neg {
		d = raw[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return biliIntSlow(raw)
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return biliIntSlow(raw)
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func biliIntSlow(raw []byte) (int64, bool) {
	x, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > math.MaxInt64/2 {
		return 0, false
	}
	return int64(x), true
}
