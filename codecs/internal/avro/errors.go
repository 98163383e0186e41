package avro

import (
	"errors"
	"fmt"
)

// The sentinel errors of the primitives. Package codecs exports them under the same names
// (codecs.ErrMalformed is ErrMalformed), so errors.Is works on either.
var (
	// ErrTruncated: the data ends before the value is complete.
	ErrTruncated = errors.New("record truncated")
	// ErrMalformed: the body does not parse with the writer schema (bad length, union index or
	// enum symbol, bytes left over after the record).
	ErrMalformed = errors.New("malformed Avro body")
	// ErrInvalidValue: a value that has no Avro form, such as an integer beyond the int range.
	ErrInvalidValue = errors.New("value cannot be encoded")
)

// IntError reports a Go int that does not fit the Avro int of field.
func IntError(field string, v int) error {
	return fmt.Errorf("%w: %s = %d does not fit an Avro int", ErrInvalidValue, field, v)
}
