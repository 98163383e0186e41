package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

var testNow = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

type env struct {
	h    http.Handler
	fb   *fakeBackend
	reg  *prometheus.Registry
	logs *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

func newEnv(t testing.TB, mod ...func(*Config)) *env {
	t.Helper()
	fb := newFakeBackend(func() time.Time { return testNow })
	reg := prometheus.NewRegistry()
	logs := newSyncBuffer()
	var n atomic.Int64
	cfg := Config{
		Backend:    fb,
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: reg,
		Gatherer:   reg,
		Clock:      func() time.Time { return testNow },
		NewID:      func() string { return fmt.Sprintf("id-%d", n.Add(1)) },
		MaxWait:    2 * time.Second,
	}
	for _, m := range mod {
		m(&cfg)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return &env{h: h, fb: fb, reg: reg, logs: logs}
}

// newTestRequest is httptest.NewRequest as a client of the service on this machine sends it:
// a loopback Host, and writes declared JSON. A test that wants otherwise sets them itself.
func newTestRequest(method, target string, body io.Reader) *http.Request {
	req := httptest.NewRequest(method, target, body)
	req.Host = "127.0.0.1:9402"
	if isWrite(method) {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// do sends one request; headers are name, value pairs (Host and Content-Type replace the
// defaults).
func (e *env) do(t testing.TB, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := newTestRequest(method, path, rd)
	for i := 0; i+1 < len(headers); i += 2 {
		switch http.CanonicalHeaderKey(headers[i]) {
		case "Host":
			req.Host = headers[i+1]
		case "Content-Type":
			req.Header.Set(headers[i], headers[i+1])
		default:
			req.Header.Add(headers[i], headers[i+1])
		}
	}
	if strings.HasPrefix(path, BasePath+"/stream") {
		// A live stream never ends by itself: end it shortly, so its answer (status,
		// headers, the first lines) can be inspected like any other.
		ctx, cancel := context.WithTimeout(req.Context(), recordedStreamFor)
		defer cancel()
		req = req.WithContext(ctx)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// recordedStreamFor is how long do lets a stream run.
const recordedStreamFor = 100 * time.Millisecond

func decodeJSON(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, rec.Body)
	}
	return m
}

func wantJSON(t testing.TB, rec *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	return decodeJSON(t, rec)
}

type problemBody struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail"`
	Code      string       `json:"code"`
	Errors    []fieldError `json:"errors"`
	RequestID string       `json:"requestId"`
}

func (p problemBody) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

func (p problemBody) hasField(name string) bool { return slices.Contains(p.fields(), name) }

// wantProblem checks an RFC 9457 answer: status, content type, members, and code.
func wantProblem(t testing.TB, rec *httptest.ResponseRecorder, status int, code string) problemBody {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	raw := decodeJSON(t, rec)
	for _, k := range []string{"type", "title", "status", "detail", "errors"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("problem lacks %q: %s", k, rec.Body)
		}
	}
	var p problemBody
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != status {
		t.Fatalf("problem status = %d, want %d", p.Status, status)
	}
	if code != "" && p.Code != code {
		t.Fatalf("problem code = %q, want %q; body %s", p.Code, code, rec.Body)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem has empty members: %s", rec.Body)
	}
	return p
}

const validCreate = `{"name":"Acme renewal","accountId":"acc-1","ownerId":"u-7","amount":"12500.00","currency":"USD","closeDate":"2025-06-30"}`

func (e *env) create(t testing.TB, id string) map[string]any {
	t.Helper()
	body := strings.Replace(validCreate, `{`, `{"id":"`+id+`",`, 1)
	return wantJSON(t, e.do(t, "POST", "/api/v1/opportunities", body, "Prefer", "wait=5"), http.StatusCreated)
}

func TestHealthAndReady(t *testing.T) {
	e := newEnv(t)
	m := wantJSON(t, e.do(t, "GET", "/healthz", ""), 200)
	if m["status"] != "ok" {
		t.Fatalf("healthz = %v", m)
	}
	wantJSON(t, e.do(t, "GET", "/readyz", ""), 200)
	e.fb.setReady(false)
	rec := e.do(t, "GET", "/readyz", "")
	wantProblem(t, rec, 503, codeNotReady)
	if rec.Header().Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	// liveness does not depend on readiness
	wantJSON(t, e.do(t, "GET", "/healthz", ""), 200)
}

func TestReadsGatedOnReady(t *testing.T) {
	e := newEnv(t)
	e.fb.setReady(false)
	for _, p := range []string{
		"/api/v1/opportunities", "/api/v1/opportunities/x", "/api/v1/opportunities/x/history",
		"/api/v1/pipelines", "/api/v1/pipelines/default", "/api/v1/fx-rates",
	} {
		wantProblem(t, e.do(t, "GET", p, ""), 503, codeNotReady)
	}
}

// TestReadsServedWhileDegraded: once the views have recovered, a reconnecting partition turns
// /readyz to 503 (take this instance out of rotation) but reads keep being served from the
// local views instead of failing.
func TestReadsServedWhileDegraded(t *testing.T) {
	e := newEnv(t)
	e.fb.setDegraded()
	rec := e.do(t, "GET", "/readyz", "")
	p := wantProblem(t, rec, 503, codeNotReady)
	if !strings.Contains(p.Detail, "reconnecting") {
		t.Fatalf("degraded /readyz detail %q does not say a view is reconnecting", p.Detail)
	}
	for _, path := range []string{"/api/v1/pipelines", "/api/v1/pipelines/default", "/api/v1/fx-rates", "/api/v1/opportunities"} {
		wantJSON(t, e.do(t, "GET", path, ""), 200)
	}
}

func TestCreateAccepted(t *testing.T) {
	e := newEnv(t)
	rec := e.do(t, "POST", "/api/v1/opportunities", validCreate, "X-Actor", "alice")
	m := wantJSON(t, rec, http.StatusAccepted)
	if len(m) != 2 || m["commandId"] != "id-2" || m["opportunityId"] != "id-3" {
		// id-1 is the request id
		t.Fatalf("202 body = %v", m)
	}
	// A 202 points to the command's outcome, its deal being related.
	if loc := rec.Header().Get("Location"); loc != "/api/v1/commands/id-2?opportunityId=id-3&position=0%3A0" {
		t.Fatalf("Location = %q", loc)
	}
	if link := rec.Header().Get("Link"); link != `</api/v1/opportunities/id-3>; rel="related"` {
		t.Fatalf("Link = %q", link)
	}
	if rec.Header().Get("Preference-Applied") != "" {
		t.Fatal("Preference-Applied without Prefer")
	}
	cmds := e.fb.sentCommands()
	if len(cmds) != 1 {
		t.Fatalf("sent %d commands", len(cmds))
	}
	c := cmds[0]
	if c.Type != domain.CmdCreate || c.Actor != "alice" || !c.IssuedAt.Equal(testNow) || c.CommandID != "id-2" ||
		c.Create.Amount != "12500.00" || c.Create.Currency != "USD" || c.Create.CloseDate != "2025-06-30" ||
		c.Create.Name != "Acme renewal" || c.Create.AccountID != "acc-1" || c.Create.OwnerID != "u-7" || c.ExpectedVersion != nil {
		t.Fatalf("command = %+v / %+v", c, c.Create)
	}
}

func TestCreateDefaultActorAndExpectedVersion(t *testing.T) {
	e := newEnv(t)
	body := strings.Replace(validCreate, `{`, `{"expectedVersion":0,"leadId":"lead-1","source":"web","probability":35,"forecastCategory":"commit","pipelineId":"default","stageId":"proposal",`, 1)
	wantJSON(t, e.do(t, "POST", "/api/v1/opportunities", body), http.StatusAccepted)
	c := e.fb.sentCommands()[0]
	if c.Actor != "api" || c.ExpectedVersion == nil || *c.ExpectedVersion != 0 ||
		c.Create.LeadID != "lead-1" || c.Create.Source != "web" || *c.Create.Probability != 35 ||
		*c.Create.ForecastCategory != "commit" || c.Create.StageID != "proposal" || c.Create.PipelineID != "default" {
		t.Fatalf("command = %+v / %+v", c, c.Create)
	}
}

// opportunityKeys are the members API.md and the brief require on every opportunity.
var opportunityKeys = []string{
	"id", "version", "name", "accountId", "account", "ownerId", "pipelineId", "stageId", "stageName",
	"status", "amount", "currency", "probability", "forecastCategory", "weightedAmount", "closeDate",
	"createdAt", "updatedAt", "closedAt", "lossReason", "competitor", "stageEnteredAt", "nextStep",
	"leadId", "source", "lossNote", "probabilityOverride", "forecastCategoryOverride",
	"closeDatePushCount", "stageHistory",
}

func checkOpportunityShape(t *testing.T, m map[string]any) {
	t.Helper()
	for _, k := range opportunityKeys {
		if _, ok := m[k]; !ok {
			t.Errorf("opportunity lacks %q", k)
		}
	}
}

func TestCreateWaitApplied(t *testing.T) {
	e := newEnv(t)
	body := strings.Replace(validCreate, `{`, `{"id":"opp-1","probability":35,`, 1)
	rec := e.do(t, "POST", "/api/v1/opportunities", body, "Prefer", "wait=5")
	m := wantJSON(t, rec, http.StatusCreated)
	checkOpportunityShape(t, m)
	if got := rec.Header().Get("Preference-Applied"); got != "wait=2" { // capped by MaxWait
		t.Fatalf("Preference-Applied = %q", got)
	}
	if rec.Header().Get("Location") != "/api/v1/opportunities/opp-1" {
		t.Fatalf("Location = %q", rec.Header().Get("Location"))
	}
	want := map[string]any{
		"id": "opp-1", "version": 1.0, "name": "Acme renewal", "accountId": "acc-1", "account": nil,
		"ownerId": "u-7", "pipelineId": "default", "stageId": "qualification", "stageName": "Qualification",
		"status": "open", "amount": "12500.00", "currency": "USD", "probability": 35.0,
		"forecastCategory": "pipeline", "weightedAmount": "4375.00", "closeDate": "2025-06-30",
		"createdAt": "2025-03-14T09:26:53Z", "updatedAt": "2025-03-14T09:26:53Z", "closedAt": nil,
		"lossReason": "", "competitor": "", "stageEnteredAt": "2025-03-14T09:26:53Z",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	po, ok := m["probabilityOverride"].(map[string]any)
	if !ok || po["value"] != 35.0 || po["by"] != "api" || po["at"] != "2025-03-14T09:26:53Z" {
		t.Errorf("probabilityOverride = %#v", m["probabilityOverride"])
	}
	if m["forecastCategoryOverride"] != nil {
		t.Errorf("forecastCategoryOverride = %#v", m["forecastCategoryOverride"])
	}
	sh, ok := m["stageHistory"].([]any)
	if !ok || len(sh) != 1 {
		t.Fatalf("stageHistory = %#v", m["stageHistory"])
	}
	v := sh[0].(map[string]any)
	if v["stageId"] != "qualification" || v["leftAt"] != nil || v["enteredBy"] != "api" {
		t.Errorf("stage visit = %#v", v)
	}

	// and GET returns the same document
	got := wantJSON(t, e.do(t, "GET", "/api/v1/opportunities/opp-1", ""), 200)
	checkOpportunityShape(t, got)
	a, _ := json.Marshal(m)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Errorf("GET differs from create answer:\n%s\n%s", a, b)
	}
}

func TestPreferForms(t *testing.T) {
	limit := 30 * time.Second
	for _, tc := range []struct {
		headers []string
		want    time.Duration
	}{
		{nil, 0},
		{[]string{"wait=5"}, 5 * time.Second},
		{[]string{"respond-async, wait=5"}, 5 * time.Second},
		{[]string{"respond-async,wait=7"}, 7 * time.Second},
		{[]string{"WAIT = 3"}, 3 * time.Second},
		{[]string{`wait="4"`}, 4 * time.Second},
		{[]string{"wait=4; foo=bar"}, 4 * time.Second},
		{[]string{"return=minimal", "wait=6"}, 6 * time.Second},
		{[]string{"wait=6, wait=9"}, 6 * time.Second}, // first instance wins
		{[]string{"wait=999999999999999999999999"}, limit},
		{[]string{"wait=60"}, limit},
		{[]string{"wait=-1"}, 0},
		{[]string{"wait=abc"}, 0},
		{[]string{"wait="}, 0},
		{[]string{`foo="a,wait=3", wait=2`}, 2 * time.Second},
		{[]string{"wait=0"}, 0},
	} {
		h := http.Header{}
		for _, v := range tc.headers {
			h.Add("Prefer", v)
		}
		if got := preferredWait(h, limit); got != tc.want {
			t.Errorf("Prefer %q: wait %v, want %v", tc.headers, got, tc.want)
		}
	}
	if waitSeconds(200*time.Millisecond) != 1 || waitSeconds(5*time.Second) != 5 {
		t.Error("waitSeconds rounding")
	}
}

func TestRespondAsyncWaitApplied(t *testing.T) {
	e := newEnv(t)
	body := strings.Replace(validCreate, `{`, `{"id":"opp-ra",`, 1)
	rec := e.do(t, "POST", "/api/v1/opportunities", body, "Prefer", "respond-async, wait=1")
	wantJSON(t, rec, http.StatusCreated)
	if rec.Header().Get("Preference-Applied") != "wait=1" {
		t.Fatalf("Preference-Applied = %q", rec.Header().Get("Preference-Applied"))
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	first := wantJSON(t, e.do(t, "POST", "/api/v1/opportunities", validCreate, "Idempotency-Key", "key-123"), 202)
	second := wantJSON(t, e.do(t, "POST", "/api/v1/opportunities", validCreate, "Idempotency-Key", "key-123"), 202)
	if first["commandId"] != "key-123" || second["commandId"] != "key-123" {
		t.Fatalf("commandIds %v, %v", first["commandId"], second["commandId"])
	}
	wantID := DeriveOpportunityID("key-123")
	if first["opportunityId"] != wantID || second["opportunityId"] != wantID {
		t.Fatalf("opportunityIds %v, %v, want %s", first["opportunityId"], second["opportunityId"], wantID)
	}
	if !strings.HasPrefix(wantID, "opp-") || len(wantID) != 28 {
		t.Fatalf("derived id %q", wantID)
	}
	// A retry that waits sees the state of the first application, not a conflict.
	rec := e.do(t, "POST", "/api/v1/opportunities", validCreate, "Idempotency-Key", "key-123", "Prefer", "wait=1")
	m := wantJSON(t, rec, http.StatusCreated)
	if m["id"] != wantID || m["version"] != 1.0 {
		t.Fatalf("retry state = %v", m)
	}
	// A different key derives a different id; an explicit id wins over derivation.
	other := wantJSON(t, e.do(t, "POST", "/api/v1/opportunities", validCreate, "Idempotency-Key", "key-456"), 202)
	if other["opportunityId"] == wantID {
		t.Fatal("different keys derived the same id")
	}
	body := strings.Replace(validCreate, `{`, `{"id":"explicit",`, 1)
	ex := wantJSON(t, e.do(t, "POST", "/api/v1/opportunities", body, "Idempotency-Key", "key-789"), 202)
	if ex["opportunityId"] != "explicit" || ex["commandId"] != "key-789" {
		t.Fatalf("explicit id: %v", ex)
	}
}

func TestInvalidHeaders(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		headers []string
		field   string
	}{
		{[]string{"Idempotency-Key", strings.Repeat("k", 129)}, "Idempotency-Key"},
		{[]string{"Idempotency-Key", "with space"}, "Idempotency-Key"},
		{[]string{"Idempotency-Key", "tab\there"}, "Idempotency-Key"},
		{[]string{"Idempotency-Key", "é"}, "Idempotency-Key"},
		{[]string{"Idempotency-Key", "a", "Idempotency-Key", "b"}, "Idempotency-Key"},
		{[]string{"X-Actor", strings.Repeat("a", 201)}, "X-Actor"},
		{[]string{"X-Actor", "bad\x01actor"}, "X-Actor"},
	} {
		p := wantProblem(t, e.do(t, "POST", "/api/v1/opportunities", validCreate, tc.headers...), 400, codeInvalidHeader)
		if !p.hasField(tc.field) {
			t.Errorf("%q: fields %v", tc.headers, p.fields())
		}
	}
	if n := len(e.fb.sentCommands()); n != 0 {
		t.Fatalf("%d commands sent", n)
	}
	// 128 characters is fine, and 200 of an actor
	wantJSON(t, e.do(t, "POST", "/api/v1/opportunities", validCreate, "Idempotency-Key", strings.Repeat("k", 128),
		"X-Actor", strings.Repeat("ä", 200)), 202)
}

func TestBadBodies(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
		fields     []string
	}{
		{"malformed", `{"name":`, 400, codeMalformedJSON, nil},
		{"trailing garbage", validCreate + `x`, 400, codeMalformedJSON, nil},
		{"two objects", validCreate + validCreate, 400, codeMalformedJSON, nil},
		{"array", `[1,2]`, 400, codeMalformedJSON, nil},
		{"null", `null`, 400, codeMalformedJSON, nil},
		{"string", `"x"`, 400, codeMalformedJSON, nil},
		{"bad utf8", "{\"name\":\"\xff\"}", 400, codeMalformedJSON, nil},
		{"unknown field", strings.Replace(validCreate, `{`, `{"colour":"red",`, 1), 400, codeUnknownField, []string{"colour"}},
		{"two unknown fields", strings.Replace(validCreate, `{`, `{"b":1,"a":2,`, 1), 400, codeUnknownField, []string{"a", "b"}},
		{"amount number", strings.Replace(validCreate, `"12500.00"`, `12500.00`, 1), 400, codeWrongType, []string{"amount"}},
		{"name number", strings.Replace(validCreate, `"Acme renewal"`, `7`, 1), 400, codeWrongType, []string{"name"}},
		{"probability string", strings.Replace(validCreate, `{`, `{"probability":"50",`, 1), 400, codeWrongType, []string{"probability"}},
		{"probability fraction", strings.Replace(validCreate, `{`, `{"probability":50.5,`, 1), 400, codeWrongType, []string{"probability"}},
		{"probability huge", strings.Replace(validCreate, `{`, `{"probability":1e40,`, 1), 400, codeWrongType, []string{"probability"}},
		{"expectedVersion string", strings.Replace(validCreate, `{`, `{"expectedVersion":"1",`, 1), 400, codeWrongType, []string{"expectedVersion"}},
		{"missing required", `{}`, 422, string(domain.CodeInvalid), []string{"name", "accountId", "ownerId", "amount", "closeDate"}},
		{"empty body", ``, 422, string(domain.CodeInvalid), []string{"name"}},
		{"bad amount", strings.Replace(validCreate, `"12500.00"`, `"12,500"`, 1), 422, string(domain.CodeInvalid), []string{"amount"}},
		{"bad date", strings.Replace(validCreate, `"2025-06-30"`, `"30/06/2025"`, 1), 422, string(domain.CodeInvalid), []string{"closeDate"}},
		{"probability out of range", strings.Replace(validCreate, `{`, `{"probability":101,`, 1), 422, string(domain.CodeInvalid), []string{"probability"}},
		{"negative expectedVersion", strings.Replace(validCreate, `{`, `{"expectedVersion":-1,`, 1), 422, string(domain.CodeInvalid), []string{"expectedVersion"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := wantProblem(t, e.do(t, "POST", "/api/v1/opportunities", tc.body, "Prefer", "wait=1"), tc.status, tc.code)
			for _, f := range tc.fields {
				if !p.hasField(f) {
					t.Errorf("problem does not name %q: %v", f, p.fields())
				}
			}
		})
	}
	if n := len(e.fb.sentCommands()); n != 0 {
		t.Fatalf("%d commands sent for invalid bodies", n)
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 256 })
	big := strings.Replace(validCreate, `{`, `{"source":"`+strings.Repeat("x", 300)+`",`, 1)
	wantProblem(t, e.do(t, "POST", "/api/v1/opportunities", big), 413, codeBodyTooLarge)

	// unknown length (chunked): the limit is hit while reading
	req := newTestRequest("POST", "/api/v1/opportunities", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	wantProblem(t, rec, 413, codeBodyTooLarge)

	req = newTestRequest("PUT", "/api/v1/pipelines/p", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	wantProblem(t, rec, 413, codeBodyTooLarge)
}

func TestPatchNullVersusAbsent(t *testing.T) {
	e := newEnv(t)
	e.create(t, "opp-p")
	for _, tc := range []struct {
		body                string
		clearProb, clearCat bool
		prob                *int
		cat, next           *string
		name                *string
	}{
		{body: `{"probability":null}`, clearProb: true},
		{body: `{"forecastCategory":null}`, clearCat: true},
		{body: `{"probability":null,"forecastCategory":null}`, clearProb: true, clearCat: true},
		{body: `{"probability":40}`, prob: ptr(40)},
		{body: `{"forecastCategory":"commit"}`, cat: ptr("commit")},
		{body: `{"name":"New"}`, name: ptr("New")},
		{body: `{"nextStep":null}`, next: ptr("")},
		{body: `{"nextStep":"call"}`, next: ptr("call")},
	} {
		before := len(e.fb.sentCommands())
		wantJSON(t, e.do(t, "PATCH", "/api/v1/opportunities/opp-p", tc.body), 202)
		cmds := e.fb.sentCommands()
		if len(cmds) != before+1 {
			t.Fatalf("%s: no command sent", tc.body)
		}
		u := cmds[len(cmds)-1].Update
		if u.ClearProbability != tc.clearProb || u.ClearForecastCategory != tc.clearCat ||
			!eqPtr(u.Probability, tc.prob) || !eqPtr(u.ForecastCategory, tc.cat) || !eqPtr(u.NextStep, tc.next) ||
			!eqPtr(u.Name, tc.name) || u.Amount != nil || u.Currency != nil || u.CloseDate != nil || u.AccountID != nil {
			t.Errorf("%s: update = %+v", tc.body, u)
		}
	}
	// null where it means nothing is refused, naming the field
	p := wantProblem(t, e.do(t, "PATCH", "/api/v1/opportunities/opp-p", `{"name":null,"amount":null}`), 400, codeWrongType)
	if !p.hasField("name") || !p.hasField("amount") {
		t.Fatalf("fields %v", p.fields())
	}
	wantProblem(t, e.do(t, "PATCH", "/api/v1/opportunities/opp-p", `{"amount":100}`), 400, codeWrongType)
	wantProblem(t, e.do(t, "PATCH", "/api/v1/opportunities/opp-p", `{"stageId":"x"}`), 400, codeUnknownField)

	// with wait: the override set and then cleared
	m := wantJSON(t, e.do(t, "PATCH", "/api/v1/opportunities/opp-p", `{"probability":40}`, "Prefer", "wait=1"), 200)
	if m["probability"] != 40.0 || m["probabilityOverride"] == nil {
		t.Fatalf("after set: %v / %v", m["probability"], m["probabilityOverride"])
	}
	m = wantJSON(t, e.do(t, "PATCH", "/api/v1/opportunities/opp-p", `{"probability":null}`, "Prefer", "wait=1"), 200)
	if m["probability"] != 10.0 || m["probabilityOverride"] != nil {
		t.Fatalf("after clear: %v / %v", m["probability"], m["probabilityOverride"])
	}
}

func ptr[T any](v T) *T { return &v }

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func TestLifecycleAndRejections(t *testing.T) {
	e := newEnv(t)
	e.create(t, "opp-l")
	w := []string{"Prefer", "wait=1"}

	m := wantJSON(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/stage", `{"stageId":"proposal"}`, w...), 200)
	if m["stageId"] != "proposal" || m["stageName"] != "Proposal" || m["version"] != 2.0 || m["weightedAmount"] != "6250.00" {
		t.Fatalf("after stage: %v", m)
	}
	// stale expectedVersion -> 409
	p := wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/stage", `{"stageId":"negotiation","expectedVersion":1}`, w...),
		409, string(domain.CodeConflict))
	if !strings.HasPrefix(p.Type, problemTypePrefix) {
		t.Fatalf("type %q", p.Type)
	}
	// a won stage via ChangeStage is a business refusal -> 422
	wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/stage", `{"stageId":"closed_won"}`, w...), 422, "")
	// unknown opportunity -> 404
	wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/nope/stage", `{"stageId":"proposal"}`, w...), 404, string(domain.CodeNotFound))
	// create of an existing id with a new command -> 409
	body := strings.Replace(validCreate, `{`, `{"id":"opp-l",`, 1)
	wantProblem(t, e.do(t, "POST", "/api/v1/opportunities", body, w...), 409, string(domain.CodeAlreadyExists))
	// missing stageId -> 422 before sending
	n := len(e.fb.sentCommands())
	wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/stage", `{}`, w...), 422, string(domain.CodeInvalid))
	if len(e.fb.sentCommands()) != n {
		t.Fatal("invalid command was sent")
	}

	m = wantJSON(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/close-lost", `{"reason":"price","competitor":"Globex","note":"too dear"}`, w...), 200)
	if m["status"] != "lost" || m["lossReason"] != "price" || m["competitor"] != "Globex" || m["lossNote"] != "too dear" || m["closedAt"] == nil {
		t.Fatalf("after close-lost: %v", m)
	}
	// closed deal refuses changes -> 422 opportunity_closed
	wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/close-won", `{}`, w...), 422, string(domain.CodeClosed))
	wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/close-lost", `{}`, w...), 422, string(domain.CodeInvalid))

	m = wantJSON(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/reopen", `{"stageId":"negotiation"}`, w...), 200)
	if m["status"] != "open" || m["closedAt"] != nil || m["stageId"] != "negotiation" {
		t.Fatalf("after reopen: %v", m)
	}
	wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/reopen", `{"stageId":"negotiation"}`, w...), 422, string(domain.CodeNotClosed))

	// A closing date after the day of the command, or before the deal was created, is a 422
	// naming closeDate (testNow is 2025-03-14, the deal was created that day).
	p = wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/close-won", `{"closeDate":"2025-03-15"}`, w...), 422, string(domain.CodeCloseDateInFuture))
	if !p.hasField("closeDate") || p.Title != "Close date in the future" {
		t.Fatalf("future close date: %+v", p)
	}
	p = wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/close-lost", `{"reason":"price","closeDate":"2025-03-13"}`, w...), 422, string(domain.CodeCloseDateBeforeCreated))
	if !p.hasField("closeDate") {
		t.Fatalf("close date before creation: %+v", p)
	}
	m = wantJSON(t, e.do(t, "POST", "/api/v1/opportunities/opp-l/close-won", `{"amount":"13000.00","closeDate":"2025-03-14"}`, w...), 200)
	if m["status"] != "won" || m["amount"] != "13000.00" || m["weightedAmount"] != "13000.00" || m["closeDate"] != "2025-03-14" {
		t.Fatalf("after close-won: %v", m)
	}
	// close-won without a body is fine
	e.create(t, "opp-w")
	wantJSON(t, e.do(t, "POST", "/api/v1/opportunities/opp-w/close-won", "", w...), 200)
	// without wait every action is 202 with Location
	rec := e.do(t, "POST", "/api/v1/opportunities/opp-w/reopen", `{"stageId":"discovery"}`)
	wantJSON(t, rec, 202)
	if !strings.HasPrefix(rec.Header().Get("Location"), "/api/v1/commands/"+rec.Header().Get("X-Command-Id")+"?opportunityId=opp-w&") ||
		rec.Header().Get("X-Command-Id") == "" || !strings.Contains(rec.Header().Get("Link"), "/api/v1/opportunities/opp-w") {
		t.Fatalf("headers %v", rec.Header())
	}
	// wrong types on action bodies name the field
	p = wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/opp-w/close-won", `{"amount":13000}`), 400, codeWrongType)
	if !p.hasField("amount") {
		t.Fatalf("fields %v", p.fields())
	}
}

func TestWaitTimeoutAnswers202(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxWait = 50 * time.Millisecond })
	e.fb.blockAwait = true
	start := time.Now()
	rec := e.do(t, "POST", "/api/v1/opportunities", validCreate, "Prefer", "wait=10", "Idempotency-Key", "k1")
	m := wantJSON(t, rec, http.StatusAccepted)
	if m["commandId"] != "k1" || m["opportunityId"] != DeriveOpportunityID("k1") {
		t.Fatalf("body %v", m)
	}
	if rec.Header().Get("Preference-Applied") != "" {
		t.Fatal("Preference-Applied on a timed-out wait")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("waited %v despite MaxWait", d)
	}
}

func TestBackendErrorsDoNotLeak(t *testing.T) {
	e := newEnv(t)
	e.create(t, "opp-e")
	secret := "dial tcp 10.1.2.3:9092: connection refused"
	e.fb.sendErr = errors.New(secret)
	rec := e.do(t, "POST", "/api/v1/opportunities/opp-e/stage", `{"stageId":"proposal"}`)
	wantProblem(t, rec, 503, codeUnavailable)
	if strings.Contains(rec.Body.String(), "10.1.2.3") {
		t.Fatal("internal error leaked")
	}
	e.fb.sendErr = fmt.Errorf("wrapped: %w", &domain.Rejection{Code: domain.CodeInvalid, Message: "nope",
		Fields: []domain.FieldError{{Field: "stageId", Message: "bad"}}})
	p := wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/opp-e/stage", `{"stageId":"proposal"}`), 422, string(domain.CodeInvalid))
	if !p.hasField("stageId") {
		t.Fatal("rejection fields lost")
	}
	e.fb.sendErr = nil

	e.fb.readErr = errors.New(secret)
	for _, path := range []string{"/api/v1/opportunities/opp-e", "/api/v1/opportunities", "/api/v1/opportunities/opp-e/history",
		"/api/v1/pipelines", "/api/v1/pipelines/default", "/api/v1/fx-rates"} {
		rec := e.do(t, "GET", path, "")
		wantProblem(t, rec, 500, codeInternal)
		if strings.Contains(rec.Body.String(), "10.1.2.3") {
			t.Fatal("internal error leaked")
		}
	}
	e.fb.readErr = nil

	e.fb.putErr = errors.New(secret)
	rec = e.do(t, "PUT", "/api/v1/fx-rates/GBP", `{"rate":"1.27"}`)
	wantProblem(t, rec, 503, codeUnavailable)
	if !strings.Contains(e.logs.String(), "10.1.2.3") {
		t.Fatal("internal error not logged")
	}
}

func TestGetOpportunityAndHistory(t *testing.T) {
	e := newEnv(t)
	wantProblem(t, e.do(t, "GET", "/api/v1/opportunities/missing", ""), 404, string(domain.CodeNotFound))
	wantProblem(t, e.do(t, "GET", "/api/v1/opportunities/missing/history", ""), 404, string(domain.CodeNotFound))

	e.create(t, "opp-h")
	wantJSON(t, e.do(t, "POST", "/api/v1/opportunities/opp-h/stage", `{"stageId":"discovery"}`, "X-Actor", "bob", "Idempotency-Key", "cmd-2"), 202)
	wantJSON(t, e.do(t, "PATCH", "/api/v1/opportunities/opp-h", `{"name":"Renamed"}`), 202)

	m := wantJSON(t, e.do(t, "GET", "/api/v1/opportunities/opp-h/history", ""), 200)
	items, _ := m["items"].([]any)
	if len(items) != 3 {
		t.Fatalf("history items = %d: %v", len(items), m)
	}
	for i, it := range items {
		ev := it.(map[string]any)
		for _, k := range []string{"version", "eventId", "type", "at", "actor", "commandId", "fromStageId", "toStageId", "changes"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("event %d lacks %q", i, k)
			}
		}
		if ev["version"] != float64(i+1) || ev["eventId"] != fmt.Sprintf("opp-h:%d", i+1) {
			t.Errorf("event %d: %v", i, ev)
		}
	}
	stage := items[1].(map[string]any)
	if stage["type"] != string(domain.EvtStageChanged) || stage["actor"] != "bob" || stage["commandId"] != "cmd-2" ||
		stage["fromStageId"] != "qualification" || stage["toStageId"] != "discovery" {
		t.Errorf("stage event: %v", stage)
	}
	upd := items[2].(map[string]any)
	if upd["fromStageId"] != nil || upd["toStageId"] != nil {
		t.Errorf("update event stage ids: %v", upd)
	}
	ch, _ := upd["changes"].(map[string]any)
	name, _ := ch["name"].(map[string]any)
	if name["before"] != "Acme renewal" || name["after"] != "Renamed" {
		t.Errorf("name change: %v", ch)
	}
	created := items[0].(map[string]any)
	if _, ok := created["changes"].(map[string]any); !ok {
		t.Errorf("changes is not an object: %v", created["changes"])
	}
}

// The history is paged: limit (1..1000, default 1000) and the cursor of the previous page
// (nextCursor, null on the last page), oldest first throughout.
func TestHistoryPaged(t *testing.T) {
	e := newEnv(t)
	agg := &domain.Aggregate{State: domain.Opportunity{ID: "x", Currency: "USD", Version: 5}}
	for v := int64(5); v >= 1; v-- {
		agg.Events = append(agg.Events, domain.Event{Version: v, EventID: fmt.Sprintf("x:%d", v)})
	}
	agg.Events[3].Changes = []domain.Change{{Field: "probability", BeforeSet: false, After: "40", AfterSet: true}}
	e.fb.aggs["x"] = agg
	m := wantJSON(t, e.do(t, "GET", "/api/v1/opportunities/x/history", ""), 200)
	items := m["items"].([]any)
	if len(items) != 5 || items[0].(map[string]any)["version"] != 1.0 || m["nextCursor"] != nil {
		t.Fatalf("whole history: %v", m)
	}
	ch := items[1].(map[string]any)["changes"].(map[string]any)["probability"].(map[string]any)
	if v, ok := ch["before"]; !ok || v != nil || ch["after"] != "40" {
		t.Fatalf("before/after = %v", ch)
	}
	var got []float64
	cursor := ""
	for page := 0; page < 5; page++ {
		path := "/api/v1/opportunities/x/history?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		m := wantJSON(t, e.do(t, "GET", path, ""), 200)
		for _, it := range m["items"].([]any) {
			got = append(got, it.(map[string]any)["version"].(float64))
		}
		next, _ := m["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if !reflect.DeepEqual(got, []float64{1, 2, 3, 4, 5}) {
		t.Fatalf("paged versions %v", got)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=-1", "cursor=abc"} {
		wantProblem(t, e.do(t, "GET", "/api/v1/opportunities/x/history?"+q, ""), 400, codeInvalidQuery)
	}
}

func TestListOpportunities(t *testing.T) {
	e := newEnv(t)
	m := wantJSON(t, e.do(t, "GET", "/api/v1/opportunities", ""), 200)
	if items, ok := m["items"].([]any); !ok || len(items) != 0 {
		t.Fatalf("empty list items = %#v", m["items"])
	}
	if v, ok := m["nextCursor"]; !ok || v != nil {
		t.Fatalf("nextCursor = %#v", v)
	}
	if e.fb.lastList.Limit != 50 {
		t.Fatalf("default limit %d", e.fb.lastList.Limit)
	}
	for _, id := range []string{"a", "b", "c"} {
		e.create(t, id)
	}
	m = wantJSON(t, e.do(t, "GET", "/api/v1/opportunities?limit=2&status=open&pipelineId=default&ownerId=u-7&accountId=acc-1&stageId=qualification&closeFrom=2025-01-01&closeTo=2025-12-31", ""), 200)
	items := m["items"].([]any)
	if len(items) != 2 || m["nextCursor"] != "after:b" {
		t.Fatalf("page 1: %d items, cursor %v", len(items), m["nextCursor"])
	}
	checkOpportunityShape(t, items[0].(map[string]any))
	if items[0].(map[string]any)["stageName"] != "Qualification" {
		t.Fatalf("stageName %v", items[0].(map[string]any)["stageName"])
	}
	lf := e.fb.lastList
	if lf.Limit != 2 || lf.Status != domain.StatusOpen || lf.PipelineID != "default" || lf.OwnerID != "u-7" ||
		lf.AccountID != "acc-1" || lf.StageID != "qualification" || lf.CloseFrom == nil || lf.CloseFrom.String() != "2025-01-01" ||
		lf.CloseTo == nil || lf.CloseTo.String() != "2025-12-31" {
		t.Fatalf("filter = %+v", lf)
	}
	m = wantJSON(t, e.do(t, "GET", "/api/v1/opportunities?limit=2&cursor=after:b", ""), 200)
	if items := m["items"].([]any); len(items) != 1 || m["nextCursor"] != nil {
		t.Fatalf("page 2: %v", m)
	}
	// the backend refusing a cursor is the client's fault
	p := wantProblem(t, e.do(t, "GET", "/api/v1/opportunities?cursor=garbage", ""), 400, codeInvalidQuery)
	if !p.hasField("cursor") {
		t.Fatalf("fields %v", p.fields())
	}
}

func TestListBadQuery(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		query  string
		fields []string
	}{
		{"status=closed", []string{"status"}},
		{"closeFrom=2025-13-01", []string{"closeFrom"}},
		{"closeTo=tomorrow", []string{"closeTo"}},
		{"closeFrom=2025-02-01&closeTo=2025-01-01", []string{"closeFrom"}},
		{"closeFrom=1800-01-01", []string{"closeFrom"}},
		{"limit=0", []string{"limit"}},
		{"limit=501", []string{"limit"}},
		{"limit=ten", []string{"limit"}},
		{"limit=-5", []string{"limit"}},
		{"status=open&status=won", []string{"status"}},
		{"limit=0&status=x&closeTo=y", []string{"limit", "status", "closeTo"}},
		{"cursor=" + strings.Repeat("c", 2000), []string{"cursor"}},
		{"status=%zz", []string{"query"}},
	} {
		p := wantProblem(t, e.do(t, "GET", "/api/v1/opportunities?"+tc.query, ""), 400, codeInvalidQuery)
		for _, f := range tc.fields {
			if !p.hasField(f) {
				t.Errorf("%s: fields %v lack %q", tc.query, p.fields(), f)
			}
		}
	}
	// limits at the edges and unknown parameters are fine
	wantJSON(t, e.do(t, "GET", "/api/v1/opportunities?limit=1", ""), 200)
	wantJSON(t, e.do(t, "GET", "/api/v1/opportunities?limit=500&_=123&status=", ""), 200)
}

const customPipeline = `{"name":"Enterprise","stages":[
 {"id":"lead","name":"Lead","probability":5,"forecastCategory":"pipeline","status":"open","requiredFields":["nextStep"],"staleAfterDays":7},
 {"id":"won","name":"Won","probability":100,"forecastCategory":"closed","status":"won","requiredFields":[]},
 {"id":"lost","name":"Lost","probability":0,"forecastCategory":"omitted","status":"lost"}]}`

func TestPipelines(t *testing.T) {
	e := newEnv(t)
	m := wantJSON(t, e.do(t, "GET", "/api/v1/pipelines", ""), 200)
	items := m["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("pipelines %v", items)
	}
	def := wantJSON(t, e.do(t, "GET", "/api/v1/pipelines/default", ""), 200)
	stages := def["stages"].([]any)
	if def["id"] != "default" || len(stages) != 6 {
		t.Fatalf("default pipeline %v", def)
	}
	st := stages[0].(map[string]any)
	for _, k := range []string{"id", "name", "probability", "forecastCategory", "status", "requiredFields", "staleAfterDays"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stage lacks %q", k)
		}
	}
	if st["id"] != "qualification" || st["probability"] != 10.0 || st["forecastCategory"] != "pipeline" || st["status"] != "open" {
		t.Errorf("stage %v", st)
	}
	if rf, ok := st["requiredFields"].([]any); !ok || len(rf) != 0 {
		t.Errorf("requiredFields %#v", st["requiredFields"])
	}
	if _, ok := stages[4].(map[string]any)["staleAfterDays"]; ok {
		t.Error("staleAfterDays 0 should be omitted")
	}
	wantProblem(t, e.do(t, "GET", "/api/v1/pipelines/nope", ""), 404, string(domain.CodeNotFound))

	put := wantJSON(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", customPipeline), 200)
	if put["id"] != "enterprise" || put["name"] != "Enterprise" || len(put["stages"].([]any)) != 3 {
		t.Fatalf("PUT answer %v", put)
	}
	got := wantJSON(t, e.do(t, "GET", "/api/v1/pipelines/enterprise", ""), 200)
	a, _ := json.Marshal(put)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Fatalf("stored differs:\n%s\n%s", a, b)
	}
	if e.fb.pipelines["enterprise"].Stages[0].StaleAfterDays != 7 || e.fb.pipelines["enterprise"].Stages[0].RequiredFields[0] != "nextStep" {
		t.Fatalf("stored %+v", e.fb.pipelines["enterprise"])
	}
	// body id equal to the path is fine; different is not
	wantJSON(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", strings.Replace(customPipeline, `{`, `{"id":"enterprise",`, 1)), 200)
	p := wantProblem(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", strings.Replace(customPipeline, `{`, `{"id":"other",`, 1)), 422, string(domain.CodeInvalid))
	if !p.hasField("id") {
		t.Fatalf("fields %v", p.fields())
	}
	// business validation names each field
	bad := strings.Replace(customPipeline, `"probability":100`, `"probability":90`, 1)
	bad = strings.Replace(bad, `"status":"lost"`, `"status":"gone"`, 1)
	p = wantProblem(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", bad), 422, string(domain.CodeInvalid))
	if !p.hasField("stages[1].probability") || !p.hasField("stages[2].status") {
		t.Fatalf("fields %v", p.fields())
	}
	p = wantProblem(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", strings.Replace(customPipeline, `"probability":5,`, ``, 1)), 422, "")
	if !p.hasField("stages[0].probability") {
		t.Fatalf("fields %v", p.fields())
	}
	// nested unknown field and wrong types name the path
	p = wantProblem(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", strings.Replace(customPipeline, `"id":"won",`, `"id":"won","colour":1,`, 1)), 400, codeUnknownField)
	if !p.hasField("stages[1].colour") {
		t.Fatalf("fields %v", p.fields())
	}
	p = wantProblem(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", strings.Replace(customPipeline, `"probability":5`, `"probability":"5"`, 1)), 400, codeWrongType)
	if !p.hasField("stages[0].probability") {
		t.Fatalf("fields %v", p.fields())
	}
	p = wantProblem(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", `{"name":"x","stages":[1]}`), 400, codeWrongType)
	if !p.hasField("stages[0]") {
		t.Fatalf("fields %v", p.fields())
	}
	p = wantProblem(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", `{"name":"x","stages":[{"requiredFields":[1]}]}`), 400, codeWrongType)
	if !p.hasField("stages[0].requiredFields[0]") {
		t.Fatalf("fields %v", p.fields())
	}
	wantProblem(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", `{"name":`), 400, codeMalformedJSON)
	wantProblem(t, e.do(t, "PUT", "/api/v1/pipelines/bad%20id", customPipeline), 422, string(domain.CodeInvalid))
}

func TestFXRates(t *testing.T) {
	e := newEnv(t)
	m := wantJSON(t, e.do(t, "GET", "/api/v1/fx-rates", ""), 200)
	items := m["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["currency"] != "EUR" || items[0].(map[string]any)["rate"] != "1.0823" {
		t.Fatalf("rates %v", items)
	}
	put := wantJSON(t, e.do(t, "PUT", "/api/v1/fx-rates/JPY", `{"rate":"0.006712"}`), 200)
	if put["currency"] != "JPY" || put["rate"] != "0.006712" || len(put) != 2 {
		t.Fatalf("PUT answer %v", put)
	}
	if e.fb.rates["JPY"] != "0.006712" {
		t.Fatal("rate not stored")
	}
	wantJSON(t, e.do(t, "PUT", "/api/v1/fx-rates/GBP", `{"currency":"GBP","rate":"1.`+strings.Repeat("1", 18)+`"}`), 200)
	for _, tc := range []struct {
		path, body string
		status     int
		field      string
	}{
		{"/api/v1/fx-rates/XXX", `{"rate":"1"}`, 422, "currency"},
		{"/api/v1/fx-rates/usd", `{"rate":"1"}`, 422, "currency"},
		{"/api/v1/fx-rates/GBP", `{"currency":"EUR","rate":"1"}`, 422, "currency"},
		{"/api/v1/fx-rates/GBP", `{}`, 422, "rate"},
		{"/api/v1/fx-rates/GBP", `{"rate":"0"}`, 422, "rate"},
		{"/api/v1/fx-rates/GBP", `{"rate":"0.000"}`, 422, "rate"},
		{"/api/v1/fx-rates/GBP", `{"rate":"-1.2"}`, 422, "rate"},
		{"/api/v1/fx-rates/GBP", `{"rate":"1e3"}`, 422, "rate"},
		{"/api/v1/fx-rates/GBP", `{"rate":"1."}`, 422, "rate"},
		{"/api/v1/fx-rates/GBP", `{"rate":".5"}`, 422, "rate"},
		{"/api/v1/fx-rates/GBP", `{"rate":"1.` + strings.Repeat("1", 19) + `"}`, 422, "rate"},
		{"/api/v1/fx-rates/GBP", `{"rate":1.27}`, 400, "rate"},
		{"/api/v1/fx-rates/GBP", `{"rate":"1.27","when":"now"}`, 400, "when"},
	} {
		p := wantProblem(t, e.do(t, "PUT", tc.path, tc.body), tc.status, "")
		if !p.hasField(tc.field) {
			t.Errorf("%s %s: fields %v", tc.path, tc.body, p.fields())
		}
	}
}

func TestRoutingProblems(t *testing.T) {
	e := newEnv(t)
	wantProblem(t, e.do(t, "GET", "/nope", ""), 404, codeRouteNotFound)
	wantProblem(t, e.do(t, "GET", "/api/v1/opportunities/x/y/z", ""), 404, codeRouteNotFound)
	wantProblem(t, e.do(t, "GET", "/api/v1/forecasts", ""), 404, codeRouteNotFound)
	rec := e.do(t, "DELETE", "/api/v1/opportunities/x", "")
	wantProblem(t, rec, 405, codeMethodNotAllowed)
	if allow := rec.Header().Values("Allow"); !slices.Contains(allow, "GET") || !slices.Contains(allow, "PATCH") || slices.Contains(allow, "POST") {
		t.Fatalf("Allow = %v", allow)
	}
	rec = e.do(t, "POST", "/api/v1/fx-rates", "{}")
	wantProblem(t, rec, 405, codeMethodNotAllowed)
	if allow := rec.Header().Values("Allow"); !slices.Equal(allow, []string{"GET"}) {
		t.Fatalf("Allow = %v", allow)
	}
	wantProblem(t, e.do(t, "BREW", "/api/v1/fx-rates", ""), 405, codeMethodNotAllowed)
	wantProblem(t, e.do(t, "POST", "/healthz", ""), 405, codeMethodNotAllowed)
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	rec := e.do(t, "GET", "/healthz", "", "X-Request-Id", "abc-123")
	if rec.Header().Get("X-Request-Id") != "abc-123" {
		t.Fatalf("echo = %q", rec.Header().Get("X-Request-Id"))
	}
	rec = e.do(t, "GET", "/healthz", "")
	if rec.Header().Get("X-Request-Id") == "" {
		t.Fatal("no generated request id")
	}
	rec = e.do(t, "GET", "/healthz", "", "X-Request-Id", "evil\"\nid")
	if got := rec.Header().Get("X-Request-Id"); got == "" || strings.ContainsAny(got, "\"\n") {
		t.Fatalf("unsafe request id kept: %q", got)
	}
	rec = e.do(t, "GET", "/nope", "", "X-Request-Id", "rid-9")
	if p := wantProblem(t, rec, 404, ""); p.RequestID != "rid-9" {
		t.Fatalf("problem requestId = %q", p.RequestID)
	}
}

func TestAccessLog(t *testing.T) {
	e := newEnv(t)
	e.create(t, "opp-log")
	e.do(t, "GET", "/api/v1/opportunities/opp-log", "", "X-Request-Id", "rid-log", "Authorization", "Bearer s3cr3t-token")
	var found bool
	for line := range strings.SplitSeq(strings.TrimSpace(e.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if rec["msg"] == "http request" && rec["request_id"] == "rid-log" {
			found = true
			if rec["method"] != "GET" || rec["route"] != "/api/v1/opportunities/{id}" || rec["status"] != 200.0 || rec["duration_ms"] == nil || rec["level"] != "DEBUG" {
				t.Fatalf("access log line %v", rec)
			}
		}
	}
	if !found {
		t.Fatalf("no access log line: %s", e.logs)
	}
	logs := e.logs.String()
	if strings.Contains(logs, "s3cr3t-token") || strings.Contains(logs, "Acme renewal") {
		t.Fatal("log contains a header or body")
	}
}

func TestPanicBecomesProblem(t *testing.T) {
	e := newEnv(t)
	e.fb.panicOnID = "boom"
	rec := e.do(t, "GET", "/api/v1/opportunities/boom", "", "X-Request-Id", "rid-panic")
	wantProblem(t, rec, 500, codeInternal)
	if strings.Contains(rec.Body.String(), "fake backend") {
		t.Fatal("panic value leaked")
	}
	if !strings.Contains(e.logs.String(), "panic in HTTP handler") {
		t.Fatal("panic not logged")
	}
	// and the service keeps serving
	wantJSON(t, e.do(t, "GET", "/healthz", ""), 200)
	if !strings.Contains(scrape(t, e), `crm_http_requests_total{code="500",method="GET",route="/api/v1/opportunities/{id}"} 1`) {
		t.Fatal("panic not counted as 500")
	}
}

func scrape(t testing.TB, e *env) string {
	t.Helper()
	rec := e.do(t, "GET", "/metrics", "")
	if rec.Code != 200 {
		t.Fatalf("/metrics status %d", rec.Code)
	}
	return rec.Body.String()
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.create(t, "m1")
	e.do(t, "GET", "/api/v1/opportunities/m1", "")
	e.do(t, "GET", "/api/v1/opportunities/m2", "")
	e.do(t, "GET", "/random/path/123", "")
	e.do(t, "BREW", "/healthz", "")
	out := scrape(t, e)
	for _, want := range []string{
		`crm_http_requests_total{code="201",method="POST",route="/api/v1/opportunities"} 1`,
		`crm_http_requests_total{code="200",method="GET",route="/api/v1/opportunities/{id}"} 1`,
		`crm_http_requests_total{code="404",method="GET",route="/api/v1/opportunities/{id}"} 1`,
		`crm_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`crm_http_requests_total{code="405",method="OTHER",route="unmatched"} 1`,
		`crm_http_request_duration_seconds_bucket{method="GET",route="/api/v1/opportunities/{id}",le="+Inf"} 2`,
		`crm_http_request_duration_seconds_count{method="POST",route="/api/v1/opportunities"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(out, "/random/path") || strings.Contains(out, `route="/api/v1/opportunities/m1"`) {
		t.Error("raw paths used as labels")
	}
}

func TestNewHandlerConfig(t *testing.T) {
	if _, err := NewHandler(Config{}); err == nil {
		t.Fatal("no error without Backend")
	}
	fb := newFakeBackend(time.Now)
	// all defaults: private registry served on /metrics
	h, err := NewHandler(Config{Backend: fb})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newTestRequest("GET", "/healthz", nil))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, newTestRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "crm_http_requests_total") {
		t.Fatal("default registry not served")
	}
	// default ids are UUIDs
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, newTestRequest("POST", "/api/v1/opportunities", strings.NewReader(validCreate)))
	var acc acceptedJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &acc); err != nil || len(acc.CommandID) != 36 || len(acc.OpportunityID) != 36 || acc.CommandID == acc.OpportunityID {
		t.Fatalf("default ids: %s", rec.Body)
	}
	// two handlers on one registry share the collectors
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := NewHandler(Config{Backend: fb, Registerer: reg}); err != nil {
			t.Fatalf("second handler on one registry: %v", err)
		}
	}
	// a Registerer that is no Gatherer needs a Gatherer
	if _, err := NewHandler(Config{Backend: fb, Registerer: prometheus.WrapRegistererWithPrefix("x_", reg)}); err == nil {
		t.Fatal("no error without Gatherer")
	}
	// a Gatherer without a Registerer serves both
	other := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "other_total", Help: "h"})
	other.MustRegister(c)
	h, err = NewHandler(Config{Backend: fb, Gatherer: other})
	if err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), newTestRequest("GET", "/healthz", nil))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, newTestRequest("GET", "/metrics", nil))
	if body := rec.Body.String(); !strings.Contains(body, "other_total") || !strings.Contains(body, "crm_http_request_duration_seconds") {
		t.Fatalf("metrics %s", body)
	}
}

func TestPathParamsAreUnescaped(t *testing.T) {
	e := newEnv(t)
	e.create(t, "a:b")
	m := wantJSON(t, e.do(t, "GET", "/api/v1/opportunities/a%3Ab", ""), 200)
	if m["id"] != "a:b" {
		t.Fatalf("id %v", m["id"])
	}
	// Decoded once: a%253Ab is the id "a%3Ab", not "a:b" (and no valid id at all).
	wantProblem(t, e.do(t, "GET", "/api/v1/opportunities/a%253Ab", ""), 404, string(domain.CodeNotFound))
	rec := e.do(t, "POST", "/api/v1/opportunities/a%3Ab/stage", `{"stageId":"proposal"}`)
	wantJSON(t, rec, 202)
	if loc := rec.Header().Get("Link"); loc != `</api/v1/opportunities/a:b>; rel="related"` && loc != `</api/v1/opportunities/a%3Ab>; rel="related"` {
		t.Fatalf("Link %q", loc)
	}
	if loc := rec.Header().Get("Location"); !strings.Contains(loc, "opportunityId=a%3Ab") {
		t.Fatalf("Location %q", loc)
	}
	// A path id outside the id alphabet is refused before anything is sent.
	wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/a%20b%2Fc/stage", `{"stageId":"proposal"}`), 422, string(domain.CodeInvalid))
}
