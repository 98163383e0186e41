package views

import (
	"errors"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/domain"
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

// A PUT's empty list and the view's absent one are the same configuration: waiting for the
// write to show must not wait for ever (it did, and answered 503 after 30 s).
func TestSamePipelineIgnoresEmptyVersusAbsentLists(t *testing.T) {
	p := domain.DefaultPipeline()
	q := domain.DefaultPipeline()
	for i := range p.Stages {
		p.Stages[i].RequiredFields = []string{}
		q.Stages[i].RequiredFields = nil
	}
	if !samePipeline(p, q) {
		t.Fatal("an empty and an absent list differ")
	}
	q.Stages[0].Probability++
	if samePipeline(p, q) {
		t.Fatal("a different probability compares equal")
	}
}
