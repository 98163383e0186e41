package query

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/analytics"
)

// TestForecastJSONMatchesMarshal: the forecast body appended by hand is byte for byte what
// json.Marshal writes, for keys that need escaping (quotes, HTML characters, control
// characters, non-ASCII and invalid UTF-8, U+2028) as well as plain ones.
func TestForecastJSONMatchesMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	keys := []string{"", "owner-001", "2025-Q1", `a"b`, `back\slash`, "<script>&amp;", "tab\there", "nl\n", "\x00\x1f\x7f",
		"é ü 日本", "bad \xff\xfe utf8", "line\u2028sep\u2029", "emoji 😀", strings.Repeat("x", 300)}
	measure := func() analytics.Measure {
		return analytics.Measure{Count: r.Int64N(1000) - 500, Amount: keys[r.IntN(len(keys))], Weighted: "-123.45"}
	}
	figures := func() analytics.ForecastFigures {
		return analytics.ForecastFigures{Open: measure(), Pipeline: measure(), BestCase: measure(), Commit: measure(),
			ClosedWon: measure(), ClosedLost: measure(), CommitForecast: measure(), BestCaseForecast: measure()}
	}
	results := []analytics.ForecastResult{{}, {Currency: "USD", Groups: []analytics.ForecastGroup{}}}
	for range 50 {
		res := analytics.ForecastResult{Currency: "EUR", From: "2025-01-01", To: "2025-03-31", Total: figures()}
		for range r.IntN(20) {
			res.Groups = append(res.Groups, analytics.ForecastGroup{Key: keys[r.IntN(len(keys))], ForecastFigures: figures()})
		}
		results = append(results, res)
	}
	for _, res := range results {
		want, err := json.Marshal(forecastOut(&res))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendForecastJSON(nil, &res); string(got) != string(want) {
			t.Fatalf("appendForecastJSON:\n got %s\nwant %s", got, want)
		}
	}
}
