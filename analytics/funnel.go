package analytics

import (
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Funnel answers GET /analytics/funnel for pipeline p from the event buckets of days in
// [q.From, q.To]: stage-pair move counts and stay lengths summed over the period, then
// classified against p's stage order (see FunnelStage for the definitions). It needs no rates.
func (s *Store) Funnel(q FunnelQuery, p domain.Pipeline) (FunnelResult, error) {
	if err := q.Validate(p); err != nil {
		return FunnelResult{}, err
	}
	moves := map[[2]string]int64{}
	stays := map[string]*stay{}
	s.mu.RLock()
	s.ev.scan(p.ID, s.ownerSel(q.OwnerID), q.From, q.To, func(_ *dayNode[evData], r *rec[evData]) {
		for _, m := range r.d.moves {
			moves[[2]string{m.from, m.to}] += m.n
		}
		for _, st := range r.d.stays {
			t := stays[st.stage]
			if t == nil {
				t = &stay{stage: st.stage}
				stays[st.stage] = t
			}
			t.count += st.count
			t.ms += st.ms
		}
	})
	s.mu.RUnlock()
	res := FunnelResult{PipelineID: p.ID, From: q.From.String(), To: q.To.String()}
	res.Stages = funnelStages(p, moves, func(stage string) (int64, int64) {
		if t := stays[stage]; t != nil {
			return t.count, t.ms
		}
		return 0, 0
	})
	return res, nil
}

// funnelStages classifies stage-pair move counts against p's order. The oracle of
// analyticstest counts and classifies moves its own way, from the event history.
func funnelStages(p domain.Pipeline, moves map[[2]string]int64, stays func(stage string) (count, ms int64)) []FunnelStage {
	out := make([]FunnelStage, len(p.Stages))
	pos := make(map[string]int, len(p.Stages))
	for i, st := range p.Stages {
		pos[st.ID] = i
		out[i] = FunnelStage{StageID: st.ID, StageName: st.Name, Status: string(st.Status)}
	}
	for pair, n := range moves {
		from, to := pair[0], pair[1]
		ti, ok := pos[to]
		if !ok {
			continue // a stage the pipeline no longer has
		}
		out[ti].Entered += n
		if from == "" {
			continue // a creation
		}
		fi, ok := pos[from]
		if !ok {
			continue
		}
		f, t := &out[fi], p.Stages[ti]
		switch {
		case p.Stages[fi].Status != domain.StatusOpen:
			f.Reopened += n
		case t.Status == domain.StatusWon:
			f.Won += n
		case t.Status == domain.StatusLost:
			f.Lost += n
		case ti > fi:
			f.Advanced += n
		default:
			f.Regressed += n
		}
	}
	for i := range out {
		st := &out[i]
		st.ConversionRate = ratio(st.Advanced+st.Won, st.Entered, rateDecimals)
		count, ms := stays(st.StageID)
		st.StaysEnded = count
		st.AvgDaysInStage = avgDays(ms, count)
	}
	return out
}
