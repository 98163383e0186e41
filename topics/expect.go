package topics

import (
	"fmt"

	"github.com/IBM/sarama"
)

// TopicFacts is what the broker says about a topic partition that a local cache must agree
// with: the topic's id (new on every creation) and the partition's high-water mark.
type TopicFacts struct {
	TopicID       string
	HighWaterMark int64
}

// Facts asks the cluster for the id of topic and the high-water mark of partition. A local
// cache built from another incarnation of the topic, or ahead of its log, is stale and must be
// rebuilt (views would otherwise serve old data silently).
func Facts(client sarama.Client, topic string, partition int32) (TopicFacts, error) {
	b, err := client.Controller()
	if err != nil {
		b = client.LeastLoadedBroker()
	}
	if b == nil {
		return TopicFacts{}, fmt.Errorf("facts of %s: no broker available: %w", topic, err)
	}
	resp, err := b.GetMetadata(sarama.NewMetadataRequest(sarama.V2_8_0_0, []string{topic}))
	if err != nil {
		return TopicFacts{}, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	var facts TopicFacts
	for _, t := range resp.Topics {
		if t.Name == topic {
			if t.Err != sarama.ErrNoError {
				return TopicFacts{}, fmt.Errorf("metadata of %s: %w", topic, t.Err)
			}
			var zero sarama.Uuid
			if t.Uuid != zero {
				facts.TopicID = t.Uuid.String()
			}
		}
	}
	hwm, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		return TopicFacts{}, fmt.Errorf("high-water mark of %s/%d: %w", topic, partition, err)
	}
	facts.HighWaterMark = hwm
	return facts, nil
}
