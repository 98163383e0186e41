package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// The analytics endpoints: GET /forecast, /forecast/rolling and /analytics/{win-loss, funnel,
// velocity, changes, stale}. Each handler reads and validates its whole query string first
// (every bad parameter reported at once, in one 400 problem), fills in the defaults (periods
// from Backend.Today, the currency from Backend.ReportingCurrency), then asks the Analytics
// backend and sends its result in the wire shape of analytics_repr.go. The backend's typed
// errors map onto problems in writeAnalyticsError.

// Limits and defaults of the analytics queries.
const (
	maxHorizonDays      = 3660 // days of /forecast/rolling and /analytics/velocity: about ten years
	defaultVelocityDays = 90
	defaultChangesDays  = 7 // /analytics/changes: the last week, today included
)

// codeMissingFXRate is the problem code of a 422 for a conversion that needs a rate the FX
// table does not have.
const codeMissingFXRate = "missing_fx_rate"

// The groupBy values each endpoint accepts (API.md).
var (
	forecastGroups = []string{analytics.GroupNone, analytics.GroupMonth, analytics.GroupQuarter, analytics.GroupOwner, analytics.GroupCategory, analytics.GroupStage}
	winLossGroups  = []string{analytics.GroupNone, analytics.GroupOwner, analytics.GroupReason, analytics.GroupMonth}
)

// dateMessage is the errors[] message of a date parameter that does not parse.
const dateMessage = "must be a date YYYY-MM-DD between 1900-01-01 and 2999-12-31"

// analyticsParams reads the query string of one analytics request. Like GET /opportunities it
// ignores unknown parameters (cache busters, tracing), treats an empty value as absent and
// refuses a repeated one; every problem is collected so that the 400 names them all.
type analyticsParams struct {
	q    url.Values
	errs []fieldError
}

// parseAnalyticsParams parses rawQuery; a string that is no URL query at all is a 400 naming
// "query", as for GET /opportunities.
func parseAnalyticsParams(rawQuery string) (*analyticsParams, *problem) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, newProblem(http.StatusBadRequest, codeInvalidQuery, "The query string is malformed.",
			fieldError{Field: "query", Message: "is not a valid URL query (bad escape or ';')"})
	}
	return &analyticsParams{q: q}, nil
}

func (p *analyticsParams) bad(name, msg string) {
	p.errs = append(p.errs, fieldError{Field: name, Message: msg})
}

// str returns the parameter's single value, "" when absent, empty, repeated or too long (the
// last two recorded as errors).
func (p *analyticsParams) str(name string) string {
	vs := p.q[name]
	switch {
	case len(vs) == 0:
		return ""
	case len(vs) > 1:
		p.bad(name, "must be given at most once")
		return ""
	case len(vs[0]) > maxFilterLen:
		p.bad(name, fmt.Sprintf("must be at most %d bytes", maxFilterLen))
		return ""
	}
	return vs[0]
}

// present reports whether the parameter was sent with a non-empty value (valid or not).
func (p *analyticsParams) present(name string) bool {
	for _, v := range p.q[name] {
		if v != "" {
			return true
		}
	}
	return false
}

// date reads a YYYY-MM-DD parameter; ok is false when it is absent or bad (bad is recorded).
func (p *analyticsParams) date(name string) (d domain.Date, ok bool) {
	v := p.str(name)
	if v == "" {
		return 0, false
	}
	d, err := domain.ParseDate(v)
	if err != nil {
		p.bad(name, dateMessage)
		return 0, false
	}
	return d, true
}

// days reads a day count in 1..maxHorizonDays; absent gives def (0 = required). A bad or
// missing count is recorded (the result is then 0 and unused).
func (p *analyticsParams) days(def int) int {
	v := p.str("days")
	msg := fmt.Sprintf("must be an integer in 1..%d", maxHorizonDays)
	if v == "" {
		if def == 0 {
			if !p.present("days") { // a repeated days was already reported
				p.bad("days", "is required: "+msg)
			}
			return 0
		}
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxHorizonDays {
		p.bad("days", msg)
		return 0
	}
	return n
}

// groupBy reads groupBy against the endpoint's allowed values; absent is "none".
func (p *analyticsParams) groupBy(allowed []string) string {
	v := p.str("groupBy")
	if v == "" {
		return analytics.GroupNone
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.bad("groupBy", `must be one of "`+strings.Join(allowed, `", "`)+`"`)
	return analytics.GroupNone
}

// currency reads the target currency, def (the reporting currency) when absent. Only active
// ISO 4217 codes, in capitals, are accepted: a code without an exponent cannot be rounded to.
func (p *analyticsParams) currency(def func() string) string {
	v := p.str("currency")
	if v == "" {
		if p.present("currency") {
			return "" // repeated: already reported
		}
		return def()
	}
	if _, ok := domain.CurrencyExponent(v); !ok {
		p.bad("currency", "must be an active ISO 4217 code such as EUR")
		return ""
	}
	return v
}

// period reads from and to (both inclusive), each defaulting independently to defFrom and
// defTo. An inverted period names the parameter the client sent: from when it was given (as
// GET /opportunities names closeFrom), else to.
func (p *analyticsParams) period(defFrom, defTo domain.Date) (from, to domain.Date) {
	from, fromOK := p.date("from")
	to, toOK := p.date("to")
	fromGiven, toGiven := p.present("from"), p.present("to")
	if !fromGiven {
		from, fromOK = defFrom, true
	}
	if !toGiven {
		to, toOK = defTo, true
	}
	if fromOK && toOK && from > to {
		switch {
		case fromGiven && toGiven:
			p.bad("from", "must not be after to")
		case fromGiven:
			p.bad("from", fmt.Sprintf("must not be after to (default %s, the end of the default period)", to))
		default:
			p.bad("to", fmt.Sprintf("must not be before from (default %s, the start of the default period)", from))
		}
	}
	return from, to
}

// problem is the 400 naming every bad parameter, or nil.
func (p *analyticsParams) problem() *problem {
	if len(p.errs) == 0 {
		return nil
	}
	return newProblem(http.StatusBadRequest, codeInvalidQuery, "Query parameters are invalid.", p.errs...)
}

// quarterOf is the calendar quarter holding d: its first and last day.
func quarterOf(d domain.Date) (first, last domain.Date) {
	t := d.Time()
	start := time.Date(t.Year(), (t.Month()-1)/3*3+1, 1, 0, 0, 0, 0, time.UTC)
	return domain.DateOf(start), domain.DateOf(start.AddDate(0, 3, -1))
}

// clampDate keeps a computed period end inside the dates the domain accepts; no deal closes
// or changes outside them, so clamping changes no figure.
func clampDate(d int64) domain.Date {
	switch {
	case d < int64(domain.MinDate):
		return domain.MinDate
	case d > int64(domain.MaxDate):
		return domain.MaxDate
	}
	return domain.Date(d)
}

// readQueryParams is the start the handlers reading analyticsParams share (the analytics
// endpoints, GET /commands/{commandId}): it parses the query string and reads the query from
// it with read, which records each bad parameter, so that one 400 names them all. ok is false
// when that answer (or the malformed-query one) has gone out.
func readQueryParams[Q any](w http.ResponseWriter, r *http.Request, read func(p *analyticsParams) Q) (q Q, ok bool) {
	p, prob := parseAnalyticsParams(r.URL.RawQuery)
	if prob == nil {
		q = read(p)
		prob = p.problem()
	}
	if prob != nil {
		writeProblem(w, r, prob)
		return q, false
	}
	return q, true
}

// answerAnalytics is the end the analytics handlers share: the backend's error as its
// problem (what names the query in a logged error), else 200 with the wire shape body gives
// of the result.
func answerAnalytics[R, B any](s *server, w http.ResponseWriter, r *http.Request, what, pipelineID string, res R, err error, body func(R) B) {
	if err != nil {
		s.writeAnalyticsError(w, r, fmt.Errorf("%s: %w", what, err), pipelineID)
		return
	}
	writeJSON(w, r, http.StatusOK, body(res))
}

// serveAnalytics is an analytics endpoint answered by one backend query: read builds the
// query from the parameters (as readQueryParams) and names its pipeline, for the 404 of an
// unknown one; run asks the backend and body gives the result's wire shape (answerAnalytics).
func serveAnalytics[Q, R, B any](s *server, w http.ResponseWriter, r *http.Request, what string,
	run func(Q) (R, error), body func(*R) B, read func(p *analyticsParams) (q Q, pipelineID string)) {
	var pipelineID string
	q, ok := readQueryParams(w, r, func(p *analyticsParams) (q Q) {
		q, pipelineID = read(p)
		return q
	})
	if ok {
		res, err := run(q)
		answerAnalytics(s, w, r, what, pipelineID, &res, err, body)
	}
}

// groupedReport reads the parameters forecast and win/loss both take: the filters, the
// period (default: the current quarter), groupBy among groups and the currency. Their query
// types have the same fields, so win/loss converts the result.
func (s *server) groupedReport(p *analyticsParams, groups []string) analytics.ForecastQuery {
	q := analytics.ForecastQuery{PipelineID: p.str("pipelineId"), OwnerID: p.str("ownerId")}
	q.From, q.To = p.period(quarterOf(s.backend.Today()))
	q.GroupBy = p.groupBy(groups)
	q.Currency = p.currency(s.backend.ReportingCurrency)
	return q
}

// forecast answers GET /forecast?pipelineId&ownerId&from&to&groupBy&currency; the period
// defaults to the current quarter.
func (s *server) forecast(w http.ResponseWriter, r *http.Request) {
	q, ok := readQueryParams(w, r, func(p *analyticsParams) analytics.ForecastQuery {
		return s.groupedReport(p, forecastGroups)
	})
	if ok {
		s.sendForecast(w, r, q)
	}
}

// rollingForecast answers GET /forecast/rolling?days=N&pipelineId&ownerId&groupBy&currency:
// the forecast of close dates in [today, today+N), N in 1..3660 and required (from and to
// are not parameters of this route and are ignored like any unknown parameter).
func (s *server) rollingForecast(w http.ResponseWriter, r *http.Request) {
	q, ok := readQueryParams(w, r, func(p *analyticsParams) analytics.ForecastQuery {
		q := analytics.ForecastQuery{PipelineID: p.str("pipelineId"), OwnerID: p.str("ownerId")}
		n := p.days(0)
		q.GroupBy = p.groupBy(forecastGroups)
		q.Currency = p.currency(s.backend.ReportingCurrency)
		q.From = s.backend.Today()
		q.To = clampDate(int64(q.From) + int64(n) - 1)
		return q
	})
	if ok {
		s.sendForecast(w, r, q)
	}
}

func (s *server) sendForecast(w http.ResponseWriter, r *http.Request, q analytics.ForecastQuery) {
	res, err := s.backend.Forecast(q)
	if err != nil {
		s.writeAnalyticsError(w, r, fmt.Errorf("forecast: %w", err), q.PipelineID)
		return
	}
	writeJSONBody(w, http.StatusOK, forecastBody(&res))
}

// forecastBody is the JSON of a forecast answer. The body of a forecast by owner is about
// 100 kB of fixed-shape JSON; encoding it by reflection took as long as computing it, so it is
// appended directly from the analytics result (byte for byte what writeJSON's json.Marshal
// writes of forecastOut(res); TestForecastJSONMatchesMarshal). Not even forecastOut's copy is
// made: for 200 groups it cost about a tenth of the request.
func forecastBody(res *analytics.ForecastResult) []byte {
	return appendForecastJSON(make([]byte, 0, 512+len(res.Groups)*600), res)
}

// appendForecastJSON appends res in the shape of forecastJSON, as json.Marshal encodes
// forecastOut(res): the wire names are forecastJSON's, and no groups are [] as there.
func appendForecastJSON(b []byte, res *analytics.ForecastResult) []byte {
	b = append(b, `{"currency":`...)
	b = appendJSONString(b, res.Currency)
	b = append(b, `,"from":`...)
	b = appendJSONString(b, res.From)
	b = append(b, `,"to":`...)
	b = appendJSONString(b, res.To)
	b = append(b, `,"groups":[`...)
	for i := range res.Groups {
		g := &res.Groups[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = appendJSONString(b, g.Key)
		b = append(b, ',')
		b = appendForecastFigures(b, &g.ForecastFigures)
		b = append(b, '}')
	}
	b = append(b, ']')
	b = append(b, `,"total":{`...)
	b = appendForecastFigures(b, &res.Total)
	return append(b, "}}"...)
}

// appendForecastFigures appends the fields of f (without braces), in forecastFiguresJSON's
// order.
func appendForecastFigures(b []byte, f *analytics.ForecastFigures) []byte {
	b = appendMeasure(b, `"open":`, &f.Open)
	b = appendMeasure(b, `,"pipeline":`, &f.Pipeline)
	b = appendMeasure(b, `,"bestCase":`, &f.BestCase)
	b = appendMeasure(b, `,"commit":`, &f.Commit)
	b = appendMeasure(b, `,"closedWon":`, &f.ClosedWon)
	b = appendMeasure(b, `,"closedLost":`, &f.ClosedLost)
	b = appendMeasure(b, `,"commitForecast":`, &f.CommitForecast)
	return appendMeasure(b, `,"bestCaseForecast":`, &f.BestCaseForecast)
}

// appendMeasure appends name (with its separator) and m as a measureJSON.
func appendMeasure(b []byte, name string, m *analytics.Measure) []byte {
	b = append(b, name...)
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, m.Count, 10)
	b = append(b, `,"amount":`...)
	b = appendJSONString(b, m.Amount)
	b = append(b, `,"weighted":`...)
	b = appendJSONString(b, m.Weighted)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string the way json.Marshal does: printable ASCII
// other than the characters it escapes is copied; anything else (rare: owner ids are free
// text) goes through json.Marshal itself, so escaping can never differ.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // cannot happen for a string
				q = []byte(`""`)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// winLoss answers GET /analytics/win-loss?pipelineId&ownerId&from&to&groupBy&currency over
// deals whose close date, the day they closed, is in the period (default: the current quarter).
func (s *server) winLoss(w http.ResponseWriter, r *http.Request) {
	serveAnalytics(s, w, r, "win/loss", s.backend.WinLoss, winLossOut, func(p *analyticsParams) (analytics.WinLossQuery, string) {
		q := analytics.WinLossQuery(s.groupedReport(p, winLossGroups))
		return q, q.PipelineID
	})
}

// funnel answers GET /analytics/funnel?pipelineId&ownerId&from&to for one pipeline (default
// "default"; unknown: 404) over stage moves in the period (default: the current quarter).
func (s *server) funnel(w http.ResponseWriter, r *http.Request) {
	serveAnalytics(s, w, r, "funnel", s.backend.Funnel, funnelOut, func(p *analyticsParams) (analytics.FunnelQuery, string) {
		q := analytics.FunnelQuery{PipelineID: p.str("pipelineId"), OwnerID: p.str("ownerId")}
		if q.PipelineID == "" && !p.present("pipelineId") {
			q.PipelineID = domain.DefaultPipelineID
		}
		q.From, q.To = p.period(quarterOf(s.backend.Today()))
		return q, q.PipelineID
	})
}

// velocity answers GET /analytics/velocity?pipelineId&ownerId&days&to&currency: win/loss parts
// from deals whose close date is in the trailing window [to-days+1, to] (days default 90, to
// default today), cycles in whole calendar days, open deals as they are now.
func (s *server) velocity(w http.ResponseWriter, r *http.Request) {
	serveAnalytics(s, w, r, "velocity", s.backend.Velocity, velocityOut, func(p *analyticsParams) (analytics.VelocityQuery, string) {
		q := analytics.VelocityQuery{PipelineID: p.str("pipelineId"), OwnerID: p.str("ownerId")}
		n := p.days(defaultVelocityDays)
		to, _ := p.date("to") // a bad one is recorded
		if !p.present("to") {
			to = s.backend.Today()
		}
		q.Currency = p.currency(s.backend.ReportingCurrency)
		q.To = to
		q.From = clampDate(int64(to) - int64(n) + 1)
		return q, q.PipelineID
	})
}

// changes answers GET /analytics/changes?pipelineId&ownerId&from&to&currency: what happened to
// the pipeline in the period (default: the last 7 days, today included).
func (s *server) changes(w http.ResponseWriter, r *http.Request) {
	serveAnalytics(s, w, r, "changes", s.backend.Changes, changesOut, func(p *analyticsParams) (analytics.ChangesQuery, string) {
		q := analytics.ChangesQuery{PipelineID: p.str("pipelineId"), OwnerID: p.str("ownerId")}
		today := s.backend.Today()
		q.From, q.To = p.period(clampDate(int64(today)-defaultChangesDays+1), today)
		q.Currency = p.currency(s.backend.ReportingCurrency)
		return q, q.PipelineID
	})
}

// stale answers GET /analytics/stale?pipelineId&ownerId: {"items": [staleDealJSON...]}, most
// stale first.
func (s *server) stale(w http.ResponseWriter, r *http.Request) {
	type staleQuery struct{ pipelineID, ownerID string }
	q, ok := readQueryParams(w, r, func(p *analyticsParams) staleQuery {
		return staleQuery{p.str("pipelineId"), p.str("ownerId")}
	})
	if ok {
		items, err := s.backend.Stale(q.pipelineID, q.ownerID)
		answerAnalytics(s, w, r, "stale deals", q.pipelineID, items, err, staleOut)
	}
}

// writeAnalyticsError maps an Analytics backend error onto its problem:
//
//   - *analytics.QueryError: 400 naming its Field (a parameter the HTTP layer let through but
//     the backend refused);
//   - *analytics.MissingRateError: 422 missing_fx_rate naming the currency;
//   - ErrUnknownPipeline: 404 naming pipelineId;
//   - analytics.ErrOverflow: 500, logged (a figure beyond int64 minor units);
//   - anything else: the 500 of a failed read.
func (s *server) writeAnalyticsError(w http.ResponseWriter, r *http.Request, err error, pipelineID string) {
	var qe *analytics.QueryError
	var mr *analytics.MissingRateError
	switch {
	case errors.As(err, &qe):
		field := qe.Field
		if field == "" {
			field = "query"
		}
		writeProblem(w, r, newProblem(http.StatusBadRequest, codeInvalidQuery, "Query parameters are invalid.",
			fieldError{Field: field, Message: qe.Message}))
	case errors.As(err, &mr):
		writeProblem(w, r, missingRateProblem(mr.Currency))
	case errors.Is(err, ErrUnknownPipeline):
		p := notFoundProblem("pipeline", pipelineID)
		p.Errors = []fieldError{{Field: "pipelineId", Message: "is not a known pipeline"}}
		writeProblem(w, r, p)
	case errors.Is(err, analytics.ErrOverflow):
		s.log.ErrorContext(r.Context(), "analytics figure overflow", "error", err)
		writeProblem(w, r, newProblem(http.StatusInternalServerError, codeInternal,
			"A figure of the answer exceeds the range the service can represent; narrow the query or convert to a currency with a larger unit."))
	default:
		s.writeReadError(w, r, err)
	}
}

// missingRateProblem is the 422 for a conversion that needs the rate of currency, which the
// FX table lacks: a figure is never silently left unconverted (API.md, "Money arithmetic").
func missingRateProblem(currency string) *problem {
	msg := "no FX rate for " + currency
	p := newProblem(http.StatusUnprocessableEntity, codeMissingFXRate,
		fmt.Sprintf("%s: figures in %s cannot be converted; set one with PUT %s/fx-rates/%s.", msg, currency, BasePath, currency),
		fieldError{Field: "currency", Message: msg})
	p.Title = "Missing FX rate"
	return p
}
