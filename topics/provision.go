package topics

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/IBM/sarama"
)

// Provision creates every topic of specs that is missing and checks the ones that exist: a
// compacted topic found without cleanup.policy=compact is an error (a table that is not
// compacted grows forever and restores slower every day), and so is a copartitioned topic
// with another partition count (its keys would land on partitions the state never sees).
// It is idempotent, so every instance runs it at start.
func Provision(admin sarama.ClusterAdmin, specs []Spec, replication int16, log *slog.Logger) error {
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	for _, s := range specs {
		detail, ok := existing[s.Name]
		if !ok {
			err := admin.CreateTopic(s.Name, &sarama.TopicDetail{
				NumPartitions:     s.Partitions,
				ReplicationFactor: replication,
				ConfigEntries:     s.Configs(),
			}, false)
			if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
				return fmt.Errorf("create topic %s: %w", s.Name, err)
			}
			if err == nil {
				log.Info("created topic", "topic", s.Name, "partitions", s.Partitions, "compact", s.Compact)
			}
			continue
		}
		if s.Copartitioned && detail.NumPartitions != s.Partitions {
			return fmt.Errorf("topic %s has %d partitions, want %d (copartitioned with %s)",
				s.Name, detail.NumPartitions, s.Partitions, Commands)
		}
		if s.Compact {
			compact, err := isCompacted(admin, s.Name)
			if err != nil {
				return err
			}
			if !compact {
				return fmt.Errorf("topic %s exists without cleanup.policy=compact: fix its configuration before starting", s.Name)
			}
		}
	}
	return nil
}

func isCompacted(admin sarama.ClusterAdmin, topic string) (bool, error) {
	entries, err := admin.DescribeConfig(sarama.ConfigResource{
		Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"cleanup.policy"},
	})
	if err != nil {
		return false, fmt.Errorf("describe config of %s: %w", topic, err)
	}
	for _, e := range entries {
		if e.Name == "cleanup.policy" {
			return e.Value == "compact" || e.Value == "compact,delete" || e.Value == "delete,compact", nil
		}
	}
	return false, nil
}

// Partitions reports the partition count of topic as the cluster sees it.
func Partitions(client sarama.Client, topic string) (int32, error) {
	ps, err := client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	return int32(len(ps)), nil
}
