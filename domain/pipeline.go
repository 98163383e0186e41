package domain

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// DefaultPipelineID is the id of the pipeline that exists from the first start and that a
// create without pipelineId lands in (API.md).
const DefaultPipelineID = "default"

// RequiredFieldNames are the JSON names of the opportunity fields a stage may require before
// an opportunity enters it. Only fields a user can leave empty at some point are meaningful:
// "amount" counts as set when it is above zero, "closeDate" is always set (create requires it).
var RequiredFieldNames = []string{"name", "accountId", "ownerId", "amount", "currency", "closeDate", "nextStep", "leadId", "source"}

// Limits on configuration text, so a pipeline fits comfortably in one Kafka record and in URLs.
const (
	maxPipelineIDLen = 100
	maxNameLen       = 255
)

// DefaultPipeline returns the pipeline of API.md that exists from the first start. It is
// permissive (no required fields) so that a fresh install accepts any well-formed deal; teams
// tighten it with PUT /pipelines/default. Each call returns a fresh value, so callers may
// modify it.
func DefaultPipeline() Pipeline {
	return Pipeline{
		ID:   DefaultPipelineID,
		Name: "Default",
		Stages: []Stage{
			{ID: "qualification", Name: "Qualification", Probability: 10, ForecastCategory: CategoryPipeline, Status: StatusOpen, StaleAfterDays: 14},
			{ID: "discovery", Name: "Discovery", Probability: 20, ForecastCategory: CategoryPipeline, Status: StatusOpen, StaleAfterDays: 21},
			{ID: "proposal", Name: "Proposal", Probability: 50, ForecastCategory: CategoryBestCase, Status: StatusOpen, StaleAfterDays: 30},
			{ID: "negotiation", Name: "Negotiation", Probability: 80, ForecastCategory: CategoryCommit, Status: StatusOpen, StaleAfterDays: 21},
			{ID: "closed_won", Name: "Closed Won", Probability: 100, ForecastCategory: CategoryClosed, Status: StatusWon},
			{ID: "closed_lost", Name: "Closed Lost", Probability: 0, ForecastCategory: CategoryOmitted, Status: StatusLost},
		},
	}
}

// Validate checks a stage configuration before it is stored, because Decide relies on its
// invariants: an opportunity always has an open stage to start in, exactly one stage to be
// won in and one to be lost in, and closed stages force the forecast values (won 100/closed,
// lost 0/omitted) so forecasts never count a closed deal as open or the reverse. All problems
// are reported at once, as a *Rejection with CodeInvalid and Fields named like
// "stages[2].probability".
func (p Pipeline) Validate() error {
	var errs fieldErrors
	checkConfigID(&errs, "id", p.ID)
	checkConfigName(&errs, "name", p.Name)
	seen := make(map[string]int, len(p.Stages))
	var open, won, lost int
	for i, s := range p.Stages {
		at := fmt.Sprintf("stages[%d]", i)
		checkConfigID(&errs, at+".id", s.ID)
		if j, dup := seen[s.ID]; dup && s.ID != "" {
			errs.add(at+".id", "duplicates the id of stages[%d] (%q)", j, s.ID)
		} else {
			seen[s.ID] = i
		}
		checkConfigName(&errs, at+".name", s.Name)
		if s.Probability < 0 || s.Probability > 100 {
			errs.add(at+".probability", "must be within 0..100, got %d", s.Probability)
		}
		if !knownCategory(s.ForecastCategory) {
			errs.add(at+".forecastCategory", "must be one of pipeline, best_case, commit, closed, omitted, got %q", s.ForecastCategory)
		}
		switch s.Status {
		case StatusOpen:
			open++
			if s.ForecastCategory == CategoryClosed {
				errs.add(at+".forecastCategory", "an open stage cannot be in the closed category")
			}
		case StatusWon:
			won++
			checkClosedStage(&errs, at, s, "the won stage", 100, CategoryClosed)
		case StatusLost:
			lost++
			checkClosedStage(&errs, at, s, "a lost stage", 0, CategoryOmitted)
		default:
			errs.add(at+".status", "must be one of open, won, lost, got %q", s.Status)
		}
		for j, f := range s.RequiredFields {
			if !slices.Contains(RequiredFieldNames, f) {
				errs.add(fmt.Sprintf("%s.requiredFields[%d]", at, j), "%q is not a field a stage can require (one of %v)", f, RequiredFieldNames)
			}
		}
		if s.StaleAfterDays < 0 {
			errs.add(at+".staleAfterDays", "must be 0 (never stale) or more, got %d", s.StaleAfterDays)
		}
	}
	if open == 0 {
		errs.add("stages", "needs at least one open stage")
	}
	if won != 1 {
		errs.add("stages", "needs exactly one won stage, has %d", won)
	}
	if lost == 0 {
		errs.add("stages", "needs at least one lost stage")
	}
	return errs.rejection(fmt.Sprintf("pipeline %q", p.ID))
}

// checkClosedStage holds a closed stage s (at in the field names, which in the messages) to
// the forecast values its status forces: the probability prob and the category cat.
func checkClosedStage(errs *fieldErrors, at string, s Stage, which string, prob int, cat ForecastCategory) {
	if s.Probability != prob {
		errs.add(at+".probability", "%s must have probability %d, got %d", which, prob, s.Probability)
	}
	if s.ForecastCategory != cat {
		errs.add(at+".forecastCategory", "%s must be in the %s category, got %q", which, cat, s.ForecastCategory)
	}
}

// checkConfigID accepts 1..100 characters of [A-Za-z0-9_.-], a stricter set than IDAlphabet
// (no ':'): pipeline and stage ids also appear in bucket keys and metric labels.
func checkConfigID(errs *fieldErrors, field, id string) {
	checkIDChars(errs, field, id, true, maxPipelineIDLen, isConfigIDChar, "letters, digits, '_', '-' and '.'")
}

func isConfigIDChar(c byte) bool { return isIDChar(c) && c != ':' }

// checkConfigName requires a display name of at most maxNameLen characters.
func checkConfigName(errs *fieldErrors, field, name string) {
	switch {
	case !utf8.ValidString(name):
		errs.add(field, "must be valid UTF-8")
	case isBlank(name):
		errs.add(field, "is required")
	case utf8.RuneCountInString(name) > maxNameLen:
		errs.add(field, "must be at most %d characters", maxNameLen)
	default:
		if r, ok := forbiddenRune(name, false); ok {
			errs.add(field, "must not contain control or bidi-control characters (U+%04X)", r)
		}
	}
}

// Stage finds a stage by id and returns it with its position in the pipeline order, which
// funnel analytics use to tell forward from backward moves.
func (p Pipeline) Stage(id string) (Stage, int, bool) {
	for i, s := range p.Stages {
		if s.ID == id {
			return s, i, true
		}
	}
	return Stage{}, -1, false
}

// FirstOpenStage is where a new opportunity starts when the create names no stage.
func (p Pipeline) FirstOpenStage() (Stage, bool) { return p.firstWithStatus(StatusOpen) }

// WonStage is the stage CloseWon moves an opportunity to; a valid pipeline has exactly one.
func (p Pipeline) WonStage() (Stage, bool) { return p.firstWithStatus(StatusWon) }

// LostStage is the first lost stage, the one CloseLost moves an opportunity to; further lost
// stages exist only for reporting.
func (p Pipeline) LostStage() (Stage, bool) { return p.firstWithStatus(StatusLost) }

func (p Pipeline) firstWithStatus(st Status) (Stage, bool) {
	for _, s := range p.Stages {
		if s.Status == st {
			return s, true
		}
	}
	return Stage{}, false
}

// knownCategory reports whether c is one of the five forecast categories of API.md.
func knownCategory(c ForecastCategory) bool {
	switch c {
	case CategoryPipeline, CategoryBestCase, CategoryCommit, CategoryClosed, CategoryOmitted:
		return true
	}
	return false
}
