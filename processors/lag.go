package processors

import (
	"strconv"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// LagCollector reports the consumer lag of a group on one topic per partition, computed at
// scrape time from the broker (high-water mark minus committed offset), so it is right whether
// or not this instance owns the partition.
type LagCollector struct {
	client sarama.Client
	group  string
	topic  string
	desc   *prometheus.Desc
}

// NewLagCollector returns a collector of group's lag on topic.
func NewLagCollector(client sarama.Client, group, topic string) *LagCollector {
	return &LagCollector{client: client, group: group, topic: topic, desc: prometheus.NewDesc(
		"crm_consumer_lag_records", "Records of the topic not yet committed by the consumer group, per partition.",
		[]string{"group", "topic", "partition"}, nil)}
}

// Describe implements prometheus.Collector.
func (l *LagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

// Collect implements prometheus.Collector. Errors leave the series out of this scrape.
func (l *LagCollector) Collect(ch chan<- prometheus.Metric) {
	parts, err := l.client.Partitions(l.topic)
	if err != nil {
		return
	}
	admin, err := sarama.NewClusterAdminFromClient(l.client)
	if err != nil {
		return
	}
	// Closing the admin would close the shared client: it is dropped instead.
	resp, err := admin.ListConsumerGroupOffsets(l.group, map[string][]int32{l.topic: parts})
	if err != nil {
		return
	}
	for _, p := range parts {
		hwm, err := l.client.GetOffset(l.topic, p, sarama.OffsetNewest)
		if err != nil {
			continue
		}
		committed := int64(0)
		if b := resp.GetBlock(l.topic, p); b != nil && b.Offset >= 0 {
			committed = b.Offset
		}
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, float64(max(hwm-committed, 0)),
			l.group, l.topic, strconv.Itoa(int(p)))
	}
}
