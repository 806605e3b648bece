# podtype: one entry point for building, testing and running the local stack.
# Every target works on a fresh machine; the first run builds the real servers (a few minutes).

SHELL      := /usr/bin/env bash
MODULES    := shared metrics-collector pod-watcher
PKGS       := ./shared/... ./metrics-collector/... ./pod-watcher/...
BIN        := bin
export CGO_ENABLED := 0

.PHONY: all build test unit e2e lint stack-up stack-down sim train bench demo images clean help

all: build

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the services and the simulator into bin/
	@mkdir -p $(BIN)
	go build -trimpath -o $(BIN)/ ./metrics-collector/cmd/metrics-collector ./pod-watcher/cmd/pod-watcher ./shared/cmd/cluster-sim

test: lint ## unit + integration tests against the real local stack (started and stopped if not running)
	scripts/test.sh

unit: ## unit tests only (no servers)
	go test -count=1 $(PKGS)

e2e: ## both services against the local stack with exactly their ServiceAccounts' RBAC (~1.5 min; part of test)
	scripts/e2e.sh

lint: ## gofmt, go vet
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)
	go vet -tags integration $(PKGS)
	@if command -v shellcheck >/dev/null; then shellcheck -x -S warning scripts/*.sh scripts/training-pods/*.sh kubernetes/*.sh k3s/*.sh; fi

stack-up: ## build (once) and start InfluxDB, etcd, kube-apiserver, Telegraf on loopback; writes .stack/env
	scripts/stack-up.sh

stack-down: ## stop what stack-up started (add ARGS=--purge to delete its data)
	scripts/stack-down.sh $(ARGS)

sim: ## run the cluster simulator against the stack in the foreground (Ctrl-C stops it)
	@test -f .stack/env || { echo "no .stack/env: run 'make stack-up' first" >&2; exit 1; }
	. .stack/env && go run ./shared/cmd/cluster-sim $(ARGS)

train: ## one training against the stack in .stack/env (simulator namespace "sim"): stdout table, reports/
	@test -f .stack/env || { echo "no .stack/env: run 'make stack-up' first" >&2; exit 1; }
	. .stack/env && NAMESPACES=$${NAMESPACES:-sim} WINDOW_STEP=$${WINDOW_STEP:-$$TELEGRAF_INTERVAL} FETCH_WINDOW=$${FETCH_WINDOW:-1h} \
	  FAULT_LABELS_FILE=$${SIM_LABELS_FILE:-} MODEL_PATH=$${MODEL_PATH:-reports/model.json.gz} REPORT_DIR=reports \
	  go run ./metrics-collector/cmd/metrics-collector train

bench: ## Go benchmarks of features, forest, classifier, scoring and the watcher at 10,000 pods (ns/op, allocs/op)
	go test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

demo: ## stack + simulated cluster + train + watch: confusion matrix, live pod table, reports/report.html
	scripts/demo.sh

clean: ## remove build outputs (not the stack cache)
	rm -rf $(BIN) dist reports

IMAGE_REGISTRY    ?= ghcr.io/podtype
IMAGE_TAG         ?= dev
IMAGE_ARCH        ?= $(shell go env GOARCH)
VERSION           ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION          ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
CA_BUNDLE         ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
IMAGES            := metrics-collector pod-watcher

images: ## OCI image tarballs in dist/images/ for docker load / k3s ctr images import (no Docker engine needed)
	@mkdir -p dist/bin/linux-$(IMAGE_ARCH) dist/images
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) go build -trimpath -ldflags='-s -w' -o dist/bin/linux-$(IMAGE_ARCH)/ $(foreach s,$(IMAGES),./$(s)/cmd/$(s))
	go build -o dist/bin/build-image ./shared/cmd/build-image
	@for s in $(IMAGES); do SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) dist/bin/build-image --binary dist/bin/linux-$(IMAGE_ARCH)/$$s --name $$s \
	  --tag $(IMAGE_REGISTRY)/$$s:$(IMAGE_TAG) --version $(VERSION) --revision $(REVISION) --source https://github.com/podtype/podtype \
	  --description "podtype $$s" --port 8080 $(if $(CA_BUNDLE),--ca-bundle $(CA_BUNDLE)) --output dist/images/$$s.tar || exit 1; done
	dist/bin/build-image verify $(foreach s,$(IMAGES),dist/images/$(s).tar)
