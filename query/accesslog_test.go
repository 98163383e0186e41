package query

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestAccessLevel(t *testing.T) {
	req := func(path string, hdr ...string) *http.Request {
		r := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	sw := func(contentType string) *statusWriter {
		w := &statusWriter{ResponseWriter: httptest.NewRecorder()}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		return w
	}
	for _, tc := range []struct {
		name    string
		r       *http.Request
		w       *statusWriter
		status  int
		elapsed time.Duration
		level   slog.Level
		msg     string
	}{
		{"ok", req("/api/v1/forecast"), sw(""), 200, time.Millisecond, slog.LevelDebug, "http request"},
		{"client error", req("/api/v1/nope"), sw(""), 404, time.Millisecond, slog.LevelInfo, "http request"},
		{"server error", req("/api/v1/forecast"), sw(""), 500, time.Millisecond, slog.LevelError, "http request"},
		{"not ready", req("/api/v1/forecast"), sw(""), 503, time.Millisecond, slog.LevelWarn, "http request"},
		{"probe while starting", req("/readyz"), sw(""), 503, time.Millisecond, slog.LevelDebug, "http request"},
		{"slow", req("/api/v1/forecast"), sw(""), 200, 2 * time.Second, slog.LevelWarn, "slow http request"},
		{"held as asked", req("/api/v1/opportunities", "Prefer", "wait=5"), sw(""), 200, 3 * time.Second, slog.LevelDebug, "http request"},
		{"held past the ask", req("/api/v1/opportunities", "Prefer", "wait=1"), sw(""), 202, 3 * time.Second, slog.LevelWarn, "slow http request"},
		{"a stream is long", req("/api/v1/stream"), sw("text/event-stream"), 200, time.Hour, slog.LevelDebug, "http request"},
	} {
		level, msg := accessLevel(tc.r, tc.w, tc.status, tc.elapsed)
		if level != tc.level || msg != tc.msg {
			t.Errorf("%s: %v %q, want %v %q", tc.name, level, msg, tc.level, tc.msg)
		}
	}
}
