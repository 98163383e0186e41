// Package systemtest holds the system tests of crm-pipeline: the whole service over TCP,
// in process through app.Run or as the crm-pipeline binary built from ../cmd/crm-pipeline (for
// signals, kill -9, descriptor limits and disk faults), against the embedded broker. It has
// tests only; nothing imports it.
package systemtest
