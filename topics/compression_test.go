package topics

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestParseCompression(t *testing.T) {
	for name, want := range map[string]sarama.CompressionCodec{
		"": sarama.CompressionNone, "none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
	} {
		got, err := ParseCompression(name)
		if err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", name, got, err, want)
		}
		if cfg := SaramaConfig(ClientOptions{Compression: want}); cfg.Producer.Compression != want {
			t.Errorf("SaramaConfig with %v sets %v", want, cfg.Producer.Compression)
		}
	}
	if _, err := ParseCompression("brotli"); err == nil {
		t.Error("ParseCompression accepted brotli")
	}
	// The zero value is none (the Java producer's default), not goka's snappy.
	if cfg := SaramaConfig(ClientOptions{}); cfg.Producer.Compression != sarama.CompressionNone {
		t.Errorf("default compression %v, want none", cfg.Producer.Compression)
	}
}

// Every codec the flag offers round-trips through the embedded broker with the service's
// client settings (idempotent producer, Kafka 2.8 protocol).
func TestCompressionRoundTripsThroughBroker(t *testing.T) {
	b := startTestBroker(t)
	admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, SaramaConfig(ClientOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, name := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		codec, err := ParseCompression(name)
		if err != nil {
			t.Fatal(err)
		}
		opts := ClientOptions{Brokers: []string{b.Addr()}, Compression: codec}
		topic := "compression-" + name
		if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			t.Fatal(err)
		}
		cfg := SaramaConfig(opts)
		cfg.Producer.Return.Successes = true
		prod, err := sarama.NewSyncProducer(opts.Brokers, cfg)
		if err != nil {
			t.Fatal(err)
		}
		const n = 20
		for i := 0; i < n; i++ {
			v := fmt.Sprintf("value %d of %s, repeated so that it compresses: %s", i, name, "abcabcabcabcabcabc")
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)}); err != nil {
				t.Fatalf("%s: send: %v", name, err)
			}
		}
		prod.Close()

		cons, err := sarama.NewConsumer(opts.Brokers, SaramaConfig(opts))
		if err != nil {
			t.Fatal(err)
		}
		pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("%s: consume: %v", name, err)
		}
		for i := 0; i < n; i++ {
			select {
			case m := <-pc.Messages():
				want := fmt.Sprintf("value %d of %s, repeated so that it compresses: %s", i, name, "abcabcabcabcabcabc")
				if string(m.Value) != want {
					t.Fatalf("%s: record %d = %q", name, i, m.Value)
				}
			case err := <-pc.Errors():
				t.Fatalf("%s: %v", name, err)
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: record %d not consumed", name, i)
			}
		}
		pc.Close()
		cons.Close()
	}
}
