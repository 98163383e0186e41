package domain

import (
	"errors"
	"fmt"
	"testing"
)

func TestRejectionError(t *testing.T) {
	r := &Rejection{Code: CodeInvalid, Message: "bad command", Fields: []FieldError{{"amount", "too many decimals"}, {"closeDate", "not a date"}}}
	want := "invalid_field: bad command (amount: too many decimals; closeDate: not a date)"
	if got := r.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	r = &Rejection{Code: CodeNotFound, Message: "no such opportunity"}
	if got := r.Error(); got != "not_found: no such opportunity" {
		t.Errorf("Error() = %q", got)
	}
}

func TestAsRejection(t *testing.T) {
	r := &Rejection{Code: CodeClosed, Message: "closed"}
	wrapped := fmt.Errorf("processing command c1: %w", r)
	if got, ok := AsRejection(wrapped); !ok || got != r {
		t.Errorf("AsRejection(wrapped) = %v, %v", got, ok)
	}
	if _, ok := AsRejection(errors.New("disk full")); ok {
		t.Error("a plain error is not a rejection")
	}
	if _, ok := AsRejection(nil); ok {
		t.Error("nil is not a rejection")
	}
	var typedNil *Rejection
	if _, ok := AsRejection(typedNil); ok {
		t.Error("a typed nil is not a usable rejection")
	}
}

func TestRejectCodeHTTPStatus(t *testing.T) {
	for code, want := range map[RejectCode]int{
		CodeConflict: 409, CodeAlreadyExists: 409, CodeNotFound: 404,
		CodeInvalid: 422, CodeRequiredFields: 422, CodeClosed: 422, CodeNotClosed: 422,
		CodeUnknownPipeline: 422, CodeUnknownStage: 422, CodeInvalidTransition: 422,
		CodeCloseDateInFuture: 422, CodeCloseDateBeforeCreated: 422,
	} {
		if got := code.HTTPStatus(); got != want {
			t.Errorf("%s.HTTPStatus() = %d, want %d", code, got, want)
		}
	}
}
