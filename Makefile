# guest_memfd in-place conversion: kernel series, tracepoints, tools, tests.
# 'make help' lists the targets.

SHELL := /bin/bash
# BASE=7.3 works on the series for Debian's linux-source-7.3 (kernel/7.3/)
# instead of 6.12's: make kernel BASE=7.3, make kernel-tree BASE=7.3, ...
ifdef BASE
export GMEM_BASE := $(BASE)
endif
# $(shell) does not see what make exports (before GNU make 4.4): pass the base.
KTREE = $(shell GMEM_BASE=$(GMEM_BASE) scripts/kernel path)
# tests/kvm builds in place for 6.12 and in out/BASE/ for another base, so
# that the builds for both bases coexist in one clone.
KVM_TESTS_O = $(if $(filter-out 6.12,$(GMEM_BASE)),out/$(GMEM_BASE),.)

.PHONY: help deps kernel kernel-debug headers kernel-tree kernel-export kernel-build-dev \
	kernel-rebase check-next-base patches tools kvm-tests tests check check-debug demo bench kmem install clean

help:
	@echo "make deps              install the Debian packages the project needs"
	@echo "make kernel            build the test kernel: kernel/series on the Debian source"
	@echo "                       pinned in kernel/base (cached)"
	@echo "make kernel-debug      the same with KVM as modules and the kernel's checkers"
	@echo "make headers           same as kernel: UAPI headers + KVM selftests lib"
	@echo "make kernel-tree       git tree to edit the series, one commit per patch"
	@echo "make kernel-export     write that tree's commits back to kernel/"
	@echo "make kernel-build-dev  build the tree's HEAD (use with git rebase -x)"
	@echo "make kernel-rebase VERSION=V  move the series and the pin to Debian version V"
	@echo "make check-next-base   try the series on the archive's newest version"
	@echo "make patches           upstream-ready series + cover letter in patches/"
	@echo "make tools             build the BPF programs, gmemtop and gmemload"
	@echo "make tests             build the tests against the built tree"
	@echo "make kvm-tests         only tests/kvm (BASE=7.3: in tests/kvm/out/7.3/)"
	@echo "make check             everything above, then run all tests"
	@echo "make check-debug       the in-VM tests on the debug kernel (KASAN, lockdep, ...)"
	@echo "make demo              boot the kernel and show guest_memfd live"
	@echo "make bench             conversion cost and watcher overhead: docs/benchmarks.md"
	@echo "make kmem              gmemtop's kernel memory at 2, 16 and 64 CPUs: docs/kernel-memory.md"
	@echo "BASE=7.3               with the kernel targets: the series for Linux 7.3 (kernel/7.3/)"

deps:
	@scripts/deps

kernel headers: deps
	@scripts/kernel build test

kernel-debug: deps
	@scripts/kernel build debug

kernel-tree: deps
	@scripts/kernel tree

kernel-export:
	@scripts/kernel export

kernel-build-dev:
	@scripts/kernel build-dev

kernel-rebase: deps
	@scripts/kernel rebase $(VERSION)

check-next-base: deps
	@scripts/kernel next-base

patches: deps
	@scripts/kernel patches

tools: kernel
	@$(MAKE) -s -C tools/gmemtop KTREE=$(KTREE)
	@$(MAKE) -s -C tools/gmemload KTREE=$(KTREE)

kvm-tests: kernel
	@$(MAKE) -s -C tests/kvm KTREE=$(KTREE) O=$(KVM_TESTS_O)

tests: tools kvm-tests
	@$(MAKE) -s -C tools/gmemtop KTREE=$(KTREE) sanitize
	@$(MAKE) -s -C tests/bench KTREE=$(KTREE)

check: deps
	@tests/check test

check-debug: deps
	@tests/check debug

demo: tests
	@tests/vm/run --append kvm.vm_memory_attributes=0 -- tools/demo

bench: tests
	@tests/bench/run

kmem: tools
	@tests/gmemtop/kmem-fit

install: tools
	@$(MAKE) -s -C tools/gmemtop install
	@$(MAKE) -s -C tools/gmemload install

clean:
	@$(MAKE) -s -C tests/kvm clean
	@rm -rf tests/kvm/out
	@$(MAKE) -s -C tests/bench clean
	@$(MAKE) -s -C tools/gmemtop clean
	@$(MAKE) -s -C tools/gmemload clean
	@$(MAKE) -s -C bpf clean
