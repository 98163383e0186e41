package processors

import (
	"strconv"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// LagCollector reports the consumer lag of consumer groups on their input topics per
// partition, computed at scrape time from the broker (high-water mark minus committed offset),
// so it is right whether or not this instance owns the partition.
type LagCollector struct {
	client sarama.Client
	inputs map[string]string // group -> input topic
	desc   *prometheus.Desc
}

// NewLagCollector returns a collector of the lag of each group (key) on its input topic (value).
func NewLagCollector(client sarama.Client, inputs map[string]string) *LagCollector {
	return &LagCollector{client: client, inputs: inputs, desc: prometheus.NewDesc(
		"crm_consumer_lag_records", "Records of the topic not yet committed by the consumer group, per partition.",
		[]string{"group", "topic", "partition"}, nil)}
}

// Describe implements prometheus.Collector.
func (l *LagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

// Collect implements prometheus.Collector. Errors leave the series out of this scrape.
func (l *LagCollector) Collect(ch chan<- prometheus.Metric) {
	admin, err := sarama.NewClusterAdminFromClient(l.client)
	if err != nil {
		return
	}
	// Closing the admin would close the shared client: it is dropped instead.
	for group, topic := range l.inputs {
		l.collect(ch, admin, group, topic)
	}
}

func (l *LagCollector) collect(ch chan<- prometheus.Metric, admin sarama.ClusterAdmin, group, topic string) {
	parts, err := l.client.Partitions(topic)
	if err != nil {
		return
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return
	}
	for _, p := range parts {
		hwm, err := l.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			continue
		}
		committed := int64(0)
		if b := resp.GetBlock(topic, p); b != nil && b.Offset >= 0 {
			committed = b.Offset
		}
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, float64(max(hwm-committed, 0)),
			group, topic, strconv.Itoa(int(p)))
	}
}
