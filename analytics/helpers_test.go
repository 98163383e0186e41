package analytics

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// t0 is the clock of the table tests.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// enterprisePipeline is the second pipeline of the tests: a required field on one stage, two
// lost stages, and an open "parked" stage after the won stage (so stage order and status
// disagree, which the funnel classification must handle).
func enterprisePipeline() domain.Pipeline {
	return domain.Pipeline{
		ID:   "enterprise",
		Name: "Enterprise",
		Stages: []domain.Stage{
			{ID: "lead", Name: "Lead", Probability: 5, ForecastCategory: domain.CategoryPipeline, Status: domain.StatusOpen, StaleAfterDays: 10},
			{ID: "qualify", Name: "Qualify", Probability: 25, ForecastCategory: domain.CategoryPipeline, Status: domain.StatusOpen},
			{ID: "solution", Name: "Solution", Probability: 60, ForecastCategory: domain.CategoryBestCase, Status: domain.StatusOpen, RequiredFields: []string{"nextStep"}},
			{ID: "contract", Name: "Contract", Probability: 90, ForecastCategory: domain.CategoryCommit, Status: domain.StatusOpen, StaleAfterDays: 7},
			{ID: "won", Name: "Won", Probability: 100, ForecastCategory: domain.CategoryClosed, Status: domain.StatusWon},
			{ID: "lost_price", Name: "Lost: price", Probability: 0, ForecastCategory: domain.CategoryOmitted, Status: domain.StatusLost},
			{ID: "lost_other", Name: "Lost: other", Probability: 0, ForecastCategory: domain.CategoryOmitted, Status: domain.StatusLost},
			{ID: "parked", Name: "Parked", Probability: 0, ForecastCategory: domain.CategoryOmitted, Status: domain.StatusOpen},
		},
	}
}

// testPipelines holds the default and the enterprise pipeline.
var testPipelines = map[string]domain.Pipeline{"default": domain.DefaultPipeline(), "enterprise": enterprisePipeline()}

func lookupPipeline(id string) (*domain.Pipeline, bool) {
	p, ok := testPipelines[id]
	return &p, ok
}

// testRates: USD is the reporting currency.
var testRates = MapRates("USD", map[string]string{"EUR": "1.08", "JPY": "0.0067", "KWD": "3.25", "GBP": "1.27"})

func ptr[T any](v T) *T { return &v }

// decide runs one command at time now and fails the test on a refusal.
func decide(t testing.TB, cur *domain.Opportunity, cmd domain.Command, now time.Time) domain.Decision {
	t.Helper()
	d, err := domain.Decide(cur, cmd, domain.DecideContext{Now: now, Pipelines: lookupPipeline})
	if err != nil {
		t.Fatalf("Decide(%s %s): %v", cmd.Type, cmd.CommandID, err)
	}
	return d
}

func createCmd(id, cmdID string, mods ...func(*domain.CreateOpportunity)) domain.Command {
	c := &domain.CreateOpportunity{Name: "Acme renewal", AccountID: "acc-1", OwnerID: "u-1", Amount: "12500.00", Currency: "USD", CloseDate: "2025-06-30"}
	for _, m := range mods {
		m(c)
	}
	return domain.Command{Type: domain.CmdCreate, CommandID: cmdID, OpportunityID: id, Actor: "alice", Create: c}
}

func updateCmd(id, cmdID string, u domain.UpdateOpportunity) domain.Command {
	return domain.Command{Type: domain.CmdUpdate, CommandID: cmdID, OpportunityID: id, Actor: "bob", Update: &u}
}

func stageCmd(id, cmdID, stage string) domain.Command {
	return domain.Command{Type: domain.CmdChangeStage, CommandID: cmdID, OpportunityID: id, Actor: "carol", ChangeStage: &domain.ChangeStage{StageID: stage}}
}

func wonCmd(id, cmdID string, c domain.CloseWon) domain.Command {
	return domain.Command{Type: domain.CmdCloseWon, CommandID: cmdID, OpportunityID: id, Actor: "dave", CloseWon: &c}
}

func lostCmd(id, cmdID string, c domain.CloseLost) domain.Command {
	return domain.Command{Type: domain.CmdCloseLost, CommandID: cmdID, OpportunityID: id, Actor: "erin", CloseLost: &c}
}

func reopenCmd(id, cmdID, stage string) domain.Command {
	return domain.Command{Type: domain.CmdReopen, CommandID: cmdID, OpportunityID: id, Actor: "frank", Reopen: &domain.Reopen{StageID: stage}}
}

func date(t testing.TB, s string) domain.Date {
	t.Helper()
	d, err := domain.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// applyAll folds deltas into a map of buckets in order.
func applyAll(buckets map[string]*Bucket, ds []Delta) {
	for _, d := range ds {
		b := buckets[d.Bucket]
		if b == nil {
			b = &Bucket{}
			buckets[d.Bucket] = b
		}
		b.Apply(d)
	}
}

// storeOf builds a Store from buckets.
func storeOf(buckets map[string]*Bucket) *Store {
	s := NewStore()
	for k, b := range buckets {
		s.Put(k, *b)
	}
	return s
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
