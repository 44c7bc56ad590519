package bilibili

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
)

// Bilibili danmaku frame codec. A WebSocket binary
// message holds one or more packets, each a 16-byte big-endian header
// (length, header length, protocol version, operation, sequence) and a body.
// Compressed bodies (protover 2 zlib, 3 brotli) decompress into further
// packets.

// Header layout and constants.
const (
	HeaderLen = 16

	VerPlain  = 0 // plain JSON body
	VerInt    = 1 // heartbeat/auth: uncompressed, body may be an int or JSON
	VerZlib   = 2 // zlib (RFC 1950) body of nested packets
	VerBrotli = 3 // brotli body of nested packets

	OpHeartbeat      = 2 // client → server
	OpHeartbeatReply = 3 // server → client: u32 popularity
	OpMessage        = 5 // server → client: command JSON
	OpAuth           = 7 // client → server
	OpAuthReply      = 8 // server → client: {"code":0}
)

// Decoder limits. Real servers nest exactly one level and send a few KiB
// per message; the limits only exist to make hostile input cheap.
const (
	MaxDepth        = 4        // nesting of compressed bodies
	MaxDecompressed = 16 << 20 // bytes inflated per WebSocket message
)

// Errors the decoder returns (wrapped with the offset and depth).
var (
	ErrBilibiliTruncated  = errors.New("bilibili frame: truncated packet")
	ErrBilibiliBadHeader  = errors.New("bilibili frame: bad header")
	ErrBilibiliTooDeep    = errors.New("bilibili frame: compressed packets nested too deep")
	ErrBilibiliTooLarge   = errors.New("bilibili frame: decompressed body exceeds limit")
	ErrBilibiliDecompress = errors.New("bilibili frame: cannot decompress body")
)

// Packet is one decoded packet. Body aliases the decoder's buffers
// (or the input message) and is valid only during the callback; copy what
// must outlive it.
type Packet struct {
	Ver   uint16
	Op    uint32
	Seq   uint32
	Body  []byte
	Depth int // 0 for packets at the top of the message, 1 inside one compressed body, …
}

// Popularity returns the u32 of an op-3 heartbeat reply.
func (p Packet) Popularity() (uint32, bool) {
	if p.Op != OpHeartbeatReply || len(p.Body) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p.Body), true
}

// AppendBilibiliPacket appends one encoded packet to dst.
func AppendBilibiliPacket(dst []byte, ver uint16, op, seq uint32, body []byte) []byte {
	var h [HeaderLen]byte
	binary.BigEndian.PutUint32(h[0:], uint32(HeaderLen+len(body)))
	binary.BigEndian.PutUint16(h[4:], HeaderLen)
	binary.BigEndian.PutUint16(h[6:], ver)
	binary.BigEndian.PutUint32(h[8:], op)
	binary.BigEndian.PutUint32(h[12:], seq)
	dst = append(dst, h[:]...)
	return append(dst, body...)
}

// Decoder splits WebSocket messages into packets. Its decompressors and
// buffers come from a pool shared by every Decoder and are held only
// during Decode (its callbacks included: packet bodies alias the buffers),
// so many rooms share as many sets as are decoding, or waiting in a
// callback, at once rather than keeping one per connection, and decoding
// still makes no steady-state allocations. It is not safe for concurrent
// use.
type Decoder struct {
	// MaxDecompressed bounds the bytes inflated per Decode call (default
	// MaxDecompressed).
	MaxDecompressed int

	inf    *inflater // from inflaters, during Decode only
	budget int
	// sizes is how large the last body inflated to at each nesting
	// depth: a busy room's next body is about as large, so its buffer
	// is made that size at once instead of grown by doubling, each step
	// a copy (the pool's buffers go with every garbage collection).
	sizes [MaxDepth]int
}

// inflater is the decompression state a Decode call needs: both readers
// (reset per body) and one output buffer per nesting depth.
type inflater struct {
	src  bytes.Reader
	br   *brotli.Reader
	zr   io.ReadCloser
	bufs [MaxDepth][]byte
}

// inflaterKeep is the largest output buffer an inflater keeps when it
// goes back to the pool: most bodies inflate to a few KiB to some tens of
// KiB, a busy room's (some hundreds of messages a push) to a few hundred,
// and one huge body should not pin its buffer.
const inflaterKeep = 1 << 20

// inflaters pools inflater values across Decoders. It holds no state
// that outlives a Decode call: an inflater's readers are reset for every
// body and its buffers overwritten.
var inflaters = sync.Pool{New: func() any { return new(inflater) }}

// Decode calls fn for every packet in msg, descending into compressed
// bodies. An op-3 heartbeat reply yields its 4-byte popularity and ends the
// message: the server appends an echo of the client heartbeat that the
// length field does not cover. On a malformed packet Decode stops and
// returns an error wrapping one of the ErrBilibili* values; packets before it
// have already been passed to fn. An error from fn stops decoding and is
// returned as is.
func (d *Decoder) Decode(msg []byte, fn func(Packet) error) error {
	d.budget = d.MaxDecompressed
	if d.budget <= 0 {
		d.budget = MaxDecompressed
	}
	_, err := d.decode(msg, 0, fn)
	if inf := d.inf; inf != nil {
		d.inf = nil
		for i, b := range inf.bufs {
			if cap(b) > inflaterKeep {
				inf.bufs[i] = nil
			}
		}
		inf.src.Reset(nil) // drop the reference to msg
		inflaters.Put(inf)
	}
	return err
}

// decode walks the packets of buf; stop reports an op-3 reply that ends
// the enclosing message.
func (d *Decoder) decode(buf []byte, depth int, fn func(Packet) error) (stop bool, err error) {
	off := 0
	for off < len(buf) {
		rest := buf[off:]
		if len(rest) < HeaderLen {
			return false, fmt.Errorf("%w: %d bytes left for a 16-byte header at offset %d (depth %d)", ErrBilibiliTruncated, len(rest), off, depth)
		}
		plen := int(binary.BigEndian.Uint32(rest[0:]))
		hlen := int(binary.BigEndian.Uint16(rest[4:]))
		ver := binary.BigEndian.Uint16(rest[6:])
		op := binary.BigEndian.Uint32(rest[8:])
		seq := binary.BigEndian.Uint32(rest[12:])
		if hlen < HeaderLen {
			return false, fmt.Errorf("%w: header length %d < 16 at offset %d (depth %d)", ErrBilibiliBadHeader, hlen, off, depth)
		}
		if op == OpHeartbeatReply {
			// Read exactly 4 bytes after the header, whatever the length
			// field says, and ignore the echoed heartbeat behind them.
			if len(rest) < hlen+4 {
				return false, fmt.Errorf("%w: heartbeat reply needs 4 body bytes, has %d at offset %d (depth %d)", ErrBilibiliTruncated, max(0, len(rest)-hlen), off, depth)
			}
			p := Packet{Ver: ver, Op: op, Seq: seq, Body: rest[hlen : hlen+4 : hlen+4], Depth: depth}
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
		case VerZlib, VerBrotli:
			if depth+1 >= MaxDepth {
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
			if err := fn(Packet{Ver: ver, Op: op, Seq: seq, Body: body, Depth: depth}); err != nil {
				return false, err
			}
		}
		off += plen
	}
	return false, nil
}

// inflate decompresses body into the buffer of the given depth, charging
// the bytes to the per-message budget.
func (d *Decoder) inflate(ver uint16, body []byte, depth int) ([]byte, error) {
	if d.inf == nil {
		d.inf = inflaters.Get().(*inflater)
	}
	f := d.inf
	f.src.Reset(body)
	var r io.Reader
	if ver == VerBrotli {
		if f.br == nil {
			f.br = brotli.NewReader(&f.src)
		} else if err := f.br.Reset(&f.src); err != nil {
			return nil, fmt.Errorf("%w: brotli: %v", ErrBilibiliDecompress, err)
		}
		r = f.br
	} else {
		if f.zr == nil {
			zr, err := zlib.NewReader(&f.src)
			if err != nil {
				return nil, fmt.Errorf("%w: zlib: %v", ErrBilibiliDecompress, err)
			}
			f.zr = zr
		} else if err := f.zr.(zlib.Resetter).Reset(&f.src, nil); err != nil {
			return nil, fmt.Errorf("%w: zlib: %v", ErrBilibiliDecompress, err)
		}
		r = f.zr
	}
	buf := f.bufs[depth][:0]
	if want := max(4096, 4*len(body), d.sizes[depth]+d.sizes[depth]/8); cap(buf) < want {
		buf = make([]byte, 0, min(want, d.budget+1))
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
				f.bufs[depth] = buf[:0]
				return nil, fmt.Errorf("%w: decompressor makes no progress", ErrBilibiliDecompress)
			}
		} else {
			stalls = 0
		}
		if len(buf) > d.budget {
			f.bufs[depth] = buf[:0]
			return nil, fmt.Errorf("%w (%d bytes)", ErrBilibiliTooLarge, d.budget)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			f.bufs[depth] = buf[:0]
			return nil, fmt.Errorf("%w: %v", ErrBilibiliDecompress, err)
		}
	}
	f.bufs[depth] = buf
	d.sizes[depth] = len(buf)
	d.budget -= len(buf)
	return buf, nil
}
