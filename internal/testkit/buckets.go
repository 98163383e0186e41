package testkit

import (
	"testing"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// LatestBuckets is the analytics table as compaction leaves it: each key's last bucket, keys
// whose last record is a tombstone left out.
func LatestBuckets(t testing.TB, broker string) map[string]analytics.Bucket {
	t.Helper()
	out := map[string]analytics.Bucket{}
	for _, m := range ReadAll(t, broker, topics.AnalyticsTable) {
		if len(m.Value) == 0 {
			delete(out, string(m.Key))
			continue
		}
		b, err := codecs.DecodeBucket(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		out[string(m.Key)] = b
	}
	return out
}
