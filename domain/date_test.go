package domain

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

func TestDateBounds(t *testing.T) {
	if want := DateOf(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)); MinDate != want {
		t.Errorf("MinDate = %d, want %d (1900-01-01)", MinDate, want)
	}
	if want := DateOf(time.Date(2999, 12, 31, 0, 0, 0, 0, time.UTC)); MaxDate != want {
		t.Errorf("MaxDate = %d, want %d (2999-12-31)", MaxDate, want)
	}
	if MinDate.String() != "1900-01-01" || MaxDate.String() != "2999-12-31" {
		t.Errorf("bounds print as %s..%s", MinDate, MaxDate)
	}
}

func TestParseDate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Date
	}{
		{"1970-01-01", 0}, // the epoch is day 0
		{"1970-01-02", 1},
		{"1969-12-31", -1},
		{"2000-03-01", 11017},
		{"2024-02-29", 19782}, // leap day
		{"2000-02-29", 11016}, // divisible by 400: leap
		{"1900-01-01", MinDate},
		{"2999-12-31", MaxDate},
	} {
		got, err := ParseDate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"2023-02-29", // not a leap year
		"1900-02-29", // divisible by 100, not 400: not leap
		"2100-02-29",
		"2024-04-31", "2024-13-01", "2024-00-10", "2024-01-00", "2024-01-32",
		"1899-12-31", "3000-01-01", "0000-01-01", "9999-12-31", // outside the accepted range
		"2024-1-05", "2024-01-5", "24-01-05", "02024-01-05", // not zero-padded YYYY-MM-DD
		"2024/01/05", "20240105", "2024-01-05T00:00:00Z", "2024-01-05 ", " 2024-01-05",
		"", "today", "+2024-01-05", "-2024-01-05",
	} {
		if got, err := ParseDate(in); err == nil {
			t.Errorf("ParseDate(%q) = %s, want refusal", in, got)
		}
	}
}

// TestDateEveryDay walks every accepted day: consecutive dates are consecutive integers, the
// text form agrees with the time package's calendar, and it parses back to the same date.
func TestDateEveryDay(t *testing.T) {
	tm := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := MinDate; d <= MaxDate; d++ {
		s := d.String()
		if want := tm.Format(time.DateOnly); s != want {
			t.Fatalf("Date(%d).String() = %s, want %s", d, s, want)
		}
		if !d.Time().Equal(tm) {
			t.Fatalf("Date(%d).Time() = %s, want %s", d, d.Time(), tm)
		}
		if back, err := ParseDate(s); err != nil || back != d {
			t.Fatalf("ParseDate(%s) = %d, %v; want %d", s, back, err, d)
		}
		tm = tm.AddDate(0, 0, 1)
	}
}

func TestDateOfUsesUTC(t *testing.T) {
	ny := time.FixedZone("UTC-5", -5*3600)
	tokyo := time.FixedZone("UTC+9", 9*3600)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2024, 3, 10, 23, 30, 0, 0, ny), "2024-03-11"},  // 04:30 UTC next day
		{time.Date(2024, 3, 11, 8, 0, 0, 0, tokyo), "2024-03-10"}, // 23:00 UTC previous day
		{time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC), "2024-03-10"},
		{time.Date(2024, 3, 10, 23, 59, 59, 999999999, time.UTC), "2024-03-10"},
		{time.Date(1950, 6, 15, 12, 0, 0, 0, time.UTC), "1950-06-15"}, // before the epoch
	} {
		if got := DateOf(tc.t).String(); got != tc.want {
			t.Errorf("DateOf(%s) = %s, want %s", tc.t, got, tc.want)
		}
	}
}

var dateShape = regexp.MustCompile(`^([0-9]{4})-([0-9]{2})-([0-9]{2})$`)

// refParseDate is an independent Gregorian-calendar reading of YYYY-MM-DD.
func refParseDate(s string) (y, m, d int, ok bool) {
	g := dateShape.FindStringSubmatch(s)
	if g == nil {
		return 0, 0, 0, false
	}
	y, _ = strconv.Atoi(g[1])
	m, _ = strconv.Atoi(g[2])
	d, _ = strconv.Atoi(g[3])
	leap := y%4 == 0 && (y%100 != 0 || y%400 == 0)
	days := []int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	if m < 1 || m > 12 {
		return 0, 0, 0, false
	}
	if leap {
		days[1] = 29
	}
	if d < 1 || d > days[m-1] || y < 1900 || y > 2999 {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// FuzzParseDate checks ParseDate against refParseDate: the same inputs are accepted, and an
// accepted date prints back exactly as given.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2024-02-29", "2023-02-29", "1900-01-01", "1899-12-31", "2999-12-31",
		"3000-01-01", "2024-1-05", "2024-01-05T00:00:00Z", "", "1970-01-01", "٢٠٢٤-٠١-٠١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		y, m, day, ok := refParseDate(s)
		if ok != (err == nil) {
			t.Fatalf("ParseDate(%q) = %s, %v; reference accepts: %v", s, d, err, ok)
		}
		if err != nil {
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDate(%q).String() = %q", s, d.String())
		}
		if want := DateOf(time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC)); d != want {
			t.Fatalf("ParseDate(%q) = %d, want %d", s, d, want)
		}
		if d < MinDate || d > MaxDate {
			t.Fatalf("ParseDate(%q) = %d outside the bounds", s, d)
		}
	})
}
