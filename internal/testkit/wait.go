package testkit

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CloseDate is the date days from today (UTC), as the API writes dates.
func CloseDate(days int) string { return time.Now().UTC().AddDate(0, 0, days).Format(time.DateOnly) }

// CreateBody is a valid create request for opportunity id (USD 12,500.00, closing in 30 days).
func CreateBody(id string) map[string]any {
	return map[string]any{"id": id, "name": "Deal " + id, "accountId": "acc-1", "ownerId": "owner-1",
		"amount": "12500.00", "currency": "USD", "closeDate": CloseDate(30)}
}
