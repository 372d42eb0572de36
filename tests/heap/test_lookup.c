/* isle — MIT licensed. */
/*
 * Pointer to span lookup (white box, through isle__heap_span_info): every
 * free, usable_size and remote free starts by finding a pointer's span, so
 * the lookup is checked at the edges where an off-by-one would hide: the
 * first and last block of a span, the first and last byte of a block,
 * blocks that straddle a page boundary inside a multi-page span, the first
 * byte of large and huge blocks; pointers the heap never gave out are
 * refused; and the owner it reports is the allocating thread's heap record.
 */
#define _GNU_SOURCE /* pthread_barrier_t, mmap flags under -std=c11 */

#include <pthread.h>  /* threads that own spans */
#include <sys/mman.h> /* a mapping the heap does not know */

#include "heap/internal.h"
#include "isle/error.h"
#include "isle/heap.h"
#include "support.h"

/* ===== Helpers ========================================================== */

static isle__span_info_t info_of(const void *p) {
  isle__span_info_t info;
  memset(&info, 0, sizeof info);
  if (isle__heap_span_info(p, &info) != 0) {
    fprintf(stderr, "no span for %p\n", p);
    fail();
  }
  return info;
}

static void assert_same_span(const isle__span_info_t *a,
                             const isle__span_info_t *b) {
  assert_ptr_equal(a->start, b->start);
  assert_int_equal(a->bytes, b->bytes);
  assert_int_equal(a->block_size, b->block_size);
  assert_int_equal(a->cls, b->cls);
  assert_ptr_equal(a->owner, b->owner);
}

/* The shape every small span has: page-aligned start, whole pages, at
 * least 8 blocks of its class, blocks at start + k * block_size. */
static void assert_small_span_holds(const isle__span_info_t *info,
                                    const void *block, size_t size) {
  const char *start = info->start, *p = block;
  assert_int_equal(info->cls, isle_heap_size_class(size));
  assert_int_equal(info->block_size, isle_heap_class_size((unsigned)info->cls));
  assert_int_equal((uintptr_t)start % ISLE__PAGE_SIZE, 0);
  assert_int_equal(info->bytes % ISLE__PAGE_SIZE, 0);
  assert_true(info->bytes / info->block_size >= 8);
  assert_true(p >= start && p < start + info->bytes);
  assert_int_equal((size_t)(p - start) % info->block_size, 0);
  assert_true(p + info->block_size <= start + info->bytes);
}

/* A pointer just outside a span resolves to nothing or to another span. */
static void assert_outside(const isle__span_info_t *span, const void *p) {
  isle__span_info_t other;
  if (isle__heap_span_info(p, &other) == 0) {
    assert_ptr_not_equal(other.start, span->start);
    const char *a = other.start, *b = span->start;
    /* The neighbour must not overlap the span. */
    assert_true(a + other.bytes <= b || b + span->bytes <= a);
  }
}

/* Blocks of one size, allocated until one span is wholly ours. */
typedef struct full_span_s {
  void **blocks; /* every block allocated (free them all) */
  size_t count;
  isle__span_info_t span; /* the span all of whose blocks we hold */
  size_t capacity;        /* blocks in that span */
} full_span_t;

static full_span_t hold_a_full_span(size_t size) {
  full_span_t f;
  memset(&f, 0, sizeof f);
  void *first = isle_malloc(size);
  assert_non_null(first);
  isle__span_info_t info = info_of(first);
  isle_free(first);
  size_t cap = info.bytes / info.block_size;
  size_t limit = 4 * cap + 64;
  f.blocks = calloc(limit, sizeof *f.blocks);
  assert_non_null(f.blocks);
  /* Per span start, how many of its blocks we hold. */
  void **starts = calloc(limit, sizeof *starts);
  size_t *counts = calloc(limit, sizeof *counts);
  assert_non_null(starts);
  assert_non_null(counts);
  size_t nstarts = 0;
  while (f.count < limit) {
    void *p = isle_malloc(size);
    assert_non_null(p);
    f.blocks[f.count++] = p;
    info = info_of(p);
    size_t s = 0;
    while (s < nstarts && starts[s] != info.start)
      s++;
    if (s == nstarts)
      starts[nstarts++] = info.start;
    if (++counts[s] == info.bytes / info.block_size) {
      f.span = info;
      f.capacity = counts[s];
      break;
    }
  }
  free(starts);
  free(counts);
  if (f.capacity == 0) {
    fprintf(stderr, "%zu blocks of %zu bytes filled no span\n", f.count, size);
    fail();
  }
  return f;
}

static void release(full_span_t *f) {
  for (size_t i = 0; i < f->count; i++)
    isle_free(f->blocks[i]);
  free(f->blocks);
  f->blocks = NULL;
}

/* ===== Small spans ====================================================== */

static void
test_lookup_small_block_resolves_to_its_span_and_class(void **state) {
  (void)state;
  const size_t sizes[] = {0,    1,    16,   17,   48,    128,   129,
                          1000, 1024, 1025, 4096, 12345, 32767, 32768};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = isle_malloc(sizes[i]);
    assert_non_null(p);
    isle__span_info_t info = info_of(p);
    assert_small_span_holds(&info, p, sizes[i] == 0 ? 1 : sizes[i]);
    assert_int_equal(isle_usable_size(p), info.block_size);
    assert_ptr_equal(info.owner, isle__heap_self());
    isle_free(p);
  }
}

static void test_lookup_first_and_last_block_of_a_span_resolve(void **state) {
  (void)state;
  const size_t sizes[] = {16, 48, 256, 1000, 5000, 32768};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    full_span_t f = hold_a_full_span(sizes[k]);
    char *start = f.span.start;
    size_t block = f.span.block_size;
    char *first = start, *last = start + (f.capacity - 1) * block;
    /* Both are blocks we hold: their every byte is ours to write. */
    assert_int_equal(isle_usable_size(first), block);
    assert_int_equal(isle_usable_size(last), block);
    memset(first, 0x11, block);
    memset(last, 0x22, block);
    isle__span_info_t a = info_of(first);
    isle__span_info_t b = info_of(first + block - 1);
    isle__span_info_t c = info_of(last);
    isle__span_info_t d = info_of(last + block - 1);
    isle__span_info_t e = info_of(start + f.span.bytes - 1);
    assert_same_span(&a, &f.span);
    assert_same_span(&b, &f.span);
    assert_same_span(&c, &f.span);
    assert_same_span(&d, &f.span);
    assert_same_span(&e, &f.span);
    assert_small_span_holds(&a, first, sizes[k]);
    assert_small_span_holds(&c, last, sizes[k]);
    /* The bytes just before and just after belong to someone else. */
    assert_outside(&f.span, start - 1);
    assert_outside(&f.span, start + f.span.bytes);
    release(&f);
  }
}

static void
test_lookup_every_byte_of_a_block_resolves_to_its_span(void **state) {
  (void)state;
  const size_t sizes[] = {16, 80, 1024, 9000};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    char *p = isle_malloc(sizes[k]);
    assert_non_null(p);
    isle__span_info_t want = info_of(p);
    for (size_t i = 0; i < want.block_size; i++) {
      isle__span_info_t got = info_of(p + i);
      assert_ptr_equal(got.start, want.start);
    }
    isle_free(p);
  }
}

/* Classes whose blocks do not divide a page have blocks straddling page
 * boundaries; a lookup from either side of the boundary must find the same
 * span, and the whole block must be usable. */
static void test_lookup_blocks_across_page_boundaries_resolve(void **state) {
  (void)state;
  const size_t sizes[] = {48, 80, 1280, 3072, 5120, 20480};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    full_span_t f = hold_a_full_span(sizes[k]);
    char *start = f.span.start;
    size_t block = f.span.block_size;
    assert_true(f.span.bytes > ISLE__PAGE_SIZE); /* multi-page span */
    size_t straddling = 0;
    for (size_t off = ISLE__PAGE_SIZE; off < f.capacity * block;
         off += ISLE__PAGE_SIZE) {
      char *boundary = start + off;
      isle__span_info_t before = info_of(boundary - 1);
      isle__span_info_t after = info_of(boundary);
      assert_same_span(&before, &f.span);
      assert_same_span(&after, &f.span);
      char *b = start + (off / block) * block; /* block holding the boundary */
      if (b == boundary)
        continue;
      straddling++;
      assert_int_equal(isle_usable_size(b), block);
      memset(b, 0x33, block);
      isle__span_info_t at = info_of(b);
      isle__span_info_t end = info_of(b + block - 1);
      assert_same_span(&at, &f.span);
      assert_same_span(&end, &f.span);
    }
    assert_true(straddling > 0);
    release(&f);
  }
}

/* A free block's address still lies in a live span (another block keeps it
 * live), so it still resolves. */
static void test_lookup_free_block_of_a_live_span_resolves(void **state) {
  (void)state;
  char *a = isle_malloc(64);
  char *b = isle_malloc(64);
  assert_non_null(a);
  assert_non_null(b);
  isle__span_info_t ia = info_of(a), ib = info_of(b);
  if (ia.start != ib.start) { /* a span boundary fell between them */
    char *c = isle_malloc(64);
    assert_non_null(c);
    isle_free(a);
    a = c;
    ia = info_of(a);
    assert_ptr_equal(ia.start, ib.start);
  }
  isle_free(a);
  isle__span_info_t again = info_of(a);
  assert_same_span(&again, &ib);
  isle_free(b);
}

/* ===== Large and huge blocks =========================================== */

static void test_lookup_large_block_first_byte_resolves(void **state) {
  (void)state;
  const size_t sizes[] = {ISLE_HEAP_SMALL_MAX + 1,
                          40000,
                          100000,
                          MIB,
                          8 * MIB + 5,
                          16 * MIB,
                          16 * MIB + 1,
                          40 * MIB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = isle_malloc(sizes[i]);
    assert_non_null(p);
    isle__span_info_t info = info_of(p);
    char *start = info.start;
    assert_int_equal(info.cls, -1);
    assert_true(info.block_size >= sizes[i]);
    assert_int_equal(info.block_size, isle_usable_size(p));
    assert_int_equal((uintptr_t)start % ISLE__PAGE_SIZE, 0);
    assert_int_equal(info.bytes % ISLE__PAGE_SIZE, 0);
    assert_true(p >= start && p < start + info.bytes);
    assert_true(p + info.block_size <= start + info.bytes);
    assert_ptr_equal(info.owner, isle__heap_self());
    isle_free(p);
  }
}

static void test_lookup_aligned_block_first_byte_resolves(void **state) {
  (void)state;
  const size_t cases[][2] = {{64, 100},       {4096, 5000}, {65536, 100},
                             {65536, 100000}, {MIB, 40000}, {16 * MIB, 100}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *p = isle_aligned_alloc(cases[i][0], cases[i][1]);
    assert_non_null(p);
    isle__span_info_t info = info_of(p);
    char *start = info.start;
    assert_true(p >= start && p < start + info.bytes);
    assert_true(isle_usable_size(p) >= cases[i][1]);
    assert_ptr_equal(info.owner, isle__heap_self());
    isle_free(p);
  }
}

/* ===== Pointers the heap does not know ================================= */

static int a_static_variable;

static void test_lookup_unknown_pointers_are_refused(void **state) {
  (void)state;
  int on_stack = 0;
  void *from_libc = malloc(100);
  assert_non_null(from_libc);
  void *mapped = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(mapped != MAP_FAILED);
  const void *unknown[] = {
      NULL,
      &on_stack,
      from_libc,
      &a_static_variable,
      "a string literal",
      mapped,
      (char *)mapped + (1 << 16) - 1,
      (void *)(uintptr_t)16,
      (void *)(uintptr_t)4096,
      (void *)(~(uintptr_t)0 - 15),
  };
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    isle__span_info_t info;
    int rc = isle__heap_span_info(unknown[i], &info);
    if (rc != ISLE_EINVAL) {
      fprintf(stderr, "span_info(%p) gave %d\n", unknown[i], rc);
      fail();
    }
  }
  munmap(mapped, 1 << 16);
  free(from_libc);
}

/* ===== Owners =========================================================== */

static void test_lookup_heap_self_is_stable(void **state) {
  (void)state;
  const void *self = isle__heap_self();
  assert_non_null(self);
  assert_ptr_equal(isle__heap_self(), self);
  void *p = isle_malloc(10);
  assert_non_null(p);
  assert_ptr_equal(isle__heap_self(), self);
  isle_free(p);
}

typedef struct owner_case_s {
  pthread_barrier_t barrier;
  size_t size;
  void *block;       /* allocated by the thread */
  const void *self;  /* the thread's heap record */
  const void *owner; /* the owner the thread saw for its block */
  bool keep;         /* leave the block live when the thread exits */
} owner_case_t;

static void *owner_thread(void *arg) {
  owner_case_t *c = arg;
  c->self = isle__heap_self();
  c->block = isle_malloc(c->size);
  isle__span_info_t info;
  memset(&info, 0, sizeof info);
  if (WORKER_CHECK(c->block != NULL) &&
      WORKER_CHECK(isle__heap_span_info(c->block, &info) == 0))
    c->owner = info.owner;
  pthread_barrier_wait(&c->barrier); /* main looks at the block */
  pthread_barrier_wait(&c->barrier); /* main is done looking */
  if (!c->keep) {
    isle_free(c->block);
    c->block = NULL;
  }
  return NULL;
}

/* While the allocating thread lives, its blocks (small and large) name its
 * heap record as their owner, which is not the main thread's. */
static void test_lookup_owner_is_the_allocating_thread(void **state) {
  (void)state;
  const size_t sizes[] = {100, 100000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    owner_case_t c;
    memset(&c, 0, sizeof c);
    c.size = sizes[i];
    assert_int_equal(pthread_barrier_init(&c.barrier, NULL, 2), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, owner_thread, &c), 0);
    pthread_barrier_wait(&c.barrier);
    isle__span_info_t info;
    memset(&info, 0, sizeof info);
    int rc = c.block ? isle__heap_span_info(c.block, &info) : -1;
    pthread_barrier_wait(&c.barrier);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_barrier_destroy(&c.barrier);
    support_assert_workers_ok();
    assert_int_equal(rc, 0);
    assert_non_null(c.self);
    assert_ptr_not_equal(c.self, isle__heap_self());
    assert_ptr_equal(c.owner, c.self);
    assert_ptr_equal(info.owner, c.self);
  }
}

/* Once the thread exits with the block still live, the span is abandoned:
 * it has no owner until someone adopts it. */
static void test_lookup_owner_is_null_when_the_thread_exited(void **state) {
  (void)state;
  owner_case_t c;
  memset(&c, 0, sizeof c);
  c.size = 200;
  c.keep = true;
  isle_heap_collect();
  uint64_t abandoned = support_global_stats().abandoned_spans;
  assert_int_equal(pthread_barrier_init(&c.barrier, NULL, 2), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, owner_thread, &c), 0);
  pthread_barrier_wait(&c.barrier);
  pthread_barrier_wait(&c.barrier);
  assert_int_equal(pthread_join(t, NULL), 0);
  pthread_barrier_destroy(&c.barrier);
  support_assert_workers_ok();
  assert_non_null(c.block);
  isle__span_info_t info = info_of(c.block);
  assert_null(info.owner);
  assert_small_span_holds(&info, c.block, c.size);
  isle_free(c.block);
  isle_heap_collect();
  assert_int_equal(support_global_stats().abandoned_spans, abandoned);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lookup_small_block_resolves_to_its_span_and_class),
      cmocka_unit_test(test_lookup_first_and_last_block_of_a_span_resolve),
      cmocka_unit_test(test_lookup_every_byte_of_a_block_resolves_to_its_span),
      cmocka_unit_test(test_lookup_blocks_across_page_boundaries_resolve),
      cmocka_unit_test(test_lookup_free_block_of_a_live_span_resolves),
      cmocka_unit_test(test_lookup_large_block_first_byte_resolves),
      cmocka_unit_test(test_lookup_aligned_block_first_byte_resolves),
      cmocka_unit_test(test_lookup_unknown_pointers_are_refused),
      cmocka_unit_test(test_lookup_heap_self_is_stable),
      cmocka_unit_test(test_lookup_owner_is_the_allocating_thread),
      cmocka_unit_test(test_lookup_owner_is_null_when_the_thread_exited),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
