# tinymobile — the two commands: `make install`, then `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CC ?= cc
CSRC := $(wildcard csrc/*.c csrc/*/*.c)

.PHONY: bench-throughput install test kernel-check ccheck test-sanitize test-sdist bench bench-int8 pi-model clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py pyproject.toml $(CSRC) $(wildcard csrc/*.h csrc/*/*.h) csrc/build_ffi.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test,convert]'
	touch $@

test: install ccheck
	$(PY) -m pytest -q

# The C kernel check (tests/arm/kernel_check.c) on this machine's tables: every operator step on
# the reference cases of tests/arm/make_cases.py, and the quantized vector tables against the
# scalar one on random data. ARM builds of it run under qemu in make test-arm.
kernel-check: install
	@mkdir -p build
	$(CC) -std=c99 -Wall -Wextra -Werror -pedantic -O2 -Icsrc tests/arm/kernel_check.c $(CSRC) -lm -lpthread -o build/kernel_check
	$(PY) tests/arm/make_cases.py build/kernel-check-cases.bin
	build/kernel_check build/kernel-check-cases.bin x86-kernels

# Every C source must be plain C99 with warnings clean (the cffi build uses the compiler's default).
ccheck:
	@for f in $(CSRC); do $(CC) -std=c99 -Wall -Wextra -Werror -pedantic -O2 -c $$f -o /dev/null || exit 1; done
	@echo "ccheck: $(words $(CSRC)) C files compile as C99 without warnings"

# The kernels built with AddressSanitizer + UndefinedBehaviorSanitizer (gcc), run under the kernel
# and model tests. Python is not ASan-built, so the ASan runtime is preloaded; leak detection is off
# (the interpreter's own allocations look like leaks); any UB report aborts (non-zero exit).
SANITIZE_DIR := build/sanitize
SANITIZE_TESTS := tests/test_sanitize_build.py tests/test_kernels.py tests/test_model_parity.py \
	tests/test_memory_guards.py tests/test_threads.py tests/test_validate.py \
	tests/test_quantized_kernels.py tests/test_quantized_model.py tests/test_fusion.py
test-sanitize: install
	mkdir -p $(SANITIZE_DIR)
	CC=gcc $(PY) csrc/build_sanitize.py $(SANITIZE_DIR) > $(SANITIZE_DIR)/module-path
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	TINYMOBILE_NATIVE_MODULE="$$(cat $(SANITIZE_DIR)/module-path)" \
	$(PY) -m pytest -q -p no:cacheprovider --capture=sys $(SANITIZE_TESTS)

# The sdist as users and piwheels get it: python -m build, plain `pip install tinymobile-X.tar.gz`
# into a fresh venv, then `tinymobile predict` there must equal this install's (tests/packaging/).
test-sdist: install
	PYTHON=$(PYTHON) bash tests/packaging/install_sdist.sh

# The peers (ONNX Runtime, TFLite) and matplotlib come with the [bench] extra. Float suite, then
# the quantized 0.75_192 against TFLite int8 and against our float engine on the same weights.
bench: install $(VENV)/.bench-deps
	$(PY) -m benchmarks.bench
	$(PY) -m benchmarks.bench_int8

# Quantized 0.75_192 on the integer kernels vs TFLite (XNNPACK) and vs our float engine.
bench-int8: install $(VENV)/.bench-deps
	$(PY) -m benchmarks.bench_int8

# Images/s classifying a folder of JPEGs: the CLI, the Python API, a TFLite loop, an ONNX Runtime
# loop and Ray Data with 1 and 2 actors, interleaved (benchmarks/throughput.py; a few minutes).
bench-throughput: install $(VENV)/.bench-deps
	$(PY) -m benchmarks.throughput

$(VENV)/.bench-deps: setup.py
	$(PY) -m pip install -e '.[bench]'
	touch $@

# Modelled Raspberry Pi speed (a model: llvm-mca on the compiled ARM inner loops, no memory
# stalls): per-loop cycles and share of the FMA peak on the cortex-a53 / cortex-a72 models, and
# per-layer MobileNet v1 times for a Pi 3 / 4 / 5 -> benchmarks/results/pi-model.{json,md}.
pi-model: install
	@sh tests/arm/install_deps.sh
	$(PY) -m benchmarks.pi_model

clean:
	rm -rf build dist *.egg-info tinymobile/_native*.so

# Raspberry Pi: make cross ARCH=aarch64|armv7, make test-arm (docs/RASPBERRY_PI.md)
include tests/arm/arm.mk
