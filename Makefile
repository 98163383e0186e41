# crm-pipeline: two commands set everything up on a fresh machine.
#   make run   - build and start the service with its embedded broker on 127.0.0.1:9402
#   make test  - every test, with the race detector
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO ?= go
BIN := bin/crm-pipeline
BENCH_BIN := bin/crm-bench
DATA ?= ./data

.PHONY: all build build-bench run test vet fmt-check deps chromium bench bench-go fuzz chaos clean

all: build

deps:
	$(GO) mod download

build: deps
	$(GO) build -o $(BIN) ./cmd/crm-pipeline

# The benchmark is a binary of its own (not part of the product); its memory and queries
# scenarios run bin/crm-pipeline serve as a child.
build-bench: deps
	$(GO) build -o $(BENCH_BIN) ./cmd/crm-bench

run: build
	$(BIN) serve --data $(DATA) --log-format text

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: deps
	$(GO) vet ./...

# The dashboard's browser tests (systemtest/browser_test.go) drive Debian's headless Chromium;
# it is installed when missing, and the tests then fail instead of skipping without it. The
# first-load timing test (10,000 deals, under 1 s) runs without -race, which would only slow
# the service it measures.
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

test: deps fmt-check vet chromium
	CRM_PIPELINE_BROWSER_TESTS=required $(GO) test -race -count=1 -timeout 12m ./...
	CRM_PIPELINE_BROWSER_TESTS=required $(GO) test -count=1 -run '^TestBrowserFirstLoad10k$$' ./systemtest/
	$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

# The performance scenarios of BENCHMARKS.md (about 7 minutes on 2 cores; BENCH_FLAGS, e.g.
# "--scale 0.1 --scenarios throughput,queries", are passed to `crm-bench`), then the
# Go benchmarks.
BENCH_FLAGS ?=
bench: build build-bench
	$(BENCH_BIN) $(BENCH_FLAGS)
	$(MAKE) --no-print-directory bench-go

# Go benchmarks of the hot paths (domain decision, Avro, storage, analytics), with allocations.
bench-go: deps
	$(GO) test -run '^$$' -bench . -benchmem ./domain/ ./codecs/ ./state/ ./analytics/

# Each fuzz target for a bounded time (`make test` runs 10,000 inputs each after the tests, a
# count rather than a duration: a -fuzztime deadline can end a run with a spurious "context
# deadline exceeded"; the committed seed corpora also run as plain tests).
FUZZTIME ?= 20s
fuzz: deps
	@for pkg in ./domain ./codecs ./query; do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 50x $$pkg || exit 1; \
	  done; \
	done

# The long crash oracle: thousands of commands, SIGKILLs, both broker set-ups.
CRASH_COMMANDS ?= 5000
CRASH_OPPS ?= 300
CRASH_KILLS ?= 10
chaos: deps
	CRASH_COMMANDS=$(CRASH_COMMANDS) CRASH_OPPS=$(CRASH_OPPS) CRASH_KILLS=$(CRASH_KILLS) \
	  $(GO) test -count=1 -timeout 30m -v -run 'TestCrashOracle' ./systemtest/ | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|crash oracle|restarted|differs'

clean:
	rm -rf bin
