// Package processors holds the goka group graphs of crm-pipeline and their callbacks: decode,
// ask the pure domain, store, emit. Everything here is thin around package domain; what it adds
// is the stream discipline: dedupe on redelivery with re-emission, a DLQ for undecodable
// records, forwarding of records that arrived on the wrong partition.
package processors

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// Bounds of what one opportunity's stored state keeps besides the state itself.
const (
	// MaxStoredEvents caps the history kept in the state; older events stay on the events
	// topic (the audit trail) but leave the state.
	MaxStoredEvents = 1000
	// MaxStoredRejections and MaxStoredWon bound the re-emission rings.
	MaxStoredRejections = 32
	MaxStoredWon        = 4
)

// Header names of the records we write. The DLQ headers follow Kafka Streams' KIP-1034.
const (
	HeaderCommandTime  = "crm-command-ts" // unix nanos of the command record, for view latency
	HeaderDLQException = "__streams.errors.exception"
	HeaderDLQMessage   = "__streams.errors.message"
	HeaderDLQTopic     = "__streams.errors.topic"
	HeaderDLQPartition = "__streams.errors.partition"
	HeaderDLQOffset    = "__streams.errors.offset"
)

// OpportunityConfig configures the opportunity processor's callback.
type OpportunityConfig struct {
	// Partitions of the commands topic, to detect records on the wrong partition.
	Partitions int32
	Logger     *slog.Logger
	Metrics    *Metrics
}

// OpportunityGraph is the group graph of the opportunity processor: commands in, state in the
// group table, events / closed-won / rejections / DLQ out, pipelines and accounts looked up.
func OpportunityGraph(cfg OpportunityConfig) *goka.GroupGraph {
	h := &opportunityHandler{cfg: cfg, pipelines: newPipelineCache()}
	return goka.DefineGroup(goka.Group(topics.OpportunityGroup),
		goka.Input(goka.Stream(topics.Commands), new(codec.Bytes), h.process),
		goka.Persist(aggregateCodec{}),
		goka.Lookup(goka.Table(topics.Pipelines), h.pipelines),
		goka.Lookup(goka.Table(topics.Accounts), lenient{codecs.AccountCodec{}}),
		goka.Output(goka.Stream(topics.Events), new(codec.Bytes)),
		goka.Output(goka.Stream(topics.ClosedWon), new(codec.Bytes)),
		goka.Output(goka.Stream(topics.Rejections), new(codec.Bytes)),
		goka.Output(goka.Stream(topics.DLQ), new(codec.Bytes)),
		goka.Output(goka.Stream(topics.Commands), new(codec.Bytes)),
		goka.Output(goka.Stream(topics.AnalyticsDeltas), new(codec.Bytes)),
	)
}

// errEmptyRecord is the DLQ reason of a command record without a value.
var errEmptyRecord = errors.New("empty record: a command record must carry a value")

// errTooLarge is the DLQ reason of a record that cannot be produced again (forwarded) because
// it exceeds the producer's limit, and of an output that would.
var errTooLarge = errors.New("record too large to produce")

type opportunityHandler struct {
	cfg       OpportunityConfig
	pipelines *pipelineCache
}

func (h *opportunityHandler) process(ctx goka.Context, msg any) {
	start := time.Now()
	raw, _ := msg.([]byte)
	key := ctx.Key()
	if want := topics.PartitionOf(key, h.cfg.Partitions); want != ctx.Partition() {
		// Produced with another partitioner: this partition's table never sees the key.
		if !topics.FitsRecord(key, raw, ctx.Headers()) {
			// Another client produced it near the topic's limit, above what our producer
			// may send: a forward would fail for good and stall this partition.
			h.toDLQ(ctx, raw, fmt.Errorf("%w: %d bytes with key and headers, the producer's limit is %d",
				errTooLarge, topics.RecordSize(key, raw, ctx.Headers()), topics.MaxMessageBytes))
			return
		}
		ctx.Emit(goka.Stream(topics.Commands), key, raw, goka.WithCtxEmitHeaders(ctx.Headers()))
		h.cfg.Metrics.Forwarded.Inc()
		return
	}
	if len(raw) == 0 {
		// A tombstone or empty record means nothing on a command stream.
		h.toDLQ(ctx, raw, errEmptyRecord)
		return
	}
	cmd, err := codecs.DecodeCommand(raw)
	if err != nil {
		h.toDLQ(ctx, raw, err)
		return
	}
	st := &stored{agg: &domain.Aggregate{Position: -1}}
	if v := ctx.Value(); v != nil {
		st = v.(*stored)
	}
	agg := st.agg
	offset := ctx.Offset()
	if offset <= agg.Position {
		if err := st.materialize(); err != nil {
			ctx.Fail(fmt.Errorf("stored history of %s: %w", key, err))
			return
		}
		h.reemit(ctx, st, offset)
		return
	}
	now := DecisionTime(cmd, ctx.Timestamp(), &agg.State)
	dec, err := h.decide(ctx, agg, cmd, key, now)
	agg.Position = offset
	if err != nil {
		h.refuse(ctx, st, cmd, err, now, offset)
		h.cfg.Metrics.Latency.WithLabelValues(string(cmd.Type)).Observe(time.Since(start).Seconds())
		return
	}
	if dec.Duplicate {
		h.cfg.Metrics.Duplicates.WithLabelValues(string(cmd.Type)).Inc()
	} else {
		h.cfg.Metrics.Processed.WithLabelValues(string(cmd.Type)).Inc()
	}
	for i := range dec.Events {
		dec.Events[i].Position = offset
	}
	var prev *domain.Opportunity
	if agg.State.Version > 0 {
		p := agg.State
		prev = &p
	}
	deltas := analytics.Deltas(prev, dec.Next, dec.Events, h.lookupPipelines(ctx))
	agg.State = dec.Next
	agg.Events = append(agg.Events, dec.Events...)
	var won []domain.ClosedWon
	for _, e := range dec.Events {
		if e.Type == domain.EvtClosedWon {
			won = append(won, closedWonRecord(e, dec.Next))
		}
	}
	agg.Won = keepLast(append(agg.Won, won...), MaxStoredWon)
	h.store(ctx, st)
	for _, e := range dec.Events {
		h.emitEvent(ctx, key, e)
	}
	for _, w := range won {
		h.emitClosedWon(ctx, key, w)
	}
	h.emitDeltas(ctx, deltas)
	h.cfg.Metrics.Latency.WithLabelValues(string(cmd.Type)).Observe(time.Since(start).Seconds())
}

// DecisionTime is the "now" a command is decided at: its issuedAt (event time, as Kafka
// Streams uses record timestamps), or the record's timestamp when the command carries none,
// never earlier than the opportunity's last change. It depends only on the record and the
// state, never on the processing clock, so a command decided again after a crash (its state
// write lost, its event already published) yields byte-identical events, and an oracle can
// replay the command log to the same states.
func DecisionTime(cmd domain.Command, recordTime time.Time, cur *domain.Opportunity) time.Time {
	now := cmd.IssuedAt
	if now.IsZero() {
		now = recordTime
	}
	now = now.UTC().Truncate(time.Microsecond) // the precision Avro keeps
	if cur != nil && cur.Version > 0 && now.Before(cur.UpdatedAt) {
		now = cur.UpdatedAt
	}
	return now
}

// decide gathers what the domain needs (pipelines, the account snapshot) and asks it.
func (h *opportunityHandler) decide(ctx goka.Context, agg *domain.Aggregate, cmd domain.Command, key string, now time.Time) (domain.Decision, error) {
	if cmd.OpportunityID != key {
		return domain.Decision{}, &domain.Rejection{Code: domain.CodeInvalid,
			Message: fmt.Sprintf("opportunityId %q differs from the record key %q", cmd.OpportunityID, key),
			Fields:  []domain.FieldError{{Field: "opportunityId", Message: "must equal the record key"}}}
	}
	var cur *domain.Opportunity
	if agg.State.Version > 0 {
		cur = &agg.State
	}
	dc := domain.DecideContext{Now: now, Pipelines: h.lookupPipelines(ctx), CheckPipeline: h.pipelines.check}
	if accountID := accountOf(cur, cmd); accountID != "" {
		if a, ok := ctx.Lookup(goka.Table(topics.Accounts), accountID).(*domain.Account); ok && a != nil {
			dc.Account = a
		}
	}
	return domain.Decide(cur, cmd, dc)
}

// lookupPipelines looks pipeline configurations up in the pipelines table.
func (h *opportunityHandler) lookupPipelines(ctx goka.Context) func(id string) (*domain.Pipeline, bool) {
	return func(id string) (*domain.Pipeline, bool) {
		if p, ok := ctx.Lookup(goka.Table(topics.Pipelines), id).(*domain.Pipeline); ok && p != nil {
			return p, true
		}
		return nil, false
	}
}

// accountOf is the account a command leaves the opportunity with, whose Customer 360 snapshot
// is refreshed onto the state.
func accountOf(cur *domain.Opportunity, cmd domain.Command) string {
	switch {
	case cmd.Create != nil:
		return cmd.Create.AccountID
	case cmd.Update != nil && cmd.Update.AccountID != nil:
		return *cmd.Update.AccountID
	case cur != nil:
		return cur.AccountID
	}
	return ""
}

// refuse records and publishes a refusal. The state keeps it (with the input position), so a
// redelivery re-publishes it and a waiting HTTP caller can read the outcome from the view.
func (h *opportunityHandler) refuse(ctx goka.Context, st *stored, cmd domain.Command, err error, now time.Time, offset int64) {
	agg := st.agg
	rej := domain.RejectedCommand{
		CommandID: cmd.CommandID, OpportunityID: cmd.OpportunityID, CommandType: cmd.Type,
		Actor: cmd.Actor, At: now, Position: offset,
	}
	if r, ok := domain.AsRejection(err); ok {
		rej.Code, rej.Message, rej.Fields = string(r.Code), r.Message, boundFields(r.Fields)
	} else {
		rej.Code, rej.Message = "internal", err.Error()
		h.cfg.Logger.Error("decide failed", "opportunityId", cmd.OpportunityID, "commandId", cmd.CommandID, "err", err)
	}
	// A refusal may quote the bad input; the input can be as large as the topic allows, and
	// the state keeps the last refusals, so their texts are bounded like the domain's.
	rej.Message = boundText(rej.Message)
	rej.CommandID, rej.Actor = boundText(rej.CommandID), boundText(rej.Actor)
	h.cfg.Metrics.Refused.WithLabelValues(string(cmd.Type), rej.Code).Inc()
	agg.Rejections = keepLast(append(agg.Rejections, rej), MaxStoredRejections)
	h.store(ctx, st)
	h.emitRejected(ctx, ctx.Key(), rej)
}

// reemit handles a record at or below the last applied position: its effect is already in the
// state, but a crash may have lost its outputs, so this record's own outputs (those stored with
// its position) are published again (consumers drop the duplicates by eventId) and the state is
// written again in case the local store ran ahead of the changelog. Every record after the last
// commit is redelivered in order, so each lost output is re-published by its own record.
func (h *opportunityHandler) reemit(ctx goka.Context, st *stored, offset int64) {
	agg := st.agg
	h.cfg.Metrics.Redelivered.Inc()
	h.store(ctx, st)
	key := ctx.Key()
	h.reemitDeltas(ctx, agg, offset)
	for _, e := range agg.Events {
		if e.Position != offset {
			continue
		}
		h.emitEvent(ctx, key, e)
		if e.Type == domain.EvtClosedWon {
			for _, w := range agg.Won {
				if w.Version == e.Version {
					h.emitClosedWon(ctx, key, w)
				}
			}
		}
	}
	for _, r := range agg.Rejections {
		if r.Position == offset {
			h.emitRejected(ctx, key, r)
		}
	}
}

// reemitDeltas publishes again the aggregation deltas of the record at offset. They are not
// stored: the states before and after the record are rebuilt by replaying the stored events
// (domain.Replay), which needs the history from version 1; a history trimmed past that point
// cannot be replayed and is counted in crm_analytics_reemit_skipped_total.
func (h *opportunityHandler) reemitDeltas(ctx goka.Context, agg *domain.Aggregate, offset int64) {
	first, last := -1, -1
	for i, e := range agg.Events {
		if e.Position == offset {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return
	}
	if agg.Events[0].Version != 1 {
		h.cfg.Metrics.ReemitSkipped.Inc()
		return
	}
	var prev *domain.Opportunity
	if first > 0 {
		p, err := domain.Replay(agg.Events[:first])
		if err != nil {
			h.cfg.Metrics.ReemitSkipped.Inc()
			h.cfg.Logger.Error("replay for delta re-emission", "opportunityId", ctx.Key(), "err", err)
			return
		}
		prev = &p
	}
	next, err := domain.Replay(agg.Events[:last+1])
	if err != nil {
		h.cfg.Metrics.ReemitSkipped.Inc()
		h.cfg.Logger.Error("replay for delta re-emission", "opportunityId", ctx.Key(), "err", err)
		return
	}
	h.emitDeltas(ctx, analytics.Deltas(prev, next, agg.Events[first:last+1], h.lookupPipelines(ctx)))
}

// emitDeltas publishes a record's deltas stamped with the record's position (commands partition
// and offset), which the aggregator's guard uses to apply each exactly once: a re-emission of
// the same record carries the same position.
func (h *opportunityHandler) emitDeltas(ctx goka.Context, deltas []analytics.Delta) {
	source, position := strconv.Itoa(int(ctx.Partition())), ctx.Offset()
	for _, d := range deltas {
		d.Source, d.Position = source, position
		h.emitEncoded(ctx, topics.AnalyticsDeltas, d.Bucket, "delta for "+d.Bucket, func() ([]byte, error) { return codecs.EncodeDelta(d) })
	}
	h.cfg.Metrics.Deltas.Add(float64(len(deltas)))
}

// store writes the aggregate, dropping the oldest stored events beyond MaxStoredEvents, and
// more if the record would exceed the size limit (a permanently failing emit would stall the
// partition). The older history stays encoded: only the new events are encoded.
func (h *opportunityHandler) store(ctx goka.Context, st *stored) {
	agg := st.agg
	if n := st.hist.Len() + len(agg.Events) - MaxStoredEvents; n > 0 {
		k := min(n, st.hist.Len())
		if err := st.hist.DropOldest(k); err != nil {
			ctx.Fail(fmt.Errorf("trim stored history of %s: %w", ctx.Key(), err))
			return
		}
		if n > k {
			agg.Events = append([]domain.Event(nil), agg.Events[n-k:]...)
		}
		h.cfg.Metrics.Trimmed.Add(float64(n))
	}
	for {
		b, err := codecs.EncodeAggregateHistory(*agg, st.hist)
		if err != nil {
			ctx.Fail(fmt.Errorf("encode state of %s: %w", ctx.Key(), err))
			return
		}
		if len(b) <= topics.MaxMessageBytes || st.hist.Len()+len(agg.Events) == 0 {
			ctx.SetValue(b, goka.WithCtxEmitHeaders(goka.Headers{
				HeaderCommandTime: []byte(strconv.FormatInt(ctx.Timestamp().UnixNano(), 10)),
			}))
			return
		}
		if err := st.materialize(); err != nil {
			ctx.Fail(fmt.Errorf("stored history of %s: %w", ctx.Key(), err))
			return
		}
		drop := max(1, len(agg.Events)/10)
		agg.Events = append([]domain.Event(nil), agg.Events[drop:]...)
		h.cfg.Metrics.Trimmed.Add(float64(drop))
	}
}

func (h *opportunityHandler) emitEvent(ctx goka.Context, key string, e domain.Event) {
	h.emitEncoded(ctx, topics.Events, key, "event "+e.EventID, func() ([]byte, error) { return codecs.EncodeEvent(e) })
}

func (h *opportunityHandler) emitClosedWon(ctx goka.Context, key string, w domain.ClosedWon) {
	h.emitEncoded(ctx, topics.ClosedWon, key, "closed-won "+w.EventID, func() ([]byte, error) { return codecs.EncodeClosedWon(w) })
}

func (h *opportunityHandler) emitRejected(ctx goka.Context, key string, r domain.RejectedCommand) {
	h.emitEncoded(ctx, topics.Rejections, key, "rejection of "+r.CommandID, func() ([]byte, error) { return codecs.EncodeRejected(r) })
}

// emitEncoded encodes and emits one output record. An encoding failure is a bug in our own
// types, not bad input, so it fails the processor (the supervisor restarts it) rather than
// dropping an output silently.
//
// An output over the producer's limit would fail for good and stall the partition (and,
// through sarama's forward-only commits, let later records commit past it). The domain bounds
// every text, so this cannot happen for a valid command; if it does, the output is dropped,
// counted in crm_outputs_too_large_total and logged, and the partition goes on.
func (h *opportunityHandler) emitEncoded(ctx goka.Context, topic, key, what string, encode func() ([]byte, error)) bool {
	b, err := encode()
	if err != nil {
		ctx.Fail(fmt.Errorf("encode %s: %w", what, err))
		return false
	}
	if !topics.FitsRecord(key, b, nil) {
		h.cfg.Metrics.TooLarge.WithLabelValues(topic).Inc()
		h.cfg.Logger.Error("output over the producer's limit dropped", "topic", topic, "what", what,
			"bytes", topics.RecordSize(key, b, nil), "limit", topics.MaxMessageBytes)
		return false
	}
	ctx.Emit(goka.Stream(topic), key, b)
	return true
}

// toDLQ sends an undecodable record to the DLQ with its original bytes and headers plus
// headers that name the error and where the record came from. It never fails the processor:
// a poison record must not stop its partition.
func (h *opportunityHandler) toDLQ(ctx goka.Context, raw []byte, cause error) {
	hdr := goka.Headers{}
	for k, v := range ctx.Headers() {
		hdr[k] = v
	}
	reason := "decode"
	switch {
	case errors.Is(cause, errEmptyRecord):
		reason = "empty"
	case errors.Is(cause, errTooLarge):
		reason = "too_large"
	}
	var de *codecs.DecodeError
	if errors.As(cause, &de) {
		reason = "avro"
	}
	switch {
	case errors.Is(cause, codecs.ErrBadMagic):
		reason = "bad_magic"
	case errors.Is(cause, codecs.ErrUnknownSchema):
		reason = "unknown_schema"
	}
	hdr[HeaderDLQException] = []byte(fmt.Sprintf("%T", errors.Unwrap(cause)))
	hdr[HeaderDLQMessage] = []byte(cause.Error())
	hdr[HeaderDLQTopic] = []byte(string(ctx.Topic()))
	hdr[HeaderDLQPartition] = []byte(strconv.Itoa(int(ctx.Partition())))
	hdr[HeaderDLQOffset] = []byte(strconv.FormatInt(ctx.Offset(), 10))
	key, raw, hdr := fitDLQ(ctx.Key(), raw, hdr)
	ctx.Emit(goka.Stream(topics.DLQ), key, raw, goka.WithCtxEmitHeaders(hdr))
	h.cfg.Metrics.DLQ.WithLabelValues(reason).Inc()
	h.cfg.Logger.Warn("command record sent to DLQ", "partition", ctx.Partition(), "offset", ctx.Offset(), "reason", reason, "err", cause)
}

// Headers the DLQ adds when it had to shorten a record to produce it.
const (
	HeaderDLQTruncated      = "crm-dlq-truncated"       // the value was cut to fit
	HeaderDLQKeyTruncated   = "crm-dlq-key-truncated"   // the key was cut to fit
	HeaderDLQHeadersDropped = "crm-dlq-headers-dropped" // the input's own headers were left out
	HeaderDLQOriginalBytes  = "crm-dlq-original-bytes"  // the value's size before it was cut
)

// maxDLQKey is the longest key a DLQ record keeps; longer keys are cut.
const maxDLQKey = 4096

// fitDLQ shortens a DLQ record until the producer accepts it: a key longer than maxDLQKey is
// cut, the input's own headers are dropped when they alone would not fit (the DLQ's headers,
// which name the cause and the source position, always stay), and the value is cut to what
// remains. Each cut is named in a header, so a DLQ reader knows the record is not whole.
func fitDLQ(key string, raw []byte, hdr goka.Headers) (string, []byte, goka.Headers) {
	if len(key) > maxDLQKey {
		key = key[:maxDLQKey]
		hdr[HeaderDLQKeyTruncated] = []byte("true")
	}
	if topics.RecordSize(key, nil, hdr)+64 > topics.MaxMessageBytes {
		own := goka.Headers{HeaderDLQHeadersDropped: []byte("true")}
		for _, k := range []string{HeaderDLQException, HeaderDLQMessage, HeaderDLQTopic, HeaderDLQPartition,
			HeaderDLQOffset, HeaderDLQKeyTruncated} {
			if v, ok := hdr[k]; ok {
				own[k] = v
			}
		}
		if m := own[HeaderDLQMessage]; len(m) > 4096 {
			own[HeaderDLQMessage] = m[:4096]
		}
		hdr = own
	}
	// Room for the two headers a cut adds, with their values.
	room := topics.MaxMessageBytes - topics.RecordSize(key, nil, hdr) - 2*(len(HeaderDLQTruncated)+len(HeaderDLQOriginalBytes)+10+20)
	if len(raw) > room {
		hdr[HeaderDLQOriginalBytes] = []byte(strconv.Itoa(len(raw)))
		hdr[HeaderDLQTruncated] = []byte("true")
		raw = raw[:max(room, 0)]
	}
	return key, raw, hdr
}

// closedWonRecord is the hand-off to Sales for a win, from the state right after it.
func closedWonRecord(e domain.Event, o domain.Opportunity) domain.ClosedWon {
	w := domain.ClosedWon{
		EventID: e.EventID, OpportunityID: o.ID, Version: e.Version, Name: o.Name,
		AccountID: o.AccountID, Account: o.Account, OwnerID: o.OwnerID, PipelineID: o.PipelineID,
		Amount: o.Amount, Currency: o.Currency, CloseDate: o.CloseDate, Actor: e.Actor, CommandID: e.CommandID,
	}
	if o.ClosedAt != nil {
		w.ClosedAt = *o.ClosedAt
	} else {
		w.ClosedAt = e.At
	}
	return w
}

// maxRejectionFields bounds the field errors one stored refusal keeps.
const maxRejectionFields = 64

// boundText cuts s to domain.MaxTextLen bytes on a rune boundary, marking the cut.
func boundText(s string) string {
	if len(s) <= domain.MaxTextLen {
		return s
	}
	cut := domain.MaxTextLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// boundFields bounds the count and the texts of a refusal's field errors.
func boundFields(fs []domain.FieldError) []domain.FieldError {
	if len(fs) > maxRejectionFields {
		fs = fs[:maxRejectionFields]
	}
	out := make([]domain.FieldError, len(fs))
	for i, f := range fs {
		out[i] = domain.FieldError{Field: boundText(f.Field), Message: boundText(f.Message)}
	}
	return out
}

func keepLast[T any](s []T, n int) []T {
	if len(s) <= n {
		return s
	}
	return append([]T(nil), s[len(s)-n:]...)
}

// aggregateCodec is the group table codec. Encode passes pre-encoded bytes through, because
// the callback encodes the state itself to check its size before storing it. Decode returns a
// *stored whose history stays encoded: a command only appends to it.
type aggregateCodec struct{}

func (aggregateCodec) Encode(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case *stored:
		return codecs.EncodeAggregateHistory(*x.agg, x.hist)
	}
	return codecs.AggregateCodec{}.Encode(v)
}

func (aggregateCodec) Decode(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	a, h, err := codecs.DecodeAggregateHistory(b)
	if err != nil {
		return nil, err
	}
	return &stored{agg: &a, hist: h}, nil
}

// stored is the group-table value as the callback holds it: the aggregate, whose Events are
// the events after hist (all of them once materialize has run), and the older history still
// encoded. Profiles showed the decode and re-encode of the whole history at every command
// (up to 1,000 events) as the processor's largest codec cost.
type stored struct {
	agg  *domain.Aggregate
	hist codecs.History
}

// materialize decodes the encoded history in front of agg.Events, for the rare paths that
// read the history: re-emission after a redelivery and the size limit.
func (s *stored) materialize() error {
	if s.hist.Len() == 0 {
		return nil
	}
	evs, err := s.hist.Events()
	if err != nil {
		return err
	}
	s.agg.Events = append(evs, s.agg.Events...)
	s.hist = codecs.History{}
	return nil
}

// lenient wraps a lookup table's codec so that a malformed record in a table we only read (a
// Customer 360 account, say) reads as absent instead of failing the processor, which would stop
// every partition on a record we cannot fix.
type lenient struct{ goka.Codec }

func (l lenient) Decode(b []byte) (any, error) {
	v, err := l.Codec.Decode(b)
	if err != nil {
		return nil, nil
	}
	return v, nil
}
