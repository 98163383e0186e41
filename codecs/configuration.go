package codecs

import (
	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// The configuration family: the records the processor and the views look up rather than
// process. Pipeline (pipeline.avsc) and FXRate (fx_rate.avsc) are written and read through
// goavro with the embedded schema files: they change a few times a year, the processor
// decodes each distinct pipeline value once (processors.pipelineCache), and a view read costs
// a few microseconds more than a hand-written reader would (see doc.go). Account
// (account.avsc) stays hand-written: the processor looks an account up for every command,
// and the aggregate's state and the closed-won record carry it nested.

var pipelines = record[domain.Pipeline]{
	kind:       kindPipeline,
	codec:      "PipelineCodec",
	toNative:   pipelineToNative,
	fromNative: pipelineFromNative,
}

var fxRates = record[domain.FXRate]{
	kind:       kindFXRate,
	codec:      "FXRateCodec",
	toNative:   fxRateToNative,
	fromNative: fxRateFromNative,
}

var accounts = record[domain.Account]{
	kind:       kindAccount,
	codec:      "AccountCodec",
	write:      func(b []byte, a domain.Account) ([]byte, error) { return appendAccount(b, &a), nil },
	read:       func(body []byte) (domain.Account, int, error) { return readBody(body, readAccount) },
	fromNative: accountFromNative,
}

// EncodePipeline writes a pipeline's stage configuration for the pipelines topic.
func EncodePipeline(p domain.Pipeline) ([]byte, error) { return pipelines.encode(&p) }

// DecodePipeline reads a pipeline written with any known pipeline schema.
func DecodePipeline(b []byte) (domain.Pipeline, error) { return pipelines.decode(b) }

// PipelineCodec is the goka codec of crm.pipeline.pipelines: domain.Pipeline values.
type PipelineCodec struct{}

// Encode encodes a domain.Pipeline or *domain.Pipeline.
func (PipelineCodec) Encode(value any) ([]byte, error) { return pipelines.gokaEncode(value) }

// Decode returns a *domain.Pipeline.
func (PipelineCodec) Decode(data []byte) (any, error) { return pipelines.gokaDecode(data) }

// EncodeFXRate writes an exchange rate for the fx-rates topic; the rate stays decimal text.
func EncodeFXRate(r domain.FXRate) ([]byte, error) { return fxRates.encode(&r) }

// DecodeFXRate reads an exchange rate written with any known FX-rate schema.
func DecodeFXRate(b []byte) (domain.FXRate, error) { return fxRates.decode(b) }

// FXRateCodec is the goka codec of crm.pipeline.fx-rates: domain.FXRate values.
type FXRateCodec struct{}

// Encode encodes a domain.FXRate or *domain.FXRate.
func (FXRateCodec) Encode(value any) ([]byte, error) { return fxRates.gokaEncode(value) }

// Decode returns a *domain.FXRate.
func (FXRateCodec) Decode(data []byte) (any, error) { return fxRates.gokaDecode(data) }

// EncodeAccount writes Customer 360 account context (tests and tools produce these; in
// production Customer 360 owns the topic).
func EncodeAccount(a domain.Account) ([]byte, error) { return accounts.encode(&a) }

// DecodeAccount reads account context from customer360.accounts.
func DecodeAccount(b []byte) (domain.Account, error) { return accounts.decode(b) }

// AccountCodec is the goka codec of customer360.accounts: domain.Account values.
type AccountCodec struct{}

// Encode encodes a domain.Account or *domain.Account.
func (AccountCodec) Encode(value any) ([]byte, error) { return accounts.gokaEncode(value) }

// Decode returns a *domain.Account.
func (AccountCodec) Decode(data []byte) (any, error) { return accounts.gokaDecode(data) }

// ---- pipeline: goavro's native form, both ways ----

func pipelineToNative(p domain.Pipeline) (map[string]any, error) {
	stages := make([]any, len(p.Stages))
	for i := range p.Stages {
		s := &p.Stages[i]
		switch {
		case !avro.FitsInt(s.Probability):
			return nil, avro.IntError("stage "+s.ID+" probability", s.Probability)
		case !avro.FitsInt(s.StaleAfterDays):
			return nil, avro.IntError("stage "+s.ID+" staleAfterDays", s.StaleAfterDays)
		}
		required := make([]any, len(s.RequiredFields))
		for j, f := range s.RequiredFields {
			required[j] = f
		}
		stages[i] = map[string]any{
			"id":               s.ID,
			"name":             s.Name,
			"probability":      int32(s.Probability),
			"forecastCategory": string(s.ForecastCategory),
			"status":           string(s.Status),
			"requiredFields":   required,
			"staleAfterDays":   int32(s.StaleAfterDays),
		}
	}
	return map[string]any{"id": p.ID, "name": p.Name, "stages": stages}, nil
}

func pipelineFromNative(c *avro.Native, m map[string]any) domain.Pipeline {
	p := domain.Pipeline{ID: c.Str(m, "id"), Name: c.Str(m, "name")}
	p.Stages = nativeArray(c, m, "stages", func(c *avro.Native, r map[string]any) domain.Stage {
		return domain.Stage{
			ID:               c.Str(r, "id"),
			Name:             c.Str(r, "name"),
			Probability:      c.Int(r, "probability"),
			ForecastCategory: domain.ForecastCategory(c.Str(r, "forecastCategory")),
			Status:           domain.Status(c.Str(r, "status")),
			RequiredFields:   c.Strings(r, "requiredFields"),
			StaleAfterDays:   c.Int(r, "staleAfterDays"),
		}
	})
	return p
}

// ---- FX rate: goavro's native form, both ways ----

func fxRateToNative(r domain.FXRate) (map[string]any, error) {
	return map[string]any{"currency": r.Currency, "rate": r.Rate}, nil
}

func fxRateFromNative(c *avro.Native, m map[string]any) domain.FXRate {
	return domain.FXRate{Currency: c.Str(m, "currency"), Rate: c.Str(m, "rate")}
}

// ---- account: writer, fast reader, generic-map conversion ----

func appendAccount(b []byte, a *domain.Account) []byte {
	b = avro.AppendStr(b, a.ID)
	b = avro.AppendStr(b, a.Name)
	b = avro.AppendStr(b, a.Segment)
	b = avro.AppendStr(b, a.Region)
	return avro.AppendStr(b, a.OwnerID)
}

func readAccount(d *avro.Decoder, a *domain.Account) {
	a.ID = d.Str()
	a.Name = d.Str()
	a.Segment = d.Str()
	a.Region = d.Str()
	a.OwnerID = d.Str()
}

func accountFromNative(c *avro.Native, r map[string]any) domain.Account {
	return domain.Account{
		ID:      c.Str(r, "id"),
		Name:    c.Str(r, "name"),
		Segment: c.Str(r, "segment"),
		Region:  c.Str(r, "region"),
		OwnerID: c.Str(r, "ownerId"),
	}
}

// The account nested as ["null", Account] (in the opportunity and the closed-won record).

func appendOptAccount(b []byte, a *domain.Account) []byte {
	if a == nil {
		return append(b, avro.BranchNull)
	}
	return appendAccount(append(b, avro.BranchValue), a)
}

func readOptAccount(d *avro.Decoder) *domain.Account {
	if !d.Nullable() {
		return nil
	}
	a := &domain.Account{}
	readAccount(d, a)
	return a
}

func optAccountFromNative(c *avro.Native, r map[string]any) *domain.Account {
	if r == nil {
		return nil
	}
	a := accountFromNative(c, r)
	return &a
}
