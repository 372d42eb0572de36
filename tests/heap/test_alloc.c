/* isle — MIT licensed. */
/*
 * Allocation on one thread: isle_malloc, isle_calloc, isle_realloc,
 * isle_aligned_alloc, isle_free and isle_usable_size over every small size,
 * a sweep past the small limit and large sizes up to 64 MiB; the error
 * paths (overflow, bad alignment, NULL); and the per-class counters the
 * statistics keep for the calling thread. Every test frees what it made.
 */
#include <errno.h> /* ENOMEM, EINVAL */

#include "isle/heap.h"
#include "support.h"

/* ===== Helpers ========================================================== */

typedef struct held_s {
  unsigned char *p;
  size_t size;   /* asked for */
  size_t usable; /* isle_usable_size */
} held_t;

static int held_by_address(const void *a, const void *b) {
  const held_t *x = a, *y = b;
  return x->p < y->p ? -1 : x->p > y->p;
}

/* Allocates a block of each size, all live at once, and checks each one:
 * non-NULL, 16-byte aligned, usable size at least the size, writable over
 * its whole usable size. Then checks that no block overwrote another (each
 * still holds its own pattern) and that no two blocks overlap, and frees
 * them. */
static void check_live_blocks(const size_t *sizes, size_t n) {
  held_t *held = calloc(n, sizeof *held);
  assert_non_null(held);
  for (size_t i = 0; i < n; i++) {
    unsigned char *p = isle_malloc(sizes[i]);
    if (p == NULL) {
      fprintf(stderr, "isle_malloc(%zu) failed\n", sizes[i]);
      fail();
    }
    assert_int_equal((uintptr_t)p % 16, 0);
    size_t usable = isle_usable_size(p);
    assert_true(usable >= sizes[i]);
    memset(p, 0xEE, usable);
    support_fill(p, usable, i);
    held[i] = (held_t){p, sizes[i], usable};
  }
  for (size_t i = 0; i < n; i++) {
    size_t at = support_mismatch(held[i].p, held[i].usable, i);
    if (at != held[i].usable) {
      fprintf(stderr, "block %p of %zu bytes was overwritten at byte %zu\n",
              (void *)held[i].p, held[i].size, at);
      fail();
    }
  }
  qsort(held, n, sizeof *held, held_by_address);
  for (size_t i = 0; i + 1 < n; i++) {
    if (held[i].p + held[i].usable > held[i + 1].p) {
      fprintf(stderr, "blocks %p (+%zu) and %p overlap\n", (void *)held[i].p,
              held[i].usable, (void *)held[i + 1].p);
      fail();
    }
  }
  for (size_t i = 0; i < n; i++)
    isle_free(held[i].p);
  free(held);
}

/* The calling thread's live objects, small and large. */
static uint64_t live_objects(void) {
  return support_self_stats().live_objects;
}

/* ===== malloc and free ================================================== */

static void test_alloc_every_size_up_to_4096_is_aligned_writable_and_disjoint(
    void **state) {
  (void)state;
  size_t n = 4097;
  size_t *sizes = malloc(n * sizeof *sizes);
  assert_non_null(sizes);
  for (size_t s = 0; s < n; s++)
    sizes[s] = s;
  check_live_blocks(sizes, n);
  free(sizes);
}

static void
test_alloc_sizes_up_to_64_kib_are_aligned_writable_and_disjoint(void **state) {
  (void)state;
  size_t sizes[1024];
  size_t n = 0;
  for (size_t s = 4097; s <= 64 * KIB; s += 509)
    sizes[n++] = s;
  /* Both sides of every class boundary above 4 KiB, and of the small limit. */
  for (unsigned c = 0; c < ISLE_HEAP_CLASS_COUNT; c++) {
    size_t b = isle_heap_class_size(c);
    if (b > 4096) {
      sizes[n++] = b - 1;
      sizes[n++] = b;
      sizes[n++] = b + 1;
    }
  }
  const size_t extra[] = {ISLE_HEAP_SMALL_MAX - 1, ISLE_HEAP_SMALL_MAX,
                          ISLE_HEAP_SMALL_MAX + 1, 64 * KIB - 1, 64 * KIB};
  for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
    sizes[n++] = extra[i];
  assert_true(n <= sizeof sizes / sizeof sizes[0]);
  check_live_blocks(sizes, n);
}

static void test_alloc_large_sizes_to_64_mib_are_aligned_writable_and_disjoint(
    void **state) {
  (void)state;
  const size_t sizes[] = {64 * KIB + 1, 100000,        MIB - 1,      MIB,
                          MIB + 1,      5 * MIB + 123, 16 * MIB - 1, 16 * MIB,
                          16 * MIB + 1, 64 * MIB};
  check_live_blocks(sizes, sizeof sizes / sizeof sizes[0]);
}

/* Many blocks of one class spread over many spans, all live together. */
static void test_alloc_many_blocks_of_one_class_are_disjoint(void **state) {
  (void)state;
  size_t n = 20000;
  size_t *sizes = malloc(n * sizeof *sizes);
  assert_non_null(sizes);
  for (size_t i = 0; i < n; i++)
    sizes[i] = 48;
  check_live_blocks(sizes, n);
  free(sizes);
}

/* A small block's usable size is exactly its class's block size. */
static void
test_alloc_usable_size_is_the_class_size_for_small_requests(void **state) {
  (void)state;
  for (size_t size = 1; size <= ISLE_HEAP_SMALL_MAX; size++) {
    void *p = isle_malloc(size);
    assert_non_null(p);
    size_t want = isle_heap_class_size((unsigned)isle_heap_size_class(size));
    if (isle_usable_size(p) != want) {
      fprintf(stderr, "isle_malloc(%zu): usable %zu, class size %zu\n", size,
              isle_usable_size(p), want);
      fail();
    }
    isle_free(p);
  }
}

static void test_alloc_zero_bytes_gives_unique_blocks(void **state) {
  (void)state;
  enum { N = 256 };
  void *p[N];
  for (size_t i = 0; i < N; i++) {
    p[i] = isle_malloc(0);
    assert_non_null(p[i]);
    assert_int_equal((uintptr_t)p[i] % 16, 0);
    for (size_t j = 0; j < i; j++)
      assert_ptr_not_equal(p[i], p[j]);
  }
  for (size_t i = 0; i < N; i++)
    isle_free(p[i]);
}

static void test_alloc_free_null_is_ignored(void **state) {
  (void)state;
  uint64_t before = live_objects();
  isle_free(NULL);
  assert_int_equal(live_objects(), before);
}

static void test_alloc_usable_size_of_null_is_zero(void **state) {
  (void)state;
  assert_int_equal(isle_usable_size(NULL), 0);
}

/* Requests whose size cannot be rounded up to a span, or which exceed the
 * address space, fail cleanly instead of wrapping around to a small block. */
static void test_alloc_impossible_sizes_give_null_with_enomem(void **state) {
  (void)state;
  const size_t sizes[] = {
      SIZE_MAX,        SIZE_MAX - 1,        SIZE_MAX - 15,
      SIZE_MAX - 4096, SIZE_MAX - 16 * MIB, SIZE_MAX / 2 + 1,
      SIZE_MAX / 2};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    errno = 0;
    void *p = isle_malloc(sizes[i]);
    if (p != NULL) {
      fprintf(stderr, "isle_malloc(%zu) gave %p\n", sizes[i], p);
      isle_free(p);
      fail();
    }
    assert_int_equal(errno, ENOMEM);
  }
}

/* ===== calloc =========================================================== */

static const size_t calloc_sizes[] = {
    0,    1,     15,    16,    17,     100, 1000,    4096,
    4097, 32767, 32768, 32769, 100000, MIB, MIB + 7, 3 * MIB};

static void test_alloc_calloc_zero_fills(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof calloc_sizes / sizeof calloc_sizes[0]; i++) {
    size_t size = calloc_sizes[i];
    unsigned char *p = isle_calloc(1, size);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_true(support_all_zero(p, size));
    isle_free(p);
    /* The same bytes as count * size with count > 1. */
    if (size % 4 == 0 && size > 0) {
      p = isle_calloc(4, size / 4);
      assert_non_null(p);
      assert_true(support_all_zero(p, size));
      isle_free(p);
    }
  }
}

/* A block that was dirtied and freed comes back zeroed from calloc: the
 * heap must not assume recycled memory is clean. */
static void test_alloc_calloc_zero_fills_a_reused_dirty_block(void **state) {
  (void)state;
  enum { N = 64 };
  for (size_t i = 0; i < sizeof calloc_sizes / sizeof calloc_sizes[0]; i++) {
    size_t size = calloc_sizes[i];
    size_t n = size >= 32 * KIB ? 2 : N;
    unsigned char *p[N];
    for (size_t k = 0; k < n; k++) {
      p[k] = isle_malloc(size);
      assert_non_null(p[k]);
      memset(p[k], 0xA5, isle_usable_size(p[k]));
    }
    for (size_t k = 0; k < n; k++)
      isle_free(p[k]);
    for (size_t k = 0; k < n; k++) {
      p[k] = isle_calloc(1, size);
      assert_non_null(p[k]);
      if (!support_all_zero(p[k], size)) {
        fprintf(stderr, "isle_calloc(1, %zu) gave dirty block %p\n", size,
                (void *)p[k]);
        fail();
      }
    }
    for (size_t k = 0; k < n; k++)
      isle_free(p[k]);
  }
}

static void test_alloc_calloc_overflow_gives_null_with_enomem(void **state) {
  (void)state;
  const size_t pairs[][2] = {
      {SIZE_MAX, 2},
      {2, SIZE_MAX},
      {SIZE_MAX / 2 + 1, 2},
      {SIZE_MAX, SIZE_MAX},
      {(size_t)1 << 32, (size_t)1 << 32},
      {((size_t)1 << 33) + 1, (size_t)1 << 31},
      {SIZE_MAX / 16 + 1, 16},
  };
  uint64_t before = live_objects();
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    void *p = isle_calloc(pairs[i][0], pairs[i][1]);
    if (p != NULL) {
      fprintf(stderr, "isle_calloc(%zu, %zu) gave %p\n", pairs[i][0],
              pairs[i][1], p);
      isle_free(p);
      fail();
    }
    assert_int_equal(errno, ENOMEM);
  }
  assert_int_equal(live_objects(), before);
}

static void test_alloc_calloc_of_zero_elements_gives_a_block(void **state) {
  (void)state;
  void *a = isle_calloc(0, 8);
  void *b = isle_calloc(8, 0);
  void *c = isle_calloc(0, 0);
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  assert_ptr_not_equal(a, b);
  assert_ptr_not_equal(b, c);
  assert_ptr_not_equal(a, c);
  isle_free(a);
  isle_free(b);
  isle_free(c);
}

/* ===== realloc ========================================================== */

/* Resizes a block from `from` to `to` bytes and checks the common prefix
 * survived and the whole new size is writable. */
static void check_realloc(size_t from, size_t to) {
  unsigned char *p = isle_malloc(from);
  assert_non_null(p);
  support_fill(p, from, from ^ (to << 20));
  unsigned char *q = isle_realloc(p, to);
  if (q == NULL) {
    fprintf(stderr, "isle_realloc(%zu -> %zu) failed\n", from, to);
    isle_free(p);
    fail();
  }
  assert_int_equal((uintptr_t)q % 16, 0);
  assert_true(isle_usable_size(q) >= to);
  size_t keep = from < to ? from : to;
  size_t at = support_mismatch(q, keep, from ^ (to << 20));
  if (at != keep) {
    fprintf(stderr, "isle_realloc(%zu -> %zu) lost byte %zu\n", from, to, at);
    isle_free(q);
    fail();
  }
  memset(q, 0x3C, to);
  isle_free(q);
}

static void test_alloc_realloc_keeps_contents_within_small_sizes(void **state) {
  (void)state;
  const size_t pairs[][2] = {{1, 2},      {16, 17},      {17, 16},
                             {100, 200},  {200, 50},     {128, 4096},
                             {4096, 128}, {1000, 1000},  {4096, 32768},
                             {32768, 1},  {30000, 32768}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    check_realloc(pairs[i][0], pairs[i][1]);
}

static void
test_alloc_realloc_keeps_contents_from_small_to_large(void **state) {
  (void)state;
  const size_t pairs[][2] = {{1, 40000},
                             {1000, 100000},
                             {ISLE_HEAP_SMALL_MAX, ISLE_HEAP_SMALL_MAX + 1},
                             {20000, 3 * MIB}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    check_realloc(pairs[i][0], pairs[i][1]);
}

static void
test_alloc_realloc_keeps_contents_from_large_to_small(void **state) {
  (void)state;
  const size_t pairs[][2] = {{100000, 1000},
                             {ISLE_HEAP_SMALL_MAX + 1, ISLE_HEAP_SMALL_MAX},
                             {3 * MIB, 20000},
                             {40000, 1}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    check_realloc(pairs[i][0], pairs[i][1]);
}

static void test_alloc_realloc_keeps_contents_within_large_sizes(void **state) {
  (void)state;
  const size_t pairs[][2] = {
      {40000, 40001},      {100000, 5 * MIB},   {5 * MIB, 200000},
      {MIB, MIB},          {MIB, MIB + 1},      {MIB + 1, MIB},
      {8 * MIB, 20 * MIB}, {20 * MIB, 8 * MIB}, {20 * MIB, 40 * MIB}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    check_realloc(pairs[i][0], pairs[i][1]);
}

/* Growing one byte at a time, then by doubling, the block keeps every
 * byte written so far. */
static void
test_alloc_realloc_keeps_contents_while_growing_step_by_step(void **state) {
  (void)state;
  unsigned char *p = NULL;
  size_t size = 0;
  for (size_t next = 1; next <= 70000;
       next = next < 5000 ? next + 1 : next * 2) {
    p = isle_realloc(p, next);
    assert_non_null(p);
    assert_int_equal(support_mismatch(p, size, 77), size);
    support_fill(p, next, 77);
    size = next;
  }
  for (; size <= 8 * MIB; size *= 2) {
    p = isle_realloc(p, size * 2);
    assert_non_null(p);
    assert_int_equal(support_mismatch(p, size, 77), size);
    support_fill(p, size * 2, 77);
  }
  isle_free(p);
}

static void test_alloc_realloc_of_null_allocates(void **state) {
  (void)state;
  const size_t sizes[] = {0, 1, 100, 4096, 40000, MIB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = isle_realloc(NULL, sizes[i]);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_true(isle_usable_size(p) >= sizes[i]);
    memset(p, 1, sizes[i]);
    isle_free(p);
  }
}

static void test_alloc_realloc_to_zero_frees_and_returns_null(void **state) {
  (void)state;
  const size_t sizes[] = {1, 100, 4096, 40000, MIB};
  uint64_t before = live_objects();
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = isle_malloc(sizes[i]);
    assert_non_null(p);
    assert_int_equal(live_objects(), before + 1);
    assert_null(isle_realloc(p, 0));
    assert_int_equal(live_objects(), before);
  }
}

/* A failed realloc leaves the block where it was, whole and still owned. */
static void
test_alloc_realloc_failure_leaves_the_block_untouched(void **state) {
  (void)state;
  const size_t sizes[] = {100, 40000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = isle_malloc(sizes[i]);
    assert_non_null(p);
    size_t usable = isle_usable_size(p);
    support_fill(p, sizes[i], 5);
    errno = 0;
    /* Through a volatile, so that the compiler, which sees isle_realloc's
     * alloc_size attribute, does not reject the size it is meant to fail. */
    volatile size_t huge = SIZE_MAX - 64;
    assert_null(isle_realloc(p, huge));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(isle_usable_size(p), usable);
    assert_int_equal(support_mismatch(p, sizes[i], 5), sizes[i]);
    isle_free(p);
  }
}

/* ===== aligned_alloc ==================================================== */

/* Several blocks of each size live at once, so that a block recycled by
 * the free before it cannot make a misaligned class look aligned. */
static void test_alloc_aligned_alloc_honours_every_power_of_two(void **state) {
  (void)state;
  enum { COPIES = 4, SIZES = 6 };
  for (size_t align = 1; align <= 16 * MIB; align <<= 1) {
    const size_t sizes[SIZES] = {1,     24,        1000,
                                 align, align + 1, 3 * align / 2 + 16};
    size_t copies = align >= MIB ? 1 : COPIES;
    unsigned char *p[SIZES][COPIES];
    for (size_t i = 0; i < SIZES; i++) {
      for (size_t k = 0; k < copies; k++) {
        p[i][k] = isle_aligned_alloc(align, sizes[i]);
        if (p[i][k] == NULL) {
          fprintf(stderr, "isle_aligned_alloc(%zu, %zu) failed\n", align,
                  sizes[i]);
          fail();
        }
        if ((uintptr_t)p[i][k] % align != 0 || (uintptr_t)p[i][k] % 16 != 0) {
          fprintf(stderr, "isle_aligned_alloc(%zu, %zu) gave %p\n", align,
                  sizes[i], (void *)p[i][k]);
          fail();
        }
        assert_true(isle_usable_size(p[i][k]) >= sizes[i]);
        memset(p[i][k], 0x5A, sizes[i]);
      }
    }
    for (size_t i = 0; i < SIZES; i++)
      for (size_t k = 0; k < copies; k++)
        isle_free(p[i][k]);
  }
}

/* Aligned blocks live together do not overlap, and freeing them gives the
 * counters back. */
static void test_alloc_aligned_blocks_are_disjoint_and_freed(void **state) {
  (void)state;
  enum { N = 300 };
  const size_t aligns[] = {32, 64, 256, 4096, 65536};
  uint64_t before = live_objects();
  held_t held[N];
  for (size_t i = 0; i < N; i++) {
    size_t align = aligns[i % 5], size = 48 + (i * 37) % 3000;
    held[i].p = isle_aligned_alloc(align, size);
    assert_non_null(held[i].p);
    assert_int_equal((uintptr_t)held[i].p % align, 0);
    held[i].size = size;
    held[i].usable = isle_usable_size(held[i].p);
    assert_true(held[i].usable >= size);
    support_fill(held[i].p, held[i].usable, i);
  }
  for (size_t i = 0; i < N; i++)
    assert_int_equal(support_mismatch(held[i].p, held[i].usable, i),
                     held[i].usable);
  qsort(held, N, sizeof held[0], held_by_address);
  for (size_t i = 0; i + 1 < N; i++)
    assert_true(held[i].p + held[i].usable <= held[i + 1].p);
  for (size_t i = 0; i < N; i++)
    isle_free(held[i].p);
  assert_int_equal(live_objects(), before);
}

static void
test_alloc_aligned_alloc_rejects_non_powers_of_two_with_einval(void **state) {
  (void)state;
  const size_t aligns[] = {
      0, 3, 5, 6, 24, 48, 1000, 4097, MIB + 1, (16 << 20) - 1, SIZE_MAX};
  uint64_t before = live_objects();
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    errno = 0;
    void *p = isle_aligned_alloc(aligns[i], 64);
    if (p != NULL) {
      fprintf(stderr, "isle_aligned_alloc(%zu, 64) gave %p\n", aligns[i], p);
      isle_free(p);
      fail();
    }
    assert_int_equal(errno, EINVAL);
  }
  assert_int_equal(live_objects(), before);
}

static void test_alloc_aligned_alloc_rejects_alignment_above_16_mib_with_einval(
    void **state) {
  (void)state;
  const size_t aligns[] = {32 * MIB, (size_t)1 << 40, SIZE_MAX / 2 + 1};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    errno = 0;
    void *p = isle_aligned_alloc(aligns[i], 64);
    if (p != NULL) {
      isle_free(p);
      fail();
    }
    assert_int_equal(errno, EINVAL);
  }
}

static void
test_alloc_aligned_alloc_of_impossible_size_gives_enomem(void **state) {
  (void)state;
  const size_t aligns[] = {16, 4096, MIB, 16 * MIB};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    errno = 0;
    void *p = isle_aligned_alloc(aligns[i], SIZE_MAX - aligns[i] + 1);
    if (p != NULL) {
      isle_free(p);
      fail();
    }
    assert_int_equal(errno, ENOMEM);
  }
}

/* ===== Statistics of the calling thread ================================ */

static void test_alloc_class_live_objects_follow_allocations(void **state) {
  (void)state;
  enum { N = 1000 };
  const size_t sizes[] = {1, 200, 3000, ISLE_HEAP_SMALL_MAX};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    unsigned c = (unsigned)isle_heap_size_class(sizes[k]);
    size_t block = isle_heap_class_size(c);
    isle_heap_stats_t before = support_self_stats();
    void **p = malloc(N * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < N; i++) {
      p[i] = isle_malloc(sizes[k]);
      assert_non_null(p[i]);
    }
    isle_heap_stats_t during = support_self_stats();
    assert_int_equal(during.classes[c].live_objects,
                     before.classes[c].live_objects + N);
    assert_int_equal(during.classes[c].live_bytes,
                     before.classes[c].live_bytes + (uint64_t)N * block);
    assert_int_equal(during.live_objects, before.live_objects + N);
    assert_int_equal(during.live_bytes,
                     before.live_bytes + (uint64_t)N * block);
    assert_true(support_stats_consistent(&during));
    for (size_t i = 0; i < N; i++)
      isle_free(p[i]);
    free(p);
    isle_heap_stats_t after = support_self_stats();
    assert_int_equal(after.classes[c].live_objects,
                     before.classes[c].live_objects);
    assert_int_equal(after.classes[c].live_bytes, before.classes[c].live_bytes);
    assert_int_equal(after.live_bytes, before.live_bytes);
    assert_true(support_stats_consistent(&after));
  }
}

static void test_alloc_large_live_counters_follow_allocations(void **state) {
  (void)state;
  const size_t sizes[] = {ISLE_HEAP_SMALL_MAX + 1, 100000, 3 * MIB, 20 * MIB};
  enum { N = sizeof sizes / sizeof sizes[0] };
  isle_heap_stats_t before = support_self_stats();
  void *p[N];
  uint64_t asked = 0;
  for (size_t i = 0; i < N; i++) {
    p[i] = isle_malloc(sizes[i]);
    assert_non_null(p[i]);
    asked += sizes[i];
  }
  isle_heap_stats_t during = support_self_stats();
  assert_int_equal(during.large_live_objects, before.large_live_objects + N);
  assert_true(during.large_live_bytes >= before.large_live_bytes + asked);
  assert_int_equal(during.live_objects, before.live_objects + N);
  assert_true(support_stats_consistent(&during));
  for (size_t i = 0; i < N; i++)
    isle_free(p[i]);
  isle_heap_stats_t after = support_self_stats();
  assert_int_equal(after.large_live_objects, before.large_live_objects);
  assert_int_equal(after.large_live_bytes, before.large_live_bytes);
  assert_int_equal(after.live_bytes, before.live_bytes);
}

/* calloc, realloc and aligned_alloc count like malloc: nothing stays live
 * once their blocks are freed. */
static void test_alloc_every_allocator_gives_its_counters_back(void **state) {
  (void)state;
  isle_heap_stats_t before = support_self_stats();
  void *a = isle_calloc(10, 100);
  void *b = isle_realloc(NULL, 300);
  b = isle_realloc(b, 50000);
  b = isle_realloc(b, 70);
  void *c = isle_aligned_alloc(4096, 5000);
  void *d = isle_aligned_alloc(MIB, 100);
  void *e = isle_calloc(1, 2 * MIB);
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  assert_non_null(d);
  assert_non_null(e);
  assert_int_equal(support_self_stats().live_objects, before.live_objects + 5);
  isle_free(a);
  isle_free(b);
  isle_free(c);
  isle_free(d);
  isle_free(e);
  isle_heap_stats_t after = support_self_stats();
  assert_int_equal(after.live_objects, before.live_objects);
  assert_int_equal(after.live_bytes, before.live_bytes);
  assert_true(support_stats_consistent(&after));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          test_alloc_every_size_up_to_4096_is_aligned_writable_and_disjoint),
      cmocka_unit_test(
          test_alloc_sizes_up_to_64_kib_are_aligned_writable_and_disjoint),
      cmocka_unit_test(
          test_alloc_large_sizes_to_64_mib_are_aligned_writable_and_disjoint),
      cmocka_unit_test(test_alloc_many_blocks_of_one_class_are_disjoint),
      cmocka_unit_test(
          test_alloc_usable_size_is_the_class_size_for_small_requests),
      cmocka_unit_test(test_alloc_zero_bytes_gives_unique_blocks),
      cmocka_unit_test(test_alloc_free_null_is_ignored),
      cmocka_unit_test(test_alloc_usable_size_of_null_is_zero),
      cmocka_unit_test(test_alloc_impossible_sizes_give_null_with_enomem),
      cmocka_unit_test(test_alloc_calloc_zero_fills),
      cmocka_unit_test(test_alloc_calloc_zero_fills_a_reused_dirty_block),
      cmocka_unit_test(test_alloc_calloc_overflow_gives_null_with_enomem),
      cmocka_unit_test(test_alloc_calloc_of_zero_elements_gives_a_block),
      cmocka_unit_test(test_alloc_realloc_keeps_contents_within_small_sizes),
      cmocka_unit_test(test_alloc_realloc_keeps_contents_from_small_to_large),
      cmocka_unit_test(test_alloc_realloc_keeps_contents_from_large_to_small),
      cmocka_unit_test(test_alloc_realloc_keeps_contents_within_large_sizes),
      cmocka_unit_test(
          test_alloc_realloc_keeps_contents_while_growing_step_by_step),
      cmocka_unit_test(test_alloc_realloc_of_null_allocates),
      cmocka_unit_test(test_alloc_realloc_to_zero_frees_and_returns_null),
      cmocka_unit_test(test_alloc_realloc_failure_leaves_the_block_untouched),
      cmocka_unit_test(test_alloc_aligned_alloc_honours_every_power_of_two),
      cmocka_unit_test(test_alloc_aligned_blocks_are_disjoint_and_freed),
      cmocka_unit_test(
          test_alloc_aligned_alloc_rejects_non_powers_of_two_with_einval),
      cmocka_unit_test(
          test_alloc_aligned_alloc_rejects_alignment_above_16_mib_with_einval),
      cmocka_unit_test(
          test_alloc_aligned_alloc_of_impossible_size_gives_enomem),
      cmocka_unit_test(test_alloc_class_live_objects_follow_allocations),
      cmocka_unit_test(test_alloc_large_live_counters_follow_allocations),
      cmocka_unit_test(test_alloc_every_allocator_gives_its_counters_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
