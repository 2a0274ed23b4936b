# Two commands on a fresh machine: `make demo` and `make test`. Each installs whatever is missing first.
SHELL := /bin/bash
NODE ?= node
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
TESTS := $(shell find test -name '*.test.ts' | sort)

.PHONY: install deps build nats-server chromium deploy-tools demo test typecheck clean

install: deps nats-server chromium deploy-tools

# npm ci only when node_modules is missing or older than the lock file.
deps: node_modules/.gpucolo-installed
node_modules/.gpucolo-installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The compiled CLI in dist/ (esbuild, under a second) that bin/gpucolo.mjs runs; always rebuilt, so it is never
# older than the sources (the bin would fall back to running them through tsx, correct but slower to start).
build: deps
	npm run --silent build

# nats-server from Debian when it is not on PATH (nor in /usr/sbin, where Debian puts it).
nats-server:
	@if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || [ -n "$$NATS_SERVER_BIN" ]; then \
	  echo "nats-server: $$(command -v nats-server || echo /usr/sbin/nats-server)"; \
	else \
	  echo "installing nats-server from Debian"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server; \
	fi

# Debian chromium for the report test (headless, driven by playwright-core) when it is missing.
chromium:
	@if [ -x /usr/bin/chromium ] || [ -n "$$CHROMIUM_PATH" ]; then \
	  echo "chromium: $${CHROMIUM_PATH:-/usr/bin/chromium}"; \
	else \
	  echo "installing chromium from Debian"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# The checkers of deploy/ (test/deploy): promtool (Debian's prometheus package) and systemd-analyze (systemd),
# from Debian when missing. kubectl is not in Debian: where it is absent, the kustomize check says it is skipped.
deploy-tools:
	@missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	if [ -z "$$missing" ]; then echo "deploy checkers: promtool, systemd-analyze"; else \
	  echo "installing from Debian:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: build nats-server
	$(NODE) bin/gpucolo.mjs demo

# Tests run the .ts sources through tsx; the CLIs they spawn (bin/gpucolo.mjs) run the build.
test: install build
	$(NODE) --import tsx --test --test-concurrency=1 $(TESTS)

typecheck: deps
	npx tsc --noEmit -p .

clean:
	rm -rf node_modules dist
