package systemtest

import (
	"fmt"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

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
	var ids []string
	for part := int32(0); part < 4; part++ {
		for i := 0; ; i++ {
			id := fmt.Sprintf("after-%d-%d", part, i)
			if topics.PartitionOf(id, 4) == part {
				ids = append(ids, id)
				break
			}
		}
	}
	for _, id := range ids {
		s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody(id), testkit.Wait), 201)
	}
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
	for _, id := range ids {
		if r := s.Do("GET", "/opportunities/"+id, nil, nil); r.Status != 200 {
			t.Fatalf("%s after the flood: %d", id, r.Status)
		}
	}
	t.Logf("%d random records: %d in the DLQ, %d decodable and refused", n, len(dlq), refused)
}
