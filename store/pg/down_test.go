package pg

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"lookout/item"
	"lookout/store"
)

// cutProxy forwards TCP to a PostgreSQL server until cut, which closes
// every connection and refuses new ones until mend.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) mend() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestWriterPostgresDown: while the server is unreachable the writer keeps
// the items, counts the failed writes and settles nothing; once it is back
// every item is stored once and settled.
func TestWriterPostgresDown(t *testing.T) {
	direct := newDSN(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	s := openDSN(t, u.String())
	check := openDSN(t, direct)

	reg := prometheus.NewRegistry()
	w := store.NewWriter(s, 20, 10*time.Millisecond, nil, reg)
	w.RetryMin, w.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	var mu sync.Mutex
	settled := 0
	w.Settled = func(b []item.Item) { mu.Lock(); settled += len(b); mu.Unlock() }
	in := make(chan item.Item, 8)
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background(), in) }()
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			in <- chat(fmt.Sprintf("d%03d", i), t0.Add(time.Duration(i)*time.Second), "弹幕", item.Neutral, 0)
		}
	}
	settledNow := func() int { mu.Lock(); defer mu.Unlock(); return settled }
	send(0, 50)
	waitUntil(t, "the first 50 settled", func() bool { return settledNow() == 50 })
	proxy.cut()
	send(50, 100)
	waitUntil(t, "failed writes counted", func() bool { return metricValue(t, reg, "lookout_store_write_errors_total") >= 2 })
	if n := settledNow(); n != 50 {
		t.Errorf("settled %d while the server was down, want 50", n)
	}
	if n := count(t, check, `SELECT count(*) FROM items`); n != 50 {
		t.Errorf("stored %d while down, want 50", n)
	}
	proxy.mend()
	waitUntil(t, "all settled after the server came back", func() bool { return settledNow() == 150 })
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := count(t, check, `SELECT count(DISTINCT item_id) FROM items`); n != 150 {
		t.Errorf("stored %d distinct items, want 150", n)
	}
	if n := count(t, check, `SELECT count(*) FROM items`); n != 150 {
		t.Errorf("stored %d rows, want 150", n)
	}
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
