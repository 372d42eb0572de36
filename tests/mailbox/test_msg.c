/* isle — MIT licensed. */
/*
 * Messages on one thread: isle_msg_new gives a block with the type and
 * payload size asked for and a payload 16-byte aligned right after the
 * 32-byte header; size 0 is a valid message; a size above
 * ISLE_MSG_MAX_SIZE is refused with EINVAL and the heap limit with ENOMEM,
 * both returning NULL and leaving nothing allocated; isle_msg_free(NULL)
 * does nothing, and every message freed brings the heap back to where it
 * was. Messages crossing threads are tested with the mailbox
 * (test_mailbox.c).
 */
#define _GNU_SOURCE /* pthread under -std=c11 */

#include <errno.h>   /* EINVAL, ENOMEM */
#include <pthread.h> /* a message freed by another thread */

#include "../heap/support.h"
#include "isle/heap.h"
#include "isle/mailbox.h"

/* ===== Helpers ========================================================== */

/* Live objects in this thread's heap. */
static uint64_t live_objects_self(void) {
  return support_self_stats().live_objects;
}

/* ===== Layout =========================================================== */

static void test_msg_new_records_type_and_size(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_msg_t *m = isle_msg_new(42, 100);
  assert_non_null(m);
  assert_int_equal(isle_msg_type(m), 42);
  assert_int_equal(isle_msg_size(m), 100);
  assert_int_equal(live_objects_self(), before + 1);
  isle_msg_free(m);
  assert_int_equal(live_objects_self(), before);

  m = isle_msg_new(UINT32_MAX, 1);
  assert_non_null(m);
  assert_int_equal(isle_msg_type(m), UINT32_MAX);
  assert_int_equal(isle_msg_size(m), 1);
  isle_msg_free(m);
}

/* The payload starts ISLE_MSG_HEADER_SIZE bytes in, on a 16-byte boundary,
 * for small and large sizes, and holds every byte it was given (the
 * header and payload are one block, with room for both). */
static void
test_msg_payload_is_aligned_to_16_and_holds_its_bytes(void **state) {
  (void)state;
  static const size_t sizes[] = {1,    7,     15,    16,     17,   31,
                                 32,   33,    100,   1000,   4064, 4096,
                                 8192, 32736, 32768, 100000, MIB};
  assert_int_equal(ISLE_MSG_HEADER_SIZE, 32);
  isle_msg_t *m[sizeof sizes / sizeof sizes[0]];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    m[i] = isle_msg_new((uint32_t)i, sizes[i]);
    assert_non_null(m[i]);
    unsigned char *data = isle_msg_data(m[i]);
    assert_ptr_equal(data, (unsigned char *)m[i] + ISLE_MSG_HEADER_SIZE);
    assert_int_equal((uintptr_t)data % 16, 0);
    assert_true(isle_usable_size(m[i]) >= ISLE_MSG_HEADER_SIZE + sizes[i]);
    support_fill(data, sizes[i], i);
  }
  /* Filled all at once, checked after: no payload overlaps another. */
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    assert_int_equal(isle_msg_type(m[i]), i);
    assert_int_equal(isle_msg_size(m[i]), sizes[i]);
    assert_int_equal(support_mismatch(isle_msg_data(m[i]), sizes[i], i),
                     sizes[i]);
    isle_msg_free(m[i]);
  }
}

/* A message without payload is a real, distinct block. */
static void test_msg_new_accepts_size_zero(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_msg_t *a = isle_msg_new(1, 0);
  isle_msg_t *b = isle_msg_new(2, 0);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  assert_int_equal(isle_msg_size(a), 0);
  assert_int_equal(isle_msg_type(b), 2);
  assert_int_equal((uintptr_t)isle_msg_data(a) % 16, 0);
  assert_int_equal(live_objects_self(), before + 2);
  isle_msg_free(a);
  isle_msg_free(b);
  assert_int_equal(live_objects_self(), before);
}

/* ===== Errors =========================================================== */

/* Sizes the 32-bit size field cannot hold are refused before anything is
 * allocated. */
static void test_msg_new_fails_with_einval_above_max_size(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  static const size_t sizes[] = {ISLE_MSG_MAX_SIZE + 1, (size_t)UINT32_MAX,
                                 (size_t)UINT32_MAX + 1, SIZE_MAX - 31,
                                 SIZE_MAX};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    errno = 0;
    assert_null(isle_msg_new(7, sizes[i]));
    assert_int_equal(errno, EINVAL);
  }
  assert_int_equal(live_objects_self(), before);
}

/* At the heap limit isle_msg_new returns NULL with ENOMEM (also for the
 * largest valid size, which is not an EINVAL), and works again once the
 * limit is lifted. */
static void test_msg_new_fails_with_enomem_at_the_heap_limit(void **state) {
  (void)state;
  isle_heap_collect();
  const uint64_t before = live_objects_self();
  /* Room for small messages from spans already held, none for a new span
   * of 4 MiB. */
  size_t limit = (size_t)support_global_stats().in_use_bytes + 256 * KIB;
  isle_heap_set_limit(limit);

  errno = 0;
  assert_null(isle_msg_new(1, 4 * MIB));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(isle_msg_new(1, ISLE_MSG_MAX_SIZE));
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(live_objects_self(), before);
  assert_true(support_global_stats().in_use_bytes <= limit);

  isle_heap_set_limit(0);
  isle_msg_t *m = isle_msg_new(1, 4 * MIB);
  assert_non_null(m);
  assert_int_equal(isle_msg_size(m), 4 * MIB);
  isle_msg_free(m);
  assert_int_equal(live_objects_self(), before);
}

static void test_msg_free_ignores_null(void **state) {
  (void)state;
  const uint64_t before = live_objects_self();
  isle_msg_free(NULL);
  assert_int_equal(live_objects_self(), before);
}

/* ===== Across threads =================================================== */

static void *free_on_thread(void *arg) {
  isle_msg_t *m = arg;
  WORKER_CHECK(isle_msg_type(m) == 9);
  WORKER_CHECK(support_mismatch(isle_msg_data(m), 64, 9) == 64);
  isle_msg_free(m);
  isle_heap_collect(); /* deliver the remote free to this thread's heap */
  return NULL;
}

/* A message freed by another thread goes back to the heap it came from:
 * once that thread has delivered the free and this one taken it in, the
 * count is back where it was. */
static void test_msg_freed_by_another_thread_returns_to_its_heap(void **state) {
  (void)state;
  isle_heap_collect();
  const uint64_t before = live_objects_self();
  isle_msg_t *m = isle_msg_new(9, 64);
  assert_non_null(m);
  support_fill(isle_msg_data(m), 64, 9);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, free_on_thread, m), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  support_assert_workers_ok();
  isle_heap_collect();
  assert_int_equal(live_objects_self(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_msg_new_records_type_and_size),
      cmocka_unit_test(test_msg_payload_is_aligned_to_16_and_holds_its_bytes),
      cmocka_unit_test(test_msg_new_accepts_size_zero),
      cmocka_unit_test(test_msg_new_fails_with_einval_above_max_size),
      cmocka_unit_test_teardown(
          test_msg_new_fails_with_enomem_at_the_heap_limit,
          support_teardown_limit),
      cmocka_unit_test(test_msg_free_ignores_null),
      cmocka_unit_test(test_msg_freed_by_another_thread_returns_to_its_heap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
