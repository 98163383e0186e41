package codecs

import (
	"testing"
)

func BenchmarkEncodeCommand(b *testing.B) {
	c := commandFixtures()["create/full"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeCommand(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCommand(b *testing.B) {
	data, _ := EncodeCommand(commandFixtures()["create/full"])
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeCommand(data); err != nil {
			b.Fatal(err)
		}
	}
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
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCommand(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeAggregate(b *testing.B) {
	a := aggregateWithEvents(10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeAggregate(a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeAggregate(b *testing.B) {
	data, _ := EncodeAggregate(aggregateWithEvents(10))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeAggregate(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAggregateCodecGoavro is what the same decode costs through goavro's generic maps
// (the path older writers take), for comparison with BenchmarkDecodeAggregate.
func BenchmarkDecodeAggregateGoavro(b *testing.B) {
	data, _ := EncodeAggregate(aggregateWithEvents(10))
	e := currentSchema[kindAggregate]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeGeneric(e, data[headerLen:], aggregateFromNative); err != nil {
			b.Fatal(err)
		}
	}
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
	d := benchDelta()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeDelta(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDelta(b *testing.B) {
	data, _ := EncodeDelta(benchDelta())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeDelta(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeBucket(b *testing.B) {
	v := benchBucket(50, 8)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeBucket(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBucket(b *testing.B) {
	data, _ := EncodeBucket(benchBucket(50, 8))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeBucket(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBucketGoavro is the same decode through goavro's generic maps, for scale.
func BenchmarkDecodeBucketGoavro(b *testing.B) {
	data, _ := EncodeBucket(benchBucket(50, 8))
	e := currentSchema[kindBucket]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeGeneric(e, data[headerLen:], bucketFromNative); err != nil {
			b.Fatal(err)
		}
	}
}

// The pipeline and FX-rate records go through goavro (configuration.go): what a view read
// and a configuration write of them cost.

func BenchmarkEncodePipeline(b *testing.B) {
	p := pipelineFixtures()["full"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodePipeline(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePipeline(b *testing.B) {
	data, _ := EncodePipeline(pipelineFixtures()["full"])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePipeline(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFXRate(b *testing.B) {
	data, _ := EncodeFXRate(fxRateFixtures()["full"])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFXRate(data); err != nil {
			b.Fatal(err)
		}
	}
}
