package query

import (
	"context"
	"errors"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Backend is what the HTTP layer needs from the stream side.
type Backend interface {
	Analytics
	Ready() bool     // take traffic: recovered and every view partition consuming (/readyz)
	Recovered() bool // the views were complete once; gates all reads (503 problem before it)
	// StorageDegraded names what the local disk refuses while local stores wait for it
	// ("" when it writes): writes are then refused with 503, reads are served.
	StorageDegraded() string
	Opportunity(id string) (*domain.Aggregate, error) // nil, nil when unknown; Events may be left out (a state read need not decode the history)
	// History is a page of the opportunity's audit trail: up to limit events with versions
	// after `after`, oldest first, whether more follow, and found false when it is unknown.
	History(id string, after int64, limit int) (events []domain.Event, more, found bool, err error)
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

// Analytics is what the analytics endpoints (GET /forecast, /forecast/rolling and
// /analytics/...) need from the stream side: the aggregates of package analytics answered over
// the backend's read model and FX table, plus the clock and reporting currency that the HTTP
// layer uses to fill in default periods and the default currency. The HTTP layer validates
// every parameter first; a query the backend still refuses comes back as an
// *analytics.QueryError (400 naming its Field), a missing FX rate as an
// *analytics.MissingRateError (422), a figure beyond int64 as analytics.ErrOverflow (500).
type Analytics interface {
	Today() domain.Date        // the injectable clock's date (UTC): "today" of default periods and rolling horizons
	ReportingCurrency() string // the currency figures are converted to unless a query names another
	Forecast(q analytics.ForecastQuery) (analytics.ForecastResult, error)
	WinLoss(q analytics.WinLossQuery) (analytics.WinLossResult, error)
	Funnel(q analytics.FunnelQuery) (analytics.FunnelResult, error) // unknown pipeline: an error wrapping ErrUnknownPipeline
	Velocity(q analytics.VelocityQuery) (analytics.VelocityResult, error)
	Changes(q analytics.ChangesQuery) (analytics.ChangesResult, error)
	Stale(pipelineID, ownerID string) ([]analytics.StaleDeal, error) // "" = all; most stale first
}

// ErrUnknownPipeline is what an Analytics backend wraps when a query names a pipeline it does
// not know (Funnel needs the pipeline's stage order), so the handler can answer 404.
var ErrUnknownPipeline = errors.New("unknown pipeline")
