// Package query is the HTTP face of the service: the chi router of API.md's opportunity,
// pipeline, FX and analytics endpoints (analytics.go), the live change stream (stream.go,
// Server-Sent Events), health and metrics, and the middleware
// around them (request ids, access logs, Prometheus, body limits, panic recovery). It holds no
// state of its own: writes become commands handed to a Backend, reads come from the Backend's
// views, so the package can be tested with an in-memory Backend and no Kafka.
//
// Imports from this module: domain, analytics, views, gateway (the README's package table, checked by imports_test.go).
package query

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// BasePath is where the API of API.md is mounted; /healthz, /readyz and /metrics stay at the
// root where probes and scrapers expect them.
const BasePath = "/api/v1"

// Defaults applied by NewHandler to zero Config fields.
const (
	DefaultMaxBodyBytes int64         = 1 << 20
	DefaultMaxWait      time.Duration = 30 * time.Second
)

// Config wires the handler to the rest of the process. Everything with side effects (clock,
// ids, metrics registry, logger) is injected so that tests are deterministic and two handlers
// in one process never share global state.
type Config struct {
	Backend      Backend
	Logger       *slog.Logger
	Registerer   prometheus.Registerer // HTTP metrics registered here
	Gatherer     prometheus.Gatherer   // served on /metrics
	Clock        func() time.Time      // injectable clock for issuedAt
	NewID        func() string         // random ids (command ids, opportunity ids); default crypto/rand based
	MaxBodyBytes int64                 // default 1 MiB
	MaxWait      time.Duration         // cap for Prefer: wait, default 30s
	// Tokens turns on bearer-token authentication (see auth.go): every route but /healthz and
	// /readyz then needs a token with a sufficient role, and a command's actor is the token's
	// name. nil or empty disables authentication: the caller must then bind loopback only.
	Tokens *Tokens
	// Hosts are the Host headers answered (origin.go); the zero value answers loopback
	// names only.
	Hosts HostPolicy
	// MaxStreams caps the live streams (GET /api/v1/stream) open at once (--max-streams),
	// because each holds a connection and a goroutine for as long as its client stays; past
	// it a stream is refused with 503 too_many_streams. 0 is DefaultMaxStreams.
	MaxStreams int
	// StreamHeartbeat is how often a stream sends a comment line (default
	// DefaultStreamHeartbeat), so proxies keep it and a client notices a dead one.
	StreamHeartbeat time.Duration
	// StreamWriteTimeout bounds each write to a stream's client (default
	// DefaultStreamWriteTimeout): a client that takes nothing for this long is dropped.
	StreamWriteTimeout time.Duration
	// StreamsStop, once closed, ends every open stream. http.Server.Shutdown waits for the
	// handlers and a stream never ends by itself, so the server closes it when it shuts down
	// (http.Server.RegisterOnShutdown). nil: streams end only with their clients.
	StreamsStop <-chan struct{}
}

// server is the state shared by the handlers of one NewHandler call.
type server struct {
	backend Backend
	log     *slog.Logger
	clock   func() time.Time
	newID   func() string
	maxBody int64
	maxWait time.Duration
	tokens  *Tokens
	hosts   HostPolicy
	metrics *httpMetrics
	streams *streams
	mux     *chi.Mux
}

// NewHandler builds the service's http.Handler. It fails only on configuration errors (no
// Backend, metrics that cannot be registered), never later at request time.
//
// When Registerer is nil the HTTP metrics go to a private registry, which is then also served
// on /metrics (alongside Gatherer, if given). When Gatherer is nil, Registerer must also be a
// Gatherer (as *prometheus.Registry is).
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Backend == nil {
		return nil, errors.New("query: Config.Backend is required")
	}
	s := &server{
		backend: cfg.Backend,
		log:     cfg.Logger,
		clock:   cfg.Clock,
		newID:   cfg.NewID,
		maxBody: cfg.MaxBodyBytes,
		maxWait: cfg.MaxWait,
		hosts:   cfg.Hosts,
		tokens:  cfg.Tokens,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.newID == nil {
		s.newID = randomID
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.maxWait <= 0 {
		s.maxWait = DefaultMaxWait
	}

	reg, gath := cfg.Registerer, cfg.Gatherer
	if reg == nil {
		own := prometheus.NewRegistry()
		reg = own
		if gath == nil {
			gath = own
		} else {
			gath = prometheus.Gatherers{gath, own}
		}
	}
	if gath == nil {
		g, ok := reg.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("query: Config.Gatherer is required when Registerer is not a Gatherer")
		}
		gath = g
	}
	m, err := newHTTPMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	s.metrics = m
	if s.streams, err = newStreams(cfg, reg); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	s.routes(gath)
	return s.mux, nil
}

func (s *server) routes(gath prometheus.Gatherer) {
	r := chi.NewRouter()
	s.mux = r
	r.Use(s.requestID, s.observe, s.recoverer, s.checkHost, s.refuseCrossSite, s.authenticate, s.limitBody)
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.methodNotAllowed)

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(gath, promhttp.HandlerOpts{
		ErrorLog:      slogPromLogger{s.log},
		ErrorHandling: promhttp.ContinueOnError,
	}))

	// Flat routes (no sub-router) so that an unmatched request has no route pattern at all and
	// is labelled "unmatched" in metrics, rather than with a mount wildcard.
	const b = BasePath
	r.Group(func(r chi.Router) {
		r.Use(s.requireJSON, s.refuseWhileStorageFails)
		r.Post(b+"/opportunities", s.createOpportunity)
		r.Patch(b+"/opportunities/{id}", s.updateOpportunity)
		r.Post(b+"/opportunities/{id}/stage", s.changeStage)
		r.Post(b+"/opportunities/{id}/close-won", s.closeWon)
		r.Post(b+"/opportunities/{id}/close-lost", s.closeLost)
		r.Post(b+"/opportunities/{id}/reopen", s.reopen)
		r.Put(b+"/pipelines/{id}", s.putPipeline)
		r.Put(b+"/fx-rates/{currency}", s.putFXRate)
	})

	r.Group(func(r chi.Router) {
		r.Use(s.requireReady, s.awaitPosition)
		r.Get(b+"/opportunities", s.listOpportunities)
		r.Get(b+"/opportunities/{id}", s.getOpportunity)
		r.Get(b+"/opportunities/{id}/history", s.history)
		r.Get(b+"/commands/{commandId}", s.commandStatus)
		r.Get(b+"/pipelines", s.listPipelines)
		r.Get(b+"/pipelines/{id}", s.getPipeline)
		r.Get(b+"/fx-rates", s.listFXRates)
		r.Get(b+"/forecast", s.forecast)
		r.Get(b+"/forecast/rolling", s.rollingForecast)
		r.Get(b+"/analytics/win-loss", s.winLoss)
		r.Get(b+"/analytics/funnel", s.funnel)
		r.Get(b+"/analytics/velocity", s.velocity)
		r.Get(b+"/analytics/changes", s.changes)
		r.Get(b+"/analytics/stale", s.stale)
		r.Get(b+"/stream", s.stream)
	})
}

// slogPromLogger adapts slog to promhttp's Println-style error logger.
type slogPromLogger struct{ log *slog.Logger }

func (l slogPromLogger) Println(v ...any) {
	l.log.Error("metrics exposition", "error", fmt.Sprint(v...))
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, newProblem(http.StatusNotFound, codeRouteNotFound,
		"No resource matches this path."))
}

// allowMethods are the methods tried when computing the Allow header of a 405.
var allowMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// methodNotAllowed answers 405 with the Allow header RFC 9110 requires. chi hands custom 405
// handlers no method list, so the router is asked for each candidate method.
func (s *server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	p := newProblem(http.StatusMethodNotAllowed, codeMethodNotAllowed,
		fmt.Sprintf("Method %s is not allowed on this path.", r.Method))
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	for _, m := range allowMethods {
		if s.mux.Match(chi.NewRouteContext(), m, path) {
			p.withHeader("Allow", m)
		}
	}
	writeProblem(w, r, p)
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.backend.Recovered() {
		writeProblem(w, r, notReadyProblem())
		return
	}
	if cause := s.backend.StorageDegraded(); cause != "" {
		writeProblem(w, r, storageProblem(cause))
		return
	}
	if !s.backend.Ready() {
		writeProblem(w, r, newProblem(http.StatusServiceUnavailable, codeNotReady,
			"A view has lost the broker and is reconnecting (or, just after the first start, the seeded configuration is not visible yet); reads are served from the local views as of the last record they consumed.").
			withHeader("Retry-After", "1"))
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
}

// writeJSON sends v as application/json. The body is encoded before the status goes out, so
// an encoding failure can still become a 500 problem.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, r, newProblem(http.StatusInternalServerError, codeInternal,
			"The server failed to encode the response."))
		return
	}
	writeJSONBody(w, status, body)
}

// writeJSONBody writes an already encoded JSON body with writeJSON's headers, for handlers
// that encode a large fixed-shape answer themselves.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// randomID is the default Config.NewID: a random (version 4) UUID.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
