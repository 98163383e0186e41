package views

import (
	"fmt"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Today is the clock's UTC date, for default periods and rolling horizons.
func (s *Service) Today() domain.Date { return domain.DateOf(s.now()) }

// ReportingCurrency is the currency forecasts are reported in unless a query names another.
func (s *Service) ReportingCurrency() string { return s.cfg.ReportingCurrency }

func (s *Service) now() time.Time {
	if s.cfg.Clock != nil {
		return s.cfg.Clock()
	}
	return time.Now()
}

// rates reads the FX table as it is now: a change of rate shows in the next query, with no
// reprocessing, because money is kept per currency and converted at query time.
func (s *Service) rates() (analytics.Rates, error) {
	all, err := s.FXRates()
	if err != nil {
		return nil, err
	}
	table := make(map[string]string, len(all))
	for _, r := range all {
		table[r.Currency] = r.Rate
	}
	return analytics.MapRates(s.cfg.ReportingCurrency, table), nil
}

// withRates asks the bucket read model a query that converts money, with the FX table as it
// is now (rates).
func withRates[Q, R any](s *Service, q Q, query func(*analytics.Store, Q, analytics.Rates) (R, error)) (R, error) {
	r, err := s.rates()
	if err != nil {
		var none R
		return none, err
	}
	return query(s.store, q, r)
}

// Forecast answers GET /forecast from the in-memory bucket read model.
func (s *Service) Forecast(q analytics.ForecastQuery) (analytics.ForecastResult, error) {
	return withRates(s, q, (*analytics.Store).Forecast)
}

// WinLoss answers GET /analytics/win-loss.
func (s *Service) WinLoss(q analytics.WinLossQuery) (analytics.WinLossResult, error) {
	return withRates(s, q, (*analytics.Store).WinLoss)
}

// Funnel answers GET /analytics/funnel against the pipeline's current stage order.
func (s *Service) Funnel(q analytics.FunnelQuery) (analytics.FunnelResult, error) {
	p, err := s.Pipeline(q.PipelineID)
	if err != nil {
		return analytics.FunnelResult{}, err
	}
	if p == nil {
		return analytics.FunnelResult{}, fmt.Errorf("pipeline %q: %w", q.PipelineID, ErrUnknownPipeline)
	}
	return s.store.Funnel(q, *p)
}

// Velocity answers GET /analytics/velocity.
func (s *Service) Velocity(q analytics.VelocityQuery) (analytics.VelocityResult, error) {
	return withRates(s, q, (*analytics.Store).Velocity)
}

// Changes answers GET /analytics/changes.
func (s *Service) Changes(q analytics.ChangesQuery) (analytics.ChangesResult, error) {
	return withRates(s, q, (*analytics.Store).Changes)
}

// Stale lists open opportunities that have stayed in their stage longer than the stage allows.
// Staleness depends on the clock, so it is computed from current states at query time.
func (s *Service) Stale(pipelineID, ownerID string) ([]analytics.StaleDeal, error) {
	var opps []domain.Opportunity
	cursor := ""
	for {
		page, next, err := s.ListOpportunities(ListFilter{
			PipelineID: pipelineID, OwnerID: ownerID, Status: domain.StatusOpen, Limit: 500, Cursor: cursor,
		})
		if err != nil {
			return nil, err
		}
		opps = append(opps, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	pipelines := map[string]*domain.Pipeline{}
	lookup := func(id string) (*domain.Pipeline, bool) {
		if p, ok := pipelines[id]; ok {
			return p, p != nil
		}
		p, err := s.Pipeline(id)
		if err != nil {
			p = nil
		}
		pipelines[id] = p
		return p, p != nil
	}
	return analytics.Stale(opps, lookup, s.now()), nil
}
