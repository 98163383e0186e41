// Package topics is the topic catalogue of crm-pipeline (names, partition counts, cleanup
// policies, retention), the code that provisions them on a broker, Kafka's default murmur2
// partitioning, the sarama client configuration every component shares, and the embedded
// kfake broker used when no external cluster is given.
package topics

import (
	"strconv"
	"time"
)

// The topic and group names of API.md. They are part of the public contract: other teams
// produce to and consume from them by these names.
const (
	Commands   = "crm.pipeline.opportunity.commands"
	Events     = "crm.pipeline.opportunity.events"
	ClosedWon  = "crm.pipeline.opportunity.closed-won"
	Rejections = "crm.pipeline.opportunity.rejections"
	DLQ        = "crm.pipeline.opportunity.commands.dlq"
	Pipelines  = "crm.pipeline.pipelines"
	FXRates    = "crm.pipeline.fx-rates"
	Accounts   = "customer360.accounts"

	// OpportunityGroup is the consumer group of the opportunity processor; goka names its
	// table topic after it.
	OpportunityGroup = "crm-pipeline-cg"
	// OpportunityTable is the compacted changelog of opportunity state.
	OpportunityTable = OpportunityGroup + "-table"

	// AnalyticsGroup is the aggregator's consumer group; AnalyticsDeltas is the repartition
	// topic (keyed by bucket) from the opportunity processor to it, AnalyticsTable its
	// compacted table of buckets.
	AnalyticsGroup  = "crm-pipeline-analytics"
	AnalyticsDeltas = "crm-pipeline-analytics-deltas"
	AnalyticsTable  = AnalyticsGroup + "-table"
)

// Spec describes one topic as we want it on the broker.
type Spec struct {
	Name       string
	Partitions int32
	Compact    bool
	// Retention is retention.ms for delete-policy topics; 0 leaves the broker default.
	Retention time.Duration
	// External topics belong to another team: we create them only if missing (so a fresh
	// development broker works) and never complain about their partition count.
	External bool
	// Partitioned topics are keyed by opportunity id and must share the partition count of
	// the commands topic (copartitioning); the small configuration tables need not.
	Copartitioned bool
}

// Configs returns the topic-level configuration entries to create the topic with.
func (s Spec) Configs() map[string]*string {
	c := map[string]*string{}
	policy := "delete"
	if s.Compact {
		policy = "compact"
	}
	c["cleanup.policy"] = &policy
	maxBytes := strconv.Itoa(TopicMaxMessageBytes)
	c["max.message.bytes"] = &maxBytes
	if s.Retention != 0 {
		ms := strconv.FormatInt(s.Retention.Milliseconds(), 10)
		c["retention.ms"] = &ms
	}
	return c
}

// Catalog lists every topic the service needs, with partitions partitions for the keyed
// topics. The configuration tables (pipelines, FX rates) are tiny and get one partition each
// for cheap full replication into every view.
func Catalog(partitions int32) []Spec {
	const year = 365 * 24 * time.Hour
	return []Spec{
		{Name: Commands, Partitions: partitions, Retention: 7 * 24 * time.Hour, Copartitioned: true},
		{Name: Events, Partitions: partitions, Retention: 10 * year, Copartitioned: true},
		{Name: ClosedWon, Partitions: partitions, Retention: 30 * 24 * time.Hour},
		{Name: Rejections, Partitions: partitions, Retention: 7 * 24 * time.Hour},
		{Name: DLQ, Partitions: partitions, Retention: 30 * 24 * time.Hour},
		{Name: Pipelines, Partitions: 1, Compact: true},
		{Name: FXRates, Partitions: 1, Compact: true},
		{Name: Accounts, Partitions: partitions, Compact: true, External: true},
		{Name: OpportunityTable, Partitions: partitions, Compact: true, Copartitioned: true},
		{Name: AnalyticsDeltas, Partitions: partitions, Retention: 7 * 24 * time.Hour, Copartitioned: true},
		{Name: AnalyticsTable, Partitions: partitions, Compact: true, Copartitioned: true},
	}
}
