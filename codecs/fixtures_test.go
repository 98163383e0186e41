package codecs

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Fixtures: every record type with every optional field set, and with none set. Times are UTC
// with microsecond precision, the precision the schemas carry.

func ts(sec int64, micro int64) time.Time { return time.Unix(sec, micro*1000).UTC() }

func ptr[T any](v T) *T { return &v }

var (
	t0 = ts(1741944413, 589793) // 2025-03-14T09:26:53.589793Z
	t1 = ts(1741944500, 1)
	t2 = ts(1742000000, 999999)
)

func fullAccount() *domain.Account {
	return &domain.Account{ID: "acc-1", Name: "Ünïcode GmbH", Segment: "enterprise", Region: "EMEA", OwnerID: "u-9"}
}

func commandFixtures() map[string]domain.Command {
	base := func(t domain.CommandType) domain.Command {
		return domain.Command{Type: t, CommandID: "cmd-" + string(t), OpportunityID: "opp-1", IssuedAt: t0, Actor: "alice", ExpectedVersion: ptr(int64(7))}
	}
	bare := func(t domain.CommandType) domain.Command {
		return domain.Command{Type: t, CommandID: "c", OpportunityID: "o", IssuedAt: time.Unix(0, 0).UTC()}
	}
	m := map[string]domain.Command{}

	c := base(domain.CmdCreate)
	c.Create = &domain.CreateOpportunity{Name: "Big deal", AccountID: "acc-1", OwnerID: "u-1", PipelineID: "default",
		StageID: "discovery", Amount: "12500.00", Currency: "USD", CloseDate: "2025-06-30", Probability: ptr(35),
		ForecastCategory: ptr("best_case"), LeadID: "lead-4", Source: "webinar", NextStep: "send proposal"}
	m["create/full"] = c
	c = bare(domain.CmdCreate)
	c.Create = &domain.CreateOpportunity{}
	m["create/empty"] = c

	c = base(domain.CmdUpdate)
	c.Update = &domain.UpdateOpportunity{Name: ptr("n"), AccountID: ptr("a"), OwnerID: ptr("o"), Amount: ptr("1.50"),
		Currency: ptr("EUR"), CloseDate: ptr("2025-07-01"), NextStep: ptr(""), Probability: ptr(-3),
		ClearProbability: true, ForecastCategory: ptr("commit"), ClearForecastCategory: true}
	m["update/full"] = c
	c = bare(domain.CmdUpdate)
	c.Update = &domain.UpdateOpportunity{}
	m["update/empty"] = c

	c = base(domain.CmdChangeStage)
	c.ChangeStage = &domain.ChangeStage{StageID: "proposal"}
	m["stage/full"] = c
	c = bare(domain.CmdChangeStage)
	c.ChangeStage = &domain.ChangeStage{}
	m["stage/empty"] = c

	c = base(domain.CmdCloseWon)
	c.CloseWon = &domain.CloseWon{CloseDate: ptr("2025-05-05"), Amount: ptr("99999999999999.99")}
	m["won/full"] = c
	c = bare(domain.CmdCloseWon)
	c.CloseWon = &domain.CloseWon{}
	m["won/empty"] = c

	c = base(domain.CmdCloseLost)
	c.CloseLost = &domain.CloseLost{Reason: "price", Competitor: "ACME", Note: "too expensive\nby far", CloseDate: ptr("2025-05-04")}
	m["lost/full"] = c
	c = bare(domain.CmdCloseLost)
	c.CloseLost = &domain.CloseLost{}
	m["lost/empty"] = c

	c = base(domain.CmdReopen)
	c.Reopen = &domain.Reopen{StageID: "qualification"}
	m["reopen/full"] = c
	c = bare(domain.CmdReopen)
	c.Reopen = &domain.Reopen{}
	m["reopen/empty"] = c
	return m
}

func fullEvent(version int64) domain.Event {
	return domain.Event{
		EventID: fmt.Sprintf("opp-1:%d", version), Type: domain.EvtStageChanged, OpportunityID: "opp-1",
		Version: version, At: t1, Actor: "bob", CommandID: fmt.Sprintf("cmd-%d", version),
		FromStageID: "discovery", ToStageID: "proposal",
		Changes: []domain.Change{
			{Field: "stageId", Before: "discovery", BeforeSet: true, After: "proposal", AfterSet: true},
			{Field: "probability", Before: "20", BeforeSet: true, After: "50", AfterSet: true},
			{Field: "nextStep", After: "call", AfterSet: true},
			{Field: "lossReason", Before: "", BeforeSet: true},
		},
		Position: 1<<40 + version,
	}
}

func eventFixtures() map[string]domain.Event {
	m := map[string]domain.Event{"full": fullEvent(3)}
	for _, t := range eventTypes {
		m["bare/"+string(t)] = domain.Event{EventID: "o:1", Type: t, OpportunityID: "o", Version: 1, At: t0}
	}
	return m
}

func fullOpportunity() domain.Opportunity {
	return domain.Opportunity{
		ID: "opp-1", Version: 12, Name: "Big deal", AccountID: "acc-1", Account: fullAccount(), OwnerID: "u-1",
		PipelineID: "default", StageID: "closed_lost", Status: domain.StatusLost, Amount: 1250000, Currency: "USD",
		ProbabilityOverride: &domain.Override{Value: "35", By: "alice", At: t0},
		CategoryOverride:    &domain.Override{Value: "commit", By: "bob", At: t1},
		CloseDate:           domain.Date(20250), NextStep: "none", LeadID: "lead-4", Source: "webinar",
		CreatedAt: t0, UpdatedAt: t2, ClosedAt: ptr(t2), LossReason: "price", Competitor: "ACME", LossNote: "meh",
		StageEnteredAt: t2,
		StageHistory: []domain.StageVisit{
			{StageID: "discovery", EnteredAt: t0, EnteredBy: "alice", LeftAt: ptr(t1), LeftBy: "bob"},
			{StageID: "closed_lost", EnteredAt: t2, EnteredBy: "bob"},
		},
		CloseDatePushCount: 2, Probability: 0, ForecastCategory: domain.CategoryOmitted,
		RecentCommandIDs: []string{"cmd-1", "cmd-2", "cmd-3"},
	}
}

// aggregateWithEvents is the benchmark's shape: a state and n events.
func aggregateWithEvents(n int) domain.Aggregate {
	a := domain.Aggregate{State: fullOpportunity(), Position: 1<<40 + int64(n)}
	for v := 1; v <= n; v++ {
		a.Events = append(a.Events, fullEvent(int64(v)))
	}
	return a
}

// fullAggregate is aggregateWithEvents(10) with both rings filled: rejections with and
// without field errors, closed-won records with and without an account.
func fullAggregate() domain.Aggregate {
	a := aggregateWithEvents(10)
	rej := rejectedFixtures()
	a.Rejections = []domain.RejectedCommand{rej["full"], rej["unknown-type"], rej["empty"]}
	won := closedWonFixtures()
	a.Won = []domain.ClosedWon{won["full"], won["no-account"]}
	a.RecentDeltas = []domain.StoredDelta{{Position: 1<<40 + 9, Record: []byte{0xc3, 0x01, 0, 0xff}}, {Position: 1<<40 + 10, Record: []byte("delta")}}
	a.HistoryOnTopic = true
	a.Fingerprints = []domain.CommandFingerprint{{CommandID: "cmd-2", Fingerprint: 1, Position: 7}, {CommandID: "cmd-3", Fingerprint: 0xfedcba9876543210, Position: 1 << 40}}
	return a
}

func aggregateFixtures() map[string]domain.Aggregate {
	onlyRings := domain.Aggregate{Position: 7,
		Rejections: []domain.RejectedCommand{{CommandID: "c", OpportunityID: "o", CommandType: domain.CmdReopen,
			Code: "not_found", Actor: "a", At: t0, Position: 7}},
		Won: []domain.ClosedWon{closedWonFixtures()["no-account"]},
	}
	return map[string]domain.Aggregate{
		"full":       fullAggregate(),
		"events":     aggregateWithEvents(10),
		"empty":      {Position: -1},
		"only-rings": onlyRings,
		"pre-epoch": {State: domain.Opportunity{ID: "x", CloseDate: domain.MinDate, CreatedAt: ts(-2208988800, 5),
			Status: domain.StatusOpen, ForecastCategory: domain.CategoryPipeline}, Position: 0},
	}
}

func pipelineFixtures() map[string]domain.Pipeline {
	return map[string]domain.Pipeline{
		"full": {ID: "default", Name: "Default", Stages: []domain.Stage{
			{ID: "qualification", Name: "Qualification", Probability: 10, ForecastCategory: domain.CategoryPipeline, Status: domain.StatusOpen, RequiredFields: []string{"amount", "closeDate"}, StaleAfterDays: 30},
			{ID: "closed_won", Name: "Closed Won", Probability: 100, ForecastCategory: domain.CategoryClosed, Status: domain.StatusWon},
			{ID: "closed_lost", Name: "Closed Lost", Probability: 0, ForecastCategory: domain.CategoryOmitted, Status: domain.StatusLost},
		}},
		"empty": {},
	}
}

func accountFixtures() map[string]domain.Account {
	return map[string]domain.Account{"full": *fullAccount(), "empty": {}}
}

func fxRateFixtures() map[string]domain.FXRate {
	return map[string]domain.FXRate{"full": {Currency: "EUR", Rate: "1.0825"}, "empty": {}}
}

func rejectedFixtures() map[string]domain.RejectedCommand {
	return map[string]domain.RejectedCommand{
		"full": {CommandID: "cmd-1", OpportunityID: "opp-1", CommandType: domain.CmdCreate, Code: "validation",
			Message: "bad fields", Fields: []domain.FieldError{{Field: "amount", Message: "not a decimal"}, {Field: "closeDate", Message: "not a date"}},
			Actor: "alice", At: t0, Position: 1<<40 + 17},
		"unknown-type": {CommandType: "Frobnicate", At: t1, Position: -1},
		"empty":        {At: time.Unix(0, 0).UTC()},
	}
}

func closedWonFixtures() map[string]domain.ClosedWon {
	return map[string]domain.ClosedWon{
		"full": {EventID: "opp-1:9", OpportunityID: "opp-1", Version: 9, Name: "Big deal", AccountID: "acc-1",
			Account: fullAccount(), OwnerID: "u-1", PipelineID: "default", Amount: 1250000, Currency: "USD",
			CloseDate: domain.MaxDate, ClosedAt: t2, Actor: "alice", CommandID: "cmd-9"},
		"no-account": {EventID: "o:1", OpportunityID: "o", Version: 1, Amount: -5, Currency: "JPY", ClosedAt: t0},
	}
}

// Analytics fixtures. Empty maps are nil: that is what decoding gives back for both nil and
// empty maps (TestEmptyMapsDecodeAsNil).

// unicodeKeys: multi-byte UTF-8 (2, 3 and 4 bytes), precomposed and decomposed é, a NUL
// byte and the empty key.
func unicodeKeys() map[string]int64 {
	return map[string]int64{"": 1, "Zürich": 2, "Zurich": 3, "東京": -4, "😀": 5, "a\x00b": 6, "é": 7, "e\u0301": 8}
}

func deltaFixtures() map[string]analytics.Delta {
	return map[string]analytics.Delta{
		"full": {Bucket: "forecast|2026-Q3|u-1|USD", OpportunityID: "opp-1", Version: 7, Values: map[string]int64{
			"count": 1, "amount": 1250000, "weighted": 625000, "commit.count": 1, "commit.amount": 1250000, "pipeline.count": -1},
			Source: "3", Position: 1234567},
		"retraction": {Bucket: "winloss|2026-03", OpportunityID: "opp-2", Version: 12, Values: map[string]int64{
			"won.count": -1, "won.amount": -99999999, "lost.count": 1}},
		"single":  {Bucket: "b", OpportunityID: "o", Version: 1, Values: map[string]int64{"count": 1}, Source: "0", Position: 0},
		"large":   {Bucket: "b", OpportunityID: "o", Version: math.MaxInt64, Values: map[string]int64{"max": math.MaxInt64, "min": math.MinInt64, "zero": 0, "-1": -1, "2^32": 1 << 32}, Source: "31", Position: math.MaxInt64},
		"unicode": {Bucket: "funnel|Zürich|東京", OpportunityID: "opp-😀", Version: -3, Values: unicodeKeys(), Source: "東京", Position: -1},
		"empty":   {},
		"v1":      {Bucket: "b", OpportunityID: "o", Version: 2, Values: map[string]int64{"count": 1}}, // no source: what a v1 writer's delta reads as
	}
}

func bucketFixtures() map[string]analytics.Bucket {
	return map[string]analytics.Bucket{
		"full":      benchBucket(50, 8),
		"small":     {Values: map[string]int64{"count": 3, "amount": -17}, Applied: map[string]int64{"0": 4, "7": 1}},
		"only-seen": {Applied: map[string]int64{"2": 9}},
		"large":     {Values: map[string]int64{"max": math.MaxInt64, "min": math.MinInt64}, Applied: map[string]int64{"o": math.MaxInt64}},
		"unicode":   {Values: unicodeKeys(), Applied: unicodeKeys()},
		"empty":     {},
	}
}

// benchDelta and benchBucket are realistically sized records: a delta touches a handful of
// measures, a bucket holds every measure of its group and the guard of every source (commands
// partition) that sent it a delta.
func benchDelta() analytics.Delta {
	return deltaFixtures()["full"]
}

func benchBucket(values, sources int) analytics.Bucket {
	b := analytics.Bucket{Values: make(map[string]int64, values), Applied: make(map[string]int64, sources)}
	stages := []string{"qualification", "discovery", "proposal", "negotiation", "closed_won", "closed_lost", "other"}
	measures := []string{"count", "amount", "weighted", "entered", "left", "age.sum", "pushes"}
	for i := 0; len(b.Values) < values; i++ {
		k := fmt.Sprintf("%s.%s", stages[i%len(stages)], measures[(i/len(stages))%len(measures)])
		if i >= len(stages)*len(measures) {
			k = fmt.Sprintf("%s.%d", k, i)
		}
		b.Values[k] = int64(i*i*7919) - 100000
	}
	r := rand.New(rand.NewPCG(uint64(values), uint64(sources)))
	for i := 0; i < sources; i++ { // commands partitions and their offsets
		b.Applied[strconv.Itoa(i)] = r.Int64N(1 << 40)
	}
	return b
}

// kindCase ties a record kind to its fixtures and its encode/decode functions, so that one
// table drives the round-trip, cross-check and error tests for every kind.
type kindCase struct {
	kind     recordKind
	fixtures func() map[string]any
	encode   func(any) ([]byte, error)
	decode   func([]byte) (any, error)
	generic  func(*avro.Native, map[string]any) any
	// hasMaps: goavro writes map entries in Go's random map order, so its re-encoding equals
	// ours only up to entry order (TestFastPathMatchesGoavro; TestMapBytesAreSortedBlocks
	// checks our order byte by byte).
	hasMaps bool
	// sizedBlocks: we write some arrays as blocks with a negative count and a byte size
	// (the aggregate's history, so state reads can skip it); goavro writes positive counts,
	// so its re-encoding is a few bytes shorter and must read back to the same value.
	sizedBlocks bool
}

func asAny[T any](m map[string]T) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func mkCase[T any](kind recordKind, fx func() map[string]T, enc func(T) ([]byte, error), dec func([]byte) (T, error), gen func(*avro.Native, map[string]any) T) kindCase {
	return kindCase{
		kind:     kind,
		fixtures: func() map[string]any { return asAny(fx()) },
		encode:   func(v any) ([]byte, error) { return enc(v.(T)) },
		decode:   func(b []byte) (any, error) { v, err := dec(b); return v, err },
		generic:  func(c *avro.Native, m map[string]any) any { return gen(c, m) },
	}
}

var kindCases = []kindCase{
	mkCase(kindCommand, commandFixtures, EncodeCommand, DecodeCommand, commandFromNative),
	mkCase(kindEvent, eventFixtures, EncodeEvent, DecodeEvent, eventFromNative),
	withSizedBlocks(mkCase(kindAggregate, aggregateFixtures, EncodeAggregate, DecodeAggregate, aggregateFromNative)),
	mkCase(kindPipeline, pipelineFixtures, EncodePipeline, DecodePipeline, pipelineFromNative),
	mkCase(kindAccount, accountFixtures, EncodeAccount, DecodeAccount, accountFromNative),
	mkCase(kindFXRate, fxRateFixtures, EncodeFXRate, DecodeFXRate, fxRateFromNative),
	mkCase(kindRejected, rejectedFixtures, EncodeRejected, DecodeRejected, rejectedFromNative),
	mkCase(kindClosedWon, closedWonFixtures, EncodeClosedWon, DecodeClosedWon, closedWonFromNative),
	withMaps(mkCase(kindDelta, deltaFixtures, EncodeDelta, DecodeDelta, deltaFromNative)),
	withMaps(mkCase(kindBucket, bucketFixtures, EncodeBucket, DecodeBucket, bucketFromNative)),
}

func withSizedBlocks(kc kindCase) kindCase {
	kc.sizedBlocks = true
	return kc
}

func withMaps(kc kindCase) kindCase {
	kc.hasMaps = true
	return kc
}
