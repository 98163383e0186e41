package query

import (
	"encoding/json"
	"net/http"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Problem codes of the HTTP layer itself. The domain's RejectCode values are used as they are,
// so a client switches on one `code` member whatever refused its request.
const (
	codeMalformedJSON    = "malformed_json"
	codeUnknownField     = "unknown_field"
	codeWrongType        = "wrong_type"
	codeBodyTooLarge     = "body_too_large"
	codeInvalidHeader    = "invalid_header"
	codeInvalidQuery     = "invalid_query"
	codeNotReady         = "not_ready"
	codeUnavailable      = "unavailable"
	codeInternal         = "internal_error"
	codeRouteNotFound    = "route_not_found"
	codeMethodNotAllowed = "method_not_allowed"
	// codeStorageUnavailable: the local stores cannot write (disk full, read-only, out of
	// descriptors); the detail names the cause.
	codeStorageUnavailable = "storage_unavailable"
)

// problemTypePrefix makes every problem `type` a stable URI (RFC 9457 §3.1.1) without
// pretending that a documentation page exists behind it.
const problemTypePrefix = "urn:crm-pipeline:problem:"

const contentTypeProblem = "application/problem+json"

// fieldError is one entry of a problem's errors[] member.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// problem is an RFC 9457 problem details body, plus the extension members `code` (machine
// readable reason) and `requestId` (to find the access log line).
type problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail"`
	Code      string       `json:"code"`
	Errors    []fieldError `json:"errors"`
	RequestID string       `json:"requestId,omitempty"`
	// header carries response headers that belong to the problem (Allow, Retry-After).
	header http.Header
}

func newProblem(status int, code, detail string, errs ...fieldError) *problem {
	return &problem{Status: status, Code: code, Detail: detail, Errors: errs}
}

// withHeader adds a response header sent along with the problem.
func (p *problem) withHeader(k, v string) *problem {
	if p.header == nil {
		p.header = http.Header{}
	}
	p.header.Add(k, v)
	return p
}

// titles gives each code a short human summary; RFC 9457 wants the title to stay the same for
// every occurrence of a type, the detail is what varies.
var titles = map[string]string{
	codeMalformedJSON:                         "Malformed JSON body",
	codeUnknownField:                          "Unknown field in body",
	codeWrongType:                             "Field has the wrong JSON type",
	codeBodyTooLarge:                          "Request body too large",
	codeInvalidHeader:                         "Invalid request header",
	codeInvalidQuery:                          "Invalid query parameter",
	codeNotReady:                              "Service not ready",
	codeUnavailable:                           "Service temporarily unavailable",
	codeInternal:                              "Internal server error",
	codeRouteNotFound:                         "No such resource",
	codeMethodNotAllowed:                      "Method not allowed",
	codeHostNotAllowed:                        "Host not allowed",
	codeCrossSiteRefused:                      "Cross-site request refused",
	codeUnsupportedMediaType:                  "Unsupported media type",
	codePositionNotReached:                    "Position not reached",
	codeStorageUnavailable:                    "Local storage unavailable",
	string(domain.CodeConflict):               "Version conflict",
	string(domain.CodeNotFound):               "Not found",
	string(domain.CodeAlreadyExists):          "Already exists",
	string(domain.CodeInvalid):                "Invalid field",
	string(domain.CodeRequiredFields):         "Required fields missing",
	string(domain.CodeClosed):                 "Opportunity is closed",
	string(domain.CodeNotClosed):              "Opportunity is not closed",
	string(domain.CodeUnknownPipeline):        "Unknown pipeline",
	string(domain.CodeUnknownStage):           "Unknown stage",
	string(domain.CodeInvalidTransition):      "Invalid stage transition",
	string(domain.CodeCloseDateInFuture):      "Close date in the future",
	string(domain.CodeCloseDateBeforeCreated): "Close date before the deal was created",
	string(domain.CodeIdempotencyKeyReused):   "Idempotency-Key used for another request",
}

func (p *problem) fill() {
	if p.Code == "" {
		p.Code = codeInternal
	}
	if p.Type == "" {
		p.Type = problemTypePrefix + p.Code
	}
	if p.Title == "" {
		p.Title = titles[p.Code]
		if p.Title == "" {
			p.Title = http.StatusText(p.Status)
		}
	}
	if p.Errors == nil {
		p.Errors = []fieldError{}
	}
}

// writeProblem sends p as application/problem+json. It is the only way errors leave the
// service, so the content type and shape are the same for every failure.
func writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	p.fill()
	if p.RequestID == "" && r != nil {
		p.RequestID = requestIDFrom(r.Context())
	}
	h := w.Header()
	for k, vs := range p.header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: only strings and ints
		body = []byte(`{"type":"about:blank","title":"Internal server error","status":500}`)
	}
	h.Set("Content-Type", contentTypeProblem)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// statusForCode maps a domain refusal onto HTTP through the domain's own table (409 when a
// retry with fresh state can succeed, 404 for an unknown opportunity, 422 otherwise), so the
// mapping cannot drift from the codes' meaning.
func statusForCode(code string) int { return domain.RejectCode(code).HTTPStatus() }

func convertFields(in []domain.FieldError) []fieldError {
	out := make([]fieldError, 0, len(in))
	for _, f := range in {
		out = append(out, fieldError{Field: f.Field, Message: f.Message})
	}
	return out
}

// rejectionProblem turns a domain.Rejection into its problem.
func rejectionProblem(rej *domain.Rejection) *problem {
	code := string(rej.Code)
	if code == "" {
		code = string(domain.CodeInvalid)
	}
	return newProblem(statusForCode(code), code, rej.Message, convertFields(rej.Fields)...)
}

// rejectedProblem turns a processor's refusal (from the rejections topic) into its problem.
func rejectedProblem(rej *domain.RejectedCommand) *problem {
	code := rej.Code
	if code == "" {
		code = string(domain.CodeInvalid)
	}
	return newProblem(statusForCode(code), code, rej.Message, convertFields(rej.Fields)...)
}

// validationProblem is the 422 for a request that failed stateless domain validation. A
// validator that returns a plain error still yields a 422: its message is written for users.
func validationProblem(err error) *problem {
	if rej, ok := domain.AsRejection(err); ok {
		return rejectionProblem(rej)
	}
	return newProblem(http.StatusUnprocessableEntity, string(domain.CodeInvalid), err.Error())
}
