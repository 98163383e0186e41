package processors

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the processor's Prometheus series. They are created per instance and registered
// on the registry the caller passes, never on the global default.
type Metrics struct {
	Processed   *prometheus.CounterVec // accepted commands by type
	Refused     *prometheus.CounterVec // refused commands by type and reason code
	DLQ         *prometheus.CounterVec // records sent to the DLQ by reason
	Duplicates  *prometheus.CounterVec // commands whose id was seen before, by type
	Redelivered prometheus.Counter     // records seen again after a crash or rebalance
	Forwarded   prometheus.Counter     // records found on a partition their key does not map to
	Latency     *prometheus.HistogramVec
	Trimmed     prometheus.Counter // events dropped from a state early to keep it under the record limit
	// Migrated counts previous-layout states whose history was copied to the history topic.
	Migrated prometheus.Counter
	// Deltas counts aggregation deltas emitted; ReemitSkipped the redelivered records older
	// than the state's re-emission ring; Applied / Skipped the aggregator's folds.
	Deltas        prometheus.Counter
	ReemitSkipped prometheus.Counter
	Applied       prometheus.Counter
	Skipped       prometheus.Counter
	// TooLarge counts outputs dropped because they exceed the producer's limit, by topic
	// (a bug guard: the domain bounds every text, so it stays at zero).
	TooLarge *prometheus.CounterVec
}

// NewMetrics creates and registers the processor metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crm_commands_processed_total", Help: "Commands accepted and applied, by command type.",
		}, []string{"type"}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crm_commands_refused_total", Help: "Commands refused by a business rule, by type and reason code.",
		}, []string{"type", "code"}),
		DLQ: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crm_commands_dlq_total", Help: "Records that could not be decoded and went to the DLQ, by reason.",
		}, []string{"reason"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crm_commands_duplicate_total", Help: "Commands whose command id was applied before (applied once), by type.",
		}, []string{"type"}),
		Redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crm_records_redelivered_total", Help: "Input records seen again (at-least-once redelivery); their outputs are re-emitted, their effect not re-applied.",
		}),
		Forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crm_records_forwarded_total", Help: "Command records found on a partition their key does not map to under murmur2, forwarded to the right one.",
		}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crm_command_processing_seconds",
			Help:    "Time from a command record's arrival in the processor callback to its emits being issued, by type.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}, []string{"type"}),
		Trimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crm_state_events_trimmed_total", Help: "Events dropped from an opportunity's re-emission ring before their time to keep the state record under the size limit (they stay on the history topic).",
		}),
		Migrated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crm_state_history_migrated_total", Help: "Opportunity states of the previous layout whose history was copied to the history topic.",
		}),
	}
	m.Deltas = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crm_analytics_deltas_emitted_total", Help: "Aggregation deltas emitted by the opportunity processor.",
	})
	m.ReemitSkipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crm_analytics_reemit_skipped_total", Help: "Redelivered records older than what the state keeps for re-emission (their outputs, if a crash lost them, stay lost).",
	})
	m.Applied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crm_analytics_deltas_applied_total", Help: "Aggregation deltas folded into their bucket.",
	})
	m.Skipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crm_analytics_deltas_skipped_total", Help: "Aggregation deltas skipped as already applied (redelivered or re-emitted).",
	})
	m.TooLarge = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crm_outputs_too_large_total", Help: "Output records dropped because they exceed the producer's MaxMessageBytes, by topic.",
	}, []string{"topic"})
	reg.MustRegister(m.Deltas, m.ReemitSkipped, m.Applied, m.Skipped, m.TooLarge)
	reg.MustRegister(m.Processed, m.Refused, m.DLQ, m.Duplicates, m.Redelivered, m.Forwarded, m.Latency, m.Trimmed, m.Migrated)
	return m
}
