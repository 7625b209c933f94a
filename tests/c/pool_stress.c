/* Thread-pool stress: many jobs of varied sizes from two calling threads; every task of every
 * job must run exactly once, and every job's call must return (a task run twice or missed, or
 * a lost wake-up, fails or hangs). Built with -fsanitize=thread by tests/test_pool_stress.py.
 * Usage: pool_stress THREADS JOBS */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

#define MAX_TASKS 97

typedef struct { int runs[MAX_TASKS]; unsigned seed; } job_ctx;

static void task(void* p, size_t thread, size_t t) {
    (void)thread;
    job_ctx* ctx = (job_ctx*)p;
    __atomic_add_fetch(&ctx->runs[t], 1, __ATOMIC_RELAXED);
    if ((ctx->seed + t) % 13 == 0) { /* now and then a slow task: the others steal around it */
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

typedef struct { tm_pool* pool; int jobs; unsigned seed; int failures; } caller_arg;

static void* caller(void* p) {
    caller_arg* arg = (caller_arg*)p;
    for (int j = 0; j < arg->jobs; j++) {
        job_ctx ctx = {{0}, arg->seed};
        arg->seed = arg->seed * 1103515245u + 12345u;
        const size_t tasks = (arg->seed >> 8) % MAX_TASKS;
        tm_pool_parallelize(arg->pool, task, &ctx, tasks);
        for (size_t t = 0; t < MAX_TASKS; t++) {
            const int want = t < tasks ? 1 : 0;
            if (__atomic_load_n(&ctx.runs[t], __ATOMIC_RELAXED) != want) {
                fprintf(stderr, "job %d: task %zu of %zu ran %d times\n", j, t, tasks, ctx.runs[t]);
                arg->failures++;
            }
        }
    }
    return NULL;
}

int main(int argc, char** argv) {
    const size_t threads = argc > 1 ? (size_t)atoi(argv[1]) : 3;
    const int jobs = argc > 2 ? atoi(argv[2]) : 2000;
    tm_pool* pool = tm_pool_create(threads);
    if (pool == NULL) return 2;
    caller_arg args[2] = {{pool, jobs, 1u, 0}, {pool, jobs, 7u, 0}};
    pthread_t other;
    pthread_create(&other, NULL, caller, &args[1]);
    caller(&args[0]);
    pthread_join(other, NULL);
    tm_pool_destroy(pool);
    const int failures = args[0].failures + args[1].failures;
    printf("pool_stress: %d jobs x 2 callers, %zu threads, %d failures\n", jobs, threads, failures);
    return failures != 0;
}
