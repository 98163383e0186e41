// Package topics is the topic catalogue of crm-pipeline (names, partition counts, cleanup
// policies, retention), the code that provisions them on a broker, Kafka's default murmur2
// partitioning, the sarama client configuration every component shares, and the embedded
// kfake broker used when no external cluster is given.
//
// Imports from this module: dirlock (the README's package table, checked by imports_test.go).
package topics

import (
	"fmt"
	"strconv"
	"strings"
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
	// History is the audit trail as a table: every event again, keyed <id>|<version> (see
	// HistoryKey), compacted, so the history endpoint reads one deal's events, oldest first,
	// without the opportunity's state record carrying them.
	History = "crm.pipeline.opportunity.history"

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
		{Name: History, Partitions: partitions, Compact: true},
		{Name: AnalyticsDeltas, Partitions: partitions, Retention: 7 * 24 * time.Hour, Copartitioned: true},
		{Name: AnalyticsTable, Partitions: partitions, Compact: true, Copartitioned: true},
	}
}

// historySep separates the opportunity id from the version in a History key. It is outside the
// id alphabet, so the key range of one id never holds another id's events.
const historySep = "|"

// HistoryKey is the History topic key of an opportunity's event at version: the version is
// zero-padded to 10 digits, so byte order is version order and one deal's events are one
// contiguous key range (HistoryRange).
func HistoryKey(opportunityID string, version int64) string {
	return fmt.Sprintf("%s%s%010d", opportunityID, historySep, version)
}

// HistoryRange is the key range [start, limit) of opportunityID's events at versions after
// `after` (0: all of them).
func HistoryRange(opportunityID string, after int64) (start, limit string) {
	return HistoryKey(opportunityID, after+1), opportunityID + string(rune(historySep[0]+1))
}

// ParseHistoryKey splits a History key; ok is false for a key of another shape.
func ParseHistoryKey(key string) (opportunityID string, version int64, ok bool) {
	i := strings.LastIndex(key, historySep)
	if i < 0 || len(key)-i-1 != 10 {
		return "", 0, false
	}
	v, err := strconv.ParseInt(key[i+1:], 10, 64)
	if err != nil || v < 0 {
		return "", 0, false
	}
	return key[:i], v, true
}
