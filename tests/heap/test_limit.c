/* isle — MIT licensed. */
/*
 * The heap limit (isle_heap_set_limit): at the cap, allocation returns NULL
 * with errno ENOMEM, never crashes and never damages live blocks; the
 * global in_use_bytes never passes the cap; freeing (locally, or from
 * another thread followed by isle_heap_collect in the owner) makes
 * allocation work again. Each test sets its cap relative to what the
 * process already holds and removes it in its teardown.
 */
#define _GNU_SOURCE /* pthread under -std=c11 */

#include <errno.h>   /* ENOMEM */
#include <pthread.h> /* threads that free the owner's blocks */

#include "isle/heap.h"
#include "support.h"

/* ===== Helpers ========================================================== */

/* Sets the cap `headroom` bytes above what heaps hold now (after giving
 * this thread's empty spans back), and returns it. */
static size_t set_limit_above_use(size_t headroom) {
  isle_heap_collect();
  size_t limit = (size_t)support_global_stats().in_use_bytes + headroom;
  isle_heap_set_limit(limit);
  assert_int_equal(isle_heap_limit(), limit);
  return limit;
}

typedef struct blocks_s {
  unsigned char **p;
  size_t count;
  size_t size;
} blocks_t;

/* Allocates blocks of `size` until the heap refuses, checking that the
 * refusal is NULL with ENOMEM, that it comes before the cap could possibly
 * have been honoured twice over, and that in_use_bytes stays within the
 * cap. Each block carries a pattern so later damage shows. */
static blocks_t fill_to_limit(size_t size, size_t limit) {
  blocks_t b = {NULL, 0, size};
  size_t bound = 2 * (limit / size) + 64;
  b.p = calloc(bound, sizeof *b.p);
  assert_non_null(b.p);
  for (;;) {
    errno = 0;
    unsigned char *p = isle_malloc(size);
    if (p == NULL) {
      assert_int_equal(errno, ENOMEM);
      break;
    }
    support_fill(p, size, b.count);
    b.p[b.count++] = p;
    if (b.count == bound) {
      fprintf(stderr, "%zu blocks of %zu bytes and no refusal at cap %zu\n",
              b.count, size, limit);
      fail();
    }
  }
  assert_true(support_global_stats().in_use_bytes <= limit);
  return b;
}

/* Checks every block still holds its pattern, then frees them all. */
static void verify_and_free(blocks_t *b) {
  for (size_t i = 0; i < b->count; i++) {
    if (b->p[i] == NULL)
      continue;
    assert_int_equal(support_mismatch(b->p[i], b->size, i), b->size);
    isle_free(b->p[i]);
  }
  free(b->p);
  b->p = NULL;
  b->count = 0;
}

/* Allocation of a fresh span (a class this file's tests leave alone, and a
 * large block) works: the cap has room again. */
static void assert_new_spans_available(void) {
  void *small = isle_malloc(8192);
  void *large = isle_malloc(MIB);
  assert_non_null(small);
  assert_non_null(large);
  isle_free(small);
  isle_free(large);
}

/* ===== The cap itself =================================================== */

static void test_limit_is_reported_once_set(void **state) {
  (void)state;
  isle_heap_set_limit(123456789);
  assert_int_equal(isle_heap_limit(), 123456789);
  assert_int_equal(support_global_stats().limit_bytes, 123456789);
  isle_heap_set_limit(0);
  assert_int_equal(isle_heap_limit(), 0);
  assert_int_equal(support_global_stats().limit_bytes, 0);
}

/* ===== Small blocks ===================================================== */

static void
test_limit_small_allocation_fails_with_enomem_at_the_limit(void **state) {
  (void)state;
  size_t limit = set_limit_above_use(8 * MIB);
  blocks_t b = fill_to_limit(KIB, limit);
  /* The cap was not refused early: most of the headroom became blocks. */
  assert_true(b.count * KIB >= 4 * MIB);
  /* The other allocators refuse too. */
  errno = 0;
  assert_null(isle_calloc(1, KIB));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(isle_malloc(MIB));
  assert_int_equal(errno, ENOMEM);
  verify_and_free(&b);
  /* The spans are still held, but their blocks are free again. */
  void *again = isle_malloc(KIB);
  assert_non_null(again);
  isle_free(again);
  /* Giving the empty spans back makes room for spans of other kinds. */
  isle_heap_collect();
  assert_true(support_global_stats().in_use_bytes + 4 * MIB <= limit);
  assert_new_spans_available();
  assert_true(support_global_stats().in_use_bytes <= limit);
}

/* Lowering the cap below current use is allowed: what needs a new span
 * fails until use falls, and a failed realloc keeps its block. */
static void test_limit_below_current_use_refuses_new_spans(void **state) {
  (void)state;
  unsigned char *keep = isle_malloc(100);
  assert_non_null(keep);
  support_fill(keep, 100, 9);
  isle_heap_collect();
  isle_heap_set_limit(1);
  errno = 0;
  assert_null(isle_malloc(MIB));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(isle_calloc(1, 100000));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(isle_aligned_alloc(4096, 100000));
  assert_int_equal(errno, ENOMEM);
  /* 20 KiB blocks: a class no test in this file allocates, so this thread
   * holds no span of it and needs a new one. */
  errno = 0;
  assert_null(isle_malloc(20000));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(isle_realloc(keep, MIB));
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(support_mismatch(keep, 100, 9), 100);
  isle_heap_set_limit(0);
  assert_new_spans_available();
  isle_free(keep);
}

/* ===== Large blocks ===================================================== */

static void
test_limit_large_allocation_fails_with_enomem_at_the_limit(void **state) {
  (void)state;
  size_t limit = set_limit_above_use(8 * MIB);
  blocks_t b = fill_to_limit(MIB, limit);
  assert_true(b.count >= 1);
  assert_true(b.count <= 8);
  /* A huge block is refused outright. */
  errno = 0;
  assert_null(isle_malloc(32 * MIB));
  assert_int_equal(errno, ENOMEM);
  /* Freeing one block makes room for one block. */
  assert_int_equal(support_mismatch(b.p[0], MIB, 0), MIB);
  isle_free(b.p[0]);
  b.p[0] = NULL;
  isle_heap_collect();
  void *again = isle_malloc(MIB);
  assert_non_null(again);
  assert_true(support_global_stats().in_use_bytes <= limit);
  isle_free(again);
  verify_and_free(&b);
}

static void
test_limit_realloc_at_the_limit_leaves_the_block_untouched(void **state) {
  (void)state;
  size_t limit = set_limit_above_use(4 * MIB);
  blocks_t b = fill_to_limit(KIB, limit);
  assert_true(b.count > 0);
  unsigned char *p = b.p[b.count - 1];
  size_t usable = isle_usable_size(p);
  errno = 0;
  assert_null(isle_realloc(p, 2 * MIB));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(isle_realloc(p, 64 * KIB));
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(isle_usable_size(p), usable);
  verify_and_free(&b); /* checks p's pattern too */
}

/* ===== Other threads ==================================================== */

typedef struct freer_s {
  blocks_t *blocks;
  bool collect; /* call isle_heap_collect before exiting */
} freer_t;

static void *free_blocks_thread(void *arg) {
  freer_t *f = arg;
  blocks_t *b = f->blocks;
  for (size_t i = 0; i < b->count; i++) {
    WORKER_CHECK(support_mismatch(b->p[i], b->size, i) == b->size);
    isle_free(b->p[i]);
    b->p[i] = NULL;
  }
  if (f->collect)
    isle_heap_collect();
  return NULL;
}

/* Fills to the cap, lets another thread free every block (collecting, or
 * just exiting, which must deliver its frees too), then checks that the
 * owner's isle_heap_collect brings use down and allocation back. */
static void check_recovery_after_remote_frees(bool freer_collects) {
  size_t limit = set_limit_above_use(8 * MIB);
  blocks_t b = fill_to_limit(KIB, limit);
  freer_t f = {&b, freer_collects};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, free_blocks_thread, &f), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  support_assert_workers_ok();
  isle_heap_collect();
  assert_true(support_global_stats().in_use_bytes + 4 * MIB <= limit);
  assert_new_spans_available();
  free(b.p);
}

static void
test_limit_allocation_recovers_when_another_thread_frees_and_collects(
    void **state) {
  (void)state;
  check_recovery_after_remote_frees(true);
}

static void test_limit_allocation_recovers_when_another_thread_frees_and_exits(
    void **state) {
  (void)state;
  check_recovery_after_remote_frees(false);
}

/* An owner that has run out of blocks takes in the blocks others freed for
 * it before asking for a new span, so at the cap it can still allocate. */
static void
test_limit_owner_takes_in_remote_frees_when_it_runs_out(void **state) {
  (void)state;
  size_t limit = set_limit_above_use(4 * MIB);
  blocks_t b = fill_to_limit(KIB, limit);
  size_t n = b.count;
  freer_t f = {&b, true};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, free_blocks_thread, &f), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  support_assert_workers_ok();
  /* No collect here: the allocation itself must find the returned blocks. */
  for (size_t i = 0; i < n; i++) {
    b.p[i] = isle_malloc(KIB);
    if (b.p[i] == NULL) {
      fprintf(stderr, "block %zu of %zu refused after remote frees\n", i, n);
      fail();
    }
    support_fill(b.p[i], KIB, i);
  }
  assert_true(support_global_stats().in_use_bytes <= limit);
  verify_and_free(&b);
}

typedef struct prober_s {
  void *large, *small;
  int large_errno, small_errno;
} prober_t;

static void *probe_thread(void *arg) {
  prober_t *p = arg;
  errno = 0;
  p->large = isle_malloc(MIB);
  p->large_errno = errno;
  errno = 0;
  p->small = isle_malloc(KIB);
  p->small_errno = errno;
  isle_free(p->large);
  isle_free(p->small);
  return NULL;
}

/* The cap is for all threads together: once one thread has filled it, a
 * new thread (whose heap holds nothing yet) is refused as well. */
static void test_limit_is_shared_by_all_threads(void **state) {
  (void)state;
  size_t limit = set_limit_above_use(4 * MIB);
  blocks_t b = fill_to_limit(KIB, limit);
  prober_t p;
  memset(&p, 0, sizeof p);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, probe_thread, &p), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_null(p.large);
  assert_int_equal(p.large_errno, ENOMEM);
  assert_null(p.small);
  assert_int_equal(p.small_errno, ENOMEM);
  assert_true(support_global_stats().in_use_bytes <= limit);
  verify_and_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_limit_is_reported_once_set,
                                support_teardown_limit),
      cmocka_unit_test_teardown(
          test_limit_small_allocation_fails_with_enomem_at_the_limit,
          support_teardown_limit),
      cmocka_unit_test_teardown(test_limit_below_current_use_refuses_new_spans,
                                support_teardown_limit),
      cmocka_unit_test_teardown(
          test_limit_large_allocation_fails_with_enomem_at_the_limit,
          support_teardown_limit),
      cmocka_unit_test_teardown(
          test_limit_realloc_at_the_limit_leaves_the_block_untouched,
          support_teardown_limit),
      cmocka_unit_test_teardown(
          test_limit_allocation_recovers_when_another_thread_frees_and_collects,
          support_teardown_limit),
      cmocka_unit_test_teardown(
          test_limit_allocation_recovers_when_another_thread_frees_and_exits,
          support_teardown_limit),
      cmocka_unit_test_teardown(
          test_limit_owner_takes_in_remote_frees_when_it_runs_out,
          support_teardown_limit),
      cmocka_unit_test_teardown(test_limit_is_shared_by_all_threads,
                                support_teardown_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
