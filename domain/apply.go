package domain

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// ErrEventOutOfOrder is returned by Apply for an event whose version is not the state's
// version + 1, so a consumer can tell a duplicate or a gap (errors.Is) from a corrupt event.
var ErrEventOutOfOrder = errors.New("event version does not follow the state's version")

// Apply folds one event into the state and returns the new state; on error it returns state
// unchanged. It needs nothing but the event: the event's Changes carry every business field in
// text form (effective probability and category included, so no pipeline lookup is needed),
// and the derived fields follow from them exactly as Decide derives them: Version, UpdatedAt
// and CreatedAt from the event, StageEnteredAt and StageHistory from a stageId change,
// CloseDatePushCount from a later closeDate, Override.By/At from the event's actor and time.
// Replaying Decide's events therefore rebuilds Decide's state (the oracle of the stream
// processors). Account is not in events and is left alone; the command id is added to
// RecentCommandIDs so that a rebuilt state still recognises the commands behind its events.
//
// Apply is strict: each change's Before must match the state, so an event applied to the
// wrong state is an error rather than a silent divergence.
func Apply(state Opportunity, e Event) (Opportunity, error) {
	if e.Version != state.Version+1 {
		return state, fmt.Errorf("apply %s (version %d) to %q at version %d: %w", e.Type, e.Version, state.ID, state.Version, ErrEventOutOfOrder)
	}
	created := e.Type == EvtCreated
	switch {
	case !knownEventType(e.Type):
		return state, fmt.Errorf("apply event %s: unknown event type %q", e.EventID, e.Type)
	case created != (state.Version == 0):
		return state, fmt.Errorf("apply %s to %q at version %d: the created event is the first event and only the first", e.Type, state.ID, state.Version)
	case !created && e.OpportunityID != state.ID:
		return state, fmt.Errorf("apply event %s of opportunity %q to the state of %q", e.EventID, e.OpportunityID, state.ID)
	}
	changes := make(map[string]Change, len(e.Changes))
	for _, c := range e.Changes {
		f, ok := fieldByName(c.Field)
		if !ok {
			return state, fmt.Errorf("apply event %s: unknown field %q", e.EventID, c.Field)
		}
		if _, dup := changes[c.Field]; dup {
			return state, fmt.Errorf("apply event %s: field %q changes twice", e.EventID, c.Field)
		}
		if before, set := f.get(&state); before != c.Before || set != c.BeforeSet {
			return state, fmt.Errorf("apply event %s: field %q is %s in the state, the event says it was %s",
				e.EventID, c.Field, showText(before, set), showText(c.Before, c.BeforeSet))
		}
		changes[c.Field] = c
	}

	at := e.At.Round(0).UTC()
	next := state.clone()
	if created {
		next.ID = e.OpportunityID
		next.CreatedAt = at
	}
	for _, f := range eventFields { // table order: currency is set before amount is parsed in it
		c, ok := changes[f.name]
		if !ok {
			continue
		}
		text := c.After
		if !c.AfterSet {
			text = ""
		}
		if err := f.set(&next, text, c.AfterSet, e.Actor, at); err != nil {
			return state, fmt.Errorf("apply event %s: field %q: %w", e.EventID, f.name, err)
		}
	}
	if next.StageID != state.StageID {
		recordStageEntry(&next, at, e.Actor)
	}
	if !created && next.CloseDate > state.CloseDate {
		next.CloseDatePushCount++
	}
	next.Version = e.Version
	next.UpdatedAt = at
	next.RecentCommandIDs = rememberCommand(state.RecentCommandIDs, e.CommandID)
	return next, nil
}

// Replay rebuilds an opportunity from its whole event log, oldest first: the oracle that a
// stored state must equal.
func Replay(events []Event) (Opportunity, error) {
	var o Opportunity
	for _, e := range events {
		var err error
		if o, err = Apply(o, e); err != nil {
			return Opportunity{}, fmt.Errorf("replay: %w", err)
		}
	}
	return o, nil
}

func knownEventType(t EventType) bool {
	switch t {
	case EvtCreated, EvtUpdated, EvtStageChanged, EvtClosedWon, EvtClosedLost, EvtReopened:
		return true
	}
	return false
}

func showText(v string, set bool) string {
	if !set {
		return "null"
	}
	return strconv.Quote(v)
}

// field is one business field of an opportunity in its event text form (the JSON form of
// API.md). The same table produces Decide's changes (get) and replays them (set), so the two
// cannot disagree on a format.
type field struct {
	name string
	// get returns the text form and whether the field is set (false = null/absent).
	get func(o *Opportunity) (string, bool)
	// set stores the text form; actor and at attribute overrides.
	set func(o *Opportunity, text string, isSet bool, actor string, at time.Time) error
}

// eventFields lists every business field carried by events. Order matters for set: currency
// precedes amount. It is a read-only table.
var eventFields = []field{
	stringField("name", func(o *Opportunity) *string { return &o.Name }),
	stringField("accountId", func(o *Opportunity) *string { return &o.AccountID }),
	stringField("ownerId", func(o *Opportunity) *string { return &o.OwnerID }),
	stringField("pipelineId", func(o *Opportunity) *string { return &o.PipelineID }),
	stringField("stageId", func(o *Opportunity) *string { return &o.StageID }),
	{
		name: "status",
		get:  func(o *Opportunity) (string, bool) { return string(o.Status), o.Status != "" },
		set: func(o *Opportunity, text string, _ bool, _ string, _ time.Time) error {
			switch s := Status(text); s {
			case StatusOpen, StatusWon, StatusLost:
				o.Status = s
				return nil
			}
			return fmt.Errorf("unknown status %q", text)
		},
	},
	{
		name: "currency",
		get:  func(o *Opportunity) (string, bool) { return o.Currency, o.Currency != "" },
		set: func(o *Opportunity, text string, isSet bool, _ string, _ time.Time) error {
			if _, ok := CurrencyExponent(text); !ok && isSet {
				return fmt.Errorf("%w: %q", ErrUnknownCurrency, text)
			}
			o.Currency = text
			return nil
		},
	},
	{
		name: "amount",
		get: func(o *Opportunity) (string, bool) {
			if o.Currency == "" {
				return "", false
			}
			return FormatAmount(o.Amount, o.Currency), true
		},
		set: func(o *Opportunity, text string, isSet bool, _ string, _ time.Time) error {
			if !isSet {
				o.Amount = 0
				return nil
			}
			v, err := ParseAmount(text, o.Currency)
			o.Amount = v
			return err
		},
	},
	{
		name: "closeDate",
		get:  func(o *Opportunity) (string, bool) { return ifExists(o, o.CloseDate.String()) },
		set: func(o *Opportunity, text string, isSet bool, _ string, _ time.Time) error {
			if !isSet {
				o.CloseDate = 0
				return nil
			}
			d, err := ParseDate(text)
			o.CloseDate = d
			return err
		},
	},
	stringField("nextStep", func(o *Opportunity) *string { return &o.NextStep }),
	stringField("leadId", func(o *Opportunity) *string { return &o.LeadID }),
	stringField("source", func(o *Opportunity) *string { return &o.Source }),
	{
		name: "probability",
		get:  func(o *Opportunity) (string, bool) { return ifExists(o, strconv.Itoa(o.Probability)) },
		set: func(o *Opportunity, text string, _ bool, _ string, _ time.Time) error {
			n, err := parseProbability(text)
			o.Probability = n
			return err
		},
	},
	{
		name: "forecastCategory",
		get:  func(o *Opportunity) (string, bool) { return string(o.ForecastCategory), o.ForecastCategory != "" },
		set: func(o *Opportunity, text string, _ bool, _ string, _ time.Time) error {
			if !knownCategory(ForecastCategory(text)) {
				return fmt.Errorf("unknown forecast category %q", text)
			}
			o.ForecastCategory = ForecastCategory(text)
			return nil
		},
	},
	overrideField("probabilityOverride", func(o *Opportunity) **Override { return &o.ProbabilityOverride }, func(text string) error {
		_, err := parseProbability(text)
		return err
	}),
	overrideField("forecastCategoryOverride", func(o *Opportunity) **Override { return &o.CategoryOverride }, func(text string) error {
		if c := ForecastCategory(text); !knownCategory(c) || c == CategoryClosed {
			return fmt.Errorf("%q is not a forecast category an open deal can be given", text)
		}
		return nil
	}),
	{
		name: "closedAt",
		get: func(o *Opportunity) (string, bool) {
			if o.ClosedAt == nil {
				return "", false
			}
			return o.ClosedAt.UTC().Format(time.RFC3339Nano), true
		},
		set: func(o *Opportunity, text string, isSet bool, _ string, _ time.Time) error {
			if !isSet {
				o.ClosedAt = nil
				return nil
			}
			t, err := time.Parse(time.RFC3339Nano, text)
			if err != nil {
				return fmt.Errorf("closedAt %q is not an RFC 3339 timestamp: %w", text, err)
			}
			o.ClosedAt = timePtr(t.UTC())
			return nil
		},
	},
	stringField("lossReason", func(o *Opportunity) *string { return &o.LossReason }),
	stringField("competitor", func(o *Opportunity) *string { return &o.Competitor }),
	stringField("lossNote", func(o *Opportunity) *string { return &o.LossNote }),
}

// fieldByName finds a field of the table.
func fieldByName(name string) (field, bool) {
	i := slices.IndexFunc(eventFields, func(f field) bool { return f.name == name })
	if i < 0 {
		return field{}, false
	}
	return eventFields[i], true
}

// stringField is a text field where "" means absent.
func stringField(name string, ptr func(*Opportunity) *string) field {
	return field{
		name: name,
		get: func(o *Opportunity) (string, bool) {
			v := *ptr(o)
			return v, v != ""
		},
		set: func(o *Opportunity, text string, _ bool, _ string, _ time.Time) error {
			*ptr(o) = text
			return nil
		},
	}
}

// overrideField is a manual override: its text is the value; who set it and when come from
// the event that set it.
func overrideField(name string, ptr func(*Opportunity) **Override, check func(string) error) field {
	return field{
		name: name,
		get: func(o *Opportunity) (string, bool) {
			if ov := *ptr(o); ov != nil {
				return ov.Value, true
			}
			return "", false
		},
		set: func(o *Opportunity, text string, isSet bool, actor string, at time.Time) error {
			if !isSet {
				*ptr(o) = nil
				return nil
			}
			if err := check(text); err != nil {
				return err
			}
			*ptr(o) = &Override{Value: text, By: actor, At: at}
			return nil
		},
	}
}

// ifExists reports a field that every existing opportunity has as set, and as absent on the
// zero state before creation, so that the created event lists it with BeforeSet=false.
func ifExists(o *Opportunity, text string) (string, bool) {
	if o.Status == "" {
		return "", false
	}
	return text, true
}

// parseProbability accepts only the canonical decimal form 0..100, so that a value has one
// text form and before/after comparisons are exact.
func parseProbability(text string) (int, error) {
	n, err := strconv.Atoi(text)
	if err != nil || strconv.Itoa(n) != text || n < 0 || n > 100 {
		return 0, fmt.Errorf("probability %q is not an integer 0..100", text)
	}
	return n, nil
}

// diff lists the fields that differ between two states, sorted by field name, in event text
// form. Comparing text forms is what makes an update that sets a field to its current value a
// no-op.
func diff(before, after *Opportunity) []Change {
	var out []Change
	for _, f := range eventFields {
		b, bs := f.get(before)
		a, as := f.get(after)
		if b == a && bs == as {
			continue
		}
		out = append(out, Change{Field: f.name, Before: b, BeforeSet: bs, After: a, AfterSet: as})
	}
	slices.SortFunc(out, func(x, y Change) int { return cmp.Compare(x.Field, y.Field) })
	return out
}
