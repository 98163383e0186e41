package query

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Header limits: both values end up in Kafka records and logs, so they are bounded.
const (
	maxIdempotencyKeyLen = domain.MaxIDLen // it becomes the command id
	maxActorLen          = 200
	defaultActor         = "api"
)

// derivedIDPrefix marks opportunity ids derived from an Idempotency-Key.
const derivedIDPrefix = "opp-"

// DeriveOpportunityID is the id a create without an "id" gets when it carries an
// Idempotency-Key: a retried create (same key) then targets the same opportunity, so the
// processor's duplicate check sees it instead of a second deal being opened. Exported so that
// other writers (the emit tool, tests) can predict the id.
func DeriveOpportunityID(idempotencyKey string) string {
	sum := sha256.Sum256([]byte(idempotencyKey))
	return derivedIDPrefix + hex.EncodeToString(sum[:])[:24]
}

// pathParam returns a URL parameter, percent-decoded exactly once: chi matches on
// r.URL.RawPath when it is set (the path has escapes such as %2F that decoding would change),
// so "a%2Fb" would otherwise reach the backend still escaped; otherwise chi matched on the
// already decoded r.URL.Path, which must not be decoded again.
func pathParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// commandMeta is what every write takes from headers rather than from the body.
type commandMeta struct {
	idempotencyKey string
	actor          string
}

func (s *server) parseMeta(r *http.Request) (commandMeta, *problem) {
	var m commandMeta
	var errs []fieldError
	if keys := r.Header.Values("Idempotency-Key"); len(keys) > 0 {
		k := keys[0]
		switch {
		case len(keys) > 1:
			errs = append(errs, fieldError{Field: "Idempotency-Key", Message: "must be sent once"})
		case len(k) == 0 || len(k) > maxIdempotencyKeyLen:
			errs = append(errs, fieldError{Field: "Idempotency-Key",
				Message: fmt.Sprintf("must be 1..%d characters", maxIdempotencyKeyLen)})
		case !printableASCII(k) || strings.ContainsRune(k, ' '):
			errs = append(errs, fieldError{Field: "Idempotency-Key", Message: "must be printable ASCII without spaces"})
		default:
			m.idempotencyKey = k
		}
	}
	m.actor = r.Header.Get("X-Actor")
	switch {
	case m.actor == "":
		m.actor = defaultActor
	case !utf8.ValidString(m.actor) || utf8.RuneCountInString(m.actor) > maxActorLen:
		errs = append(errs, fieldError{Field: "X-Actor",
			Message: fmt.Sprintf("must be valid UTF-8 of at most %d characters", maxActorLen)})
	case !printable(m.actor):
		errs = append(errs, fieldError{Field: "X-Actor", Message: "must not contain control characters"})
	}
	if len(errs) > 0 {
		return m, newProblem(http.StatusBadRequest, codeInvalidHeader, "Request headers are invalid.", errs...)
	}
	return m, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// begin parses the parts every write shares (headers, JSON body) and starts a command with
// them. It answers the problem itself and returns ok=false on failure.
func (s *server) begin(w http.ResponseWriter, r *http.Request, typ domain.CommandType) (*object, commandMeta, domain.Command, bool) {
	meta, p := s.parseMeta(r)
	if p != nil {
		writeProblem(w, r, p)
		return nil, meta, domain.Command{}, false
	}
	body, p := decodeBody(r)
	if p != nil {
		writeProblem(w, r, p)
		return nil, meta, domain.Command{}, false
	}
	cmd := domain.Command{
		Type:            typ,
		CommandID:       meta.idempotencyKey,
		IssuedAt:        s.clock().UTC(),
		Actor:           meta.actor,
		ExpectedVersion: body.optInt64("expectedVersion"),
	}
	if cmd.CommandID == "" {
		cmd.CommandID = s.newID()
	}
	return body, meta, cmd, true
}

// finishBody reports unknown and mistyped members; it returns false after answering.
func finishBody(w http.ResponseWriter, r *http.Request, body *object) bool {
	body.done()
	if p := body.problem(); p != nil {
		writeProblem(w, r, p)
		return false
	}
	return true
}

// bodyReader maps the JSON body of one command type's endpoint onto cmd's body. The HTTP
// handlers and CommandFromJSON (the lines of `crm-pipeline emit`) share these readers, so a
// body means the same command whichever way it arrives: same members, same PATCH null
// semantics, same refusal of money as a JSON number. A reader only reads members; the caller
// reports unknown and mistyped ones (finishBody, object.problem) and validates the command.
type bodyReader func(body *object, cmd *domain.Command)

// bodyReaders holds the reader of every command type; a type missing here is not a command.
var bodyReaders = map[domain.CommandType]bodyReader{
	domain.CmdCreate:      readCreate,
	domain.CmdUpdate:      readUpdate,
	domain.CmdChangeStage: readChangeStage,
	domain.CmdCloseWon:    readCloseWon,
	domain.CmdCloseLost:   readCloseLost,
	domain.CmdReopen:      readReopen,
}

// readCreate reads the body of POST /opportunities except "id", which the caller reads right
// after it: over HTTP the opportunity id also depends on the Idempotency-Key header.
func readCreate(body *object, cmd *domain.Command) {
	c := &domain.CreateOpportunity{
		Name:        body.str("name"),
		AccountID:   body.str("accountId"),
		OwnerID:     body.str("ownerId"),
		PipelineID:  body.str("pipelineId"),
		StageID:     body.str("stageId"),
		Currency:    body.str("currency"),
		CloseDate:   body.str("closeDate"),
		Probability: body.optInt("probability"),
		LeadID:      body.str("leadId"),
		Source:      body.str("source"),
		NextStep:    body.str("nextStep"),
	}
	if a := body.decimal("amount"); a != nil {
		c.Amount = *a
	}
	c.ForecastCategory = body.optStr("forecastCategory")
	cmd.Create = c
}

// readUpdate reads the body of PATCH /opportunities/{id}: an absent member leaves its field
// alone; null returns probability and forecastCategory to the stage default, clears nextStep,
// and is refused on every other member.
func readUpdate(body *object, cmd *domain.Command) {
	u := &domain.UpdateOpportunity{
		Name:      body.patchStr("name", false),
		AccountID: body.patchStr("accountId", false),
		OwnerID:   body.patchStr("ownerId", false),
		Amount:    body.patchStr("amount", true),
		Currency:  body.patchStr("currency", false),
		CloseDate: body.patchStr("closeDate", false),
	}
	// null on nextStep clears it: an empty next step is the natural "none".
	if v, null := body.nullableStr("nextStep"); null {
		empty := ""
		u.NextStep = &empty
	} else {
		u.NextStep = v
	}
	u.Probability, u.ClearProbability = body.nullableInt("probability")
	u.ForecastCategory, u.ClearForecastCategory = body.nullableStr("forecastCategory")
	cmd.Update = u
}

// readChangeStage reads the body of POST /opportunities/{id}/stage.
func readChangeStage(body *object, cmd *domain.Command) {
	cmd.ChangeStage = &domain.ChangeStage{StageID: body.str("stageId")}
}

// readCloseWon reads the body of POST /opportunities/{id}/close-won.
func readCloseWon(body *object, cmd *domain.Command) {
	cmd.CloseWon = &domain.CloseWon{CloseDate: body.optStr("closeDate"), Amount: body.decimal("amount")}
}

// readCloseLost reads the body of POST /opportunities/{id}/close-lost.
func readCloseLost(body *object, cmd *domain.Command) {
	cmd.CloseLost = &domain.CloseLost{
		Reason:     body.str("reason"),
		Competitor: body.str("competitor"),
		Note:       body.str("note"),
		CloseDate:  body.optStr("closeDate"),
	}
}

// readReopen reads the body of POST /opportunities/{id}/reopen.
func readReopen(body *object, cmd *domain.Command) {
	cmd.Reopen = &domain.Reopen{StageID: body.str("stageId")}
}

func (s *server) createOpportunity(w http.ResponseWriter, r *http.Request) {
	body, meta, cmd, ok := s.begin(w, r, domain.CmdCreate)
	if !ok {
		return
	}
	readCreate(body, &cmd)
	id := body.optStr("id")
	if !finishBody(w, r, body) {
		return
	}
	switch {
	case id != nil:
		cmd.OpportunityID = *id
	case meta.idempotencyKey != "":
		cmd.OpportunityID = DeriveOpportunityID(meta.idempotencyKey)
	default:
		cmd.OpportunityID = s.newID()
	}
	s.submit(w, r, cmd, http.StatusCreated)
}

func (s *server) updateOpportunity(w http.ResponseWriter, r *http.Request) {
	s.existing(w, r, domain.CmdUpdate)
}

func (s *server) changeStage(w http.ResponseWriter, r *http.Request) {
	s.existing(w, r, domain.CmdChangeStage)
}

func (s *server) closeWon(w http.ResponseWriter, r *http.Request) {
	s.existing(w, r, domain.CmdCloseWon)
}

func (s *server) closeLost(w http.ResponseWriter, r *http.Request) {
	s.existing(w, r, domain.CmdCloseLost)
}

func (s *server) reopen(w http.ResponseWriter, r *http.Request) {
	s.existing(w, r, domain.CmdReopen)
}

// existing handles a command on an existing opportunity, the one named in the path.
func (s *server) existing(w http.ResponseWriter, r *http.Request, typ domain.CommandType) {
	body, _, cmd, ok := s.begin(w, r, typ)
	if !ok {
		return
	}
	bodyReaders[typ](body, &cmd)
	if !finishBody(w, r, body) {
		return
	}
	cmd.OpportunityID = pathParam(r, "id")
	s.submit(w, r, cmd, http.StatusOK)
}

func opportunityLocation(id string) string {
	return BasePath + "/opportunities/" + url.PathEscape(id)
}

// submit validates cmd, hands it to the backend and answers: 202 once the broker has it, or,
// when the client sent `Prefer: wait=N`, the outcome (applied: okStatus and the opportunity;
// refused: a problem) if it arrives within N seconds, else 202 all the same.
func (s *server) submit(w http.ResponseWriter, r *http.Request, cmd domain.Command, okStatus int) {
	if err := domain.ValidateCommand(cmd); err != nil {
		writeProblem(w, r, validationProblem(err))
		return
	}
	h := w.Header()
	h.Set("X-Command-Id", cmd.CommandID)

	sendCtx, cancel := context.WithTimeout(r.Context(), s.maxWait)
	pos, err := s.backend.Send(sendCtx, cmd)
	cancel()
	if err != nil {
		s.writeBackendError(w, r, fmt.Errorf("send %s command %s: %w", cmd.Type, cmd.CommandID, err),
			"The command could not be submitted; retry with the same Idempotency-Key.")
		return
	}
	h.Set("Location", opportunityLocation(cmd.OpportunityID))
	h.Set(HeaderPosition, pos.String())

	if wait := preferredWait(r.Header, s.maxWait); wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		out, err := s.backend.Await(ctx, cmd)
		cancel()
		switch {
		case err == nil && out.Rejected != nil:
			writeProblem(w, r, rejectedProblem(out.Rejected))
			return
		case err == nil && out.Aggregate != nil:
			h.Set("Preference-Applied", "wait="+strconv.FormatInt(waitSeconds(wait), 10))
			if out.Replayed {
				// The key was applied before: this is its first request's outcome (the
				// IETF idempotency-key draft's replay), not a second application.
				h.Set(HeaderIdempotentReplayed, "true")
			}
			writeJSON(w, r, okStatus, s.opportunityOut(&out.Aggregate.State, nil))
			return
		case err == nil:
			s.log.WarnContext(r.Context(), "await returned an empty outcome", "command_id", cmd.CommandID)
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			// Not applied yet (or the client left): the command stands, answer as without wait.
		default:
			if rej, ok := domain.AsRejection(err); ok {
				writeProblem(w, r, rejectionProblem(rej))
				return
			}
			// The command is on the log; only its outcome is unknown, so it is still accepted.
			s.log.ErrorContext(r.Context(), "await command outcome", "command_id", cmd.CommandID, "error", err)
		}
	}
	// The 202 points to where the command's outcome will be, the deal being related.
	h.Set("Location", commandLocation(cmd.CommandID, cmd.OpportunityID, pos))
	h.Set("Link", "<"+opportunityLocation(cmd.OpportunityID)+`>; rel="related"`)
	writeJSON(w, r, http.StatusAccepted, acceptedJSON{CommandID: cmd.CommandID, OpportunityID: cmd.OpportunityID})
}

// writeBackendError answers a failed backend write. A domain rejection keeps its status; a
// timeout or broker failure is a 503 the client may retry (writes are idempotent by key), with
// the internal error only in the log.
func (s *server) writeBackendError(w http.ResponseWriter, r *http.Request, err error, detail string) {
	if rej, ok := domain.AsRejection(err); ok {
		writeProblem(w, r, rejectionProblem(rej))
		return
	}
	if r.Context().Err() != nil {
		// The client is gone; nobody reads the answer, but log at a lower level.
		s.log.InfoContext(r.Context(), "backend write abandoned by client", "error", err)
	} else {
		s.log.ErrorContext(r.Context(), "backend write failed", "error", err)
	}
	writeProblem(w, r, newProblem(http.StatusServiceUnavailable, codeUnavailable, detail).
		withHeader("Retry-After", "1"))
}

// writeReadError answers a failed backend read: a 500 without internals, logged in full.
func (s *server) writeReadError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "backend read failed", "error", err)
	writeProblem(w, r, newProblem(http.StatusInternalServerError, codeInternal,
		"The server could not read its views."))
}

// stageNames caches pipeline lookups for the length of one request.
type stageNames map[string]*domain.Pipeline

// opportunityOut renders o with its stage name. A pipeline that cannot be read only costs the
// stage name ("" as for an unknown pipeline), not the whole answer.
func (s *server) opportunityOut(o *domain.Opportunity, cache stageNames) opportunityJSON {
	return opportunityOut(o, s.stageName(o.PipelineID, o.StageID, cache))
}

func (s *server) stageName(pipelineID, stageID string, cache stageNames) string {
	p, cached := cache[pipelineID]
	if !cached {
		var err error
		p, err = s.backend.Pipeline(pipelineID)
		if err != nil {
			s.log.Warn("pipeline lookup for stage name", "pipeline_id", pipelineID, "error", err)
			p = nil
		}
		if cache != nil {
			cache[pipelineID] = p
		}
	}
	if p == nil {
		return ""
	}
	st, _, ok := p.Stage(stageID)
	if !ok {
		return ""
	}
	return st.Name
}
