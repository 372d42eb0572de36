/* isle — MIT licensed. */
/*
 * The heap across threads: a thread that exits abandons its partly used
 * spans, which are swept once their blocks are freed or adopted by a new
 * thread that needs their class; remote frees travel back to their owner
 * (on isle_heap_collect, on exit, or when the owner runs out of blocks) and
 * are counted the same on both sides; statistics stay consistent and can
 * be read from another thread while the owner works; and a ring of
 * threads passing blocks to each other keeps every byte intact and leaves
 * nothing live behind.
 *
 * Worker threads never call cmocka's assertions: they use WORKER_CHECK and
 * the test asserts support_assert_workers_ok() after joining them.
 */
#define _GNU_SOURCE /* pthread_barrier_t, syscall under -std=c11 */

#include <pthread.h>     /* the threads under test */
#include <sys/syscall.h> /* SYS_gettid: statistics name kernel tids */
#include <unistd.h>      /* syscall */

#include "heap/internal.h"
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

static size_t span_capacity(size_t size) {
  void *p = isle_malloc(size);
  assert_non_null(p);
  isle__span_info_t info = info_of(p);
  isle_free(p);
  return info.bytes / info.block_size;
}

/* Starts `fn(arg)` on a thread and waits for it to end. */
static void run_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  support_assert_workers_ok();
}

/* What was live, and waiting for adoption, when the test began (0 unless
 * an earlier test failed and stranded memory). */
static struct {
  uint64_t live_bytes;
  uint64_t abandoned_spans;
  uint64_t abandoned_live_bytes;
} baseline;

static int setup_baseline(void **state) {
  (void)state;
  isle_heap_collect();
  baseline.live_bytes = support_live_bytes_everywhere();
  isle_heap_global_stats_t g = support_global_stats();
  baseline.abandoned_spans = g.abandoned_spans;
  baseline.abandoned_live_bytes = g.abandoned_live_bytes;
  return 0;
}

/* At a quiet moment (every thread joined, this thread collected), nothing
 * more may be live anywhere, nor wait for adoption, than when the test
 * began. Every test ends here, so a test that strands memory is caught
 * where it does so, and does not fail the tests after it. */
static void assert_heap_quiet(void) {
  isle_heap_collect();
  assert_int_equal(support_live_bytes_everywhere(), baseline.live_bytes);
  isle_heap_global_stats_t g = support_global_stats();
  assert_int_equal(g.abandoned_spans, baseline.abandoned_spans);
  assert_int_equal(g.abandoned_live_bytes, baseline.abandoned_live_bytes);
}

/* ===== Thread exit, abandonment and adoption =========================== */

/* A thread that allocates `n` blocks of `size`, frees the even ones itself
 * (leaving its spans partly used), hands the odd ones to the caller in
 * `given` and exits. */
typedef struct donor_s {
  size_t size, n;
  void **given; /* n / 2 blocks, each filled with the pattern of its index */
  uint64_t heap_id;
} donor_t;

static void *donor_thread(void *arg) {
  donor_t *d = arg;
  isle_heap_stats_t s;
  if (WORKER_CHECK(isle_heap_stats_self(&s) == 0))
    d->heap_id = s.heap_id;
  void **all = calloc(d->n, sizeof *all);
  if (!WORKER_CHECK(all != NULL))
    return NULL;
  for (size_t i = 0; i < d->n; i++) {
    all[i] = isle_malloc(d->size);
    if (!WORKER_CHECK(all[i] != NULL))
      break;
    support_fill(all[i], d->size, i);
  }
  for (size_t i = 0; i < d->n; i++) {
    if (i % 2 == 0)
      isle_free(all[i]);
    else
      d->given[i / 2] = all[i];
  }
  free(all);
  return NULL;
}

static donor_t run_donor(size_t size, size_t n) {
  donor_t d = {size, n, calloc(n / 2, sizeof(void *)), 0};
  assert_non_null(d.given);
  run_thread(donor_thread, &d);
  for (size_t i = 0; i < n / 2; i++)
    assert_non_null(d.given[i]);
  return d;
}

/* Checks and frees the blocks a donor handed over. */
static void free_given(donor_t *d) {
  for (size_t i = 0; i < d->n / 2; i++) {
    assert_int_equal(support_mismatch(d->given[i], d->size, 2 * i + 1),
                     d->size);
    isle_free(d->given[i]);
  }
  free(d->given);
  d->given = NULL;
}

/* The distinct span starts of the donor's live blocks, in `starts`. */
static size_t given_spans(const donor_t *d, void **starts, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < d->n / 2; i++) {
    void *s = info_of(d->given[i]).start;
    size_t k = 0;
    while (k < n && starts[k] != s)
      k++;
    if (k == n) {
      assert_true(n < max);
      starts[n++] = s;
    }
  }
  return n;
}

static void
test_threads_exit_abandons_partly_used_spans_until_freed(void **state) {
  (void)state;
  const size_t size = 256;
  size_t n = 4 * span_capacity(size);
  isle_heap_collect();
  isle_heap_global_stats_t before = support_global_stats();
  donor_t d = run_donor(size, n);

  /* The donor is gone: its record is retired, its partly used spans wait
   * in the global chain without an owner, holding the given blocks. */
  size_t count = 0;
  isle_heap_stats_t *all = support_all_stats(&count);
  assert_non_null(all);
  const isle_heap_stats_t *rec = support_find_heap(all, count, d.heap_id);
  assert_non_null(rec);
  assert_int_equal(rec->retired, 1);
  assert_int_equal(rec->thread_id, 0);
  free(all);

  void *starts[64];
  size_t spans = given_spans(&d, starts, 64);
  for (size_t i = 0; i < n / 2; i++)
    assert_null(info_of(d.given[i]).owner);
  isle_heap_global_stats_t during = support_global_stats();
  assert_int_equal(during.abandoned_spans, before.abandoned_spans + spans);
  assert_int_equal(during.abandoned_live_bytes,
                   before.abandoned_live_bytes + (n / 2) * size);

  /* Freeing the blocks and collecting leaves no span waiting (none more
   * than before the test: 0 unless an earlier test stranded some). */
  free_given(&d);
  assert_heap_quiet();
}

/* A thread that allocates blocks of one class and reports whether it
 * adopted spans, and how many of its blocks lie in `starts`. */
typedef struct adopter_s {
  size_t size, n;
  void *const *starts;
  size_t nstarts;
  uint64_t spans_adopted;
  size_t blocks_in_starts;
} adopter_t;

static void *adopter_thread(void *arg) {
  adopter_t *a = arg;
  const void *self = isle__heap_self();
  /* The thread may get a retired record back, counters and all: count
   * what this thread adopts, not what the record did before. */
  isle_heap_stats_t before;
  if (!WORKER_CHECK(isle_heap_stats_self(&before) == 0))
    return NULL;
  void **blocks = calloc(a->n, sizeof *blocks);
  if (!WORKER_CHECK(blocks != NULL))
    return NULL;
  for (size_t i = 0; i < a->n; i++) {
    blocks[i] = isle_malloc(a->size);
    if (!WORKER_CHECK(blocks[i] != NULL))
      break;
    memset(blocks[i], 0x77, a->size);
    isle__span_info_t info;
    if (!WORKER_CHECK(isle__heap_span_info(blocks[i], &info) == 0))
      continue;
    WORKER_CHECK(info.owner == self);
    for (size_t k = 0; k < a->nstarts; k++)
      if (info.start == a->starts[k])
        a->blocks_in_starts++;
  }
  isle_heap_stats_t s;
  if (WORKER_CHECK(isle_heap_stats_self(&s) == 0))
    a->spans_adopted = s.spans_adopted - before.spans_adopted;
  for (size_t i = 0; i < a->n; i++)
    isle_free(blocks[i]);
  free(blocks);
  return NULL;
}

static void
test_threads_new_thread_adopts_abandoned_spans_of_its_class(void **state) {
  (void)state;
  const size_t size = 512;
  size_t cap = span_capacity(size);
  isle_heap_collect();
  donor_t d = run_donor(size, 4 * cap);
  void *starts[64];
  size_t spans = given_spans(&d, starts, 64);
  assert_true(support_global_stats().abandoned_spans >= spans);

  /* More blocks than the abandoned spans have free: the new thread must
   * look for spans of this class, and the abandoned ones come first. */
  adopter_t a = {size, 4 * cap, starts, spans, 0, 0};
  run_thread(adopter_thread, &a);
  assert_true(a.spans_adopted > 0);
  assert_true(a.blocks_in_starts > 0);

  /* The adopter exited too, abandoning the spans again (the donor's blocks
   * are still live in them); freeing those blocks lets collect sweep all. */
  free_given(&d);
  assert_heap_quiet();
}

/* ===== Remote frees ===================================================== */

typedef struct freer_s {
  void **blocks;
  size_t n;
  bool collect;     /* call isle_heap_collect before exiting */
  uint64_t sent;    /* remote_frees_sent counted while freeing */
  uint64_t batches; /* remote_batches_sent counted while freeing */
} freer_t;

static void *freer_thread(void *arg) {
  freer_t *f = arg;
  isle_heap_stats_t before, after;
  if (!WORKER_CHECK(isle_heap_stats_self(&before) == 0))
    return NULL;
  for (size_t i = 0; i < f->n; i++)
    isle_free(f->blocks[i]);
  if (f->collect)
    isle_heap_collect();
  if (WORKER_CHECK(isle_heap_stats_self(&after) == 0)) {
    f->sent = after.remote_frees_sent - before.remote_frees_sent;
    f->batches = after.remote_batches_sent - before.remote_batches_sent;
  }
  return NULL;
}

/* `n` small blocks of assorted classes, allocated by the calling thread. */
static void **alloc_assorted(size_t n) {
  void **blocks = calloc(n, sizeof *blocks);
  assert_non_null(blocks);
  for (size_t i = 0; i < n; i++) {
    blocks[i] = isle_malloc(1 + (i * 97) % 2048);
    assert_non_null(blocks[i]);
  }
  return blocks;
}

/* Every block another thread frees is counted once as sent by it and once
 * as received by the owner, who still counts it live until it takes it in. */
static void
test_threads_remote_frees_sent_equal_remote_frees_received(void **state) {
  (void)state;
  enum { N = 3000 };
  isle_heap_collect();
  isle_heap_stats_t before = support_self_stats();
  void **blocks = alloc_assorted(N);
  isle_heap_stats_t allocated = support_self_stats();
  freer_t f = {blocks, N, true, 0, 0};
  run_thread(freer_thread, &f);
  assert_int_equal(f.sent, N);
  assert_true(f.batches >= 1);
  assert_true(f.batches <= N);

  isle_heap_stats_t pending = support_self_stats();
  assert_int_equal(pending.live_objects, allocated.live_objects);
  isle_heap_collect();
  isle_heap_stats_t after = support_self_stats();
  assert_int_equal(after.remote_frees_received - before.remote_frees_received,
                   f.sent);
  assert_int_equal(after.live_objects, before.live_objects);
  assert_int_equal(after.live_bytes, before.live_bytes);
  assert_true(support_stats_consistent(&after));
  free(blocks);
  assert_heap_quiet();
}

/* A thread that frees others' blocks and exits without collecting still
 * delivers them. */
static void test_threads_exit_delivers_pending_remote_frees(void **state) {
  (void)state;
  enum { N = 1000 };
  isle_heap_collect();
  isle_heap_stats_t before = support_self_stats();
  void **blocks = alloc_assorted(N);
  freer_t f = {blocks, N, false, 0, 0};
  run_thread(freer_thread, &f);
  isle_heap_collect();
  isle_heap_stats_t after = support_self_stats();
  assert_int_equal(after.remote_frees_received - before.remote_frees_received,
                   N);
  assert_int_equal(after.live_objects, before.live_objects);
  free(blocks);
  assert_heap_quiet();
}

/* A thread that never allocated has no heap; its frees of other threads'
 * blocks go straight to their spans, without making a heap for it. */
static void *heapless_freer_thread(void *arg) {
  freer_t *f = arg;
  for (size_t i = 0; i < f->n; i++)
    isle_free(f->blocks[i]);
  /* No heap (new or reused) names this thread as its owner. */
  uint64_t tid = (uint64_t)syscall(SYS_gettid);
  size_t count = 0;
  isle_heap_stats_t *all = support_all_stats(&count);
  if (WORKER_CHECK(all != NULL)) {
    for (size_t i = 0; i < count; i++)
      WORKER_CHECK(all[i].thread_id != tid);
    free(all);
  }
  return NULL;
}

static void test_threads_heapless_thread_frees_reach_the_owner(void **state) {
  (void)state;
  enum { N = 500 };
  isle_heap_collect();
  isle_heap_stats_t before = support_self_stats();
  uint64_t heaps_before = support_global_stats().heaps;
  void **blocks = alloc_assorted(N);
  freer_t f = {blocks, N, false, 0, 0};
  run_thread(heapless_freer_thread, &f);
  support_assert_workers_ok();
  assert_int_equal(support_global_stats().heaps, heaps_before);
  isle_heap_collect();
  isle_heap_stats_t after = support_self_stats();
  assert_int_equal(after.remote_frees_received - before.remote_frees_received,
                   N);
  assert_int_equal(after.live_objects, before.live_objects);
  free(blocks);
  assert_heap_quiet();
}

/* Large blocks freed by another thread come back too. */
static void test_threads_remote_frees_of_large_blocks_come_back(void **state) {
  (void)state;
  enum { N = 8 };
  isle_heap_collect();
  isle_heap_stats_t before = support_self_stats();
  void *blocks[N];
  for (size_t i = 0; i < N; i++) {
    blocks[i] = isle_malloc(40000 + i * 300000);
    assert_non_null(blocks[i]);
  }
  freer_t f = {blocks, N, true, 0, 0};
  run_thread(freer_thread, &f);
  isle_heap_collect();
  isle_heap_stats_t after = support_self_stats();
  assert_int_equal(after.large_live_objects, before.large_live_objects);
  assert_int_equal(after.large_live_bytes, before.large_live_bytes);
  assert_heap_quiet();
}

/* An owner that runs out of blocks takes in what others freed for it
 * before it reaches for new spans, without calling isle_heap_collect. */
static void
test_threads_owner_takes_in_remote_frees_when_it_runs_out(void **state) {
  (void)state;
  const size_t size = 768;
  size_t n = 2 * span_capacity(size);
  isle_heap_collect();
  isle_heap_stats_t before = support_self_stats();
  void **blocks = calloc(n, sizeof *blocks);
  assert_non_null(blocks);
  for (size_t i = 0; i < n; i++) {
    blocks[i] = isle_malloc(size);
    assert_non_null(blocks[i]);
  }
  freer_t f = {blocks, n, true, 0, 0};
  run_thread(freer_thread, &f);
  for (size_t i = 0; i < n; i++) {
    blocks[i] = isle_malloc(size);
    assert_non_null(blocks[i]);
  }
  isle_heap_stats_t after = support_self_stats();
  assert_true(after.remote_frees_received > before.remote_frees_received);
  for (size_t i = 0; i < n; i++)
    isle_free(blocks[i]);
  free(blocks);
  assert_heap_quiet();
}

/* ===== Statistics ======================================================= */

enum { STATS_WORKERS = 3, STATS_SMALL = 500, STATS_LARGE = 2 };

typedef struct stats_worker_s {
  pthread_barrier_t *barrier;
  unsigned index;
  uint64_t heap_id;
  uint64_t tid;
  uint64_t per_class[ISLE_HEAP_CLASS_COUNT]; /* blocks it holds per class */
} stats_worker_t;

static void *stats_worker_thread(void *arg) {
  stats_worker_t *w = arg;
  char name[16];
  snprintf(name, sizeof name, "stats-%u", w->index);
  WORKER_CHECK(isle_heap_set_thread_name(name) == 0);
  isle_heap_stats_t s;
  if (WORKER_CHECK(isle_heap_stats_self(&s) == 0))
    w->heap_id = s.heap_id;
  w->tid = (uint64_t)syscall(SYS_gettid);
  void *small[STATS_SMALL], *large[STATS_LARGE];
  for (size_t i = 0; i < STATS_SMALL; i++) {
    size_t size = 1 + (i * 131 + w->index * 7) % ISLE_HEAP_SMALL_MAX;
    small[i] = isle_malloc(size);
    WORKER_CHECK(small[i] != NULL);
    w->per_class[isle_heap_size_class(size)]++;
  }
  for (size_t i = 0; i < STATS_LARGE; i++) {
    large[i] = isle_malloc(ISLE_HEAP_SMALL_MAX + 1 + i * 100000);
    WORKER_CHECK(large[i] != NULL);
  }
  pthread_barrier_wait(w->barrier); /* main reads the statistics */
  pthread_barrier_wait(w->barrier); /* main is done */
  for (size_t i = 0; i < STATS_SMALL; i++)
    isle_free(small[i]);
  for (size_t i = 0; i < STATS_LARGE; i++)
    isle_free(large[i]);
  return NULL;
}

/* While workers hold known sets of blocks (and are parked, so their
 * counters stand still), every record add up, and each worker's record
 * shows exactly what it holds; after they exit their records are retired
 * with nothing live. */
static void test_threads_stats_add_up_for_every_heap(void **state) {
  (void)state;
  isle_heap_collect();
  pthread_barrier_t barrier;
  assert_int_equal(pthread_barrier_init(&barrier, NULL, STATS_WORKERS + 1), 0);
  stats_worker_t w[STATS_WORKERS];
  pthread_t t[STATS_WORKERS];
  memset(w, 0, sizeof w);
  for (unsigned i = 0; i < STATS_WORKERS; i++) {
    w[i].barrier = &barrier;
    w[i].index = i;
    assert_int_equal(pthread_create(&t[i], NULL, stats_worker_thread, &w[i]),
                     0);
  }
  pthread_barrier_wait(&barrier);
  size_t count = 0;
  isle_heap_stats_t *all = support_all_stats(&count);
  assert_non_null(all);
  assert_true(count >= STATS_WORKERS + 1);
  assert_int_equal(support_global_stats().heaps, count);
  isle_heap_stats_t me = support_self_stats();
  for (size_t i = 0; i < count; i++) {
    if (all[i].heap_id != me.heap_id) /* our own may change as we read */
      assert_true(support_stats_consistent(&all[i]));
    for (size_t j = 0; j < i; j++)
      assert_int_not_equal(all[i].heap_id, all[j].heap_id);
  }
  for (unsigned i = 0; i < STATS_WORKERS; i++) {
    const isle_heap_stats_t *r = support_find_heap(all, count, w[i].heap_id);
    assert_non_null(r);
    char name[16];
    snprintf(name, sizeof name, "stats-%u", i);
    assert_string_equal(r->name, name);
    assert_int_equal(r->retired, 0);
    assert_int_equal(r->thread_id, w[i].tid);
    assert_int_equal(r->live_objects, STATS_SMALL + STATS_LARGE);
    assert_int_equal(r->large_live_objects, STATS_LARGE);
    for (unsigned c = 0; c < ISLE_HEAP_CLASS_COUNT; c++)
      assert_int_equal(r->classes[c].live_objects, w[i].per_class[c]);
    assert_true(r->held_bytes > 0);
    assert_true(r->peak_held_bytes >= r->held_bytes);
    assert_true(r->spans_held > 0);
  }
  free(all);
  pthread_barrier_wait(&barrier);
  for (unsigned i = 0; i < STATS_WORKERS; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  pthread_barrier_destroy(&barrier);
  support_assert_workers_ok();

  all = support_all_stats(&count);
  assert_non_null(all);
  for (unsigned i = 0; i < STATS_WORKERS; i++) {
    const isle_heap_stats_t *r = support_find_heap(all, count, w[i].heap_id);
    assert_non_null(r);
    assert_int_equal(r->retired, 1);
    assert_int_equal(r->thread_id, 0);
    assert_int_equal(r->live_bytes, 0);
    assert_int_equal(r->live_objects, 0);
    assert_true(support_stats_consistent(r));
  }
  free(all);
  assert_heap_quiet();
}

/* --- Reading statistics while the owner works -------------------------- */

typedef struct watched_s {
  pthread_barrier_t start;
  atomic_bool stop;
  size_t iters;
  void **foreign; /* blocks of the main thread the owner frees */
  size_t nforeign;
  atomic_size_t reads; /* rounds the reader made */
} watched_t;

static void *busy_owner_thread(void *arg) {
  watched_t *w = arg;
  enum { BATCH = 64 };
  void *held[BATCH];
  uint64_t rng = 12345;
  WORKER_CHECK(isle_heap_set_thread_name("busy-owner") == 0);
  pthread_barrier_wait(&w->start);
  /* Keep working until the reader has overlapped a few rounds, however
   * the two threads are scheduled. */
  for (size_t i = 0; i < w->iters || atomic_load(&w->reads) < 3; i++) {
    for (size_t k = 0; k < BATCH; k++) {
      uint64_t r = support_rand(&rng);
      size_t size = r % 97 == 0 ? 40000 + r % 200000 : 1 + r % 4096;
      held[k] = isle_malloc(size);
      WORKER_CHECK(held[k] != NULL);
    }
    for (size_t k = 0; k < BATCH; k++)
      isle_free(held[k]);
    if (i < w->nforeign)
      isle_free(w->foreign[i]); /* remote frees, to move those counters */
    if (i % 16 == 0)
      isle_heap_collect();
  }
  for (size_t i = w->iters; i < w->nforeign; i++)
    isle_free(w->foreign[i]);
  isle_heap_collect();
  atomic_store(&w->stop, true);
  return NULL;
}

/* Counters that only ever grow, per heap. */
typedef struct seen_s {
  uint64_t heap_id, tid;
  uint64_t v[8];
} seen_t;

static const char *const monotonic_names[8] = {"refills",
                                               "os_refills",
                                               "spans_returned",
                                               "spans_adopted",
                                               "remote_frees_sent",
                                               "remote_frees_received",
                                               "remote_batches_sent",
                                               "peak_held_bytes"};

static void monotonic_of(const isle_heap_stats_t *s, uint64_t v[8]) {
  v[0] = s->refills;
  v[1] = s->os_refills;
  v[2] = s->spans_returned;
  v[3] = s->spans_adopted;
  v[4] = s->remote_frees_sent;
  v[5] = s->remote_frees_received;
  v[6] = s->remote_batches_sent;
  v[7] = s->peak_held_bytes;
}

static void *stats_reader_thread(void *arg) {
  watched_t *w = arg;
  enum { MAX_SEEN = 256 };
  seen_t seen[MAX_SEEN];
  size_t nseen = 0, last_count = 0;
  uint64_t last_heaps = 0;
  pthread_barrier_wait(&w->start);
  while (!atomic_load(&w->stop)) {
    size_t count = 0;
    isle_heap_stats_t *all = support_all_stats(&count);
    if (!WORKER_CHECK(all != NULL))
      return NULL;
    isle_heap_global_stats_t g;
    WORKER_CHECK(isle_heap_stats_global(&g) == 0);
    WORKER_CHECK(count >= last_count); /* records are never removed */
    WORKER_CHECK(g.heaps >= last_heaps);
    last_count = count;
    last_heaps = g.heaps;
    for (size_t i = 0; i < count; i++) {
      const isle_heap_stats_t *s = &all[i];
      WORKER_CHECK(s->heap_id >= 1);
      WORKER_CHECK(memchr(s->name, '\0', sizeof s->name) != NULL);
      uint64_t v[8];
      monotonic_of(s, v);
      size_t k = 0;
      while (k < nseen && seen[k].heap_id != s->heap_id)
        k++;
      if (k < nseen && seen[k].tid == s->thread_id && s->thread_id != 0) {
        for (size_t j = 0; j < 8; j++)
          if (!WORKER_CHECK(v[j] >= seen[k].v[j]))
            fprintf(stderr,
                    "heap %" PRIu64 " counter %s went back from %" PRIu64
                    " to %" PRIu64 "\n",
                    s->heap_id, monotonic_names[j], seen[k].v[j], v[j]);
      }
      if (k == nseen && nseen < MAX_SEEN)
        nseen++;
      if (k < nseen) {
        seen[k].heap_id = s->heap_id;
        seen[k].tid = s->thread_id;
        memcpy(seen[k].v, v, sizeof v);
      }
    }
    free(all);
    atomic_fetch_add(&w->reads, 1);
  }
  return NULL;
}

/* A reader loops over every heap's counters while the owner allocates,
 * frees locally and remotely and collects. Under ThreadSanitizer this
 * proves the statistics are read without a data race; in every build it
 * proves counters that only grow are never seen going back. */
static void
test_threads_stats_are_readable_while_the_owner_allocates(void **state) {
  (void)state;
  watched_t w;
  memset(&w, 0, sizeof w);
  w.iters = support_iters(2000);
  w.nforeign = w.iters < 500 ? w.iters : 500;
  w.foreign = calloc(w.nforeign, sizeof *w.foreign);
  assert_non_null(w.foreign);
  for (size_t i = 0; i < w.nforeign; i++) {
    w.foreign[i] = isle_malloc(24 + i % 1000);
    assert_non_null(w.foreign[i]);
  }
  assert_int_equal(pthread_barrier_init(&w.start, NULL, 2), 0);
  pthread_t owner, reader;
  assert_int_equal(pthread_create(&owner, NULL, busy_owner_thread, &w), 0);
  assert_int_equal(pthread_create(&reader, NULL, stats_reader_thread, &w), 0);
  assert_int_equal(pthread_join(owner, NULL), 0);
  assert_int_equal(pthread_join(reader, NULL), 0);
  pthread_barrier_destroy(&w.start);
  support_assert_workers_ok();
  assert_true(atomic_load(&w.reads) >= 3);
  free(w.foreign);
  assert_heap_quiet();
}

/* ===== Stress: a ring of threads passing blocks ========================= */

/*
 * RING_THREADS threads start together on a barrier. Each allocates blocks
 * of random sizes (1..2048 bytes, and now and then a large one), fills
 * each with a pattern derived from (thread, sequence number) and passes it
 * to the next thread through a small bounded queue; the receiver checks
 * that the blocks come in order and that every byte is intact, and frees
 * them (remote frees, since the sender owns them). When done, each thread
 * collects and exits, which races with its neighbours' last frees.
 *
 * A failure means one of: two live blocks shared memory (a block handed
 * out twice, or a remote free that put a block back in its span's free list
 * before it was really free), a remote free lost or double-counted (live
 * bytes left at the end), or spans stranded when their owner exited
 * (abandoned live bytes left after the final collect).
 */
enum { RING_THREADS = 4, RING_QUEUE = 64 };

typedef struct ring_item_s {
  unsigned char *p;
  size_t size;
  uint64_t seq;
} ring_item_t;

typedef struct ring_queue_s {
  ring_item_t items[RING_QUEUE];
  size_t head, count;
} ring_queue_t;

typedef struct ring_s {
  pthread_barrier_t start;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  ring_queue_t into[RING_THREADS]; /* into[i]: blocks for thread i */
  size_t iters;                    /* blocks each thread sends */
} ring_t;

typedef struct ring_worker_s {
  ring_t *ring;
  unsigned index;
} ring_worker_t;

static uint64_t ring_key(unsigned thread, uint64_t seq) {
  return ((uint64_t)thread << 40) ^ seq;
}

static void ring_check_and_free(unsigned from, const ring_item_t *item,
                                uint64_t expected_seq) {
  if (!WORKER_CHECK(item->seq == expected_seq))
    fprintf(stderr,
            "from thread %u: got block %" PRIu64 ", expected %" PRIu64 "\n",
            from, item->seq, expected_seq);
  if (item->p == NULL)
    return; /* its allocation failed, already reported */
  WORKER_CHECK(isle_usable_size(item->p) >= item->size);
  size_t at = support_mismatch(item->p, item->size, ring_key(from, item->seq));
  if (!WORKER_CHECK(at == item->size))
    fprintf(stderr,
            "block %" PRIu64 " of thread %u (%p, %zu bytes) damaged "
            "at byte %zu\n",
            item->seq, from, (void *)item->p, item->size, at);
  isle_free(item->p);
}

static void *ring_thread(void *arg) {
  ring_worker_t *me = arg;
  ring_t *ring = me->ring;
  unsigned next = (me->index + 1) % RING_THREADS;
  unsigned prev = (me->index + RING_THREADS - 1) % RING_THREADS;
  ring_queue_t *out = &ring->into[next], *in = &ring->into[me->index];
  uint64_t rng = UINT64_C(0x9E3779B97F4A7C15) * (me->index + 1);
  size_t sent = 0, received = 0;
  bool pending = false;
  ring_item_t item = {NULL, 0, 0}, got[RING_QUEUE];
  char name[16];
  snprintf(name, sizeof name, "ring-%u", me->index);
  isle_heap_set_thread_name(name);

  pthread_barrier_wait(&ring->start);
  while (sent < ring->iters || received < ring->iters) {
    if (!pending && sent < ring->iters) {
      uint64_t r = support_rand(&rng);
      item.size = r % 128 == 0 ? ISLE_HEAP_SMALL_MAX + 1 + (r >> 8) % 200000
                               : 1 + (r >> 8) % 2048;
      item.seq = sent;
      item.p = isle_malloc(item.size);
      if (WORKER_CHECK(item.p != NULL))
        support_fill(item.p, item.size, ring_key(me->index, item.seq));
      pending = true;
    }
    size_t ngot = 0;
    pthread_mutex_lock(&ring->lock);
    /* Wait until we can push our block or pop blocks for us. Deadlock-free:
     * if every thread waited, each queue into a thread with blocks left to
     * send would be full, so its receiver would have blocks to pop. */
    while (!(pending && out->count < RING_QUEUE) &&
           !(received < ring->iters && in->count > 0))
      pthread_cond_wait(&ring->changed, &ring->lock);
    if (pending && out->count < RING_QUEUE) {
      out->items[(out->head + out->count) % RING_QUEUE] = item;
      out->count++;
      pending = false;
      sent++;
    }
    while (in->count > 0) {
      got[ngot++] = in->items[in->head];
      in->head = (in->head + 1) % RING_QUEUE;
      in->count--;
    }
    pthread_cond_broadcast(&ring->changed);
    pthread_mutex_unlock(&ring->lock);
    for (size_t k = 0; k < ngot; k++)
      ring_check_and_free(prev, &got[k], received++);
  }
  isle_heap_collect();
  return NULL;
}

static void
test_threads_stress_ring_keeps_blocks_intact_and_frees_all(void **state) {
  (void)state;
  ring_t *ring = calloc(1, sizeof *ring);
  assert_non_null(ring);
  ring->iters = support_iters(20000);
  assert_int_equal(pthread_barrier_init(&ring->start, NULL, RING_THREADS), 0);
  assert_int_equal(pthread_mutex_init(&ring->lock, NULL), 0);
  assert_int_equal(pthread_cond_init(&ring->changed, NULL), 0);
  ring_worker_t w[RING_THREADS];
  pthread_t t[RING_THREADS];
  for (unsigned i = 0; i < RING_THREADS; i++) {
    w[i] = (ring_worker_t){ring, i};
    assert_int_equal(pthread_create(&t[i], NULL, ring_thread, &w[i]), 0);
  }
  for (unsigned i = 0; i < RING_THREADS; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  pthread_cond_destroy(&ring->changed);
  pthread_mutex_destroy(&ring->lock);
  pthread_barrier_destroy(&ring->start);
  free(ring);
  support_assert_workers_ok();
  /* Absolute, not relative to the baseline: after the ring, no block is
   * live in any heap, retired or not, nor in any abandoned span. */
  isle_heap_collect();
  assert_int_equal(support_live_bytes_everywhere(), 0);
  assert_heap_quiet();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(
          test_threads_exit_abandons_partly_used_spans_until_freed,
          setup_baseline),
      cmocka_unit_test_setup(
          test_threads_new_thread_adopts_abandoned_spans_of_its_class,
          setup_baseline),
      cmocka_unit_test_setup(
          test_threads_remote_frees_sent_equal_remote_frees_received,
          setup_baseline),
      cmocka_unit_test_setup(test_threads_exit_delivers_pending_remote_frees,
                             setup_baseline),
      cmocka_unit_test_setup(test_threads_heapless_thread_frees_reach_the_owner,
                             setup_baseline),
      cmocka_unit_test_setup(
          test_threads_remote_frees_of_large_blocks_come_back, setup_baseline),
      cmocka_unit_test_setup(
          test_threads_owner_takes_in_remote_frees_when_it_runs_out,
          setup_baseline),
      cmocka_unit_test_setup(test_threads_stats_add_up_for_every_heap,
                             setup_baseline),
      cmocka_unit_test_setup(
          test_threads_stats_are_readable_while_the_owner_allocates,
          setup_baseline),
      cmocka_unit_test_setup(
          test_threads_stress_ring_keeps_blocks_intact_and_frees_all,
          setup_baseline),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
