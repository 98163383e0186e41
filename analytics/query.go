package analytics

import (
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// The result types below are plain Go values: their wire names (the JSON of API.md) live in
// package query, which converts them, so that a field renamed here for the code's sake cannot
// change the HTTP answers, and the aggregation does not depend on a transport.

// GroupBy values of the forecast and win/loss queries (API.md). "" means GroupNone.
const (
	GroupNone     = "none"
	GroupMonth    = "month"    // "2025-03", by close date (forecast and win/loss)
	GroupQuarter  = "quarter"  // "2025-Q1", forecast only
	GroupOwner    = "owner"    // the owner id
	GroupCategory = "category" // forecast only: one group per category key (open, pipeline, bestCase, commit, closedWon, closedLost)
	GroupReason   = "reason"   // win/loss only: lost deals by loss reason
	GroupStage    = "stage"    // forecast only: the open deals by stage id (see ForecastResult)
)

// ForecastQuery selects deals by close date in [From, To] (both inclusive). The rolling
// forecast of API.md is the same query over [today, today+N-1]. Empty PipelineID or OwnerID
// means all; Currency is the target currency (the HTTP layer fills in the reporting currency).
type ForecastQuery struct {
	From, To   domain.Date
	PipelineID string
	OwnerID    string
	GroupBy    string // none, month, quarter, owner, category, stage
	Currency   string
}

// Measure is API.md's M: a count and two money figures in the result currency. Weighted is
// the sum over deals of amount × probability / 100, each deal rounded half up first.
type Measure struct {
	Count    int64
	Amount   string
	Weighted string
}

// ForecastFigures are the exclusive categories and the two cumulative rollups. An open deal
// counts in Open and in exactly one of Pipeline, BestCase, Commit (none when its category is
// omitted); a won deal only in ClosedWon, a lost one only in ClosedLost. The rollups are sums
// of the figures shown beside them (CommitForecast = Commit + ClosedWon, BestCaseForecast =
// BestCase + Commit + ClosedWon, field by field), so a reader can always add them up.
type ForecastFigures struct {
	Open             Measure
	Pipeline         Measure
	BestCase         Measure
	Commit           Measure
	ClosedWon        Measure
	ClosedLost       Measure
	CommitForecast   Measure
	BestCaseForecast Measure
}

// ForecastGroup is one group of a grouped forecast.
type ForecastGroup struct {
	Key string
	ForecastFigures
}

// ForecastResult is the answer to a ForecastQuery, what GET /forecast and /forecast/rolling
// send (query renders it). Groups are sorted by key and hold only keys with at least one deal
// (empty for groupBy none). Money converts per API.md: within each group (and the total),
// each category's sum per currency is converted once and rounded half up; the figure is the
// sum of those. The total is computed the same way from all selected deals, so it does not
// depend on groupBy (it may differ from the sum of the groups by the rounding of the
// conversions).
//
// groupBy stage: per stage of the open deals in the period, one group whose key is the stage
// id (the deal's current stageId), holding the open deals in that stage: Open is their count,
// amount and weighted amount, converted like any group's (each currency's sum once per figure
// within the group); every other category and both rollups of a stage group are zero (count
// 0, zero amounts: "0.00" in USD), whatever the deals' forecast
// categories, since the aggregation keeps the open figures per stage only. Closed deals are
// in no stage group (the won and lost stages have none), so the groups' open counts add up to
// Total.Open.Count, and Total is the usual total of all selected deals, closed ones included.
// Forecast buckets written before stage grouping existed carry no stage figures: their deals
// are in Total but in no group until `crm-pipeline reset-analytics` rebuilds them.
type ForecastResult struct {
	Currency string
	From     string
	To       string
	Groups   []ForecastGroup
	Total    ForecastFigures
}

// WinLossQuery selects closed deals whose close date (the day they closed, as the forecast
// places them) is in [From, To].
type WinLossQuery struct {
	From, To   domain.Date
	PipelineID string
	OwnerID    string
	GroupBy    string // none, owner, reason, month
	Currency   string
}

// CountAmount is a count with one money figure in the result currency.
type CountAmount struct {
	Count  int64
	Amount string
}

// WinLossFigures are the win/loss measures of a set of closed deals.
//
//   - WinRateByCount = won.count / (won.count + lost.count); WinRateByAmount is the same over
//     the converted amounts shown. Rates have 6 decimals, half up; "0.000000" when nothing
//     closed.
//   - AvgDealSizeWon = won.amount / won.count, rounded half up to the minor unit ("0.00" when
//     nothing was won).
//   - AvgCycleDaysWon = mean over won deals of their cycle in whole calendar days, counted
//     inclusively from the UTC day of createdAt to the close date (closed the day it was
//     created: 1; created 2027-01-01, closed 2027-01-03: 3; never less than 1), 1 decimal,
//     half up ("0.0" when nothing was won).
type WinLossFigures struct {
	Won             CountAmount
	Lost            CountAmount
	WinRateByCount  string
	WinRateByAmount string
	AvgDealSizeWon  string
	AvgCycleDaysWon string
}

// ReasonFigure counts lost deals with one loss reason.
type ReasonFigure struct {
	Reason string
	Count  int64
	Amount string
}

// CompetitorFigure counts lost deals that named one competitor (deals naming none are left
// out).
type CompetitorFigure struct {
	Competitor string
	Count      int64
	Amount     string
}

// WinLossGroup is one group of a grouped win/loss answer. With groupBy reason each group holds
// the lost deals of one reason (won deals have no reason: they appear only in the total, and
// the group's rates are 0).
type WinLossGroup struct {
	Key string
	WinLossFigures
}

// WinLossResult is the answer to a WinLossQuery, what GET /analytics/win-loss sends (query
// renders it): the figures of the whole period, the loss reasons and competitors of its lost
// deals, and the groups. LossReasons and Competitors are sorted by count (descending), then
// name; Groups by key. Money converts per API.md (each currency's sum once per figure).
type WinLossResult struct {
	Currency string
	From     string
	To       string
	WinLossFigures
	LossReasons []ReasonFigure
	Competitors []CompetitorFigure
	Groups      []WinLossGroup
}

// FunnelQuery selects stage moves by the UTC day of the event in [From, To]; a closing event
// (won, lost) counts on the deal's close date instead.
type FunnelQuery struct {
	From, To   domain.Date
	PipelineID string // must be empty or the id of the pipeline passed to Funnel
	OwnerID    string // the owner after the event; "" = all
}

// FunnelStage is one stage of the funnel. Definitions (all counted on the day of the event,
// a closing event's on the close date: the move into the won or lost stage and the stay it
// ends):
//
//   - Entered: entries into the stage: creations in it, moves and reopens into it, wins and
//     losses into the won and lost stages. A skipped stage is not entered (qualification ->
//     proposal enters proposal only); re-entering counts again.
//   - Advanced: moves out of this open stage to a later open stage of the pipeline's order.
//   - Won, Lost: moves out of this open stage into a won or lost stage.
//   - Regressed: moves out of this open stage to an earlier open stage (neither advanced nor
//     won/lost).
//   - Reopened: moves out of this closed stage by a reopen.
//   - ConversionRate = (Advanced + Won) / Entered, 6 decimals half up, "0.000000" when nothing
//     entered. It is a flow ratio over the period, so deals that entered before the period and
//     left in it can push it above 1.
//   - StaysEnded, AvgDaysInStage: the stays in the stage that ended in the period (by any move
//     out) and their mean length in days (from the stage's entry to the move, whole
//     milliseconds), 1 decimal half up, "0.0" when none ended.
//
// Moves are classified against the stage order of the pipeline given to the query; a move to
// a stage that pipeline no longer has is counted for neither stage.
type FunnelStage struct {
	StageID        string
	StageName      string
	Status         string
	Entered        int64
	Advanced       int64
	Won            int64
	Lost           int64
	Regressed      int64
	Reopened       int64
	ConversionRate string
	StaysEnded     int64
	AvgDaysInStage string
}

// FunnelResult is the answer to a FunnelQuery, what GET /analytics/funnel sends (query renders
// it): one entry per stage of the pipeline in stage order, so a reader can draw the funnel
// without knowing the pipeline.
type FunnelResult struct {
	PipelineID string
	From       string
	To         string
	Stages     []FunnelStage
}

// ChangesQuery selects pipeline changes by the UTC day of the event in [From, To]; a closing
// event (won, lost, and the close-date and amount changes it made) counts on the deal's close
// date instead.
type ChangesQuery struct {
	From, To   domain.Date
	PipelineID string
	OwnerID    string // the owner after the event; "" = all
	Currency   string
}

// CountOnly is a count without money.
type CountOnly struct {
	Count int64
}

// ChangesResult is what happened to the pipeline in a period, one count per accepted event
// (a deal won, reopened and won again counts twice, unlike win/loss, which reflects current
// states):
//
//   - Created: creations; amount as created.
//   - Won, Lost, Reopened: those events; amount of the deal after the event.
//   - CloseDatePushed / CloseDatePulled: events (updates and closings) that moved the close
//     date later / earlier; amount of those deals after the event. Closing sets the close date
//     to the day the deal closed, so a deal closed before its planned day is pulled, after it
//     pushed.
//   - AmountIncreased / AmountDecreased: events that raised / lowered the amount in the same
//     currency; amount = the sum of the increases / decreases (positive).
//   - CurrencyChanged: events that changed the currency; such a change is not an amount
//     increase or decrease (the amounts are not comparable).
//
// Money converts per API.md (each currency's sum once per figure).
type ChangesResult struct {
	Currency        string
	From            string
	To              string
	Created         CountAmount
	Won             CountAmount
	Lost            CountAmount
	Reopened        CountAmount
	CloseDatePushed CountAmount
	CloseDatePulled CountAmount
	AmountIncreased CountAmount
	AmountDecreased CountAmount
	CurrencyChanged CountOnly
}

// VelocityQuery asks for the sales velocity of a pipeline (or all) and owner (or all), with
// the win/loss parts taken from deals whose close date is in the trailing window [From, To]
// (the HTTP layer computes From = To - days + 1).
type VelocityQuery struct {
	From, To   domain.Date
	PipelineID string
	OwnerID    string
	Currency   string
}

// VelocityResult is sales velocity, money per day:
//
//	velocityPerDay = openCount × winRate × avgDealSizeWon / avgCycleDaysWon
//
// computed exactly as openCount × wonAmount × wonCount / ((wonCount + lostCount) × the sum of
// the won deals' cycle days), i.e. from the exact averages, and rounded half up once to the
// minor unit. Cycles are whole calendar days counted inclusively (see WinLossFigures), at
// least 1 each, so a deal won the day it was created divides by 1, not by 0 or by seconds.
// openCount is the current number of open deals (all close dates); wonAmount is the converted
// won amount shown. When nothing was won, velocity is 0. The components carry the same
// formats as win/loss.
type VelocityResult struct {
	Currency        string
	From            string
	To              string
	OpenCount       int64
	WonCount        int64
	LostCount       int64
	WinRate         string
	WonAmount       string
	AvgDealSizeWon  string
	AvgCycleDaysWon string
	VelocityPerDay  string
}

// Validation. Every reader of a query validates it with the Validate methods below, so that a
// bad query is refused the same way wherever it is answered: the Store's queries call them
// first, and the test oracle of package analyticstest (outside this package, and independent
// of the Store in everything it computes) calls them too, since the property and system tests
// require it to return the same *QueryError as the Store. That is why they are exported; the
// arithmetic behind the answers is not.

// Validate returns nil for a forecast query the Store answers, else the *QueryError
// Store.Forecast returns for it: an inverted period, an unknown target currency, or a groupBy
// other than "", none, month, quarter, owner, category and stage.
func (q ForecastQuery) Validate() error {
	_, err := checkForecastQuery(q)
	return err
}

// Validate returns nil for a win/loss query the Store answers, else the *QueryError
// Store.WinLoss returns for it: an inverted period, an unknown target currency, or a groupBy
// other than "", none, owner, reason and month.
func (q WinLossQuery) Validate() error {
	_, err := checkWinLossQuery(q)
	return err
}

// Validate returns nil for a funnel query the Store answers for pipeline p, else the
// *QueryError Store.Funnel returns for it: an inverted period, or a PipelineID other than ""
// and p's.
func (q FunnelQuery) Validate(p domain.Pipeline) error {
	if err := checkPeriod(q.From, q.To); err != nil {
		return err
	}
	if q.PipelineID != "" && q.PipelineID != p.ID {
		return &QueryError{Field: "pipelineId", Message: "the query names pipeline " + quote(q.PipelineID) + " but was given " + quote(p.ID)}
	}
	return nil
}

// Validate returns nil for a changes query the Store answers, else the *QueryError
// Store.Changes returns for it: an inverted period or an unknown target currency.
func (q ChangesQuery) Validate() error {
	if err := checkPeriod(q.From, q.To); err != nil {
		return err
	}
	return checkCurrency(q.Currency)
}

// Validate returns nil for a velocity query the Store answers, else the *QueryError
// Store.Velocity returns for it: an inverted period or an unknown target currency.
func (q VelocityQuery) Validate() error {
	if err := checkPeriod(q.From, q.To); err != nil {
		return err
	}
	return checkCurrency(q.Currency)
}

// checkPeriod refuses an empty or inverted period.
func checkPeriod(from, to domain.Date) error {
	if from > to {
		return &QueryError{Field: "to", Message: "must not be before from (" + from.String() + " > " + to.String() + ")"}
	}
	return nil
}

// checkCurrency refuses a target currency that is not an ISO 4217 code we know.
func checkCurrency(cur string) error {
	if _, ok := domain.CurrencyExponent(cur); !ok {
		return &QueryError{Field: "currency", Message: "unknown ISO 4217 currency " + quote(cur)}
	}
	return nil
}

// checkGroupBy normalises "" to none and refuses values outside allowed.
func checkGroupBy(g string, allowed ...string) (string, error) {
	if g == "" {
		return GroupNone, nil
	}
	for _, a := range allowed {
		if g == a {
			return g, nil
		}
	}
	msg := "must be one of"
	for i, a := range allowed {
		if i > 0 {
			msg += ","
		}
		msg += " " + a
	}
	return "", &QueryError{Field: "groupBy", Message: msg + ", got " + quote(g)}
}

func quote(s string) string { return "\"" + s + "\"" }
