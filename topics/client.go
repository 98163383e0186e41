package topics

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// ClientOptions are the connection settings shared by every Kafka client of the service.
type ClientOptions struct {
	Brokers  []string
	ClientID string
	// TLS, when set, encrypts every broker connection.
	TLS *tls.Config
	// SASLUser and SASLPassword enable SASL/SCRAM-SHA-512 when SASLUser is not empty.
	SASLUser     string
	SASLPassword string
	// InstanceID, when set, makes this process a static member of its consumer groups
	// (KIP-345, as group.instance.id = InstanceID.<group>): a restart after a crash takes its
	// partitions back at once instead of waiting for the session timeout and a rebalance. Two
	// instances must never share one.
	InstanceID string
	// FlushFrequency bounds how long the producer holds a batch; it is most of the
	// command-to-view latency, so it is small by default (goka's default is 100 ms).
	FlushFrequency time.Duration
	// Compression of every record batch the service produces. The zero value is none, the
	// Java producer's default (compression.type=none): on loopback or a fast network the
	// compressing and decompressing at every hop cost more CPU than the bytes they save
	// (snappy was about 5% of the service's CPU and a sixth of its allocations). Set lz4 or
	// zstd where network or broker disk is the constraint.
	Compression sarama.CompressionCodec
}

// ParseCompression maps a --kafka-compression value (none, gzip, snappy, lz4, zstd) to
// sarama's codec.
func ParseCompression(name string) (sarama.CompressionCodec, error) {
	switch name {
	case "", "none":
		return sarama.CompressionNone, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "zstd":
		return sarama.CompressionZSTD, nil
	}
	return sarama.CompressionNone, fmt.Errorf("unknown compression %q (want none, gzip, snappy, lz4 or zstd)", name)
}

// SaramaConfig builds a fresh sarama configuration with the defaults this service needs,
// overriding goka's (research/goka-kfake.md §3): Kafka 2.8 protocol so metadata carries topic
// ids, oldest offset for new groups so no backlog is skipped, acks from all replicas with the
// idempotent producer, and compression as configured (none unless asked: goka's default is
// snappy). Each caller gets its own copy, because goka's
// builders write into the config they are given.
func SaramaConfig(o ClientOptions) *sarama.Config {
	cfg := goka.DefaultConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.ClientID = o.ClientID
	if cfg.ClientID == "" {
		cfg.ClientID = "crm-pipeline"
	}
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = time.Second
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Compression = o.Compression
	cfg.Producer.Flush.Frequency = o.FlushFrequency
	if cfg.Producer.Flush.Frequency == 0 {
		cfg.Producer.Flush.Frequency = 2 * time.Millisecond
	}
	cfg.Producer.Flush.Bytes = 256 * 1024
	cfg.Producer.MaxMessageBytes = MaxMessageBytes
	cfg.Producer.Timeout = 10 * time.Second
	cfg.Net.DialTimeout = 10 * time.Second
	cfg.Net.ReadTimeout = 30 * time.Second
	cfg.Net.WriteTimeout = 30 * time.Second
	cfg.Metadata.Timeout = 30 * time.Second
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = time.Second
	if o.TLS != nil {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = o.TLS
	}
	if o.SASLUser != "" {
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.User = o.SASLUser
		cfg.Net.SASL.Password = o.SASLPassword
		cfg.Net.SASL.SCRAMClientGeneratorFunc = newSCRAMClient
	}
	return cfg
}

// MaxMessageBytes is the largest record we produce. Every emit is checked against it before
// it is sent: an oversize record would fail for good and, through sarama's forward-only
// commits, let later records commit past it (ARCHITECTURE.md, known traps).
const MaxMessageBytes = 900 * 1024

// TopicManagerConfig is goka's topic manager configuration for one broker or a real cluster:
// replication as given, a week's retention on loop topics, and a hard failure when a table
// topic is found without compaction.
func TopicManagerConfig(replication int) *goka.TopicManagerConfig {
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = replication
	tmc.Stream.Replication = replication
	tmc.Stream.Retention = 7 * 24 * time.Hour
	tmc.MismatchBehavior = goka.TMConfigMismatchBehaviorFail
	return tmc
}

// NewClient opens a sarama client with SaramaConfig.
func NewClient(o ClientOptions) (sarama.Client, error) {
	c, err := sarama.NewClient(o.Brokers, SaramaConfig(o))
	if err != nil {
		return nil, fmt.Errorf("connect to brokers %v: %w", o.Brokers, err)
	}
	return c, nil
}

// TopicMaxMessageBytes is max.message.bytes of every topic the service creates: Kafka's own
// default (1 MiB + 12), set explicitly so that it cannot drift below MaxMessageBytes. The gap
// between the two is on purpose: the broker measures a whole record batch against this limit,
// sarama one record against MaxMessageBytes, so every record we produce fits a topic with the
// batch's own overhead to spare, while a record another client produced near the topic limit
// may be too large for us to produce again (it then goes to the DLQ, truncated).
const TopicMaxMessageBytes = 1048588

// maximumRecordOverhead is sarama's bound of a v2 record's own framing (async_producer.go).
const maximumRecordOverhead = 5*5 + 10 + 1

// RecordSize is the size sarama measures against Producer.MaxMessageBytes for a record with
// this key, value and headers (ProducerMessage.ByteSize for record batches v2, the format of
// Kafka 2.8). A record of more than MaxMessageBytes fails for good in the producer, so every
// emit checks it first.
func RecordSize(key string, value []byte, headers map[string][]byte) int {
	size := maximumRecordOverhead + len(key) + len(value)
	for k, v := range headers {
		size += len(k) + len(v) + 2*5
	}
	return size
}

// FitsRecord reports whether a record of this key, value and headers can be produced.
func FitsRecord(key string, value []byte, headers map[string][]byte) bool {
	return RecordSize(key, value, headers) <= MaxMessageBytes
}

// NewSyncProducer is a synchronous producer with the service's client settings and Kafka's
// default murmur2 partitioning: what the command-line tools (emit, accounts put) and the tests
// write with, so their records land where a Java client's would. ClientID defaults to
// "crm-pipeline-cli".
func NewSyncProducer(o ClientOptions) (sarama.SyncProducer, error) {
	if o.ClientID == "" {
		o.ClientID = "crm-pipeline-cli"
	}
	cfg := SaramaConfig(o)
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(Hasher())
	p, err := sarama.NewSyncProducer(o.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect producer to %v: %w", o.Brokers, err)
	}
	return p, nil
}
