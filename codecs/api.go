package codecs

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// openRecord checks the single-object header and finds the writer schema.
func openRecord(b []byte, kind recordKind) (*schemaEntry, []byte, error) {
	if len(b) >= headerLen && b[0] == 0xC3 && b[1] == 0x01 {
		fp := binary.LittleEndian.Uint64(b[2:headerLen])
		e := currentSchema[kind]
		if fp != e.fingerprint {
			var ok bool
			if e, ok = byFingerprint[fp]; !ok {
				return nil, nil, &DecodeError{Record: kind.String(), Fingerprint: fp,
					Err: fmt.Errorf("%w: %016x is none of the %d schemas this build knows", ErrUnknownSchema, fp, len(byFingerprint))}
			}
			if e.kind != kind {
				return nil, nil, &DecodeError{Record: kind.String(), Fingerprint: fp, Schema: e.path,
					Err: fmt.Errorf("%w: the record is a %s", ErrSchemaMismatch, e.kind)}
			}
		}
		return e, b[headerLen:], nil
	}
	magic := [2]byte{0xC3, 0x01}
	for i := 0; i < len(b) && i < 2; i++ {
		if b[i] != magic[i] {
			return nil, nil, &DecodeError{Record: kind.String(),
				Err: fmt.Errorf("%w: first bytes % x, want c3 01", ErrBadMagic, b[:min(len(b), 2)])}
		}
	}
	return nil, nil, &DecodeError{Record: kind.String(),
		Err: fmt.Errorf("%w: %d bytes, a single-object header alone takes %d", ErrTruncated, len(b), headerLen)}
}

// finishDecode turns the reader's state into the result of a fast-path decode.
func (d *decoder) finishDecode(e *schemaEntry) error {
	if d.err == nil && d.rest() != 0 {
		d.err = fmt.Errorf("%w: %d bytes after the record", ErrMalformed, d.rest())
	}
	if d.err != nil {
		return &DecodeError{Record: e.kind.String(), Fingerprint: e.fingerprint, Schema: e.path, Err: d.err}
	}
	return nil
}

// decodeGeneric reads a record written with a non-current schema through goavro.
func decodeGeneric[T any](e *schemaEntry, body []byte, build func(*conv, map[string]any) T) (T, error) {
	var zero T
	m, err := readGeneric(e, body)
	if err == nil {
		var c conv
		v := build(&c, m)
		if err = c.err; err == nil {
			return v, nil
		}
	}
	return zero, &DecodeError{Record: e.kind.String(), Fingerprint: e.fingerprint, Schema: e.path, Err: err}
}

// EncodeCommand writes a command as a single-object Avro record with the current command
// schema. The command's body must be the one its Type names (ErrInvalidValue otherwise), so a
// record on the topic always carries exactly one body.
func EncodeCommand(c domain.Command) ([]byte, error) {
	b, bp := startRecord(kindCommand)
	b, err := appendCommand(b, &c)
	return finishRecord(kindCommand, bp, b, err)
}

// DecodeCommand reads a command written with any known version of the command schema; fields
// an older writer did not have get their defaults. Errors are *DecodeError.
func DecodeCommand(b []byte) (domain.Command, error) {
	var c domain.Command
	err := decodeCommandInto(b, &c)
	return c, err
}

func decodeCommandInto(b []byte, c *domain.Command) error {
	e, body, err := openRecord(b, kindCommand)
	if err != nil {
		return err
	}
	if e.current {
		d := decoder{buf: body}
		readCommand(&d, c)
		return d.finishDecode(e)
	}
	v, err := decodeGeneric(e, body, (*conv).command)
	*c = v
	return err
}

// EncodeEvent writes a domain event for the events topic. Its Type must be one of the six
// event types of API.md.
func EncodeEvent(ev domain.Event) ([]byte, error) {
	b, bp := startRecord(kindEvent)
	b, err := appendEvent(b, &ev)
	return finishRecord(kindEvent, bp, b, err)
}

// DecodeEvent reads a domain event written with any known event schema.
func DecodeEvent(b []byte) (domain.Event, error) {
	var ev domain.Event
	err := decodeEventInto(b, &ev)
	return ev, err
}

func decodeEventInto(b []byte, ev *domain.Event) error {
	e, body, err := openRecord(b, kindEvent)
	if err != nil {
		return err
	}
	if e.current {
		d := decoder{buf: body}
		readEvent(&d, ev)
		return d.finishDecode(e)
	}
	v, err := decodeGeneric(e, body, func(c *conv, m map[string]any) domain.Event { return c.event(m) })
	*ev = v
	return err
}

// EncodeAggregate writes the group table value: an opportunity's state, its events and the
// last applied input position.
func EncodeAggregate(a domain.Aggregate) ([]byte, error) {
	b, bp := startRecord(kindAggregate)
	b, err := appendAggregate(b, &a)
	return finishRecord(kindAggregate, bp, b, err)
}

// DecodeAggregate reads a group table value written with any known aggregate schema.
func DecodeAggregate(b []byte) (domain.Aggregate, error) {
	var a domain.Aggregate
	err := decodeAggregateInto(b, &a)
	return a, err
}

// DecodeAggregateState reads a group table value without its event history (Events is nil):
// what a state read needs. The current writer puts the events in one sized block, which is
// skipped without being parsed; values of older writers (whose events are the whole history)
// are decoded whole and the events dropped.
func DecodeAggregateState(b []byte) (domain.Aggregate, error) {
	var a domain.Aggregate
	err := decodeAggregateParts(b, &a, false, nil)
	return a, err
}

func decodeAggregateInto(b []byte, a *domain.Aggregate) error {
	return decodeAggregateParts(b, a, true, nil)
}

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
	d := decoder{buf: h.items}
	out := make([]domain.Event, h.count)
	for i := range out {
		readEvent(&d, &out[i])
	}
	if d.err == nil && d.rest() != 0 {
		d.err = fmt.Errorf("%w: %d bytes after the history's events", ErrMalformed, d.rest())
	}
	if d.err != nil {
		return nil, fmt.Errorf("codecs: decode history: %w", d.err)
	}
	return out, nil
}

// FirstPosition is the input position of h's oldest event, parsing only that event.
func (h History) FirstPosition() (int64, error) {
	if h.count == 0 {
		return 0, errors.New("codecs: empty history has no first position")
	}
	d := decoder{buf: h.items}
	var e domain.Event
	readEvent(&d, &e)
	if d.err != nil {
		return 0, fmt.Errorf("codecs: read history: %w", d.err)
	}
	return e.Position, nil
}

// DropOldest removes the n oldest events (all of them when n >= Len), parsing only those.
func (h *History) DropOldest(n int) error {
	if n >= h.count {
		*h = History{}
		return nil
	}
	d := decoder{buf: h.items}
	var e domain.Event
	for i := 0; i < n; i++ {
		readEvent(&d, &e)
	}
	if d.err != nil {
		return fmt.Errorf("codecs: trim history: %w", d.err)
	}
	h.items, h.count = h.items[d.pos:], h.count-n
	return nil
}

// DecodeAggregateHistory reads a group table value with its history left encoded: the returned
// aggregate's Events holds only events the value stores after that block (none from this
// package's writer); everything else is decoded. An older writer's unsized history is decoded
// into Events and the History is empty. The History refers to b.
func DecodeAggregateHistory(b []byte) (domain.Aggregate, History, error) {
	var a domain.Aggregate
	var h History
	err := decodeAggregateParts(b, &a, true, &h)
	return a, h, err
}

// EncodeAggregateHistory writes the group table value of a whose history is h followed by
// a.Events: a command appends its events without the older ones being decoded.
func EncodeAggregateHistory(a domain.Aggregate, h History) ([]byte, error) {
	b, bp := startRecord(kindAggregate)
	b, err := appendAggregateHistory(b, &a, h)
	return finishRecord(kindAggregate, bp, b, err)
}

func decodeAggregateParts(b []byte, a *domain.Aggregate, withEvents bool, hist *History) error {
	e, body, err := openRecord(b, kindAggregate)
	if err != nil {
		return err
	}
	if e.current {
		d := decoder{buf: body}
		readAggregateParts(&d, a, withEvents, hist)
		return d.finishDecode(e)
	}
	v, err := decodeGeneric(e, body, (*conv).aggregate)
	if !withEvents {
		v.Events = nil
	}
	*a = v
	return err
}

// EncodePipeline writes a pipeline's stage configuration for the pipelines topic.
func EncodePipeline(p domain.Pipeline) ([]byte, error) {
	b, bp := startRecord(kindPipeline)
	b, err := appendPipeline(b, &p)
	return finishRecord(kindPipeline, bp, b, err)
}

// DecodePipeline reads a pipeline written with any known pipeline schema.
func DecodePipeline(b []byte) (domain.Pipeline, error) {
	var p domain.Pipeline
	err := decodePipelineInto(b, &p)
	return p, err
}

func decodePipelineInto(b []byte, p *domain.Pipeline) error {
	e, body, err := openRecord(b, kindPipeline)
	if err != nil {
		return err
	}
	if e.current {
		d := decoder{buf: body}
		readPipeline(&d, p)
		return d.finishDecode(e)
	}
	v, err := decodeGeneric(e, body, (*conv).pipeline)
	*p = v
	return err
}

// EncodeAccount writes Customer 360 account context (tests and tools produce these; in
// production Customer 360 owns the topic).
func EncodeAccount(a domain.Account) ([]byte, error) {
	b, bp := startRecord(kindAccount)
	return finishRecord(kindAccount, bp, appendAccount(b, &a), nil)
}

// DecodeAccount reads account context from customer360.accounts.
func DecodeAccount(b []byte) (domain.Account, error) {
	var a domain.Account
	err := decodeAccountInto(b, &a)
	return a, err
}

func decodeAccountInto(b []byte, a *domain.Account) error {
	e, body, err := openRecord(b, kindAccount)
	if err != nil {
		return err
	}
	if e.current {
		d := decoder{buf: body}
		readAccount(&d, a)
		return d.finishDecode(e)
	}
	v, err := decodeGeneric(e, body, func(c *conv, m map[string]any) domain.Account { return *c.account(m) })
	*a = v
	return err
}

// EncodeFXRate writes an exchange rate for the fx-rates topic; the rate stays decimal text.
func EncodeFXRate(r domain.FXRate) ([]byte, error) {
	b, bp := startRecord(kindFXRate)
	return finishRecord(kindFXRate, bp, appendFXRate(b, &r), nil)
}

// DecodeFXRate reads an exchange rate written with any known FX-rate schema.
func DecodeFXRate(b []byte) (domain.FXRate, error) {
	var r domain.FXRate
	err := decodeFXRateInto(b, &r)
	return r, err
}

func decodeFXRateInto(b []byte, r *domain.FXRate) error {
	e, body, err := openRecord(b, kindFXRate)
	if err != nil {
		return err
	}
	if e.current {
		d := decoder{buf: body}
		readFXRate(&d, r)
		return d.finishDecode(e)
	}
	v, err := decodeGeneric(e, body, (*conv).fxRate)
	*r = v
	return err
}

// EncodeRejected writes a command rejection for the rejections topic.
func EncodeRejected(r domain.RejectedCommand) ([]byte, error) {
	b, bp := startRecord(kindRejected)
	return finishRecord(kindRejected, bp, appendRejected(b, &r), nil)
}

// DecodeRejected reads a command rejection written with any known rejection schema.
func DecodeRejected(b []byte) (domain.RejectedCommand, error) {
	var r domain.RejectedCommand
	err := decodeRejectedInto(b, &r)
	return r, err
}

func decodeRejectedInto(b []byte, r *domain.RejectedCommand) error {
	e, body, err := openRecord(b, kindRejected)
	if err != nil {
		return err
	}
	if e.current {
		d := decoder{buf: body}
		readRejected(&d, r)
		return d.finishDecode(e)
	}
	v, err := decodeGeneric(e, body, (*conv).rejected)
	*r = v
	return err
}

// EncodeClosedWon writes the OpportunityClosedWonEvent record Sales reads to create orders.
func EncodeClosedWon(c domain.ClosedWon) ([]byte, error) {
	b, bp := startRecord(kindClosedWon)
	return finishRecord(kindClosedWon, bp, appendClosedWon(b, &c), nil)
}

// DecodeClosedWon reads an OpportunityClosedWonEvent written with any known schema version.
func DecodeClosedWon(b []byte) (domain.ClosedWon, error) {
	var c domain.ClosedWon
	err := decodeClosedWonInto(b, &c)
	return c, err
}

func decodeClosedWonInto(b []byte, c *domain.ClosedWon) error {
	e, body, err := openRecord(b, kindClosedWon)
	if err != nil {
		return err
	}
	if e.current {
		d := decoder{buf: body}
		readClosedWon(&d, c)
		return d.finishDecode(e)
	}
	v, err := decodeGeneric(e, body, (*conv).closedWon)
	*c = v
	return err
}

// EncodeDelta writes an analytics delta (record AggregationDelta) for the repartition topic
// crm-pipeline-analytics-deltas. Map entries are written sorted by key, so equal deltas
// encode to equal bytes. It never fails; the error is there for symmetry with the others.
func EncodeDelta(d analytics.Delta) ([]byte, error) {
	b, bp := startRecord(kindDelta)
	return finishRecord(kindDelta, bp, appendDelta(b, &d), nil)
}

// DecodeDelta reads an analytics delta written with any known delta schema. An empty Values
// map decodes as nil.
func DecodeDelta(b []byte) (analytics.Delta, error) {
	var d analytics.Delta
	err := decodeDeltaInto(b, &d)
	return d, err
}

func decodeDeltaInto(b []byte, v *analytics.Delta) error {
	e, body, err := openRecord(b, kindDelta)
	if err != nil {
		return err
	}
	if e.current {
		d := decoder{buf: body}
		readDelta(&d, v)
		return d.finishDecode(e)
	}
	r, err := decodeGeneric(e, body, (*conv).delta)
	*v = r
	return err
}

// EncodeBucket writes the aggregator's group-table value (record AggregationBucket). Map
// entries are written sorted by key, so equal buckets encode to equal bytes. It never fails;
// the error is there for symmetry with the others.
func EncodeBucket(b analytics.Bucket) ([]byte, error) {
	buf, bp := startRecord(kindBucket)
	return finishRecord(kindBucket, bp, appendBucket(buf, &b), nil)
}

// DecodeBucket reads an analytics bucket written with any known bucket schema. Empty maps
// decode as nil (as a bucket the table does not hold yet would be): initialise before
// writing to them.
func DecodeBucket(b []byte) (analytics.Bucket, error) {
	var v analytics.Bucket
	err := decodeBucketInto(b, &v)
	return v, err
}

func decodeBucketInto(b []byte, v *analytics.Bucket) error {
	e, body, err := openRecord(b, kindBucket)
	if err != nil {
		return err
	}
	if e.current {
		d := decoder{buf: body}
		readBucket(&d, v)
		return d.finishDecode(e)
	}
	r, err := decodeGeneric(e, body, (*conv).bucket)
	*v = r
	return err
}
