package views

import (
	"fmt"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

func TestCommandIndex(t *testing.T) {
	var c commandIndex
	c.note("opp-1", &domain.Aggregate{
		State:      domain.Opportunity{RecentCommandIDs: []string{"c1", "c2"}},
		Rejections: []domain.RejectedCommand{{CommandID: "c3"}},
	})
	for _, id := range []string{"c1", "c2", "c3"} {
		if opp, ok := c.lookup(id); !ok || opp != "opp-1" {
			t.Fatalf("lookup(%s) = %q, %v", id, opp, ok)
		}
	}
	if _, ok := c.lookup("c4"); ok {
		t.Fatal("an id never noted is found")
	}
	// Bounded: the oldest ids go once it holds more than twice the bound.
	for i := range 2*maxIndexedCommands + 1 {
		c.note("opp-2", &domain.Aggregate{State: domain.Opportunity{RecentCommandIDs: []string{fmt.Sprint("n", i)}}})
	}
	if _, ok := c.lookup("c1"); ok {
		t.Fatal("the oldest id survived past the bound")
	}
	if opp, ok := c.lookup(fmt.Sprint("n", 2*maxIndexedCommands)); !ok || opp != "opp-2" {
		t.Fatal("the newest id is gone")
	}
	if len(c.m) > 2*maxIndexedCommands {
		t.Fatalf("index holds %d ids", len(c.m))
	}
}
