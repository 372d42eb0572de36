/* isle — MIT licensed. */
/*
 * Debug builds (ISLE_DEBUG) abort on a double free or on freeing a pointer
 * the heap never gave out, with a message on stderr that names the pointer
 * (printed with %p). Each case runs in a forked child whose stderr goes
 * into a pipe; the parent checks that the child died of SIGABRT and that
 * the message names the pointer. A control case checks that correct frees
 * neither abort nor print.
 *
 * Skipped when ISLE_DEBUG is off (the checks do not exist) and under
 * ThreadSanitizer (fork in a TSan process is unreliable and noisy).
 */
#define _GNU_SOURCE /* fork, pipe, setrlimit under -std=c11 */

#include <pthread.h>      /* a double free from another thread */
#include <signal.h>       /* SIGABRT */
#include <sys/resource.h> /* no core files from the children */
#include <sys/wait.h>     /* waitpid */
#include <unistd.h>       /* fork, pipe, dup2 */

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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
