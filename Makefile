# offvm: `make demo` runs the main job on a sample library it builds;
# `make test` runs every test (as root: tests mount for real).
GO ?= go
BIN := bin/offvm
PKGS := ./...
# Engines get the race detector; the end-to-end tests drive the binary.
ENGINES := ./vdisk/... ./partition/... ./mount/... ./library/... ./diskfsvol/... ./fusefs/... ./daemon/... \
           ./txn/... ./ntfs/... ./fat/... ./ext/... ./hive/... ./regtext/... ./volume/... ./winreg/... \
           ./registryfs/... ./regops/... ./inspect/... ./report/... ./patcher/... ./keys/... ./vmconfig/... ./updates/...

.PHONY: all build deps test unit e2e vet demo bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/offvm
	# the first-boot service `offvm updates stage` writes into Windows images
	GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags '-s -w' -o bin/offvm-firstboot.exe ./cmd/offvm-firstboot

deps:
	./scripts/deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)
	GOOS=windows GOARCH=amd64 $(GO) vet ./cmd/offvm-firstboot ./updates/firstboot

unit: deps
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list $(ENGINES) 2>/dev/null)
	$(GO) test -count=1 -timeout 10m ./cmd/...
	# commits through every real container format, checked by qemu-img
	$(GO) test -count=1 -timeout 15m -tags integration -run TestFormats ./txn/

e2e: deps build
	$(GO) test -count=1 -timeout 30m ./tests/...

test: vet unit e2e

demo: deps build
	./scripts/demo.sh

bench: deps build
	./scripts/bench.sh

fuzz:
	./scripts/fuzz.sh

clean:
	rm -rf bin demo
