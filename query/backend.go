package query

import (
	"context"
	"errors"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Backend is what the HTTP layer needs from the stream side.
type Backend interface {
	Ready() bool                                      // views recovered; gate all reads (503 problem) and /readyz on it
	Opportunity(id string) (*domain.Aggregate, error) // nil, nil when unknown
	ListOpportunities(f ListFilter) (items []domain.Opportunity, nextCursor string, err error)
	Pipelines() ([]domain.Pipeline, error)
	Pipeline(id string) (*domain.Pipeline, error)             // nil, nil when unknown
	PutPipeline(ctx context.Context, p domain.Pipeline) error // returns once the broker acked and the view shows it
	FXRates() ([]domain.FXRate, error)
	PutFXRate(ctx context.Context, r domain.FXRate) error
	Send(ctx context.Context, cmd domain.Command) error             // returns once the broker acknowledged the command record
	Await(ctx context.Context, cmd domain.Command) (Outcome, error) // blocks until the processor applied or refused cmd, or ctx ends (then ctx.Err())
}

// Outcome is what became of a command the processor has handled: exactly one of the two
// fields is set. It exists so that Await can report a business refusal as data rather than as
// an error, which keeps transport failures and rule refusals apart.
type Outcome struct {
	Aggregate *domain.Aggregate       // set when applied (also for a duplicate command id: the current state)
	Rejected  *domain.RejectedCommand // set when refused
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

// ErrInvalidCursor is what a Backend wraps when ListFilter.Cursor cannot be parsed. The cursor
// is opaque to the HTTP layer, so only the backend can tell that it is bad; wrapping this
// sentinel lets the handler answer 400 naming "cursor" instead of a 500.
var ErrInvalidCursor = errors.New("invalid list cursor")
