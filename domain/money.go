package domain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxAmountMinor caps amounts so that amount × probability and sums over many deals stay far
// inside int64; a larger figure is a typing error, not a deal.
const MaxAmountMinor int64 = 1_000_000_000_000_000 // 10^15 minor units

// currencyExponents is the ISO 4217 minor-unit exponent of the active currencies we accept.
var currencyExponents = map[string]int{
	"AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
	"AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2,
	"BOB": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2,
	"CHF": 2, "CLP": 0, "CNY": 2, "COP": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0,
	"DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2,
	"GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2,
	"HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0,
	"JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0,
	"KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3,
	"MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2,
	"MVR": 2, "MWK": 2, "MXN": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2,
	"NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2,
	"PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2,
	"SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2,
	"SYP": 2, "SZL": 2, "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2,
	"TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0, "USD": 2, "UYU": 2, "UZS": 2, "VES": 2, "VND": 0,
	"VUV": 0, "WST": 2, "XAF": 0, "XCD": 2, "XOF": 0, "XPF": 0, "YER": 2, "ZAR": 2, "ZMW": 2,
	"ZWG": 2,
}

// currencyExpTable is currencyExponents indexed by the three letters of a code (-1 for an
// unknown code): every formatted amount and every converted figure looks its currency up, and
// an array index costs a fraction of a string-keyed map lookup. Read-only after init.
var currencyExpTable = func() *[26 * 26 * 26]int8 {
	var t [26 * 26 * 26]int8
	for i := range t {
		t[i] = -1
	}
	for code, e := range currencyExponents {
		i, _ := currencyIndex(code)
		t[i] = int8(e)
	}
	return &t
}()

// currencyIndex maps a code of three capital letters to 0..26^3-1; ok is false for anything
// else.
func currencyIndex(code string) (int, bool) {
	if len(code) != 3 {
		return 0, false
	}
	a, b, c := code[0]-'A', code[1]-'A', code[2]-'A'
	if a >= 26 || b >= 26 || c >= 26 {
		return 0, false
	}
	return (int(a)*26+int(b))*26 + int(c), true
}

// CurrencyExponent returns the ISO 4217 minor-unit exponent of code (JPY 0, USD 2, KWD 3) and
// whether the currency is known.
func CurrencyExponent(code string) (int, bool) {
	i, ok := currencyIndex(code)
	if !ok {
		return 0, false
	}
	if e := currencyExpTable[i]; e >= 0 {
		return int(e), true
	}
	return 0, false
}

// ErrUnknownCurrency is returned for a currency code that is not an active ISO 4217 code.
var ErrUnknownCurrency = errors.New("unknown ISO 4217 currency")

// ParseAmount reads decimal text ("12500.00", "12500", "0.5") as exact minor units of
// currency. It refuses signs, exponents, more decimals than the currency has, and amounts
// above MaxAmountMinor, so nothing is ever rounded on the way in.
func ParseAmount(text, currency string) (int64, error) {
	exp, ok := CurrencyExponent(currency)
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownCurrency, currency)
	}
	intPart, frac, err := splitDecimal(text)
	if err != nil {
		return 0, err
	}
	if len(frac) > exp {
		return 0, fmt.Errorf("amount %s has more than %d decimals for %s", quoteShort(text), exp, currency)
	}
	var v int64
	for _, c := range intPart + frac {
		v = v*10 + int64(c-'0')
		if v > MaxAmountMinor {
			return 0, tooLarge(text, currency)
		}
	}
	for i := len(frac); i < exp; i++ {
		v *= 10
		if v > MaxAmountMinor {
			return 0, tooLarge(text, currency)
		}
	}
	return v, nil
}

// tooLarge says an amount is over the largest one kept, naming the limit in the currency.
func tooLarge(text, currency string) error {
	return fmt.Errorf("amount %s is larger than the largest amount kept, %s %s", quoteShort(text), FormatAmount(MaxAmountMinor, currency), currency)
}

// maxQuoted bounds the part of a client's text an error quotes: an error names the field and
// says what is wrong, it need not echo a 10,000-digit value back (twice, in detail and in
// errors[]).
const maxQuoted = 40

// quoteShort quotes text, cut to maxQuoted bytes with its length when longer.
func quoteShort(text string) string {
	if len(text) <= maxQuoted {
		return strconv.Quote(text)
	}
	return fmt.Sprintf("%q… (%d characters)", strings.ToValidUTF8(text[:maxQuoted], ""), len(text))
}

// splitDecimal checks the shape of a plain non-negative decimal ("12", "12.50") and returns
// its integer and fraction digits. It is the currency-independent half of ParseAmount, used
// when a command carries an amount whose currency is only known from the stored state.
func splitDecimal(text string) (intPart, frac string, err error) {
	if text == "" {
		return "", "", errors.New("amount is empty")
	}
	intPart, frac, hasDot := strings.Cut(text, ".")
	if intPart == "" || (hasDot && frac == "") {
		return "", "", fmt.Errorf("amount %s is not a plain decimal", quoteShort(text))
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return "", "", fmt.Errorf("amount %s is not a plain non-negative decimal", quoteShort(text))
			}
		}
	}
	return intPart, frac, nil
}

// FormatAmount writes minor units of currency as decimal text with exactly the currency's
// number of decimals ("12500.00", JPY "1250"). Negative values (retractions) keep their sign.
// An unknown currency is written with 2 decimals. It is on the hot path of every analytics
// answer (16 figures per forecast group), hence AppendAmount and no fmt.
func FormatAmount(minor int64, currency string) string {
	var buf [maxAmountText]byte
	return string(AppendAmount(buf[:0], minor, currency))
}

// maxAmountText bounds the text of any int64 amount: a sign, 20 digits (including the
// zero padding of a value below one major unit, for exponents up to 3) and a dot.
const maxAmountText = 1 + 20 + 1

// AppendAmount appends FormatAmount(minor, currency) to dst, so that a caller formatting many
// figures can share one buffer (and one string allocation) among them.
func AppendAmount(dst []byte, minor int64, currency string) []byte {
	exp, ok := CurrencyExponent(currency)
	if !ok {
		exp = 2
	}
	if minor < 0 {
		dst = append(dst, '-')
	}
	// Below one major unit the text is "0." and exp digits, zero-padded ("0.05", as fmt's
	// %0*d did); above, the digits with a dot before the last exp. strconv writes two digits
	// per division.
	var buf [20]byte
	digits := strconv.AppendUint(buf[:0], absUint(minor), 10)
	switch {
	case exp == 0:
		return append(dst, digits...)
	case len(digits) <= exp:
		dst = append(dst, '0', '.')
		for n := len(digits); n < exp; n++ {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	cut := len(digits) - exp
	dst = append(dst, digits[:cut]...)
	dst = append(dst, '.')
	return append(dst, digits[cut:]...)
}

// WeightedAmount is amount × probability / 100, rounded half-up to the currency's minor unit
// (API.md: each opportunity is rounded before anything is summed). Rounding is symmetric
// (half away from zero) so that the retraction of a contribution, a negative amount, cancels
// its addition exactly. Probability is expected in 0..100; the computation splits the amount
// into hundreds and a remainder so that it cannot overflow for any amount up to MaxAmountMinor
// (and far beyond).
func WeightedAmount(minor int64, probability int) int64 {
	p := int64(probability)
	if (minor < 0) != (p < 0) && minor != 0 && p != 0 {
		return -weightedAbs(absUint(minor), absUint(p))
	}
	return weightedAbs(absUint(minor), absUint(p))
}

// weightedAbs is |amount| × |p| / 100 rounded half-up, on magnitudes.
func weightedAbs(m, p uint64) int64 {
	q, r := m/100, m%100
	return int64(q*p + (r*p+50)/100)
}

// absUint returns |v| without overflowing for math.MinInt64.
func absUint(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1
	}
	return uint64(v)
}
