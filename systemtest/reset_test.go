package systemtest

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/analytics/analyticstest"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"github.com/crm-pipeline/crm-pipeline/query"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// resetRates are the FX rates of the reset test (reporting currency USD).
var resetRates = map[string]string{"EUR": "1.08"}

// TestResetAnalyticsRebuildsAStoreOfThePreviousRule runs deals through the service, stops it,
// and leaves its analytics table as the previous derivation would have it: win/loss buckets
// on the UTC day of closedAt with cycles in milliseconds (which this build does not read),
// plus stale funnel, changes and forecast values, a stale bucket key, a deal of the previous
// layout (its history inside the state record only) and an old delta still on its way to the
// aggregator. `crm-pipeline reset-analytics` (the built binary, waiting for the stopped
// instance's static membership to expire) rebuilds the table; the service, started again on
// its kept local caches, then answers forecast, win/loss, velocity, funnel and changes exactly
// as the oracle recomputes them under the current rule from the events, skips the old delta,
// and goes on applying new commands. Run while the service is up, the command refuses and
// writes nothing.
func TestResetAnalyticsRebuildsAStoreOfThePreviousRule(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	b, err := topics.StartBroker(topics.BrokerOptions{DataDir: filepath.Join(data, "broker"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	addr := b.Addr()
	s := testkit.StartService(t, testkit.ServiceOpts{Data: data, Brokers: []string{addr}})
	for cur, rate := range resetRates {
		s.MustStatus(s.Do("PUT", "/fx-rates/"+cur, map[string]any{"rate": rate}, nil), 200)
	}

	// Over HTTP, decided today: wins and a loss without a date (they close today, whatever
	// their plan), a win reopened and moved on, a same-day win in EUR, an open deal.
	deal := func(id, owner, currency, amount string, closeIn int) {
		body := testkit.CreateBody(id)
		body["ownerId"], body["currency"], body["amount"], body["closeDate"] = owner, currency, amount, testkit.CloseDate(closeIn)
		s.MustStatus(s.Do("POST", "/opportunities", body, testkit.Wait), 201)
	}
	deal("h1", "owner-1", "USD", "1000.00", 40)
	deal("h2", "owner-2", "USD", "2000.00", 10)
	deal("h3", "owner-1", "USD", "3000.00", 70)
	deal("h4", "owner-2", "EUR", "4000.00", 5)
	deal("h5", "owner-1", "USD", "5000.00", 20)
	s.MustStatus(s.Do("POST", "/opportunities/h1/close-won", map[string]any{}, testkit.Wait), 200)
	s.MustStatus(s.Do("POST", "/opportunities/h2/close-lost", map[string]any{"reason": "price", "competitor": "Globex"}, testkit.Wait), 200)
	s.MustStatus(s.Do("POST", "/opportunities/h3/close-won", map[string]any{}, testkit.Wait), 200)
	s.MustStatus(s.Do("POST", "/opportunities/h3/reopen", map[string]any{"stageId": "negotiation"}, testkit.Wait), 200)
	s.MustStatus(s.Do("POST", "/opportunities/h4/close-won", map[string]any{}, testkit.Wait), 200)
	// A closing date after today is refused on its field.
	r := s.Do("POST", "/opportunities/h5/close-won", map[string]any{"closeDate": testkit.CloseDate(1)}, testkit.Wait)
	if r.Status != 422 || !strings.Contains(string(r.Body), string(domain.CodeCloseDateInFuture)) || !strings.Contains(string(r.Body), `"closeDate"`) {
		t.Fatalf("close-won on a later day: %d %s", r.Status, r.Body)
	}

	// From an upstream producer, issued in the past: deals created a month ago and closed on
	// an earlier day than the command (recorded after the fact).
	now := time.Now().UTC()
	day := func(d int) string { return now.AddDate(0, 0, d).Format(time.DateOnly) }
	var cmds []*sarama.ProducerMessage
	send := func(c domain.Command) {
		c.Actor = "upstream"
		v, err := codecs.EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, &sarama.ProducerMessage{Key: sarama.StringEncoder(c.OpportunityID), Value: sarama.ByteEncoder(v)})
	}
	for _, id := range []string{"k1", "k2"} {
		send(domain.Command{Type: domain.CmdCreate, CommandID: id + "-c", OpportunityID: id, IssuedAt: now.AddDate(0, 0, -30),
			Create: &domain.CreateOpportunity{Name: "Deal " + id, AccountID: "acc-1", OwnerID: "owner-3", Amount: "700.00", Currency: "USD", CloseDate: day(20)}})
	}
	send(domain.Command{Type: domain.CmdCloseWon, CommandID: "k1-w", OpportunityID: "k1", IssuedAt: now.AddDate(0, 0, -2),
		CloseWon: &domain.CloseWon{CloseDate: ptrS(day(-20))}})
	send(domain.Command{Type: domain.CmdCloseLost, CommandID: "k2-l", OpportunityID: "k2", IssuedAt: now.AddDate(0, 0, -1),
		CloseLost: &domain.CloseLost{Reason: "timing", CloseDate: ptrS(day(-5))}})
	testkit.Produce(t, addr, topics.Commands, cmds...)
	testkit.Eventually(t, "the upstream deals closed", func() bool {
		won, lost := s.Do("GET", "/opportunities/k1", nil, nil), s.Do("GET", "/opportunities/k2", nil, nil)
		return won.Status == 200 && won.JSON(t)["status"] == "won" && won.JSON(t)["closeDate"] == day(-20) &&
			lost.Status == 200 && lost.JSON(t)["status"] == "lost" && lost.JSON(t)["closeDate"] == day(-5)
	})
	s.Stop()

	// The expectation: the oracle over the events topic, plus the deal of the previous layout
	// added below, whose events exist only inside its state record.
	o := analyticstest.NewOracle()
	const legacyID = "opp-legacy"
	legacy := legacyAggregate(t, legacyID, 6, now)
	legacyAgg, err := codecs.DecodeAggregate(legacy)
	if err != nil {
		t.Fatal(err)
	}
	all := testkit.AllEvents(t, addr)
	all[legacyID] = legacyAgg.Events
	for _, evs := range all {
		for _, e := range evs {
			if err := o.ObserveEvent(e); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The store as the previous rule left it.
	var old []*sarama.ProducerMessage
	put := func(key string, values map[string]int64) {
		m := &sarama.ProducerMessage{Key: sarama.StringEncoder(key)} // no values: a tombstone
		if values != nil {
			v, err := codecs.EncodeBucket(analytics.Bucket{Values: values})
			if err != nil {
				t.Fatal(err)
			}
			m.Value = sarama.ByteEncoder(v)
		}
		old = append(old, m)
	}
	current := testkit.LatestBuckets(t, addr)
	oldWL := map[string]map[string]int64{}
	for _, st := range latestStates(t, addr) {
		if st.Status == domain.StatusOpen {
			continue
		}
		k := fmt.Sprintf("W|%s|%s|%s", st.PipelineID, domain.DateOf(*st.ClosedAt), st.OwnerID)
		if oldWL[k] == nil {
			oldWL[k] = map[string]int64{}
		}
		v := oldWL[k]
		if st.Status == domain.StatusWon {
			v["won/count"]++
			v[st.Currency+"/won/amount"] += st.Amount
			v["won/cycleMs"] += st.ClosedAt.UnixMilli() - st.CreatedAt.UnixMilli()
		} else {
			v["lost/count"]++
			v[st.Currency+"/lost/amount"] += st.Amount
			v["reason/"+st.LossReason+"/count"]++
			v[st.Currency+"/reason/"+st.LossReason+"/amount"] += st.Amount
			if st.Competitor != "" {
				v["competitor/"+st.Competitor+"/count"]++
				v[st.Currency+"/competitor/"+st.Competitor+"/amount"] += st.Amount
			}
		}
	}
	var tampered []string
	for k, bk := range current {
		switch {
		case strings.HasPrefix(k, "W|"):
			if _, ok := oldWL[k]; !ok {
				put(k, nil) // no such bucket under the old rule
			}
		case strings.HasPrefix(k, "E|") || strings.HasPrefix(k, "F|"):
			v := map[string]int64{}
			for n, x := range bk.Values {
				v[n] = x
			}
			v["created/count"] += 3
			v["closedWon/count"] += 2
			put(k, v)
			tampered = append(tampered, k)
		}
	}
	for k, v := range oldWL {
		put(k, v)
	}
	put("E|default|2001-02-03|owner-9", map[string]int64{"created/count": 4, "USD/created/amount": 99})
	testkit.Produce(t, addr, topics.AnalyticsTable, old...)
	testkit.Produce(t, addr, topics.OpportunityTable, &sarama.ProducerMessage{Key: sarama.StringEncoder(legacyID), Value: sarama.ByteEncoder(legacy)})
	if len(tampered) == 0 || len(oldWL) == 0 {
		t.Fatalf("nothing to tamper with: %d current buckets", len(current))
	}

	// reset-analytics, as an operator runs it right after the stop: it waits for the static
	// member to leave the groups.
	out, err := runCLI(t, "reset-analytics", "--brokers", addr, "--wait", "60s")
	t.Logf("reset-analytics:\n%s", out)
	if err != nil {
		t.Fatalf("reset-analytics: %v", err)
	}
	if !strings.Contains(out, "folded 8 opportunities") || !strings.Contains(out, "1 of the previous layout") {
		t.Fatalf("reset-analytics report: %s", out)
	}
	for k, bk := range testkit.LatestBuckets(t, addr) {
		if len(bk.Applied) == 0 {
			t.Fatalf("bucket %s written without a guard: %+v", k, bk)
		}
	}
	// A delta of the old rule still on the repartition topic, at a position the table covers.
	src := strconv.Itoa(int(topics.PartitionOf("h1", 4)))
	inFlight, err := codecs.EncodeDelta(analytics.Delta{Bucket: fmt.Sprintf("W|default|%s|owner-1", now.Format(time.DateOnly)),
		OpportunityID: "h1", Version: 2, Values: map[string]int64{"won/count": 7, "won/cycleMs": 5}, Source: src, Position: 0})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Produce(t, addr, topics.AnalyticsDeltas, &sarama.ProducerMessage{Key: sarama.StringEncoder(fmt.Sprintf("W|default|%s|owner-1", now.Format(time.DateOnly))), Value: sarama.ByteEncoder(inFlight)})

	s2 := testkit.StartService(t, testkit.ServiceOpts{Data: data, Brokers: []string{addr}})
	testkit.Eventually(t, "the old delta skipped", func() bool {
		n, _, err := testkit.MetricSum(s2.Run.HTTPAddr, "crm_analytics_deltas_skipped_total")
		return err == nil && n >= 1
	})
	waitAnalyticsLikeOracle(t, s2, o, now)

	// By hand, for what the oracle shares with the Store (the definitions): h1, h4 and k1
	// won, h2 and k2 lost, all on their close dates; cycles of 1, 1 and 11 days.
	wl, err := o.WinLoss(analytics.WinLossQuery{From: domain.DateOf(now) - 60, To: domain.DateOf(now), Currency: "USD"}, analytics.MapRates("USD", resetRates))
	if err != nil || wl.Won.Count != 3 || wl.Lost.Count != 2 || wl.AvgCycleDaysWon != "4.3" {
		t.Fatalf("oracle win/loss %+v, %v", wl.WinLossFigures, err)
	}

	// New commands after the reset are applied on top of the rebuilt buckets.
	s2.MustStatus(s2.Do("POST", "/opportunities/h5/close-won", map[string]any{}, testkit.Wait), 200)
	for _, e := range testkit.EventsOf(t, addr, "h5") {
		if err := o.ObserveEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	waitAnalyticsLikeOracle(t, s2, o, now)

	// While the service runs the command refuses, and writes nothing.
	before := highWaterMarks(t, addr, topics.AnalyticsTable)
	out, err = runCLI(t, "reset-analytics", "--brokers", addr, "--wait", "1s")
	if err == nil || !strings.Contains(out, "the service is running") || !strings.Contains(out, topics.AnalyticsGroup) {
		t.Fatalf("reset-analytics beside a running service: %v\n%s", err, out)
	}
	if after := highWaterMarks(t, addr, topics.AnalyticsTable); !reflect.DeepEqual(before, after) {
		t.Fatalf("a refused reset wrote to %s: %v -> %v", topics.AnalyticsTable, before, after)
	}
}

func ptrS(s string) *string { return &s }

// latestStates is every opportunity's latest state on the opportunity table.
func latestStates(t *testing.T, addr string) map[string]domain.Opportunity {
	t.Helper()
	out := map[string]domain.Opportunity{}
	for _, m := range testkit.ReadAll(t, addr, topics.OpportunityTable) {
		agg, err := codecs.DecodeAggregateState(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if agg.State.Version > 0 {
			out[string(m.Key)] = agg.State
		}
	}
	return out
}

// highWaterMarks is the end offset of every partition of topic.
func highWaterMarks(t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	c, err := topics.NewClient(topics.ClientOptions{Brokers: []string{addr}, ClientID: "test-hwm"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, p := range parts {
		if out[p], err = c.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// waitAnalyticsLikeOracle waits until every analytics answer of the service over the two
// months around now equals the oracle's, and fails with the differences if they do not.
func waitAnalyticsLikeOracle(t *testing.T, s *testkit.Service, o *analyticstest.Oracle, now time.Time) {
	t.Helper()
	var diffs []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		diffs = analyticsDiffs(t, s, o, now)
		if len(diffs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("analytics differ from the oracle:\n%s", strings.Join(diffs, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// analyticsDiffs compares the service's forecast, win/loss, velocity, funnel and changes
// with the oracle's recomputation, as the bodies the handlers send.
func analyticsDiffs(t *testing.T, s *testkit.Service, o *analyticstest.Oracle, now time.Time) []string {
	t.Helper()
	rates := analytics.MapRates("USD", resetRates)
	today := domain.DateOf(now)
	from, to := today-60, today+90
	period := fmt.Sprintf("from=%s&to=%s", from, to)
	var diffs []string
	check := func(path string, want any, err error) {
		if err != nil {
			t.Fatalf("oracle %s: %v", path, err)
		}
		r := s.Do("GET", path, nil, nil)
		wantJSON, _ := query.MarshalAnalytics(want)
		var got, exp any
		_ = json.Unmarshal(r.Body, &got)
		_ = json.Unmarshal(wantJSON, &exp)
		if r.Status != 200 || !reflect.DeepEqual(got, exp) {
			diffs = append(diffs, fmt.Sprintf("%s: %d\n got %s\nwant %s", path, r.Status, r.Body, wantJSON))
		}
	}
	for _, g := range []string{"none", "month", "owner", "category", "stage"} {
		want, err := o.Forecast(analytics.ForecastQuery{From: from, To: to, GroupBy: g, Currency: "USD"}, rates)
		check("/forecast?"+period+"&groupBy="+g, want, err)
	}
	want, err := o.Forecast(analytics.ForecastQuery{From: today, To: today, Currency: "EUR"}, rates)
	check(fmt.Sprintf("/forecast?from=%s&to=%s&currency=EUR", today, today), want, err)
	for _, g := range []string{"none", "owner", "reason", "month"} {
		want, err := o.WinLoss(analytics.WinLossQuery{From: from, To: to, GroupBy: g, Currency: "USD"}, rates)
		check("/analytics/win-loss?"+period+"&groupBy="+g, want, err)
	}
	for _, days := range []int{1, 10, 90} {
		want, err := o.Velocity(analytics.VelocityQuery{From: today - domain.Date(days) + 1, To: today, Currency: "USD"}, rates)
		check("/analytics/velocity?days="+strconv.Itoa(days), want, err)
	}
	fn, err := o.Funnel(analytics.FunnelQuery{From: from, To: to, PipelineID: "default"}, domain.DefaultPipeline())
	check("/analytics/funnel?pipelineId=default&"+period, fn, err)
	ch, err := o.Changes(analytics.ChangesQuery{From: from, To: to, Currency: "USD"}, rates)
	check("/analytics/changes?"+period, ch, err)
	ch, err = o.Changes(analytics.ChangesQuery{From: today - 6, To: today, Currency: "USD"}, rates)
	check(fmt.Sprintf("/analytics/changes?from=%s&to=%s", today-6, today), ch, err)
	slices.Sort(diffs)
	return diffs
}
