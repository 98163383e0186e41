package domain

import (
	"errors"
	"fmt"
	"strings"
)

// RejectCode says why a command was refused. The values travel on the rejections topic and in
// problem bodies, so callers can branch on them without parsing messages; they are part of
// the public contract and never change meaning.
type RejectCode string

// The rejection codes. The comment on each names the HTTP status the gateway answers with
// (see HTTPStatus).
const (
	CodeConflict          RejectCode = "version_conflict"        // expectedVersion mismatch -> 409
	CodeNotFound          RejectCode = "not_found"               // command on an unknown opportunity -> 404
	CodeAlreadyExists     RejectCode = "already_exists"          // create of an existing id with a new command id -> 409
	CodeInvalid           RejectCode = "invalid_field"           // a field value is bad -> 422
	CodeRequiredFields    RejectCode = "required_fields_missing" // stage required fields not set -> 422
	CodeClosed            RejectCode = "opportunity_closed"      // closed deal accepts only Reopen -> 422
	CodeNotClosed         RejectCode = "opportunity_not_closed"  // Reopen of an open deal -> 422
	CodeUnknownPipeline   RejectCode = "unknown_pipeline"        // 422
	CodeUnknownStage      RejectCode = "unknown_stage"           // 422
	CodeInvalidTransition RejectCode = "invalid_transition"      // e.g. ChangeStage to a won/lost stage -> 422
	// A close-won or close-lost whose closeDate is later than the UTC day it is decided on (a
	// deal cannot have closed in the future) -> 422, field closeDate.
	CodeCloseDateInFuture RejectCode = "close_date_in_future"
	// A close-won or close-lost whose closeDate is before the UTC day the deal was created
	// (it cannot have closed before it existed) -> 422, field closeDate.
	CodeCloseDateBeforeCreated RejectCode = "close_date_before_created"
	// CodeIdempotencyKeyReused: the command id (the Idempotency-Key) was applied to this
	// opportunity before for a request with another fingerprint -> 422.
	CodeIdempotencyKeyReused RejectCode = "idempotency_key_reused"
)

// HTTPStatus is the status the gateway answers a refused command with, kept next to the codes
// so the mapping cannot drift from their meaning: 409 when retrying with fresh state can
// succeed, 404 for an unknown opportunity, 422 for every business rule. (Plain numbers keep
// net/http out of the pure domain.)
func (c RejectCode) HTTPStatus() int {
	switch c {
	case CodeConflict, CodeAlreadyExists:
		return 409 // Conflict
	case CodeNotFound:
		return 404 // Not Found
	default:
		return 422 // Unprocessable Content
	}
}

// Rejection is the error Decide, ValidateCommand and Pipeline.Validate return when a business
// rule refuses something. It carries a stable Code and the offending fields (JSON names) so
// that the processor can publish it as a RejectedCommand and the gateway as problem+json
// without string matching.
type Rejection struct {
	Code    RejectCode
	Message string
	Fields  []FieldError
}

// Error renders the code, the message and each bad field, for logs.
func (r *Rejection) Error() string {
	var b strings.Builder
	b.WriteString(string(r.Code))
	b.WriteString(": ")
	b.WriteString(r.Message)
	if len(r.Fields) > 0 {
		b.WriteString(" (")
		for i, f := range r.Fields {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(f.Field)
			b.WriteString(": ")
			b.WriteString(f.Message)
		}
		b.WriteString(")")
	}
	return b.String()
}

// AsRejection finds a *Rejection in err's chain, so callers that wrap domain errors with
// context still get the code back.
func AsRejection(err error) (*Rejection, bool) {
	var r *Rejection
	if errors.As(err, &r) && r != nil {
		return r, true
	}
	return nil, false
}

// reject builds a Rejection with a formatted message.
func reject(code RejectCode, fields []FieldError, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Message: fmt.Sprintf(format, args...), Fields: fields}
}

// fieldErrors collects every bad field of one request, so a caller learns all of them at once
// instead of fixing one per round trip.
type fieldErrors []FieldError

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// rejection returns nil when nothing was collected, else one CodeInvalid Rejection.
func (fe fieldErrors) rejection(what string) error {
	if len(fe) == 0 {
		return nil
	}
	if len(fe) == 1 {
		return reject(CodeInvalid, fe, "%s: %s: %s", what, fe[0].Field, fe[0].Message)
	}
	return reject(CodeInvalid, fe, "%s has %d invalid fields", what, len(fe))
}
