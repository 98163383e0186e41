// Package connlimit caps the connections an HTTP listener holds open, in total and per client
// address, so that a flood of keep-alive or slow connections is refused at the door instead of
// using up the process's file descriptors (which pebble and the Kafka clients need too).
//
// Imports from this module: none (the README's package table, checked by imports_test.go).
package connlimit

import (
	"net"
	"sync"
)

// Listener wraps a net.Listener. A connection beyond either cap is closed at once after
// accept: the kernel's backlog is drained, the descriptor freed, and the client sees a reset
// rather than a hang.
type Listener struct {
	net.Listener
	maxTotal, maxPerAddr int

	mu       sync.Mutex
	total    int
	perAddr  map[string]int
	refusals func()
}

// New caps l at maxTotal open connections and maxPerAddr per client IP; a cap of 0 or less is
// no cap. onRefuse, if not nil, is called for every refused connection (a metric).
func New(l net.Listener, maxTotal, maxPerAddr int, onRefuse func()) *Listener {
	return &Listener{Listener: l, maxTotal: maxTotal, maxPerAddr: maxPerAddr, perAddr: map[string]int{}, refusals: onRefuse}
}

// Accept returns the next connection within the caps, closing those beyond them.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := hostOf(c.RemoteAddr())
		if l.admit(addr) {
			return &conn{Conn: c, l: l, addr: addr}, nil
		}
		_ = c.Close()
		if l.refusals != nil {
			l.refusals()
		}
	}
}

func (l *Listener) admit(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxTotal > 0 && l.total >= l.maxTotal {
		return false
	}
	if l.maxPerAddr > 0 && l.perAddr[addr] >= l.maxPerAddr {
		return false
	}
	l.total++
	l.perAddr[addr]++
	return true
}

func (l *Listener) release(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perAddr[addr]--; l.perAddr[addr] <= 0 {
		delete(l.perAddr, addr)
	}
}

// Open reports the connections held open now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// conn gives its slot back exactly once when closed.
type conn struct {
	net.Conn
	l    *Listener
	addr string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}
