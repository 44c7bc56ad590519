package stream

import (
	"io"
	"time"

	"github.com/gorilla/websocket"
)

// Reader reads one connection's WebSocket messages into a buffer it keeps
// between messages, where conn.ReadMessage allocates a new one (and grows
// it from 512 bytes) for every message: a busy room's collector pays per
// frame only the copy out of the connection's read buffer. It also moves
// the connection's read deadline forward at most a few times per timeout
// instead of on every message. Not safe for concurrent use: one per
// reading goroutine.
type Reader struct {
	buf   []byte
	setAt time.Time // when ExtendDeadline last set the deadline
}

// Reader buffer sizes: a new buffer starts at readerInitial bytes; one
// grown past readerKeep by a rare large message is dropped before the
// next read, so an idle connection does not hold a MaxFrame-sized buffer.
const (
	readerInitial = 8 << 10
	readerKeep    = 64 << 10
)

// Read reads the next message of conn. The bytes alias the Reader's buffer
// and are valid until the next Read: copy what must outlive it. Errors are
// those of conn.NextReader and of reading the message (a message over the
// connection's read limit fails with websocket.ErrReadLimit).
func (r *Reader) Read(conn *websocket.Conn) (messageType int, p []byte, err error) {
	if cap(r.buf) > readerKeep {
		r.buf = nil
	}
	typ, mr, err := conn.NextReader()
	if err != nil {
		return typ, nil, err
	}
	buf := r.buf[:0]
	if buf == nil {
		buf = make([]byte, 0, readerInitial)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow
		}
		n, err := mr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			r.buf = buf
			return typ, buf, nil
		}
		if err != nil {
			r.buf = buf
			return typ, nil, err
		}
	}
}

// ExtendDeadline sets conn's read deadline to now+timeout, unless it was
// set less than timeout/16 ago (so the deadline is never more than that
// short of now+timeout). A deadline set elsewhere on conn in between is
// overwritten only when this one is due; call ResetDeadline after setting one.
func (r *Reader) ExtendDeadline(conn *websocket.Conn, now time.Time, timeout time.Duration) {
	if !r.setAt.IsZero() {
		if d := now.Sub(r.setAt); d >= 0 && d < timeout/16 {
			return
		}
	}
	r.setAt = now
	_ = conn.SetReadDeadline(now.Add(timeout))
}

// ResetDeadline forgets the deadline ExtendDeadline last set, so that its
// next call sets one.
func (r *Reader) ResetDeadline() { r.setAt = time.Time{} }
