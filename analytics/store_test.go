package analytics

import (
	"errors"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

func TestQueryErrors(t *testing.T) {
	s := NewStore()
	d1, d2 := date(t, "2025-01-02"), date(t, "2025-01-01")
	for _, tc := range []struct {
		field string
		err   error
	}{
		{"to", func() error {
			_, err := s.Forecast(ForecastQuery{From: d1, To: d2, Currency: "USD"}, testRates)
			return err
		}()},
		{"groupBy", func() error {
			_, err := s.Forecast(ForecastQuery{From: d2, To: d1, Currency: "USD", GroupBy: "reason"}, testRates)
			return err
		}()},
		{"groupBy", func() error {
			_, err := s.WinLoss(WinLossQuery{From: d2, To: d1, Currency: "USD", GroupBy: "quarter"}, testRates)
			return err
		}()},
		{"currency", func() error {
			_, err := s.WinLoss(WinLossQuery{From: d2, To: d1, Currency: "XXX"}, testRates)
			return err
		}()},
		{"currency", func() error { _, err := s.Changes(ChangesQuery{From: d2, To: d1}, testRates); return err }()},
		{"to", func() error {
			_, err := s.Velocity(VelocityQuery{From: d1, To: d2, Currency: "USD"}, testRates)
			return err
		}()},
		{"pipelineId", func() error {
			_, err := s.Funnel(FunnelQuery{From: d2, To: d1, PipelineID: "enterprise"}, domain.DefaultPipeline())
			return err
		}()},
	} {
		var qe *QueryError
		if !errors.As(tc.err, &qe) || qe.Field != tc.field {
			t.Errorf("want a QueryError on %s, got %v", tc.field, tc.err)
		}
	}
}

func TestStorePutReplaceDelete(t *testing.T) {
	s := NewStore()
	k1 := bucketKey(famForecast, "default", date(t, "2025-04-01"), "u-1")
	k2 := bucketKey(famForecast, "default", date(t, "2025-04-01"), "u-2")
	k3 := bucketKey(famForecast, "default", date(t, "2025-04-02"), "u-1")
	put := func(k string, n int64) {
		s.Put(k, Bucket{Values: map[string]int64{"open/count": n, "USD/open/amount": n * 100}})
	}
	total := func() int64 {
		r, err := s.Forecast(ForecastQuery{From: date(t, "2025-04-01"), To: date(t, "2025-04-30"), Currency: "USD"}, testRates)
		if err != nil {
			t.Fatal(err)
		}
		return r.Total.Open.Count
	}
	put(k1, 1)
	put(k2, 2)
	put(k3, 4)
	s.Put("not a key", Bucket{Values: map[string]int64{"open/count": 100}})
	if s.Len() != 3 || total() != 7 {
		t.Fatalf("len %d total %d", s.Len(), total())
	}
	put(k1, 8) // replace
	if s.Len() != 3 || total() != 14 {
		t.Fatalf("after replace: len %d total %d", s.Len(), total())
	}
	s.Put(k1, Bucket{Applied: map[string]int64{"a": 1}}) // no values: delete
	s.Put(k3, Bucket{})
	if s.Len() != 1 || total() != 2 {
		t.Fatalf("after delete: len %d total %d", s.Len(), total())
	}
	s.Put(k2, Bucket{})
	s.Put(k2, Bucket{}) // deleting twice is harmless
	if s.Len() != 0 || total() != 0 || len(s.fc.pipelines) != 0 {
		t.Fatalf("after deleting all: len %d total %d index %d", s.Len(), total(), len(s.fc.pipelines))
	}
}

func TestStale(t *testing.T) {
	now := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	mk := func(id, pipeline, stage string, status domain.Status, entered time.Time) domain.Opportunity {
		return domain.Opportunity{ID: id, Version: 1, PipelineID: pipeline, StageID: stage, Status: status, StageEnteredAt: entered,
			Amount: 100, Currency: "USD", OwnerID: "u-1", CloseDate: date(t, "2025-05-01")}
	}
	days := func(n float64) time.Time { return now.Add(-time.Duration(n * 24 * float64(time.Hour))) }
	opps := []domain.Opportunity{
		mk("q-14", "default", "qualification", domain.StatusOpen, days(14.9)), // 14 whole days: not above 14
		mk("q-15", "default", "qualification", domain.StatusOpen, days(15)),   // stale by one day
		mk("n-40", "default", "negotiation", domain.StatusOpen, days(40)),     // most stale
		mk("c-8", "enterprise", "contract", domain.StatusOpen, days(8)),       // 7 allowed
		mk("a-8", "enterprise", "contract", domain.StatusOpen, days(8)),       // ties sort by id
		mk("s-99", "enterprise", "solution", domain.StatusOpen, days(99)),     // never stale (0)
		mk("w-99", "default", "closed_won", domain.StatusWon, days(99)),       // closed
		mk("x-99", "nope", "qualification", domain.StatusOpen, days(99)),      // unknown pipeline
		mk("y-99", "default", "gone", domain.StatusOpen, days(99)),            // unknown stage
	}
	got := Stale(opps, lookupPipeline, now)
	var ids []string
	for _, s := range got {
		ids = append(ids, s.ID)
	}
	if mustJSON(t, ids) != `["n-40","q-15","a-8","c-8"]` {
		t.Fatalf("stale ids %v", ids)
	}
	if got[0].DaysInStage != 40 || got[0].StaleAfterDays != 21 || got[0].StageName != "Negotiation" || got[0].Amount != "1.00" {
		t.Errorf("first stale deal %+v", got[0])
	}
	if s := Stale(nil, lookupPipeline, now); s == nil || len(s) != 0 {
		t.Errorf("no deals: want an empty list, got %v", s)
	}
}

// TestStoreManyCurrenciesInOneBucket: a bucket with more currencies than a record holds inline.
func TestStoreManyCurrenciesInOneBucket(t *testing.T) {
	s := NewStore()
	s.Put(bucketKey(famForecast, "default", date(t, "2025-04-01"), "u-1"), Bucket{Values: map[string]int64{
		"open/count": 4, "commit/count": 4,
		"USD/open/amount": 100, "EUR/open/amount": 100, "JPY/open/amount": 150, "KWD/open/amount": 1000,
		"USD/commit/weighted": 1, "KWD/commit/weighted": 2000,
	}})
	r, err := s.Forecast(ForecastQuery{From: date(t, "2025-04-01"), To: date(t, "2025-04-01"), Currency: "USD"}, testRates)
	if err != nil {
		t.Fatal(err)
	}
	// 1.00 + 1.08 + 1.01 (150 JPY = 1.005) + 3.25; weighted 0.01 + 6.50
	if r.Total.Open != (Measure{4, "6.34", "0.00"}) || r.Total.Commit != (Measure{4, "0.00", "6.51"}) {
		t.Errorf("open %+v commit %+v", r.Total.Open, r.Total.Commit)
	}
}

// TestStoreForecastByStage: groupBy stage reads the stage values of the forecast buckets (an
// escaped stage id, two currencies in one stage, values it does not know ignored) into one
// group per stage holding only open figures; the total is groupBy none's.
func TestStoreForecastByStage(t *testing.T) {
	s := NewStore()
	s.Put(bucketKey(famForecast, "default", date(t, "2025-04-01"), "u-1"), Bucket{Values: map[string]int64{
		"open/count": 3, "USD/open/amount": 200, "USD/open/weighted": 20, "EUR/open/amount": 100, "EUR/open/weighted": 50,
		"commit/count": 1, "EUR/commit/amount": 100, "EUR/commit/weighted": 50,
		"closedWon/count": 1, "USD/closedWon/amount": 500, "USD/closedWon/weighted": 500,
		"stage/a%2Fb/count": 2, "USD/stage/a%2Fb/amount": 200, "USD/stage/a%2Fb/weighted": 20,
		"stage/proposal/count": 1, "EUR/stage/proposal/amount": 100, "EUR/stage/proposal/weighted": 50,
	}})
	s.Put(bucketKey(famForecast, "default", date(t, "2025-04-02"), "u-2"), Bucket{Values: map[string]int64{
		"open/count": 1, "USD/open/amount": 1, "USD/open/weighted": 1,
		"stage/proposal/count": 1, "USD/stage/proposal/amount": 1, "USD/stage/proposal/weighted": 1,
		"stage/x/bogus": 7, "USD/stage/x/other": 7, // a newer writer's measures: ignored
	}})
	q := ForecastQuery{From: date(t, "2025-04-01"), To: date(t, "2025-04-30"), Currency: "USD", GroupBy: GroupStage}
	r, err := s.Forecast(q, testRates)
	if err != nil {
		t.Fatal(err)
	}
	zero := Measure{0, "0.00", "0.00"}
	want := []ForecastGroup{
		{Key: "a/b", ForecastFigures: ForecastFigures{Open: Measure{2, "2.00", "0.20"}}},
		// 1.00 EUR = 1.08 USD and 0.50 EUR = 0.54 USD, each converted once, plus 0.01 USD.
		{Key: "proposal", ForecastFigures: ForecastFigures{Open: Measure{2, "1.09", "0.55"}}},
	}
	for i := range want {
		f := &want[i].ForecastFigures
		f.Pipeline, f.BestCase, f.Commit, f.ClosedWon, f.ClosedLost, f.CommitForecast, f.BestCaseForecast = zero, zero, zero, zero, zero, zero, zero
	}
	if mustJSON(t, r.Groups) != mustJSON(t, want) {
		t.Errorf("groups\n got %s\nwant %s", mustJSON(t, r.Groups), mustJSON(t, want))
	}
	q.GroupBy = GroupNone
	none, err := s.Forecast(q, testRates)
	if err != nil {
		t.Fatal(err)
	}
	if r.Total != none.Total || r.Total.Open != (Measure{4, "3.09", "0.75"}) || r.Total.ClosedWon.Count != 1 {
		t.Errorf("total %+v, groupBy none's %+v", r.Total, none.Total)
	}
	// A deal that closes leaves its stage: the bucket without stage values has no group.
	s.Put(bucketKey(famForecast, "default", date(t, "2025-04-02"), "u-2"), Bucket{Values: map[string]int64{
		"closedLost/count": 1, "USD/closedLost/amount": 1,
	}})
	q.GroupBy = GroupStage
	if r, err = s.Forecast(q, testRates); err != nil || len(r.Groups) != 2 || r.Groups[1].Open != (Measure{1, "1.08", "0.54"}) {
		t.Errorf("after the close: %+v, %v", r.Groups, err)
	}
}
