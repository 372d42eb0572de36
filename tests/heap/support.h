/* isle — MIT licensed. */
/*
 * Helpers shared by the heap tests: reading statistics into plain values,
 * byte patterns that tell one block's contents from another's, checks that
 * worker threads can make (cmocka's assertions jump back to the test on the
 * main thread, so a worker must only record a failure and return), the
 * iteration count of stress tests and sanitizer detection.
 *
 * Bookkeeping (pointer arrays, statistics arrays) uses the C library's
 * malloc, never isle_malloc, so that it does not disturb the counters the
 * tests check. Everything here is static inline: each test file includes it
 * once and uses what it needs.
 */
#ifndef ISLE_TESTS_HEAP_SUPPORT_H
#define ISLE_TESTS_HEAP_SUPPORT_H

#include <errno.h>     /* errno */
#include <inttypes.h>  /* PRIu64 */
#include <setjmp.h>    /* cmocka.h needs jmp_buf */
#include <stdarg.h>    /* cmocka.h needs va_list */
#include <stdatomic.h> /* worker failure counter */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h> /* malloc, getenv, strtoull */
#include <string.h>

#include <cmocka.h>

#include "isle/heap.h"

/* ===== Sanitizers ======================================================= */

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SUPPORT_UNDER_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define SUPPORT_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(SUPPORT_UNDER_TSAN)
#define SUPPORT_UNDER_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(SUPPORT_UNDER_ASAN)
#define SUPPORT_UNDER_ASAN 1
#endif

/* ===== Iteration counts ================================================= */

/* The iteration count of a stress test: ISLE_TEST_ITERS when set to a
 * positive number, `fallback` otherwise. The fallbacks are chosen so that
 * the sanitizer builds finish in seconds on a two-core machine; raise the
 * variable for a longer soak. */
static inline size_t support_iters(size_t fallback) {
  const char *s = getenv("ISLE_TEST_ITERS");
  if (s == NULL || *s == '\0')
    return fallback;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || *end != '\0' || v == 0)
    return fallback;
  return (size_t)v;
}

/* ===== Checks from worker threads ======================================= */

/* Failures seen by worker threads since the last support_assert_workers_ok. */
static atomic_uint support_worker_failures;

static inline bool support_check(bool ok, const char *expr, const char *file,
                                 int line) {
  if (!ok) {
    fprintf(stderr, "%s:%d: worker check failed: %s\n", file, line, expr);
    atomic_fetch_add(&support_worker_failures, 1u);
  }
  return ok;
}

/* A check a worker thread may make: records and prints a failure, and
 * yields whether `cond` held so the worker can bail out. */
#define WORKER_CHECK(cond) support_check((cond), #cond, __FILE__, __LINE__)

/* On the test's thread, after joining the workers: fails the test when any
 * worker check failed, and resets the count for the next test. */
static inline void support_assert_workers_ok(void) {
  unsigned n = atomic_exchange(&support_worker_failures, 0u);
  assert_int_equal(n, 0);
}

/* ===== Statistics ======================================================= */

static inline isle_heap_stats_t support_self_stats(void) {
  isle_heap_stats_t s;
  memset(&s, 0, sizeof s);
  assert_int_equal(isle_heap_stats_self(&s), 0);
  return s;
}

static inline isle_heap_global_stats_t support_global_stats(void) {
  isle_heap_global_stats_t g;
  memset(&g, 0, sizeof g);
  assert_int_equal(isle_heap_stats_global(&g), 0);
  return g;
}

/* The counters of every heap record, live and retired, in a malloc'd array
 * the caller frees with free(); *count receives its length. Safe from a
 * worker thread (it never asserts). */
static inline isle_heap_stats_t *support_all_stats(size_t *count) {
  size_t cap = isle_heap_stats_all(NULL, 0) + 8;
  for (;;) {
    isle_heap_stats_t *all = calloc(cap, sizeof *all);
    if (all == NULL) {
      *count = 0;
      return NULL;
    }
    size_t n = isle_heap_stats_all(all, cap);
    if (n <= cap) {
      *count = n;
      return all;
    }
    free(all);
    cap = n + 8;
  }
}

/* Finds the record with `heap_id` in `all`; NULL when absent. */
static inline const isle_heap_stats_t *
support_find_heap(const isle_heap_stats_t *all, size_t n, uint64_t heap_id) {
  for (size_t i = 0; i < n; i++)
    if (all[i].heap_id == heap_id)
      return &all[i];
  return NULL;
}

/* Live bytes over every heap record plus those in abandoned spans: 0 once
 * every block has been freed and every free has reached its span. */
static inline uint64_t support_live_bytes_everywhere(void) {
  size_t n = 0;
  isle_heap_stats_t *all = support_all_stats(&n);
  assert_non_null(all);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    if (all[i].live_bytes != 0)
      fprintf(stderr,
              "heap %" PRIu64 " (%s, retired %d) has %" PRIu64
              " live bytes in %" PRIu64 " objects\n",
              all[i].heap_id, all[i].name, all[i].retired, all[i].live_bytes,
              all[i].live_objects);
    sum += all[i].live_bytes;
  }
  free(all);
  isle_heap_global_stats_t g = support_global_stats();
  if (g.abandoned_live_bytes != 0)
    fprintf(stderr, "abandoned spans hold %" PRIu64 " live bytes\n",
            g.abandoned_live_bytes);
  return sum + g.abandoned_live_bytes;
}

/* The identity the statistics give a heap: live_bytes and live_objects are
 * the sums over the classes plus the large blocks, and each class's bytes
 * are its objects times its block size. Holds for a record nobody is
 * changing (the caller's own, or one whose owner is parked). Returns
 * whether it holds, printing the first mismatch, so workers may use it. */
static inline bool support_stats_consistent(const isle_heap_stats_t *s) {
  uint64_t bytes = s->large_live_bytes, objects = s->large_live_objects;
  for (unsigned c = 0; c < ISLE_HEAP_CLASS_COUNT; c++) {
    const isle_heap_class_stats_t *k = &s->classes[c];
    if (k->block_size != isle_heap_class_size(c) ||
        k->live_bytes != k->live_objects * k->block_size) {
      fprintf(stderr,
              "heap %" PRIu64 " class %u: block_size %zu, %" PRIu64
              " objects, %" PRIu64 " bytes\n",
              s->heap_id, c, k->block_size, k->live_objects, k->live_bytes);
      return false;
    }
    bytes += k->live_bytes;
    objects += k->live_objects;
  }
  if (bytes != s->live_bytes || objects != s->live_objects) {
    fprintf(stderr,
            "heap %" PRIu64 ": live %" PRIu64 " bytes / %" PRIu64
            " objects, classes + large give %" PRIu64 " / %" PRIu64 "\n",
            s->heap_id, s->live_bytes, s->live_objects, bytes, objects);
    return false;
  }
  return true;
}

/* ===== Byte patterns ==================================================== */

/* Byte `i` of the pattern `key` stands for: different keys give different
 * sequences, so a block overwritten by another block's pattern (overlap),
 * handed out twice, or recycled while in use, is caught byte by byte. */
static inline uint8_t support_pattern_byte(uint64_t key, size_t i) {
  uint64_t x = key * UINT64_C(0x9E3779B97F4A7C15) + (uint64_t)(i >> 3);
  x ^= x >> 29;
  x *= UINT64_C(0xBF58476D1CE4E5B9);
  x ^= x >> 32;
  return (uint8_t)(x >> ((i & 7u) * 8u));
}

static inline void support_fill(void *p, size_t n, uint64_t key) {
  uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    b[i] = support_pattern_byte(key, i);
}

/* The index of the first byte that differs from the pattern, or `n`. */
static inline size_t support_mismatch(const void *p, size_t n, uint64_t key) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != support_pattern_byte(key, i))
      return i;
  return n;
}

/* Whether all `n` bytes at `p` are zero. */
static inline bool support_all_zero(const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0)
      return false;
  return true;
}

/* ===== Random numbers =================================================== */

/* xorshift64*: deterministic per seed, so a failing run can be repeated. */
static inline uint64_t support_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * UINT64_C(0x2545F4914F6CDD1D);
}

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

/* A cmocka teardown for tests that set a heap limit: removes it and gives
 * back what the test left cached, so later tests start unlimited. */
static inline int support_teardown_limit(void **state) {
  (void)state;
  isle_heap_set_limit(0);
  isle_heap_collect();
  return 0;
}

#endif /* ISLE_TESTS_HEAP_SUPPORT_H */
