package analytics

// What the external tests of this directory need from inside the package. The tests that
// compare the Store with the oracle of package analyticstest are in package analytics_test:
// analyticstest imports analytics, so package analytics's own tests cannot import it. They
// dot-import analytics, and use the names below, which only test builds see.

// The fixtures of helpers_test.go.
var (
	T0             = t0
	TestPipelines  = testPipelines
	TestRates      = testRates
	LookupPipeline = lookupPipeline
	MustDecide     = decide
	CreateCmd      = createCmd
	WonCmd         = wonCmd
	LostCmd        = lostCmd
	MustDate       = date
	MustJSON       = mustJSON
	ApplyAll       = applyAll
	StoreOf        = storeOf
)

// Ptr is ptr of helpers_test.go.
func Ptr[T any](v T) *T { return ptr(v) }

// Bucket keys and value names, for the tests that write buckets by key and for the property
// test's raw sums (checkRawMillis).
var (
	BucketKeyForTest        = bucketKey
	SplitNameForTest        = splitName
	FamForecastForTest      = famForecast
	FamWinLossForTest       = famWinLoss
	FamEventsForTest        = famEvents
	NameWonCycleDaysForTest = nameWonCycleDays
)

// KeyForTest is the family and pipeline of a bucket key.
type KeyForTest struct {
	Fam      byte
	Pipeline string
}

// ParseKeyForTest is parseKey's family and pipeline.
func ParseKeyForTest(k string) (KeyForTest, bool) {
	pk, ok := parseKey(k)
	return KeyForTest{Fam: pk.fam, Pipeline: pk.pipeline}, ok
}
