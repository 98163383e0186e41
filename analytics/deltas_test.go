package analytics

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

type vals = map[string]int64

// TestDeltasLifecycle walks one deal through every kind of command and checks the exact
// deltas of each step, by hand-computed figures.
func TestDeltasLifecycle(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const (
		f0630 = "F|default|2025-06-30|u-1"
		f0515 = "F|default|2025-05-15|u-1"
		g0515 = "F|default|2025-05-15|u:2" // owner "u:2"
		g0308 = "F|default|2025-03-08|u:2" // the day the win is recorded on
		g0312 = "F|default|2025-03-12|u:2" // the day of the loss
	)
	steps := []struct {
		name string
		cmd  domain.Command
		at   string
		want map[string]vals
	}{
		{"create", createCmd("o1", "c1"), "2025-03-01T09:00:00Z", map[string]vals{
			f0630: {"open/count": 1, "USD/open/amount": 1250000, "USD/open/weighted": 125000,
				"pipeline/count": 1, "USD/pipeline/amount": 1250000, "USD/pipeline/weighted": 125000,
				"stage/qualification/count": 1, "USD/stage/qualification/amount": 1250000, "USD/stage/qualification/weighted": 125000},
			"E|default|2025-03-01|u-1": {"move//qualification": 1, "created/count": 1, "USD/created/amount": 1250000},
		}},
		{"amount up", updateCmd("o1", "c2", domain.UpdateOpportunity{Amount: ptr("15000.00")}), "2025-03-01T10:00:00Z", map[string]vals{
			f0630: {"USD/open/amount": 250000, "USD/open/weighted": 25000, "USD/pipeline/amount": 250000, "USD/pipeline/weighted": 25000,
				"USD/stage/qualification/amount": 250000, "USD/stage/qualification/weighted": 25000},
			"E|default|2025-03-01|u-1": {"increased/count": 1, "USD/increased/amount": 250000},
		}},
		{"probability override", updateCmd("o1", "c3", domain.UpdateOpportunity{Probability: ptr(35)}), "2025-03-01T11:00:00Z", map[string]vals{
			f0630: {"USD/open/weighted": 375000, "USD/pipeline/weighted": 375000, "USD/stage/qualification/weighted": 375000},
		}},
		{"category override", updateCmd("o1", "c4", domain.UpdateOpportunity{ForecastCategory: ptr("commit")}), "2025-03-01T12:00:00Z", map[string]vals{
			f0630: {"pipeline/count": -1, "USD/pipeline/amount": -1500000, "USD/pipeline/weighted": -525000,
				"commit/count": 1, "USD/commit/amount": 1500000, "USD/commit/weighted": 525000},
		}},
		{"clear overrides, pull close date", updateCmd("o1", "c5", domain.UpdateOpportunity{ClearProbability: true, ClearForecastCategory: true, CloseDate: ptr("2025-05-15")}), "2025-03-01T13:00:00Z", map[string]vals{
			f0630: {"open/count": -1, "USD/open/amount": -1500000, "USD/open/weighted": -525000,
				"commit/count": -1, "USD/commit/amount": -1500000, "USD/commit/weighted": -525000,
				"stage/qualification/count": -1, "USD/stage/qualification/amount": -1500000, "USD/stage/qualification/weighted": -525000},
			f0515: {"open/count": 1, "USD/open/amount": 1500000, "USD/open/weighted": 150000,
				"pipeline/count": 1, "USD/pipeline/amount": 1500000, "USD/pipeline/weighted": 150000,
				"stage/qualification/count": 1, "USD/stage/qualification/amount": 1500000, "USD/stage/qualification/weighted": 150000},
			"E|default|2025-03-01|u-1": {"pulled/count": 1, "USD/pulled/amount": 1500000},
		}},
		{"skip forward", stageCmd("o1", "c6", "proposal"), "2025-03-02T09:30:00Z", map[string]vals{
			f0515: {"USD/open/weighted": 600000, "pipeline/count": -1, "USD/pipeline/amount": -1500000, "USD/pipeline/weighted": -150000,
				"bestCase/count": 1, "USD/bestCase/amount": 1500000, "USD/bestCase/weighted": 750000,
				// A stage change moves the open figures from the old stage to the new one.
				"stage/qualification/count": -1, "USD/stage/qualification/amount": -1500000, "USD/stage/qualification/weighted": -150000,
				"stage/proposal/count": 1, "USD/stage/proposal/amount": 1500000, "USD/stage/proposal/weighted": 750000},
			"E|default|2025-03-02|u-1": {"move/qualification/proposal": 1, "stay/qualification/count": 1, "stay/qualification/ms": 88200000},
		}},
		{"backward", stageCmd("o1", "c7", "discovery"), "2025-03-02T10:30:00Z", map[string]vals{
			f0515: {"USD/open/weighted": -450000, "bestCase/count": -1, "USD/bestCase/amount": -1500000, "USD/bestCase/weighted": -750000,
				"pipeline/count": 1, "USD/pipeline/amount": 1500000, "USD/pipeline/weighted": 300000,
				"stage/proposal/count": -1, "USD/stage/proposal/amount": -1500000, "USD/stage/proposal/weighted": -750000,
				"stage/discovery/count": 1, "USD/stage/discovery/amount": 1500000, "USD/stage/discovery/weighted": 300000},
			"E|default|2025-03-02|u-1": {"move/proposal/discovery": 1, "stay/proposal/count": 1, "stay/proposal/ms": 3600000},
		}},
		{"owner change (no event-based values)", updateCmd("o1", "c8", domain.UpdateOpportunity{OwnerID: ptr("u:2")}), "2025-03-03T00:00:00Z", map[string]vals{
			// The whole contribution, stage figures included, moves to the new owner's bucket.
			f0515: {"open/count": -1, "USD/open/amount": -1500000, "USD/open/weighted": -300000, "pipeline/count": -1, "USD/pipeline/amount": -1500000,
				"USD/pipeline/weighted": -300000, "stage/discovery/count": -1, "USD/stage/discovery/amount": -1500000, "USD/stage/discovery/weighted": -300000},
			g0515: {"open/count": 1, "USD/open/amount": 1500000, "USD/open/weighted": 300000, "pipeline/count": 1, "USD/pipeline/amount": 1500000,
				"USD/pipeline/weighted": 300000, "stage/discovery/count": 1, "USD/stage/discovery/amount": 1500000, "USD/stage/discovery/weighted": 300000},
		}},
		{"currency change", updateCmd("o1", "c9", domain.UpdateOpportunity{Currency: ptr("JPY"), Amount: ptr("2000000")}), "2025-03-03T01:00:00Z", map[string]vals{
			g0515: {"USD/open/amount": -1500000, "USD/open/weighted": -300000, "USD/pipeline/amount": -1500000, "USD/pipeline/weighted": -300000,
				"JPY/open/amount": 2000000, "JPY/open/weighted": 400000, "JPY/pipeline/amount": 2000000, "JPY/pipeline/weighted": 400000,
				"USD/stage/discovery/amount": -1500000, "USD/stage/discovery/weighted": -300000,
				"JPY/stage/discovery/amount": 2000000, "JPY/stage/discovery/weighted": 400000},
			"E|default|2025-03-03|u:2": {"currencyChanged/count": 1},
		}},
		{"win with amount, recorded on an earlier day", wonCmd("o1", "c10", domain.CloseWon{Amount: ptr("2100000"), CloseDate: ptr("2025-03-08")}), "2025-03-10T12:00:00Z", map[string]vals{
			g0515: {"open/count": -1, "JPY/open/amount": -2000000, "JPY/open/weighted": -400000,
				"pipeline/count": -1, "JPY/pipeline/amount": -2000000, "JPY/pipeline/weighted": -400000,
				// Closing retracts the stage figures; a closed deal carries none.
				"stage/discovery/count": -1, "JPY/stage/discovery/amount": -2000000, "JPY/stage/discovery/weighted": -400000},
			// Forecast, win/loss and the closing event all on the close date; the cycle is
			// 2025-03-01..2025-03-08, 8 days counted inclusively.
			g0308:                      {"closedWon/count": 1, "JPY/closedWon/amount": 2100000, "JPY/closedWon/weighted": 2100000},
			"W|default|2025-03-08|u:2": {"won/count": 1, "JPY/won/amount": 2100000, "won/cycleDays": 8},
			"E|default|2025-03-08|u:2": {"move/discovery/closed_won": 1, "stay/discovery/count": 1, "stay/discovery/ms": 696600000,
				"won/count": 1, "JPY/won/amount": 2100000, "pulled/count": 1, "JPY/pulled/amount": 2100000,
				"increased/count": 1, "JPY/increased/amount": 100000},
		}},
		{"reopen won (the close date stays)", reopenCmd("o1", "c11", "negotiation"), "2025-03-11T08:00:00Z", map[string]vals{
			g0308: {"closedWon/count": -1, "JPY/closedWon/amount": -2100000, "JPY/closedWon/weighted": -2100000,
				"open/count": 1, "JPY/open/amount": 2100000, "JPY/open/weighted": 1680000,
				"commit/count": 1, "JPY/commit/amount": 2100000, "JPY/commit/weighted": 1680000,
				"stage/negotiation/count": 1, "JPY/stage/negotiation/amount": 2100000, "JPY/stage/negotiation/weighted": 1680000},
			"W|default|2025-03-08|u:2": {"won/count": -1, "JPY/won/amount": -2100000, "won/cycleDays": -8},
			"E|default|2025-03-11|u:2": {"move/closed_won/negotiation": 1, "stay/closed_won/count": 1, "stay/closed_won/ms": 72000000,
				"reopened/count": 1, "JPY/reopened/amount": 2100000},
		}},
		{"loss with escaped reason and competitor, on the day of the command", lostCmd("o1", "c12", domain.CloseLost{Reason: "no/budget", Competitor: "Globex|EU"}), "2025-03-12T08:00:00Z", map[string]vals{
			g0308: {"open/count": -1, "JPY/open/amount": -2100000, "JPY/open/weighted": -1680000,
				"commit/count": -1, "JPY/commit/amount": -2100000, "JPY/commit/weighted": -1680000,
				"stage/negotiation/count": -1, "JPY/stage/negotiation/amount": -2100000, "JPY/stage/negotiation/weighted": -1680000},
			g0312: {"closedLost/count": 1, "JPY/closedLost/amount": 2100000},
			"W|default|2025-03-12|u:2": {"lost/count": 1, "JPY/lost/amount": 2100000,
				"reason/no%2Fbudget/count": 1, "JPY/reason/no%2Fbudget/amount": 2100000,
				"competitor/Globex%7CEU/count": 1, "JPY/competitor/Globex%7CEU/amount": 2100000},
			// Closing moved the close date from 2025-03-08 to the day of the loss: a push.
			"E|default|2025-03-12|u:2": {"move/negotiation/closed_lost": 1, "stay/negotiation/count": 1, "stay/negotiation/ms": 86400000,
				"lost/count": 1, "JPY/lost/amount": 2100000, "pushed/count": 1, "JPY/pushed/amount": 2100000},
		}},
		{"duplicate command", lostCmd("o1", "c12", domain.CloseLost{Reason: "no/budget", Competitor: "Globex|EU"}), "2025-03-12T09:00:00Z", nil},
		{"reopen lost", reopenCmd("o1", "c13", "qualification"), "2025-03-13T08:00:00Z", map[string]vals{
			g0312: {"closedLost/count": -1, "JPY/closedLost/amount": -2100000,
				"open/count": 1, "JPY/open/amount": 2100000, "JPY/open/weighted": 210000,
				"pipeline/count": 1, "JPY/pipeline/amount": 2100000, "JPY/pipeline/weighted": 210000,
				"stage/qualification/count": 1, "JPY/stage/qualification/amount": 2100000, "JPY/stage/qualification/weighted": 210000},
			"W|default|2025-03-12|u:2": {"lost/count": -1, "JPY/lost/amount": -2100000,
				"reason/no%2Fbudget/count": -1, "JPY/reason/no%2Fbudget/amount": -2100000,
				"competitor/Globex%7CEU/count": -1, "JPY/competitor/Globex%7CEU/amount": -2100000},
			"E|default|2025-03-13|u:2": {"move/closed_lost/qualification": 1, "stay/closed_lost/count": 1, "stay/closed_lost/ms": 86400000,
				"reopened/count": 1, "JPY/reopened/amount": 2100000},
		}},
		{"no-op update", updateCmd("o1", "c14", domain.UpdateOpportunity{Amount: ptr("2100000"), OwnerID: ptr("u:2")}), "2025-03-13T09:00:00Z", nil},
	}
	var cur *domain.Opportunity
	for _, st := range steps {
		d := decide(t, cur, st.cmd, at(st.at))
		got := Deltas(cur, d.Next, d.Events, lookupPipeline)
		checkDeltas(t, st.name, got, d.Next, st.want)
		next := d.Next
		cur = &next
	}
}

// TestDeltasCreateVariants covers creation edge cases: an omitted category override (counts
// in open only), per-deal half-up weighting in a three-decimal currency, and a deal created
// directly in a later stage.
func TestDeltasCreateVariants(t *testing.T) {
	d := decide(t, nil, createCmd("k1", "k1", func(c *domain.CreateOpportunity) {
		c.PipelineID, c.Currency, c.Amount, c.CloseDate = "enterprise", "KWD", "1.005", "2025-07-01"
		c.Probability, c.ForecastCategory = ptr(50), ptr("omitted")
	}), t0)
	checkDeltas(t, "omitted KWD", Deltas(nil, d.Next, d.Events, nil), d.Next, map[string]vals{
		"F|enterprise|2025-07-01|u-1": {"open/count": 1, "KWD/open/amount": 1005, "KWD/open/weighted": 503, // 502.5 rounds up
			"stage/lead/count": 1, "KWD/stage/lead/amount": 1005, "KWD/stage/lead/weighted": 503},
		"E|enterprise|2025-03-01|u-1": {"move//lead": 1, "created/count": 1, "KWD/created/amount": 1005},
	})
	d = decide(t, nil, createCmd("k2", "k2", func(c *domain.CreateOpportunity) {
		c.StageID, c.Currency, c.Amount, c.OwnerID = "negotiation", "JPY", "999", "a.b"
	}), t0.Add(15*time.Hour)) // the next UTC day
	// An owner id from before ids were restricted to IDAlphabet: its key part is escaped.
	d.Next.OwnerID = "a/b%c"
	checkDeltas(t, "created in negotiation", Deltas(nil, d.Next, d.Events, nil), d.Next, map[string]vals{
		"F|default|2025-06-30|a%2Fb%25c": {"open/count": 1, "JPY/open/amount": 999, "JPY/open/weighted": 799, // 799.2
			"commit/count": 1, "JPY/commit/amount": 999, "JPY/commit/weighted": 799,
			"stage/negotiation/count": 1, "JPY/stage/negotiation/amount": 999, "JPY/stage/negotiation/weighted": 799},
		"E|default|2025-03-02|a%2Fb%25c": {"move//negotiation": 1, "created/count": 1, "JPY/created/amount": 999},
	})
}

// TestDeltasReplayStable checks what the processor's re-emission relies on: deltas computed
// from states rebuilt by domain.Replay of events whose timestamps went through Avro
// (microseconds) equal the deltas of Decide's own states (nanoseconds).
func TestDeltasReplayStable(t *testing.T) {
	now := t0.Add(123456789 * time.Nanosecond)
	var cur *domain.Opportunity
	var log []domain.Event
	cmds := []domain.Command{
		createCmd("r1", "r1"), stageCmd("r1", "r2", "proposal"), updateCmd("r1", "r3", domain.UpdateOpportunity{Amount: ptr("1.99")}),
		wonCmd("r1", "r4", domain.CloseWon{}), reopenCmd("r1", "r5", "discovery"), lostCmd("r1", "r6", domain.CloseLost{Reason: "price"}),
	}
	for i, cmd := range cmds {
		now = now.Add(time.Duration(i+1)*7*time.Hour + 999999*time.Nanosecond)
		d := decide(t, cur, cmd, now)
		want := Deltas(cur, d.Next, d.Events, nil)
		micro := slices.Clone(d.Events)
		for j := range micro {
			micro[j].At = micro[j].At.Truncate(time.Microsecond)
		}
		var prev *domain.Opportunity
		if len(log) > 0 {
			p, err := domain.Replay(log)
			if err != nil {
				t.Fatal(err)
			}
			prev = &p
		}
		log = append(log, micro...)
		next, err := domain.Replay(log)
		if err != nil {
			t.Fatal(err)
		}
		if got := Deltas(prev, next, micro, nil); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: replayed deltas differ:\n got %v\nwant %v", cmd.Type, got, want)
		}
		n := d.Next
		cur = &n
	}
}

// checkDeltas compares deltas with the expected values per bucket and checks the invariants:
// sorted by bucket, one Delta per bucket, no zero values, the opportunity's id and version.
func checkDeltas(t *testing.T, name string, got []Delta, next domain.Opportunity, want map[string]vals) {
	t.Helper()
	if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].Bucket < got[j].Bucket }) {
		t.Errorf("%s: deltas not sorted by bucket", name)
	}
	gotMap := map[string]vals{}
	for _, d := range got {
		if _, dup := gotMap[d.Bucket]; dup {
			t.Errorf("%s: two deltas for %s", name, d.Bucket)
		}
		if d.OpportunityID != next.ID || d.Version != next.Version {
			t.Errorf("%s: delta %s carries %s v%d, want %s v%d", name, d.Bucket, d.OpportunityID, d.Version, next.ID, next.Version)
		}
		if len(d.Values) == 0 {
			t.Errorf("%s: empty delta for %s", name, d.Bucket)
		}
		for k, v := range d.Values {
			if v == 0 {
				t.Errorf("%s: zero value %s in %s", name, k, d.Bucket)
			}
		}
		gotMap[d.Bucket] = d.Values
	}
	if want == nil {
		want = map[string]vals{}
	}
	if !reflect.DeepEqual(gotMap, want) {
		t.Errorf("%s: deltas differ\n%s", name, diffDeltas(gotMap, want))
	}
}

func diffDeltas(got, want map[string]vals) string {
	var b strings.Builder
	for _, k := range unionKeys(got, want) {
		g, w := got[k], want[k]
		for _, n := range unionKeys(g, w) {
			if g[n] != w[n] {
				fmt.Fprintf(&b, "  %s %s: got %d, want %d\n", k, n, g[n], w[n])
			}
		}
	}
	return b.String()
}
