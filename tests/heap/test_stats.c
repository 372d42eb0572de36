/* isle — MIT licensed. */
/*
 * The statistics API on one thread: argument checks, the identity of the
 * calling thread's record (id, kernel tid, name), the counters of spans
 * held, refilled and returned, and the process-wide figures including
 * isle_heap_trim. Multi-threaded statistics are in test_threads.c.
 */
#define _GNU_SOURCE /* syscall under -std=c11 */

#include <sys/syscall.h> /* SYS_gettid */
#include <unistd.h>      /* syscall */

#include "isle/error.h"
#include "isle/heap.h"
#include "support.h"

static int teardown_defaults(void **state) {
  (void)state;
  isle_heap_set_purge_delay(100);
  isle_heap_set_thread_name("");
  isle_heap_collect();
  return 0;
}

/* ===== Arguments ======================================================== */

static void test_stats_null_outputs_are_rejected(void **state) {
  (void)state;
  assert_int_equal(isle_heap_stats_self(NULL), ISLE_EINVAL);
  assert_int_equal(isle_heap_stats_global(NULL), ISLE_EINVAL);
  assert_int_equal(isle_heap_set_thread_name(NULL), ISLE_EINVAL);
}

/* stats_all reports how many records exist whatever the array holds, and
 * never writes past `max`. */
static void test_stats_all_counts_records_and_respects_max(void **state) {
  (void)state;
  (void)support_self_stats(); /* make sure this thread has a record */
  size_t n = isle_heap_stats_all(NULL, 0);
  assert_true(n >= 1);
  isle_heap_stats_t two[2];
  memset(two, 0xAB, sizeof two);
  unsigned char untouched[sizeof two[1]];
  memcpy(untouched, &two[1], sizeof untouched);
  assert_int_equal(isle_heap_stats_all(two, 1), n);
  assert_true(two[0].heap_id >= 1);
  assert_memory_equal(&two[1], untouched, sizeof untouched);
  assert_int_equal(support_global_stats().heaps, n);
}

/* ===== The calling thread's record ===================================== */

static void test_stats_self_identifies_the_calling_thread(void **state) {
  (void)state;
  isle_heap_stats_t a = support_self_stats();
  isle_heap_stats_t b = support_self_stats();
  assert_true(a.heap_id >= 1);
  assert_int_equal(a.heap_id, b.heap_id);
  assert_int_equal(a.thread_id, (uint64_t)syscall(SYS_gettid));
  assert_int_equal(a.retired, 0);
  size_t n = 0;
  isle_heap_stats_t *all = support_all_stats(&n);
  assert_non_null(all);
  const isle_heap_stats_t *mine = support_find_heap(all, n, a.heap_id);
  assert_non_null(mine);
  assert_int_equal(mine->thread_id, a.thread_id);
  assert_int_equal(mine->retired, 0);
  free(all);
}

static void test_stats_thread_name_is_reported(void **state) {
  (void)state;
  assert_int_equal(isle_heap_set_thread_name("worker-0"), 0);
  isle_heap_stats_t s = support_self_stats();
  assert_string_equal(s.name, "worker-0");
  size_t n = 0;
  isle_heap_stats_t *all = support_all_stats(&n);
  assert_non_null(all);
  const isle_heap_stats_t *mine = support_find_heap(all, n, s.heap_id);
  assert_non_null(mine);
  assert_string_equal(mine->name, "worker-0");
  free(all);
  /* A rejected name leaves the old one. */
  assert_int_equal(isle_heap_set_thread_name(NULL), ISLE_EINVAL);
  assert_string_equal(support_self_stats().name, "worker-0");
}

static void test_stats_long_thread_name_is_cut_to_15_bytes(void **state) {
  (void)state;
  assert_int_equal(isle_heap_set_thread_name("a-very-long-thread-name"), 0);
  isle_heap_stats_t s = support_self_stats();
  assert_string_equal(s.name, "a-very-long-thr");
  assert_int_equal(strlen(s.name), 15);
  assert_int_equal(isle_heap_set_thread_name("short"), 0);
  assert_string_equal(support_self_stats().name, "short");
}

/* ===== Span counters ==================================================== */

/* Allocating several spans' worth of a class takes spans (from the chain
 * or the OS) and shows them held; freeing and collecting gives them back. */
static void test_stats_span_counters_follow_a_burst(void **state) {
  (void)state;
  enum { N = 2000 };
  isle_heap_collect();
  isle_heap_stats_t before = support_self_stats();
  void **p = malloc(N * sizeof *p);
  assert_non_null(p);
  for (size_t i = 0; i < N; i++) {
    p[i] = isle_malloc(1500);
    assert_non_null(p[i]);
  }
  isle_heap_stats_t during = support_self_stats();
  assert_true(during.spans_held > before.spans_held);
  assert_true(during.held_bytes >= before.held_bytes + (uint64_t)N * 1500);
  assert_true(during.peak_held_bytes >= during.held_bytes);
  assert_true(during.refills + during.os_refills >
              before.refills + before.os_refills);
  assert_true(during.held_bytes <= support_global_stats().in_use_bytes);
  for (size_t i = 0; i < N; i++)
    isle_free(p[i]);
  free(p);
  isle_heap_collect();
  isle_heap_stats_t after = support_self_stats();
  assert_true(after.spans_returned > before.spans_returned);
  assert_true(after.held_bytes < during.held_bytes);
  assert_true(after.spans_held < during.spans_held);
  assert_true(after.peak_held_bytes >= during.held_bytes);
  assert_int_equal(after.live_bytes, before.live_bytes);
}

static void test_stats_large_blocks_count_as_held(void **state) {
  (void)state;
  isle_heap_stats_t before = support_self_stats();
  void *p = isle_malloc(4 * MIB);
  assert_non_null(p);
  isle_heap_stats_t during = support_self_stats();
  assert_true(during.held_bytes >= before.held_bytes + 4 * MIB);
  assert_true(during.peak_held_bytes >= during.held_bytes);
  isle_free(p);
  isle_heap_collect();
  isle_heap_stats_t after = support_self_stats();
  assert_true(after.held_bytes + 4 * MIB <= during.held_bytes);
  assert_true(after.peak_held_bytes >= during.held_bytes);
}

/* ===== Process-wide figures ============================================= */

/* At a quiet moment the byte figures nest: what heaps hold and what the
 * chain keeps free both lie in what was mapped, and purged bytes are a
 * part of the free ones. */
static void test_stats_global_figures_nest(void **state) {
  (void)state;
  void *p = isle_malloc(3 * MIB);
  void *q = isle_malloc(1000);
  assert_non_null(p);
  assert_non_null(q);
  isle_heap_global_stats_t g = support_global_stats();
  assert_true(g.mapped_bytes >= g.in_use_bytes + g.free_bytes);
  assert_true(g.purged_bytes <= g.free_bytes);
  assert_true(g.in_use_bytes >= 3 * MIB);
  assert_true(g.heaps >= 1);
  isle_free(p);
  isle_free(q);
  isle_heap_collect();
  g = support_global_stats();
  assert_true(g.mapped_bytes >= g.in_use_bytes + g.free_bytes);
  assert_true(g.purged_bytes <= g.free_bytes);
}

/* Trim returns every free span to the OS now, whatever the delay. */
static void test_stats_trim_purges_every_free_span(void **state) {
  (void)state;
  isle_heap_set_purge_delay(60 * 1000);
  void *p = isle_malloc(4 * MIB);
  assert_non_null(p);
  memset(p, 1, 4 * MIB); /* dirty pages for trim to return */
  isle_free(p);
  isle_heap_collect();
  isle_heap_global_stats_t before = support_global_stats();
  assert_true(before.free_bytes >= 4 * MIB);
  isle_heap_trim();
  isle_heap_global_stats_t after = support_global_stats();
  assert_int_equal(after.purged_bytes, after.free_bytes);
  assert_true(after.purges > before.purges);
}

/* With no delay, a span that becomes free goes back to the OS at once. */
static void test_stats_zero_purge_delay_purges_at_once(void **state) {
  (void)state;
  isle_heap_set_purge_delay(0);
  void *p = isle_malloc(4 * MIB);
  assert_non_null(p);
  memset(p, 1, 4 * MIB);
  isle_free(p);
  isle_heap_collect();
  isle_heap_global_stats_t g = support_global_stats();
  assert_int_equal(g.purged_bytes, g.free_bytes);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stats_null_outputs_are_rejected),
      cmocka_unit_test(test_stats_all_counts_records_and_respects_max),
      cmocka_unit_test(test_stats_self_identifies_the_calling_thread),
      cmocka_unit_test_teardown(test_stats_thread_name_is_reported,
                                teardown_defaults),
      cmocka_unit_test_teardown(test_stats_long_thread_name_is_cut_to_15_bytes,
                                teardown_defaults),
      cmocka_unit_test(test_stats_span_counters_follow_a_burst),
      cmocka_unit_test(test_stats_large_blocks_count_as_held),
      cmocka_unit_test(test_stats_global_figures_nest),
      cmocka_unit_test_teardown(test_stats_trim_purges_every_free_span,
                                teardown_defaults),
      cmocka_unit_test_teardown(test_stats_zero_purge_delay_purges_at_once,
                                teardown_defaults),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
