package analytics

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// BenchmarkDeltas is the aggregation step the opportunity processor runs per accepted command,
// over a typical mix: amount update, stage move, win, loss, reopen.
func BenchmarkDeltas(b *testing.B) {
	type change struct {
		prev   *domain.Opportunity
		next   domain.Opportunity
		events []domain.Event
	}
	var mix []change
	now := t0
	var cur *domain.Opportunity
	for _, cmd := range []domain.Command{
		createCmd("b1", "b1"),
		updateCmd("b1", "b2", domain.UpdateOpportunity{Amount: ptr("17000.00")}),
		stageCmd("b1", "b3", "proposal"),
		updateCmd("b1", "b4", domain.UpdateOpportunity{CloseDate: ptr("2025-07-15")}),
		wonCmd("b1", "b5", domain.CloseWon{}),
		reopenCmd("b1", "b6", "negotiation"),
		lostCmd("b1", "b7", domain.CloseLost{Reason: "price", Competitor: "Globex"}),
	} {
		now = now.Add(26 * time.Hour)
		d := decide(b, cur, cmd, now)
		if cur != nil {
			mix = append(mix, change{cur, d.Next, d.Events})
		}
		n := d.Next
		cur = &n
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c := &mix[i%len(mix)]
		_ = Deltas(c.prev, c.next, c.events, nil)
	}
}

// BenchmarkBucketApply folds a typical forecast delta into a bucket that has had deltas from 8
// commands partitions (the aggregator's per-record work, without the codec).
func BenchmarkBucketApply(b *testing.B) {
	bk := Bucket{Values: map[string]int64{}, Applied: map[string]int64{}}
	for i := range 8 {
		bk.Applied[fmt.Sprint(i)] = 3
	}
	plus := map[string]int64{"open/count": 1, "USD/open/amount": 1250000, "USD/open/weighted": 125000,
		"pipeline/count": 1, "USD/pipeline/amount": 1250000, "USD/pipeline/weighted": 125000}
	minus := map[string]int64{}
	for k, v := range plus {
		minus[k] = -v
	}
	b.ReportAllocs()
	var v int64
	for b.Loop() {
		v++
		vals := plus
		if v%2 == 0 {
			vals = minus
		}
		if !bk.Apply(Delta{OpportunityID: "opp-7", Version: v + 3, Values: vals, Source: "5", Position: v + 3}) {
			b.Fatal("not applied")
		}
	}
}

var (
	benchStoreOnce sync.Once
	benchStore     *Store
)

// quarterStore is a Store with 200 owners' daily buckets over a year (two deals per owner and
// close date, USD/EUR/JPY, every status and category), built through Deltas and Bucket.Apply,
// plus their win/loss and event buckets: 200 × 365 forecast buckets.
func quarterStore(b testing.TB) *Store {
	benchStoreOnce.Do(func() {
		r := rand.New(rand.NewPCG(7, 7))
		buckets := map[string]*Bucket{}
		start := date(b, "2025-01-01")
		curs := []string{"USD", "EUR", "JPY"}
		cats := []domain.ForecastCategory{domain.CategoryPipeline, domain.CategoryBestCase, domain.CategoryCommit, domain.CategoryOmitted}
		n := 0
		for owner := range 200 {
			for day := range 365 {
				for range 2 {
					n++
					at := start.Time().Add(time.Duration(r.IntN(90*24)) * time.Hour)
					o := domain.Opportunity{ID: fmt.Sprintf("o%d", n), Version: 1, OwnerID: fmt.Sprintf("owner-%03d", owner), PipelineID: "default",
						StageID: "proposal", Status: domain.StatusOpen, Amount: r.Int64N(10_000_000), Currency: curs[r.IntN(3)],
						CloseDate: start + domain.Date(day), Probability: r.IntN(101), ForecastCategory: cats[r.IntN(4)],
						CreatedAt: at, StageEnteredAt: at}
					switch r.IntN(6) {
					case 0:
						o.Status, o.ForecastCategory, o.Probability, o.ClosedAt = domain.StatusWon, domain.CategoryClosed, 100, ptr(at.Add(240*time.Hour))
					case 1:
						o.Status, o.ForecastCategory, o.Probability, o.ClosedAt, o.LossReason = domain.StatusLost, domain.CategoryOmitted, 0, ptr(at.Add(100*time.Hour)), "price"
					}
					ev := domain.Event{Type: domain.EvtCreated, OpportunityID: o.ID, Version: 1, At: at, ToStageID: o.StageID}
					ApplyAll(buckets, Deltas(nil, o, []domain.Event{ev}, nil))
				}
			}
		}
		benchStore = storeOf(buckets)
	})
	return benchStore
}

// BenchmarkForecastQuarter200Owners is one GET /forecast over a quarter of close dates for all
// of 200 owners (18,200 daily buckets in range, three currencies converted to the target).
func BenchmarkForecastQuarter200Owners(b *testing.B) {
	s := quarterStore(b)
	from, to := date(b, "2025-04-01"), date(b, "2025-06-30")
	for _, tc := range []struct {
		name string
		q    ForecastQuery
	}{
		{"none", ForecastQuery{From: from, To: to, PipelineID: "default", Currency: "USD"}},
		{"owner", ForecastQuery{From: from, To: to, PipelineID: "default", Currency: "JPY", GroupBy: GroupOwner}},
		{"month", ForecastQuery{From: from, To: to, Currency: "EUR", GroupBy: GroupMonth}},
		{"category", ForecastQuery{From: from, To: to, Currency: "USD", GroupBy: GroupCategory}},
		{"oneOwner", ForecastQuery{From: from, To: to, PipelineID: "default", OwnerID: "owner-042", Currency: "USD"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Forecast(tc.q, testRates); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWinLossQuarter200Owners is GET /analytics/win-loss over a quarter for 200 owners.
func BenchmarkWinLossQuarter200Owners(b *testing.B) {
	s := quarterStore(b)
	q := WinLossQuery{From: date(b, "2025-04-01"), To: date(b, "2025-06-30"), Currency: "USD", GroupBy: GroupOwner}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.WinLoss(q, testRates); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStorePut is the view's per-update cost: parse a bucket and replace it in the index.
func BenchmarkStorePut(b *testing.B) {
	s := quarterStore(b)
	key := bucketKey(famForecast, "default", date(b, "2025-05-05"), "owner-007")
	bk := Bucket{Values: map[string]int64{"open/count": 2, "USD/open/amount": 2500000, "USD/open/weighted": 250000,
		"pipeline/count": 1, "USD/pipeline/amount": 1250000, "USD/pipeline/weighted": 125000,
		"commit/count": 1, "USD/commit/amount": 1250000, "USD/commit/weighted": 125000}}
	b.ReportAllocs()
	for b.Loop() {
		s.Put(key, bk)
	}
}
