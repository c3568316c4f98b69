# shardseq — `make run` starts a local Redis Cluster and the server; `make test`
# runs every test (unit and integration, with -race) of both modules: the
# product (.) and the lab (lab/: baselines, charts, the browser test; a module
# of its own, which `./...` skips). See README.md.

SHELL        := /bin/bash
GO           ?= go
export GOFLAGS := -buildvcs=false

BIN          := bin/shardseq
CLUSTER_DIR  ?= .run/cluster
CLUSTER_PORT ?= 7000
LISTEN       ?= :8080
SHARDS       ?= 12
STATICCHECK_VERSION ?= v0.8.2
# buf lints api/**/*.proto and generates api/gen; it and the protoc plugins
# (api/buf.gen.yaml) are Go modules run with `go run` at pinned versions.
BUF_VERSION  ?= v1.75.0
BUF          := $(GO) run github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
LAB          := lab

# Version and commit stamped into the binary (internal/version; `shardseq
# version`, shardseq_build_info). The version is the tag on HEAD if there is
# one, else a Go pseudo-version of the commit, as `go install ...@<commit>`
# would record it; +dirty when tracked files are changed. Outside a git
# checkout both stay empty and the binary falls back to its Go build info.
GIT_DIRTY    := $(shell git status --porcelain --untracked-files=no 2>/dev/null | head -c1)
VERSION      ?= $(shell { git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null || \
	TZ=UTC git log -1 --abbrev=12 --date=format-local:%Y%m%d%H%M%S --format=v0.0.0-%cd-%h 2>/dev/null; } | \
	sed 's/$$/$(if $(GIT_DIRTY),+dirty)/')
COMMIT       ?= $(shell git rev-parse HEAD 2>/dev/null)
VERSION_PKG  := github.com/shardseq/shardseq/internal/version
LDFLAGS      := -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).revision=$(COMMIT)

.PHONY: proto proto-check all build run redis cluster-up cluster-down cluster-status test test-clients vet lint chaos-long bench clean docker-build docker-up docker-down chaos docker-smoke

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/shardseq

# redis: make sure redis-server is installed (installs it on Debian/Ubuntu when root).
redis:
	@if ! command -v redis-server >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "redis-server not found: installing it with apt-get"; \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; \
		else \
			echo "redis-server not found: install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)" >&2; \
			exit 1; \
		fi; \
	fi

# run: a local 3-master/3-replica cluster on ports $(CLUSTER_PORT)-$(CLUSTER_PORT)+5
# (it keeps running after the server stops: `make cluster-down`), then the
# server on $(LISTEN) in the foreground. Ctrl-C stops the server gracefully.
run: build redis
	@addrs=$$($(BIN) cluster up --dir $(CLUSTER_DIR) --port $(CLUSTER_PORT)) && \
		exec $(BIN) serve --redis "$$addrs" --listen $(LISTEN) --shards $(SHARDS)

cluster-up: build redis
	@$(BIN) cluster up --dir $(CLUSTER_DIR) --port $(CLUSTER_PORT)

cluster-down: $(if $(wildcard $(BIN)),,build) # stopping needs no fresh binary
	@$(BIN) cluster down --dir $(CLUSTER_DIR)

cluster-status: build
	@$(BIN) cluster status --dir $(CLUSTER_DIR)

vet:
	$(GO) vet -tags 'integration chaos' ./...
	cd $(LAB) && $(GO) vet -tags 'integration chaos' ./...

# test: what CI runs. Unit and integration tests (real Redis Clusters started
# by the tests on ports 7000-22000), all with the race detector. The
# integration package runs on its own, after the rest: its availability and
# order tests measure what callers see through faults, and on 2 cores they
# must not share them with other packages' clusters (a CI run where they
# did saw a quarter of the throughput and callers time out).
test: vet test-clients
	$(GO) test -race -count=1 -tags integration -timeout 10m $$($(GO) list -tags integration ./... | grep -v '/integration$$')
	$(GO) test -race -count=1 -tags integration -timeout 20m ./integration/
	cd $(LAB) && $(GO) test -race -count=1 -tags integration -timeout 10m ./...

# test-clients: the unit tests of the Python and Java clients against stub
# servers (seconds); their conformance suite against a real server on a real
# cluster is clients/conformance_test.go, in `go test ./...` above. A missing
# python3 or JDK skips its client, but fails under CI=true.
JAVA_OUT := .run/java-classes
test-clients:
	@if command -v python3 >/dev/null 2>&1; then \
		cd clients/python && PYTHONPATH=src python3 -m unittest discover -s tests -t .; \
	elif [ "$$CI" = true ]; then echo "python3 not found (CI=true)" >&2; exit 1; \
	else echo "python3 not found: the Python client's tests are skipped"; fi
	@if command -v javac >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then \
		rm -rf $(JAVA_OUT) && javac -d $(JAVA_OUT) $$(find clients/java/src -name '*.java') && \
		java -cp $(JAVA_OUT) io.shardseq.ShardseqClientTest; \
	elif [ "$$CI" = true ]; then echo "javac/java not found (CI=true)" >&2; exit 1; \
	else echo "javac not found: the Java client's tests are skipped"; fi

# proto: lint the .proto files under api/ (buf lint, STANDARD rules:
# api/buf.yaml) and regenerate api/gen from them. The first run builds buf
# (about 2 minutes); later ones take seconds.
proto:
	cd api && $(BUF) lint && $(BUF) generate

# proto-check: the .proto files lint clean and the committed api/gen is
# exactly what they generate. Part of make lint, not make test: building buf
# takes about two minutes on a cold module cache, out of CI's test budget
# (TestGeneratorVersions in make test checks the pinned plugins).
proto-check: proto
	@if [ -n "$$(git status --porcelain -- api/gen)" ]; then \
		git status --short -- api/gen; \
		echo "api/gen is not what api/**/*.proto generate: run make proto and commit api/gen" >&2; exit 1; fi

lint: vet proto-check
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	@if command -v staticcheck >/dev/null 2>&1 && staticcheck -version | grep -q '$(STATICCHECK_VERSION:v%=%)'; then \
		sc=staticcheck; else sc="$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)"; fi; \
	$$sc -tags 'integration chaos' ./... && (cd $(LAB) && $$sc -tags 'integration chaos' ./...)

# chaos-long: the long fault-injection run behind docs/CORRECTNESS.md: >= 60 (>= 20 rewinds and double faults),
# mixed faults, >= 20,000,000 IDs (without -race, so the load is real); and
# TestAvailability's long cases (Valkey at full coverage no, node-timeout 15 s),
# and the rewinds on Valkey (TestChaos_MixedFaultsValkey).
chaos-long:
	SHARDSEQ_CHAOS_REPORT=$(CURDIR)/.run/chaos-long.json $(GO) test -count=1 -tags 'integration chaos' -run 'TestChaosLong|TestAvailability|TestChaos_MixedFaultsValkey' -timeout 60m -v ./integration/

# Docker: images built offline (FROM scratch), a 3-master/3-replica Redis
# Cluster and two shardseq servers, chaos scripts (see docker/README.md).
DOCKER_COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE := $(DOCKER_COMPOSE) -p shardseq -f docker/compose.yml

docker-build:
	docker/build.sh

docker-up: docker-build
	$(COMPOSE) up -d
	docker/chaos/status

docker-down:
	-docker/chaos/heal --no-wait
	$(COMPOSE) --profile check down -v --remove-orphans

# chaos: the default docker scenario (CHAOS_ARGS='--faults 8 --keep').
chaos:
	docker/chaos/run $(CHAOS_ARGS)

docker-smoke:
	docker/smoke.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./client/ ./server/
	cd $(LAB) && $(GO) test -run '^$$' -bench . -benchmem ./baseline/

clean:
	rm -rf bin
