# podtype: one entry point for building, testing and running the local stack.
# Every target works on a fresh machine; the first run builds the real servers (a few minutes).

SHELL      := /usr/bin/env bash
MODULES    := shared metrics-collector pod-watcher
PKGS       := ./shared/... ./metrics-collector/... ./pod-watcher/...
BIN        := bin
export CGO_ENABLED := 0

.PHONY: all build test unit lint stack-up stack-down sim train bench demo images clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the services and the simulator into bin/
	@mkdir -p $(BIN)
	go build -trimpath -o $(BIN)/ ./metrics-collector/cmd/metrics-collector ./pod-watcher/cmd/pod-watcher ./shared/cmd/cluster-sim

test: lint ## unit + integration tests against the real local stack (started and stopped if not running)
	scripts/test.sh

unit: ## unit tests only (no servers)
	go test -count=1 $(PKGS)

lint: ## gofmt, go vet
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)
	go vet -tags integration $(PKGS)

stack-up: ## build (once) and start InfluxDB, etcd, kube-apiserver, Telegraf on loopback; writes .stack/env
	scripts/stack-up.sh

stack-down: ## stop what stack-up started (add ARGS=--purge to delete its data)
	scripts/stack-down.sh $(ARGS)

sim: ## run the cluster simulator against the stack in the foreground (Ctrl-C stops it)
	@test -f .stack/env || { echo "no .stack/env: run 'make stack-up' first" >&2; exit 1; }
	. .stack/env && go run ./shared/cmd/cluster-sim $(ARGS)

clean: ## remove build outputs (not the stack cache)
	rm -rf $(BIN) dist reports
