# secbuy: a go-micro flash-sale backend. `make help` lists the targets.

SHELL := /bin/bash

# The go-micro registry is NATS everywhere (mdns would multicast off this machine).
export MICRO_REGISTRY ?= nats
export MICRO_REGISTRY_ADDRESS ?= $(or $(SECBUY_NATS_URL),nats://127.0.0.1:4222)

SERVICES := stock-srv stock-web order-srv order-web payment-srv payment-web
# Messages only (no service): protoc-gen-go alone.
MESSAGES := proto/outcome/outcome.proto proto/events/events.proto
# Services: protoc-gen-go and protoc-gen-micro.
PROTOS   := stock-srv/proto/stock/stock.proto \
            order-srv/proto/order/order.proto \
            payment-srv/proto/payment/payment.proto
USER_ID  ?= 1
# make run/up INSTANCES=N: N instances of every service, HAProxy in front of the web ones.
INSTANCES ?= 1
ARGS     ?=

# The Go files that are not generated (no "Code generated ... DO NOT EDIT." line).
GOFILES_CMD = find . -type f -name '*.go' -not -path './.git/*' -not -path './bin/*' -not -path './tools/*' \
	-not -path './run/*' -not -path './vendor/*' -print0 \
	| xargs -0 -r grep -L -E '^// Code generated .* DO NOT EDIT\.$$' || true

.DEFAULT_GOAL := help
.PHONY: help run up down status services build test bench ceilings proto fmt lint token micro

help:
	@echo "make run       build, start Postgres/Redis/NATS if needed and the six services; Ctrl-C stops"
	@echo "make up        the same in the background (logs in run/logs/); make status; make down"
	@echo "               INSTANCES=N: N instances of every service, HAProxy in front (make up INSTANCES=2)"
	@echo "make services  make sure Postgres, Redis and NATS (JetStream) run on 127.0.0.1"
	@echo "make build     go build ./... and the six binaries into bin/"
	@echo "make test      the whole test suite (what CI runs)"
	@echo "make bench     the flash-sale load test"
	@echo "make ceilings  the ceilings of the edge, Postgres, Redis and JetStream (docs/SCALING.md)"
	@echo "make proto     regenerate the protobuf and go-micro code"
	@echo "make fmt       gofmt -w;  make lint: go vet, a gofmt check and golangci-lint (built into bin/)"
	@echo "make token USER_ID=42        a buyer's bearer token for local use"
	@echo "make micro ARGS='services'   the go-micro CLI (bin/micro, built by make run/up) on the NATS registry"

run up down status:
	@INSTANCES=$(INSTANCES) bash scripts/suite.sh $@

services:
	@bash scripts/services.sh

build:
	go build ./...
	go build -o bin/ $(addprefix ./,$(SERVICES))

test: lint
	bash scripts/services.sh --browser
	go test -race -count=1 -timeout 10m -p 2 $$(go list ./... | grep -v '^secbuy/test$$')
	@# Fault injection is compiled only into test builds (the whole-suite tests use it).
	go test -race -count=1 -tags faultinject -run Fault ./basic/svc/
	@# The whole-suite tests run the real binaries; the race detector's 8,128-goroutine cap
	@# does not fit their crowds of buyers, so they run without it.
	go test -count=1 -timeout 14m ./test/

# bench: start the suite, run the benchmark, and stop the suite whatever happened (an
# error, Ctrl-C); the exit status is the benchmark's. ARGS go to the benchmark (-h lists them).
# The two-instance scenario (last) restarts the suite with INSTANCES=2 itself.
# The suite runs with a day's pay timeout: the unpaid orders of a run a quarter of an hour
# ago must not expire, and load the services, while this run is measured.
bench:
	@trap 'bash scripts/suite.sh down' EXIT; trap 'exit 130' INT TERM; \
	export SECBUY_PAY_TIMEOUT=$${SECBUY_PAY_TIMEOUT:-24h} SECBUY_DEV=$${SECBUY_DEV:-1}; \
	INSTANCES=1 PPROF=1 bash scripts/suite.sh up || exit $$?; \
	go run ./test/bench $(ARGS)

ceilings:
	@bash scripts/ceilings.sh

proto:
	@if ! command -v protoc >/dev/null 2>&1; then \
		if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler; \
		else \
			echo "make proto needs protoc: install protobuf-compiler" >&2; exit 1; \
		fi; \
	fi
	@set -e; \
	gen_go=$$(go tool -n protoc-gen-go); gen_micro=$$(go tool -n protoc-gen-micro); \
	for f in $(MESSAGES); do \
		echo "protoc $$f"; \
		protoc --plugin=protoc-gen-go=$$gen_go -I. --go_out=. --go_opt=module=secbuy $$f; \
	done; \
	for f in $(PROTOS); do \
		echo "protoc $$f"; \
		protoc --plugin=protoc-gen-go=$$gen_go --plugin=protoc-gen-micro=$$gen_micro -I. \
			--go_out=. --go_opt=module=secbuy --micro_out=. --micro_opt=module=secbuy $$f; \
	done

fmt:
	@files=$$($(GOFILES_CMD)); [ -z "$$files" ] || gofmt -w $$files

# golangci-lint, pinned in tools/go.mod (a module of its own, so the main go.mod stays
# lean), built into bin/ once; .golangci.yml says which linters run.
GOLANGCI := bin/golangci-lint
$(GOLANGCI): tools/go.mod tools/go.sum
	cd tools && go build -o ../$(GOLANGCI) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

lint: $(GOLANGCI)
	go vet ./...
	@files=$$($(GOFILES_CMD)); out=$$([ -z "$$files" ] || gofmt -l $$files); \
	if [ -n "$$out" ]; then echo "gofmt would change these files (run make fmt):"; echo "$$out"; exit 1; fi
	$(GOLANGCI) run ./...

token:
	@SECBUY_DEV=$${SECBUY_DEV:-1} go run ./basic/cmd/token -user $(USER_ID)

# bin/micro: the go-micro CLI, the tool of go.mod; make run/up build it with the services.
micro: bin/micro
	bin/micro $(ARGS)

bin/micro: go.mod go.sum
	go build -o bin/micro go-micro.dev/v6/cmd/micro
