package views

import (
	"testing"
	"time"
)

// TestReadinessLatchAndGrace drives the readiness state machine with a fake clock: nothing is
// recovered before the first all-running sample; afterwards a partition away from running
// keeps reads open, and /readyz turns false only after readyGrace.
func TestReadinessLatchAndGrace(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	up := false
	r := readiness{now: func() time.Time { return now }, running: func() bool { return up }}
	check := func(step string, wantRecovered, wantReady bool) {
		t.Helper()
		if rec, ready := r.poll(); rec != wantRecovered || ready != wantReady {
			t.Fatalf("%s: recovered=%v ready=%v, want %v %v", step, rec, ready, wantRecovered, wantReady)
		}
	}
	check("first recovery", false, false)
	now = now.Add(time.Hour)
	check("still recovering an hour on", false, false)
	up = true
	check("recovered", true, true)
	up = false
	check("reconnect begins", true, true)
	now = now.Add(readyGrace - time.Millisecond)
	check("just inside the grace", true, true)
	now = now.Add(time.Millisecond)
	check("grace spent", true, false)
	up = true
	check("back", true, true)
	up = false
	now = now.Add(time.Minute)
	check("a new absence starts its own clock", true, true)
}
