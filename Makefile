# amtedge — site-local Intel AMT provisioning appliance.
# `make run` starts the appliance on its embedded demo default; `make test` runs every test.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin/amtedge
# Tools built from the Go module proxy live outside the repository, once per machine.
TOOLS_DIR ?= $(HOME)/.cache/amtedge/tools
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS_DIR)/staticcheck-$(STATICCHECK_VERSION)
# nfpm builds the .deb and .rpm; v2.46+ needs modules the proxy here refuses. A tool, never a module dependency.
NFPM_VERSION := v2.45.2
NFPM := $(TOOLS_DIR)/nfpm-$(NFPM_VERSION)

.PHONY: all build run demo test test-short deps vault fuzz bench fmt lint vet clean package

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./daemon

# The appliance on its embedded default: state in ./amtedge-state, self-signed TLS, a demo site, no Vault.
run: build
	./$(BIN) serve

# The appliance plus 20 simulated devices (10 CCM, 10 ACM) against it; prints a result table per device.
demo: build
	./scripts/demo.sh ./$(BIN)

# Every test, with the race detector. Fuzz targets run their seed corpora here; `make fuzz` explores further.
test: deps vault lint $(NFPM)
	$(GO) test -race -count=1 -timeout 30m ./...

# The Vault server the secrets/vault tests run for real, built once per machine from the Go module proxy into
# ~/.cache/amtedge (about 16-25 minutes cold on 2 cores; a no-op afterwards).
vault:
	./scripts/ensure-vault.sh

# Debian packages the tests use (swtpm, journald, packaging tools, …), installed when missing.
deps:
	./scripts/test-deps.sh

test-short:
	$(GO) test -count=1 ./...

FUZZTIME ?= 30s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# Benchmarks (never timed tests): the appliance and simulated agents in one run; figures go to stdout.
bench: build vault deps
	$(GO) run ./bench -amtedge ./$(BIN)
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./appliance/wsman/ ./secrets/cache/
	$(GO) test -run '^$$' -bench ColdStart -benchtime 10x ./daemon/
	$(GO) test -run '^$$' -bench . -benchtime 1x ./secrets/vaultsync/

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

lint: vet $(STATICCHECK)
	$(STATICCHECK) ./...

$(STATICCHECK):
	mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR)/tmp $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS_DIR)/tmp/staticcheck $@

# dist/amtedge_<ver>_<arch>.deb and dist/amtedge-<ver>.<arch>.rpm, reproducible for a given commit, VERSION and
# SOURCE_DATE_EPOCH (default: the last commit's time). PKG_VERSION overrides the package version derived from VERSION.
package: $(NFPM)
	NFPM=$(NFPM) VERSION=$(VERSION) GO=$(GO) ./packaging/build.sh dist

$(NFPM):
	mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR)/tmp $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	mv $(TOOLS_DIR)/tmp/nfpm $@

clean:
	rm -rf bin dist
