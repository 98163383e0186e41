// Package step is what the opportunity processor does with one command, as one pure function:
// the stored aggregate, a decoded command and the record's time and position in, the new
// aggregate, its events, its closed-won hand-offs, its refusal and its analytics deltas out.
//
// It exists so that every caller that must agree with the processor calls the processor's own
// rule instead of a copy: the processor (decode, Apply, store and emit), the benchmark's
// fixture (which writes the tables a run of commands would leave) and the crash oracle (which
// replays the commands topic to what the service must show). It knows nothing of Kafka,
// encodings or storage; the lookups it needs come in through Env.
//
// Imports from this module: domain, analytics (the README's package table, checked by imports_test.go).
package step

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Bounds of the re-emission rings an aggregate keeps besides its state.
const (
	MaxStoredRejections = 32
	MaxStoredWon        = 4
	// maxRejectionFields bounds the field errors one stored refusal keeps.
	maxRejectionFields = 64
)

// Env is what a step may look up: the record key (a command for another id is refused), the
// pipelines, the pipeline check (nil: domain.DecideContext's default) and the Customer 360
// account snapshot (nil or an absent account: none).
type Env struct {
	Key           string
	Pipelines     func(id string) (*domain.Pipeline, bool)
	CheckPipeline func(*domain.Pipeline) error
	Account       func(id string) *domain.Account
}

// Position is a command record's place: the commands partition (as text, the analytics
// guard's source) and offset. Its deltas carry it, so a re-emission of the same record is
// applied once; the events and a refusal carry the offset, so a redelivery finds its outputs.
type Position struct {
	Source string
	Offset int64
}

// Result is one step's outcome. Exactly one of Rejected and (Events, Won, Deltas, possibly
// empty for a duplicate) describes what happened.
type Result struct {
	// Aggregate is the new stored aggregate: Position advanced to the record, the new events
	// appended to Events, the rings bounded. RecentDeltas is left to the caller, which keeps
	// them encoded.
	Aggregate domain.Aggregate
	Events    []domain.Event
	Won       []domain.ClosedWon
	Deltas    []analytics.Delta
	Rejected  *domain.RejectedCommand
	// Duplicate is a command id seen before: no events, the current state.
	Duplicate bool
	// Internal is set when the refusal is a failure of ours, not of the command (to be
	// logged; the command is refused with code "internal").
	Internal error
}

// Apply takes one command record through the domain. The aggregate's Position is not
// checked: a record at or below it is a redelivery, which the processor answers by
// re-publishing the stored outputs instead of calling Apply.
func Apply(agg domain.Aggregate, cmd domain.Command, recordTime time.Time, pos Position, env Env) Result {
	now := DecisionTime(cmd, recordTime, &agg.State)
	var cur *domain.Opportunity
	if agg.State.Version > 0 {
		p := agg.State
		cur = &p
	}
	dec, err := decide(cur, cmd, now, env)
	if err == nil && dec.Duplicate {
		err = checkRetry(&agg, cmd)
	}
	agg.Position = pos.Offset
	if err != nil {
		rej, internal := Refusal(cmd, err, now, pos.Offset)
		agg.Rejections = keepLast(append(agg.Rejections, rej), MaxStoredRejections)
		return Result{Aggregate: agg, Rejected: &rej, Internal: internal}
	}
	for i := range dec.Events {
		dec.Events[i].Position = pos.Offset
	}
	deltas := analytics.Deltas(cur, dec.Next, dec.Events, env.Pipelines)
	for i := range deltas {
		deltas[i].Source, deltas[i].Position = pos.Source, pos.Offset
	}
	var won []domain.ClosedWon
	for _, e := range dec.Events {
		if e.Type == domain.EvtClosedWon {
			won = append(won, ClosedWonRecord(e, dec.Next))
		}
	}
	if !dec.Duplicate {
		agg.Fingerprints = keepLast(append(slices.Clip(agg.Fingerprints),
			domain.CommandFingerprint{CommandID: cmd.CommandID, Fingerprint: domain.Fingerprint(cmd), Position: pos.Offset}), domain.MaxRecentCommandIDs)
	}
	agg.State = dec.Next
	agg.Events = append(agg.Events, dec.Events...)
	agg.Won = keepLast(append(agg.Won, won...), MaxStoredWon)
	return Result{Aggregate: agg, Events: dec.Events, Won: won, Deltas: deltas, Duplicate: dec.Duplicate}
}

// checkRetry refuses a command id the deal applied before when this command asks for
// something else (the IETF idempotency-key draft's "same key, different request"): answering
// it with the first request's result would tell the client its new request was applied. An id
// applied before fingerprints were kept is taken as a retry.
func checkRetry(agg *domain.Aggregate, cmd domain.Command) error {
	if f, ok := agg.FingerprintOf(cmd.CommandID); ok && f.Fingerprint != domain.Fingerprint(cmd) {
		return &domain.Rejection{Code: domain.CodeIdempotencyKeyReused,
			Message: fmt.Sprintf("command id %q was applied to opportunity %q for a different request", cmd.CommandID, cmd.OpportunityID),
			Fields: []domain.FieldError{{Field: "Idempotency-Key",
				Message: "was used before on this opportunity for a different request; use a new key for a new request"}}}
	}
	return nil
}

// decide gathers what the domain needs and asks it.
func decide(cur *domain.Opportunity, cmd domain.Command, now time.Time, env Env) (domain.Decision, error) {
	if env.Key != "" && cmd.OpportunityID != env.Key {
		return domain.Decision{}, &domain.Rejection{Code: domain.CodeInvalid,
			Message: fmt.Sprintf("opportunityId %q differs from the record key %q", cmd.OpportunityID, env.Key),
			Fields:  []domain.FieldError{{Field: "opportunityId", Message: "must equal the record key"}}}
	}
	dc := domain.DecideContext{Now: now, Pipelines: env.Pipelines, CheckPipeline: env.CheckPipeline}
	if accountID := accountOf(cur, cmd); accountID != "" && env.Account != nil {
		dc.Account = env.Account(accountID)
	}
	return domain.Decide(cur, cmd, dc)
}

// accountOf is the account a command leaves the opportunity with, whose Customer 360 snapshot
// is refreshed onto the state.
func accountOf(cur *domain.Opportunity, cmd domain.Command) string {
	switch {
	case cmd.Create != nil:
		return cmd.Create.AccountID
	case cmd.Update != nil && cmd.Update.AccountID != nil:
		return *cmd.Update.AccountID
	case cur != nil:
		return cur.AccountID
	}
	return ""
}

// DecisionTime is the "now" a command is decided at: its issuedAt (event time, as Kafka
// Streams uses record timestamps), or the record's timestamp when the command carries none,
// never earlier than the opportunity's last change. It depends only on the record and the
// state, never on the processing clock, so a command decided again after a crash (its state
// write lost, its event already published) yields byte-identical events, and an oracle can
// replay the command log to the same states.
func DecisionTime(cmd domain.Command, recordTime time.Time, cur *domain.Opportunity) time.Time {
	now := cmd.IssuedAt
	if now.IsZero() {
		now = recordTime
	}
	now = now.UTC().Truncate(time.Microsecond) // the precision Avro keeps
	if cur != nil && cur.Version > 0 && now.Before(cur.UpdatedAt) {
		now = cur.UpdatedAt
	}
	return now
}

// ClosedWonRecord is the hand-off to Sales for a win, from the state right after it.
func ClosedWonRecord(e domain.Event, o domain.Opportunity) domain.ClosedWon {
	w := domain.ClosedWon{
		EventID: e.EventID, OpportunityID: o.ID, Version: e.Version, Name: o.Name,
		AccountID: o.AccountID, Account: o.Account, OwnerID: o.OwnerID, PipelineID: o.PipelineID,
		Amount: o.Amount, Currency: o.Currency, CloseDate: o.CloseDate, Actor: e.Actor, CommandID: e.CommandID,
	}
	if o.ClosedAt != nil {
		w.ClosedAt = *o.ClosedAt
	} else {
		w.ClosedAt = e.At
	}
	return w
}

// Refusal is the published and stored refusal of cmd for err at position. A refusal may
// quote the bad input, which can be as large as the topic allows, and the state keeps the
// last refusals, so its texts are bounded like the domain's. internal is err when it is not a
// business refusal (a bug or a failed lookup of ours).
func Refusal(cmd domain.Command, err error, now time.Time, position int64) (rej domain.RejectedCommand, internal error) {
	rej = domain.RejectedCommand{
		CommandID: cmd.CommandID, OpportunityID: cmd.OpportunityID, CommandType: cmd.Type,
		Actor: cmd.Actor, At: now, Position: position,
	}
	if r, ok := domain.AsRejection(err); ok {
		rej.Code, rej.Message, rej.Fields = string(r.Code), r.Message, boundFields(r.Fields)
	} else {
		rej.Code, rej.Message = "internal", err.Error()
		internal = err
	}
	rej.Message = BoundText(rej.Message)
	rej.CommandID, rej.Actor = BoundText(rej.CommandID), BoundText(rej.Actor)
	return rej, internal
}

// BoundText cuts s to domain.MaxTextLen bytes on a rune boundary, marking the cut.
func BoundText(s string) string {
	if len(s) <= domain.MaxTextLen {
		return s
	}
	cut := domain.MaxTextLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// boundFields bounds the count and the texts of a refusal's field errors.
func boundFields(fs []domain.FieldError) []domain.FieldError {
	if len(fs) > maxRejectionFields {
		fs = fs[:maxRejectionFields]
	}
	out := make([]domain.FieldError, len(fs))
	for i, f := range fs {
		out[i] = domain.FieldError{Field: BoundText(f.Field), Message: BoundText(f.Message)}
	}
	return out
}

func keepLast[T any](s []T, n int) []T {
	if len(s) <= n {
		return s
	}
	return append([]T(nil), s[len(s)-n:]...)
}
