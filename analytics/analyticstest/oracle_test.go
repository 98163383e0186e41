package analyticstest

import (
	"errors"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// t0 is the clock of the test, as in the tests of package analytics.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// decide runs one command at time now against the default pipeline and fails the test on a
// refusal.
func decide(t testing.TB, cur *domain.Opportunity, cmd domain.Command, now time.Time) domain.Decision {
	t.Helper()
	pipelines := func(id string) (*domain.Pipeline, bool) {
		p := domain.DefaultPipeline()
		return &p, id == p.ID
	}
	d, err := domain.Decide(cur, cmd, domain.DecideContext{Now: now, Pipelines: pipelines})
	if err != nil {
		t.Fatalf("Decide(%s %s): %v", cmd.Type, cmd.CommandID, err)
	}
	return d
}

func createCmd(id, cmdID string) domain.Command {
	c := &domain.CreateOpportunity{Name: "Acme renewal", AccountID: "acc-1", OwnerID: "u-1", Amount: "12500.00", Currency: "USD", CloseDate: "2025-06-30"}
	return domain.Command{Type: domain.CmdCreate, CommandID: cmdID, OpportunityID: id, Actor: "alice", Create: c}
}

func stageCmd(id, cmdID, stage string) domain.Command {
	return domain.Command{Type: domain.CmdChangeStage, CommandID: cmdID, OpportunityID: id, Actor: "carol", ChangeStage: &domain.ChangeStage{StageID: stage}}
}

func date(t testing.TB, s string) domain.Date {
	t.Helper()
	d, err := domain.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

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
	fn, err := o.Funnel(analytics.FunnelQuery{From: date(t, "2025-03-01"), To: date(t, "2025-03-31")}, domain.DefaultPipeline())
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
