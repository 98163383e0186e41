package query

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// defaultEmitActor is the actor of an emitted command that names none, so the audit trail
// shows that it came from a file rather than from a user of the HTTP API ("api").
const defaultEmitActor = "emit"

// commandTypes lists the command types in the order of API.md, for error messages.
var commandTypes = []domain.CommandType{
	domain.CmdCreate, domain.CmdUpdate, domain.CmdChangeStage,
	domain.CmdCloseWon, domain.CmdCloseLost, domain.CmdReopen,
}

// LineError is why CommandFromJSON refused a line. It lists every bad field at once, so that a
// file of commands can be fixed in one pass rather than one run per mistake, and its Code is
// the code the HTTP API would have put in its problem body for the same body, so that scripts
// can branch on the same values whichever way they send commands.
type LineError struct {
	// Code is "malformed_json", "unknown_field", "wrong_type" or "invalid_field".
	Code string
	// Message summarises the refusal; Fields names each bad member by its JSON name.
	Message string
	Fields  []domain.FieldError
	// Err is the *domain.Rejection when domain validation refused the command, else nil.
	Err error
}

// Error renders the summary and every bad field, "field: message" separated by "; ".
func (e *LineError) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	return e.Message + ": " + domain.JoinFieldErrors(e.Fields, " ")
}

// Unwrap exposes the domain rejection, so domain.AsRejection works on a LineError too.
func (e *LineError) Unwrap() error { return e.Err }

// CommandFromJSON decodes one command line of `crm-pipeline emit`: the HTTP body of the
// command's endpoint plus "type" (the Avro record name: CreateOpportunity, UpdateOpportunity,
// ChangeStage, CloseWon, CloseLost, Reopen) and "opportunityId" (optional for
// CreateOpportunity, where "id" also works), and optional "commandId", "actor",
// "expectedVersion", "issuedAt" (RFC 3339). Missing commandId -> newID(); missing issuedAt ->
// now; missing actor -> "emit". It runs domain.ValidateCommand. Errors are *LineError and name
// the bad fields.
//
// The body members go through the same readers as the HTTP handlers, so a line means exactly
// what the same body means over HTTP (PATCH null semantics, money never a JSON number, unknown
// members refused). The envelope members follow the HTTP headers they stand for: "commandId"
// is the Idempotency-Key (printable ASCII), and a create without an opportunity id but with a
// commandId gets DeriveOpportunityID(commandId), so sending the same file twice targets the
// same opportunities and the processor applies each command once. "actor" is X-Actor (at most
// 200 characters, no control characters). issuedAt is kept in UTC, truncated to the
// microseconds the Avro record carries, so the returned command equals what a consumer reads
// back. A bad "type" is reported alone: without it the other members cannot be judged.
// nil now and newID mean time.Now and a random UUID.
func CommandFromJSON(line []byte, now func() time.Time, newID func() string) (domain.Command, error) {
	if now == nil {
		now = time.Now
	}
	if newID == nil {
		newID = randomID
	}
	obj, p := parseObject(line)
	if p != nil {
		// parseObject speaks of "the request body"; here it is a line.
		msg := strings.Replace(p.Detail, "The request body", "the line", 1)
		return domain.Command{}, &LineError{Code: p.Code, Message: strings.TrimSuffix(msg, ".")}
	}

	typ, err := lineType(obj)
	if err != nil {
		return domain.Command{}, err
	}
	cmd := domain.Command{Type: typ}
	oppID := obj.optStr("opportunityId")
	commandID := obj.optStr("commandId")
	actor := obj.optStr("actor")
	cmd.ExpectedVersion = obj.optInt64("expectedVersion")
	issuedAt := obj.optStr("issuedAt")
	bodyReaders[typ](obj, &cmd)
	var id *string
	if typ == domain.CmdCreate {
		id = obj.optStr("id")
	}
	obj.done()
	if p := obj.problem(); p != nil {
		return domain.Command{}, membersError(p)
	}

	var errs []domain.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, domain.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case commandID == nil:
		cmd.CommandID = newID()
	case !printableASCII(*commandID):
		bad("commandId", "must be printable ASCII")
	default:
		cmd.CommandID = *commandID
	}
	switch {
	case actor == nil || *actor == "":
		cmd.Actor = defaultEmitActor
	case utf8.RuneCountInString(*actor) > maxActorLen:
		bad("actor", "must be at most %d characters", maxActorLen)
	case !printable(*actor):
		bad("actor", "must not contain control characters")
	default:
		cmd.Actor = *actor
	}
	if issuedAt == nil {
		cmd.IssuedAt = now().UTC().Truncate(time.Microsecond)
	} else if t, err := time.Parse(time.RFC3339Nano, *issuedAt); err != nil {
		bad("issuedAt", "must be an RFC 3339 timestamp such as \"2025-06-30T12:00:00Z\", got %q", *issuedAt)
	} else {
		cmd.IssuedAt = t.UTC().Truncate(time.Microsecond)
	}
	switch {
	case oppID != nil && id != nil && *oppID != *id:
		bad("id", "differs from opportunityId (%q); give one of them", *oppID)
		cmd.OpportunityID = *oppID
	case oppID != nil:
		cmd.OpportunityID = *oppID
	case id != nil:
		cmd.OpportunityID = *id
	case typ == domain.CmdCreate && commandID != nil:
		cmd.OpportunityID = DeriveOpportunityID(*commandID)
	case typ == domain.CmdCreate:
		cmd.OpportunityID = newID()
	}

	verr := domain.ValidateCommand(cmd)
	rej, _ := domain.AsRejection(verr)
	if rej != nil {
		// A field already refused above (a control character in the actor, say) is not
		// reported twice.
		reported := map[string]bool{}
		for _, f := range errs {
			reported[f.Field] = true
		}
		for _, f := range rej.Fields {
			if !reported[f.Field] {
				errs = append(errs, f)
			}
		}
	}
	if len(errs) > 0 || verr != nil {
		msg := "invalid " + string(typ) + " command"
		if rej == nil && verr != nil {
			msg += ": " + verr.Error()
		}
		return domain.Command{}, &LineError{Code: string(domain.CodeInvalid), Message: msg, Fields: errs, Err: verr}
	}
	return cmd, nil
}

// lineType reads the "type" member; a missing or unknown type is an error of its own.
func lineType(obj *object) (domain.CommandType, error) {
	t := obj.optStr("type")
	if len(*obj.errs) > 0 {
		return "", membersError(obj.problem())
	}
	if t == nil {
		return "", &LineError{Code: string(domain.CodeInvalid), Message: "no command type",
			Fields: []domain.FieldError{{Field: "type", Message: "is required: " + typeList()}}}
	}
	typ := domain.CommandType(*t)
	if _, ok := bodyReaders[typ]; !ok {
		return "", &LineError{Code: string(domain.CodeInvalid), Message: "unknown command type",
			Fields: []domain.FieldError{{Field: "type", Message: fmt.Sprintf("%q is not a command: %s", *t, typeList())}}}
	}
	return typ, nil
}

func typeList() string {
	names := make([]string, len(commandTypes))
	for i, t := range commandTypes {
		names[i] = string(t)
	}
	return "must be one of " + strings.Join(names, ", ")
}

// membersError turns the problem of unknown or mistyped members into a LineError.
func membersError(p *problem) *LineError {
	msg := "fields have the wrong JSON type"
	if p.Code == codeUnknownField {
		msg = "unknown fields"
	}
	fields := make([]domain.FieldError, len(p.Errors))
	for i, f := range p.Errors {
		fields[i] = domain.FieldError{Field: f.Field, Message: f.Message}
	}
	return &LineError{Code: p.Code, Message: msg, Fields: fields}
}
