#define _POSIX_C_SOURCE 200809L
/* A persistent pthread pool. Between jobs a thread waits in three stages: a short busy spin
 * (layers follow each other within microseconds during a forward pass), then yielding the core
 * (so an oversubscribed machine - more threads than free cores, a loaded Raspberry Pi - runs the
 * thread that has work instead of the one that waits), then sleeping on a condition variable, so
 * an idle pool costs no CPU. One job runs at a time; concurrent callers queue on run_lock. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "internal.h"

#define TM_SPIN_ITERATIONS 2000
#define TM_YIELD_ITERATIONS 200

struct tm_pool {
    size_t threads;            /* including the calling thread */
    pthread_t* workers;        /* threads - 1 of them */
    pthread_mutex_t lock;
    pthread_cond_t work_cv;
    pthread_cond_t done_cv;
    pthread_mutex_t run_lock;  /* serialises tm_pool_parallelize callers */
    /* the current job */
    tm_task_fn fn;
    void* ctx;
    size_t tasks;
    size_t next_task;          /* atomic */
    size_t pending_workers;    /* atomic: workers still inside the job */
    unsigned long generation;  /* atomic: bumped for each job */
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

static void tm_run_tasks(tm_pool* pool, size_t thread) {
    for (;;) {
        const size_t t = __atomic_fetch_add(&pool->next_task, 1, __ATOMIC_RELAXED);
        if (t >= pool->tasks) break;
        pool->fn(pool->ctx, thread, t);
    }
}

static void* tm_worker_main(void* p) {
    tm_worker_arg* arg = (tm_worker_arg*)p;
    tm_pool* pool = arg->pool;
    const size_t index = arg->index;
    free(arg);
    unsigned long seen = 0;
    for (;;) {
        unsigned long gen = __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE);
        for (int i = 0; gen == seen && i < TM_SPIN_ITERATIONS + TM_YIELD_ITERATIONS; i++) {
            if (i < TM_SPIN_ITERATIONS) tm_cpu_relax();
            else sched_yield();
            gen = __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE);
        }
        if (gen == seen) {
            pthread_mutex_lock(&pool->lock);
            while (pool->generation == seen && !pool->stop) pthread_cond_wait(&pool->work_cv, &pool->lock);
            gen = pool->generation;
            const int stop = pool->stop;
            pthread_mutex_unlock(&pool->lock);
            if (stop) return NULL;
        }
        seen = gen;
        tm_run_tasks(pool, index);
        if (__atomic_sub_fetch(&pool->pending_workers, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->done_cv);
            pthread_mutex_unlock(&pool->lock);
        }
    }
}

tm_pool* tm_pool_create(size_t threads) {
    if (threads < 1) threads = 1;
    tm_pool* pool = (tm_pool*)calloc(1, sizeof(tm_pool));
    if (pool == NULL) return NULL;
    pool->threads = threads;
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
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->tasks = tasks;
    __atomic_store_n(&pool->next_task, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&pool->pending_workers, pool->threads - 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pool->generation, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->lock);

    tm_run_tasks(pool, 0);

    for (int i = 0; i < TM_SPIN_ITERATIONS + TM_YIELD_ITERATIONS; i++) {
        if (__atomic_load_n(&pool->pending_workers, __ATOMIC_ACQUIRE) == 0) break;
        if (i < TM_SPIN_ITERATIONS) tm_cpu_relax();
        else sched_yield();
    }
    pthread_mutex_lock(&pool->lock);
    while (__atomic_load_n(&pool->pending_workers, __ATOMIC_ACQUIRE) != 0)
        pthread_cond_wait(&pool->done_cv, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    pthread_mutex_unlock(&pool->run_lock);
}
