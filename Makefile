# Top-level targets of the kmodtest harness.
#
#   make                  build kmod/NetlinkGreetingsLKM.ko for the running kernel
#   make KDIR=...         build it against other kernel headers
#   make setup            install what the harness needs (apt packages, Go modules)
#   make kmodtest         build the command-line tool (./kmodtest; `./kmodtest help`)
#   make vmtest           the VM test matrix: every kernel, every scenario
#   make test             every test: unit tests, the VM matrix and the
#                         broken-module fixtures that prove the detectors
#
KDIR ?= /lib/modules/$(shell uname -r)/build

all: module

module:
	$(MAKE) -C kmod KDIR=$(KDIR)

clean:
	$(MAKE) -C kmod KDIR=$(KDIR) clean

# -count=1: a VM run depends on kernels and caches outside Go's view.
# KMODTEST_DEBUG_KERNEL=1 builds the 6.12-debug sanitizer kernel when it is
# not cached (a long one-time build: docs/performance.md), hence the longer
# timeout.
test:
	KMODTEST_STEPS=full KMODTEST_FIXTURES=1 KMODTEST_TOOL_TESTS=1 KMODTEST_DEBUG_KERNEL=1 go test -count=1 -timeout 80m ./...

vmtest:
	KMODTEST_DEBUG_KERNEL=1 go test -count=1 -timeout 60m ./vmtests -v -steps full

setup:
	./scripts/setup.sh

kmodtest:
	go build -o kmodtest ./cmd/kmodtest

.PHONY: all module clean test vmtest setup kmodtest
