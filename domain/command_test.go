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
