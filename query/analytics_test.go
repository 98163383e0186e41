package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// The analytics tests run on the fake backend, whose analytics.Store is fed from the commands
// it applies, so every figure below is computed by the real aggregation. testNow is
// 2025-03-14: the current quarter is 2025-01-01..2025-03-31.
//
// seedDeals creates, through the HTTP API:
//
//	created 2025-02-12 (testNow - 30 days), closed on testNow without a date, so their close
//	date becomes 2025-03-14 (planned 2025-03-31):
//	  c  u-1  USD  2000.00  won (cycle 2025-02-12..2025-03-14, 31 days counted inclusively)
//	  d  u-2  USD   500.00  lost, reason "price", competitor "Globex"
//	created on testNow:
//	  a  u-1  USD 10000.00  close 2025-03-20  proposal (50 %, best case)
//	  b  u-2  EUR  1000.00  close 2025-02-10  qualification (10 %, pipeline)
//	  e  u-1  USD   999.00  close 2025-06-30  qualification (next quarter)
//
// EUR is 1.0823 USD in the fake's FX table.
func seedDeals(t testing.TB, e *env) {
	t.Helper()
	e.fb.setNow(testNow.AddDate(0, 0, -30))
	postDeal(t, e, "c", "u-1", "USD", "2000.00", "2025-03-31", "")
	postDeal(t, e, "d", "u-2", "USD", "500.00", "2025-03-31", "")
	e.fb.setNow(testNow)
	postDeal(t, e, "a", "u-1", "USD", "10000.00", "2025-03-20", "proposal")
	postDeal(t, e, "b", "u-2", "EUR", "1000.00", "2025-02-10", "")
	postDeal(t, e, "e", "u-1", "USD", "999.00", "2025-06-30", "")
	wantJSON(t, e.do(t, "POST", "/api/v1/opportunities/c/close-won", `{}`, "Prefer", "wait=1"), 200)
	wantJSON(t, e.do(t, "POST", "/api/v1/opportunities/d/close-lost", `{"reason":"price","competitor":"Globex"}`, "Prefer", "wait=1"), 200)
}

func postDeal(t testing.TB, e *env, id, owner, currency, amount, closeDate, stage string) {
	t.Helper()
	body := map[string]any{"id": id, "name": "Deal " + id, "accountId": "acc-1", "ownerId": owner,
		"amount": amount, "currency": currency, "closeDate": closeDate}
	if stage != "" {
		body["stageId"] = stage
	}
	b, _ := json.Marshal(body)
	wantJSON(t, e.do(t, "POST", "/api/v1/opportunities", string(b), "Prefer", "wait=1"), http.StatusCreated)
}

// getAs GETs path, wants 200 JSON and decodes it into a T.
func getAs[T any](t testing.TB, e *env, path string) T {
	t.Helper()
	rec := e.do(t, "GET", path, "")
	wantJSON(t, rec, 200)
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("%s: %v: %s", path, err, rec.Body)
	}
	return v
}

func meas(count int64, amount, weighted string) measureJSON {
	return measureJSON{Count: count, Amount: amount, Weighted: weighted}
}

func ca(count int64, amount string) countAmountJSON {
	return countAmountJSON{Count: count, Amount: amount}
}

func groupKeys[G any](gs []G, key func(G) string) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, key(g))
	}
	return out
}

func forecastKeys(r forecastJSON) []string {
	return groupKeys(r.Groups, func(g forecastGroupJSON) string { return g.Key })
}

func TestForecastDefaults(t *testing.T) {
	e := newEnv(t)
	seedDeals(t, e)
	rec := e.do(t, "GET", "/api/v1/forecast", "")
	raw := wantJSON(t, rec, 200)
	for _, k := range []string{"currency", "from", "to", "groups", "total"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("forecast lacks %q: %s", k, rec.Body)
		}
	}
	if g, ok := raw["groups"].([]any); !ok || len(g) != 0 {
		t.Errorf("groups = %#v, want []", raw["groups"])
	}
	var r forecastJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Currency != "USD" || r.From != "2025-01-01" || r.To != "2025-03-31" {
		t.Fatalf("period/currency = %s %s..%s", r.Currency, r.From, r.To)
	}
	want := forecastFiguresJSON{
		Open:             meas(2, "11082.30", "5108.23"), // a + b (EUR 1000.00 → 1082.30, weighted 100.00 → 108.23)
		Pipeline:         meas(1, "1082.30", "108.23"),
		BestCase:         meas(1, "10000.00", "5000.00"),
		Commit:           meas(0, "0.00", "0.00"),
		ClosedWon:        meas(1, "2000.00", "2000.00"),
		ClosedLost:       meas(1, "500.00", "0.00"),
		CommitForecast:   meas(1, "2000.00", "2000.00"),
		BestCaseForecast: meas(2, "12000.00", "7000.00"),
	}
	if r.Total != want {
		t.Fatalf("total =\n%+v\nwant\n%+v", r.Total, want)
	}
}

func TestForecastParameters(t *testing.T) {
	e := newEnv(t)
	seedDeals(t, e)
	const f = "/api/v1/forecast?"

	r := getAs[forecastJSON](t, e, f+"groupBy=owner")
	if !slices.Equal(forecastKeys(r), []string{"u-1", "u-2"}) || r.Groups[0].Open != meas(1, "10000.00", "5000.00") ||
		r.Groups[1].ClosedLost != meas(1, "500.00", "0.00") {
		t.Errorf("groupBy owner: %+v", r.Groups)
	}
	r = getAs[forecastJSON](t, e, f+"from=2025-01-01&to=2025-06-30&groupBy=month")
	if !slices.Equal(forecastKeys(r), []string{"2025-02", "2025-03", "2025-06"}) || r.Total.Open.Count != 3 {
		t.Errorf("groupBy month: %v, open %+v", forecastKeys(r), r.Total.Open)
	}
	r = getAs[forecastJSON](t, e, f+"from=2025-01-01&to=2025-06-30&groupBy=quarter")
	if !slices.Equal(forecastKeys(r), []string{"2025-Q1", "2025-Q2"}) || r.Groups[1].Open != meas(1, "999.00", "99.90") {
		t.Errorf("groupBy quarter: %+v", r.Groups)
	}
	r = getAs[forecastJSON](t, e, f+"groupBy=category")
	if !slices.Equal(forecastKeys(r), []string{"bestCase", "closedLost", "closedWon", "open", "pipeline"}) {
		t.Errorf("groupBy category: %v", forecastKeys(r))
	}
	// groupBy stage: the open deals per stage, open figures only, converted by the server;
	// the closed c and d are in no group but in the total.
	r = getAs[forecastJSON](t, e, f+"groupBy=stage")
	zero := meas(0, "0.00", "0.00")
	stageOnly := func(open measureJSON) forecastFiguresJSON {
		return forecastFiguresJSON{Open: open, Pipeline: zero, BestCase: zero, Commit: zero, ClosedWon: zero, ClosedLost: zero, CommitForecast: zero, BestCaseForecast: zero}
	}
	if !slices.Equal(forecastKeys(r), []string{"proposal", "qualification"}) ||
		r.Groups[0].forecastFiguresJSON != stageOnly(meas(1, "10000.00", "5000.00")) ||
		r.Groups[1].forecastFiguresJSON != stageOnly(meas(1, "1082.30", "108.23")) || // EUR 1000.00
		r.Total.Open != meas(2, "11082.30", "5108.23") || r.Total.ClosedWon.Count != 1 {
		t.Errorf("groupBy stage: %+v total %+v", r.Groups, r.Total)
	}
	// rolling: a (proposal) and e (qualification, USD 999.00 / 1.0823), not b (before today)
	r = getAs[forecastJSON](t, e, "/api/v1/forecast/rolling?days=3660&groupBy=stage&currency=EUR")
	if !slices.Equal(forecastKeys(r), []string{"proposal", "qualification"}) || r.Groups[0].Open != meas(1, "9239.58", "4619.79") ||
		r.Groups[1].Open != meas(1, "923.03", "92.30") {
		t.Errorf("rolling groupBy stage: %+v", r.Groups)
	}
	// from alone keeps the default to; the period is inclusive at both ends. c, planned for
	// 2025-03-31, was won on 2025-03-14 and counts there, not in this period.
	r = getAs[forecastJSON](t, e, f+"from=2025-03-20")
	if r.From != "2025-03-20" || r.To != "2025-03-31" || r.Total.Open.Count != 1 || r.Total.ClosedWon.Count != 0 {
		t.Errorf("from only: %s..%s %+v", r.From, r.To, r.Total)
	}
	r = getAs[forecastJSON](t, e, f+"to=2025-03-20&from=2025-03-20")
	if r.Total.Open != meas(1, "10000.00", "5000.00") {
		t.Errorf("one-day period: %+v", r.Total.Open)
	}
	// filters
	r = getAs[forecastJSON](t, e, f+"ownerId=u-2")
	if r.Total.Open != meas(1, "1082.30", "108.23") || r.Total.ClosedWon.Count != 0 {
		t.Errorf("ownerId: %+v", r.Total)
	}
	r = getAs[forecastJSON](t, e, f+"pipelineId=enterprise")
	if r.Total.Open.Count != 0 || r.Total.ClosedLost.Count != 0 {
		t.Errorf("other pipeline: %+v", r.Total)
	}
	// another currency: each currency's sum converted once (USD 2000.00 / 1.0823 = 1847.92)
	r = getAs[forecastJSON](t, e, f+"currency=EUR")
	if r.Currency != "EUR" || r.Total.ClosedWon != meas(1, "1847.92", "1847.92") || r.Total.Pipeline != meas(1, "1000.00", "100.00") {
		t.Errorf("currency EUR: %+v", r.Total)
	}
	// empty values are absent; unknown parameters are ignored; none is explicit
	r = getAs[forecastJSON](t, e, f+"currency=&groupBy=&from=&_=1")
	if r.Currency != "USD" || r.From != "2025-01-01" || len(r.Groups) != 0 {
		t.Errorf("empty parameters: %+v", r)
	}
	getAs[forecastJSON](t, e, f+"groupBy=none")
}

func TestForecastQuarterDefaults(t *testing.T) {
	for _, tc := range []struct{ today, from, to string }{
		{"2025-01-01", "2025-01-01", "2025-03-31"},
		{"2024-05-31", "2024-04-01", "2024-06-30"},
		{"2024-09-30", "2024-07-01", "2024-09-30"},
		{"2025-12-31", "2025-10-01", "2025-12-31"},
	} {
		e := newEnv(t)
		today, err := domain.ParseDate(tc.today)
		if err != nil {
			t.Fatal(err)
		}
		e.fb.setNow(today.Time().Add(23*time.Hour + 59*time.Minute)) // late in the UTC day
		r := getAs[forecastJSON](t, e, "/api/v1/forecast")
		if r.From != tc.from || r.To != tc.to {
			t.Errorf("today %s: %s..%s, want %s..%s", tc.today, r.From, r.To, tc.from, tc.to)
		}
	}
}

func TestRollingForecast(t *testing.T) {
	e := newEnv(t)
	seedDeals(t, e)
	// [today, today+N): a closes on 2025-03-20, the 7th day
	r := getAs[forecastJSON](t, e, "/api/v1/forecast/rolling?days=7")
	if r.From != "2025-03-14" || r.To != "2025-03-20" || r.Currency != "USD" || r.Total.Open != meas(1, "10000.00", "5000.00") {
		t.Fatalf("days=7: %s..%s %+v", r.From, r.To, r.Total.Open)
	}
	r = getAs[forecastJSON](t, e, "/api/v1/forecast/rolling?days=6")
	if r.To != "2025-03-19" || r.Total.Open.Count != 0 {
		t.Fatalf("days=6: %s %+v", r.To, r.Total.Open)
	}
	r = getAs[forecastJSON](t, e, "/api/v1/forecast/rolling?days=1")
	if r.From != "2025-03-14" || r.To != "2025-03-14" {
		t.Fatalf("days=1: %s..%s", r.From, r.To)
	}
	r = getAs[forecastJSON](t, e, "/api/v1/forecast/rolling?days=3660&groupBy=owner&ownerId=u-1&currency=EUR")
	if r.To != "2035-03-21" || r.Currency != "EUR" || !slices.Equal(forecastKeys(r), []string{"u-1"}) ||
		r.Total.Open.Count != 2 || r.Total.ClosedWon.Count != 1 {
		t.Fatalf("days=3660 grouped: %s %v %+v", r.To, forecastKeys(r), r.Total)
	}
}

func TestWinLoss(t *testing.T) {
	e := newEnv(t)
	seedDeals(t, e)
	rec := e.do(t, "GET", "/api/v1/analytics/win-loss", "")
	raw := wantJSON(t, rec, 200)
	for _, k := range []string{"currency", "from", "to", "won", "lost", "winRateByCount", "winRateByAmount",
		"avgDealSizeWon", "avgCycleDaysWon", "lossReasons", "competitors", "groups"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("win/loss lacks %q", k)
		}
	}
	var r winLossJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Currency != "USD" || r.From != "2025-01-01" || r.To != "2025-03-31" {
		t.Fatalf("defaults: %s %s..%s", r.Currency, r.From, r.To)
	}
	want := winLossFiguresJSON{Won: ca(1, "2000.00"), Lost: ca(1, "500.00"), WinRateByCount: "0.500000",
		WinRateByAmount: "0.800000", AvgDealSizeWon: "2000.00", AvgCycleDaysWon: "31.0"}
	if r.winLossFiguresJSON != want {
		t.Fatalf("figures %+v, want %+v", r.winLossFiguresJSON, want)
	}
	if !slices.Equal(r.LossReasons, []reasonFigureJSON{{Reason: "price", Count: 1, Amount: "500.00"}}) ||
		!slices.Equal(r.Competitors, []competitorFigureJSON{{Competitor: "Globex", Count: 1, Amount: "500.00"}}) ||
		len(r.Groups) != 0 {
		t.Fatalf("lists %+v %+v %+v", r.LossReasons, r.Competitors, r.Groups)
	}
	key := func(g winLossGroupJSON) string { return g.Key }
	r = getAs[winLossJSON](t, e, "/api/v1/analytics/win-loss?groupBy=reason")
	if !slices.Equal(groupKeys(r.Groups, key), []string{"price"}) || r.Groups[0].Lost != ca(1, "500.00") || r.Groups[0].Won.Count != 0 {
		t.Fatalf("groupBy reason %+v", r.Groups)
	}
	r = getAs[winLossJSON](t, e, "/api/v1/analytics/win-loss?groupBy=owner&currency=EUR")
	if !slices.Equal(groupKeys(r.Groups, key), []string{"u-1", "u-2"}) || r.Won != ca(1, "1847.92") || r.Currency != "EUR" {
		t.Fatalf("groupBy owner in EUR %+v", r)
	}
	r = getAs[winLossJSON](t, e, "/api/v1/analytics/win-loss?groupBy=month")
	if !slices.Equal(groupKeys(r.Groups, key), []string{"2025-03"}) {
		t.Fatalf("groupBy month %+v", r.Groups)
	}
	// closed on 2025-03-14: a period ending the day before sees nothing
	r = getAs[winLossJSON](t, e, "/api/v1/analytics/win-loss?to=2025-03-13&ownerId=u-1")
	if r.Won.Count != 0 || r.WinRateByCount != "0.000000" || r.AvgDealSizeWon != "0.00" {
		t.Fatalf("empty period %+v", r)
	}
}

func TestFunnel(t *testing.T) {
	e := newEnv(t)
	seedDeals(t, e)
	r := getAs[funnelJSON](t, e, "/api/v1/analytics/funnel")
	if r.PipelineID != "default" || r.From != "2025-01-01" || r.To != "2025-03-31" || len(r.Stages) != 6 {
		t.Fatalf("defaults: %+v", r)
	}
	q := r.Stages[0]
	if q.StageID != "qualification" || q.Entered != 4 || q.Won != 1 || q.Lost != 1 || q.Advanced != 0 ||
		q.ConversionRate != "0.250000" || q.StaysEnded != 2 || q.AvgDaysInStage != "30.0" {
		t.Fatalf("qualification %+v", q)
	}
	if r.Stages[2].Entered != 1 || r.Stages[4].Entered != 1 || r.Stages[5].Entered != 1 {
		t.Fatalf("stages %+v", r.Stages)
	}
	r = getAs[funnelJSON](t, e, "/api/v1/analytics/funnel?pipelineId=default&ownerId=u-2&from=2025-03-14&to=2025-03-14")
	if r.Stages[0].Entered != 1 || r.Stages[0].Lost != 1 || r.Stages[0].StaysEnded != 1 {
		t.Fatalf("owner u-2 on one day: %+v", r.Stages[0])
	}
	// a pipeline with no moves has every stage at zero
	wantJSON(t, e.do(t, "PUT", "/api/v1/pipelines/enterprise", customPipeline), 200)
	r = getAs[funnelJSON](t, e, "/api/v1/analytics/funnel?pipelineId=enterprise")
	if r.PipelineID != "enterprise" || len(r.Stages) != 3 || r.Stages[0].Entered != 0 || r.Stages[0].ConversionRate != "0.000000" {
		t.Fatalf("enterprise %+v", r)
	}
	p := wantProblem(t, e.do(t, "GET", "/api/v1/analytics/funnel?pipelineId=nope", ""), 404, "not_found")
	if !p.hasField("pipelineId") || !strings.Contains(p.Detail, `"nope"`) {
		t.Fatalf("unknown pipeline problem %+v", p)
	}
}

func TestVelocity(t *testing.T) {
	e := newEnv(t)
	seedDeals(t, e)
	r := getAs[velocityJSON](t, e, "/api/v1/analytics/velocity")
	// 3 open × (1 won / 2 closed) × 2000.00 / 31 days = 96.774… a day
	want := velocityJSON{Currency: "USD", From: "2024-12-15", To: "2025-03-14", OpenCount: 3, WonCount: 1,
		LostCount: 1, WinRate: "0.500000", WonAmount: "2000.00", AvgDealSizeWon: "2000.00", AvgCycleDaysWon: "31.0",
		VelocityPerDay: "96.77"}
	if r != want {
		t.Fatalf("velocity\n%+v\nwant\n%+v", r, want)
	}
	r = getAs[velocityJSON](t, e, "/api/v1/analytics/velocity?days=1&to=2025-03-13")
	if r.From != "2025-03-13" || r.To != "2025-03-13" || r.WonCount != 0 || r.OpenCount != 3 || r.VelocityPerDay != "0.00" {
		t.Fatalf("nothing closed: %+v", r)
	}
	r = getAs[velocityJSON](t, e, "/api/v1/analytics/velocity?days=3660&ownerId=u-1&currency=EUR")
	if r.From != "2015-03-08" || r.OpenCount != 2 || r.LostCount != 0 || r.WonAmount != "1847.92" || r.Currency != "EUR" {
		t.Fatalf("u-1 in EUR: %+v", r)
	}
	// a window reaching before 1900 starts at 1900-01-01: nothing closes earlier
	r = getAs[velocityJSON](t, e, "/api/v1/analytics/velocity?to=1900-01-10")
	if r.From != "1900-01-01" || r.To != "1900-01-10" {
		t.Fatalf("clamped window: %s..%s", r.From, r.To)
	}
}

func TestChanges(t *testing.T) {
	e := newEnv(t)
	seedDeals(t, e)
	r := getAs[changesJSON](t, e, "/api/v1/analytics/changes")
	// the last 7 days: a, b, e created (USD 10999.00 + EUR 1000.00 → 1082.30), c won, d lost
	if r.Currency != "USD" || r.From != "2025-03-08" || r.To != "2025-03-14" || r.Created != ca(3, "12081.30") ||
		r.Won != ca(1, "2000.00") || r.Lost != ca(1, "500.00") || r.Reopened != ca(0, "0.00") || r.CurrencyChanged.Count != 0 {
		t.Fatalf("defaults: %+v", r)
	}
	r = getAs[changesJSON](t, e, "/api/v1/analytics/changes?from=2025-02-01")
	if r.Created != ca(5, "14581.30") || r.To != "2025-03-14" {
		t.Fatalf("from 2025-02-01: %+v", r)
	}
	r = getAs[changesJSON](t, e, "/api/v1/analytics/changes?ownerId=u-2&currency=EUR")
	if r.Created != ca(1, "1000.00") || r.Lost != ca(1, "461.98") { // 500.00 / 1.0823
		t.Fatalf("u-2 in EUR: %+v", r)
	}
}

func TestStale(t *testing.T) {
	e := newEnv(t)
	seedDeals(t, e)
	rec := e.do(t, "GET", "/api/v1/analytics/stale", "")
	if m := wantJSON(t, rec, 200); len(m) != 1 || m["items"] == nil || len(m["items"].([]any)) != 0 {
		t.Fatalf("nothing stale yet: %s", rec.Body)
	}
	// 20 days later: b and e have sat in qualification (stale after 14) too long; a (proposal,
	// 30) has not
	e.fb.setNow(testNow.AddDate(0, 0, 20))
	type items struct{ Items []staleDealJSON }
	r := getAs[items](t, e, "/api/v1/analytics/stale")
	if ids := groupKeys(r.Items, func(s staleDealJSON) string { return s.ID }); !slices.Equal(ids, []string{"b", "e"}) {
		t.Fatalf("stale ids %v", ids)
	}
	want := staleDealJSON{ID: "b", Name: "Deal b", OwnerID: "u-2", PipelineID: "default", StageID: "qualification",
		StageName: "Qualification", DaysInStage: 20, StaleAfterDays: 14, StageEnteredAt: "2025-03-14T09:26:53Z",
		Amount: "1000.00", Currency: "EUR", CloseDate: "2025-02-10"}
	if r.Items[0] != want {
		t.Fatalf("stale deal %+v, want %+v", r.Items[0], want)
	}
	r = getAs[items](t, e, "/api/v1/analytics/stale?ownerId=u-1&pipelineId=default")
	if len(r.Items) != 1 || r.Items[0].ID != "e" {
		t.Fatalf("owner u-1: %+v", r.Items)
	}
	r = getAs[items](t, e, "/api/v1/analytics/stale?pipelineId=enterprise")
	if len(r.Items) != 0 {
		t.Fatalf("other pipeline: %+v", r.Items)
	}
}

func TestAnalyticsBadQuery(t *testing.T) {
	e := newEnv(t)
	seedDeals(t, e)
	long := strings.Repeat("o", maxFilterLen+1)
	for _, tc := range []struct {
		path   string
		fields []string
	}{
		{"/forecast?from=2025-13-01", []string{"from"}},
		{"/forecast?to=tomorrow", []string{"to"}},
		{"/forecast?from=1899-12-31", []string{"from"}},
		{"/forecast?from=2025-1-01", []string{"from"}},
		{"/forecast?from=2025-04-01&to=2025-03-01", []string{"from"}},
		{"/forecast?from=2025-05-01", []string{"from"}}, // after the default to (2025-03-31)
		{"/forecast?to=2024-12-31", []string{"to"}},     // before the default from (2025-01-01)
		{"/forecast?groupBy=reason", []string{"groupBy"}},
		{"/forecast?groupBy=Month", []string{"groupBy"}},
		{"/forecast?currency=XXX", []string{"currency"}},
		{"/forecast?currency=usd", []string{"currency"}},
		{"/forecast?from=2025-01-01&from=2025-01-02", []string{"from"}},
		{"/forecast?pipelineId=a&pipelineId=b", []string{"pipelineId"}},
		{"/forecast?currency=USD&currency=EUR", []string{"currency"}},
		{"/forecast?ownerId=" + long, []string{"ownerId"}},
		{"/forecast?groupBy=x&currency=y&from=z&to=w", []string{"from", "to", "groupBy", "currency"}},
		{"/forecast?from=%zz", []string{"query"}},
		{"/forecast/rolling", []string{"days"}},
		{"/forecast/rolling?days=", []string{"days"}},
		{"/forecast/rolling?days=0", []string{"days"}},
		{"/forecast/rolling?days=3661", []string{"days"}},
		{"/forecast/rolling?days=-1", []string{"days"}},
		{"/forecast/rolling?days=seven", []string{"days"}},
		{"/forecast/rolling?days=1.5", []string{"days"}},
		{"/forecast/rolling?days=99999999999999999999", []string{"days"}},
		{"/forecast/rolling?days=1&days=2", []string{"days"}},
		{"/forecast/rolling?days=7&groupBy=reason&currency=ABC", []string{"groupBy", "currency"}},
		{"/analytics/win-loss?groupBy=quarter", []string{"groupBy"}},
		{"/analytics/win-loss?groupBy=category", []string{"groupBy"}},
		{"/analytics/win-loss?groupBy=stage", []string{"groupBy"}},
		{"/analytics/win-loss?from=2025-03-02&to=2025-03-01", []string{"from"}},
		{"/analytics/win-loss?currency=EURO", []string{"currency"}},
		{"/analytics/win-loss?ownerId=a&ownerId=b", []string{"ownerId"}},
		{"/analytics/funnel?from=yesterday", []string{"from"}},
		{"/analytics/funnel?pipelineId=default&pipelineId=x", []string{"pipelineId"}},
		{"/analytics/funnel?to=2024-01-01", []string{"to"}},
		{"/analytics/velocity?days=0", []string{"days"}},
		{"/analytics/velocity?days=3661", []string{"days"}},
		{"/analytics/velocity?to=2025-02-30", []string{"to"}},
		{"/analytics/velocity?to=a&to=b&currency=x", []string{"to", "currency"}},
		{"/analytics/changes?from=2025-03-15", []string{"from"}}, // after the default to (today)
		{"/analytics/changes?to=2025-03-07", []string{"to"}},     // before the default from (today - 6)
		{"/analytics/changes?currency=jpy", []string{"currency"}},
		{"/analytics/stale?ownerId=a&ownerId=b", []string{"ownerId"}},
		{"/analytics/stale?pipelineId=" + long, []string{"pipelineId"}},
	} {
		p := wantProblem(t, e.do(t, "GET", "/api/v1"+tc.path, ""), 400, codeInvalidQuery)
		if !slices.Equal(p.fields(), tc.fields) {
			t.Errorf("%s: fields %v, want %v", tc.path, p.fields(), tc.fields)
		}
	}
}

func TestAnalyticsMissingRate(t *testing.T) {
	e := newEnv(t)
	seedDeals(t, e)
	postDeal(t, e, "j", "u-3", "JPY", "150000", "2025-03-25", "")
	for _, tc := range []struct{ path, currency string }{
		{"/forecast", "JPY"}, // a JPY deal without a JPY rate
		{"/forecast/rolling?days=30", "JPY"},
		{"/analytics/changes", "JPY"},                 // its creation is a change
		{"/forecast?ownerId=u-1&currency=GBP", "GBP"}, // the target has no rate
		{"/analytics/win-loss?currency=GBP", "GBP"},
		{"/analytics/velocity?currency=GBP", "GBP"},
	} {
		rec := e.do(t, "GET", "/api/v1"+tc.path, "")
		p := wantProblem(t, rec, 422, codeMissingFXRate)
		if p.Title != "Missing FX rate" || !strings.Contains(p.Detail, "no FX rate for "+tc.currency) ||
			len(p.Errors) != 1 || p.Errors[0].Field != "currency" || p.Errors[0].Message != "no FX rate for "+tc.currency {
			t.Errorf("%s: %s", tc.path, rec.Body)
		}
	}
	// figures that need no conversion need no rate: JPY alone, or only USD deals
	if r := getAs[forecastJSON](t, e, "/api/v1/forecast?ownerId=u-3&currency=JPY"); r.Total.Open != meas(1, "150000", "15000") {
		t.Fatalf("JPY alone: %+v", r.Total.Open)
	}
	getAs[forecastJSON](t, e, "/api/v1/forecast?ownerId=u-1")
	// once the rate exists, the same query converts
	wantJSON(t, e.do(t, "PUT", "/api/v1/fx-rates/JPY", `{"rate":"0.0067"}`), 200)
	if r := getAs[forecastJSON](t, e, "/api/v1/forecast?ownerId=u-3"); r.Total.Open != meas(1, "1005.00", "100.50") {
		t.Fatalf("JPY converted: %+v", r.Total.Open)
	}
}

func TestAnalyticsBackendErrors(t *testing.T) {
	paths := []string{"/forecast", "/forecast/rolling?days=7", "/analytics/win-loss", "/analytics/funnel",
		"/analytics/velocity", "/analytics/changes", "/analytics/stale"}
	for _, tc := range []struct {
		err    error
		status int
		code   string
		field  string
	}{
		{fmt.Errorf("store: %w", analytics.ErrOverflow), 500, codeInternal, ""},
		{errors.New("disk on fire"), 500, codeInternal, ""},
		{fmt.Errorf("wrapped: %w", &analytics.QueryError{Field: "pipelineId", Message: "bad"}), 400, codeInvalidQuery, "pipelineId"},
		{&analytics.QueryError{Message: "no field"}, 400, codeInvalidQuery, "query"},
		{fmt.Errorf("wrapped: %w", &analytics.MissingRateError{Currency: "CHF"}), 422, codeMissingFXRate, "currency"},
	} {
		e := newEnv(t)
		e.fb.analyticsErr = tc.err
		for _, path := range paths {
			rec := e.do(t, "GET", "/api/v1"+path, "")
			p := wantProblem(t, rec, tc.status, tc.code)
			if tc.field != "" && !p.hasField(tc.field) {
				t.Errorf("%v on %s: fields %v", tc.err, path, p.fields())
			}
			if strings.Contains(rec.Body.String(), "disk on fire") || strings.Contains(rec.Body.String(), "int64 range") {
				t.Errorf("%s: internal error leaked: %s", path, rec.Body)
			}
		}
		if tc.status == 500 && !strings.Contains(e.logs.String(), tc.err.Error()) {
			t.Errorf("%v not logged", tc.err)
		}
	}
}

// analyticsPaths are every analytics route with a valid query.
var analyticsPaths = []string{
	"/api/v1/forecast", "/api/v1/forecast/rolling?days=30", "/api/v1/analytics/win-loss",
	"/api/v1/analytics/funnel", "/api/v1/analytics/velocity", "/api/v1/analytics/changes",
	"/api/v1/analytics/stale",
}

func TestAnalyticsGatedOnReady(t *testing.T) {
	e := newEnv(t)
	e.fb.setReady(false)
	for _, p := range analyticsPaths {
		wantProblem(t, e.do(t, "GET", p, ""), 503, codeNotReady)
	}
	e.fb.setReady(true)
	for _, p := range analyticsPaths {
		wantJSON(t, e.do(t, "GET", p, ""), 200)
	}
}

func TestAnalyticsNeedReadRole(t *testing.T) {
	e := newAuthEnv(t)
	for _, p := range analyticsPaths {
		want401(t, e.do(t, "GET", p, ""), challenge)
		want401(t, e.do(t, "GET", p, "", bearer(unknownTok)...), challengeInvalid)
		wantJSON(t, e.do(t, "GET", p, "", bearer(readTok)...), 200)
	}
	// the role gate runs before parameter validation
	want401(t, e.do(t, "GET", "/api/v1/forecast/rolling", ""), challenge)
	wantProblem(t, e.do(t, "GET", "/api/v1/forecast/rolling", "", bearer(readTok)...), 400, codeInvalidQuery)
	wantProblem(t, e.do(t, "POST", "/api/v1/forecast", "{}", bearer(adminTok)...), 405, codeMethodNotAllowed)
}

// FuzzAnalyticsQuery throws arbitrary query strings at GET /forecast (and, with the same query,
// at the other analytics routes): the answer is 200 or a 4xx problem, never a 500 (which is
// also what a recovered panic becomes).
func FuzzAnalyticsQuery(f *testing.F) {
	f.Add("from=2025-01-01&to=2025-06-30&groupBy=month&currency=EUR")
	f.Add("days=3660&groupBy=owner&ownerId=u-1")
	f.Add("from=2999-12-31&to=1900-01-01")
	f.Add("to=1900-01-01&days=3660&currency=JPY")
	f.Add("groupBy=category&pipelineId=nope&from=%zz")
	e := newEnv(f, quiet)
	seedDeals(f, e)
	postDeal(f, e, "j", "u-3", "JPY", "150000", "2025-03-25", "")
	statuses := map[int]bool{200: true, 400: true, 404: true, 422: true}
	f.Fuzz(func(t *testing.T, q string) {
		for _, path := range []string{"/api/v1/forecast", "/api/v1/forecast/rolling", "/api/v1/analytics/win-loss",
			"/api/v1/analytics/funnel", "/api/v1/analytics/velocity", "/api/v1/analytics/changes", "/api/v1/analytics/stale"} {
			req := newTestRequest("GET", path, nil)
			req.URL.RawQuery = q
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			checkNo500(t, rec)
			if !statuses[rec.Code] || (rec.Code == 404 && path != "/api/v1/analytics/funnel") {
				t.Fatalf("%s?%s: status %d: %s", path, q, rec.Code, rec.Body)
			}
		}
	})
}
