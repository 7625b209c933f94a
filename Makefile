# tinymobile — the two commands: `make install`, then `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CC ?= cc
CSRC := $(wildcard csrc/*.c csrc/*/*.c)

.PHONY: install test test-c test-qu8-c ccheck bench bench-int8 clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py pyproject.toml $(CSRC) csrc/tinymobile.h csrc/internal.h csrc/build_ffi.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test,convert]'
	touch $@

test: install ccheck
	$(PY) -m pytest -q

# Quantized vector kernels (AVX2 here; NEON/udot when built for ARM) against the scalar ones.
# For ARM: CC=aarch64-linux-gnu-gcc QU8_LDFLAGS=-static QU8_RUN=qemu-aarch64 make test-qu8-c
QU8_RUN ?=
test-qu8-c:
	@mkdir -p build
	$(CC) -std=c99 -O2 -Icsrc tests/c/qu8_isa_vs_scalar.c $(CSRC) $(QU8_LDFLAGS) -lm -lpthread -o build/qu8_isa_vs_scalar
	$(QU8_RUN) build/qu8_isa_vs_scalar

# Every C source must be plain C99 with warnings clean (the cffi build uses the compiler's default).
ccheck:
	@for f in $(CSRC); do $(CC) -std=c99 -Wall -Wextra -Werror -pedantic -O2 -c $$f -o /dev/null || exit 1; done
	@echo "ccheck: $(words $(CSRC)) C files compile as C99 without warnings"

# The peers (ONNX Runtime, TFLite) and matplotlib come with the [bench] extra. Float suite, then
# the quantized 0.75_192 against TFLite int8 and against our float engine on the same weights.
bench: install $(VENV)/.bench-deps
	$(PY) -m benchmarks.bench
	$(PY) -m benchmarks.bench_int8

# Quantized 0.75_192 on the integer kernels vs TFLite (XNNPACK) and vs our float engine.
bench-int8: install $(VENV)/.bench-deps
	$(PY) -m benchmarks.bench_int8

$(VENV)/.bench-deps: setup.py
	$(PY) -m pip install -e '.[bench]'
	touch $@

clean:
	rm -rf build *.egg-info tinymobile/_native*.so

# Raspberry Pi: make cross ARCH=aarch64|armv7, make test-arm (docs/RASPBERRY_PI.md)
include tests/arm/arm.mk
