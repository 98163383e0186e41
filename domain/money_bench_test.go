package domain

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// formatAmountFmt is FormatAmount as it was written with fmt.Sprintf: the reference the
// strconv-style version must match byte for byte.
func formatAmountFmt(minor int64, currency string) string {
	exp, ok := CurrencyExponent(currency)
	if !ok {
		exp = 2
	}
	neg := minor < 0
	u := absUint(minor)
	s := fmt.Sprintf("%0*d", exp+1, u)
	if exp > 0 {
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// TestFormatAmountMatchesFmt compares FormatAmount and AppendAmount with the fmt version over
// every exponent (0, 2, 3 and an unknown code), edge values and random magnitudes of every
// length, both signs.
func TestFormatAmountMatchesFmt(t *testing.T) {
	currencies := []string{"JPY", "USD", "KWD", "XXX", "", "usd", "EURO"}
	values := []int64{0, 1, -1, 5, -5, 9, 10, -10, 99, 100, -100, 101, 999, 1000, -1000, 1001, 12345, -12345,
		1_250_000, MaxAmountMinor, -MaxAmountMinor, MaxAmountMinor + 1,
		math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	for p := int64(1); p > 0 && p <= math.MaxInt64/10; p *= 10 {
		values = append(values, p, p-1, p+1, -p, -(p - 1), -(p + 1))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		v := r.Int64N(math.MaxInt64) >> r.IntN(63)
		if r.IntN(2) == 0 {
			v = -v
		}
		values = append(values, v)
	}
	var buf []byte
	for _, cur := range currencies {
		for _, v := range values {
			want := formatAmountFmt(v, cur)
			if got := FormatAmount(v, cur); got != want {
				t.Fatalf("FormatAmount(%d, %q) = %q, want %q", v, cur, got, want)
			}
			buf = AppendAmount(append(buf[:0], "x"...), v, cur)
			if string(buf) != "x"+want {
				t.Fatalf("AppendAmount(%d, %q) = %q, want %q", v, cur, buf, "x"+want)
			}
		}
	}
	// Every known currency keeps its exponent (the array table mirrors the map).
	for code, e := range currencyExponents {
		if got, ok := CurrencyExponent(code); !ok || got != e {
			t.Fatalf("CurrencyExponent(%s) = %d, %v; want %d", code, got, ok, e)
		}
		if got, want := FormatAmount(-123456789, code), formatAmountFmt(-123456789, code); got != want {
			t.Fatalf("FormatAmount(%s) = %q, want %q", code, got, want)
		}
	}
}

func TestFormatAmountAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = FormatAmount(-1234567, "USD") }); n > 1 {
		t.Errorf("FormatAmount allocates %v times, want at most 1 (the string)", n)
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = AppendAmount(buf[:0], -1234567, "KWD") }); n != 0 {
		t.Errorf("AppendAmount allocates %v times, want 0", n)
	}
}

// sinkString keeps benchmark results alive, so the string allocation is measured.
var sinkString string

var benchAmounts = []int64{0, 5, -5, 1_250_000, 99_999, -123_456_789, 17_000_00, MaxAmountMinor}

// BenchmarkFormatAmount formats a mix of figures in the three exponents analytics answers use.
func BenchmarkFormatAmount(b *testing.B) {
	for _, cur := range []string{"USD", "JPY", "KWD"} {
		b.Run(cur, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				sinkString = FormatAmount(benchAmounts[i%len(benchAmounts)], cur)
			}
		})
	}
}

// BenchmarkFormatAmountFmt is the former fmt.Sprintf version, for comparison.
func BenchmarkFormatAmountFmt(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sinkString = formatAmountFmt(benchAmounts[i%len(benchAmounts)], "USD")
	}
}

// BenchmarkCurrencyExponent is the lookup every formatted and converted figure makes.
func BenchmarkCurrencyExponent(b *testing.B) {
	codes := []string{"USD", "EUR", "JPY", "KWD", "XXX"}
	for i := 0; b.Loop(); i++ {
		_, _ = CurrencyExponent(codes[i%len(codes)])
	}
}

// BenchmarkCurrencyExponentMap is the former map lookup, for comparison.
func BenchmarkCurrencyExponentMap(b *testing.B) {
	codes := []string{"USD", "EUR", "JPY", "KWD", "XXX"}
	for i := 0; b.Loop(); i++ {
		_, _ = currencyExponents[codes[i%len(codes)]]
	}
}
