/* isle — MIT licensed. */
/*
 * Debug builds (ISLE_DEBUG) abort on a double free or on freeing a pointer
 * the heap never gave out, with a message on stderr that names the pointer
 * (printed with %p). Each case runs in a forked child whose stderr goes
 * into a pipe; the parent checks that the child died of SIGABRT and that
 * the message names the pointer. A control case checks that correct frees
 * neither abort nor print.
 *
 * The heap validators (heap/validate.c) are checked the same way: a
 * threaded workload passes them, with the checks at their natural points
 * and explicit isle__heap_validate calls; then a child corrupts a free
 * list on purpose (a link out of the span, a link into the middle of a
 * block, a cycle; on the local list and on the remote-free list) and must
 * abort with "isle heap: corrupt span" naming the bad block, either at an
 * explicit isle__heap_validate or at a natural point (isle_heap_collect's
 * sweep, the owner taking remote frees in). A child that aborts is the
 * real reporting path, so the validators need no error-returning variant
 * for tests.
 *
 * Skipped when ISLE_DEBUG is off (the checks do not exist; one test checks
 * that isle__heap_validate is compiled out there) and under
 * ThreadSanitizer (fork in a TSan process is unreliable and noisy).
 */
#define _GNU_SOURCE /* fork, pipe, setrlimit under -std=c11 */

#include <pthread.h>      /* double and remote frees from other threads */
#include <sched.h>        /* sched_yield */
#include <signal.h>       /* SIGABRT */
#include <sys/resource.h> /* no core files from the children */
#include <sys/wait.h>     /* waitpid */
#include <unistd.h>       /* fork, pipe, dup2 */

#include "heap/internal.h" /* isle__heap_validate, isle__span_of */
#include "heap/track.h"    /* isle__link_get/set: links of free blocks */
#include "isle/heap.h"
#include "support.h"

/* ===== Running a case in a child ======================================== */

#if defined(ISLE_DEBUG) && (ISLE_DEBUG + 0)
#define DEBUG_CHECKS 1
#else
#define DEBUG_CHECKS 0
#endif

static void skip_unless_debug_checks(void) {
#if defined(SUPPORT_UNDER_TSAN)
  skip();
#endif
  if (!DEBUG_CHECKS)
    skip();
}

typedef struct outcome_s {
  bool aborted;   /* died of SIGABRT */
  int exit_code;  /* when it exited instead, -1 otherwise */
  char err[8192]; /* what it wrote to stderr */
} outcome_t;

typedef void child_fn_t(void *arg);

/* Runs fn(arg) in a forked child and reports how it ended. The child
 * exits 0 if fn returns. */
static outcome_t run_child(child_fn_t *fn, void *arg) {
  outcome_t o;
  memset(&o, 0, sizeof o);
  o.exit_code = -1;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    fn(arg);
    _exit(0);
  }
  close(fds[1]);
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fds[0], o.err + len, sizeof o.err - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
    if (len == sizeof o.err - 1)
      break;
  }
  o.err[len] = '\0';
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  o.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  if (WIFEXITED(status))
    o.exit_code = WEXITSTATUS(status);
  return o;
}

/* The child must have aborted with a message naming `p`. */
static void assert_aborted_naming(const outcome_t *o, const void *p) {
  char name[64];
  snprintf(name, sizeof name, "%p", p);
  if (!o->aborted || strstr(o->err, name) == NULL) {
    fprintf(stderr,
            "expected an abort naming %s; child %s (exit %d), stderr:\n%s\n",
            name, o->aborted ? "aborted" : "did not abort", o->exit_code,
            o->err);
    fail();
  }
}

/* ===== Children ========================================================= */

static void free_twice(void *p) {
  isle_free(p);
  isle_free(p);
}

typedef struct two_s {
  void *p, *q;
} two_t;

/* p, then q, then p again: the second free of p is not the last free. */
static void free_p_q_p(void *arg) {
  two_t *t = arg;
  isle_free(t->p);
  isle_free(t->q);
  isle_free(t->p);
}

static void *free_twice_thread(void *p) {
  free_twice(p);
  return NULL;
}

/* The double free happens on another thread: a remote free of a block
 * this process's main thread owns. */
static void free_twice_on_a_thread(void *p) {
  pthread_t t;
  if (pthread_create(&t, NULL, free_twice_thread, p) != 0)
    _exit(3);
  pthread_join(t, NULL);
}

static void free_once(void *p) {
  isle_free(p);
}

/* Correct use: allocate, free, and leave. Must neither abort nor print. */
static void correct_frees(void *arg) {
  (void)arg;
  for (size_t size = 1; size < 70000; size = size * 3 + 1) {
    void *p = isle_malloc(size);
    if (p == NULL)
      _exit(2);
    isle_free(p);
  }
  isle_free(NULL);
  void *q = isle_aligned_alloc(4096, 100);
  if (q == NULL)
    _exit(2);
  isle_free(q);
}

/* ===== Tests ============================================================ */

static void test_debug_correct_frees_do_not_abort(void **state) {
  (void)state;
  skip_unless_debug_checks();
  outcome_t o = run_child(correct_frees, NULL);
  assert_false(o.aborted);
  assert_int_equal(o.exit_code, 0);
  assert_string_equal(o.err, "");
}

static void check_double_free(size_t size) {
  void *p = isle_malloc(size);
  assert_non_null(p);
  outcome_t o = run_child(free_twice, p);
  assert_aborted_naming(&o, p);
  isle_free(p); /* the parent's copy is still live */
}

static void test_debug_double_free_of_a_small_block_aborts(void **state) {
  (void)state;
  skip_unless_debug_checks();
  check_double_free(1);
  check_double_free(64);
  check_double_free(ISLE_HEAP_SMALL_MAX);
}

static void test_debug_double_free_of_a_large_block_aborts(void **state) {
  (void)state;
  skip_unless_debug_checks();
  check_double_free(ISLE_HEAP_SMALL_MAX + 1);
  check_double_free(MIB);
}

static void test_debug_double_free_of_a_huge_block_aborts(void **state) {
  (void)state;
  skip_unless_debug_checks();
  check_double_free(32 * MIB);
}

static void test_debug_double_free_after_other_frees_aborts(void **state) {
  (void)state;
  skip_unless_debug_checks();
  two_t t = {isle_malloc(100), isle_malloc(100)};
  assert_non_null(t.p);
  assert_non_null(t.q);
  outcome_t o = run_child(free_p_q_p, &t);
  assert_aborted_naming(&o, t.p);
  isle_free(t.p);
  isle_free(t.q);
}

static void test_debug_double_free_from_another_thread_aborts(void **state) {
  (void)state;
  skip_unless_debug_checks();
  void *p = isle_malloc(200);
  assert_non_null(p);
  outcome_t o = run_child(free_twice_on_a_thread, p);
  assert_aborted_naming(&o, p);
  isle_free(p);
}

static void test_debug_free_of_a_libc_pointer_aborts(void **state) {
  (void)state;
  skip_unless_debug_checks();
  void *p = malloc(64);
  assert_non_null(p);
  outcome_t o = run_child(free_once, p);
  assert_aborted_naming(&o, p);
  free(p);
}

static void test_debug_free_of_a_stack_pointer_aborts(void **state) {
  (void)state;
  skip_unless_debug_checks();
  char on_stack[64];
  outcome_t o = run_child(free_once, on_stack);
  assert_aborted_naming(&o, on_stack);
}

static void test_debug_free_of_a_static_pointer_aborts(void **state) {
  (void)state;
  skip_unless_debug_checks();
  static char in_data[64];
  outcome_t o = run_child(free_once, in_data);
  assert_aborted_naming(&o, in_data);
}

/* A pointer inside a block the heap gave out is not a block the heap gave
 * out: small (one granule in, and one byte in) and large. */
static void test_debug_free_of_an_interior_pointer_aborts(void **state) {
  (void)state;
  skip_unless_debug_checks();
  char *small = isle_malloc(64);
  char *large = isle_malloc(MIB);
  assert_non_null(small);
  assert_non_null(large);
  outcome_t o = run_child(free_once, small + 16);
  assert_aborted_naming(&o, small + 16);
  o = run_child(free_once, small + 1);
  assert_aborted_naming(&o, small + 1);
  o = run_child(free_once, large + 4096);
  assert_aborted_naming(&o, large + 4096);
  o = run_child(free_once, large + 16);
  assert_aborted_naming(&o, large + 16);
  isle_free(small);
  isle_free(large);
}

/* ===== Validators ======================================================= */

/* Builds without ISLE_DEBUG compile the validators out: isle__heap_validate
 * checks nothing and says so by returning 0; debug builds count the spans
 * of the calling thread's heap, at least the one holding `p`. */
static void
test_debug_validate_is_compiled_out_without_isle_debug(void **state) {
  (void)state;
  void *p = isle_malloc(32);
  assert_non_null(p);
  size_t checked = isle__heap_validate();
  if (DEBUG_CHECKS)
    assert_true(checked >= 1);
  else
    assert_int_equal(checked, 0);
  isle_free(p);
}

/* ----- A workload that must pass ---------------------------------------- */

#define VQ_SLOTS 256

/* Blocks handed from the producers to the consumer, under a mutex: the
 * test is about the heap, not about a lock-free queue. */
typedef struct vqueue_s {
  pthread_mutex_t lock;
  pthread_barrier_t start;
  void *slot[VQ_SLOTS];
  size_t n;
  size_t iters;
} vqueue_t;

static void vqueue_put(vqueue_t *q, void *p) {
  for (;;) {
    pthread_mutex_lock(&q->lock);
    if (q->n < VQ_SLOTS) {
      q->slot[q->n++] = p;
      pthread_mutex_unlock(&q->lock);
      return;
    }
    pthread_mutex_unlock(&q->lock);
    sched_yield();
  }
}

static void *vqueue_take(vqueue_t *q) {
  pthread_mutex_lock(&q->lock);
  void *p = q->n ? q->slot[--q->n] : NULL;
  pthread_mutex_unlock(&q->lock);
  return p;
}

/* Allocates blocks of many classes; frees a third itself (local frees)
 * and hands the rest to the consumer (remote frees); validates its own
 * heap every 1024 blocks. Exits with live blocks in the queue, so its
 * spans are abandoned with blocks out and swept later. */
static void *validate_producer(void *arg) {
  vqueue_t *q = arg;
  pthread_barrier_wait(&q->start);
  for (size_t i = 0; i < q->iters; i++) {
    size_t size = 1 + (i * 37) % 3000;
    char *p = isle_malloc(size);
    if (!p)
      return (void *)1;
    p[0] = (char)i;
    if (i % 3 == 0)
      isle_free(p);
    else
      vqueue_put(q, p);
    if (i % 1024 == 0)
      isle__heap_validate();
  }
  isle__heap_validate();
  return NULL;
}

/* Two producers, the main thread consuming (and allocating blocks of its
 * own meanwhile). The validators run at every refill, sweep and release,
 * and at explicit calls on all three threads; a failure aborts the test
 * binary with "isle heap: corrupt ...". */
static void test_debug_validate_passes_on_a_threaded_workload(void **state) {
  (void)state;
  skip_unless_debug_checks();
  static vqueue_t q;
  q.n = 0;
  q.iters = support_iters(40000);
  pthread_mutex_init(&q.lock, NULL);
  pthread_barrier_init(&q.start, NULL, 3);
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&t[i], NULL, validate_producer, &q), 0);
  void *mine[64] = {0};
  pthread_barrier_wait(&q.start);
  size_t freed = 0;
  /* Stop once both producers are done and the queue is empty. */
  int running = 2;
  void *ret[2] = {NULL, NULL};
  while (running > 0 || q.n > 0) {
    void *p = vqueue_take(&q);
    if (p) {
      isle_free(p);
      if (++freed % 1024 == 0) {
        unsigned k = (unsigned)(freed / 1024) % 64;
        isle_free(mine[k]);
        mine[k] = isle_malloc(16 + k * 24);
        assert_non_null(mine[k]);
        assert_true(isle__heap_validate() >= 1);
      }
    } else if (running > 0) {
      if (pthread_tryjoin_np(t[2 - running], &ret[2 - running]) == 0)
        running--;
      else
        sched_yield();
    }
  }
  assert_null(ret[0]);
  assert_null(ret[1]);
  /* Hands the consumer's batches over, takes remote frees in and sweeps
   * the producers' abandoned spans: each of those steps validates. */
  assert_true(isle__heap_validate() >= 1);
  isle_heap_collect();
  for (unsigned k = 0; k < 64; k++)
    isle_free(mine[k]);
  isle_heap_collect();
  isle__heap_validate();
  pthread_barrier_destroy(&q.start);
  pthread_mutex_destroy(&q.lock);
}

/* ----- Corruption that must be reported --------------------------------- */

/* What a child wrote must report a corrupt span, say `phrase`, and name
 * `p` when it is not NULL. */
static void assert_corruption_reported(const outcome_t *o, const char *phrase,
                                       const void *p) {
  char name[64] = "";
  if (p)
    snprintf(name, sizeof name, ": %p\n", p);
  if (!o->aborted || strstr(o->err, "isle heap: corrupt span") == NULL ||
      strstr(o->err, phrase) == NULL || strstr(o->err, name) == NULL) {
    fprintf(stderr,
            "expected an abort reporting \"%s\"%s%s; child %s (exit %d), "
            "stderr:\n%s\n",
            phrase, p ? " naming" : "", name,
            o->aborted ? "aborted" : "did not abort", o->exit_code, o->err);
    fail();
  }
}

static char not_in_the_heap[64];

/* Two blocks of one class, allocated by the parent so that the parent
 * knows their addresses; a child frees them (q, then p: the span's free
 * list is p -> q -> ...) and writes `bad` into one's link. */
typedef struct corrupt_s {
  char *p, *q;
  void *bad;          /* the link to write */
  bool into_q;        /* write it into q's link, else p's */
  bool by_collection; /* report through isle_heap_collect, not validate */
} corrupt_t;

static void corrupt_local_list(void *arg) {
  corrupt_t *c = arg;
  isle_free(c->q);
  isle_free(c->p);
  isle__link_set((isle__block_t *)(c->into_q ? c->q : c->p), c->bad);
  if (c->by_collection)
    isle_heap_collect();
  else
    isle__heap_validate();
}

static void check_local_corruption(corrupt_t c, const char *phrase,
                                   const void *named) {
  c.p = isle_malloc(64);
  c.q = isle_malloc(64);
  assert_non_null(c.p);
  assert_non_null(c.q);
  if (c.bad == NULL)
    c.bad = c.p; /* q -> p closes the cycle p -> q -> p */
  if (named == NULL)
    named = c.bad;
  outcome_t o = run_child(corrupt_local_list, &c);
  assert_corruption_reported(&o, phrase, named);
  isle_free(c.p); /* the parent's copies are still live */
  isle_free(c.q);
}

static void test_debug_validate_reports_a_link_out_of_the_span(void **state) {
  (void)state;
  skip_unless_debug_checks();
  check_local_corruption((corrupt_t){.bad = not_in_the_heap},
                         "free list: a link points outside the span's blocks",
                         NULL);
}

static void test_debug_validate_reports_a_link_inside_a_block(void **state) {
  (void)state;
  skip_unless_debug_checks();
  char *other = isle_malloc(64);
  assert_non_null(other);
  check_local_corruption((corrupt_t){.bad = other + 16},
                         "free list: a link points inside a block", NULL);
  isle_free(other);
}

static void test_debug_validate_reports_a_free_list_cycle(void **state) {
  (void)state;
  skip_unless_debug_checks();
  check_local_corruption((corrupt_t){.into_q = true},
                         "free list: a block is listed twice", NULL);
}

/* The same corruption found at a natural point: isle_heap_collect's sweep
 * of the calling thread's spans. */
static void
test_debug_validate_reports_a_bad_link_when_collected(void **state) {
  (void)state;
  skip_unless_debug_checks();
  check_local_corruption(
      (corrupt_t){.bad = not_in_the_heap, .by_collection = true},
      "free list: a link points outside the span's blocks", NULL);
}

/* Remote frees: a thread with no heap of its own frees blocks the main
 * thread owns, each pushed alone onto the span's xfree list; the child
 * then makes the list's tail point at `bad` (NULL: at the head, a cycle). */
#define REMOTE_BLOCKS 4

typedef struct remote_corrupt_s {
  char *blocks[REMOTE_BLOCKS];
  void *bad;
  bool by_collection; /* report when the owner takes the list in */
} remote_corrupt_t;

static void *free_all_remote(void *arg) {
  remote_corrupt_t *c = arg;
  for (int i = 0; i < REMOTE_BLOCKS; i++)
    isle_free(c->blocks[i]);
  return NULL;
}

static void corrupt_remote_list(void *arg) {
  remote_corrupt_t *c = arg;
  pthread_t t;
  if (pthread_create(&t, NULL, free_all_remote, c) != 0)
    _exit(3);
  pthread_join(t, NULL);
  isle__span_t *s = isle__span_of(c->blocks[0]);
  isle__block_t *head = atomic_load(&s->xfree);
  if (head == NULL)
    _exit(4);
  isle__block_t *tail = head;
  for (int i = 0; i < REMOTE_BLOCKS && isle__link_get(tail); i++)
    tail = isle__link_get(tail);
  isle__link_set(tail, c->bad ? c->bad : head);
  if (c->by_collection)
    isle_heap_collect();
  else
    isle__heap_validate();
}

static void check_remote_corruption(remote_corrupt_t c, const char *phrase) {
  for (int i = 0; i < REMOTE_BLOCKS; i++) {
    c.blocks[i] = isle_malloc(80);
    assert_non_null(c.blocks[i]);
  }
  outcome_t o = run_child(corrupt_remote_list, &c);
  assert_corruption_reported(&o, phrase, c.bad);
  for (int i = 0; i < REMOTE_BLOCKS; i++)
    isle_free(c.blocks[i]);
}

static void test_debug_validate_reports_a_remote_free_cycle(void **state) {
  (void)state;
  skip_unless_debug_checks();
  check_remote_corruption((remote_corrupt_t){0},
                          "remote-free list: a block is listed twice");
}

/* The bounded walk when the owner takes the list in (isle_heap_collect ->
 * isle__span_collect), which would otherwise loop for ever on the cycle. */
static void
test_debug_validate_reports_a_remote_free_cycle_when_taken_in(void **state) {
  (void)state;
  skip_unless_debug_checks();
  check_remote_corruption((remote_corrupt_t){.by_collection = true},
                          "remote-free list: a block is listed twice");
}

static void
test_debug_validate_reports_a_remote_free_link_out_of_the_span(void **state) {
  (void)state;
  skip_unless_debug_checks();
  check_remote_corruption(
      (remote_corrupt_t){.bad = not_in_the_heap},
      "remote-free list: a link points outside the span's blocks");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_debug_correct_frees_do_not_abort),
      cmocka_unit_test(test_debug_double_free_of_a_small_block_aborts),
      cmocka_unit_test(test_debug_double_free_of_a_large_block_aborts),
      cmocka_unit_test(test_debug_double_free_of_a_huge_block_aborts),
      cmocka_unit_test(test_debug_double_free_after_other_frees_aborts),
      cmocka_unit_test(test_debug_double_free_from_another_thread_aborts),
      cmocka_unit_test(test_debug_free_of_a_libc_pointer_aborts),
      cmocka_unit_test(test_debug_free_of_a_stack_pointer_aborts),
      cmocka_unit_test(test_debug_free_of_a_static_pointer_aborts),
      cmocka_unit_test(test_debug_free_of_an_interior_pointer_aborts),
      cmocka_unit_test(test_debug_validate_is_compiled_out_without_isle_debug),
      cmocka_unit_test(test_debug_validate_passes_on_a_threaded_workload),
      cmocka_unit_test(test_debug_validate_reports_a_link_out_of_the_span),
      cmocka_unit_test(test_debug_validate_reports_a_link_inside_a_block),
      cmocka_unit_test(test_debug_validate_reports_a_free_list_cycle),
      cmocka_unit_test(test_debug_validate_reports_a_bad_link_when_collected),
      cmocka_unit_test(test_debug_validate_reports_a_remote_free_cycle),
      cmocka_unit_test(
          test_debug_validate_reports_a_remote_free_cycle_when_taken_in),
      cmocka_unit_test(
          test_debug_validate_reports_a_remote_free_link_out_of_the_span),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
