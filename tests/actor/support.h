/* isle — MIT licensed. */
/*
 * Helpers shared by the actor tests, on top of tests/heap/support.h (worker
 * checks, iteration counts, sanitizer detection): a small message payload,
 * clocks, a runtime built with asserted arguments, a run on another thread
 * with a deadline, and the heap baseline every test returns to.
 *
 * Receive, init and finalize callbacks run on the runtime's workers (or on
 * whichever thread spawns or frees), so they never call cmocka's
 * assertions: they use WORKER_CHECK, and the test asserts
 * support_assert_workers_ok() once the run is over.
 *
 * Each including file defines _GNU_SOURCE first (pthread_barrier_t,
 * nanosleep and sigaction under -std=c11).
 */
#ifndef ISLE_TESTS_ACTOR_SUPPORT_H
#define ISLE_TESTS_ACTOR_SUPPORT_H

#include <pthread.h> /* runs and outside senders on their own threads */
#include <time.h>    /* clock_gettime, nanosleep */

#include "../heap/support.h"
#include "isle/actor.h"
#include "isle/error.h"
#include "isle/heap.h"
#include "isle/io.h"
#include "isle/mailbox.h"

/* ===== Messages ========================================================= */

/* What the tests' messages carry: up to four numbers whose meaning each
 * test gives (a sequence number, a sender index, hops left, ...). */
typedef struct support_payload_s {
  uint64_t a, b, c, d;
} support_payload_t;

/* A message of `type` carrying (a, b), from the calling thread's heap.
 * NULL only when the heap is out of memory; worker-safe (never asserts). */
static inline isle_msg_t *support_msg(uint32_t type, uint64_t a, uint64_t b) {
  isle_msg_t *m = isle_msg_new(type, sizeof(support_payload_t));
  if (m) {
    support_payload_t *p = isle_msg_data(m);
    memset(p, 0, sizeof *p);
    p->a = a;
    p->b = b;
  }
  return m;
}

static inline support_payload_t *support_payload(isle_msg_t *m) {
  return isle_msg_data(m);
}

/* On the test's thread: sends support_msg(type, a, b) from outside and
 * asserts it was accepted. */
static inline void support_send(isle_runtime_t *rt, isle_ref_t to,
                                uint32_t type, uint64_t a, uint64_t b) {
  isle_msg_t *m = support_msg(type, a, b);
  assert_non_null(m);
  int rc = isle_runtime_send(rt, to, m);
  if (rc != 0)
    isle_msg_free(m);
  assert_int_equal(rc, 0);
}

/* ===== Time ============================================================= */

static inline uint64_t support_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t support_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void support_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Keeps the calling thread busy for `us` microseconds: a receive that does
 * real work, without sleeping (a sleeping receive would let the worker's
 * CPU go to the other worker and hide contention). */
static inline void support_busy_us(unsigned us) {
  uint64_t end = support_now_ns() + (uint64_t)us * 1000u;
  while (support_now_ns() < end) {
  }
}

/* Polls `*v` every millisecond until it reaches `target` or `timeout_ms`
 * passes; returns whether it got there. Any thread. */
static inline bool support_wait_u64(_Atomic uint64_t *v, uint64_t target,
                                    unsigned timeout_ms) {
  uint64_t deadline = support_now_ns() + (uint64_t)timeout_ms * 1000000u;
  while (atomic_load(v) < target) {
    if (support_now_ns() > deadline)
      return false;
    support_sleep_ms(1);
  }
  return true;
}

/* ===== Runtimes ========================================================= */

/* A runtime with `workers` workers and otherwise the defaults, except that
 * stall reports are off (a loaded machine must not print them). */
static inline isle_runtime_t *support_runtime(unsigned workers,
                                              uint32_t max_actors) {
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = workers;
  cfg.max_actors = max_actors;
  cfg.stall_ms = UINT32_MAX;
  isle_runtime_t *rt = NULL;
  assert_int_equal(isle_runtime_new(&cfg, &rt), 0);
  assert_non_null(rt);
  return rt;
}

static inline isle_runtime_stats_t support_stats(isle_runtime_t *rt) {
  isle_runtime_stats_t s;
  memset(&s, 0xa5, sizeof s);
  assert_int_equal(isle_runtime_stats(rt, &s), 0);
  return s;
}

/* The io layer's counters (timers, TCP); for suites linked with it. */
static inline isle_io_stats_t support_io_stats(isle_runtime_t *rt) {
  isle_io_stats_t s;
  memset(&s, 0xa5, sizeof s);
  assert_int_equal(isle_io_stats(rt, &s), 0);
  return s;
}

/* isle_runtime_run on a thread of its own, so that the test's thread can
 * act on the runtime while it runs (send, stop, measure). */
typedef struct support_runner_s {
  isle_runtime_t *rt;
  pthread_t thread;
  atomic_int rc;
  atomic_bool done;
  bool joined;
} support_runner_t;

static inline void *support_runner_main(void *arg) {
  support_runner_t *r = arg;
  atomic_store(&r->rc, isle_runtime_run(r->rt));
  atomic_store(&r->done, true);
  return NULL;
}

static inline void support_runner_start(support_runner_t *r,
                                        isle_runtime_t *rt) {
  r->rt = rt;
  atomic_store(&r->rc, 12345);
  atomic_store(&r->done, false);
  r->joined = false;
  assert_int_equal(pthread_create(&r->thread, NULL, support_runner_main, r), 0);
}

/* Whether the run returned within `timeout_ms` (joined if it did). */
static inline bool support_runner_wait(support_runner_t *r,
                                       unsigned timeout_ms) {
  uint64_t deadline = support_now_ns() + (uint64_t)timeout_ms * 1000000u;
  while (!atomic_load(&r->done)) {
    if (support_now_ns() > deadline)
      return false;
    support_sleep_ms(1);
  }
  if (!r->joined) {
    assert_int_equal(pthread_join(r->thread, NULL), 0);
    r->joined = true;
  }
  return true;
}

/* Asserts the run returns within 20 s and gives what it returned. A run
 * that never returns fails the test here rather than hanging it (the
 * runner thread is then left behind; the process fails anyway). */
static inline int support_runner_join(support_runner_t *r) {
  if (!support_runner_wait(r, 20000))
    fail_msg("isle_runtime_run did not return within 20 s");
  return atomic_load(&r->rc);
}

/* ===== The heap baseline ================================================ */

/* Live objects over every heap record (live and retired) and live bytes in
 * spans waiting for adoption: every message and actor block the runtime
 * made is counted here until it is freed back. */
typedef struct support_heap_level_s {
  uint64_t live_objects;
  uint64_t abandoned_live_bytes;
} support_heap_level_t;

static inline support_heap_level_t support_heap_level(bool verbose) {
  size_t n = 0;
  isle_heap_stats_t *all = support_all_stats(&n);
  assert_non_null(all);
  support_heap_level_t l = {0, 0};
  for (size_t i = 0; i < n; i++) {
    if (verbose && all[i].live_objects != 0)
      fprintf(stderr,
              "heap %" PRIu64 " (%s, retired %d): %" PRIu64
              " live objects, %" PRIu64 " bytes\n",
              all[i].heap_id, all[i].name, all[i].retired, all[i].live_objects,
              all[i].live_bytes);
    l.live_objects += all[i].live_objects;
  }
  free(all);
  l.abandoned_live_bytes = support_global_stats().abandoned_live_bytes;
  return l;
}

/* The level when the current test began (test's thread only). */
static support_heap_level_t support_baseline;

/* cmocka setup: records the level after collecting this thread's pending
 * remote frees. */
static inline int support_setup_baseline(void **state) {
  (void)state;
  isle_heap_collect();
  support_baseline = support_heap_level(false);
  return 0;
}

/* At the end of a test, with every runtime freed and every thread joined:
 * nothing the test made is live anywhere. A message lost by the runtime
 * (neither delivered nor freed as a dead letter), an actor block not freed
 * when its actor ended, or a worker heap that kept blocks after its thread
 * exited, shows up here. */
static inline void support_assert_heap_quiet(void) {
  isle_heap_collect();
  support_heap_level_t now = support_heap_level(false);
  if (now.live_objects != support_baseline.live_objects ||
      now.abandoned_live_bytes != support_baseline.abandoned_live_bytes) {
    fprintf(stderr,
            "baseline: %" PRIu64 " live objects, %" PRIu64
            " abandoned live bytes\n",
            support_baseline.live_objects,
            support_baseline.abandoned_live_bytes);
    (void)support_heap_level(true);
  }
  assert_int_equal(now.live_objects, support_baseline.live_objects);
  assert_int_equal(now.abandoned_live_bytes,
                   support_baseline.abandoned_live_bytes);
}

#endif /* ISLE_TESTS_ACTOR_SUPPORT_H */
