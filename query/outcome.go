package query

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/crm-pipeline/crm-pipeline/views"
)

// CommandQuery and CommandOutcome are the views' own (GET /commands/{commandId}).
type (
	// CommandQuery is views.CommandQuery.
	CommandQuery = views.CommandQuery
	// CommandOutcome is views.CommandOutcome.
	CommandOutcome = views.CommandOutcome
)

const codeUnknownCommand = "unknown_command"

// commandJSON is the answer of GET /commands/{commandId}: where the command stands.
type commandJSON struct {
	CommandID     string   `json:"commandId"`
	Status        string   `json:"status"`
	OpportunityID string   `json:"opportunityId,omitempty"`
	Version       *int64   `json:"version,omitempty"`
	Problem       *problem `json:"problem,omitempty"`
}

// commandLocation is the URL a write's 202 points to: the command's status, with its
// opportunity and position so that any instance of the group answers it exactly.
func commandLocation(commandID, opportunityID string, pos Position) string {
	q := url.Values{"opportunityId": {opportunityID}, "position": {pos.String()}}
	return BasePath + "/commands/" + url.PathEscape(commandID) + "?" + q.Encode()
}

// commandStatus answers GET /commands/{commandId}: pending (with Retry-After), applied (with
// the version its event made; none for a duplicate or a change of nothing), refused (with the
// problem the write would have answered under Prefer: wait), or 404 when this instance cannot
// tell (see views.CommandOutcome for how long a deal remembers its commands).
func (s *server) commandStatus(w http.ResponseWriter, r *http.Request) {
	q := CommandQuery{CommandID: pathParam(r, "commandId")}
	params, p := parseAnalyticsParams(r.URL.RawQuery)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	q.OpportunityID = params.str("opportunityId")
	if text := params.str("position"); text != "" {
		ps, err := views.ParsePositions(text)
		if err != nil || len(ps) != 1 {
			params.bad("position", "must be one position token <partition>:<offset>, as Crm-Position gives it")
		} else {
			q.Position = &ps[0]
		}
	}
	if p := params.problem(); p != nil {
		writeProblem(w, r, p)
		return
	}
	out, err := s.backend.CommandOutcome(r.Context(), q)
	if err != nil {
		s.writeReadError(w, r, fmt.Errorf("command %q: %w", q.CommandID, err))
		return
	}
	body := commandJSON{CommandID: q.CommandID, Status: string(out.State), OpportunityID: out.OpportunityID}
	switch out.State {
	case views.CommandUnknown:
		writeProblem(w, r, newProblem(http.StatusNotFound, codeUnknownCommand, fmt.Sprintf(
			"This instance knows no command %q: it was never sent, is older than what the deal remembers, "+
				"or went through another instance and is not processed yet (name its opportunityId and position, as the write's Location does).",
			q.CommandID)))
		return
	case views.CommandPending:
		w.Header().Set("Retry-After", "1")
	case views.CommandApplied:
		if out.Version > 0 {
			body.Version = &out.Version
		}
	case views.CommandRefused:
		body.Problem = rejectedProblem(out.Rejected)
		body.Problem.fill()
	}
	writeJSON(w, r, http.StatusOK, body)
}
