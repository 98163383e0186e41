package topics

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

func startTestBroker(t *testing.T) *Broker {
	t.Helper()
	b, err := StartBroker(BrokerOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// startTestAdmin starts a broker and returns a client of it and an admin on that client, both
// closed when the test ends.
func startTestAdmin(t *testing.T) (sarama.Client, sarama.ClusterAdmin) {
	t.Helper()
	b := startTestBroker(t)
	client, err := NewClient(ClientOptions{Brokers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	return client, admin
}

func TestProvisionCreatesAndChecks(t *testing.T) {
	client, admin := startTestAdmin(t)
	log := slog.New(slog.DiscardHandler)
	if err := Provision(admin, Catalog(4), 1, log); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := Provision(admin, Catalog(4), 1, log); err != nil {
		t.Fatalf("second provision: %v", err)
	}
	got, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Catalog(4) {
		d, ok := got[s.Name]
		if !ok {
			t.Fatalf("topic %s missing", s.Name)
		}
		if d.NumPartitions != s.Partitions {
			t.Errorf("%s: %d partitions, want %d", s.Name, d.NumPartitions, s.Partitions)
		}
		compact, err := isCompacted(admin, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if compact != s.Compact {
			t.Errorf("%s: compacted=%v, want %v", s.Name, compact, s.Compact)
		}
	}
	// A copartitioned topic with another partition count is refused.
	if err := Provision(admin, Catalog(6), 1, log); err == nil || !strings.Contains(err.Error(), "partitions") {
		t.Errorf("provision with another partition count: %v, want a partition error", err)
	}
	facts, err := Facts(client, Commands, 0)
	if err != nil {
		t.Fatal(err)
	}
	if facts.TopicID == "" || facts.HighWaterMark != 0 {
		t.Errorf("facts of a new topic: %+v", facts)
	}
}

func TestProvisionRefusesNonCompactedTable(t *testing.T) {
	_, admin := startTestAdmin(t)
	del := "delete"
	if err := admin.CreateTopic(OpportunityTable, &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"cleanup.policy": &del}}, false); err != nil {
		t.Fatal(err)
	}
	err := Provision(admin, Catalog(4), 1, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "cleanup.policy=compact") {
		t.Fatalf("provision over a delete-policy table topic: %v, want a compaction error", err)
	}
}
