package domain

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// t0 is the fixed clock of the tests; later steps add minutes so every timestamp is distinct.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// enterprisePipeline is a stricter second pipeline: required fields on the later stages and
// the won stage, two lost stages, and a won stage that is not last.
func enterprisePipeline() Pipeline {
	return Pipeline{
		ID:   "enterprise",
		Name: "Enterprise",
		Stages: []Stage{
			{ID: "lead", Name: "Lead", Probability: 5, ForecastCategory: CategoryPipeline, Status: StatusOpen},
			{ID: "qualify", Name: "Qualify", Probability: 25, ForecastCategory: CategoryPipeline, Status: StatusOpen, RequiredFields: []string{"leadId"}},
			{ID: "solution", Name: "Solution", Probability: 60, ForecastCategory: CategoryBestCase, Status: StatusOpen, RequiredFields: []string{"amount", "nextStep"}},
			{ID: "contract", Name: "Contract", Probability: 90, ForecastCategory: CategoryCommit, Status: StatusOpen, RequiredFields: []string{"amount", "closeDate", "nextStep"}},
			{ID: "won", Name: "Won", Probability: 100, ForecastCategory: CategoryClosed, Status: StatusWon, RequiredFields: []string{"amount", "source"}},
			{ID: "lost_price", Name: "Lost: price", Probability: 0, ForecastCategory: CategoryOmitted, Status: StatusLost},
			{ID: "lost_other", Name: "Lost: other", Probability: 0, ForecastCategory: CategoryOmitted, Status: StatusLost},
			{ID: "parked", Name: "Parked", Probability: 0, ForecastCategory: CategoryOmitted, Status: StatusOpen},
		},
	}
}

// world is the outside of an opportunity in a test: pipelines, clock, account.
type world struct {
	pipelines map[string]Pipeline
	now       time.Time
	account   *Account
}

func newWorld() *world {
	return &world{
		pipelines: map[string]Pipeline{"default": DefaultPipeline(), "enterprise": enterprisePipeline()},
		now:       t0,
		account:   &Account{ID: "acc-1", Name: "Acme", Segment: "enterprise", Region: "emea", OwnerID: "u-9"},
	}
}

func (w *world) ctx() DecideContext {
	return DecideContext{
		Now: w.now,
		Pipelines: func(id string) (*Pipeline, bool) {
			p, ok := w.pipelines[id]
			return &p, ok
		},
		Account: w.account,
	}
}

// tick advances the clock so that consecutive commands get different times.
func (w *world) tick() { w.now = w.now.Add(time.Minute) }

func ptr[T any](v T) *T { return &v }

func createCmd(id, cmdID string, mods ...func(*CreateOpportunity)) Command {
	c := &CreateOpportunity{
		Name:      "Acme renewal",
		AccountID: "acc-1",
		OwnerID:   "u-1",
		Amount:    "12500.00",
		Currency:  "USD",
		CloseDate: "2025-06-30",
	}
	for _, m := range mods {
		m(c)
	}
	return Command{Type: CmdCreate, CommandID: cmdID, OpportunityID: id, Actor: "alice", IssuedAt: t0, Create: c}
}

func updateCmd(id, cmdID string, u UpdateOpportunity) Command {
	return Command{Type: CmdUpdate, CommandID: cmdID, OpportunityID: id, Actor: "bob", Update: &u}
}

func stageCmd(id, cmdID, stage string) Command {
	return Command{Type: CmdChangeStage, CommandID: cmdID, OpportunityID: id, Actor: "carol", ChangeStage: &ChangeStage{StageID: stage}}
}

func wonCmd(id, cmdID string, c CloseWon) Command {
	return Command{Type: CmdCloseWon, CommandID: cmdID, OpportunityID: id, Actor: "dave", CloseWon: &c}
}

func lostCmd(id, cmdID string, c CloseLost) Command {
	return Command{Type: CmdCloseLost, CommandID: cmdID, OpportunityID: id, Actor: "erin", CloseLost: &c}
}

func reopenCmd(id, cmdID, stage string) Command {
	return Command{Type: CmdReopen, CommandID: cmdID, OpportunityID: id, Actor: "frank", Reopen: &Reopen{StageID: stage}}
}

func withExpected(cmd Command, v int64) Command {
	cmd.ExpectedVersion = &v
	return cmd
}

// mustDecide runs Decide and fails the test on a rejection.
func mustDecide(t *testing.T, cur *Opportunity, cmd Command, dc DecideContext) Decision {
	t.Helper()
	d, err := Decide(cur, cmd, dc)
	if err != nil {
		t.Fatalf("Decide(%s %s): unexpected rejection: %v", cmd.Type, cmd.CommandID, err)
	}
	return d
}

// mustCreate creates opportunity id through Decide in w (default pipeline unless mods say so).
func mustCreate(t *testing.T, w *world, id string, mods ...func(*CreateOpportunity)) Opportunity {
	t.Helper()
	return mustDecide(t, nil, createCmd(id, "create-"+id, mods...), w.ctx()).Next
}

// wantRejection checks that err is a *Rejection with code and, when given, exactly those
// field names in that order.
func wantRejection(t *testing.T, err error, code RejectCode, fields ...string) *Rejection {
	t.Helper()
	if err == nil {
		t.Fatalf("want rejection %s, got acceptance", code)
	}
	rej, ok := AsRejection(err)
	if !ok {
		t.Fatalf("want *Rejection %s, got %T: %v", code, err, err)
	}
	if rej.Code != code {
		t.Fatalf("want code %s, got %s (%v)", code, rej.Code, rej)
	}
	if fields != nil {
		var got []string
		for _, f := range rej.Fields {
			got = append(got, f.Field)
		}
		if !slices.Equal(got, fields) {
			t.Fatalf("want fields %v, got %v (%v)", fields, got, rej)
		}
	}
	if rej.Message == "" {
		t.Fatalf("rejection %s has no message", code)
	}
	return rej
}

// business drops the bookkeeping fields that events do not carry, leaving what Apply must
// reproduce.
func business(o Opportunity) Opportunity {
	o.RecentCommandIDs = nil
	o.Account = nil
	return o
}

// sameBusiness reports the first difference between the business fields of two states.
func sameBusiness(a, b Opportunity) error {
	a, b = business(a), business(b)
	if reflect.DeepEqual(a, b) {
		return nil
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return fmt.Errorf("field %s differs:\n  %s\n  %s", va.Type().Field(i).Name,
				show(va.Field(i).Interface()), show(vb.Field(i).Interface()))
		}
	}
	return errors.New("states differ")
}

func show(v any) string {
	switch x := v.(type) {
	case *Override:
		if x != nil {
			return fmt.Sprintf("&%+v", *x)
		}
	case *time.Time:
		if x != nil {
			return "&" + x.String()
		}
	case []StageVisit:
		s := "["
		for _, sv := range x {
			left := "nil"
			if sv.LeftAt != nil {
				left = sv.LeftAt.String()
			}
			s += fmt.Sprintf("{%s in %s by %s, left %s by %s} ", sv.StageID, sv.EnteredAt, sv.EnteredBy, left, sv.LeftBy)
		}
		return s + "]"
	}
	return fmt.Sprintf("%+v", v)
}

// changeMap indexes an event's changes by field.
func changeMap(e Event) map[string]Change {
	m := make(map[string]Change, len(e.Changes))
	for _, c := range e.Changes {
		m[c.Field] = c
	}
	return m
}

func changedFields(e Event) []string {
	var out []string
	for _, c := range e.Changes {
		out = append(out, c.Field)
	}
	return out
}

// deepCopy copies an opportunity including everything behind its pointers, to detect
// mutation of an input.
func deepCopy(o Opportunity) Opportunity {
	c := o
	c.StageHistory = nil
	for _, v := range o.StageHistory {
		if v.LeftAt != nil {
			v.LeftAt = ptr(*v.LeftAt)
		}
		c.StageHistory = append(c.StageHistory, v)
	}
	c.RecentCommandIDs = slices.Clone(o.RecentCommandIDs)
	if o.Account != nil {
		c.Account = ptr(*o.Account)
	}
	if o.ProbabilityOverride != nil {
		c.ProbabilityOverride = ptr(*o.ProbabilityOverride)
	}
	if o.CategoryOverride != nil {
		c.CategoryOverride = ptr(*o.CategoryOverride)
	}
	if o.ClosedAt != nil {
		c.ClosedAt = ptr(*o.ClosedAt)
	}
	return c
}
