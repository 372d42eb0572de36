/* isle — MIT licensed. */
/*
 * Profiling: the flow matrix and the counters beside it (remote bytes
 * sent and received, bytes returned to the OS, the main thread's name),
 * and the sampler (isle_profile_start/stop, ISLE_PROFILE): its argument
 * and state errors, a known program profiled (threads present, snapshot
 * sums equal to the heap statistics, flow equal to what was sent), and
 * the start from the environment in a child process.
 *
 * The known program: thread prof-p1 allocates P1_SMALL blocks of
 * P1_SMALL_SIZE bytes and P1_LARGE large ones, prof-p2 P2_SMALL blocks of
 * P2_SMALL_SIZE, and prof-c frees them all. Counters are cumulative over
 * the process and heap records are reused, so expectations are deltas.
 */
#define _GNU_SOURCE /* syscall, mkdtemp, getline */

#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "isle/error.h"
#include "isle/heap.h"
#include "support.h"

enum {
  P1_SMALL = 1000,
  P1_SMALL_SIZE = 100,
  P1_LARGE = 3,
  P1_LARGE_SIZE = 40000,
  P2_SMALL = 500,
  P2_SMALL_SIZE = 300,
};

static char tmpdir[256];
static char *self_exe;

/* ===== Helpers ========================================================== */

static void tmp_path(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* A copy of the flow matrix (malloc'd, caller frees). */
static isle_heap_flow_t *flow_copy(size_t *n) {
  size_t cap = isle_heap_flow(NULL, 0) + 16;
  isle_heap_flow_t *cells = calloc(cap, sizeof *cells);
  assert_non_null(cells);
  *n = isle_heap_flow(cells, cap);
  assert_true(*n <= cap);
  return cells;
}

static const isle_heap_flow_t *flow_find(const isle_heap_flow_t *cells,
                                         size_t n, uint64_t from, uint64_t to) {
  for (size_t i = 0; i < n; i++)
    if (cells[i].from_heap_id == from && cells[i].to_heap_id == to)
      return &cells[i];
  return NULL;
}

static isle_heap_stats_t stats_of(uint64_t heap_id) {
  size_t n = 0;
  isle_heap_stats_t *all = support_all_stats(&n);
  assert_non_null(all);
  const isle_heap_stats_t *s = support_find_heap(all, n, heap_id);
  assert_non_null(s);
  isle_heap_stats_t copy = *s;
  free(all);
  return copy;
}

static size_t file_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = 0;
  int c;
  while ((c = fgetc(f)) != EOF)
    n += c == '\n';
  fclose(f);
  return n;
}

/* Every line of a JSON-lines file, parsed; fails the test on a line that
 * is not JSON. */
static json_t **read_jsonl(const char *path, size_t *count) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t cap = 64, n = 0;
  json_t **lines = calloc(cap, sizeof *lines);
  assert_non_null(lines);
  char *buf = NULL;
  size_t bcap = 0;
  ssize_t len;
  while ((len = getline(&buf, &bcap, f)) >= 0) {
    json_error_t err;
    json_t *v = json_loadb(buf, (size_t)len, 0, &err);
    if (!v)
      fprintf(stderr, "%s:%zu: %s\n", path, n + 1, err.text);
    assert_non_null(v);
    assert_int_equal(buf[len - 1], '\n');
    if (n == cap) {
      cap *= 2;
      lines = realloc(lines, cap * sizeof *lines);
      assert_non_null(lines);
    }
    lines[n++] = v;
  }
  free(buf);
  fclose(f);
  *count = n;
  return lines;
}

static void free_jsonl(json_t **lines, size_t n) {
  for (size_t i = 0; i < n; i++)
    json_decref(lines[i]);
  free(lines);
}

static uint64_t jint(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  assert_non_null(v);
  assert_true(json_is_integer(v));
  return (uint64_t)json_integer_value(v);
}

/* The thread entry with heap id `heap` in a snapshot, or NULL. */
static json_t *snap_thread(json_t *snap, uint64_t heap) {
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(snap, "threads"), i, t) {
    if (jint(t, "heap") == heap)
      return t;
  }
  return NULL;
}

/* ===== The known program ================================================ */

typedef struct program_s {
  pthread_barrier_t allocated, go, freed, checked, collected;
  void *p1[P1_SMALL + P1_LARGE];
  void *p2[P2_SMALL];
  uint64_t p1_large_bytes; /* usable bytes of p1's large blocks */
  uint64_t id_p1, id_p2, id_c;
  isle_heap_stats_t before_p1, before_p2, before_c;
  const char *profile; /* when set: wait for 2 snapshots after allocating */
} program_t;

static void *p1_main(void *arg) {
  program_t *pg = arg;
  WORKER_CHECK(isle_heap_set_thread_name("prof-p1") == 0);
  WORKER_CHECK(isle_heap_stats_self(&pg->before_p1) == 0);
  pg->id_p1 = pg->before_p1.heap_id;
  for (size_t i = 0; i < P1_SMALL; i++)
    WORKER_CHECK((pg->p1[i] = isle_malloc(P1_SMALL_SIZE)) != NULL);
  for (size_t i = 0; i < P1_LARGE; i++) {
    void *p = isle_malloc(P1_LARGE_SIZE + i * 10000);
    WORKER_CHECK(p != NULL);
    pg->p1[P1_SMALL + i] = p;
    pg->p1_large_bytes += isle_usable_size(p);
  }
  pthread_barrier_wait(&pg->allocated);
  pthread_barrier_wait(&pg->go);
  pthread_barrier_wait(&pg->freed);
  pthread_barrier_wait(&pg->checked);
  isle_heap_collect(); /* take in what prof-c freed */
  pthread_barrier_wait(&pg->collected);
  return NULL;
}

static void *p2_main(void *arg) {
  program_t *pg = arg;
  WORKER_CHECK(isle_heap_set_thread_name("prof-p2") == 0);
  WORKER_CHECK(isle_heap_stats_self(&pg->before_p2) == 0);
  pg->id_p2 = pg->before_p2.heap_id;
  for (size_t i = 0; i < P2_SMALL; i++)
    WORKER_CHECK((pg->p2[i] = isle_malloc(P2_SMALL_SIZE)) != NULL);
  pthread_barrier_wait(&pg->allocated);
  pthread_barrier_wait(&pg->go);
  pthread_barrier_wait(&pg->freed);
  pthread_barrier_wait(&pg->checked);
  isle_heap_collect();
  pthread_barrier_wait(&pg->collected);
  return NULL;
}

static void *c_main(void *arg) {
  program_t *pg = arg;
  WORKER_CHECK(isle_heap_set_thread_name("prof-c") == 0);
  WORKER_CHECK(isle_heap_stats_self(&pg->before_c) == 0);
  pg->id_c = pg->before_c.heap_id;
  pthread_barrier_wait(&pg->allocated);
  pthread_barrier_wait(&pg->go);
  for (size_t i = 0; i < P1_SMALL + P1_LARGE; i++)
    isle_free(pg->p1[i]);
  for (size_t i = 0; i < P2_SMALL; i++)
    isle_free(pg->p2[i]);
  isle_heap_collect(); /* hand the last batches over */
  pthread_barrier_wait(&pg->freed);
  pthread_barrier_wait(&pg->checked);
  pthread_barrier_wait(&pg->collected);
  return NULL;
}

static uint64_t p1_small_bytes(void) {
  return (uint64_t)P1_SMALL *
         isle_heap_class_size((unsigned)isle_heap_size_class(P1_SMALL_SIZE));
}

static uint64_t p2_small_bytes(void) {
  return (uint64_t)P2_SMALL *
         isle_heap_class_size((unsigned)isle_heap_size_class(P2_SMALL_SIZE));
}

/* Checks that the flow grew by exactly p1->c and p2->c between `before`
 * and `after`, and nowhere else. */
static void assert_flow_delta(const program_t *pg,
                              const isle_heap_flow_t *before, size_t nb,
                              const isle_heap_flow_t *after, size_t na) {
  uint64_t want_p1 = p1_small_bytes() + pg->p1_large_bytes;
  for (size_t i = 0; i < na; i++) {
    const isle_heap_flow_t *a = &after[i];
    const isle_heap_flow_t *b =
        flow_find(before, nb, a->from_heap_id, a->to_heap_id);
    uint64_t dbytes = a->bytes - (b ? b->bytes : 0);
    uint64_t dblocks = a->blocks - (b ? b->blocks : 0);
    if (a->to_heap_id == pg->id_c && a->from_heap_id == pg->id_p1) {
      assert_int_equal(dbytes, want_p1);
      assert_int_equal(dblocks, P1_SMALL + P1_LARGE);
    } else if (a->to_heap_id == pg->id_c && a->from_heap_id == pg->id_p2) {
      assert_int_equal(dbytes, p2_small_bytes());
      assert_int_equal(dblocks, P2_SMALL);
    } else {
      if (dbytes || dblocks)
        fprintf(stderr, "unexpected flow %" PRIu64 " -> %" PRIu64 "\n",
                a->from_heap_id, a->to_heap_id);
      assert_int_equal(dbytes, 0);
      assert_int_equal(dblocks, 0);
    }
  }
  assert_non_null(flow_find(after, na, pg->id_p1, pg->id_c));
  assert_non_null(flow_find(after, na, pg->id_p2, pg->id_c));
}

/* Runs the program; `check` (may be NULL) runs on the test's thread while
 * every thread is parked after the frees. */
static void run_program(program_t *pg, void (*check_freed)(program_t *, void *),
                        void *arg) {
  pthread_barrier_t *bars[] = {&pg->allocated, &pg->go, &pg->freed,
                               &pg->checked, &pg->collected};
  for (size_t i = 0; i < 5; i++)
    assert_int_equal(pthread_barrier_init(bars[i], NULL, 4), 0);
  pthread_t t[3];
  assert_int_equal(pthread_create(&t[0], NULL, p1_main, pg), 0);
  assert_int_equal(pthread_create(&t[1], NULL, p2_main, pg), 0);
  assert_int_equal(pthread_create(&t[2], NULL, c_main, pg), 0);
  pthread_barrier_wait(&pg->allocated);
  if (pg->profile) {
    /* Two more snapshots: at least one taken with every block live. */
    size_t lines = file_lines(pg->profile);
    for (int i = 0; i < 10000 && file_lines(pg->profile) < lines + 2; i++)
      usleep(1000);
  }
  pthread_barrier_wait(&pg->go);
  pthread_barrier_wait(&pg->freed);
  if (check_freed)
    check_freed(pg, arg);
  pthread_barrier_wait(&pg->checked);
  pthread_barrier_wait(&pg->collected);
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  for (size_t i = 0; i < 5; i++)
    pthread_barrier_destroy(bars[i]);
  support_assert_workers_ok();
}

/* ===== Counters and the flow matrix ===================================== */

/* Runs first: nothing has renamed the main thread yet. */
static void test_profile_main_thread_is_named_main(void **state) {
  assert_string_equal(support_self_stats().name, "main");
}

typedef struct flow_check_s {
  isle_heap_flow_t *before;
  size_t nbefore;
} flow_check_t;

static void check_after_frees(program_t *pg, void *arg) {
  flow_check_t *fc = arg;
  size_t na = 0;
  isle_heap_flow_t *after = flow_copy(&na);
  assert_flow_delta(pg, fc->before, fc->nbefore, after, na);
  /* The freeing thread's sent counters grew by the same, and its row
   * sums to them. */
  isle_heap_stats_t c = stats_of(pg->id_c);
  uint64_t want = p1_small_bytes() + pg->p1_large_bytes + p2_small_bytes();
  assert_int_equal(c.remote_frees_sent - pg->before_c.remote_frees_sent,
                   P1_SMALL + P1_LARGE + P2_SMALL);
  assert_int_equal(c.remote_bytes_sent - pg->before_c.remote_bytes_sent, want);
  uint64_t row_bytes = 0, row_blocks = 0;
  for (size_t i = 0; i < na; i++)
    if (after[i].to_heap_id == pg->id_c) {
      row_bytes += after[i].bytes;
      row_blocks += after[i].blocks;
    }
  assert_int_equal(row_bytes, c.remote_bytes_sent);
  assert_int_equal(row_blocks, c.remote_frees_sent);
  /* The large blocks reached their owner at once; the small ones wait
   * until it takes them in. */
  isle_heap_stats_t p1 = stats_of(pg->id_p1);
  assert_int_equal(
      p1.remote_frees_received - pg->before_p1.remote_frees_received, P1_LARGE);
  assert_int_equal(p1.remote_bytes_received -
                       pg->before_p1.remote_bytes_received,
                   pg->p1_large_bytes);
  free(after);
}

static void test_profile_flow_matrix_matches_what_threads_freed(void **state) {
  program_t *pg = calloc(1, sizeof *pg);
  assert_non_null(pg);
  flow_check_t fc;
  fc.before = flow_copy(&fc.nbefore);
  run_program(pg, check_after_frees, &fc);
  /* After the owners took their blocks in: received equals sent. */
  isle_heap_stats_t p1 = stats_of(pg->id_p1), p2 = stats_of(pg->id_p2);
  assert_int_equal(p1.remote_frees_received -
                       pg->before_p1.remote_frees_received,
                   P1_SMALL + P1_LARGE);
  assert_int_equal(p1.remote_bytes_received -
                       pg->before_p1.remote_bytes_received,
                   p1_small_bytes() + pg->p1_large_bytes);
  assert_int_equal(
      p2.remote_frees_received - pg->before_p2.remote_frees_received, P2_SMALL);
  assert_int_equal(p2.remote_bytes_received -
                       pg->before_p2.remote_bytes_received,
                   p2_small_bytes());
  assert_int_equal(p1.live_bytes, pg->before_p1.live_bytes);
  assert_int_equal(p2.live_bytes, pg->before_p2.live_bytes);
  free(fc.before);
  free(pg);
}

/* isle_heap_flow reports how many cells exist and never writes past max. */
static void test_profile_flow_respects_max(void **state) {
  size_t n = isle_heap_flow(NULL, 0);
  assert_true(n >= 2); /* the program above ran */
  isle_heap_flow_t cells[2];
  memset(cells, 0xAB, sizeof cells);
  unsigned char untouched[sizeof cells[1]];
  memcpy(untouched, &cells[1], sizeof untouched);
  assert_int_equal(isle_heap_flow(cells, 1), n);
  assert_true(cells[0].bytes > 0 && cells[0].blocks > 0);
  assert_true(cells[0].to_heap_id >= 1);
  assert_memory_equal(&cells[1], untouched, sizeof untouched);
}

/* Pages purged by this thread's trim and a huge block it unmaps count as
 * returned to the OS by this thread. */
static void test_profile_os_returns_are_counted(void **state) {
  isle_heap_collect();
  isle_heap_stats_t before = support_self_stats();
  void *big = isle_malloc(2 * MIB); /* pool pages */
  assert_non_null(big);
  memset(big, 1, 2 * MIB);
  isle_free(big);
  isle_heap_trim();
  isle_heap_stats_t trimmed = support_self_stats();
  assert_true(trimmed.os_returned_bytes >= before.os_returned_bytes + 2 * MIB);
  assert_true(trimmed.os_returns > before.os_returns);
  void *huge = isle_malloc(20 * MIB); /* a mapping of its own */
  assert_non_null(huge);
  isle_free(huge);
  isle_heap_stats_t unmapped = support_self_stats();
  assert_true(unmapped.os_returned_bytes >=
              trimmed.os_returned_bytes + 20 * MIB);
  assert_int_equal(unmapped.os_returns, trimmed.os_returns + 1);
}

/* ===== The sampler: arguments and states ================================ */

static void test_profile_start_rejects_bad_arguments(void **state) {
  char path[512];
  tmp_path(path, sizeof path, "bad-args.jsonl");
  assert_int_equal(isle_profile_start(NULL, 10), ISLE_EINVAL);
  assert_int_equal(isle_profile_start("", 10), ISLE_EINVAL);
  assert_int_equal(isle_profile_start(path, 0), ISLE_EINVAL);
  assert_int_equal(isle_profile_start(path, 0xFFFFFFFFu), ISLE_EINVAL);
  assert_int_equal(isle_profile_running(), 0);
  assert_int_equal(access(path, F_OK), -1); /* nothing was created */
}

static void test_profile_start_reports_an_unopenable_file(void **state) {
  char path[512];
  tmp_path(path, sizeof path, "no-such-dir/profile.jsonl");
  assert_int_equal(isle_profile_start(path, 10), ISLE_EIO);
  assert_int_equal(isle_profile_running(), 0);
}

static void test_profile_stop_without_start_is_a_state_error(void **state) {
  assert_int_equal(isle_profile_stop(), ISLE_ESTATE);
}

/* A second start is refused while one runs; stop, then start again works;
 * the sampler makes no heap record of its own. */
static void test_profile_start_twice_is_busy_and_restart_works(void **state) {
  char path[512];
  tmp_path(path, sizeof path, "twice.jsonl");
  (void)support_self_stats();
  uint64_t heaps = support_global_stats().heaps;
  assert_int_equal(isle_profile_start(path, 1), 0);
  assert_int_equal(isle_profile_running(), 1);
  assert_int_equal(isle_profile_start(path, 1), ISLE_EBUSY);
  usleep(20000);
  assert_int_equal(isle_profile_stop(), 0);
  assert_int_equal(isle_profile_running(), 0);
  assert_int_equal(isle_profile_stop(), ISLE_ESTATE);
  assert_int_equal(support_global_stats().heaps, heaps);
  assert_int_equal(isle_profile_start(path, 1), 0);
  assert_int_equal(isle_profile_stop(), 0);
  /* The restart truncated the file: one header, snapshots from seq 0. */
  size_t n = 0;
  json_t **lines = read_jsonl(path, &n);
  assert_true(n >= 2);
  assert_non_null(json_object_get(lines[0], "isle_profile"));
  assert_int_equal(jint(lines[1], "seq"), 0);
  assert_true(json_is_true(json_object_get(lines[n - 1], "final")));
  free_jsonl(lines, n);
}

/* Writes that fail (a full device) are reported by stop. */
static void test_profile_stop_reports_failed_writes(void **state) {
  if (access("/dev/full", W_OK) != 0) {
    skip();
  }
  assert_int_equal(isle_profile_start("/dev/full", 1), 0);
  usleep(5000);
  assert_int_equal(isle_profile_stop(), ISLE_EIO);
  assert_int_equal(isle_profile_running(), 0);
}

/* A child made by fork has no sampler thread: stopping there is refused
 * and leaves the parent's sampler running. */
static void test_profile_stop_in_a_forked_child_is_a_state_error(void **s) {
  char path[512];
  tmp_path(path, sizeof path, "fork.jsonl");
  assert_int_equal(isle_profile_start(path, 5), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(isle_profile_stop() == ISLE_ESTATE ? 0 : 1);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(isle_profile_running(), 1);
  assert_int_equal(isle_profile_stop(), 0);
}

/* ===== The sampler: a known program profiled ============================ */

static void test_profile_of_a_known_program(void **state) {
  char path[512];
  tmp_path(path, sizeof path, "known.jsonl");
  program_t *pg = calloc(1, sizeof *pg);
  assert_non_null(pg);
  size_t nbefore = 0;
  isle_heap_flow_t *before = flow_copy(&nbefore);
  pg->profile = path;
  assert_int_equal(isle_profile_start(path, 2), 0);
  run_program(pg, NULL, NULL);
  assert_int_equal(isle_profile_stop(), 0);

  size_t n = 0;
  json_t **lines = read_jsonl(path, &n);
  assert_true(n >= 4); /* header, two snapshots waited for, final */
  /* Header. */
  json_t *sizes = json_object_get(lines[0], "class_sizes");
  assert_int_equal(jint(lines[0], "isle_profile"), 1);
  assert_int_equal(jint(lines[0], "interval_ms"), 2);
  assert_int_equal(jint(lines[0], "pid"), (uint64_t)getpid());
  assert_int_equal(json_array_size(sizes), ISLE_HEAP_CLASS_COUNT);
  for (unsigned c = 0; c < ISLE_HEAP_CLASS_COUNT; c++)
    assert_int_equal(json_integer_value(json_array_get(sizes, c)),
                     isle_heap_class_size(c));
  /* Snapshots: numbered in order, time never goes back, only the last is
   * final, and each thread's live bytes are its classes plus large. */
  uint64_t p1_peak = 0, last_t = 0;
  for (size_t i = 1; i < n; i++) {
    json_t *s = lines[i];
    assert_int_equal(jint(s, "seq"), i - 1);
    assert_true(jint(s, "t_ms") >= last_t);
    last_t = jint(s, "t_ms");
    assert_int_equal(json_is_true(json_object_get(s, "final")), i == n - 1);
    size_t k;
    json_t *t;
    json_array_foreach(json_object_get(s, "threads"), k, t) {
      uint64_t sum = jint(t, "large_live_bytes");
      size_t j;
      json_t *c;
      json_array_foreach(json_object_get(t, "classes"), j, c) {
        assert_true(json_integer_value(json_array_get(c, 1)) > 0);
        assert_int_equal(json_integer_value(json_array_get(c, 2)),
                         json_integer_value(json_array_get(c, 0)) *
                             json_integer_value(json_array_get(c, 1)));
        sum += (uint64_t)json_integer_value(json_array_get(c, 2));
      }
      assert_int_equal(sum, jint(t, "live_bytes"));
    }
    json_t *p1 = snap_thread(s, pg->id_p1);
    if (p1 && jint(p1, "live_bytes") > p1_peak)
      p1_peak = jint(p1, "live_bytes");
  }
  /* A snapshot saw every block of prof-p1 live. */
  assert_true(p1_peak >=
              pg->before_p1.live_bytes + p1_small_bytes() + pg->p1_large_bytes);

  /* The final snapshot: the expected threads, and the same figures as the
   * heap statistics now that everyone is quiet. */
  json_t *fin = lines[n - 1];
  size_t nstats = 0;
  isle_heap_stats_t *all = support_all_stats(&nstats);
  assert_non_null(all);
  assert_int_equal(json_array_size(json_object_get(fin, "threads")), nstats);
  const char *names[4] = {"main", "prof-p1", "prof-p2", "prof-c"};
  uint64_t ids[4] = {support_self_stats().heap_id, pg->id_p1, pg->id_p2,
                     pg->id_c};
  for (size_t i = 0; i < 4; i++) {
    json_t *t = snap_thread(fin, ids[i]);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "name")),
                        names[i]);
    assert_int_equal(json_is_true(json_object_get(t, "retired")), i != 0);
  }
  for (size_t i = 0; i < nstats; i++) {
    const isle_heap_stats_t *s = &all[i];
    json_t *t = snap_thread(fin, s->heap_id);
    assert_non_null(t);
    assert_int_equal(jint(t, "live_bytes"), s->live_bytes);
    assert_int_equal(jint(t, "live_objects"), s->live_objects);
    assert_int_equal(jint(t, "held_bytes"), s->held_bytes);
    assert_int_equal(jint(t, "spans"), s->spans_held);
    assert_int_equal(jint(t, "refills"), s->refills);
    assert_int_equal(jint(t, "remote_sent"), s->remote_frees_sent);
    assert_int_equal(jint(t, "remote_sent_bytes"), s->remote_bytes_sent);
    assert_int_equal(jint(t, "remote_received"), s->remote_frees_received);
    assert_int_equal(jint(t, "remote_received_bytes"),
                     s->remote_bytes_received);
  }
  free(all);
  /* The final flow is the heap's flow, and it grew by what was sent. */
  size_t nflow = 0;
  isle_heap_flow_t *now = flow_copy(&nflow);
  json_t *jflow = json_object_get(fin, "flow");
  assert_int_equal(json_array_size(jflow), nflow);
  isle_heap_flow_t *snapflow = calloc(nflow + 1, sizeof *snapflow);
  assert_non_null(snapflow);
  size_t k;
  json_t *c;
  json_array_foreach(jflow, k, c) {
    snapflow[k] = (isle_heap_flow_t){.from_heap_id = jint(c, "from"),
                                     .to_heap_id = jint(c, "to"),
                                     .bytes = jint(c, "bytes"),
                                     .blocks = jint(c, "blocks")};
    const isle_heap_flow_t *h =
        flow_find(now, nflow, snapflow[k].from_heap_id, snapflow[k].to_heap_id);
    assert_non_null(h);
    assert_int_equal(h->bytes, snapflow[k].bytes);
    assert_int_equal(h->blocks, snapflow[k].blocks);
  }
  assert_flow_delta(pg, before, nbefore, snapflow, nflow);
  free(snapflow);
  free(now);
  free(before);
  free_jsonl(lines, n);
  free(pg);
}

/* ===== The sampler started from the environment ========================= */

/* Runs this test program as a child in "--child" mode with `env` added;
 * returns its exit status; its stderr goes to `err_path`. */
static int run_child(const char *const *env, const char *err_path) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    for (size_t i = 0; env[i]; i += 2)
      setenv(env[i], env[i + 1], 1);
    int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 2) < 0)
      _exit(126);
    execl(self_exe, self_exe, "--child", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static bool file_contains(const char *path, const char *text) {
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strstr(buf, text) != NULL;
}

/* The child's work: a few blocks on its main thread, then a normal exit,
 * whose handler writes the final snapshot. */
static int child_main(void) {
  void *p[64];
  for (size_t i = 0; i < 64; i++)
    if (!(p[i] = isle_malloc(48)))
      return 3;
  /* Until two snapshots are out (header + 2 lines), so one of them saw
   * the blocks live whatever the machine's load. */
  const char *path = getenv("ISLE_PROFILE");
  bool profiled = isle_profile_running();
  for (int i = 0; profiled && i < 10000 && file_lines(path) < 3; i++)
    usleep(1000);
  for (size_t i = 0; i < 64; i++)
    isle_free(p[i]);
  return profiled ? 0 : 4;
}

static void test_profile_starts_from_the_environment(void **state) {
  char path[512], err[512];
  tmp_path(path, sizeof path, "env.jsonl");
  tmp_path(err, sizeof err, "env.err");
  const char *env[] = {"ISLE_PROFILE", path, "ISLE_PROFILE_INTERVAL_MS", "3",
                       NULL};
  assert_int_equal(run_child(env, err), 0);
  size_t n = 0;
  json_t **lines = read_jsonl(path, &n);
  assert_true(n >= 3);
  assert_int_equal(jint(lines[0], "interval_ms"), 3);
  json_t *fin = lines[n - 1];
  assert_true(json_is_true(json_object_get(fin, "final")));
  /* The child's main thread, named by the heap, with its blocks freed. */
  json_t *t = json_array_get(json_object_get(fin, "threads"), 0);
  assert_non_null(t);
  assert_string_equal(json_string_value(json_object_get(t, "name")), "main");
  assert_int_equal(jint(t, "live_bytes"), 0);
  /* Some snapshot while they were live. */
  bool seen = false;
  for (size_t i = 1; i < n; i++) {
    json_t *m = json_array_get(json_object_get(lines[i], "threads"), 0);
    seen |= m && jint(m, "live_objects") == 64;
  }
  assert_true(seen);
  free_jsonl(lines, n);
}

static void test_profile_bad_interval_falls_back_with_a_warning(void **state) {
  char path[512], err[512];
  tmp_path(path, sizeof path, "env-bad-interval.jsonl");
  tmp_path(err, sizeof err, "env-bad-interval.err");
  const char *env[] = {"ISLE_PROFILE", path, "ISLE_PROFILE_INTERVAL_MS", "ten",
                       NULL};
  assert_int_equal(run_child(env, err), 0);
  assert_true(file_contains(err, "ISLE_PROFILE_INTERVAL_MS=ten"));
  size_t n = 0;
  json_t **lines = read_jsonl(path, &n);
  assert_true(n >= 2);
  assert_int_equal(jint(lines[0], "interval_ms"), 10);
  free_jsonl(lines, n);
}

/* A profile that cannot be written leaves the program running, with a
 * message. */
static void test_profile_unwritable_env_path_is_reported(void **state) {
  char path[512], err[512];
  tmp_path(path, sizeof path, "no-such-dir/env.jsonl");
  tmp_path(err, sizeof err, "env-unwritable.err");
  const char *env[] = {"ISLE_PROFILE", path, NULL};
  /* The child returns 4: it ran to the end, unprofiled. */
  assert_int_equal(run_child(env, err), 4);
  assert_true(file_contains(err, "cannot profile"));
}

/* ===== Main ============================================================= */

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--child") == 0)
    return child_main();
  self_exe = realpath("/proc/self/exe", NULL);
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/isle-test-profile-XXXXXX",
           base && *base ? base : "/tmp");
  if (!self_exe || !mkdtemp(tmpdir)) {
    perror("test_profile: setup");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_profile_main_thread_is_named_main),
      cmocka_unit_test(test_profile_flow_matrix_matches_what_threads_freed),
      cmocka_unit_test(test_profile_flow_respects_max),
      cmocka_unit_test(test_profile_os_returns_are_counted),
      cmocka_unit_test(test_profile_start_rejects_bad_arguments),
      cmocka_unit_test(test_profile_start_reports_an_unopenable_file),
      cmocka_unit_test(test_profile_stop_without_start_is_a_state_error),
      cmocka_unit_test(test_profile_start_twice_is_busy_and_restart_works),
      cmocka_unit_test(test_profile_stop_reports_failed_writes),
      cmocka_unit_test(test_profile_stop_in_a_forked_child_is_a_state_error),
      cmocka_unit_test(test_profile_of_a_known_program),
      cmocka_unit_test(test_profile_starts_from_the_environment),
      cmocka_unit_test(test_profile_bad_interval_falls_back_with_a_warning),
      cmocka_unit_test(test_profile_unwritable_env_path_is_reported),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  /* Leave the directory when something failed, for a look. */
  if (failed == 0) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      fprintf(stderr, "test_profile: could not remove %s\n", tmpdir);
  }
  free(self_exe);
  return failed;
}
