/* Which ARM cores the process runs on: in-order (Cortex-A53/A55 class: Pi 3, Zero 2 W) or
 * out-of-order (Cortex-A72/A76: Pi 4, Pi 5), from the "CPU part" (MIDR_EL1 part number) of each
 * processor in /proc/cpuinfo that the process may run on. On a big.LITTLE machine whose allowed
 * cores mix both kinds the in-order choice is taken: threads migrate between cores, and the
 * in-order schedule loses nothing on the out-of-order model (benchmarks/pi_model.py: 1.00 of the
 * FMA peak on cortex-a72) while the out-of-order one loses a quarter on the in-order core.
 * TINYMOBILE_CORE=a53|a55|in-order or a72|a76|out-of-order forces the choice. */
#if defined(__linux__)
#define _GNU_SOURCE 1 /* sched_getaffinity */
#include <sched.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* In-order ARM cores by (implementer, part): Arm's Cortex-A32/A34/A35/A53/A55/A510/A520, and
 * Qualcomm's Kryo "silver" cores built on the A53/A55. */
static int tm_part_in_order(unsigned implementer, unsigned part) {
    static const unsigned arm_parts[] = {0xd01, 0xd02, 0xd03, 0xd04, 0xd05, 0xd46, 0xd80};
    static const unsigned qcom_parts[] = {0x801, 0x803, 0x805};
    const unsigned* list = implementer == 0x41 ? arm_parts : implementer == 0x51 ? qcom_parts : NULL;
    const size_t n = implementer == 0x41 ? sizeof arm_parts / sizeof *arm_parts
                                         : sizeof qcom_parts / sizeof *qcom_parts;
    for (size_t i = 0; list != NULL && i < n; i++)
        if (list[i] == part) return 1;
    return 0;
}

static int tm_cpu_allowed(long cpu, int use_affinity) {
#if defined(__linux__) && defined(CPU_ISSET)
    if (use_affinity && cpu >= 0 && cpu < CPU_SETSIZE) {
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_ISSET((int)cpu, &set) != 0;
    }
#else
    (void)cpu;
    (void)use_affinity;
#endif
    return 1;
}

int tm_arm_core_from_cpuinfo(const char* path, int use_affinity) {
    FILE* f = fopen(path, "r");
    if (f == NULL) return TM_CORE_UNKNOWN;
    char line[256];
    long cpu = -1;
    unsigned implementer = 0;
    int in_order = 0, out_of_order = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        const char* colon = strchr(line, ':');
        if (colon == NULL) continue;
        if (strncmp(line, "processor", 9) == 0) {
            cpu = strtol(colon + 1, NULL, 10);
            implementer = 0;
        } else if (strncmp(line, "CPU implementer", 15) == 0) {
            implementer = (unsigned)strtoul(colon + 1, NULL, 0);
        } else if (strncmp(line, "CPU part", 8) == 0) {
            const unsigned part = (unsigned)strtoul(colon + 1, NULL, 0);
            if (!tm_cpu_allowed(cpu, use_affinity)) continue;
            if (tm_part_in_order(implementer, part)) in_order++;
            else out_of_order++;
        }
    }
    fclose(f);
    if (in_order) return TM_CORE_IN_ORDER;
    return out_of_order ? TM_CORE_OUT_OF_ORDER : TM_CORE_UNKNOWN;
}

int tm_arm_core(void) {
    const char* forced = getenv("TINYMOBILE_CORE");
    if (forced != NULL && forced[0] != '\0') {
        static const char* const in_order[] = {"a53", "a55", "cortex-a53", "cortex-a55", "in-order"};
        static const char* const out_of_order[] = {"a72", "a76", "cortex-a72", "cortex-a76",
                                                   "out-of-order"};
        int kind = -1;
        for (size_t i = 0; i < sizeof in_order / sizeof *in_order; i++)
            if (strcmp(forced, in_order[i]) == 0) kind = TM_CORE_IN_ORDER;
        for (size_t i = 0; i < sizeof out_of_order / sizeof *out_of_order; i++)
            if (strcmp(forced, out_of_order[i]) == 0) kind = TM_CORE_OUT_OF_ORDER;
#if defined(TM_ARCH_NEON) && defined(__aarch64__)
        return kind;
#else
        return kind < 0 ? -1 : TM_CORE_OUT_OF_ORDER; /* one schedule: valid names change nothing */
#endif
    }
#if defined(TM_ARCH_NEON) && defined(__aarch64__)
    /* Read on every call (a table lookup at model load, not per layer): no shared state. Cores
     * that say nothing (qemu shows the host's /proc/cpuinfo) get the out-of-order kernels. */
    const int kind = tm_arm_core_from_cpuinfo("/proc/cpuinfo", 1);
    return kind == TM_CORE_UNKNOWN ? TM_CORE_OUT_OF_ORDER : kind;
#else
    return TM_CORE_OUT_OF_ORDER; /* one schedule only: the choice does not arise */
#endif
}
