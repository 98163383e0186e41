package query

import (
	"net/http"
	"testing"
	"time"
)

func TestWriteAnswersCarryPosition(t *testing.T) {
	e := newEnv(t)
	rec := e.do(t, "POST", "/api/v1/opportunities", validCreate)
	if rec.Code != http.StatusAccepted || rec.Header().Get(HeaderPosition) != "0:0" {
		t.Fatalf("202 answer: %d, Crm-Position %q, want 0:0", rec.Code, rec.Header().Get(HeaderPosition))
	}
	rec = e.do(t, "POST", "/api/v1/opportunities", validCreate, "Prefer", "wait=5")
	if rec.Code != http.StatusCreated || rec.Header().Get(HeaderPosition) != "0:1" {
		t.Fatalf("201 answer: %d, Crm-Position %q, want 0:1", rec.Code, rec.Header().Get(HeaderPosition))
	}
	// A refused command's answer carries its position too.
	rec = e.do(t, "POST", "/api/v1/opportunities/nope/stage", `{"stageId":"proposal"}`, "Prefer", "wait=5")
	if rec.Code < 400 || rec.Header().Get(HeaderPosition) != "0:2" {
		t.Fatalf("refusal: %d, Crm-Position %q, want 0:2", rec.Code, rec.Header().Get(HeaderPosition))
	}
}

func TestMinPositionHoldsTheRead(t *testing.T) {
	e := newEnv(t)
	e.create(t, "opp-1") // position 0:0
	for _, path := range []string{"/api/v1/opportunities/opp-1", "/api/v1/opportunities", "/api/v1/forecast",
		"/api/v1/analytics/win-loss", "/api/v1/opportunities/opp-1/history"} {
		rec := e.do(t, "GET", path, "", HeaderMinPosition, "0:0")
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s at a reflected position: %d %s", path, rec.Code, rec.Body)
		}
	}
	// Not reflected, no wait: 503 at once, never the older answer.
	start := time.Now()
	p := wantProblem(t, e.do(t, "GET", "/api/v1/forecast", "", HeaderMinPosition, "0:0, 0:5"), http.StatusServiceUnavailable, codePositionNotReached)
	if time.Since(start) > 2*time.Second || p.Detail == "" {
		t.Fatalf("an unreached position without Prefer: wait took %v (detail %q)", time.Since(start), p.Detail)
	}
	// With a wait, the read answers once the position is reflected.
	done := make(chan int, 1)
	go func() {
		done <- e.do(t, "GET", "/api/v1/opportunities/opp-1", "", HeaderMinPosition, "0:1", "Prefer", "wait=5").Code
	}()
	time.Sleep(30 * time.Millisecond)
	select {
	case code := <-done:
		t.Fatalf("the read answered %d before its position was reflected", code)
	default:
	}
	e.create(t, "opp-2") // position 0:1
	select {
	case code := <-done:
		if code != http.StatusOK {
			t.Fatalf("the read answered %d after its position was reflected", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read did not answer once its position was reflected")
	}
	// Another partition the fake never reaches: 503 after the wait.
	wantProblem(t, e.do(t, "GET", "/api/v1/opportunities", "", HeaderMinPosition, "3:0", "Prefer", "wait=1"),
		http.StatusServiceUnavailable, codePositionNotReached)
}

func TestMinPositionMalformed(t *testing.T) {
	e := newEnv(t)
	for _, bad := range []string{"x", "1", "1:-2", "a:b"} {
		p := wantProblem(t, e.do(t, "GET", "/api/v1/forecast", "", HeaderMinPosition, bad), http.StatusBadRequest, codeInvalidHeader)
		if !p.hasField(HeaderMinPosition) {
			t.Errorf("Crm-Min-Position %q: the problem names %v, not the header", bad, p.fields())
		}
	}
}
