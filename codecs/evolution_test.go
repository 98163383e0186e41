package codecs

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/crm-pipeline/crm-pipeline/analytics"
	"reflect"
	"strings"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/linkedin/goavro/v2"
)

// v1CommandNative builds goavro's native form of a command for the v1 command schema, which
// has no CreateOpportunity.leadId/source/nextStep (and no CloseLost.closeDate).
func v1CommandNative(c domain.Command) map[string]any { return olderCommandNative(c, 1) }

// olderCommandNative builds goavro's native form of a command for the command schema of
// version 1 or 2: v2 adds CreateOpportunity.leadId/source/nextStep, neither has
// CloseLost.closeDate (v3).
func olderCommandNative(c domain.Command, version int) map[string]any {
	optS := func(p *string) any {
		if p == nil {
			return nil
		}
		return goavro.Union("string", *p)
	}
	optI := func(p *int) any {
		if p == nil {
			return nil
		}
		return goavro.Union("long", int64(*p))
	}
	var body map[string]any
	switch c.Type {
	case domain.CmdCreate:
		b := c.Create
		body = map[string]any{"name": b.Name, "accountId": b.AccountID, "ownerId": b.OwnerID, "pipelineId": b.PipelineID,
			"stageId": b.StageID, "amount": b.Amount, "currency": b.Currency, "closeDate": b.CloseDate,
			"probability": optI(b.Probability), "forecastCategory": optS(b.ForecastCategory)}
		if version >= 2 {
			body["leadId"], body["source"], body["nextStep"] = b.LeadID, b.Source, b.NextStep
		}
	case domain.CmdUpdate:
		b := c.Update
		body = map[string]any{"name": optS(b.Name), "accountId": optS(b.AccountID), "ownerId": optS(b.OwnerID),
			"amount": optS(b.Amount), "currency": optS(b.Currency), "closeDate": optS(b.CloseDate), "nextStep": optS(b.NextStep),
			"probability": optI(b.Probability), "clearProbability": b.ClearProbability,
			"forecastCategory": optS(b.ForecastCategory), "clearForecastCategory": b.ClearForecastCategory}
	case domain.CmdChangeStage:
		body = map[string]any{"stageId": c.ChangeStage.StageID}
	case domain.CmdCloseWon:
		body = map[string]any{"closeDate": optS(c.CloseWon.CloseDate), "amount": optS(c.CloseWon.Amount)}
	case domain.CmdCloseLost:
		body = map[string]any{"reason": c.CloseLost.Reason, "competitor": c.CloseLost.Competitor, "note": c.CloseLost.Note}
	case domain.CmdReopen:
		body = map[string]any{"stageId": c.Reopen.StageID}
	}
	var ev any
	if c.ExpectedVersion != nil {
		ev = goavro.Union("long", *c.ExpectedVersion)
	}
	return map[string]any{
		"commandId": c.CommandID, "opportunityId": c.OpportunityID, "issuedAt": c.IssuedAt, "actor": c.Actor,
		"expectedVersion": ev, "type": string(c.Type), "body": goavro.Union("crm.pipeline."+string(c.Type), body),
	}
}

func entryByPath(t *testing.T, path string) *schemaEntry {
	t.Helper()
	for _, e := range byFingerprint {
		if e.Path == path {
			return e
		}
	}
	t.Fatalf("no schema %s", path)
	return nil
}

// Records written by a v1 or v2 producer (here: goavro with the old .avsc, stamped with its
// fingerprint) are read by this build, with the fields later versions added at their
// defaults: v1 has no CreateOpportunity.leadId/source/nextStep, neither has
// CloseLost.closeDate (read as null: the deal closes on the day of the command).
func TestOlderCommandWriterIsRead(t *testing.T) {
	for version, path := range map[int]string{1: "schemas/v1/command.avsc", 2: "schemas/v2/command.avsc"} {
		old := entryByPath(t, path)
		codec, err := old.Goavro()
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range commandFixtures() {
			body, err := codec.BinaryFromNative(nil, olderCommandNative(c, version))
			if err != nil {
				t.Fatalf("v%d %s: encode: %v", version, name, err)
			}
			b := append(old.Header[:], body...)
			got, err := DecodeCommand(b)
			if err != nil {
				t.Fatalf("v%d %s: %v", version, name, err)
			}
			want := c
			if c.Create != nil && version < 2 {
				cr := *c.Create
				cr.LeadID, cr.Source, cr.NextStep = "", "", "" // v1 has no such fields: defaults
				want.Create = &cr
			}
			if c.CloseLost != nil {
				cl := *c.CloseLost
				cl.CloseDate = nil // since v3
				want.CloseLost = &cl
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("v%d %s: record read as\n %#v\nwant %#v", version, name, got, want)
			}
			// Same through the goka adapter.
			v, err := CommandCodec{}.Decode(b)
			if err != nil || !reflect.DeepEqual(*v.(*domain.Command), want) {
				t.Errorf("v%d %s: CommandCodec: %v", version, name, err)
			}
			// Corrupt old records fail cleanly on the generic path too.
			for i := headerLen; i < len(b); i++ {
				if _, err := DecodeCommand(b[:i]); err == nil {
					t.Errorf("v%d %s: prefix %d decoded", version, name, i)
				}
			}
		}
		// Each version must be told apart from the current one by its fingerprint.
		if old.Fingerprint == currentSchema[kindCommand].Fingerprint {
			t.Fatalf("%s and the current command schema share a fingerprint", path)
		}
	}
}

// goavro's own single-object encoding stamps its own fingerprint, which for schemas with
// logical types is not the specification's: such records are refused as unknown, which is the
// reason this package computes fingerprints itself.
func TestGoavroSingleObjectHeaderIsNotOurs(t *testing.T) {
	e := currentSchema[kindCommand]
	codec, _ := e.Goavro()
	c := commandFixtures()["reopen/full"]
	b, err := codec.SingleFromNative(nil, v1CommandNative(c))
	if err != nil {
		t.Fatal(err)
	}
	if codec.Rabin == e.Fingerprint {
		t.Skip("goavro now computes the specification's fingerprint")
	}
	if _, err := DecodeCommand(b); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("goavro-stamped record: %v", err)
	}
}

// TestSchemasEvolveCompatibly checks, for every superseded version, that the current schema
// of the same record type can read it (Avro schema resolution): same field types (or an
// allowed promotion), and every field the old writer lacked has a default.
func TestSchemasEvolveCompatibly(t *testing.T) {
	n := 0
	for _, e := range byFingerprint {
		if e.current {
			continue
		}
		n++
		cur := currentSchema[e.kind]
		if err := canRead(cur.Root, e.Root, map[[2]*avro.Node]bool{}); err != nil {
			t.Errorf("%s cannot read %s: %v", cur.Path, e.Path, err)
		}
	}
	if n == 0 {
		t.Error("no superseded schema to check")
	}
	// The checker itself: removing a default must break compatibility.
	old, _ := avro.Parse(`{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`)
	bad, _ := avro.Parse(`{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":"string"}]}`)
	good, _ := avro.Parse(`{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":"string","default":""}]}`)
	if canRead(bad, old, map[[2]*avro.Node]bool{}) == nil {
		t.Error("a field without default was accepted")
	}
	if err := canRead(good, old, map[[2]*avro.Node]bool{}); err != nil {
		t.Errorf("int->long with a defaulted new field refused: %v", err)
	}
}

// canRead implements the specification's schema resolution rules for reader r and writer w.
func canRead(r, w *avro.Node, seen map[[2]*avro.Node]bool) error {
	if seen[[2]*avro.Node{r, w}] {
		return nil
	}
	seen[[2]*avro.Node{r, w}] = true
	if w.Kind == avro.Union {
		for i, b := range w.Branches {
			if err := canRead(r, b, seen); err != nil {
				return fmt.Errorf("writer union branch %d: %w", i, err)
			}
		}
		return nil
	}
	if r.Kind == avro.Union {
		for _, b := range r.Branches {
			if canRead(b, w, map[[2]*avro.Node]bool{}) == nil {
				return canRead(b, w, seen)
			}
		}
		return fmt.Errorf("no reader union branch reads a %s", w.UnionKey())
	}
	promotable := map[[2]avro.Kind]bool{
		{avro.Long, avro.Int}: true, {avro.Float, avro.Int}: true, {avro.Double, avro.Int}: true, {avro.Float, avro.Long}: true,
		{avro.Double, avro.Long}: true, {avro.Double, avro.Float}: true, {avro.String, avro.Bytes}: true, {avro.Bytes, avro.String}: true,
	}
	if r.Kind != w.Kind {
		if promotable[[2]avro.Kind{r.Kind, w.Kind}] {
			return nil
		}
		return fmt.Errorf("reader %s, writer %s", r.Kind, w.Kind)
	}
	switch r.Kind {
	case avro.Record:
		if r.Name != w.Name {
			return fmt.Errorf("record %s vs %s", r.Name, w.Name)
		}
		for _, rf := range r.Fields {
			wf, ok := w.Field(rf.Name)
			if !ok {
				if !rf.HasDefault {
					return fmt.Errorf("%s.%s is new and has no default", r.Name, rf.Name)
				}
				continue
			}
			if err := canRead(rf.Type, wf.Type, seen); err != nil {
				return fmt.Errorf("%s.%s: %w", r.Name, rf.Name, err)
			}
		}
	case avro.Enum:
		syms := map[string]bool{}
		for _, s := range r.Symbols {
			syms[s] = true
		}
		for _, s := range w.Symbols {
			if !syms[s] {
				return fmt.Errorf("enum %s lost symbol %s", r.Name, s)
			}
		}
	case avro.Fixed:
		if r.Size != w.Size || r.Name != w.Name {
			return fmt.Errorf("fixed %s changed", r.Name)
		}
	case avro.Array, avro.Map:
		return canRead(r.Items, w.Items, seen)
	}
	return nil
}

// The generic reader fills a field the writer lacked with the zero value of the domain field,
// which is right only if every default in our schemas is a zero value: null, "", 0, false, [], {}.
// Defaults must also be valid for their type (for a union: its first branch).
func TestDefaultsAreZeroValues(t *testing.T) {
	for _, e := range byFingerprint {
		walkRecords(e.Root, map[*avro.Node]bool{}, func(rec *avro.Node) {
			for _, f := range rec.Fields {
				if !f.HasDefault {
					continue
				}
				typ := f.Type
				if typ.Kind == avro.Union {
					typ = typ.Branches[0]
				}
				ok := false
				switch d := f.Default.(type) {
				case nil:
					ok = typ.Kind == avro.Null
				case string:
					ok = d == "" && typ.Kind == avro.String
				case bool:
					ok = !d && typ.Kind == avro.Boolean
				case json.Number:
					ok = d.String() == "0" && (typ.Kind == avro.Int || typ.Kind == avro.Long)
				case []any:
					ok = len(d) == 0 && typ.Kind == avro.Array
				case map[string]any:
					ok = len(d) == 0 && typ.Kind == avro.Map
				}
				if !ok {
					t.Errorf("%s: %s.%s has default %#v for a %s", e.Path, rec.Name, f.Name, f.Default, typ.Kind)
				}
			}
		})
	}
}

func walkRecords(n *avro.Node, seen map[*avro.Node]bool, fn func(*avro.Node)) {
	if seen[n] {
		return
	}
	seen[n] = true
	switch n.Kind {
	case avro.Record:
		fn(n)
		for _, f := range n.Fields {
			walkRecords(f.Type, seen, fn)
		}
	case avro.Array, avro.Map:
		walkRecords(n.Items, seen, fn)
	case avro.Union:
		for _, b := range n.Branches {
			walkRecords(b, seen, fn)
		}
	}
}

// findNamed finds the definition of a named type inside a schema.
func findNamed(root *avro.Node, name string) *avro.Node {
	var found *avro.Node
	walkRecords(root, map[*avro.Node]bool{}, func(r *avro.Node) {
		if r.Name == name {
			found = r
		}
	})
	return found
}

// Avro has no imports, so aggregate.avsc and closed_won.avsc repeat the event, account,
// rejection and closed-won records; they must stay identical to their own files.
func TestNestedCopiesMatchTheirFiles(t *testing.T) {
	for _, c := range []struct {
		in   recordKind
		name string
		file recordKind
	}{
		{kindAggregate, "crm.pipeline.OpportunityEvent", kindEvent},
		{kindAggregate, "crm.pipeline.Account", kindAccount},
		{kindAggregate, "crm.pipeline.CommandRejected", kindRejected},
		{kindAggregate, "crm.pipeline.OpportunityClosedWonEvent", kindClosedWon},
		{kindClosedWon, "crm.pipeline.Account", kindAccount},
	} {
		n := findNamed(currentSchema[c.in].Root, c.name)
		if n == nil {
			t.Fatalf("%s has no %s", currentSchema[c.in].Path, c.name)
		}
		if got, want := n.Canonical(), currentSchema[c.file].Canonical; got != want {
			t.Errorf("%s in %s differs from %s:\n %s\n %s", c.name, currentSchema[c.in].Path, currentSchema[c.file].Path, got, want)
		}
	}
}

// The decoders' minimum item sizes (used to refuse forged counts) must not exceed the real
// minimum encoded sizes, or valid records would be refused.
func TestMinItemSizes(t *testing.T) {
	agg := currentSchema[kindAggregate].Root
	for _, c := range []struct {
		Root *avro.Node
		name string
		have int
	}{
		{agg, "crm.pipeline.OpportunityEvent", minEvent},
		{agg, "crm.pipeline.Change", minChange},
		{agg, "crm.pipeline.StageVisit", minStageVisit},
		{currentSchema[kindRejected].Root, "crm.pipeline.FieldError", minFieldError},
		{agg, "crm.pipeline.CommandRejected", minRejected},
		{agg, "crm.pipeline.OpportunityClosedWonEvent", minClosedWon},
	} {
		if want := avro.MinEncodedSize(findNamed(c.Root, c.name)); c.have != want {
			t.Errorf("%s: decoder assumes %d bytes, schema minimum is %d", c.name, c.have, want)
		}
	}
	// A map entry is its key (a string) and its value; every map of the schemas is map<long>.
	for _, k := range []recordKind{kindDelta, kindBucket} {
		for _, f := range currentSchema[k].Root.Fields {
			if f.Type.Kind != avro.Map {
				continue
			}
			if f.Type.Items.Kind != avro.Long {
				t.Errorf("%s.%s: map of %s, the fast path reads map<long>", currentSchema[k].Root.Name, f.Name, f.Type.Items.Kind)
			}
			if want := 1 + avro.MinEncodedSize(f.Type.Items); avro.MinMapEntry != want {
				t.Errorf("%s.%s: decoder assumes %d bytes per map entry, schema minimum is %d", currentSchema[k].Root.Name, f.Name, avro.MinMapEntry, want)
			}
		}
	}
}

// The names of API.md must be Avro record names in the schemas.
func TestAPINamesAreRecordNames(t *testing.T) {
	cmd := currentSchema[kindCommand].Root
	for _, ct := range commandTypes {
		if findNamed(cmd, "crm.pipeline."+string(ct)) == nil {
			t.Errorf("command schema has no record %s", ct)
		}
	}
	ev := currentSchema[kindEvent].Root
	for _, et := range eventTypes {
		if findNamed(ev, "crm.pipeline.events."+string(et)) == nil {
			t.Errorf("event schema has no record %s", et)
		}
	}
	// The fast path relies on enum symbol i and body branch i naming the same type.
	for _, c := range []struct {
		Root  *avro.Node
		enum  string
		names []string
	}{
		{cmd, "crm.pipeline.CommandType", func() (n []string) {
			for _, t := range commandTypes {
				n = append(n, string(t))
			}
			return n
		}()},
		{ev, "crm.pipeline.EventType", func() (n []string) {
			for _, t := range eventTypes {
				n = append(n, string(t))
			}
			return n
		}()},
	} {
		var enum *avro.Node
		for _, f := range c.Root.Fields {
			if f.Name == "type" {
				enum = f.Type
			}
		}
		body, _ := c.Root.Field("body")
		if enum == nil || enum.Name != c.enum || !reflect.DeepEqual(enum.Symbols, c.names) {
			t.Errorf("%s symbols differ from the decoder's order %v", c.enum, c.names)
		}
		for i, br := range body.Type.Branches {
			if br.Name[strings.LastIndexByte(br.Name, '.')+1:] != c.names[i] {
				t.Errorf("%s body branch %d is %s, want %s", c.Root.Name, i, br.Name, c.names[i])
			}
		}
	}
	if currentSchema[kindDelta].Root.Name != "crm.pipeline.analytics.AggregationDelta" {
		t.Error("analytics delta record name")
	}
	if currentSchema[kindBucket].Root.Name != "crm.pipeline.analytics.AggregationBucket" {
		t.Error("analytics bucket record name")
	}
	if currentSchema[kindClosedWon].Root.Name != "crm.pipeline.OpportunityClosedWonEvent" {
		t.Error("closed-won record name")
	}
	if currentSchema[kindRejected].Root.Name != "crm.pipeline.CommandRejected" {
		t.Error("rejection record name")
	}
}

// pinnedFingerprints are the fingerprints of every schema this package has shipped. Records
// on the topics carry them; if one changes, records already written become unreadable.
//
// If this test fails because you changed a schema on purpose: do not edit a shipped schema
// in place. Copy the old file to schemas/vN/ (unchanged), register it in schemaTable, make the
// change in the current file in a backward-compatible way, and add the new fingerprint here.
// Whitespace and "doc" edits do not change fingerprints.
//
// Exception, taken once before the first release: aggregate.avsc (rejections, won) and
// command_rejected.avsc (position) were edited in place and re-pinned, because nothing had
// shipped to production yet, so no record carrying the old fingerprints exists outside
// development. From the first release on, the rule above holds without exception.
var pinnedFingerprints = map[string]uint64{
	"schemas/account.avsc":             0xddd8dad8542a13ff,
	"schemas/analytics_bucket.avsc":    0x4ba940cc948e47ec, // v2: per-source guard "applied" replaces per-opportunity "seen"
	"schemas/analytics_delta.avsc":     0xfa351deab03ea034, // v2: + source, position
	"schemas/aggregate.avsc":           0xf87a208333680a67, // v3: + fingerprints
	"schemas/v2/aggregate.avsc":        0xabde86bd2a99a1e5, // v2: + recentDeltas, historyOnTopic (the history moved to crm.opportunity.history)
	"schemas/closed_won.avsc":          0x5d9a33889dafaceb,
	"schemas/command.avsc":             0xdc25da86a78aa3a0, // v3: + CloseLost.closeDate
	"schemas/v2/command.avsc":          0x2e31b4a9899e8c85,
	"schemas/command_rejected.avsc":    0xf9db6fd7bbc43b6b, // pre-release, re-pinned (was 0x30f13666f3811cce): + position
	"schemas/event.avsc":               0xe7870d8fb1b0c618,
	"schemas/fx_rate.avsc":             0xe3ce708d67996e25,
	"schemas/pipeline.avsc":            0x0c4d61c9d2d413df,
	"schemas/v1/aggregate.avsc":        0xa62bed784141b949, // pre-release, re-pinned (was 0x6179ce65d3e1060b): + rejections, won
	"schemas/v1/analytics_bucket.avsc": 0xa2f130cc38572a34,
	"schemas/v1/analytics_delta.avsc":  0xcb0e8a6961fea65b,
	"schemas/v1/command.avsc":          0x01b6481a95e5f41a,
}

func TestSchemaFingerprintsArePinned(t *testing.T) {
	for _, e := range knownFingerprints() {
		want, ok := pinnedFingerprints[e.Path]
		if !ok {
			t.Errorf("%s (fingerprint %016x) is not pinned: add it", e.Path, e.Fingerprint)
			continue
		}
		if e.Fingerprint != want {
			t.Errorf("%s: fingerprint %016x, shipped as %016x: a shipped schema changed (see pinnedFingerprints)", e.Path, e.Fingerprint, want)
		}
	}
	for path := range pinnedFingerprints {
		if _, ok := SchemaFiles()[path]; !ok {
			t.Errorf("%s was shipped but is gone: records written with it can no longer be read", path)
		}
	}
}

// The fingerprints of our own schemas must be what goavro would compute if it implemented the
// specification: check them against the canonical form computed independently by goavro's
// parser for the schemas where goavro is right (no logical types): FXRate and the analytics
// records (named in a namespace of their own, with maps).
func TestOwnSchemaFingerprintAgreesWithGoavroWithoutLogicalTypes(t *testing.T) {
	for _, k := range []recordKind{kindFXRate, kindDelta, kindBucket} {
		e := currentSchema[k]
		g, err := e.Goavro()
		if err != nil {
			t.Fatal(err)
		}
		if g.CanonicalSchema() != e.Canonical {
			t.Errorf("%s: canonical forms differ:\n ours   %s\n goavro %s", e.Path, e.Canonical, g.CanonicalSchema())
		}
		if g.Rabin != e.Fingerprint {
			t.Errorf("%s: fingerprint %016x, goavro %016x", e.Path, e.Fingerprint, g.Rabin)
		}
	}
}

// v1 analytics records (per-opportunity "seen" guard, deltas without a source) are read by this
// build: a v1 bucket keeps its values and starts with an empty guard, a v1 delta reads with no
// source, which Bucket.Apply applies unguarded.
func TestOlderAnalyticsWritersAreRead(t *testing.T) {
	vb := entryByPath(t, "schemas/v1/analytics_bucket.avsc")
	bc, err := vb.Goavro()
	if err != nil {
		t.Fatal(err)
	}
	body, err := bc.BinaryFromNative(nil, map[string]any{
		"values": map[string]any{"count": int64(3), "USD/commit/amount": int64(-1250)},
		"seen":   map[string]any{"opp-1": int64(4), "opp-2": int64(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeBucket(append(vb.Header[:], body...))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"count": 3, "USD/commit/amount": -1250}; !reflect.DeepEqual(b.Values, want) || b.Applied != nil {
		t.Errorf("v1 bucket read as %+v", b)
	}

	vd := entryByPath(t, "schemas/v1/analytics_delta.avsc")
	dc, err := vd.Goavro()
	if err != nil {
		t.Fatal(err)
	}
	body, err = dc.BinaryFromNative(nil, map[string]any{
		"bucket": "F|default|2026-06-30|u-1", "opportunityId": "opp-1", "version": int64(7),
		"values": map[string]any{"count": int64(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeDelta(append(vd.Header[:], body...))
	if err != nil {
		t.Fatal(err)
	}
	want := analytics.Delta{Bucket: "F|default|2026-06-30|u-1", OpportunityID: "opp-1", Version: 7, Values: map[string]int64{"count": 1}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("v1 delta read as %+v, want %+v", d, want)
	}
}

// A group table value the previous layout wrote (v1: the whole history in events, no
// recentDeltas, no historyOnTopic) is read with the flag false and every event, which is what
// tells the processor to copy its history to the history topic. The v1 body is the current
// body without the two trailing empty fields; goavro with the v1 file confirms it is one.
func TestOlderAggregateWriterIsRead(t *testing.T) {
	t.Run("v2", testV2AggregateWriterIsRead)
	v1 := entryByPath(t, "schemas/v1/aggregate.avsc")
	codec, err := v1.Goavro()
	if err != nil {
		t.Fatal(err)
	}
	want := fullAggregate()
	want.RecentDeltas, want.HistoryOnTopic, want.Fingerprints = nil, false, nil
	cur, err := EncodeAggregate(want)
	if err != nil {
		t.Fatal(err)
	}
	body := cur[headerLen : len(cur)-3]
	if _, rest, err := codec.NativeFromBinary(body); err != nil || len(rest) != 0 {
		t.Fatalf("not a v1 body: %v (%d bytes left)", err, len(rest))
	}
	b := append(v1.Header[:], body...)
	got, err := DecodeAggregate(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v1 aggregate read as\n %#v\nwant %#v", got, want)
	}
	st, err := DecodeAggregateState(b)
	if err != nil || st.Events != nil || st.HistoryOnTopic || st.State.ID != want.State.ID {
		t.Errorf("v1 aggregate state read as %+v, %v", st, err)
	}
}

// A group table value of schema v2 (no fingerprints) is read with none: its command ids count
// as applied before fingerprints were kept, so a repeated id is taken as a retry. The v2 body
// is the current body without the trailing empty array.
func testV2AggregateWriterIsRead(t *testing.T) {
	v2 := entryByPath(t, "schemas/v2/aggregate.avsc")
	codec, err := v2.Goavro()
	if err != nil {
		t.Fatal(err)
	}
	want := fullAggregate()
	want.Fingerprints = nil
	cur, err := EncodeAggregate(want)
	if err != nil {
		t.Fatal(err)
	}
	body := cur[headerLen : len(cur)-1]
	if _, rest, err := codec.NativeFromBinary(body); err != nil || len(rest) != 0 {
		t.Fatalf("not a v2 body: %v (%d bytes left)", err, len(rest))
	}
	got, err := DecodeAggregate(append(v2.Header[:], body...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v2 aggregate read as\n %#v\nwant %#v", got, want)
	}
}
