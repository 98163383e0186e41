package codecs

import "github.com/lovoo/goka"

// The adapters are goka codecs (checked here so the package itself needs no goka import).
var (
	_ goka.Codec = AggregateCodec{}
	_ goka.Codec = PipelineCodec{}
	_ goka.Codec = AccountCodec{}
	_ goka.Codec = FXRateCodec{}
	_ goka.Codec = CommandCodec{}
	_ goka.Codec = EventCodec{}
	_ goka.Codec = RejectedCodec{}
	_ goka.Codec = ClosedWonCodec{}
	_ goka.Codec = DeltaCodec{}
	_ goka.Codec = BucketCodec{}
)
