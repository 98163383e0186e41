package query

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCreateBody throws arbitrary bodies at POST /opportunities: whatever arrives, the answer
// is a 2xx or a 4xx problem, never a 500 (which is also what a recovered panic becomes).
func FuzzCreateBody(f *testing.F) {
	f.Add([]byte(validCreate))
	f.Add([]byte(`{"amount":12500.00}`))
	f.Add([]byte(`{"probability":null,"forecastCategory":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	e := newEnv(f, quiet)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, prefer := range []string{"", "wait=1"} {
			req := newTestRequest("POST", "/api/v1/opportunities", strings.NewReader(string(body)))
			if prefer != "" {
				req.Header.Set("Prefer", prefer)
			}
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			checkNo500(t, rec)
		}
	})
}

// FuzzListQuery throws arbitrary query strings at GET /opportunities: 200 or a 400 problem.
func FuzzListQuery(f *testing.F) {
	f.Add("limit=10&status=open")
	f.Add("closeFrom=2025-01-01&closeTo=2024-01-01")
	f.Add("status=%zz;x")
	f.Add("cursor=after:a&limit=500")
	e := newEnv(f, quiet)
	e.create(f, "fz-1")
	f.Fuzz(func(t *testing.T, q string) {
		req := newTestRequest("GET", "/api/v1/opportunities", nil)
		req.URL.RawQuery = q
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		checkNo500(t, rec)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("status %d for %q: %s", rec.Code, q, rec.Body)
		}
	})
}

func checkNo500(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	ct := rec.Header().Get("Content-Type")
	switch {
	case rec.Code >= 400 && ct != "application/problem+json":
		t.Fatalf("error %d with Content-Type %q", rec.Code, ct)
	case rec.Code < 400 && ct != "application/json":
		t.Fatalf("success %d with Content-Type %q", rec.Code, ct)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("answer is not JSON: %s", rec.Body)
	}
}

// quiet drops logs: a fuzz run makes millions of requests and the test logger keeps them all.
func quiet(c *Config) { c.Logger = nil }
