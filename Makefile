# weir's tasks. GOTOOLCHAIN=auto fetches the Go 1.27 toolchain go.mod asks for.
export GOTOOLCHAIN := auto
GO ?= go

.PHONY: all build test test-short demo bench lint fmt fuzz

all: build

build:
	$(GO) build ./...

# The whole suite, race detector on, interop tests included (they need kcat
# and Python's confluent-kafka and kafka-python: .ci/run installs them).
test:
	$(GO) vet ./...
	$(GO) test -race -timeout 25m ./...

test-short:
	$(GO) test -short ./...

demo:
	$(GO) run ./examples/wordcount

# weir against its peers (kfake, goka, sarama, NATS JetStream), the two sides
# of each comparison alternating run by run: JSON lines, a markdown table and
# plots in bench/results/. A quick pass:
#   make bench BENCH_FLAGS='-runs 3 -scale 0.2 -only produce,wordcount'
BENCH_FLAGS ?= -runs 5
bench:
	$(GO) run ./bench/compare $(BENCH_FLAGS)

lint:
	$(GO) vet ./...
	@out=$$("$$($(GO) env GOROOT)/bin/gofmt" -l $$(git ls-files '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	$(GO) fmt ./...

# Short fuzzing pass over every fuzz target.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$pkg || exit 1; \
	  done; \
	done
