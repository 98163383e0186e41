package query

import (
	"net/http"
	"strings"
	"testing"
)

// createAs is a create of opportunity id with extra headers (name, value pairs).
func createAs(t *testing.T, e *env, id string, headers ...string) int {
	t.Helper()
	body := strings.Replace(validCreate, `{`, `{"id":"`+id+`",`, 1)
	return e.do(t, "POST", "/api/v1/opportunities", body, append([]string{"Prefer", "wait=5"}, headers...)...).Code
}

// Without tokens the service answers loopback host names only: a DNS-rebinding page, whose
// requests carry its own host name, gets 403 for reads and writes alike; the probes stay open.
func TestHostMustBeLoopbackOrAllowed(t *testing.T) {
	e := newEnv(t)
	for _, host := range []string{"localhost:9402", "LOCALHOST", "app.localhost:9402", "127.0.0.1", "127.3.4.5:80", "[::1]:9402", "localhost."} {
		wantJSON(t, e.do(t, "GET", "/api/v1/pipelines", "", "Host", host), 200)
	}
	for _, host := range []string{"evil.example", "evil.example:9402", "127.0.0.1.evil.example", "10.0.0.5:9402", "localhost.evil.example", ""} {
		wantProblem(t, e.do(t, "GET", "/api/v1/pipelines", "", "Host", host), 403, codeHostNotAllowed)
		wantProblem(t, e.do(t, "POST", "/api/v1/opportunities", validCreate, "Host", host), 403, codeHostNotAllowed)
		wantJSON(t, e.do(t, "GET", "/healthz", "", "Host", host), 200)
	}
	if n := len(e.fb.aggs); n != 0 {
		t.Fatalf("a refused host's write was applied (%d opportunities)", n)
	}

	e = newEnv(t, func(c *Config) { c.Hosts = HostPolicy{Allowed: []string{"crm.example.com"}} })
	wantJSON(t, e.do(t, "GET", "/api/v1/pipelines", "", "Host", "CRM.example.com:443"), 200)
	wantJSON(t, e.do(t, "GET", "/api/v1/pipelines", "", "Host", "localhost"), 200)
	wantProblem(t, e.do(t, "GET", "/api/v1/pipelines", "", "Host", "evil.example"), 403, codeHostNotAllowed)

	e = newEnv(t, func(c *Config) { c.Hosts = HostPolicy{Any: true} })
	wantJSON(t, e.do(t, "GET", "/api/v1/pipelines", "", "Host", "evil.example"), 200)
}

// A write a browser sends for another site is refused, by Fetch metadata or by Origin; a
// non-browser client (neither header) and the service's own pages pass, and reads are not
// affected (the browser's same-origin policy keeps their answers from the other site).
func TestCrossSiteWritesRefused(t *testing.T) {
	e := newEnv(t)
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"}, // another port of localhost is the same site
		{"Origin", "http://evil.example"},
		{"Origin", "http://localhost:8080"},
		{"Origin", "null"},
		{"Origin", "file://"},
		{"Origin", "http://127.0.0.1:9402", "Sec-Fetch-Site", "cross-site"},
	} {
		rec := e.do(t, "POST", "/api/v1/opportunities", validCreate, h...)
		wantProblem(t, rec, 403, codeCrossSiteRefused)
		wantProblem(t, e.do(t, "PUT", "/api/v1/fx-rates/GBP", `{"rate":"1.27"}`, h...), 403, codeCrossSiteRefused)
	}
	if n := len(e.fb.aggs); n != 0 {
		t.Fatalf("a cross-site write was applied (%d opportunities)", n)
	}
	if c := createAs(t, e, "opp-same", "Origin", "http://127.0.0.1:9402", "Sec-Fetch-Site", "same-origin"); c != http.StatusCreated {
		t.Fatalf("same-origin write: %d", c)
	}
	if c := createAs(t, e, "opp-typed", "Sec-Fetch-Site", "none"); c != http.StatusCreated {
		t.Fatalf("user-initiated write: %d", c)
	}
	if c := createAs(t, e, "opp-curl"); c != http.StatusCreated {
		t.Fatalf("non-browser write: %d", c)
	}
	wantJSON(t, e.do(t, "GET", "/api/v1/pipelines", "", "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"), 200)
}

// Writes must declare JSON: an HTML form (form-encoded, multipart, text/plain) or a no-cors
// fetch can send nothing else without a CORS preflight. 415 names the header; the command is
// not sent.
func TestWritesRequireJSONContentType(t *testing.T) {
	e := newEnv(t)
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "application/jsonx", "json", ""} {
		rec := e.do(t, "POST", "/api/v1/opportunities", validCreate, "Content-Type", ct)
		p := wantProblem(t, rec, http.StatusUnsupportedMediaType, codeUnsupportedMediaType)
		if len(p.Errors) != 1 || p.Errors[0].Field != "Content-Type" {
			t.Fatalf("%q: errors %v", ct, p.Errors)
		}
		wantProblem(t, e.do(t, "POST", "/api/v1/opportunities/x/close-won", "", "Content-Type", ct), http.StatusUnsupportedMediaType, codeUnsupportedMediaType)
	}
	if n := len(e.fb.aggs); n != 0 {
		t.Fatalf("a write without a JSON content type was applied (%d opportunities)", n)
	}
	if c := createAs(t, e, "opp-charset", "Content-Type", "application/json; charset=utf-8"); c != http.StatusCreated {
		t.Fatalf("application/json with charset: %d", c)
	}
	// Routing answers first: a method the path does not have is still 405.
	wantProblem(t, e.do(t, "DELETE", "/api/v1/opportunities/x", "", "Content-Type", ""), 405, codeMethodNotAllowed)
}

// While the local disk refuses writes, writes answer 503 storage_unavailable naming the cause
// (and send nothing), /readyz says the same, and reads go on.
func TestWritesRefusedWhileStorageFails(t *testing.T) {
	e := newEnv(t)
	e.create(t, "opp-1")
	e.fb.mu.Lock()
	e.fb.storage = "write /data/state/views/x/000012.log: no space left on device"
	e.fb.mu.Unlock()
	for _, w := range [][2]string{
		{"POST", "/api/v1/opportunities"}, {"PATCH", "/api/v1/opportunities/opp-1"},
		{"POST", "/api/v1/opportunities/opp-1/stage"}, {"PUT", "/api/v1/fx-rates/GBP"},
	} {
		rec := e.do(t, w[0], w[1], `{}`)
		p := wantProblem(t, rec, 503, codeStorageUnavailable)
		if !strings.Contains(p.Detail, "no space left on device") || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%s %s: %+v", w[0], w[1], p)
		}
	}
	if n := len(e.fb.sentCommands()); n != 1 {
		t.Fatalf("%d commands sent, want only the create before the disk failed", n)
	}
	p := wantProblem(t, e.do(t, "GET", "/readyz", ""), 503, codeStorageUnavailable)
	if !strings.Contains(p.Detail, "no space left on device") {
		t.Fatalf("/readyz detail %q", p.Detail)
	}
	wantJSON(t, e.do(t, "GET", "/api/v1/opportunities/opp-1", ""), 200)
	wantJSON(t, e.do(t, "GET", "/healthz", ""), 200)
	e.fb.mu.Lock()
	e.fb.storage = ""
	e.fb.mu.Unlock()
	wantJSON(t, e.do(t, "GET", "/readyz", ""), 200)
}
