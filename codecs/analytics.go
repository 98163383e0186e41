package codecs

import (
	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
)

// The analytics family (namespace crm.pipeline.analytics): AggregationDelta
// (analytics_delta.avsc, one or more per command, on the repartition topic) and
// AggregationBucket (analytics_bucket.avsc, the aggregator's group-table value, decoded and
// encoded per delta). Both are hot. Their maps are written as one block sorted by key, so
// equal values encode to equal bytes.

var deltas = record[analytics.Delta]{
	kind:       kindDelta,
	codec:      "DeltaCodec",
	write:      func(b []byte, d analytics.Delta) ([]byte, error) { return appendDelta(b, &d), nil },
	read:       func(body []byte) (analytics.Delta, int, error) { return readBody(body, readDelta) },
	fromNative: deltaFromNative,
}

var buckets = record[analytics.Bucket]{
	kind:       kindBucket,
	codec:      "BucketCodec",
	write:      func(b []byte, v analytics.Bucket) ([]byte, error) { return appendBucket(b, &v), nil },
	read:       func(body []byte) (analytics.Bucket, int, error) { return readBody(body, readBucket) },
	fromNative: bucketFromNative,
}

// EncodeDelta writes an analytics delta (record AggregationDelta) for the repartition topic
// crm-pipeline-analytics-deltas. Map entries are written sorted by key, so equal deltas
// encode to equal bytes. It never fails; the error is there for symmetry with the others.
func EncodeDelta(d analytics.Delta) ([]byte, error) { return deltas.encode(&d) }

// DecodeDelta reads an analytics delta written with any known delta schema. An empty Values
// map decodes as nil.
func DecodeDelta(b []byte) (analytics.Delta, error) { return deltas.decode(b) }

// DeltaCodec is the goka codec of the repartition topic crm-pipeline-analytics-deltas:
// analytics.Delta values (Avro record AggregationDelta).
type DeltaCodec struct{}

// Encode encodes an analytics.Delta or *analytics.Delta.
func (DeltaCodec) Encode(value any) ([]byte, error) { return deltas.gokaEncode(value) }

// Decode returns an *analytics.Delta.
func (DeltaCodec) Decode(data []byte) (any, error) { return deltas.gokaDecode(data) }

// EncodeBucket writes the aggregator's group-table value (record AggregationBucket). Map
// entries are written sorted by key, so equal buckets encode to equal bytes. It never fails;
// the error is there for symmetry with the others.
func EncodeBucket(b analytics.Bucket) ([]byte, error) { return buckets.encode(&b) }

// DecodeBucket reads an analytics bucket written with any known bucket schema. Empty maps
// decode as nil (as a bucket the table does not hold yet would be): initialise before
// writing to them.
func DecodeBucket(b []byte) (analytics.Bucket, error) { return buckets.decode(b) }

// BucketCodec is the goka codec of the aggregator's group table
// (crm-pipeline-analytics-table): analytics.Bucket values (Avro record AggregationBucket).
type BucketCodec struct{}

// Encode encodes an analytics.Bucket or *analytics.Bucket.
func (BucketCodec) Encode(value any) ([]byte, error) { return buckets.gokaEncode(value) }

// Decode returns an *analytics.Bucket.
func (BucketCodec) Decode(data []byte) (any, error) { return buckets.gokaDecode(data) }

// ---- delta: writer, fast reader, generic-map conversion ----

func appendDelta(b []byte, d *analytics.Delta) []byte {
	b = avro.AppendStr(b, d.Bucket)
	b = avro.AppendStr(b, d.OpportunityID)
	b = avro.AppendLong(b, d.Version)
	b = avro.AppendLongMap(b, d.Values)
	b = avro.AppendStr(b, d.Source)
	return avro.AppendLong(b, d.Position)
}

// readDelta reads every string of the delta through one arena: a delta is a single
// allocation for its strings plus its map.
func readDelta(d *avro.Decoder, v *analytics.Delta) {
	var a avro.KeyArena
	v.Bucket = d.ArenaStr(&a)
	v.OpportunityID = d.ArenaStr(&a)
	v.Version = d.Long()
	v.Values = d.LongMap(&a)
	v.Source = d.ArenaStr(&a)
	v.Position = d.Long()
}

func deltaFromNative(c *avro.Native, m map[string]any) analytics.Delta {
	return analytics.Delta{
		Bucket:        c.Str(m, "bucket"),
		OpportunityID: c.Str(m, "opportunityId"),
		Version:       c.Long(m, "version"),
		Values:        c.LongMap(m, "values"),
		Source:        c.StrOr(m, "source", ""),
		Position:      c.LongOr(m, "position", 0),
	}
}

// ---- bucket: writer, fast reader, generic-map conversion ----

func appendBucket(b []byte, v *analytics.Bucket) []byte {
	return avro.AppendLongMap(avro.AppendLongMap(b, v.Values), v.Applied)
}

func readBucket(d *avro.Decoder, v *analytics.Bucket) {
	var a avro.KeyArena
	v.Values = d.LongMap(&a)
	v.Applied = d.LongMap(&a)
}

func bucketFromNative(c *avro.Native, m map[string]any) analytics.Bucket {
	// A v1 bucket's per-opportunity "seen" guard has no counterpart: its source positions are
	// unknown, so the bucket starts unguarded (exact again from its next delta on).
	return analytics.Bucket{Values: c.LongMap(m, "values"), Applied: c.LongMap(m, "applied")}
}
