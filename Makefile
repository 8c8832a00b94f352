# offvm: `make demo` runs the main job on a sample library it builds;
# `make test` runs every test (as root: tests mount for real).
GO ?= go
BIN := bin/offvm
PKGS := ./...
# Engines get the race detector; the end-to-end tests drive the binary.
ENGINES := ./vdisk/... ./partition/... ./mount/... ./library/... ./diskfsvol/... ./fs/... ./daemon/... \
           ./txn/... ./ntfs/... ./fat/... ./ext/... ./registry/... ./volume/... \
           ./registryfs/... ./inspect/... ./report/... ./patcher/... ./keys/... ./vmconfig/... ./inventory/... ./bitlocker/... \
           ./lvm/... ./luks/... ./xfs/... ./btrfs/... \
           ./debpkg/... ./rpmpkg/... ./scripts/bench-tool/... ./guestdiff/... ./updates/... ./internal/compress/... \
           ./internal/names/... ./internal/alloc/... ./internal/devio/... ./internal/lru/... ./internal/fsrace/...

.PHONY: all build deps test unit e2e vet demo bench bench-smoke fuzz clean man install uninstall test-long

PREFIX ?= /usr/local
DESTDIR ?=
# mount(8) looks for helpers in /sbin only, whatever PREFIX is.
SBINDIR ?= /sbin

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
	# -tags offvmfault builds the fault points (OFFVM_FAULT) the crash tests use;
	# the release binary (make build) has none
	$(GO) test -race -count=1 -timeout 40m -tags offvmfault $$($(GO) list $(ENGINES) 2>/dev/null)
	$(GO) test -count=1 -timeout 10m ./cmd/...
	# BitLocker's full-volume comparisons with dislocker (skipped under -race)
	$(GO) test -count=1 -timeout 15m ./bitlocker/...
	# commits through every real container format, checked by qemu-img, and
	# the crash-state explorer (thousands of power-loss states; not under -race)
	$(GO) test -count=1 -timeout 15m -tags integration,offvmfault -run 'TestFormats|TestCrashStates' ./txn/

e2e: deps build
	$(GO) test -count=1 -timeout 30m ./tests/...

test: vet unit e2e

demo: deps build
	./scripts/demo.sh

bench: deps build
	./scripts/bench.sh

# every figure of make bench on small sizes with 2 pairs (~5 min): it fails
# only when a figure's two sides did not do the same work; no number is
# asserted. CI runs it after make test (.ci/run).
bench-smoke: deps build
	BENCH_QUICK=1 ./scripts/bench.sh

fuzz:
	./scripts/fuzz.sh

# Man pages and bash completion come from the CLI definitions themselves.
man: build
	rm -rf bin/man && $(BIN) __docs man bin/man
	$(BIN) __docs bash > bin/offvm.bash

# install: the binary, mount(8)'s helper (mount -t fuse.offvm, fstab),
# man pages and bash completion.
install: man
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/offvm
	install -d $(DESTDIR)$(SBINDIR)
	ln -sf $(PREFIX)/bin/offvm $(DESTDIR)$(SBINDIR)/mount.fuse.offvm
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 bin/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -D -m 0644 bin/offvm.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/offvm

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/offvm $(DESTDIR)$(SBINDIR)/mount.fuse.offvm \
	      $(DESTDIR)$(PREFIX)/share/man/man1/offvm.1 $(DESTDIR)$(PREFIX)/share/man/man1/offvm-*.1 \
	      $(DESTDIR)$(PREFIX)/share/bash-completion/completions/offvm

# Heavy end-to-end runs: a real single-node Slurm patching a 200-image library;
# NTFS $MFT growth with failures injected at every grow.
test-long: build
	OFFVM_DEPS_LONG=1 ./scripts/deps.sh
	OFFVM_LONG=1 $(GO) test -count=1 -timeout 60m -run 'Long' ./tests/...
	# NTFS MFT growth, every write of every grow failed once (make test: one grow in four)
	OFFVM_LONG=1 $(GO) test -race -count=1 -timeout 30m -run 'TestMFTGrowsAcrossRecords' ./ntfs/

clean:
	rm -rf bin demo
