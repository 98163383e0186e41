package query

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// sseWriter frames Server-Sent Events (the WHATWG "event stream" format) into a buffer and
// sends the buffer with one write and a flush, each under its own write deadline: a client
// that stops reading blocks only its own handler, and only until the deadline.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
	lastID  string // the last id: line sent, which the client sends back when it reconnects
}

func newSSEWriter(w http.ResponseWriter, timeout time.Duration) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

// event adds one event. data must be one line (JSON from encoding/json is); a line break in
// it would still be framed correctly, as one data: line per line.
func (e *sseWriter) event(name, id string, data []byte) {
	e.buf = append(e.buf, "event: "...)
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, "\nid: "...)
	e.buf = append(e.buf, id...)
	e.buf = append(e.buf, '\n')
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		e.buf = append(e.buf, "data: "...)
		e.buf = append(e.buf, line...)
		e.buf = append(e.buf, '\n')
		if !more {
			break
		}
		data = rest
	}
	e.buf = append(e.buf, '\n')
	e.lastID = id
}

// id adds a block with an id and no data: an EventSource dispatches no event for it but
// takes the id as its last event id, so a reconnect resumes from there.
func (e *sseWriter) id(id string) {
	e.buf = append(e.buf, "id: "...)
	e.buf = append(e.buf, id...)
	e.buf = append(e.buf, "\n\n"...)
	e.lastID = id
}

// comment adds a comment line, which clients ignore (a heartbeat).
func (e *sseWriter) comment(text string) {
	e.buf = append(e.buf, ": "...)
	e.buf = append(e.buf, text...)
	e.buf = append(e.buf, '\n')
}

// retry adds the reconnection delay a client should wait after losing the stream.
func (e *sseWriter) retry(d time.Duration) {
	e.buf = append(e.buf, "retry: "...)
	e.buf = strconv.AppendInt(e.buf, d.Milliseconds(), 10)
	e.buf = append(e.buf, '\n')
}

// blank ends a block of fields that is not an event.
func (e *sseWriter) blank() { e.buf = append(e.buf, '\n') }

// flush sends what was added. The write deadline replaces the server's WriteTimeout, which
// counts from the request's start and would otherwise end every stream after it; a writer
// that cannot take deadlines (a test recorder) writes without one.
func (e *sseWriter) flush() error {
	if len(e.buf) == 0 {
		return nil
	}
	if err := e.rc.SetWriteDeadline(time.Now().Add(e.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("stream write deadline: %w", err)
	}
	_, err := e.w.Write(e.buf)
	e.buf = e.buf[:0]
	if err != nil {
		return fmt.Errorf("stream write: %w", err)
	}
	if err := e.rc.Flush(); err != nil {
		return fmt.Errorf("stream flush: %w", err)
	}
	return nil
}
