package topics

import (
	"strconv"
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

// TestRecordSizeMatchesSarama checks RecordSize against the size sarama's producer compares
// with Producer.MaxMessageBytes, for keys, values and headers of several sizes.
func TestRecordSizeMatchesSarama(t *testing.T) {
	for _, key := range []string{"", "k", strings.Repeat("k", 300)} {
		for _, n := range []int{0, 1, 1000, MaxMessageBytes} {
			for _, hdr := range []map[string][]byte{nil, {"a": []byte("b")}, {"crm-command-ts": []byte("1"), "x": make([]byte, 5000)}} {
				m := &sarama.ProducerMessage{Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(make([]byte, n))}
				for k, v := range hdr {
					m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(k), Value: v})
				}
				if got, want := RecordSize(key, make([]byte, n), hdr), m.ByteSize(2); got != want {
					t.Fatalf("key %d value %d headers %d: RecordSize %d, sarama %d", len(key), n, len(hdr), got, want)
				}
			}
		}
	}
	if !FitsRecord("k", make([]byte, MaxMessageBytes-RecordSize("k", nil, nil)), nil) ||
		FitsRecord("k", make([]byte, MaxMessageBytes-RecordSize("k", nil, nil)+1), nil) {
		t.Fatal("FitsRecord is off by one at the producer's limit")
	}
}

// TestTopicLimitAboveProducerLimit: every topic is created with max.message.bytes set, above
// the producer's limit, so a record we may produce always fits its topic.
func TestTopicLimitAboveProducerLimit(t *testing.T) {
	if TopicMaxMessageBytes <= MaxMessageBytes+64*1024 {
		t.Fatalf("topic limit %d leaves too little room above the producer's %d", TopicMaxMessageBytes, MaxMessageBytes)
	}
	for _, s := range Catalog(4) {
		v := s.Configs()["max.message.bytes"]
		if v == nil || *v != strconv.Itoa(TopicMaxMessageBytes) {
			t.Fatalf("topic %s created without max.message.bytes=%d", s.Name, TopicMaxMessageBytes)
		}
	}
}
