package testkit

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds or 30 s pass.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitFor(t, what, 30*time.Second, cond)
}

// WaitFor polls cond until it holds or timeout passes, and returns how long it took: for the
// waits that need another bound than Eventually's, or whose duration a test reports.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// CloseDate is the date days from today (UTC), as the API writes dates.
func CloseDate(days int) string { return time.Now().UTC().AddDate(0, 0, days).Format(time.DateOnly) }

// CreateBody is a valid create request for opportunity id (USD 12,500.00, closing in 30 days).
func CreateBody(id string) map[string]any {
	return map[string]any{"id": id, "name": "Deal " + id, "accountId": "acc-1", "ownerId": "owner-1",
		"amount": "12500.00", "currency": "USD", "closeDate": CloseDate(30)}
}
