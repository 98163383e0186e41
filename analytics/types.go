// Package analytics turns opportunity changes into exact, incremental aggregates (forecast,
// win/loss, funnel, pipeline changes, velocity) and answers queries over them. It is pure: the
// stream side carries Deltas from the opportunity processor to the aggregator, which folds them
// into Buckets; the query side reads Buckets from a Store. Like a Kafka Streams
// KTable.groupBy().aggregate() with an adder and a subtractor, every change of an opportunity
// retracts its old contribution and adds its new one, so a command costs O(1) whatever the
// number of opportunities.
//
// Buckets are daily and per owner ("F|pipeline|closeDate|owner" for the forecast,
// "W|pipeline|closeDate|owner" for win/loss, "E|pipeline|eventDay|owner" for funnel and
// pipeline changes; see keys.go), so any period is a range sum at query time and nothing needs
// a timer. A closed deal has one date, its close date (the day it closed; API.md, "Closing
// dates"), and every report places it there: forecast closedWon/closedLost, win/loss, velocity,
// and the closing event in funnel and changes (its event day is the close date). Values are
// int64: counts, milliseconds, days, and money in minor units per currency
// ("USD/commit/amount"; see names.go). Money is converted only at query time, each currency's
// sum once, with exact rational arithmetic and half-up rounding to the target's minor unit
// (API.md, "Money arithmetic").
//
// Rebuild sums the same Deltas over whole histories replayed from the start, for
// `crm-pipeline reset-analytics`, which rewrites a deployment's buckets after the derivation
// changed.
//
// The tests check the Store against an oracle that recomputes every answer from final states
// and event histories without buckets: analyticstest.Oracle, support code in the package
// analytics/analyticstest, outside the product. The property test (and the system tests)
// require Store and oracle to agree to the minor unit. The oracle validates queries with the
// queries' Validate methods, the Store's own, so both refuse a bad query the same way; all it
// computes is its own.
//
// Imports from this module: domain (the README's package table, checked by imports_test.go).
package analytics

// Delta is the net change of one opportunity's contribution to one bucket, caused by one
// command record. Values are signed: a retraction is negative. Bucket is also the record key on
// the repartition topic, so all deltas of a bucket meet in one partition.
//
// Source and Position say which record produced the delta: the commands-topic partition
// (decimal) and offset. The opportunity processor sets them (Deltas leaves them empty); a
// record yields at most one delta per bucket, and the deltas one source sends to a bucket
// arrive in offset order (one ordered producer per partition, to the bucket's one partition),
// so Bucket.Apply's guard is exact. A delta without a Source (a writer before schema v2) is
// applied unguarded.
type Delta struct {
	Bucket        string
	OpportunityID string
	Version       int64
	Values        map[string]int64
	Source        string
	Position      int64
}

// Bucket is the running aggregate of one bucket key. Applied holds, per source (commands
// partition), the highest position whose delta was applied: a delta at or below it is a
// redelivery (the aggregator crashed before committing) or a re-emission (the opportunity
// processor crashed and published a record's outputs again) and is skipped. The guard has at
// most one entry per commands partition; keeping one per opportunity, as version 1 did, made
// a busy day's bucket grow with every opportunity touched that day, and its encode (sorting
// that map) and decode the aggregator's largest cost.
type Bucket struct {
	Values  map[string]int64
	Applied map[string]int64
}

// Apply folds d into b unless d.Position is at or below b.Applied[d.Source], and reports
// whether it applied. Values that sum to zero are deleted, so a bucket holds only non-zero
// figures and a bucket whose contributions all cancelled has no Values (the Store then drops
// it); Applied is kept, so a late duplicate is still refused. Apply allocates b's maps when
// they are nil.
func (b *Bucket) Apply(d Delta) bool {
	if d.Source != "" {
		if last, ok := b.Applied[d.Source]; ok && d.Position <= last {
			return false
		}
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
	if d.Source != "" {
		if b.Applied == nil {
			b.Applied = make(map[string]int64, 1)
		}
		b.Applied[d.Source] = d.Position
	}
	return true
}
