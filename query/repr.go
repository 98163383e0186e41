package query

import (
	"strconv"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/views"
)

// This file holds the JSON representations of API.md (those of the analytics answers are in
// analytics_repr.go). They are separate structs rather than JSON tags on domain or analytics
// types so that those packages stay transport-free and the wire names cannot change by
// accident when a field there is renamed.

// formatTime writes t as RFC 3339 in UTC, with sub-second digits only when present.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type accountJSON struct {
	Name    string `json:"name"`
	Segment string `json:"segment"`
	Region  string `json:"region"`
}

type overrideJSON struct {
	Value any    `json:"value"`
	By    string `json:"by"`
	At    string `json:"at"`
}

type stageVisitJSON struct {
	StageID   string  `json:"stageId"`
	EnteredAt string  `json:"enteredAt"`
	EnteredBy string  `json:"enteredBy"`
	LeftAt    *string `json:"leftAt"`
	LeftBy    *string `json:"leftBy"`
}

type opportunityJSON struct {
	ID                       string           `json:"id"`
	Version                  int64            `json:"version"`
	Name                     string           `json:"name"`
	AccountID                string           `json:"accountId"`
	Account                  *accountJSON     `json:"account"`
	OwnerID                  string           `json:"ownerId"`
	PipelineID               string           `json:"pipelineId"`
	StageID                  string           `json:"stageId"`
	StageName                string           `json:"stageName"`
	Status                   domain.Status    `json:"status"`
	Amount                   string           `json:"amount"`
	Currency                 string           `json:"currency"`
	Probability              int              `json:"probability"`
	ForecastCategory         string           `json:"forecastCategory"`
	WeightedAmount           string           `json:"weightedAmount"`
	CloseDate                string           `json:"closeDate"`
	CreatedAt                string           `json:"createdAt"`
	UpdatedAt                string           `json:"updatedAt"`
	ClosedAt                 *string          `json:"closedAt"`
	LossReason               string           `json:"lossReason"`
	Competitor               string           `json:"competitor"`
	StageEnteredAt           string           `json:"stageEnteredAt"`
	NextStep                 string           `json:"nextStep"`
	LeadID                   string           `json:"leadId"`
	Source                   string           `json:"source"`
	LossNote                 string           `json:"lossNote"`
	ProbabilityOverride      *overrideJSON    `json:"probabilityOverride"`
	ForecastCategoryOverride *overrideJSON    `json:"forecastCategoryOverride"`
	CloseDatePushCount       int              `json:"closeDatePushCount"`
	StageHistory             []stageVisitJSON `json:"stageHistory"`
}

// overrideOut renders an override; a probability override's value is a number like the
// probability field itself (the domain keeps it as text).
func overrideOut(o *domain.Override, numeric bool) *overrideJSON {
	if o == nil {
		return nil
	}
	var v any = o.Value
	if numeric {
		if n, err := strconv.Atoi(o.Value); err == nil {
			v = n
		}
	}
	return &overrideJSON{Value: v, By: o.By, At: formatTime(o.At)}
}

// opportunityOut renders o; stageName is looked up by the caller because it lives in the
// pipeline configuration, not in the opportunity.
func opportunityOut(o *domain.Opportunity, stageName string) opportunityJSON {
	out := opportunityJSON{
		ID:                       o.ID,
		Version:                  o.Version,
		Name:                     o.Name,
		AccountID:                o.AccountID,
		OwnerID:                  o.OwnerID,
		PipelineID:               o.PipelineID,
		StageID:                  o.StageID,
		StageName:                stageName,
		Status:                   o.Status,
		Amount:                   domain.FormatAmount(o.Amount, o.Currency),
		Currency:                 o.Currency,
		Probability:              o.Probability,
		ForecastCategory:         string(o.ForecastCategory),
		WeightedAmount:           domain.FormatAmount(domain.WeightedAmount(o.Amount, o.Probability), o.Currency),
		CloseDate:                o.CloseDate.String(),
		CreatedAt:                formatTime(o.CreatedAt),
		UpdatedAt:                formatTime(o.UpdatedAt),
		ClosedAt:                 formatTimePtr(o.ClosedAt),
		LossReason:               o.LossReason,
		Competitor:               o.Competitor,
		StageEnteredAt:           formatTime(o.StageEnteredAt),
		NextStep:                 o.NextStep,
		LeadID:                   o.LeadID,
		Source:                   o.Source,
		LossNote:                 o.LossNote,
		ProbabilityOverride:      overrideOut(o.ProbabilityOverride, true),
		ForecastCategoryOverride: overrideOut(o.CategoryOverride, false),
		CloseDatePushCount:       o.CloseDatePushCount,
		StageHistory:             make([]stageVisitJSON, 0, len(o.StageHistory)),
	}
	if o.Account != nil {
		out.Account = &accountJSON{Name: o.Account.Name, Segment: o.Account.Segment, Region: o.Account.Region}
	}
	for _, v := range o.StageHistory {
		out.StageHistory = append(out.StageHistory, stageVisitJSON{
			StageID:   v.StageID,
			EnteredAt: formatTime(v.EnteredAt),
			EnteredBy: v.EnteredBy,
			LeftAt:    formatTimePtr(v.LeftAt),
			LeftBy:    nonEmpty(v.LeftBy),
		})
	}
	return out
}

type changeJSON struct {
	Before *string `json:"before"`
	After  *string `json:"after"`
}

type eventJSON struct {
	Version     int64                 `json:"version"`
	EventID     string                `json:"eventId"`
	Type        domain.EventType      `json:"type"`
	At          string                `json:"at"`
	Actor       string                `json:"actor"`
	CommandID   string                `json:"commandId"`
	FromStageID *string               `json:"fromStageId"`
	ToStageID   *string               `json:"toStageId"`
	Changes     map[string]changeJSON `json:"changes"`
}

func eventOut(e domain.Event) eventJSON {
	out := eventJSON{
		Version:     e.Version,
		EventID:     e.EventID,
		Type:        e.Type,
		At:          formatTime(e.At),
		Actor:       e.Actor,
		CommandID:   e.CommandID,
		FromStageID: nonEmpty(e.FromStageID),
		ToStageID:   nonEmpty(e.ToStageID),
		Changes:     make(map[string]changeJSON, len(e.Changes)),
	}
	for _, c := range e.Changes {
		var ch changeJSON
		if c.BeforeSet {
			before := c.Before
			ch.Before = &before
		}
		if c.AfterSet {
			after := c.After
			ch.After = &after
		}
		out.Changes[c.Field] = ch
	}
	return out
}

type stageJSON struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Probability      int      `json:"probability"`
	ForecastCategory string   `json:"forecastCategory"`
	Status           string   `json:"status"`
	RequiredFields   []string `json:"requiredFields"`
	StaleAfterDays   int      `json:"staleAfterDays,omitempty"`
}

type pipelineJSON struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	Stages []stageJSON `json:"stages"`
}

func pipelineOut(p *domain.Pipeline) pipelineJSON {
	out := pipelineJSON{ID: p.ID, Name: p.Name, Stages: make([]stageJSON, 0, len(p.Stages))}
	for _, st := range p.Stages {
		req := st.RequiredFields
		if req == nil {
			req = []string{}
		}
		out.Stages = append(out.Stages, stageJSON{
			ID:               st.ID,
			Name:             st.Name,
			Probability:      st.Probability,
			ForecastCategory: string(st.ForecastCategory),
			Status:           string(st.Status),
			RequiredFields:   req,
			StaleAfterDays:   st.StaleAfterDays,
		})
	}
	return out
}

type fxRateJSON struct {
	Currency string `json:"currency"`
	Rate     string `json:"rate"`
}

type itemsJSON[T any] struct {
	Items []T `json:"items"`
}

type listJSON struct {
	Items      []opportunityJSON `json:"items"`
	NextCursor *string           `json:"nextCursor"`
}

type acceptedJSON struct {
	CommandID     string `json:"commandId"`
	OpportunityID string `json:"opportunityId"`
}

// streamAnalyticsJSON is the data of the stream's analytics event: which aggregates changed,
// and the position to read them at (Crm-Min-Position).
type streamAnalyticsJSON struct {
	PipelineIDs []string        `json:"pipelineIds"`
	OwnerIDs    []string        `json:"ownerIds"`
	Dates       streamDatesJSON `json:"dates"`
	Position    string          `json:"position"`
}

type streamDatesJSON struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func streamAnalyticsOut(c *views.AnalyticsChange) streamAnalyticsJSON {
	out := streamAnalyticsJSON{
		PipelineIDs: c.PipelineIDs, OwnerIDs: c.OwnerIDs,
		Dates:    streamDatesJSON{From: c.From.String(), To: c.To.String()},
		Position: c.Position,
	}
	if out.PipelineIDs == nil {
		out.PipelineIDs = []string{}
	}
	if out.OwnerIDs == nil {
		out.OwnerIDs = []string{}
	}
	return out
}

// streamResetJSON is the data of the stream's reset event (an event without data would not
// be dispatched by an EventSource): why the stream could not continue.
type streamResetJSON struct {
	Reason string `json:"reason"` // views.ResetUnknownToken, ResetTooOld, ResetFellBehind
}
