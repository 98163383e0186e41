package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crm-pipeline/crm-pipeline/views"
)

// GET /api/v1/stream: the live change stream of API.md as Server-Sent Events. Each stream is
// a cursor into the views' change feed (views.Feed): the handler polls it, renders what it
// gets and writes it to its own client, so a slow client holds up only its own goroutine,
// never the views or the other streams, and the service keeps nothing per client but the
// cursor. A client the feed overtakes gets a reset and carries on from the newest change.

// Defaults of the stream knobs in Config.
const (
	DefaultMaxStreams = 256
	// DefaultStreamHeartbeat keeps well inside API.md's "a comment line at least every 15 s",
	// whatever the scheduling and network add.
	DefaultStreamHeartbeat    = 10 * time.Second
	DefaultStreamWriteTimeout = 30 * time.Second
)

const (
	// streamRetry is the reconnection delay a stream asks its clients to wait.
	streamRetry = 2 * time.Second
	// streamBatch is how many changes one poll of the feed hands out, written with one write
	// and one flush.
	streamBatch = 128
	// codeTooManyStreams: --max-streams streams are open.
	codeTooManyStreams = "too_many_streams"
)

// streams is the state the stream handlers share: the cap, the knobs and the metrics.
type streams struct {
	max          int64
	open         atomic.Int64
	heartbeat    time.Duration
	writeTimeout time.Duration
	stop         <-chan struct{}
	openGauge    prometheus.Gauge
	resets       prometheus.Counter
}

func newStreams(cfg Config, reg prometheus.Registerer) (*streams, error) {
	st := &streams{
		max:          int64(cfg.MaxStreams),
		heartbeat:    cfg.StreamHeartbeat,
		writeTimeout: cfg.StreamWriteTimeout,
		stop:         cfg.StreamsStop,
	}
	if st.max <= 0 {
		st.max = DefaultMaxStreams
	}
	if st.heartbeat <= 0 {
		st.heartbeat = DefaultStreamHeartbeat
	}
	if st.writeTimeout <= 0 {
		st.writeTimeout = DefaultStreamWriteTimeout
	}
	var err error
	if st.openGauge, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "crm_streams_open", Help: "Live change streams (GET /api/v1/stream) open now.",
	})); err != nil {
		return nil, err
	}
	if st.resets, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crm_stream_resets_total", Help: "Reset events sent on live change streams: a resume token of another process or instance, older than the replay window, or a client the window overtook.",
	})); err != nil {
		return nil, err
	}
	return st, nil
}

// acquire takes one of the --max-streams slots; false when none is free.
func (st *streams) acquire() bool {
	if st.open.Add(1) > st.max {
		st.open.Add(-1)
		return false
	}
	st.openGauge.Inc()
	return true
}

func (st *streams) release() {
	st.open.Add(-1)
	st.openGauge.Dec()
}

// streamTypes are the values of the types parameter, as the events are named.
var streamTypes = map[string]views.ChangeKind{
	string(views.ChangeOpportunity): views.ChangeOpportunity,
	string(views.ChangeAnalytics):   views.ChangeAnalytics,
}

// maxResumeTokenLen bounds Last-Event-ID; a token of this service is far shorter.
const maxResumeTokenLen = 128

// parseStreamQuery reads types, pipelineId, ownerId and the resume token: the Last-Event-ID
// header an EventSource sends when it reconnects, else the lastEventId parameter that
// EventSource polyfills (which cannot set headers on the first request) use.
func parseStreamQuery(r *http.Request) (views.FeedFilter, string, *problem) {
	var f views.FeedFilter
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return f, "", newProblem(http.StatusBadRequest, codeInvalidQuery, "The query string is malformed.",
			fieldError{Field: "query", Message: "is not a valid URL query (bad escape or ';')"})
	}
	var errs []fieldError
	bad := func(name, msg string) { errs = append(errs, fieldError{Field: name, Message: msg}) }
	get := func(name string) string {
		switch vs := q[name]; {
		case len(vs) == 0:
			return ""
		case len(vs) > 1:
			bad(name, "must be given at most once")
		case len(vs[0]) > maxFilterLen:
			bad(name, fmt.Sprintf("must be at most %d bytes", maxFilterLen))
		default:
			return vs[0]
		}
		return ""
	}
	if types := get("types"); types != "" {
		for _, t := range strings.Split(types, ",") {
			k, ok := streamTypes[strings.TrimSpace(t)]
			if !ok {
				bad("types", `must be a comma list of "opportunity", "analytics"`)
				break
			}
			f.Kinds = append(f.Kinds, k)
		}
	}
	f.PipelineID = get("pipelineId")
	f.OwnerID = get("ownerId")
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = get("lastEventId")
	}
	if len(after) > maxResumeTokenLen {
		// Not one of ours: the stream starts with a reset rather than refusing the client.
		after = "-"
	}
	if len(errs) > 0 {
		return f, "", newProblem(http.StatusBadRequest, codeInvalidQuery, "Query parameters are invalid.", errs...)
	}
	return f, after, nil
}

func tooManyStreamsProblem(max int64) *problem {
	return newProblem(http.StatusServiceUnavailable, codeTooManyStreams,
		fmt.Sprintf("This instance serves at most %d live streams at once; retry later or use another instance.", max)).
		withHeader("Retry-After", "5")
}

// stream answers GET /api/v1/stream until the client goes, the server shuts down or the
// feed closes.
func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	filter, after, p := parseStreamQuery(r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	st := s.streams
	if !st.acquire() {
		writeProblem(w, r, tooManyStreamsProblem(st.max))
		return
	}
	defer st.release()
	sub, err := s.backend.Subscribe(after, filter)
	switch {
	case errors.Is(err, views.ErrNotRecovered):
		writeProblem(w, r, notReadyProblem())
		return
	case errors.Is(err, views.ErrFeedClosed):
		writeProblem(w, r, newProblem(http.StatusServiceUnavailable, codeUnavailable,
			"The instance is shutting down; reconnect with Last-Event-ID.").withHeader("Retry-After", "1"))
		return
	case err != nil:
		s.writeReadError(w, r, fmt.Errorf("open stream: %w", err))
		return
	}
	defer sub.Close()

	// The server's ReadTimeout would cancel the request's context once it passes (net/http's
	// background read on the idle connection fails with it), ending every stream; a stream's
	// request has no body, so nothing is left to read but the client's going away.
	if err := http.NewResponseController(w).SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.log.WarnContext(r.Context(), "stream: clear the read deadline", "error", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx and its kin would buffer the stream
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	out := newSSEWriter(w, st.writeTimeout)
	out.comment("crm-pipeline live change stream")
	out.retry(streamRetry)
	if after == "" {
		// A client that connects without a token and loses the stream before the first
		// event would reconnect without one too, and miss what happened meanwhile: give it
		// the place it started from.
		out.id(sub.Token())
	} else {
		out.blank()
	}
	if err := out.flush(); err != nil {
		return
	}
	s.pump(r, sub, out)
}

// pump moves changes from the subscription to the client until either side ends.
func (s *server) pump(r *http.Request, sub *Subscription, out *sseWriter) {
	st := s.streams
	ctx := r.Context()
	heartbeat := time.NewTicker(st.heartbeat)
	defer heartbeat.Stop()
	beat := func() error {
		out.comment("heartbeat")
		if tok := sub.Token(); tok != out.lastID {
			out.id(tok) // past changes the filter skipped: resume after them
		} else {
			out.blank()
		}
		return out.flush()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.stop:
			return
		case <-heartbeat.C: // a busy stream gets its comment line too
			if beat() != nil {
				return
			}
		default:
		}
		changes, wait, err := sub.Poll(streamBatch)
		if err != nil {
			return // the feed closed: the views are stopping
		}
		if len(changes) > 0 {
			cache := stageNames{}
			for _, c := range changes {
				if err := s.writeChange(out, c, cache); err != nil {
					s.log.ErrorContext(ctx, "stream: encode a change", "error", err)
					return
				}
			}
			if out.flush() != nil {
				return
			}
			continue
		}
		select {
		case <-wait:
		case <-heartbeat.C:
			if beat() != nil {
				return
			}
		case <-ctx.Done():
			return
		case <-st.stop:
			return
		}
	}
}

// writeChange frames one change as its SSE event; the opportunity has GET's shape.
func (s *server) writeChange(out *sseWriter, c views.Change, cache stageNames) error {
	var v any
	switch c.Kind {
	case views.ChangeOpportunity:
		v = s.opportunityOut(c.Opportunity, cache)
	case views.ChangeAnalytics:
		v = streamAnalyticsOut(c.Analytics)
	case views.ChangeReset:
		s.streams.resets.Inc()
		v = streamResetJSON{Reason: c.Reason}
	default:
		return fmt.Errorf("change of unknown kind %q", c.Kind)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s change: %w", c.Kind, err)
	}
	out.event(string(c.Kind), c.Token, data)
	return nil
}
