package query

import (
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// storeSmallWorld is analytics' smallWorld (store_test.go) built through that package's
// exported API: four deals with hand-computed figures,
//
//	A  USD 1000.00  qualification (10%, pipeline)  u-1  close 2025-04-10
//	B  JPY 150000   negotiation (80%, commit)      u-2  close 2025-05-20
//	C  EUR 200.00   proposal (50%, best case)      u-1  close 2025-04-15, won 2025-03-05 09:00
//	D  KWD 1.005    discovery (20%, pipeline)      u-2  close 2025-06-01, lost 2025-03-03 21:00
//
// all created 2025-03-01 09:00, folded into a Store by Deltas and Bucket.Apply. The rates
// returned are that test's: USD reporting, EUR 1.08, JPY 0.0067, KWD 3.25, GBP 1.27.
func storeSmallWorld(t *testing.T) (*analytics.Store, analytics.Rates) {
	t.Helper()
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	def := domain.DefaultPipeline()
	lookup := func(id string) (*domain.Pipeline, bool) { return &def, id == def.ID }
	buckets := map[string]*analytics.Bucket{}
	states := map[string]*domain.Opportunity{}
	run := func(cmd domain.Command, at time.Time) {
		t.Helper()
		cur := states[cmd.OpportunityID]
		d, err := domain.Decide(cur, cmd, domain.DecideContext{Now: at, Pipelines: lookup})
		if err != nil {
			t.Fatalf("Decide(%s %s): %v", cmd.Type, cmd.CommandID, err)
		}
		for _, delta := range analytics.Deltas(cur, d.Next, d.Events, lookup) {
			b := buckets[delta.Bucket]
			if b == nil {
				b = &analytics.Bucket{}
				buckets[delta.Bucket] = b
			}
			b.Apply(delta)
		}
		n := d.Next
		states[cmd.OpportunityID] = &n
	}
	create := func(id, amount, currency, closeDate, owner, stage string) {
		run(domain.Command{Type: domain.CmdCreate, CommandID: id + "1", OpportunityID: id, Actor: "alice",
			Create: &domain.CreateOpportunity{Name: "Acme renewal", AccountID: "acc-1", OwnerID: owner, Amount: amount,
				Currency: currency, CloseDate: closeDate, StageID: stage}}, t0)
	}
	create("A", "1000.00", "USD", "2025-04-10", "u-1", "")
	create("B", "150000", "JPY", "2025-05-20", "u-2", "negotiation")
	create("C", "200.00", "EUR", "2025-04-15", "u-1", "proposal")
	create("D", "1.005", "KWD", "2025-06-01", "u-2", "discovery")
	run(domain.Command{Type: domain.CmdCloseWon, CommandID: "C2", OpportunityID: "C", Actor: "dave",
		CloseWon: &domain.CloseWon{}}, t0.Add(4*24*time.Hour))
	run(domain.Command{Type: domain.CmdCloseLost, CommandID: "D2", OpportunityID: "D", Actor: "erin",
		CloseLost: &domain.CloseLost{Reason: "price", Competitor: "Globex"}}, t0.Add(60*time.Hour))
	s := analytics.NewStore()
	for k, b := range buckets {
		s.Put(k, *b)
	}
	return s, analytics.MapRates("USD", map[string]string{"EUR": "1.08", "JPY": "0.0067", "KWD": "3.25", "GBP": "1.27"})
}

// TestStoreAnswersOnTheWire holds the wire-name expectations that analytics'
// TestStoreHandComputed had while the names were tags on its types: the same world's
// forecast, win/loss and velocity, as MarshalAnalytics (the handlers' encoding) renders them.
func TestStoreAnswersOnTheWire(t *testing.T) {
	s, rates := storeSmallWorld(t)
	date := func(v string) domain.Date {
		d, err := domain.ParseDate(v)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	march := [2]domain.Date{date("2025-03-01"), date("2025-03-31")}
	q2 := [2]domain.Date{date("2025-04-01"), date("2025-06-30")}
	wire := func(v any, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		b, err := MarshalAnalytics(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	if got := wire(s.Forecast(analytics.ForecastQuery{From: q2[0], To: q2[1], Currency: "USD"}, rates)); got[:60] != `{"currency":"USD","from":"2025-04-01","to":"2025-06-30","gro` {
		t.Errorf("forecast JSON starts %s", got[:60])
	}
	if got, want := wire(s.WinLoss(analytics.WinLossQuery{From: march[0], To: march[1], Currency: "USD"}, rates)), `{"currency":"USD","from":"2025-03-01","to":"2025-03-31","won":{"count":1,"amount":"216.00"},"lost":{"count":1,"amount":"3.27"},"winRateByCount":"0.500000","winRateByAmount":"0.985087","avgDealSizeWon":"216.00","avgCycleDaysWon":"5.0","lossReasons":[{"reason":"price","count":1,"amount":"3.27"}],"competitors":[{"competitor":"Globex","count":1,"amount":"3.27"}],"groups":[]}`; got != want {
		t.Errorf("win/loss\n got %s\nwant %s", got, want)
	}
	if got, want := wire(s.Velocity(analytics.VelocityQuery{From: march[0], To: march[1], Currency: "USD"}, rates)), `{"currency":"USD","from":"2025-03-01","to":"2025-03-31","openCount":2,"wonCount":1,"lostCount":1,"winRate":"0.500000","wonAmount":"216.00","avgDealSizeWon":"216.00","avgCycleDaysWon":"5.0","velocityPerDay":"43.20"}`; got != want {
		t.Errorf("velocity\n got %s\nwant %s", got, want) // 2 × 0.5 × 216 / 5 days (2025-03-01..05) = 43.2
	}
}

// TestMarshalAnalyticsMatchesHandlers: MarshalAnalytics writes what each endpoint sends for
// the same result (the end-to-end tests compare Oracle answers with HTTP bodies through it),
// for results with every field set and for zero results with nil lists; anything else is an
// error.
func TestMarshalAnalyticsMatchesHandlers(t *testing.T) {
	for name, c := range map[string]cannedAnalytics{"full": fullCanned(), "zero": {}} {
		e := newEnv(t, func(cfg *Config) {
			c.fakeBackend = cfg.Backend.(*fakeBackend)
			cfg.Backend = &c
		})
		for _, tc := range []struct {
			path   string
			result any
		}{
			{"/api/v1/forecast", c.forecast},
			{"/api/v1/forecast/rolling?days=7", c.forecast},
			{"/api/v1/analytics/win-loss", c.winLoss},
			{"/api/v1/analytics/funnel", c.funnel},
			{"/api/v1/analytics/velocity", c.velocity},
			{"/api/v1/analytics/changes", c.changes},
			{"/api/v1/analytics/stale", c.stale},
		} {
			rec := e.do(t, "GET", tc.path, "")
			b, err := MarshalAnalytics(tc.result)
			if err != nil {
				t.Fatalf("%s %s: %v", name, tc.path, err)
			}
			if got, want := string(b)+"\n", rec.Body.String(); rec.Code != 200 || got != want {
				t.Errorf("%s %s (%d):\nMarshalAnalytics %s\n         handler %s", name, tc.path, rec.Code, got, want)
			}
		}
	}
	for _, v := range []any{nil, analytics.ForecastQuery{}, &analytics.ForecastResult{}, []analytics.FunnelStage{}} {
		if b, err := MarshalAnalytics(v); err == nil {
			t.Errorf("MarshalAnalytics(%T) = %s, want an error", v, b)
		}
	}
}
