package codecs

import (
	"fmt"
	"math"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// The generic path reads a record written with a schema version other than the current one:
// goavro decodes it with the WRITER's schema into maps, and the functions below build the
// domain value from them. A field the writer did not have gets its reader default; every
// default in our schemas is the zero value of the domain field (TestDefaultsAreZeroValues),
// so "absent" simply leaves the zero value. A field the writer has and the reader does not is
// ignored. This is Avro schema resolution for the backward-compatible changes we allow
// (adding fields with defaults, int to long promotion).

// maxSkipDepth bounds the nesting the validator follows (only recursive schemas can nest
// deeper than their text, and ours are not recursive).
const maxSkipDepth = 64

// readGeneric validates body against the writer schema, then decodes it with goavro.
//
// The validation pass exists because goavro preallocates arrays by their declared block count
// (up to 2^31 items): a forged count in a few bytes could make it allocate gigabytes, which no
// recover() can catch. The validator refuses any count that cannot fit in the bytes that are
// left, so goavro only ever sees well-formed bodies.
func readGeneric(e *schemaEntry, body []byte) (m map[string]any, err error) {
	// goavro is third-party code on a path fed by other services' bytes: a panic in it must
	// become an error, not stop the goka processor that called us.
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: goavro panicked: %v", ErrMalformed, r)
		}
	}()
	d := decoder{buf: body}
	skipValue(&d, e.root, 0)
	if d.err != nil {
		return nil, d.err
	}
	if d.rest() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the record", ErrMalformed, d.rest())
	}
	codec, err := e.goavroCodec()
	if err != nil {
		return nil, err
	}
	native, rest, err := codec.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the record", ErrMalformed, len(rest))
	}
	m, ok := native.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: top level is %T, not a record", ErrMalformed, native)
	}
	return m, nil
}

// skipValue walks one value of schema n, checking every length, count and index.
func skipValue(d *decoder, n *schemaNode, depth int) {
	if d.err != nil {
		return
	}
	if depth > maxSkipDepth {
		d.fail(fmt.Errorf("%w: nested deeper than %d", ErrMalformed, maxSkipDepth))
		return
	}
	switch n.kind {
	case kNull:
	case kBoolean:
		d.boolean()
	case kInt:
		d.int()
	case kLong:
		d.long()
	case kFloat:
		d.skip(4)
	case kDouble:
		d.skip(8)
	case kBytes, kString:
		d.skip(d.length())
	case kFixed:
		d.skip(n.size)
	case kEnum:
		d.index(len(n.symbols), "enum")
	case kRecord:
		for _, f := range n.fields {
			skipValue(d, f.typ, depth+1)
		}
	case kArray:
		min := minEncodedSize(n.items, map[*schemaNode]bool{})
		for c := d.block(min); c > 0 && d.err == nil; c = d.block(min) {
			for i := 0; i < c && d.err == nil; i++ {
				skipValue(d, n.items, depth+1)
			}
		}
	case kMap:
		min := 1 + minEncodedSize(n.items, map[*schemaNode]bool{})
		for c := d.block(min); c > 0 && d.err == nil; c = d.block(min) {
			for i := 0; i < c && d.err == nil; i++ {
				d.skip(d.length())
				skipValue(d, n.items, depth+1)
			}
		}
	case kUnion:
		i := d.index(len(n.branches), "union")
		if d.err == nil {
			skipValue(d, n.branches[i], depth+1)
		}
	}
}

// minEncodedSize is the least number of bytes a value of schema n takes, used to bound array
// block counts by the bytes left. It is at least 1 for every item type in our schemas; for a
// zero-size item type (null, an empty record) decoder.block still demands one byte per item,
// so such arrays are limited to as many items as bytes remain.
func minEncodedSize(n *schemaNode, visiting map[*schemaNode]bool) int {
	switch n.kind {
	case kNull:
		return 0
	case kFloat:
		return 4
	case kDouble:
		return 8
	case kFixed:
		return n.size
	case kRecord:
		if visiting[n] {
			return 0
		}
		visiting[n] = true
		sum := 0
		for _, f := range n.fields {
			sum += minEncodedSize(f.typ, visiting)
		}
		delete(visiting, n)
		return sum
	case kUnion:
		least := math.MaxInt
		for _, b := range n.branches {
			least = min(least, minEncodedSize(b, visiting))
		}
		if least == math.MaxInt {
			least = 0
		}
		return 1 + least
	default: // boolean, int, long, bytes, string, enum, array, map: at least one byte
		return 1
	}
}

// conv reads goavro's native values into domain values. The first type error sticks.
type conv struct{ err error }

func (c *conv) fail(field, want string, got any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: field %s: want %s, got %T", ErrMalformed, field, want, got)
	}
}

func (c *conv) str(m map[string]any, k string) string {
	v, ok := m[k]
	if !ok {
		return "" // absent in the writer schema: reader default
	}
	s, ok := v.(string)
	if !ok {
		c.fail(k, "string", v)
	}
	return s
}

func (c *conv) long(m map[string]any, k string) int64 {
	switch v := m[k].(type) {
	case nil:
		return 0
	case int64:
		return v
	case int32: // int promoted to long
		return int64(v)
	default:
		c.fail(k, "long", v)
		return 0
	}
}

func (c *conv) bytes(m map[string]any, k string) []byte {
	switch v := m[k].(type) {
	case nil:
		return nil
	case []byte:
		return append([]byte(nil), v...)
	default:
		c.fail(k, "bytes", v)
		return nil
	}
}

func (c *conv) int(m map[string]any, k string) int {
	switch v := m[k].(type) {
	case nil:
		return 0
	case int32:
		return int(v)
	default:
		c.fail(k, "int", v)
		return 0
	}
}

func (c *conv) boolean(m map[string]any, k string) bool {
	switch v := m[k].(type) {
	case nil:
		return false
	case bool:
		return v
	default:
		c.fail(k, "boolean", v)
		return false
	}
}

func (c *conv) timestampOf(k string, v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t.UTC()
	case int64: // a writer without the logical type: microseconds
		return time.UnixMicro(t).UTC()
	default:
		c.fail(k, "timestamp-micros", v)
		return time.Time{}
	}
}

func (c *conv) timestamp(m map[string]any, k string) time.Time {
	v, ok := m[k]
	if !ok {
		return time.Unix(0, 0).UTC()
	}
	return c.timestampOf(k, v)
}

func (c *conv) date(m map[string]any, k string) domain.Date {
	switch v := m[k].(type) {
	case nil:
		return 0
	case time.Time:
		return domain.Date(v.Unix() / 86400)
	case int32:
		return domain.Date(v)
	default:
		c.fail(k, "date", v)
		return 0
	}
}

// union returns the value of a union field: nil for null (or absent), else the datum of
// goavro's single-key {"typeName": datum} map, with the branch name.
func (c *conv) union(m map[string]any, k string) (string, any) {
	switch v := m[k].(type) {
	case nil:
		return "", nil
	case map[string]any:
		if len(v) == 1 {
			for name, datum := range v {
				return name, datum
			}
		}
		c.fail(k, "union", v)
	default:
		c.fail(k, "union", v)
	}
	return "", nil
}

func (c *conv) optStr(m map[string]any, k string) *string {
	_, v := c.union(m, k)
	if v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		c.fail(k, "string", v)
		return nil
	}
	return &s
}

func (c *conv) strOrEmpty(m map[string]any, k string) string {
	if p := c.optStr(m, k); p != nil {
		return *p
	}
	return ""
}

func (c *conv) optLong(m map[string]any, k string) *int64 {
	_, v := c.union(m, k)
	switch x := v.(type) {
	case nil:
		return nil
	case int64:
		return &x
	case int32:
		y := int64(x)
		return &y
	default:
		c.fail(k, "long", v)
		return nil
	}
}

func (c *conv) optInt(m map[string]any, k string) *int {
	p := c.optLong(m, k)
	if p == nil {
		return nil
	}
	i := int(*p)
	return &i
}

func (c *conv) optTimestamp(m map[string]any, k string) *time.Time {
	_, v := c.union(m, k)
	if v == nil {
		return nil
	}
	t := c.timestampOf(k, v)
	return &t
}

func (c *conv) record(k string, v any) map[string]any {
	r, ok := v.(map[string]any)
	if !ok {
		c.fail(k, "record", v)
	}
	return r
}

func (c *conv) optRecord(m map[string]any, k string) map[string]any {
	_, v := c.union(m, k)
	if v == nil {
		return nil
	}
	return c.record(k, v)
}

func (c *conv) array(m map[string]any, k string) []any {
	switch v := m[k].(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		c.fail(k, "array", v)
		return nil
	}
}

func (c *conv) strings(m map[string]any, k string) []string {
	items := c.array(m, k)
	if len(items) == 0 {
		return nil
	}
	out := make([]string, len(items))
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			c.fail(k, "string", it)
		}
		out[i] = s
	}
	return out
}

// longMap reads a map<long> (or a map<int> promoted to long); empty or absent is nil, like
// the fast path.
func (c *conv) longMap(m map[string]any, k string) map[string]int64 {
	switch v := m[k].(type) {
	case nil:
		return nil
	case map[string]any:
		if len(v) == 0 {
			return nil
		}
		out := make(map[string]int64, len(v))
		for key, x := range v {
			switch n := x.(type) {
			case int64:
				out[key] = n
			case int32:
				out[key] = int64(n)
			default:
				c.fail(k, "long", x)
			}
		}
		return out
	default:
		c.fail(k, "map", v)
		return nil
	}
}

// ---- records ----

func (c *conv) command(m map[string]any) domain.Command {
	var cmd domain.Command
	cmd.CommandID = c.str(m, "commandId")
	cmd.OpportunityID = c.str(m, "opportunityId")
	cmd.IssuedAt = c.timestamp(m, "issuedAt")
	cmd.Actor = c.str(m, "actor")
	cmd.ExpectedVersion = c.optLong(m, "expectedVersion")
	cmd.Type = domain.CommandType(c.str(m, "type"))
	name, v := c.union(m, "body")
	b := c.record("body", v)
	if c.err != nil {
		return cmd
	}
	if name != "crm.pipeline."+string(cmd.Type) {
		c.err = fmt.Errorf("%w: type %s but body %s", ErrMalformed, cmd.Type, name)
		return cmd
	}
	switch cmd.Type {
	case domain.CmdCreate:
		cmd.Create = &domain.CreateOpportunity{
			Name:             c.str(b, "name"),
			AccountID:        c.str(b, "accountId"),
			OwnerID:          c.str(b, "ownerId"),
			PipelineID:       c.str(b, "pipelineId"),
			StageID:          c.str(b, "stageId"),
			Amount:           c.str(b, "amount"),
			Currency:         c.str(b, "currency"),
			CloseDate:        c.str(b, "closeDate"),
			Probability:      c.optInt(b, "probability"),
			ForecastCategory: c.optStr(b, "forecastCategory"),
			LeadID:           c.str(b, "leadId"),
			Source:           c.str(b, "source"),
			NextStep:         c.str(b, "nextStep"),
		}
	case domain.CmdUpdate:
		cmd.Update = &domain.UpdateOpportunity{
			Name:                  c.optStr(b, "name"),
			AccountID:             c.optStr(b, "accountId"),
			OwnerID:               c.optStr(b, "ownerId"),
			Amount:                c.optStr(b, "amount"),
			Currency:              c.optStr(b, "currency"),
			CloseDate:             c.optStr(b, "closeDate"),
			NextStep:              c.optStr(b, "nextStep"),
			Probability:           c.optInt(b, "probability"),
			ClearProbability:      c.boolean(b, "clearProbability"),
			ForecastCategory:      c.optStr(b, "forecastCategory"),
			ClearForecastCategory: c.boolean(b, "clearForecastCategory"),
		}
	case domain.CmdChangeStage:
		cmd.ChangeStage = &domain.ChangeStage{StageID: c.str(b, "stageId")}
	case domain.CmdCloseWon:
		cmd.CloseWon = &domain.CloseWon{CloseDate: c.optStr(b, "closeDate"), Amount: c.optStr(b, "amount")}
	case domain.CmdCloseLost:
		cmd.CloseLost = &domain.CloseLost{
			Reason:     c.str(b, "reason"),
			Competitor: c.str(b, "competitor"),
			Note:       c.str(b, "note"),
		}
	case domain.CmdReopen:
		cmd.Reopen = &domain.Reopen{StageID: c.str(b, "stageId")}
	default:
		c.err = fmt.Errorf("%w: unknown command type %q", ErrMalformed, cmd.Type)
	}
	return cmd
}

func (c *conv) event(m map[string]any) domain.Event {
	ev := domain.Event{
		EventID:       c.str(m, "eventId"),
		Type:          domain.EventType(c.str(m, "type")),
		OpportunityID: c.str(m, "opportunityId"),
		Version:       c.long(m, "version"),
		At:            c.timestamp(m, "at"),
		Actor:         c.str(m, "actor"),
		CommandID:     c.str(m, "commandId"),
		FromStageID:   c.strOrEmpty(m, "fromStageId"),
		ToStageID:     c.strOrEmpty(m, "toStageId"),
		Position:      c.long(m, "position"),
	}
	if items := c.array(m, "changes"); len(items) > 0 {
		ev.Changes = make([]domain.Change, len(items))
		for i, it := range items {
			r := c.record("changes", it)
			ch := &ev.Changes[i]
			ch.Field = c.str(r, "field")
			if p := c.optStr(r, "before"); p != nil {
				ch.Before, ch.BeforeSet = *p, true
			}
			if p := c.optStr(r, "after"); p != nil {
				ch.After, ch.AfterSet = *p, true
			}
		}
	}
	return ev
}

func (c *conv) account(r map[string]any) *domain.Account {
	if r == nil {
		return nil
	}
	return &domain.Account{
		ID:      c.str(r, "id"),
		Name:    c.str(r, "name"),
		Segment: c.str(r, "segment"),
		Region:  c.str(r, "region"),
		OwnerID: c.str(r, "ownerId"),
	}
}

func (c *conv) override(r map[string]any) *domain.Override {
	if r == nil {
		return nil
	}
	return &domain.Override{Value: c.str(r, "value"), By: c.str(r, "by"), At: c.timestamp(r, "at")}
}

func (c *conv) opportunity(m map[string]any) domain.Opportunity {
	o := domain.Opportunity{
		ID:                  c.str(m, "id"),
		Version:             c.long(m, "version"),
		Name:                c.str(m, "name"),
		AccountID:           c.str(m, "accountId"),
		Account:             c.account(c.optRecord(m, "account")),
		OwnerID:             c.str(m, "ownerId"),
		PipelineID:          c.str(m, "pipelineId"),
		StageID:             c.str(m, "stageId"),
		Status:              domain.Status(c.str(m, "status")),
		Amount:              c.long(m, "amount"),
		Currency:            c.str(m, "currency"),
		ProbabilityOverride: c.override(c.optRecord(m, "probabilityOverride")),
		CategoryOverride:    c.override(c.optRecord(m, "categoryOverride")),
		CloseDate:           c.date(m, "closeDate"),
		NextStep:            c.str(m, "nextStep"),
		LeadID:              c.str(m, "leadId"),
		Source:              c.str(m, "source"),
		CreatedAt:           c.timestamp(m, "createdAt"),
		UpdatedAt:           c.timestamp(m, "updatedAt"),
		ClosedAt:            c.optTimestamp(m, "closedAt"),
		LossReason:          c.str(m, "lossReason"),
		Competitor:          c.str(m, "competitor"),
		LossNote:            c.str(m, "lossNote"),
		StageEnteredAt:      c.timestamp(m, "stageEnteredAt"),
		CloseDatePushCount:  c.int(m, "closeDatePushCount"),
		Probability:         c.int(m, "probability"),
		ForecastCategory:    domain.ForecastCategory(c.str(m, "forecastCategory")),
		RecentCommandIDs:    c.strings(m, "recentCommandIds"),
	}
	if items := c.array(m, "stageHistory"); len(items) > 0 {
		o.StageHistory = make([]domain.StageVisit, len(items))
		for i, it := range items {
			r := c.record("stageHistory", it)
			o.StageHistory[i] = domain.StageVisit{
				StageID:   c.str(r, "stageId"),
				EnteredAt: c.timestamp(r, "enteredAt"),
				EnteredBy: c.str(r, "enteredBy"),
				LeftAt:    c.optTimestamp(r, "leftAt"),
				LeftBy:    c.str(r, "leftBy"),
			}
		}
	}
	return o
}

func (c *conv) aggregate(m map[string]any) domain.Aggregate {
	a := domain.Aggregate{Position: c.long(m, "position")}
	if s, ok := m["state"]; ok {
		a.State = c.opportunity(c.record("state", s))
	}
	if items := c.array(m, "events"); len(items) > 0 {
		a.Events = make([]domain.Event, len(items))
		for i, it := range items {
			a.Events[i] = c.event(c.record("events", it))
		}
	}
	if items := c.array(m, "rejections"); len(items) > 0 {
		a.Rejections = make([]domain.RejectedCommand, len(items))
		for i, it := range items {
			a.Rejections[i] = c.rejected(c.record("rejections", it))
		}
	}
	if items := c.array(m, "won"); len(items) > 0 {
		a.Won = make([]domain.ClosedWon, len(items))
		for i, it := range items {
			a.Won[i] = c.closedWon(c.record("won", it))
		}
	}
	if items := c.array(m, "recentDeltas"); len(items) > 0 {
		a.RecentDeltas = make([]domain.StoredDelta, len(items))
		for i, it := range items {
			r := c.record("recentDeltas", it)
			a.RecentDeltas[i] = domain.StoredDelta{Position: c.long(r, "position"), Record: c.bytes(r, "record")}
		}
	}
	a.HistoryOnTopic = c.boolean(m, "historyOnTopic")
	return a
}

func (c *conv) pipeline(m map[string]any) domain.Pipeline {
	p := domain.Pipeline{ID: c.str(m, "id"), Name: c.str(m, "name")}
	if items := c.array(m, "stages"); len(items) > 0 {
		p.Stages = make([]domain.Stage, len(items))
		for i, it := range items {
			r := c.record("stages", it)
			p.Stages[i] = domain.Stage{
				ID:               c.str(r, "id"),
				Name:             c.str(r, "name"),
				Probability:      c.int(r, "probability"),
				ForecastCategory: domain.ForecastCategory(c.str(r, "forecastCategory")),
				Status:           domain.Status(c.str(r, "status")),
				RequiredFields:   c.strings(r, "requiredFields"),
				StaleAfterDays:   c.int(r, "staleAfterDays"),
			}
		}
	}
	return p
}

func (c *conv) fxRate(m map[string]any) domain.FXRate {
	return domain.FXRate{Currency: c.str(m, "currency"), Rate: c.str(m, "rate")}
}

func (c *conv) rejected(m map[string]any) domain.RejectedCommand {
	r := domain.RejectedCommand{
		CommandID:     c.str(m, "commandId"),
		OpportunityID: c.str(m, "opportunityId"),
		CommandType:   domain.CommandType(c.str(m, "commandType")),
		Code:          c.str(m, "code"),
		Message:       c.str(m, "message"),
		Actor:         c.str(m, "actor"),
		At:            c.timestamp(m, "at"),
		Position:      c.long(m, "position"),
	}
	if items := c.array(m, "fields"); len(items) > 0 {
		r.Fields = make([]domain.FieldError, len(items))
		for i, it := range items {
			f := c.record("fields", it)
			r.Fields[i] = domain.FieldError{Field: c.str(f, "field"), Message: c.str(f, "message")}
		}
	}
	return r
}

func (c *conv) closedWon(m map[string]any) domain.ClosedWon {
	return domain.ClosedWon{
		EventID:       c.str(m, "eventId"),
		OpportunityID: c.str(m, "opportunityId"),
		Version:       c.long(m, "version"),
		Name:          c.str(m, "name"),
		AccountID:     c.str(m, "accountId"),
		Account:       c.account(c.optRecord(m, "account")),
		OwnerID:       c.str(m, "ownerId"),
		PipelineID:    c.str(m, "pipelineId"),
		Amount:        c.long(m, "amount"),
		Currency:      c.str(m, "currency"),
		CloseDate:     c.date(m, "closeDate"),
		ClosedAt:      c.timestamp(m, "closedAt"),
		Actor:         c.str(m, "actor"),
		CommandID:     c.str(m, "commandId"),
	}
}

func (c *conv) delta(m map[string]any) analytics.Delta {
	return analytics.Delta{
		Bucket:        c.str(m, "bucket"),
		OpportunityID: c.str(m, "opportunityId"),
		Version:       c.long(m, "version"),
		Values:        c.longMap(m, "values"),
		Source:        c.strOr(m, "source", ""),
		Position:      c.longOr(m, "position", 0),
	}
}

// strOr reads a string field that older writers lack (it was added with a default), giving def
// when the writer's record has no such field.
func (c *conv) strOr(m map[string]any, k, def string) string {
	if _, ok := m[k]; !ok {
		return def
	}
	return c.str(m, k)
}

// longOr is strOr for a long.
func (c *conv) longOr(m map[string]any, k string, def int64) int64 {
	if _, ok := m[k]; !ok {
		return def
	}
	return c.long(m, k)
}

func (c *conv) bucket(m map[string]any) analytics.Bucket {
	// A v1 bucket's per-opportunity "seen" guard has no counterpart: its source positions are
	// unknown, so the bucket starts unguarded (exact again from its next delta on).
	return analytics.Bucket{Values: c.longMap(m, "values"), Applied: c.longMap(m, "applied")}
}
