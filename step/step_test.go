package step

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func pipelines(id string) (*domain.Pipeline, bool) {
	if id != domain.DefaultPipelineID {
		return nil, false
	}
	p := domain.DefaultPipeline()
	return &p, true
}

func create(id, cmdID string) domain.Command {
	return domain.Command{Type: domain.CmdCreate, CommandID: cmdID, OpportunityID: id, Actor: "alice", IssuedAt: t0,
		Create: &domain.CreateOpportunity{Name: "Deal", AccountID: "acc-1", OwnerID: "u-1", Amount: "100.00", Currency: "USD", CloseDate: "2026-06-30"}}
}

// A step stamps its events and deltas with the record's position, advances the aggregate,
// and hands a win to Sales from the state right after it.
func TestApplyAcceptedCommands(t *testing.T) {
	env := Env{Key: "opp-1", Pipelines: pipelines,
		Account: func(id string) *domain.Account { return &domain.Account{ID: id, Name: "Acme"} }}
	agg := domain.Aggregate{Position: -1, HistoryOnTopic: true}
	res := Apply(agg, create("opp-1", "c1"), t0, Position{Source: "3", Offset: 41}, env)
	if res.Rejected != nil || len(res.Events) != 1 || res.Aggregate.Position != 41 || res.Aggregate.State.Version != 1 {
		t.Fatalf("create: %+v", res)
	}
	if res.Events[0].Position != 41 || res.Aggregate.Events[0].EventID != "opp-1:1" {
		t.Fatalf("event not stamped: %+v", res.Events[0])
	}
	if len(res.Deltas) == 0 {
		t.Fatal("a create contributes nothing to the analytics")
	}
	for _, d := range res.Deltas {
		if d.Source != "3" || d.Position != 41 {
			t.Fatalf("delta not stamped: %+v", d)
		}
	}
	if a := res.Aggregate.State.Account; a == nil || a.Name != "Acme" {
		t.Fatalf("account snapshot not taken: %+v", a)
	}
	won := domain.Command{Type: domain.CmdCloseWon, CommandID: "c2", OpportunityID: "opp-1", Actor: "bob",
		IssuedAt: t0.Add(time.Hour), CloseWon: &domain.CloseWon{}}
	res2 := Apply(res.Aggregate, won, t0, Position{Source: "3", Offset: 42}, env)
	if len(res2.Won) != 1 || res2.Won[0].Version != 2 || res2.Won[0].Actor != "bob" || len(res2.Aggregate.Won) != 1 ||
		res2.Won[0].ClosedAt.IsZero() || len(res2.Aggregate.Events) != 2 {
		t.Fatalf("close-won: %+v", res2)
	}
	// The same command id again: a duplicate, nothing new.
	dup := Apply(res2.Aggregate, won, t0, Position{Source: "3", Offset: 43}, env)
	if !dup.Duplicate || len(dup.Events) != 0 || len(dup.Deltas) != 0 || dup.Aggregate.State.Version != 2 || dup.Aggregate.Position != 43 {
		t.Fatalf("duplicate: %+v", dup)
	}
}

// A refused command is stored in the bounded ring with its position, its texts bounded; a
// command for another key is refused; a misconfigured pipeline is the command's refusal, a
// non-business error is reported as Internal.
func TestApplyRefusals(t *testing.T) {
	env := Env{Key: "opp-1", Pipelines: pipelines}
	agg := domain.Aggregate{Position: -1}
	for i := 0; i < MaxStoredRejections+5; i++ {
		c := domain.Command{Type: domain.CmdChangeStage, CommandID: "s", OpportunityID: "opp-1", ChangeStage: &domain.ChangeStage{StageID: "proposal"}}
		res := Apply(agg, c, t0, Position{Offset: int64(i)}, env)
		if res.Rejected == nil || res.Rejected.Code != string(domain.CodeNotFound) || res.Rejected.Position != int64(i) {
			t.Fatalf("change of an unknown opportunity: %+v", res)
		}
		agg = res.Aggregate
	}
	if len(agg.Rejections) != MaxStoredRejections || agg.Rejections[len(agg.Rejections)-1].Position != MaxStoredRejections+4 {
		t.Fatalf("ring: %d refusals", len(agg.Rejections))
	}
	other := Apply(domain.Aggregate{Position: -1}, create("opp-2", "c"), t0, Position{Offset: 1}, env)
	if other.Rejected == nil || other.Rejected.Code != string(domain.CodeInvalid) || other.Aggregate.State.Version != 0 {
		t.Fatalf("a command for another key: %+v", other)
	}
	broken := Env{Key: "opp-1", Pipelines: pipelines, CheckPipeline: func(*domain.Pipeline) error { return errors.New("boom") }}
	if res := Apply(domain.Aggregate{Position: -1}, create("opp-1", "c"), t0, Position{}, broken); res.Rejected == nil ||
		res.Internal != nil || res.Rejected.Code != string(domain.CodeUnknownPipeline) {
		t.Fatalf("a misconfigured pipeline: %+v", res)
	}
	rej, internal := Refusal(create("opp-1", strings.Repeat("c", 5000)), errors.New(strings.Repeat("x", 5000)), t0, 7)
	if internal == nil || rej.Code != "internal" || len(rej.Message) > domain.MaxTextLen || len(rej.CommandID) > domain.MaxTextLen {
		t.Fatalf("unbounded refusal: code %q, %d / %d bytes", rej.Code, len(rej.Message), len(rej.CommandID))
	}
}

// The decision time is the command's issuedAt, else the record's time, never before the last
// change, at Avro's microsecond precision.
func TestDecisionTime(t *testing.T) {
	cur := &domain.Opportunity{Version: 3, UpdatedAt: t0}
	rec := t0.Add(time.Hour + 1500*time.Nanosecond)
	if got := DecisionTime(domain.Command{}, rec, cur); !got.Equal(rec.Truncate(time.Microsecond)) {
		t.Fatalf("record time: %v", got)
	}
	if got := DecisionTime(domain.Command{IssuedAt: t0.Add(-time.Hour)}, rec, cur); !got.Equal(t0) {
		t.Fatalf("before the last change: %v", got)
	}
	if got := DecisionTime(domain.Command{IssuedAt: t0.Add(-time.Hour)}, rec, nil); !got.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("new opportunity: %v", got)
	}
}

// A closing without a date closes on the UTC day of the command's issuedAt, not of the
// record's time (the processing clock has no say), and the hand-off to Sales carries it.
func TestClosingDayIsTheDayOfIssuedAt(t *testing.T) {
	env := Env{Key: "opp-1", Pipelines: pipelines}
	created := Apply(domain.Aggregate{Position: -1, HistoryOnTopic: true}, create("opp-1", "c1"), t0, Position{Source: "0", Offset: 1}, env)
	issued := time.Date(2026, 3, 5, 23, 30, 0, 0, time.UTC)
	won := domain.Command{Type: domain.CmdCloseWon, CommandID: "c2", OpportunityID: "opp-1", Actor: "bob",
		IssuedAt: issued, CloseWon: &domain.CloseWon{}}
	res := Apply(created.Aggregate, won, issued.Add(2*time.Hour), Position{Source: "0", Offset: 2}, env) // record on 2026-03-06
	if got := res.Aggregate.State.CloseDate.String(); got != "2026-03-05" || len(res.Won) != 1 || res.Won[0].CloseDate.String() != "2026-03-05" {
		t.Fatalf("closed on %s (hand-off %+v), want the day of issuedAt 2026-03-05", got, res.Won)
	}
	// A closing date after that day is refused on field closeDate, whatever the record's time.
	later := won
	later.CommandID, later.CloseWon = "c3", &domain.CloseWon{CloseDate: ptrTo("2026-03-06")}
	res = Apply(created.Aggregate, later, issued.Add(2*time.Hour), Position{Source: "0", Offset: 3}, env)
	if res.Rejected == nil || res.Rejected.Code != string(domain.CodeCloseDateInFuture) ||
		len(res.Rejected.Fields) != 1 || res.Rejected.Fields[0].Field != "closeDate" {
		t.Fatalf("a closing date after issuedAt's day: %+v", res.Rejected)
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestBoundText cuts on a rune boundary and marks the cut.
func TestBoundText(t *testing.T) {
	s := strings.Repeat("é", 2000)
	b := BoundText(s)
	if len(b) > 1000 || !strings.HasSuffix(b, "…") || !strings.HasPrefix(s, strings.TrimSuffix(b, "…")) {
		t.Fatalf("BoundText: %d bytes, suffix %q", len(b), b[len(b)-6:])
	}
	if BoundText("short") != "short" {
		t.Fatal("a short text changed")
	}
}

// A command id applied before is a retry when it asks for the same thing (a duplicate, no
// events) and a refusal naming the key when it asks for something else; its fingerprint is
// kept with the position it was applied at, bounded like the command id ring.
func TestApplyIdempotencyKey(t *testing.T) {
	env := Env{Key: "opp-1", Pipelines: pipelines}
	res := Apply(domain.Aggregate{Position: -1, HistoryOnTopic: true}, create("opp-1", "k1"), t0, Position{Source: "0", Offset: 5}, env)
	f, ok := res.Aggregate.FingerprintOf("k1")
	if !ok || f.Position != 5 || f.Fingerprint != domain.Fingerprint(create("opp-1", "k1")) {
		t.Fatalf("fingerprint kept: %+v %v", f, ok)
	}
	retry := create("opp-1", "k1")
	retry.IssuedAt = t0.Add(time.Minute) // a retry is sent later: not part of the request
	again := Apply(res.Aggregate, retry, t0.Add(time.Minute), Position{Source: "0", Offset: 9}, env)
	if again.Rejected != nil || !again.Duplicate || len(again.Events) != 0 {
		t.Fatalf("retry: %+v", again)
	}
	if f, _ := again.Aggregate.FingerprintOf("k1"); f.Position != 5 {
		t.Fatalf("a retry moved the first application's position to %d", f.Position)
	}
	other := create("opp-1", "k1")
	other.Create.Amount = "160.00"
	reused := Apply(res.Aggregate, other, t0, Position{Source: "0", Offset: 10}, env)
	if reused.Rejected == nil || reused.Rejected.Code != string(domain.CodeIdempotencyKeyReused) ||
		len(reused.Rejected.Fields) != 1 || reused.Rejected.Fields[0].Field != "Idempotency-Key" {
		t.Fatalf("reused key: %+v", reused.Rejected)
	}
	if reused.Aggregate.State.Amount != res.Aggregate.State.Amount {
		t.Fatal("a refused reuse changed the state")
	}
	// An id applied before fingerprints were kept (a v2 state) is taken as a retry.
	legacy := res.Aggregate
	legacy.Fingerprints = nil
	if r := Apply(legacy, other, t0, Position{Source: "0", Offset: 11}, env); r.Rejected != nil || !r.Duplicate {
		t.Fatalf("legacy id: %+v", r)
	}
	// Bounded.
	agg := res.Aggregate
	for i := range 2 * domain.MaxRecentCommandIDs {
		amount := "1.00"
		agg = Apply(agg, domain.Command{Type: domain.CmdUpdate, CommandID: "u" + strconv.Itoa(i),
			OpportunityID: "opp-1", Actor: "alice", IssuedAt: t0, Update: &domain.UpdateOpportunity{Amount: &amount}},
			t0, Position{Source: "0", Offset: int64(20 + i)}, env).Aggregate
	}
	if len(agg.Fingerprints) != domain.MaxRecentCommandIDs {
		t.Fatalf("%d fingerprints kept, want %d", len(agg.Fingerprints), domain.MaxRecentCommandIDs)
	}
}
