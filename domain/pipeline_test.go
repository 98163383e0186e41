package domain

import (
	"slices"
	"strings"
	"testing"
)

// TestDefaultPipelineMatchesAPI checks the stage table that API.md promises.
func TestDefaultPipelineMatchesAPI(t *testing.T) {
	p := DefaultPipeline()
	if p.ID != "default" || p.Name != "Default" {
		t.Fatalf("default pipeline is %q %q", p.ID, p.Name)
	}
	want := []struct {
		id   string
		prob int
		cat  ForecastCategory
		st   Status
	}{
		{"qualification", 10, CategoryPipeline, StatusOpen},
		{"discovery", 20, CategoryPipeline, StatusOpen},
		{"proposal", 50, CategoryBestCase, StatusOpen},
		{"negotiation", 80, CategoryCommit, StatusOpen},
		{"closed_won", 100, CategoryClosed, StatusWon},
		{"closed_lost", 0, CategoryOmitted, StatusLost},
	}
	if len(p.Stages) != len(want) {
		t.Fatalf("default pipeline has %d stages, want %d", len(p.Stages), len(want))
	}
	for i, w := range want {
		s := p.Stages[i]
		if s.ID != w.id || s.Probability != w.prob || s.ForecastCategory != w.cat || s.Status != w.st {
			t.Errorf("stage %d = %+v, want %+v", i, s, w)
		}
		if s.Name == "" || len(s.RequiredFields) != 0 || s.StaleAfterDays < 0 {
			t.Errorf("stage %s: name %q, required %v, stale %d", s.ID, s.Name, s.RequiredFields, s.StaleAfterDays)
		}
	}
	if s, _, _ := p.Stage("proposal"); s.StaleAfterDays != 30 {
		t.Errorf("proposal goes stale after %d days, want 30", s.StaleAfterDays)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("default pipeline is invalid: %v", err)
	}
	// Each call is a fresh value: a caller modifying its copy cannot change the default.
	p.Stages[0].Probability = 99
	if DefaultPipeline().Stages[0].Probability != 10 {
		t.Fatal("DefaultPipeline shares its stages between calls")
	}
}

func TestPipelineValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(p *Pipeline)
		fields []string // exact fields of the rejection, in order
	}{
		{"empty id", func(p *Pipeline) { p.ID = "" }, []string{"id"}},
		{"long id", func(p *Pipeline) { p.ID = strings.Repeat("a", 101) }, []string{"id"}},
		{"100-char id is fine", func(p *Pipeline) { p.ID = strings.Repeat("a", 100) }, nil},
		{"id with a slash", func(p *Pipeline) { p.ID = "a/b" }, []string{"id"}},
		{"id with a space", func(p *Pipeline) { p.ID = "a b" }, []string{"id"}},
		{"id with every allowed character", func(p *Pipeline) { p.ID = "Az09_-." }, nil},
		{"blank name", func(p *Pipeline) { p.Name = "  " }, []string{"name"}},
		{"long name", func(p *Pipeline) { p.Name = strings.Repeat("n", 256) }, []string{"name"}},
		{"empty stage id", func(p *Pipeline) { p.Stages[1].ID = "" }, []string{"stages[1].id"}},
		{"bad stage id", func(p *Pipeline) { p.Stages[1].ID = "dis covery" }, []string{"stages[1].id"}},
		{"duplicate stage id", func(p *Pipeline) { p.Stages[2].ID = "qualification" }, []string{"stages[2].id"}},
		{"empty stage name", func(p *Pipeline) { p.Stages[3].Name = "" }, []string{"stages[3].name"}},
		{"probability over 100", func(p *Pipeline) { p.Stages[2].Probability = 101 }, []string{"stages[2].probability"}},
		{"negative probability", func(p *Pipeline) { p.Stages[0].Probability = -1 }, []string{"stages[0].probability"}},
		{"unknown category", func(p *Pipeline) { p.Stages[0].ForecastCategory = "upside" }, []string{"stages[0].forecastCategory"}},
		{"open stage in closed category", func(p *Pipeline) { p.Stages[3].ForecastCategory = CategoryClosed }, []string{"stages[3].forecastCategory"}},
		{"open stage may be omitted", func(p *Pipeline) { p.Stages[3].ForecastCategory = CategoryOmitted }, nil},
		{"won stage below 100", func(p *Pipeline) { p.Stages[4].Probability = 90 }, []string{"stages[4].probability"}},
		{"won stage not closed", func(p *Pipeline) { p.Stages[4].ForecastCategory = CategoryCommit }, []string{"stages[4].forecastCategory"}},
		{"lost stage above 0", func(p *Pipeline) { p.Stages[5].Probability = 5 }, []string{"stages[5].probability"}},
		{"lost stage not omitted", func(p *Pipeline) { p.Stages[5].ForecastCategory = CategoryPipeline }, []string{"stages[5].forecastCategory"}},
		{"unknown status", func(p *Pipeline) { p.Stages[1].Status = "paused" }, []string{"stages[1].status"}},
		{"unknown required field", func(p *Pipeline) { p.Stages[2].RequiredFields = []string{"amount", "budget"} }, []string{"stages[2].requiredFields[1]"}},
		{"every required field name is allowed", func(p *Pipeline) { p.Stages[2].RequiredFields = slices.Clone(RequiredFieldNames) }, nil},
		{"negative staleAfterDays", func(p *Pipeline) { p.Stages[1].StaleAfterDays = -1 }, []string{"stages[1].staleAfterDays"}},
		{"no stages", func(p *Pipeline) { p.Stages = nil }, []string{"stages", "stages", "stages"}},
		{"no open stage", func(p *Pipeline) { p.Stages = p.Stages[4:] }, []string{"stages"}},
		{"no won stage", func(p *Pipeline) { p.Stages = slices.Delete(p.Stages, 4, 5) }, []string{"stages"}},
		{"two won stages", func(p *Pipeline) {
			p.Stages = append(p.Stages, Stage{ID: "won2", Name: "Won 2", Probability: 100, ForecastCategory: CategoryClosed, Status: StatusWon})
		}, []string{"stages"}},
		{"no lost stage", func(p *Pipeline) { p.Stages = p.Stages[:5] }, []string{"stages"}},
		{"two lost stages are fine", func(p *Pipeline) {
			p.Stages = append(p.Stages, Stage{ID: "lost2", Name: "Lost 2", Status: StatusLost, ForecastCategory: CategoryOmitted})
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPipeline()
			tc.mod(&p)
			err := p.Validate()
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			wantRejection(t, err, CodeInvalid, tc.fields...)
		})
	}
}

func TestPipelineValidateReportsEveryProblem(t *testing.T) {
	p := DefaultPipeline()
	p.ID = ""
	p.Stages[0].Probability = 200
	p.Stages[4].ForecastCategory = CategoryCommit
	wantRejection(t, p.Validate(), CodeInvalid, "id", "stages[0].probability", "stages[4].forecastCategory")
	if err := enterprisePipeline().Validate(); err != nil {
		t.Fatalf("enterprise test pipeline is invalid: %v", err)
	}
}

func TestPipelineLookups(t *testing.T) {
	p := enterprisePipeline()
	if s, i, ok := p.Stage("solution"); !ok || i != 2 || s.Probability != 60 {
		t.Errorf("Stage(solution) = %+v, %d, %v", s, i, ok)
	}
	if _, _, ok := p.Stage("nope"); ok {
		t.Error("Stage(nope) found")
	}
	if s, ok := p.FirstOpenStage(); !ok || s.ID != "lead" {
		t.Errorf("FirstOpenStage = %s, %v", s.ID, ok)
	}
	if s, ok := p.WonStage(); !ok || s.ID != "won" {
		t.Errorf("WonStage = %s, %v", s.ID, ok)
	}
	if s, ok := p.LostStage(); !ok || s.ID != "lost_price" {
		t.Errorf("LostStage = %s, %v; want the first lost stage", s.ID, ok)
	}
	// A pipeline whose first stage is closed still starts deals in its first open stage.
	p.Stages[0], p.Stages[4] = p.Stages[4], p.Stages[0]
	if s, ok := p.FirstOpenStage(); !ok || s.ID != "qualify" {
		t.Errorf("FirstOpenStage after reorder = %s, %v", s.ID, ok)
	}
	var empty Pipeline
	if _, ok := empty.FirstOpenStage(); ok {
		t.Error("empty pipeline has an open stage")
	}
	if _, ok := empty.WonStage(); ok {
		t.Error("empty pipeline has a won stage")
	}
	if _, ok := empty.LostStage(); ok {
		t.Error("empty pipeline has a lost stage")
	}
}
