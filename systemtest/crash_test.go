package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/analytics/analyticstest"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/query"
	"github.com/crm-pipeline/crm-pipeline/step"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// crashParams size the crash oracle. `make test` runs a short version; `make chaos` sets
// CRASH_COMMANDS, CRASH_OPPS and CRASH_KILLS for the long one.
func crashParams() (commands, opps, kills int) {
	commands, opps, kills = 600, 60, 5
	if v, err := strconv.Atoi(os.Getenv("CRASH_COMMANDS")); err == nil && v > 0 {
		commands = v
	}
	if v, err := strconv.Atoi(os.Getenv("CRASH_OPPS")); err == nil && v > 0 {
		opps = v
	}
	if v, err := strconv.Atoi(os.Getenv("CRASH_KILLS")); err == nil && v > 0 {
		kills = v
	}
	return
}

// TestCrashOracleAllInOne kills the all-in-one service (embedded broker in the same process)
// with SIGKILL at random moments while commands arrive through HTTP and Kafka.
func TestCrashOracleAllInOne(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	commands, opps, kills := crashParams()
	runCrashOracle(t, false, commands, opps, kills)
}

// TestCrashOracleSeparateBroker runs the broker as its own process and kills only serve.
func TestCrashOracleSeparateBroker(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	commands, opps, kills := crashParams()
	runCrashOracle(t, true, commands, opps, kills)
}

// TestAnalyticsEndToEnd is the end-to-end run of the analytics property test: random command
// sequences through HTTP and Kafka into the real service, every aggregate endpoint compared
// with the naive recomputation from the replayed states and events (no kills here).
func TestAnalyticsEndToEnd(t *testing.T) {
	t.Parallel()
	runCrashOracle(t, false, 800, 80, 0)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// sendCommandHTTP sends one of the oracle's commands to the API at base, with its command id as
// Idempotency-Key. It returns an error for what a retry may fix (no answer, a 5xx) and fails the
// test on any other answer but 202 and 422.
func sendCommandHTTP(t *testing.T, client *http.Client, base, method, path, key string, body map[string]any) error {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if resp.StatusCode != 202 && resp.StatusCode != 422 {
		t.Fatalf("%s %s%s: status %d", method, base, path, resp.StatusCode)
	}
	return nil
}

// sendUntilAccepted sends command i with send until it is accepted, calling between attempts
// (a pause, or a restart of what died); it fails the test after 200 failed attempts, and returns
// how many there were. The same command id every time makes the retries safe.
func sendUntilAccepted(t *testing.T, i int, send func() error, between func()) (retries int) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		err := send()
		if err == nil {
			return retries
		}
		retries++
		if attempt > 200 {
			t.Fatalf("command %d not accepted after %d attempts: %v", i, attempt, err)
		}
		between()
	}
}

func runCrashOracle(t *testing.T, separateBroker bool, nCommands, nOpps, nKills int) {
	if testing.Short() {
		t.Skip("crash oracle skipped in -short mode")
	}
	data := t.TempDir()
	httpAddr, brokerAddr := freePort(t), freePort(t)
	args := []string{"serve", "--data", data, "--http", httpAddr, "--partitions", "4"}
	if separateBroker {
		b := startBrokerProc(t, data, brokerAddr)
		defer b.kill()
		args = append(args, "--brokers", brokerAddr)
	} else {
		args = append(args, "--embedded-broker", brokerAddr)
	}
	p := startProc(t, args...)
	base := "http://" + httpAddr + "/api/v1"
	setup := testkit.Attach(t, base)
	for cur, rate := range crashRates {
		setup.MustStatus(setup.Do("PUT", "/fx-rates/"+cur, map[string]any{"rate": rate}, nil), 200)
	}

	rng := rand.New(rand.NewPCG(42, uint64(nCommands)))
	// Kill points spread over the run with jitter, far enough apart that every kill hits a
	// running process.
	killAt := map[int]bool{}
	gap := nCommands / (nKills + 1)
	for k := 1; k <= nKills; k++ {
		killAt[k*gap+rng.IntN(gap/2+1)-gap/4] = true
	}
	var producer sarama.SyncProducer
	defer func() {
		if producer != nil {
			producer.Close()
		}
	}()
	sendKafka := func(cmd domain.Command) error {
		if producer == nil {
			pr, err := topics.NewSyncProducer(topics.ClientOptions{Brokers: []string{brokerAddr}})
			if err != nil {
				return err
			}
			producer = pr
		}
		_, _, err := producer.SendMessage(testkit.CommandMessage(t, cmd))
		if err != nil {
			producer.Close()
			producer = nil
		}
		return err
	}
	client := &http.Client{Timeout: 5 * time.Second}
	kills, restarts, retries, httpSent, kafkaSent := 0, 0, 0, 0, 0
	began := time.Now()
	for i := 0; i < nCommands; i++ {
		if killAt[i] {
			// SIGKILL at a random moment while this and the next commands are in flight.
			kills++
			victim, delay := p, time.Duration(rng.IntN(40))*time.Millisecond
			go func() { time.Sleep(delay); victim.kill() }()
		}
		id := fmt.Sprintf("opp-%03d", rng.IntN(nOpps))
		method, path, body, cmd := randomCommand(rng, id, i)
		viaHTTP := rng.IntN(2) == 0
		retries += sendUntilAccepted(t, i, func() error {
			if viaHTTP {
				return sendCommandHTTP(t, client, base, method, path, cmd.CommandID, body)
			}
			return sendKafka(cmd)
		}, func() {
			if !p.dead() {
				time.Sleep(50 * time.Millisecond)
				return
			}
			restart := time.Now()
			p = startProc(t, args...)
			restarts++
			t.Logf("restarted after kill %d at command %d: ready after %v", kills, i, time.Since(restart))
		})
		if viaHTTP {
			httpSent++
		} else {
			kafkaSent++
		}
	}
	t.Logf("all %d commands sent after %v", nCommands, time.Since(began))
	time.Sleep(100 * time.Millisecond)
	if p.dead() {
		p = startProc(t, args...)
		restarts++
	}
	if restarts != nKills {
		t.Fatalf("%d restarts after %d kills: a kill missed its process", restarts, nKills)
	}
	// Wait until both processors have caught up with everything sent.
	testkit.Eventually(t, "processors caught up", func() bool {
		return p.metricSum("crm_consumer_lag_records") == 0 && p.metricSum("crm_consumer_lag_records") == 0
	})
	time.Sleep(time.Second)
	testkit.Eventually(t, "processors caught up (again)", func() bool { return p.metricSum("crm_consumer_lag_records") == 0 })

	t.Logf("caught up after %v", time.Since(began))
	oracle, aggOracle := replayCommandLog(t, brokerAddr)
	s := testkit.Attach(t, base)
	events := testkit.AllEvents(t, brokerAddr)
	mismatches := compareStates(t, s, oracle, events)
	mismatches += compareAnalytics(t, s, aggOracle)
	t.Logf("compared after %v", time.Since(began))
	t.Logf("crash oracle: %d commands (%d HTTP, %d Kafka), %d opportunities, %d kills (SIGKILL), %d retried sends, %d mismatches",
		nCommands, httpSent, kafkaSent, len(oracle), kills, retries, mismatches)
}

func startBrokerProc(t *testing.T, data, addr string) *proc {
	t.Helper()
	cmd := execCommand(t, "broker", "--data", data, "--listen", addr)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("broker not listening on %s\n%s", addr, cmd.logs.String())
	return nil
}

// randomCommand draws one command (valid or not: refusals are part of the log) for id, as
// the HTTP request and as the Kafka command with the same command id.
func randomCommand(rng *rand.Rand, id string, i int) (method, path string, body map[string]any, cmd domain.Command) {
	cmd = domain.Command{CommandID: fmt.Sprintf("c-%06d", i), OpportunityID: id,
		IssuedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute), Actor: "loadgen"}
	currencies := []string{"USD", "EUR", "JPY"}
	amount := func(cur string) string {
		if cur == "JPY" {
			return strconv.Itoa(1000 + rng.IntN(5_000_000))
		}
		return fmt.Sprintf("%d.%02d", rng.IntN(200000), rng.IntN(100))
	}
	date := func() string {
		return time.Date(2026, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	stages := []string{"qualification", "discovery", "proposal", "negotiation"}
	switch k := rng.IntN(10); {
	case k < 2:
		cur := currencies[rng.IntN(3)]
		c := &domain.CreateOpportunity{Name: "Deal " + id, AccountID: "acc-1", OwnerID: fmt.Sprintf("owner-%d", rng.IntN(5)),
			Amount: amount(cur), Currency: cur, CloseDate: date()}
		cmd.Type, cmd.Create = domain.CmdCreate, c
		body = map[string]any{"id": id, "name": c.Name, "accountId": c.AccountID, "ownerId": c.OwnerID,
			"amount": c.Amount, "currency": c.Currency, "closeDate": c.CloseDate}
		return "POST", "/opportunities", body, cmd
	case k < 5:
		u := &domain.UpdateOpportunity{}
		body = map[string]any{}
		switch rng.IntN(4) {
		case 0:
			d := date()
			u.CloseDate, body["closeDate"] = &d, d
		case 1:
			p := rng.IntN(101)
			u.Probability, body["probability"] = &p, p
		case 2:
			u.ClearProbability, body["probability"] = true, nil
		default:
			o := fmt.Sprintf("owner-%d", rng.IntN(5))
			u.OwnerID, body["ownerId"] = &o, o
		}
		cmd.Type, cmd.Update = domain.CmdUpdate, u
		return "PATCH", "/opportunities/" + id, body, cmd
	case k < 7:
		st := stages[rng.IntN(len(stages))]
		cmd.Type, cmd.ChangeStage = domain.CmdChangeStage, &domain.ChangeStage{StageID: st}
		return "POST", "/opportunities/" + id + "/stage", map[string]any{"stageId": st}, cmd
	case k < 8:
		cmd.Type, cmd.CloseWon = domain.CmdCloseWon, &domain.CloseWon{}
		return "POST", "/opportunities/" + id + "/close-won", map[string]any{}, cmd
	case k < 9:
		reason := []string{"price", "timing", "competitor"}[rng.IntN(3)]
		cmd.Type, cmd.CloseLost = domain.CmdCloseLost, &domain.CloseLost{Reason: reason}
		return "POST", "/opportunities/" + id + "/close-lost", map[string]any{"reason": reason}, cmd
	default:
		st := stages[rng.IntN(len(stages))]
		cmd.Type, cmd.Reopen = domain.CmdReopen, &domain.Reopen{StageID: st}
		return "POST", "/opportunities/" + id + "/reopen", map[string]any{"stageId": st}, cmd
	}
}

// replayCommandLog is the oracle: every record of the commands topic, in partition order,
// through the pure domain, decided at the same time the processor decides it.
func replayCommandLog(t *testing.T, broker string) (map[string]domain.Opportunity, *analyticstest.Oracle) {
	t.Helper()
	msgs := testkit.ReadAll(t, broker, topics.Commands)
	sort.SliceStable(msgs, func(i, j int) bool {
		if msgs[i].Partition != msgs[j].Partition {
			return msgs[i].Partition < msgs[j].Partition
		}
		return msgs[i].Offset < msgs[j].Offset
	})
	def := domain.DefaultPipeline()
	pipelines := func(id string) (*domain.Pipeline, bool) {
		if id == def.ID {
			return &def, true
		}
		return nil, false
	}
	aggs := map[string]domain.Aggregate{}
	aggregates := analyticstest.NewOracle()
	for _, m := range msgs {
		cmd, err := codecs.DecodeCommand(m.Value)
		if err != nil || cmd.OpportunityID != string(m.Key) {
			continue
		}
		agg, ok := aggs[cmd.OpportunityID]
		if !ok {
			agg = domain.Aggregate{Position: -1}
		}
		var curp *domain.Opportunity
		if agg.State.Version > 0 {
			cur := agg.State
			curp = &cur
		}
		// The processor's own step (step.Apply), replayed over the log.
		res := step.Apply(agg, cmd, m.Timestamp, step.Position{Source: strconv.Itoa(int(m.Partition)), Offset: m.Offset},
			step.Env{Key: string(m.Key), Pipelines: pipelines})
		aggs[cmd.OpportunityID] = res.Aggregate
		if res.Rejected == nil && !res.Duplicate {
			aggregates.Observe(curp, res.Aggregate.State, res.Events)
		}
	}
	states := map[string]domain.Opportunity{}
	for id, a := range aggs {
		states[id] = a.State
	}
	if err := aggregates.Err(); err != nil {
		t.Fatalf("analytics oracle: %v", err)
	}
	return states, aggregates
}

// compareOpportunity names the first fields where the service's JSON differs from the
// oracle's state.
func compareOpportunity(got map[string]any, want domain.Opportunity) string {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	exp := map[string]any{
		"version": float64(want.Version), "stageId": want.StageID, "status": string(want.Status),
		"amount": domain.FormatAmount(want.Amount, want.Currency), "currency": want.Currency,
		"probability": float64(want.Probability), "forecastCategory": string(want.ForecastCategory),
		"closeDate": want.CloseDate.String(), "ownerId": want.OwnerID, "lossReason": textOrNull(want.LossReason),
		"updatedAt": ts(want.UpdatedAt), "stageEnteredAt": ts(want.StageEnteredAt),
		"closeDatePushCount": float64(want.CloseDatePushCount),
	}
	if want.ClosedAt != nil {
		exp["closedAt"] = ts(*want.ClosedAt)
	} else {
		exp["closedAt"] = nil
	}
	var diffs []string
	for k, v := range exp {
		if g := got[k]; fmt.Sprint(g) != fmt.Sprint(v) {
			diffs = append(diffs, fmt.Sprintf("%s: got %v want %v", k, g, v))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

// textOrNull is a text field as the API answers it: null when not set.
func textOrNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// crashRates are the FX rates of the crash test (reporting currency USD).
var crashRates = map[string]string{"EUR": "1.08", "JPY": "0.0067"}

// compareAnalytics checks forecast and analytics answers of the service against the oracle's
// recomputation from the replayed states and events, to the cent; it returns the mismatches.
func compareAnalytics(t *testing.T, s *testkit.Service, o *analyticstest.Oracle) int {
	t.Helper()
	rates := analytics.MapRates("USD", crashRates)
	from, to := domain.Date(0), domain.Date(0)
	from, _ = domain.ParseDate("2026-01-01")
	to, _ = domain.ParseDate("2026-12-31")
	mismatches := 0
	check := func(path string, want any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("oracle %s: %v", path, err)
		}
		r := s.Do("GET", path, nil, nil)
		if r.Status != 200 {
			t.Errorf("%s: status %d: %s", path, r.Status, r.Body)
			mismatches++
			return
		}
		wantJSON, _ := query.MarshalAnalytics(want) // the body the handler sends for the oracle's answer
		var got, exp any
		_ = json.Unmarshal(r.Body, &got)
		_ = json.Unmarshal(wantJSON, &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s differs from the oracle:\n got %s\nwant %s", path, r.Body, wantJSON)
			mismatches++
		}
	}
	for _, g := range []string{"none", "owner", "month", "category", "stage"} {
		for _, cur := range []string{"USD", "JPY", "EUR"} {
			want, err := o.Forecast(analytics.ForecastQuery{From: from, To: to, GroupBy: g, Currency: cur}, rates)
			check(fmt.Sprintf("/forecast?from=2026-01-01&to=2026-12-31&groupBy=%s&currency=%s", g, cur), want, err)
		}
	}
	for _, g := range []string{"none", "owner", "reason", "month"} {
		want, err := o.WinLoss(analytics.WinLossQuery{From: from, To: to, GroupBy: g, Currency: "USD"}, rates)
		check("/analytics/win-loss?from=2026-01-01&to=2026-12-31&groupBy="+g, want, err)
	}
	def := domain.DefaultPipeline()
	want, err := o.Funnel(analytics.FunnelQuery{From: from, To: to, PipelineID: "default"}, def)
	check("/analytics/funnel?pipelineId=default&from=2026-01-01&to=2026-12-31", want, err)
	ch, err := o.Changes(analytics.ChangesQuery{From: from, To: to, Currency: "USD"}, rates)
	check("/analytics/changes?from=2026-01-01&to=2026-12-31", ch, err)
	return mismatches
}

// compareStates checks every opportunity the service answers for against the oracle's replayed
// state and the events topic (versions 1..n); it returns the mismatches.
func compareStates(t *testing.T, s *testkit.Service, oracle map[string]domain.Opportunity, events map[string][]domain.Event) int {
	t.Helper()
	mismatches := 0
	for id, want := range oracle {
		r := s.Do("GET", "/opportunities/"+id, nil, nil)
		if want.Version == 0 {
			if r.Status != 404 {
				t.Errorf("%s: oracle says it does not exist, service answered %d", id, r.Status)
				mismatches++
			}
			continue
		}
		if r.Status != 200 {
			t.Errorf("%s: status %d, oracle has version %d", id, r.Status, want.Version)
			mismatches++
			continue
		}
		if diff := compareOpportunity(r.JSON(t), want); diff != "" {
			t.Errorf("%s differs from the oracle: %s", id, diff)
			mismatches++
		}
		if n := len(events[id]); int64(n) != want.Version {
			t.Errorf("%s: %d versions on the events topic, oracle has %d", id, n, want.Version)
			mismatches++
		}
	}
	return mismatches
}
