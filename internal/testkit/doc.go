// Package testkit is the support code the system tests and the benchmark share: the in-process
// service harness (StartService, Service.Do, WaitReady), raw Kafka reads and writes (ReadAll,
// LatestBuckets, Produce, CommandMessage), event checks (EventsOf), metrics scrapes (Metrics,
// MetricSum), polling (Eventually, WaitFor), request bodies (CreateBody) and output buffers
// (SyncBuffer). It is not part of the product: no product package imports it
// (imports_test.go checks).
package testkit
