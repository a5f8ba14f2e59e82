# lfalloc: the short commands. Each one installs what it needs first
# (scripts/deps.sh) and builds through CMake presets (CMakePresets.json).
#
#   make run     the main job: boot the kernel in QEMU, torture on every CPU
#   make test    the whole suite (ctest) over every preset: default, tsan, asan,
#                mc (the model checker of verify/mc/)
#   make bench   the benchmarks, baselines in the same run; CSV under bench/results
#   make coherence  cache-line traffic per operation at 1-64 simulated CPUs
#   make mutants the seeded bugs of verify/mutants/: killed or surviving
#   make verify-long  the long model-checking and fuzzing searches
#
# Variables: JOBS (build parallelism), WERROR (1 to fail on warnings; on
# when CI is set), PRESETS (for make test), SECONDS_RUN (per test), SMP, MEM,
# TESTS, KARGS (make run / make debug: kernel/README.md); make demo, make debug.

PRESETS ?= default tsan asan mc
JOBS ?= $(shell nproc)
WERROR ?= $(if $(CI),1,0)
SECONDS_RUN ?= 3
SMP ?= 4
MEM ?= 256M
TESTS ?= all
KARGS ?=
KERNEL := build/default/kernel/lfkernel
KERNEL_CMDLINE = seconds=$(SECONDS_RUN) tests=$(TESTS) $(KARGS)
CMAKE_WERROR := $(if $(filter 1 ON on yes,$(WERROR)),ON,OFF)

.PHONY: all deps run demo debug test bench coherence mutants verify-long format clean help

# Build and test targets per preset. They are phony (always re-run: cmake
# decides what is out of date), so they are static pattern rules: GNU make
# never applies an ordinary pattern rule (build-%) to a phony target, which
# once left `make run` on a fresh clone with nothing built.
PRESET_NAMES := default tsan asan mc
BUILD_TARGETS := $(addprefix build-,$(PRESET_NAMES))
TEST_TARGETS := $(addprefix test-,$(PRESET_NAMES))
.PHONY: $(BUILD_TARGETS) $(TEST_TARGETS)

all: build-default

help:
	@sed -n '3,15p' Makefile

deps:
	@scripts/deps.sh build

$(BUILD_TARGETS): build-%: deps
	cmake --preset $* -DLF_WERROR=$(CMAKE_WERROR) >/dev/null
	cmake --build --preset $* -j $(JOBS)

$(TEST_TARGETS): test-%: build-%
	ctest --preset $* -j $(JOBS)

run: build-default
	@scripts/deps.sh kernel
	kernel/run-qemu.sh --smp $(SMP) --mem $(MEM) --timeout $$((3 * $(SECONDS_RUN) + 120)) --append "$(KERNEL_CMDLINE)" $(KERNEL)

demo: build-default
	build/default/demo/lf_demo --seconds $(SECONDS_RUN)

debug: build-default
	@scripts/deps.sh kernel debug
	@kernel/run-qemu.sh --debug --smp $(SMP) --mem $(MEM) --append "$(KERNEL_CMDLINE)" $(KERNEL) & \
	  qemu=$$!; sleep 1; gdb -q -x kernel/gdbinit $(KERNEL); kill $$qemu 2>/dev/null; wait $$qemu 2>/dev/null; true

test:
	@scripts/deps.sh build kernel plot
	@JOBS=$(JOBS) WERROR=$(CMAKE_WERROR) scripts/test-all.sh $(PRESETS)

bench: build-default
	@scripts/deps.sh build plot
	scripts/bench.sh build/default

coherence: build-default
	@scripts/deps.sh build plot
	scripts/coherence.sh build/default

mutants: deps
	@JOBS=$(JOBS) scripts/mutants.sh

verify-long: deps
	@JOBS=$(JOBS) scripts/verify-long.sh

format:
	scripts/format.sh

clean:
	rm -rf build
