package domain

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestCreateWithDefaults(t *testing.T) {
	w := newWorld()
	d := mustDecide(t, nil, createCmd("opp-1", "c1"), w.ctx())
	o := d.Next
	if d.Duplicate || len(d.Events) != 1 {
		t.Fatalf("create: duplicate=%v events=%d", d.Duplicate, len(d.Events))
	}
	// No pipelineId and no stageId: the default pipeline's first open stage (API.md).
	if o.ID != "opp-1" || o.PipelineID != "default" || o.StageID != "qualification" || o.Status != StatusOpen {
		t.Errorf("placed in %s/%s/%s", o.PipelineID, o.StageID, o.Status)
	}
	if o.Probability != 10 || o.ForecastCategory != CategoryPipeline {
		t.Errorf("effective %d/%s, want the qualification defaults 10/pipeline", o.Probability, o.ForecastCategory)
	}
	if o.Amount != 1_250_000 || o.Currency != "USD" || o.CloseDate.String() != "2025-06-30" {
		t.Errorf("amount %d %s, close %s", o.Amount, o.Currency, o.CloseDate)
	}
	if o.Version != 1 || !o.CreatedAt.Equal(t0) || !o.UpdatedAt.Equal(t0) || !o.StageEnteredAt.Equal(t0) {
		t.Errorf("version %d created %s updated %s entered %s", o.Version, o.CreatedAt, o.UpdatedAt, o.StageEnteredAt)
	}
	wantHistory := []StageVisit{{StageID: "qualification", EnteredAt: t0, EnteredBy: "alice"}}
	if !reflect.DeepEqual(o.StageHistory, wantHistory) {
		t.Errorf("history %s", show(o.StageHistory))
	}
	if o.ProbabilityOverride != nil || o.CategoryOverride != nil || o.ClosedAt != nil || o.CloseDatePushCount != 0 {
		t.Errorf("unexpected override/close state: %+v", o)
	}
	if !slices.Equal(o.RecentCommandIDs, []string{"c1"}) {
		t.Errorf("ring %v", o.RecentCommandIDs)
	}
	if o.Account == nil || *o.Account != *w.account || o.Account == w.account {
		t.Errorf("account snapshot %+v must be a copy of %+v", o.Account, w.account)
	}

	e := d.Events[0]
	if e.EventID != "opp-1:1" || e.Type != EvtCreated || e.OpportunityID != "opp-1" || e.Version != 1 ||
		!e.At.Equal(t0) || e.Actor != "alice" || e.CommandID != "c1" || e.FromStageID != "" || e.ToStageID != "qualification" || e.Position != 0 {
		t.Errorf("event header %+v", e)
	}
	// Every initial non-empty field, from null, sorted by name; empty optional text is left out.
	want := []Change{
		{Field: "accountId", After: "acc-1", AfterSet: true},
		{Field: "amount", After: "12500.00", AfterSet: true},
		{Field: "closeDate", After: "2025-06-30", AfterSet: true},
		{Field: "currency", After: "USD", AfterSet: true},
		{Field: "forecastCategory", After: "pipeline", AfterSet: true},
		{Field: "name", After: "Acme renewal", AfterSet: true},
		{Field: "ownerId", After: "u-1", AfterSet: true},
		{Field: "pipelineId", After: "default", AfterSet: true},
		{Field: "probability", After: "10", AfterSet: true},
		{Field: "stageId", After: "qualification", AfterSet: true},
		{Field: "status", After: "open", AfterSet: true},
	}
	if !reflect.DeepEqual(e.Changes, want) {
		t.Errorf("changes\n got %+v\nwant %+v", e.Changes, want)
	}
}

func TestCreateWithEverything(t *testing.T) {
	w := newWorld()
	o := mustDecide(t, nil, createCmd("opp-1", "c1", func(c *CreateOpportunity) {
		c.PipelineID, c.StageID = "enterprise", "solution"
		c.Amount, c.Currency = "1.5", "KWD"
		c.NextStep, c.LeadID, c.Source = "send quote", "lead-7", "webinar"
		c.Probability, c.ForecastCategory = ptr(35), ptr("commit")
	}), w.ctx())
	if o.Next.StageID != "solution" || o.Next.PipelineID != "enterprise" || o.Next.Amount != 1500 {
		t.Errorf("placed %s/%s amount %d", o.Next.PipelineID, o.Next.StageID, o.Next.Amount)
	}
	// Overrides win over the stage default (60/best_case) and remember who set them.
	if o.Next.Probability != 35 || o.Next.ForecastCategory != CategoryCommit {
		t.Errorf("effective %d/%s, want the overrides 35/commit", o.Next.Probability, o.Next.ForecastCategory)
	}
	wantOv := &Override{Value: "35", By: "alice", At: t0}
	if !reflect.DeepEqual(o.Next.ProbabilityOverride, wantOv) {
		t.Errorf("probability override %+v", o.Next.ProbabilityOverride)
	}
	ch := changeMap(o.Events[0])
	for field, want := range map[string]string{
		"amount": "1.500", "currency": "KWD", "nextStep": "send quote", "leadId": "lead-7", "source": "webinar",
		"probabilityOverride": "35", "forecastCategoryOverride": "commit", "probability": "35", "forecastCategory": "commit",
		"stageId": "solution", "pipelineId": "enterprise",
	} {
		if c, ok := ch[field]; !ok || c.After != want || !c.AfterSet || c.BeforeSet {
			t.Errorf("change %s = %+v, want after %q from null", field, c, want)
		}
	}
}

func TestCreateRejections(t *testing.T) {
	w := newWorld()
	broken := DefaultPipeline()
	broken.ID = "broken"
	broken.Stages = broken.Stages[:4] // no won or lost stage
	w.pipelines["broken"] = broken
	for _, tc := range []struct {
		name   string
		mod    func(*CreateOpportunity)
		code   RejectCode
		fields []string
	}{
		{"unknown pipeline", func(c *CreateOpportunity) { c.PipelineID = "nope" }, CodeUnknownPipeline, []string{"pipelineId"}},
		{"misconfigured pipeline", func(c *CreateOpportunity) { c.PipelineID = "broken" }, CodeUnknownPipeline, []string{"pipelineId"}},
		{"unknown stage", func(c *CreateOpportunity) { c.StageID = "nope" }, CodeUnknownStage, []string{"stageId"}},
		{"start won", func(c *CreateOpportunity) { c.StageID = "closed_won" }, CodeInvalidTransition, []string{"stageId"}},
		{"start lost", func(c *CreateOpportunity) { c.StageID = "closed_lost" }, CodeInvalidTransition, []string{"stageId"}},
		{"stage of another pipeline", func(c *CreateOpportunity) { c.StageID = "solution" }, CodeUnknownStage, []string{"stageId"}},
		{"required fields of the starting stage", func(c *CreateOpportunity) {
			c.PipelineID, c.StageID, c.Amount = "enterprise", "contract", "0"
		}, CodeRequiredFields, []string{"amount", "nextStep"}},
		{"required lead id", func(c *CreateOpportunity) { c.PipelineID, c.StageID = "enterprise", "qualify" }, CodeRequiredFields, []string{"leadId"}},
		{"bad amount", func(c *CreateOpportunity) { c.Amount = "12.345" }, CodeInvalid, []string{"amount"}},
		{"no close date", func(c *CreateOpportunity) { c.CloseDate = "" }, CodeInvalid, []string{"closeDate"}},
		{"closed category override", func(c *CreateOpportunity) { c.ForecastCategory = ptr("closed") }, CodeInvalid, []string{"forecastCategory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decide(nil, createCmd("opp-1", "c1", tc.mod), w.ctx())
			wantRejection(t, err, tc.code, tc.fields...)
		})
	}
	t.Run("no pipeline lookup at all", func(t *testing.T) {
		_, err := Decide(nil, createCmd("opp-1", "c1"), DecideContext{Now: t0})
		wantRejection(t, err, CodeUnknownPipeline)
	})
}

func TestExistenceAndIdempotency(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")

	// Creating an existing opportunity again with a new command id is a conflict...
	_, err := Decide(&o, createCmd("opp-1", "other"), w.ctx())
	wantRejection(t, err, CodeAlreadyExists)
	// ...but resending the create that made it is applied once: a duplicate, no events.
	d := mustDecide(t, &o, createCmd("opp-1", "create-opp-1"), w.ctx())
	if !d.Duplicate || len(d.Events) != 0 || !reflect.DeepEqual(d.Next, o) {
		t.Errorf("resent create: duplicate=%v events=%d", d.Duplicate, len(d.Events))
	}

	// Every other command needs an existing opportunity.
	for _, cmd := range []Command{
		updateCmd("ghost", "c", UpdateOpportunity{Name: ptr("x")}),
		stageCmd("ghost", "c", "proposal"),
		wonCmd("ghost", "c", CloseWon{}),
		lostCmd("ghost", "c", CloseLost{Reason: "r"}),
		reopenCmd("ghost", "c", "proposal"),
	} {
		_, err := Decide(nil, cmd, w.ctx())
		wantRejection(t, err, CodeNotFound)
	}

	// A zero state, what a store returns for a missing key, is a missing opportunity.
	if d := mustDecide(t, &Opportunity{}, createCmd("opp-9", "c9"), w.ctx()); d.Next.Version != 1 || d.Next.ID != "opp-9" {
		t.Errorf("create on a zero state: %+v", d.Next)
	}
	_, err = Decide(&Opportunity{}, stageCmd("opp-9", "c", "proposal"), w.ctx())
	wantRejection(t, err, CodeNotFound)

	// State routed to the wrong key is refused rather than modified.
	_, err = Decide(&o, stageCmd("opp-2", "c", "proposal"), w.ctx())
	wantRejection(t, err, CodeInvalid, "opportunityId")
}

func TestDuplicateCommand(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	w.tick()
	d1 := mustDecide(t, &o, stageCmd("opp-1", "move", "proposal"), w.ctx())
	w.tick()
	w.account = &Account{ID: "acc-1", Name: "Acme Renamed"}
	// The same command id again: applied once. The check comes before the version check, so a
	// retry with the version it originally expected still succeeds as a duplicate.
	retry := withExpected(stageCmd("opp-1", "move", "proposal"), 1)
	d2 := mustDecide(t, &d1.Next, retry, w.ctx())
	if !d2.Duplicate || len(d2.Events) != 0 {
		t.Fatalf("retry: duplicate=%v events=%v", d2.Duplicate, d2.Events)
	}
	if !reflect.DeepEqual(d2.Next, d1.Next) {
		t.Errorf("a duplicate must return the state unchanged (account snapshot included)")
	}
	// A duplicate is recognised by id alone, even when the body differs.
	d3 := mustDecide(t, &d1.Next, stageCmd("opp-1", "move", "negotiation"), w.ctx())
	if !d3.Duplicate || d3.Next.StageID != "proposal" {
		t.Errorf("same id, other body: duplicate=%v stage=%s", d3.Duplicate, d3.Next.StageID)
	}
}

func TestExpectedVersion(t *testing.T) {
	w := newWorld()
	_, err := Decide(nil, withExpected(createCmd("opp-1", "c1"), 1), w.ctx())
	wantRejection(t, err, CodeConflict) // a missing opportunity is at version 0
	o := mustDecide(t, nil, withExpected(createCmd("opp-1", "c1"), 0), w.ctx()).Next

	_, err = Decide(&o, withExpected(stageCmd("opp-1", "c2", "proposal"), 0), w.ctx())
	wantRejection(t, err, CodeConflict)
	_, err = Decide(&o, withExpected(stageCmd("opp-1", "c2", "proposal"), 2), w.ctx())
	wantRejection(t, err, CodeConflict)
	d := mustDecide(t, &o, withExpected(stageCmd("opp-1", "c2", "proposal"), 1), w.ctx())
	if d.Next.Version != 2 {
		t.Errorf("version %d", d.Next.Version)
	}
	// Creating an existing opportunity while expecting version 0 is a version conflict.
	_, err = Decide(&o, withExpected(createCmd("opp-1", "c3"), 0), w.ctx())
	wantRejection(t, err, CodeConflict)
	// The version check precedes the closed check.
	won := mustDecide(t, &o, wonCmd("opp-1", "w", CloseWon{}), w.ctx()).Next
	_, err = Decide(&won, withExpected(updateCmd("opp-1", "u", UpdateOpportunity{Name: ptr("x")}), 1), w.ctx())
	wantRejection(t, err, CodeConflict)
}

func TestAcceptedCommandBookkeeping(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	cmds := []Command{
		updateCmd("opp-1", "u1", UpdateOpportunity{Name: ptr("Bigger deal")}),
		stageCmd("opp-1", "s1", "proposal"),
		lostCmd("opp-1", "l1", CloseLost{Reason: "price"}),
		reopenCmd("opp-1", "r1", "discovery"),
		wonCmd("opp-1", "w1", CloseWon{}),
	}
	wantType := []EventType{EvtUpdated, EvtStageChanged, EvtClosedLost, EvtReopened, EvtClosedWon}
	for i, cmd := range cmds {
		w.tick()
		w.account = &Account{ID: "acc-1", Name: "Acme " + strconv.Itoa(i)}
		d := mustDecide(t, &o, cmd, w.ctx())
		if len(d.Events) != 1 || d.Next.Version != o.Version+1 {
			t.Fatalf("%s: %d events, version %d after %d", cmd.Type, len(d.Events), d.Next.Version, o.Version)
		}
		e := d.Events[0]
		if e.Type != wantType[i] || e.Version != d.Next.Version || e.EventID != fmt.Sprintf("opp-1:%d", d.Next.Version) ||
			e.CommandID != cmd.CommandID || e.Actor != cmd.Actor || !e.At.Equal(w.now) {
			t.Errorf("%s: event %+v", cmd.Type, e)
		}
		if !d.Next.UpdatedAt.Equal(w.now) || d.Next.Account.Name != w.account.Name {
			t.Errorf("%s: updatedAt %s account %+v", cmd.Type, d.Next.UpdatedAt, d.Next.Account)
		}
		if got := d.Next.RecentCommandIDs; got[len(got)-1] != cmd.CommandID || len(got) != i+2 {
			t.Errorf("%s: ring %v", cmd.Type, got)
		}
		if !slices.IsSortedFunc(e.Changes, func(a, b Change) int { return stringsCompare(a.Field, b.Field) }) {
			t.Errorf("%s: changes not sorted: %v", cmd.Type, changedFields(e))
		}
		if cmd.Type != CmdUpdate && (e.FromStageID != o.StageID || e.ToStageID != d.Next.StageID) {
			t.Errorf("%s: from %q to %q, want %q to %q", cmd.Type, e.FromStageID, e.ToStageID, o.StageID, d.Next.StageID)
		}
		if cmd.Type == CmdUpdate && (e.FromStageID != "" || e.ToStageID != "") {
			t.Errorf("update carries stage ids %q %q", e.FromStageID, e.ToStageID)
		}
		o = d.Next
	}
}

func stringsCompare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestUpdateNoChange(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	w.tick()
	w.account = &Account{ID: "acc-1", Name: "Acme (refreshed)"}
	for i, u := range []UpdateOpportunity{
		{},
		{Name: ptr("Acme renewal"), Amount: ptr("12500"), Currency: ptr("USD"), CloseDate: ptr("2025-06-30"), NextStep: ptr("")},
		{ClearProbability: true, ClearForecastCategory: true}, // nothing to clear
	} {
		id := "noop-" + strconv.Itoa(i)
		d := mustDecide(t, &o, updateCmd("opp-1", id, u), w.ctx())
		if d.Duplicate || len(d.Events) != 0 {
			t.Fatalf("no-op %d: duplicate=%v events=%d", i, d.Duplicate, len(d.Events))
		}
		if d.Next.Version != o.Version || !d.Next.UpdatedAt.Equal(o.UpdatedAt) {
			t.Errorf("no-op %d bumped version %d or updatedAt %s", i, d.Next.Version, d.Next.UpdatedAt)
		}
		if err := sameBusiness(d.Next, o); err != nil {
			t.Errorf("no-op %d changed the state: %v", i, err)
		}
		if !d.Next.ContainsCommand(id) || d.Next.Account.Name != "Acme (refreshed)" {
			t.Errorf("no-op %d: ring %v account %+v", i, d.Next.RecentCommandIDs, d.Next.Account)
		}
		// The recorded id makes a resend a duplicate.
		if again := mustDecide(t, &d.Next, updateCmd("opp-1", id, u), w.ctx()); !again.Duplicate {
			t.Errorf("no-op %d resent: not a duplicate", i)
		}
	}
}

func TestUpdateFields(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1", func(c *CreateOpportunity) { c.NextStep = "call" })
	w.tick()
	d := mustDecide(t, &o, updateCmd("opp-1", "u1", UpdateOpportunity{
		Name: ptr("New name"), AccountID: ptr("acc-2"), OwnerID: ptr("u-2"), NextStep: ptr(""), Amount: ptr("99.5"),
	}), w.ctx())
	n := d.Next
	if n.Name != "New name" || n.AccountID != "acc-2" || n.OwnerID != "u-2" || n.NextStep != "" || n.Amount != 9950 {
		t.Errorf("updated state %+v", n)
	}
	want := []Change{
		{Field: "accountId", Before: "acc-1", BeforeSet: true, After: "acc-2", AfterSet: true},
		{Field: "amount", Before: "12500.00", BeforeSet: true, After: "99.50", AfterSet: true},
		{Field: "name", Before: "Acme renewal", BeforeSet: true, After: "New name", AfterSet: true},
		{Field: "nextStep", Before: "call", BeforeSet: true}, // cleared: null after
		{Field: "ownerId", Before: "u-1", BeforeSet: true, After: "u-2", AfterSet: true},
	}
	if !reflect.DeepEqual(d.Events[0].Changes, want) {
		t.Errorf("changes\n got %+v\nwant %+v", d.Events[0].Changes, want)
	}
}

func TestUpdateAmountAndCurrency(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	// An amount without currency is read in the opportunity's currency.
	_, err := Decide(&o, updateCmd("opp-1", "u", UpdateOpportunity{Amount: ptr("1.234")}), w.ctx())
	wantRejection(t, err, CodeInvalid, "amount")
	// Changing currency alone would reinterpret the amount: refused.
	_, err = Decide(&o, updateCmd("opp-1", "u", UpdateOpportunity{Currency: ptr("JPY")}), w.ctx())
	wantRejection(t, err, CodeInvalid, "amount")
	// With the amount in the new currency it is accepted, and the event shows each side in
	// its own currency.
	d := mustDecide(t, &o, updateCmd("opp-1", "u", UpdateOpportunity{Currency: ptr("JPY"), Amount: ptr("1800000")}), w.ctx())
	if d.Next.Currency != "JPY" || d.Next.Amount != 1_800_000 {
		t.Fatalf("state %d %s", d.Next.Amount, d.Next.Currency)
	}
	ch := changeMap(d.Events[0])
	if ch["amount"].Before != "12500.00" || ch["amount"].After != "1800000" || ch["currency"].Before != "USD" || ch["currency"].After != "JPY" {
		t.Errorf("changes %+v", d.Events[0].Changes)
	}
	// Naming the current currency is not a change of currency.
	d = mustDecide(t, &d.Next, updateCmd("opp-1", "u2", UpdateOpportunity{Currency: ptr("JPY")}), w.ctx())
	if len(d.Events) != 0 {
		t.Errorf("same currency produced %v", d.Events)
	}
	// Amount zero is a valid amount.
	d = mustDecide(t, &d.Next, updateCmd("opp-1", "u3", UpdateOpportunity{Amount: ptr("0")}), w.ctx())
	if d.Next.Amount != 0 || changeMap(d.Events[0])["amount"].After != "0" {
		t.Errorf("zero amount: %d %+v", d.Next.Amount, d.Events)
	}
}

func TestCloseDatePushCount(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1") // 2025-06-30
	steps := []struct {
		date      string
		wantCount int
	}{
		{"2025-07-31", 1}, // later: a slip
		{"2025-07-31", 1}, // same: no change at all
		{"2025-05-01", 1}, // earlier: pulled in, not a slip
		{"2025-05-02", 2}, // later again
		{"2026-01-01", 3},
		{"2025-01-15", 3}, // earlier than the day it was created: allowed for an open deal's plan
	}
	for i, s := range steps {
		d := mustDecide(t, &o, updateCmd("opp-1", "d"+strconv.Itoa(i), UpdateOpportunity{CloseDate: ptr(s.date)}), w.ctx())
		if d.Next.CloseDate.String() != s.date || d.Next.CloseDatePushCount != s.wantCount {
			t.Errorf("step %d: close %s count %d, want %s %d", i, d.Next.CloseDate, d.Next.CloseDatePushCount, s.date, s.wantCount)
		}
		o = d.Next
	}
	// Closing on a day later than the plan is a slip too: the close date becomes that day.
	d := mustDecide(t, &o, wonCmd("opp-1", "w", CloseWon{}), w.ctx())
	if d.Next.CloseDatePushCount != 4 || d.Next.CloseDate != DateOf(w.now) {
		t.Errorf("closed after the planned day: count %d date %s", d.Next.CloseDatePushCount, d.Next.CloseDate)
	}
}

func TestOverridesSurviveStageChanges(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	w.tick()
	setAt := w.now
	d := mustDecide(t, &o, updateCmd("opp-1", "u1", UpdateOpportunity{Probability: ptr(42)}), w.ctx())
	o = d.Next
	if o.Probability != 42 || o.ForecastCategory != CategoryPipeline {
		t.Fatalf("after probability override: %d/%s", o.Probability, o.ForecastCategory)
	}
	if ch := changeMap(d.Events[0]); ch["probabilityOverride"].After != "42" || ch["probability"].Before != "10" || ch["probability"].After != "42" {
		t.Errorf("override event %+v", d.Events[0].Changes)
	}
	// Moving stages keeps the probability override; the category follows the stage.
	for _, stage := range []string{"proposal", "negotiation", "discovery"} {
		w.tick()
		o = mustDecide(t, &o, stageCmd("opp-1", "s-"+stage, stage), w.ctx()).Next
		st, _, _ := DefaultPipeline().Stage(stage)
		if o.Probability != 42 || o.ForecastCategory != st.ForecastCategory {
			t.Errorf("in %s: %d/%s, want 42/%s", stage, o.Probability, o.ForecastCategory, st.ForecastCategory)
		}
	}
	if want := (&Override{Value: "42", By: "bob", At: setAt}); !reflect.DeepEqual(o.ProbabilityOverride, want) {
		t.Errorf("override %+v, want %+v", o.ProbabilityOverride, want)
	}
	// Setting the same value again by someone else changes nothing, so keeps the attribution.
	again := updateCmd("opp-1", "u2", UpdateOpportunity{Probability: ptr(42)})
	again.Actor = "mallory"
	if d := mustDecide(t, &o, again, w.ctx()); len(d.Events) != 0 || d.Next.ProbabilityOverride.By != "bob" {
		t.Errorf("same override again: events %v by %s", d.Events, d.Next.ProbabilityOverride.By)
	}
	// A category override too; "omitted" takes an open deal out of the forecast.
	w.tick()
	o = mustDecide(t, &o, updateCmd("opp-1", "u3", UpdateOpportunity{ForecastCategory: ptr("omitted")}), w.ctx()).Next
	o = mustDecide(t, &o, stageCmd("opp-1", "s-neg", "negotiation"), w.ctx()).Next
	if o.ForecastCategory != CategoryOmitted || o.Probability != 42 {
		t.Errorf("after category override and move: %d/%s", o.Probability, o.ForecastCategory)
	}
	// Clearing returns each to the stage default (negotiation: 80/commit), independently.
	w.tick()
	d = mustDecide(t, &o, updateCmd("opp-1", "c1", UpdateOpportunity{ClearProbability: true}), w.ctx())
	if d.Next.Probability != 80 || d.Next.ForecastCategory != CategoryOmitted || d.Next.ProbabilityOverride != nil {
		t.Errorf("after clearing probability: %d/%s %+v", d.Next.Probability, d.Next.ForecastCategory, d.Next.ProbabilityOverride)
	}
	if c := changeMap(d.Events[0])["probabilityOverride"]; c.Before != "42" || !c.BeforeSet || c.AfterSet {
		t.Errorf("clear change %+v", c)
	}
	d = mustDecide(t, &d.Next, updateCmd("opp-1", "c2", UpdateOpportunity{ClearForecastCategory: true}), w.ctx())
	if d.Next.Probability != 80 || d.Next.ForecastCategory != CategoryCommit || d.Next.CategoryOverride != nil {
		t.Errorf("after clearing category: %d/%s", d.Next.Probability, d.Next.ForecastCategory)
	}
}

func TestOverridesThroughCloseAndReopen(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1", func(c *CreateOpportunity) { c.Probability, c.ForecastCategory = ptr(70), ptr("commit") })
	won := mustDecide(t, &o, wonCmd("opp-1", "w", CloseWon{}), w.ctx()).Next
	// Won forces 100/closed whatever the overrides say, but keeps them.
	if won.Probability != 100 || won.ForecastCategory != CategoryClosed || won.ProbabilityOverride == nil || won.CategoryOverride == nil {
		t.Fatalf("won: %d/%s overrides %v %v", won.Probability, won.ForecastCategory, won.ProbabilityOverride, won.CategoryOverride)
	}
	back := mustDecide(t, &won, reopenCmd("opp-1", "r", "proposal"), w.ctx()).Next
	if back.Probability != 70 || back.ForecastCategory != CategoryCommit {
		t.Errorf("reopened: %d/%s, want the overrides back", back.Probability, back.ForecastCategory)
	}
	lost := mustDecide(t, &back, lostCmd("opp-1", "l", CloseLost{Reason: "budget"}), w.ctx()).Next
	if lost.Probability != 0 || lost.ForecastCategory != CategoryOmitted || lost.ProbabilityOverride.Value != "70" {
		t.Errorf("lost: %d/%s", lost.Probability, lost.ForecastCategory)
	}
}

func TestChangeStage(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	w.tick()
	t1 := w.now
	d := mustDecide(t, &o, stageCmd("opp-1", "s1", "negotiation"), w.ctx())
	n := d.Next
	if n.StageID != "negotiation" || n.Probability != 80 || n.ForecastCategory != CategoryCommit || !n.StageEnteredAt.Equal(t1) {
		t.Errorf("moved: %s %d/%s entered %s", n.StageID, n.Probability, n.ForecastCategory, n.StageEnteredAt)
	}
	wantHistory := []StageVisit{
		{StageID: "qualification", EnteredAt: t0, EnteredBy: "alice", LeftAt: &t1, LeftBy: "carol"},
		{StageID: "negotiation", EnteredAt: t1, EnteredBy: "carol"},
	}
	if !reflect.DeepEqual(n.StageHistory, wantHistory) {
		t.Errorf("history %s", show(n.StageHistory))
	}
	e := d.Events[0]
	if e.FromStageID != "qualification" || e.ToStageID != "negotiation" ||
		!slices.Equal(changedFields(e), []string{"forecastCategory", "probability", "stageId"}) {
		t.Errorf("event %+v", e)
	}
	// Backward moves are allowed.
	w.tick()
	back := mustDecide(t, &n, stageCmd("opp-1", "s2", "discovery"), w.ctx()).Next
	if back.StageID != "discovery" || back.Probability != 20 || len(back.StageHistory) != 3 {
		t.Errorf("back: %s %d, %d visits", back.StageID, back.Probability, len(back.StageHistory))
	}
	for _, tc := range []struct {
		stage string
		code  RejectCode
	}{
		{"discovery", CodeInvalidTransition},   // the current stage
		{"closed_won", CodeInvalidTransition},  // use CloseWon
		{"closed_lost", CodeInvalidTransition}, // use CloseLost
		{"nope", CodeUnknownStage},
		{"solution", CodeUnknownStage}, // a stage of another pipeline
	} {
		_, err := Decide(&back, stageCmd("opp-1", "bad", tc.stage), w.ctx())
		wantRejection(t, err, tc.code, "stageId")
	}
}

func TestRequiredFieldsOnEntry(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1", func(c *CreateOpportunity) { c.PipelineID, c.Amount = "enterprise", "0" })
	_, err := Decide(&o, stageCmd("opp-1", "s", "contract"), w.ctx())
	rej := wantRejection(t, err, CodeRequiredFields, "amount", "nextStep")
	if rej.Fields[0].Message == "" {
		t.Error("missing field without message")
	}
	// Fill in the fields, then the move is accepted.
	o = mustDecide(t, &o, updateCmd("opp-1", "u", UpdateOpportunity{Amount: ptr("10"), NextStep: ptr("sign")}), w.ctx()).Next
	o = mustDecide(t, &o, stageCmd("opp-1", "s", "contract"), w.ctx()).Next
	// Required fields are checked on entry only: clearing one while in the stage is allowed.
	o = mustDecide(t, &o, updateCmd("opp-1", "u2", UpdateOpportunity{NextStep: ptr("")}), w.ctx()).Next
	if o.StageID != "contract" || o.NextStep != "" {
		t.Fatalf("state %s %q", o.StageID, o.NextStep)
	}
	// ...but the next entry checks again (solution needs amount and nextStep).
	_, err = Decide(&o, stageCmd("opp-1", "s2", "solution"), w.ctx())
	wantRejection(t, err, CodeRequiredFields, "nextStep")
	// The won stage requires amount and source: CloseWon checks them on the new state, so an
	// amount given with the command counts.
	_, err = Decide(&o, wonCmd("opp-1", "w", CloseWon{}), w.ctx())
	wantRejection(t, err, CodeRequiredFields, "source")
	zero := mustDecide(t, &o, updateCmd("opp-1", "u3", UpdateOpportunity{Amount: ptr("0")}), w.ctx()).Next
	_, err = Decide(&zero, wonCmd("opp-1", "w", CloseWon{}), w.ctx())
	wantRejection(t, err, CodeRequiredFields, "amount", "source")
	// Reopen checks the stage it goes back to.
	lost := mustDecide(t, &zero, lostCmd("opp-1", "l", CloseLost{Reason: "r"}), w.ctx()).Next
	_, err = Decide(&lost, reopenCmd("opp-1", "r", "solution"), w.ctx())
	wantRejection(t, err, CodeRequiredFields, "amount", "nextStep")
	mustDecide(t, &lost, reopenCmd("opp-1", "r", "lead"), w.ctx())
	// A lost stage with required fields is checked by CloseLost.
	p := enterprisePipeline()
	p.Stages[5].RequiredFields = []string{"nextStep"}
	w.pipelines["enterprise"] = p
	_, err = Decide(&zero, lostCmd("opp-1", "l2", CloseLost{Reason: "r"}), w.ctx())
	wantRejection(t, err, CodeRequiredFields, "nextStep")
}

func TestCloseWon(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	w.now = time.Date(2025, 3, 2, 10, 30, 0, 123456789, time.FixedZone("CET", 3600))
	closedAt := w.now.UTC()
	d := mustDecide(t, &o, wonCmd("opp-1", "w", CloseWon{Amount: ptr("13000")}), w.ctx())
	n := d.Next
	if n.Status != StatusWon || n.StageID != "closed_won" || n.Probability != 100 || n.ForecastCategory != CategoryClosed {
		t.Errorf("won: %s %s %d/%s", n.Status, n.StageID, n.Probability, n.ForecastCategory)
	}
	if n.ClosedAt == nil || !n.ClosedAt.Equal(closedAt) || n.ClosedAt.Location() != time.UTC || n.Amount != 1_300_000 {
		t.Errorf("closedAt %v amount %d", n.ClosedAt, n.Amount)
	}
	// Without closeDate in the command the deal closes on the UTC day it is decided on.
	if n.CloseDate.String() != "2025-03-02" {
		t.Errorf("close date without closeDate in the command is %s, want the day of closing 2025-03-02", n.CloseDate)
	}
	e := d.Events[0]
	if e.Type != EvtClosedWon || e.FromStageID != "qualification" || e.ToStageID != "closed_won" {
		t.Errorf("event %+v", e)
	}
	// Timestamps in changes are RFC 3339 UTC with nanoseconds.
	if c := changeMap(e)["closedAt"]; c.After != "2025-03-02T09:30:00.123456789Z" || c.BeforeSet {
		t.Errorf("closedAt change %+v", c)
	}
	if !slices.Equal(changedFields(e), []string{"amount", "closeDate", "closedAt", "forecastCategory", "probability", "stageId", "status"}) {
		t.Errorf("changed %v", changedFields(e))
	}
	// The amount is read in the opportunity's currency.
	jpy := mustCreate(t, w, "opp-2", func(c *CreateOpportunity) { c.Amount, c.Currency = "5000", "JPY" })
	_, err := Decide(&jpy, wonCmd("opp-2", "w", CloseWon{Amount: ptr("5000.5")}), w.ctx())
	wantRejection(t, err, CodeInvalid, "amount")
	// A won deal accepts only Reopen.
	for _, cmd := range []Command{
		updateCmd("opp-1", "x", UpdateOpportunity{Name: ptr("x")}),
		updateCmd("opp-1", "x", UpdateOpportunity{}),
		stageCmd("opp-1", "x", "proposal"),
		wonCmd("opp-1", "x", CloseWon{}),
		lostCmd("opp-1", "x", CloseLost{Reason: "r"}),
	} {
		_, err := Decide(&n, cmd, w.ctx())
		wantRejection(t, err, CodeClosed)
	}
}

// TestClosingDate is API.md's "Closing dates": close-won and close-lost set closeDate to the
// UTC day of the command's time unless the body gives an earlier day; a later day, or one
// before the day the deal was created, is refused on field closeDate; Reopen keeps the date;
// the event records the date's change like any other field's.
func TestClosingDate(t *testing.T) {
	closeWith := func(kind CommandType, date *string) Command {
		if kind == CmdCloseWon {
			return wonCmd("opp-1", "close", CloseWon{CloseDate: date})
		}
		return lostCmd("opp-1", "close", CloseLost{Reason: "price", CloseDate: date})
	}
	for _, kind := range []CommandType{CmdCloseWon, CmdCloseLost} {
		t.Run(string(kind), func(t *testing.T) {
			w := newWorld()
			w.now = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
			o := mustCreate(t, w, "opp-1") // created 2025-03-01, planned close 2025-06-30
			// Ten days later, at 00:30 in UTC+2: the UTC day is still 2025-03-10.
			w.now = time.Date(2025, 3, 11, 0, 30, 0, 0, time.FixedZone("EET", 2*3600))
			today := "2025-03-10"

			n := mustDecide(t, &o, closeWith(kind, nil), w.ctx())
			if got := n.Next.CloseDate.String(); got != today {
				t.Errorf("no closeDate in the body: closed on %s, want the UTC day of the command %s", got, today)
			}
			c, ok := changeMap(n.Events[0])["closeDate"]
			if !ok || c.Before != "2025-06-30" || !c.BeforeSet || c.After != today || !c.AfterSet {
				t.Errorf("the event's closeDate change is %+v (present %v), want 2025-06-30 -> %s", c, ok, today)
			}
			if n.Next.CloseDatePushCount != 0 {
				t.Errorf("closing before the planned day counted %d slips", n.Next.CloseDatePushCount)
			}

			for _, earlier := range []string{"2025-03-01", "2025-03-04", today} {
				n := mustDecide(t, &o, closeWith(kind, ptr(earlier)), w.ctx())
				if got := n.Next.CloseDate.String(); got != earlier {
					t.Errorf("closeDate %s in the body: closed on %s", earlier, got)
				}
			}

			_, err := Decide(&o, closeWith(kind, ptr("2025-03-11")), w.ctx())
			wantRejection(t, err, CodeCloseDateInFuture, "closeDate")
			if got := CodeCloseDateInFuture.HTTPStatus(); got != 422 {
				t.Errorf("%s answers %d", CodeCloseDateInFuture, got)
			}
			_, err = Decide(&o, closeWith(kind, ptr("2025-02-28")), w.ctx())
			wantRejection(t, err, CodeCloseDateBeforeCreated, "closeDate")
			_, err = Decide(&o, closeWith(kind, ptr("2025-02-30")), w.ctx())
			wantRejection(t, err, CodeInvalid, "closeDate")

			// A deal already planned for the day it closes: the date does not change, and the
			// event lists no closeDate change.
			planned := mustDecide(t, &o, updateCmd("opp-1", "plan", UpdateOpportunity{CloseDate: ptr(today)}), w.ctx()).Next
			same := mustDecide(t, &planned, closeWith(kind, nil), w.ctx())
			if _, ok := changeMap(same.Events[0])["closeDate"]; ok || same.Next.CloseDate.String() != today {
				t.Errorf("closing on the planned day: date %s, changes %v", same.Next.CloseDate, changedFields(same.Events[0]))
			}

			// Reopen keeps the day it closed until an update changes it.
			closed := mustDecide(t, &o, closeWith(kind, ptr("2025-03-04")), w.ctx()).Next
			w.tick()
			re := mustDecide(t, &closed, reopenCmd("opp-1", "re", "proposal"), w.ctx())
			if got := re.Next.CloseDate.String(); got != "2025-03-04" {
				t.Errorf("reopened: close date %s, want it kept at 2025-03-04", got)
			}
			if _, ok := changeMap(re.Events[0])["closeDate"]; ok {
				t.Errorf("the reopen event changes closeDate: %v", changedFields(re.Events[0]))
			}
			w.tick()
			moved := mustDecide(t, &re.Next, updateCmd("opp-1", "move", UpdateOpportunity{CloseDate: ptr("2025-04-30")}), w.ctx()).Next
			if moved.CloseDate.String() != "2025-04-30" {
				t.Errorf("update after reopen: close date %s", moved.CloseDate)
			}
		})
	}
	// The field is validated without state too, like every other field (the gateway's 422).
	err := ValidateCommand(lostCmd("opp-1", "x", CloseLost{Reason: "price", CloseDate: ptr("03/04/2025")}))
	wantRejection(t, err, CodeInvalid, "closeDate")
}

func TestCloseLost(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1", func(c *CreateOpportunity) { c.PipelineID = "enterprise" })
	w.tick()
	d := mustDecide(t, &o, lostCmd("opp-1", "l", CloseLost{Reason: "price", Competitor: "Globex", Note: "too expensive"}), w.ctx())
	n := d.Next
	// The first lost stage of the pipeline, forced 0/omitted.
	if n.Status != StatusLost || n.StageID != "lost_price" || n.Probability != 0 || n.ForecastCategory != CategoryOmitted {
		t.Errorf("lost: %s %s %d/%s", n.Status, n.StageID, n.Probability, n.ForecastCategory)
	}
	if n.LossReason != "price" || n.Competitor != "Globex" || n.LossNote != "too expensive" || n.ClosedAt == nil || !n.ClosedAt.Equal(w.now) {
		t.Errorf("close fields %+v", n)
	}
	ch := changeMap(d.Events[0])
	if ch["lossReason"].After != "price" || ch["competitor"].After != "Globex" || ch["lossNote"].After != "too expensive" {
		t.Errorf("changes %+v", d.Events[0].Changes)
	}
	if d.Events[0].Type != EvtClosedLost || d.Events[0].ToStageID != "lost_price" {
		t.Errorf("event %+v", d.Events[0])
	}
	_, err := Decide(&o, lostCmd("opp-1", "l2", CloseLost{}), w.ctx())
	wantRejection(t, err, CodeInvalid, "reason")
	_, err = Decide(&n, lostCmd("opp-1", "l2", CloseLost{Reason: "again"}), w.ctx())
	wantRejection(t, err, CodeClosed)
}

func TestReopen(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	_, err := Decide(&o, reopenCmd("opp-1", "r", "proposal"), w.ctx())
	wantRejection(t, err, CodeNotClosed)

	w.tick()
	tLost := w.now
	lost := mustDecide(t, &o, lostCmd("opp-1", "l", CloseLost{Reason: "price", Competitor: "Globex", Note: "n"}), w.ctx()).Next
	for _, tc := range []struct {
		stage string
		code  RejectCode
	}{
		{"closed_won", CodeInvalidTransition},
		{"closed_lost", CodeInvalidTransition},
		{"nope", CodeUnknownStage},
	} {
		_, err := Decide(&lost, reopenCmd("opp-1", "r", tc.stage), w.ctx())
		wantRejection(t, err, tc.code, "stageId")
	}
	w.tick()
	tBack := w.now
	d := mustDecide(t, &lost, reopenCmd("opp-1", "r", "proposal"), w.ctx())
	n := d.Next
	if n.Status != StatusOpen || n.StageID != "proposal" || n.Probability != 50 || n.ForecastCategory != CategoryBestCase {
		t.Errorf("reopened: %s %s %d/%s", n.Status, n.StageID, n.Probability, n.ForecastCategory)
	}
	if n.ClosedAt != nil || n.LossReason != "" || n.Competitor != "" || n.LossNote != "" {
		t.Errorf("close fields not cleared: %+v", n)
	}
	ch := changeMap(d.Events[0])
	for _, f := range []string{"closedAt", "lossReason", "competitor", "lossNote"} {
		if c := ch[f]; !c.BeforeSet || c.AfterSet {
			t.Errorf("%s change %+v, want set -> null", f, c)
		}
	}
	if d.Events[0].Type != EvtReopened || d.Events[0].FromStageID != "closed_lost" || d.Events[0].ToStageID != "proposal" {
		t.Errorf("event %+v", d.Events[0])
	}
	wantHistory := []StageVisit{
		{StageID: "qualification", EnteredAt: t0, EnteredBy: "alice", LeftAt: &tLost, LeftBy: "erin"},
		{StageID: "closed_lost", EnteredAt: tLost, EnteredBy: "erin", LeftAt: &tBack, LeftBy: "frank"},
		{StageID: "proposal", EnteredAt: tBack, EnteredBy: "frank"},
	}
	if !reflect.DeepEqual(n.StageHistory, wantHistory) {
		t.Errorf("history %s", show(n.StageHistory))
	}
	// Reopen of a won deal.
	won := mustDecide(t, &n, wonCmd("opp-1", "w", CloseWon{}), w.ctx()).Next
	again := mustDecide(t, &won, reopenCmd("opp-1", "r2", "negotiation"), w.ctx()).Next
	if again.Status != StatusOpen || again.ClosedAt != nil || again.Probability != 80 {
		t.Errorf("reopened won: %+v", again)
	}
}

func TestPipelineConfigurationChanges(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	o = mustDecide(t, &o, stageCmd("opp-1", "s", "proposal"), w.ctx()).Next

	// A new stage default reaches the opportunity with its next accepted change.
	p := DefaultPipeline()
	p.Stages[2].Probability = 55
	w.pipelines["default"] = p
	d := mustDecide(t, &o, updateCmd("opp-1", "u", UpdateOpportunity{NextStep: ptr("call")}), w.ctx())
	if d.Next.Probability != 55 {
		t.Errorf("probability %d, want the new default 55", d.Next.Probability)
	}
	// The current stage removed from the pipeline: updates cannot know the default...
	p.Stages = slices.Delete(p.Stages, 2, 3)
	w.pipelines["default"] = p
	_, err := Decide(&o, updateCmd("opp-1", "u2", UpdateOpportunity{Name: ptr("x")}), w.ctx())
	wantRejection(t, err, CodeUnknownStage, "stageId")
	// ...but the opportunity can be moved out of it or closed.
	mustDecide(t, &o, stageCmd("opp-1", "s2", "negotiation"), w.ctx())
	mustDecide(t, &o, wonCmd("opp-1", "w", CloseWon{}), w.ctx())
	// Its pipeline gone altogether.
	delete(w.pipelines, "default")
	_, err = Decide(&o, stageCmd("opp-1", "s3", "negotiation"), w.ctx())
	wantRejection(t, err, CodeUnknownPipeline)
}

func TestRecentCommandRing(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	for i := range 70 {
		o = mustDecide(t, &o, updateCmd("opp-1", "u"+strconv.Itoa(i), UpdateOpportunity{NextStep: ptr("step " + strconv.Itoa(i))}), w.ctx()).Next
	}
	ring := o.RecentCommandIDs
	if len(ring) != MaxRecentCommandIDs || ring[len(ring)-1] != "u69" || ring[0] != "u6" {
		t.Fatalf("ring has %d ids, first %s last %s; want 64 from u6 to u69", len(ring), ring[0], ring[len(ring)-1])
	}
	// An id that fell out of the ring is no longer recognised: it is decided afresh.
	if d := mustDecide(t, &o, updateCmd("opp-1", "u5", UpdateOpportunity{NextStep: ptr("step 5")}), w.ctx()); d.Duplicate || len(d.Events) != 1 {
		t.Errorf("old id: duplicate=%v events=%d", d.Duplicate, len(d.Events))
	}
	if d := mustDecide(t, &o, updateCmd("opp-1", "u6", UpdateOpportunity{NextStep: ptr("other")}), w.ctx()); !d.Duplicate {
		t.Error("oldest id still in the ring not recognised")
	}
}

// TestDecideDoesNotModifyInput: the processor keeps cur as the stored state; Decide must not
// write into it, even through slices with spare capacity.
func TestDecideDoesNotModifyInput(t *testing.T) {
	w := newWorld()
	o := mustCreate(t, w, "opp-1")
	o = mustDecide(t, &o, updateCmd("opp-1", "u", UpdateOpportunity{Probability: ptr(30)}), w.ctx()).Next
	o.StageHistory = slices.Grow(o.StageHistory, 10)
	o.RecentCommandIDs = slices.Grow(o.RecentCommandIDs, 10)
	before := deepCopy(o)
	cmds := []Command{
		stageCmd("opp-1", "a", "proposal"),
		stageCmd("opp-1", "b", "negotiation"),
		updateCmd("opp-1", "c", UpdateOpportunity{}),
		updateCmd("opp-1", "d", UpdateOpportunity{ClearProbability: true}),
		wonCmd("opp-1", "e", CloseWon{}),
		lostCmd("opp-1", "f", CloseLost{Reason: "r"}),
	}
	var results []Opportunity
	for _, cmd := range cmds {
		w.tick()
		results = append(results, mustDecide(t, &o, cmd, w.ctx()).Next)
	}
	if !reflect.DeepEqual(o, before) {
		t.Fatalf("Decide modified its input:\n%+v\n%+v", o, before)
	}
	// Two decisions from the same state do not share their histories.
	if results[0].StageHistory[1].StageID != "proposal" || results[1].StageHistory[1].StageID != "negotiation" {
		t.Errorf("decisions share backing arrays: %s / %s", show(results[0].StageHistory), show(results[1].StageHistory))
	}
	if results[0].RecentCommandIDs[2] != "a" || results[1].RecentCommandIDs[2] != "b" {
		t.Errorf("decisions share the ring: %v / %v", results[0].RecentCommandIDs, results[1].RecentCommandIDs)
	}
}

func TestDecideNormalisesTime(t *testing.T) {
	w := newWorld()
	// A clock reading with a zone and a monotonic component, as time.Now gives.
	w.now = time.Now().In(time.FixedZone("X", 5*3600+1800))
	d := mustDecide(t, nil, createCmd("opp-1", "c1"), w.ctx())
	for name, tm := range map[string]time.Time{"createdAt": d.Next.CreatedAt, "updatedAt": d.Next.UpdatedAt, "event at": d.Events[0].At} {
		if tm.Location() != time.UTC || tm != tm.Round(0) || !tm.Equal(w.now) {
			t.Errorf("%s = %v, want %v in UTC without monotonic reading", name, tm, w.now)
		}
	}
}

// CheckPipeline replaces Validate, both ways: a configuration it refuses is refused although it
// is valid, and one it accepts is not validated again (the processor's memo relies on it).
func TestDecideUsesCheckPipeline(t *testing.T) {
	w := newWorld()
	dc := w.ctx()
	calls := 0
	dc.CheckPipeline = func(p *Pipeline) error {
		calls++
		return fmt.Errorf("refused by the check")
	}
	_, err := Decide(nil, createCmd("opp-1", "c1"), dc)
	r, ok := AsRejection(err)
	if !ok || r.Code != CodeUnknownPipeline || calls != 1 {
		t.Fatalf("with a refusing check: err %v (calls %d), want %s", err, calls, CodeUnknownPipeline)
	}

	broken := DefaultPipeline()
	broken.ID = "broken"
	broken.Stages = broken.Stages[:1] // no won or lost stage: Validate refuses it
	w.pipelines["broken"] = broken
	dc = w.ctx()
	dc.CheckPipeline = func(*Pipeline) error { return nil }
	d := mustDecide(t, nil, createCmd("opp-2", "c2", func(c *CreateOpportunity) { c.PipelineID = "broken" }), dc)
	if d.Next.PipelineID != "broken" {
		t.Fatalf("with an accepting check: placed in %q", d.Next.PipelineID)
	}
}
