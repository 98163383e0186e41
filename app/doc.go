// Package app is the crm-pipeline service as one function: Run starts the embedded broker
// (unless external brokers are given), provisions the topics, runs the processors under
// supervision with their local caches' lifecycle, the views and the HTTP API, and stops them
// cleanly. The command line (cmd/crm-pipeline) only parses flags into a Config; the system
// tests and the benchmark call Run in process. ResetAnalytics is the maintenance operation
// beside it: the rebuild of the analytics table from the opportunity data, with the service
// stopped (`crm-pipeline reset-analytics`).
package app
