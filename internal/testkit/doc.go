// Package testkit is the support code the system tests and the benchmark share: the in-process
// service harness (StartService, Service.Do, WaitReady), raw Kafka reads and writes (ReadAll,
// Produce, CommandMessage), event checks (EventsOf), metrics scrapes (Metrics, MetricSum),
// polling (Eventually, WaitFor) and request bodies (CreateBody). It is not part of the
// product: no product package imports it (imports_test.go checks).
package testkit
