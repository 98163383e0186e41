package query

import (
	"net/http"
	"testing"
)

func TestReportingCurrencyRateCannotBeSet(t *testing.T) {
	e := newEnv(t)
	rc := e.fb.ReportingCurrency()
	p := wantProblem(t, e.do(t, "PUT", "/api/v1/fx-rates/"+rc, `{"rate":"2"}`), http.StatusUnprocessableEntity, "invalid_field")
	if !p.hasField("currency") {
		t.Fatalf("the refusal names %v, not currency", p.fields())
	}
	if e.fb.rates[rc] == "2" {
		t.Fatal("the refused rate reached the backend")
	}
	wantJSON(t, e.do(t, "PUT", "/api/v1/fx-rates/EUR", `{"rate":"1.08"}`), http.StatusOK)
}
