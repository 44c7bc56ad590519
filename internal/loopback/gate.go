package loopback

import (
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
)

// Gate is a TCP proxy in front of a loopback server that a test can cut.
// While down it accepts connections and closes them at once, and it has
// closed every connection it was carrying: to a client this looks like a
// server that died or a network that dropped. Up lets connections through
// again, on the same address. Gate speaks no protocol of its own, so it
// works in front of any server here.
type Gate struct {
	target string // host:port
	ln     net.Listener
	wg     sync.WaitGroup // the accept loop and every pipe

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

// NewGate starts a gate in front of target, a URL or host:port; Close
// stops it.
func NewGate(target string) *Gate {
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		target = u.Host
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("loopback: gate listen: " + err.Error())
	}
	g := &Gate{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	g.wg.Add(1)
	go g.accept() // owner: the gate; ends when Close closes ln
	return g
}

// URL is u with its host:port replaced by the gate's.
func (g *Gate) URL(u string) string {
	return strings.Replace(u, g.target, g.ln.Addr().String(), 1)
}

// Down cuts every connection and refuses new ones until Up.
func (g *Gate) Down() {
	g.mu.Lock()
	g.down = true
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
}

// Up lets connections through again.
func (g *Gate) Up() {
	g.mu.Lock()
	g.down = false
	g.mu.Unlock()
}

// Close stops the gate and waits for its goroutines.
func (g *Gate) Close() {
	g.ln.Close()
	g.Down()
	g.wg.Wait()
}

func (g *Gate) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		if g.down {
			g.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", g.target)
		if err != nil {
			g.mu.Unlock()
			c.Close()
			continue
		}
		g.conns[c], g.conns[up] = struct{}{}, struct{}{}
		g.wg.Add(2)
		g.mu.Unlock()
		go g.pipe(c, up) // owner: the gate; ends when either side closes
		go g.pipe(up, c)
	}
}

// pipe copies src to dst, then closes both so the other direction ends too.
func (g *Gate) pipe(dst, src net.Conn) {
	defer g.wg.Done()
	_, _ = io.Copy(dst, src)
	g.mu.Lock()
	delete(g.conns, dst)
	delete(g.conns, src)
	g.mu.Unlock()
	dst.Close()
	src.Close()
}
