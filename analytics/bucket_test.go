package analytics

import (
	"reflect"
	"testing"
)

func TestBucketApplyGuard(t *testing.T) {
	d := func(src string, pos int64, vals map[string]int64) Delta {
		return Delta{Bucket: "F|p|2025-01-01|o", OpportunityID: "opp", Version: 1, Values: vals, Source: src, Position: pos}
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
			{d("0", 0, map[string]int64{"open/count": 1, "USD/open/amount": 500}), true, map[string]int64{"open/count": 1, "USD/open/amount": 500}},
		}},
		{"same position twice (redelivery or re-emission)", []step{
			{d("0", 4, map[string]int64{"open/count": 1}), true, map[string]int64{"open/count": 1}},
			{d("0", 4, map[string]int64{"open/count": 1}), false, map[string]int64{"open/count": 1}},
		}},
		{"older position after newer", []step{
			{d("1", 10, map[string]int64{"USD/open/amount": 100}), true, map[string]int64{"USD/open/amount": 100}},
			{d("1", 30, map[string]int64{"USD/open/amount": 50}), true, map[string]int64{"USD/open/amount": 150}},
			{d("1", 20, map[string]int64{"USD/open/amount": 7}), false, map[string]int64{"USD/open/amount": 150}},
			{d("1", 10, map[string]int64{"USD/open/amount": 100}), false, map[string]int64{"USD/open/amount": 150}},
		}},
		{"sources are guarded apart", []step{
			{d("0", 7, map[string]int64{"open/count": 1}), true, map[string]int64{"open/count": 1}},
			{d("1", 3, map[string]int64{"open/count": 1}), true, map[string]int64{"open/count": 2}}, // lower position, other source
			{d("0", 8, map[string]int64{"open/count": -1}), true, map[string]int64{"open/count": 1}},
			{d("1", 3, map[string]int64{"open/count": 1}), false, map[string]int64{"open/count": 1}}, // source 1's duplicate
			{d("0", 7, map[string]int64{"open/count": 1}), false, map[string]int64{"open/count": 1}}, // source 0's old delta
			{d("1", 500, map[string]int64{"open/count": -1}), true, map[string]int64{}},              // offset gaps are fine
		}},
		{"no source: unguarded (a v1 writer)", []step{
			{d("", 0, map[string]int64{"open/count": 1}), true, map[string]int64{"open/count": 1}},
			{d("", 0, map[string]int64{"open/count": 1}), true, map[string]int64{"open/count": 2}},
		}},
		{"zero sums are dropped, the guard is kept", []step{
			{d("2", 1, map[string]int64{"open/count": 1, "USD/open/amount": 100}), true, map[string]int64{"open/count": 1, "USD/open/amount": 100}},
			{d("2", 2, map[string]int64{"USD/open/amount": -100, "JPY/open/amount": 3}), true, map[string]int64{"open/count": 1, "JPY/open/amount": 3}},
			{d("2", 3, map[string]int64{"open/count": -1, "JPY/open/amount": -3}), true, map[string]int64{}},
			{d("2", 3, map[string]int64{"open/count": -1, "JPY/open/amount": -3}), false, map[string]int64{}},
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
				if s.d.Source != "" && b.Applied[s.d.Source] < s.d.Position {
					t.Fatalf("step %d: applied %d below position %d", i, b.Applied[s.d.Source], s.d.Position)
				}
				if len(b.Applied) > 3 {
					t.Fatalf("step %d: guard has %d entries", i, len(b.Applied))
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
	b.Apply(Delta{OpportunityID: "a", Version: 1, Values: vals, Source: "0", Position: 1})
	vals["open/count"] = 99
	if b.Values["open/count"] != 1 {
		t.Fatalf("bucket shares the delta's map")
	}
}
