# game-host: a game server whose game modules are hot-swappable libraries.
# `make help` lists the targets.

CARGO ?= cargo
PROFILE ?= dev
PLUGINS_DIR ?= var/plugins
DEMO_MODULES := activity mall player

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: setup
setup: ## Check that the Rust toolchain is installed
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs, then run make again"; exit 1; }

.PHONY: build
build: setup ## Build the host and every module library
	$(CARGO) build --workspace

.PHONY: plugins
plugins: build ## Install the demo modules into the plugins directory
	@mkdir -p $(PLUGINS_DIR)
	@for m in $(DEMO_MODULES); do cp target/debug/lib$$m.so $(PLUGINS_DIR)/lib$$m.so.tmp && mv $(PLUGINS_DIR)/lib$$m.so.tmp $(PLUGINS_DIR)/lib$$m.so; done
	@echo "installed $(DEMO_MODULES) into $(PLUGINS_DIR)"

.PHONY: run
run: plugins ## Build, install the demo modules and serve on 127.0.0.1:8000 (profile dev)
	target/debug/game-host serve --profile $(PROFILE) --plugins-dir $(PLUGINS_DIR)

.PHONY: test
test: build ## Run every test (builds the module libraries the tests load first)
	$(CARGO) test --workspace

.PHONY: check
check: setup ## Formatting and lints, warnings denied
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: lint-docker
lint-docker: ## Lint the Dockerfile with hadolint
	hadolint Dockerfile

.PHONY: clean
clean: ## Remove build output and the dev data (keeps log/)
	$(CARGO) clean
	rm -rf var

.PHONY: bench
bench: setup ## Benchmarks (release build); QUICK=1 for a short run
	$(CARGO) build --workspace --release
	$(CARGO) bench -p host --bench module_call $(if $(QUICK),-- --warm-up-time 1 --measurement-time 2)
	QUICK=$(QUICK) $(CARGO) bench -p host --bench reload
