package analytics

import (
	"cmp"
	"slices"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// WinLoss answers GET /analytics/win-loss from the win/loss buckets of close dates in
// [q.From, q.To] (see WinLossResult for the definitions). Errors as for Forecast.
func (s *Store) WinLoss(q WinLossQuery, rates Rates) (WinLossResult, error) {
	g, err := checkWinLossQuery(q)
	if err != nil {
		return WinLossResult{}, err
	}
	total := newWLAcc(true)
	groups := map[string]*wlAcc{}
	acc := func(k string) *wlAcc {
		a := groups[k]
		if a == nil {
			a = newWLAcc(false)
			groups[k] = a
		}
		return a
	}
	s.mu.RLock()
	s.wl.scan(q.PipelineID, s.ownerSel(q.OwnerID), q.From, q.To, func(n *dayNode[wlData], r *rec[wlData]) {
		d := &r.d
		total.add(d)
		switch g {
		case GroupOwner:
			acc(s.ownerName(r.ownerIdx)).add(d)
		case GroupMonth:
			acc(n.month).add(d)
		case GroupReason:
			for i := range d.reasons {
				l := &d.reasons[i]
				a := acc(l.label)
				a.lost += l.count
				a.lostMoney = a.lostMoney.addAll(l.money)
			}
		}
	})
	s.mu.RUnlock()
	return buildWinLoss(q, groups, total, rates)
}

func checkWinLossQuery(q WinLossQuery) (string, error) {
	if err := checkPeriod(q.From, q.To); err != nil {
		return "", err
	}
	if err := checkCurrency(q.Currency); err != nil {
		return "", err
	}
	return checkGroupBy(q.GroupBy, GroupNone, GroupOwner, GroupReason, GroupMonth)
}

// wlAcc sums win/loss buckets; labels (reasons, competitors) only for the total.
type wlAcc struct {
	won, lost, cycleDays int64
	wonMoney, lostMoney  moneySum
	labels               bool
	reasons              map[string]*labelled
	competitors          map[string]*labelled
}

func newWLAcc(labels bool) *wlAcc {
	a := &wlAcc{labels: labels}
	if labels {
		a.reasons, a.competitors = map[string]*labelled{}, map[string]*labelled{}
	}
	return a
}

func (a *wlAcc) add(d *wlData) {
	a.won += d.won
	a.lost += d.lost
	a.cycleDays += d.cycleDays
	for _, m := range d.money {
		a.wonMoney.add(m.cur, m.won)
		a.lostMoney.add(m.cur, m.lost)
	}
	if !a.labels {
		return
	}
	addLabels(a.reasons, d.reasons)
	addLabels(a.competitors, d.competitors)
}

func addLabels(into map[string]*labelled, from []labelled) {
	for i := range from {
		l := &from[i]
		t := into[l.label]
		if t == nil {
			t = &labelled{label: l.label}
			into[l.label] = t
		}
		t.count += l.count
		t.money = t.money.addAll(l.money)
	}
}

func (a *wlAcc) needs(to string, set map[string]struct{}) {
	a.wonMoney.needs(to, set)
	a.lostMoney.needs(to, set)
	for _, l := range a.reasons {
		l.money.needs(to, set)
	}
	for _, l := range a.competitors {
		l.money.needs(to, set)
	}
}

func buildWinLoss(q WinLossQuery, groups map[string]*wlAcc, total *wlAcc, rates Rates) (WinLossResult, error) {
	need := map[string]struct{}{}
	total.needs(q.Currency, need)
	for _, a := range groups {
		a.needs(q.Currency, need)
	}
	cv, err := newConverter(rates, q.Currency, sortedNeeds(need))
	if err != nil {
		return WinLossResult{}, err
	}
	res := WinLossResult{Currency: q.Currency, From: q.From.String(), To: q.To.String(),
		LossReasons: []ReasonFigure{}, Competitors: []CompetitorFigure{}, Groups: []WinLossGroup{}}
	if res.WinLossFigures, err = cv.winLossFigures(total); err != nil {
		return WinLossResult{}, err
	}
	reasons, err := cv.labelFigures(total.reasons)
	if err != nil {
		return WinLossResult{}, err
	}
	for _, l := range reasons {
		res.LossReasons = append(res.LossReasons, ReasonFigure{Reason: l.label, Count: l.count, Amount: l.amount})
	}
	competitors, err := cv.labelFigures(total.competitors)
	if err != nil {
		return WinLossResult{}, err
	}
	for _, l := range competitors {
		res.Competitors = append(res.Competitors, CompetitorFigure{Competitor: l.label, Count: l.count, Amount: l.amount})
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, err := cv.winLossFigures(groups[k])
		if err != nil {
			return WinLossResult{}, err
		}
		res.Groups = append(res.Groups, WinLossGroup{Key: k, WinLossFigures: f})
	}
	return res, nil
}

func (cv *converter) winLossFigures(a *wlAcc) (WinLossFigures, error) {
	won, err := cv.figure(a.wonMoney)
	if err != nil {
		return WinLossFigures{}, err
	}
	lost, err := cv.figure(a.lostMoney)
	if err != nil {
		return WinLossFigures{}, err
	}
	both, err := addChecked(won, lost)
	if err != nil {
		return WinLossFigures{}, err
	}
	return WinLossFigures{
		Won:             CountAmount{Count: a.won, Amount: domain.FormatAmount(won, cv.to)},
		Lost:            CountAmount{Count: a.lost, Amount: domain.FormatAmount(lost, cv.to)},
		WinRateByCount:  ratio(a.won, a.won+a.lost, rateDecimals),
		WinRateByAmount: ratio(won, both, rateDecimals),
		AvgDealSizeWon:  domain.FormatAmount(roundDiv(won, a.won), cv.to),
		AvgCycleDaysWon: ratio(a.cycleDays, a.won, daysDecimals),
	}, nil
}

type labelFigure struct {
	label  string
	count  int64
	amount string
}

// labelFigures converts and sorts labelled counts: count descending, then label. Labels
// whose count is zero (cancelled contributions) are left out.
func (cv *converter) labelFigures(m map[string]*labelled) ([]labelFigure, error) {
	var ls []*labelled
	for _, l := range m {
		if l.count != 0 {
			ls = append(ls, l)
		}
	}
	slices.SortFunc(ls, func(a, b *labelled) int {
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		return cmp.Compare(a.label, b.label)
	})
	out := make([]labelFigure, 0, len(ls))
	for _, l := range ls {
		v, err := cv.figure(l.money)
		if err != nil {
			return nil, err
		}
		out = append(out, labelFigure{label: l.label, count: l.count, amount: domain.FormatAmount(v, cv.to)})
	}
	return out, nil
}
