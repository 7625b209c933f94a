# Raspberry Pi targets (included from the Makefile): cross builds and tests under qemu.
#
#   make cross ARCH=aarch64|armv7|armv6   C kernels + the kernel check, into build/cross-$(ARCH)/
#   make test-arm                   installs what it needs (apt), then for aarch64, armv7 and armv6:
#                                   every float32 and quantized kernel (NEON, on aarch64 with and
#                                   without udot, and scalar tables; 1/3/4 threads) against the
#                                   NumPy references on several emulated CPUs (KERNEL_CPUS), each
#                                   told which ISA must be picked there, and (aarch64, armv7) the
#                                   Python package end to end on Debian's Python 3.11 for that
#                                   architecture, under qemu.
#
# Each run prints "== ARCH ... ==" first and ends with a line "ARCH-CPU-WHAT: N passed, N failed".

ARCH ?= aarch64
SHARED ?= ../shared
ifeq ($(ARCH),armv6)
# The C kernels built for ARMv6 as Raspberry Pi OS 32-bit's compiler does (ARMv6 + VFP, ARM
# state), run on qemu's ARM1176 (Pi 1 / Zero). Debian's armhf libc is ARMv7, so this build links
# Debian's armel one (ARMv5TE: it runs on ARMv6), with the soft-float calling convention
# (softfp: VFP instructions, arguments in core registers); the kernels' code is the same.
CROSS_PREFIX := arm-linux-gnueabi-
CROSS_FLAGS := -march=armv6+fp -marm -mfloat-abi=softfp
QEMU := qemu-arm
KERNEL_CPUS := arm1176:scalar cortex-a7:neon
# NEON instructions only in the NEON kernels (tests/arm/neon_confined.py, on the objects built).
NEON_CONFINED := yes
PYTHON_CPUS :=
ISA_CPUS :=
else ifeq ($(ARCH),armv7)
CROSS_PREFIX := arm-linux-gnueabihf-
QEMU := qemu-arm
# Everything is built as on Raspberry Pi OS 32-bit, whose compiler defaults to ARMv6 + VFP, ARM
# state (Raspbian's baseline, what piwheels builds its one armv6l/armv7l wheel with): only the NEON
# kernel files are compiled for NEON (TM_NEON_BEGIN), chosen at run time from the CPU's hwcaps.
PI_CC_DEFAULTS := -march=armv6+fp -marm
CROSS_FLAGS := $(PI_CC_DEFAULTS) -mfloat-abi=hard
# qemu CPU : the ISA tinymobile must pick there. cortex-a8: NEON without FMA (VFPv3), so scalar;
# cortex-a7,neon=off: an ARMv7 core without NEON (qemu then faults on any NEON instruction);
# cortex-a7: Pi 2; max: an ARMv8 core in AArch32 (qemu-arm has no Cortex-A53/A72 model), as a
# Pi 3/4/5 runs Raspberry Pi OS 32-bit. The ARMv6 Pi 1 / Zero: ARCH=armv6 below.
KERNEL_CPUS := cortex-a8:scalar cortex-a7,neon=off:scalar cortex-a7:neon max:neon
PYTHON_CPUS := cortex-a7:neon cortex-a7,neon=off:scalar
# The ISA checks alone (ISA picked, NEON refused where absent) on the other CPUs. (Debian's armhf
# Python needs ARMv7; the ARMv6 CPU runs the kernels of ARCH=armv6.)
ISA_CPUS := cortex-a8:scalar max:neon
NEON_CONFINED := yes
DEB_ARCH := armhf
TRIPLET := arm-linux-gnueabihf
PY_MACHINE := armv7l
else
CROSS_PREFIX := aarch64-linux-gnu-
CROSS_FLAGS :=
QEMU := qemu-aarch64
PI_CC_DEFAULTS :=
KERNEL_CPUS := max:neon
PYTHON_CPUS := max:neon
ISA_CPUS :=
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
	@case "$(ARCH)" in aarch64|armv7|armv6) ;; *) echo "ARCH must be aarch64, armv7 or armv6, not '$(ARCH)'"; exit 2;; esac
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

# Once per CPU of KERNEL_CPUS, told which ISA it must default to there; goes on after a failure.
arm-kernels: cross $(ARM_CASES)
	@status=0; for spec in $(KERNEL_CPUS); do \
	    cpu=$${spec%%:*}; isa=$${spec#*:}; \
	    echo "== $(ARCH): C kernels under $(QEMU) -cpu $$cpu (float32 and quantized; default ISA must be $$isa) =="; \
	    echo "TM_EXPECT_ISA=$$isa $(QEMU) -cpu $$cpu $(CROSS_DIR)/kernel_check $(ARM_CASES) $(ARCH)-$$(echo $$cpu | tr ,= --)-kernels"; \
	    TM_EXPECT_ISA=$$isa $(QEMU) -cpu $$cpu $(CROSS_DIR)/kernel_check $(ARM_CASES) $(ARCH)-$$(echo $$cpu | tr ,= --)-kernels || status=1; \
	done; \
	$(if $(NEON_CONFINED),$(PY) tests/arm/neon_confined.py $(CROSS_PREFIX)objdump csrc $(CROSS_DIR)/libtinymobile.a || status=1;) \
	exit $$status

$(SYSROOT)/.complete: tests/arm/sysroot.sh
	@sh tests/arm/sysroot.sh $(DEB_ARCH) $(SYSROOT)

# The cffi extension: C source emitted by the x86 cffi, compiled by the cross compiler with the
# flags of csrc/build_ffi.py for the target, against the sysroot's Python headers; the package is
# copied next to it so that no x86 .so is importable.
$(NATIVE_SO): $(CSRC) $(CROSS_HEADERS) csrc/build_ffi.py tests/arm/emit_ffi.py $(SYSROOT)/.complete
	@mkdir -p $(CROSS_DIR)
	@$(PY) tests/arm/emit_ffi.py $(CROSS_DIR)/_native.c
	@echo "  $(CROSS_CC) $(PI_CC_DEFAULTS) $$(cat $(CROSS_DIR)/_native.flags) -shared ... -o $@"
	@$(CROSS_CC) $(PI_CC_DEFAULTS) $$(cat $(CROSS_DIR)/_native.flags) -shared -fPIC -Icsrc \
	    -I$(SYSROOT)/usr/include/python3.11 -idirafter $(SYSROOT)/usr/include \
	    $(CROSS_DIR)/_native.c $(CSRC) -lm -lpthread -o $@

ARM_PYTHON_RUN = TM_MACHINE=$(PY_MACHINE) TM_E2E_DIR=$(ARM_E2E) TM_SHARED=$(SHARED) \
	PYTHONPATH=$(ARM_PY):tests/arm \
	LD_LIBRARY_PATH=$(CURDIR)/$(SYSROOT)/usr/lib/$(TRIPLET)/blas:$(CURDIR)/$(SYSROOT)/usr/lib/$(TRIPLET)/lapack \
	$(QEMU) -cpu $$cpu -L $(CURDIR)/$(SYSROOT) $(SYSROOT)/usr/bin/python3.11 -s -P -m pytest -p arm_summary \
	-p no:cacheprovider -q tests/arm/arm_e2e.py

# arm_e2e.py whole on each CPU of PYTHON_CPUS, its ISA check alone on each of ISA_CPUS; each run
# is told the ISA tinymobile must pick on that CPU (TM_EXPECT_ISA).
arm-python: cross-check-arch $(NATIVE_SO) $(ARM_E2E)/x86_results.npz
	@rm -rf $(ARM_PY) && mkdir -p $(ARM_PY)
	@cp -r tinymobile $(ARM_PY)/ && rm -rf $(ARM_PY)/tinymobile/*.so $(ARM_PY)/tinymobile/__pycache__
	@cp $(NATIVE_SO) $(ARM_PY)/tinymobile/
	@status=0; \
	$(if $(NEON_CONFINED),$(PY) tests/arm/neon_confined.py $(CROSS_PREFIX)objdump csrc $(NATIVE_SO) || status=1;) \
	for spec in $(PYTHON_CPUS); do \
	    cpu=$${spec%%:*}; isa=$${spec#*:}; \
	    echo "== $(ARCH): tinymobile end to end on Debian's $(DEB_ARCH) Python 3.11 under $(QEMU) -cpu $$cpu (ISA must be $$isa) =="; \
	    TM_EXPECT_ISA=$$isa TM_ARM_LABEL=$(ARCH)-$$(echo $$cpu | tr ,= --)-python $(ARM_PYTHON_RUN) || status=1; \
	done; for spec in $(ISA_CPUS); do \
	    cpu=$${spec%%:*}; isa=$${spec#*:}; \
	    echo "== $(ARCH): tinymobile's ISA under $(QEMU) -cpu $$cpu (must be $$isa) =="; \
	    TM_EXPECT_ISA=$$isa TM_ARM_LABEL=$(ARCH)-$$(echo $$cpu | tr ,= --)-isa $(ARM_PYTHON_RUN) -k the_cpu_it_runs_on || status=1; \
	done; exit $$status

# Every run goes on after a failure; the target fails at the end if any did.
test-arm: install
	@sh tests/arm/install_deps.sh
	@status=0; \
	for arch in aarch64 armv7 armv6; do \
	    $(MAKE) --no-print-directory arm-kernels ARCH=$$arch || status=1; \
	done; \
	for arch in aarch64 armv7; do \
	    $(MAKE) --no-print-directory arm-python ARCH=$$arch || status=1; \
	done; \
	exit $$status
