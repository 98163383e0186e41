package domain

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lifecycle runs a scripted life of one opportunity with several actors and returns every
// state Decide produced and every event.
func lifecycle(t *testing.T) ([]Opportunity, []Event) {
	t.Helper()
	w := newWorld()
	cmds := []Command{
		createCmd("opp-1", "c0", func(c *CreateOpportunity) {
			c.PipelineID, c.LeadID, c.Source, c.Probability = "enterprise", "lead-1", "referral", ptr(15)
		}),
		updateCmd("opp-1", "c1", UpdateOpportunity{NextStep: ptr("demo"), CloseDate: ptr("2025-08-01"), ForecastCategory: ptr("best_case")}),
		stageCmd("opp-1", "c2", "solution"),
		updateCmd("opp-1", "c3", UpdateOpportunity{Currency: ptr("EUR"), Amount: ptr("9000.10"), ClearProbability: true}),
		stageCmd("opp-1", "c4", "qualify"),
		lostCmd("opp-1", "c5", CloseLost{Reason: "timing", Note: "next year"}),
		reopenCmd("opp-1", "c6", "contract"),
		updateCmd("opp-1", "c7", UpdateOpportunity{Probability: ptr(95), CloseDate: ptr("2025-07-01"), Name: ptr("Renamed")}),
		updateCmd("opp-1", "c8", UpdateOpportunity{Name: ptr("Renamed")}), // no-op
		updateCmd("opp-1", "c9", UpdateOpportunity{Name: ptr("Renamed"), Currency: ptr("EUR")}),
		// Won ten days later, recorded as closed on an earlier day than that (a close date
		// may not be later than the day of the command, nor before the deal was created).
		wonCmd("opp-1", "c10", CloseWon{CloseDate: ptr("2025-03-05"), Amount: ptr("9500")}),
	}
	cmds[5].CloseLost.Competitor = "Initech"
	var states []Opportunity
	var events []Event
	var cur *Opportunity
	for _, cmd := range cmds {
		w.tick()
		if cmd.CommandID == "c10" {
			w.now = w.now.Add(10 * 24 * time.Hour)
		}
		d := mustDecide(t, cur, cmd, w.ctx())
		events = append(events, d.Events...)
		states = append(states, d.Next)
		cur = &d.Next
	}
	return states, events
}

func TestReplayReproducesDecide(t *testing.T) {
	states, events := lifecycle(t)
	if len(events) != len(states)-2 { // c8 and c9 change nothing
		t.Fatalf("%d events for %d commands", len(events), len(states))
	}
	var o Opportunity
	ei := 0
	for i, want := range states {
		if ei < len(events) && events[ei].Version == want.Version && want.Version > o.Version {
			var err error
			if o, err = Apply(o, events[ei]); err != nil {
				t.Fatalf("Apply event %d: %v", ei, err)
			}
			ei++
		}
		if err := sameBusiness(o, want); err != nil {
			t.Fatalf("after command %d: replay differs from Decide: %v", i, err)
		}
	}
	final := states[len(states)-1]
	if final.CloseDatePushCount != 2 || len(final.StageHistory) != 6 || final.Status != StatusWon {
		t.Errorf("final state: pushes %d, %d visits, %s", final.CloseDatePushCount, len(final.StageHistory), final.Status)
	}
	// The overrides carry who set them and when, rebuilt from the events' actor and time.
	if ov := o.CategoryOverride; ov == nil || ov.By != "bob" || !ov.At.Equal(events[1].At) {
		t.Errorf("category override %+v", ov)
	}
	replayed, err := Replay(events)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameBusiness(replayed, final); err != nil {
		t.Fatalf("Replay differs: %v", err)
	}
	// A rebuilt state still knows the commands behind its events.
	if !replayed.ContainsCommand("c10") || !replayed.ContainsCommand("c0") || replayed.ContainsCommand("c8") {
		t.Errorf("replayed ring %v", replayed.RecentCommandIDs)
	}
}

func TestApplyRefusesBrokenStreams(t *testing.T) {
	_, events := lifecycle(t)
	created, err := Apply(Opportunity{}, events[0])
	if err != nil {
		t.Fatal(err)
	}
	second := events[1]
	withChange := func(e Event, field string, mod func(*Change)) Event {
		e.Changes = append([]Change(nil), e.Changes...)
		for i := range e.Changes {
			if e.Changes[i].Field == field {
				mod(&e.Changes[i])
				return e
			}
		}
		t.Fatalf("event %s has no %s change", e.EventID, field)
		return e
	}
	for _, tc := range []struct {
		name  string
		state Opportunity
		event Event
		gap   bool // want ErrEventOutOfOrder
	}{
		{"gap", created, events[2], true},
		{"redelivered event", created, events[0], true},
		{"created event on an existing state", created, func() Event { e := second; e.Type = EvtCreated; return e }(), false},
		{"first event not a create", Opportunity{}, func() Event { e := events[0]; e.Type = EvtUpdated; return e }(), false},
		{"unknown event type", created, func() Event { e := second; e.Type = "OpportunityDeletedEvent"; return e }(), false},
		{"other opportunity", created, func() Event { e := second; e.OpportunityID = "opp-2"; return e }(), false},
		{"unknown field", created, func() Event {
			e := second
			e.Changes = append([]Change{{Field: "budget", After: "1", AfterSet: true}}, e.Changes...)
			return e
		}(), false},
		{"field twice", created, func() Event { e := second; e.Changes = append(e.Changes, e.Changes[0]); return e }(), false},
		{"before does not match", created, withChange(second, "nextStep", func(c *Change) { c.Before, c.BeforeSet = "x", true }), false},
		{"bad date", created, withChange(second, "closeDate", func(c *Change) { c.After = "2025-02-30" }), false},
		{"bad category override", created, withChange(second, "forecastCategoryOverride", func(c *Change) { c.After = "closed" }), false},
		{"bad amount", created, func() Event {
			e := second
			e.Changes = []Change{{Field: "amount", Before: "12500.00", BeforeSet: true, After: "1.234", AfterSet: true}}
			return e
		}(), false},
		{"bad probability", created, func() Event {
			e := second
			e.Changes = []Change{{Field: "probability", Before: "15", BeforeSet: true, After: "015", AfterSet: true}}
			return e
		}(), false},
		{"bad probability override", Opportunity{}, withChange(events[0], "probabilityOverride", func(c *Change) { c.After = "101" }), false},
		{"bad status", created, func() Event {
			e := second
			e.Changes = []Change{{Field: "status", Before: "open", BeforeSet: true, After: "paused", AfterSet: true}}
			return e
		}(), false},
		{"bad closedAt", created, func() Event {
			e := second
			e.Changes = []Change{{Field: "closedAt", After: "yesterday", AfterSet: true}}
			return e
		}(), false},
		{"bad currency", created, func() Event {
			e := second
			e.Changes = []Change{{Field: "currency", Before: "USD", BeforeSet: true, After: "XYZ", AfterSet: true}}
			return e
		}(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := deepCopy(tc.state)
			got, err := Apply(tc.state, tc.event)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.HasPrefix(tc.name, "bad ") && strings.Contains(err.Error(), "the event says") {
				t.Errorf("refused for a before mismatch, not for the bad value: %v", err)
			}
			if errors.Is(err, ErrEventOutOfOrder) != tc.gap {
				t.Errorf("errors.Is(ErrEventOutOfOrder) = %v, want %v (%v)", !tc.gap, tc.gap, err)
			}
			if !reflect.DeepEqual(got, before) || !reflect.DeepEqual(tc.state, before) {
				t.Error("a refused event changed the state")
			}
		})
	}
	if _, err := Replay(events[1:]); err == nil {
		t.Error("Replay without the created event succeeded")
	}
}

// TestApplyDerivedFields pins the fields Apply derives rather than reads.
func TestApplyDerivedFields(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("Z2", 7200))
	e := Event{
		EventID: "o:1", Type: EvtCreated, OpportunityID: "o", Version: 1, At: at, Actor: "ann", CommandID: "c",
		Changes: []Change{
			{Field: "stageId", After: "s1", AfterSet: true},
			{Field: "status", After: "open", AfterSet: true},
			{Field: "currency", After: "JPY", AfterSet: true},
			{Field: "amount", After: "700", AfterSet: true}, // listed before its currency in sorted order
			{Field: "closeDate", After: "2025-05-05", AfterSet: true},
			{Field: "probabilityOverride", After: "33", AfterSet: true},
		},
	}
	o, err := Apply(Opportunity{}, e)
	if err != nil {
		t.Fatal(err)
	}
	utc := at.UTC()
	if o.ID != "o" || o.Version != 1 || o.CreatedAt != utc || o.UpdatedAt != utc || o.StageEnteredAt != utc || o.Amount != 700 {
		t.Errorf("created state %+v", o)
	}
	if want := (&Override{Value: "33", By: "ann", At: utc}); !reflect.DeepEqual(o.ProbabilityOverride, want) {
		t.Errorf("override %+v", o.ProbabilityOverride)
	}
	// A later close date counts as a push, an earlier one does not.
	for i, tc := range []struct {
		date  string
		count int
	}{{"2025-06-01", 1}, {"2025-04-01", 1}, {"2025-04-02", 2}} {
		before := o.CloseDate.String()
		o, err = Apply(o, Event{EventID: "o:" + strconv.Itoa(i+2), Type: EvtUpdated, OpportunityID: "o", Version: o.Version + 1, At: at, Actor: "bo",
			Changes: []Change{{Field: "closeDate", Before: before, BeforeSet: true, After: tc.date, AfterSet: true}}})
		if err != nil || o.CloseDatePushCount != tc.count {
			t.Fatalf("close date %s: count %d, %v", tc.date, o.CloseDatePushCount, err)
		}
	}
	// A stage change closes the open visit.
	later := at.Add(time.Hour)
	o, err = Apply(o, Event{EventID: "o:5", Type: EvtStageChanged, OpportunityID: "o", Version: 5, At: later, Actor: "cy",
		Changes: []Change{{Field: "stageId", Before: "s1", BeforeSet: true, After: "s2", AfterSet: true}}})
	if err != nil {
		t.Fatal(err)
	}
	lu := later.UTC()
	want := []StageVisit{{StageID: "s1", EnteredAt: utc, EnteredBy: "ann", LeftAt: &lu, LeftBy: "cy"}, {StageID: "s2", EnteredAt: lu, EnteredBy: "cy"}}
	if !reflect.DeepEqual(o.StageHistory, want) || o.StageEnteredAt != lu {
		t.Errorf("history %s entered %s", show(o.StageHistory), o.StageEnteredAt)
	}
}
