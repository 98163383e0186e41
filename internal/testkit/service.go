package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/app"
)

// Service is one in-process `crm-pipeline serve` (app.Run) for system tests: real embedded
// broker over TCP, real processors, views, pebble stores and HTTP.
type Service struct {
	t testing.TB
	// Run is what the started service exposes: its addresses, embedded broker and views.
	Run *app.Running
	in  *Instance // nil once stopped, and for a Service of Attach
	// Base is the API's base URL (Root + "/api/v1"), which Do's paths are relative to.
	Base string
	// Root is the scheme and host: http://127.0.0.1:port.
	Root string
	// Client trusts the test certificate when the service serves TLS.
	Client *http.Client
	// Token is sent as a bearer token when set.
	Token string
}

// ServiceOpts are the flags of one test service that differ between tests; the rest are fixed
// (4 partitions, USD, an 8 MiB cache, loopback addresses on free ports).
type ServiceOpts struct {
	// Data is --data.
	Data string
	// Brokers is --brokers; empty starts the embedded broker.
	Brokers []string
	// Clock is the service's clock (nil: time.Now).
	Clock func() time.Time
	// InstanceID is --instance-id ("none": dynamic membership, which leaves the group on a
	// clean stop, so the group is empty at once).
	InstanceID string
	// MaxConns and MaxConnsPerClient are --max-connections and --max-connections-per-client
	// (0: no cap, the tests' default).
	MaxConns, MaxConnsPerClient int
	// MaxStreams is --max-streams (0: the default).
	MaxStreams int
	// Tokens is --tokens; the harness sends the first one's token with every request.
	Tokens string
	// TLS serves HTTPS with this test certificate.
	TLS *Cert
}

// StartService starts the service in process, waits until it is ready (views recovered, the
// default pipeline seeded) and stops it cleanly when the test ends.
func StartService(t testing.TB, o ServiceOpts) *Service {
	t.Helper()
	cfg := app.Config{
		Brokers: o.Brokers, Data: o.Data, HTTP: "127.0.0.1:0", EmbeddedBroker: "127.0.0.1:0",
		Partitions: 4, ReportingCurrency: "USD", CacheMiB: 8, ShutdownTimeout: 10 * time.Second,
		Clock: o.Clock, InstanceID: o.InstanceID,
		MaxConns: o.MaxConns, MaxConnsPerClient: o.MaxConnsPerClient, TokenList: o.Tokens,
		MaxStreams: o.MaxStreams,
	}
	client := http.DefaultClient
	scheme := "http"
	if o.TLS != nil {
		cfg.TLSCert, cfg.TLSKey = o.TLS.CertFile, o.TLS.KeyFile
		client, scheme = o.TLS.Client(), "https"
	}
	logw := NewLogWriter(t)
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in, err := StartInstance(context.Background(), cfg, log, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{t: t, in: in, Run: in.Run, Client: client}
	if o.Tokens != "" {
		// role:token[:name]
		if parts := strings.SplitN(strings.Split(o.Tokens, ",")[0], ":", 3); len(parts) >= 2 {
			s.Token = parts[1]
		}
	}
	s.Root = scheme + "://" + s.Run.HTTPAddr
	s.Base = s.Root + "/api/v1"
	t.Cleanup(func() { s.Stop(); logw.Close() })
	s.WaitReady()
	return s
}

// Stop stops the service cleanly and waits for it (nothing for a Service of Attach).
func (s *Service) Stop() {
	if s.in == nil {
		return
	}
	in := s.in
	s.in = nil
	if err := in.Stop(60 * time.Second); errors.Is(err, ErrStopTimeout) {
		s.t.Error("serve did not stop within 60s")
	} else if err != nil {
		s.t.Errorf("serve returned %v", err)
	}
}

// HTTPClient is the client the harness talks to the service with.
func (s *Service) HTTPClient() *http.Client {
	if s.Client == nil {
		return http.DefaultClient
	}
	return s.Client
}

// WaitReady waits until /readyz answers 200 and the default pipeline is visible.
func (s *Service) WaitReady() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := s.HTTPClient().Get(strings.TrimSuffix(s.Base, "/api/v1") + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				// The default pipeline is seeded right after recovery.
				if r := s.Do("GET", "/pipelines/default", nil, nil); r.Status == 200 {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatal("service not ready within 60s")
}

// Response is one HTTP answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object, failing the test when it is not one.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// Do sends a request to Base+path: body is nil, a string sent as it is, or a value sent as
// JSON; hdr sets headers (and "Host" the Host). The service's token goes with it.
func (s *Service) Do(method, path string, body any, hdr map[string]string) Response {
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
	req, err := http.NewRequest(method, s.Base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Wait is the Prefer header that makes a write answer with its outcome.
var Wait = map[string]string{"Prefer": "wait=10"}

// MustStatus fails the test unless r has status want.
func (s *Service) MustStatus(r Response, want int) {
	s.t.Helper()
	if r.Status != want {
		s.t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
}

// Attach is a Service for a service the harness did not start (a crm-pipeline process), at the
// API base URL base: Do and MustStatus talk to it, Stop leaves it alone.
func Attach(t testing.TB, base string) *Service {
	return &Service{t: t, Base: base, Root: strings.TrimSuffix(base, "/api/v1")}
}
