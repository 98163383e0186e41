package codecs

import (
	"fmt"

	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// The events family: OpportunityEvent (event.avsc, hot: every command's events are encoded,
// and the aggregate's history holds them) and OpportunityClosedWonEvent (closed_won.avsc, the
// hand-off to Sales, also an item of the aggregate's won ring, hence hand-written like the
// aggregate).

var events = record[domain.Event]{
	kind:       kindEvent,
	codec:      "EventCodec",
	write:      func(b []byte, ev domain.Event) ([]byte, error) { return appendEvent(b, &ev) },
	read:       func(body []byte) (domain.Event, int, error) { return readBody(body, readEvent) },
	fromNative: eventFromNative,
}

var closedWons = record[domain.ClosedWon]{
	kind:       kindClosedWon,
	codec:      "ClosedWonCodec",
	write:      func(b []byte, c domain.ClosedWon) ([]byte, error) { return appendClosedWon(b, &c), nil },
	read:       func(body []byte) (domain.ClosedWon, int, error) { return readBody(body, readClosedWon) },
	fromNative: closedWonFromNative,
}

// EncodeEvent writes a domain event for the events topic. Its Type must be one of the six
// event types of API.md.
func EncodeEvent(ev domain.Event) ([]byte, error) { return events.encode(&ev) }

// DecodeEvent reads a domain event written with any known event schema.
func DecodeEvent(b []byte) (domain.Event, error) { return events.decode(b) }

// EventCodec is the goka codec of crm.pipeline.opportunity.events: domain.Event values.
type EventCodec struct{}

// Encode encodes a domain.Event or *domain.Event.
func (EventCodec) Encode(value any) ([]byte, error) { return events.gokaEncode(value) }

// Decode returns a *domain.Event.
func (EventCodec) Decode(data []byte) (any, error) { return events.gokaDecode(data) }

// EncodeClosedWon writes the OpportunityClosedWonEvent record Sales reads to create orders.
func EncodeClosedWon(c domain.ClosedWon) ([]byte, error) { return closedWons.encode(&c) }

// DecodeClosedWon reads an OpportunityClosedWonEvent written with any known schema version.
func DecodeClosedWon(b []byte) (domain.ClosedWon, error) { return closedWons.decode(b) }

// ClosedWonCodec is the goka codec of crm.pipeline.opportunity.closed-won: domain.ClosedWon
// values (Avro record OpportunityClosedWonEvent).
type ClosedWonCodec struct{}

// Encode encodes a domain.ClosedWon or *domain.ClosedWon.
func (ClosedWonCodec) Encode(value any) ([]byte, error) { return closedWons.gokaEncode(value) }

// Decode returns a *domain.ClosedWon.
func (ClosedWonCodec) Decode(data []byte) (any, error) { return closedWons.gokaDecode(data) }

// eventTypes is in the order of the EventType enum symbols, which is also the order of the
// body union branches: index i means the same thing in both.
var eventTypes = [...]domain.EventType{
	domain.EvtCreated, domain.EvtUpdated, domain.EvtStageChanged,
	domain.EvtClosedWon, domain.EvtClosedLost, domain.EvtReopened,
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
	minEvent     = 12
	minChange    = 3
	minClosedWon = 14
)

// ---- event: writer, fast reader, generic-map conversion ----

func appendEvent(b []byte, ev *domain.Event) ([]byte, error) {
	idx := eventIndex(ev.Type)
	if idx < 0 {
		return b, fmt.Errorf("%w: event %q has unknown type %q", ErrInvalidValue, ev.EventID, ev.Type)
	}
	b = avro.AppendStr(b, ev.EventID)
	b = avro.AppendLong(b, int64(idx))
	b = avro.AppendStr(b, ev.OpportunityID)
	b = avro.AppendLong(b, ev.Version)
	b = avro.AppendTimestamp(b, ev.At)
	b = avro.AppendStr(b, ev.Actor)
	b = avro.AppendStr(b, ev.CommandID)
	b = avro.AppendStrOrNull(b, ev.FromStageID)
	b = avro.AppendStrOrNull(b, ev.ToStageID)
	b = avro.AppendArrayStart(b, len(ev.Changes))
	for i := range ev.Changes {
		ch := &ev.Changes[i]
		b = avro.AppendStr(b, ch.Field)
		if ch.BeforeSet {
			b = avro.AppendStr(append(b, avro.BranchValue), ch.Before)
		} else {
			b = append(b, avro.BranchNull)
		}
		if ch.AfterSet {
			b = avro.AppendStr(append(b, avro.BranchValue), ch.After)
		} else {
			b = append(b, avro.BranchNull)
		}
	}
	b = avro.AppendArrayEnd(b)
	b = avro.AppendLong(b, ev.Position)
	b = avro.AppendLong(b, int64(idx)) // body: the empty marker record named after the event
	return b, nil
}

func readEvent(d *avro.Decoder, ev *domain.Event) {
	ev.EventID = d.Str()
	t := d.Index(len(eventTypes), "EventType")
	ev.Type = eventTypes[t]
	ev.OpportunityID = d.Str()
	ev.Version = d.Long()
	ev.At = d.Timestamp()
	ev.Actor = d.Str()
	ev.CommandID = d.Str()
	ev.FromStageID = d.SymbolOrEmpty(wellKnown)
	ev.ToStageID = d.SymbolOrEmpty(wellKnown)
	for n := d.Block(minChange); n > 0; n = d.Block(minChange) {
		if ev.Changes == nil {
			ev.Changes = make([]domain.Change, 0, n)
		}
		for i := 0; i < n && d.Err() == nil; i++ {
			var ch domain.Change
			ch.Field = d.Symbol(wellKnown)
			if d.Nullable() {
				ch.Before, ch.BeforeSet = d.Str(), true
			}
			if d.Nullable() {
				ch.After, ch.AfterSet = d.Str(), true
			}
			ev.Changes = append(ev.Changes, ch)
		}
	}
	ev.Position = d.Long()
	if body := d.Index(len(eventTypes), "event body"); body != t && d.Err() == nil {
		d.Fail(fmt.Errorf("%w: type %s but body %s", ErrMalformed, eventTypes[t], eventTypes[body]))
	}
}

func eventFromNative(c *avro.Native, m map[string]any) domain.Event {
	ev := domain.Event{
		EventID:       c.Str(m, "eventId"),
		Type:          domain.EventType(c.Str(m, "type")),
		OpportunityID: c.Str(m, "opportunityId"),
		Version:       c.Long(m, "version"),
		At:            c.Timestamp(m, "at"),
		Actor:         c.Str(m, "actor"),
		CommandID:     c.Str(m, "commandId"),
		FromStageID:   c.StrOrEmpty(m, "fromStageId"),
		ToStageID:     c.StrOrEmpty(m, "toStageId"),
		Position:      c.Long(m, "position"),
	}
	ev.Changes = nativeArray(c, m, "changes", func(c *avro.Native, r map[string]any) domain.Change {
		ch := domain.Change{Field: c.Str(r, "field")}
		if p := c.OptStr(r, "before"); p != nil {
			ch.Before, ch.BeforeSet = *p, true
		}
		if p := c.OptStr(r, "after"); p != nil {
			ch.After, ch.AfterSet = *p, true
		}
		return ch
	})
	return ev
}

// ---- closed-won: writer, fast reader, generic-map conversion ----

func appendClosedWon(b []byte, c *domain.ClosedWon) []byte {
	b = avro.AppendStr(b, c.EventID)
	b = avro.AppendStr(b, c.OpportunityID)
	b = avro.AppendLong(b, c.Version)
	b = avro.AppendStr(b, c.Name)
	b = avro.AppendStr(b, c.AccountID)
	b = appendOptAccount(b, c.Account)
	b = avro.AppendStr(b, c.OwnerID)
	b = avro.AppendStr(b, c.PipelineID)
	b = avro.AppendLong(b, c.Amount)
	b = avro.AppendStr(b, c.Currency)
	b = avro.AppendLong(b, int64(c.CloseDate))
	b = avro.AppendTimestamp(b, c.ClosedAt)
	b = avro.AppendStr(b, c.Actor)
	return avro.AppendStr(b, c.CommandID)
}

func readClosedWon(d *avro.Decoder, c *domain.ClosedWon) {
	c.EventID = d.Str()
	c.OpportunityID = d.Str()
	c.Version = d.Long()
	c.Name = d.Str()
	c.AccountID = d.Str()
	c.Account = readOptAccount(d)
	c.OwnerID = d.Str()
	c.PipelineID = d.Symbol(wellKnown)
	c.Amount = d.Long()
	c.Currency = d.Symbol(wellKnown)
	c.CloseDate = readDate(d)
	c.ClosedAt = d.Timestamp()
	c.Actor = d.Str()
	c.CommandID = d.Str()
}

func closedWonFromNative(c *avro.Native, m map[string]any) domain.ClosedWon {
	return domain.ClosedWon{
		EventID:       c.Str(m, "eventId"),
		OpportunityID: c.Str(m, "opportunityId"),
		Version:       c.Long(m, "version"),
		Name:          c.Str(m, "name"),
		AccountID:     c.Str(m, "accountId"),
		Account:       optAccountFromNative(c, c.OptRecord(m, "account")),
		OwnerID:       c.Str(m, "ownerId"),
		PipelineID:    c.Str(m, "pipelineId"),
		Amount:        c.Long(m, "amount"),
		Currency:      c.Str(m, "currency"),
		CloseDate:     domain.Date(c.Date(m, "closeDate")),
		ClosedAt:      c.Timestamp(m, "closedAt"),
		Actor:         c.Str(m, "actor"),
		CommandID:     c.Str(m, "commandId"),
	}
}
