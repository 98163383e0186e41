package analytics_test

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	. "github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/analytics/analyticstest"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// The property test is the proof that the incremental aggregation is exact. Random command
// histories (many opportunities, ten owners including ids with '|', '/' and '%', both
// pipelines, USD/EUR/JPY/KWD, overrides, stage moves back and forth, wins, losses, reopens,
// close-date and amount changes, duplicates and refusals) run through domain.Decide. Every
// accepted command's Deltas go to per-bucket queues that are delivered in a random interleaving
// across buckets (order kept within a bucket, as Kafka keeps it within a partition), with
// redeliveries of already applied deltas and re-emissions of whole commands (computed again
// from states rebuilt by domain.Replay of microsecond-truncated events, as the processor does
// after a crash). The query side's Store gets every bucket update. At checkpoints, after
// draining, it checks:
//
//   - the guarded buckets equal buckets built from each original delta applied exactly once;
//   - Store.Len counts the non-empty buckets, and a Store rebuilt from scratch answers the same;
//   - every query (random periods, groupBys, pipelines, owners, target currencies including JPY
//     and KWD, rate tables with holes) answers exactly what the Oracle recomputes from final
//     states and events, compared as marshalled JSON, errors included (the 422 path);
//   - an Oracle fed only from the event stream (with duplicates) agrees with one fed per command.
func TestPropertyAggregatesMatchOracle(t *testing.T) {
	total := map[string]int{}
	seeds := 6
	steps := 3000
	if testing.Short() {
		seeds, steps = 2, 1200
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run("seed="+strconv.Itoa(seed), func(t *testing.T) {
			s := newAggSim(t, uint64(seed))
			for i := range steps {
				s.step()
				if (i+1)%(steps/4) == 0 {
					s.checkpoint()
				}
			}
			for k, v := range s.stats {
				total[k] += v
			}
		})
	}
	// The generator must reach every case, or the comparison proves little.
	for _, k := range []string{
		"event:" + string(domain.EvtCreated), "event:" + string(domain.EvtUpdated), "event:" + string(domain.EvtStageChanged),
		"event:" + string(domain.EvtClosedWon), "event:" + string(domain.EvtClosedLost), "event:" + string(domain.EvtReopened),
		"refused", "duplicate", "noop", "reemitted", "guard skipped", "currency changed", "close date pushed", "close date pulled",
		"amount increased", "amount decreased", "owner changed", "override", "stage skipped forward", "stage moved backward",
		"compared", "compared error: missing rate", "missing rate not needed", "funnel regressed", "funnel reopened",
		"closed on an earlier day", "rebuilt", "forecast by stage, several stages",
	} {
		if total[k] == 0 {
			t.Errorf("the random histories never produced %q (stats %v)", k, total)
		}
	}
	t.Logf("stats: %v", total)
}

var (
	simOwners     = []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "o|pipe", "o/slash%"}
	simCurrencies = []string{"USD", "USD", "EUR", "JPY", "JPY", "KWD"}
	simReasons    = []string{"price", "timing", "no/budget", "x|y", "100%"}
	simComps      = []string{"", "", "Globex", "Initech/EU"}
	simTargets    = []string{"USD", "EUR", "JPY", "KWD", "GBP"}
	simStart      = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	simRateTables = []Rates{
		TestRates, TestRates, TestRates, TestRates, TestRates, TestRates,
		MapRates("USD", map[string]string{"EUR": "1.08", "JPY": "0.0067", "GBP": "1.27"}),  // no KWD
		MapRates("USD", map[string]string{"EUR": "1.08", "KWD": "3.25", "GBP": "1.27"}),    // no JPY
		MapRates("USD", map[string]string{"EUR": "1.08", "JPY": "0.0067", "KWD": "3.25"}),  // no GBP
		MapRates("EUR", map[string]string{"USD": "0.925", "JPY": "0.0062", "KWD": "3.01"}), // EUR reporting, no GBP
	}
)

type aggSim struct {
	t      *testing.T
	r      *rand.Rand
	now    time.Time
	ids    []string
	states map[string]*domain.Opportunity
	logs   map[string][]domain.Event // events with Avro's microsecond timestamps
	sent   []domain.Command
	seq    int

	pending     map[string][]Delta
	pendingKeys []string
	delivered   map[string][]Delta
	dKeys       []string
	buckets     map[string]*Bucket
	clean       map[string]*Bucket
	store       *Store

	oracle      *analyticstest.Oracle
	eventOracle *analyticstest.Oracle
	stats       map[string]int
}

func newAggSim(t *testing.T, seed uint64) *aggSim {
	s := &aggSim{t: t, r: rand.New(rand.NewPCG(seed, seed*7919+1)), now: simStart,
		states: map[string]*domain.Opportunity{}, logs: map[string][]domain.Event{},
		pending: map[string][]Delta{}, delivered: map[string][]Delta{}, buckets: map[string]*Bucket{}, clean: map[string]*Bucket{},
		store: NewStore(), oracle: analyticstest.NewOracle(), eventOracle: analyticstest.NewOracle(), stats: map[string]int{}}
	for i := range 150 {
		s.ids = append(s.ids, fmt.Sprintf("opp-%03d", i))
	}
	s.ids = append(s.ids, "opp|pipe", "opp/slash%")
	return s
}

func (s *aggSim) chance(n int) bool { return s.r.IntN(n) == 0 }

func (s *aggSim) pick(list []string) string { return list[s.r.IntN(len(list))] }

func (s *aggSim) amount(cur string) string {
	exp, _ := domain.CurrencyExponent(cur)
	var v int64
	switch {
	case s.chance(15):
		v = 0
	case s.chance(10):
		v = s.r.Int64N(1_000_000_000_000)
	default:
		v = s.r.Int64N(50_000_000)
	}
	if exp == 0 {
		return strconv.FormatInt(v, 10)
	}
	return domain.FormatAmount(v, cur)
}

func (s *aggSim) closeDate() string {
	return (domain.DateOf(s.now) + domain.Date(s.r.IntN(460)-60)).String()
}

// closingDate is a close-won or close-lost body's closeDate: mostly a day the rule accepts
// (from the creation day, or 90 days back, to today), now and then a later one (refused).
func (s *aggSim) closingDate(cur *domain.Opportunity) string {
	today := domain.DateOf(s.now)
	if s.chance(10) {
		return (today + domain.Date(1+s.r.IntN(30))).String()
	}
	lo := today - 90
	if cur != nil {
		lo = max(lo, domain.DateOf(cur.CreatedAt))
	}
	return (lo + domain.Date(s.r.IntN(int(today-lo)+1))).String()
}

func (s *aggSim) stageOf(pipelineID string, openOnly bool) string {
	p := TestPipelines[pipelineID]
	if !openOnly && s.chance(6) {
		return "nope"
	}
	for {
		st := p.Stages[s.r.IntN(len(p.Stages))]
		if !openOnly || st.Status == domain.StatusOpen {
			return st.ID
		}
	}
}

// command makes the next random command: mostly valid for the current state, sometimes a resend
// of an earlier one, sometimes one the domain must refuse.
func (s *aggSim) command() domain.Command {
	if len(s.sent) > 0 && s.chance(25) {
		return s.sent[s.r.IntN(len(s.sent))]
	}
	s.seq++
	id := s.pick(s.ids)
	cmd := domain.Command{CommandID: "cmd-" + strconv.Itoa(s.seq), OpportunityID: id, Actor: "actor-" + strconv.Itoa(s.r.IntN(4))}
	cur := s.states[id]
	kind := s.r.IntN(100)
	switch {
	case cur == nil && kind < 92:
		kind = -1 // create
	case cur != nil && cur.Status != domain.StatusOpen && kind < 60:
		kind = 99 // reopen
	}
	pipelineID := "default"
	if cur != nil {
		pipelineID = cur.PipelineID
	}
	switch {
	case kind == -1 || kind < 2:
		c := &domain.CreateOpportunity{Name: "Deal " + id, AccountID: "acc", OwnerID: s.pick(simOwners), Currency: s.pick(simCurrencies), CloseDate: s.closeDate()}
		c.Amount = s.amount(c.Currency)
		if !s.chance(3) {
			c.PipelineID = []string{"", "default", "enterprise", "enterprise"}[s.r.IntN(4)]
		}
		p := c.PipelineID
		if p == "" {
			p = "default"
		}
		if s.chance(3) {
			c.StageID = s.stageOf(p, !s.chance(10))
		}
		if s.chance(5) {
			c.Probability = Ptr(s.r.IntN(101))
		}
		if s.chance(6) {
			c.ForecastCategory = Ptr(s.pick([]string{"pipeline", "best_case", "commit", "omitted"}))
		}
		if s.chance(2) {
			c.NextStep = "call"
		}
		cmd.Type, cmd.Create = domain.CmdCreate, c
	case kind < 42:
		u := &domain.UpdateOpportunity{}
		if s.chance(3) {
			cur := "USD"
			if c := s.states[id]; c != nil {
				cur = c.Currency
			}
			if s.chance(4) {
				cur = s.pick(simCurrencies)
				u.Currency = Ptr(cur)
			}
			u.Amount = Ptr(s.amount(cur))
		}
		if s.chance(3) {
			u.CloseDate = Ptr(s.closeDate())
		}
		if s.chance(6) {
			u.OwnerID = Ptr(s.pick(simOwners))
		}
		if s.chance(4) {
			u.NextStep = Ptr(s.pick([]string{"demo", "sign"}))
		}
		switch s.r.IntN(7) {
		case 0:
			u.Probability = Ptr(s.r.IntN(101))
		case 1:
			u.ClearProbability = true
		}
		switch s.r.IntN(7) {
		case 0:
			u.ForecastCategory = Ptr(s.pick([]string{"pipeline", "best_case", "commit", "omitted"}))
		case 1:
			u.ClearForecastCategory = true
		}
		cmd.Type, cmd.Update = domain.CmdUpdate, u
	case kind < 72:
		cmd.Type, cmd.ChangeStage = domain.CmdChangeStage, &domain.ChangeStage{StageID: s.stageOf(pipelineID, !s.chance(8))}
	case kind < 84:
		c := &domain.CloseWon{}
		if s.chance(3) {
			c.CloseDate = Ptr(s.closingDate(cur))
		}
		if s.chance(4) && cur != nil {
			c.Amount = Ptr(s.amount(cur.Currency))
		}
		cmd.Type, cmd.CloseWon = domain.CmdCloseWon, c
	case kind < 96:
		cmd.Type, cmd.CloseLost = domain.CmdCloseLost, &domain.CloseLost{Reason: s.pick(simReasons), Competitor: s.pick(simComps)}
		if s.chance(3) {
			cmd.CloseLost.CloseDate = Ptr(s.closingDate(cur))
		}
	default:
		cmd.Type, cmd.Reopen = domain.CmdReopen, &domain.Reopen{StageID: s.stageOf(pipelineID, !s.chance(8))}
	}
	if s.chance(25) {
		var v int64
		if cur != nil {
			v = cur.Version
		}
		v += int64(s.r.IntN(2)) // right half the time
		cmd.ExpectedVersion = &v
	}
	return cmd
}

func (s *aggSim) step() {
	t := s.t
	s.now = s.now.Add(time.Duration(1+s.r.IntN(10*3600))*time.Second + time.Duration(s.r.IntN(1e9)))
	cmd := s.command()
	s.sent = append(s.sent, cmd)
	cur := s.states[cmd.OpportunityID]
	d, err := domain.Decide(cur, cmd, domain.DecideContext{Now: s.now, Pipelines: LookupPipeline})
	if err != nil {
		if _, ok := domain.AsRejection(err); !ok {
			t.Fatalf("%s: %v", cmd.CommandID, err)
		}
		s.stats["refused"]++
		return
	}
	deltas := Deltas(cur, d.Next, d.Events, LookupPipeline)
	// As the processor does: the record's partition (here a hash of the opportunity id over 4
	// simulated partitions) and offset (the command's index, increasing in every partition).
	position := int64(len(s.sent))
	stamp(deltas, cmd.OpportunityID, position)
	s.oracle.Observe(cur, d.Next, d.Events)
	switch {
	case d.Duplicate:
		s.stats["duplicate"]++
	case len(d.Events) == 0:
		s.stats["noop"]++
	}
	if len(d.Events) == 0 {
		if len(deltas) != 0 {
			t.Fatalf("%s: a command without events produced deltas %v", cmd.CommandID, deltas)
		}
		n := d.Next
		s.states[cmd.OpportunityID] = &n
		return
	}
	s.classify(cur, d.Next, d.Events[0])
	micro := slices.Clone(d.Events)
	for i := range micro {
		micro[i].At = micro[i].At.Truncate(time.Microsecond)
		if err := s.eventOracle.ObserveEvent(micro[i]); err != nil {
			t.Fatal(err)
		}
		if s.chance(20) { // at-least-once on the events topic
			if err := s.eventOracle.ObserveEvent(micro[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	log := append(s.logs[cmd.OpportunityID], micro...)
	s.logs[cmd.OpportunityID] = log
	n := d.Next
	s.states[cmd.OpportunityID] = &n

	s.emit(deltas, true)
	if s.chance(10) {
		// The processor crashed after emitting: it re-emits from replayed states.
		var prev *domain.Opportunity
		if len(log) > len(micro) {
			p, err := domain.Replay(log[:len(log)-len(micro)])
			if err != nil {
				t.Fatal(err)
			}
			prev = &p
		}
		next, err := domain.Replay(log)
		if err != nil {
			t.Fatal(err)
		}
		again := Deltas(prev, next, micro, LookupPipeline)
		stamp(again, cmd.OpportunityID, position)
		if !reflect.DeepEqual(again, deltas) {
			t.Fatalf("%s: re-emitted deltas differ:\n got %v\nwant %v", cmd.CommandID, again, deltas)
		}
		s.emit(again, false)
		s.stats["reemitted"]++
	}
	if s.chance(15) && len(s.dKeys) > 0 { // a consumer redelivers records it already applied
		k := s.pick(s.dKeys)
		ds := s.delivered[k]
		s.emit([]Delta{ds[s.r.IntN(len(ds))]}, false)
	}
	if s.chance(3) {
		s.drain(s.r.IntN(30))
	}
}

// stamp sets the source position the opportunity processor gives a record's deltas.
func stamp(ds []Delta, opportunityID string, position int64) {
	h := fnv.New32a()
	h.Write([]byte(opportunityID))
	source := strconv.Itoa(int(h.Sum32() % 4))
	for i := range ds {
		ds[i].Source, ds[i].Position = source, position
	}
}

// classify counts what kind of change an event was, for the coverage check.
func (s *aggSim) classify(prev *domain.Opportunity, next domain.Opportunity, e domain.Event) {
	s.stats["event:"+string(e.Type)]++
	if (e.Type == domain.EvtClosedWon || e.Type == domain.EvtClosedLost) && next.CloseDate < domain.DateOf(e.At) {
		s.stats["closed on an earlier day"]++
	}
	if prev == nil {
		return
	}
	switch {
	case next.Currency != prev.Currency:
		s.stats["currency changed"]++
	case next.Amount > prev.Amount:
		s.stats["amount increased"]++
	case next.Amount < prev.Amount:
		s.stats["amount decreased"]++
	}
	switch {
	case next.CloseDate > prev.CloseDate:
		s.stats["close date pushed"]++
	case next.CloseDate < prev.CloseDate:
		s.stats["close date pulled"]++
	}
	if next.OwnerID != prev.OwnerID {
		s.stats["owner changed"]++
	}
	if next.ProbabilityOverride != nil || next.CategoryOverride != nil {
		s.stats["override"]++
	}
	if e.Type == domain.EvtStageChanged {
		p := TestPipelines[next.PipelineID]
		_, fi, _ := p.Stage(e.FromStageID)
		_, ti, _ := p.Stage(e.ToStageID)
		switch {
		case ti > fi+1:
			s.stats["stage skipped forward"]++
		case ti < fi:
			s.stats["stage moved backward"]++
		}
	}
}

// emit queues deltas on their buckets' partitions; originals are also applied once, in order,
// to the clean reference buckets.
func (s *aggSim) emit(ds []Delta, original bool) {
	for _, d := range ds {
		if original {
			b := s.clean[d.Bucket]
			if b == nil {
				b = &Bucket{}
				s.clean[d.Bucket] = b
			}
			if !b.Apply(d) {
				s.t.Fatalf("an original delta was refused by the guard: %+v", d)
			}
		}
		if len(s.pending[d.Bucket]) == 0 {
			s.pendingKeys = append(s.pendingKeys, d.Bucket)
		}
		s.pending[d.Bucket] = append(s.pending[d.Bucket], d)
	}
}

// drain delivers up to n deltas (all when n < 0), picking buckets at random and keeping each
// bucket's order; every applied update is put into the Store, as the view does.
func (s *aggSim) drain(n int) {
	for n != 0 && len(s.pendingKeys) > 0 {
		i := s.r.IntN(len(s.pendingKeys))
		k := s.pendingKeys[i]
		q := s.pending[k]
		d := q[0]
		s.pending[k] = q[1:]
		if len(s.pending[k]) == 0 {
			s.pendingKeys[i] = s.pendingKeys[len(s.pendingKeys)-1]
			s.pendingKeys = s.pendingKeys[:len(s.pendingKeys)-1]
		}
		b := s.buckets[k]
		if b == nil {
			b = &Bucket{}
			s.buckets[k] = b
		}
		if b.Apply(d) {
			if len(s.delivered[k]) == 0 {
				s.dKeys = append(s.dKeys, k)
			}
			s.delivered[k] = append(s.delivered[k], d)
			s.store.Put(k, *b)
		} else {
			s.stats["guard skipped"]++
		}
		n--
	}
}

func (s *aggSim) checkpoint() {
	t := s.t
	s.drain(-1)
	nonEmpty := 0
	for k, b := range s.buckets {
		c := s.clean[k]
		if c == nil || !sameValues(b.Values, c.Values) {
			t.Fatalf("bucket %s: guarded %v, applied-once %v", k, b.Values, c)
		}
		if len(b.Values) > 0 {
			nonEmpty++
		}
	}
	if len(s.clean) != len(s.buckets) {
		t.Fatalf("%d clean buckets, %d delivered", len(s.clean), len(s.buckets))
	}
	if s.store.Len() != nonEmpty {
		t.Fatalf("Store.Len = %d, %d buckets have values", s.store.Len(), nonEmpty)
	}
	if err := s.oracle.Err(); err != nil {
		t.Fatal(err)
	}
	s.checkRawMillis()
	s.checkRebuild()
	rebuilt := StoreOf(s.buckets)
	for range 40 {
		s.compareForecast(rebuilt)
		s.compareWinLoss()
		s.compareChanges()
		s.compareVelocity()
	}
	for range 10 {
		for _, id := range []string{"default", "enterprise"} {
			s.compareFunnel(TestPipelines[id])
		}
	}
}

// checkRebuild folds every opportunity's event log from the start (what reset-analytics
// does with the history topic) and requires the buckets the incremental path built: the same
// keys with values, the same values, every one guarded by the given positions.
func (s *aggSim) checkRebuild() {
	t := s.t
	r := NewRebuild()
	for id, log := range s.logs {
		st, err := r.AddHistory(log)
		if err != nil {
			t.Fatalf("rebuild %s: %v", id, err)
		}
		if want := s.states[id]; st.Version != want.Version || st.Status != want.Status || st.CloseDate != want.CloseDate || st.Amount != want.Amount {
			t.Fatalf("rebuild %s: replayed v%d %s %s %d, state v%d %s %s %d", id, st.Version, st.Status, st.CloseDate, st.Amount,
				want.Version, want.Status, want.CloseDate, want.Amount)
		}
	}
	guard := map[string]int64{"0": 7, "3": 9}
	got := r.Buckets(guard)
	n := 0
	for k, c := range s.clean {
		if len(c.Values) == 0 {
			continue
		}
		n++
		b, ok := got[k]
		if !ok || !reflect.DeepEqual(b.Values, c.Values) || !reflect.DeepEqual(b.Applied, guard) {
			t.Fatalf("rebuilt bucket %s: %+v (present %v), incremental %v", k, b, ok, c.Values)
		}
	}
	if len(got) != n {
		t.Fatalf("rebuild has %d buckets, the incremental path %d with values", len(got), n)
	}
	s.stats["rebuilt"]++
}

func sameValues(a, b map[string]int64) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// period picks a random query period: a day, a week, a month, a quarter, a year or everything.
func (s *aggSim) period() (domain.Date, domain.Date) {
	start := domain.DateOf(simStart) - 90 + domain.Date(s.r.IntN(900))
	length := []int{1, 7, 31, 92, 366, 2000}[s.r.IntN(6)]
	if length == 2000 {
		start = domain.DateOf(simStart) - 200
	}
	return start, start + domain.Date(length-1)
}

func (s *aggSim) filters() (pipeline, owner string) {
	switch s.r.IntN(10) {
	case 0, 1, 2:
		pipeline = "default"
	case 3, 4, 5:
		pipeline = "enterprise"
	case 6:
		pipeline = "nope"
	}
	if s.chance(3) {
		owner = s.pick(simOwners)
	}
	return
}

// rates picks a rate table; holey reports one with a currency missing.
func (s *aggSim) rates() (r Rates, holey bool) {
	i := s.r.IntN(len(simRateTables))
	return simRateTables[i], i >= 6
}

// same compares a Store answer with the Oracle's: equal JSON, or errors of the same kind
// naming the same currency or field.
func (s *aggSim) same(what string, q any, got any, gotErr error, want any, wantErr error) {
	t := s.t
	t.Helper()
	if gotErr != nil || wantErr != nil {
		var gm, wm *MissingRateError
		var gq, wq *QueryError
		switch {
		case errors.As(gotErr, &gm) && errors.As(wantErr, &wm) && gm.Currency == wm.Currency:
			s.stats["compared error: missing rate"]++
		case errors.As(gotErr, &gq) && errors.As(wantErr, &wq) && gq.Field == wq.Field:
			s.stats["compared error: query"]++
		default:
			t.Fatalf("%s %+v: store error %v, oracle error %v", what, q, gotErr, wantErr)
		}
		return
	}
	g, w := MustJSON(t, got), MustJSON(t, want)
	if g != w {
		t.Fatalf("%s %+v differs\nstore  %s\noracle %s", what, q, g, w)
	}
	s.stats["compared"]++
}

func (s *aggSim) compareForecast(rebuilt *Store) {
	from, to := s.period()
	p, o := s.filters()
	q := ForecastQuery{From: from, To: to, PipelineID: p, OwnerID: o, Currency: s.pick(simTargets),
		GroupBy: []string{"", "none", "month", "quarter", "owner", "category", "stage"}[s.r.IntN(7)]}
	rates, holey := s.rates()
	got, gotErr := ask(s, "forecast", q, rates, s.store.Forecast, s.oracle.Forecast, s.eventOracle.Forecast)
	if gotErr == nil && holey {
		s.stats["missing rate not needed"]++
	}
	if gotErr == nil && q.GroupBy == GroupStage && len(got.Groups) > 1 {
		s.stats["forecast by stage, several stages"]++
	}
	again, againErr := rebuilt.Forecast(q, rates)
	s.same("forecast (rebuilt store)", q, again, againErr, got, gotErr)
}

// ask puts q (with arg: the rates, or the funnel's pipeline) to the store and to the oracle
// and requires the same answer, and to the event-fed oracle too when events is not nil. The
// store's answer is returned for the caller's further checks.
func ask[Q, A, R any](s *aggSim, what string, q Q, arg A, store, oracle, events func(Q, A) (R, error)) (R, error) {
	s.t.Helper()
	got, gotErr := store(q, arg)
	want, wantErr := oracle(q, arg)
	s.same(what, q, got, gotErr, want, wantErr)
	if events != nil {
		ev, evErr := events(q, arg)
		s.same(what+" (event-fed oracle)", q, ev, evErr, want, wantErr)
	}
	return got, gotErr
}

func (s *aggSim) compareWinLoss() {
	from, to := s.period()
	p, o := s.filters()
	q := WinLossQuery{From: from, To: to, PipelineID: p, OwnerID: o, Currency: s.pick(simTargets),
		GroupBy: []string{"", "none", "owner", "reason", "month"}[s.r.IntN(5)]}
	rates, _ := s.rates()
	ask(s, "win/loss", q, rates, s.store.WinLoss, s.oracle.WinLoss, s.eventOracle.WinLoss)
}

func (s *aggSim) compareChanges() {
	from, to := s.period()
	p, o := s.filters()
	q := ChangesQuery{From: from, To: to, PipelineID: p, OwnerID: o, Currency: s.pick(simTargets)}
	rates, _ := s.rates()
	ask(s, "changes", q, rates, s.store.Changes, s.oracle.Changes, s.eventOracle.Changes)
}

func (s *aggSim) compareVelocity() {
	_, to := s.period()
	p, o := s.filters()
	days := []int{30, 90, 365}[s.r.IntN(3)]
	q := VelocityQuery{From: to - domain.Date(days-1), To: to, PipelineID: p, OwnerID: o, Currency: s.pick(simTargets)}
	rates, _ := s.rates()
	ask(s, "velocity", q, rates, s.store.Velocity, s.oracle.Velocity, nil)
}

func (s *aggSim) compareFunnel(p domain.Pipeline) {
	from, to := s.period()
	_, o := s.filters()
	q := FunnelQuery{From: from, To: to, OwnerID: o}
	if s.chance(2) {
		q.PipelineID = p.ID
	}
	got, _ := ask(s, "funnel", q, p, s.store.Funnel, s.oracle.Funnel, s.eventOracle.Funnel)
	for _, st := range got.Stages {
		if st.Regressed > 0 {
			s.stats["funnel regressed"]++
		}
		if st.Reopened > 0 {
			s.stats["funnel reopened"]++
		}
	}
}

// checkRawMillis compares the sums behind avgDaysInStage and avgCycleDaysWon, which the
// one-decimal day figures would round away: per pipeline and stage the total length of ended
// stays in milliseconds, per pipeline the total cycle of won deals in days (inclusive: the
// close date minus the creation day, plus one).
func (s *aggSim) checkRawMillis() {
	got, want := map[string]int64{}, map[string]int64{}
	for k, b := range s.buckets {
		pk, ok := ParseKeyForTest(k)
		if !ok {
			s.t.Fatalf("bad key %q", k)
		}
		for name, v := range b.Values {
			seg, n, _ := SplitNameForTest(name)
			switch {
			case pk.Fam == FamEventsForTest && n == 3 && seg[0] == "stay" && seg[2] == "ms":
				got["stay|"+pk.Pipeline+"|"+seg[1]] += v
			case pk.Fam == FamWinLossForTest && name == NameWonCycleDaysForTest:
				got["cycle|"+pk.Pipeline] += v
			}
		}
	}
	for k, ms := range s.oracle.EndedStays() {
		want["stay|"+k[0]+"|"+k[1]] += ms
	}
	for _, st := range s.oracle.States() {
		if st.Status == domain.StatusWon {
			want["cycle|"+st.PipelineID] += int64(st.CloseDate-domain.DateOf(st.CreatedAt)) + 1
		}
	}
	for _, m := range []map[string]int64{got, want} {
		for k, v := range m {
			if v == 0 {
				delete(m, k)
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		s.t.Fatalf("raw sums differ:\nbuckets %v\noracle  %v", got, want)
	}
}
