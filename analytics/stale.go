package analytics

import (
	"cmp"
	"slices"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// StaleDeal is an open opportunity that has sat in its stage longer than the stage allows, one
// item of GET /analytics/stale (query renders it). It carries the deal's identity and money
// already formatted, so that the answer needs no second read of the opportunity.
type StaleDeal struct {
	ID             string
	Name           string
	OwnerID        string
	PipelineID     string
	StageID        string
	StageName      string
	DaysInStage    int64
	StaleAfterDays int
	StageEnteredAt string
	Amount         string
	Currency       string
	CloseDate      string
}

// Stale lists the open opportunities whose time in the current stage, in whole days
// (now - StageEnteredAt, truncated), exceeds the stage's StaleAfterDays (> 0; 0 = never
// stale), most stale first, then by id. It is not an aggregation: staleness depends on the
// clock, so it is computed from current states at query time (a timer-free design), and an
// opportunity whose pipeline or stage is unknown is skipped.
func Stale(opps []domain.Opportunity, pipelines func(id string) (*domain.Pipeline, bool), now time.Time) []StaleDeal {
	out := []StaleDeal{}
	for i := range opps {
		o := &opps[i]
		if o.Version == 0 || o.Status != domain.StatusOpen || pipelines == nil {
			continue
		}
		p, ok := pipelines(o.PipelineID)
		if !ok || p == nil {
			continue
		}
		st, _, ok := p.Stage(o.StageID)
		if !ok || st.StaleAfterDays <= 0 {
			continue
		}
		days := int64(now.Sub(o.StageEnteredAt) / (24 * time.Hour))
		if days <= int64(st.StaleAfterDays) {
			continue
		}
		out = append(out, StaleDeal{
			ID: o.ID, Name: o.Name, OwnerID: o.OwnerID, PipelineID: o.PipelineID,
			StageID: o.StageID, StageName: st.Name, DaysInStage: days, StaleAfterDays: st.StaleAfterDays,
			StageEnteredAt: o.StageEnteredAt.UTC().Format(time.RFC3339Nano),
			Amount:         domain.FormatAmount(o.Amount, o.Currency), Currency: o.Currency,
			CloseDate: o.CloseDate.String(),
		})
	}
	slices.SortFunc(out, func(a, b StaleDeal) int {
		if c := cmp.Compare(b.DaysInStage, a.DaysInStage); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}
