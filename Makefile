# lfalloc: the short commands. Each one installs what it needs first
# (scripts/deps.sh) and builds through CMake presets (CMakePresets.json).
#
#   make run     the main job: the lockfree core on every core, checked
#   make test    the whole suite (ctest) over every preset: default, tsan, asan
#   make bench   the benchmarks, baselines in the same run; CSV under bench/results
#
# Variables: JOBS (build parallelism), WERROR (1 to fail on warnings; on
# when CI is set), PRESETS (for make test), SECONDS_RUN (make run's length).

PRESETS ?= default tsan asan
JOBS ?= $(shell nproc)
WERROR ?= $(if $(CI),1,0)
SECONDS_RUN ?= 3
CMAKE_WERROR := $(if $(filter 1 ON on yes,$(WERROR)),ON,OFF)

.PHONY: all deps run test bench format clean help
.PHONY: $(addprefix build-,default tsan asan) $(addprefix test-,default tsan asan)

all: build-default

help:
	@sed -n '3,12p' Makefile

deps:
	@scripts/deps.sh build

build-%: deps
	cmake --preset $* -DLF_WERROR=$(CMAKE_WERROR) >/dev/null
	cmake --build --preset $* -j $(JOBS)

test-%: build-%
	ctest --preset $* -j $(JOBS)

run: build-default
	build/default/demo/lf_demo --seconds $(SECONDS_RUN)

test: deps
	@JOBS=$(JOBS) WERROR=$(CMAKE_WERROR) scripts/test-all.sh $(PRESETS)

bench: build-default
	@scripts/deps.sh build plot
	scripts/bench.sh build/default

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
