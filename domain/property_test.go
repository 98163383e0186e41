package domain

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The property test drives Decide with long random command sequences over a few opportunities
// and both test pipelines (valid and invalid values, overrides, stage moves back and forth,
// wins, losses, reopens, close-date moves, resent commands, wrong expected versions,
// configuration changes) and checks after every command:
//   - the outcome agrees with a small model of the rule order (validation, duplicate, version,
//     existence, closed/open), and accepted commands did what their type promises;
//   - replaying the emitted events with Apply gives Decide's state (business fields);
//   - versions run 1..n without gaps, one event per accepted change;
//   - effective probability/category invariants: won => 100/closed, lost => 0/omitted,
//     open never closed and equal to the override or the stage default; weighted <= amount;
//   - Decide never modifies its input.
func TestPropertyRandomHistories(t *testing.T) {
	stats := map[string]int{}
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			s := newSim(t, rand.New(rand.NewPCG(seed, seed*7919)))
			for range 2500 {
				s.step()
			}
			s.finish()
			for k, v := range s.stats {
				stats[k] += v
			}
		})
	}
	// The generator must reach every outcome, or the properties above prove little.
	var want []string
	for _, et := range []EventType{EvtCreated, EvtUpdated, EvtStageChanged, EvtClosedWon, EvtClosedLost, EvtReopened} {
		want = append(want, "event:"+string(et))
	}
	for _, c := range []RejectCode{CodeConflict, CodeNotFound, CodeAlreadyExists, CodeInvalid, CodeRequiredFields,
		CodeClosed, CodeNotClosed, CodeUnknownPipeline, CodeUnknownStage, CodeInvalidTransition,
		CodeCloseDateInFuture, CodeCloseDateBeforeCreated} {
		want = append(want, "reject:"+string(c))
	}
	want = append(want, "noop", "duplicate", "override kept across a stage move", "close date pushed", "reopened with override",
		"closed on the day of the command", "closed on an earlier day", "closed later than planned")
	for _, k := range want {
		if stats[k] == 0 {
			t.Errorf("the random histories never produced %q (stats %v)", k, stats)
		}
	}
	t.Logf("outcomes: %v", stats)
}

var (
	simIDs        = []string{"opp-a", "opp-b", "opp-c", "opp-d", "opp-e"}
	simActors     = []string{"ann", "ben", "cat"}
	simStages     = []string{"", "qualification", "discovery", "proposal", "negotiation", "closed_won", "closed_lost", "lead", "qualify", "solution", "contract", "won", "lost_price", "parked", "nope"}
	simCurrencies = []string{"USD", "USD", "JPY", "KWD", "EUR", "XYZ"}
	simCategories = []string{"pipeline", "best_case", "commit", "omitted", "closed"}
)

// sim holds the world and the per-opportunity results of a random history.
type sim struct {
	t      testing.TB
	r      *rand.Rand
	w      *world
	states map[string]*Opportunity
	replay map[string]Opportunity
	events map[string][]Event
	sent   map[string][]Command
	seq    int
	stats  map[string]int
}

func newSim(t testing.TB, r *rand.Rand) *sim {
	return &sim{t: t, r: r, w: newWorld(), states: map[string]*Opportunity{}, replay: map[string]Opportunity{},
		events: map[string][]Event{}, sent: map[string][]Command{}, stats: map[string]int{}}
}

func (s *sim) chance(n int) bool { return s.r.IntN(n) == 0 }

func (s *sim) amountText(currency string) string {
	if s.chance(25) {
		return []string{"-1", "1e3", "", "1.2345", " 5", "99999999999999999"}[s.r.IntN(6)]
	}
	exp, _ := CurrencyExponent(currency)
	if s.chance(6) {
		return "0"
	}
	v := s.r.Int64N(10_000_000)
	if exp == 0 {
		return strconv.FormatInt(v, 10)
	}
	return FormatAmount(v, currency)
}

func (s *sim) dateText() string {
	if s.chance(30) {
		return "2025-02-30"
	}
	return (Date(20089) + Date(s.r.IntN(700))).String() // from 2025-01-01
}

// closingDateText is the closeDate of a close-won or close-lost body: mostly a day the rule
// accepts (from the creation day, or 40 days back, to the day of the command), sometimes a
// later day or one before the deal was created (both refused), sometimes no date at all.
func (s *sim) closingDateText(cur *Opportunity) string {
	today := DateOf(s.w.now)
	switch {
	case s.chance(30):
		return "2025-02-30"
	case s.chance(8):
		return (today + Date(1+s.r.IntN(60))).String()
	case cur != nil && s.chance(8):
		return (DateOf(cur.CreatedAt) - Date(1+s.r.IntN(30))).String()
	}
	lo := today - 40
	if cur != nil {
		lo = max(lo, DateOf(cur.CreatedAt))
	}
	return (lo + Date(s.r.IntN(int(today-lo)+1))).String()
}

func (s *sim) stage() string { return simStages[s.r.IntN(len(simStages))] }

// command makes the next random command, sometimes resending an earlier one.
func (s *sim) command() Command {
	id := simIDs[s.r.IntN(len(simIDs))]
	if sent := s.sent[id]; len(sent) > 0 && s.chance(10) {
		return sent[s.r.IntN(len(sent))]
	}
	s.seq++
	cmd := Command{CommandID: "cmd-" + strconv.Itoa(s.seq), OpportunityID: id, Actor: simActors[s.r.IntN(len(simActors))], IssuedAt: s.w.now}
	cur := s.states[id]
	kind := s.r.IntN(10)
	switch {
	case cur == nil && !s.chance(5):
		kind = 0
	case cur != nil && cur.Status != StatusOpen && s.chance(2):
		kind = 9
	}
	switch kind {
	case 0:
		cmd.Type = CmdCreate
		c := &CreateOpportunity{Name: "Deal " + id, AccountID: "acc-1", OwnerID: simActors[s.r.IntN(3)], CloseDate: s.dateText()}
		c.PipelineID = []string{"", "default", "enterprise", "enterprise", "nope"}[s.r.IntN(5)]
		if s.chance(3) {
			c.StageID = s.stage()
		}
		c.Currency = simCurrencies[s.r.IntN(len(simCurrencies))]
		c.Amount = s.amountText(c.Currency)
		if s.chance(3) {
			c.Probability = ptr(s.r.IntN(102))
		}
		if s.chance(4) {
			c.ForecastCategory = ptr(simCategories[s.r.IntN(len(simCategories))])
		}
		if !s.chance(3) {
			c.LeadID = "lead-" + id
		}
		if !s.chance(3) {
			c.Source = "web"
		}
		if s.chance(2) {
			c.NextStep = "call"
		}
		cmd.Create = c
	case 1, 2, 3:
		cmd.Type = CmdUpdate
		u := &UpdateOpportunity{}
		if s.chance(5) {
			u.Name = ptr([]string{"Renamed", "Deal " + id, ""}[s.r.IntN(3)])
		}
		if s.chance(8) {
			u.OwnerID = ptr(simActors[s.r.IntN(3)])
		}
		if s.chance(4) {
			u.NextStep = ptr([]string{"", "demo", "sign"}[s.r.IntN(3)])
		}
		if s.chance(3) {
			currency := "USD"
			if cur != nil {
				currency = cur.Currency
			}
			if s.chance(3) {
				currency = simCurrencies[s.r.IntN(len(simCurrencies))]
				u.Currency = ptr(currency)
			}
			if !s.chance(6) {
				u.Amount = ptr(s.amountText(currency))
			}
		}
		if s.chance(3) {
			u.CloseDate = ptr(s.dateText())
		}
		switch s.r.IntN(6) {
		case 0:
			u.Probability = ptr(s.r.IntN(102))
		case 1:
			u.ClearProbability = true
		}
		switch s.r.IntN(6) {
		case 0:
			u.ForecastCategory = ptr(simCategories[s.r.IntN(len(simCategories))])
		case 1:
			u.ClearForecastCategory = true
		}
		cmd.Update = u
	case 4, 5, 6:
		cmd.Type = CmdChangeStage
		cmd.ChangeStage = &ChangeStage{StageID: s.stage()}
	case 7:
		cmd.Type = CmdCloseWon
		c := &CloseWon{}
		if s.chance(2) {
			c.CloseDate = ptr(s.closingDateText(cur))
		}
		if s.chance(3) && cur != nil {
			c.Amount = ptr(s.amountText(cur.Currency))
		}
		cmd.CloseWon = c
	case 8:
		cmd.Type = CmdCloseLost
		cmd.CloseLost = &CloseLost{Reason: []string{"price", "timing", ""}[s.r.IntN(3)], Competitor: "Globex"}
		if s.chance(2) {
			cmd.CloseLost.CloseDate = ptr(s.closingDateText(cur))
		}
	case 9:
		cmd.Type = CmdReopen
		cmd.Reopen = &Reopen{StageID: s.stage()}
	}
	if s.chance(4) {
		var v int64
		if cur != nil {
			v = cur.Version
		}
		v += int64(s.r.IntN(3) - 1) // right version one time in three
		cmd.ExpectedVersion = &v
	}
	return cmd
}

// perturb changes the world between commands: the clock always, sometimes the account
// snapshot or the pipeline configuration (a new default probability, a stage removed and
// restored).
func (s *sim) perturb() {
	s.w.now = s.w.now.Add(time.Duration(1+s.r.IntN(7200))*time.Second + time.Duration(s.r.IntN(1e9)))
	switch s.r.IntN(100) {
	case 0:
		s.w.account = nil
	case 1:
		s.w.account = &Account{ID: "acc-1", Name: "Acme " + strconv.Itoa(s.seq)}
	case 2:
		p := DefaultPipeline()
		p.Stages[2].Probability = 30 + s.r.IntN(41)
		s.w.pipelines["default"] = p
	case 3:
		p := enterprisePipeline()
		if _, _, ok := s.w.pipelines["enterprise"].Stage("parked"); ok {
			p.Stages = p.Stages[:len(p.Stages)-1] // drop "parked"
		}
		s.w.pipelines["enterprise"] = p
	}
}

// expectedGate is the model of the rule order: the code every command must get before the
// command-specific rules run, "duplicate", or "" when those rules decide.
func expectedGate(cur *Opportunity, cmd Command) string {
	if ValidateCommand(cmd) != nil {
		return string(CodeInvalid)
	}
	if cur != nil && slices.Contains(cur.RecentCommandIDs, cmd.CommandID) {
		return "duplicate"
	}
	var v int64
	if cur != nil {
		v = cur.Version
	}
	switch {
	case cmd.ExpectedVersion != nil && *cmd.ExpectedVersion != v:
		return string(CodeConflict)
	case cmd.Type == CmdCreate && cur != nil:
		return string(CodeAlreadyExists)
	case cmd.Type != CmdCreate && cur == nil:
		return string(CodeNotFound)
	case cur == nil:
		return ""
	case cmd.Type != CmdReopen && cur.Status != StatusOpen:
		return string(CodeClosed)
	case cmd.Type == CmdReopen && cur.Status == StatusOpen:
		return string(CodeNotClosed)
	}
	return ""
}

func (s *sim) step() {
	t := s.t
	t.Helper()
	s.perturb()
	cmd := s.command()
	id := cmd.OpportunityID
	s.sent[id] = append(s.sent[id], cmd)
	cur := s.states[id]
	var untouched Opportunity
	if cur != nil {
		untouched = deepCopy(*cur)
	}
	gate := expectedGate(cur, cmd)
	d, err := Decide(cur, cmd, s.w.ctx())
	if cur != nil && !reflect.DeepEqual(*cur, untouched) {
		t.Fatalf("%s: Decide modified its input", cmd.CommandID)
	}
	if err != nil {
		rej, ok := AsRejection(err)
		if !ok {
			t.Fatalf("%s %s: error is not a *Rejection: %v", cmd.Type, cmd.CommandID, err)
		}
		s.stats["reject:"+string(rej.Code)]++
		switch rej.Code {
		case CodeRequiredFields, CodeUnknownPipeline, CodeUnknownStage, CodeInvalidTransition, CodeInvalid:
			if gate == "" {
				return // a command-specific rule refused it
			}
		case CodeCloseDateInFuture, CodeCloseDateBeforeCreated:
			if gate == "" {
				if want := closingDateRule(cur, cmd, s.w.now); want != rej.Code {
					t.Fatalf("%s %s: refused %s, the closing-date rule says %q", cmd.Type, cmd.CommandID, rej.Code, want)
				}
				return
			}
		}
		if string(rej.Code) != gate {
			t.Fatalf("%s %+v: got %v, the rule order says %q", cmd.Type, cmd, err, gate)
		}
		return
	}
	if gate != "" && gate != "duplicate" {
		t.Fatalf("%s %s accepted, the rule order says %s", cmd.Type, cmd.CommandID, gate)
	}
	if d.Duplicate != (gate == "duplicate") {
		t.Fatalf("%s %s: duplicate=%v, want %v", cmd.Type, cmd.CommandID, d.Duplicate, gate == "duplicate")
	}
	next := d.Next
	switch {
	case d.Duplicate:
		s.stats["duplicate"]++
		if len(d.Events) != 0 || !reflect.DeepEqual(next, *cur) {
			t.Fatalf("%s: a duplicate changed something", cmd.CommandID)
		}
		return
	case len(d.Events) == 0:
		s.stats["noop"]++
		if cmd.Type != CmdUpdate || next.Version != cur.Version || !next.UpdatedAt.Equal(cur.UpdatedAt) {
			t.Fatalf("%s %s: accepted without an event", cmd.Type, cmd.CommandID)
		}
		if err := sameBusiness(next, *cur); err != nil {
			t.Fatalf("%s: no event but the state changed: %v", cmd.CommandID, err)
		}
	default:
		if len(d.Events) != 1 {
			t.Fatalf("%s: %d events", cmd.CommandID, len(d.Events))
		}
		e := d.Events[0]
		s.stats["event:"+string(e.Type)]++
		var prev int64
		if cur != nil {
			prev = cur.Version
		}
		if e.Version != prev+1 || next.Version != e.Version || e.EventID != fmt.Sprintf("%s:%d", id, e.Version) ||
			e.CommandID != cmd.CommandID || e.Actor != cmd.Actor || !e.At.Equal(s.w.now) || !next.UpdatedAt.Equal(s.w.now) {
			t.Fatalf("%s: event %+v after version %d", cmd.CommandID, e, prev)
		}
		if n := int64(len(s.events[id])); e.Version != n+1 {
			t.Fatalf("%s: version %d after %d events", cmd.CommandID, e.Version, n)
		}
		s.events[id] = append(s.events[id], e)
		replayed, err := Apply(s.replay[id], e)
		if err != nil {
			t.Fatalf("%s: Apply of Decide's event failed: %v\n%+v", cmd.CommandID, err, e)
		}
		if err := sameBusiness(replayed, next); err != nil {
			t.Fatalf("%s %s: replay differs from Decide: %v\nevent %+v", cmd.Type, cmd.CommandID, err, e)
		}
		s.replay[id] = replayed
		s.checkCommandEffect(cur, cmd, next)
	}
	if !next.ContainsCommand(cmd.CommandID) || next.RecentCommandIDs[len(next.RecentCommandIDs)-1] != cmd.CommandID ||
		len(next.RecentCommandIDs) > MaxRecentCommandIDs {
		t.Fatalf("%s: ring %v", cmd.CommandID, next.RecentCommandIDs)
	}
	if !reflect.DeepEqual(next.Account, s.w.account) {
		t.Fatalf("%s: account snapshot %+v, want %+v", cmd.CommandID, next.Account, s.w.account)
	}
	s.checkInvariants(next)
	s.states[id] = &next
}

// closingCloseDate is the closeDate text of a close command's body, or nil.
func closingCloseDate(cmd Command) *string {
	switch {
	case cmd.CloseWon != nil:
		return cmd.CloseWon.CloseDate
	case cmd.CloseLost != nil:
		return cmd.CloseLost.CloseDate
	}
	return nil
}

// closingDateRule is the model of the closing-date refusals: the code a close command with
// a parsable date must get at now, or "" when its date is acceptable.
func closingDateRule(cur *Opportunity, cmd Command, now time.Time) RejectCode {
	text := closingCloseDate(cmd)
	if text == nil || cur == nil {
		return ""
	}
	d, err := ParseDate(*text)
	switch {
	case err != nil:
		return ""
	case d > DateOf(now):
		return CodeCloseDateInFuture
	case d < DateOf(cur.CreatedAt):
		return CodeCloseDateBeforeCreated
	}
	return ""
}

// checkClosingDate checks the close date an accepted close command left: the body's date, or
// the UTC day of the command; never later than that day nor before the creation day; a later
// date than before counted as a slip.
func (s *sim) checkClosingDate(cur *Opportunity, cmd Command, next Opportunity) {
	t := s.t
	t.Helper()
	today := DateOf(s.w.now)
	want := today
	if text := closingCloseDate(cmd); text != nil {
		if code := closingDateRule(cur, cmd, s.w.now); code != "" {
			t.Fatalf("%s: accepted, the closing-date rule says %s", cmd.CommandID, code)
		}
		want, _ = ParseDate(*text)
	}
	if next.CloseDate != want || next.CloseDate > today || next.CloseDate < DateOf(next.CreatedAt) {
		t.Fatalf("%s: closed on %s, want %s (today %s, created %s)", cmd.CommandID, next.CloseDate, want, today, DateOf(next.CreatedAt))
	}
	if want == today {
		s.stats["closed on the day of the command"]++
	} else {
		s.stats["closed on an earlier day"]++
	}
	pushes := cur.CloseDatePushCount
	if next.CloseDate > cur.CloseDate {
		pushes++
		s.stats["closed later than planned"]++
	}
	if next.CloseDatePushCount != pushes {
		t.Fatalf("%s: push count %d -> %d, close date %s -> %s", cmd.CommandID, cur.CloseDatePushCount, next.CloseDatePushCount, cur.CloseDate, next.CloseDate)
	}
}

// checkCommandEffect checks that an accepted command did what its type promises.
func (s *sim) checkCommandEffect(cur *Opportunity, cmd Command, next Opportunity) {
	t := s.t
	t.Helper()
	p := s.w.pipelines[next.PipelineID]
	switch cmd.Type {
	case CmdCreate:
		if st, _, ok := p.Stage(next.StageID); !ok || st.Status != StatusOpen || next.Version != 1 {
			t.Fatalf("%s: created in %q", cmd.CommandID, next.StageID)
		}
		if cmd.Create.StageID != "" && next.StageID != cmd.Create.StageID {
			t.Fatalf("%s: created in %q, asked for %q", cmd.CommandID, next.StageID, cmd.Create.StageID)
		}
	case CmdUpdate:
		u := cmd.Update
		if next.StageID != cur.StageID || next.Status != cur.Status {
			t.Fatalf("%s: an update moved the stage", cmd.CommandID)
		}
		if next.CloseDate > cur.CloseDate {
			s.stats["close date pushed"]++
			if next.CloseDatePushCount != cur.CloseDatePushCount+1 {
				t.Fatalf("%s: pushed close date, count %d -> %d", cmd.CommandID, cur.CloseDatePushCount, next.CloseDatePushCount)
			}
		} else if next.CloseDatePushCount != cur.CloseDatePushCount {
			t.Fatalf("%s: push count moved without a later date", cmd.CommandID)
		}
		switch {
		case u.ClearProbability && next.ProbabilityOverride != nil:
			t.Fatalf("%s: probability override not cleared", cmd.CommandID)
		case u.Probability != nil && (next.ProbabilityOverride == nil || next.ProbabilityOverride.Value != strconv.Itoa(*u.Probability)):
			t.Fatalf("%s: probability override %+v", cmd.CommandID, next.ProbabilityOverride)
		case u.Probability == nil && !u.ClearProbability && !reflect.DeepEqual(next.ProbabilityOverride, cur.ProbabilityOverride):
			t.Fatalf("%s: probability override changed without being asked", cmd.CommandID)
		}
	case CmdChangeStage:
		if next.StageID != cmd.ChangeStage.StageID || next.Status != StatusOpen {
			t.Fatalf("%s: moved to %s", cmd.CommandID, next.StageID)
		}
		if !reflect.DeepEqual(next.ProbabilityOverride, cur.ProbabilityOverride) || !reflect.DeepEqual(next.CategoryOverride, cur.CategoryOverride) {
			t.Fatalf("%s: a stage move changed the overrides", cmd.CommandID)
		}
		if next.ProbabilityOverride != nil {
			s.stats["override kept across a stage move"]++
		}
	case CmdCloseWon:
		won, _ := p.WonStage()
		if next.Status != StatusWon || next.StageID != won.ID || next.ClosedAt == nil || !next.ClosedAt.Equal(s.w.now) {
			t.Fatalf("%s: won state %s %s %v", cmd.CommandID, next.Status, next.StageID, next.ClosedAt)
		}
		s.checkClosingDate(cur, cmd, next)
	case CmdCloseLost:
		lost, _ := p.LostStage()
		if next.Status != StatusLost || next.StageID != lost.ID || next.LossReason != cmd.CloseLost.Reason || next.ClosedAt == nil {
			t.Fatalf("%s: lost state %s %s %q", cmd.CommandID, next.Status, next.StageID, next.LossReason)
		}
		s.checkClosingDate(cur, cmd, next)
	case CmdReopen:
		if next.Status != StatusOpen || next.StageID != cmd.Reopen.StageID || next.ClosedAt != nil || next.LossReason != "" {
			t.Fatalf("%s: reopened state %+v", cmd.CommandID, next)
		}
		if next.CloseDate != cur.CloseDate {
			t.Fatalf("%s: reopen moved the close date %s -> %s", cmd.CommandID, cur.CloseDate, next.CloseDate)
		}
		if next.ProbabilityOverride != nil || next.CategoryOverride != nil {
			s.stats["reopened with override"]++
		}
	}
}

// checkInvariants holds for every state Decide accepts.
func (s *sim) checkInvariants(o Opportunity) {
	t := s.t
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s v%d (%s in %s): %s", o.ID, o.Version, o.Status, o.StageID, fmt.Sprintf(format, args...))
	}
	switch o.Status {
	case StatusWon:
		if o.Probability != 100 || o.ForecastCategory != CategoryClosed || o.ClosedAt == nil {
			fail("won but %d/%s closedAt %v", o.Probability, o.ForecastCategory, o.ClosedAt)
		}
	case StatusLost:
		if o.Probability != 0 || o.ForecastCategory != CategoryOmitted || o.ClosedAt == nil || o.LossReason == "" {
			fail("lost but %d/%s closedAt %v reason %q", o.Probability, o.ForecastCategory, o.ClosedAt, o.LossReason)
		}
	}
	if o.Status != StatusOpen && (o.CloseDate > DateOf(*o.ClosedAt) || o.CloseDate < DateOf(o.CreatedAt)) {
		fail("closed at %v on close date %s, created %v", o.ClosedAt, o.CloseDate, o.CreatedAt)
	}
	switch o.Status {
	case StatusWon, StatusLost:
	case StatusOpen:
		if o.ForecastCategory == CategoryClosed || o.ClosedAt != nil || o.LossReason != "" || o.Competitor != "" || o.LossNote != "" {
			fail("open but category %s closedAt %v loss %q", o.ForecastCategory, o.ClosedAt, o.LossReason)
		}
		// Every accepted command recomputes the effective values with the configuration of
		// the moment (a duplicate returns earlier), so they must match it exactly.
		st, _, ok := s.w.pipelines[o.PipelineID].Stage(o.StageID)
		if !ok || st.Status != StatusOpen {
			fail("open in a stage that is not an open stage of its pipeline")
		}
		wantP, wantC := st.Probability, st.ForecastCategory
		if ov := o.ProbabilityOverride; ov != nil {
			wantP, _ = strconv.Atoi(ov.Value)
		}
		if ov := o.CategoryOverride; ov != nil {
			wantC = ForecastCategory(ov.Value)
		}
		if o.Probability != wantP || o.ForecastCategory != wantC {
			fail("effective %d/%s, override or stage default says %d/%s", o.Probability, o.ForecastCategory, wantP, wantC)
		}
	default:
		fail("unknown status")
	}
	if o.Probability < 0 || o.Probability > 100 {
		fail("probability %d", o.Probability)
	}
	if o.Amount < 0 || o.Amount > MaxAmountMinor {
		fail("amount %d", o.Amount)
	}
	if w := WeightedAmount(o.Amount, o.Probability); w < 0 || w > o.Amount {
		fail("weighted %d for amount %d at %d%%", w, o.Amount, o.Probability)
	}
	h := o.StageHistory
	if len(h) == 0 || h[len(h)-1].StageID != o.StageID || h[len(h)-1].LeftAt != nil || !h[len(h)-1].EnteredAt.Equal(o.StageEnteredAt) {
		fail("stage history %s", show(h))
	}
	for i := range len(h) - 1 {
		if h[i].LeftAt == nil || !h[i].LeftAt.Equal(h[i+1].EnteredAt) || h[i].LeftBy != h[i+1].EnteredBy {
			fail("visit %d not closed by the next one: %s", i, show(h))
		}
	}
}

// finish replays every opportunity's whole log and compares it with the final state.
func (s *sim) finish() {
	for id, st := range s.states {
		evs := s.events[id]
		for i, e := range evs {
			if e.Version != int64(i+1) {
				s.t.Fatalf("%s: event %d has version %d", id, i, e.Version)
			}
		}
		o, err := Replay(evs)
		if err != nil {
			s.t.Fatalf("%s: %v", id, err)
		}
		if err := sameBusiness(o, *st); err != nil {
			s.t.Fatalf("%s: full replay differs: %v", id, err)
		}
	}
}

// byteSource turns fuzz input into random choices, one byte per choice (multiplied out so
// that the byte reaches the high bits rand uses). When the bytes run out it continues with a
// fixed PCG stream: a constant source could make rand's rejection sampling loop forever.
type byteSource struct {
	data []byte
	rest *rand.PCG
}

func (b *byteSource) Uint64() uint64 {
	if len(b.data) == 0 {
		return b.rest.Uint64()
	}
	v := uint64(b.data[0])
	b.data = b.data[1:]
	return v * 0x0101010101010101
}

// FuzzDecide runs the property checks on command sequences chosen by the fuzzer's bytes.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("create then move then win then reopen"))
	f.Add([]byte{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255, 254, 253, 128, 64, 32, 16, 8, 4, 2, 1})
	seed := rand.New(rand.NewPCG(42, 42))
	for range 4 {
		b := make([]byte, 600)
		for i := range b {
			b[i] = byte(seed.UintN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4000 {
			data = data[:4000]
		}
		s := newSim(t, rand.New(&byteSource{data: data, rest: rand.NewPCG(1, 1)}))
		steps := len(data)/8 + 1
		for range steps {
			s.step()
		}
		s.finish()
	})
}
