package stream

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsPair serves the messages msgs over a real WebSocket and returns the
// client end.
func wsPair(t *testing.T, msgs [][]byte) *websocket.Conn {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for _, m := range msgs {
			if err := c.WriteMessage(websocket.BinaryMessage, m); err != nil {
				return
			}
		}
		c.ReadMessage() // hold the connection open until the client goes
	}))
	t.Cleanup(srv.Close)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestReaderReusesItsBuffer(t *testing.T) {
	big := bytes.Repeat([]byte("弹幕"), readerKeep) // 6× readerKeep bytes
	msgs := [][]byte{[]byte("one"), bytes.Repeat([]byte{'x'}, 3*readerInitial), []byte("three"), big, []byte("five"), {}}
	conn := wsPair(t, msgs)
	var r Reader
	var prev []byte
	for i, want := range msgs {
		typ, got, err := r.Read(conn)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if typ != websocket.BinaryMessage || !bytes.Equal(got, want) {
			t.Fatalf("message %d: type %d, %d bytes, want %d", i, typ, len(got), len(want))
		}
		switch i {
		case 2: // after a 24 KiB message the grown buffer is kept and reused
			if &got[:1][0] != &prev[:1][0] {
				t.Error("message 2 did not reuse the buffer of message 1")
			}
		case 4: // after a message past readerKeep the big buffer is dropped
			if cap(got) > readerKeep {
				t.Errorf("buffer of %d bytes kept after a large message", cap(got))
			}
		}
		prev = got
	}
}

func TestReaderReadLimit(t *testing.T) {
	conn := wsPair(t, [][]byte{bytes.Repeat([]byte{'x'}, 5000)})
	conn.SetReadLimit(4096)
	var r Reader
	if _, _, err := r.Read(conn); !errors.Is(err, websocket.ErrReadLimit) {
		t.Fatalf("err = %v, want ErrReadLimit", err)
	}
}

func TestReaderDeadline(t *testing.T) {
	conn := wsPair(t, nil) // the server sends nothing
	var r Reader
	now := time.Now()
	r.ExtendDeadline(conn, now, 200*time.Millisecond)
	// Within timeout/16 the deadline is not moved: a far-future timeout
	// passed now must not replace the one set above.
	r.ExtendDeadline(conn, now.Add(5*time.Millisecond), time.Hour)
	start := time.Now()
	if _, _, err := r.Read(conn); err == nil {
		t.Fatal("read without a message returned no error")
	} else if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("deadline hit after %v", el)
	}
}

func TestReaderDeadlineIsMovedWhenDue(t *testing.T) {
	conn := wsPair(t, [][]byte{[]byte("late")})
	var r Reader
	past := time.Now().Add(-time.Hour)
	r.ExtendDeadline(conn, past, time.Minute) // already expired
	// Due (more than timeout/16 later): the deadline moves forward, so the
	// read succeeds.
	r.ExtendDeadline(conn, time.Now(), time.Minute)
	if _, got, err := r.Read(conn); err != nil || string(got) != "late" {
		t.Fatalf("got %q, %v", got, err)
	}
	r.ResetDeadline()
	r.ExtendDeadline(conn, past, time.Minute) // reset: set even though recent
	if _, _, err := r.Read(conn); err == nil {
		t.Fatal("a deadline set after ResetDeadline was ignored")
	}
}
