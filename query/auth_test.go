package query

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-chi/chi/v5"
)

// Test tokens: long enough, b64token syntax, and distinctive so that a leak is easy to find.
const (
	readTok    = "rd-Tok3n-0123456789abcdef"
	writeTok   = "wr-Tok3n-0123456789abcdef"
	adminTok   = "ad-Tok3n-0123456789abcdef"
	unnamedTok = "un-Tok3n-0123456789abcdef"
	unknownTok = "xx-Tok3n-0123456789abcdef"
)

var allTestTokens = []string{readTok, writeTok, adminTok, unnamedTok, unknownTok}

func testTokens(t testing.TB) *Tokens {
	t.Helper()
	toks, err := ParseTokenList("read:" + readTok + ":reader, write:" + writeTok + ":writer," +
		"admin:" + adminTok + ":boss,write:" + unnamedTok)
	if err != nil {
		t.Fatalf("ParseTokenList: %v", err)
	}
	return toks
}

func newAuthEnv(t testing.TB) *env {
	t.Helper()
	toks := testTokens(t)
	return newEnv(t, func(c *Config) { c.Tokens = toks })
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

const (
	challenge        = `Bearer realm="crm-pipeline"`
	challengeInvalid = `Bearer realm="crm-pipeline", error="invalid_token"`
)

func challengeScope(need Role) string {
	return `Bearer realm="crm-pipeline", error="insufficient_scope", scope="` + string(need) + `"`
}

func want401(t testing.TB, rec *httptest.ResponseRecorder, wantChallenge string) {
	t.Helper()
	wantProblem(t, rec, http.StatusUnauthorized, codeUnauthorized)
	if got := rec.Header().Values("WWW-Authenticate"); len(got) != 1 || got[0] != wantChallenge {
		t.Fatalf("WWW-Authenticate = %q, want %q", got, wantChallenge)
	}
}

func want403(t testing.TB, rec *httptest.ResponseRecorder, need Role) {
	t.Helper()
	wantProblem(t, rec, http.StatusForbidden, codeForbidden)
	if got := rec.Header().Values("WWW-Authenticate"); len(got) != 1 || got[0] != challengeScope(need) {
		t.Fatalf("WWW-Authenticate = %q, want %q", got, challengeScope(need))
	}
}

func wantAdmitted(t testing.TB, rec *httptest.ResponseRecorder, what string) {
	t.Helper()
	if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden {
		t.Fatalf("%s: refused with %d: %s", what, rec.Code, rec.Body)
	}
	if rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("%s: admitted answer carries a challenge", what)
	}
}

// routeCase is one route of API.md with a body that gets past decoding.
type routeCase struct {
	method, path, body string
	need               Role
}

func routeCases() []routeCase {
	return []routeCase{
		{"GET", "/api/v1/opportunities", "", RoleRead},
		{"GET", "/api/v1/opportunities/opp-1", "", RoleRead},
		{"GET", "/api/v1/opportunities/opp-1/history", "", RoleRead},
		{"GET", "/api/v1/pipelines", "", RoleRead},
		{"GET", "/api/v1/pipelines/default", "", RoleRead},
		{"GET", "/api/v1/fx-rates", "", RoleRead},
		{"GET", "/metrics", "", RoleRead},
		{"POST", "/api/v1/opportunities", validCreate, RoleWrite},
		{"PATCH", "/api/v1/opportunities/opp-1", `{"name":"Renamed"}`, RoleWrite},
		{"POST", "/api/v1/opportunities/opp-1/stage", `{"stageId":"discovery"}`, RoleWrite},
		{"POST", "/api/v1/opportunities/opp-1/close-won", `{}`, RoleWrite},
		{"POST", "/api/v1/opportunities/opp-1/close-lost", `{"reason":"price"}`, RoleWrite},
		{"POST", "/api/v1/opportunities/opp-1/reopen", `{"stageId":"discovery"}`, RoleWrite},
		{"PUT", "/api/v1/pipelines/enterprise", customPipeline, RoleAdmin},
		{"PUT", "/api/v1/fx-rates/GBP", `{"rate":"1.27"}`, RoleAdmin},
	}
}

var tokenOfRole = map[Role]string{RoleRead: readTok, RoleWrite: writeTok, RoleAdmin: adminTok}

// TestAuthRoleMatrix checks every route of API.md against no token, an unknown token and each role.
func TestAuthRoleMatrix(t *testing.T) {
	e := newAuthEnv(t)
	for _, rc := range routeCases() {
		what := rc.method + " " + rc.path
		want401(t, e.do(t, rc.method, rc.path, rc.body), challenge)
		want401(t, e.do(t, rc.method, rc.path, rc.body, bearer(unknownTok)...), challengeInvalid)
		for _, have := range []Role{RoleRead, RoleWrite, RoleAdmin} {
			rec := e.do(t, rc.method, rc.path, rc.body, bearer(tokenOfRole[have])...)
			if have.allows(rc.need) {
				wantAdmitted(t, rec, what+" as "+string(have))
			} else {
				want403(t, rec, rc.need)
			}
		}
	}
	if n := len(e.fb.sentCommands()); n == 0 {
		t.Fatal("no command reached the backend")
	}
}

// TestAuthCoversEveryRoute walks the router, so a route added later is checked too: each one
// but the probes refuses a request without a token and one with too small a role.
func TestAuthCoversEveryRoute(t *testing.T) {
	e := newAuthEnv(t)
	routes, ok := e.h.(chi.Routes)
	if !ok {
		t.Fatalf("handler is a %T, not chi.Routes", e.h)
	}
	n := 0
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		path := regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(route, "EUR")
		if route == "/healthz" || route == "/readyz" {
			wantAdmitted(t, e.do(t, method, path, ""), route)
			return nil
		}
		n++
		need := requiredRole(method, route)
		want401(t, e.do(t, method, path, "{}"), challenge)
		for _, have := range []Role{RoleRead, RoleWrite, RoleAdmin} {
			rec := e.do(t, method, path, "{}", bearer(tokenOfRole[have])...)
			if have.allows(need) {
				wantAdmitted(t, rec, method+" "+route+" as "+string(have))
			} else {
				want403(t, rec, need)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < len(routeCases()) {
		t.Fatalf("walked %d protected routes, want at least %d", n, len(routeCases()))
	}
}

func TestRequiredRole(t *testing.T) {
	for _, tc := range []struct {
		method, pattern string
		want            Role
	}{
		{"GET", "/metrics", RoleRead},
		{"GET", "/api/v1/pipelines/{id}", RoleRead},
		{"HEAD", "/api/v1/fx-rates", RoleRead},
		{"POST", "/api/v1/opportunities", RoleWrite},
		{"PATCH", "/api/v1/opportunities/{id}", RoleWrite},
		{"PUT", "/api/v1/pipelines/{id}", RoleAdmin},
		{"PUT", "/api/v1/fx-rates/{currency}", RoleAdmin},
		{"POST", "/api/v1/pipelines", RoleAdmin},             // any configuration write
		{"POST", "/api/v1/fx-rates/{currency}/x", RoleAdmin}, // ditto
		{"POST", "/api/v1/pipelinesx", RoleWrite},            // a prefix is a path segment
		{"DELETE", "/api/v1/opportunities/{id}", RoleAdmin},  // unknown kinds of write: admin
		{"PUT", "/api/v1/opportunities/{id}", RoleAdmin},
		{"DELETE", "", RoleRead}, // no route: 404/405 after any valid token
	} {
		if got := requiredRole(tc.method, tc.pattern); got != tc.want {
			t.Errorf("requiredRole(%s, %q) = %s, want %s", tc.method, tc.pattern, got, tc.want)
		}
	}
}

func TestRoleHierarchy(t *testing.T) {
	roles := []Role{RoleRead, RoleWrite, RoleAdmin}
	for i, have := range roles {
		for j, need := range roles {
			if got := have.allows(need); got != (i >= j) {
				t.Errorf("%s allows %s = %v", have, need, got)
			}
		}
	}
	if Role("root").allows(RoleRead) || Role("").allows(RoleRead) || Role("READ").allows(RoleRead) {
		t.Error("an unknown role is allowed something")
	}
}

func TestAuthUnauthorizedForms(t *testing.T) {
	e := newAuthEnv(t)
	const path = "/api/v1/pipelines"
	for _, tc := range []struct {
		name      string
		headers   []string
		challenge string
	}{
		{"missing", nil, challenge},
		{"basic scheme", []string{"Authorization", "Basic cmVhZDpzZWNyZXQ="}, challenge},
		{"empty header", []string{"Authorization", ""}, challenge},
		{"scheme only", []string{"Authorization", "Bearer"}, challengeInvalid},
		{"scheme and space", []string{"Authorization", "Bearer "}, challengeInvalid},
		{"bad characters", []string{"Authorization", "Bearer " + readTok + ",x"}, challengeInvalid},
		{"two tokens", []string{"Authorization", "Bearer " + readTok + " " + readTok}, challengeInvalid},
		{"two headers", append(bearer(readTok), bearer(readTok)...), challengeInvalid},
		{"too long", []string{"Authorization", "Bearer " + strings.Repeat("a", maxTokenLen+1)}, challengeInvalid},
		{"unknown", bearer(unknownTok), challengeInvalid},
		{"prefix of a token", bearer(readTok[:len(readTok)-1]), challengeInvalid},
		{"token plus a character", bearer(readTok + "x"), challengeInvalid},
		{"token in the scheme's place", []string{"Authorization", readTok}, challenge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, "GET", path, "", append([]string{"X-Request-Id", "rid-401"}, tc.headers...)...)
			want401(t, rec, tc.challenge)
			p := decodeProblem(t, rec)
			if p.RequestID != "rid-401" || p.Title != "Authentication required" || p.Type != problemTypePrefix+codeUnauthorized {
				t.Fatalf("problem %+v", p)
			}
			for _, tok := range allTestTokens {
				if strings.Contains(rec.Body.String(), tok) {
					t.Fatal("answer echoes a token")
				}
			}
		})
	}
	// Every invalid token gets the same answer: no oracle for "almost right".
	a := e.do(t, "GET", path, "", bearer(unknownTok)...)
	b := e.do(t, "GET", path, "", "Authorization", "Bearer !")
	pa, pb := decodeProblem(t, a), decodeProblem(t, b)
	pa.RequestID, pb.RequestID = "", ""
	if fmt.Sprint(pa) != fmt.Sprint(pb) {
		t.Fatalf("malformed and unknown tokens answered differently: %+v vs %+v", pa, pb)
	}
	// The scheme is case-insensitive; extra spaces before the token are tolerated.
	wantJSON(t, e.do(t, "GET", path, "", "Authorization", "bearer "+readTok), 200)
	wantJSON(t, e.do(t, "GET", path, "", "Authorization", "BEARER   "+readTok), 200)
}

func decodeProblem(t testing.TB, rec *httptest.ResponseRecorder) problemBody {
	t.Helper()
	m := decodeJSON(t, rec)
	p := problemBody{Status: int(m["status"].(float64))}
	p.Type, _ = m["type"].(string)
	p.Title, _ = m["title"].(string)
	p.Detail, _ = m["detail"].(string)
	p.Code, _ = m["code"].(string)
	p.RequestID, _ = m["requestId"].(string)
	return p
}

func TestAuthForbidden(t *testing.T) {
	e := newAuthEnv(t)
	rec := e.do(t, "PUT", "/api/v1/fx-rates/GBP", `{"rate":"1.27"}`, bearer(writeTok)...)
	want403(t, rec, RoleAdmin)
	p := decodeProblem(t, rec)
	if p.Title != "Insufficient role" || !strings.Contains(p.Detail, "admin") || !strings.Contains(p.Detail, "write") {
		t.Fatalf("problem %+v", p)
	}
	// Refused before the body is looked at, and nothing reached the backend.
	want403(t, e.do(t, "POST", "/api/v1/opportunities", "not json", bearer(readTok)...), RoleWrite)
	if n := len(e.fb.sentCommands()); n != 0 {
		t.Fatalf("%d commands sent", n)
	}
	if _, ok := e.fb.rates["GBP"]; ok {
		t.Fatal("rate stored by a write token")
	}
	// Unmatched routes: a valid token of any role gets the router's 404/405; without one, 401.
	want401(t, e.do(t, "GET", "/nope", ""), challenge)
	want401(t, e.do(t, "DELETE", "/api/v1/opportunities/x", ""), challenge)
	wantProblem(t, e.do(t, "GET", "/nope", "", bearer(readTok)...), 404, codeRouteNotFound)
	wantProblem(t, e.do(t, "DELETE", "/api/v1/opportunities/x", "", bearer(readTok)...), 405, codeMethodNotAllowed)
}

func TestAuthHealthOpenMetricsProtected(t *testing.T) {
	e := newAuthEnv(t)
	wantJSON(t, e.do(t, "GET", "/healthz", ""), 200)
	wantJSON(t, e.do(t, "GET", "/readyz", ""), 200)
	wantJSON(t, e.do(t, "GET", "/healthz", "", bearer(unknownTok)...), 200) // probes ignore credentials
	e.fb.setReady(false)
	wantProblem(t, e.do(t, "GET", "/readyz", ""), 503, codeNotReady)
	// Reads need a token before readiness is even considered.
	want401(t, e.do(t, "GET", "/api/v1/pipelines", ""), challenge)
	wantProblem(t, e.do(t, "GET", "/api/v1/pipelines", "", bearer(readTok)...), 503, codeNotReady)
	e.fb.setReady(true)

	want401(t, e.do(t, "GET", "/metrics", ""), challenge)
	want401(t, e.do(t, "GET", "/metrics", "", bearer(unknownTok)...), challengeInvalid)
	rec := e.do(t, "GET", "/metrics", "", bearer(readTok)...)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "crm_http_requests_total") {
		t.Fatalf("/metrics with a read token: %d %s", rec.Code, rec.Body)
	}
	// Refusals are counted under their route, not as "unmatched".
	for _, want := range []string{
		`crm_http_requests_total{code="401",method="GET",route="/metrics"} 2`,
		`crm_http_requests_total{code="401",method="GET",route="/api/v1/pipelines"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestAuthActorIsTokenName(t *testing.T) {
	e := newAuthEnv(t)
	rec := e.do(t, "POST", "/api/v1/opportunities", validCreate, append(bearer(writeTok), "X-Actor", "mallory")...)
	wantJSON(t, rec, http.StatusAccepted)
	rec = e.do(t, "POST", "/api/v1/opportunities", validCreate, append(bearer(adminTok), "X-Actor", "mallory")...)
	wantJSON(t, rec, http.StatusAccepted)
	// An X-Actor that would be refused without authentication is simply ignored.
	rec = e.do(t, "POST", "/api/v1/opportunities", validCreate, append(bearer(unnamedTok), "X-Actor", "bad\x01actor")...)
	wantJSON(t, rec, http.StatusAccepted)
	sum := sha256.Sum256([]byte(unnamedTok))
	wantActors := []string{"writer", "boss", "token-" + hex.EncodeToString(sum[:])[:8]}
	cmds := e.fb.sentCommands()
	if len(cmds) != len(wantActors) {
		t.Fatalf("sent %d commands", len(cmds))
	}
	for i, c := range cmds {
		if c.Actor != wantActors[i] {
			t.Errorf("command %d actor = %q, want %q", i, c.Actor, wantActors[i])
		}
	}

	// Without authentication X-Actor still names the actor.
	off := newEnv(t)
	wantJSON(t, off.do(t, "POST", "/api/v1/opportunities", validCreate, "X-Actor", "alice"), http.StatusAccepted)
	if a := off.fb.sentCommands()[0].Actor; a != "alice" {
		t.Fatalf("actor without auth = %q", a)
	}
}

// TestAuthMiddlewareHidesCredentials checks what handlers see: no Authorization header, the
// token's name as X-Actor, and the principal in the context.
func TestAuthMiddlewareHidesCredentials(t *testing.T) {
	s := &server{tokens: testTokens(t), log: discardLogger(), mux: chi.NewRouter()}
	var seen http.Header
	var got principal
	s.mux.Use(s.authenticate)
	s.mux.Post("/api/v1/opportunities", func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		got, _ = principalFrom(r.Context())
	})
	req := newTestRequest("POST", "/api/v1/opportunities", nil)
	req.Header.Set("Authorization", "Bearer "+writeTok)
	req.Header.Add("X-Actor", "mallory")
	req.Header.Add("X-Actor", "eve")
	s.mux.ServeHTTP(httptest.NewRecorder(), req)
	if seen == nil {
		t.Fatal("handler not reached")
	}
	if v := seen.Values("Authorization"); len(v) != 0 {
		t.Fatalf("handler saw Authorization %q", v)
	}
	if v := seen.Values("X-Actor"); len(v) != 1 || v[0] != "writer" {
		t.Fatalf("handler saw X-Actor %q", v)
	}
	if got != (principal{name: "writer", role: RoleWrite}) {
		t.Fatalf("principal %+v", got)
	}
	if req.Header.Get("Authorization") == "" {
		t.Fatal("the caller's request was modified")
	}
}

// TestAuthNeverLogsTokens sends requests with tokens down every path that logs (access log,
// refusals, backend errors, panics) and checks that no token, nor its digest, is in the logs.
func TestAuthNeverLogsTokens(t *testing.T) {
	e := newAuthEnv(t)
	post := func(tok, body string) { e.do(t, "POST", "/api/v1/opportunities", body, bearer(tok)...) }
	post(writeTok, strings.Replace(validCreate, `{`, `{"id":"opp-log",`, 1))
	post(adminTok, `{"name": 12}`)
	post(readTok, validCreate) // 403
	e.do(t, "GET", "/api/v1/opportunities/opp-log", "", bearer(readTok)...)
	e.do(t, "GET", "/api/v1/opportunities?access_token="+readTok, "", bearer(unknownTok)...)
	e.do(t, "GET", "/api/v1/pipelines", "", "Authorization", "Bearer "+readTok+"!")
	e.do(t, "GET", "/api/v1/pipelines", "", "Authorization", "Basic "+readTok)
	e.do(t, "GET", "/api/v1/pipelines", "", "Authorization", readTok)
	e.do(t, "PUT", "/api/v1/fx-rates/GBP", `{"rate":"1.27"}`, append(bearer(writeTok), "X-Actor", adminTok)...)
	e.do(t, "GET", "/metrics", "", bearer(readTok)...)
	e.do(t, "GET", "/metrics", "")
	e.do(t, "GET", "/healthz", "", bearer(adminTok)...)
	e.fb.panicOnID = "boom"
	e.do(t, "GET", "/api/v1/opportunities/boom", "", bearer(readTok)...)
	e.fb.readErr = io.ErrUnexpectedEOF
	e.do(t, "GET", "/api/v1/pipelines", "", bearer(readTok)...)
	e.fb.sendErr = io.ErrClosedPipe
	post(unnamedTok, validCreate)

	logs := e.logs.String()
	for _, want := range []string{`"msg":"panic in HTTP handler"`, `"msg":"backend write failed"`,
		`"msg":"http request refused"`, `"token_name":"reader"`, `"reason":"invalid_token"`,
		`"reason":"other_scheme"`, `"reason":"missing"`, `"status":403`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	for _, tok := range allTestTokens {
		sum := sha256.Sum256([]byte(tok))
		if strings.Contains(logs, tok) || strings.Contains(logs, hex.EncodeToString(sum[:])) {
			t.Fatalf("a token (or its digest) is in the logs:\n%s", logs)
		}
	}
	for _, secretish := range []string{"Authorization", "Bearer", "access_token"} {
		if strings.Contains(logs, secretish) {
			t.Fatalf("logs mention %q:\n%s", secretish, logs)
		}
	}
}

func TestAuthDisabled(t *testing.T) {
	empty, err := ParseTokenList("")
	if err != nil {
		t.Fatal(err)
	}
	for name, toks := range map[string]*Tokens{"nil": nil, "empty": empty, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Tokens = toks })
			for _, rc := range routeCases() {
				wantAdmitted(t, e.do(t, rc.method, rc.path, rc.body), rc.method+" "+rc.path)
			}
			// A stray Authorization header is ignored, as before.
			wantJSON(t, e.do(t, "GET", "/api/v1/pipelines", "", bearer(unknownTok)...), 200)
			wantJSON(t, e.do(t, "GET", "/healthz", ""), 200)
		})
	}
}

func TestLoadTokens(t *testing.T) {
	file := "\uFEFF# crm-pipeline tokens\n" +
		"\n" +
		"read   " + readTok + "   dashboards   # Grafana\r\n" +
		"\twrite\t" + writeTok + "\tsales-gw@prod\n" +
		"   # indented comment\n" +
		"admin " + adminTok + "\n" +
		"write " + unnamedTok + "== # padded token, no name\n"
	toks, err := LoadTokens(strings.NewReader(file))
	if err != nil {
		t.Fatalf("LoadTokens: %v", err)
	}
	if toks.Len() != 4 {
		t.Fatalf("Len = %d", toks.Len())
	}
	adminSum := sha256.Sum256([]byte(adminTok))
	for _, tc := range []struct {
		tok  string
		name string
		role Role
	}{
		{readTok, "dashboards", RoleRead},
		{writeTok, "sales-gw@prod", RoleWrite},
		{adminTok, "token-" + hex.EncodeToString(adminSum[:4]), RoleAdmin},
		{unnamedTok + "==", "", RoleWrite},
	} {
		got, ok := toks.lookup(tc.tok)
		if !ok || got.role != tc.role || (tc.name != "" && got.name != tc.name) {
			t.Errorf("lookup(%s) = %+v, %v", tc.name, got, ok)
		}
	}
	if _, ok := toks.lookup(unnamedTok); ok {
		t.Error("a token matched without its padding")
	}
	if _, ok := toks.lookup(unknownTok); ok {
		t.Error("unknown token matched")
	}
	s := fmt.Sprintf("%v %+v %#v %s", toks, toks, toks, toks)
	if strings.Contains(s, "dashboards") || strings.Contains(s, hex.EncodeToString(adminSum[:4])) {
		t.Errorf("formatting Tokens reveals entries: %s", s)
	}

	for name, src := range map[string]string{"empty": "", "comments only": "# none\n\n  \n"} {
		toks, err := LoadTokens(strings.NewReader(src))
		if err != nil || toks.Len() != 0 {
			t.Errorf("%s: %v, %v", name, toks, err)
		}
	}
	if _, err := LoadTokens(iotest.ErrReader(io.ErrUnexpectedEOF)); err == nil {
		t.Error("read error not reported")
	}
}

func TestLoadTokensErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"unknown role", "read " + readTok + "\n\nreader " + writeTok + "\n", `tokens line 3: unknown role "reader"`},
		{"role case", "Admin " + adminTok, `tokens line 1: unknown role "Admin"`},
		{"swapped fields", adminTok + " admin", "tokens line 1: unknown role (value not shown"},
		{"one field", "# c\nadmin", "tokens line 2: want `<role> <token> [name]`, got 1 fields"},
		{"four fields", "read " + readTok + " a b", "tokens line 1: want `<role> <token> [name]`, got 4 fields"},
		{"short token", "read 0123456789abcde", "tokens line 1: token must be 16..1024 characters"},
		{"long token", "read " + strings.Repeat("a", 1025), "tokens line 1: token must be 16..1024"},
		{"bad token characters", "read " + readTok + "\"", "tokens line 1: token may only contain"},
		{"inner padding", "read abc=def0123456789abcdef", "tokens line 1: token may only contain"},
		{"only padding", "read " + strings.Repeat("=", 16), "tokens line 1: token may only contain"},
		{"bad name", "read " + readTok + " bad:name", "tokens line 1: name must be"},
		{"long name", "read " + readTok + " " + strings.Repeat("n", 65), "tokens line 1: name must be"},
		{"duplicate", "read " + readTok + " a\nadmin " + readTok + " b", "tokens line 2: the same token as tokens line 1"},
		{"long line", "read " + readTok + "\n" + strings.Repeat("x", maxLineLen+1), "tokens line 2: longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks, err := LoadTokens(strings.NewReader(tc.file))
			if err == nil {
				t.Fatalf("no error; %d tokens", toks.Len())
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %q, want prefix %q", err, tc.want)
			}
			for _, tok := range allTestTokens {
				if strings.Contains(err.Error(), tok) {
					t.Fatalf("error reveals a token: %v", err)
				}
			}
		})
	}
}

func TestParseTokenList(t *testing.T) {
	toks, err := ParseTokenList(" read:" + readTok + ":grafana ,, admin:" + adminTok + ",")
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 2 {
		t.Fatalf("Len = %d", toks.Len())
	}
	if got, ok := toks.lookup(readTok); !ok || got.role != RoleRead || got.name != "grafana" {
		t.Fatalf("read entry %+v %v", got, ok)
	}
	sum := sha256.Sum256([]byte(adminTok))
	if got, ok := toks.lookup(adminTok); !ok || got.role != RoleAdmin || got.name != "token-"+hex.EncodeToString(sum[:4]) {
		t.Fatalf("admin entry %+v %v", got, ok)
	}
	for _, s := range []string{"", "  ", " , ,"} {
		if toks, err := ParseTokenList(s); err != nil || toks.Len() != 0 {
			t.Errorf("ParseTokenList(%q) = %v, %v", s, toks, err)
		}
	}
	var nilToks *Tokens
	if nilToks.Len() != 0 || nilToks.String() != "query.Tokens{0 tokens}" {
		t.Error("nil Tokens")
	}
	if _, ok := nilToks.lookup(readTok); ok {
		t.Error("nil Tokens matched")
	}

	for _, tc := range []struct{ list, want string }{
		{"read:" + readTok + ",owner:" + writeTok, `token list entry 2: unknown role "owner"`},
		{readTok + ":read", "token list entry 1: unknown role (value not shown"},
		{"read", "token list entry 1: want role:token[:name], got 1 ':'-separated parts"},
		{"read:" + readTok + ":a:b", "token list entry 1: want role:token[:name], got 4"},
		{"read:" + readTok + ":", "token list entry 1: name must be"},
		{"read:short", "token list entry 1: token must be 16..1024 characters"},
		{"read: " + readTok, "token list entry 1: token may only contain"},
		{"read:" + readTok + ",,write:" + readTok, "token list entry 3: the same token as token list entry 1"},
	} {
		_, err := ParseTokenList(tc.list)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("ParseTokenList(%q) error %v, want prefix %q", tc.list, err, tc.want)
			continue
		}
		for _, tok := range allTestTokens {
			if strings.Contains(err.Error(), tok) {
				t.Errorf("error reveals a token: %v", err)
			}
		}
	}
}

// TestTokensLookupScansAll checks lookups among many tokens; the comparison itself is
// crypto/subtle's, run over every entry.
func TestTokensLookupScansAll(t *testing.T) {
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, "read tok-%016d name-%d\n", i, i)
	}
	toks, err := LoadTokens(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 17, 49} {
		got, ok := toks.lookup(fmt.Sprintf("tok-%016d", i))
		if !ok || got.name != fmt.Sprintf("name-%d", i) {
			t.Errorf("lookup %d = %+v, %v", i, got, ok)
		}
	}
	if _, ok := toks.lookup("tok-0000000000000050"); ok {
		t.Error("unknown token matched")
	}
	for _, e := range toks.entries {
		if strings.Contains(string(e.digest[:]), "tok-") {
			t.Fatal("token stored in clear")
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
