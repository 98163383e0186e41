package analytics

import (
	"strings"
	"sync"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Value names
//
// A bucket holds named int64 values. Names are '/'-separated; a name that starts with an
// ISO 4217 code (three capital letters) is money in minor units of that currency, every other
// name is a count or a duration. Counts are kept once, not per currency, because they never
// need converting. Free-text segments (loss reasons, competitors, stage ids) are escaped with
// escapePart.
//
// Forecast bucket (F), for cat in open, pipeline, bestCase, commit, closedWon, closedLost:
//
//	<cat>/count  <CUR>/<cat>/amount  <CUR>/<cat>/weighted
//
// and, for an open deal, the same three figures once more under its stage (groupBy stage):
//
//	stage/<stage>/count  <CUR>/stage/<stage>/amount  <CUR>/stage/<stage>/weighted
//
// (a stage's figures are those of its open deals in that bucket, the open figures split by
// stage id; closed deals carry none. Buckets written before this version lack them:
// `crm-pipeline reset-analytics` rebuilds them with the stage values.)
//
// Win/loss bucket (W):
//
//	won/count  won/cycleDays  <CUR>/won/amount  lost/count  <CUR>/lost/amount
//
// (won/cycleDays is the sum of the won deals' wonCycleDays; the previous rule kept
// won/cycleMs, closedAt - createdAt in milliseconds, which this build no longer reads:
// `crm-pipeline reset-analytics` rebuilds such buckets.)
//	reason/<reason>/count  <CUR>/reason/<reason>/amount
//	competitor/<competitor>/count  <CUR>/competitor/<competitor>/amount
//
// Event bucket (E):
//
//	move/<from>/<to>           entries into <to> (from "" for a creation), per stage pair
//	stay/<stage>/count         stays in <stage> that ended that day
//	stay/<stage>/ms            their total length in milliseconds
//	<chg>/count  <CUR>/<chg>/amount   for chg in created, won, lost, reopened, pushed, pulled,
//	                                  increased, decreased
//	currencyChanged/count
//
// Funnel moves are kept per stage pair and classified (advanced, regressed, won, lost,
// reopened) at query time against the pipeline passed to Funnel, so the aggregation does not
// depend on the stage configuration of the moment a command ran.

// Forecast categories, in API.md order.
const (
	catOpen = iota
	catPipeline
	catBestCase
	catCommit
	catClosedWon
	catClosedLost
	numCats
)

// catNames are the spellings of the forecast categories in value names and as the group keys
// of groupBy category (the same spellings query gives the figures on the wire).
var catNames = [numCats]string{"open", "pipeline", "bestCase", "commit", "closedWon", "closedLost"}

// catCountNames are the constant count names "<cat>/count".
var catCountNames = [numCats]string{"open/count", "pipeline/count", "bestCase/count", "commit/count", "closedWon/count", "closedLost/count"}

// openCategory maps an open deal's effective forecast category to the one of pipeline,
// bestCase, commit it counts in; omitted (and anything unknown) counts in none.
func openCategory(c domain.ForecastCategory) (int, bool) {
	switch c {
	case domain.CategoryPipeline:
		return catPipeline, true
	case domain.CategoryBestCase:
		return catBestCase, true
	case domain.CategoryCommit:
		return catCommit, true
	}
	return 0, false
}

// Pipeline-change measures, in ChangesResult order.
const (
	chgCreated = iota
	chgWon
	chgLost
	chgReopened
	chgPushed
	chgPulled
	chgIncreased
	chgDecreased
	numChg
)

var chgNames = [numChg]string{"created", "won", "lost", "reopened", "pushed", "pulled", "increased", "decreased"}

var chgCountNames = [numChg]string{"created/count", "won/count", "lost/count", "reopened/count", "pushed/count", "pulled/count", "increased/count", "decreased/count"}

// Constant names of the win/loss and event families.
const (
	nameWonCount        = "won/count"
	nameLostCount       = "lost/count"
	nameWonCycleDays    = "won/cycleDays"
	nameCurrencyChanged = "currencyChanged/count"
)

// Metric indexes of a forecast money figure.
const (
	metAmount = iota
	metWeighted
)

// curNames are the money value names of one currency, built once per currency and shared, so
// that computing deltas allocates no name strings.
type curNames struct {
	fc       [numCats][2]string // <CUR>/<cat>/amount, <CUR>/<cat>/weighted
	wonAmt   string             // <CUR>/won/amount
	lostAmt  string             // <CUR>/lost/amount
	chgAmt   [numChg]string     // <CUR>/<chg>/amount
	reasonP  string             // <CUR>/reason/
	competeP string             // <CUR>/competitor/
	stageP   string             // <CUR>/stage/
}

var namesCache sync.Map // currency -> *curNames

func namesFor(cur string) *curNames {
	if v, ok := namesCache.Load(cur); ok {
		return v.(*curNames)
	}
	c := escapePart(cur)
	n := &curNames{wonAmt: c + "/won/amount", lostAmt: c + "/lost/amount", reasonP: c + "/reason/", competeP: c + "/competitor/", stageP: c + "/stage/"}
	for i := range numCats {
		n.fc[i][metAmount] = c + "/" + catNames[i] + "/amount"
		n.fc[i][metWeighted] = c + "/" + catNames[i] + "/weighted"
	}
	for i := range numChg {
		n.chgAmt[i] = c + "/" + chgNames[i] + "/amount"
	}
	v, _ := namesCache.LoadOrStore(cur, n)
	return v.(*curNames)
}

// isCurrencySegment reports whether a name segment is an ISO 4217 code: money names start
// with one, every other name with a lower-case word.
func isCurrencySegment(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// splitName splits a value name into its segments (at most 4), unescaping them; ok is false
// for a name with more segments or a bad escape.
func splitName(name string) (seg [4]string, n int, ok bool) {
	for {
		if n == len(seg) {
			return seg, n, false
		}
		part, rest, more := strings.Cut(name, "/")
		u, good := unescapePart(part)
		if !good {
			return seg, n, false
		}
		seg[n] = u
		n++
		if !more {
			return seg, n, true
		}
		name = rest
	}
}

// catIndex finds a category by its value-name spelling.
func catIndex(s string) (int, bool) {
	for i, c := range catNames {
		if c == s {
			return i, true
		}
	}
	return 0, false
}

// chgIndex finds a pipeline-change measure by its value-name spelling.
func chgIndex(s string) (int, bool) {
	for i, c := range chgNames {
		if c == s {
			return i, true
		}
	}
	return 0, false
}
