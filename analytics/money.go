package analytics

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Rates gives the rate of a currency: units of the reporting currency for one unit, as exact
// decimal text (the reporting currency itself is 1 even without an entry; MapRates does that).
// A rate must be a plain positive decimal ("1.08", "0.0067"); anything else counts as missing,
// so a typo in the FX table is a 422 naming the currency, never a silent mix.
type Rates func(currency string) (rate string, ok bool)

// MapRates returns Rates over a fixed table, answering "1" for the reporting currency when
// the table has no entry for it. The query service can wrap its FX view the same way.
func MapRates(reporting string, table map[string]string) Rates {
	return func(c string) (string, bool) {
		if c == reporting {
			// Fixed: a stored rate for the reporting currency (one a version that took it
			// wrote) would scale every converted figure.
			return "1", true
		}
		r, ok := table[c]
		return r, ok
	}
}

// MissingRateError is returned when a figure must be converted from or to a currency without
// a usable rate. The HTTP layer answers 422 naming the currency. Which currency is named is
// deterministic: the query collects every currency other than the target with a non-zero sum
// anywhere in the result, adds the target when that set is not empty, and reports the first one
// in code order whose rate is missing or not a positive decimal. A currency whose figures are
// all zero needs no rate.
type MissingRateError struct{ Currency string }

// Error names the currency, for problem details and logs.
func (e *MissingRateError) Error() string {
	return fmt.Sprintf("no usable FX rate for %s: figures in %s cannot be converted", e.Currency, e.Currency)
}

// QueryError is a query parameter the Store cannot answer (bad period, unknown currency or
// groupBy, mismatched pipeline). The HTTP layer answers 400 (or 422) naming Field.
type QueryError struct {
	Field   string // the query parameter, by its API.md name
	Message string
}

// Error renders the field and the message.
func (e *QueryError) Error() string { return e.Field + ": " + e.Message }

// ErrOverflow reports a converted figure that does not fit int64 minor units of the target
// currency; with amounts capped at domain.MaxAmountMinor it needs thousands of maximal deals.
var ErrOverflow = errors.New("analytics: converted figure exceeds the int64 range of minor units")

// parseRate reads a plain positive decimal ("1", "1.08", "0.0067") as an exact fraction
// num/den (den a power of ten). It refuses signs, exponents, fractions and zero.
func parseRate(s string) (num, den *big.Int, ok bool) {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") || len(s) > 60 {
		return nil, nil, false
	}
	digits := intPart + frac
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return nil, nil, false
		}
	}
	num, _ = new(big.Int).SetString(digits, 10)
	if num.Sign() <= 0 {
		return nil, nil, false
	}
	return num, pow10(len(frac)), true
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// factor is the exact multiplier from minor units of one currency to minor units of the
// target: rate(from) × 10^exp(to) / (rate(to) × 10^exp(from)), reduced. Small factors (the
// usual case) take a 128-bit integer path with no allocation.
type factor struct {
	n, d   uint64
	small  bool
	bn, bd *big.Int
}

// converter converts per-currency sums to the target currency, each sum once, rounding half
// away from zero to the target's minor unit.
type converter struct {
	to      string
	toID    curID
	factors map[string]factor
	// The factors again by curID, for forecast money: a handful of currencies, so a linear
	// search beats hashing a string.
	ids  []curID
	byID []factor
}

// newConverter resolves the rates of every currency in need (the currencies other than to
// with a non-zero sum somewhere in the result) and of the target, failing on the first missing
// one in code order (see MissingRateError).
func newConverter(rates Rates, to string, need []string) (*converter, error) {
	c := &converter{to: to, factors: make(map[string]factor, len(need))}
	c.toID, _ = curIDOf(to)
	if len(need) == 0 {
		return c, nil
	}
	check := append(slices.Clone(need), to)
	slices.Sort(check)
	check = slices.Compact(check)
	type frac struct{ n, d *big.Int }
	parsed := make(map[string]frac, len(check))
	for _, cur := range check {
		var text string
		ok := rates != nil
		if ok {
			text, ok = rates(cur)
		}
		var n, d *big.Int
		if ok {
			n, d, ok = parseRate(text)
		}
		if !ok {
			return nil, &MissingRateError{Currency: cur}
		}
		parsed[cur] = frac{n, d}
	}
	toExp := exponent(to)
	rt := parsed[to]
	for _, cur := range need {
		rf := parsed[cur]
		// (rf.n/rf.d) / (rt.n/rt.d) × 10^toExp / 10^fromExp
		num := new(big.Int).Mul(rf.n, rt.d)
		den := new(big.Int).Mul(rf.d, rt.n)
		if e := toExp - exponent(cur); e >= 0 {
			num.Mul(num, pow10(e))
		} else {
			den.Mul(den, pow10(-e))
		}
		g := new(big.Int).GCD(nil, nil, num, den)
		num.Quo(num, g)
		den.Quo(den, g)
		f := factor{bn: num, bd: den}
		if num.IsUint64() && den.IsUint64() {
			f.n, f.d, f.small = num.Uint64(), den.Uint64(), true
		}
		c.factors[cur] = f
		if id, ok := curIDOf(cur); ok {
			c.ids = append(c.ids, id)
			c.byID = append(c.byID, f)
		}
	}
	return c, nil
}

// exponent is the minor-unit exponent of a currency, 2 for an unknown code (as
// domain.FormatAmount assumes).
func exponent(cur string) int {
	if e, ok := domain.CurrencyExponent(cur); ok {
		return e
	}
	return 2
}

// convert turns a sum in minor units of cur into minor units of the target, rounded half away
// from zero (so a negative figure rounds like its magnitude).
func (c *converter) convert(cur string, sum int64) (int64, error) {
	if sum == 0 || cur == c.to {
		return sum, nil
	}
	f, ok := c.factors[cur]
	if !ok { // a caller bug: the currency was not declared in need
		return 0, &MissingRateError{Currency: cur}
	}
	return f.apply(sum)
}

// convertID is convert for a currency given by curID.
func (c *converter) convertID(cur curID, sum int64) (int64, error) {
	if sum == 0 || cur == c.toID {
		return sum, nil
	}
	for i, id := range c.ids {
		if id == cur {
			return c.byID[i].apply(sum)
		}
	}
	return 0, &MissingRateError{Currency: cur.String()} // a caller bug, as in convert
}

// apply multiplies a non-zero sum by the factor, rounding half away from zero.
func (f factor) apply(sum int64) (int64, error) {
	neg := sum < 0
	u := uint64(sum)
	if neg {
		u = -u
	}
	if f.small {
		hi, lo := bits.Mul64(u, f.n)
		if hi < f.d {
			q, r := bits.Div64(hi, lo, f.d)
			if q > math.MaxInt64 {
				return 0, ErrOverflow
			}
			if r >= f.d-r {
				q++ // at most 2^63 now: no wrap; the check below catches it
			}
			if q > math.MaxInt64 {
				return 0, ErrOverflow
			}
			if neg {
				return -int64(q), nil
			}
			return int64(q), nil
		}
	}
	v := new(big.Int).SetUint64(u)
	v.Mul(v, f.bn)
	if neg {
		v.Neg(v)
	}
	return roundQuo(v, f.bd)
}

// moneySum is one figure kept per currency until conversion: a handful of currencies, so a
// slice beats a map.
type moneySum []curAmount

type curAmount struct {
	cur string
	v   int64
}

func (m *moneySum) add(cur string, v int64) {
	if v == 0 {
		return
	}
	for i := range *m {
		if (*m)[i].cur == cur {
			(*m)[i].v += v
			return
		}
	}
	*m = append(*m, curAmount{cur, v})
}

func (m moneySum) addAll(o moneySum) moneySum {
	for _, a := range o {
		m.add(a.cur, a.v)
	}
	return m
}

// needs adds the currencies (other than to) with a non-zero sum to set.
func (m moneySum) needs(to string, set map[string]struct{}) {
	for _, a := range m {
		if a.v != 0 && a.cur != to {
			set[a.cur] = struct{}{}
		}
	}
}

// figure converts each currency's sum once and adds the results: API.md's "the group's figure
// is the sum of those".
func (c *converter) figure(m moneySum) (int64, error) {
	var total int64
	for _, a := range m {
		v, err := c.convert(a.cur, a.v)
		if err != nil {
			return 0, err
		}
		if total, err = addChecked(total, v); err != nil {
			return 0, err
		}
	}
	return total, nil
}

func addChecked(a, b int64) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, ErrOverflow
	}
	return s, nil
}

// Decimal places of the ratios in results: rates (win rates, conversion) in 0..1 with 6
// decimals, day averages with 1. Both round half up (away from zero); an undefined ratio
// (nothing to divide by) is zero at the same precision ("0.000000", "0.0"), so every value of
// a field has one format.
const (
	rateDecimals = 6
	daysDecimals = 1
	msPerDay     = 86_400_000
)

// formatQuotient writes num/den with exactly decimals places, rounded half away from zero;
// den == 0 gives zero.
func formatQuotient(num, den *big.Int, decimals int) string {
	if den.Sign() == 0 || num.Sign() == 0 {
		if decimals == 0 {
			return "0"
		}
		return "0." + strings.Repeat("0", decimals)
	}
	neg := (num.Sign() < 0) != (den.Sign() < 0)
	n := new(big.Int).Abs(num)
	d := new(big.Int).Abs(den)
	n.Mul(n, pow10(decimals))
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	if r.Lsh(r, 1).Cmp(d) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	s := q.String()
	if decimals > 0 {
		if len(s) <= decimals {
			s = strings.Repeat("0", decimals-len(s)+1) + s
		}
		s = s[:len(s)-decimals] + "." + s[len(s)-decimals:]
	}
	if neg && q.Sign() != 0 {
		s = "-" + s
	}
	return s
}

// ratio formats a/b for int64 operands.
func ratio(a, b int64, decimals int) string {
	if s, ok := quotient64(a < 0, absU64(a), b < 0, absU64(b), decimals); ok {
		return s
	}
	return formatQuotient(big.NewInt(a), big.NewInt(b), decimals)
}

// avgDays formats ms / (count × one day) with one decimal.
func avgDays(ms, count int64) string {
	if hi, den := bits.Mul64(absU64(count), msPerDay); hi == 0 {
		if s, ok := quotient64(ms < 0, absU64(ms), count < 0, den, daysDecimals); ok {
			return s
		}
	}
	den := new(big.Int).Mul(big.NewInt(count), big.NewInt(msPerDay))
	return formatQuotient(big.NewInt(ms), den, daysDecimals)
}

// pow10u are the powers of ten a quotient is scaled by (decimals 0..6).
var pow10u = [...]uint64{1, 10, 100, 1_000, 10_000, 100_000, 1_000_000}

// quotient64 is formatQuotient for operands given as signs and magnitudes that fit uint64,
// in 128-bit integer arithmetic (no big.Int, one allocation: the text). ok is false when the
// quotient does not fit, and the caller takes the big.Int path.
func quotient64(numNeg bool, num uint64, denNeg bool, den uint64, decimals int) (string, bool) {
	if decimals < 0 || decimals >= len(pow10u) {
		return "", false
	}
	var q uint64 // 0 when nothing to divide by, as formatQuotient
	if num != 0 && den != 0 {
		hi, lo := bits.Mul64(num, pow10u[decimals])
		if hi >= den {
			return "", false
		}
		var r uint64
		q, r = bits.Div64(hi, lo, den)
		if r >= den-r { // half away from zero
			if q == math.MaxUint64 {
				return "", false
			}
			q++
		}
	}
	var buf [24]byte
	b := buf[:0]
	if numNeg != denNeg && q != 0 {
		b = append(b, '-')
	}
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], q, 10)
	switch {
	case decimals == 0:
		b = append(b, d...)
	case len(d) <= decimals:
		b = append(b, '0', '.')
		for n := len(d); n < decimals; n++ {
			b = append(b, '0')
		}
		b = append(b, d...)
	default:
		cut := len(d) - decimals
		b = append(b, d[:cut]...)
		b = append(b, '.')
		b = append(b, d[cut:]...)
	}
	return string(b), true
}

// absU64 returns |v| without overflowing for math.MinInt64.
func absU64(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1
	}
	return uint64(v)
}

// roundDiv is a/b rounded half away from zero (b > 0), for averages of converted money.
func roundDiv(a, b int64) int64 {
	if b <= 0 {
		return 0
	}
	q, r := a/b, a%b
	if r < 0 {
		r = -r
	}
	if r >= b-r {
		if a < 0 {
			q--
		} else {
			q++
		}
	}
	return q
}
