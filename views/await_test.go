package views

import (
	"testing"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// A waiter takes the newest value stored for its key since it last looked, and only its key's.
func TestWaiterTakesNewestValue(t *testing.T) {
	s := &Service{waiters: map[string]map[*waiter]struct{}{}, store: analytics.NewStore()}
	w := s.subscribe("opp-1")
	other := s.subscribe("opp-2")
	if _, ok := w.take(); ok {
		t.Fatal("a value before any update")
	}
	v1, _ := codecs.EncodeAggregate(domain.Aggregate{State: domain.Opportunity{ID: "opp-1", Version: 1}, Position: 3})
	v2, _ := codecs.EncodeAggregate(domain.Aggregate{State: domain.Opportunity{ID: "opp-1", Version: 2}, Position: 4})
	s.notify("opp-1", v1)
	s.notify("opp-1", v2)
	select {
	case <-w.ch:
	default:
		t.Fatal("not woken")
	}
	raw, ok := w.take()
	agg, err := decodeValue(raw, codecs.DecodeAggregateState)
	if !ok || err != nil || agg == nil || agg.State.Version != 2 {
		t.Fatalf("took %v %v %+v, want version 2", ok, err, agg)
	}
	if _, ok := other.take(); ok {
		t.Fatal("another key's waiter got the value")
	}
	// A deletion hands over an empty value: the opportunity is gone.
	s.notify("opp-1", nil)
	raw, ok = w.take()
	if agg, err := decodeValue(raw, codecs.DecodeAggregateState); !ok || err != nil || agg != nil {
		t.Fatalf("after a deletion: %v %v %+v", ok, err, agg)
	}
	s.unsubscribe("opp-1", w)
	s.unsubscribe("opp-2", other)
	if len(s.waiters) != 0 {
		t.Fatalf("waiters left: %v", s.waiters)
	}
}
