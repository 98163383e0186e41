package analytics

import (
	"fmt"
	"maps"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Rebuild recomputes buckets from whole opportunity histories, for `crm-pipeline
// reset-analytics`: when the derivation of the buckets changes (as it did when every report
// moved to the close date), the buckets a deployment holds were summed under the old rule,
// and only a fold of every deal's events from the start gives the figures of the new one.
//
// It derives nothing itself: each event is replayed with domain.Apply and contributes
// Deltas(state before, state after, the event), which is what the opportunity processor
// emitted for the command behind it (Decide emits one event per command, and deltas computed
// from replayed states equal the first emission's, which re-emission after a crash relies
// on too). The state contributions telescope to the final state's; the event contributions
// are summed per event. Not safe for concurrent use.
type Rebuild struct {
	values map[string]map[string]int64 // bucket -> name -> value
}

// NewRebuild returns an empty Rebuild.
func NewRebuild() *Rebuild { return &Rebuild{values: map[string]map[string]int64{}} }

// AddHistory folds one opportunity's whole history: its events at versions 1..n in order
// (a gap, a duplicate or an event that does not apply is an error, and nothing of the
// history is added). It returns the replayed state, for the caller to check against the
// stored one.
func (r *Rebuild) AddHistory(events []domain.Event) (domain.Opportunity, error) {
	var state domain.Opportunity
	var deltas []Delta
	for i, e := range events {
		if e.Version != int64(i+1) {
			return domain.Opportunity{}, fmt.Errorf("rebuild %s: event %d of the history has version %d: %w", e.OpportunityID, i+1, e.Version, domain.ErrEventOutOfOrder)
		}
		next, err := domain.Apply(state, e)
		if err != nil {
			return domain.Opportunity{}, fmt.Errorf("rebuild: %w", err)
		}
		var prev *domain.Opportunity
		if state.Version > 0 {
			p := state
			prev = &p
		}
		deltas = append(deltas, Deltas(prev, next, events[i:i+1], nil)...)
		state = next
	}
	r.add(deltas)
	return state, nil
}

// AddState adds only what a state contributes by itself (forecast and win/loss, the
// buckets of Deltas(nil, o, nil)), for a deal whose history cannot be replayed from its
// creation: its funnel and changes entries are then missing from the rebuild.
func (r *Rebuild) AddState(o domain.Opportunity) {
	if o.Version > 0 {
		r.add(Deltas(nil, o, nil, nil))
	}
}

func (r *Rebuild) add(deltas []Delta) {
	for _, d := range deltas {
		vals := r.values[d.Bucket]
		if vals == nil {
			vals = map[string]int64{}
			r.values[d.Bucket] = vals
		}
		for k, v := range d.Values {
			if n := vals[k] + v; n != 0 {
				vals[k] = n
			} else {
				delete(vals, k)
			}
		}
	}
}

// Buckets returns every bucket with at least one non-zero value, each with a copy of guard as
// its Applied guard: the positions the histories cover, so that deltas of the same commands
// still on their way to the aggregator (computed under the old rule) are skipped as
// re-emissions, while every later command's deltas are applied.
func (r *Rebuild) Buckets(guard map[string]int64) map[string]Bucket {
	out := make(map[string]Bucket, len(r.values))
	for k, vals := range r.values {
		if len(vals) == 0 {
			continue
		}
		b := Bucket{Values: maps.Clone(vals)}
		if len(guard) > 0 {
			b.Applied = maps.Clone(guard)
		}
		out[k] = b
	}
	return out
}
