# meshplug: the one entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ENVOY_VERSION := $(shell tr -d '[:space:]' < envoy-config/.envoy-version)
export MESHPLUG_ENVOY := $(CURDIR)/.tools/envoy-$(ENVOY_VERSION)/envoy/_bin/envoy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FILTERS := authz ratelimit header-rewrite
# The SDK's examples (filters/examples/): built both ways too, tested by e2e (sdk_examples,
# sdk_stream_facts, dual_target).
EXAMPLES := callout-auth body-redaction hello-headers config-header metadata-reader stream-facts
FILTER_OUT := target/filters

.PHONY: help setup build filters test-filters unit test test-cases lint run run-mesh bench bench-peers bench-scale

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: ## Install what is missing (Envoy, wasm toolchain and clippy, wrk, minisign, etcd, protoc, chromium and its driver, cargo-deny); quick when all is there
	@./envoy-config/install-envoy.sh >/dev/null
	@missing=""; \
	if ! (command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown); then \
	  for pkg in rustc-web rust-web-src rust-web-clippy lld; do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	fi; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v minisign >/dev/null 2>&1 || missing="$$missing minisign"; \
	command -v etcd >/dev/null 2>&1 || missing="$$missing etcd-server"; \
	command -v protoc >/dev/null 2>&1 || missing="$$missing protobuf-compiler"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v cargo-deny >/dev/null 2>&1 || { echo "setup: installing cargo-deny from crates.io"; cargo install --quiet --locked cargo-deny@0.20.2; }

build: setup ## Build the workspace
	cargo build --workspace --all-targets

filters: setup ## Build every filter and SDK example both ways: target/filters/<name>.wasm and lib<name>.so, with pre-flight files
	@for f in $(FILTERS) $(EXAMPLES); do \
	  dir=filters/$$f; [ -d $$dir ] || dir=filters/examples/$$f; \
	  echo "filter $$f -> $(FILTER_OUT)/$$f.wasm $(FILTER_OUT)/lib$$f.so"; \
	  filters/build-wasm.sh $$f $(FILTER_OUT)/$$f.wasm || exit 1; \
	  filters/build-native.sh $$f $(FILTER_OUT)/lib$$f.so || exit 1; \
	  for kind in fixtures schema; do \
	    src=$$dir/preflight/$$( [ $$kind = schema ] && echo config.schema.json || echo fixtures.json ); \
	    [ -f $$src ] || continue; \
	    cp $$src $(FILTER_OUT)/.$$f.$$kind.json.tmp && mv -f $(FILTER_OUT)/.$$f.$$kind.json.tmp $(FILTER_OUT)/$$f.$$kind.json; \
	  done; \
	done

test-filters: setup ## Build the filter variants the e2e tests use (target/filters/test/)
	MESHPLUG_BUILD_ID=a filters/build-wasm.sh authz $(FILTER_OUT)/test/authz-a.wasm
	MESHPLUG_BUILD_ID=b filters/build-wasm.sh authz $(FILTER_OUT)/test/authz-b.wasm
	MESHPLUG_BUILD_ID=a filters/build-native.sh authz $(FILTER_OUT)/test/libauthz-a.so
	MESHPLUG_BUILD_ID=b filters/build-native.sh authz $(FILTER_OUT)/test/libauthz-b.so
	cargo build --quiet -p meshplug-sdk --example panicky --profile filter-native --target-dir target/native
	cp target/native/filter-native/examples/libpanicky.so $(FILTER_OUT)/test/.libpanicky.so.tmp
	mv -f $(FILTER_OUT)/test/.libpanicky.so.tmp $(FILTER_OUT)/test/libpanicky.so
	@for v in good good-v2 configure-fails panic status-500 slow loop; do \
	  MESHPLUG_VARIANT=$$v filters/build-wasm.sh testbed $(FILTER_OUT)/test/testbed-$$v.wasm || exit 1; \
	done

unit: setup filters ## The fast tiers only: unit and in-process tests, no Envoy
	cargo test --workspace --exclude e2e
	cargo test -p e2e --lib

test: setup filters test-filters ## Unit, in-process and e2e tests (real Envoy), then each SDK filter's cases.yaml through meshplug test
	cargo build --workspace --all-targets
	cargo test --workspace
	$(MAKE) --no-print-directory test-cases

test-cases: ## Each SDK filter's cases.yaml, as .wasm and as .so, through `meshplug test` against its envoy.yaml
	@for f in $(FILTERS); do for build in $(FILTER_OUT)/$$f.wasm $(FILTER_OUT)/lib$$f.so; do \
	  echo "meshplug test: $$f ($$build)"; \
	  target/debug/meshplug test --envoy-config filters/$$f/envoy.yaml --cases filters/$$f/cases.yaml \
	    --filter $$f=$$build --junit target/test-cases-$$f-$$(basename $$build).xml || exit 1; \
	done; done

lint: setup ## rustfmt, clippy -D warnings (host; wasm for the SDK and filters), cargo deny (licenses, bans, sources), docs
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	filters/clippy-wasm.sh
	cargo deny check licenses bans sources
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

run: setup filters ## Start control plane, Envoy and an upstream; watch target/filters
	cargo build -p meshplug -p meshplug-tools --bins
	target/debug/dev-mesh --artifacts $(FILTER_OUT)

run-mesh: setup filters ## As run, but listener, routes, cluster and plugins come from manifests in .run/mesh and .run/plugins
	cargo build -p meshplug -p meshplug-tools --bins
	target/debug/dev-mesh --artifacts $(FILTER_OUT) --composed

bench-peers: setup filters ## The bench-only builds bench-filters compares with: authz hand-written on proxy-wasm, authz without the heartbeat counter, a module pricing each host call, an SDK filter doing nothing
	filters/build-wasm.sh bench-authz-raw $(FILTER_OUT)/bench/authz-raw.wasm
	filters/build-wasm.sh bench-hostcalls $(FILTER_OUT)/bench/hostcalls.wasm
	filters/build-wasm.sh bench-noop $(FILTER_OUT)/bench/noop.wasm
	filters/build-native.sh bench-noop $(FILTER_OUT)/bench/libnoop.so
	MESHPLUG_SDK_NO_HEARTBEAT=1 filters/build-wasm.sh authz $(FILTER_OUT)/bench/authz-noheartbeat.wasm
	MESHPLUG_SDK_NO_HEARTBEAT=1 filters/build-native.sh authz $(FILTER_OUT)/bench/libauthz-noheartbeat.so

bench: setup filters test-filters bench-peers ## Hot-swap latency vs file-based ECDS, remote host vs local (root), swaps under wrk load, pre-flight time, rollback latency, filter CPU per request against peers, floods (memory), manifest translation
	cargo build --release -p meshplug -p meshplug-tools --bins
	MESHPLUG_BIN=$(CURDIR)/target/release/meshplug target/release/bench-swap --swaps 30 --load-swaps 100
	MESHPLUG_BIN=$(CURDIR)/target/release/meshplug target/release/bench-swap --swaps 30 --load-swaps 0 --no-preflight
	MESHPLUG_BIN=$(CURDIR)/target/release/meshplug target/release/bench-remote --swaps 30
	target/release/bench-preflight
	MESHPLUG_BIN=$(CURDIR)/target/release/meshplug target/release/bench-rollback --trials 5
	target/release/bench-filters
	target/release/bench-filters --saturate --wrk-rounds 0
	target/release/bench-filters --saturate --wrk-rounds 0 --only "host call"
	target/release/bench-filters --saturate --wrk-rounds 0 --only floor
	MESHPLUG_BIN=$(CURDIR)/target/release/meshplug target/release/bench-floods
	cargo bench -p meshplug --bench translate -- --warm-up-time 1 --measurement-time 5

bench-scale: setup ## 1,000 and 10,000 simulated ADS streams: push convergence, memory, CPU; 10,000 over mTLS; 10,000 nodes fetching a 160 KB module; replicas: failover over 20 trials, 10,000 nodes over 3 replicas vs 1 (appends to BENCHMARKS.md)
	cargo build --release -p meshplug -p meshplug-tools --bins
	MESHPLUG_BIN=$(CURDIR)/target/release/meshplug target/release/xds-load --nodes 1000 --changes 5 --append BENCHMARKS.md
	MESHPLUG_BIN=$(CURDIR)/target/release/meshplug target/release/xds-load --nodes 10000 --changes 5 --append BENCHMARKS.md
	MESHPLUG_BIN=$(CURDIR)/target/release/meshplug target/release/xds-load --nodes 10000 --changes 5 --tls --append BENCHMARKS.md
	MESHPLUG_BIN=$(CURDIR)/target/release/meshplug target/release/xds-load --nodes 10000 --changes 3 --fetch --module-kb 160 --append BENCHMARKS.md
	MESHPLUG_BIN=$(CURDIR)/target/release/meshplug target/release/bench-replicas --trials 20 --nodes 10000 --changes 3 --append BENCHMARKS.md
