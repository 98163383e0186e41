package analytics

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "a|b", "a/b", "100%", "%7C", "|/%|", "ünï|cödé"} {
		e := escapePart(s)
		if strings.ContainsAny(e, "|/") {
			t.Errorf("escapePart(%q) = %q still has a separator", s, e)
		}
		back, ok := unescapePart(e)
		if !ok || back != s {
			t.Errorf("unescapePart(escapePart(%q)) = %q, %v", s, back, ok)
		}
	}
	for _, bad := range []string{"%", "%2", "%41", "a|b", "a/b", "%zz"} {
		if _, ok := unescapePart(bad); ok {
			t.Errorf("unescapePart(%q) accepted", bad)
		}
	}
}

func TestDayEncodingMatchesDomain(t *testing.T) {
	for d := domain.MinDate; d <= domain.MaxDate; d += 37 {
		s := string(appendDate(nil, d))
		if s != d.String() {
			t.Fatalf("appendDate(%d) = %s, domain says %s", d, s, d)
		}
		back, ok := parseDay(s)
		if !ok || back != d {
			t.Fatalf("parseDay(%s) = %d, %v; want %d", s, back, ok, d)
		}
		if m := monthKey(d); m != s[:7] {
			t.Fatalf("monthKey(%s) = %s", s, m)
		}
	}
	for _, tc := range []struct{ day, q string }{{"2025-01-01", "2025-Q1"}, {"2025-03-31", "2025-Q1"}, {"2025-04-01", "2025-Q2"}, {"2025-12-31", "2025-Q4"}} {
		if q := quarterKey(date(t, tc.day)); q != tc.q {
			t.Errorf("quarterKey(%s) = %s, want %s", tc.day, q, tc.q)
		}
	}
	for _, bad := range []string{"2025-02-30", "2025-13-01", "2025-1-01", "20250101xx", "2025/01/01"} {
		if _, ok := parseDay(bad); ok {
			t.Errorf("parseDay(%q) accepted", bad)
		}
	}
}

// TestKeysSortByDayAndNeverCollide: for random pipelines, owners and days, keys round-trip,
// distinct inputs give distinct keys, and within a family and pipeline the key order is the
// day order (so a period over all owners is one contiguous key range).
func TestKeysSortByDayAndNeverCollide(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	parts := []string{"", "a", "a|", "|a", "a/b", "a%7Cb", "a%", "b", "a|b|c"}
	seen := map[string]parsedKey{}
	type kd struct {
		key string
		pk  parsedKey
	}
	var all []kd
	for range 5000 {
		pk := parsedKey{fam: []byte{famForecast, famWinLoss, famEvents}[r.IntN(3)], pipeline: parts[r.IntN(len(parts))],
			day: domain.Date(r.IntN(400)) + 20000, owner: parts[r.IntN(len(parts))]}
		k := bucketKey(pk.fam, pk.pipeline, pk.day, pk.owner)
		back, ok := parseKey(k)
		if !ok || back != pk {
			t.Fatalf("parseKey(%q) = %+v, %v; want %+v", k, back, ok, pk)
		}
		if prev, dup := seen[k]; dup && prev != pk {
			t.Fatalf("collision: %+v and %+v both give %q", prev, pk, k)
		}
		seen[k] = pk
		all = append(all, kd{k, pk})
	}
	slices.SortFunc(all, func(a, b kd) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(all); i++ {
		a, b := all[i-1].pk, all[i].pk
		if a.fam == b.fam && a.pipeline == b.pipeline && a.day > b.day {
			t.Fatalf("key order puts %s before %s", all[i-1].key, all[i].key)
		}
	}
	for _, bad := range []string{"", "F", "X|p|2025-01-01|o", "F|p|2025-01-01", "F|p|2025-02-30|o", "F|p|o|2025-01-01|o", "F|p%|2025-01-01|o"} {
		if _, ok := parseKey(bad); ok {
			t.Errorf("parseKey(%q) accepted", bad)
		}
	}
}

func TestConvertExactAcrossExponents(t *testing.T) {
	rates := MapRates("USD", map[string]string{"EUR": "1.08", "JPY": "0.0067", "KWD": "3.25", "BHD": "2.659574468085106382978723404255319148936170212765957446808"})
	for _, tc := range []struct {
		from, to string
		sum      int64
		want     int64
	}{
		{"USD", "USD", 12345, 12345},
		{"EUR", "USD", 100, 108},                                     // 1.00 EUR = 1.08 USD
		{"JPY", "USD", 150, 101},                                     // 150 × 0.0067 = 1.005 USD -> 1.01 (half up)
		{"JPY", "USD", -150, -101},                                   // retractions round like their magnitude
		{"JPY", "USD", 149, 100},                                     // 0.9983 -> 1.00
		{"USD", "JPY", 100, 149},                                     // 1 / 0.0067 = 149.25 -> 149
		{"USD", "JPY", 1, 1},                                         // 0.01 USD = 1.4925 JPY -> 1
		{"KWD", "USD", 1005, 327},                                    // 1.005 × 3.25 = 3.26625 -> 3.27
		{"USD", "KWD", 325, 1000},                                    // 3.25 USD = 1.000 KWD
		{"JPY", "KWD", 1000, 2062},                                   // 1000 × 0.0067 / 3.25 = 2.0615.. KWD -> 2.062
		{"KWD", "JPY", 1000, 485},                                    // 1.000 KWD × 3.25 / 0.0067 = 485.07 JPY
		{"KWD", "JPY", 1, 0},                                         // 0.001 KWD = 0.485 JPY -> 0
		{"EUR", "JPY", 1_000_000_000_000_000, 1_611_940_298_507_463}, // 10^13 EUR: 1.08e13 / 0.0067 = 1611940298507462.69
	} {
		var need []string
		if tc.from != tc.to {
			need = []string{tc.from}
		}
		cv, err := newConverter(rates, tc.to, need)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cv.convert(tc.from, tc.sum)
		if err != nil || got != tc.want {
			t.Errorf("convert %d %s -> %s = %d, %v; want %d", tc.sum, tc.from, tc.to, got, err, tc.want)
		}
	}
	// A rate with a huge denominator takes the big.Int path and is still exact.
	cv, err := newConverter(rates, "USD", []string{"BHD"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := cv.convert("BHD", 1000) // 1.000 BHD × 2.6595744... = 2.66 USD
	if got != 266 {
		t.Errorf("BHD conversion = %d, want 266", got)
	}
	// Figures beyond int64 are reported, on the 128-bit path and on the big.Int path.
	cv, _ = newConverter(rates, "JPY", []string{"USD"})
	if _, err := cv.convert("USD", math.MaxInt64); !errors.Is(err, ErrOverflow) {
		t.Errorf("overflow (small factor) not reported: %v", err)
	}
	tiny := MapRates("USD", map[string]string{"ISK": "0.000000000000000000000000001"})
	cv, _ = newConverter(tiny, "ISK", []string{"USD"})
	if _, err := cv.convert("USD", 1); !errors.Is(err, ErrOverflow) {
		t.Errorf("overflow (big factor) not reported: %v", err)
	}
}

func TestMissingAndBadRates(t *testing.T) {
	for _, tc := range []struct {
		rates map[string]string
		to    string
		need  []string
		want  string
	}{
		{map[string]string{}, "USD", []string{"EUR"}, "EUR"},
		{map[string]string{"EUR": "1.08"}, "GBP", []string{"EUR"}, "GBP"},
		{map[string]string{"EUR": "1.08", "GBP": "0"}, "GBP", []string{"EUR"}, "GBP"},        // zero is not a rate
		{map[string]string{"EUR": "-1.08"}, "USD", []string{"EUR"}, "EUR"},                   // nor a negative
		{map[string]string{"EUR": "1e3"}, "USD", []string{"EUR"}, "EUR"},                     // nor an exponent
		{map[string]string{"EUR": "1/3"}, "USD", []string{"EUR"}, "EUR"},                     // nor a fraction
		{map[string]string{"KWD": "3.25"}, "USD", []string{"JPY", "EUR", "KWD"}, "EUR"},      // first in code order
		{map[string]string{"EUR": "1.08", "JPY": "x"}, "AUD", []string{"JPY", "EUR"}, "AUD"}, // target sorts first
	} {
		_, err := newConverter(MapRates("USD", tc.rates), tc.to, tc.need)
		var mr *MissingRateError
		if !errors.As(err, &mr) || mr.Currency != tc.want {
			t.Errorf("rates %v to %s need %v: got %v, want missing %s", tc.rates, tc.to, tc.need, err, tc.want)
		}
	}
	if _, err := newConverter(nil, "USD", nil); err != nil {
		t.Errorf("nothing to convert needs no rates: %v", err)
	}
}

func TestFormatQuotient(t *testing.T) {
	for _, tc := range []struct {
		a, b int64
		dec  int
		want string
	}{
		{1, 3, 6, "0.333333"}, {2, 3, 6, "0.666667"}, {1, 1, 6, "1.000000"}, {0, 5, 6, "0.000000"}, {5, 0, 6, "0.000000"},
		{1, 8, 2, "0.13"}, {-1, 8, 2, "-0.13"}, {-1, 1000, 1, "0.0"}, {15, 10, 0, "2"}, {123456789, 1000, 1, "123456.8"},
	} {
		if got := ratio(tc.a, tc.b, tc.dec); got != tc.want {
			t.Errorf("ratio(%d, %d, %d) = %s, want %s", tc.a, tc.b, tc.dec, got, tc.want)
		}
	}
	for _, tc := range []struct{ a, b, want int64 }{{7, 2, 4}, {-7, 2, -4}, {5, 3, 2}, {4, 3, 1}, {0, 3, 0}, {9, 0, 0}} {
		if got := roundDiv(tc.a, tc.b); got != tc.want {
			t.Errorf("roundDiv(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
