package connlimit

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestCapsHoldUnderAFlood opens more idle connections than the per-address cap allows from one
// client address and checks that the extra ones are closed at once, that the cap is held, and
// that closing connections gives their slots back so an HTTP request then succeeds.
func TestCapsHoldUnderAFlood(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	l := New(raw, 100, 20, func() { refused.Add(1) })
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	var conns []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for refused.Load() < 180 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := refused.Load(); got != 180 {
		t.Fatalf("%d connections refused, want 180 (200 from one address, cap 20)", got)
	}
	if open := l.Open(); open != 20 {
		t.Fatalf("%d connections open, want the cap of 20", open)
	}
	// A flooding client's connections beyond the cap see their connection closed.
	_ = conns[199].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[199].Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection beyond the cap was kept")
	}
	for _, c := range conns {
		_ = c.Close()
	}
	for l.Open() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + raw.Addr().String() + "/")
	if err != nil {
		t.Fatalf("a request after the flood: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("answer %q", b)
	}
}

// TestTotalCap: the total cap holds across addresses (here one address with no per-address cap).
func TestTotalCap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(raw, 5, 0, nil)
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for i := 0; i < 8; i++ {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(accepted); n != 5 {
		t.Fatalf("%d accepted, want the total cap of 5", n)
	}
	(<-accepted).Close()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("a freed slot was not given to the next connection")
	}
}
