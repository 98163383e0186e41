package domain

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// MaxRecentCommandIDs bounds Opportunity.RecentCommandIDs. A client retries a command within
// seconds, long before 64 other commands hit the same deal, so the ring catches retries while
// keeping the stored state small.
const MaxRecentCommandIDs = 64

// Decision is the outcome of an accepted command. Next is the new state; Events holds exactly
// one event when something changed and none when the command was a duplicate or an update
// that changed nothing (Next then differs from the input only in bookkeeping: the command id
// ring and, for a no-op, the account snapshot).
type Decision struct {
	Next      Opportunity
	Events    []Event
	Duplicate bool // the command id was applied before; Next is the unchanged state
}

// ContainsCommand reports whether the command id is in the ring of recently applied commands,
// which is how a redelivered or retried command is recognised and applied once.
func (o Opportunity) ContainsCommand(id string) bool {
	return slices.Contains(o.RecentCommandIDs, id)
}

// Decide applies the business rules to one command. cur is nil when the opportunity does not
// exist yet. Decide is pure: it never modifies cur, reads time only from dc.Now, and returns
// either a Decision or a *Rejection saying which rule refused the command. (The only other
// error is a corrupt stored state, e.g. an unparsable override, which no command can fix.)
// A non-nil cur at version 0 counts as missing.
//
// The order of checks is part of the contract: stateless validation, then duplicate command
// id (a retry of an applied command succeeds even though the version has moved on), then
// expectedVersion (0 for a missing opportunity), then existence, then the rules of the
// command type.
func Decide(cur *Opportunity, cmd Command, dc DecideContext) (Decision, error) {
	if err := ValidateCommand(cmd); err != nil {
		return Decision{}, err
	}
	if cur != nil && cur.Version == 0 {
		cur = nil // a zero state (a store's "not found") is a missing opportunity
	}
	if cur != nil && cur.ID != cmd.OpportunityID {
		return Decision{}, reject(CodeInvalid, []FieldError{{Field: "opportunityId", Message: "does not match the state it was routed to"}},
			"command for opportunity %q was given the state of %q", cmd.OpportunityID, cur.ID)
	}
	if cur != nil && cur.ContainsCommand(cmd.CommandID) {
		return Decision{Next: cur.clone(), Duplicate: true}, nil
	}
	var version int64
	if cur != nil {
		version = cur.Version
	}
	if ev := cmd.ExpectedVersion; ev != nil && *ev != version {
		return Decision{}, reject(CodeConflict, nil, "opportunity %q is at version %d, the command expected %d", cmd.OpportunityID, version, *ev)
	}
	d := decider{cmd: cmd, dc: dc, now: dc.Now.Round(0).UTC()}
	var before, next Opportunity
	var err error
	switch {
	case cmd.Type == CmdCreate && cur != nil:
		return Decision{}, reject(CodeAlreadyExists, nil, "opportunity %q already exists", cmd.OpportunityID)
	case cmd.Type == CmdCreate:
		next, err = d.create()
	case cur == nil:
		return Decision{}, reject(CodeNotFound, nil, "opportunity %q does not exist", cmd.OpportunityID)
	default:
		before, next = *cur, cur.clone()
		err = d.change(&next)
	}
	if err != nil {
		return Decision{}, err
	}
	return d.finish(before, next), nil
}

// decider carries one command through its rules.
type decider struct {
	cmd Command
	dc  DecideContext
	now time.Time // dc.Now in UTC without monotonic reading, so that it survives a text round trip
}

// pipeline looks up a pipeline and refuses one that is missing or misconfigured, because every
// rule below relies on a valid stage configuration (an open stage to start in, one won stage,
// forced closed values).
func (d *decider) pipeline(id string) (Pipeline, error) {
	var p *Pipeline
	ok := false
	if d.dc.Pipelines != nil {
		p, ok = d.dc.Pipelines(id)
	}
	if !ok || p == nil {
		return Pipeline{}, reject(CodeUnknownPipeline, []FieldError{{Field: "pipelineId", Message: "unknown pipeline"}},
			"pipeline %q does not exist", id)
	}
	check := (*Pipeline).Validate
	if d.dc.CheckPipeline != nil {
		check = d.dc.CheckPipeline
	}
	if err := check(p); err != nil {
		return Pipeline{}, reject(CodeUnknownPipeline, []FieldError{{Field: "pipelineId", Message: "misconfigured pipeline"}},
			"pipeline %q is misconfigured: %v", id, err)
	}
	return *p, nil
}

func (d *decider) create() (Opportunity, error) {
	c := d.cmd.Create
	pid := c.PipelineID
	if pid == "" {
		pid = DefaultPipelineID
	}
	p, err := d.pipeline(pid)
	if err != nil {
		return Opportunity{}, err
	}
	st, _ := p.FirstOpenStage()
	if c.StageID != "" {
		if st, err = openStage(p, c.StageID, "a new opportunity starts in an open stage"); err != nil {
			return Opportunity{}, err
		}
	}
	amount, err := ParseAmount(c.Amount, c.Currency)
	if err != nil {
		return Opportunity{}, invalidField("amount", err)
	}
	closeDate, err := ParseDate(c.CloseDate)
	if err != nil {
		return Opportunity{}, invalidField("closeDate", err)
	}
	o := Opportunity{
		ID:         d.cmd.OpportunityID,
		Name:       c.Name,
		AccountID:  c.AccountID,
		OwnerID:    c.OwnerID,
		PipelineID: pid,
		Amount:     amount,
		Currency:   c.Currency,
		CloseDate:  closeDate,
		NextStep:   c.NextStep,
		LeadID:     c.LeadID,
		Source:     c.Source,
		CreatedAt:  d.now,
	}
	if c.Probability != nil {
		d.setOverride(&o.ProbabilityOverride, strconv.Itoa(*c.Probability))
	}
	if c.ForecastCategory != nil {
		d.setOverride(&o.CategoryOverride, *c.ForecastCategory)
	}
	d.enterStage(&o, st)
	if err := checkRequired(&o, st); err != nil {
		return Opportunity{}, err
	}
	return o, refreshEffective(&o, p)
}

// change applies a command to an existing opportunity (next is a private copy).
func (d *decider) change(next *Opportunity) error {
	if next.Status != StatusOpen && d.cmd.Type != CmdReopen {
		return reject(CodeClosed, nil, "opportunity %q is %s; a closed opportunity accepts only Reopen", next.ID, next.Status)
	}
	if next.Status == StatusOpen && d.cmd.Type == CmdReopen {
		return reject(CodeNotClosed, nil, "opportunity %q is open; only a closed opportunity can be reopened", next.ID)
	}
	p, err := d.pipeline(next.PipelineID)
	if err != nil {
		return err
	}
	switch d.cmd.Type {
	case CmdUpdate:
		err = d.update(next)
	case CmdChangeStage:
		err = d.changeStage(next, p)
	case CmdCloseWon:
		err = d.closeWon(next, p)
	case CmdCloseLost:
		err = d.closeLost(next, p)
	case CmdReopen:
		err = d.reopen(next, p)
	}
	if err != nil {
		return err
	}
	return refreshEffective(next, p)
}

func (d *decider) update(next *Opportunity) error {
	u := d.cmd.Update
	setIf(&next.Name, u.Name)
	setIf(&next.AccountID, u.AccountID)
	setIf(&next.OwnerID, u.OwnerID)
	setIf(&next.NextStep, u.NextStep)
	currency := next.Currency
	if u.Currency != nil && *u.Currency != currency {
		if u.Amount == nil {
			return reject(CodeInvalid, []FieldError{{Field: "amount", Message: "is required when the currency changes"}},
				"changing the currency from %s to %s needs the amount in %s, so that no amount is reinterpreted", currency, *u.Currency, *u.Currency)
		}
		currency = *u.Currency
	}
	if u.Amount != nil {
		amount, err := ParseAmount(*u.Amount, currency)
		if err != nil {
			return invalidField("amount", err)
		}
		next.Amount = amount
	}
	next.Currency = currency
	if u.CloseDate != nil {
		if err := d.setCloseDate(next, *u.CloseDate); err != nil {
			return err
		}
	}
	switch {
	case u.ClearProbability:
		next.ProbabilityOverride = nil
	case u.Probability != nil:
		d.setOverride(&next.ProbabilityOverride, strconv.Itoa(*u.Probability))
	}
	switch {
	case u.ClearForecastCategory:
		next.CategoryOverride = nil
	case u.ForecastCategory != nil:
		d.setOverride(&next.CategoryOverride, *u.ForecastCategory)
	}
	return nil
}

func (d *decider) changeStage(next *Opportunity, p Pipeline) error {
	id := d.cmd.ChangeStage.StageID
	st, err := openStage(p, id, "ChangeStage moves between open stages; use CloseWon or CloseLost to close")
	if err != nil {
		return err
	}
	if id == next.StageID {
		return reject(CodeInvalidTransition, []FieldError{{Field: "stageId", Message: "is the current stage"}},
			"opportunity %q is already in stage %q", next.ID, id)
	}
	d.enterStage(next, st)
	return checkRequired(next, st)
}

func (d *decider) closeWon(next *Opportunity, p Pipeline) error {
	c := d.cmd.CloseWon
	st, ok := p.WonStage()
	if !ok { // unreachable for a validated pipeline; kept so a bug cannot panic
		return reject(CodeUnknownStage, nil, "pipeline %q has no won stage", p.ID)
	}
	if c.Amount != nil {
		amount, err := ParseAmount(*c.Amount, next.Currency)
		if err != nil {
			return invalidField("amount", err)
		}
		next.Amount = amount
	}
	if err := d.setClosingDate(next, c.CloseDate); err != nil {
		return err
	}
	d.enterStage(next, st)
	next.ClosedAt = timePtr(d.now)
	return checkRequired(next, st)
}

func (d *decider) closeLost(next *Opportunity, p Pipeline) error {
	c := d.cmd.CloseLost
	st, ok := p.LostStage()
	if !ok { // unreachable for a validated pipeline
		return reject(CodeUnknownStage, nil, "pipeline %q has no lost stage", p.ID)
	}
	if err := d.setClosingDate(next, c.CloseDate); err != nil {
		return err
	}
	d.enterStage(next, st)
	next.ClosedAt = timePtr(d.now)
	next.LossReason, next.Competitor, next.LossNote = c.Reason, c.Competitor, c.Note
	return checkRequired(next, st)
}

// reopen returns the deal to an open stage. The close date stays what closing made it (the
// day the deal closed) until an update changes it: the deal's one date does not jump back to a
// plan that closing replaced.
func (d *decider) reopen(next *Opportunity, p Pipeline) error {
	st, err := openStage(p, d.cmd.Reopen.StageID, "a reopened opportunity goes back to an open stage")
	if err != nil {
		return err
	}
	d.enterStage(next, st)
	next.ClosedAt = nil
	next.LossReason, next.Competitor, next.LossNote = "", "", ""
	return checkRequired(next, st)
}

// finish turns the new state into a Decision: it records the command id, refreshes the account
// snapshot and, when a business field changed, bumps the version and builds the one event.
func (d *decider) finish(before, next Opportunity) Decision {
	changes := diff(&before, &next)
	next.Account = nil
	if a := d.dc.Account; a != nil {
		cp := *a
		next.Account = &cp
	}
	next.RecentCommandIDs = rememberCommand(before.RecentCommandIDs, d.cmd.CommandID)
	if len(changes) == 0 {
		return Decision{Next: next}
	}
	next.Version = before.Version + 1
	next.UpdatedAt = d.now
	e := Event{
		EventID:       EventID(next.ID, next.Version),
		Type:          eventTypes[d.cmd.Type],
		OpportunityID: next.ID,
		Version:       next.Version,
		At:            d.now,
		Actor:         d.cmd.Actor,
		CommandID:     d.cmd.CommandID,
		Changes:       changes,
	}
	switch d.cmd.Type {
	case CmdCreate:
		e.ToStageID = next.StageID
	case CmdUpdate: // never moves the stage
	default:
		e.FromStageID, e.ToStageID = before.StageID, next.StageID
	}
	return Decision{Next: next, Events: []Event{e}}
}

// eventTypes maps each command to the one event type it produces.
var eventTypes = map[CommandType]EventType{
	CmdCreate:      EvtCreated,
	CmdUpdate:      EvtUpdated,
	CmdChangeStage: EvtStageChanged,
	CmdCloseWon:    EvtClosedWon,
	CmdCloseLost:   EvtClosedLost,
	CmdReopen:      EvtReopened,
}

// EventID is the deterministic id "<opportunityId>:<version>" that lets consumers drop the
// duplicates at-least-once delivery causes.
func EventID(opportunityID string, version int64) string {
	return fmt.Sprintf("%s:%d", opportunityID, version)
}

// enterStage moves o into st, closing the previous visit, so funnel analytics see every stay
// with who started and ended it. Apply runs the same steps, which keeps replay exact.
func (d *decider) enterStage(o *Opportunity, st Stage) {
	o.StageID = st.ID
	o.Status = st.Status
	recordStageEntry(o, d.now, d.cmd.Actor)
}

// recordStageEntry closes the open visit (if any) and opens one for o.StageID.
func recordStageEntry(o *Opportunity, at time.Time, by string) {
	if n := len(o.StageHistory); n > 0 && o.StageHistory[n-1].LeftAt == nil {
		left := at
		o.StageHistory[n-1].LeftAt = &left
		o.StageHistory[n-1].LeftBy = by
	}
	o.StageHistory = append(o.StageHistory, StageVisit{StageID: o.StageID, EnteredAt: at, EnteredBy: by})
	o.StageEnteredAt = at
}

// setCloseDate sets the close date and counts a slip: a deal whose date keeps moving later is
// a forecasting risk sales managers track.
func (d *decider) setCloseDate(o *Opportunity, text string) error {
	date, err := ParseDate(text)
	if err != nil {
		return invalidField("closeDate", err)
	}
	if date > o.CloseDate {
		o.CloseDatePushCount++
	}
	o.CloseDate = date
	return nil
}

// setClosingDate fixes the close date of a deal being closed: a closed deal has one date,
// closeDate, on which every report places it (API.md, "Closing dates"). Without a date in the
// body it is the UTC day the command is decided on (its issuedAt); a date in the body may be
// earlier (a deal recorded after the fact) but not later, since a deal cannot have closed in
// the future, and not before the UTC day the deal was created. Either refusal names the field
// closeDate. Moving the date later counts as a slip, as in setCloseDate.
func (d *decider) setClosingDate(o *Opportunity, text *string) error {
	today := DateOf(d.now)
	date := today
	if text != nil {
		var err error
		if date, err = ParseDate(*text); err != nil {
			return invalidField("closeDate", err)
		}
		if date > today {
			return reject(CodeCloseDateInFuture, []FieldError{{Field: "closeDate", Message: "is after " + today.String() + ", the day the deal is closed on"}},
				"closeDate %s of opportunity %q is after %s, the day it is closed on", date, o.ID, today)
		}
		if created := DateOf(o.CreatedAt); date < created {
			return reject(CodeCloseDateBeforeCreated, []FieldError{{Field: "closeDate", Message: "is before " + created.String() + ", the day the deal was created"}},
				"closeDate %s of opportunity %q is before %s, the day it was created", date, o.ID, created)
		}
	}
	if date > o.CloseDate {
		o.CloseDatePushCount++
	}
	o.CloseDate = date
	return nil
}

// setOverride records a manual value with its author. Setting the value it already has keeps
// the original author and time: nothing changed, so there is nothing to attribute.
func (d *decider) setOverride(slot **Override, value string) {
	if *slot != nil && (*slot).Value == value {
		return
	}
	*slot = &Override{Value: value, By: d.cmd.Actor, At: d.now}
}

// refreshEffective computes the effective probability and category: the forced values of a
// closed deal, else the manual override, else the stage default. Overrides are kept on close
// so that a reopened deal gets them back.
func refreshEffective(o *Opportunity, p Pipeline) error {
	switch o.Status {
	case StatusWon:
		o.Probability, o.ForecastCategory = 100, CategoryClosed
		return nil
	case StatusLost:
		o.Probability, o.ForecastCategory = 0, CategoryOmitted
		return nil
	}
	st, _, ok := p.Stage(o.StageID)
	if !ok {
		return reject(CodeUnknownStage, []FieldError{{Field: "stageId", Message: "no longer exists in the pipeline"}},
			"stage %q of opportunity %q no longer exists in pipeline %q; move the opportunity with ChangeStage first", o.StageID, o.ID, p.ID)
	}
	o.Probability, o.ForecastCategory = st.Probability, st.ForecastCategory
	if ov := o.ProbabilityOverride; ov != nil {
		n, err := strconv.Atoi(ov.Value)
		if err != nil {
			return fmt.Errorf("opportunity %q: stored probability override %q: %w", o.ID, ov.Value, err)
		}
		o.Probability = n
	}
	if ov := o.CategoryOverride; ov != nil {
		o.ForecastCategory = ForecastCategory(ov.Value)
	}
	return nil
}

// openStage finds a stage that an opportunity may enter by ChangeStage, create or Reopen.
func openStage(p Pipeline, id, why string) (Stage, error) {
	st, _, ok := p.Stage(id)
	if !ok {
		return Stage{}, reject(CodeUnknownStage, []FieldError{{Field: "stageId", Message: "unknown stage"}},
			"pipeline %q has no stage %q", p.ID, id)
	}
	if st.Status != StatusOpen {
		return Stage{}, reject(CodeInvalidTransition, []FieldError{{Field: "stageId", Message: "is a " + string(st.Status) + " stage"}},
			"stage %q is a %s stage: %s", id, st.Status, why)
	}
	return st, nil
}

// checkRequired refuses entering st while a field it requires is empty, listing every missing
// field so the user can fill them in one go.
func checkRequired(o *Opportunity, st Stage) error {
	var missing []FieldError
	for _, f := range st.RequiredFields {
		if !requiredFieldSet(o, f) {
			missing = append(missing, FieldError{Field: f, Message: fmt.Sprintf("is required to enter stage %q", st.ID)})
		}
	}
	if len(missing) > 0 {
		return reject(CodeRequiredFields, missing, "stage %q requires %d more field(s)", st.ID, len(missing))
	}
	return nil
}

// requiredFieldSet says whether a field counts as filled in for a stage's requiredFields.
func requiredFieldSet(o *Opportunity, name string) bool {
	switch name {
	case "name":
		return !isBlank(o.Name)
	case "accountId":
		return !isBlank(o.AccountID)
	case "ownerId":
		return !isBlank(o.OwnerID)
	case "amount":
		return o.Amount > 0
	case "currency":
		return o.Currency != ""
	case "closeDate":
		return true // required on create and never cleared
	case "nextStep":
		return !isBlank(o.NextStep)
	case "leadId":
		return !isBlank(o.LeadID)
	case "source":
		return !isBlank(o.Source)
	}
	return false // Pipeline.Validate refuses other names
}

// rememberCommand appends id to the ring, keeping the newest MaxRecentCommandIDs. It always
// returns a new slice so that the caller's state is never modified through a shared array.
func rememberCommand(ring []string, id string) []string {
	if len(ring) >= MaxRecentCommandIDs {
		ring = ring[len(ring)-MaxRecentCommandIDs+1:]
	}
	out := make([]string, 0, len(ring)+1)
	return append(append(out, ring...), id)
}

// clone copies the slices of o so that the copy can be changed without touching o. Pointer
// fields (Account, overrides, ClosedAt, LeftAt) are treated as immutable: they are replaced,
// never written through.
func (o Opportunity) clone() Opportunity {
	o.StageHistory = slices.Clone(o.StageHistory)
	o.RecentCommandIDs = slices.Clone(o.RecentCommandIDs)
	return o
}

func setIf(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

// invalidField wraps a parse error of one field as a CodeInvalid rejection.
func invalidField(field string, err error) error {
	return reject(CodeInvalid, []FieldError{{Field: field, Message: err.Error()}}, "%s: %v", field, err)
}

func timePtr(t time.Time) *time.Time { return &t }
