// Package analyticstest is test support for package analytics, not part of the product: Oracle,
// an independent recomputation of every analytics answer (forecast, win/loss, funnel, changes,
// velocity) from final states and event histories, which the property test of analytics and
// the system tests compare the bucket Store against. Like goka's tester and pebble's
// metamorphic packages, it lives beside the package it checks and never ships inside it; no
// product package imports it.
//
// Imports from this module: domain, analytics (the README's package table, checked by
// imports_test.go).
package analyticstest

import (
	"cmp"
	"fmt"
	"maps"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Oracle is the naive reference for every query of analytics.Store: it keeps the final state
// of each opportunity and the full event history, and answers each query by recomputing it
// from them directly, with no buckets, no deltas and its own arithmetic (big.Rat conversion
// and rounding, its own calendar keys, its own funnel classification). Only the validation of
// a query is the Store's own (the queries' Validate methods), so both refuse a bad query with
// the same *analytics.QueryError. Tests (the property test of package analytics and the
// system tests) compare the Store's answers with it as JSON (the system tests render the
// Oracle's answers with query.MarshalAnalytics, as the HTTP layer does), so every figure must
// agree to the minor unit.
//
// Feed it either with Observe (what the opportunity processor sees per command) or with
// ObserveEvent (the events topic alone: states are rebuilt with domain.Apply). Duplicated
// events (same opportunity and version) are ignored, so at-least-once input is fine. It is
// safe for concurrent use.
type Oracle struct {
	mu      sync.Mutex
	states  map[string]domain.Opportunity // final state per opportunity
	replay  map[string]domain.Opportunity // state rebuilt from the events seen
	entered map[string]time.Time          // when the current stay of each opportunity began
	history []oracleEvent
	err     error
}

// oracleEvent is one accepted event with the before and after values it changed.
type oracleEvent struct {
	typ                 domain.EventType
	day                 domain.Date
	pipeline, owner     string // after the event
	fromStage, toStage  string // stage before and after (from "" for a creation)
	stageMoved          bool
	stayMs              int64
	hasStay             bool
	amountBefore        int64
	amountAfter         int64
	currencyBefore      string
	currencyAfter       string
	closeBefore, closeA domain.Date
}

// NewOracle returns an empty Oracle.
func NewOracle() *Oracle {
	return &Oracle{states: map[string]domain.Opportunity{}, replay: map[string]domain.Opportunity{}, entered: map[string]time.Time{}}
}

// Observe records one accepted command: its events (each replayed on the Oracle's own copy of
// the opportunity) and next as the opportunity's latest state. prev is accepted for symmetry
// with analytics.Deltas and not used: the Oracle derives every before-value from its own
// replay.
func (o *Oracle) Observe(prev *domain.Opportunity, next domain.Opportunity, events []domain.Event) {
	_ = prev
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range events {
		_ = o.observeEvent(e)
	}
	if next.Version > 0 && next.Version >= o.states[next.ID].Version {
		o.states[next.ID] = next
	}
}

// ObserveEvent records one event from the events topic. Events of one opportunity must come in
// version order; a version already seen is skipped, and a gap is an error (also kept for Err).
func (o *Oracle) ObserveEvent(e domain.Event) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.observeEvent(e)
}

// Err returns the first error met while observing (an event that did not apply).
func (o *Oracle) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

func (o *Oracle) observeEvent(e domain.Event) error {
	before := o.replay[e.OpportunityID]
	if e.Version <= before.Version {
		return nil // a duplicate
	}
	after, err := domain.Apply(before, e)
	if err != nil {
		if o.err == nil {
			o.err = fmt.Errorf("oracle: %w", err)
		}
		return err
	}
	o.replay[e.OpportunityID] = after
	if after.Version > o.states[e.OpportunityID].Version {
		o.states[e.OpportunityID] = after
	}
	// A closing event counts on the day the deal closed, its close date after the event; every
	// other event on the UTC day it happened.
	day := domain.DateOf(e.At)
	if e.Type == domain.EvtClosedWon || e.Type == domain.EvtClosedLost {
		day = after.CloseDate
	}
	oe := oracleEvent{
		typ: e.Type, day: day, pipeline: after.PipelineID, owner: after.OwnerID,
		fromStage: before.StageID, toStage: after.StageID,
		amountBefore: before.Amount, amountAfter: after.Amount,
		currencyBefore: before.Currency, currencyAfter: after.Currency,
		closeBefore: before.CloseDate, closeA: after.CloseDate,
	}
	if e.Type == domain.EvtCreated {
		oe.fromStage = ""
		oe.stageMoved = true
		o.entered[e.OpportunityID] = e.At
	} else if before.StageID != after.StageID {
		oe.stageMoved = true
		if since, ok := o.entered[e.OpportunityID]; ok {
			oe.stayMs, oe.hasStay = e.At.UnixMilli()-since.UnixMilli(), true
		}
		o.entered[e.OpportunityID] = e.At
	}
	o.history = append(o.history, oe)
	return nil
}

// States returns the final states, sorted by id (for Stale and for tests).
func (o *Oracle) States() []domain.Opportunity {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]domain.Opportunity, 0, len(o.states))
	for _, s := range o.states {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b domain.Opportunity) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// EndedStays returns, per pipeline and stage left, the total length in milliseconds of the
// stays in a stage the history ended: the raw sums behind avgDaysInStage, which its one
// decimal rounds away (the property test of analytics compares them with the buckets').
func (o *Oracle) EndedStays() map[[2]string]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[[2]string]int64{}
	for _, e := range o.history {
		if e.hasStay {
			out[[2]string{e.pipeline, e.fromStage}] += e.stayMs
		}
	}
	return out
}

// --- money, the naive way -----------------------------------------------------------------

var oracleRateText = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// oracleMoney is a set of per-currency sums keyed by figure.
type oracleMoney map[string]map[string]int64 // figure -> currency -> minor units

func (m oracleMoney) add(fig, cur string, v int64) {
	if m[fig] == nil {
		m[fig] = map[string]int64{}
	}
	m[fig][cur] += v
}

// oracleConverter converts with big.Rat: sum / 10^exp(from) × rate(from) / rate(to) ×
// 10^exp(to), rounded by Rat.FloatString(0) (halves away from zero).
type oracleConverter struct {
	to    string
	rates map[string]*big.Rat
}

func newOracleConverter(rates analytics.Rates, to string, sets ...oracleMoney) (*oracleConverter, error) {
	need := map[string]bool{}
	for _, set := range sets {
		for _, byCur := range set {
			for cur, v := range byCur {
				if v != 0 && cur != to {
					need[cur] = true
				}
			}
		}
	}
	c := &oracleConverter{to: to, rates: map[string]*big.Rat{}}
	if len(need) == 0 {
		return c, nil
	}
	need[to] = true
	var curs []string
	for cur := range need {
		curs = append(curs, cur)
	}
	slices.Sort(curs)
	for _, cur := range curs {
		text, ok := "", false
		if rates != nil {
			text, ok = rates(cur)
		}
		var r *big.Rat
		if ok && oracleRateText.MatchString(text) && len(text) <= 60 {
			r, ok = new(big.Rat).SetString(text)
			ok = ok && r.Sign() > 0
		} else {
			ok = false
		}
		if !ok {
			return nil, &analytics.MissingRateError{Currency: cur}
		}
		c.rates[cur] = r
	}
	return c, nil
}

func oracleExp(cur string) int64 {
	e, ok := domain.CurrencyExponent(cur)
	if !ok {
		e = 2
	}
	return int64(e)
}

func (c *oracleConverter) convert(cur string, sum int64) int64 {
	if sum == 0 || cur == c.to {
		return sum
	}
	ten := big.NewInt(10)
	r := new(big.Rat).SetFrac(big.NewInt(sum), new(big.Int).Exp(ten, big.NewInt(oracleExp(cur)), nil))
	r.Mul(r, c.rates[cur])
	r.Quo(r, c.rates[c.to])
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(ten, big.NewInt(oracleExp(c.to)), nil)))
	n, err := strconv.ParseInt(r.FloatString(0), 10, 64)
	if err != nil {
		panic(fmt.Sprintf("oracle: converted figure %s out of range", r.FloatString(0)))
	}
	return n
}

// total converts every currency of one figure once and adds them.
func (c *oracleConverter) total(byCur map[string]int64) int64 {
	var t int64
	for cur, v := range byCur {
		t += c.convert(cur, v)
	}
	return t
}

func (c *oracleConverter) format(v int64) string { return domain.FormatAmount(v, c.to) }

// oracleRatio formats num/den with the given decimals via Rat.FloatString; den 0 is zero.
func oracleRatio(num, den *big.Rat, decimals int) string {
	zero := new(big.Rat).SetInt64(0).FloatString(decimals)
	if den.Sign() == 0 || num.Sign() == 0 {
		return zero
	}
	s := new(big.Rat).Quo(num, den).FloatString(decimals)
	if s == "-"+zero {
		return zero
	}
	return s
}

func ratInt(v int64) *big.Rat { return new(big.Rat).SetInt64(v) }

// --- queries --------------------------------------------------------------------------------

func oracleMonth(d domain.Date) string { return d.String()[:7] }

func oracleQuarter(d domain.Date) string {
	s := d.String()
	m, _ := strconv.Atoi(s[5:7])
	return s[:4] + "-Q" + strconv.Itoa((m-1)/3+1)
}

func (o *Oracle) selected(pipeline, owner string) []domain.Opportunity {
	var out []domain.Opportunity
	for _, s := range o.states {
		if s.Version > 0 && (pipeline == "" || s.PipelineID == pipeline) && (owner == "" || s.OwnerID == owner) {
			out = append(out, s)
		}
	}
	return out
}

// Forecast recomputes the forecast from the final states (see analytics.Store.Forecast).
func (o *Oracle) Forecast(q analytics.ForecastQuery, rates analytics.Rates) (analytics.ForecastResult, error) {
	if err := q.Validate(); err != nil {
		return analytics.ForecastResult{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	type acc struct {
		count map[string]int64
		money oracleMoney // "<cat>/amount" | "<cat>/weighted"
	}
	newAcc := func() *acc { return &acc{count: map[string]int64{}, money: oracleMoney{}} }
	groups := map[string]*acc{}
	total := newAcc()
	for _, s := range o.selected(q.PipelineID, q.OwnerID) {
		if s.CloseDate < q.From || s.CloseDate > q.To {
			continue
		}
		var cats []string
		switch s.Status {
		case domain.StatusOpen:
			cats = append(cats, "open")
			switch s.ForecastCategory {
			case domain.CategoryPipeline:
				cats = append(cats, "pipeline")
			case domain.CategoryBestCase:
				cats = append(cats, "bestCase")
			case domain.CategoryCommit:
				cats = append(cats, "commit")
			}
		case domain.StatusWon:
			cats = append(cats, "closedWon")
		case domain.StatusLost:
			cats = append(cats, "closedLost")
		}
		weighted := domain.WeightedAmount(s.Amount, s.Probability)
		put := func(a *acc, c string) {
			a.count[c]++
			a.money.add(c+"/amount", s.Currency, s.Amount)
			a.money.add(c+"/weighted", s.Currency, weighted)
		}
		for _, c := range cats {
			put(total, c)
			var key string
			switch q.GroupBy { // valid: "" and none mean no groups
			case analytics.GroupMonth:
				key = oracleMonth(s.CloseDate)
			case analytics.GroupQuarter:
				key = oracleQuarter(s.CloseDate)
			case analytics.GroupOwner:
				key = s.OwnerID
			case analytics.GroupCategory:
				key = c
			case analytics.GroupStage: // the open deals by their stage, open figures only
				if c != "open" {
					continue
				}
				key = s.StageID
			default:
				continue
			}
			if groups[key] == nil {
				groups[key] = newAcc()
			}
			put(groups[key], c)
		}
	}
	sets := []oracleMoney{total.money}
	for _, a := range groups {
		sets = append(sets, a.money)
	}
	cv, err := newOracleConverter(rates, q.Currency, sets...)
	if err != nil {
		return analytics.ForecastResult{}, err
	}
	figures := func(a *acc) analytics.ForecastFigures {
		m := func(cs ...string) analytics.Measure {
			var n, amt, wt int64
			for _, c := range cs {
				n += a.count[c]
				amt += cv.total(a.money[c+"/amount"])
				wt += cv.total(a.money[c+"/weighted"])
			}
			return analytics.Measure{Count: n, Amount: cv.format(amt), Weighted: cv.format(wt)}
		}
		return analytics.ForecastFigures{
			Open: m("open"), Pipeline: m("pipeline"), BestCase: m("bestCase"), Commit: m("commit"),
			ClosedWon: m("closedWon"), ClosedLost: m("closedLost"),
			CommitForecast: m("commit", "closedWon"), BestCaseForecast: m("bestCase", "commit", "closedWon"),
		}
	}
	res := analytics.ForecastResult{Currency: q.Currency, From: q.From.String(), To: q.To.String(), Groups: []analytics.ForecastGroup{}, Total: figures(total)}
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		res.Groups = append(res.Groups, analytics.ForecastGroup{Key: k, ForecastFigures: figures(groups[k])})
	}
	return res, nil
}

// oracleWL sums closed deals for win/loss.
type oracleWL struct {
	won, lost, cycleDays int64
	money                oracleMoney // "won", "lost", "reason/<r>", "competitor/<c>"
	reasons              map[string]int64
	competitors          map[string]int64
}

func newOracleWL() *oracleWL {
	return &oracleWL{money: oracleMoney{}, reasons: map[string]int64{}, competitors: map[string]int64{}}
}

func (a *oracleWL) put(s domain.Opportunity, wonSide, lostSide bool) {
	if s.Status == domain.StatusWon && wonSide {
		a.won++
		a.money.add("won", s.Currency, s.Amount)
		a.cycleDays += oracleCycleDays(s)
	}
	if s.Status == domain.StatusLost && lostSide {
		a.lost++
		a.money.add("lost", s.Currency, s.Amount)
		a.reasons[s.LossReason]++
		a.money.add("reason/"+s.LossReason, s.Currency, s.Amount)
		if s.Competitor != "" {
			a.competitors[s.Competitor]++
			a.money.add("competitor/"+s.Competitor, s.Currency, s.Amount)
		}
	}
}

// oracleCycleDays counts the calendar days from the creation day to the close date, both
// included, with the time package: the days between the two midnights (UTC) plus one, and
// never less than one.
func oracleCycleDays(s domain.Opportunity) int64 {
	created := s.CreatedAt.UTC()
	start := time.Date(created.Year(), created.Month(), created.Day(), 0, 0, 0, 0, time.UTC)
	end, err := time.Parse(time.DateOnly, s.CloseDate.String())
	if err != nil {
		panic(fmt.Sprintf("oracle: close date %s: %v", s.CloseDate, err))
	}
	days := int64(end.Sub(start)/(24*time.Hour)) + 1
	if days < 1 {
		return 1
	}
	return days
}

func (a *oracleWL) figures(cv *oracleConverter) analytics.WinLossFigures {
	won, lost := cv.total(a.money["won"]), cv.total(a.money["lost"])
	avg := "0"
	if a.won > 0 {
		avg = new(big.Rat).SetFrac64(won, a.won).FloatString(0)
	}
	avgMinor, _ := strconv.ParseInt(avg, 10, 64)
	return analytics.WinLossFigures{
		Won:             analytics.CountAmount{Count: a.won, Amount: cv.format(won)},
		Lost:            analytics.CountAmount{Count: a.lost, Amount: cv.format(lost)},
		WinRateByCount:  oracleRatio(ratInt(a.won), ratInt(a.won+a.lost), 6),
		WinRateByAmount: oracleRatio(ratInt(won), ratInt(won+lost), 6),
		AvgDealSizeWon:  cv.format(avgMinor),
		AvgCycleDaysWon: oracleRatio(ratInt(a.cycleDays), ratInt(a.won), 1),
	}
}

// WinLoss recomputes win/loss from the final states (see analytics.Store.WinLoss).
func (o *Oracle) WinLoss(q analytics.WinLossQuery, rates analytics.Rates) (analytics.WinLossResult, error) {
	if err := q.Validate(); err != nil {
		return analytics.WinLossResult{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	total := newOracleWL()
	groups := map[string]*oracleWL{}
	for _, s := range o.selected(q.PipelineID, q.OwnerID) {
		if s.Status == domain.StatusOpen {
			continue
		}
		day := s.CloseDate // a closed deal's one date
		if day < q.From || day > q.To {
			continue
		}
		total.put(s, true, true)
		var key string
		wonSide := true
		switch q.GroupBy { // valid: "" and none mean no groups
		case analytics.GroupOwner:
			key = s.OwnerID
		case analytics.GroupMonth:
			key = oracleMonth(day)
		case analytics.GroupReason:
			if s.Status != domain.StatusLost {
				continue
			}
			key, wonSide = s.LossReason, false
		default:
			continue
		}
		if groups[key] == nil {
			groups[key] = newOracleWL()
		}
		groups[key].put(s, wonSide, true)
	}
	sets := []oracleMoney{total.money}
	for _, a := range groups {
		sets = append(sets, oracleMoney{"won": a.money["won"], "lost": a.money["lost"]})
	}
	cv, err := newOracleConverter(rates, q.Currency, sets...)
	if err != nil {
		return analytics.WinLossResult{}, err
	}
	res := analytics.WinLossResult{Currency: q.Currency, From: q.From.String(), To: q.To.String(), WinLossFigures: total.figures(cv),
		LossReasons: []analytics.ReasonFigure{}, Competitors: []analytics.CompetitorFigure{}, Groups: []analytics.WinLossGroup{}}
	for _, r := range byCountThenName(total.reasons) {
		res.LossReasons = append(res.LossReasons, analytics.ReasonFigure{Reason: r, Count: total.reasons[r], Amount: cv.format(cv.total(total.money["reason/"+r]))})
	}
	for _, c := range byCountThenName(total.competitors) {
		res.Competitors = append(res.Competitors, analytics.CompetitorFigure{Competitor: c, Count: total.competitors[c], Amount: cv.format(cv.total(total.money["competitor/"+c]))})
	}
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		res.Groups = append(res.Groups, analytics.WinLossGroup{Key: k, WinLossFigures: groups[k].figures(cv)})
	}
	return res, nil
}

func byCountThenName(m map[string]int64) []string {
	keys := slices.Sorted(maps.Keys(m))
	slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(m[b], m[a]) })
	return keys
}

// Funnel recomputes the funnel from the event history (see analytics.Store.Funnel).
func (o *Oracle) Funnel(q analytics.FunnelQuery, p domain.Pipeline) (analytics.FunnelResult, error) {
	if err := q.Validate(p); err != nil {
		return analytics.FunnelResult{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	rows := make([]analytics.FunnelStage, len(p.Stages))
	index := func(id string) int {
		for i, s := range p.Stages {
			if s.ID == id {
				return i
			}
		}
		return -1
	}
	var stayMs = make([]int64, len(p.Stages))
	for i, s := range p.Stages {
		rows[i] = analytics.FunnelStage{StageID: s.ID, StageName: s.Name, Status: string(s.Status)}
	}
	for _, e := range o.history {
		if e.pipeline != p.ID || e.day < q.From || e.day > q.To || (q.OwnerID != "" && e.owner != q.OwnerID) || !e.stageMoved {
			continue
		}
		if e.hasStay {
			if fi := index(e.fromStage); fi >= 0 {
				rows[fi].StaysEnded++
				stayMs[fi] += e.stayMs
			}
		}
		ti := index(e.toStage)
		if ti < 0 {
			continue
		}
		rows[ti].Entered++
		fi := index(e.fromStage)
		if fi < 0 {
			continue
		}
		from, to := p.Stages[fi], p.Stages[ti]
		switch {
		case from.Status == domain.StatusWon || from.Status == domain.StatusLost:
			rows[fi].Reopened++
		case to.Status == domain.StatusWon:
			rows[fi].Won++
		case to.Status == domain.StatusLost:
			rows[fi].Lost++
		case ti > fi:
			rows[fi].Advanced++
		case ti < fi:
			rows[fi].Regressed++
		}
	}
	for i := range rows {
		r := &rows[i]
		r.ConversionRate = oracleRatio(ratInt(r.Advanced+r.Won), ratInt(r.Entered), 6)
		r.AvgDaysInStage = oracleRatio(ratInt(stayMs[i]), ratInt(r.StaysEnded*86_400_000), 1)
	}
	return analytics.FunnelResult{PipelineID: p.ID, From: q.From.String(), To: q.To.String(), Stages: rows}, nil
}

// Changes recomputes the pipeline changes from the event history (see analytics.Store.Changes).
func (o *Oracle) Changes(q analytics.ChangesQuery, rates analytics.Rates) (analytics.ChangesResult, error) {
	if err := q.Validate(); err != nil {
		return analytics.ChangesResult{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	counts := map[string]int64{}
	money := oracleMoney{}
	for _, e := range o.history {
		if e.day < q.From || e.day > q.To || (q.PipelineID != "" && e.pipeline != q.PipelineID) || (q.OwnerID != "" && e.owner != q.OwnerID) {
			continue
		}
		count := func(what string, cur string, amount int64) {
			counts[what]++
			money.add(what, cur, amount)
		}
		switch e.typ {
		case domain.EvtCreated:
			count("created", e.currencyAfter, e.amountAfter)
			continue
		case domain.EvtClosedWon:
			count("won", e.currencyAfter, e.amountAfter)
		case domain.EvtClosedLost:
			count("lost", e.currencyAfter, e.amountAfter)
		case domain.EvtReopened:
			count("reopened", e.currencyAfter, e.amountAfter)
		}
		if e.closeA > e.closeBefore {
			count("pushed", e.currencyAfter, e.amountAfter)
		} else if e.closeA < e.closeBefore {
			count("pulled", e.currencyAfter, e.amountAfter)
		}
		switch {
		case e.currencyAfter != e.currencyBefore:
			counts["currencyChanged"]++
		case e.amountAfter > e.amountBefore:
			count("increased", e.currencyAfter, e.amountAfter-e.amountBefore)
		case e.amountAfter < e.amountBefore:
			count("decreased", e.currencyAfter, e.amountBefore-e.amountAfter)
		}
	}
	cv, err := newOracleConverter(rates, q.Currency, money)
	if err != nil {
		return analytics.ChangesResult{}, err
	}
	f := func(what string) analytics.CountAmount {
		return analytics.CountAmount{Count: counts[what], Amount: cv.format(cv.total(money[what]))}
	}
	return analytics.ChangesResult{
		Currency: q.Currency, From: q.From.String(), To: q.To.String(),
		Created: f("created"), Won: f("won"), Lost: f("lost"), Reopened: f("reopened"),
		CloseDatePushed: f("pushed"), CloseDatePulled: f("pulled"),
		AmountIncreased: f("increased"), AmountDecreased: f("decreased"),
		CurrencyChanged: analytics.CountOnly{Count: counts["currencyChanged"]},
	}, nil
}

// Velocity recomputes sales velocity from the final states, literally as open count × win rate
// × average won deal size / average cycle days in exact fractions (see
// analytics.Store.Velocity).
func (o *Oracle) Velocity(q analytics.VelocityQuery, rates analytics.Rates) (analytics.VelocityResult, error) {
	if err := q.Validate(); err != nil {
		return analytics.VelocityResult{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var open int64
	wl := newOracleWL()
	for _, s := range o.selected(q.PipelineID, q.OwnerID) {
		if s.Status == domain.StatusOpen {
			open++
			continue
		}
		if s.CloseDate >= q.From && s.CloseDate <= q.To {
			wl.put(s, true, true)
		}
	}
	cv, err := newOracleConverter(rates, q.Currency, oracleMoney{"won": wl.money["won"]})
	if err != nil {
		return analytics.VelocityResult{}, err
	}
	wonAmt := cv.total(wl.money["won"])
	velocity := int64(0)
	if wl.won > 0 && wl.cycleDays != 0 {
		winRate := new(big.Rat).SetFrac64(wl.won, wl.won+wl.lost)
		avgDeal := new(big.Rat).SetFrac64(wonAmt, wl.won)
		avgCycle := new(big.Rat).SetFrac64(wl.cycleDays, wl.won)
		v := new(big.Rat).Mul(ratInt(open), winRate)
		v.Mul(v, avgDeal)
		v.Quo(v, avgCycle)
		velocity, _ = strconv.ParseInt(v.FloatString(0), 10, 64)
	}
	avg := int64(0)
	if wl.won > 0 {
		avg, _ = strconv.ParseInt(new(big.Rat).SetFrac64(wonAmt, wl.won).FloatString(0), 10, 64)
	}
	return analytics.VelocityResult{
		Currency: q.Currency, From: q.From.String(), To: q.To.String(),
		OpenCount: open, WonCount: wl.won, LostCount: wl.lost,
		WinRate:         oracleRatio(ratInt(wl.won), ratInt(wl.won+wl.lost), 6),
		WonAmount:       cv.format(wonAmt),
		AvgDealSizeWon:  cv.format(avg),
		AvgCycleDaysWon: oracleRatio(ratInt(wl.cycleDays), ratInt(wl.won), 1),
		VelocityPerDay:  cv.format(velocity),
	}, nil
}
