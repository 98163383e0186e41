package analytics

import (
	"reflect"
	"testing"
)

func TestBucketApplyGuard(t *testing.T) {
	d := func(opp string, v int64, vals map[string]int64) Delta {
		return Delta{Bucket: "F|p|2025-01-01|o", OpportunityID: opp, Version: v, Values: vals}
	}
	type step struct {
		d       Delta
		applied bool
		values  map[string]int64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"fresh bucket, nil maps", []step{
			{d("a", 1, map[string]int64{"open/count": 1, "USD/open/amount": 500}), true, map[string]int64{"open/count": 1, "USD/open/amount": 500}},
		}},
		{"same version twice", []step{
			{d("a", 1, map[string]int64{"open/count": 1}), true, map[string]int64{"open/count": 1}},
			{d("a", 1, map[string]int64{"open/count": 1}), false, map[string]int64{"open/count": 1}},
		}},
		{"older version after newer", []step{
			{d("a", 1, map[string]int64{"USD/open/amount": 100}), true, map[string]int64{"USD/open/amount": 100}},
			{d("a", 3, map[string]int64{"USD/open/amount": 50}), true, map[string]int64{"USD/open/amount": 150}},
			{d("a", 2, map[string]int64{"USD/open/amount": 7}), false, map[string]int64{"USD/open/amount": 150}},
			{d("a", 1, map[string]int64{"USD/open/amount": 100}), false, map[string]int64{"USD/open/amount": 150}},
		}},
		{"interleaved opportunities", []step{
			{d("a", 1, map[string]int64{"open/count": 1}), true, map[string]int64{"open/count": 1}},
			{d("b", 1, map[string]int64{"open/count": 1}), true, map[string]int64{"open/count": 2}},
			{d("a", 2, map[string]int64{"open/count": -1}), true, map[string]int64{"open/count": 1}},
			{d("b", 1, map[string]int64{"open/count": 1}), false, map[string]int64{"open/count": 1}}, // b's redelivery
			{d("a", 1, map[string]int64{"open/count": 1}), false, map[string]int64{"open/count": 1}}, // a's old delta after it left
			{d("b", 5, map[string]int64{"open/count": -1}), true, map[string]int64{}},                // version gaps are fine
		}},
		{"zero sums are dropped", []step{
			{d("a", 1, map[string]int64{"open/count": 1, "USD/open/amount": 100}), true, map[string]int64{"open/count": 1, "USD/open/amount": 100}},
			{d("a", 2, map[string]int64{"USD/open/amount": -100, "JPY/open/amount": 3}), true, map[string]int64{"open/count": 1, "JPY/open/amount": 3}},
			{d("a", 3, map[string]int64{"open/count": -1, "JPY/open/amount": -3}), true, map[string]int64{}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b Bucket
			for i, s := range tc.steps {
				if got := b.Apply(s.d); got != s.applied {
					t.Fatalf("step %d: Apply = %v, want %v", i, got, s.applied)
				}
				got := b.Values
				if len(got) == 0 {
					got = map[string]int64{}
				}
				if !reflect.DeepEqual(got, s.values) {
					t.Fatalf("step %d: values %v, want %v", i, got, s.values)
				}
				if b.Seen[s.d.OpportunityID] < s.d.Version {
					t.Fatalf("step %d: seen %d below version %d", i, b.Seen[s.d.OpportunityID], s.d.Version)
				}
			}
		})
	}
}

// TestBucketApplyDoesNotAliasDelta: the aggregator keeps the bucket; the delta's map must not
// become part of it.
func TestBucketApplyDoesNotAliasDelta(t *testing.T) {
	vals := map[string]int64{"open/count": 1}
	var b Bucket
	b.Apply(Delta{OpportunityID: "a", Version: 1, Values: vals})
	vals["open/count"] = 99
	if b.Values["open/count"] != 1 {
		t.Fatalf("bucket shares the delta's map")
	}
}
