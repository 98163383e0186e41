package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

type ctxKey int

const requestIDKey ctxKey = iota

// maxRequestIDLen bounds a client-supplied X-Request-Id; anything longer or with characters
// outside a safe set is replaced, so ids never corrupt log lines.
const maxRequestIDLen = 128

// requestIDFrom returns the request id the requestID middleware stored, or "".
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func validRequestID(s string) bool { return len(s) <= maxRequestIDLen && alnumOr(s, "-_.:/+=") }

// alnumOr reports whether s is not empty and holds only ASCII letters, digits and bytes of
// extra: the one character check of what a client may send that ends up in logs and headers
// (request ids, token names, tokens), each with its own extra set.
func alnumOr(s, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// requestID takes X-Request-Id from the caller when it is safe to log, else makes one, and
// echoes it on the response so a caller can quote it when reporting a problem.
func (s *server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = s.newID()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// statusWriter remembers the status and size of a response, for logs and metrics, and whether
// headers went out, so the recoverer knows if it can still send a problem.
type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status = code
		w.wroteHeader = code >= 200 // 1xx responses are informational; the real one follows
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// httpMetrics are the RED metrics of the HTTP layer, labelled by chi's route pattern rather
// than the raw path so that ids in paths cannot blow up cardinality.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crm_http_requests_total",
		Help: "HTTP requests served, by method, chi route pattern and status code.",
	}, []string{"method", "route", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "crm_http_request_duration_seconds",
		Help:    "HTTP request latency, by method and chi route pattern.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"method", "route"})
	var err error
	if requests, err = register(reg, requests); err != nil {
		return nil, err
	}
	if duration, err = register(reg, duration); err != nil {
		return nil, err
	}
	return &httpMetrics{requests: requests, duration: duration}, nil
}

// register adds c to reg, reusing an identical collector that is already registered so that
// two handlers built on one registry (tests, a restart of the HTTP server) share the series.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		var zero T
		return zero, fmt.Errorf("register HTTP metrics: %w", err)
	}
	return c, nil
}

// knownMethods bounds the method label: a client can send any token as a method.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func methodLabel(m string) string {
	if knownMethods[m] {
		return m
	}
	return "OTHER"
}

// routeLabel is chi's matched pattern, or "unmatched" for requests no route took (404, 405).
func routeLabel(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// observe writes the access log line and the metrics of a request once it is done. It wraps the
// recoverer, so a panic is logged and counted as the 500 it became.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		elapsed := time.Since(start)
		status := sw.status
		if status == 0 {
			status = http.StatusOK // handler wrote nothing: net/http sends 200
		}
		route := routeLabel(r)
		method := methodLabel(r.Method)
		s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
		level, msg := accessLevel(r, sw, status, elapsed)
		// Only request metadata: never headers (Authorization) nor bodies.
		s.log.LogAttrs(r.Context(), level, msg,
			slog.String("request_id", requestIDFrom(r.Context())),
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", sw.bytes),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		)
	})
}

// slowRequest is the time past which a request's access line is a warning: far above the
// service's latency targets, below a client's patience. A write under Prefer: wait counts
// from its wait (a client asked to be held), and a live stream never counts.
const slowRequest = time.Second

// accessLevel says how loud one request's access line is: every request is logged, at DEBUG
// while it went as expected (a busy service logs nothing at INFO per request), at INFO for a
// client error, WARN for a slow one or a 503 (not ready, the broker away: expected while
// starting or degraded; /readyz answering it to a probe is DEBUG), ERROR for a server error.
func accessLevel(r *http.Request, sw *statusWriter, status int, elapsed time.Duration) (slog.Level, string) {
	switch {
	case status == http.StatusServiceUnavailable && r.URL.Path == "/readyz":
		return slog.LevelDebug, "http request"
	case status == http.StatusServiceUnavailable:
		return slog.LevelWarn, "http request"
	case status >= 500:
		return slog.LevelError, "http request"
	}
	if limit := slowRequest + preferredWait(r.Header, 24*time.Hour); elapsed > limit &&
		!strings.HasPrefix(sw.Header().Get("Content-Type"), "text/event-stream") {
		return slog.LevelWarn, "slow http request"
	}
	if status >= 400 {
		return slog.LevelInfo, "http request"
	}
	return slog.LevelDebug, "http request"
}

// recoverer turns a panic in a handler into a logged 500 problem instead of a dropped
// connection; http.ErrAbortHandler keeps its meaning (abort the response silently).
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if rec == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(rec)
			}
			s.log.LogAttrs(r.Context(), slog.LevelError, "panic in HTTP handler",
				slog.String("request_id", requestIDFrom(r.Context())),
				slog.String("panic", fmt.Sprint(rec)),
				slog.String("stack", string(debug.Stack())),
			)
			if sw.wroteHeader {
				return // too late for a problem body; the client sees a truncated response
			}
			writeProblem(sw, r, newProblem(http.StatusInternalServerError, codeInternal,
				"The server failed to handle the request."))
		}()
		next.ServeHTTP(sw, r)
	})
}

// limitBody caps every request body, so a client cannot make the service buffer gigabytes;
// reading past the cap yields *http.MaxBytesError, which the decoder answers with 413.
func (s *server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.maxBody {
			writeProblem(w, r, newProblem(http.StatusRequestEntityTooLarge, codeBodyTooLarge,
				fmt.Sprintf("The request body exceeds %d bytes.", s.maxBody)))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// refuseWhileStorageFails answers writes 503 while the local stores wait for the disk: the
// processors cannot store what they apply, so a write would only queue up behind the disk
// (and a Prefer: wait would time out) instead of being told to come back.
func (s *server) refuseWhileStorageFails(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cause := s.backend.StorageDegraded(); cause != "" {
			writeProblem(w, r, storageProblem(cause))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func storageProblem(cause string) *problem {
	return newProblem(http.StatusServiceUnavailable, codeStorageUnavailable,
		"Local storage refuses writes ("+cause+"); writes are refused until it recovers, reads are served from what is stored.").
		withHeader("Retry-After", "5")
}

// requireReady answers 503 until the views have first recovered: serving reads from a
// half-restored view would show clients partial state. It gates on Recovered, not Ready: once
// complete, the local views keep serving while a partition reconnects.
func (s *server) requireReady(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.backend.Recovered() {
			writeProblem(w, r, notReadyProblem())
			return
		}
		next.ServeHTTP(w, r)
	})
}

func notReadyProblem() *problem {
	return newProblem(http.StatusServiceUnavailable, codeNotReady,
		"The views are still recovering; retry shortly.").withHeader("Retry-After", "1")
}
