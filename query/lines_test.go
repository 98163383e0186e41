package query

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// lineClock is the fixed "now" of the line tests; its nanoseconds show the truncation to the
// microseconds Avro keeps.
var lineClock = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))

// lineIDs returns an id generator yielding gen-1, gen-2, ...
func lineIDs() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("gen-%d", n) }
}

// lineDefaults is the envelope CommandFromJSON fills in when a line gives none.
func lineDefaults(typ domain.CommandType, oppID string) domain.Command {
	return domain.Command{
		Type: typ, CommandID: "gen-1", OpportunityID: oppID, Actor: "emit",
		IssuedAt: time.Date(2025, 3, 4, 4, 6, 7, 123456000, time.UTC),
	}
}

func TestCommandFromJSONAccepts(t *testing.T) {
	with := func(c domain.Command, f func(*domain.Command)) domain.Command { f(&c); return c }
	tests := []struct {
		name string
		line string
		want domain.Command
	}{
		{
			name: "create with id, defaults for the envelope",
			line: `{"type":"CreateOpportunity","id":"opp-1","name":"Acme","accountId":"acc-1","ownerId":"u-7","amount":"12500.00","currency":"USD","closeDate":"2025-06-30"}`,
			want: with(lineDefaults(domain.CmdCreate, "opp-1"), func(c *domain.Command) {
				c.Create = &domain.CreateOpportunity{Name: "Acme", AccountID: "acc-1", OwnerID: "u-7",
					Amount: "12500.00", Currency: "USD", CloseDate: "2025-06-30"}
			}),
		},
		{
			name: "create with every member and opportunityId",
			line: `{"type":"CreateOpportunity","opportunityId":"opp-2","name":"Acme","accountId":"acc-1","ownerId":"u-7",
				"pipelineId":"default","stageId":"discovery","amount":"1.50","currency":"EUR","closeDate":"2025-06-30",
				"probability":35,"forecastCategory":"commit","leadId":"lead-9","source":"web","nextStep":"call"}`,
			want: with(lineDefaults(domain.CmdCreate, "opp-2"), func(c *domain.Command) {
				c.Create = &domain.CreateOpportunity{Name: "Acme", AccountID: "acc-1", OwnerID: "u-7",
					PipelineID: "default", StageID: "discovery", Amount: "1.50", Currency: "EUR",
					CloseDate: "2025-06-30", Probability: ptr(35), ForecastCategory: ptr("commit"),
					LeadID: "lead-9", Source: "web", NextStep: "call"}
			}),
		},
		{
			name: "create with the same id twice",
			line: `{"type":"CreateOpportunity","id":"opp-3","opportunityId":"opp-3","name":"Acme","accountId":"acc-1","ownerId":"u-7","amount":"1","currency":"USD","closeDate":"2025-06-30"}`,
			want: with(lineDefaults(domain.CmdCreate, "opp-3"), func(c *domain.Command) {
				c.Create = &domain.CreateOpportunity{Name: "Acme", AccountID: "acc-1", OwnerID: "u-7",
					Amount: "1", Currency: "USD", CloseDate: "2025-06-30"}
			}),
		},
		{
			name: "create without id gets a fresh one",
			line: `{"type":"CreateOpportunity","name":"Acme","accountId":"acc-1","ownerId":"u-7","amount":"1","currency":"USD","closeDate":"2025-06-30"}`,
			want: with(lineDefaults(domain.CmdCreate, "gen-2"), func(c *domain.Command) {
				c.Create = &domain.CreateOpportunity{Name: "Acme", AccountID: "acc-1", OwnerID: "u-7",
					Amount: "1", Currency: "USD", CloseDate: "2025-06-30"}
			}),
		},
		{
			name: "create without id but with commandId derives the id like an Idempotency-Key",
			line: `{"type":"CreateOpportunity","commandId":"import-42","name":"Acme","accountId":"acc-1","ownerId":"u-7","amount":"1","currency":"USD","closeDate":"2025-06-30"}`,
			want: with(lineDefaults(domain.CmdCreate, DeriveOpportunityID("import-42")), func(c *domain.Command) {
				c.CommandID = "import-42"
				c.Create = &domain.CreateOpportunity{Name: "Acme", AccountID: "acc-1", OwnerID: "u-7",
					Amount: "1", Currency: "USD", CloseDate: "2025-06-30"}
			}),
		},
		{
			name: "update with every member",
			line: `{"type":"UpdateOpportunity","opportunityId":"opp-1","name":"N","accountId":"a","ownerId":"o","amount":"9.99","currency":"USD","closeDate":"2025-07-01","probability":40,"forecastCategory":"best_case","nextStep":"demo"}`,
			want: with(lineDefaults(domain.CmdUpdate, "opp-1"), func(c *domain.Command) {
				c.Update = &domain.UpdateOpportunity{Name: ptr("N"), AccountID: ptr("a"), OwnerID: ptr("o"),
					Amount: ptr("9.99"), Currency: ptr("USD"), CloseDate: ptr("2025-07-01"), Probability: ptr(40),
					ForecastCategory: ptr("best_case"), NextStep: ptr("demo")}
			}),
		},
		{
			name: "update: null probability and forecastCategory return to the stage default",
			line: `{"type":"UpdateOpportunity","opportunityId":"opp-1","probability":null,"forecastCategory":null}`,
			want: with(lineDefaults(domain.CmdUpdate, "opp-1"), func(c *domain.Command) {
				c.Update = &domain.UpdateOpportunity{ClearProbability: true, ClearForecastCategory: true}
			}),
		},
		{
			name: "update: absent probability leaves it alone, null nextStep clears it",
			line: `{"type":"UpdateOpportunity","opportunityId":"opp-1","nextStep":null}`,
			want: with(lineDefaults(domain.CmdUpdate, "opp-1"), func(c *domain.Command) {
				c.Update = &domain.UpdateOpportunity{NextStep: ptr("")}
			}),
		},
		{
			name: "change stage",
			line: `{"type":"ChangeStage","opportunityId":"opp-1","stageId":"proposal"}`,
			want: with(lineDefaults(domain.CmdChangeStage, "opp-1"), func(c *domain.Command) {
				c.ChangeStage = &domain.ChangeStage{StageID: "proposal"}
			}),
		},
		{
			name: "close won with date and amount",
			line: `{"type":"CloseWon","opportunityId":"opp-1","closeDate":"2025-05-01","amount":"100.00"}`,
			want: with(lineDefaults(domain.CmdCloseWon, "opp-1"), func(c *domain.Command) {
				c.CloseWon = &domain.CloseWon{CloseDate: ptr("2025-05-01"), Amount: ptr("100.00")}
			}),
		},
		{
			name: "close won with an empty body",
			line: `{"type":"CloseWon","opportunityId":"opp-1"}`,
			want: with(lineDefaults(domain.CmdCloseWon, "opp-1"), func(c *domain.Command) {
				c.CloseWon = &domain.CloseWon{}
			}),
		},
		{
			name: "close lost",
			line: `{"type":"CloseLost","opportunityId":"opp-1","reason":"price","competitor":"Globex","note":"too dear"}`,
			want: with(lineDefaults(domain.CmdCloseLost, "opp-1"), func(c *domain.Command) {
				c.CloseLost = &domain.CloseLost{Reason: "price", Competitor: "Globex", Note: "too dear"}
			}),
		},
		{
			name: "close lost on an earlier day",
			line: `{"type":"CloseLost","opportunityId":"opp-1","reason":"price","closeDate":"2025-04-30"}`,
			want: with(lineDefaults(domain.CmdCloseLost, "opp-1"), func(c *domain.Command) {
				c.CloseLost = &domain.CloseLost{Reason: "price", CloseDate: ptr("2025-04-30")}
			}),
		},
		{
			name: "reopen",
			line: `{"type":"Reopen","opportunityId":"opp-1","stageId":"discovery"}`,
			want: with(lineDefaults(domain.CmdReopen, "opp-1"), func(c *domain.Command) {
				c.Reopen = &domain.Reopen{StageID: "discovery"}
			}),
		},
		{
			name: "explicit envelope",
			line: `{"type":"Reopen","opportunityId":"opp-1","stageId":"discovery","commandId":"c-1","actor":"Zoë Admin",
				"expectedVersion":7,"issuedAt":"2025-01-02T03:04:05.678901234+02:00"}`,
			want: domain.Command{Type: domain.CmdReopen, CommandID: "c-1", OpportunityID: "opp-1", Actor: "Zoë Admin",
				ExpectedVersion: ptr(int64(7)), IssuedAt: time.Date(2025, 1, 2, 1, 4, 5, 678901000, time.UTC),
				Reopen: &domain.Reopen{StageID: "discovery"}},
		},
		{
			name: "null envelope members mean absent; empty actor is the default",
			line: `{"type":"ChangeStage","opportunityId":"opp-1","stageId":"s","commandId":null,"actor":"","expectedVersion":null,"issuedAt":null}`,
			want: with(lineDefaults(domain.CmdChangeStage, "opp-1"), func(c *domain.Command) {
				c.ChangeStage = &domain.ChangeStage{StageID: "s"}
			}),
		},
		{
			name: "surrounding white space",
			line: "  \t{\"type\":\"ChangeStage\",\"opportunityId\":\"opp-1\",\"stageId\":\"s\"}\r",
			want: with(lineDefaults(domain.CmdChangeStage, "opp-1"), func(c *domain.Command) {
				c.ChangeStage = &domain.ChangeStage{StageID: "s"}
			}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CommandFromJSON([]byte(tc.line), func() time.Time { return lineClock }, lineIDs())
			if err != nil {
				t.Fatalf("CommandFromJSON: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %s\nwant %s", dumpCommand(got), dumpCommand(tc.want))
			}
		})
	}
}

func TestCommandFromJSONRefuses(t *testing.T) {
	tests := []struct {
		name       string
		line       string
		wantCode   string
		wantFields []string // in order
		wantText   string   // in Error()
	}{
		{name: "not JSON", line: `{"type":`, wantCode: codeMalformedJSON, wantText: "not valid JSON"},
		{name: "garbage", line: `hello`, wantCode: codeMalformedJSON, wantText: "not valid JSON"},
		{name: "empty", line: ``, wantCode: codeMalformedJSON},
		{name: "array", line: `[{"type":"Reopen"}]`, wantCode: codeMalformedJSON, wantText: "must be a JSON object"},
		{name: "two objects", line: `{"type":"Reopen"}{}`, wantCode: codeMalformedJSON},
		{name: "invalid UTF-8", line: "{\"type\":\"Reopen\",\"stageId\":\"\xff\"}", wantCode: codeMalformedJSON, wantText: "UTF-8"},
		{name: "missing type", line: `{"opportunityId":"opp-1","stageId":"s"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"type"}, wantText: "must be one of CreateOpportunity"},
		{name: "unknown type", line: `{"type":"Delete","opportunityId":"opp-1"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"type"}, wantText: `"Delete" is not a command`},
		{name: "type in the wrong case", line: `{"type":"changeStage","opportunityId":"opp-1","stageId":"s"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"type"}},
		{name: "type is not a string", line: `{"type":3}`, wantCode: codeWrongType, wantFields: []string{"type"}},
		{name: "unknown members, sorted, with the mistyped ones after them",
			line:     `{"type":"ChangeStage","opportunityId":"opp-1","stageId":1,"zeta":1,"alpha":2}`,
			wantCode: codeUnknownField, wantFields: []string{"alpha", "zeta", "stageId"}, wantText: "unknown fields: alpha is not a known field"},
		{name: "id is a create member only", line: `{"type":"ChangeStage","id":"opp-1","stageId":"s"}`,
			wantCode: codeUnknownField, wantFields: []string{"id"}},
		{name: "a member of another command", line: `{"type":"Reopen","opportunityId":"opp-1","stageId":"s","reason":"x"}`,
			wantCode: codeUnknownField, wantFields: []string{"reason"}},
		{name: "amount as a number on create",
			line:     `{"type":"CreateOpportunity","id":"o","name":"A","accountId":"a","ownerId":"u","amount":12500.00,"currency":"USD","closeDate":"2025-06-30"}`,
			wantCode: codeWrongType, wantFields: []string{"amount"}, wantText: "money is never a JSON number"},
		{name: "amount as a number on update", line: `{"type":"UpdateOpportunity","opportunityId":"o","amount":5}`,
			wantCode: codeWrongType, wantFields: []string{"amount"}},
		{name: "amount as a number on close won", line: `{"type":"CloseWon","opportunityId":"o","amount":5}`,
			wantCode: codeWrongType, wantFields: []string{"amount"}},
		{name: "probability as a fraction", line: `{"type":"UpdateOpportunity","opportunityId":"o","probability":12.5}`,
			wantCode: codeWrongType, wantFields: []string{"probability"}},
		{name: "probability as a string", line: `{"type":"UpdateOpportunity","opportunityId":"o","probability":"50"}`,
			wantCode: codeWrongType, wantFields: []string{"probability"}},
		{name: "null on a PATCH member that cannot be cleared", line: `{"type":"UpdateOpportunity","opportunityId":"o","name":null}`,
			wantCode: codeWrongType, wantFields: []string{"name"}, wantText: "cannot be null"},
		{name: "envelope members of the wrong type",
			line:     `{"type":"Reopen","opportunityId":1,"commandId":2,"actor":true,"expectedVersion":"3","issuedAt":4,"stageId":"s"}`,
			wantCode: codeWrongType, wantFields: []string{"opportunityId", "commandId", "actor", "expectedVersion", "issuedAt"}},
		{name: "create misses its required members",
			line:     `{"type":"CreateOpportunity","id":"o","amount":"1","currency":"USD","closeDate":"2025-06-30"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"name", "accountId", "ownerId"}, wantText: "name is required"},
		{name: "create with bad values",
			line:     `{"type":"CreateOpportunity","id":"o","name":"A","accountId":"a","ownerId":"u","amount":"1.234","currency":"USD","closeDate":"2025-02-30","probability":101,"forecastCategory":"closed"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"amount", "closeDate", "probability", "forecastCategory"}},
		{name: "update probability out of range", line: `{"type":"UpdateOpportunity","opportunityId":"o","probability":150}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"probability"}, wantText: "probability must be within 0..100"},
		{name: "opportunityId required outside create", line: `{"type":"ChangeStage","stageId":"s"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"opportunityId"}},
		{name: "close lost without reason", line: `{"type":"CloseLost","opportunityId":"o"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"reason"}},
		{name: "reopen without stage", line: `{"type":"Reopen","opportunityId":"o"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"stageId"}},
		{name: "negative expectedVersion", line: `{"type":"Reopen","opportunityId":"o","stageId":"s","expectedVersion":-1}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"expectedVersion"}},
		{name: "issuedAt not RFC 3339", line: `{"type":"Reopen","opportunityId":"o","stageId":"s","issuedAt":"2025-01-02 03:04:05"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"issuedAt"}},
		{name: "empty commandId", line: `{"type":"Reopen","opportunityId":"o","stageId":"s","commandId":""}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"commandId"}},
		{name: "commandId not printable ASCII", line: `{"type":"Reopen","opportunityId":"o","stageId":"s","commandId":"ünï"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"commandId"}, wantText: "printable ASCII"},
		{name: "commandId too long", line: `{"type":"Reopen","opportunityId":"o","stageId":"s","commandId":"` + strings.Repeat("c", 201) + `"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"commandId"}},
		{name: "actor with a control character", line: `{"type":"Reopen","opportunityId":"o","stageId":"s","actor":"a\u0007b"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"actor"}},
		{name: "actor too long", line: `{"type":"Reopen","opportunityId":"o","stageId":"s","actor":"` + strings.Repeat("a", 201) + `"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"actor"}},
		{name: "id and opportunityId disagree",
			line:     `{"type":"CreateOpportunity","id":"o1","opportunityId":"o2","name":"A","accountId":"a","ownerId":"u","amount":"1","currency":"USD","closeDate":"2025-06-30"}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"id"}},
		{name: "envelope and body errors together",
			line:     `{"type":"CloseLost","opportunityId":"o","issuedAt":"yesterday","expectedVersion":-2}`,
			wantCode: string(domain.CodeInvalid), wantFields: []string{"issuedAt", "expectedVersion", "reason"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CommandFromJSON([]byte(tc.line), func() time.Time { return lineClock }, lineIDs())
			if err == nil {
				t.Fatalf("accepted: %s", dumpCommand(got))
			}
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("error %T %v, want *LineError", err, err)
			}
			if le.Code != tc.wantCode {
				t.Errorf("code %q, want %q (%v)", le.Code, tc.wantCode, err)
			}
			var fields []string
			for _, f := range le.Fields {
				fields = append(fields, f.Field)
				if !strings.Contains(err.Error(), f.Field+" "+f.Message) {
					t.Errorf("Error() %q does not list %s %s", err, f.Field, f.Message)
				}
			}
			if !slices.Equal(fields, tc.wantFields) {
				t.Errorf("fields %q, want %q (%v)", fields, tc.wantFields, err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("Error() %q does not contain %q", err, tc.wantText)
			}
			if strings.Contains(err.Error(), "request body") {
				t.Errorf("Error() %q speaks of a request body", err)
			}
			if !reflect.DeepEqual(got, domain.Command{}) {
				t.Errorf("a refused line returned a command: %s", dumpCommand(got))
			}
		})
	}
}

// A refusal by the domain's validation stays a *domain.Rejection in the chain, so code that
// already branches on rejection codes works for lines too.
func TestCommandFromJSONRejectionInChain(t *testing.T) {
	_, err := CommandFromJSON([]byte(`{"type":"CloseLost","opportunityId":"o"}`), nil, nil)
	rej, ok := domain.AsRejection(err)
	if !ok || rej.Code != domain.CodeInvalid {
		t.Fatalf("AsRejection(%v) = %v, %v", err, rej, ok)
	}
}

// nil now and newID fall back to the clock and random ids.
func TestCommandFromJSONNilDefaults(t *testing.T) {
	before := time.Now().UTC().Add(-time.Second)
	line := []byte(`{"type":"CreateOpportunity","name":"A","accountId":"a","ownerId":"u","amount":"1","currency":"USD","closeDate":"2025-06-30"}`)
	a, err := CommandFromJSON(line, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := CommandFromJSON(line, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.CommandID == "" || a.OpportunityID == "" || a.CommandID == b.CommandID || a.OpportunityID == b.OpportunityID ||
		a.CommandID == a.OpportunityID {
		t.Fatalf("ids not fresh: %s / %s", dumpCommand(a), dumpCommand(b))
	}
	if a.IssuedAt.Before(before) || a.IssuedAt.Location() != time.UTC {
		t.Fatalf("issuedAt %v, want about now in UTC", a.IssuedAt)
	}
}

// The HTTP handlers and CommandFromJSON share the body readers: a body sent over HTTP and the
// same body as a line (plus type, opportunityId and the headers' envelope members) give the
// same command, member for member.
func TestCommandFromJSONMatchesHTTP(t *testing.T) {
	tests := []struct {
		method, path, body string
		typ                domain.CommandType
		oppID              string // "" for a create that derives its id from the key
	}{
		{"POST", "/api/v1/opportunities", `{"name":"Acme","accountId":"acc-1","ownerId":"u-7","amount":"12500.00","currency":"USD","closeDate":"2025-06-30","probability":30,"forecastCategory":"commit","source":"web"}`, domain.CmdCreate, ""},
		{"PATCH", "/api/v1/opportunities/m-1", `{"name":"B","amount":"10.00","probability":null,"forecastCategory":"best_case","nextStep":null,"expectedVersion":1}`, domain.CmdUpdate, "m-1"},
		{"PATCH", "/api/v1/opportunities/m-1", `{"probability":20,"forecastCategory":null}`, domain.CmdUpdate, "m-1"},
		{"POST", "/api/v1/opportunities/m-1/stage", `{"stageId":"proposal"}`, domain.CmdChangeStage, "m-1"},
		{"POST", "/api/v1/opportunities/m-1/close-won", `{"closeDate":"2025-05-01","amount":"9.00"}`, domain.CmdCloseWon, "m-1"},
		{"POST", "/api/v1/opportunities/m-1/close-lost", `{"reason":"price","competitor":"Globex"}`, domain.CmdCloseLost, "m-1"},
		{"POST", "/api/v1/opportunities/m-1/reopen", `{"stageId":"discovery"}`, domain.CmdReopen, "m-1"},
	}
	for i, tc := range tests {
		t.Run(string(tc.typ), func(t *testing.T) {
			e := newEnv(t)
			key := fmt.Sprintf("key-%d", i)
			rec := e.do(t, tc.method, tc.path, tc.body, "Idempotency-Key", key, "X-Actor", "Ann")
			if rec.Code != 201 && rec.Code != 202 {
				t.Fatalf("HTTP status %d: %s", rec.Code, rec.Body)
			}
			sent := e.fb.sentCommands()
			if len(sent) != 1 {
				t.Fatalf("HTTP sent %d commands", len(sent))
			}
			envelope := fmt.Sprintf(`{"type":%q,"commandId":%q,"actor":"Ann",`, tc.typ, key)
			if tc.oppID != "" {
				envelope += fmt.Sprintf(`"opportunityId":%q,`, tc.oppID)
			}
			line := strings.Replace(tc.body, "{", envelope, 1)
			got, err := CommandFromJSON([]byte(line), func() time.Time { return testNow }, lineIDs())
			if err != nil {
				t.Fatalf("CommandFromJSON(%s): %v", line, err)
			}
			if !reflect.DeepEqual(got, sent[0]) {
				t.Fatalf("line %s\ngave %s\nHTTP  %s", line, dumpCommand(got), dumpCommand(sent[0]))
			}
		})
	}
}

func dumpCommand(c domain.Command) string {
	s := fmt.Sprintf("%+v", c)
	for _, b := range []any{c.Create, c.Update, c.ChangeStage, c.CloseWon, c.CloseLost, c.Reopen} {
		if !reflect.ValueOf(b).IsNil() {
			s += fmt.Sprintf(" body=%+v", reflect.ValueOf(b).Elem().Interface())
		}
	}
	if c.ExpectedVersion != nil {
		s += fmt.Sprintf(" expectedVersion=%d", *c.ExpectedVersion)
	}
	return s
}
