package analytics_test

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	. "github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/analytics/analyticstest"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// smallWorld is four deals with hand-computed figures:
//
//	A  USD 1000.00  qualification (10%, pipeline)  u-1  close 2025-04-10
//	B  JPY 150000   negotiation (80%, commit)      u-2  close 2025-05-20
//	C  EUR 200.00   proposal (50%, best case)      u-1  close 2025-04-15, won 2025-03-05 09:00
//	D  KWD 1.005    discovery (20%, pipeline)      u-2  close 2025-06-01, lost 2025-03-03 21:00
//
// all created 2025-03-01 09:00. C and D close without a date in the body, so their close
// dates become the days they closed: 2025-03-05 and 2025-03-03. Returns the Store fed through Deltas and Bucket.Apply, and the
// Oracle fed with the same commands.
func smallWorld(t *testing.T) (*Store, *analyticstest.Oracle) {
	t.Helper()
	buckets := map[string]*Bucket{}
	o := analyticstest.NewOracle()
	states := map[string]*domain.Opportunity{}
	run := func(cmd domain.Command, at time.Time) {
		cur := states[cmd.OpportunityID]
		d := MustDecide(t, cur, cmd, at)
		ApplyAll(buckets, Deltas(cur, d.Next, d.Events, LookupPipeline))
		o.Observe(cur, d.Next, d.Events)
		n := d.Next
		states[cmd.OpportunityID] = &n
	}
	run(CreateCmd("A", "a1", func(c *domain.CreateOpportunity) { c.Amount, c.CloseDate = "1000.00", "2025-04-10" }), T0)
	run(CreateCmd("B", "b1", func(c *domain.CreateOpportunity) {
		c.Amount, c.Currency, c.CloseDate, c.OwnerID, c.StageID = "150000", "JPY", "2025-05-20", "u-2", "negotiation"
	}), T0)
	run(CreateCmd("C", "c1", func(c *domain.CreateOpportunity) {
		c.Amount, c.Currency, c.CloseDate, c.StageID = "200.00", "EUR", "2025-04-15", "proposal"
	}), T0)
	run(CreateCmd("D", "d1", func(c *domain.CreateOpportunity) {
		c.Amount, c.Currency, c.CloseDate, c.OwnerID, c.StageID = "1.005", "KWD", "2025-06-01", "u-2", "discovery"
	}), T0)
	run(WonCmd("C", "c2", domain.CloseWon{}), T0.Add(4*24*time.Hour))
	run(LostCmd("D", "d2", domain.CloseLost{Reason: "price", Competitor: "Globex"}), T0.Add(60*time.Hour))
	return StoreOf(buckets), o
}

func TestStoreHandComputed(t *testing.T) {
	s, o := smallWorld(t)
	march := [2]domain.Date{MustDate(t, "2025-03-01"), MustDate(t, "2025-03-31")}
	q2 := [2]domain.Date{MustDate(t, "2025-04-01"), MustDate(t, "2025-06-30")}

	fc, err := s.Forecast(ForecastQuery{From: q2[0], To: q2[1], Currency: "USD"}, TestRates)
	if err != nil {
		t.Fatal(err)
	}
	wantTotal := ForecastFigures{
		Open:             Measure{2, "2005.00", "904.00"}, // 1000.00 + 150000 JPY × 0.0067; 100.00 + 804.00
		Pipeline:         Measure{1, "1000.00", "100.00"},
		BestCase:         Measure{0, "0.00", "0.00"},
		Commit:           Measure{1, "1005.00", "804.00"},
		ClosedWon:        Measure{0, "0.00", "0.00"}, // C and D closed in March: they count there
		ClosedLost:       Measure{0, "0.00", "0.00"},
		CommitForecast:   Measure{1, "1005.00", "804.00"},
		BestCaseForecast: Measure{1, "1005.00", "804.00"},
	}
	if got, want := MustJSON(t, fc.Total), MustJSON(t, wantTotal); got != want {
		t.Errorf("forecast total\n got %s\nwant %s", got, want)
	}
	if len(fc.Groups) != 0 || fc.From != "2025-04-01" || fc.To != "2025-06-30" || fc.Currency != "USD" {
		t.Errorf("forecast envelope %+v", fc)
	}
	// March holds the closed deals, in the forecast as in win/loss below.
	fcMarch, err := s.Forecast(ForecastQuery{From: march[0], To: march[1], Currency: "USD"}, TestRates)
	if err != nil {
		t.Fatal(err)
	}
	if got := fcMarch.Total; got.ClosedWon != (Measure{1, "216.00", "216.00"}) || // 200.00 EUR × 1.08
		got.ClosedLost != (Measure{1, "3.27", "0.00"}) || // 1.005 KWD × 3.25 = 3.26625
		got.Open.Count != 0 || got.CommitForecast != (Measure{1, "216.00", "216.00"}) {
		t.Errorf("March forecast %+v", got)
	}
	// The wire names of these answers are query's: TestStoreAnswersOnTheWire there checks the
	// JSON of this same world.

	byMonth, err := s.Forecast(ForecastQuery{From: q2[0], To: q2[1], Currency: "JPY", GroupBy: GroupMonth}, TestRates)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, g := range byMonth.Groups {
		keys = append(keys, g.Key)
	}
	if MustJSON(t, keys) != `["2025-04","2025-05"]` {
		t.Errorf("month keys %v", keys)
	}
	if a := byMonth.Groups[0].Open; a != (Measure{1, "149254", "14925"}) { // 1000 / 0.0067 = 149253.73; 100 / 0.0067 = 14925.37
		t.Errorf("April open in JPY = %+v", a)
	}

	wl, err := s.WinLoss(WinLossQuery{From: march[0], To: march[1], Currency: "USD"}, TestRates)
	if err != nil {
		t.Fatal(err)
	}
	wantWL := WinLossResult{Currency: "USD", From: "2025-03-01", To: "2025-03-31",
		WinLossFigures: WinLossFigures{Won: CountAmount{1, "216.00"}, Lost: CountAmount{1, "3.27"}, WinRateByCount: "0.500000",
			WinRateByAmount: "0.985087", AvgDealSizeWon: "216.00", AvgCycleDaysWon: "5.0"}, // 2025-03-01..2025-03-05
		LossReasons: []ReasonFigure{{Reason: "price", Count: 1, Amount: "3.27"}},
		Competitors: []CompetitorFigure{{Competitor: "Globex", Count: 1, Amount: "3.27"}},
		Groups:      []WinLossGroup{}}
	if !reflect.DeepEqual(wl, wantWL) {
		t.Errorf("win/loss\n got %+v\nwant %+v", wl, wantWL)
	}

	fn, err := s.Funnel(FunnelQuery{From: march[0], To: march[1]}, domain.DefaultPipeline())
	if err != nil {
		t.Fatal(err)
	}
	want := []FunnelStage{
		{StageID: "qualification", StageName: "Qualification", Status: "open", Entered: 1, ConversionRate: "0.000000", AvgDaysInStage: "0.0"},
		{StageID: "discovery", StageName: "Discovery", Status: "open", Entered: 1, Lost: 1, ConversionRate: "0.000000", StaysEnded: 1, AvgDaysInStage: "2.5"},
		{StageID: "proposal", StageName: "Proposal", Status: "open", Entered: 1, Won: 1, ConversionRate: "1.000000", StaysEnded: 1, AvgDaysInStage: "4.0"},
		{StageID: "negotiation", StageName: "Negotiation", Status: "open", Entered: 1, ConversionRate: "0.000000", AvgDaysInStage: "0.0"},
		{StageID: "closed_won", StageName: "Closed Won", Status: "won", Entered: 1, ConversionRate: "0.000000", AvgDaysInStage: "0.0"},
		{StageID: "closed_lost", StageName: "Closed Lost", Status: "lost", Entered: 1, ConversionRate: "0.000000", AvgDaysInStage: "0.0"},
	}
	if got, w := MustJSON(t, fn.Stages), MustJSON(t, want); got != w {
		t.Errorf("funnel\n got %s\nwant %s", got, w)
	}

	ch, err := s.Changes(ChangesQuery{From: march[0], To: march[1], Currency: "USD"}, TestRates)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Created != (CountAmount{4, "2224.27"}) || ch.Won != (CountAmount{1, "216.00"}) || ch.Lost != (CountAmount{1, "3.27"}) || ch.CloseDatePushed.Count != 0 {
		t.Errorf("changes %+v", ch)
	}

	v, err := s.Velocity(VelocityQuery{From: march[0], To: march[1], Currency: "USD"}, TestRates)
	if err != nil {
		t.Fatal(err)
	}
	if want := (VelocityResult{Currency: "USD", From: "2025-03-01", To: "2025-03-31", OpenCount: 2, WonCount: 1, LostCount: 1,
		WinRate: "0.500000", WonAmount: "216.00", AvgDealSizeWon: "216.00", AvgCycleDaysWon: "5.0", VelocityPerDay: "43.20"}); v != want {
		t.Errorf("velocity\n got %+v\nwant %+v", v, want) // 2 × 0.5 × 216 / 5 = 43.2
	}

	// The Oracle agrees on all of it.
	ofc, _ := o.Forecast(ForecastQuery{From: q2[0], To: q2[1], Currency: "USD"}, TestRates)
	ofcMarch, _ := o.Forecast(ForecastQuery{From: march[0], To: march[1], Currency: "USD"}, TestRates)
	owl, _ := o.WinLoss(WinLossQuery{From: march[0], To: march[1], Currency: "USD"}, TestRates)
	ofn, _ := o.Funnel(FunnelQuery{From: march[0], To: march[1]}, domain.DefaultPipeline())
	ov, _ := o.Velocity(VelocityQuery{From: march[0], To: march[1], Currency: "USD"}, TestRates)
	for _, pair := range [][2]any{{fc, ofc}, {fcMarch, ofcMarch}, {wl, owl}, {fn, ofn}, {v, ov}} {
		if a, b := MustJSON(t, pair[0]), MustJSON(t, pair[1]); a != b {
			t.Errorf("store and oracle differ\nstore  %s\noracle %s", a, b)
		}
	}
}

func TestStoreMissingRate(t *testing.T) {
	s, o := smallWorld(t)
	noKWD := MapRates("USD", map[string]string{"EUR": "1.08", "JPY": "0.0067"})
	q := ForecastQuery{From: MustDate(t, "2025-01-01"), To: MustDate(t, "2025-12-31"), Currency: "USD"}
	for name, run := range map[string]func(ForecastQuery) (ForecastResult, error){"store": func(q ForecastQuery) (ForecastResult, error) { return s.Forecast(q, noKWD) }, "oracle": func(q ForecastQuery) (ForecastResult, error) { return o.Forecast(q, noKWD) }} {
		_, err := run(q)
		var mr *MissingRateError
		if !errors.As(err, &mr) || mr.Currency != "KWD" {
			t.Errorf("%s: want missing KWD, got %v", name, err)
		}
		q1 := q
		q1.OwnerID = "u-1" // no KWD deal: no KWD rate needed
		if _, err := run(q1); err != nil {
			t.Errorf("%s: u-1 has no KWD figures, got %v", name, err)
		}
		q2 := q
		q2.Currency = "CHF" // target without a rate
		if _, err := run(q2); !errors.As(err, &mr) || mr.Currency != "CHF" {
			t.Errorf("%s: want missing CHF, got %v", name, err)
		}
	}
	if _, err := s.WinLoss(WinLossQuery{From: MustDate(t, "2025-03-01"), To: MustDate(t, "2025-03-31"), Currency: "USD"}, noKWD); err == nil {
		t.Errorf("win/loss converted KWD without a rate")
	}
	if _, err := s.Changes(ChangesQuery{From: MustDate(t, "2025-03-01"), To: MustDate(t, "2025-03-31"), Currency: "USD"}, noKWD); err == nil {
		t.Errorf("changes converted KWD without a rate")
	}
	if _, err := s.Velocity(VelocityQuery{From: MustDate(t, "2025-03-01"), To: MustDate(t, "2025-03-31"), Currency: "USD"}, noKWD); err != nil {
		t.Errorf("velocity needs only won money (EUR): %v", err)
	}
}

// TestStoreConcurrentPutAndQuery runs the view's updates against readers (go test -race).
func TestStoreConcurrentPutAndQuery(t *testing.T) {
	s, o := smallWorld(t)
	from, to := MustDate(t, "2025-01-01"), MustDate(t, "2025-12-31")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			k := BucketKeyForTest(FamForecastForTest, "default", from+domain.Date(i%300), "u-9")
			if i%3 == 2 {
				s.Put(k, Bucket{})
				continue
			}
			s.Put(k, Bucket{Values: map[string]int64{"open/count": 1, "EUR/open/amount": int64(i)}})
		}
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				_, _ = o.Forecast(ForecastQuery{From: from, To: to, Currency: "USD"}, TestRates)
			}
		})
	}
	defer wg.Wait()
	for {
		select {
		case <-done:
			if _, err := s.Forecast(ForecastQuery{From: from, To: to, Currency: "USD", GroupBy: GroupOwner}, TestRates); err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
		for _, g := range []string{GroupNone, GroupOwner, GroupMonth} {
			if _, err := s.Forecast(ForecastQuery{From: from, To: to, Currency: "JPY", GroupBy: g}, TestRates); err != nil {
				t.Fatal(err)
			}
		}
		_ = s.Len()
	}
}
