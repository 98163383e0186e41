// Package domain holds the business rules of the sales pipeline: opportunities, pipelines,
// commands, events and money. It is pure: no Kafka, no HTTP, no clock of its own (time arrives
// in the DecideContext), so every rule can be tested with plain table tests and replayed as an
// oracle against what the stream processors produced.
//
// Imports: the standard library only (the README's package table, checked by imports_test.go).
package domain

import "time"

// Status is the lifecycle status of an opportunity and the kind of a pipeline stage.
type Status string

// The three statuses. A stage's status decides the opportunity's status when it enters it.
const (
	StatusOpen Status = "open"
	StatusWon  Status = "won"
	StatusLost Status = "lost"
)

// ForecastCategory is the exclusive bucket an opportunity counts in for forecasts.
type ForecastCategory string

// The forecast categories of API.md. Closed belongs to won deals, omitted to lost ones (and to
// open deals a seller has taken out of the forecast).
const (
	CategoryPipeline ForecastCategory = "pipeline"
	CategoryBestCase ForecastCategory = "best_case"
	CategoryCommit   ForecastCategory = "commit"
	CategoryClosed   ForecastCategory = "closed"
	CategoryOmitted  ForecastCategory = "omitted"
)

// Date is a calendar date (no time zone), kept as days since 1970-01-01 so that period
// arithmetic is integer arithmetic. Its text form is YYYY-MM-DD.
type Date int32

// Stage is one step of a pipeline. Order is the order of Pipeline.Stages.
type Stage struct {
	ID               string
	Name             string
	Probability      int // percent, 0..100
	ForecastCategory ForecastCategory
	Status           Status
	RequiredFields   []string // JSON field names of the opportunity that must be set to enter
	StaleAfterDays   int      // 0 = never stale
}

// Pipeline is an ordered stage configuration. Several pipelines may exist; an opportunity
// belongs to exactly one.
type Pipeline struct {
	ID     string
	Name   string
	Stages []Stage
}

// Account is the Customer 360 context copied onto an opportunity, refreshed by each command.
type Account struct {
	ID      string
	Name    string
	Segment string
	Region  string
	OwnerID string
}

// StageVisit is one stay of an opportunity in a stage, for funnel and time-in-stage analytics.
type StageVisit struct {
	StageID   string
	EnteredAt time.Time
	EnteredBy string
	LeftAt    *time.Time
	LeftBy    string
}

// Override is a value a user set by hand over the stage default; it survives stage changes
// until cleared with null (the complaint users of Salesforce and HubSpot have).
type Override struct {
	Value string // probability as decimal digits, or a ForecastCategory
	By    string // actor who set it
	At    time.Time
}

// Opportunity is the state of one deal. Amount is exact: integer minor units of Currency.
type Opportunity struct {
	ID                  string
	Version             int64
	Name                string
	AccountID           string
	Account             *Account
	OwnerID             string
	PipelineID          string
	StageID             string
	Status              Status
	Amount              int64 // minor units of Currency (ISO 4217 exponent)
	Currency            string
	ProbabilityOverride *Override
	CategoryOverride    *Override
	CloseDate           Date
	NextStep            string
	LeadID              string
	Source              string
	CreatedAt           time.Time
	UpdatedAt           time.Time
	ClosedAt            *time.Time
	LossReason          string
	Competitor          string
	LossNote            string
	StageEnteredAt      time.Time
	StageHistory        []StageVisit
	CloseDatePushCount  int // how often closeDate was moved later
	// Probability and ForecastCategory are the effective values (override, stage default, or
	// the forced values of a closed deal), kept so readers need not know the pipeline.
	Probability      int
	ForecastCategory ForecastCategory
	// RecentCommandIDs is a bounded ring (newest last) of the command ids applied to this
	// opportunity, so a command sent twice is applied once.
	RecentCommandIDs []string
}

// CommandType names a command; the values are the Avro record names of API.md.
type CommandType string

// The six commands.
const (
	CmdCreate      CommandType = "CreateOpportunity"
	CmdUpdate      CommandType = "UpdateOpportunity"
	CmdChangeStage CommandType = "ChangeStage"
	CmdCloseWon    CommandType = "CloseWon"
	CmdCloseLost   CommandType = "CloseLost"
	CmdReopen      CommandType = "Reopen"
)

// Command is the envelope every command travels in. Exactly one of the body pointers is set,
// the one that matches Type. Amounts and dates are kept as text so that the domain, not the
// transport, decides whether they are valid and says which field is wrong.
type Command struct {
	Type            CommandType
	CommandID       string
	OpportunityID   string
	IssuedAt        time.Time
	Actor           string
	ExpectedVersion *int64

	Create      *CreateOpportunity
	Update      *UpdateOpportunity
	ChangeStage *ChangeStage
	CloseWon    *CloseWon
	CloseLost   *CloseLost
	Reopen      *Reopen
}

// CreateOpportunity opens a new deal. Empty PipelineID means "default", empty StageID the
// pipeline's first open stage.
type CreateOpportunity struct {
	Name             string
	AccountID        string
	OwnerID          string
	PipelineID       string
	StageID          string
	Amount           string // decimal text, e.g. "12500.00"
	Currency         string
	CloseDate        string // YYYY-MM-DD
	Probability      *int
	ForecastCategory *string
	LeadID           string
	Source           string
	NextStep         string
}

// UpdateOpportunity changes fields; a nil pointer leaves the field alone. ClearProbability and
// ClearForecastCategory return the value to the stage default (JSON null).
type UpdateOpportunity struct {
	Name                  *string
	AccountID             *string
	OwnerID               *string
	Amount                *string
	Currency              *string
	CloseDate             *string
	NextStep              *string
	Probability           *int
	ClearProbability      bool
	ForecastCategory      *string
	ClearForecastCategory bool
}

// ChangeStage moves an open deal to another open stage of its pipeline.
type ChangeStage struct {
	StageID string
}

// CloseWon wins the deal, optionally fixing the final amount and the day it closed (CloseDate,
// YYYY-MM-DD, no later than the day the command is decided on and no earlier than the day the
// deal was created; nil: that day itself).
type CloseWon struct {
	CloseDate *string
	Amount    *string
}

// CloseLost loses the deal; Reason is required. CloseDate is the day it closed, as for
// CloseWon (nil: the day the command is decided on).
type CloseLost struct {
	Reason     string
	Competitor string
	Note       string
	CloseDate  *string
}

// Reopen returns a closed deal to an open stage, clearing closedAt and the loss fields; the
// close date stays the day the deal closed until an update changes it.
type Reopen struct {
	StageID string
}

// EventType names a domain event; the values are the Avro record names of API.md.
type EventType string

// The six events, one per accepted command.
const (
	EvtCreated      EventType = "OpportunityCreatedEvent"
	EvtUpdated      EventType = "OpportunityUpdatedEvent"
	EvtStageChanged EventType = "OpportunityStageChangedEvent"
	EvtClosedWon    EventType = "OpportunityClosedWonEvent"
	EvtClosedLost   EventType = "OpportunityClosedLostEvent"
	EvtReopened     EventType = "OpportunityReopenedEvent"
)

// Change is the before and after of one field, in the field's JSON text form ("" with Set=false
// is null/absent).
type Change struct {
	Field     string
	Before    string
	BeforeSet bool
	After     string
	AfterSet  bool
}

// Event is one accepted change: the audit trail. EventID is "<opportunityId>:<version>", so
// consumers can drop the duplicates that at-least-once delivery causes.
type Event struct {
	EventID       string
	Type          EventType
	OpportunityID string
	Version       int64
	At            time.Time
	Actor         string
	CommandID     string
	FromStageID   string
	ToStageID     string
	Changes       []Change
	// Position is the transport's position of the command that caused the event (the input
	// offset). Opaque to the domain; the processor uses it to re-emit after redelivery.
	Position int64
}

// DecideContext is everything outside the opportunity that a decision needs.
type DecideContext struct {
	Now       time.Time // injectable clock
	Pipelines func(id string) (*Pipeline, bool)
	Account   *Account // nil when Customer 360 has no record for the account
	// CheckPipeline, if set, stands in for Pipeline.Validate on the pipelines that Pipelines
	// returns, and must return what Validate would. It exists because a configuration changes
	// rarely while every command needs it: a caller that hands out the same decoded
	// configuration again and again validates it once (the processor memoizes it per record
	// value) instead of once per command.
	CheckPipeline func(*Pipeline) error
}

// Aggregate is the stored form of one opportunity: its state and its event log (the history),
// plus the last input position applied, which makes redelivery detectable.
type Aggregate struct {
	State Opportunity
	// Events are the events of the most recent commands only (bounded): what a redelivered
	// command publishes again. The full audit trail lives on the history topic, so a busy
	// deal's state costs the same per command as a new one. A value of the previous layout
	// (HistoryOnTopic false) holds the whole history here until it has been copied there.
	Events   []Event
	Position int64 // last applied input position; -1 when none
	// Rejections are the most recent refusals (newest last, bounded), kept so that a refusal
	// whose publication a crash interrupted is published again on redelivery, and so that a
	// caller waiting for its command can learn the outcome from the state alone.
	Rejections []RejectedCommand
	// Won are the most recent closed-won hand-offs (newest last, bounded), kept for the same
	// re-publication after redelivery: the record describes the deal as it was when won.
	Won []ClosedWon
	// RecentDeltas are the analytics deltas of the commands whose events are in Events, kept
	// encoded (the domain does not read them) so that a redelivery publishes them again
	// without replaying the history.
	RecentDeltas []StoredDelta
	// HistoryOnTopic reports that every event older than Events is on the history topic; it
	// is false only in a value the previous layout wrote.
	HistoryOnTopic bool
	// Fingerprints are the request fingerprints (domain.Fingerprint) of the recently applied
	// command ids (newest last, bounded like State.RecentCommandIDs), so that an id sent
	// again with a different request is refused instead of answered with the first result.
	// They live beside the state, not in it: the state is what the events replay to.
	Fingerprints []CommandFingerprint
}

// CommandFingerprint is one applied command id, the fingerprint of its request and the input
// position it was applied at (a later sending of the id, at a higher position, is a replay).
type CommandFingerprint struct {
	CommandID   string
	Fingerprint uint64
	Position    int64
}

// FingerprintOf is what is kept for command id id; ok is false when nothing is (an id applied
// before fingerprints were kept, or one that left the ring).
func (a *Aggregate) FingerprintOf(id string) (f CommandFingerprint, ok bool) {
	for i := len(a.Fingerprints) - 1; i >= 0; i-- {
		if a.Fingerprints[i].CommandID == id {
			return a.Fingerprints[i], true
		}
	}
	return CommandFingerprint{}, false
}

// StoredDelta is one encoded analytics delta and the input position of the command that
// emitted it.
type StoredDelta struct {
	Position int64
	Record   []byte
}

// FieldError names one bad field of a command or request and says what is wrong with it.
type FieldError struct {
	Field   string
	Message string
}

// RejectedCommand is published on the rejections topic so that callers learn why a command
// was refused. Code is a RejectCode value.
type RejectedCommand struct {
	CommandID     string
	OpportunityID string
	CommandType   CommandType
	Code          string
	Message       string
	Fields        []FieldError
	Actor         string
	At            time.Time
	// Position is the input position of the refused command (see Event.Position).
	Position int64
}

// ClosedWon is the record handed to Sales when a deal is won: enough to create an order
// without reading anything else.
type ClosedWon struct {
	EventID       string
	OpportunityID string
	Version       int64
	Name          string
	AccountID     string
	Account       *Account
	OwnerID       string
	PipelineID    string
	Amount        int64 // minor units of Currency
	Currency      string
	CloseDate     Date
	ClosedAt      time.Time
	Actor         string
	CommandID     string
}

// FXRate is units of the reporting currency for one unit of Currency, as exact decimal text.
type FXRate struct {
	Currency string
	Rate     string
}
