package analytics

import (
	"math"
	"math/big"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Changes answers "what happened to the pipeline" for events on days in [q.From, q.To] (see
// ChangesResult for the definitions). Errors as for Forecast.
func (s *Store) Changes(q ChangesQuery, rates Rates) (ChangesResult, error) {
	if err := q.Validate(); err != nil {
		return ChangesResult{}, err
	}
	var counts [numChg]int64
	var money [numChg]moneySum
	var currencyChanged int64
	s.mu.RLock()
	s.ev.scan(q.PipelineID, s.ownerSel(q.OwnerID), q.From, q.To, func(_ *dayNode[evData], r *rec[evData]) {
		d := &r.d
		for c := range numChg {
			counts[c] += d.chg[c]
		}
		for _, m := range d.chgMoney {
			for c := range numChg {
				money[c].add(m.cur, m.v[c])
			}
		}
		currencyChanged += d.currencyChanged
	})
	s.mu.RUnlock()
	return buildChanges(q, counts, money, currencyChanged, rates)
}

// buildChanges converts the per-currency sums (each once) and shapes the result; the oracle of
// analyticstest computes its sums independently and converts with its own arithmetic.
func buildChanges(q ChangesQuery, counts [numChg]int64, money [numChg]moneySum, currencyChanged int64, rates Rates) (ChangesResult, error) {
	need := map[string]struct{}{}
	for c := range numChg {
		money[c].needs(q.Currency, need)
	}
	cv, err := newConverter(rates, q.Currency, sortedNeeds(need))
	if err != nil {
		return ChangesResult{}, err
	}
	var figs [numChg]CountAmount
	for c := range numChg {
		v, err := cv.figure(money[c])
		if err != nil {
			return ChangesResult{}, err
		}
		figs[c] = CountAmount{Count: counts[c], Amount: domain.FormatAmount(v, q.Currency)}
	}
	return ChangesResult{
		Currency: q.Currency, From: q.From.String(), To: q.To.String(),
		Created: figs[chgCreated], Won: figs[chgWon], Lost: figs[chgLost], Reopened: figs[chgReopened],
		CloseDatePushed: figs[chgPushed], CloseDatePulled: figs[chgPulled],
		AmountIncreased: figs[chgIncreased], AmountDecreased: figs[chgDecreased],
		CurrencyChanged: CountOnly{Count: currencyChanged},
	}, nil
}

// Velocity answers the sales-velocity query (see VelocityResult): open deals now, from the
// forecast buckets of every close date, and the win/loss parts from the win/loss buckets of
// close dates in [q.From, q.To]. Errors as for Forecast.
func (s *Store) Velocity(q VelocityQuery, rates Rates) (VelocityResult, error) {
	if err := q.Validate(); err != nil {
		return VelocityResult{}, err
	}
	var open int64
	wl := newWLAcc(false)
	s.mu.RLock()
	s.fc.scan(q.PipelineID, s.ownerSel(q.OwnerID), math.MinInt32, math.MaxInt32, func(_ *dayNode[fcData], r *rec[fcData]) {
		open += r.d.count[catOpen]
	})
	s.wl.scan(q.PipelineID, s.ownerSel(q.OwnerID), q.From, q.To, func(_ *dayNode[wlData], r *rec[wlData]) {
		wl.add(&r.d)
	})
	s.mu.RUnlock()
	return buildVelocity(q, open, wl.won, wl.lost, wl.cycleDays, wl.wonMoney, rates)
}

// buildVelocity converts the won amount and computes velocity exactly, rounding once.
func buildVelocity(q VelocityQuery, open, won, lost, cycleDays int64, wonMoney moneySum, rates Rates) (VelocityResult, error) {
	need := map[string]struct{}{}
	wonMoney.needs(q.Currency, need)
	cv, err := newConverter(rates, q.Currency, sortedNeeds(need))
	if err != nil {
		return VelocityResult{}, err
	}
	wonAmt, err := cv.figure(wonMoney)
	if err != nil {
		return VelocityResult{}, err
	}
	var velocity int64
	if won > 0 && cycleDays != 0 {
		// open × (won/(won+lost)) × (wonAmt/won) / (cycleDays/won)
		num := new(big.Int).Mul(big.NewInt(open), big.NewInt(wonAmt))
		num.Mul(num, big.NewInt(won))
		den := new(big.Int).Mul(big.NewInt(won+lost), big.NewInt(cycleDays))
		if velocity, err = roundQuo(num, den); err != nil {
			return VelocityResult{}, err
		}
	}
	return VelocityResult{
		Currency: q.Currency, From: q.From.String(), To: q.To.String(),
		OpenCount: open, WonCount: won, LostCount: lost,
		WinRate:         ratio(won, won+lost, rateDecimals),
		WonAmount:       domain.FormatAmount(wonAmt, q.Currency),
		AvgDealSizeWon:  domain.FormatAmount(roundDiv(wonAmt, won), q.Currency),
		AvgCycleDaysWon: ratio(cycleDays, won, daysDecimals),
		VelocityPerDay:  domain.FormatAmount(velocity, q.Currency),
	}, nil
}

// roundQuo is num/den rounded half away from zero, as int64.
func roundQuo(num, den *big.Int) (int64, error) {
	neg := (num.Sign() < 0) != (den.Sign() < 0)
	n := new(big.Int).Abs(num)
	d := new(big.Int).Abs(den)
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	if r.Lsh(r, 1).Cmp(d) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, ErrOverflow
	}
	if neg {
		return -q.Int64(), nil
	}
	return q.Int64(), nil
}
