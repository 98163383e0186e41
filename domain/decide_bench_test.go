package domain

import (
	"strconv"
	"testing"
)

// The domain decision per command type, on an opportunity with a realistic past (a few stage
// visits, a full ring of command ids): what the processor pays in Decide per command,
// allocations included.
func BenchmarkDecide(b *testing.B) {
	w := newWorld()
	dc := w.ctx()
	// Each configuration is handed out once, as the processor's pipeline cache does, and
	// validated once (DecideContext.CheckPipeline).
	valid := map[*Pipeline]error{}
	pipes := map[string]*Pipeline{}
	for id, p := range w.pipelines {
		pipes[id] = &p
		valid[&p] = p.Validate()
	}
	dc.Pipelines = func(id string) (*Pipeline, bool) { p, ok := pipes[id]; return p, ok }
	dc.CheckPipeline = func(p *Pipeline) error { return valid[p] }

	base, err := Decide(nil, createCmd("opp-1", "c0"), dc)
	if err != nil {
		b.Fatal(err)
	}
	cur := base.Next
	for i, st := range []string{"discovery", "proposal", "discovery", "proposal"} {
		d, err := Decide(&cur, stageCmd("opp-1", "s"+strconv.Itoa(i), st), dc)
		if err != nil {
			b.Fatal(err)
		}
		cur = d.Next
	}
	for i := 0; i < 64; i++ {
		amount := strconv.Itoa(10000+i) + ".00"
		d, err := Decide(&cur, updateCmd("opp-1", "u"+strconv.Itoa(i), UpdateOpportunity{Amount: &amount}), dc)
		if err != nil {
			b.Fatal(err)
		}
		cur = d.Next
	}
	amount := "20000.00"
	for _, bc := range []struct {
		name string
		cur  *Opportunity
		cmd  Command
	}{
		{"create", nil, createCmd("opp-2", "new")},
		{"update", &cur, updateCmd("opp-1", "x", UpdateOpportunity{Amount: &amount})},
		{"stage", &cur, stageCmd("opp-1", "x", "negotiation")},
		{"won", &cur, wonCmd("opp-1", "x", CloseWon{})},
		{"lost", &cur, lostCmd("opp-1", "x", CloseLost{Reason: "price"})},
		{"duplicate", &cur, updateCmd("opp-1", "u63", UpdateOpportunity{Amount: &amount})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decide(bc.cur, bc.cmd, dc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
