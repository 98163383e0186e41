package query

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

var (
	benchEnvOnce sync.Once
	benchEnv     *env
)

// benchAnalyticsEnv is the fake backend loaded like the queries scenario of BENCHMARKS.md:
// 100k opportunities in USD over 200 owners, close dates from six months ago to a year ahead
// of testNow, a sixth of them won and a sixth lost, folded into buckets by the real
// aggregation (analytics.Deltas, Bucket.Apply) and Put into the fake's analytics.Store.
func benchAnalyticsEnv(b *testing.B) *env {
	benchEnvOnce.Do(func() {
		e := newEnv(b)
		r := rand.New(rand.NewPCG(11, 17))
		today := domain.DateOf(testNow)
		stages := []string{"qualification", "discovery", "proposal", "negotiation"}
		cats := []domain.ForecastCategory{domain.CategoryPipeline, domain.CategoryBestCase, domain.CategoryCommit}
		buckets := map[string]*analytics.Bucket{}
		for n := range 100_000 {
			at := testNow.Add(-time.Duration(r.IntN(180*24)) * time.Hour)
			o := domain.Opportunity{ID: fmt.Sprintf("opp-%06d", n), Version: 1, OwnerID: fmt.Sprintf("owner-%03d", r.IntN(200)+1),
				PipelineID: domain.DefaultPipelineID, StageID: stages[r.IntN(len(stages))], Status: domain.StatusOpen,
				Amount: 100_000 + r.Int64N(25_000_000), Currency: "USD", CloseDate: today + domain.Date(r.IntN(545)-180),
				Probability: r.IntN(101), ForecastCategory: cats[r.IntN(len(cats))], CreatedAt: at, StageEnteredAt: at}
			switch r.IntN(6) {
			case 0:
				o.Status, o.StageID, o.ForecastCategory, o.Probability = domain.StatusWon, "closed_won", domain.CategoryClosed, 100
				o.ClosedAt = new(at.Add(240 * time.Hour))
			case 1:
				o.Status, o.StageID, o.ForecastCategory, o.Probability, o.LossReason = domain.StatusLost, "closed_lost", domain.CategoryOmitted, 0, "price"
				o.ClosedAt = new(at.Add(100 * time.Hour))
			}
			ev := domain.Event{Type: domain.EvtCreated, OpportunityID: o.ID, Version: 1, At: at, ToStageID: o.StageID}
			analytics.ApplyAll(buckets, analytics.Deltas(nil, o, []domain.Event{ev}, nil))
		}
		for k, bk := range buckets {
			e.fb.store.Put(k, *bk)
		}
		benchEnv = e
	})
	return benchEnv
}

// BenchmarkForecastHandler is GET /forecast?groupBy=owner over the current quarter through
// the whole handler (router, middleware, query parsing, the Store, JSON encoding), as the
// queries scenario of BENCHMARKS.md sends it.
func BenchmarkForecastHandler(b *testing.B) {
	e := benchAnalyticsEnv(b)
	from, to := quarterOf(domain.DateOf(testNow))
	for _, tc := range []struct{ name, path string }{
		{"owner", "/api/v1/forecast?groupBy=owner&from=" + from.String() + "&to=" + to.String()},
		{"none", "/api/v1/forecast?from=" + from.String() + "&to=" + to.String()},
	} {
		b.Run(tc.name, func(b *testing.B) { benchGET(b, e, tc.path) })
	}
}

// BenchmarkWinLossHandler is GET /analytics/win-loss over the last quarter, as the queries
// scenario sends it, and the same grouped by owner.
func BenchmarkWinLossHandler(b *testing.B) {
	e := benchAnalyticsEnv(b)
	from, _ := quarterOf(domain.DateOf(testNow))
	lastFrom, lastTo := quarterOf(from - 1)
	for _, tc := range []struct{ name, path string }{
		{"none", "/api/v1/analytics/win-loss?from=" + lastFrom.String() + "&to=" + lastTo.String()},
		{"owner", "/api/v1/analytics/win-loss?groupBy=owner&from=" + lastFrom.String() + "&to=" + lastTo.String()},
	} {
		b.Run(tc.name, func(b *testing.B) { benchGET(b, e, tc.path) })
	}
}

// benchGET serves GET path through the whole handler in a loop, after checking it answers 200.
func benchGET(b *testing.B, e *env, path string) {
	req := newTestRequest(http.MethodGet, path, nil)
	if rec := e.do(b, http.MethodGet, path, ""); rec.Code != http.StatusOK {
		b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d", path, rec.Code)
		}
	}
}
