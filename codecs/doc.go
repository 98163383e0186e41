// Package codecs turns the domain's values into the Avro records of API.md and back.
//
// # Wire format
//
// Every record is Avro single-object encoded, as the specification defines it: the two bytes
// C3 01, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing
// Canonical Form, then the Avro binary body. Any reader holding the .avsc files of this
// package (SchemaFiles) can find the writer schema from the fingerprint and decode the body;
// the fingerprints are the ones the Java reference implementation computes
// (SchemaNormalization.parsingFingerprint64), which this package implements itself because
// goavro's CanonicalSchema/Rabin disagree for logical types (see internal/avro/canonical.go).
//
// # Schemas
//
// schemas/<record>.avsc is the current schema of each record type and the only one written;
// schemas/vN/ holds superseded versions, kept so that records already on the topics stay
// readable. Namespace crm.pipeline throughout, crm.pipeline.analytics for the analytics
// records.
//
//	command.avsc           OpportunityCommand: commandId, opportunityId, issuedAt, actor,
//	                       expectedVersion, type (enum CommandType), body (union of the six
//	                       command records CreateOpportunity ... Reopen)
//	v2/command.avsc        the same without CloseLost.closeDate
//	v1/command.avsc        v2 without CreateOpportunity.leadId/source/nextStep
//	event.avsc             OpportunityEvent: eventId, type (enum EventType), ..., changes
//	                       (array of Change), position, body (union of six empty records
//	                       crm.pipeline.events.OpportunityCreatedEvent ..., the event names as
//	                       Avro record names and the place for event-specific fields later)
//	aggregate.avsc         OpportunityAggregate: state (Opportunity), events (written as one
//	                       block with a negative count and its byte size, so state reads skip
//	                       it and the processor appends to it undecoded: History), position,
//	                       rejections (array of CommandRejected) and won (array of
//	                       OpportunityClosedWonEvent), the bounded rings of recent refusals
//	                       and closed-won hand-offs kept for re-publication after redelivery,
//	                       recentDeltas (StoredDelta: position, an encoded analytics delta)
//	                       and historyOnTopic; events are only the recent commands' events,
//	                       the audit trail being on crm.pipeline.opportunity.history; v3 adds
//	                       fingerprints (CommandFingerprint: the request fingerprint of each
//	                       recently applied command id)
//	v2/aggregate.avsc      the same without fingerprints (read as none: a repeated id is a retry)
//	v1/aggregate.avsc      the previous layout: events the whole history, no recentDeltas,
//	                       no historyOnTopic (read as false, which triggers the migration)
//	pipeline.avsc          Pipeline with its Stage array
//	account.avsc           Account (Customer 360 context)
//	fx_rate.avsc           FXRate
//	command_rejected.avsc  CommandRejected (with position, the refused command's input offset)
//	closed_won.avsc        OpportunityClosedWonEvent (domain.ClosedWon, for Sales)
//	analytics_delta.avsc   crm.pipeline.analytics.AggregationDelta (analytics.Delta): bucket,
//	                       opportunityId, version, values (map of long), source and position
//	                       (the command record's partition and offset, the guard's input)
//	v1/analytics_delta.avsc  the same without source and position (read as unguarded)
//	analytics_bucket.avsc  crm.pipeline.analytics.AggregationBucket (analytics.Bucket): values
//	                       and applied (maps of long: the highest position applied per source),
//	                       the aggregator's group-table value
//	v1/analytics_bucket.avsc values and seen (per opportunity); read with an empty guard
//
// Representation choices, all documented in the .avsc files:
//   - Money is exact: a long of minor units (ISO 4217 exponent) plus a currency string.
//     Commands keep the caller's decimal text instead, because the domain, not the transport,
//     validates amounts and dates and names the bad field. FX rates are decimal text.
//   - Dates are int with logicalType date (days since 1970-01-01), except in commands (text).
//   - Timestamps are long timestamp-micros. Encoding truncates to the microsecond and
//     decoding returns UTC, so a time round-trips exactly when it is UTC with no
//     sub-microsecond part and no monotonic clock reading.
//   - Optional values (pointers in the domain) are ["null", T] with default null; the event's
//     fromStageId/toStageId map "" to null. UpdateOpportunity's clear flags are booleans with
//     default false. Empty and nil slices both encode as an empty array and decode as nil.
//   - Maps (the analytics records' measures) are Avro maps of long, written as one block with
//     the entries sorted by key, so equal values always give equal bytes whatever Go's map
//     iteration order. Like slices, empty and nil maps both decode as nil.
//   - Statuses and forecast categories are strings (the domain validates them, and a table
//     value must never become unwritable because of a value the schema did not foresee);
//     command and event types are enums, kept in the same order as their body unions.
//
// # Layout: one file per record family
//
// Everything about one record sits in its family's file: the exported Encode/Decode
// functions and goka codec, the hand-written writer and fast reader of the current schema,
// and the conversion from goavro's generic map that reads older writers' records. A schema
// change is the .avsc file plus that one file.
//
//	commands.go       command, rejection (CommandRejected)
//	events.go         event, closed-won (OpportunityClosedWonEvent)
//	aggregate.go      the opportunity group-table value (OpportunityAggregate, its state and
//	                  History, the still-encoded event history the processor appends to)
//	configuration.go  pipeline, FX rate, account
//	analytics.go      analytics delta, analytics bucket
//
// record.go holds the one generic record codec (record[T]) they all go through: the
// single-object header, the choice between fast reader and generic path, error wrapping,
// the goka adapters. registry.go lists the embedded schema files. The record-independent Avro
// machinery (schema tree, Parsing Canonical Form, CRC-64-AVRO, binary primitives, the
// validating goavro reader) is in internal/avro.
//
// # Hand-written or goavro
//
// The hot records are hand-encoded: command, event, aggregate, delta and bucket. The
// opportunity processor decodes a command and its aggregate (state and encoded history) and
// encodes the aggregate, its events and their deltas for every command; the analytics
// aggregator decodes and encodes a bucket per delta. goavro's generic maps cost about ten
// times the time and allocations there, as the benchmarks in bench_test.go show side by side
// (go test -run '^$' -bench . -benchmem ./codecs/): BenchmarkDecodeAggregate against
// BenchmarkDecodeAggregateGoavro (about 6.5 us and 82 allocations against 65 us and 1085 for
// an aggregate of ten events), BenchmarkDecodeBucket against BenchmarkDecodeBucketGoavro
// (2.2 us and 7 allocations against 11 us and 239), BenchmarkDecodeCommand against
// BenchmarkDecodeCommandV1 (0.57 us and 16 allocations against 3.1 us and 59); each encode
// is one allocation, the exact-size result.
//
// Of the cold records, pipeline and FX rate are written and read through goavro with the
// embedded .avsc files (the header is still this package's: goavro's own single-object
// encoding stamps goavro's fingerprint, see TestGoavroSingleObjectHeaderIsNotOurs). They
// change a few times a year; the processor decodes each distinct pipeline value once
// (processors.pipelineCache) and the views read them per query, where a few microseconds more
// do not show: BenchmarkDecodePipeline is about 3 us and 65 allocations (0.7 us and 9 when it
// was hand-written), BenchmarkDecodeFXRate 0.4 us and 9 (0.05 us and 1),
// BenchmarkEncodePipeline 2.5 us and 31 (0.14 us and 1). Account, rejection and closed-won
// stay hand-written: the aggregate carries them nested (the opportunity's account, the
// rejections and won rings), so their hand-written writers and readers exist for the hot
// record anyway, and writing the standalone record through goavro would add a second encoder
// of the same bytes; the processor also looks an account up for every command.
//
// # Decoding and evolution
//
// Records written with the current schema are read by the hand-written readers (fast, few
// allocations) where there is one; records written with an older known schema, and the
// goavro records, are decoded by goavro with the writer's schema and converted field by
// field, absent fields taking their defaults. A schema changes only in backward-compatible
// steps (fields added with defaults); the tests check that rule against every superseded
// version. Every decode error is a *DecodeError wrapping ErrBadMagic, ErrTruncated,
// ErrUnknownSchema, ErrSchemaMismatch or ErrMalformed.
//
// All functions and codec types are safe for concurrent use: the registry and goavro codecs
// are built once and never mutated.
package codecs
