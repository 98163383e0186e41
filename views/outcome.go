package views

import (
	"context"
	"fmt"
	"sync"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// CommandState is where a command stands, as GET /commands/{id} answers it.
type CommandState string

// The states of a command. Unknown means this instance cannot tell: never sent, older than
// the rings the deal keeps, or sent through another instance and not processed yet when the
// caller named neither its opportunity nor its position.
const (
	CommandPending CommandState = "pending"
	CommandApplied CommandState = "applied"
	CommandRefused CommandState = "refused"
	CommandUnknown CommandState = "unknown"
)

// CommandOutcome is a command's state: for an applied one the opportunity and the version its
// event made (0 for a duplicate or a change of nothing, which made no event), for a refused one
// the refusal.
type CommandOutcome struct {
	State         CommandState
	OpportunityID string
	Version       int64
	Rejected      *domain.RejectedCommand
}

// CommandQuery names a command. OpportunityID and Position are optional (the Location of a
// write's 202 carries both): with them any instance answers exactly, pending included; without,
// the instance finds the opportunity in its index of recent command ids.
type CommandQuery struct {
	CommandID     string
	OpportunityID string
	Position      *Position
}

// CommandOutcome answers where a command stands. The state of a deal remembers its last
// domain.MaxRecentCommandIDs applied command ids and its last step.MaxStoredRejections
// refusals; a command older than both is unknown.
func (s *Service) CommandOutcome(ctx context.Context, q CommandQuery) (CommandOutcome, error) {
	oppID := q.OpportunityID
	if oppID == "" {
		oppID, _ = s.commands.lookup(q.CommandID)
	}
	if oppID == "" {
		if s.sent.has(q.CommandID) {
			return CommandOutcome{State: CommandPending}, nil
		}
		return CommandOutcome{State: CommandUnknown}, nil
	}
	agg, err := s.getAggregate(oppID, codecs.DecodeAggregate)
	if err != nil {
		return CommandOutcome{}, fmt.Errorf("command %s: %w", q.CommandID, err)
	}
	minPos := int64(-1)
	if q.Position != nil {
		minPos = q.Position.Offset
	}
	if agg != nil {
		if agg.State.Version > 0 && agg.State.ContainsCommand(q.CommandID) {
			v, err := s.commandVersion(oppID, agg, q.CommandID)
			if err != nil {
				return CommandOutcome{}, fmt.Errorf("command %s: %w", q.CommandID, err)
			}
			return CommandOutcome{State: CommandApplied, OpportunityID: oppID, Version: v}, nil
		}
		for i := len(agg.Rejections) - 1; i >= 0; i-- {
			if r := agg.Rejections[i]; r.CommandID == q.CommandID && r.Position >= minPos {
				return CommandOutcome{State: CommandRefused, OpportunityID: oppID, Rejected: &r}, nil
			}
		}
	}
	// Neither applied nor refused in the state: pending while this instance has not reached
	// the command's position (or sent it and has not seen it yet), unknown after.
	if q.Position != nil {
		if !s.pos.reachedNow(*q.Position) {
			return CommandOutcome{State: CommandPending, OpportunityID: oppID}, nil
		}
		return CommandOutcome{State: CommandUnknown, OpportunityID: oppID}, nil
	}
	if s.sent.has(q.CommandID) {
		return CommandOutcome{State: CommandPending, OpportunityID: oppID}, nil
	}
	return CommandOutcome{State: CommandUnknown, OpportunityID: oppID}, nil
}

// commandVersion is the version of the event cmdID made: from the state's recent events, else
// from the audit trail, newest first; 0 when it made none (a duplicate, or a change of
// nothing).
func (s *Service) commandVersion(oppID string, agg *domain.Aggregate, cmdID string) (int64, error) {
	for i := len(agg.Events) - 1; i >= 0; i-- {
		if agg.Events[i].CommandID == cmdID {
			return agg.Events[i].Version, nil
		}
	}
	var found int64
	for after := int64(0); ; {
		page, more, err := s.mergeHistory(oppID, agg, after, 1000)
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			if e.CommandID == cmdID {
				found = e.Version
			}
		}
		if !more || len(page) == 0 {
			return found, nil
		}
		after = page[len(page)-1].Version
	}
}

// commandIndex maps recent command ids to their opportunity, from the table records the
// opportunity view stores, so that a command named by its id alone can be found. It is
// bounded: the oldest ids go first once it holds maxIndexedCommands.
type commandIndex struct {
	mu    sync.Mutex
	m     map[string]string
	order []string
}

const maxIndexedCommands = 200_000

// note indexes the command ids agg remembers (applied and refused) under its opportunity.
func (c *commandIndex) note(oppID string, agg *domain.Aggregate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]string{}
	}
	add := func(id string) {
		if _, ok := c.m[id]; ok {
			return
		}
		c.m[id] = oppID
		c.order = append(c.order, id)
	}
	for _, id := range agg.State.RecentCommandIDs {
		add(id)
	}
	for _, r := range agg.Rejections {
		add(r.CommandID)
	}
	if len(c.order) > 2*maxIndexedCommands { // drop in chunks: amortised O(1) per id
		drop := c.order[:len(c.order)-maxIndexedCommands]
		for _, id := range drop {
			delete(c.m, id)
		}
		c.order = append([]string(nil), c.order[len(drop):]...)
	}
}

func (c *commandIndex) lookup(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	opp, ok := c.m[id]
	return opp, ok
}
