package codecs

import (
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.FixedZone("test", -5*3600)
	}
	return loc
}
