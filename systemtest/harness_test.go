package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/app"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// service is one in-process `crm-pipeline serve` for integration tests: real embedded broker
// over TCP, real processors, views, pebble stores and HTTP.
type service struct {
	t      *testing.T
	run    *app.Running
	cancel context.CancelFunc
	done   chan error
	base   string
	root   string       // scheme and host: http://127.0.0.1:port
	client *http.Client // trusts the test certificate when the service serves TLS
	token  string       // sent as a bearer token when set
}

type serviceOpts struct {
	data    string
	brokers []string // empty: embedded broker
	clock   func() time.Time
	// instanceID is --instance-id ("none": dynamic membership, which leaves the group on a
	// clean stop, so the group is empty at once).
	instanceID string
	// maxConns and maxConnsPerClient are --max-connections and --max-connections-per-client
	// (0: no cap, the tests' default).
	maxConns, maxConnsPerClient int
	// tokens is --tokens; the harness sends the first one's token with every request.
	tokens string
	// tls serves HTTPS with this test certificate.
	tls *testCert
}

func startService(t *testing.T, o serviceOpts) *service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *app.Running, 1)
	cfg := app.Config{
		Brokers: o.brokers, Data: o.data, HTTP: "127.0.0.1:0", EmbeddedBroker: "127.0.0.1:0",
		Partitions: 4, ReportingCurrency: "USD", CacheMiB: 8, ShutdownTimeout: 10 * time.Second,
		Clock: o.clock, Started: func(r *app.Running) { started <- r }, InstanceID: o.instanceID,
		MaxConns: o.maxConns, MaxConnsPerClient: o.maxConnsPerClient, TokenList: o.tokens,
	}
	client := http.DefaultClient
	scheme := "http"
	if o.tls != nil {
		cfg.TLSCert, cfg.TLSKey = o.tls.certFile, o.tls.keyFile
		client, scheme = o.tls.client(), "https"
	}
	logw := &testLogWriter{t: t}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, log, io.Discard) }()
	s := &service{t: t, cancel: cancel, done: done, client: client}
	if o.tokens != "" {
		// role:token[:name]
		if parts := strings.SplitN(strings.Split(o.tokens, ",")[0], ":", 3); len(parts) >= 2 {
			s.token = parts[1]
		}
	}
	select {
	case s.run = <-started:
	case err := <-done:
		cancel()
		t.Fatalf("serve exited before starting: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("serve did not start within 60s")
	}
	s.root = scheme + "://" + s.run.HTTPAddr
	s.base = s.root + "/api/v1"
	t.Cleanup(func() { s.stop(); logw.close() })
	s.waitReady()
	return s
}

// stop stops the service cleanly and waits for it.
func (s *service) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("serve returned %v", err)
		}
	case <-time.After(60 * time.Second):
		s.t.Error("serve did not stop within 60s")
	}
}

// httpClient is the client the harness talks to the service with.
func (s *service) httpClient() *http.Client {
	if s.client == nil {
		return http.DefaultClient
	}
	return s.client
}

func (s *service) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := s.httpClient().Get(strings.TrimSuffix(s.base, "/api/v1") + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				// The default pipeline is seeded right after recovery.
				if r := s.do("GET", "/pipelines/default", nil, nil); r.status == 200 {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatal("service not ready within 60s")
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (s *service) do(method, path string, body any, hdr map[string]string) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := s.httpClient().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// wait is the Prefer header that makes a write answer with its outcome.
var wait = map[string]string{"Prefer": "wait=10"}

func (s *service) mustStatus(r response, want int) {
	s.t.Helper()
	if r.status != want {
		s.t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
}

// readAll reads every record of topic from the beginning to its current end.
func readAll(t *testing.T, broker, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	return readAllAs(t, topics.ClientOptions{Brokers: []string{broker}}, topic)
}

// readAllAs is readAll with client options (SASL credentials, say).
func readAllAs(t *testing.T, o topics.ClientOptions, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	o.ClientID = "test-reader"
	broker := o.Brokers[0]
	cfg := topics.SaramaConfig(o)
	client, err := sarama.NewClient([]string{broker}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		first, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		if hwm <= first {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, first)
		if err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				if m.Offset >= hwm-1 {
					goto next
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("timeout reading %s/%d up to %d", topic, p, hwm)
			}
		}
	next:
		pc.Close()
	}
	return out
}

// eventsOf returns the events of one opportunity by version; see allEvents.
func eventsOf(t *testing.T, broker, id string) []domain.Event {
	t.Helper()
	return allEvents(t, broker)[id]
}

// allEvents decodes the events topic once and returns every opportunity's events by version,
// checking what at-least-once delivery allows: duplicates only with the same eventId and the
// same content, and versions 1..n without a gap.
func allEvents(t *testing.T, broker string) map[string][]domain.Event {
	t.Helper()
	byID := map[string]map[int64]domain.Event{}
	for _, m := range readAll(t, broker, topics.Events) {
		e, err := codecs.DecodeEvent(m.Value)
		if err != nil {
			t.Fatalf("undecodable event: %v", err)
		}
		if string(m.Key) != e.OpportunityID {
			t.Fatalf("event %s keyed %q", e.EventID, m.Key)
		}
		if byID[e.OpportunityID] == nil {
			byID[e.OpportunityID] = map[int64]domain.Event{}
		}
		if prev, ok := byID[e.OpportunityID][e.Version]; ok && !reflect.DeepEqual(prev, e) {
			t.Fatalf("two different events for %s version %d:\n%+v\n%+v", e.OpportunityID, e.Version, prev, e)
		}
		byID[e.OpportunityID][e.Version] = e
	}
	out := map[string][]domain.Event{}
	for id, versions := range byID {
		var list []domain.Event
		for _, e := range versions {
			list = append(list, e)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Version < list[j].Version })
		for i, e := range list {
			if e.Version != int64(i+1) {
				t.Fatalf("events of %s: version %d at position %d (gap)", id, e.Version, i)
			}
			if want := fmt.Sprintf("%s:%d", id, e.Version); e.EventID != want {
				t.Fatalf("eventId %s, want %s", e.EventID, want)
			}
		}
		out[id] = list
	}
	return out
}

// produce sends raw records to a topic with Kafka's default partitioning, as any upstream
// Kafka client would.
func produce(t *testing.T, broker, topic string, msgs ...*sarama.ProducerMessage) {
	t.Helper()
	p, err := newSyncProducer(topics.ClientOptions{Brokers: []string{broker}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, m := range msgs {
		m.Topic = topic
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testLogWriter forwards service logs to the test log until the test ends.
type testLogWriter struct {
	mu     sync.Mutex
	t      *testing.T
	closed bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// newSyncProducer is a producer with the service's client settings and Kafka's default
// murmur2 partitioning, as the command-line tools (crm-pipeline emit) make it.
func newSyncProducer(o topics.ClientOptions) (sarama.SyncProducer, error) {
	if o.ClientID == "" {
		o.ClientID = "crm-pipeline-cli"
	}
	cfg := topics.SaramaConfig(o)
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(topics.Hasher())
	p, err := sarama.NewSyncProducer(o.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect producer to %v: %w", o.Brokers, err)
	}
	return p, nil
}
