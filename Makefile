# Top-level targets of the kmodtest harness.
#
#   make                  build kmod/NetlinkGreetingsLKM.ko for the running kernel
#   make KDIR=...         build it against other kernel headers
#   make test             unit tests
#   make vmtest           tests that boot kernels under QEMU
#   make setup            fetch what the VM tests need
#
KDIR ?= /lib/modules/$(shell uname -r)/build

all: module

module:
	$(MAKE) -C kmod KDIR=$(KDIR)

clean:
	$(MAKE) -C kmod KDIR=$(KDIR) clean

test: ; go test ./...
vmtest: ; go test ./vmtests -v
setup: ; ./scripts/setup.sh

.PHONY: all module clean test vmtest setup
