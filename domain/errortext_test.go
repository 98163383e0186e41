package domain

import (
	"strings"
	"testing"
)

// Errors a client sees name what is wrong in the API's terms: no Go time layout, the limit
// of a too-large amount, and a huge value quoted short, not echoed whole.
func TestErrorTextsForClients(t *testing.T) {
	_, err := ParseDate("01/02/2027")
	if err == nil || strings.Contains(err.Error(), "2006") || !strings.Contains(err.Error(), "YYYY-MM-DD") {
		t.Fatalf("ParseDate: %v", err)
	}
	_, err = ParseAmount("99999999999999999999", "USD")
	if err == nil || !strings.Contains(err.Error(), FormatAmount(MaxAmountMinor, "USD")) {
		t.Fatalf("a too-large amount does not name the limit: %v", err)
	}
	huge := strings.Repeat("9", 10_000)
	_, err = ParseAmount(huge, "USD")
	if err == nil || len(err.Error()) > 300 || !strings.Contains(err.Error(), "10000 characters") {
		t.Fatalf("a 10,000-digit amount: %d bytes of error", len(err.Error()))
	}
	_, err = ParseAmount(huge+"x", "USD")
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("a 10,000-digit malformed amount: %d bytes of error", len(err.Error()))
	}
}
