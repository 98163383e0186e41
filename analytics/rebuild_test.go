package analytics

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// A history that does not run 1..n, or does not apply, is refused whole: a rebuild must not
// add part of a deal. (The property test checks that complete histories rebuild exactly the
// incremental buckets.)
func TestRebuildRefusesBrokenHistories(t *testing.T) {
	var events []domain.Event
	var cur *domain.Opportunity
	for i, cmd := range []domain.Command{createCmd("r", "r1"), stageCmd("r", "r2", "proposal"), wonCmd("r", "r3", domain.CloseWon{})} {
		d := decide(t, cur, cmd, t0.Add(time.Duration(i)*time.Hour))
		events = append(events, d.Events...)
		n := d.Next
		cur = &n
	}
	r := NewRebuild()
	if _, err := r.AddHistory([]domain.Event{events[0], events[2]}); !errors.Is(err, domain.ErrEventOutOfOrder) {
		t.Errorf("a gap: %v", err)
	}
	if _, err := r.AddHistory(events[1:]); !errors.Is(err, domain.ErrEventOutOfOrder) {
		t.Errorf("a history without its creation: %v", err)
	}
	broken := append([]domain.Event(nil), events...)
	broken[1].Changes = nil // a stage move whose changes are lost
	broken[1].FromStageID = "nope"
	broken[2].Changes = append([]domain.Change{{Field: "amount", Before: "1.00", BeforeSet: true, After: "2.00", AfterSet: true}}, broken[2].Changes...)
	if _, err := r.AddHistory(broken); err == nil {
		t.Error("a history whose events do not apply was added")
	}
	if got := r.Buckets(nil); len(got) != 0 {
		t.Fatalf("refused histories left buckets: %v", got)
	}
	st, err := r.AddHistory(events)
	if err != nil || st.Status != domain.StatusWon || st.Version != 3 {
		t.Fatalf("the whole history: %v, %s v%d", err, st.Status, st.Version)
	}
	// The won deal on its close date, the day it closed; no guard given, none set.
	w, ok := r.Buckets(nil)["W|default|2025-03-01|u-1"]
	if !ok || w.Values[nameWonCount] != 1 || w.Values[nameWonCycleDays] != 1 || w.Applied != nil {
		t.Fatalf("win/loss bucket %+v (present %v)", w, ok)
	}
	// From the state alone: the same forecast and win/loss buckets, no event buckets.
	alone := NewRebuild()
	alone.AddState(st)
	whole := r.Buckets(nil)
	got := alone.Buckets(map[string]int64{"2": 5})
	for k, b := range whole {
		if k[0] == famEvents {
			if _, ok := got[k]; ok {
				t.Errorf("state alone has event bucket %s", k)
			}
			continue
		}
		if !reflect.DeepEqual(got[k].Values, b.Values) || got[k].Applied["2"] != 5 {
			t.Errorf("state alone: %s = %+v, the history gives %v", k, got[k], b.Values)
		}
	}
}
