# tinymobile — the two commands: `make install`, then `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CC ?= cc
CSRC := $(wildcard csrc/*.c csrc/*/*.c)

.PHONY: install test test-c ccheck bench bench-int8 clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py pyproject.toml $(CSRC) csrc/tinymobile.h csrc/internal.h csrc/build_ffi.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test,convert]'
	touch $@

test: install ccheck
	$(PY) -m pytest -q

# Every C source must be plain C99 with warnings clean (the cffi build uses the compiler's default).
ccheck:
	@for f in $(CSRC); do $(CC) -std=c99 -Wall -Wextra -Werror -pedantic -O2 -c $$f -o /dev/null || exit 1; done
	@echo "ccheck: $(words $(CSRC)) C files compile as C99 without warnings"

# The peers (ONNX Runtime, TFLite) and matplotlib come with the [bench] extra.
bench: install $(VENV)/.bench-deps
	$(PY) -m benchmarks.bench

# Quantized 0.75_192 on the integer kernels vs TFLite (XNNPACK) and vs our float engine.
bench-int8: install $(VENV)/.bench-deps
	$(PY) -m benchmarks.bench_int8

$(VENV)/.bench-deps: setup.py
	$(PY) -m pip install -e '.[bench]'
	touch $@

clean:
	rm -rf build *.egg-info tinymobile/_native*.so
