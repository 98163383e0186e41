package codecs

import (
	"testing"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// benchLoop is the loop of the encode and decode benchmarks: f of in once per iteration,
// allocations reported.
func benchLoop[In, Out any](b *testing.B, in In, f func(In) (Out, error)) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeCommand(b *testing.B) {
	benchLoop(b, commandFixtures()["create/full"], EncodeCommand)
}

func BenchmarkDecodeCommand(b *testing.B) {
	data, _ := EncodeCommand(commandFixtures()["create/full"])
	b.SetBytes(int64(len(data)))
	benchLoop(b, data, DecodeCommand)
}

// BenchmarkDecodeCommandV1 is the generic (goavro) path taken for older writers, for scale.
func BenchmarkDecodeCommandV1(b *testing.B) {
	var data []byte
	for _, e := range byFingerprint {
		if e.kind == kindCommand && !e.current {
			codec, _ := e.Goavro()
			body, err := codec.BinaryFromNative(nil, v1CommandNative(commandFixtures()["create/full"]))
			if err != nil {
				b.Fatal(err)
			}
			data = append(e.Header[:], body...)
		}
	}
	benchLoop(b, data, DecodeCommand)
}

func BenchmarkEncodeAggregate(b *testing.B) {
	benchLoop(b, aggregateWithEvents(10), EncodeAggregate)
}

func BenchmarkDecodeAggregate(b *testing.B) {
	data, _ := EncodeAggregate(aggregateWithEvents(10))
	b.SetBytes(int64(len(data)))
	benchLoop(b, data, DecodeAggregate)
}

// BenchmarkAggregateCodecGoavro is what the same decode costs through goavro's generic maps
// (the path older writers take), for comparison with BenchmarkDecodeAggregate.
func BenchmarkDecodeAggregateGoavro(b *testing.B) {
	data, _ := EncodeAggregate(aggregateWithEvents(10))
	e := currentSchema[kindAggregate]
	benchLoop(b, data[headerLen:], func(body []byte) (domain.Aggregate, error) { return decodeGeneric(e, body, aggregateFromNative) })
}

func BenchmarkAggregateCodecRoundTrip(b *testing.B) {
	a := aggregateWithEvents(10)
	var c AggregateCodec
	b.ReportAllocs()
	for b.Loop() {
		data, err := c.Encode(&a)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// The analytics records: a delta touches ~6 measures; a bucket holds ~50 measures and the
// ~30 opportunities seen in it.

func BenchmarkEncodeDelta(b *testing.B) {
	benchLoop(b, benchDelta(), EncodeDelta)
}

func BenchmarkDecodeDelta(b *testing.B) {
	data, _ := EncodeDelta(benchDelta())
	b.SetBytes(int64(len(data)))
	benchLoop(b, data, DecodeDelta)
}

func BenchmarkEncodeBucket(b *testing.B) {
	benchLoop(b, benchBucket(50, 8), EncodeBucket)
}

func BenchmarkDecodeBucket(b *testing.B) {
	data, _ := EncodeBucket(benchBucket(50, 8))
	b.SetBytes(int64(len(data)))
	benchLoop(b, data, DecodeBucket)
}

// BenchmarkDecodeBucketGoavro is the same decode through goavro's generic maps, for scale.
func BenchmarkDecodeBucketGoavro(b *testing.B) {
	data, _ := EncodeBucket(benchBucket(50, 8))
	e := currentSchema[kindBucket]
	benchLoop(b, data[headerLen:], func(body []byte) (analytics.Bucket, error) { return decodeGeneric(e, body, bucketFromNative) })
}

// The pipeline and FX-rate records go through goavro (configuration.go): what a view read
// and a configuration write of them cost.

func BenchmarkEncodePipeline(b *testing.B) {
	benchLoop(b, pipelineFixtures()["full"], EncodePipeline)
}

func BenchmarkDecodePipeline(b *testing.B) {
	data, _ := EncodePipeline(pipelineFixtures()["full"])
	benchLoop(b, data, DecodePipeline)
}

func BenchmarkDecodeFXRate(b *testing.B) {
	data, _ := EncodeFXRate(fxRateFixtures()["full"])
	benchLoop(b, data, DecodeFXRate)
}
