package views

import (
	"sync"
	"time"
)

// readyGrace is how long a partition of a view may be away from goka's running state, after
// the first recovery, before /readyz says so. goka passes through "connecting" on every
// (re)start of a partition's catch-up, including the one right after the first recovery (the
// view's Run calls SetupAndRecover and then CatchupForever, and each load begins by setting
// the partition to connecting while it asks the broker for offsets): without a grace, /readyz
// answered 503 for a moment just after it had first answered 200, and a load balancer took a
// healthy instance out. A broker outage lasts longer than this and still shows.
const readyGrace = 2 * time.Second

// readiness turns goka's instantaneous "every partition is running" into the two answers the
// service needs: recovered (latched: the views have been complete once, so reads serve them
// from here on, as a Kafka Streams store stays queryable on a standby while its task
// reconnects) and ready (recovered and not away from running for longer than readyGrace).
type readiness struct {
	now     func() time.Time
	running func() bool

	mu        sync.Mutex
	recovered bool
	awaySince time.Time // zero while every partition runs
}

// poll samples running once and updates the latch and the away clock.
func (r *readiness) poll() (recovered, ready bool) {
	up := r.running()
	r.mu.Lock()
	defer r.mu.Unlock()
	if up {
		r.recovered = true
		r.awaySince = time.Time{}
		return true, true
	}
	if !r.recovered {
		return false, false
	}
	now := r.now()
	if r.awaySince.IsZero() {
		r.awaySince = now
	}
	return true, now.Sub(r.awaySince) < readyGrace
}
