package query

import (
	"net/http"
	"strings"
	"testing"
)

func TestCommandStatus(t *testing.T) {
	e := newEnv(t)
	rec := e.do(t, "POST", "/api/v1/opportunities", strings.Replace(validCreate, `{`, `{"id":"opp-c",`, 1), "Idempotency-Key", "k-create")
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusAccepted || !strings.HasPrefix(loc, "/api/v1/commands/k-create?") {
		t.Fatalf("202 %d, Location %q", rec.Code, loc)
	}
	m := wantJSON(t, e.do(t, "GET", loc, ""), http.StatusOK)
	if m["status"] != "applied" || m["opportunityId"] != "opp-c" || m["version"] != 1.0 || m["commandId"] != "k-create" {
		t.Fatalf("applied command: %v", m)
	}
	rec = e.do(t, "POST", "/api/v1/opportunities/opp-c/stage", `{"stageId":"closed_won"}`, "Idempotency-Key", "k-bad")
	m = wantJSON(t, e.do(t, "GET", rec.Header().Get("Location"), ""), http.StatusOK)
	p, _ := m["problem"].(map[string]any)
	if m["status"] != "refused" || p == nil || p["code"] == "" || p["status"] != 422.0 || p["type"] == "" {
		t.Fatalf("refused command: %v", m)
	}
	if _, has := m["version"]; has {
		t.Fatalf("a refused command has a version: %v", m)
	}
	e.fb.blockAwait = true
	rec = e.do(t, "GET", "/api/v1/commands/k-create", "")
	if m := wantJSON(t, rec, http.StatusOK); m["status"] != "pending" || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("pending command: %v %v", m, rec.Header())
	}
	e.fb.blockAwait = false
	wantProblem(t, e.do(t, "GET", "/api/v1/commands/never-sent", ""), http.StatusNotFound, codeUnknownCommand)
	if p := wantProblem(t, e.do(t, "GET", "/api/v1/commands/k-create?position=x", ""), http.StatusBadRequest, codeInvalidQuery); !p.hasField("position") {
		t.Fatalf("bad position names %v", p.fields())
	}
}
