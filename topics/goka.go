package topics

import (
	"fmt"
	"hash"
	"log/slog"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// ConsumerGroupBuilder builds goka consumer groups from a fresh SaramaConfig per call, so that
// no two clients share (and race on) one config and goka's global config is never used.
func ConsumerGroupBuilder(o ClientOptions) goka.ConsumerGroupBuilder {
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		c := SaramaConfig(o)
		c.ClientID = clientID
		if o.InstanceID != "" {
			c.Consumer.Group.InstanceId = o.InstanceID + "." + group
		}
		return sarama.NewConsumerGroup(brokers, group, c)
	}
}

// ConsumerBuilder builds goka's plain consumers (table recovery, views) the same way.
func ConsumerBuilder(o ClientOptions) goka.SaramaConsumerBuilder {
	return func(brokers []string, clientID string) (sarama.Consumer, error) {
		c := SaramaConfig(o)
		c.ClientID = clientID
		return sarama.NewConsumer(brokers, c)
	}
}

// TopicManagerBuilder builds goka's topic manager with replication and a hard failure on a
// table topic without compaction.
func TopicManagerBuilder(o ClientOptions, replication int) goka.TopicManagerBuilder {
	return func(brokers []string) (goka.TopicManager, error) {
		c := SaramaConfig(o)
		c.ClientID = "crm-pipeline-topic-manager"
		return goka.NewTopicManager(brokers, c, TopicManagerConfig(replication))
	}
}

// ProducerBuilder builds goka's plain producer (for emitters) with murmur2 partitioning.
func ProducerBuilder(o ClientOptions) goka.ProducerBuilder {
	return func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
		c := SaramaConfig(o)
		c.ClientID = clientID
		c.Producer.Partitioner = sarama.NewCustomHashPartitioner(hasher)
		p, err := goka.NewProducer(brokers, c)
		if err != nil {
			return nil, fmt.Errorf("producer: %w", err)
		}
		return p, nil
	}
}

// GokaLogger adapts slog to goka's logger; goka's messages are informational.
func GokaLogger(l *slog.Logger, component string) goka.Logger {
	return gokaLogger{l.With("component", component)}
}

type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(v ...any)                 { g.l.Info(fmt.Sprint(v...)) }
func (g gokaLogger) Println(v ...any)               { g.l.Info(fmt.Sprint(v...)) }
func (g gokaLogger) Printf(format string, v ...any) { g.l.Info(fmt.Sprintf(format, v...)) }
func (g gokaLogger) Debugf(format string, v ...any) { g.l.Debug(fmt.Sprintf(format, v...)) }
