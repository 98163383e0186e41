package analytics

import (
	"maps"
	"slices"
	"strings"

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
	var list []fcGroup // groupBy owner
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
	owner := s.ownerSel(q.OwnerID)
	switch g {
	case GroupNone:
		s.fc.scan(q.PipelineID, owner, q.From, q.To, func(_ *dayNode[fcData], r *rec[fcData]) { total.add(&r.d) })
	case GroupMonth, GroupQuarter:
		var last *dayNode[fcData]
		var a *fcData
		s.fc.scan(q.PipelineID, owner, q.From, q.To, func(n *dayNode[fcData], r *rec[fcData]) {
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
		// One accumulator per interned owner, in one allocation: no map, no lookup by name.
		byOwner := make([]fcData, len(s.ownerNames))
		hit := make([]bool, len(s.ownerNames))
		s.fc.scan(q.PipelineID, owner, q.From, q.To, func(_ *dayNode[fcData], r *rec[fcData]) {
			byOwner[r.ownerIdx].add(&r.d)
			hit[r.ownerIdx] = true
		})
		for i := range byOwner {
			if hit[i] {
				list = append(list, fcGroup{key: s.ownerName(int32(i)), d: &byOwner[i]})
			}
		}
	case GroupCategory:
		var cats [numCats]fcData
		s.fc.scan(q.PipelineID, owner, q.From, q.To, func(_ *dayNode[fcData], r *rec[fcData]) {
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
	case GroupStage:
		s.fc.scan(q.PipelineID, owner, q.From, q.To, func(_ *dayNode[fcData], r *rec[fcData]) {
			total.add(&r.d)
			for i := range r.d.stages {
				acc(r.d.stages[i].id).addStage(&r.d.stages[i])
			}
		})
		maps.DeleteFunc(groups, func(_ string, a *fcData) bool { return a.count[catOpen] == 0 })
	}
	s.mu.RUnlock()
	for k, a := range groups {
		list = append(list, fcGroup{key: k, d: a})
	}
	slices.SortFunc(list, func(a, b fcGroup) int { return strings.Compare(a.key, b.key) })
	if g == GroupMonth || g == GroupQuarter || g == GroupOwner {
		// Integer sums: the total of the groups is exactly the total of the buckets.
		for _, gr := range list {
			total.add(gr.d)
		}
	}
	return buildForecast(q, list, &total, rates)
}

// fcGroup is one group of a forecast answer.
type fcGroup struct {
	key string
	d   *fcData
}

// checkForecastQuery validates a forecast query and returns its normalised groupBy.
func checkForecastQuery(q ForecastQuery) (string, error) {
	if err := checkPeriod(q.From, q.To); err != nil {
		return "", err
	}
	if err := checkCurrency(q.Currency); err != nil {
		return "", err
	}
	return checkGroupBy(q.GroupBy, GroupNone, GroupMonth, GroupQuarter, GroupOwner, GroupCategory, GroupStage)
}

// addStage adds the open deals of one stage of a bucket as open figures (groupBy stage).
func (a *fcData) addStage(st *fcStage) {
	a.count[catOpen] += st.count
	for _, m := range st.money {
		sl := a.slot(m.cur)
		sl.v[catOpen][metAmount] += m.v[metAmount]
		sl.v[catOpen][metWeighted] += m.v[metWeighted]
	}
}

// add sums d into a (fcData doubles as the accumulator of a query); d's stages are not
// added (an accumulator has none: groupBy stage uses addStage).
func (a *fcData) add(d *fcData) {
	for c := range numCats {
		a.count[c] += d.count[c]
	}
	if d.first.cur == 0 {
		return
	}
	a.slot(d.first.cur).addAll(&d.first)
	for i := range d.more {
		a.slot(d.more[i].cur).addAll(&d.more[i])
	}
}

// addAll adds every category of m.
func (sl *fcMoney) addAll(m *fcMoney) {
	for c := range numCats {
		sl.v[c][metAmount] += m.v[c][metAmount]
		sl.v[c][metWeighted] += m.v[c][metWeighted]
	}
}

// addCat adds only category c of d (groupBy category).
func (a *fcData) addCat(d *fcData, c int) {
	a.count[c] += d.count[c]
	d.each(func(m *fcMoney) {
		if m.v[c] == [2]int64{} {
			return
		}
		sl := a.slot(m.cur)
		sl.v[c][metAmount] += m.v[c][metAmount]
		sl.v[c][metWeighted] += m.v[c][metWeighted]
	})
}

// needs adds the currencies other than to with a non-zero figure to set.
func (a *fcData) needs(to curID, set map[curID]struct{}) {
	a.each(func(m *fcMoney) {
		if m.cur != to && m.v != [numCats][2]int64{} {
			set[m.cur] = struct{}{}
		}
	})
}

// buildForecast converts the sums and shapes the result; groups are sorted by key.
func buildForecast(q ForecastQuery, groups []fcGroup, total *fcData, rates Rates) (ForecastResult, error) {
	to, _ := curIDOf(q.Currency) // checked: a known ISO 4217 code
	needIDs := map[curID]struct{}{}
	total.needs(to, needIDs)
	for _, gr := range groups {
		gr.d.needs(to, needIDs)
	}
	need := make([]string, 0, len(needIDs))
	for id := range needIDs {
		need = append(need, id.String())
	}
	slices.Sort(need)
	cv, err := newConverter(rates, q.Currency, need)
	if err != nil {
		return ForecastResult{}, err
	}
	res := ForecastResult{Currency: q.Currency, From: q.From.String(), To: q.To.String(), Groups: make([]ForecastGroup, 0, len(groups))}
	var buf []byte
	for _, gr := range groups {
		var f ForecastFigures
		if f, buf, err = cv.forecastFigures(gr.d, buf); err != nil {
			return ForecastResult{}, err
		}
		res.Groups = append(res.Groups, ForecastGroup{Key: gr.key, ForecastFigures: f})
	}
	if res.Total, _, err = cv.forecastFigures(total, buf); err != nil {
		return ForecastResult{}, err
	}
	return res, nil
}

// forecastFigures converts one group: per category and metric, each currency's sum once. Its
// 16 amounts are formatted into buf (returned for reuse) and share one string allocation.
func (cv *converter) forecastFigures(a *fcData, buf []byte) (ForecastFigures, []byte, error) {
	var conv [numCats][2]int64
	var err error
	a.each(func(m *fcMoney) {
		for c := range numCats {
			for met := range 2 {
				if err != nil {
					return
				}
				var v int64
				if v, err = cv.convertID(m.cur, m.v[c][met]); err != nil {
					return
				}
				conv[c][met], err = addChecked(conv[c][met], v)
			}
		}
	})
	if err != nil {
		return ForecastFigures{}, buf, err
	}
	// The figures in ForecastFigures order: six categories, then the two rollups.
	var counts [numCats + 2]int64
	var money [numCats + 2][2]int64
	for c := range numCats {
		counts[c] = a.count[c]
		money[c] = conv[c]
	}
	for i, cs := range [2][]int{{catCommit, catClosedWon}, {catBestCase, catCommit, catClosedWon}} {
		r := numCats + i
		for _, c := range cs {
			counts[r] += a.count[c]
			for met := range 2 {
				if money[r][met], err = addChecked(money[r][met], conv[c][met]); err != nil {
					return ForecastFigures{}, buf, err
				}
			}
		}
	}
	var ends [numCats + 2][2]int
	buf = buf[:0]
	for i := range money {
		for met := range 2 {
			buf = domain.AppendAmount(buf, money[i][met], cv.to)
			ends[i][met] = len(buf)
		}
	}
	text := string(buf)
	var ms [numCats + 2]Measure
	start := 0
	for i := range ms {
		ms[i] = Measure{Count: counts[i], Amount: text[start:ends[i][metAmount]], Weighted: text[ends[i][metAmount]:ends[i][metWeighted]]}
		start = ends[i][metWeighted]
	}
	return ForecastFigures{
		Open: ms[catOpen], Pipeline: ms[catPipeline], BestCase: ms[catBestCase], Commit: ms[catCommit],
		ClosedWon: ms[catClosedWon], ClosedLost: ms[catClosedLost],
		CommitForecast: ms[numCats], BestCaseForecast: ms[numCats+1],
	}, buf, nil
}
