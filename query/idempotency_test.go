package query

import (
	"net/http"
	"strings"
	"testing"
)

// The IETF idempotency-key draft: the same key with the same request is answered with the
// first outcome and marked as a replay; with another request it is a 422 naming the key.
func TestIdempotencyKeyReplayAndReuse(t *testing.T) {
	e := newEnv(t)
	body := strings.Replace(validCreate, `{`, `{"id":"opp-i",`, 1)
	first := e.do(t, "POST", "/api/v1/opportunities", body, "Idempotency-Key", "k1", "Prefer", "wait=5")
	wantJSON(t, first, http.StatusCreated)
	if first.Header().Get(HeaderIdempotentReplayed) != "" {
		t.Fatal("the first request is marked as a replay")
	}
	again := e.do(t, "POST", "/api/v1/opportunities", body, "Idempotency-Key", "k1", "Prefer", "wait=5")
	wantJSON(t, again, http.StatusCreated)
	if again.Header().Get(HeaderIdempotentReplayed) != "true" {
		t.Fatalf("a retry is not marked as a replay: %v", again.Header())
	}
	other := strings.Replace(body, "12500.00", "16000.00", 1)
	p := wantProblem(t, e.do(t, "POST", "/api/v1/opportunities", other, "Idempotency-Key", "k1", "Prefer", "wait=5"),
		http.StatusUnprocessableEntity, "idempotency_key_reused")
	if !p.hasField("Idempotency-Key") {
		t.Fatalf("the refusal names %v", p.fields())
	}
}
