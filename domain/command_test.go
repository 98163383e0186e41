package domain

import (
	"strings"
	"testing"
)

func TestValidateCommandAcceptsWellFormed(t *testing.T) {
	for _, cmd := range []Command{
		createCmd("o", "c"),
		createCmd("o", "c", func(c *CreateOpportunity) {
			c.PipelineID, c.StageID, c.LeadID, c.Source, c.NextStep = "enterprise", "solution", "lead-1", "web", "call"
			c.Probability, c.ForecastCategory = ptr(0), ptr("omitted")
			c.Amount, c.Currency = "0", "JPY"
		}),
		updateCmd("o", "c", UpdateOpportunity{}),                                           // changes nothing, still well-formed
		updateCmd("o", "c", UpdateOpportunity{Amount: ptr("12.5")}),                        // currency from the state
		updateCmd("o", "c", UpdateOpportunity{Amount: ptr("1.234"), Currency: ptr("KWD")}), // parsed in KWD
		updateCmd("o", "c", UpdateOpportunity{NextStep: ptr("")}),                          // clearing next step
		updateCmd("o", "c", UpdateOpportunity{ClearProbability: true, ClearForecastCategory: true}),
		updateCmd("o", "c", UpdateOpportunity{Probability: ptr(100), ForecastCategory: ptr("commit")}),
		stageCmd("o", "c", "proposal"),
		wonCmd("o", "c", CloseWon{}),
		wonCmd("o", "c", CloseWon{CloseDate: ptr("2025-01-31"), Amount: ptr("10")}),
		lostCmd("o", "c", CloseLost{Reason: "price"}),
		reopenCmd("o", "c", "discovery"),
		withExpected(stageCmd("o", "c", "proposal"), 0),
	} {
		if err := ValidateCommand(cmd); err != nil {
			t.Errorf("ValidateCommand(%s): %v", cmd.Type, err)
		}
	}
}

func TestValidateCommandRefuses(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	create := func(mod func(*CreateOpportunity)) Command { return createCmd("o", "c", mod) }
	update := func(u UpdateOpportunity) Command { return updateCmd("o", "c", u) }
	for _, tc := range []struct {
		name   string
		cmd    Command
		fields []string
	}{
		{"no command id", Command{Type: CmdChangeStage, OpportunityID: "o", ChangeStage: &ChangeStage{StageID: "s"}}, []string{"commandId"}},
		{"no opportunity id", Command{Type: CmdChangeStage, CommandID: "c", ChangeStage: &ChangeStage{StageID: "s"}}, []string{"opportunityId"}},
		{"opportunity id too long", stageCmd(long(201), "c", "s"), []string{"opportunityId"}},
		{"command id too long", stageCmd("o", long(201), "s"), []string{"commandId"}},
		{"negative expected version", withExpected(stageCmd("o", "c", "s"), -1), []string{"expectedVersion"}},
		{"actor too long", func() Command { c := stageCmd("o", "c", "s"); c.Actor = long(1001); return c }(), []string{"actor"}},
		{"unknown type", Command{Type: "Delete", CommandID: "c", OpportunityID: "o"}, []string{"type"}},
		{"no body", Command{Type: CmdCloseWon, CommandID: "c", OpportunityID: "o"}, []string{"type"}},
		{"body of another type", Command{Type: CmdCloseWon, CommandID: "c", OpportunityID: "o", Reopen: &Reopen{StageID: "s"}}, []string{"type"}},
		{"two bodies", Command{Type: CmdCloseWon, CommandID: "c", OpportunityID: "o", CloseWon: &CloseWon{}, Reopen: &Reopen{StageID: "s"}}, []string{"type"}},

		{"create without name", create(func(c *CreateOpportunity) { c.Name = " " }), []string{"name"}},
		{"create name 256 chars", create(func(c *CreateOpportunity) { c.Name = long(256) }), []string{"name"}},
		{"create name not UTF-8", create(func(c *CreateOpportunity) { c.Name = "\xff" }), []string{"name"}},
		{"create without account", create(func(c *CreateOpportunity) { c.AccountID = "" }), []string{"accountId"}},
		{"create without owner", create(func(c *CreateOpportunity) { c.OwnerID = "" }), []string{"ownerId"}},
		{"create source too long", create(func(c *CreateOpportunity) { c.Source = long(1001) }), []string{"source"}},
		{"create without amount", create(func(c *CreateOpportunity) { c.Amount = "" }), []string{"amount"}},
		{"create negative amount", create(func(c *CreateOpportunity) { c.Amount = "-1.00" }), []string{"amount"}},
		{"create amount too precise", create(func(c *CreateOpportunity) { c.Amount = "1.001" }), []string{"amount"}},
		{"create JPY with decimals", create(func(c *CreateOpportunity) { c.Amount, c.Currency = "100.00", "JPY" }), []string{"amount"}},
		{"create without currency", create(func(c *CreateOpportunity) { c.Currency = "" }), []string{"currency"}},
		{"create unknown currency", create(func(c *CreateOpportunity) { c.Currency = "ABC" }), []string{"currency"}},
		{"create unknown currency and bad amount", create(func(c *CreateOpportunity) { c.Currency, c.Amount = "ABC", "1e3" }), []string{"currency", "amount"}},
		{"create without close date", create(func(c *CreateOpportunity) { c.CloseDate = "" }), []string{"closeDate"}},
		{"create bad close date", create(func(c *CreateOpportunity) { c.CloseDate = "2025-02-30" }), []string{"closeDate"}},
		{"create probability 101", create(func(c *CreateOpportunity) { c.Probability = ptr(101) }), []string{"probability"}},
		{"create probability -1", create(func(c *CreateOpportunity) { c.Probability = ptr(-1) }), []string{"probability"}},
		{"create unknown category", create(func(c *CreateOpportunity) { c.ForecastCategory = ptr("upside") }), []string{"forecastCategory"}},
		{"create closed category", create(func(c *CreateOpportunity) { c.ForecastCategory = ptr("closed") }), []string{"forecastCategory"}},
		{"create reports every field", create(func(c *CreateOpportunity) { c.Name, c.Amount, c.CloseDate = "", "x", "y" }), []string{"name", "amount", "closeDate"}},

		{"update blank name", update(UpdateOpportunity{Name: ptr("")}), []string{"name"}},
		{"update blank account", update(UpdateOpportunity{AccountID: ptr(" ")}), []string{"accountId"}},
		{"update blank owner", update(UpdateOpportunity{OwnerID: ptr("")}), []string{"ownerId"}},
		{"update next step too long", update(UpdateOpportunity{NextStep: ptr(long(1001))}), []string{"nextStep"}},
		{"update amount shape", update(UpdateOpportunity{Amount: ptr("12,50")}), []string{"amount"}},
		{"update amount in given currency", update(UpdateOpportunity{Amount: ptr("1.5"), Currency: ptr("JPY")}), []string{"amount"}},
		{"update unknown currency", update(UpdateOpportunity{Currency: ptr("EURO")}), []string{"currency"}},
		{"update bad close date", update(UpdateOpportunity{CloseDate: ptr("31/12/2025")}), []string{"closeDate"}},
		{"update probability range", update(UpdateOpportunity{Probability: ptr(150)}), []string{"probability"}},
		{"update probability set and cleared", update(UpdateOpportunity{Probability: ptr(5), ClearProbability: true}), []string{"probability"}},
		{"update category closed", update(UpdateOpportunity{ForecastCategory: ptr("closed")}), []string{"forecastCategory"}},
		{"update category set and cleared", update(UpdateOpportunity{ForecastCategory: ptr("commit"), ClearForecastCategory: true}), []string{"forecastCategory"}},

		{"stage without id", stageCmd("o", "c", ""), []string{"stageId"}},
		{"close won bad date", wonCmd("o", "c", CloseWon{CloseDate: ptr("2025-13-01")}), []string{"closeDate"}},
		{"close won bad amount", wonCmd("o", "c", CloseWon{Amount: ptr("-5")}), []string{"amount"}},
		{"close lost without reason", lostCmd("o", "c", CloseLost{}), []string{"reason"}},
		{"close lost blank reason", lostCmd("o", "c", CloseLost{Reason: " \t"}), []string{"reason"}},
		{"close lost long note", lostCmd("o", "c", CloseLost{Reason: "r", Note: long(1001)}), []string{"note"}},
		{"close lost long competitor", lostCmd("o", "c", CloseLost{Reason: "r", Competitor: long(1001)}), []string{"competitor"}},
		{"reopen without stage", reopenCmd("o", "c", ""), []string{"stageId"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantRejection(t, ValidateCommand(tc.cmd), CodeInvalid, tc.fields...)
		})
	}
}

// TestValidateCommandCountsCharacters: limits are in characters, not bytes, so non-Latin
// names get the same room.
func TestValidateCommandCountsCharacters(t *testing.T) {
	name := strings.Repeat("日", 255) // 765 bytes
	if err := ValidateCommand(createCmd("o", "c", func(c *CreateOpportunity) { c.Name = name })); err != nil {
		t.Fatalf("255-character name refused: %v", err)
	}
	if err := ValidateCommand(createCmd("o", "c", func(c *CreateOpportunity) { c.Name = name + "日" })); err == nil {
		t.Fatal("256-character name accepted")
	}
}

// Ids are 1..128 characters of IDAlphabet; a command id is any printable ASCII without spaces
// (an Idempotency-Key); texts refuse controls and bidi controls, notes allow line breaks.
func TestIDsAndTextCharacters(t *testing.T) {
	refused := func(cmd Command) []string {
		t.Helper()
		r, ok := AsRejection(ValidateCommand(cmd))
		if !ok {
			return nil
		}
		var fs []string
		for _, f := range r.Fields {
			fs = append(fs, f.Field)
		}
		return fs
	}
	for _, id := range []string{"opp-1", "a", "A.b_c:d-9", strings.Repeat("z", 128), "018f2c1e-7b7a-7cc3-9c1e-2b8f6f0a9d11"} {
		if fs := refused(stageCmd(id, "c", "s")); fs != nil {
			t.Errorf("opportunity id %q refused: %v", id, fs)
		}
		if fs := refused(createCmd("o", "c", func(c *CreateOpportunity) { c.AccountID, c.OwnerID, c.LeadID = id, id, id })); fs != nil {
			t.Errorf("account/owner/lead id %q refused: %v", id, fs)
		}
	}
	for _, id := range []string{"a b", "a/b", "a\x00b", "a\nb", "é", "a|b", "a?b", "\u202eabc", strings.Repeat("z", 129), "a%2F"} {
		if fs := refused(stageCmd(id, "c", "s")); len(fs) != 1 || fs[0] != "opportunityId" {
			t.Errorf("opportunity id %q: refused fields %v", id, fs)
		}
		if fs := refused(stageCmd("o", "c", id)); len(fs) != 1 || fs[0] != "stageId" {
			t.Errorf("stage id %q: refused fields %v", id, fs)
		}
		if fs := refused(createCmd("o", "c", func(c *CreateOpportunity) { c.OwnerID, c.PipelineID = id, id })); len(fs) != 2 {
			t.Errorf("owner/pipeline id %q: refused fields %v", id, fs)
		}
	}
	for _, cid := range []string{"c", "k+/=base64", "~!@#$%^&*()"} {
		if fs := refused(stageCmd("o", cid, "s")); fs != nil {
			t.Errorf("command id %q refused: %v", cid, fs)
		}
	}
	for _, cid := range []string{"a b", "a\x00", "é", "\x7f"} {
		if fs := refused(stageCmd("o", cid, "s")); len(fs) != 1 || fs[0] != "commandId" {
			t.Errorf("command id %q: refused fields %v", cid, fs)
		}
	}
	for _, name := range []string{"Acme\x00", "Acme\x1b[31mred", "two\nlines", "tab\there", "\u202eevil", "iso\u2066late", "del\x7f", "c1\u0085"} {
		if fs := refused(createCmd("o", "c", func(c *CreateOpportunity) { c.Name = name })); len(fs) != 1 || fs[0] != "name" {
			t.Errorf("name %q: refused fields %v", name, fs)
		}
		lost := Command{Type: CmdCloseLost, CommandID: "c", OpportunityID: "o", Actor: name, CloseLost: &CloseLost{Reason: "price"}}
		if fs := refused(lost); len(fs) != 1 || fs[0] != "actor" {
			t.Errorf("actor %q: refused fields %v", name, fs)
		}
	}
	for _, name := range []string{"شركة\u200f", "Zürich AG", "東京"} {
		if fs := refused(createCmd("o", "c", func(c *CreateOpportunity) { c.Name = name })); fs != nil {
			t.Errorf("name %q refused: %v", name, fs)
		}
	}
	note := Command{Type: CmdCloseLost, CommandID: "c", OpportunityID: "o", CloseLost: &CloseLost{Reason: "price", Note: "line 1\nline 2\r\n\tindented"}}
	if fs := refused(note); fs != nil {
		t.Errorf("multi-line note refused: %v", fs)
	}
	note.CloseLost.Note = "nul\x00"
	if fs := refused(note); len(fs) != 1 || fs[0] != "note" {
		t.Errorf("note with NUL: refused fields %v", fs)
	}
	if fs := refused(createCmd("o", "c", func(c *CreateOpportunity) { c.NextStep = "call\nthen mail" })); fs != nil {
		t.Errorf("multi-line next step refused: %v", fs)
	}
	p := DefaultPipeline()
	p.Stages[0].Name = "Quali\u202efication"
	if r, ok := AsRejection(p.Validate()); !ok || len(r.Fields) != 1 {
		t.Errorf("stage name with a bidi override: %v", p.Validate())
	}
}
