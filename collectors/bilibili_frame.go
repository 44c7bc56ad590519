package collectors

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
)

// Bilibili danmaku frame codec (protocols.md §1.3–1.4). A WebSocket binary
// message holds one or more packets, each a 16-byte big-endian header
// (length, header length, protocol version, operation, sequence) and a body.
// Compressed bodies (protover 2 zlib, 3 brotli) decompress into further
// packets.

// Header layout and constants.
const (
	BilibiliHeaderLen = 16

	BilibiliVerPlain  = 0 // plain JSON body
	BilibiliVerInt    = 1 // heartbeat/auth: uncompressed, body may be an int or JSON
	BilibiliVerZlib   = 2 // zlib (RFC 1950) body of nested packets
	BilibiliVerBrotli = 3 // brotli body of nested packets

	BilibiliOpHeartbeat      = 2 // client → server
	BilibiliOpHeartbeatReply = 3 // server → client: u32 popularity
	BilibiliOpMessage        = 5 // server → client: command JSON
	BilibiliOpAuth           = 7 // client → server
	BilibiliOpAuthReply      = 8 // server → client: {"code":0}
)

// Decoder limits. Real servers nest exactly one level and send a few KiB
// per message; the limits only exist to make hostile input cheap.
const (
	BilibiliMaxDepth        = 4        // nesting of compressed bodies
	BilibiliMaxDecompressed = 16 << 20 // bytes inflated per WebSocket message
)

// Errors the decoder returns (wrapped with the offset and depth).
var (
	ErrBilibiliTruncated  = errors.New("bilibili frame: truncated packet")
	ErrBilibiliBadHeader  = errors.New("bilibili frame: bad header")
	ErrBilibiliTooDeep    = errors.New("bilibili frame: compressed packets nested too deep")
	ErrBilibiliTooLarge   = errors.New("bilibili frame: decompressed body exceeds limit")
	ErrBilibiliDecompress = errors.New("bilibili frame: cannot decompress body")
)

// BilibiliPacket is one decoded packet. Body aliases the decoder's buffers
// (or the input message) and is valid only during the callback; copy what
// must outlive it.
type BilibiliPacket struct {
	Ver   uint16
	Op    uint32
	Seq   uint32
	Body  []byte
	Depth int // 0 for packets at the top of the message, 1 inside one compressed body, …
}

// Popularity returns the u32 of an op-3 heartbeat reply.
func (p BilibiliPacket) Popularity() (uint32, bool) {
	if p.Op != BilibiliOpHeartbeatReply || len(p.Body) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p.Body), true
}

// AppendBilibiliPacket appends one encoded packet to dst.
func AppendBilibiliPacket(dst []byte, ver uint16, op, seq uint32, body []byte) []byte {
	var h [BilibiliHeaderLen]byte
	binary.BigEndian.PutUint32(h[0:], uint32(BilibiliHeaderLen+len(body)))
	binary.BigEndian.PutUint16(h[4:], BilibiliHeaderLen)
	binary.BigEndian.PutUint16(h[6:], ver)
	binary.BigEndian.PutUint32(h[8:], op)
	binary.BigEndian.PutUint32(h[12:], seq)
	dst = append(dst, h[:]...)
	return append(dst, body...)
}

// BilibiliDecoder splits WebSocket messages into packets. It keeps its
// decompressors and buffers between calls, so one decoder per connection
// decodes without steady-state allocations. It is not safe for concurrent
// use.
type BilibiliDecoder struct {
	// MaxDecompressed bounds the bytes inflated per Decode call (default
	// BilibiliMaxDecompressed).
	MaxDecompressed int

	src    bytes.Reader
	br     *brotli.Reader
	zr     io.ReadCloser
	bufs   [BilibiliMaxDepth][]byte
	budget int
}

// Decode calls fn for every packet in msg, descending into compressed
// bodies. An op-3 heartbeat reply yields its 4-byte popularity and ends the
// message: the server appends an echo of the client heartbeat that the
// length field does not cover. On a malformed packet Decode stops and
// returns an error wrapping one of the ErrBilibili* values; packets before it
// have already been passed to fn. An error from fn stops decoding and is
// returned as is.
func (d *BilibiliDecoder) Decode(msg []byte, fn func(BilibiliPacket) error) error {
	d.budget = d.MaxDecompressed
	if d.budget <= 0 {
		d.budget = BilibiliMaxDecompressed
	}
	_, err := d.decode(msg, 0, fn)
	return err
}

// decode walks the packets of buf; stop reports an op-3 reply that ends
// the enclosing message.
func (d *BilibiliDecoder) decode(buf []byte, depth int, fn func(BilibiliPacket) error) (stop bool, err error) {
	off := 0
	for off < len(buf) {
		rest := buf[off:]
		if len(rest) < BilibiliHeaderLen {
			return false, fmt.Errorf("%w: %d bytes left for a 16-byte header at offset %d (depth %d)", ErrBilibiliTruncated, len(rest), off, depth)
		}
		plen := int(binary.BigEndian.Uint32(rest[0:]))
		hlen := int(binary.BigEndian.Uint16(rest[4:]))
		ver := binary.BigEndian.Uint16(rest[6:])
		op := binary.BigEndian.Uint32(rest[8:])
		seq := binary.BigEndian.Uint32(rest[12:])
		if hlen < BilibiliHeaderLen {
			return false, fmt.Errorf("%w: header length %d < 16 at offset %d (depth %d)", ErrBilibiliBadHeader, hlen, off, depth)
		}
		if op == BilibiliOpHeartbeatReply {
			// Read exactly 4 bytes after the header, whatever the length
			// field says, and ignore the echoed heartbeat behind them.
			if len(rest) < hlen+4 {
				return false, fmt.Errorf("%w: heartbeat reply needs 4 body bytes, has %d at offset %d (depth %d)", ErrBilibiliTruncated, max(0, len(rest)-hlen), off, depth)
			}
			p := BilibiliPacket{Ver: ver, Op: op, Seq: seq, Body: rest[hlen : hlen+4 : hlen+4], Depth: depth}
			return true, fn(p)
		}
		if plen < hlen {
			return false, fmt.Errorf("%w: packet length %d < header length %d at offset %d (depth %d)", ErrBilibiliBadHeader, plen, hlen, off, depth)
		}
		if plen > len(rest) {
			return false, fmt.Errorf("%w: packet length %d, only %d bytes left at offset %d (depth %d)", ErrBilibiliTruncated, plen, len(rest), off, depth)
		}
		body := rest[hlen:plen:plen]
		switch ver {
		case BilibiliVerZlib, BilibiliVerBrotli:
			if depth+1 >= BilibiliMaxDepth {
				return false, fmt.Errorf("%w: depth %d at offset %d", ErrBilibiliTooDeep, depth+1, off)
			}
			inner, err := d.inflate(ver, body, depth+1)
			if err != nil {
				return false, fmt.Errorf("%w at offset %d (depth %d)", err, off, depth)
			}
			if _, err := d.decode(inner, depth+1, fn); err != nil {
				return false, err
			}
		default:
			if err := fn(BilibiliPacket{Ver: ver, Op: op, Seq: seq, Body: body, Depth: depth}); err != nil {
				return false, err
			}
		}
		off += plen
	}
	return false, nil
}

// inflate decompresses body into the buffer of the given depth, charging
// the bytes to the per-message budget.
func (d *BilibiliDecoder) inflate(ver uint16, body []byte, depth int) ([]byte, error) {
	d.src.Reset(body)
	var r io.Reader
	if ver == BilibiliVerBrotli {
		if d.br == nil {
			d.br = brotli.NewReader(&d.src)
		} else if err := d.br.Reset(&d.src); err != nil {
			return nil, fmt.Errorf("%w: brotli: %v", ErrBilibiliDecompress, err)
		}
		r = d.br
	} else {
		if d.zr == nil {
			zr, err := zlib.NewReader(&d.src)
			if err != nil {
				return nil, fmt.Errorf("%w: zlib: %v", ErrBilibiliDecompress, err)
			}
			d.zr = zr
		} else if err := d.zr.(zlib.Resetter).Reset(&d.src, nil); err != nil {
			return nil, fmt.Errorf("%w: zlib: %v", ErrBilibiliDecompress, err)
		}
		r = d.zr
	}
	buf := d.bufs[depth][:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, max(4096, 4*len(body)))
	}
	stalls := 0
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow; len(buf) <= budget here
		}
		// Read at most one byte past the budget: enough to tell "too
		// large" from "exactly at the limit".
		limit := min(cap(buf), d.budget+1)
		n, err := r.Read(buf[len(buf):limit])
		buf = buf[:len(buf)+n]
		if n == 0 && err == nil {
			if stalls++; stalls > 100 {
				d.bufs[depth] = buf[:0]
				return nil, fmt.Errorf("%w: decompressor makes no progress", ErrBilibiliDecompress)
			}
		} else {
			stalls = 0
		}
		if len(buf) > d.budget {
			d.bufs[depth] = buf[:0]
			return nil, fmt.Errorf("%w (%d bytes)", ErrBilibiliTooLarge, d.budget)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			d.bufs[depth] = buf[:0]
			return nil, fmt.Errorf("%w: %v", ErrBilibiliDecompress, err)
		}
	}
	d.bufs[depth] = buf
	d.budget -= len(buf)
	return buf, nil
}
