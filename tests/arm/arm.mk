# Raspberry Pi targets (included from the Makefile): cross builds and tests under qemu.
#
#   make cross ARCH=aarch64|armv7   C kernels + the kernel check, into build/cross-$(ARCH)/
#   make test-arm                   installs what it needs (apt), then for aarch64 and armv7:
#                                   every float32 and quantized kernel (NEON, on aarch64 with and
#                                   without udot, and scalar tables; 1/3/4 threads) against the
#                                   NumPy references, and the Python package end to end on
#                                   Debian's Python 3.11 for that architecture, under qemu.
#
# Each run prints "== ARCH ... ==" first and ends with a line "ARCH-WHAT: N passed, N failed".

ARCH ?= aarch64
SHARED ?= ../shared
ifeq ($(ARCH),armv7)
CROSS_PREFIX := arm-linux-gnueabihf-
CROSS_FLAGS := -march=armv7-a -mfpu=neon-vfpv4 -mfloat-abi=hard
QEMU := qemu-arm
# The Python extension is built as on Raspberry Pi OS 32-bit on a Pi 4/5: the compiler defaults to
# ARMv6 (Raspbian's baseline) and the 64-bit kernel reports "aarch64" to the 32-bit Python;
# build_ffi.compile_args must still give NEON (the run checks tinymobile.isa() == "neon").
PI_CC_DEFAULTS := -march=armv6+fp -marm
PI_MACHINE := aarch64 4
DEB_ARCH := armhf
TRIPLET := arm-linux-gnueabihf
PY_MACHINE := armv7l
else
CROSS_PREFIX := aarch64-linux-gnu-
CROSS_FLAGS :=
QEMU := qemu-aarch64
PI_CC_DEFAULTS :=
PI_MACHINE := aarch64 8
DEB_ARCH := arm64
TRIPLET := aarch64-linux-gnu
PY_MACHINE := aarch64
endif
CROSS_CC := $(CROSS_PREFIX)gcc
CROSS_DIR := build/cross-$(ARCH)
CROSS_CFLAGS := -std=c99 -Wall -Wextra -Werror -pedantic -O2 $(CROSS_FLAGS)
CROSS_OBJS := $(patsubst csrc/%.c,$(CROSS_DIR)/obj/%.o,$(CSRC))
CROSS_HEADERS := csrc/tinymobile.h csrc/internal.h
SYSROOT := .sysroot/$(DEB_ARCH)
ARM_CASES := build/arm-cases/cases.bin
ARM_E2E := build/arm-e2e
NATIVE_SO := $(CROSS_DIR)/_native.cpython-311-$(TRIPLET).so
ARM_PY := $(CROSS_DIR)/py

.PHONY: cross cross-check-arch arm-deps arm-kernels arm-python test-arm

cross-check-arch:
	@case "$(ARCH)" in aarch64|armv7) ;; *) echo "ARCH must be aarch64 or armv7, not '$(ARCH)'"; exit 2;; esac
	@command -v $(CROSS_CC) >/dev/null || { echo "$(CROSS_CC) not found: run 'sh tests/arm/install_deps.sh' (apt) first"; exit 2; }

cross: cross-check-arch $(CROSS_DIR)/libtinymobile.a $(CROSS_DIR)/kernel_check
	@echo "cross: $(ARCH) kernels in $(CROSS_DIR)/libtinymobile.a, test driver $(CROSS_DIR)/kernel_check"

$(CROSS_DIR)/obj/%.o: csrc/%.c $(CROSS_HEADERS)
	@mkdir -p $(dir $@)
	@echo "  $(CROSS_CC) $<"
	@$(CROSS_CC) $(CROSS_CFLAGS) -Icsrc -c $< -o $@

$(CROSS_DIR)/libtinymobile.a: $(CROSS_OBJS)
	@rm -f $@
	@$(CROSS_PREFIX)ar rcs $@ $^

$(CROSS_DIR)/kernel_check: tests/arm/kernel_check.c $(CROSS_DIR)/libtinymobile.a $(CROSS_HEADERS)
	@$(CROSS_CC) $(CROSS_CFLAGS) -static -Icsrc $< $(CROSS_DIR)/libtinymobile.a -lm -lpthread -o $@

# ---- reference data, made on the build machine by the x86 package -------------------------
$(ARM_CASES): tests/arm/make_cases.py tinymobile/reference.py tinymobile/network.py | $(VENV)/.installed
	@mkdir -p $(dir $@)
	$(PY) tests/arm/make_cases.py $@

$(ARM_E2E)/x86_results.npz: tests/arm/e2e_prepare.py $(wildcard tinymobile/*.py tinymobile/*/*.py) \
                            $(VENV)/.installed
	$(PY) tests/arm/e2e_prepare.py $(SHARED) $(ARM_E2E)

# ---- runs under qemu ----------------------------------------------------------------------
arm-deps:
	@sh tests/arm/install_deps.sh

arm-kernels: cross $(ARM_CASES)
	@echo "== $(ARCH): C kernels under $(QEMU) (float32 and quantized; NEON and scalar tables) =="
	$(QEMU) $(CROSS_DIR)/kernel_check $(ARM_CASES) $(ARCH)-kernels

$(SYSROOT)/.complete: tests/arm/sysroot.sh
	@sh tests/arm/sysroot.sh $(DEB_ARCH) $(SYSROOT)

# The cffi extension: C source emitted by the x86 cffi, compiled by the cross compiler with the
# flags of csrc/build_ffi.py for the target, against the sysroot's Python headers; the package is
# copied next to it so that no x86 .so is importable.
$(NATIVE_SO): $(CSRC) $(CROSS_HEADERS) csrc/build_ffi.py tests/arm/emit_ffi.py $(SYSROOT)/.complete
	@mkdir -p $(CROSS_DIR)
	@$(PY) tests/arm/emit_ffi.py $(CROSS_DIR)/_native.c $(PI_MACHINE)
	@echo "  $(CROSS_CC) $(PI_CC_DEFAULTS) $$(cat $(CROSS_DIR)/_native.flags) -shared ... -o $@"
	@$(CROSS_CC) $(PI_CC_DEFAULTS) $$(cat $(CROSS_DIR)/_native.flags) -shared -fPIC -Icsrc \
	    -I$(SYSROOT)/usr/include/python3.11 -idirafter $(SYSROOT)/usr/include \
	    $(CROSS_DIR)/_native.c $(CSRC) -lm -lpthread -o $@

arm-python: cross-check-arch $(NATIVE_SO) $(ARM_E2E)/x86_results.npz
	@rm -rf $(ARM_PY) && mkdir -p $(ARM_PY)
	@cp -r tinymobile $(ARM_PY)/ && rm -rf $(ARM_PY)/tinymobile/*.so $(ARM_PY)/tinymobile/__pycache__
	@cp $(NATIVE_SO) $(ARM_PY)/tinymobile/
	@echo "== $(ARCH): tinymobile end to end on Debian's $(DEB_ARCH) Python 3.11 under $(QEMU) =="
	TM_MACHINE=$(PY_MACHINE) TM_ARM_LABEL=$(ARCH)-python TM_E2E_DIR=$(ARM_E2E) TM_SHARED=$(SHARED) \
	PYTHONPATH=$(ARM_PY):tests/arm \
	LD_LIBRARY_PATH=$(CURDIR)/$(SYSROOT)/usr/lib/$(TRIPLET)/blas:$(CURDIR)/$(SYSROOT)/usr/lib/$(TRIPLET)/lapack \
	$(QEMU) -L $(CURDIR)/$(SYSROOT) $(SYSROOT)/usr/bin/python3.11 -s -P -m pytest -p arm_summary \
	    -p no:cacheprovider -q tests/arm/arm_e2e.py

# Every run goes on after a failure; the target fails at the end if any did.
test-arm: install
	@sh tests/arm/install_deps.sh
	@status=0; \
	for arch in aarch64 armv7; do \
	    $(MAKE) --no-print-directory arm-kernels ARCH=$$arch || status=1; \
	done; \
	for arch in aarch64 armv7; do \
	    $(MAKE) --no-print-directory arm-python ARCH=$$arch || status=1; \
	done; \
	exit $$status
