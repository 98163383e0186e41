package codecs

import (
	"errors"
	"fmt"

	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// The aggregate family: OpportunityAggregate (aggregate.avsc), the opportunity processor's
// group-table value, decoded and encoded for every command: an opportunity's state, its
// recent events (History), the rejections and closed-won rings, recent deltas and the
// history-on-topic flag.

var aggregates = record[domain.Aggregate]{
	kind:       kindAggregate,
	codec:      "AggregateCodec",
	write:      func(b []byte, a domain.Aggregate) ([]byte, error) { return appendAggregate(b, &a) },
	read:       func(body []byte) (domain.Aggregate, int, error) { return readBody(body, readAggregate) },
	fromNative: aggregateFromNative,
}

// EncodeAggregate writes the group table value: an opportunity's state, its events and the
// last applied input position.
func EncodeAggregate(a domain.Aggregate) ([]byte, error) { return aggregates.encode(&a) }

// DecodeAggregate reads a group table value written with any known aggregate schema.
func DecodeAggregate(b []byte) (domain.Aggregate, error) { return aggregates.decode(b) }

// DecodeAggregateState reads a group table value without its event history (Events is nil):
// what a state read needs. The current writer puts the events in one sized block, which is
// skipped without being parsed; values of older writers (whose events are the whole history)
// are decoded whole and the events dropped.
func DecodeAggregateState(b []byte) (domain.Aggregate, error) {
	var a domain.Aggregate
	err := aggregates.decodeInto(b, &a, func(body []byte) (domain.Aggregate, int, error) {
		return readBody(body, readAggregateState)
	})
	a.Events = nil
	return a, err
}

// DecodeAggregateHistory reads a group table value with its history left encoded: the returned
// aggregate's Events holds only events the value stores after that block (none from this
// package's writer); everything else is decoded. An older writer's unsized history is decoded
// into Events and the History is empty. The History refers to b.
func DecodeAggregateHistory(b []byte) (domain.Aggregate, History, error) {
	var a domain.Aggregate
	var h History
	err := aggregates.decodeInto(b, &a, func(body []byte) (v domain.Aggregate, rest int, err error) {
		d := avro.NewDecoder(body)
		readAggregateParts(&d, &v, true, &h)
		return v, d.Rest(), d.Err()
	})
	return a, h, err
}

// EncodeAggregateHistory writes the group table value of a whose history is h followed by
// a.Events: a command appends its events without the older ones being decoded.
func EncodeAggregateHistory(a domain.Aggregate, h History) ([]byte, error) {
	return aggregates.encodeWith(&a, func(b []byte, v domain.Aggregate) ([]byte, error) {
		return appendAggregateHistory(b, &v, h)
	})
}

// AggregateCodec is the goka codec of the group table (crm-pipeline-cg-table):
// domain.Aggregate values.
type AggregateCodec struct{}

// Encode encodes a domain.Aggregate or *domain.Aggregate.
func (AggregateCodec) Encode(value any) ([]byte, error) { return aggregates.gokaEncode(value) }

// Decode returns a *domain.Aggregate.
func (AggregateCodec) Decode(data []byte) (any, error) { return aggregates.gokaDecode(data) }

// History is the older part of a stored aggregate's event history, still encoded: what the
// opportunity processor carries from one command to the next without decoding it (it only
// appends). Its zero value is an empty history.
type History struct {
	items []byte // the encoded events, oldest first
	count int
}

// Len is the number of events in h.
func (h History) Len() int { return h.count }

// Events decodes h.
func (h History) Events() ([]domain.Event, error) {
	if h.count == 0 {
		return nil, nil
	}
	d := avro.NewDecoder(h.items)
	out := make([]domain.Event, h.count)
	for i := range out {
		readEvent(&d, &out[i])
	}
	if err := d.End("the history's events"); err != nil {
		return nil, fmt.Errorf("codecs: decode history: %w", err)
	}
	return out, nil
}

// FirstPosition is the input position of h's oldest event, parsing only that event.
func (h History) FirstPosition() (int64, error) {
	if h.count == 0 {
		return 0, errors.New("codecs: empty history has no first position")
	}
	d := avro.NewDecoder(h.items)
	var e domain.Event
	readEvent(&d, &e)
	if err := d.Err(); err != nil {
		return 0, fmt.Errorf("codecs: read history: %w", err)
	}
	return e.Position, nil
}

// DropOldest removes the n oldest events (all of them when n >= Len), parsing only those.
func (h *History) DropOldest(n int) error {
	if n >= h.count {
		*h = History{}
		return nil
	}
	d := avro.NewDecoder(h.items)
	var e domain.Event
	for i := 0; i < n; i++ {
		readEvent(&d, &e)
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("codecs: trim history: %w", err)
	}
	h.items, h.count = h.items[d.Pos():], h.count-n
	return nil
}

// Least encoded size in bytes of one array item, used to refuse forged block counts before
// allocating (TestMinItemSizes derives them from the schemas).
const (
	minStageVisit  = 5
	minStoredDelta = 2
	// minFingerprint is the smallest CommandFingerprint: an empty id and two one-byte longs.
	minFingerprint = 3
)

// ---- aggregate: writer, fast reader, generic-map conversion ----

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
		b = avro.AppendSizedBlock(b, start, n)
	}
	b = avro.AppendArrayEnd(b)
	b = avro.AppendLong(b, a.Position)
	b = avro.AppendArrayStart(b, len(a.Rejections))
	for i := range a.Rejections {
		b = appendRejected(b, &a.Rejections[i])
	}
	b = avro.AppendArrayEnd(b)
	b = avro.AppendArrayStart(b, len(a.Won))
	for i := range a.Won {
		b = appendClosedWon(b, &a.Won[i])
	}
	b = avro.AppendArrayEnd(b)
	b = avro.AppendArrayStart(b, len(a.RecentDeltas))
	for i := range a.RecentDeltas {
		b = avro.AppendLong(b, a.RecentDeltas[i].Position)
		b = avro.AppendBytes(b, a.RecentDeltas[i].Record)
	}
	b = avro.AppendArrayEnd(b)
	b = avro.AppendBool(b, a.HistoryOnTopic)
	b = avro.AppendArrayStart(b, len(a.Fingerprints))
	for i := range a.Fingerprints {
		b = avro.AppendStr(b, a.Fingerprints[i].CommandID)
		b = avro.AppendLong(b, int64(a.Fingerprints[i].Fingerprint))
		b = avro.AppendLong(b, a.Fingerprints[i].Position)
	}
	return avro.AppendArrayEnd(b), nil
}

func readAggregate(d *avro.Decoder, a *domain.Aggregate) { readAggregateParts(d, a, true, nil) }

func readAggregateState(d *avro.Decoder, a *domain.Aggregate) { readAggregateParts(d, a, false, nil) }

// readAggregateParts reads an aggregate, with its history only when withEvents: a block that
// carries its byte size is skipped without being parsed, an older unsized one is decoded and
// dropped. With hist, the first sized block is kept encoded in it instead of decoded.
func readAggregateParts(d *avro.Decoder, a *domain.Aggregate, withEvents bool, hist *History) {
	readOpportunity(d, &a.State)
	for {
		n, size := d.SizedBlock(minEvent)
		if n <= 0 {
			break
		}
		if !withEvents && size >= 0 {
			d.Skip(int(size))
			continue
		}
		if hist != nil && size >= 0 && len(a.Events) == 0 && hist.count == 0 {
			// Kept encoded: it comes first, so it stays before any later block's events.
			hist.items, hist.count = d.Raw(int(size)), n
			continue
		}
		if a.Events == nil {
			a.Events = make([]domain.Event, 0, n)
		}
		start := d.Pos()
		for i := 0; i < n && d.Err() == nil; i++ {
			a.Events = append(a.Events, domain.Event{})
			readEvent(d, &a.Events[len(a.Events)-1])
		}
		if size >= 0 && d.Err() == nil && int64(d.Pos()-start) != size {
			d.Fail(fmt.Errorf("%w: events block of %d bytes says %d", ErrMalformed, d.Pos()-start, size))
		}
	}
	if !withEvents {
		a.Events = nil
	}
	a.Position = d.Long()
	for n := d.Block(minRejected); n > 0; n = d.Block(minRejected) {
		if a.Rejections == nil {
			a.Rejections = make([]domain.RejectedCommand, 0, n)
		}
		for i := 0; i < n && d.Err() == nil; i++ {
			a.Rejections = append(a.Rejections, domain.RejectedCommand{})
			readRejected(d, &a.Rejections[len(a.Rejections)-1])
		}
	}
	for n := d.Block(minClosedWon); n > 0; n = d.Block(minClosedWon) {
		if a.Won == nil {
			a.Won = make([]domain.ClosedWon, 0, n)
		}
		for i := 0; i < n && d.Err() == nil; i++ {
			a.Won = append(a.Won, domain.ClosedWon{})
			readClosedWon(d, &a.Won[len(a.Won)-1])
		}
	}
	for n := d.Block(minStoredDelta); n > 0; n = d.Block(minStoredDelta) {
		if a.RecentDeltas == nil {
			a.RecentDeltas = make([]domain.StoredDelta, 0, n)
		}
		for i := 0; i < n && d.Err() == nil; i++ {
			var sd domain.StoredDelta
			sd.Position = d.Long()
			sd.Record = d.Bytes()
			a.RecentDeltas = append(a.RecentDeltas, sd)
		}
	}
	a.HistoryOnTopic = d.Bool()
	for n := d.Block(minFingerprint); n > 0; n = d.Block(minFingerprint) {
		if a.Fingerprints == nil {
			a.Fingerprints = make([]domain.CommandFingerprint, 0, n)
		}
		for i := 0; i < n && d.Err() == nil; i++ {
			var f domain.CommandFingerprint
			f.CommandID = d.Str()
			f.Fingerprint = uint64(d.Long())
			f.Position = d.Long()
			a.Fingerprints = append(a.Fingerprints, f)
		}
	}
}

func aggregateFromNative(c *avro.Native, m map[string]any) domain.Aggregate {
	a := domain.Aggregate{Position: c.Long(m, "position")}
	if s, ok := m["state"]; ok {
		a.State = opportunityFromNative(c, c.Record("state", s))
	}
	if items := c.Array(m, "events"); len(items) > 0 {
		a.Events = make([]domain.Event, len(items))
		for i, it := range items {
			a.Events[i] = eventFromNative(c, c.Record("events", it))
		}
	}
	if items := c.Array(m, "rejections"); len(items) > 0 {
		a.Rejections = make([]domain.RejectedCommand, len(items))
		for i, it := range items {
			a.Rejections[i] = rejectedFromNative(c, c.Record("rejections", it))
		}
	}
	if items := c.Array(m, "won"); len(items) > 0 {
		a.Won = make([]domain.ClosedWon, len(items))
		for i, it := range items {
			a.Won[i] = closedWonFromNative(c, c.Record("won", it))
		}
	}
	if items := c.Array(m, "recentDeltas"); len(items) > 0 {
		a.RecentDeltas = make([]domain.StoredDelta, len(items))
		for i, it := range items {
			r := c.Record("recentDeltas", it)
			a.RecentDeltas[i] = domain.StoredDelta{Position: c.Long(r, "position"), Record: c.Bytes(r, "record")}
		}
	}
	a.HistoryOnTopic = c.Bool(m, "historyOnTopic")
	if items := c.Array(m, "fingerprints"); len(items) > 0 {
		a.Fingerprints = make([]domain.CommandFingerprint, len(items))
		for i, it := range items {
			r := c.Record("fingerprints", it)
			a.Fingerprints[i] = domain.CommandFingerprint{CommandID: c.Str(r, "commandId"), Fingerprint: uint64(c.Long(r, "fingerprint")),
				Position: c.Long(r, "position")}
		}
	}
	return a
}

// ---- the opportunity (the aggregate's state) and its overrides ----

func appendOpportunity(b []byte, o *domain.Opportunity) ([]byte, error) {
	switch {
	case !avro.FitsInt(o.CloseDatePushCount):
		return b, avro.IntError("closeDatePushCount", o.CloseDatePushCount)
	case !avro.FitsInt(o.Probability):
		return b, avro.IntError("probability", o.Probability)
	}
	b = avro.AppendStr(b, o.ID)
	b = avro.AppendLong(b, o.Version)
	b = avro.AppendStr(b, o.Name)
	b = avro.AppendStr(b, o.AccountID)
	b = appendOptAccount(b, o.Account)
	b = avro.AppendStr(b, o.OwnerID)
	b = avro.AppendStr(b, o.PipelineID)
	b = avro.AppendStr(b, o.StageID)
	b = avro.AppendStr(b, string(o.Status))
	b = avro.AppendLong(b, o.Amount)
	b = avro.AppendStr(b, o.Currency)
	b = appendOptOverride(b, o.ProbabilityOverride)
	b = appendOptOverride(b, o.CategoryOverride)
	b = avro.AppendLong(b, int64(o.CloseDate))
	b = avro.AppendStr(b, o.NextStep)
	b = avro.AppendStr(b, o.LeadID)
	b = avro.AppendStr(b, o.Source)
	b = avro.AppendTimestamp(b, o.CreatedAt)
	b = avro.AppendTimestamp(b, o.UpdatedAt)
	b = avro.AppendOptTimestamp(b, o.ClosedAt)
	b = avro.AppendStr(b, o.LossReason)
	b = avro.AppendStr(b, o.Competitor)
	b = avro.AppendStr(b, o.LossNote)
	b = avro.AppendTimestamp(b, o.StageEnteredAt)
	b = avro.AppendArrayStart(b, len(o.StageHistory))
	for i := range o.StageHistory {
		v := &o.StageHistory[i]
		b = avro.AppendStr(b, v.StageID)
		b = avro.AppendTimestamp(b, v.EnteredAt)
		b = avro.AppendStr(b, v.EnteredBy)
		b = avro.AppendOptTimestamp(b, v.LeftAt)
		b = avro.AppendStr(b, v.LeftBy)
	}
	b = avro.AppendArrayEnd(b)
	b = avro.AppendInt(b, o.CloseDatePushCount)
	b = avro.AppendInt(b, o.Probability)
	b = avro.AppendStr(b, string(o.ForecastCategory))
	return avro.AppendStrings(b, o.RecentCommandIDs), nil
}

func readOpportunity(d *avro.Decoder, o *domain.Opportunity) {
	o.ID = d.Str()
	o.Version = d.Long()
	o.Name = d.Str()
	o.AccountID = d.Str()
	o.Account = readOptAccount(d)
	o.OwnerID = d.Str()
	o.PipelineID = d.Symbol(wellKnown)
	o.StageID = d.Symbol(wellKnown)
	o.Status = domain.Status(d.Symbol(wellKnown))
	o.Amount = d.Long()
	o.Currency = d.Symbol(wellKnown)
	o.ProbabilityOverride = readOptOverride(d)
	o.CategoryOverride = readOptOverride(d)
	o.CloseDate = readDate(d)
	o.NextStep = d.Str()
	o.LeadID = d.Str()
	o.Source = d.Str()
	o.CreatedAt = d.Timestamp()
	o.UpdatedAt = d.Timestamp()
	o.ClosedAt = d.OptTimestamp()
	o.LossReason = d.Str()
	o.Competitor = d.Str()
	o.LossNote = d.Str()
	o.StageEnteredAt = d.Timestamp()
	for n := d.Block(minStageVisit); n > 0; n = d.Block(minStageVisit) {
		if o.StageHistory == nil {
			o.StageHistory = make([]domain.StageVisit, 0, n)
		}
		for i := 0; i < n && d.Err() == nil; i++ {
			var v domain.StageVisit
			v.StageID = d.Symbol(wellKnown)
			v.EnteredAt = d.Timestamp()
			v.EnteredBy = d.Str()
			v.LeftAt = d.OptTimestamp()
			v.LeftBy = d.Str()
			o.StageHistory = append(o.StageHistory, v)
		}
	}
	o.CloseDatePushCount = d.Int()
	o.Probability = d.Int()
	o.ForecastCategory = domain.ForecastCategory(d.Symbol(wellKnown))
	o.RecentCommandIDs = d.Strings()
}

func opportunityFromNative(c *avro.Native, m map[string]any) domain.Opportunity {
	o := domain.Opportunity{
		ID:                  c.Str(m, "id"),
		Version:             c.Long(m, "version"),
		Name:                c.Str(m, "name"),
		AccountID:           c.Str(m, "accountId"),
		Account:             optAccountFromNative(c, c.OptRecord(m, "account")),
		OwnerID:             c.Str(m, "ownerId"),
		PipelineID:          c.Str(m, "pipelineId"),
		StageID:             c.Str(m, "stageId"),
		Status:              domain.Status(c.Str(m, "status")),
		Amount:              c.Long(m, "amount"),
		Currency:            c.Str(m, "currency"),
		ProbabilityOverride: overrideFromNative(c, c.OptRecord(m, "probabilityOverride")),
		CategoryOverride:    overrideFromNative(c, c.OptRecord(m, "categoryOverride")),
		CloseDate:           domain.Date(c.Date(m, "closeDate")),
		NextStep:            c.Str(m, "nextStep"),
		LeadID:              c.Str(m, "leadId"),
		Source:              c.Str(m, "source"),
		CreatedAt:           c.Timestamp(m, "createdAt"),
		UpdatedAt:           c.Timestamp(m, "updatedAt"),
		ClosedAt:            c.OptTimestamp(m, "closedAt"),
		LossReason:          c.Str(m, "lossReason"),
		Competitor:          c.Str(m, "competitor"),
		LossNote:            c.Str(m, "lossNote"),
		StageEnteredAt:      c.Timestamp(m, "stageEnteredAt"),
		CloseDatePushCount:  c.Int(m, "closeDatePushCount"),
		Probability:         c.Int(m, "probability"),
		ForecastCategory:    domain.ForecastCategory(c.Str(m, "forecastCategory")),
		RecentCommandIDs:    c.Strings(m, "recentCommandIds"),
	}
	if items := c.Array(m, "stageHistory"); len(items) > 0 {
		o.StageHistory = make([]domain.StageVisit, len(items))
		for i, it := range items {
			r := c.Record("stageHistory", it)
			o.StageHistory[i] = domain.StageVisit{
				StageID:   c.Str(r, "stageId"),
				EnteredAt: c.Timestamp(r, "enteredAt"),
				EnteredBy: c.Str(r, "enteredBy"),
				LeftAt:    c.OptTimestamp(r, "leftAt"),
				LeftBy:    c.Str(r, "leftBy"),
			}
		}
	}
	return o
}

func appendOptOverride(b []byte, o *domain.Override) []byte {
	if o == nil {
		return append(b, avro.BranchNull)
	}
	b = avro.AppendStr(append(b, avro.BranchValue), o.Value)
	b = avro.AppendStr(b, o.By)
	return avro.AppendTimestamp(b, o.At)
}

func readOptOverride(d *avro.Decoder) *domain.Override {
	if !d.Nullable() {
		return nil
	}
	o := &domain.Override{}
	o.Value = d.Str()
	o.By = d.Str()
	o.At = d.Timestamp()
	return o
}

func overrideFromNative(c *avro.Native, r map[string]any) *domain.Override {
	if r == nil {
		return nil
	}
	return &domain.Override{Value: c.Str(r, "value"), By: c.Str(r, "by"), At: c.Timestamp(r, "at")}
}
