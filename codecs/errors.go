package codecs

import (
	"errors"
	"fmt"

	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
)

// Sentinel errors of decoding. Every decode failure is a *DecodeError wrapping one of them
// (or the underlying goavro error), so callers can route with errors.Is (for example, send
// ErrUnknownSchema records to a DLQ to be replayed once the schema is known) and log the
// details of the *DecodeError.
var (
	// ErrBadMagic: the record does not start with the single-object encoding marker C3 01, so
	// it is not an Avro single-object record at all (plain JSON, another serializer, garbage).
	ErrBadMagic = errors.New("not Avro single-object encoded (bad magic)")
	// ErrTruncated: the record ends before its 10-byte header or its Avro body is complete.
	ErrTruncated = avro.ErrTruncated
	// ErrUnknownSchema: the header's fingerprint names no schema this build ships, e.g. a
	// record from a newer producer. Without the writer schema the body cannot be read.
	ErrUnknownSchema = errors.New("unknown writer schema fingerprint")
	// ErrSchemaMismatch: the writer schema is known but belongs to another record type (an
	// event handed to DecodeCommand, a record on the wrong topic).
	ErrSchemaMismatch = errors.New("writer schema is for another record type")
	// ErrMalformed: the body does not parse with the writer schema (bad length, union index or
	// enum symbol, bytes left over after the record).
	ErrMalformed = avro.ErrMalformed
)

// ErrInvalidValue is returned by the encoders for a domain value that has no Avro form: a
// command or event type outside the six of API.md, a command whose body does not match its
// type, an integer beyond the Avro int range. It signals a programming error upstream, so it
// is never produced for anything a well-formed domain value can hold.
var ErrInvalidValue = avro.ErrInvalidValue

// DecodeError describes a record that could not be decoded. It wraps a sentinel error
// (ErrBadMagic, ErrTruncated, ErrUnknownSchema, ErrSchemaMismatch, ErrMalformed) or the
// error of the generic decoder, and says which record type was expected and which writer
// schema the header named, which is what an operator needs to decide between "corrupt" and
// "deploy the newer schema".
type DecodeError struct {
	Record      string // record type the caller asked for, e.g. "command"
	Fingerprint uint64 // writer fingerprint from the header; 0 when the header was unreadable
	Schema      string // embedded file of the writer schema when it is known, else ""
	Err         error
}

// Error reports the record type, the writer schema and the cause.
func (e *DecodeError) Error() string {
	switch {
	case e.Schema != "":
		return fmt.Sprintf("codecs: decode %s (writer %s, fingerprint %016x): %v", e.Record, e.Schema, e.Fingerprint, e.Err)
	case e.Fingerprint != 0:
		return fmt.Sprintf("codecs: decode %s (fingerprint %016x): %v", e.Record, e.Fingerprint, e.Err)
	default:
		return fmt.Sprintf("codecs: decode %s: %v", e.Record, e.Err)
	}
}

// Unwrap makes errors.Is and errors.As see the cause.
func (e *DecodeError) Unwrap() error { return e.Err }
