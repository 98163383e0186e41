package query

import (
	"encoding/json"
	"fmt"

	"github.com/crm-pipeline/crm-pipeline/analytics"
)

// The JSON representations of the analytics answers (API.md). Like those of repr.go they are
// structs of this package rather than JSON tags on the analytics results, so that package
// analytics stays a plain computation and a field renamed there cannot change a wire name by
// accident. Structs whose fields match an analytics type one for one are converted with a Go
// conversion: a field added or renamed there then fails to compile here instead of silently
// reaching (or leaving) the wire. Nil lists are sent as [], never null, so a client can always
// iterate them. testdata/analytics_golden.txt pins every body.

// measureJSON is a forecast figure: API.md's M.
type measureJSON struct {
	Count    int64  `json:"count"`
	Amount   string `json:"amount"`
	Weighted string `json:"weighted"`
}

// forecastFiguresJSON are the categories and rollups of a forecast, in the order of API.md;
// appendForecastFigures writes the same names in the same order.
type forecastFiguresJSON struct {
	Open             measureJSON `json:"open"`
	Pipeline         measureJSON `json:"pipeline"`
	BestCase         measureJSON `json:"bestCase"`
	Commit           measureJSON `json:"commit"`
	ClosedWon        measureJSON `json:"closedWon"`
	ClosedLost       measureJSON `json:"closedLost"`
	CommitForecast   measureJSON `json:"commitForecast"`
	BestCaseForecast measureJSON `json:"bestCaseForecast"`
}

// forecastGroupJSON is one group: its key beside the figures, in one object.
type forecastGroupJSON struct {
	Key string `json:"key"`
	forecastFiguresJSON
}

// forecastJSON is the body of GET /forecast and /forecast/rolling:
//
//	{"currency","from","to","groups":[{"key", <figures>}],"total":{<figures>}}
//
// The handlers do not build it: appendForecastJSON writes the same bytes straight from the
// analytics result, for speed. It is the definition that appender is held to
// (TestForecastJSONMatchesMarshal).
type forecastJSON struct {
	Currency string              `json:"currency"`
	From     string              `json:"from"`
	To       string              `json:"to"`
	Groups   []forecastGroupJSON `json:"groups"`
	Total    forecastFiguresJSON `json:"total"`
}

func forecastFiguresOut(f *analytics.ForecastFigures) forecastFiguresJSON {
	return forecastFiguresJSON{
		Open:             measureJSON(f.Open),
		Pipeline:         measureJSON(f.Pipeline),
		BestCase:         measureJSON(f.BestCase),
		Commit:           measureJSON(f.Commit),
		ClosedWon:        measureJSON(f.ClosedWon),
		ClosedLost:       measureJSON(f.ClosedLost),
		CommitForecast:   measureJSON(f.CommitForecast),
		BestCaseForecast: measureJSON(f.BestCaseForecast),
	}
}

// forecastOut is r in its wire shape, what appendForecastJSON must write byte for byte once
// json.Marshal has encoded it.
func forecastOut(r *analytics.ForecastResult) forecastJSON {
	out := forecastJSON{Currency: r.Currency, From: r.From, To: r.To,
		Groups: make([]forecastGroupJSON, len(r.Groups)), Total: forecastFiguresOut(&r.Total)}
	for i := range r.Groups {
		g := &r.Groups[i]
		out.Groups[i] = forecastGroupJSON{Key: g.Key, forecastFiguresJSON: forecastFiguresOut(&g.ForecastFigures)}
	}
	return out
}

// countAmountJSON is a count with one money figure.
type countAmountJSON struct {
	Count  int64  `json:"count"`
	Amount string `json:"amount"`
}

// winLossFiguresJSON are the win/loss measures, shared by the whole period and each group.
type winLossFiguresJSON struct {
	Won             countAmountJSON `json:"won"`
	Lost            countAmountJSON `json:"lost"`
	WinRateByCount  string          `json:"winRateByCount"`
	WinRateByAmount string          `json:"winRateByAmount"`
	AvgDealSizeWon  string          `json:"avgDealSizeWon"`
	AvgCycleDaysWon string          `json:"avgCycleDaysWon"`
}

// reasonFigureJSON counts the lost deals of one loss reason.
type reasonFigureJSON struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
	Amount string `json:"amount"`
}

// competitorFigureJSON counts the lost deals that named one competitor.
type competitorFigureJSON struct {
	Competitor string `json:"competitor"`
	Count      int64  `json:"count"`
	Amount     string `json:"amount"`
}

// winLossGroupJSON is one group: its key beside the figures, in one object.
type winLossGroupJSON struct {
	Key string `json:"key"`
	winLossFiguresJSON
}

// winLossJSON is the body of GET /analytics/win-loss: the period's figures inline, then the
// lists.
//
//	{"currency","from","to","won":{"count","amount"},"lost":{...},"winRateByCount",
//	 "winRateByAmount","avgDealSizeWon","avgCycleDaysWon","lossReasons":[{"reason","count","amount"}],
//	 "competitors":[{"competitor","count","amount"}],"groups":[{"key", <figures>}]}
type winLossJSON struct {
	Currency string `json:"currency"`
	From     string `json:"from"`
	To       string `json:"to"`
	winLossFiguresJSON
	LossReasons []reasonFigureJSON     `json:"lossReasons"`
	Competitors []competitorFigureJSON `json:"competitors"`
	Groups      []winLossGroupJSON     `json:"groups"`
}

func winLossFiguresOut(f *analytics.WinLossFigures) winLossFiguresJSON {
	return winLossFiguresJSON{
		Won:             countAmountJSON(f.Won),
		Lost:            countAmountJSON(f.Lost),
		WinRateByCount:  f.WinRateByCount,
		WinRateByAmount: f.WinRateByAmount,
		AvgDealSizeWon:  f.AvgDealSizeWon,
		AvgCycleDaysWon: f.AvgCycleDaysWon,
	}
}

func winLossOut(r *analytics.WinLossResult) winLossJSON {
	out := winLossJSON{Currency: r.Currency, From: r.From, To: r.To, winLossFiguresJSON: winLossFiguresOut(&r.WinLossFigures),
		LossReasons: make([]reasonFigureJSON, len(r.LossReasons)),
		Competitors: make([]competitorFigureJSON, len(r.Competitors)),
		Groups:      make([]winLossGroupJSON, len(r.Groups))}
	for i, f := range r.LossReasons {
		out.LossReasons[i] = reasonFigureJSON(f)
	}
	for i, f := range r.Competitors {
		out.Competitors[i] = competitorFigureJSON(f)
	}
	for i := range r.Groups {
		g := &r.Groups[i]
		out.Groups[i] = winLossGroupJSON{Key: g.Key, winLossFiguresJSON: winLossFiguresOut(&g.WinLossFigures)}
	}
	return out
}

// funnelStageJSON is one stage of the funnel (analytics.FunnelStage defines each count).
type funnelStageJSON struct {
	StageID        string `json:"stageId"`
	StageName      string `json:"stageName"`
	Status         string `json:"status"`
	Entered        int64  `json:"entered"`
	Advanced       int64  `json:"advanced"`
	Won            int64  `json:"won"`
	Lost           int64  `json:"lost"`
	Regressed      int64  `json:"regressed"`
	Reopened       int64  `json:"reopened"`
	ConversionRate string `json:"conversionRate"`
	StaysEnded     int64  `json:"staysEnded"`
	AvgDaysInStage string `json:"avgDaysInStage"`
}

// funnelJSON is the body of GET /analytics/funnel: {"pipelineId","from","to","stages":[...]}.
type funnelJSON struct {
	PipelineID string            `json:"pipelineId"`
	From       string            `json:"from"`
	To         string            `json:"to"`
	Stages     []funnelStageJSON `json:"stages"`
}

func funnelOut(r *analytics.FunnelResult) funnelJSON {
	out := funnelJSON{PipelineID: r.PipelineID, From: r.From, To: r.To, Stages: make([]funnelStageJSON, len(r.Stages))}
	for i, st := range r.Stages {
		out.Stages[i] = funnelStageJSON(st)
	}
	return out
}

// velocityJSON is the body of GET /analytics/velocity: the velocity beside its components, so
// a reader can check the product.
type velocityJSON struct {
	Currency        string `json:"currency"`
	From            string `json:"from"`
	To              string `json:"to"`
	OpenCount       int64  `json:"openCount"`
	WonCount        int64  `json:"wonCount"`
	LostCount       int64  `json:"lostCount"`
	WinRate         string `json:"winRate"`
	WonAmount       string `json:"wonAmount"`
	AvgDealSizeWon  string `json:"avgDealSizeWon"`
	AvgCycleDaysWon string `json:"avgCycleDaysWon"`
	VelocityPerDay  string `json:"velocityPerDay"`
}

// countOnlyJSON is a count without money (a currency change has no comparable amount).
type countOnlyJSON struct {
	Count int64 `json:"count"`
}

// changesJSON is the body of GET /analytics/changes: one figure per kind of change.
type changesJSON struct {
	Currency        string          `json:"currency"`
	From            string          `json:"from"`
	To              string          `json:"to"`
	Created         countAmountJSON `json:"created"`
	Won             countAmountJSON `json:"won"`
	Lost            countAmountJSON `json:"lost"`
	Reopened        countAmountJSON `json:"reopened"`
	CloseDatePushed countAmountJSON `json:"closeDatePushed"`
	CloseDatePulled countAmountJSON `json:"closeDatePulled"`
	AmountIncreased countAmountJSON `json:"amountIncreased"`
	AmountDecreased countAmountJSON `json:"amountDecreased"`
	CurrencyChanged countOnlyJSON   `json:"currencyChanged"`
}

func changesOut(r *analytics.ChangesResult) changesJSON {
	return changesJSON{
		Currency:        r.Currency,
		From:            r.From,
		To:              r.To,
		Created:         countAmountJSON(r.Created),
		Won:             countAmountJSON(r.Won),
		Lost:            countAmountJSON(r.Lost),
		Reopened:        countAmountJSON(r.Reopened),
		CloseDatePushed: countAmountJSON(r.CloseDatePushed),
		CloseDatePulled: countAmountJSON(r.CloseDatePulled),
		AmountIncreased: countAmountJSON(r.AmountIncreased),
		AmountDecreased: countAmountJSON(r.AmountDecreased),
		CurrencyChanged: countOnlyJSON(r.CurrencyChanged),
	}
}

// staleDealJSON is one item of GET /analytics/stale ({"items":[...]}).
type staleDealJSON struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	OwnerID        string `json:"ownerId"`
	PipelineID     string `json:"pipelineId"`
	StageID        string `json:"stageId"`
	StageName      string `json:"stageName"`
	DaysInStage    int64  `json:"daysInStage"`
	StaleAfterDays int    `json:"staleAfterDays"`
	StageEnteredAt string `json:"stageEnteredAt"`
	Amount         string `json:"amount"`
	Currency       string `json:"currency"`
	CloseDate      string `json:"closeDate"`
}

func staleOut(items []analytics.StaleDeal) itemsJSON[staleDealJSON] {
	out := itemsJSON[staleDealJSON]{Items: make([]staleDealJSON, len(items))}
	for i, d := range items {
		out.Items[i] = staleDealJSON(d)
	}
	return out
}

// MarshalAnalytics encodes an analytics answer exactly as its endpoint sends it (without the
// final newline): v is an analytics.ForecastResult, WinLossResult, FunnelResult,
// VelocityResult, ChangesResult or a []analytics.StaleDeal (sent as {"items":[...]}). It
// exists because the wire names live only in this package: a test or tool that computes an
// answer elsewhere (the analyticstest.Oracle of the end-to-end tests) compares it with an HTTP
// body through this function instead of keeping a copy of API.md's names. Any other type is
// an error.
func MarshalAnalytics(v any) ([]byte, error) {
	switch r := v.(type) {
	case analytics.ForecastResult:
		return forecastBody(&r), nil
	case analytics.WinLossResult:
		return json.Marshal(winLossOut(&r))
	case analytics.FunnelResult:
		return json.Marshal(funnelOut(&r))
	case analytics.VelocityResult:
		return json.Marshal(velocityJSON(r))
	case analytics.ChangesResult:
		return json.Marshal(changesOut(&r))
	case []analytics.StaleDeal:
		return json.Marshal(staleOut(r))
	}
	return nil, fmt.Errorf("query: MarshalAnalytics: %T is not an analytics answer", v)
}
