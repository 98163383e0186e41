package domain

import (
	"strings"
	"unicode/utf8"
)

// Limits on command text. Ids are keys and URL segments; free text is bounded so one command
// always fits in a Kafka record with room to spare.
const (
	MaxIDLen   = 128  // every id: opportunityId, accountId, ownerId, pipelineId, stageId, leadId, commandId
	MaxTextLen = 1000 // every other text field except the name
	MaxNameLen = 255  // opportunity name
)

// IDAlphabet is the README's stated set of an id's characters (besides a command id's, see
// checkCommandID): ids are Kafka keys, URL path segments, log fields and parts of other keys
// (the history topic's <id>|<version>), where a NUL, a newline, a slash or a bidi override
// would each do harm.
const IDAlphabet = "A-Z a-z 0-9 . _ : -"

// isIDChar reports whether c is in IDAlphabet.
func isIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
}

// ValidateCommand runs the checks that need no state: the HTTP gateway runs it to answer 422
// before anything is sent, and Decide runs it again because commands also arrive from
// upstream services that never passed the gateway. It returns a *Rejection with CodeInvalid
// listing every bad field by its JSON name (API.md), or nil.
//
// An amount is parsed in full when the command carries its currency; otherwise only its shape
// is checked here and Decide parses it in the opportunity's currency.
func ValidateCommand(cmd Command) error {
	var errs fieldErrors
	checkCommandID(&errs, "commandId", cmd.CommandID)
	checkID(&errs, "opportunityId", cmd.OpportunityID, true)
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
			checkID(&errs, "stageId", cmd.ChangeStage.StageID, true)
		case CmdCloseWon:
			validateCloseWon(&errs, cmd.CloseWon)
		case CmdCloseLost:
			checkText(&errs, "reason", cmd.CloseLost.Reason, MaxTextLen, true)
			checkText(&errs, "competitor", cmd.CloseLost.Competitor, MaxTextLen, false)
			checkNote(&errs, "note", cmd.CloseLost.Note, MaxTextLen)
			checkDate(&errs, "closeDate", cmd.CloseLost.CloseDate, false)
		case CmdReopen:
			checkID(&errs, "stageId", cmd.Reopen.StageID, true)
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
	checkID(errs, "accountId", c.AccountID, true)
	checkID(errs, "ownerId", c.OwnerID, true)
	checkID(errs, "pipelineId", c.PipelineID, false)
	checkID(errs, "stageId", c.StageID, false)
	checkID(errs, "leadId", c.LeadID, false)
	checkText(errs, "source", c.Source, MaxTextLen, false)
	checkNote(errs, "nextStep", c.NextStep, MaxTextLen)
	cur := c.Currency
	checkAmount(errs, "amount", &c.Amount, &cur, true)
	checkDate(errs, "closeDate", &c.CloseDate, true)
	checkProbability(errs, c.Probability, false)
	checkCategoryOverride(errs, c.ForecastCategory, false)
}

func validateUpdate(errs *fieldErrors, u *UpdateOpportunity) {
	checkOptText(errs, "name", u.Name, MaxNameLen, true)
	if u.AccountID != nil {
		checkID(errs, "accountId", *u.AccountID, true)
	}
	if u.OwnerID != nil {
		checkID(errs, "ownerId", *u.OwnerID, true)
	}
	if u.NextStep != nil {
		checkNote(errs, "nextStep", *u.NextStep, MaxTextLen)
	}
	checkAmount(errs, "amount", u.Amount, u.Currency, false)
	checkDate(errs, "closeDate", u.CloseDate, false)
	checkProbability(errs, u.Probability, u.ClearProbability)
	checkCategoryOverride(errs, u.ForecastCategory, u.ClearForecastCategory)
}

func validateCloseWon(errs *fieldErrors, c *CloseWon) {
	checkDate(errs, "closeDate", c.CloseDate, false)
	checkAmount(errs, "amount", c.Amount, nil, false)
}

// checkID requires an id of 1..MaxIDLen characters of IDAlphabet (when not required, empty
// is allowed too).
func checkID(errs *fieldErrors, field, id string, required bool) {
	checkIDChars(errs, field, id, required, MaxIDLen, isIDChar, "letters, digits, '.', '_', ':' and '-'")
}

// checkIDChars requires 1..maxLen bytes of id, each accepted by ok, which alphabet names.
func checkIDChars(errs *fieldErrors, field, id string, required bool, maxLen int, ok func(byte) bool, alphabet string) {
	switch {
	case id == "":
		if required {
			errs.add(field, "is required")
		}
	case len(id) > maxLen:
		errs.add(field, "must be at most %d characters, has %d", maxLen, len(id))
	default:
		for i := 0; i < len(id); i++ {
			if !ok(id[i]) {
				errs.add(field, "may contain only %s (%q at byte %d)", alphabet, rune(id[i]), i)
				return
			}
		}
	}
}

// checkCommandID requires a command id of 1..MaxIDLen printable ASCII characters without
// spaces: wider than IDAlphabet because it is also the Idempotency-Key a client chose (base64
// with '+', '/' and '=', say), but never a control, a space or a non-ASCII character.
func checkCommandID(errs *fieldErrors, field, id string) {
	switch {
	case id == "":
		errs.add(field, "is required")
	case len(id) > MaxIDLen:
		errs.add(field, "must be at most %d characters, has %d", MaxIDLen, len(id))
	default:
		for i := 0; i < len(id); i++ {
			if id[i] <= ' ' || id[i] > '~' {
				errs.add(field, "may contain only printable ASCII characters without spaces (%q at byte %d)", rune(id[i]), i)
				return
			}
		}
	}
}

// checkText checks UTF-8 validity (Avro and JSON strings must be UTF-8), that the text holds
// no control or bidi-control character, its length in characters, and, when required, that
// the value is not blank.
func checkText(errs *fieldErrors, field, v string, maxLen int, required bool) {
	checkTextWith(errs, field, v, maxLen, required, false)
}

// checkNote is checkText for multi-line free text, which may hold tabs and line breaks.
func checkNote(errs *fieldErrors, field, v string, maxLen int) {
	checkTextWith(errs, field, v, maxLen, false, true)
}

func checkTextWith(errs *fieldErrors, field, v string, maxLen int, required, multiline bool) {
	switch {
	case !utf8.ValidString(v):
		errs.add(field, "must be valid UTF-8")
	case required && isBlank(v):
		errs.add(field, "is required")
	case utf8.RuneCountInString(v) > maxLen:
		errs.add(field, "must be at most %d characters, has %d", maxLen, utf8.RuneCountInString(v))
	default:
		if r, ok := forbiddenRune(v, multiline); ok {
			errs.add(field, "must not contain control or bidi-control characters (U+%04X)", r)
		}
	}
}

// forbiddenRune finds the first character a text must not hold: C0 and C1 controls and DEL
// (a NUL, an escape sequence that rewrites a terminal, a line break that forges a log line;
// tab, LF and CR are allowed in multi-line text) and the bidi embeddings, overrides and
// isolates (U+202A..U+202E, U+2066..U+2069), which make text display other than it reads
// ("Trojan Source"). Plain direction marks (U+200E, U+200F) stay allowed: right-to-left
// names need them.
func forbiddenRune(s string, multiline bool) (rune, bool) {
	for _, r := range s {
		switch {
		case multiline && (r == '\t' || r == '\n' || r == '\r'):
		case r < 0x20, r >= 0x7f && r < 0xa0, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return r, true
		}
	}
	return 0, false
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
