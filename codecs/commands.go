package codecs

import (
	"fmt"

	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// The commands family: OpportunityCommand (command.avsc, hot: the processor decodes one per
// input record) and CommandRejected (command_rejected.avsc, also an item of the aggregate's
// rejections ring, hence hand-written like the aggregate).

var commands = record[domain.Command]{
	kind:       kindCommand,
	codec:      "CommandCodec",
	write:      func(b []byte, c domain.Command) ([]byte, error) { return appendCommand(b, &c) },
	read:       func(body []byte) (domain.Command, int, error) { return readBody(body, readCommand) },
	fromNative: commandFromNative,
}

var rejections = record[domain.RejectedCommand]{
	kind:       kindRejected,
	codec:      "RejectedCodec",
	write:      func(b []byte, r domain.RejectedCommand) ([]byte, error) { return appendRejected(b, &r), nil },
	read:       func(body []byte) (domain.RejectedCommand, int, error) { return readBody(body, readRejected) },
	fromNative: rejectedFromNative,
}

// EncodeCommand writes a command as a single-object Avro record with the current command
// schema. The command's body must be the one its Type names (ErrInvalidValue otherwise), so a
// record on the topic always carries exactly one body.
func EncodeCommand(c domain.Command) ([]byte, error) { return commands.encode(&c) }

// DecodeCommand reads a command written with any known version of the command schema; fields
// an older writer did not have get their defaults. Errors are *DecodeError.
func DecodeCommand(b []byte) (domain.Command, error) { return commands.decode(b) }

// CommandCodec is the goka codec of crm.pipeline.opportunity.commands: domain.Command values.
// See the note in record.go on using codec.Bytes for input streams that may carry bad
// records.
type CommandCodec struct{}

// Encode encodes a domain.Command or *domain.Command.
func (CommandCodec) Encode(value any) ([]byte, error) { return commands.gokaEncode(value) }

// Decode returns a *domain.Command.
func (CommandCodec) Decode(data []byte) (any, error) { return commands.gokaDecode(data) }

// EncodeRejected writes a command rejection for the rejections topic.
func EncodeRejected(r domain.RejectedCommand) ([]byte, error) { return rejections.encode(&r) }

// DecodeRejected reads a command rejection written with any known rejection schema.
func DecodeRejected(b []byte) (domain.RejectedCommand, error) { return rejections.decode(b) }

// RejectedCodec is the goka codec of crm.pipeline.opportunity.rejections:
// domain.RejectedCommand values.
type RejectedCodec struct{}

// Encode encodes a domain.RejectedCommand or *domain.RejectedCommand.
func (RejectedCodec) Encode(value any) ([]byte, error) { return rejections.gokaEncode(value) }

// Decode returns a *domain.RejectedCommand.
func (RejectedCodec) Decode(data []byte) (any, error) { return rejections.gokaDecode(data) }

// commandTypes is in the order of the CommandType enum symbols, which is also the order of
// the body union branches: index i means the same thing in both.
var commandTypes = [...]domain.CommandType{
	domain.CmdCreate, domain.CmdUpdate, domain.CmdChangeStage,
	domain.CmdCloseWon, domain.CmdCloseLost, domain.CmdReopen,
}

func commandIndex(t domain.CommandType) int {
	for i, c := range commandTypes {
		if c == t {
			return i
		}
	}
	return -1
}

// Least encoded size in bytes of one array item, used to refuse forged block counts before
// allocating (TestMinItemSizes derives them from the schemas).
const (
	minFieldError = 2
	minRejected   = 9
)

// ---- command: writer, fast reader, generic-map conversion ----

func appendCommand(b []byte, c *domain.Command) ([]byte, error) {
	idx := commandIndex(c.Type)
	if idx < 0 {
		return b, fmt.Errorf("%w: command %q has unknown type %q", ErrInvalidValue, c.CommandID, c.Type)
	}
	bodies := [...]bool{c.Create != nil, c.Update != nil, c.ChangeStage != nil, c.CloseWon != nil, c.CloseLost != nil, c.Reopen != nil}
	for i, set := range bodies {
		if set != (i == idx) {
			return b, fmt.Errorf("%w: command %q of type %s must carry exactly the %s body", ErrInvalidValue, c.CommandID, c.Type, c.Type)
		}
	}
	b = avro.AppendStr(b, c.CommandID)
	b = avro.AppendStr(b, c.OpportunityID)
	b = avro.AppendTimestamp(b, c.IssuedAt)
	b = avro.AppendStr(b, c.Actor)
	b = avro.AppendOptLong(b, c.ExpectedVersion)
	b = avro.AppendLong(b, int64(idx)) // type
	b = avro.AppendLong(b, int64(idx)) // body branch
	switch idx {
	case 0:
		x := c.Create
		b = avro.AppendStr(b, x.Name)
		b = avro.AppendStr(b, x.AccountID)
		b = avro.AppendStr(b, x.OwnerID)
		b = avro.AppendStr(b, x.PipelineID)
		b = avro.AppendStr(b, x.StageID)
		b = avro.AppendStr(b, x.Amount)
		b = avro.AppendStr(b, x.Currency)
		b = avro.AppendStr(b, x.CloseDate)
		b = avro.AppendOptIntAsLong(b, x.Probability)
		b = avro.AppendOptStr(b, x.ForecastCategory)
		b = avro.AppendStr(b, x.LeadID)
		b = avro.AppendStr(b, x.Source)
		b = avro.AppendStr(b, x.NextStep)
	case 1:
		x := c.Update
		b = avro.AppendOptStr(b, x.Name)
		b = avro.AppendOptStr(b, x.AccountID)
		b = avro.AppendOptStr(b, x.OwnerID)
		b = avro.AppendOptStr(b, x.Amount)
		b = avro.AppendOptStr(b, x.Currency)
		b = avro.AppendOptStr(b, x.CloseDate)
		b = avro.AppendOptStr(b, x.NextStep)
		b = avro.AppendOptIntAsLong(b, x.Probability)
		b = avro.AppendBool(b, x.ClearProbability)
		b = avro.AppendOptStr(b, x.ForecastCategory)
		b = avro.AppendBool(b, x.ClearForecastCategory)
	case 2:
		b = avro.AppendStr(b, c.ChangeStage.StageID)
	case 3:
		b = avro.AppendOptStr(b, c.CloseWon.CloseDate)
		b = avro.AppendOptStr(b, c.CloseWon.Amount)
	case 4:
		x := c.CloseLost
		b = avro.AppendStr(b, x.Reason)
		b = avro.AppendStr(b, x.Competitor)
		b = avro.AppendStr(b, x.Note)
		b = avro.AppendOptStr(b, x.CloseDate)
	case 5:
		b = avro.AppendStr(b, c.Reopen.StageID)
	}
	return b, nil
}

func readCommand(d *avro.Decoder, c *domain.Command) {
	c.CommandID = d.Str()
	c.OpportunityID = d.Str()
	c.IssuedAt = d.Timestamp()
	c.Actor = d.Str()
	c.ExpectedVersion = d.OptLong()
	t := d.Index(len(commandTypes), "CommandType")
	body := d.Index(len(commandTypes), "command body")
	if d.Err() != nil {
		return
	}
	if body != t {
		d.Fail(fmt.Errorf("%w: type %s but body %s", ErrMalformed, commandTypes[t], commandTypes[body]))
		return
	}
	c.Type = commandTypes[t]
	switch t {
	case 0:
		b := &domain.CreateOpportunity{}
		b.Name = d.Str()
		b.AccountID = d.Str()
		b.OwnerID = d.Str()
		b.PipelineID = d.Symbol(wellKnown)
		b.StageID = d.Symbol(wellKnown)
		b.Amount = d.Str()
		b.Currency = d.Symbol(wellKnown)
		b.CloseDate = d.Str()
		b.Probability = d.OptLongAsInt()
		b.ForecastCategory = d.OptStr()
		b.LeadID = d.Str()
		b.Source = d.Str()
		b.NextStep = d.Str()
		c.Create = b
	case 1:
		b := &domain.UpdateOpportunity{}
		b.Name = d.OptStr()
		b.AccountID = d.OptStr()
		b.OwnerID = d.OptStr()
		b.Amount = d.OptStr()
		b.Currency = d.OptStr()
		b.CloseDate = d.OptStr()
		b.NextStep = d.OptStr()
		b.Probability = d.OptLongAsInt()
		b.ClearProbability = d.Bool()
		b.ForecastCategory = d.OptStr()
		b.ClearForecastCategory = d.Bool()
		c.Update = b
	case 2:
		c.ChangeStage = &domain.ChangeStage{StageID: d.Symbol(wellKnown)}
	case 3:
		b := &domain.CloseWon{}
		b.CloseDate = d.OptStr()
		b.Amount = d.OptStr()
		c.CloseWon = b
	case 4:
		b := &domain.CloseLost{}
		b.Reason = d.Str()
		b.Competitor = d.Str()
		b.Note = d.Str()
		b.CloseDate = d.OptStr()
		c.CloseLost = b
	case 5:
		c.Reopen = &domain.Reopen{StageID: d.Symbol(wellKnown)}
	}
}

func commandFromNative(c *avro.Native, m map[string]any) domain.Command {
	var cmd domain.Command
	cmd.CommandID = c.Str(m, "commandId")
	cmd.OpportunityID = c.Str(m, "opportunityId")
	cmd.IssuedAt = c.Timestamp(m, "issuedAt")
	cmd.Actor = c.Str(m, "actor")
	cmd.ExpectedVersion = c.OptLong(m, "expectedVersion")
	cmd.Type = domain.CommandType(c.Str(m, "type"))
	name, v := c.Union(m, "body")
	b := c.Record("body", v)
	if c.Err() != nil {
		return cmd
	}
	if name != "crm.pipeline."+string(cmd.Type) {
		c.Fail(fmt.Errorf("%w: type %s but body %s", ErrMalformed, cmd.Type, name))
		return cmd
	}
	switch cmd.Type {
	case domain.CmdCreate:
		cmd.Create = &domain.CreateOpportunity{
			Name:             c.Str(b, "name"),
			AccountID:        c.Str(b, "accountId"),
			OwnerID:          c.Str(b, "ownerId"),
			PipelineID:       c.Str(b, "pipelineId"),
			StageID:          c.Str(b, "stageId"),
			Amount:           c.Str(b, "amount"),
			Currency:         c.Str(b, "currency"),
			CloseDate:        c.Str(b, "closeDate"),
			Probability:      c.OptInt(b, "probability"),
			ForecastCategory: c.OptStr(b, "forecastCategory"),
			LeadID:           c.Str(b, "leadId"),
			Source:           c.Str(b, "source"),
			NextStep:         c.Str(b, "nextStep"),
		}
	case domain.CmdUpdate:
		cmd.Update = &domain.UpdateOpportunity{
			Name:                  c.OptStr(b, "name"),
			AccountID:             c.OptStr(b, "accountId"),
			OwnerID:               c.OptStr(b, "ownerId"),
			Amount:                c.OptStr(b, "amount"),
			Currency:              c.OptStr(b, "currency"),
			CloseDate:             c.OptStr(b, "closeDate"),
			NextStep:              c.OptStr(b, "nextStep"),
			Probability:           c.OptInt(b, "probability"),
			ClearProbability:      c.Bool(b, "clearProbability"),
			ForecastCategory:      c.OptStr(b, "forecastCategory"),
			ClearForecastCategory: c.Bool(b, "clearForecastCategory"),
		}
	case domain.CmdChangeStage:
		cmd.ChangeStage = &domain.ChangeStage{StageID: c.Str(b, "stageId")}
	case domain.CmdCloseWon:
		cmd.CloseWon = &domain.CloseWon{CloseDate: c.OptStr(b, "closeDate"), Amount: c.OptStr(b, "amount")}
	case domain.CmdCloseLost:
		cmd.CloseLost = &domain.CloseLost{
			Reason:     c.Str(b, "reason"),
			Competitor: c.Str(b, "competitor"),
			Note:       c.Str(b, "note"),
			CloseDate:  c.OptStr(b, "closeDate"),
		}
	case domain.CmdReopen:
		cmd.Reopen = &domain.Reopen{StageID: c.Str(b, "stageId")}
	default:
		c.Fail(fmt.Errorf("%w: unknown command type %q", ErrMalformed, cmd.Type))
	}
	return cmd
}

// ---- rejection: writer, fast reader, generic-map conversion ----

func appendRejected(b []byte, r *domain.RejectedCommand) []byte {
	b = avro.AppendStr(b, r.CommandID)
	b = avro.AppendStr(b, r.OpportunityID)
	b = avro.AppendStr(b, string(r.CommandType))
	b = avro.AppendStr(b, r.Code)
	b = avro.AppendStr(b, r.Message)
	b = avro.AppendArrayStart(b, len(r.Fields))
	for i := range r.Fields {
		b = avro.AppendStr(b, r.Fields[i].Field)
		b = avro.AppendStr(b, r.Fields[i].Message)
	}
	b = avro.AppendArrayEnd(b)
	b = avro.AppendStr(b, r.Actor)
	b = avro.AppendTimestamp(b, r.At)
	return avro.AppendLong(b, r.Position)
}

func readRejected(d *avro.Decoder, r *domain.RejectedCommand) {
	r.CommandID = d.Str()
	r.OpportunityID = d.Str()
	r.CommandType = domain.CommandType(d.Symbol(wellKnown))
	r.Code = d.Str()
	r.Message = d.Str()
	for n := d.Block(minFieldError); n > 0; n = d.Block(minFieldError) {
		if r.Fields == nil {
			r.Fields = make([]domain.FieldError, 0, n)
		}
		for i := 0; i < n && d.Err() == nil; i++ {
			var f domain.FieldError
			f.Field = d.Str()
			f.Message = d.Str()
			r.Fields = append(r.Fields, f)
		}
	}
	r.Actor = d.Str()
	r.At = d.Timestamp()
	r.Position = d.Long()
}

func rejectedFromNative(c *avro.Native, m map[string]any) domain.RejectedCommand {
	r := domain.RejectedCommand{
		CommandID:     c.Str(m, "commandId"),
		OpportunityID: c.Str(m, "opportunityId"),
		CommandType:   domain.CommandType(c.Str(m, "commandType")),
		Code:          c.Str(m, "code"),
		Message:       c.Str(m, "message"),
		Actor:         c.Str(m, "actor"),
		At:            c.Timestamp(m, "at"),
		Position:      c.Long(m, "position"),
	}
	if items := c.Array(m, "fields"); len(items) > 0 {
		r.Fields = make([]domain.FieldError, len(items))
		for i, it := range items {
			f := c.Record("fields", it)
			r.Fields[i] = domain.FieldError{Field: c.Str(f, "field"), Message: c.Str(f, "message")}
		}
	}
	return r
}
