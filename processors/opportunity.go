// Package processors holds the goka group graphs of crm-pipeline and their callbacks: decode,
// ask the pure domain, store, emit. Everything here is thin around package domain; what it adds
// is the stream discipline: dedupe on redelivery with re-emission, a DLQ for undecodable
// records, forwarding of records that arrived on the wrong partition.
//
// Imports from this module: domain, analytics, step, codecs, topics (the README's package table, checked by imports_test.go).
package processors

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/step"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// Bounds of what one opportunity's stored state keeps besides the state itself. Each is a
// constant, not a function of the deal's age, so a command on a deal with a thousand changes
// writes as many bytes as one on a new deal.
const (
	// MaxRecentEvents bounds the events the state keeps for re-emission: those of the most
	// recent commands, which are the only ones a crash can leave unpublished (records are
	// redelivered from the last committed offset, about a second back). Every event is also
	// on the history topic, the audit trail, which is where the history endpoint reads it.
	MaxRecentEvents = 16
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
		goka.Output(goka.Stream(topics.History), new(codec.Bytes)),
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
	if _, ok := ctx.Headers()[topics.HeaderMigrateHistory]; ok && len(raw) == 0 {
		h.migrate(ctx)
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
	st := &stored{agg: &domain.Aggregate{Position: -1, HistoryOnTopic: true}}
	if v := ctx.Value(); v != nil {
		st = v.(*stored)
	}
	agg := st.agg
	migrated, err := h.copyHistory(ctx, st)
	if err != nil {
		ctx.Fail(err)
		return
	}
	offset := ctx.Offset()
	if offset <= agg.Position {
		h.reemit(ctx, st, offset, migrated)
		return
	}
	pos := step.Position{Source: strconv.Itoa(int(ctx.Partition())), Offset: offset}
	res := step.Apply(*agg, cmd, ctx.Timestamp(), pos, h.env(ctx, key))
	*agg = res.Aggregate
	if res.Rejected != nil {
		if res.Internal != nil {
			h.cfg.Logger.Error("decide failed", "opportunityId", cmd.OpportunityID, "commandId", cmd.CommandID, "err", res.Internal)
		}
		h.cfg.Metrics.Refused.WithLabelValues(string(cmd.Type), res.Rejected.Code).Inc()
		h.store(ctx, st, false)
		h.emitRejected(ctx, key, *res.Rejected)
		h.cfg.Metrics.Latency.WithLabelValues(string(cmd.Type)).Observe(time.Since(start).Seconds())
		return
	}
	if res.Duplicate {
		h.cfg.Metrics.Duplicates.WithLabelValues(string(cmd.Type)).Inc()
	} else {
		h.cfg.Metrics.Processed.WithLabelValues(string(cmd.Type)).Inc()
	}
	deltas, err := encodeDeltas(res.Deltas)
	if err != nil {
		ctx.Fail(err)
		return
	}
	if len(res.Events) > 0 {
		agg.RecentDeltas = append(agg.RecentDeltas, deltas.records...)
	}
	h.store(ctx, st, len(res.Events) > 0)
	for _, e := range res.Events {
		h.emitEvent(ctx, key, e)
	}
	for _, w := range res.Won {
		h.emitClosedWon(ctx, key, w)
	}
	h.emitDeltas(ctx, deltas)
	h.cfg.Metrics.Latency.WithLabelValues(string(cmd.Type)).Observe(time.Since(start).Seconds())
}

// env is what step.Apply may look up for key: the pipelines and Customer 360 accounts tables.
func (h *opportunityHandler) env(ctx goka.Context, key string) step.Env {
	return step.Env{
		Key: key, Pipelines: h.lookupPipelines(ctx), CheckPipeline: h.pipelines.check,
		Account: func(id string) *domain.Account {
			if a, ok := ctx.Lookup(goka.Table(topics.Accounts), id).(*domain.Account); ok && a != nil {
				return a
			}
			return nil
		},
	}
}

// copyHistory moves a previous-layout state's history (the whole of it in the state) to the
// history topic, once: afterwards the state keeps only its recent events. It reports whether
// it did, so that a re-emission in the same step can still rebuild deltas from that history.
func (h *opportunityHandler) copyHistory(ctx goka.Context, st *stored) (bool, error) {
	agg := st.agg
	if agg.HistoryOnTopic {
		return false, nil
	}
	if err := st.materialize(); err != nil {
		return false, fmt.Errorf("stored history of %s: %w", ctx.Key(), err)
	}
	for _, e := range agg.Events {
		b, err := codecs.EncodeEvent(e)
		if err != nil {
			return false, fmt.Errorf("encode event %s: %w", e.EventID, err)
		}
		h.emitHistory(ctx, e, b)
	}
	agg.HistoryOnTopic = true
	h.cfg.Metrics.Migrated.Inc()
	h.cfg.Logger.Info("history moved to the history topic", "opportunityId", ctx.Key(), "events", len(agg.Events))
	return true, nil
}

// migrate handles a topics.HeaderMigrateHistory record: the state, if it has the previous layout,
// gets its history copied out and is stored in the new layout. The input position is left
// alone (the record changes nothing a command could see).
func (h *opportunityHandler) migrate(ctx goka.Context) {
	v := ctx.Value()
	if v == nil {
		return
	}
	st := v.(*stored)
	migrated, err := h.copyHistory(ctx, st)
	if err != nil {
		ctx.Fail(err)
		return
	}
	if migrated {
		h.store(ctx, st, false)
	}
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

// reemit handles a record at or below the last applied position: its effect is already in the
// state, but a crash may have lost its outputs, so this record's own outputs (those stored with
// its position) are published again (consumers drop the duplicates by eventId, the aggregator
// by source position) and the state is written again in case the local store ran ahead of the
// changelog. Every record after the last commit is redelivered in order, so each lost output is
// re-published by its own record. replay says the state was of the previous layout a moment
// ago and its deltas must be rebuilt from the history rather than read from RecentDeltas.
func (h *opportunityHandler) reemit(ctx goka.Context, st *stored, offset int64, replay bool) {
	agg := st.agg
	h.cfg.Metrics.Redelivered.Inc()
	if err := st.materialize(); err != nil {
		ctx.Fail(fmt.Errorf("stored history of %s: %w", ctx.Key(), err))
		return
	}
	key := ctx.Key()
	var events []domain.Event
	for _, e := range agg.Events {
		if e.Position == offset {
			events = append(events, e)
		}
	}
	// The deltas go out again as they were first published: the stored records byte for
	// byte (decoded only for their bucket key), or rebuilt from a previous-layout history.
	var deltas stampedDeltas
	if replay {
		var err error
		if deltas, err = encodeDeltas(h.replayDeltas(ctx, agg, offset)); err != nil {
			ctx.Fail(err)
			return
		}
	} else {
		for _, sd := range agg.RecentDeltas {
			if sd.Position != offset {
				continue
			}
			d, err := codecs.DecodeDelta(sd.Record)
			if err != nil {
				ctx.Fail(fmt.Errorf("stored delta of %s: %w", key, err))
				return
			}
			deltas.buckets, deltas.records = append(deltas.buckets, d.Bucket), append(deltas.records, sd)
		}
	}
	var rejected []domain.RejectedCommand
	for _, r := range agg.Rejections {
		if r.Position == offset {
			rejected = append(rejected, r)
		}
	}
	if len(events) == 0 && len(rejected) == 0 && len(agg.Events) >= MaxRecentEvents && offset < agg.Events[0].Position {
		// Older than what the state keeps for re-emission: if its outputs were lost, they
		// stay lost. Counted, because it means the redelivery window outgrew the ring.
		h.cfg.Metrics.ReemitSkipped.Inc()
	}
	h.store(ctx, st, false)
	h.emitDeltas(ctx, deltas)
	for _, e := range events {
		h.emitEvent(ctx, key, e)
		if e.Type == domain.EvtClosedWon {
			for _, w := range agg.Won {
				if w.Version == e.Version {
					h.emitClosedWon(ctx, key, w)
				}
			}
		}
	}
	for _, r := range rejected {
		h.emitRejected(ctx, key, r)
	}
}

// replayDeltas rebuilds the deltas of the record at offset from a previous-layout state, whose
// events are the whole history: the states before and after the record come from replaying
// them (domain.Replay). A history trimmed past version 1 cannot be replayed and is counted in
// crm_analytics_reemit_skipped_total.
func (h *opportunityHandler) replayDeltas(ctx goka.Context, agg *domain.Aggregate, offset int64) []analytics.Delta {
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
		return nil
	}
	if agg.Events[0].Version != 1 {
		h.cfg.Metrics.ReemitSkipped.Inc()
		return nil
	}
	var prev *domain.Opportunity
	if first > 0 {
		p, err := domain.Replay(agg.Events[:first])
		if err != nil {
			h.cfg.Metrics.ReemitSkipped.Inc()
			h.cfg.Logger.Error("replay for delta re-emission", "opportunityId", ctx.Key(), "err", err)
			return nil
		}
		prev = &p
	}
	next, err := domain.Replay(agg.Events[:last+1])
	if err != nil {
		h.cfg.Metrics.ReemitSkipped.Inc()
		h.cfg.Logger.Error("replay for delta re-emission", "opportunityId", ctx.Key(), "err", err)
		return nil
	}
	deltas := analytics.Deltas(prev, next, agg.Events[first:last+1], h.lookupPipelines(ctx))
	source := strconv.Itoa(int(ctx.Partition()))
	for i := range deltas {
		deltas[i].Source, deltas[i].Position = source, offset
	}
	return deltas
}

// encodeDeltas encodes a record's deltas (stamped by step.Apply with the record's position,
// which the aggregator's guard uses to apply each exactly once: a re-emission of the same
// record carries the same position), as the state keeps them for re-emission.
func encodeDeltas(deltas []analytics.Delta) (stampedDeltas, error) {
	if len(deltas) == 0 {
		return stampedDeltas{}, nil
	}
	out := stampedDeltas{buckets: make([]string, len(deltas)), records: make([]domain.StoredDelta, len(deltas))}
	for i, d := range deltas {
		b, err := codecs.EncodeDelta(d)
		if err != nil {
			return stampedDeltas{}, fmt.Errorf("encode delta for %s: %w", d.Bucket, err)
		}
		out.buckets[i], out.records[i] = d.Bucket, domain.StoredDelta{Position: d.Position, Record: b}
	}
	return out, nil
}

// stampedDeltas are one record's deltas, encoded, with the bucket each is keyed by.
type stampedDeltas struct {
	buckets []string
	records []domain.StoredDelta
}

// emitDeltas publishes a record's stamped deltas, keyed by bucket.
func (h *opportunityHandler) emitDeltas(ctx goka.Context, deltas stampedDeltas) {
	for i, sd := range deltas.records {
		h.emitEncoded(ctx, topics.AnalyticsDeltas, deltas.buckets[i], "delta for "+deltas.buckets[i], func() ([]byte, error) { return sd.Record, nil })
	}
	h.cfg.Metrics.Deltas.Add(float64(len(deltas.records)))
}

// store writes the aggregate, keeping MaxRecentEvents events and the deltas of their commands
// (older ones are on the history topic), and fewer if the record would exceed the size limit
// (a permanently failing emit would stall the partition). The kept events stay encoded: only
// the new ones are encoded.
//
// changed says whether the command raised the version (made an event): it travels as the
// HeaderChanged header, so the views tell a change from a rewrite without reading the value
// they held before.
func (h *opportunityHandler) store(ctx goka.Context, st *stored, changed bool) {
	agg := st.agg
	if n := st.hist.Len() + len(agg.Events) - MaxRecentEvents; n > 0 {
		k := min(n, st.hist.Len())
		if err := st.hist.DropOldest(k); err != nil {
			ctx.Fail(fmt.Errorf("trim stored events of %s: %w", ctx.Key(), err))
			return
		}
		if n > k {
			agg.Events = append([]domain.Event(nil), agg.Events[n-k:]...)
		}
	}
	for {
		if err := st.trimDeltas(); err != nil {
			ctx.Fail(fmt.Errorf("stored events of %s: %w", ctx.Key(), err))
			return
		}
		b, err := codecs.EncodeAggregateHistory(*agg, st.hist)
		if err != nil {
			ctx.Fail(fmt.Errorf("encode state of %s: %w", ctx.Key(), err))
			return
		}
		if len(b) <= topics.MaxMessageBytes || st.hist.Len()+len(agg.Events) == 0 {
			flag := []byte("0")
			if changed {
				flag = []byte("1")
			}
			ctx.SetValue(b, goka.WithCtxEmitHeaders(goka.Headers{
				topics.HeaderCommandTime: []byte(strconv.FormatInt(ctx.Timestamp().UnixNano(), 10)),
				topics.HeaderChanged:     flag,
			}))
			return
		}
		if err := st.materialize(); err != nil {
			ctx.Fail(fmt.Errorf("stored events of %s: %w", ctx.Key(), err))
			return
		}
		drop := max(1, len(agg.Events)/4)
		agg.Events = append([]domain.Event(nil), agg.Events[drop:]...)
		h.cfg.Metrics.Trimmed.Add(float64(drop))
	}
}

// emitEvent publishes an event on the events topic (the stream) and on the history topic (the
// audit trail the history endpoint reads, keyed by opportunity and version).
func (h *opportunityHandler) emitEvent(ctx goka.Context, key string, e domain.Event) {
	b, err := codecs.EncodeEvent(e)
	if err != nil {
		ctx.Fail(fmt.Errorf("encode event %s: %w", e.EventID, err))
		return
	}
	if h.emitEncoded(ctx, topics.Events, key, "event "+e.EventID, func() ([]byte, error) { return b, nil }) {
		h.emitHistory(ctx, e, b)
	}
}

// emitHistory publishes an encoded event on the history topic.
func (h *opportunityHandler) emitHistory(ctx goka.Context, e domain.Event, b []byte) {
	k := topics.HistoryKey(e.OpportunityID, e.Version)
	h.emitEncoded(ctx, topics.History, k, "history "+e.EventID, func() ([]byte, error) { return b, nil })
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
	hdr[topics.HeaderDLQException] = []byte(fmt.Sprintf("%T", errors.Unwrap(cause)))
	hdr[topics.HeaderDLQMessage] = []byte(cause.Error())
	hdr[topics.HeaderDLQTopic] = []byte(string(ctx.Topic()))
	hdr[topics.HeaderDLQPartition] = []byte(strconv.Itoa(int(ctx.Partition())))
	hdr[topics.HeaderDLQOffset] = []byte(strconv.FormatInt(ctx.Offset(), 10))
	key, raw, hdr := fitDLQ(ctx.Key(), raw, hdr)
	ctx.Emit(goka.Stream(topics.DLQ), key, raw, goka.WithCtxEmitHeaders(hdr))
	h.cfg.Metrics.DLQ.WithLabelValues(reason).Inc()
	h.cfg.Logger.Warn("command record sent to DLQ", "partition", ctx.Partition(), "offset", ctx.Offset(), "reason", reason, "err", cause)
}

// maxDLQKey is the longest key a DLQ record keeps; longer keys are cut.
const maxDLQKey = 4096

// fitDLQ shortens a DLQ record until the producer accepts it: a key longer than maxDLQKey is
// cut, the input's own headers are dropped when they alone would not fit (the DLQ's headers,
// which name the cause and the source position, always stay), and the value is cut to what
// remains. Each cut is named in a header, so a DLQ reader knows the record is not whole.
func fitDLQ(key string, raw []byte, hdr goka.Headers) (string, []byte, goka.Headers) {
	if len(key) > maxDLQKey {
		key = key[:maxDLQKey]
		hdr[topics.HeaderDLQKeyTruncated] = []byte("true")
	}
	if topics.RecordSize(key, nil, hdr)+64 > topics.MaxMessageBytes {
		own := goka.Headers{topics.HeaderDLQHeadersDropped: []byte("true")}
		for _, k := range []string{topics.HeaderDLQException, topics.HeaderDLQMessage, topics.HeaderDLQTopic, topics.HeaderDLQPartition,
			topics.HeaderDLQOffset, topics.HeaderDLQKeyTruncated} {
			if v, ok := hdr[k]; ok {
				own[k] = v
			}
		}
		if m := own[topics.HeaderDLQMessage]; len(m) > 4096 {
			own[topics.HeaderDLQMessage] = m[:4096]
		}
		hdr = own
	}
	// Room for the two headers a cut adds, with their values.
	room := topics.MaxMessageBytes - topics.RecordSize(key, nil, hdr) - 2*(len(topics.HeaderDLQTruncated)+len(topics.HeaderDLQOriginalBytes)+10+20)
	if len(raw) > room {
		hdr[topics.HeaderDLQOriginalBytes] = []byte(strconv.Itoa(len(raw)))
		hdr[topics.HeaderDLQTruncated] = []byte("true")
		raw = raw[:max(room, 0)]
	}
	return key, raw, hdr
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
// (then up to 1,000 events) as the processor's largest codec cost; the ring is small now, but
// a state of the previous layout still holds its whole history until migrated.
type stored struct {
	agg  *domain.Aggregate
	hist codecs.History
}

// trimDeltas drops the stored deltas of commands whose events the state no longer keeps.
func (s *stored) trimDeltas() error {
	a := s.agg
	if len(a.RecentDeltas) == 0 {
		return nil
	}
	if s.hist.Len()+len(a.Events) == 0 {
		a.RecentDeltas = nil
		return nil
	}
	oldest := int64(0)
	if s.hist.Len() > 0 {
		p, err := s.hist.FirstPosition()
		if err != nil {
			return err
		}
		oldest = p
	} else {
		oldest = a.Events[0].Position
	}
	i := 0
	for i < len(a.RecentDeltas) && a.RecentDeltas[i].Position < oldest {
		i++
	}
	if i > 0 {
		a.RecentDeltas = append([]domain.StoredDelta(nil), a.RecentDeltas[i:]...)
	}
	return nil
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
