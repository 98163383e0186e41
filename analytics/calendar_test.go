package analytics_test

import (
	"fmt"
	"testing"
	"time"

	. "github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/analytics/analyticstest"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// calendarWorld runs commands through Decide and Deltas into buckets, and through the Oracle,
// as the property test does, for scenario tests with hand-picked figures.
type calendarWorld struct {
	t       *testing.T
	buckets map[string]*Bucket
	oracle  *analyticstest.Oracle
	states  map[string]*domain.Opportunity
}

func newCalendarWorld(t *testing.T) *calendarWorld {
	return &calendarWorld{t: t, buckets: map[string]*Bucket{}, oracle: analyticstest.NewOracle(), states: map[string]*domain.Opportunity{}}
}

func (w *calendarWorld) run(cmd domain.Command, at time.Time) domain.Opportunity {
	w.t.Helper()
	cur := w.states[cmd.OpportunityID]
	d := MustDecide(w.t, cur, cmd, at)
	ApplyAll(w.buckets, Deltas(cur, d.Next, d.Events, LookupPipeline))
	w.oracle.Observe(cur, d.Next, d.Events)
	n := d.Next
	w.states[cmd.OpportunityID] = &n
	return n
}

// answers runs forecast, win/loss and velocity over [from, to] on the Store and the Oracle,
// fails on any disagreement, and returns the Store's.
func (w *calendarWorld) answers(from, to string) (ForecastResult, WinLossResult, VelocityResult) {
	w.t.Helper()
	s := StoreOf(w.buckets)
	f, t := MustDate(w.t, from), MustDate(w.t, to)
	fc, err1 := s.Forecast(ForecastQuery{From: f, To: t, Currency: "USD"}, TestRates)
	wl, err2 := s.WinLoss(WinLossQuery{From: f, To: t, Currency: "USD"}, TestRates)
	v, err3 := s.Velocity(VelocityQuery{From: f, To: t, Currency: "USD"}, TestRates)
	ofc, err4 := w.oracle.Forecast(ForecastQuery{From: f, To: t, Currency: "USD"}, TestRates)
	owl, err5 := w.oracle.WinLoss(WinLossQuery{From: f, To: t, Currency: "USD"}, TestRates)
	ov, err6 := w.oracle.Velocity(VelocityQuery{From: f, To: t, Currency: "USD"}, TestRates)
	for _, err := range []error{err1, err2, err3, err4, err5, err6} {
		if err != nil {
			w.t.Fatal(err)
		}
	}
	for _, pair := range [][2]any{{fc, ofc}, {wl, owl}, {v, ov}} {
		if a, b := MustJSON(w.t, pair[0]), MustJSON(w.t, pair[1]); a != b {
			w.t.Errorf("%s..%s: store and oracle differ\nstore  %s\noracle %s", from, to, a, b)
		}
	}
	return fc, wl, v
}

// events runs changes and the default pipeline's funnel over [from, to] on the Store and the
// Oracle, fails on any disagreement, and returns the Store's.
func (w *calendarWorld) events(from, to string) (ChangesResult, FunnelResult) {
	w.t.Helper()
	s := StoreOf(w.buckets)
	f, t := MustDate(w.t, from), MustDate(w.t, to)
	ch, err1 := s.Changes(ChangesQuery{From: f, To: t, Currency: "USD"}, TestRates)
	fn, err2 := s.Funnel(FunnelQuery{From: f, To: t}, domain.DefaultPipeline())
	och, err3 := w.oracle.Changes(ChangesQuery{From: f, To: t, Currency: "USD"}, TestRates)
	ofn, err4 := w.oracle.Funnel(FunnelQuery{From: f, To: t}, domain.DefaultPipeline())
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			w.t.Fatal(err)
		}
	}
	for _, pair := range [][2]any{{ch, och}, {fn, ofn}} {
		if a, b := MustJSON(w.t, pair[0]), MustJSON(w.t, pair[1]); a != b {
			w.t.Errorf("%s..%s: store and oracle differ\nstore  %s\noracle %s", from, to, a, b)
		}
	}
	return ch, fn
}

// TestOneCalendarForEveryReport is issue 11's scenario: 48 deals planned to close in the
// first half of 2027, 8 of them won in July with the day they closed given in the body. The
// forecast's closedWon and win/loss's won count the same 8 deals in H1 2027 (before, win/loss
// counted them on the day of the command, in July, and the forecast on the planned day). A
// deal planned for next March and won today without a date counts as won today in both, and
// no longer in March.
func TestOneCalendarForEveryReport(t *testing.T) {
	w := newCalendarWorld(t)
	created := time.Date(2026, 12, 15, 10, 0, 0, 0, time.UTC)
	today := time.Date(2027, 7, 15, 9, 0, 0, 0, time.UTC)
	h1 := MustDate(t, "2027-01-01")
	for i := range 48 {
		id := fmt.Sprintf("h1-%02d", i)
		planned := (h1 + domain.Date(i*3)).String() // 2027-01-01 .. 2027-06-19
		w.run(CreateCmd(id, id+"-c", func(c *domain.CreateOpportunity) { c.CloseDate, c.Amount = planned, "1000.00" }), created)
		if i%6 == 0 { // 8 of the 48
			n := w.run(WonCmd(id, id+"-w", domain.CloseWon{CloseDate: Ptr(planned)}), today.Add(time.Duration(i)*time.Minute))
			if n.CloseDate.String() != planned {
				t.Fatalf("%s closed on %s, the body said %s", id, n.CloseDate, planned)
			}
		}
	}
	w.run(CreateCmd("march", "march-c", func(c *domain.CreateOpportunity) { c.CloseDate, c.Amount = "2028-03-15", "5000.00" }), created)
	w.run(WonCmd("march", "march-w", domain.CloseWon{}), today.Add(2*time.Hour))

	fc, wl, _ := w.answers("2027-01-01", "2027-06-30")
	if fc.Total.ClosedWon.Count != 8 || wl.Won.Count != 8 {
		t.Errorf("H1 2027: forecast closedWon %d, win/loss won %d; want 8 and 8", fc.Total.ClosedWon.Count, wl.Won.Count)
	}
	if fc.Total.ClosedWon.Amount != wl.Won.Amount || wl.Won.Amount != "8000.00" {
		t.Errorf("H1 2027: forecast closedWon %s, win/loss won %s; want 8000.00 in both", fc.Total.ClosedWon.Amount, wl.Won.Amount)
	}
	if fc.Total.Open.Count != 40 {
		t.Errorf("H1 2027: %d open, want 40", fc.Total.Open.Count)
	}
	// The closing events are placed on the close date too: changes' won and the funnel's
	// moves into the won stage.
	ch, fn := w.events("2027-01-01", "2027-06-30")
	if ch.Won.Count != 8 || fn.Stages[4].StageID != "closed_won" || fn.Stages[4].Entered != 8 || fn.Stages[0].Won != 8 {
		t.Errorf("H1 2027: changes won %d, funnel %+v; want 8 wins", ch.Won.Count, fn.Stages)
	}
	if ch, _ := w.events("2027-07-01", "2027-07-31"); ch.Won.Count != 1 {
		t.Errorf("July 2027: changes won %d, want only the deal won today without a date", ch.Won.Count)
	}

	fc, wl, _ = w.answers("2027-07-15", "2027-07-15")
	if fc.Total.ClosedWon.Count != 1 || wl.Won.Count != 1 || wl.Won.Amount != "5000.00" {
		t.Errorf("today: forecast closedWon %d, win/loss won %d (%s); want the deal planned for March, 1 and 1",
			fc.Total.ClosedWon.Count, wl.Won.Count, wl.Won.Amount)
	}
	fc, wl, _ = w.answers("2028-03-01", "2028-03-31")
	if fc.Total.ClosedWon.Count != 0 || wl.Won.Count != 0 {
		t.Errorf("March 2028: forecast closedWon %d, win/loss won %d; the deal closed today", fc.Total.ClosedWon.Count, wl.Won.Count)
	}
}

// TestCycleDaysCountCalendarDaysInclusively: a cycle is the whole calendar days (UTC) from
// the creation day to the close date, both counted, so a deal won seconds after it was
// created took 1 day and velocity stays finite (before: "0.0" days and a velocity of
// millions per day); created 2027-01-01 and closed 2027-01-03 is 3 days; one minute across
// midnight is 2.
func TestCycleDaysCountCalendarDaysInclusively(t *testing.T) {
	w := newCalendarWorld(t)
	jan1 := time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC)
	w.run(CreateCmd("same", "same-c"), jan1)
	w.run(WonCmd("same", "same-w", domain.CloseWon{}), jan1.Add(3*time.Second))
	w.run(CreateCmd("open", "open-c"), jan1) // the one open deal velocity multiplies by

	_, wl, v := w.answers("2027-01-01", "2027-01-31")
	if wl.AvgCycleDaysWon != "1.0" || v.AvgCycleDaysWon != "1.0" {
		t.Errorf("won the day it was created: avgCycleDaysWon %s (win/loss), %s (velocity), want 1.0", wl.AvgCycleDaysWon, v.AvgCycleDaysWon)
	}
	// 1 open × win rate 1 × 12500.00 / 1 day.
	if v.VelocityPerDay != "12500.00" || v.OpenCount != 1 || v.WonCount != 1 {
		t.Errorf("velocity %+v, want 12500.00 per day", v)
	}

	w.run(CreateCmd("three", "three-c"), jan1.Add(time.Hour))
	w.run(WonCmd("three", "three-w", domain.CloseWon{}), time.Date(2027, 1, 3, 8, 0, 0, 0, time.UTC))
	w.run(CreateCmd("midnight", "midnight-c"), time.Date(2027, 1, 4, 23, 59, 0, 0, time.UTC))
	w.run(WonCmd("midnight", "midnight-w", domain.CloseWon{}), time.Date(2027, 1, 5, 0, 0, 30, 0, time.UTC))
	// A win recorded on an earlier day than the command: the cycle ends on the close date.
	w.run(CreateCmd("early", "early-c"), time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC))
	w.run(WonCmd("early", "early-w", domain.CloseWon{CloseDate: Ptr("2027-01-13")}), time.Date(2027, 1, 20, 12, 0, 0, 0, time.UTC))

	_, wl, v = w.answers("2027-01-01", "2027-01-31")
	// (1 + 3 + 2 + 4) / 4 = 2.5
	if wl.AvgCycleDaysWon != "2.5" || v.AvgCycleDaysWon != "2.5" {
		t.Errorf("cycles 1, 3, 2 and 4 days: avgCycleDaysWon %s (win/loss), %s (velocity), want 2.5", wl.AvgCycleDaysWon, v.AvgCycleDaysWon)
	}
	// 1 open × 1 × 12500.00 / 2.5 days.
	if v.VelocityPerDay != "5000.00" {
		t.Errorf("velocity %s, want 5000.00", v.VelocityPerDay)
	}
}
