package domain

import (
	"fmt"
	"time"
)

// MinDate and MaxDate bound the dates we accept (1900-01-01 .. 2999-12-31): a close date
// outside them is a typing error, and the bounds keep period arithmetic safe. They are
// constants (days since 1970-01-01) so that no package can move them; date_test.go checks them
// against the calendar.
const (
	MinDate Date = -25567 // 1900-01-01
	MaxDate Date = 376199 // 2999-12-31
)

// DateOf returns the UTC calendar date of t.
func DateOf(t time.Time) Date {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return Date(d.Unix() / 86400)
}

// ParseDate reads YYYY-MM-DD and refuses dates outside MinDate..MaxDate. It is strict
// (two-digit month and day, no time, no spaces, real calendar days only) so that a date has
// exactly one text form and String gives back what was parsed.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		// Not time's own error: it names a Go layout ("2006-01-02") no client knows.
		return 0, fmt.Errorf("date %s is not a calendar date YYYY-MM-DD", quoteShort(s))
	}
	d := DateOf(t)
	if d < MinDate || d > MaxDate {
		return 0, fmt.Errorf("date %q is outside 1900-01-01..2999-12-31", s)
	}
	return d, nil
}

// Time returns midnight UTC of the date.
func (d Date) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String writes the date as YYYY-MM-DD.
func (d Date) String() string { return d.Time().Format(time.DateOnly) }
