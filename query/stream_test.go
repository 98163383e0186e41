package query

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/views"
)

// sseBlock is one block of an event stream (the lines up to a blank line): an event, or
// fields without data (an id, a retry), or comments.
type sseBlock struct {
	Event, ID, Data, Retry string
	Comments               []string
}

// sseClient reads a live stream over a real connection, block by block.
type sseClient struct {
	t      testing.TB
	resp   *http.Response
	cancel context.CancelFunc
	blocks chan sseBlock
	ended  chan struct{} // closed when the body ends
}

// openStream opens GET path on srv with header name, value pairs and returns once the
// answer's headers are in; the stream is closed when the test ends.
func openStream(t testing.TB, srv *httptest.Server, path string, headers ...string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	c := &sseClient{t: t, resp: resp, cancel: cancel, blocks: make(chan sseBlock, 10000), ended: make(chan struct{})}
	t.Cleanup(c.close)
	if resp.StatusCode != http.StatusOK {
		return c
	}
	go c.read()
	return c
}

func (c *sseClient) close() {
	c.cancel()
	c.resp.Body.Close()
}

func (c *sseClient) read() {
	defer close(c.ended)
	sc := bufio.NewScanner(c.resp.Body)
	var b sseBlock
	empty := true
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if !empty {
				c.blocks <- b
			}
			b, empty = sseBlock{}, true
			continue
		}
		empty = false
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			b.Comments = append(b.Comments, value)
		case "event":
			b.Event = value
		case "id":
			b.ID = value
		case "data":
			if b.Data != "" {
				b.Data += "\n"
			}
			b.Data += value
		case "retry":
			b.Retry = value
		default:
			c.t.Errorf("unknown stream field in %q", line)
		}
	}
}

// next returns the next block, failing the test after 5 s.
func (c *sseClient) next() sseBlock {
	c.t.Helper()
	select {
	case b := <-c.blocks:
		return b
	case <-c.ended:
		select {
		case b := <-c.blocks:
			return b
		default:
		}
		c.t.Fatal("the stream ended")
	case <-time.After(5 * time.Second):
		c.t.Fatal("no block on the stream within 5 s")
	}
	return sseBlock{}
}

// nextEvent skips blocks without an event (heartbeats, ids) up to the next event.
func (c *sseClient) nextEvent() sseBlock {
	c.t.Helper()
	for {
		if b := c.next(); b.Event != "" {
			return b
		}
	}
}

// noEvent fails if an event arrives within d.
func (c *sseClient) noEvent(d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case b := <-c.blocks:
			if b.Event != "" {
				c.t.Fatalf("unexpected event %+v", b)
			}
		case <-deadline:
			return
		}
	}
}

// waitEnded fails unless the server ends the stream within d.
func (c *sseClient) waitEnded(d time.Duration) {
	c.t.Helper()
	select {
	case <-c.ended:
	case <-time.After(d):
		c.t.Fatalf("the stream did not end within %v", d)
	}
}

func newStreamServer(t testing.TB, e *env) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	return srv
}

func dataJSON(t testing.TB, b sseBlock) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(b.Data), &m); err != nil {
		t.Fatalf("event data is not a JSON object: %v: %q", err, b.Data)
	}
	return m
}

func TestStreamOpportunityEvents(t *testing.T) {
	e := newEnv(t)
	srv := newStreamServer(t, e)
	c := openStream(t, srv, "/api/v1/stream")
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
	} {
		if got := c.resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// The first block: a comment, the reconnection delay and the place the stream starts
	// at, so a reconnect before the first event still resumes.
	if b := c.next(); b.Event != "" || b.Retry != "2000" || b.ID != "test-0" || len(b.Comments) != 1 {
		t.Fatalf("first block %+v", b)
	}
	e.create(t, "opp-s1")
	b := c.nextEvent()
	if b.Event != "opportunity" || b.ID != "test-1" {
		t.Fatalf("event %+v, want opportunity test-1", b)
	}
	// The same shape as GET /opportunities/{id}, stage name included.
	got := dataJSON(t, b)
	want := wantJSON(t, e.do(t, "GET", "/api/v1/opportunities/opp-s1", ""), 200)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stream data\n%v\nGET\n%v", got, want)
	}
	if got["stageName"] != "Qualification" {
		t.Fatalf("stageName %v", got["stageName"])
	}
	wantJSON(t, e.do(t, "PATCH", "/api/v1/opportunities/opp-s1", `{"name":"Renamed"}`, "Prefer", "wait=5"), 200)
	b = c.nextEvent()
	if m := dataJSON(t, b); b.ID != "test-2" || m["version"] != 2.0 || m["name"] != "Renamed" {
		t.Fatalf("second event %+v", b)
	}
	// A refused command changes nothing, so it is no event.
	e.do(t, "PATCH", "/api/v1/opportunities/opp-s1", `{"name":"x","expectedVersion":1}`, "Prefer", "wait=5")
	c.noEvent(100 * time.Millisecond)
	if n := e.metric(t, "crm_streams_open"); n != 1 {
		t.Fatalf("crm_streams_open = %v, want 1", n)
	}
}

// metric is the value of an unlabelled gauge or counter of the env's registry (0 if absent).
func (e *env) metric(t testing.TB, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
		}
	}
	return 0
}

func TestStreamFilters(t *testing.T) {
	e := newEnv(t)
	srv := newStreamServer(t, e)
	analyticsP2 := openStream(t, srv, "/api/v1/stream?types=analytics&pipelineId=p2")
	ownerU7 := openStream(t, srv, "/api/v1/stream?types=opportunity&ownerId=u-7")
	both := openStream(t, srv, "/api/v1/stream?types=opportunity,analytics&pipelineId=default")

	e.create(t, "opp-f1") // owner u-7: test-1
	other := strings.Replace(validCreate, `"u-7"`, `"u-8"`, 1)
	wantJSON(t, e.do(t, "POST", "/api/v1/opportunities", strings.Replace(other, `{`, `{"id":"opp-f2",`, 1), "Prefer", "wait=5"), 201) // test-2
	from, _ := domain.ParseDate("2025-01-01")
	to, _ := domain.ParseDate("2025-03-31")
	e.fb.feed.PublishAnalytics(views.AnalyticsChange{PipelineIDs: []string{"default"}, OwnerIDs: []string{"u-7"}, From: from, To: to, Position: "0:4"}) // test-3
	e.fb.feed.PublishAnalytics(views.AnalyticsChange{PipelineIDs: []string{"p2"}, From: from, To: to, Position: "0:5,1:7"})                             // test-4

	if b := ownerU7.nextEvent(); b.Event != "opportunity" || b.ID != "test-1" || dataJSON(t, b)["id"] != "opp-f1" {
		t.Fatalf("ownerId=u-7: %+v", b)
	}
	ownerU7.noEvent(100 * time.Millisecond)

	b := analyticsP2.nextEvent()
	if b.Event != "analytics" || b.ID != "test-4" {
		t.Fatalf("types=analytics&pipelineId=p2: %+v", b)
	}
	if want := `{"pipelineIds":["p2"],"ownerIds":[],"dates":{"from":"2025-01-01","to":"2025-03-31"},"position":"0:5,1:7"}`; b.Data != want {
		t.Fatalf("analytics data %s, want %s", b.Data, want)
	}
	analyticsP2.noEvent(50 * time.Millisecond)

	var ids []string
	for range 3 {
		b := both.nextEvent()
		ids = append(ids, b.Event+" "+b.ID)
	}
	if want := []string{"opportunity test-1", "opportunity test-2", "analytics test-3"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("pipelineId=default: %v, want %v", ids, want)
	}
}

func TestStreamBadQuery(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ query, field string }{
		{"types=deals", "types"},
		{"types=opportunity,bogus", "types"},
		{"types=", ""}, // empty counts as absent
		{"pipelineId=a&pipelineId=b", "pipelineId"},
		{"ownerId=" + strings.Repeat("x", maxFilterLen+1), "ownerId"},
		{"lastEventId=a&lastEventId=b", "lastEventId"},
		{"types=%zz", "query"},
	} {
		rec := e.do(t, "GET", "/api/v1/stream?"+tc.query, "")
		if tc.field == "" {
			if rec.Code != 200 {
				t.Errorf("?%s: %d %s", tc.query, rec.Code, rec.Body)
			}
			continue
		}
		if p := wantProblem(t, rec, http.StatusBadRequest, codeInvalidQuery); !p.hasField(tc.field) {
			t.Errorf("?%s: problem names %v, want %s", tc.query, p.fields(), tc.field)
		}
	}
}

func TestStreamCap(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxStreams = 2 })
	srv := newStreamServer(t, e)
	first := openStream(t, srv, "/api/v1/stream")
	openStream(t, srv, "/api/v1/stream")
	third := openStream(t, srv, "/api/v1/stream")
	if third.resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third stream: %d, want 503", third.resp.StatusCode)
	}
	body, _ := io.ReadAll(third.resp.Body)
	var p problemBody
	if err := json.Unmarshal(body, &p); err != nil || p.Code != codeTooManyStreams || third.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream's problem %s (Retry-After %q)", body, third.resp.Header.Get("Retry-After"))
	}
	if n := e.metric(t, "crm_streams_open"); n != 2 {
		t.Fatalf("crm_streams_open = %v, want 2", n)
	}
	// Other reads are not capped.
	wantJSON(t, e.do(t, "GET", "/api/v1/pipelines", ""), 200)
	// A slot frees when a client goes.
	first.close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := openStream(t, srv, "/api/v1/stream")
		if c.resp.StatusCode == http.StatusOK {
			break
		}
		c.close()
		if time.Now().After(deadline) {
			t.Fatal("no stream slot after a client went")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StreamHeartbeat = 20 * time.Millisecond })
	srv := newStreamServer(t, e)
	c := openStream(t, srv, "/api/v1/stream?ownerId=nobody")
	c.next() // the opening block
	beats := 0
	for beats < 3 {
		if b := c.next(); len(b.Comments) == 1 && b.Comments[0] == "heartbeat" && b.Event == "" {
			beats++
		} else {
			t.Fatalf("block %+v, want a heartbeat", b)
		}
	}
	// A change the filter skips moves the resume point: the next heartbeat carries it.
	e.create(t, "opp-h1")
	for {
		b := c.next()
		if b.Event != "" {
			t.Fatalf("filtered stream got %+v", b)
		}
		if b.ID == "test-1" {
			break
		}
	}
}

func TestStreamResume(t *testing.T) {
	e := newEnv(t)
	srv := newStreamServer(t, e)
	for _, id := range []string{"opp-r1", "opp-r2", "opp-r3"} {
		e.create(t, id) // test-1 .. test-3
	}
	c := openStream(t, srv, "/api/v1/stream", "Last-Event-ID", "test-1")
	if b := c.next(); b.ID != "" || b.Retry == "" {
		t.Fatalf("a resumed stream's first block %+v: it must not move the client's id", b)
	}
	for _, want := range []string{"test-2", "test-3"} {
		if b := c.nextEvent(); b.ID != want {
			t.Fatalf("resumed event %+v, want %s", b, want)
		}
	}
	e.create(t, "opp-r4")
	if b := c.nextEvent(); b.ID != "test-4" || dataJSON(t, b)["id"] != "opp-r4" {
		t.Fatalf("live event after the replay %+v", b)
	}
	c.noEvent(50 * time.Millisecond)

	// The polyfills' query parameter; the header wins over it.
	q := openStream(t, srv, "/api/v1/stream?lastEventId=test-3")
	if b := q.nextEvent(); b.ID != "test-4" {
		t.Fatalf("lastEventId=test-3: %+v", b)
	}
	h := openStream(t, srv, "/api/v1/stream?lastEventId=test-1", "Last-Event-ID", "test-3")
	if b := h.nextEvent(); b.ID != "test-4" {
		t.Fatalf("header and parameter: %+v", b)
	}

	// A token of another process: reset, with the id to resume from after reloading.
	r := openStream(t, srv, "/api/v1/stream", "Last-Event-ID", "0a1b2c-3")
	b := r.nextEvent()
	if b.Event != "reset" || b.ID != "test-4" || dataJSON(t, b)["reason"] != views.ResetUnknownToken {
		t.Fatalf("foreign token: %+v", b)
	}
	e.create(t, "opp-r5")
	if b := r.nextEvent(); b.ID != "test-5" {
		t.Fatalf("after the reset %+v", b)
	}
	if n := e.metric(t, "crm_stream_resets_total"); n != 1 {
		t.Fatalf("crm_stream_resets_total = %v, want 1", n)
	}

	// A token older than the replay window (the fake's feed holds 64 changes).
	e2 := newEnv(t)
	srv2 := newStreamServer(t, e2)
	e2.create(t, "opp-old") // test-1
	for i := range 70 {
		e2.fb.feed.PublishAnalytics(views.AnalyticsChange{Position: fmt.Sprint(i)})
	}
	old := openStream(t, srv2, "/api/v1/stream", "Last-Event-ID", "test-1")
	if b := old.nextEvent(); b.Event != "reset" || b.ID != "test-71" || dataJSON(t, b)["reason"] != views.ResetTooOld {
		t.Fatalf("too old: %+v", b)
	}
	if n := e2.metric(t, "crm_stream_resets_total"); n != 1 {
		t.Fatalf("crm_stream_resets_total = %v, want 1", n)
	}
}

func TestStreamGates(t *testing.T) {
	e := newAuthEnv(t)
	want401(t, e.do(t, "GET", "/api/v1/stream", ""), challenge)
	rec := e.do(t, "GET", "/api/v1/stream", "", bearer(readTok)...)
	if rec.Code != 200 || !strings.HasPrefix(rec.Body.String(), ": crm-pipeline live change stream\nretry: 2000\nid: test-0\n\n") {
		t.Fatalf("with a read token: %d %q", rec.Code, rec.Body)
	}
	wantProblem(t, e.do(t, "GET", "/api/v1/stream", "", append(bearer(readTok), "Host", "evil.example")...), http.StatusForbidden, codeHostNotAllowed)
	e.fb.setReady(false)
	wantProblem(t, e.do(t, "GET", "/api/v1/stream", "", bearer(readTok)...), http.StatusServiceUnavailable, codeNotReady)
}

// Streams survive the server's read and write timeouts (a stream lasts far longer than a
// request), and end at once when the server shuts down, so Shutdown does not wait for them.
func TestStreamOutlivesServerTimeoutsAndEndsOnShutdown(t *testing.T) {
	stop := make(chan struct{})
	e := newEnv(t, func(c *Config) { c.StreamsStop = stop; c.StreamHeartbeat = 50 * time.Millisecond })
	srv := httptest.NewUnstartedServer(e.h)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Config.RegisterOnShutdown(func() { close(stop) })
	srv.Start()
	t.Cleanup(srv.Close)

	c := openStream(t, srv, "/api/v1/stream")
	time.Sleep(time.Second)
	e.create(t, "opp-t1")
	if b := c.nextEvent(); b.ID != "test-1" {
		t.Fatalf("after the server's timeouts: %+v", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with an open stream: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	c.waitEnded(2 * time.Second)
	if n := e.metric(t, "crm_streams_open"); n != 0 {
		t.Fatalf("crm_streams_open = %v after shutdown", n)
	}
}

// A client that stops reading is dropped after the write timeout, and meanwhile another
// client's stream is not held up by it.
func TestStreamDropsAStalledClient(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StreamWriteTimeout = 300 * time.Millisecond })
	e.fb.feed = views.NewFeed(views.FeedConfig{Size: 1 << 17, Epoch: testFeedEpoch}) // the reader never falls behind
	e.fb.feed.GoLive()
	srv := newStreamServer(t, e)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /api/v1/stream HTTP/1.1\r\nHost: %s\r\n\r\n", srv.Listener.Addr())
	// It never reads. Another client does.
	reader := openStream(t, srv, "/api/v1/stream?types=analytics&ownerId=marker")
	for e.metric(t, "crm_streams_open") != 2 {
		time.Sleep(5 * time.Millisecond) // the raw request is being read
	}
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	big := strings.Repeat("x", 4096)
	for i := 0; e.metric(t, "crm_streams_open") > 1; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the stalled client was not dropped within 20 s")
		}
		e.fb.feed.PublishAnalytics(views.AnalyticsChange{OwnerIDs: []string{"bulk"}, Position: big})
		if i%500 == 0 {
			e.fb.feed.PublishAnalytics(views.AnalyticsChange{OwnerIDs: []string{"marker"}, Position: fmt.Sprint(i)})
			sent := time.Now()
			if b := reader.nextEvent(); b.Event != "analytics" || dataJSON(t, b)["position"] != fmt.Sprint(i) {
				t.Fatalf("the reading client got %+v", b)
			}
			if d := time.Since(sent); d > time.Second {
				t.Fatalf("the reading client waited %v for a change", d)
			}
		}
	}
	t.Logf("the stalled client was dropped after %v", time.Since(start))
}
