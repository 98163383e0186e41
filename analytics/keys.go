package analytics

import (
	"strings"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Bucket keys
//
// A key is "<family>|<pipeline>|<day>|<owner>":
//
//	F|default|2025-06-30|u-17   forecast: open and closed deals by close date
//	W|default|2025-03-04|u-17   win/loss: closed deals by close date (the day they closed)
//	E|default|2025-03-04|u-17   events: funnel moves and pipeline changes by the UTC day of the
//	                            event; a closing event (won, lost) by the deal's close date
//
// The day is YYYY-MM-DD, fixed width for every date the domain accepts (1900..2999), so keys of
// one family and pipeline sort by day and a period over all owners is one contiguous key range
// (the layout a sorted table or a range scan over the group table wants). Pipeline and owner
// are escaped (escapePart) so that an id containing '|' can never make two keys collide.
// Buckets are daily and per owner so that one bucket stays small and any period is a range sum
// at query time.
const (
	famForecast byte = 'F'
	famWinLoss  byte = 'W'
	famEvents   byte = 'E'
)

// escapePart makes an id or free text safe as one segment of a bucket key or a value name:
// '%', '|' and '/' become %25, %7C and %2F. Escaping '%' itself keeps the mapping injective,
// so distinct ids always give distinct keys.
func escapePart(s string) string {
	if !strings.ContainsAny(s, "%|/") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			b.WriteString("%25")
		case '|':
			b.WriteString("%7C")
		case '/':
			b.WriteString("%2F")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapePart reverses escapePart and refuses any other use of '%', so a key has exactly one
// reading.
func unescapePart(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, strings.IndexByte(s, '|') < 0 && strings.IndexByte(s, '/') < 0
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '|' || c == '/':
			return "", false
		case c != '%':
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		switch s[i+1 : i+3] {
		case "25":
			b.WriteByte('%')
		case "7C":
			b.WriteByte('|')
		case "2F":
			b.WriteByte('/')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// bucketKey builds "<fam>|<pipeline>|<day>|<owner>" with one allocation.
func bucketKey(fam byte, pipelineID string, day domain.Date, ownerID string) string {
	p, o := escapePart(pipelineID), escapePart(ownerID)
	b := make([]byte, 0, 2+len(p)+1+10+1+len(o))
	b = append(b, fam, '|')
	b = append(b, p...)
	b = append(b, '|')
	b = appendDate(b, day)
	b = append(b, '|')
	b = append(b, o...)
	return string(b)
}

// parsedKey is a bucket key taken apart.
type parsedKey struct {
	fam      byte
	pipeline string
	day      domain.Date
	owner    string
}

// parseKey reads a bucket key; ok is false for anything bucketKey cannot have produced.
func parseKey(key string) (parsedKey, bool) {
	if len(key) < 2 || key[1] != '|' {
		return parsedKey{}, false
	}
	fam := key[0]
	if fam != famForecast && fam != famWinLoss && fam != famEvents {
		return parsedKey{}, false
	}
	rest := key[2:]
	p, rest, ok1 := strings.Cut(rest, "|")
	d, o, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 {
		return parsedKey{}, false
	}
	pipeline, ok := unescapePart(p)
	if !ok {
		return parsedKey{}, false
	}
	owner, ok := unescapePart(o)
	if !ok {
		return parsedKey{}, false
	}
	day, ok := parseDay(d)
	if !ok {
		return parsedKey{}, false
	}
	return parsedKey{fam: fam, pipeline: pipeline, day: day, owner: owner}, true
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
// algorithm): integer arithmetic, no time package, so building a key costs no allocation.
func civil(d domain.Date) (y, m, day int) {
	z := int64(d) + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	dd := doy - (153*mp+2)/5 + 1
	mm := mp + 3
	if mp >= 10 {
		mm = mp - 9
	}
	yy := yoe + era*400
	if mm <= 2 {
		yy++
	}
	return int(yy), int(mm), int(dd)
}

// daysFromCivil is the inverse of civil.
func daysFromCivil(y, m, d int) domain.Date {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := m + 9
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return domain.Date(era*146097 + doe - 719468)
}

// appendDate appends YYYY-MM-DD (four-digit years; the domain keeps dates in 1900..2999).
func appendDate(b []byte, d domain.Date) []byte {
	y, m, dd := civil(d)
	if y < 0 || y > 9999 { // outside what the domain accepts; keep the text readable anyway
		return append(b, d.String()...)
	}
	return append(b,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-',
		byte('0'+dd/10), byte('0'+dd%10))
}

// parseDay reads the fixed-width day of a key, strictly (a real calendar day).
func parseDay(s string) (domain.Date, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	num := func(t string) (int, bool) {
		n := 0
		for i := 0; i < len(t); i++ {
			if t[i] < '0' || t[i] > '9' {
				return 0, false
			}
			n = n*10 + int(t[i]-'0')
		}
		return n, true
	}
	y, ok1 := num(s[:4])
	m, ok2 := num(s[5:7])
	d, ok3 := num(s[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, false
	}
	day := daysFromCivil(y, m, d)
	if yy, mm, dd := civil(day); yy != y || mm != m || dd != d {
		return 0, false // e.g. 2025-02-30
	}
	return day, true
}

// monthKey and quarterKey are the group keys of a day: "2025-03" and "2025-Q1".
func monthKey(d domain.Date) string {
	y, m, _ := civil(d)
	b := appendDate(nil, daysFromCivil(y, m, 1))
	return string(b[:7])
}

func quarterKey(d domain.Date) string {
	y, m, _ := civil(d)
	b := appendDate(nil, daysFromCivil(y, 1, 1))
	return string(b[:4]) + "-Q" + string(byte('1'+(m-1)/3))
}
