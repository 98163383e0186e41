package analytics

import (
	"slices"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Forecast answers GET /forecast (and /forecast/rolling) from the forecast buckets of close
// dates in [q.From, q.To]: a range sum over daily buckets, then one conversion per currency
// and figure (see ForecastResult). Errors: *QueryError for bad parameters, *MissingRateError
// when a needed rate is missing, ErrOverflow for figures beyond int64.
func (s *Store) Forecast(q ForecastQuery, rates Rates) (ForecastResult, error) {
	g, err := checkForecastQuery(q)
	if err != nil {
		return ForecastResult{}, err
	}
	var total fcAcc
	groups := map[string]*fcAcc{}
	acc := func(k string) *fcAcc {
		a := groups[k]
		if a == nil {
			a = &fcAcc{}
			groups[k] = a
		}
		return a
	}
	s.mu.RLock()
	s.scan(famForecast, q.PipelineID, q.OwnerID, q.From, q.To, func(n *dayNode, r *record) {
		d := r.fc
		total.add(d)
		switch g {
		case GroupMonth:
			acc(n.month).add(d)
		case GroupQuarter:
			acc(n.quarter).add(d)
		case GroupOwner:
			acc(r.key.owner).add(d)
		case GroupCategory:
			for c := range numCats {
				if d.count[c] != 0 {
					acc(catNames[c]).addCat(d, c)
				}
			}
		}
	})
	s.mu.RUnlock()
	return buildForecast(q, g, groups, &total, rates)
}

// checkForecastQuery validates a forecast query and returns its normalised groupBy.
func checkForecastQuery(q ForecastQuery) (string, error) {
	if err := checkPeriod(q.From, q.To); err != nil {
		return "", err
	}
	if err := checkCurrency(q.Currency); err != nil {
		return "", err
	}
	return checkGroupBy(q.GroupBy, GroupNone, GroupMonth, GroupQuarter, GroupOwner, GroupCategory)
}

// fcAcc sums forecast buckets: counts, and money per currency (one slot per currency, found
// once per bucket, so summing a bucket is a few array additions).
type fcAcc struct {
	count [numCats]int64
	money []fcMoney
}

func (a *fcAcc) slot(cur string) *fcMoney {
	for i := range a.money {
		if a.money[i].cur == cur {
			return &a.money[i]
		}
	}
	a.money = append(a.money, fcMoney{cur: cur})
	return &a.money[len(a.money)-1]
}

func (a *fcAcc) add(d *fcData) {
	for c := range numCats {
		a.count[c] += d.count[c]
	}
	for i := range d.money {
		m := &d.money[i]
		sl := a.slot(m.cur)
		for c := range numCats {
			sl.v[c][metAmount] += m.v[c][metAmount]
			sl.v[c][metWeighted] += m.v[c][metWeighted]
		}
	}
}

// addCat adds only category c of d (groupBy category).
func (a *fcAcc) addCat(d *fcData, c int) {
	a.count[c] += d.count[c]
	for i := range d.money {
		m := &d.money[i]
		if m.v[c] == [2]int64{} {
			continue
		}
		sl := a.slot(m.cur)
		sl.v[c][metAmount] += m.v[c][metAmount]
		sl.v[c][metWeighted] += m.v[c][metWeighted]
	}
}

func (a *fcAcc) needs(to string, set map[string]struct{}) {
	for _, m := range a.money {
		if m.cur != to && m.v != [numCats][2]int64{} {
			set[m.cur] = struct{}{}
		}
	}
}

// buildForecast converts the sums and shapes the result.
func buildForecast(q ForecastQuery, g string, groups map[string]*fcAcc, total *fcAcc, rates Rates) (ForecastResult, error) {
	need := map[string]struct{}{}
	total.needs(q.Currency, need)
	for _, a := range groups {
		a.needs(q.Currency, need)
	}
	cv, err := newConverter(rates, q.Currency, sortedNeeds(need))
	if err != nil {
		return ForecastResult{}, err
	}
	res := ForecastResult{Currency: q.Currency, From: q.From.String(), To: q.To.String(), Groups: []ForecastGroup{}}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, err := cv.forecastFigures(groups[k])
		if err != nil {
			return ForecastResult{}, err
		}
		res.Groups = append(res.Groups, ForecastGroup{Key: k, ForecastFigures: f})
	}
	if res.Total, err = cv.forecastFigures(total); err != nil {
		return ForecastResult{}, err
	}
	return res, nil
}

// forecastFigures converts one group: per category and metric, each currency's sum once.
func (cv *converter) forecastFigures(a *fcAcc) (ForecastFigures, error) {
	var conv [numCats][2]int64
	for c := range numCats {
		for met := range 2 {
			for i := range a.money {
				v, err := cv.convert(a.money[i].cur, a.money[i].v[c][met])
				if err != nil {
					return ForecastFigures{}, err
				}
				if conv[c][met], err = addChecked(conv[c][met], v); err != nil {
					return ForecastFigures{}, err
				}
			}
		}
	}
	to := cv.to
	m := func(c int) Measure {
		return Measure{Count: a.count[c], Amount: domain.FormatAmount(conv[c][metAmount], to), Weighted: domain.FormatAmount(conv[c][metWeighted], to)}
	}
	rollup := func(cs ...int) (Measure, error) {
		var n, amt, wt int64
		var err error
		for _, c := range cs {
			n += a.count[c]
			if amt, err = addChecked(amt, conv[c][metAmount]); err != nil {
				return Measure{}, err
			}
			if wt, err = addChecked(wt, conv[c][metWeighted]); err != nil {
				return Measure{}, err
			}
		}
		return Measure{Count: n, Amount: domain.FormatAmount(amt, to), Weighted: domain.FormatAmount(wt, to)}, nil
	}
	f := ForecastFigures{
		Open: m(catOpen), Pipeline: m(catPipeline), BestCase: m(catBestCase), Commit: m(catCommit),
		ClosedWon: m(catClosedWon), ClosedLost: m(catClosedLost),
	}
	var err error
	if f.CommitForecast, err = rollup(catCommit, catClosedWon); err != nil {
		return ForecastFigures{}, err
	}
	if f.BestCaseForecast, err = rollup(catBestCase, catCommit, catClosedWon); err != nil {
		return ForecastFigures{}, err
	}
	return f, nil
}
