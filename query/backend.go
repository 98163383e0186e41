package query

import (
	"context"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/gateway"
	"github.com/crm-pipeline/crm-pipeline/views"
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
	// Send returns once the broker acknowledged the command record, with its position.
	Send(ctx context.Context, cmd domain.Command) (Position, error)
	// Await blocks until the processor applied or refused cmd and, for a command this
	// instance sent, every view reflects its position; or until ctx ends (then an error
	// wrapping ctx.Err()).
	Await(ctx context.Context, cmd domain.Command) (Outcome, error)
	// WaitPositions blocks until this instance reflects every position (opportunity view
	// and analytics), or ctx ends: then an error wrapping views.ErrPositionNotReached.
	WaitPositions(ctx context.Context, ps []Position) error
	// CommandOutcome says where a command stands (views.CommandOutcome).
	CommandOutcome(ctx context.Context, q CommandQuery) (CommandOutcome, error)
	// Subscribe opens a cursor on the instance's change feed for the live stream, after the
	// resume token after ("": from now on); a token it cannot continue from gives a reset
	// first (views.Feed). Errors wrap views.ErrNotRecovered or views.ErrFeedClosed.
	Subscribe(after string, f FeedFilter) (*Subscription, error)
}

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

// The types and errors the backend and the handlers share are the views' own: query depends
// on views, never the reverse (views.Service is the Backend's read side).
type (
	// Outcome is views.Outcome.
	Outcome = views.Outcome
	// ListFilter is views.ListFilter.
	ListFilter = views.ListFilter
	// FeedFilter is views.FeedFilter.
	FeedFilter = views.FeedFilter
	// Subscription is views.Subscription.
	Subscription = views.Subscription
)

// Errors a Backend wraps, so that handlers can answer 400 and 404 instead of 500.
var (
	ErrInvalidCursor   = views.ErrInvalidCursor
	ErrUnknownPipeline = views.ErrUnknownPipeline
)

// Stream is the service's Backend: the views answer the reads and wait for outcomes, the
// gateway publishes the writes.
type Stream struct {
	*views.Service
	*gateway.Gateway
}

var _ Backend = Stream{}
