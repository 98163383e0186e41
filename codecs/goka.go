package codecs

import (
	"fmt"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// The goka codec adapters. goka calls a topic's or table's codec from many goroutines; these
// are stateless (all package state is read-only after init), so one value may serve them all.
//
// Encode accepts the domain value or a non-nil pointer to it. Decode returns a pointer
// (*domain.Aggregate, ...), and (nil, nil) for an empty record: that is a Kafka tombstone
// (goka's default nil handling decodes nil values on input streams), and nil is also what goka
// hands callbacks for a missing table key.
//
// Note for input streams: goka stops the whole processor when an input codec's Decode fails.
// For a topic that can carry undecodable records (the commands topic is written by other
// services), subscribe with goka's codec.Bytes and call DecodeCommand in the callback, so a
// bad record can go to the DLQ instead.

// typeError reports a value of the wrong type handed to a goka codec.
func typeError(codec string, v any) error {
	return fmt.Errorf("codecs: %s.Encode: %w: got %T", codec, ErrInvalidValue, v)
}

// AggregateCodec is the goka codec of the group table (crm-pipeline-cg-table):
// domain.Aggregate values.
type AggregateCodec struct{}

// Encode encodes a domain.Aggregate or *domain.Aggregate.
func (AggregateCodec) Encode(value interface{}) ([]byte, error) {
	switch v := value.(type) {
	case domain.Aggregate:
		return EncodeAggregate(v)
	case *domain.Aggregate:
		if v != nil {
			return EncodeAggregate(*v)
		}
	}
	return nil, typeError("AggregateCodec", value)
}

// Decode returns a *domain.Aggregate.
func (AggregateCodec) Decode(data []byte) (interface{}, error) {
	if len(data) == 0 {
		return nil, nil
	}
	a := new(domain.Aggregate)
	if err := decodeAggregateInto(data, a); err != nil {
		return nil, err
	}
	return a, nil
}

// PipelineCodec is the goka codec of crm.pipeline.pipelines: domain.Pipeline values.
type PipelineCodec struct{}

// Encode encodes a domain.Pipeline or *domain.Pipeline.
func (PipelineCodec) Encode(value interface{}) ([]byte, error) {
	switch v := value.(type) {
	case domain.Pipeline:
		return EncodePipeline(v)
	case *domain.Pipeline:
		if v != nil {
			return EncodePipeline(*v)
		}
	}
	return nil, typeError("PipelineCodec", value)
}

// Decode returns a *domain.Pipeline.
func (PipelineCodec) Decode(data []byte) (interface{}, error) {
	if len(data) == 0 {
		return nil, nil
	}
	p := new(domain.Pipeline)
	if err := decodePipelineInto(data, p); err != nil {
		return nil, err
	}
	return p, nil
}

// AccountCodec is the goka codec of customer360.accounts: domain.Account values.
type AccountCodec struct{}

// Encode encodes a domain.Account or *domain.Account.
func (AccountCodec) Encode(value interface{}) ([]byte, error) {
	switch v := value.(type) {
	case domain.Account:
		return EncodeAccount(v)
	case *domain.Account:
		if v != nil {
			return EncodeAccount(*v)
		}
	}
	return nil, typeError("AccountCodec", value)
}

// Decode returns a *domain.Account.
func (AccountCodec) Decode(data []byte) (interface{}, error) {
	if len(data) == 0 {
		return nil, nil
	}
	a := new(domain.Account)
	if err := decodeAccountInto(data, a); err != nil {
		return nil, err
	}
	return a, nil
}

// FXRateCodec is the goka codec of crm.pipeline.fx-rates: domain.FXRate values.
type FXRateCodec struct{}

// Encode encodes a domain.FXRate or *domain.FXRate.
func (FXRateCodec) Encode(value interface{}) ([]byte, error) {
	switch v := value.(type) {
	case domain.FXRate:
		return EncodeFXRate(v)
	case *domain.FXRate:
		if v != nil {
			return EncodeFXRate(*v)
		}
	}
	return nil, typeError("FXRateCodec", value)
}

// Decode returns a *domain.FXRate.
func (FXRateCodec) Decode(data []byte) (interface{}, error) {
	if len(data) == 0 {
		return nil, nil
	}
	r := new(domain.FXRate)
	if err := decodeFXRateInto(data, r); err != nil {
		return nil, err
	}
	return r, nil
}

// CommandCodec is the goka codec of crm.pipeline.opportunity.commands: domain.Command values.
// See the note above on using codec.Bytes for input streams that may carry bad records.
type CommandCodec struct{}

// Encode encodes a domain.Command or *domain.Command.
func (CommandCodec) Encode(value interface{}) ([]byte, error) {
	switch v := value.(type) {
	case domain.Command:
		return EncodeCommand(v)
	case *domain.Command:
		if v != nil {
			return EncodeCommand(*v)
		}
	}
	return nil, typeError("CommandCodec", value)
}

// Decode returns a *domain.Command.
func (CommandCodec) Decode(data []byte) (interface{}, error) {
	if len(data) == 0 {
		return nil, nil
	}
	c := new(domain.Command)
	if err := decodeCommandInto(data, c); err != nil {
		return nil, err
	}
	return c, nil
}

// EventCodec is the goka codec of crm.pipeline.opportunity.events: domain.Event values.
type EventCodec struct{}

// Encode encodes a domain.Event or *domain.Event.
func (EventCodec) Encode(value interface{}) ([]byte, error) {
	switch v := value.(type) {
	case domain.Event:
		return EncodeEvent(v)
	case *domain.Event:
		if v != nil {
			return EncodeEvent(*v)
		}
	}
	return nil, typeError("EventCodec", value)
}

// Decode returns a *domain.Event.
func (EventCodec) Decode(data []byte) (interface{}, error) {
	if len(data) == 0 {
		return nil, nil
	}
	ev := new(domain.Event)
	if err := decodeEventInto(data, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// RejectedCodec is the goka codec of crm.pipeline.opportunity.rejections:
// domain.RejectedCommand values.
type RejectedCodec struct{}

// Encode encodes a domain.RejectedCommand or *domain.RejectedCommand.
func (RejectedCodec) Encode(value interface{}) ([]byte, error) {
	switch v := value.(type) {
	case domain.RejectedCommand:
		return EncodeRejected(v)
	case *domain.RejectedCommand:
		if v != nil {
			return EncodeRejected(*v)
		}
	}
	return nil, typeError("RejectedCodec", value)
}

// Decode returns a *domain.RejectedCommand.
func (RejectedCodec) Decode(data []byte) (interface{}, error) {
	if len(data) == 0 {
		return nil, nil
	}
	r := new(domain.RejectedCommand)
	if err := decodeRejectedInto(data, r); err != nil {
		return nil, err
	}
	return r, nil
}

// ClosedWonCodec is the goka codec of crm.pipeline.opportunity.closed-won: domain.ClosedWon
// values (Avro record OpportunityClosedWonEvent).
type ClosedWonCodec struct{}

// Encode encodes a domain.ClosedWon or *domain.ClosedWon.
func (ClosedWonCodec) Encode(value interface{}) ([]byte, error) {
	switch v := value.(type) {
	case domain.ClosedWon:
		return EncodeClosedWon(v)
	case *domain.ClosedWon:
		if v != nil {
			return EncodeClosedWon(*v)
		}
	}
	return nil, typeError("ClosedWonCodec", value)
}

// Decode returns a *domain.ClosedWon.
func (ClosedWonCodec) Decode(data []byte) (interface{}, error) {
	if len(data) == 0 {
		return nil, nil
	}
	c := new(domain.ClosedWon)
	if err := decodeClosedWonInto(data, c); err != nil {
		return nil, err
	}
	return c, nil
}

// DeltaCodec is the goka codec of the repartition topic crm-pipeline-analytics-deltas:
// analytics.Delta values (Avro record AggregationDelta).
type DeltaCodec struct{}

// Encode encodes an analytics.Delta or *analytics.Delta.
func (DeltaCodec) Encode(value interface{}) ([]byte, error) {
	switch v := value.(type) {
	case analytics.Delta:
		return EncodeDelta(v)
	case *analytics.Delta:
		if v != nil {
			return EncodeDelta(*v)
		}
	}
	return nil, typeError("DeltaCodec", value)
}

// Decode returns an *analytics.Delta.
func (DeltaCodec) Decode(data []byte) (interface{}, error) {
	if len(data) == 0 {
		return nil, nil
	}
	d := new(analytics.Delta)
	if err := decodeDeltaInto(data, d); err != nil {
		return nil, err
	}
	return d, nil
}

// BucketCodec is the goka codec of the aggregator's group table
// (crm-pipeline-analytics-table): analytics.Bucket values (Avro record AggregationBucket).
type BucketCodec struct{}

// Encode encodes an analytics.Bucket or *analytics.Bucket.
func (BucketCodec) Encode(value interface{}) ([]byte, error) {
	switch v := value.(type) {
	case analytics.Bucket:
		return EncodeBucket(v)
	case *analytics.Bucket:
		if v != nil {
			return EncodeBucket(*v)
		}
	}
	return nil, typeError("BucketCodec", value)
}

// Decode returns an *analytics.Bucket.
func (BucketCodec) Decode(data []byte) (interface{}, error) {
	if len(data) == 0 {
		return nil, nil
	}
	b := new(analytics.Bucket)
	if err := decodeBucketInto(data, b); err != nil {
		return nil, err
	}
	return b, nil
}
