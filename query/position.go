package query

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/crm-pipeline/crm-pipeline/views"
)

// Headers of read-your-writes (API.md, "Consistency").
const (
	// HeaderPosition is on every write answer: the command record's place in the commands
	// topic, as a token.
	HeaderPosition = "Crm-Position"
	// HeaderMinPosition on a GET names positions the answer must reflect.
	HeaderMinPosition = "Crm-Min-Position"
	// HeaderIdempotentReplayed marks a write answered with the outcome of an earlier request
	// with the same Idempotency-Key.
	HeaderIdempotentReplayed = "Idempotent-Replayed"
)

const codePositionNotReached = "position_not_reached"

// Position is views.Position: the token of Crm-Position and Crm-Min-Position.
type Position = views.Position

// awaitPosition holds a GET that names Crm-Min-Position until this instance reflects every
// named position, for at most the client's Prefer: wait (none: the positions must already be
// reflected). It never answers from views older than the positions: past the wait it is a 503
// the client may retry, as a Kafka Streams interactive query with a PositionBound fails
// rather than answering from a store that is behind.
func (s *server) awaitPosition(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values(HeaderMinPosition)
		if len(values) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		ps, err := views.ParsePositions(strings.Join(values, ","))
		if err != nil {
			writeProblem(w, r, newProblem(http.StatusBadRequest, codeInvalidHeader,
				"Crm-Min-Position is a comma list of position tokens as Crm-Position gives them.",
				fieldError{Field: HeaderMinPosition, Message: err.Error()}))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), preferredWait(r.Header, s.maxWait))
		err = s.backend.WaitPositions(ctx, ps)
		cancel()
		switch {
		case err == nil:
			next.ServeHTTP(w, r)
		case r.Context().Err() != nil:
			// The client left; nobody reads an answer.
		case errors.Is(err, ErrPositionNotReached):
			writeProblem(w, r, newProblem(http.StatusServiceUnavailable, codePositionNotReached,
				"This instance does not reflect the named positions yet: "+err.Error()+
					". Retry, or send Prefer: wait=N to let it catch up.").
				withHeader("Retry-After", "1"))
		default:
			s.writeReadError(w, r, err)
		}
	})
}

// ErrPositionNotReached is views.ErrPositionNotReached, what WaitPositions wraps.
var ErrPositionNotReached = views.ErrPositionNotReached
