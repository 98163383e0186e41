package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConnectionFloodRefusedAtTheDoor holds 2,000 connections open from one client address
// (127.0.0.1), far over the per-client cap, while a legitimate client on another loopback
// address (127.0.0.2) keeps reading and writing: its requests must all succeed, the flood must
// be held at the cap, and the refusals counted. Before the caps every flooding connection was
// kept until the process ran out of descriptors.
func TestConnectionFloodRefusedAtTheDoor(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir(), MaxConns: 1000, MaxConnsPerClient: 100})
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			_ = c.Close()
		}
	}()
	for i := 0; i < 2000; i++ {
		c, err := net.Dial("tcp", s.Run.HTTPAddr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		flood = append(flood, c)
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	base := "http://" + s.Run.HTTPAddr
	for i := 0; i < 20; i++ {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("legitimate read %d during the flood: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("legitimate read %d: %d", i, resp.StatusCode)
		}
	}
	body, _ := json.Marshal(testkit.CreateBody("flood-survivor"))
	req, _ := http.NewRequest("POST", base+"/api/v1/opportunities", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Prefer", "wait=10")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("legitimate write during the flood: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("legitimate write during the flood: %d", resp.StatusCode)
	}
	resp, err = client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The harness's own idle connections from 127.0.0.1 take slots too, so at least 1,900.
	refused, open := -1.0, -1.0
	for _, l := range strings.Split(string(m), "\n") {
		if v, ok := strings.CutPrefix(l, "crm_http_connections_refused_total "); ok {
			refused, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(l, "crm_http_connections_open "); ok {
			open, _ = strconv.ParseFloat(v, 64)
		}
	}
	if refused < 1900 || refused > 2000 {
		t.Fatalf("%v connections refused, want 1,900 to 2,000 (2,000 from one address, cap 100)", refused)
	}
	// The flood's address holds its cap (100); the legitimate client may hold a few of its own.
	if open < 1 || open > 105 {
		t.Fatalf("%v connections open, want at most the per-client cap and the legitimate client's", open)
	}
}

// TestDescriptorLimitedProcessStaysUp runs serve with only 1,024 descriptors (ulimit -n) and
// floods it: 2,000 keep-alive connections from one address and 300 slow ones (headers never
// finished) from another. Before, a flood took every descriptor, new clients got no answer for
// 26 s and pebble then crashed the process in rotateWAL. Now the connection caps are fitted
// under the limit at start (leaving the stores and Kafka their share), the process stays up,
// and a third client's reads and writes are answered throughout.
func TestDescriptorLimitedProcessStaysUp(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	limited := func(c *exec.Cmd) {
		c.Path = "/bin/sh"
		c.Args = append([]string{"sh", "-c", `ulimit -n 1024 && exec "$0" "$@"`, bin}, c.Args[1:]...)
	}
	p := startProcWith(t, limited, "serve", "--data", t.TempDir(), "--http", "127.0.0.1:0",
		"--embedded-broker", "127.0.0.1:"+strings.Split(freePort(t), ":")[1], "--partitions", "1", "--memtable-mib", "1")
	if !strings.Contains(p.logs.String(), "HTTP connection cap lowered") {
		t.Fatalf("the caps were not fitted under the 1,024 descriptors:\n%s", tail(p.logs.String(), 3000))
	}
	// The default pipeline is seeded just after readiness: wait for it before the flood.
	testkit.Eventually(t, "the default pipeline seeded", func() bool {
		resp, err := http.Get("http://" + p.http + "/api/v1/pipelines/default")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			_ = c.Close()
		}
	}()
	for i := 0; i < 2000; i++ {
		c, err := net.Dial("tcp", p.http)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		flood = append(flood, c)
	}
	slowDialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	for i := 0; i < 300; i++ {
		c, err := slowDialer.Dial("tcp", p.http)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		_, _ = c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "))
		flood = append(flood, c)
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	base := "http://" + p.http
	var slowest time.Duration
	for i := 0; i < 30; i++ {
		start := time.Now()
		path := "/api/v1/pipelines/default"
		var resp *http.Response
		var err error
		if i%10 == 9 {
			body, _ := json.Marshal(testkit.CreateBody("fd-survivor-" + strconv.Itoa(i)))
			req, _ := http.NewRequest("POST", base+"/api/v1/opportunities", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Prefer", "wait=10")
			resp, err = client.Do(req)
		} else {
			resp, err = client.Get(base + path)
		}
		if err != nil {
			t.Fatalf("legitimate request %d during the flood: %v\n%s", i, err, tail(p.logs.String(), 3000))
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != 201 {
			t.Fatalf("legitimate request %d: %d", i, resp.StatusCode)
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("slowest legitimate request during the flood: %v", slowest)
	if slowest > 5*time.Second {
		t.Fatalf("a legitimate request took %v during the flood", slowest)
	}
	if p.dead() {
		t.Fatalf("the process died:\n%s", tail(p.logs.String(), 3000))
	}
	resp, err := client.Get(base + "/metrics") // from the legitimate address: 127.0.0.1 is at its cap
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	refused := -1.0
	for _, l := range strings.Split(string(m), "\n") {
		if v, ok := strings.CutPrefix(l, "crm_http_connections_refused_total "); ok {
			refused, _ = strconv.ParseFloat(v, 64)
		}
	}
	if refused < 1500 {
		t.Fatalf("%v connections refused, want most of the 2,300", refused)
	}
}
