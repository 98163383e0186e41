package topics

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// The compaction interval reaches the broker's config (kfake compacts on that ticker, and a
// compaction stalls every client, so the default is kfake's hour, not a minute).
func TestBrokerCompactionInterval(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		want     string
	}{{0, "3600000"}, {90 * time.Second, "90000"}} {
		b, err := StartBroker(BrokerOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0", CompactionInterval: tc.interval})
		if err != nil {
			t.Fatal(err)
		}
		admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, SaramaConfig(ClientOptions{}))
		if err != nil {
			b.Close()
			t.Fatal(err)
		}
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: "0", ConfigNames: []string{"log.cleaner.backoff.ms"}})
		admin.Close()
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, e := range entries {
			if e.Name == "log.cleaner.backoff.ms" {
				got = e.Value
			}
		}
		if got != tc.want {
			t.Errorf("interval %v: log.cleaner.backoff.ms = %q, want %q", tc.interval, got, tc.want)
		}
	}
}
