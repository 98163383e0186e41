package systemtest

import (
	"fmt"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// Bad records on the commands topic, as any upstream Kafka client may produce them: random bytes
// and records around the size limits. Each must end in the DLQ (or be refused) without stalling
// its partition.

// TestRandomBytesEndInDLQ floods the commands topic with random-byte records (some with a
// valid single-object header and garbage behind it), then sends a valid command on every
// partition: every bad record must reach the DLQ, and no partition may stall.
func TestRandomBytesEndInDLQ(t *testing.T) {
	const n = 10000
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	broker := s.Run.BrokerAddr
	cfg := topics.SaramaConfig(topics.ClientOptions{Brokers: []string{broker}, ClientID: "fuzz-producer"})
	cfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(topics.Hasher())
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewAsyncProducer([]string{broker}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	valid, _ := codecs.EncodeCommand(domain.Command{Type: domain.CmdChangeStage, CommandID: "x", OpportunityID: "x",
		ChangeStage: &domain.ChangeStage{StageID: "proposal"}})
	rng := rand.New(rand.NewPCG(7, 7))
	go func() {
		for i := 0; i < n; i++ {
			var v []byte
			switch i % 3 {
			case 0: // pure noise
				v = make([]byte, rng.IntN(300))
				for j := range v {
					v[j] = byte(rng.IntN(256))
				}
			case 1: // a valid header with a corrupted body
				v = append([]byte(nil), valid...)
				for k := 0; k < 3; k++ {
					v[10+rng.IntN(len(v)-10)] = byte(rng.IntN(256))
				}
				v = v[:10+rng.IntN(len(v)-10)]
			default: // truncated valid record
				v = append([]byte(nil), valid[:rng.IntN(len(valid)-1)]...)
			}
			p.Input() <- &sarama.ProducerMessage{Topic: topics.Commands, Key: sarama.StringEncoder(fmt.Sprintf("junk-%d", i)), Value: sarama.ByteEncoder(v)}
		}
	}()
	for i := 0; i < n; i++ {
		select {
		case <-p.Successes():
		case err := <-p.Errors():
			t.Fatalf("produce: %v", err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// One valid command per partition afterwards.
	ids := createOnEveryPartition(s, "after", 4)
	junkRefused := func() int {
		c := 0
		for _, m := range testkit.ReadAll(t, broker, topics.Rejections) {
			if strings.HasPrefix(string(m.Key), "junk-") {
				c++
			}
		}
		return c
	}
	// A corrupted body can still decode (a changed character in a string): such a command is
	// refused (its opportunity id is not its key), never applied.
	var dlq []*sarama.ConsumerMessage
	refused := 0
	testkit.Eventually(t, "every random record in the DLQ or refused", func() bool {
		dlq = testkit.ReadAll(t, broker, topics.DLQ)
		refused = junkRefused()
		return len(dlq)+refused >= n
	})
	for _, m := range dlq {
		if !strings.HasPrefix(string(m.Key), "junk-") {
			t.Fatalf("DLQ holds a record that is not junk: %q", m.Key)
		}
	}
	if len(dlq)+refused != n {
		t.Fatalf("%d in the DLQ + %d refused for %d bad records", len(dlq), refused, n)
	}
	expectOpportunities(t, s, ids, "the flood")
	t.Logf("%d random records: %d in the DLQ, %d decodable and refused", n, len(dlq), refused)
}

// TestOversizeRecordsNeverStopAPartition produces records of every size around the
// producer's limit (topics.MaxMessageBytes) and the topics' max.message.bytes, each once on
// the partition murmur2 gives its key and once on the partition librdkafka's default
// partitioner (CRC32) gives it, where that differs. A record on the wrong partition must be
// forwarded, and one too large to forward must go to the DLQ (truncated, with the reason)
// instead of failing the processor for good. Afterwards a valid command on every partition
// must be applied: before the size checks, the first unforwardable record restarted the
// processor forever and its partition never drained.
func TestOversizeRecordsNeverStopAPartition(t *testing.T) {
	const parts = 4
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	broker := s.Run.BrokerAddr
	p := manualProducer(t, broker, "big-producer", topics.TopicMaxMessageBytes)

	// The value length that makes a record of key k (no headers) exactly n bytes for sarama.
	valueFor := func(k string, n int) int { return n - topics.RecordSize(k, nil, nil) }
	type rec struct {
		key       string
		size      int
		partition int32
		forward   bool
	}
	var recs []rec
	sizes := []int{topics.MaxMessageBytes - 1, topics.MaxMessageBytes, topics.MaxMessageBytes + 1,
		topics.MaxMessageBytes + 4096, topics.TopicMaxMessageBytes - 4096, topics.TopicMaxMessageBytes - 200}
	for i, n := range sizes {
		// A key whose CRC32 partition differs from its murmur2 one.
		for j := 0; ; j++ {
			k := fmt.Sprintf("big-%d-%d", i, j)
			right := topics.PartitionOf(k, parts)
			crc := int32(crc32.ChecksumIEEE([]byte(k)) % parts)
			if crc != right {
				recs = append(recs, rec{key: k, size: n, partition: right}, rec{key: k, size: n, partition: crc, forward: true})
				break
			}
		}
	}
	for _, r := range recs {
		v := strings.Repeat("x", valueFor(r.key, r.size))
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topics.Commands, Partition: r.partition,
			Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatalf("produce %d bytes: %v", r.size, err)
		}
	}
	// A decodable command far over the name limit: refused, with a bounded refusal.
	huge := domain.Command{Type: domain.CmdCreate, CommandID: "huge-1", OpportunityID: "huge-1", Actor: "lead-service",
		Create: &domain.CreateOpportunity{Name: strings.Repeat("n", 950_000), AccountID: "a", OwnerID: "o",
			Amount: "1", Currency: "USD", CloseDate: testkit.CloseDate(5)}}
	hb, err := codecs.EncodeCommand(huge)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topics.Commands, Partition: topics.PartitionOf("huge-1", parts),
		Key: sarama.StringEncoder("huge-1"), Value: sarama.ByteEncoder(hb)}); err != nil {
		t.Fatal(err)
	}
	// Then one valid command per partition.
	ids := createOnEveryPartition(s, "after-big", parts)

	// Every big record ends in the DLQ exactly once: undecodable where it belongs (after a
	// forward if it fit), too large where it could not be forwarded.
	wantTooLarge := 0
	for _, r := range recs {
		if r.forward && r.size > topics.MaxMessageBytes {
			wantTooLarge++
		}
	}
	var dlq []*sarama.ConsumerMessage
	testkit.Eventually(t, "every big record in the DLQ", func() bool {
		dlq = testkit.ReadAll(t, broker, topics.DLQ)
		return len(dlq) >= len(recs)
	})
	if len(dlq) != len(recs) {
		t.Fatalf("%d DLQ records for %d big records", len(dlq), len(recs))
	}
	tooLarge := 0
	for _, m := range dlq {
		hdr := map[string]string{}
		for _, h := range m.Headers {
			hdr[string(h.Key)] = string(h.Value)
		}
		if hdr[topics.HeaderDLQMessage] == "" || hdr[topics.HeaderDLQOffset] == "" {
			t.Fatalf("DLQ record of %s without its cause: %v", m.Key, hdr)
		}
		if strings.Contains(hdr[topics.HeaderDLQMessage], "too large to produce") {
			tooLarge++
			if hdr[topics.HeaderDLQTruncated] != "true" || hdr[topics.HeaderDLQOriginalBytes] == "" {
				t.Fatalf("unforwardable record %s not marked truncated: %v", m.Key, hdr)
			}
		}
		if len(m.Value)+len(m.Key) > topics.MaxMessageBytes {
			t.Fatalf("DLQ record of %d bytes", len(m.Value))
		}
	}
	if tooLarge != wantTooLarge {
		t.Fatalf("%d records DLQ'd as too large to forward, want %d", tooLarge, wantTooLarge)
	}
	var refused bool
	testkit.Eventually(t, "the huge command refused", func() bool {
		for _, m := range testkit.ReadAll(t, broker, topics.Rejections) {
			if string(m.Key) == "huge-1" {
				refused = true
				if len(m.Value) > 64*1024 {
					t.Fatalf("refusal of %d bytes: its texts are not bounded", len(m.Value))
				}
			}
		}
		return refused
	})
	expectOpportunities(t, s, ids, "the big records")
	restarts, err := testkit.Metrics(s.Run.HTTPAddr, "crm_processor_restarts_total")
	if err != nil {
		t.Fatal(err)
	}
	for labels, v := range restarts {
		if v != 0 {
			t.Fatalf("the processor restarted: crm_processor_restarts_total%s %v", labels, v)
		}
	}
}

// createOnEveryPartition creates an opportunity on each of the service's parts partitions of
// the commands topic (ids prefix-<partition>-<n>), each applied before it returns: behind a
// stalled partition its create would not be. It returns the ids, for expectOpportunities.
func createOnEveryPartition(s *testkit.Service, prefix string, parts int32) []string {
	var ids []string
	for part := int32(0); part < parts; part++ {
		for i := 0; ; i++ {
			id := fmt.Sprintf("%s-%d-%d", prefix, part, i)
			if topics.PartitionOf(id, parts) == part {
				ids = append(ids, id)
				break
			}
		}
	}
	for _, id := range ids {
		s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody(id), testkit.Wait), 201)
	}
	return ids
}

// expectOpportunities fails the test unless every opportunity of ids is still there after what
// the test sent.
func expectOpportunities(t *testing.T, s *testkit.Service, ids []string, after string) {
	t.Helper()
	for _, id := range ids {
		if r := s.Do("GET", "/opportunities/"+id, nil, nil); r.Status != 200 {
			t.Fatalf("%s after %s: %d", id, after, r.Status)
		}
	}
}

// manualProducer is a synchronous producer that sends each record to the partition it names, as
// a client with another partitioner than the service's would; maxMessageBytes, when not 0,
// replaces the service's producer limit. It is closed when the test ends.
func manualProducer(t *testing.T, broker, clientID string, maxMessageBytes int) sarama.SyncProducer {
	t.Helper()
	cfg := topics.SaramaConfig(topics.ClientOptions{Brokers: []string{broker}, ClientID: clientID})
	if maxMessageBytes != 0 {
		cfg.Producer.MaxMessageBytes = maxMessageBytes
	}
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer([]string{broker}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}
