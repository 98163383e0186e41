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
	var total fcData
	groups := map[string]*fcData{}
	acc := func(k string) *fcData {
		a := groups[k]
		if a == nil {
			a = &fcData{}
			groups[k] = a
		}
		return a
	}
	s.mu.RLock()
	switch g {
	case GroupNone:
		s.fc.scan(q.PipelineID, q.OwnerID, q.From, q.To, func(_ *dayNode[fcData], r *rec[fcData]) { total.add(&r.d) })
	case GroupMonth, GroupQuarter:
		var last *dayNode[fcData]
		var a *fcData
		s.fc.scan(q.PipelineID, q.OwnerID, q.From, q.To, func(n *dayNode[fcData], r *rec[fcData]) {
			if n != last { // days come in order: one lookup per day, not per bucket
				last = n
				if g == GroupMonth {
					a = acc(n.month)
				} else {
					a = acc(n.quarter)
				}
			}
			a.add(&r.d)
		})
	case GroupOwner:
		byOwner := make([]*fcData, len(s.ownerNames))
		s.fc.scan(q.PipelineID, q.OwnerID, q.From, q.To, func(_ *dayNode[fcData], r *rec[fcData]) {
			a := byOwner[r.ownerIdx]
			if a == nil {
				a = acc(r.owner)
				byOwner[r.ownerIdx] = a
			}
			a.add(&r.d)
		})
	case GroupCategory:
		var cats [numCats]fcData
		s.fc.scan(q.PipelineID, q.OwnerID, q.From, q.To, func(_ *dayNode[fcData], r *rec[fcData]) {
			total.add(&r.d)
			for c := range numCats {
				if r.d.count[c] != 0 {
					cats[c].addCat(&r.d, c)
				}
			}
		})
		for c := range numCats {
			if cats[c].count[c] != 0 {
				groups[catNames[c]] = &cats[c]
			}
		}
	}
	s.mu.RUnlock()
	if g == GroupMonth || g == GroupQuarter || g == GroupOwner {
		// Integer sums: the total of the groups is exactly the total of the buckets.
		for _, a := range groups {
			total.add(a)
		}
	}
	return buildForecast(q, groups, &total, rates)
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

// add sums d into a (fcData doubles as the accumulator of a query).
func (a *fcData) add(d *fcData) {
	for c := range numCats {
		a.count[c] += d.count[c]
	}
	for i := 0; i < d.n; i++ {
		m := d.at(i)
		sl := a.slot(m.cur)
		for c := range numCats {
			sl.v[c][metAmount] += m.v[c][metAmount]
			sl.v[c][metWeighted] += m.v[c][metWeighted]
		}
	}
}

// addCat adds only category c of d (groupBy category).
func (a *fcData) addCat(d *fcData, c int) {
	a.count[c] += d.count[c]
	for i := 0; i < d.n; i++ {
		m := d.at(i)
		if m.v[c] == [2]int64{} {
			continue
		}
		sl := a.slot(m.cur)
		sl.v[c][metAmount] += m.v[c][metAmount]
		sl.v[c][metWeighted] += m.v[c][metWeighted]
	}
}

func (a *fcData) needs(to string, set map[string]struct{}) {
	for i := 0; i < a.n; i++ {
		if m := a.at(i); m.cur != to && m.v != [numCats][2]int64{} {
			set[m.cur] = struct{}{}
		}
	}
}

// buildForecast converts the sums and shapes the result.
func buildForecast(q ForecastQuery, groups map[string]*fcData, total *fcData, rates Rates) (ForecastResult, error) {
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
func (cv *converter) forecastFigures(a *fcData) (ForecastFigures, error) {
	var conv [numCats][2]int64
	for c := range numCats {
		for met := range 2 {
			for i := 0; i < a.n; i++ {
				m := a.at(i)
				v, err := cv.convert(m.cur, m.v[c][met])
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
