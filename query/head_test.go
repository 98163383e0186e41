package query

import (
	"net/http"
	"testing"
)

func TestHeadWhereverGet(t *testing.T) {
	e := newEnv(t)
	e.create(t, "opp-h")
	for _, path := range []string{"/healthz", "/api/v1/fx-rates", "/api/v1/opportunities/opp-h", "/api/v1/forecast"} {
		rec := e.do(t, "HEAD", path, "")
		if rec.Code != http.StatusOK {
			t.Errorf("HEAD %s = %d, want 200", path, rec.Code)
		}
	}
	if rec := e.do(t, "HEAD", "/api/v1/opportunities/nope", ""); rec.Code != http.StatusNotFound {
		t.Errorf("HEAD of an unknown deal = %d", rec.Code)
	}
}
