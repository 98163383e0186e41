package domain

import (
	"strings"
	"unicode/utf8"
)

// Limits on command text. Ids are keys and URL segments; free text is bounded so one command
// always fits in a Kafka record with room to spare.
const (
	MaxIDLen   = 200  // commandId, opportunityId
	MaxTextLen = 1000 // every other text field except the name
	MaxNameLen = 255  // opportunity name
)

// ValidateCommand runs the checks that need no state: the HTTP gateway runs it to answer 422
// before anything is sent, and Decide runs it again because commands also arrive from
// upstream services that never passed the gateway. It returns a *Rejection with CodeInvalid
// listing every bad field by its JSON name (API.md), or nil.
//
// An amount is parsed in full when the command carries its currency; otherwise only its shape
// is checked here and Decide parses it in the opportunity's currency.
func ValidateCommand(cmd Command) error {
	var errs fieldErrors
	checkID(&errs, "commandId", cmd.CommandID)
	checkID(&errs, "opportunityId", cmd.OpportunityID)
	checkText(&errs, "actor", cmd.Actor, MaxTextLen, false)
	if cmd.ExpectedVersion != nil && *cmd.ExpectedVersion < 0 {
		errs.add("expectedVersion", "must be 0 or more, got %d", *cmd.ExpectedVersion)
	}
	if checkBody(&errs, cmd) {
		switch cmd.Type {
		case CmdCreate:
			validateCreate(&errs, cmd.Create)
		case CmdUpdate:
			validateUpdate(&errs, cmd.Update)
		case CmdChangeStage:
			checkText(&errs, "stageId", cmd.ChangeStage.StageID, MaxTextLen, true)
		case CmdCloseWon:
			validateCloseWon(&errs, cmd.CloseWon)
		case CmdCloseLost:
			checkText(&errs, "reason", cmd.CloseLost.Reason, MaxTextLen, true)
			checkText(&errs, "competitor", cmd.CloseLost.Competitor, MaxTextLen, false)
			checkText(&errs, "note", cmd.CloseLost.Note, MaxTextLen, false)
		case CmdReopen:
			checkText(&errs, "stageId", cmd.Reopen.StageID, MaxTextLen, true)
		}
	}
	return errs.rejection(string(cmd.Type) + " command")
}

// checkBody makes sure exactly one body is set and that it is the one Type names, so the rest
// of the domain can dereference it without checks. It reports whether the body is usable.
func checkBody(errs *fieldErrors, cmd Command) bool {
	set := 0
	for _, isSet := range []bool{cmd.Create != nil, cmd.Update != nil, cmd.ChangeStage != nil,
		cmd.CloseWon != nil, cmd.CloseLost != nil, cmd.Reopen != nil} {
		if isSet {
			set++
		}
	}
	var matches bool
	switch cmd.Type {
	case CmdCreate:
		matches = cmd.Create != nil
	case CmdUpdate:
		matches = cmd.Update != nil
	case CmdChangeStage:
		matches = cmd.ChangeStage != nil
	case CmdCloseWon:
		matches = cmd.CloseWon != nil
	case CmdCloseLost:
		matches = cmd.CloseLost != nil
	case CmdReopen:
		matches = cmd.Reopen != nil
	default:
		errs.add("type", "unknown command type %q", cmd.Type)
		return false
	}
	switch {
	case set == 1 && !matches:
		errs.add("type", "a %s command carries the body of another command type", cmd.Type)
		return false
	case set != 1:
		errs.add("type", "a %s command must carry exactly one body, has %d", cmd.Type, set)
		return false
	}
	return true
}

func validateCreate(errs *fieldErrors, c *CreateOpportunity) {
	checkText(errs, "name", c.Name, MaxNameLen, true)
	checkText(errs, "accountId", c.AccountID, MaxTextLen, true)
	checkText(errs, "ownerId", c.OwnerID, MaxTextLen, true)
	checkText(errs, "pipelineId", c.PipelineID, MaxTextLen, false)
	checkText(errs, "stageId", c.StageID, MaxTextLen, false)
	checkText(errs, "leadId", c.LeadID, MaxTextLen, false)
	checkText(errs, "source", c.Source, MaxTextLen, false)
	checkText(errs, "nextStep", c.NextStep, MaxTextLen, false)
	cur := c.Currency
	checkAmount(errs, "amount", &c.Amount, &cur, true)
	checkDate(errs, "closeDate", &c.CloseDate, true)
	checkProbability(errs, c.Probability, false)
	checkCategoryOverride(errs, c.ForecastCategory, false)
}

func validateUpdate(errs *fieldErrors, u *UpdateOpportunity) {
	checkOptText(errs, "name", u.Name, MaxNameLen, true)
	checkOptText(errs, "accountId", u.AccountID, MaxTextLen, true)
	checkOptText(errs, "ownerId", u.OwnerID, MaxTextLen, true)
	checkOptText(errs, "nextStep", u.NextStep, MaxTextLen, false)
	checkAmount(errs, "amount", u.Amount, u.Currency, false)
	checkDate(errs, "closeDate", u.CloseDate, false)
	checkProbability(errs, u.Probability, u.ClearProbability)
	checkCategoryOverride(errs, u.ForecastCategory, u.ClearForecastCategory)
}

func validateCloseWon(errs *fieldErrors, c *CloseWon) {
	checkDate(errs, "closeDate", c.CloseDate, false)
	checkAmount(errs, "amount", c.Amount, nil, false)
}

// checkID requires a non-empty id of at most MaxIDLen characters.
func checkID(errs *fieldErrors, field, id string) {
	checkText(errs, field, id, MaxIDLen, true)
}

// checkText checks UTF-8 validity (Avro and JSON strings must be UTF-8), length in
// characters, and, when required, that the value is not blank.
func checkText(errs *fieldErrors, field, v string, maxLen int, required bool) {
	switch {
	case !utf8.ValidString(v):
		errs.add(field, "must be valid UTF-8")
	case required && isBlank(v):
		errs.add(field, "is required")
	case utf8.RuneCountInString(v) > maxLen:
		errs.add(field, "must be at most %d characters, has %d", maxLen, utf8.RuneCountInString(v))
	}
}

// checkOptText checks a field of a partial update; nil means "leave alone".
func checkOptText(errs *fieldErrors, field string, v *string, maxLen int, required bool) {
	if v != nil {
		checkText(errs, field, *v, maxLen, required)
	}
}

// checkAmount validates an amount and its currency. currency nil means "the opportunity's
// currency", unknown here: then only the amount's shape is checked.
func checkAmount(errs *fieldErrors, field string, amount, currency *string, required bool) {
	currencyOK := false
	if currency != nil {
		if _, ok := CurrencyExponent(*currency); ok {
			currencyOK = true
		} else if *currency == "" {
			errs.add("currency", "is required (ISO 4217 code)")
		} else {
			errs.add("currency", "%q is not an ISO 4217 currency code we accept", *currency)
		}
	}
	switch {
	case amount == nil || (required && *amount == ""):
		if required {
			errs.add(field, "is required")
		}
	case currencyOK:
		if _, err := ParseAmount(*amount, *currency); err != nil {
			errs.add(field, "%v", err)
		}
	default:
		if _, _, err := splitDecimal(*amount); err != nil {
			errs.add(field, "%v", err)
		}
	}
}

// checkDate validates an optional or required YYYY-MM-DD field.
func checkDate(errs *fieldErrors, field string, v *string, required bool) {
	switch {
	case v == nil || (required && *v == ""):
		if required {
			errs.add(field, "is required")
		}
	default:
		if _, err := ParseDate(*v); err != nil {
			errs.add(field, "%v", err)
		}
	}
}

func checkProbability(errs *fieldErrors, p *int, clear bool) {
	if p == nil {
		return
	}
	if clear {
		errs.add("probability", "cannot be set and cleared in one command")
	}
	if *p < 0 || *p > 100 {
		errs.add("probability", "must be within 0..100, got %d", *p)
	}
}

// checkCategoryOverride refuses unknown categories and "closed": only a won deal is closed, and
// a closed deal takes no override, so a "closed" override can never be right.
func checkCategoryOverride(errs *fieldErrors, c *string, clear bool) {
	if c == nil {
		return
	}
	if clear {
		errs.add("forecastCategory", "cannot be set and cleared in one command")
	}
	switch cat := ForecastCategory(*c); {
	case cat == CategoryClosed:
		errs.add("forecastCategory", "closed is reserved for won deals; use CloseWon")
	case !knownCategory(cat):
		errs.add("forecastCategory", "must be one of pipeline, best_case, commit, omitted, got %q", *c)
	}
}

func isBlank(s string) bool { return strings.TrimSpace(s) == "" }
