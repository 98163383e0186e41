package query

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// List limits of API.md.
const (
	defaultListLimit = 50
	maxListLimit     = 500
	maxCursorLen     = 1024
	maxFilterLen     = 1024
)

func notFoundProblem(what, id string) *problem {
	return newProblem(http.StatusNotFound, string(domain.CodeNotFound), fmt.Sprintf("No %s with id %q.", what, id))
}

func (s *server) getOpportunity(w http.ResponseWriter, r *http.Request) {
	getByID(s, w, r, "opportunity", s.backend.Opportunity, func(agg *domain.Aggregate) opportunityJSON {
		return s.opportunityOut(&agg.State, nil)
	})
}

// getByID answers a GET of one thing by the id in its path, the same way for every kind
// (what names it): a failed read is a 500, an unknown id (read gives nil) the 404, else 200
// with the wire shape out gives.
func getByID[T, B any](s *server, w http.ResponseWriter, r *http.Request, what string, read func(id string) (*T, error), out func(*T) B) {
	id := pathParam(r, "id")
	v, err := read(id)
	if err != nil {
		s.writeReadError(w, r, fmt.Errorf("read %s %q: %w", what, id, err))
		return
	}
	if v == nil {
		writeProblem(w, r, notFoundProblem(what, id))
		return
	}
	writeJSON(w, r, http.StatusOK, out(v))
}

func (s *server) history(w http.ResponseWriter, r *http.Request) {
	id := pathParam(r, "id")
	after, limit, p := parseHistoryPage(r.URL.RawQuery)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	events, more, found, err := s.backend.History(id, after, limit)
	if err != nil {
		s.writeReadError(w, r, fmt.Errorf("read history of %q: %w", id, err))
		return
	}
	if !found {
		writeProblem(w, r, notFoundProblem("opportunity", id))
		return
	}
	out := historyJSON{Items: make([]eventJSON, 0, len(events))}
	for _, e := range events {
		out.Items = append(out.Items, eventOut(e))
	}
	if more && len(events) > 0 {
		c := strconv.FormatInt(events[len(events)-1].Version, 10)
		out.NextCursor = &c
	}
	writeJSON(w, r, http.StatusOK, out)
}

// History page limits: a page holds up to maxHistoryLimit events, which is also the default,
// so a deal with fewer changes comes back whole as before paging existed.
const maxHistoryLimit = 1000

// historyJSON is a page of GET /opportunities/{id}/history.
type historyJSON struct {
	Items      []eventJSON `json:"items"`
	NextCursor *string     `json:"nextCursor"`
}

// parseHistoryPage reads limit and cursor (the last version of the previous page) of the
// history endpoint.
func parseHistoryPage(rawQuery string) (after int64, limit int, p *problem) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, 0, newProblem(http.StatusBadRequest, codeInvalidQuery, "The query string is malformed.",
			fieldError{Field: "query", Message: "is not a valid URL query (bad escape or ';')"})
	}
	var errs []fieldError
	limit = maxHistoryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistoryLimit {
			errs = append(errs, fieldError{Field: "limit", Message: fmt.Sprintf("must be an integer in 1..%d", maxHistoryLimit)})
		} else {
			limit = n
		}
	}
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || len(v) > 19 {
			errs = append(errs, fieldError{Field: "cursor", Message: "is not a cursor this service produced"})
		} else {
			after = n
		}
	}
	if len(errs) > 0 {
		return 0, 0, newProblem(http.StatusBadRequest, codeInvalidQuery, "The query has invalid parameters.", errs...)
	}
	return after, limit, nil
}

// parseListFilter reads the query of GET /opportunities. Every bad parameter is reported at
// once; unknown parameters are ignored (cache busters, tracing parameters) as is usual for
// GET. An empty value counts as absent.
func parseListFilter(rawQuery string) (ListFilter, *problem) {
	f := ListFilter{Limit: defaultListLimit}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return f, newProblem(http.StatusBadRequest, codeInvalidQuery, "The query string is malformed.",
			fieldError{Field: "query", Message: "is not a valid URL query (bad escape or ';')"})
	}
	var errs []fieldError
	bad := func(name, msg string) { errs = append(errs, fieldError{Field: name, Message: msg}) }
	get := func(name string) string {
		vs := q[name]
		switch {
		case len(vs) == 0:
			return ""
		case len(vs) > 1:
			bad(name, "must be given at most once")
			return ""
		case len(vs[0]) > maxFilterLen:
			bad(name, fmt.Sprintf("must be at most %d bytes", maxFilterLen))
			return ""
		}
		return vs[0]
	}
	f.PipelineID = get("pipelineId")
	f.OwnerID = get("ownerId")
	f.AccountID = get("accountId")
	f.StageID = get("stageId")
	switch st := domain.Status(get("status")); st {
	case "", domain.StatusOpen, domain.StatusWon, domain.StatusLost:
		f.Status = st
	default:
		bad("status", `must be one of "open", "won", "lost"`)
	}
	for _, d := range []struct {
		name string
		dst  **domain.Date
	}{{"closeFrom", &f.CloseFrom}, {"closeTo", &f.CloseTo}} {
		if v := get(d.name); v != "" {
			date, err := domain.ParseDate(v)
			if err != nil {
				bad(d.name, "must be a date YYYY-MM-DD between 1900-01-01 and 2999-12-31")
				continue
			}
			*d.dst = &date
		}
	}
	if f.CloseFrom != nil && f.CloseTo != nil && *f.CloseFrom > *f.CloseTo {
		bad("closeFrom", "must not be after closeTo")
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			bad("limit", fmt.Sprintf("must be an integer in 1..%d", maxListLimit))
		} else {
			f.Limit = n
		}
	}
	f.Cursor = get("cursor")
	if len(f.Cursor) > maxCursorLen {
		bad("cursor", "is not a cursor this service produced")
	}
	if len(errs) > 0 {
		return f, newProblem(http.StatusBadRequest, codeInvalidQuery, "Query parameters are invalid.", errs...)
	}
	return f, nil
}

func (s *server) listOpportunities(w http.ResponseWriter, r *http.Request) {
	f, p := parseListFilter(r.URL.RawQuery)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	items, next, err := s.backend.ListOpportunities(f)
	if err != nil {
		if errors.Is(err, ErrInvalidCursor) {
			writeProblem(w, r, newProblem(http.StatusBadRequest, codeInvalidQuery, "Query parameters are invalid.",
				fieldError{Field: "cursor", Message: "is not a cursor this service produced"}))
			return
		}
		s.writeReadError(w, r, fmt.Errorf("list opportunities: %w", err))
		return
	}
	out := listJSON{Items: make([]opportunityJSON, 0, len(items)), NextCursor: nonEmpty(next)}
	cache := stageNames{}
	for i := range items {
		out.Items = append(out.Items, s.opportunityOut(&items[i], cache))
	}
	writeJSON(w, r, http.StatusOK, out)
}
