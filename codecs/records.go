package codecs

import (
	"encoding/binary"
	"fmt"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Hand-written Avro binary writers and readers for the CURRENT schema of each record type.
// Field order here is the field order of the .avsc files; TestFastPathMatchesGoavro checks
// every record against goavro driven by those files, in both directions, so the two cannot
// drift silently. Records written with any other known schema version go through the generic
// reader (generic.go) instead.

// commandTypes and eventTypes are in the order of the CommandType / EventType enum symbols,
// which is also the order of the body union branches: index i means the same thing in both.
var commandTypes = [...]domain.CommandType{
	domain.CmdCreate, domain.CmdUpdate, domain.CmdChangeStage,
	domain.CmdCloseWon, domain.CmdCloseLost, domain.CmdReopen,
}

var eventTypes = [...]domain.EventType{
	domain.EvtCreated, domain.EvtUpdated, domain.EvtStageChanged,
	domain.EvtClosedWon, domain.EvtClosedLost, domain.EvtReopened,
}

func commandIndex(t domain.CommandType) int {
	for i, c := range commandTypes {
		if c == t {
			return i
		}
	}
	return -1
}

func eventIndex(t domain.EventType) int {
	for i, c := range eventTypes {
		if c == t {
			return i
		}
	}
	return -1
}

// Least encoded size in bytes of one array item, used to refuse forged block counts before
// allocating (TestMinItemSizes derives them from the schemas).
const (
	minEvent       = 12
	minChange      = 3
	minStageVisit  = 5
	minStage       = 7
	minFieldError  = 2
	minRejected    = 9
	minClosedWon   = 14
	minStoredDelta = 2
)

// ---- commands ----

func appendCommand(b []byte, c *domain.Command) ([]byte, error) {
	idx := commandIndex(c.Type)
	if idx < 0 {
		return b, fmt.Errorf("%w: command %q has unknown type %q", ErrInvalidValue, c.CommandID, c.Type)
	}
	bodies := [...]bool{c.Create != nil, c.Update != nil, c.ChangeStage != nil, c.CloseWon != nil, c.CloseLost != nil, c.Reopen != nil}
	for i, set := range bodies {
		if set != (i == idx) {
			return b, fmt.Errorf("%w: command %q of type %s must carry exactly the %s body", ErrInvalidValue, c.CommandID, c.Type, c.Type)
		}
	}
	b = appendStr(b, c.CommandID)
	b = appendStr(b, c.OpportunityID)
	b = appendTimestamp(b, c.IssuedAt)
	b = appendStr(b, c.Actor)
	b = appendOptLong(b, c.ExpectedVersion)
	b = appendLong(b, int64(idx)) // type
	b = appendLong(b, int64(idx)) // body branch
	switch idx {
	case 0:
		x := c.Create
		b = appendStr(b, x.Name)
		b = appendStr(b, x.AccountID)
		b = appendStr(b, x.OwnerID)
		b = appendStr(b, x.PipelineID)
		b = appendStr(b, x.StageID)
		b = appendStr(b, x.Amount)
		b = appendStr(b, x.Currency)
		b = appendStr(b, x.CloseDate)
		b = appendOptIntAsLong(b, x.Probability)
		b = appendOptStr(b, x.ForecastCategory)
		b = appendStr(b, x.LeadID)
		b = appendStr(b, x.Source)
		b = appendStr(b, x.NextStep)
	case 1:
		x := c.Update
		b = appendOptStr(b, x.Name)
		b = appendOptStr(b, x.AccountID)
		b = appendOptStr(b, x.OwnerID)
		b = appendOptStr(b, x.Amount)
		b = appendOptStr(b, x.Currency)
		b = appendOptStr(b, x.CloseDate)
		b = appendOptStr(b, x.NextStep)
		b = appendOptIntAsLong(b, x.Probability)
		b = appendBool(b, x.ClearProbability)
		b = appendOptStr(b, x.ForecastCategory)
		b = appendBool(b, x.ClearForecastCategory)
	case 2:
		b = appendStr(b, c.ChangeStage.StageID)
	case 3:
		b = appendOptStr(b, c.CloseWon.CloseDate)
		b = appendOptStr(b, c.CloseWon.Amount)
	case 4:
		x := c.CloseLost
		b = appendStr(b, x.Reason)
		b = appendStr(b, x.Competitor)
		b = appendStr(b, x.Note)
	case 5:
		b = appendStr(b, c.Reopen.StageID)
	}
	return b, nil
}

func readCommand(d *decoder, c *domain.Command) {
	c.CommandID = d.str()
	c.OpportunityID = d.str()
	c.IssuedAt = d.timestamp()
	c.Actor = d.str()
	c.ExpectedVersion = d.optLong()
	t := d.index(len(commandTypes), "CommandType")
	body := d.index(len(commandTypes), "command body")
	if d.err != nil {
		return
	}
	if body != t {
		d.fail(fmt.Errorf("%w: type %s but body %s", ErrMalformed, commandTypes[t], commandTypes[body]))
		return
	}
	c.Type = commandTypes[t]
	switch t {
	case 0:
		b := &domain.CreateOpportunity{}
		b.Name = d.str()
		b.AccountID = d.str()
		b.OwnerID = d.str()
		b.PipelineID = d.symbol()
		b.StageID = d.symbol()
		b.Amount = d.str()
		b.Currency = d.symbol()
		b.CloseDate = d.str()
		b.Probability = d.optLongAsInt()
		b.ForecastCategory = d.optStr()
		b.LeadID = d.str()
		b.Source = d.str()
		b.NextStep = d.str()
		c.Create = b
	case 1:
		b := &domain.UpdateOpportunity{}
		b.Name = d.optStr()
		b.AccountID = d.optStr()
		b.OwnerID = d.optStr()
		b.Amount = d.optStr()
		b.Currency = d.optStr()
		b.CloseDate = d.optStr()
		b.NextStep = d.optStr()
		b.Probability = d.optLongAsInt()
		b.ClearProbability = d.boolean()
		b.ForecastCategory = d.optStr()
		b.ClearForecastCategory = d.boolean()
		c.Update = b
	case 2:
		c.ChangeStage = &domain.ChangeStage{StageID: d.symbol()}
	case 3:
		b := &domain.CloseWon{}
		b.CloseDate = d.optStr()
		b.Amount = d.optStr()
		c.CloseWon = b
	case 4:
		b := &domain.CloseLost{}
		b.Reason = d.str()
		b.Competitor = d.str()
		b.Note = d.str()
		c.CloseLost = b
	case 5:
		c.Reopen = &domain.Reopen{StageID: d.symbol()}
	}
}

// ---- events ----

func appendEvent(b []byte, ev *domain.Event) ([]byte, error) {
	idx := eventIndex(ev.Type)
	if idx < 0 {
		return b, fmt.Errorf("%w: event %q has unknown type %q", ErrInvalidValue, ev.EventID, ev.Type)
	}
	b = appendStr(b, ev.EventID)
	b = appendLong(b, int64(idx))
	b = appendStr(b, ev.OpportunityID)
	b = appendLong(b, ev.Version)
	b = appendTimestamp(b, ev.At)
	b = appendStr(b, ev.Actor)
	b = appendStr(b, ev.CommandID)
	b = appendStrOrNull(b, ev.FromStageID)
	b = appendStrOrNull(b, ev.ToStageID)
	b = appendArrayStart(b, len(ev.Changes))
	for i := range ev.Changes {
		ch := &ev.Changes[i]
		b = appendStr(b, ch.Field)
		if ch.BeforeSet {
			b = appendStr(append(b, branchValue), ch.Before)
		} else {
			b = append(b, branchNull)
		}
		if ch.AfterSet {
			b = appendStr(append(b, branchValue), ch.After)
		} else {
			b = append(b, branchNull)
		}
	}
	b = appendArrayEnd(b)
	b = appendLong(b, ev.Position)
	b = appendLong(b, int64(idx)) // body: the empty marker record named after the event
	return b, nil
}

func readEvent(d *decoder, ev *domain.Event) {
	ev.EventID = d.str()
	t := d.index(len(eventTypes), "EventType")
	ev.Type = eventTypes[t]
	ev.OpportunityID = d.str()
	ev.Version = d.long()
	ev.At = d.timestamp()
	ev.Actor = d.str()
	ev.CommandID = d.str()
	ev.FromStageID = d.symbolOrEmpty()
	ev.ToStageID = d.symbolOrEmpty()
	for n := d.block(minChange); n > 0; n = d.block(minChange) {
		if ev.Changes == nil {
			ev.Changes = make([]domain.Change, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			var ch domain.Change
			ch.Field = d.symbol()
			if d.nullable() {
				ch.Before, ch.BeforeSet = d.str(), true
			}
			if d.nullable() {
				ch.After, ch.AfterSet = d.str(), true
			}
			ev.Changes = append(ev.Changes, ch)
		}
	}
	ev.Position = d.long()
	if body := d.index(len(eventTypes), "event body"); body != t && d.err == nil {
		d.fail(fmt.Errorf("%w: type %s but body %s", ErrMalformed, eventTypes[t], eventTypes[body]))
	}
}

// ---- accounts, overrides, stage visits ----

func appendAccount(b []byte, a *domain.Account) []byte {
	b = appendStr(b, a.ID)
	b = appendStr(b, a.Name)
	b = appendStr(b, a.Segment)
	b = appendStr(b, a.Region)
	return appendStr(b, a.OwnerID)
}

func readAccount(d *decoder, a *domain.Account) {
	a.ID = d.str()
	a.Name = d.str()
	a.Segment = d.str()
	a.Region = d.str()
	a.OwnerID = d.str()
}

func appendOptAccount(b []byte, a *domain.Account) []byte {
	if a == nil {
		return append(b, branchNull)
	}
	return appendAccount(append(b, branchValue), a)
}

func readOptAccount(d *decoder) *domain.Account {
	if !d.nullable() {
		return nil
	}
	a := &domain.Account{}
	readAccount(d, a)
	return a
}

func appendOptOverride(b []byte, o *domain.Override) []byte {
	if o == nil {
		return append(b, branchNull)
	}
	b = appendStr(append(b, branchValue), o.Value)
	b = appendStr(b, o.By)
	return appendTimestamp(b, o.At)
}

func readOptOverride(d *decoder) *domain.Override {
	if !d.nullable() {
		return nil
	}
	o := &domain.Override{}
	o.Value = d.str()
	o.By = d.str()
	o.At = d.timestamp()
	return o
}

// ---- aggregate ----

func appendOpportunity(b []byte, o *domain.Opportunity) ([]byte, error) {
	switch {
	case !fitsInt(o.CloseDatePushCount):
		return b, intError("closeDatePushCount", o.CloseDatePushCount)
	case !fitsInt(o.Probability):
		return b, intError("probability", o.Probability)
	}
	b = appendStr(b, o.ID)
	b = appendLong(b, o.Version)
	b = appendStr(b, o.Name)
	b = appendStr(b, o.AccountID)
	b = appendOptAccount(b, o.Account)
	b = appendStr(b, o.OwnerID)
	b = appendStr(b, o.PipelineID)
	b = appendStr(b, o.StageID)
	b = appendStr(b, string(o.Status))
	b = appendLong(b, o.Amount)
	b = appendStr(b, o.Currency)
	b = appendOptOverride(b, o.ProbabilityOverride)
	b = appendOptOverride(b, o.CategoryOverride)
	b = appendLong(b, int64(o.CloseDate))
	b = appendStr(b, o.NextStep)
	b = appendStr(b, o.LeadID)
	b = appendStr(b, o.Source)
	b = appendTimestamp(b, o.CreatedAt)
	b = appendTimestamp(b, o.UpdatedAt)
	b = appendOptTimestamp(b, o.ClosedAt)
	b = appendStr(b, o.LossReason)
	b = appendStr(b, o.Competitor)
	b = appendStr(b, o.LossNote)
	b = appendTimestamp(b, o.StageEnteredAt)
	b = appendArrayStart(b, len(o.StageHistory))
	for i := range o.StageHistory {
		v := &o.StageHistory[i]
		b = appendStr(b, v.StageID)
		b = appendTimestamp(b, v.EnteredAt)
		b = appendStr(b, v.EnteredBy)
		b = appendOptTimestamp(b, v.LeftAt)
		b = appendStr(b, v.LeftBy)
	}
	b = appendArrayEnd(b)
	b = appendInt(b, o.CloseDatePushCount)
	b = appendInt(b, o.Probability)
	b = appendStr(b, string(o.ForecastCategory))
	return appendStrings(b, o.RecentCommandIDs), nil
}

func readOpportunity(d *decoder, o *domain.Opportunity) {
	o.ID = d.str()
	o.Version = d.long()
	o.Name = d.str()
	o.AccountID = d.str()
	o.Account = readOptAccount(d)
	o.OwnerID = d.str()
	o.PipelineID = d.symbol()
	o.StageID = d.symbol()
	o.Status = domain.Status(d.symbol())
	o.Amount = d.long()
	o.Currency = d.symbol()
	o.ProbabilityOverride = readOptOverride(d)
	o.CategoryOverride = readOptOverride(d)
	o.CloseDate = d.date()
	o.NextStep = d.str()
	o.LeadID = d.str()
	o.Source = d.str()
	o.CreatedAt = d.timestamp()
	o.UpdatedAt = d.timestamp()
	o.ClosedAt = d.optTimestamp()
	o.LossReason = d.str()
	o.Competitor = d.str()
	o.LossNote = d.str()
	o.StageEnteredAt = d.timestamp()
	for n := d.block(minStageVisit); n > 0; n = d.block(minStageVisit) {
		if o.StageHistory == nil {
			o.StageHistory = make([]domain.StageVisit, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			var v domain.StageVisit
			v.StageID = d.symbol()
			v.EnteredAt = d.timestamp()
			v.EnteredBy = d.str()
			v.LeftAt = d.optTimestamp()
			v.LeftBy = d.str()
			o.StageHistory = append(o.StageHistory, v)
		}
	}
	o.CloseDatePushCount = d.int()
	o.Probability = d.int()
	o.ForecastCategory = domain.ForecastCategory(d.symbol())
	o.RecentCommandIDs = d.strings()
}

func appendAggregate(b []byte, a *domain.Aggregate) ([]byte, error) {
	return appendAggregateHistory(b, a, History{})
}

// appendAggregateHistory writes a with h (older events, already encoded) before a.Events in the
// history block.
func appendAggregateHistory(b []byte, a *domain.Aggregate, h History) ([]byte, error) {
	b, err := appendOpportunity(b, &a.State)
	if err != nil {
		return b, err
	}
	// The history is one array block with a negative count and its byte size (both allowed by
	// the Avro spec), so a reader that needs only the state skips it in O(1): the views' state
	// reads and the processor do not decode the events per access.
	if n := h.count + len(a.Events); n > 0 {
		start := len(b)
		b = append(b, h.items...)
		for i := range a.Events {
			if b, err = appendEvent(b, &a.Events[i]); err != nil {
				return b, fmt.Errorf("event %d: %w", i, err)
			}
		}
		var hdr [2 * binary.MaxVarintLen64]byte
		hd := binary.AppendVarint(hdr[:0], int64(-n))
		hd = binary.AppendVarint(hd, int64(len(b)-start))
		b = append(b, hd...)
		copy(b[start+len(hd):], b[start:len(b)-len(hd)])
		copy(b[start:], hd)
	}
	b = appendArrayEnd(b)
	b = appendLong(b, a.Position)
	b = appendArrayStart(b, len(a.Rejections))
	for i := range a.Rejections {
		b = appendRejected(b, &a.Rejections[i])
	}
	b = appendArrayEnd(b)
	b = appendArrayStart(b, len(a.Won))
	for i := range a.Won {
		b = appendClosedWon(b, &a.Won[i])
	}
	b = appendArrayEnd(b)
	b = appendArrayStart(b, len(a.RecentDeltas))
	for i := range a.RecentDeltas {
		b = appendLong(b, a.RecentDeltas[i].Position)
		b = appendStr(b, string(a.RecentDeltas[i].Record))
	}
	b = appendArrayEnd(b)
	return appendBool(b, a.HistoryOnTopic), nil
}

func readAggregate(d *decoder, a *domain.Aggregate) { readAggregateParts(d, a, true, nil) }

// readAggregateParts reads an aggregate, with its history only when withEvents: a block that
// carries its byte size is skipped without being parsed, an older unsized one is decoded and
// dropped.
func readAggregateParts(d *decoder, a *domain.Aggregate, withEvents bool, hist *History) {
	readOpportunity(d, &a.State)
	for {
		n, size := d.sizedBlock(minEvent)
		if n <= 0 {
			break
		}
		if !withEvents && size >= 0 {
			d.skip(int(size))
			continue
		}
		if hist != nil && size >= 0 && len(a.Events) == 0 && hist.count == 0 {
			// Kept encoded: it comes first, so it stays before any later block's events.
			start := d.pos
			d.skip(int(size))
			hist.items, hist.count = d.buf[start:d.pos:d.pos], n
			continue
		}
		if a.Events == nil {
			a.Events = make([]domain.Event, 0, n)
		}
		start := d.pos
		for i := 0; i < n && d.err == nil; i++ {
			a.Events = append(a.Events, domain.Event{})
			readEvent(d, &a.Events[len(a.Events)-1])
		}
		if size >= 0 && d.err == nil && int64(d.pos-start) != size {
			d.fail(fmt.Errorf("%w: events block of %d bytes says %d", ErrMalformed, d.pos-start, size))
		}
	}
	if !withEvents {
		a.Events = nil
	}
	a.Position = d.long()
	for n := d.block(minRejected); n > 0; n = d.block(minRejected) {
		if a.Rejections == nil {
			a.Rejections = make([]domain.RejectedCommand, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			a.Rejections = append(a.Rejections, domain.RejectedCommand{})
			readRejected(d, &a.Rejections[len(a.Rejections)-1])
		}
	}
	for n := d.block(minClosedWon); n > 0; n = d.block(minClosedWon) {
		if a.Won == nil {
			a.Won = make([]domain.ClosedWon, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			a.Won = append(a.Won, domain.ClosedWon{})
			readClosedWon(d, &a.Won[len(a.Won)-1])
		}
	}
	for n := d.block(minStoredDelta); n > 0; n = d.block(minStoredDelta) {
		if a.RecentDeltas == nil {
			a.RecentDeltas = make([]domain.StoredDelta, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			var sd domain.StoredDelta
			sd.Position = d.long()
			if l := d.length(); d.err == nil {
				sd.Record = append([]byte(nil), d.buf[d.pos:d.pos+l]...)
				d.pos += l
			}
			a.RecentDeltas = append(a.RecentDeltas, sd)
		}
	}
	a.HistoryOnTopic = d.boolean()
}

// ---- pipeline, fx rate, rejection, closed-won ----

func appendPipeline(b []byte, p *domain.Pipeline) ([]byte, error) {
	b = appendStr(b, p.ID)
	b = appendStr(b, p.Name)
	b = appendArrayStart(b, len(p.Stages))
	for i := range p.Stages {
		s := &p.Stages[i]
		switch {
		case !fitsInt(s.Probability):
			return b, intError("stage "+s.ID+" probability", s.Probability)
		case !fitsInt(s.StaleAfterDays):
			return b, intError("stage "+s.ID+" staleAfterDays", s.StaleAfterDays)
		}
		b = appendStr(b, s.ID)
		b = appendStr(b, s.Name)
		b = appendInt(b, s.Probability)
		b = appendStr(b, string(s.ForecastCategory))
		b = appendStr(b, string(s.Status))
		b = appendStrings(b, s.RequiredFields)
		b = appendInt(b, s.StaleAfterDays)
	}
	return appendArrayEnd(b), nil
}

func readPipeline(d *decoder, p *domain.Pipeline) {
	p.ID = d.str()
	p.Name = d.str()
	for n := d.block(minStage); n > 0; n = d.block(minStage) {
		if p.Stages == nil {
			p.Stages = make([]domain.Stage, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			var s domain.Stage
			s.ID = d.symbol()
			s.Name = d.str()
			s.Probability = d.int()
			s.ForecastCategory = domain.ForecastCategory(d.symbol())
			s.Status = domain.Status(d.symbol())
			s.RequiredFields = d.strings()
			s.StaleAfterDays = d.int()
			p.Stages = append(p.Stages, s)
		}
	}
}

func appendFXRate(b []byte, r *domain.FXRate) []byte {
	return appendStr(appendStr(b, r.Currency), r.Rate)
}

func readFXRate(d *decoder, r *domain.FXRate) {
	r.Currency = d.symbol()
	r.Rate = d.str()
}

func appendRejected(b []byte, r *domain.RejectedCommand) []byte {
	b = appendStr(b, r.CommandID)
	b = appendStr(b, r.OpportunityID)
	b = appendStr(b, string(r.CommandType))
	b = appendStr(b, r.Code)
	b = appendStr(b, r.Message)
	b = appendArrayStart(b, len(r.Fields))
	for i := range r.Fields {
		b = appendStr(b, r.Fields[i].Field)
		b = appendStr(b, r.Fields[i].Message)
	}
	b = appendArrayEnd(b)
	b = appendStr(b, r.Actor)
	b = appendTimestamp(b, r.At)
	return appendLong(b, r.Position)
}

func readRejected(d *decoder, r *domain.RejectedCommand) {
	r.CommandID = d.str()
	r.OpportunityID = d.str()
	r.CommandType = domain.CommandType(d.symbol())
	r.Code = d.str()
	r.Message = d.str()
	for n := d.block(minFieldError); n > 0; n = d.block(minFieldError) {
		if r.Fields == nil {
			r.Fields = make([]domain.FieldError, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			var f domain.FieldError
			f.Field = d.str()
			f.Message = d.str()
			r.Fields = append(r.Fields, f)
		}
	}
	r.Actor = d.str()
	r.At = d.timestamp()
	r.Position = d.long()
}

func appendClosedWon(b []byte, c *domain.ClosedWon) []byte {
	b = appendStr(b, c.EventID)
	b = appendStr(b, c.OpportunityID)
	b = appendLong(b, c.Version)
	b = appendStr(b, c.Name)
	b = appendStr(b, c.AccountID)
	b = appendOptAccount(b, c.Account)
	b = appendStr(b, c.OwnerID)
	b = appendStr(b, c.PipelineID)
	b = appendLong(b, c.Amount)
	b = appendStr(b, c.Currency)
	b = appendLong(b, int64(c.CloseDate))
	b = appendTimestamp(b, c.ClosedAt)
	b = appendStr(b, c.Actor)
	return appendStr(b, c.CommandID)
}

func readClosedWon(d *decoder, c *domain.ClosedWon) {
	c.EventID = d.str()
	c.OpportunityID = d.str()
	c.Version = d.long()
	c.Name = d.str()
	c.AccountID = d.str()
	c.Account = readOptAccount(d)
	c.OwnerID = d.str()
	c.PipelineID = d.symbol()
	c.Amount = d.long()
	c.Currency = d.symbol()
	c.CloseDate = d.date()
	c.ClosedAt = d.timestamp()
	c.Actor = d.str()
	c.CommandID = d.str()
}

// ---- analytics ----

func appendDelta(b []byte, d *analytics.Delta) []byte {
	b = appendStr(b, d.Bucket)
	b = appendStr(b, d.OpportunityID)
	b = appendLong(b, d.Version)
	b = appendLongMap(b, d.Values)
	b = appendStr(b, d.Source)
	return appendLong(b, d.Position)
}

// readDelta reads every string of the delta through one arena: a delta is a single
// allocation for its strings plus its map.
func readDelta(d *decoder, v *analytics.Delta) {
	var a keyArena
	v.Bucket = d.arenaStr(&a)
	v.OpportunityID = d.arenaStr(&a)
	v.Version = d.long()
	v.Values = d.longMap(&a)
	v.Source = d.arenaStr(&a)
	v.Position = d.long()
}

func appendBucket(b []byte, v *analytics.Bucket) []byte {
	return appendLongMap(appendLongMap(b, v.Values), v.Applied)
}

func readBucket(d *decoder, v *analytics.Bucket) {
	var a keyArena
	v.Values = d.longMap(&a)
	v.Applied = d.longMap(&a)
}

// date reads an Avro date (int, days since 1970-01-01).
func (d *decoder) date() domain.Date { return domain.Date(d.int()) }

// wellKnown holds the strings that recur in almost every record (statuses, categories, type
// names, currency codes, the default pipeline's ids, the field names of changes), so that
// decoding reuses one copy of each instead of allocating it for every record. Lookups with a
// []byte key do not allocate. Read-only after init.
var wellKnown = func() map[string]string {
	m := map[string]string{}
	add := func(s string) { m[s] = s }
	for _, s := range []string{
		string(domain.StatusOpen), string(domain.StatusWon), string(domain.StatusLost),
		string(domain.CategoryPipeline), string(domain.CategoryBestCase), string(domain.CategoryCommit),
		string(domain.CategoryClosed), string(domain.CategoryOmitted),
		"default", "qualification", "discovery", "proposal", "negotiation", "closed_won", "closed_lost",
		"id", "name", "accountId", "account", "ownerId", "pipelineId", "stageId", "stageName", "status",
		"amount", "currency", "probability", "forecastCategory", "closeDate", "nextStep", "leadId",
		"source", "closedAt", "lossReason", "competitor", "note", "lossNote", "reason", "version",
		"createdAt", "updatedAt", "stageEnteredAt", "expectedVersion",
	} {
		add(s)
	}
	for _, t := range commandTypes {
		add(string(t))
	}
	for _, t := range eventTypes {
		add(string(t))
	}
	// Every currency code the domain accepts (ISO 4217 codes are three letters A-Z).
	code := []byte("AAA")
	for a := byte('A'); a <= 'Z'; a++ {
		for b := byte('A'); b <= 'Z'; b++ {
			for c := byte('A'); c <= 'Z'; c++ {
				code[0], code[1], code[2] = a, b, c
				if _, ok := domain.CurrencyExponent(string(code)); ok {
					add(string(code))
				}
			}
		}
	}
	return m
}()

// symbol reads a string that is usually one of wellKnown; others go through the record's
// string cache like any string.
func (d *decoder) symbol() string {
	n := d.length()
	if n == 0 {
		return ""
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	if s, ok := wellKnown[string(b)]; ok {
		return s
	}
	return d.cached(b)
}

// symbolOrEmpty reads ["null","string"] into a string where absent is "", via symbol.
func (d *decoder) symbolOrEmpty() string {
	if !d.nullable() {
		return ""
	}
	return d.symbol()
}
