package analytics

import "testing"

func TestMapRatesFixesTheReportingCurrency(t *testing.T) {
	rates := MapRates("USD", map[string]string{"USD": "2", "EUR": "1.08"})
	if r, ok := rates("USD"); !ok || r != "1" {
		t.Fatalf("USD = %q, %v; a stored rate of the reporting currency must not be used", r, ok)
	}
	if r, ok := rates("EUR"); !ok || r != "1.08" {
		t.Fatalf("EUR = %q, %v", r, ok)
	}
	if _, ok := rates("GBP"); ok {
		t.Fatal("a missing rate is reported present")
	}
}
