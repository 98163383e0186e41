package testkit

import (
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// ReadAll reads every record of topic from the beginning to its current end.
func ReadAll(t testing.TB, broker, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	return ReadAllAs(t, topics.ClientOptions{Brokers: []string{broker}}, topic)
}

// ReadAllAs is ReadAll with client options (SASL credentials, say).
func ReadAllAs(t testing.TB, o topics.ClientOptions, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	o.ClientID = "test-reader"
	broker := o.Brokers[0]
	cfg := topics.SaramaConfig(o)
	client, err := sarama.NewClient([]string{broker}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		first, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		if hwm <= first {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, first)
		if err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				if m.Offset >= hwm-1 {
					goto next
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("timeout reading %s/%d up to %d", topic, p, hwm)
			}
		}
	next:
		pc.Close()
	}
	return out
}

// EventsOf returns the events of one opportunity by version; see AllEvents.
func EventsOf(t testing.TB, broker, id string) []domain.Event {
	t.Helper()
	return AllEvents(t, broker)[id]
}

// AllEvents decodes the events topic once and returns every opportunity's events by version,
// checking what at-least-once delivery allows: duplicates only with the same eventId and the
// same content, and versions 1..n without a gap.
func AllEvents(t testing.TB, broker string) map[string][]domain.Event {
	t.Helper()
	byID := map[string]map[int64]domain.Event{}
	for _, m := range ReadAll(t, broker, topics.Events) {
		e, err := codecs.DecodeEvent(m.Value)
		if err != nil {
			t.Fatalf("undecodable event: %v", err)
		}
		if string(m.Key) != e.OpportunityID {
			t.Fatalf("event %s keyed %q", e.EventID, m.Key)
		}
		if byID[e.OpportunityID] == nil {
			byID[e.OpportunityID] = map[int64]domain.Event{}
		}
		if prev, ok := byID[e.OpportunityID][e.Version]; ok && !reflect.DeepEqual(prev, e) {
			t.Fatalf("two different events for %s version %d:\n%+v\n%+v", e.OpportunityID, e.Version, prev, e)
		}
		byID[e.OpportunityID][e.Version] = e
	}
	out := map[string][]domain.Event{}
	for id, versions := range byID {
		var list []domain.Event
		for _, e := range versions {
			list = append(list, e)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Version < list[j].Version })
		for i, e := range list {
			if e.Version != int64(i+1) {
				t.Fatalf("events of %s: version %d at position %d (gap)", id, e.Version, i)
			}
			if want := fmt.Sprintf("%s:%d", id, e.Version); e.EventID != want {
				t.Fatalf("eventId %s, want %s", e.EventID, want)
			}
		}
		out[id] = list
	}
	return out
}

// CommandMessage is the record an upstream Kafka client writes for cmd: the encoded command on
// the commands topic, keyed by its opportunity id.
func CommandMessage(t testing.TB, cmd domain.Command) *sarama.ProducerMessage {
	t.Helper()
	b, err := codecs.EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return &sarama.ProducerMessage{Topic: topics.Commands, Key: sarama.StringEncoder(cmd.OpportunityID), Value: sarama.ByteEncoder(b)}
}

// Produce sends raw records to a topic with Kafka's default partitioning, as any upstream
// Kafka client would.
func Produce(t testing.TB, broker, topic string, msgs ...*sarama.ProducerMessage) {
	t.Helper()
	p, err := topics.NewSyncProducer(topics.ClientOptions{Brokers: []string{broker}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, m := range msgs {
		m.Topic = topic
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
}
