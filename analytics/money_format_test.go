package analytics

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestQuotient64MatchesBig: the 128-bit fast path of ratio and avgDays writes exactly what
// formatQuotient writes with big.Int, for both signs, zero, extremes and random operands.
func TestQuotient64MatchesBig(t *testing.T) {
	vals := []int64{0, 1, -1, 2, 3, 7, 10, 999_999, 1_000_000, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1,
		math.MinInt64 + 1, msPerDay, -msPerDay, 1 << 40, 1<<62 + 12345}
	r := rand.New(rand.NewPCG(9, 9))
	for range 3000 {
		v := r.Int64N(math.MaxInt64) >> r.IntN(63)
		if r.IntN(3) == 0 {
			v = -v
		}
		vals = append(vals, v)
	}
	for i, a := range vals {
		for j := 0; j < 40; j++ {
			b := vals[(i*31+j*17)%len(vals)]
			if j < 2 {
				b = vals[j]
			}
			for _, dec := range []int{0, daysDecimals, rateDecimals} {
				if got, want := ratio(a, b, dec), formatQuotient(big.NewInt(a), big.NewInt(b), dec); got != want {
					t.Fatalf("ratio(%d, %d, %d) = %q, want %q", a, b, dec, got, want)
				}
			}
			den := new(big.Int).Mul(big.NewInt(b), big.NewInt(msPerDay))
			if got, want := avgDays(a, b), formatQuotient(big.NewInt(a), den, daysDecimals); got != want {
				t.Fatalf("avgDays(%d, %d) = %q, want %q", a, b, got, want)
			}
		}
	}
}
