# brickfs make targets. See the README's "change this -> run that" table.
#
#   make build        bin/brickfs, bin/mount.brickfs
#   make install      brickfs, mount.brickfs and the systemd generator (root)
#   make install-glusterfs   also make `mount -t glusterfs` use brickfs
#   make uninstall    give mount -t glusterfs back to GlusterFS, remove brickfs
#   make deps         install what the tests need (scripts/deps.sh, apt-get)
#   make lint         gofmt, go vet, import layering (scripts/lint-layers.sh)
#   make test         unit tests: brick, failover, fuse, cmd
#   make integration  real GlusterFS on loopback; root; REQUIRE_FUSE=1 REQUIRE_GLUSTER=1
#   make fuzz         every Fuzz* target for $(FUZZTIME) each (default 15s)
#   make bench        bench-go, then bench-fio
#   make bench-go     the Go benchmarks: go test -run='^$' -bench=. ./...
#   make bench-fio    fio through brickfs, native, native-strict, gfapi and the local
#                     disk on single, rep3, rep3shard, 2x3 (integration/cmd/bench);
#                     root; about 2 h 30 min; a short run: VOLUMES=rep3 REPEATS=1 RUNTIME=5
#                     (also CLIENTS, JOBS, SIZE, MULTI_SIZE, OUT, BRICKFS_OPTS; not part of ci)
#   make check        lint + test + integration
#   make ci           deps + check: the README's test command, what .ci/run runs
#   make demo         scripts/demo.sh: local cluster, brickfs mount, failover

SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
FUZZTIME ?= 15s
CMDS := brickfs mount.brickfs
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/brickfs/brickfs/cmd/internal/cli.Version=$(VERSION)
# DESTDIR installs into another root (a package build, a test).
DESTDIR ?= /

.PHONY: build deps lint test integration fuzz bench bench-go bench-fio check ci demo clean install install-glusterfs uninstall

build:
	@mkdir -p bin
	@for c in $(CMDS); do echo "go build -o bin/$$c ./cmd/$$c"; $(GO) build -ldflags "$(LDFLAGS)" -o bin/$$c ./cmd/$$c || exit 1; done

install: build
	bin/brickfs install --root $(DESTDIR)

install-glusterfs: build
	bin/brickfs install --root $(DESTDIR) --glusterfs

uninstall: build
	bin/brickfs install --root $(DESTDIR) --uninstall

deps:
	bash scripts/deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	bash scripts/lint-layers.sh

test:
	$(GO) test -race ./brick/... ./failover/... ./fuse/... ./cmd/...

integration: build
	@if [ "$$(id -u)" -ne 0 ]; then echo "integration: needs root (mounts, glusterd, iptables); run: sudo make integration"; exit 1; fi
	@log=$$(mktemp /tmp/brickfs-integration.XXXXXX.log); \
	echo "REQUIRE_FUSE=1 REQUIRE_GLUSTER=1 $(GO) test -count=1 -timeout 80m ./integration/... (output also in $$log)"; \
	REQUIRE_FUSE=1 REQUIRE_GLUSTER=1 $(GO) test -count=1 -timeout 80m ./integration/... 2>&1 | tee $$log; rc=$${PIPESTATUS[0]}; \
	if [ $$rc -ne 0 ]; then \
		echo "==== what the failed tests said (their own lines, without the logs dumped; all of it in $$log) ===="; \
		grep -E '^\s*--- FAIL|^\s+[A-Za-z0-9_]+_test\.go:[0-9]+: ' $$log | cut -c1-500 | tail -n 60; \
	fi; exit $$rc

fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

bench: bench-go
	$(MAKE) bench-fio

bench-go:
	$(GO) test -run='^$$' -bench=. ./...

# VOLUMES, CLIENTS, JOBS, REPEATS, RUNTIME, SIZE, MULTI_SIZE and OUT given to
# make (make bench-fio VOLUMES=rep3) reach the program through the environment.
bench-fio: build
	@if [ "$$(id -u)" -ne 0 ]; then echo "bench-fio: needs root (FUSE mounts, glusterd, loop devices); run: sudo make bench-fio"; exit 1; fi
	$(GO) build -o bin/brickfs-bench ./integration/cmd/bench
	bin/brickfs-bench

check: lint test integration

ci: deps check

demo:
	bash scripts/demo.sh

clean:
	rm -rf bin
