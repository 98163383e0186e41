package query

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/analytics"
)

// analyticsGoldenFile pins the bodies of every analytics endpoint. It was written by the code
// of commit 540cbc1, when the wire names were still JSON tags on the analytics result types,
// before they moved into this package; the answers must stay byte for byte what they were, so
// the file is an expectation, not a snapshot to regenerate: edit it by hand only together with
// an intended change of API.md.
const analyticsGoldenFile = "testdata/analytics_golden.txt"

// goldenText is free text that needs escaping in JSON (quotes, a backslash, HTML characters, a
// control character, non-ASCII, U+2028), for the string fields of canned answers.
const goldenText = "q\"b\\s <a>&amp; tab\t é 日本 \u2028"

// goldenDealText is free text a command accepts (no control characters) that still needs
// escaping, for the name, loss reason and competitor of a seeded deal.
const goldenDealText = `Déal "w" \ <b>&amp; 日本`

// cannedAnalytics answers the analytics queries with fixed results, so that the golden bodies
// cover every field with a value of its own (a swapped or renamed field shows) and the nil
// lists a backend may return. The rest of Backend is the fake's.
type cannedAnalytics struct {
	*fakeBackend
	forecast analytics.ForecastResult
	winLoss  analytics.WinLossResult
	funnel   analytics.FunnelResult
	velocity analytics.VelocityResult
	changes  analytics.ChangesResult
	stale    []analytics.StaleDeal
}

func (c *cannedAnalytics) Forecast(analytics.ForecastQuery) (analytics.ForecastResult, error) {
	return c.forecast, nil
}

func (c *cannedAnalytics) WinLoss(analytics.WinLossQuery) (analytics.WinLossResult, error) {
	return c.winLoss, nil
}

func (c *cannedAnalytics) Funnel(analytics.FunnelQuery) (analytics.FunnelResult, error) {
	return c.funnel, nil
}

func (c *cannedAnalytics) Velocity(analytics.VelocityQuery) (analytics.VelocityResult, error) {
	return c.velocity, nil
}

func (c *cannedAnalytics) Changes(analytics.ChangesQuery) (analytics.ChangesResult, error) {
	return c.changes, nil
}

func (c *cannedAnalytics) Stale(string, string) ([]analytics.StaleDeal, error) { return c.stale, nil }

// fullCanned is a result of every shape with each field distinct: counts n, n+1, ...; amounts
// "n.01", "n.02", ...
func fullCanned() cannedAnalytics {
	n := int64(0)
	next := func() int64 { n++; return n }
	money := func() string { return strings.Repeat("9", int(next()%3)+1) + "." + string(rune('0'+n%10)) + "1" }
	meas := func() analytics.Measure {
		return analytics.Measure{Count: next(), Amount: money(), Weighted: "-" + money()}
	}
	figs := func() analytics.ForecastFigures {
		return analytics.ForecastFigures{Open: meas(), Pipeline: meas(), BestCase: meas(), Commit: meas(),
			ClosedWon: meas(), ClosedLost: meas(), CommitForecast: meas(), BestCaseForecast: meas()}
	}
	ca := func() analytics.CountAmount { return analytics.CountAmount{Count: next(), Amount: money()} }
	wl := func() analytics.WinLossFigures {
		return analytics.WinLossFigures{Won: ca(), Lost: ca(), WinRateByCount: "0.12345" + money(),
			WinRateByAmount: "0.5432" + money(), AvgDealSizeWon: money(), AvgCycleDaysWon: "3." + money()}
	}
	stage := func(id string) analytics.FunnelStage {
		return analytics.FunnelStage{StageID: id, StageName: goldenText + id, Status: "open", Entered: next(),
			Advanced: next(), Won: next(), Lost: next(), Regressed: next(), Reopened: next(),
			ConversionRate: "1.2" + money(), StaysEnded: next(), AvgDaysInStage: "7." + money()}
	}
	stale := func(id string) analytics.StaleDeal {
		return analytics.StaleDeal{ID: id, Name: goldenText, OwnerID: "owner-" + id, PipelineID: "pipe-" + id,
			StageID: "stage-" + id, StageName: "Stage " + id, DaysInStage: next(), StaleAfterDays: int(next()),
			StageEnteredAt: "2025-01-02T03:04:05.678Z", Amount: money(), Currency: "KWD", CloseDate: "2025-12-31"}
	}
	return cannedAnalytics{
		forecast: analytics.ForecastResult{Currency: "EUR", From: "2025-01-01", To: "2025-03-31",
			Groups: []analytics.ForecastGroup{{Key: goldenText, ForecastFigures: figs()}, {Key: "u-2", ForecastFigures: figs()}},
			Total:  figs()},
		winLoss: analytics.WinLossResult{Currency: "JPY", From: "2024-10-01", To: "2024-12-31", WinLossFigures: wl(),
			LossReasons: []analytics.ReasonFigure{{Reason: goldenText, Count: next(), Amount: money()}, {Reason: "price", Count: next(), Amount: money()}},
			Competitors: []analytics.CompetitorFigure{{Competitor: goldenText, Count: next(), Amount: money()}},
			Groups:      []analytics.WinLossGroup{{Key: "2024-11", WinLossFigures: wl()}, {Key: goldenText, WinLossFigures: wl()}}},
		funnel: analytics.FunnelResult{PipelineID: "default", From: "2025-02-01", To: "2025-02-28",
			Stages: []analytics.FunnelStage{stage("qualification"), stage("closed_won")}},
		velocity: analytics.VelocityResult{Currency: "GBP", From: "2024-12-15", To: "2025-03-14", OpenCount: next(),
			WonCount: next(), LostCount: next(), WinRate: "0.3" + money(), WonAmount: money(), AvgDealSizeWon: money(),
			AvgCycleDaysWon: "12." + money(), VelocityPerDay: money()},
		changes: analytics.ChangesResult{Currency: "USD", From: "2025-03-08", To: "2025-03-14", Created: ca(), Won: ca(),
			Lost: ca(), Reopened: ca(), CloseDatePushed: ca(), CloseDatePulled: ca(), AmountIncreased: ca(),
			AmountDecreased: ca(), CurrencyChanged: analytics.CountOnly{Count: next()}},
		stale: []analytics.StaleDeal{stale("s-1"), stale("s-2")},
	}
}

// goldenCase is one request of the golden file and its body.
type goldenCase struct{ label, body string }

// analyticsGoldenCases sends every analytics request of the golden file and collects the
// answers: canned results (full, and zero values with nil lists) and the seeded deals of
// seedDeals plus one with free text in name, reason and competitor, over the groupings,
// filters and currencies of each endpoint.
func analyticsGoldenCases(t *testing.T) []goldenCase {
	t.Helper()
	var out []goldenCase
	get := func(e *env, label, path string) {
		t.Helper()
		rec := e.do(t, "GET", path, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", label, path, rec.Code, rec.Body)
		}
		out = append(out, goldenCase{label + " GET " + path, rec.Body.String()})
	}
	all := []string{"/api/v1/forecast", "/api/v1/forecast/rolling?days=7", "/api/v1/analytics/win-loss",
		"/api/v1/analytics/funnel", "/api/v1/analytics/velocity", "/api/v1/analytics/changes", "/api/v1/analytics/stale"}
	for _, tc := range []struct {
		label  string
		canned cannedAnalytics
	}{{"canned-full", fullCanned()}, {"canned-zero", cannedAnalytics{}}} {
		c := tc.canned
		e := newEnv(t, func(cfg *Config) {
			c.fakeBackend = cfg.Backend.(*fakeBackend)
			cfg.Backend = &c
		})
		for _, p := range all {
			get(e, tc.label, p)
		}
	}

	e := newEnv(t)
	seedDeals(t, e)
	body, _ := json.Marshal(map[string]any{"id": "w", "name": goldenDealText, "accountId": "acc-1", "ownerId": "u-3",
		"amount": "1234.56", "currency": "EUR", "closeDate": "2025-03-25", "stageId": "negotiation"})
	wantJSON(t, e.do(t, "POST", "/api/v1/opportunities", string(body), "Prefer", "wait=1"), http.StatusCreated)
	body, _ = json.Marshal(map[string]any{"reason": goldenDealText, "competitor": goldenDealText})
	wantJSON(t, e.do(t, "POST", "/api/v1/opportunities/w/close-lost", string(body), "Prefer", "wait=1"), 200)
	for _, p := range []string{
		"/api/v1/forecast",
		"/api/v1/forecast?groupBy=owner",
		"/api/v1/forecast?from=2025-01-01&to=2025-06-30&groupBy=month",
		"/api/v1/forecast?from=2025-01-01&to=2025-06-30&groupBy=quarter",
		"/api/v1/forecast?groupBy=category&currency=EUR",
		"/api/v1/forecast?pipelineId=enterprise",
		"/api/v1/forecast/rolling?days=30&groupBy=owner",
		"/api/v1/analytics/win-loss",
		"/api/v1/analytics/win-loss?groupBy=owner&currency=EUR",
		"/api/v1/analytics/win-loss?groupBy=reason",
		"/api/v1/analytics/win-loss?groupBy=month",
		"/api/v1/analytics/win-loss?ownerId=nobody",
		"/api/v1/analytics/funnel",
		"/api/v1/analytics/funnel?ownerId=u-2&from=2025-03-14&to=2025-03-14",
		"/api/v1/analytics/velocity",
		"/api/v1/analytics/velocity?days=3660&currency=EUR",
		"/api/v1/analytics/changes",
		"/api/v1/analytics/changes?from=2025-02-01&currency=EUR",
		"/api/v1/analytics/stale",
	} {
		get(e, "seeded", p)
	}
	e.fb.setNow(testNow.AddDate(0, 0, 20))
	for _, p := range []string{"/api/v1/analytics/stale", "/api/v1/analytics/stale?ownerId=u-1&pipelineId=default", "/api/v1/analytics/stale?pipelineId=enterprise"} {
		get(e, "seeded+20d", p)
	}
	return out
}

// readGolden parses the golden file: a "# label" line, then the body (one line, as the
// handlers write it: compact JSON and a newline).
func readGolden(t *testing.T) []goldenCase {
	t.Helper()
	b, err := os.ReadFile(analyticsGoldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []goldenCase
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		label, ok := strings.CutPrefix(sc.Text(), "# ")
		if !ok || !sc.Scan() {
			t.Fatalf("%s: malformed near %q", analyticsGoldenFile, sc.Text())
		}
		out = append(out, goldenCase{label, sc.Text() + "\n"})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAnalyticsJSONGolden: every analytics endpoint answers byte for byte what the golden file
// holds, for canned results that give every field its own value and for real aggregations.
func TestAnalyticsJSONGolden(t *testing.T) {
	got, want := analyticsGoldenCases(t), readGolden(t)
	if len(got) != len(want) {
		t.Fatalf("%d cases, golden file has %d", len(got), len(want))
	}
	for i := range got {
		if got[i].label != want[i].label {
			t.Fatalf("case %d is %q, golden file has %q", i, got[i].label, want[i].label)
		}
		if got[i].body != want[i].body {
			t.Errorf("%s:\n got %s\nwant %s", got[i].label, got[i].body, want[i].body)
		}
	}
}
