// Package analytics turns opportunity changes into exact, incremental aggregates (forecast,
// win/loss, funnel, pipeline changes, velocity) and answers queries over them. It is pure: the
// stream side carries Deltas from the opportunity processor to the aggregator, which folds them
// into Buckets; the query side reads Buckets from a Store. Like a Kafka Streams
// KTable.groupBy().aggregate() with an adder and a subtractor, every change of an opportunity
// retracts its old contribution and adds its new one, so a command costs O(1) whatever the
// number of opportunities.
//
// Buckets are daily and per owner ("F|pipeline|closeDate|owner" for the forecast,
// "W|pipeline|closedDay|owner" for win/loss, "E|pipeline|eventDay|owner" for funnel and
// pipeline changes; see keys.go), so any period is a range sum at query time and nothing needs
// a timer. Values are int64: counts, milliseconds, and money in minor units per currency
// ("USD/commit/amount"; see names.go). Money is converted only at query time, each currency's
// sum once, with exact rational arithmetic and half-up rounding to the target's minor unit
// (API.md, "Money arithmetic").
//
// Oracle recomputes every answer from final states and event history without buckets; the
// property test (and the service's end-to-end test) require Store and Oracle to agree to the
// minor unit.
package analytics

// Delta is the net change of one opportunity's contribution to one bucket, caused by one
// version of the opportunity. Values are signed: a retraction is negative. Bucket is also the
// record key on the repartition topic, so all deltas of a bucket meet in one partition.
type Delta struct {
	Bucket        string
	OpportunityID string
	Version       int64
	Values        map[string]int64
}

// Bucket is the running aggregate of one bucket key. Seen holds, per opportunity, the highest
// version whose delta was applied: deltas of one opportunity reach a bucket in version order
// (they are produced in order from the opportunity's partition to the bucket's partition), so
// a delta at or below it is a redelivery or a re-emission and is skipped. That guard is exact
// both for a redelivered delta record and for a delta the opportunity processor published
// again after its own crash.
type Bucket struct {
	Values map[string]int64
	Seen   map[string]int64
}

// Apply folds d into b unless b.Seen[d.OpportunityID] >= d.Version, and reports whether it
// applied. Values that sum to zero are deleted, so a bucket holds only non-zero figures and a
// bucket whose contributions all cancelled has no Values (the Store then drops it). Seen is
// never pruned: a redelivered old delta can arrive after the opportunity left the bucket, and
// only its Seen entry keeps it from being added twice; daily per-owner buckets keep Seen small.
// Apply allocates b's maps when they are nil.
func (b *Bucket) Apply(d Delta) bool {
	if b.Seen[d.OpportunityID] >= d.Version {
		return false
	}
	if b.Seen == nil {
		b.Seen = make(map[string]int64, 1)
	}
	if b.Values == nil {
		b.Values = make(map[string]int64, len(d.Values))
	}
	for k, v := range d.Values {
		if n := b.Values[k] + v; n != 0 {
			b.Values[k] = n
		} else {
			delete(b.Values, k)
		}
	}
	b.Seen[d.OpportunityID] = d.Version
	return true
}
