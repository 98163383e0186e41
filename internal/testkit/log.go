package testkit

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogWriter forwards service logs to the test log until the test ends.
type LogWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

// NewLogWriter is a LogWriter for t; Close it before t ends (t.Cleanup).
func NewLogWriter(t testing.TB) *LogWriter { return &LogWriter{t: t} }

// Write logs p (one log line) on the test, until Close.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Close stops forwarding: a test must not log after it ends, and the service may still log
// while it stops.
func (w *LogWriter) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// SyncBuffer collects what a service's goroutines write (a run's stdout and stderr, a child
// process's output) while the test reads it: the tests of the command and the system tests
// poll such output for banners and log lines.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Output is what one run of a command printed on stdout and stderr, and the error it ended
// with.
type Output struct {
	Stdout, Stderr string
	Err            error
}

// RunLogged runs run with stdout and stderr of its own under a deadline of two minutes, logs
// what it printed under what (the command and its arguments) and returns it: the command's
// tests run `crm-pipeline emit` in process and the system tests as the built binary, and
// both read its output alike.
func RunLogged(t testing.TB, what string, run func(ctx context.Context, stdout, stderr io.Writer) error) Output {
	t.Helper()
	var out, errOut SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, &out, &errOut)
	t.Logf("%s: err=%v\nstdout:\n%sstderr:\n%s", what, err, out.String(), errOut.String())
	return Output{Stdout: out.String(), Stderr: errOut.String(), Err: err}
}
