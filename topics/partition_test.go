package topics

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
)

// TestPartitionMatchesJavaDefault checks our murmur2 against sarama's Murmur2 partitioner,
// which reproduces the Java client's default, and against known values of the Java client.
func TestPartitionMatchesJavaDefault(t *testing.T) {
	for _, n := range []int32{1, 3, 8, 12, 100} {
		ref := sarama.NewMurmur2Partitioner("t")
		for i := 0; i < 2000; i++ {
			key := fmt.Sprintf("opp-%d-%x", i, i*7919)
			want, err := ref.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := PartitionOf(key, n); got != want {
				t.Fatalf("PartitionOf(%q, %d) = %d, sarama murmur2 says %d", key, n, got, want)
			}
		}
	}
	// Values of org.apache.kafka.common.utils.Utils.murmur2 (Kafka's UtilsTest).
	known := map[string]int32{"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
		"a-little-bit-longer-string": -1486304829, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107}
	for k, want := range known {
		if got := Murmur2([]byte(k)); got != want {
			t.Errorf("Murmur2(%q) = %d, want %d", k, got, want)
		}
	}
}

// TestHasherGivesGokaJavaPartition checks that goka's mapping abs(int32(Sum32())) % n with our
// hasher is Java's partition.
func TestHasherGivesGokaJavaPartition(t *testing.T) {
	h := Hasher()()
	for i := 0; i < 1000; i++ {
		key := fmt.Sprintf("k%d", i)
		h.Reset()
		_, _ = h.Write([]byte(key))
		v := int32(h.Sum32())
		if v < 0 {
			v = -v
		}
		if got, want := v%8, PartitionOf(key, 8); got != want {
			t.Fatalf("key %q: goka mapping %d, java %d", key, got, want)
		}
	}
}

func TestSpecConfigs(t *testing.T) {
	for _, s := range Catalog(8) {
		c := s.Configs()
		want := "delete"
		if s.Compact {
			want = "compact"
		}
		if got := *c["cleanup.policy"]; got != want {
			t.Errorf("%s: cleanup.policy %s, want %s", s.Name, got, want)
		}
		if s.Copartitioned && s.Partitions != 8 {
			t.Errorf("%s: copartitioned with %d partitions", s.Name, s.Partitions)
		}
	}
}
