package views

import (
	"errors"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Outcome is what became of a command the processor has handled: exactly one of the two
// fields is set. It exists so that Await can report a business refusal as data rather than as
// an error, which keeps transport failures and rule refusals apart.
type Outcome struct {
	Aggregate *domain.Aggregate       // set when applied (also for a duplicate command id: the current state)
	Rejected  *domain.RejectedCommand // set when refused
	// Replayed is set when the command id had been applied before this sending: the answer
	// is the outcome of that first request (the Idempotent-Replayed header).
	Replayed bool
}

// ListFilter selects opportunities for GET /opportunities. The HTTP layer has already
// validated every field, so a backend can trust Status, the dates and Limit.
type ListFilter struct {
	PipelineID, OwnerID, AccountID, StageID string
	Status                                  domain.Status // "" = any
	CloseFrom, CloseTo                      *domain.Date  // inclusive
	Limit                                   int           // 1..500, default 50
	Cursor                                  string        // opaque; the backend produces and parses it
}

// ErrInvalidCursor is what ListOpportunities wraps when ListFilter.Cursor cannot be parsed. The cursor
// is opaque to the HTTP layer, so only the backend can tell that it is bad; wrapping this
// sentinel lets the HTTP handler answer 400 naming "cursor" instead of a 500.
var ErrInvalidCursor = errors.New("invalid list cursor")

// ErrUnknownPipeline is what Funnel wraps when a query names a pipeline it does
// not know (Funnel needs the pipeline's stage order), so the handler can answer 404.
var ErrUnknownPipeline = errors.New("unknown pipeline")
