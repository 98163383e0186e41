package query

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// maxRateDigits bounds both sides of an FX rate's decimal point: 18 decimals are what the
// rate's exact arithmetic supports, and 18 integer digits are far beyond any real rate.
const maxRateDigits = 18

func (s *server) listPipelines(w http.ResponseWriter, r *http.Request) {
	ps, err := s.backend.Pipelines()
	if err != nil {
		s.writeReadError(w, r, fmt.Errorf("list pipelines: %w", err))
		return
	}
	out := itemsJSON[pipelineJSON]{Items: make([]pipelineJSON, 0, len(ps))}
	for i := range ps {
		out.Items = append(out.Items, pipelineOut(&ps[i]))
	}
	writeJSON(w, r, http.StatusOK, out)
}

func (s *server) getPipeline(w http.ResponseWriter, r *http.Request) {
	getByID(s, w, r, "pipeline", s.backend.Pipeline, pipelineOut)
}

// putPipeline replaces a pipeline's stage configuration. PUT is idempotent, so a timeout here
// is safe to retry; the answer is the configuration as validated and stored.
func (s *server) putPipeline(w http.ResponseWriter, r *http.Request) {
	id := pathParam(r, "id")
	body, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	var invalid []fieldError
	pl := domain.Pipeline{ID: id, Name: body.str("name")}
	if bid := body.optStr("id"); bid != nil && *bid != id {
		invalid = append(invalid, fieldError{Field: "id", Message: fmt.Sprintf("must be %q (the id in the path) or omitted", id)})
	}
	stages := body.objects("stages")
	for i, so := range stages {
		st := domain.Stage{
			ID:               so.str("id"),
			Name:             so.str("name"),
			ForecastCategory: domain.ForecastCategory(so.str("forecastCategory")),
			Status:           domain.Status(so.str("status")),
			RequiredFields:   so.stringList("requiredFields"),
		}
		if pr := so.optInt("probability"); pr != nil {
			st.Probability = *pr
		} else if _, present, _ := so.get("probability"); !present {
			invalid = append(invalid, fieldError{Field: fmt.Sprintf("stages[%d].probability", i), Message: "is required"})
		}
		if d := so.optInt("staleAfterDays"); d != nil {
			st.StaleAfterDays = *d
		}
		so.done()
		pl.Stages = append(pl.Stages, st)
	}
	if !finishBody(w, r, body) {
		return
	}
	if err := pl.Validate(); err != nil {
		vp := validationProblem(err)
		vp.Errors = append(invalid, vp.Errors...)
		writeProblem(w, r, vp)
		return
	}
	if len(invalid) > 0 {
		writeProblem(w, r, newProblem(http.StatusUnprocessableEntity, string(domain.CodeInvalid),
			"The pipeline is invalid.", invalid...))
		return
	}
	s.putConfig(w, r, func(ctx context.Context) error { return s.backend.PutPipeline(ctx, pl) },
		fmt.Sprintf("put pipeline %q", id), "The pipeline could not be stored or was not confirmed in time; retry the PUT.",
		pipelineOut(&pl))
}

func (s *server) listFXRates(w http.ResponseWriter, r *http.Request) {
	rates, err := s.backend.FXRates()
	if err != nil {
		s.writeReadError(w, r, fmt.Errorf("list FX rates: %w", err))
		return
	}
	rates = slices.Clone(rates)
	slices.SortFunc(rates, func(a, b domain.FXRate) int { return strings.Compare(a.Currency, b.Currency) })
	out := itemsJSON[fxRateJSON]{Items: make([]fxRateJSON, 0, len(rates))}
	for _, rt := range rates {
		out.Items = append(out.Items, fxRateJSON{Currency: rt.Currency, Rate: rt.Rate})
	}
	writeJSON(w, r, http.StatusOK, out)
}

// validRate reports whether s is a positive plain decimal ("1.0823", "150"): no sign, no
// exponent, at most maxRateDigits digits on either side of the point.
func validRate(s string) bool {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || len(intPart) > maxRateDigits || len(frac) > maxRateDigits || (hasDot && frac == "") {
		return false
	}
	nonZero := false
	for _, c := range intPart + frac {
		if c < '0' || c > '9' {
			return false
		}
		if c != '0' {
			nonZero = true
		}
	}
	return nonZero
}

func (s *server) putFXRate(w http.ResponseWriter, r *http.Request) {
	currency := pathParam(r, "currency")
	body, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	rate := body.decimal("rate")
	bodyCurrency := body.optStr("currency")
	if !finishBody(w, r, body) {
		return
	}
	var invalid []fieldError
	if _, ok := domain.CurrencyExponent(currency); !ok {
		invalid = append(invalid, fieldError{Field: "currency", Message: "must be an active ISO 4217 code such as EUR"})
	} else if rc := s.backend.ReportingCurrency(); currency == rc {
		invalid = append(invalid, fieldError{Field: "currency", Message: fmt.Sprintf(
			"%s is the reporting currency: its rate is 1 by definition and cannot be set", rc)})
	} else if bodyCurrency != nil && *bodyCurrency != currency {
		invalid = append(invalid, fieldError{Field: "currency", Message: fmt.Sprintf("must be %q (the code in the path) or omitted", currency)})
	}
	switch {
	case rate == nil:
		invalid = append(invalid, fieldError{Field: "rate", Message: "is required"})
	case !validRate(*rate):
		invalid = append(invalid, fieldError{Field: "rate", Message: fmt.Sprintf(
			"must be a positive plain decimal string with at most %d decimals, such as \"1.0823\"", maxRateDigits)})
	}
	if len(invalid) > 0 {
		writeProblem(w, r, newProblem(http.StatusUnprocessableEntity, string(domain.CodeInvalid),
			"The FX rate is invalid.", invalid...))
		return
	}
	fx := domain.FXRate{Currency: currency, Rate: *rate}
	s.putConfig(w, r, func(ctx context.Context) error { return s.backend.PutFXRate(ctx, fx) },
		"put FX rate "+currency, "The FX rate could not be stored; retry the PUT.", fxRateJSON(fx))
}

// putConfig is the end of the configuration PUTs: put stores the value within the write
// deadline, and the answer is the value as stored; a failure is logged as what and answered
// with retry as its detail (a PUT is idempotent, so retrying is always safe).
func (s *server) putConfig(w http.ResponseWriter, r *http.Request, put func(ctx context.Context) error, what, retry string, stored any) {
	ctx, cancel := context.WithTimeout(r.Context(), s.maxWait)
	defer cancel()
	if err := put(ctx); err != nil {
		s.writeBackendError(w, r, fmt.Errorf("%s: %w", what, err), retry)
		return
	}
	writeJSON(w, r, http.StatusOK, stored)
}
