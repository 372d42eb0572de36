/* isle — MIT licensed. */
/*
 * The runtime (include/isle/actor.h) at scale and at its end: a million
 * actors alive at once, the stall report, and no heap block left anywhere
 * once it is freed (remote frees, actors still alive at free, the
 * profiler's path).
 *
 * Callbacks run on workers: they count into structures the test owns and
 * check with WORKER_CHECK; the test asserts after the run. Every test ends
 * with the heap as it began (support_assert_heap_quiet). Sizes: stress
 * tests take ISLE_TEST_ITERS, the million-actor test ISLE_TEST_ACTORS.
 */
#define _GNU_SOURCE /* pthread_barrier_t, sigaction, nanosleep */

#include "support_runtime.h"

/* ===== A million actors ================================================= */

/* Actors alive at once: ISLE_TEST_ACTORS, or a million (fewer under
 * ThreadSanitizer, whose build must stay within seconds on two cores). */
static uint64_t million_count(void) {
  const char *s = getenv("ISLE_TEST_ACTORS");
  if (s && *s) {
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (end != s && *end == '\0' && v > 0)
      return v;
  }
#if defined(SUPPORT_UNDER_TSAN)
  return 100000;
#else
  return 1000000;
#endif
}

typedef struct million_s {
  _Atomic uint8_t *seen;
  _Atomic uint64_t handled;
} million_t;

typedef struct million_state_s {
  million_t *m;
  uint64_t index;
} million_state_t;

static int million_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(million_state_t *)state = *(const million_state_t *)arg;
  return 0;
}

static int million_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  million_state_t *s = state;
  WORKER_CHECK(support_payload(msg)->a == s->index);
  WORKER_CHECK(atomic_fetch_add(&s->m->seen[s->index], 1) == 0);
  atomic_fetch_add_explicit(&s->m->handled, 1, memory_order_relaxed);
  return ISLE_STOP;
}

static const isle_actor_type_t million_type = {
    .name = "one-shot",
    .state_size = sizeof(million_state_t),
    .init = million_init,
    .receive = million_receive,
};

static void test_runtime_a_million_actors_alive_at_once(void **state) {
  const uint64_t n = million_count();
  isle_runtime_t *rt = support_runtime(2, 0);
  million_t m;
  memset(&m, 0, sizeof m);
  m.seen = calloc(n, sizeof *m.seen);
  isle_ref_t *refs = malloc(n * sizeof *refs);
  assert_non_null(m.seen);
  assert_non_null(refs);
  uint64_t t0 = support_now_ns();
  for (uint64_t i = 0; i < n; i++) {
    million_state_t arg = {&m, i};
    int rc = isle_runtime_spawn(rt, &million_type, &arg, &refs[i]);
    if (rc != 0)
      fail_msg("spawn %" PRIu64 " of %" PRIu64 ": %s", i, n, isle_err_name(rc));
  }
  assert_int_equal(support_stats(rt).actors_live, n);
  uint64_t t1 = support_now_ns();
  for (uint64_t i = 0; i < n; i++) {
    isle_msg_t *msg = support_msg(1, i, 0);
    assert_non_null(msg);
    int rc = isle_runtime_send(rt, refs[i], msg);
    if (rc != 0)
      fail_msg("send %" PRIu64 ": %s", i, isle_err_name(rc));
  }
  uint64_t t2 = support_now_ns();
  run_ok(rt);
  uint64_t t3 = support_now_ns();
  fprintf(stderr,
          "%" PRIu64 " actors: spawn %" PRIu64 " ms, send %" PRIu64
          " ms, run %" PRIu64 " ms\n",
          n, (t1 - t0) / 1000000, (t2 - t1) / 1000000, (t3 - t2) / 1000000);
  assert_int_equal(atomic_load(&m.handled), n);
  for (uint64_t i = 0; i < n; i++)
    if (atomic_load(&m.seen[i]) != 1)
      fail_msg("actor %" PRIu64 " handled %u messages", i,
               (unsigned)atomic_load(&m.seen[i]));
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.spawned, n);
  assert_int_equal(s.stopped, n);
  assert_int_equal(s.actors_live, 0);
  assert_int_equal(s.messages, n);
  assert_int_equal(s.dead_letters, 0);
  free(refs);
  free(m.seen);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== The stall report ================================================= */

typedef struct stall_log_s {
  atomic_uint reports;
  _Atomic(const char *) type;
  atomic_uint worker;
  _Atomic uint64_t ms;
  atomic_uint bad_arg;
} stall_log_t;

static stall_log_t stall_log;

static void on_stall(const char *type_name, unsigned worker, uint64_t ms,
                     void *arg) {
  if (arg != &stall_log)
    atomic_fetch_add(&stall_log.bad_arg, 1);
  fprintf(stderr, "stall: '%s' on worker %u for %" PRIu64 " ms\n", type_name,
          worker, ms);
  atomic_store(&stall_log.type, type_name);
  atomic_store(&stall_log.worker, worker);
  atomic_store(&stall_log.ms, ms);
  atomic_fetch_add(&stall_log.reports, 1);
}

/* A receive that sleeps for the milliseconds in its message. */
static int sleeper_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx, (void)state;
  support_sleep_ms((unsigned)support_payload(msg)->a);
  return ISLE_CONTINUE;
}

static int quick_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx, (void)state, (void)msg;
  return ISLE_CONTINUE;
}

static const isle_actor_type_t sleeper_type = {
    .name = "sleeper",
    .receive = sleeper_receive,
};

static const isle_actor_type_t quick_type = {
    .name = "quick",
    .receive = quick_receive,
};

static isle_runtime_t *stall_runtime(void) {
  memset(&stall_log, 0, sizeof stall_log);
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = 2;
  cfg.stall_ms = 50;
  cfg.on_stall = on_stall;
  cfg.stall_arg = &stall_log;
  isle_runtime_t *rt = NULL;
  assert_int_equal(isle_runtime_new(&cfg, &rt), 0);
  return rt;
}

/* A receive that sleeps 300 ms (stall time 50 ms) is reported once, with
 * its type's name; a quick actor busy meanwhile is not. */
static void test_runtime_stall_report_names_a_slow_receive_once(void **state) {
  isle_runtime_t *rt = stall_runtime();
  isle_ref_t slow = ISLE_REF_NONE, quick = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &sleeper_type, NULL, &slow), 0);
  assert_int_equal(isle_runtime_spawn(rt, &quick_type, NULL, &quick), 0);
  support_send(rt, slow, 1, 300, 0);
  for (int i = 0; i < 1000; i++)
    support_send(rt, quick, 1, 0, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&stall_log.reports), 1);
  assert_int_equal(atomic_load(&stall_log.bad_arg), 0);
  const char *type = atomic_load(&stall_log.type);
  assert_non_null(type);
  assert_string_equal(type, "sleeper");
  assert_true(atomic_load(&stall_log.worker) < 2);
  assert_true(atomic_load(&stall_log.ms) >= 50);
  assert_true(atomic_load(&stall_log.ms) <= 300);
  assert_int_equal(support_stats(rt).stalls, 1);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* 30 receives of 5 ms each, queued together, run in one turn (150 ms);
 * no receive runs for 50 ms, so none is reported: the report is about
 * one receive, not about a turn of many short ones. */
static void
test_runtime_stall_report_ignores_a_turn_of_short_receives(void **state) {
  isle_runtime_t *rt = stall_runtime();
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &sleeper_type, NULL, &ref), 0);
  for (int i = 0; i < 30; i++)
    support_send(rt, ref, 1, 5, 0);
  run_ok(rt);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.messages, 30);
  assert_int_equal(atomic_load(&stall_log.reports), 0);
  assert_int_equal(s.stalls, 0);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== Nothing left behind ============================================== */

/*
 * A hub sends a request to each of LEAVES leaves per round; each leaf
 * replies with a new message; the hub starts the next round when every
 * reply is in. Requests and replies are allocated on whichever worker
 * sends them and freed on whichever worker receives them, so blocks cross
 * between the two workers' heaps in both directions. Once the runtime is
 * freed and this thread has collected, every heap (the workers' are
 * retired, their threads gone) is back to the baseline.
 */
enum { LEAVES = 32, MSG_ROUND = 20, MSG_REQ = 21, MSG_REP = 22 };

typedef struct hub_s {
  isle_ref_t leaves[LEAVES];
  uint64_t rounds;
  _Atomic uint64_t replies;
  _Atomic uint64_t rounds_done;
} hub_t;

typedef struct hub_state_s {
  hub_t *hub;
  uint64_t round;
  uint64_t pending;
} hub_state_t;

static int hub_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((hub_state_t *)state)->hub = (hub_t *)arg;
  return 0;
}

static void hub_round(isle_ctx_t *ctx, hub_state_t *s) {
  s->pending = LEAVES;
  for (unsigned i = 0; i < LEAVES; i++) {
    isle_msg_t *m = support_msg(MSG_REQ, s->round, i);
    if (!WORKER_CHECK(m != NULL))
      return;
    if (!WORKER_CHECK(isle_ctx_send(ctx, s->hub->leaves[i], m) == 0))
      isle_msg_free(m);
  }
}

static int hub_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  hub_state_t *s = state;
  if (isle_msg_type(msg) == MSG_ROUND) {
    hub_round(ctx, s);
    return ISLE_CONTINUE;
  }
  WORKER_CHECK(isle_msg_type(msg) == MSG_REP);
  WORKER_CHECK(support_payload(msg)->a == s->round);
  atomic_fetch_add(&s->hub->replies, 1);
  if (--s->pending == 0) {
    atomic_fetch_add(&s->hub->rounds_done, 1);
    if (++s->round < s->hub->rounds)
      hub_round(ctx, s);
  }
  return ISLE_CONTINUE;
}

static int leaf_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)state;
  support_busy_us(4); /* time for the other worker to wake and steal */
  isle_msg_t *rep = support_msg(MSG_REP, support_payload(msg)->a, 0);
  if (WORKER_CHECK(rep != NULL) && !WORKER_CHECK(isle_ctx_reply(ctx, rep) == 0))
    isle_msg_free(rep);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t hub_type = {
    .name = "hub",
    .state_size = sizeof(hub_state_t),
    .init = hub_init,
    .receive = hub_receive,
};

static const isle_actor_type_t leaf_type = {
    .name = "leaf",
    .state_size = 16,
    .receive = leaf_receive,
};

static uint64_t remote_frees_sent_everywhere(void) {
  size_t n = 0;
  isle_heap_stats_t *all = support_all_stats(&n);
  assert_non_null(all);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += all[i].remote_frees_sent;
  free(all);
  return sum;
}

static void
test_runtime_leaves_no_live_objects_after_cross_worker_traffic(void **state) {
  uint64_t remote_before = remote_frees_sent_everywhere();
  isle_runtime_t *rt = support_runtime(2, 0);
  hub_t hub;
  memset(&hub, 0, sizeof hub);
  hub.rounds = support_iters(300);
  for (unsigned i = 0; i < LEAVES; i++)
    assert_int_equal(isle_runtime_spawn(rt, &leaf_type, NULL, &hub.leaves[i]),
                     0);
  isle_ref_t h = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &hub_type, &hub, &h), 0);
  support_send(rt, h, MSG_ROUND, 0, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&hub.rounds_done), hub.rounds);
  assert_int_equal(atomic_load(&hub.replies), hub.rounds * LEAVES);
  /* Plus a few messages left queued for runtime_free to drop. */
  for (unsigned i = 0; i < LEAVES; i++)
    support_send(rt, hub.leaves[i], MSG_REQ, 0, 0);
  isle_runtime_free(rt);

  /* The workers have exited: their heap records are retired. */
  size_t n = 0;
  isle_heap_stats_t *all = support_all_stats(&n);
  assert_non_null(all);
  unsigned workers_seen = 0;
  for (size_t i = 0; i < n; i++) {
    if (strncmp(all[i].name, "worker-", 7) == 0) {
      workers_seen++;
      assert_int_equal(all[i].retired, 1);
    }
  }
  free(all);
  assert_true(workers_seen >= 2);
  uint64_t remote = remote_frees_sent_everywhere() - remote_before;
  fprintf(stderr,
          "%" PRIu64 " blocks freed by a thread other than their "
          "owner\n",
          remote);
  assert_true(remote >= 10);
  support_assert_heap_quiet();
}

/* isle_runtime_free ends every remaining actor: finalize runs once each
 * and queued messages are freed, also after a run stopped half-way. */
static void test_runtime_free_ends_every_remaining_actor(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  counts_t c;
  memset(&c, 0, sizeof c);
  for (int i = 0; i < 5; i++) {
    isle_ref_t ref = spawn_counter(rt, &c, MODE_CONTINUE);
    support_send(rt, ref, 1, 0, 0);
    support_send(rt, ref, 1, 0, 0);
  }
  isle_runtime_free(rt);
  assert_int_equal(atomic_load(&c.finalized), 5);
  assert_int_equal(atomic_load(&c.received), 0);

  rt = support_runtime(2, 0);
  relay_t *relay = malloc(sizeof *relay);
  assert_non_null(relay);
  relay_start(rt, relay, 8, 20, 16, 1000);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  assert_true(support_wait_u64(&relay->hops, 100, 10000));
  isle_runtime_stop(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  isle_runtime_release(rt);
  isle_runtime_free(rt);
  free(relay);
  support_assert_heap_quiet();
}

/* profile_path starts the heap sampler with the runtime and
 * isle_runtime_free stops it: the file ends with the final snapshot. A
 * path that cannot be written fails isle_runtime_new; a zero interval is
 * the default, not an error. */
static void test_runtime_profile_path_samples_until_free(void **state) {
  char path[] = "/tmp/isle-test-profile-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = 2;
  cfg.profile_path = path;
  isle_runtime_t *rt;
  assert_int_equal(isle_runtime_new(&cfg, &rt), 0);
  assert_true(isle_profile_running());
  counts_t c;
  memset(&c, 0, sizeof c);
  isle_ref_t ref = spawn_counter(rt, &c, MODE_STOP);
  support_send(rt, ref, 1, 0, 0);
  assert_int_equal(isle_runtime_run(rt), 0);
  isle_runtime_free(rt);
  assert_false(isle_profile_running());
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *line = NULL, *last = NULL;
  size_t cap = 0;
  unsigned lines = 0;
  while (getline(&line, &cap, f) > 0) {
    lines++;
    free(last);
    last = strdup(line);
  }
  free(line);
  fclose(f);
  unlink(path);
  assert_true(lines >= 2); /* a header and at least the final snapshot */
  assert_non_null(last);
  assert_non_null(strstr(last, "\"final\":true"));
  assert_non_null(strstr(last, "worker-0"));
  free(last);

  cfg.profile_path = "/nonexistent-dir/isle.prof";
  rt = NULL;
  assert_int_equal(isle_runtime_new(&cfg, &rt), ISLE_EIO);
  assert_null(rt);
  assert_false(isle_profile_running());
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_runtime_a_million_actors_alive_at_once),
      T(test_runtime_stall_report_names_a_slow_receive_once),
      T(test_runtime_stall_report_ignores_a_turn_of_short_receives),
      T(test_runtime_leaves_no_live_objects_after_cross_worker_traffic),
      T(test_runtime_free_ends_every_remaining_actor),
      T(test_runtime_profile_path_samples_until_free),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
