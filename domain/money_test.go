package domain

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestCurrencyExponent(t *testing.T) {
	for _, tc := range []struct {
		code string
		exp  int
		ok   bool
	}{
		{"JPY", 0, true}, {"KRW", 0, true}, {"USD", 2, true}, {"EUR", 2, true},
		{"KWD", 3, true}, {"BHD", 3, true}, {"TND", 3, true},
		{"usd", 0, false}, {"XXX", 0, false}, {"", 0, false}, {"USDX", 0, false},
	} {
		exp, ok := CurrencyExponent(tc.code)
		if exp != tc.exp || ok != tc.ok {
			t.Errorf("CurrencyExponent(%q) = %d, %v; want %d, %v", tc.code, exp, ok, tc.exp, tc.ok)
		}
	}
}

func TestParseAmountAccepts(t *testing.T) {
	for _, tc := range []struct {
		text, cur string
		want      int64
	}{
		{"12500.00", "USD", 1_250_000},
		{"12500", "USD", 1_250_000}, // missing decimals are zeros
		{"0.5", "USD", 50},
		{"0.05", "USD", 5},
		{"0", "USD", 0},
		{"0.00", "USD", 0},
		{"007.10", "USD", 710}, // leading zeros are harmless
		{"1250", "JPY", 1250},  // exponent 0: minor unit is the yen
		{"0", "JPY", 0},
		{"1.234", "KWD", 1234}, // exponent 3
		{"1.2", "KWD", 1200},
		{"1", "KWD", 1000},
		{"10000000000000.00", "USD", MaxAmountMinor}, // 10^13 dollars = 10^15 cents, the cap itself
		{"1000000000000000", "JPY", MaxAmountMinor},
		{"1000000000000", "KWD", MaxAmountMinor},
	} {
		got, err := ParseAmount(tc.text, tc.cur)
		if err != nil || got != tc.want {
			t.Errorf("ParseAmount(%q, %s) = %d, %v; want %d", tc.text, tc.cur, got, err, tc.want)
		}
	}
}

func TestParseAmountRefuses(t *testing.T) {
	for _, tc := range []struct{ text, cur, why string }{
		{"-1", "USD", "negative"},
		{"-0.01", "USD", "negative"},
		{"+1", "USD", "sign"},
		{"1e5", "USD", "exponent"},
		{"1E5", "USD", "exponent"},
		{" 1", "USD", "leading space"},
		{"1 ", "USD", "trailing space"},
		{"", "USD", "empty"},
		{".5", "USD", "no integer digits"},
		{"5.", "USD", "no fraction digits after the dot"},
		{"1..2", "USD", "two dots"},
		{"1.2.3", "USD", "two dots"},
		{"1,000", "USD", "grouping"},
		{"1.234", "USD", "too many decimals"},
		{"12500.001", "USD", "too many decimals"},
		{"1.0", "JPY", "JPY has no decimals"},
		{"1.2345", "KWD", "too many decimals"},
		{"0x10", "USD", "hex"},
		{"NaN", "USD", "not a number"},
		{"Inf", "USD", "not a number"},
		{"１", "USD", "non-ASCII digit"},
		{"10000000000000.01", "USD", "one cent over the cap"},
		{"1000000000000001", "JPY", "one yen over the cap"},
		{"99999999999999999999999999", "USD", "far over the cap (must not wrap around)"},
		{"12.00", "XYZ", "unknown currency"},
		{"12.00", "", "no currency"},
		{"12.00", "usd", "currency codes are upper case"},
	} {
		if got, err := ParseAmount(tc.text, tc.cur); err == nil {
			t.Errorf("ParseAmount(%q, %q) = %d, want refusal (%s)", tc.text, tc.cur, got, tc.why)
		}
	}
	if _, err := ParseAmount("1", "XYZ"); !errors.Is(err, ErrUnknownCurrency) {
		t.Errorf("unknown currency error %v does not wrap ErrUnknownCurrency", err)
	}
}

func TestFormatAmount(t *testing.T) {
	for _, tc := range []struct {
		minor int64
		cur   string
		want  string
	}{
		{1_250_000, "USD", "12500.00"},
		{5, "USD", "0.05"},
		{50, "USD", "0.50"},
		{0, "USD", "0.00"},
		{1250, "JPY", "1250"},
		{0, "JPY", "0"},
		{1234, "KWD", "1.234"},
		{1, "KWD", "0.001"},
		{-5, "USD", "-0.05"}, // retractions keep their sign
		{-1250, "JPY", "-1250"},
		{MaxAmountMinor, "USD", "10000000000000.00"},
		{math.MinInt64, "USD", "-92233720368547758.08"}, // no overflow on negation
		{1234, "XYZ", "12.34"},                          // unknown currency: two decimals
	} {
		if got := FormatAmount(tc.minor, tc.cur); got != tc.want {
			t.Errorf("FormatAmount(%d, %s) = %q, want %q", tc.minor, tc.cur, got, tc.want)
		}
	}
}

func TestAmountRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, cur := range []string{"JPY", "USD", "KWD", "EUR", "BHD", "CLP"} {
		values := []int64{0, 1, 9, 10, 99, 100, 101, 999, 1000, 1001, MaxAmountMinor - 1, MaxAmountMinor}
		for range 2000 {
			values = append(values, r.Int64N(MaxAmountMinor+1))
		}
		for _, v := range values {
			text := FormatAmount(v, cur)
			got, err := ParseAmount(text, cur)
			if err != nil || got != v {
				t.Fatalf("%s: ParseAmount(FormatAmount(%d) = %q) = %d, %v", cur, v, text, got, err)
			}
		}
	}
}

// refWeighted is an independent reference: exact rational amount × p / 100, rounded half away
// from zero.
func refWeighted(minor int64, p int) int64 {
	x := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(minor), big.NewInt(int64(p))), big.NewInt(100))
	neg := x.Sign() < 0
	x.Abs(x)
	x.Add(x, big.NewRat(1, 2))
	q := new(big.Int).Quo(x.Num(), x.Denom()) // floor for non-negative
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

func TestWeightedAmount(t *testing.T) {
	for _, tc := range []struct {
		minor int64
		p     int
		want  int64
		why   string
	}{
		{1000, 50, 500, "exact"},
		{1, 50, 1, "0.5 rounds up"},
		{3, 50, 2, "1.5 rounds up"},
		{5, 10, 1, "0.5 rounds up"},
		{4, 10, 0, "0.4 rounds down"},
		{15, 10, 2, "1.5 rounds up"},
		{25, 10, 3, "2.5 rounds up (half-up, not banker's)"},
		{149, 1, 1, "1.49 rounds down"},
		{150, 1, 2, "1.50 rounds up"},
		{151, 1, 2, "1.51 rounds up"},
		{1_250_000, 33, 412_500, "12500.00 × 33% = 4125.00"},
		{333, 33, 110, "109.89 rounds up"},
		{12345, 0, 0, "0% weighs nothing"},
		{12345, 100, 12345, "100% is the amount"},
		{MaxAmountMinor, 100, MaxAmountMinor, "the cap at 100%"},
		{MaxAmountMinor, 99, MaxAmountMinor / 100 * 99, "no overflow near the cap"},
		{-1, 50, -1, "a retraction mirrors the addition"},
		{-3, 50, -2, "-1.5 mirrors 1.5"},
		{-150, 1, -2, "mirrors 1.50"},
		{math.MaxInt64, 100, math.MaxInt64, "no overflow for the largest int64"},
	} {
		if got := WeightedAmount(tc.minor, tc.p); got != tc.want {
			t.Errorf("WeightedAmount(%d, %d) = %d, want %d (%s)", tc.minor, tc.p, got, tc.want, tc.why)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		minor := r.Int64N(2*MaxAmountMinor+1) - MaxAmountMinor
		if r.IntN(2) == 0 {
			minor = r.Int64N(10_000) - 5000 // small amounts exercise the .5 cases
		}
		p := r.IntN(101)
		got := WeightedAmount(minor, p)
		if want := refWeighted(minor, p); got != want {
			t.Fatalf("WeightedAmount(%d, %d) = %d, reference %d", minor, p, got, want)
		}
		if got+WeightedAmount(-minor, p) != 0 {
			t.Fatalf("WeightedAmount(%d, %d) does not cancel its retraction", minor, p)
		}
		if minor >= 0 && (got < 0 || got > minor) {
			t.Fatalf("WeightedAmount(%d, %d) = %d outside 0..amount", minor, p, got)
		}
	}
}

var plainDecimal = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?$`)

// FuzzParseAmount checks ParseAmount against an independent reading with big.Rat: it accepts
// exactly the plain decimals with at most the currency's decimals and at most MaxAmountMinor,
// and what it accepts round-trips through FormatAmount.
func FuzzParseAmount(f *testing.F) {
	for _, seed := range []struct{ text, cur string }{
		{"12500.00", "USD"}, {"0", "JPY"}, {"1.234", "KWD"}, {"1.2345", "KWD"}, {"-1", "USD"},
		{"1e5", "USD"}, {" 1", "USD"}, {"", "USD"}, {"10000000000000.01", "USD"}, {"1", "XYZ"},
		{".5", "USD"}, {"5.", "USD"}, {"00000000000000000000001", "JPY"}, {"１", "USD"},
	} {
		f.Add(seed.text, seed.cur)
	}
	f.Fuzz(func(t *testing.T, text, cur string) {
		got, err := ParseAmount(text, cur)
		exp, known := CurrencyExponent(cur)
		m := plainDecimal.FindStringSubmatch(text)
		wantOK := known && m != nil && len(m[2]) <= exp
		var want int64
		if wantOK {
			r, _ := new(big.Rat).SetString(text)
			r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
			if !r.IsInt() || r.Num().Cmp(big.NewInt(MaxAmountMinor)) > 0 {
				wantOK = false
			} else {
				want = r.Num().Int64()
			}
		}
		if wantOK != (err == nil) {
			t.Fatalf("ParseAmount(%q, %q) = %d, %v; reference accepts: %v", text, cur, got, err, wantOK)
		}
		if err != nil {
			return
		}
		if got != want {
			t.Fatalf("ParseAmount(%q, %q) = %d, reference %d", text, cur, got, want)
		}
		back := FormatAmount(got, cur)
		if again, err := ParseAmount(back, cur); err != nil || again != got {
			t.Fatalf("round trip %q -> %d -> %q -> %d, %v", text, got, back, again, err)
		}
		if exp > 0 && !strings.Contains(back, ".") {
			t.Fatalf("FormatAmount(%d, %s) = %q lacks decimals", got, cur, back)
		}
	})
}
