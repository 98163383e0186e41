package analytics

import (
	"errors"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// TestOracleObserveEvent: the event-fed Oracle skips duplicates, refuses gaps (and keeps the
// first error), and rebuilds the same state Decide produced.
func TestOracleObserveEvent(t *testing.T) {
	d1 := decide(t, nil, createCmd("x", "x1"), t0)
	n1 := d1.Next
	d2 := decide(t, &n1, stageCmd("x", "x2", "proposal"), t0.Add(time.Hour))
	o := NewOracle()
	if err := o.ObserveEvent(d2.Events[0]); !errors.Is(err, domain.ErrEventOutOfOrder) {
		t.Fatalf("a gap must be refused, got %v", err)
	}
	for _, e := range []domain.Event{d1.Events[0], d1.Events[0], d2.Events[0], d1.Events[0], d2.Events[0]} {
		if err := o.ObserveEvent(e); err != nil {
			t.Fatalf("in-order or duplicate event refused: %v", err)
		}
	}
	if !errors.Is(o.Err(), domain.ErrEventOutOfOrder) {
		t.Errorf("Err() = %v, want the first error", o.Err())
	}
	st := o.States()
	if len(st) != 1 || st[0].Version != 2 || st[0].StageID != "proposal" || st[0].Amount != d2.Next.Amount {
		t.Fatalf("states %+v", st)
	}
	fn, err := o.Funnel(FunnelQuery{From: date(t, "2025-03-01"), To: date(t, "2025-03-31")}, domain.DefaultPipeline())
	if err != nil {
		t.Fatal(err)
	}
	if q := fn.Stages[0]; q.Entered != 1 || q.Advanced != 1 || q.StaysEnded != 1 || q.AvgDaysInStage != "0.0" {
		t.Errorf("qualification row %+v", q) // one hour in stage: 0.04 days
	}
	if p := fn.Stages[2]; p.Entered != 1 {
		t.Errorf("proposal row %+v", p)
	}
	if fn.Stages[1].Entered != 0 {
		t.Errorf("skipped discovery was entered: %+v", fn.Stages[1])
	}
}
