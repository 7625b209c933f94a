#define _POSIX_C_SOURCE 200809L
/* A persistent pthread pool.
 *
 * A job is a number of tasks, cut into one contiguous range per thread: thread t starts on range
 * t, so consecutive layers (whose tasks are rows in order) give each core the rows it wrote
 * itself, and its caches stay warm. A thread whose range is empty takes tasks from the others'
 * ranges, so a core that is busy elsewhere (a loaded Raspberry Pi, more threads than free cores)
 * only delays the tasks nobody else picks up; the caller waits for the tasks to be done, never
 * for a worker to show up.
 *
 * Each range is one 64-bit counter holding the job's generation (high half) and the range's next
 * task (low half): a thread that wakes late for an old job can never claim a task of a newer one.
 * A new job first retags every counter (so an old claim attempt fails), then writes its
 * parameters, then opens the ranges.
 *
 * Between jobs a thread waits in three stages: a short busy spin (layers follow each other
 * within microseconds during a forward pass), then yielding the core, then sleeping on a
 * condition variable, so an idle pool costs no CPU. One job runs at a time; concurrent callers
 * queue on run_lock. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

/* The claim counters are 64-bit atomics. ARMv6 (the default target of Raspberry Pi OS 32-bit's
 * compiler) has no 64-bit exclusive load/store, so GCC would call libatomic; the Pi 1 / Zero core
 * (ARM1176JZF-S) is ARMv6KZ, which has them (ldrexd/strexd), as has every later core. */
#if defined(__arm__) && defined(__GNUC__) && !defined(__clang__) && __ARM_ARCH == 6 && \
    !(defined(__ARM_FEATURE_LDREX) && (__ARM_FEATURE_LDREX & 8))
#if defined(__ARM_FP)
#pragma GCC target("arch=armv6kz+fp")
#else
#pragma GCC target("arch=armv6kz")
#endif
#endif

#define TM_SPIN_ITERATIONS 2000
#define TM_YIELD_ITERATIONS 200

/* One thread's share of a job, alone on its cache line. */
typedef struct {
    uint64_t claim;            /* atomic: generation << 32 | next task index */
    size_t end;                /* one past the range's last task */
    char pad[64 - sizeof(uint64_t) - sizeof(size_t)];
} tm_range;

struct tm_pool {
    size_t threads;            /* including the calling thread */
    pthread_t* workers;        /* threads - 1 of them */
    tm_range* ranges;          /* threads of them */
    pthread_mutex_t lock;
    pthread_cond_t work_cv;
    pthread_cond_t done_cv;
    pthread_mutex_t run_lock;  /* serialises tm_pool_parallelize callers */
    /* the current job: fn and ctx are only read by a thread holding a claimed task */
    tm_task_fn fn;
    void* ctx;
    size_t tasks;              /* atomic */
    size_t done;               /* atomic: tasks finished */
    uint64_t generation;       /* atomic: bumped for each job */
    int stop;
};

typedef struct { tm_pool* pool; size_t index; } tm_worker_arg;

static inline void tm_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Claims the next task of job `gen` from range r; 0 when that range has no task left (or the
 * job is over). */
static int tm_claim(tm_range* range, uint64_t gen, size_t* task) {
    uint64_t v = __atomic_load_n(&range->claim, __ATOMIC_ACQUIRE);
    for (;;) {
        if ((v >> 32) != (gen & 0xffffffffu)) return 0;
        const size_t index = (size_t)(v & 0xffffffffu);
        if (index >= __atomic_load_n(&range->end, __ATOMIC_RELAXED)) return 0;
        if (__atomic_compare_exchange_n(&range->claim, &v, v + 1, 1, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            *task = index;
            return 1;
        }
    }
}

/* Own range first, then the others' in turn. */
static void tm_run_tasks(tm_pool* pool, uint64_t gen, size_t thread) {
    size_t task;
    for (size_t k = 0; k < pool->threads; k++) {
        tm_range* range = &pool->ranges[(thread + k) % pool->threads];
        while (tm_claim(range, gen, &task)) {
            const size_t tasks = __atomic_load_n(&pool->tasks, __ATOMIC_RELAXED);
            pool->fn(pool->ctx, thread, task);
            if (__atomic_add_fetch(&pool->done, 1, __ATOMIC_ACQ_REL) == tasks) {
                pthread_mutex_lock(&pool->lock);
                pthread_cond_signal(&pool->done_cv);
                pthread_mutex_unlock(&pool->lock);
            }
        }
    }
}

static void* tm_worker_main(void* p) {
    tm_worker_arg* arg = (tm_worker_arg*)p;
    tm_pool* pool = arg->pool;
    const size_t index = arg->index;
    free(arg);
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE);
        for (int i = 0; gen == seen && i < TM_SPIN_ITERATIONS + TM_YIELD_ITERATIONS; i++) {
            if (i < TM_SPIN_ITERATIONS) tm_cpu_relax();
            else sched_yield();
            gen = __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE);
        }
        if (gen == seen) {
            pthread_mutex_lock(&pool->lock);
            while (__atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE) == seen && !pool->stop)
                pthread_cond_wait(&pool->work_cv, &pool->lock);
            gen = __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE);
            const int stop = pool->stop;
            pthread_mutex_unlock(&pool->lock);
            if (stop) return NULL;
        }
        seen = gen;
        tm_run_tasks(pool, gen, index);
    }
}

tm_pool* tm_pool_create(size_t threads) {
    if (threads < 1) threads = 1;
    tm_pool* pool = (tm_pool*)calloc(1, sizeof(tm_pool));
    if (pool == NULL) return NULL;
    pool->threads = threads;
    void* ranges = NULL;
    if (posix_memalign(&ranges, 64, threads * sizeof(tm_range)) != 0) {
        free(pool);
        return NULL;
    }
    pool->ranges = (tm_range*)ranges;
    for (size_t t = 0; t < threads; t++) pool->ranges[t].claim = pool->ranges[t].end = 0;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->run_lock, NULL);
    pthread_cond_init(&pool->work_cv, NULL);
    pthread_cond_init(&pool->done_cv, NULL);
    if (threads > 1) {
        pool->workers = (pthread_t*)calloc(threads - 1, sizeof(pthread_t));
        if (pool->workers == NULL) { tm_pool_destroy(pool); return NULL; }
        for (size_t i = 0; i + 1 < threads; i++) {
            tm_worker_arg* arg = (tm_worker_arg*)malloc(sizeof(tm_worker_arg));
            if (arg == NULL) { pool->threads = i + 1; tm_pool_destroy(pool); return NULL; }
            arg->pool = pool;
            arg->index = i + 1;
            if (pthread_create(&pool->workers[i], NULL, tm_worker_main, arg) != 0) {
                free(arg);
                pool->threads = i + 1;
                tm_pool_destroy(pool);
                return NULL;
            }
        }
    }
    return pool;
}

void tm_pool_destroy(tm_pool* pool) {
    if (pool == NULL) return;
    pthread_mutex_lock(&pool->lock);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->lock);
    if (pool->workers != NULL)
        for (size_t i = 0; i + 1 < pool->threads; i++) pthread_join(pool->workers[i], NULL);
    free(pool->workers);
    free(pool->ranges);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->run_lock);
    pthread_cond_destroy(&pool->work_cv);
    pthread_cond_destroy(&pool->done_cv);
    free(pool);
}

size_t tm_pool_threads(const tm_pool* pool) { return pool == NULL ? 1 : pool->threads; }

void tm_pool_parallelize(tm_pool* pool, tm_task_fn fn, void* ctx, size_t tasks) {
    if (pool == NULL || pool->threads == 1 || tasks <= 1) {
        for (size_t t = 0; t < tasks; t++) fn(ctx, 0, t);
        return;
    }
    pthread_mutex_lock(&pool->run_lock);
    const uint64_t gen = __atomic_load_n(&pool->generation, __ATOMIC_RELAXED) + 1;
    const uint64_t tag = (gen & 0xffffffffu) << 32;
    const size_t threads = pool->threads;
    /* 1. Retag every range, empty: a thread still trying to claim for the previous job fails
     * from here on (without this, it could read this job's range ends below and claim a task
     * of this job with the previous job's counter, running it twice and overcounting done). */
    for (size_t t = 0; t < threads; t++) {
        __atomic_store_n(&pool->ranges[t].end, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&pool->ranges[t].claim, tag, __ATOMIC_SEQ_CST);
    }
    /* 2. The job. 3. Open the ranges. */
    pool->fn = fn;
    pool->ctx = ctx;
    __atomic_store_n(&pool->tasks, tasks, __ATOMIC_RELAXED);
    __atomic_store_n(&pool->done, 0, __ATOMIC_RELAXED);
    for (size_t t = 0; t < threads; t++) {
        __atomic_store_n(&pool->ranges[t].end, (t + 1) * tasks / threads, __ATOMIC_RELAXED);
        __atomic_store_n(&pool->ranges[t].claim, tag | (t * tasks / threads), __ATOMIC_RELEASE);
    }
    pthread_mutex_lock(&pool->lock);
    __atomic_store_n(&pool->generation, gen, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->lock);

    tm_run_tasks(pool, gen, 0);

    for (int i = 0; i < TM_SPIN_ITERATIONS + TM_YIELD_ITERATIONS; i++) {
        if (__atomic_load_n(&pool->done, __ATOMIC_ACQUIRE) == tasks) break;
        if (i < TM_SPIN_ITERATIONS) tm_cpu_relax();
        else sched_yield();
    }
    pthread_mutex_lock(&pool->lock);
    while (__atomic_load_n(&pool->done, __ATOMIC_ACQUIRE) != tasks)
        pthread_cond_wait(&pool->done_cv, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    pthread_mutex_unlock(&pool->run_lock);
}
