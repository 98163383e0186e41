package processors

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// AggregatorConfig configures the analytics aggregator.
type AggregatorConfig struct {
	Logger  *slog.Logger
	Metrics *Metrics
}

// AggregatorGraph is the group graph of the analytics aggregator: deltas keyed by bucket in,
// buckets in the group table. A delta already applied (by the per-source position guard in
// analytics.Bucket) is skipped, so redeliveries and re-emissions count once.
func AggregatorGraph(cfg AggregatorConfig) *goka.GroupGraph {
	a := &aggregator{cfg: cfg}
	return goka.DefineGroup(goka.Group(topics.AnalyticsGroup),
		goka.Input(goka.Stream(topics.AnalyticsDeltas), new(codec.Bytes), a.process),
		goka.Persist(codecs.BucketCodec{}),
		goka.Output(goka.Stream(topics.DLQ), new(codec.Bytes)),
	)
}

type aggregator struct{ cfg AggregatorConfig }

func (a *aggregator) process(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	d, err := codecs.DecodeDelta(raw)
	if err == nil && len(raw) == 0 {
		err = errEmptyRecord
	}
	if err != nil {
		// Only our own processor writes this topic; an undecodable record is a bug, but it
		// must not stop the partition: park it in the DLQ with the reason.
		key, value, hdr := fitDLQ(ctx.Key(), raw, goka.Headers{
			topics.HeaderDLQException: []byte(fmt.Sprintf("%T", err)),
			topics.HeaderDLQMessage:   []byte(err.Error()),
			topics.HeaderDLQTopic:     []byte(string(ctx.Topic())),
			topics.HeaderDLQPartition: []byte(strconv.Itoa(int(ctx.Partition()))),
			topics.HeaderDLQOffset:    []byte(strconv.FormatInt(ctx.Offset(), 10)),
		})
		ctx.Emit(goka.Stream(topics.DLQ), key, value, goka.WithCtxEmitHeaders(hdr))
		a.cfg.Metrics.DLQ.WithLabelValues("delta").Inc()
		a.cfg.Logger.Error("undecodable aggregation delta sent to DLQ", "partition", ctx.Partition(), "offset", ctx.Offset(), "err", err)
		return
	}
	b := analytics.Bucket{}
	if v, ok := ctx.Value().(*analytics.Bucket); ok && v != nil {
		b = *v
	}
	if !b.Apply(d) {
		a.cfg.Metrics.Skipped.Inc()
		return
	}
	a.cfg.Metrics.Applied.Inc()
	ctx.SetValue(&b)
}
