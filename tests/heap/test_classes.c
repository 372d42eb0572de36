/* isle — MIT licensed. */
/*
 * Size classes: the public table (isle_heap_class_size, isle_heap_size_class)
 * and, white-box, the private tables of heap/classes.c (class sizes, pages
 * per span, the lookup table for sizes up to 1 KiB) checked against each
 * other and against isle__size_class. Single-threaded, allocates nothing.
 */
#include <limits.h> /* UINT_MAX */

#include "heap/internal.h"
#include "support.h"

/* The smallest class whose blocks hold `size` bytes, by linear search of
 * the public table: the reference the mapping functions must agree with. */
static int smallest_fitting_class(size_t size) {
  for (unsigned c = 0; c < ISLE_HEAP_CLASS_COUNT; c++)
    if (isle_heap_class_size(c) >= size)
      return (int)c;
  return -1;
}

/* ===== The public table ================================================= */

static void test_classes_count_and_bounds_match_the_header(void **state) {
  (void)state;
  assert_int_equal(ISLE_HEAP_CLASS_COUNT, 72);
  assert_int_equal(isle_heap_class_size(0), 16);
  assert_int_equal(isle_heap_class_size(ISLE_HEAP_CLASS_COUNT - 1),
                   ISLE_HEAP_SMALL_MAX);
  assert_int_equal(ISLE_HEAP_SMALL_MAX, 32768);
}

static void test_classes_sizes_strictly_increase_in_steps_of_16(void **state) {
  (void)state;
  for (unsigned c = 0; c < ISLE_HEAP_CLASS_COUNT; c++) {
    size_t size = isle_heap_class_size(c);
    assert_true(size > 0);
    assert_int_equal(size % 16, 0);
    if (c > 0)
      assert_true(size > isle_heap_class_size(c - 1));
  }
}

/* 16..128 by 16, then eight classes per doubling, the eighth of which is
 * the doubling itself. */
static void test_classes_sizes_follow_eight_steps_per_doubling(void **state) {
  (void)state;
  for (unsigned c = 0; c < 8; c++)
    assert_int_equal(isle_heap_class_size(c), 16 * (c + 1));
  for (unsigned c = 8; c < ISLE_HEAP_CLASS_COUNT; c++) {
    size_t base = (size_t)128 << ((c - 8) / 8); /* start of this doubling */
    size_t step = base / 8;
    assert_int_equal(isle_heap_class_size(c), base + step * ((c - 8) % 8 + 1));
  }
}

static void test_classes_waste_is_at_most_one_eighth_above_128(void **state) {
  (void)state;
  for (size_t size = 129; size <= ISLE_HEAP_SMALL_MAX; size++) {
    int c = isle_heap_size_class(size);
    assert_true(c >= 0);
    size_t block = isle_heap_class_size((unsigned)c);
    assert_true(block >= size);
    /* (block - size) / block <= 1/8, in integers. */
    if ((block - size) * 8 > block) {
      fprintf(stderr, "size %zu in class %d (%zu bytes) wastes %zu bytes\n",
              size, c, block, block - size);
      fail();
    }
  }
}

static void
test_classes_size_class_is_the_smallest_fitting_class(void **state) {
  (void)state;
  for (size_t size = 1; size <= ISLE_HEAP_SMALL_MAX; size++) {
    int want = smallest_fitting_class(size);
    int got = isle_heap_size_class(size);
    if (got != want) {
      fprintf(stderr, "size %zu: class %d, expected %d\n", size, got, want);
      fail();
    }
  }
}

static void test_classes_size_class_edges(void **state) {
  (void)state;
  assert_int_equal(isle_heap_size_class(0), 0);
  assert_int_equal(isle_heap_size_class(1), 0);
  assert_int_equal(isle_heap_size_class(16), 0);
  assert_int_equal(isle_heap_size_class(17), 1);
  assert_int_equal(isle_heap_size_class(128), 7);
  assert_int_equal(isle_heap_size_class(129), 8);
  assert_int_equal(isle_heap_size_class(ISLE_HEAP_SMALL_MAX),
                   ISLE_HEAP_CLASS_COUNT - 1);
  assert_int_equal(isle_heap_size_class(ISLE_HEAP_SMALL_MAX + 1), -1);
  assert_int_equal(isle_heap_size_class((size_t)1 << 40), -1);
  assert_int_equal(isle_heap_size_class(SIZE_MAX), -1);
  assert_int_equal(isle_heap_size_class(SIZE_MAX - 15), -1);
}

/* Every class size maps back to its own class, and one byte more to the
 * next one. */
static void test_classes_class_sizes_map_to_themselves(void **state) {
  (void)state;
  for (unsigned c = 0; c < ISLE_HEAP_CLASS_COUNT; c++) {
    size_t size = isle_heap_class_size(c);
    assert_int_equal(isle_heap_size_class(size), (int)c);
    int next = c + 1 < ISLE_HEAP_CLASS_COUNT ? (int)c + 1 : -1;
    assert_int_equal(isle_heap_size_class(size + 1), next);
  }
}

static void test_classes_class_size_is_zero_out_of_range(void **state) {
  (void)state;
  assert_int_equal(isle_heap_class_size(ISLE_HEAP_CLASS_COUNT), 0);
  assert_int_equal(isle_heap_class_size(ISLE_HEAP_CLASS_COUNT + 1), 0);
  assert_int_equal(isle_heap_class_size(1000), 0);
  assert_int_equal(isle_heap_class_size(UINT_MAX), 0);
  assert_int_equal(isle_heap_class_size((unsigned)-1), 0);
}

/* The statistics name each class by the same block size as the table. */
static void test_classes_stats_report_the_table_block_sizes(void **state) {
  (void)state;
  isle_heap_stats_t s = support_self_stats();
  for (unsigned c = 0; c < ISLE_HEAP_CLASS_COUNT; c++)
    assert_int_equal(s.classes[c].block_size, isle_heap_class_size(c));
}

/* ===== White box: heap/classes.c ======================================== */

static void test_classes_private_table_matches_the_public_one(void **state) {
  (void)state;
  for (unsigned c = 0; c < ISLE__CLASSES; c++)
    assert_int_equal(isle__class_size[c], isle_heap_class_size(c));
}

/* A span of a class: at least 8 blocks, at least 64 KiB, and the tail it
 * cannot use is smaller than one block and at most 1/8 of the span. */
static void test_classes_span_pages_fit_at_least_eight_blocks(void **state) {
  (void)state;
  for (unsigned c = 0; c < ISLE__CLASSES; c++) {
    size_t bytes = (size_t)isle__class_pages[c] * ISLE__PAGE_SIZE;
    size_t block = isle__class_size[c];
    assert_true(bytes >= 64 * 1024);
    assert_true(bytes / block >= 8);
    size_t tail = bytes % block;
    assert_true(tail < block);
    assert_true(tail * 8 <= bytes);
    /* A span's block count must fit the descriptor's 16-bit fields. */
    assert_true(bytes / block <= UINT16_MAX);
  }
}

static void
test_classes_lookup_table_gives_the_smallest_fitting_class(void **state) {
  (void)state;
  size_t entries = sizeof isle__small_class / sizeof isle__small_class[0];
  assert_int_equal(entries, 1024 / 16 + 1);
  for (size_t i = 0; i < entries; i++) {
    /* Entry i serves sizes 16*(i-1)+1 .. 16*i; entry 0 serves size 0. */
    int want = i == 0 ? 0 : smallest_fitting_class(16 * i);
    assert_int_equal(isle__small_class[i], want);
  }
}

static void
test_classes_internal_size_class_agrees_with_the_public_one(void **state) {
  (void)state;
  for (size_t size = 1; size <= ISLE__SMALL_MAX; size++) {
    if ((int)isle__size_class(size) != isle_heap_size_class(size)) {
      fprintf(stderr, "size %zu: isle__size_class %u, public %d\n", size,
              isle__size_class(size), isle_heap_size_class(size));
      fail();
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classes_count_and_bounds_match_the_header),
      cmocka_unit_test(test_classes_sizes_strictly_increase_in_steps_of_16),
      cmocka_unit_test(test_classes_sizes_follow_eight_steps_per_doubling),
      cmocka_unit_test(test_classes_waste_is_at_most_one_eighth_above_128),
      cmocka_unit_test(test_classes_size_class_is_the_smallest_fitting_class),
      cmocka_unit_test(test_classes_size_class_edges),
      cmocka_unit_test(test_classes_class_sizes_map_to_themselves),
      cmocka_unit_test(test_classes_class_size_is_zero_out_of_range),
      cmocka_unit_test(test_classes_stats_report_the_table_block_sizes),
      cmocka_unit_test(test_classes_private_table_matches_the_public_one),
      cmocka_unit_test(test_classes_span_pages_fit_at_least_eight_blocks),
      cmocka_unit_test(
          test_classes_lookup_table_gives_the_smallest_fitting_class),
      cmocka_unit_test(
          test_classes_internal_size_class_agrees_with_the_public_one),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
