package topics

// Header names of the records the service writes, part of the topic contract like the names
// and keys: consumers of the DLQ read the reason from them, the views read the command time.
// The DLQ headers follow Kafka Streams' KIP-1034.
const (
	// HeaderCommandTime is the unix nanos of the command record a table record answers, for
	// the command-to-view latency.
	HeaderCommandTime = "crm-command-ts"
	// HeaderChanged is "1" on a table record whose command raised the opportunity's version
	// (made an event) and "0" on one that rewrote the state (a refusal, a duplicate, a
	// redelivery, a migration): what the live stream publishes as a change.
	HeaderChanged = "crm-changed"
	// HeaderMigrateHistory marks an empty command record that asks the processor to copy a
	// previous-layout state's history to the history topic (sent at start for each such key,
	// so that the key's owner does it; a repeat is a no-op).
	HeaderMigrateHistory = "crm-migrate-history"
	HeaderDLQException   = "__streams.errors.exception"
	HeaderDLQMessage     = "__streams.errors.message"
	HeaderDLQTopic       = "__streams.errors.topic"
	HeaderDLQPartition   = "__streams.errors.partition"
	HeaderDLQOffset      = "__streams.errors.offset"
)

// Headers the DLQ adds when it had to shorten a record to produce it.
const (
	HeaderDLQTruncated      = "crm-dlq-truncated"       // the value was cut to fit
	HeaderDLQKeyTruncated   = "crm-dlq-key-truncated"   // the key was cut to fit
	HeaderDLQHeadersDropped = "crm-dlq-headers-dropped" // the input's own headers were left out
	HeaderDLQOriginalBytes  = "crm-dlq-original-bytes"  // the value's size before it was cut
)
