package topics

import (
	"context"
	"fmt"
	"hash"
	"log/slog"
	"reflect"
	"strconv"
	"strings"

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
func (g gokaLogger) Printf(format string, v ...any) { g.log(slog.LevelInfo, format, v) }
func (g gokaLogger) Debugf(format string, v ...any) { g.log(slog.LevelDebug, format, v) }

// log writes one goka message. A message whose arguments are all scalars is formatted as
// goka meant; one with a composite argument (goka prints its partition assignments as Go maps,
// "map[topic:[0 1]]") keeps goka's format as the message and gives each argument as a field,
// arg1..argN, which the JSON handler renders as JSON.
func (g gokaLogger) log(level slog.Level, format string, v []any) {
	if !hasComposite(v) {
		g.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
		return
	}
	attrs := make([]slog.Attr, len(v))
	for i, a := range v {
		attrs[i] = slog.Any("arg"+strconv.Itoa(i+1), a)
	}
	g.l.LogAttrs(context.Background(), level, strings.TrimSpace(format), attrs...)
}

func hasComposite(v []any) bool {
	for _, a := range v {
		switch reflect.ValueOf(a).Kind() {
		case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct, reflect.Pointer:
			if _, ok := a.(error); ok {
				continue
			}
			if _, ok := a.(fmt.Stringer); ok {
				continue
			}
			return true
		}
	}
	return false
}
