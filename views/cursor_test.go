package views

import (
	"errors"
	"testing"
)

func TestListCursor(t *testing.T) {
	for _, id := range []string{"opp-1", "a:b.c_d", "x"} {
		got, err := parseCursor(listCursor(id))
		if err != nil || got != id {
			t.Fatalf("round trip of %q: %q, %v", id, got, err)
		}
	}
	for _, bad := range []string{"garbage", "opp-1", "o!!", "o" + "Zm9vIGJhcg"} { // the last: "foo bar", not an id
		if _, err := parseCursor(bad); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("parseCursor(%q) = %v, want ErrInvalidCursor", bad, err)
		}
	}
	if got, err := parseCursor(""); got != "" || err != nil {
		t.Fatal("an empty cursor is the first page")
	}
}
