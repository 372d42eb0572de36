/* isle — MIT licensed. */
/*
 * The runtime (include/isle/actor.h), its ordinary life: configuration and
 * its limits, statistics, run (again, concurrently, with nothing to do),
 * the batch bound and the fairness of a turn, stealing an actor behind a
 * long turn, hold and release, and no CPU burned while idle. Stop,
 * quiescence and outside senders are in test_runtime_stop.c; a million
 * actors, the stall report and teardown in test_runtime_load.c.
 *
 * Callbacks run on workers: they count into structures the test owns and
 * check with WORKER_CHECK; the test asserts after the run. Every test ends
 * with the heap as it began (support_assert_heap_quiet). Sizes: stress
 * tests take ISLE_TEST_ITERS.
 */
#define _GNU_SOURCE /* pthread_barrier_t, sigaction, nanosleep */

#include "support_runtime.h"
#include "actor/internal.h" /* end-of-actor hooks */

/* ===== Configuration and creation ======================================= */

static void test_runtime_config_init_gives_every_default(void **state) {
  isle_runtime_config_t cfg;
  memset(&cfg, 0xff, sizeof cfg);
  isle_runtime_config_init(&cfg);
  assert_int_equal(cfg.workers, 0);
  assert_int_equal(cfg.batch, 0);
  assert_int_equal(cfg.heap_limit, 0);
  assert_false(cfg.pin_workers);
  assert_int_equal(cfg.stall_ms, 0);
  assert_null(cfg.on_stall);
  assert_null(cfg.stall_arg);
  assert_int_equal(cfg.max_actors, 0);
}

static void test_runtime_new_rejects_null_out_and_limits(void **state) {
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  assert_int_equal(isle_runtime_new(NULL, NULL), ISLE_EINVAL);
  assert_int_equal(isle_runtime_new(&cfg, NULL), ISLE_EINVAL);
  isle_runtime_t *rt = (isle_runtime_t *)(uintptr_t)0x1234;
  cfg.workers = 1025;
  assert_int_equal(isle_runtime_new(&cfg, &rt), ISLE_EINVAL);
  cfg.workers = UINT32_MAX;
  assert_int_equal(isle_runtime_new(&cfg, &rt), ISLE_EINVAL);
  cfg.workers = 2;
  cfg.max_actors = (UINT32_C(1) << 30) + 1;
  assert_int_equal(isle_runtime_new(&cfg, &rt), ISLE_EINVAL);
  cfg.max_actors = UINT32_MAX;
  assert_int_equal(isle_runtime_new(&cfg, &rt), ISLE_EINVAL);
  assert_ptr_equal(rt, (isle_runtime_t *)(uintptr_t)0x1234);

  /* The limits themselves are accepted (nothing runs: no threads). */
  cfg.max_actors = 0;
  cfg.workers = 1024;
  rt = NULL;
  assert_int_equal(isle_runtime_new(&cfg, &rt), 0);
  assert_int_equal(support_stats(rt).workers, 1024);
  isle_runtime_free(rt);
  cfg.workers = 1;
  cfg.max_actors = UINT32_C(1) << 30;
  rt = NULL;
  int rc = isle_runtime_new(&cfg, &rt);
  assert_true(rc == 0 || rc == ISLE_ENOMEM); /* 64 GiB of address space */
  if (rc == 0)
    isle_runtime_free(rt);
  support_assert_heap_quiet();
}

static void
test_runtime_new_without_config_takes_one_worker_per_cpu(void **state) {
  isle_runtime_t *rt = NULL;
  assert_int_equal(isle_runtime_new(NULL, &rt), 0);
  assert_non_null(rt);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.workers, cpus > 0 ? (unsigned)cpus : 1);
  assert_int_equal(s.actors_live, 0);
  assert_int_equal(s.spawned, 0);
  assert_int_equal(s.messages, 0);
  isle_runtime_free(rt);
  isle_runtime_free(NULL); /* ignored */
  support_assert_heap_quiet();
}

/* ===== Statistics ======================================================= */

/* A workload whose every counter is known: one actor continues (3
 * messages), one stops (ISLE_STOP), one fails (ISLE_EIO), one calls
 * isle_ctx_stop with a second message queued behind (a dead letter), and
 * one send goes to a dead actor (another). */
static void test_runtime_stats_count_what_happened(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  isle_runtime_stats_t s;
  assert_int_equal(isle_runtime_stats(NULL, &s), ISLE_EINVAL);
  assert_int_equal(isle_runtime_stats(rt, NULL), ISLE_EINVAL);
  counts_t c;
  memset(&c, 0, sizeof c);
  isle_ref_t cont = spawn_counter(rt, &c, MODE_CONTINUE);
  isle_ref_t stop = spawn_counter(rt, &c, MODE_STOP);
  isle_ref_t fail = spawn_counter(rt, &c, MODE_FAIL);
  isle_ref_t ctx_stop = spawn_counter(rt, &c, MODE_CTX_STOP);
  for (int i = 0; i < 3; i++)
    support_send(rt, cont, 1, 0, 0);
  support_send(rt, stop, 1, 0, 0);
  support_send(rt, fail, 1, 0, 0);
  support_send(rt, ctx_stop, 1, 0, 0);
  support_send(rt, ctx_stop, 1, 0, 0);
  s = support_stats(rt);
  assert_int_equal(s.workers, 2);
  assert_int_equal(s.spawned, 4);
  assert_int_equal(s.actors_live, 4);
  assert_int_equal(s.messages, 0);
  assert_int_equal(s.turns, 0);
  run_ok(rt);
  isle_msg_t *m = support_msg(1, 0, 0);
  assert_non_null(m);
  assert_int_equal(isle_runtime_send(rt, fail, m), ISLE_EDEAD);
  isle_msg_free(m);

  s = support_stats(rt);
  assert_int_equal(s.workers, 2);
  assert_int_equal(s.spawned, 4);
  assert_int_equal(s.actors_live, 1);
  assert_int_equal(s.stopped, 2);
  assert_int_equal(s.failed, 1);
  assert_int_equal(s.dead_letters, 2);
  assert_int_equal(s.messages, 6);
  assert_int_equal(atomic_load(&c.received), 6);
  assert_true(s.turns >= 4 && s.turns <= 6);
  assert_int_equal(s.stalls, 0); /* off in support_runtime */
  assert_int_equal(atomic_load(&c.finalized), 3);
  isle_runtime_free(rt);
  assert_int_equal(atomic_load(&c.finalized), 4);
  support_assert_heap_quiet();
}

/* ===== Run ============================================================== */

static void test_runtime_run_without_work_returns_and_runs_again(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  uint64_t t0 = support_now_ns();
  run_ok(rt); /* nothing at all */
  counts_t c;
  memset(&c, 0, sizeof c);
  isle_ref_t ref = spawn_counter(rt, &c, MODE_CONTINUE);
  run_ok(rt); /* an idle actor is no work */
  assert_int_equal(atomic_load(&c.received), 0);
  assert_true(support_now_ns() - t0 < 5000000000u);
  /* Run after run, each with new work. */
  for (uint64_t round = 1; round <= 3; round++) {
    for (uint64_t i = 0; i < 10; i++)
      support_send(rt, ref, 1, i, 0);
    run_ok(rt);
    assert_int_equal(atomic_load(&c.received), 10 * round);
  }
  assert_int_equal(support_stats(rt).messages, 30);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

static void test_runtime_run_while_running_fails_with_estate(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  counts_t c;
  memset(&c, 0, sizeof c);
  isle_ref_t ref = spawn_counter(rt, &c, MODE_CONTINUE);
  support_send(rt, ref, 1, 0, 0);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  /* Running for sure once the message is handled. */
  assert_true(support_wait_u64(&c.received, 1, 10000));
  assert_int_equal(isle_runtime_run(rt), ISLE_ESTATE);
  assert_int_equal(isle_runtime_run(rt), ISLE_ESTATE);
  assert_false(atomic_load(&r.done));
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  /* Over: a run is allowed again. */
  support_send(rt, ref, 1, 0, 0);
  run_ok(rt);
  assert_int_equal(atomic_load(&c.received), 2);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* batch bounds the messages of one turn: with one worker and everything
 * queued before the run, 100 messages take 100 turns at batch 1 and 2
 * turns (64 + 36) at the default. A turn that ends with a full batch is
 * requeued without looking whether anything is left, so one empty turn
 * may follow. Pinned workers run the same. */
static void test_runtime_batch_bounds_the_messages_of_a_turn(void **state) {
  static const struct {
    unsigned batch;
    bool pin;
    uint64_t turns;
  } cases[] = {{1, false, 100}, {0, true, 2}, {100, false, 1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    isle_runtime_config_t cfg;
    isle_runtime_config_init(&cfg);
    cfg.workers = 1;
    cfg.batch = cases[i].batch;
    cfg.pin_workers = cases[i].pin;
    cfg.stall_ms = UINT32_MAX;
    isle_runtime_t *rt = NULL;
    assert_int_equal(isle_runtime_new(&cfg, &rt), 0);
    counts_t c;
    memset(&c, 0, sizeof c);
    isle_ref_t ref = spawn_counter(rt, &c, MODE_CONTINUE);
    for (int k = 0; k < 100; k++)
      support_send(rt, ref, 1, 0, 0);
    run_ok(rt);
    isle_runtime_stats_t s = support_stats(rt);
    assert_int_equal(s.messages, 100);
    assert_true(s.turns >= cases[i].turns && s.turns <= cases[i].turns + 1);
    assert_int_equal(s.steals, 0); /* one worker: no one to steal from */
    isle_runtime_free(rt);
  }
  support_assert_heap_quiet();
}

/* An actor that sends itself a message gives way when another actor waits
 * on its worker: a chunked loop (a CONTINUE to itself per chunk) does not
 * run `batch` chunks before the others get a turn. The chunker's first
 * receive wakes the watcher (into the slot that runs next) and sends itself
 * a CONTINUE; the watcher must run right after that one receive. */
enum { MSG_CONT = 1, MSG_LOOK };

typedef struct chunks_s {
  isle_ref_t watcher;
  _Atomic uint64_t done; /* CONTINUEs received by the chunker */
  _Atomic uint64_t seen; /* `done` when the watcher ran, + 1 */
} chunks_t;

static int chunker_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(chunks_t **)state = (chunks_t *)arg;
  return 0;
}

static int chunker_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  chunks_t *c = *(chunks_t **)state;
  WORKER_CHECK(isle_msg_type(msg) == MSG_CONT);
  uint64_t n = atomic_fetch_add(&c->done, 1) + 1;
  if (n == 1) {
    isle_msg_t *look = support_msg(MSG_LOOK, 0, 0);
    if (WORKER_CHECK(look != NULL) &&
        !WORKER_CHECK(isle_ctx_send(ctx, c->watcher, look) == 0))
      isle_msg_free(look);
  }
  if (n < 100) {
    isle_msg_t *next = support_msg(MSG_CONT, 0, 0);
    if (WORKER_CHECK(next != NULL) &&
        !WORKER_CHECK(isle_ctx_send(ctx, isle_ctx_self(ctx), next) == 0))
      isle_msg_free(next);
  }
  return ISLE_CONTINUE;
}

static int watcher_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  chunks_t *c = *(chunks_t **)state;
  WORKER_CHECK(isle_msg_type(msg) == MSG_LOOK);
  atomic_store(&c->seen, atomic_load(&c->done) + 1);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t chunker_type = {
    .name = "chunker",
    .state_size = sizeof(chunks_t *),
    .init = chunker_init,
    .receive = chunker_receive,
};

static const isle_actor_type_t watcher_type = {
    .name = "watcher",
    .state_size = sizeof(chunks_t *),
    .init = chunker_init,
    .receive = watcher_receive,
};

static void test_runtime_self_send_gives_way_to_waiting_actors(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  chunks_t c;
  memset(&c, 0, sizeof c);
  assert_int_equal(isle_runtime_spawn(rt, &watcher_type, &c, &c.watcher), 0);
  isle_ref_t chunker = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &chunker_type, &c, &chunker), 0);
  support_send(rt, chunker, MSG_CONT, 0, 0);
  run_ok(rt);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&c.done), 100);
  assert_int_equal(atomic_load(&c.seen), 1 + 1); /* after one receive */
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* An actor queued behind a long turn is stolen: the busy actor sends to
 * `queued`, then to `other` (which takes the slot that runs next, so
 * `queued` moves to the run queue), then spins until `queued` has run or
 * 5 s have passed. The idle worker waits until `queued` has been queued
 * for a moment (the patient thief, sched.c) and takes it. */
typedef struct long_turn_s {
  isle_ref_t queued, other;
  _Atomic uint32_t queued_ran;
  _Atomic uint32_t ran_during_turn;
} long_turn_t;

static int busy_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)msg;
  long_turn_t *t = *(long_turn_t **)state;
  isle_ref_t to[2] = {t->queued, t->other};
  for (int i = 0; i < 2; i++) {
    isle_msg_t *m = support_msg(MSG_LOOK, 0, 0);
    if (WORKER_CHECK(m != NULL) &&
        !WORKER_CHECK(isle_ctx_send(ctx, to[i], m) == 0))
      isle_msg_free(m);
  }
  uint64_t deadline = support_now_ns() + 5000000000u;
  while (!atomic_load(&t->queued_ran) && support_now_ns() < deadline)
    support_busy_us(10);
  atomic_store(&t->ran_during_turn, atomic_load(&t->queued_ran));
  return ISLE_CONTINUE;
}

static int mark_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)msg;
  long_turn_t *t = *(long_turn_t **)state;
  atomic_store(&t->queued_ran, 1);
  return ISLE_CONTINUE;
}

static int nothing_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return ISLE_CONTINUE;
}

static const isle_actor_type_t busy_type = {
    .name = "busy",
    .state_size = sizeof(long_turn_t *),
    .init = chunker_init,
    .receive = busy_receive,
};

static const isle_actor_type_t mark_type = {
    .name = "mark",
    .state_size = sizeof(long_turn_t *),
    .init = chunker_init,
    .receive = mark_receive,
};

static const isle_actor_type_t nothing_type = {
    .name = "nothing",
    .receive = nothing_receive,
};

static void test_runtime_actor_behind_a_long_turn_is_stolen(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  long_turn_t t;
  memset(&t, 0, sizeof t);
  assert_int_equal(isle_runtime_spawn(rt, &mark_type, &t, &t.queued), 0);
  assert_int_equal(isle_runtime_spawn(rt, &nothing_type, NULL, &t.other), 0);
  isle_ref_t busy = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &busy_type, &t, &busy), 0);
  support_send(rt, busy, MSG_CONT, 0, 0);
  run_ok(rt);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&t.ran_during_turn), 1);
  assert_true(support_stats(rt).steals >= 1);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== Hold and release ================================================= */

static void
test_runtime_hold_keeps_run_from_returning_until_released(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  counts_t c;
  memset(&c, 0, sizeof c);
  isle_ref_t ref = spawn_counter(rt, &c, MODE_CONTINUE);
  isle_runtime_hold(rt);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  assert_false(support_runner_wait(&r, 100));
  /* Sends while held are handled; the run still does not return. */
  support_send(rt, ref, 1, 0, 0);
  assert_true(support_wait_u64(&c.received, 1, 10000));
  isle_runtime_release(rt);
  assert_false(support_runner_wait(&r, 100)); /* one hold left */
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  /* A hold taken and released between runs leaves no trace. */
  isle_runtime_hold(rt);
  isle_runtime_release(rt);
  run_ok(rt);
  /* A held runtime whose workers sleep still ends on a stop. */
  isle_runtime_hold(rt);
  support_runner_start(&r, rt);
  uint64_t parks = support_stats(rt).parks;
  uint64_t deadline = support_now_ns() + 10000000000u;
  while (support_stats(rt).parks < parks + 2 && support_now_ns() < deadline)
    support_sleep_ms(1);
  isle_runtime_stop(rt);
  assert_int_equal(support_runner_join(&r), 0);
  isle_runtime_release(rt);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* An idle runtime held open burns no CPU: its workers sleep instead of
 * polling. Measured as the process's CPU time over 300 ms once both
 * workers have gone to sleep; the monitor thread (default stall time)
 * wakes a few times meanwhile. */
static void test_runtime_idle_with_a_hold_burns_no_cpu(void **state) {
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = 2;
  isle_runtime_t *rt = NULL;
  assert_int_equal(isle_runtime_new(&cfg, &rt), 0);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  uint64_t deadline = support_now_ns() + 10000000000u;
  while (support_stats(rt).parks < 2 && support_now_ns() < deadline)
    support_sleep_ms(1);
  assert_true(support_stats(rt).parks >= 2);
  support_sleep_ms(20);
  uint64_t cpu0 = support_cpu_ns(), t0 = support_now_ns();
  support_sleep_ms(300);
  uint64_t cpu = support_cpu_ns() - cpu0, wall = support_now_ns() - t0;
  uint64_t parks = support_stats(rt).parks;
  isle_runtime_release(rt);
  assert_int_equal(support_runner_join(&r), 0);
  fprintf(stderr,
          "idle: %" PRIu64 " us of CPU in %" PRIu64 " ms, %" PRIu64 " parks\n",
          cpu / 1000, wall / 1000000, parks);
  assert_true(cpu < 30000000u);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== End-of-actor hooks (actor/internal.h) ============================ */

static _Atomic uint64_t hook_calls, hook_last, other_calls;

static void hook_heard(isle_runtime_t *rt, isle_ref_t self) {
  (void)rt;
  atomic_fetch_add(&hook_calls, 1);
  atomic_store(&hook_last, self);
}

static void hook_other(isle_runtime_t *rt, isle_ref_t self) {
  (void)rt;
  (void)self;
  atomic_fetch_add(&other_calls, 1);
}

static int stop_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return ISLE_STOP;
}

static const isle_actor_type_t stopper_type = {.name = "stopper",
                                               .receive = stop_receive};

/* A hook runs once for each ending actor whose slot has its bit, never
 * for the others; the table holds ISLE__END_HOOKS (names take one). */
static void test_runtime_end_hooks_run_for_the_actors_that_asked(void **state) {
  atomic_store(&hook_calls, 0);
  atomic_store(&other_calls, 0);
  isle_runtime_t *rt = support_runtime(2, 0);
  uint32_t bit = 0, other = 0;
  assert_int_equal(isle__end_hook_add(rt, hook_heard, &bit), 0);
  assert_int_not_equal(bit, 0);
  assert_int_not_equal(bit, rt->names_hook);
  unsigned n = 2; /* names' and ours */
  for (; n < ISLE__END_HOOKS; n++)
    assert_int_equal(isle__end_hook_add(rt, hook_other, &other), 0);
  assert_int_equal(isle__end_hook_add(rt, hook_other, &other), ISLE_ENOMEM);
  isle_ref_t asked, not_asked;
  assert_int_equal(isle_runtime_spawn(rt, &stopper_type, NULL, &asked), 0);
  assert_int_equal(isle_runtime_spawn(rt, &stopper_type, NULL, &not_asked), 0);
  atomic_fetch_or(&isle__slot_of(rt, asked)->xflags, bit);
  support_send(rt, asked, 1, 0, 0);
  support_send(rt, not_asked, 1, 0, 0);
  assert_int_equal(isle_runtime_run(rt), 0);
  assert_int_equal(atomic_load(&hook_calls), 1);
  assert_int_equal(atomic_load(&hook_last), asked);
  assert_int_equal(atomic_load(&other_calls), 0);
  /* The slot is reused with its bits cleared: a new actor there does not
   * call the hook. */
  isle_ref_t again;
  assert_int_equal(isle_runtime_spawn(rt, &stopper_type, NULL, &again), 0);
  support_send(rt, again, 1, 0, 0);
  assert_int_equal(isle_runtime_run(rt), 0);
  assert_int_equal(atomic_load(&hook_calls), 1);
  assert_int_equal(isle_runtime_free(rt), 0);
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_runtime_config_init_gives_every_default),
      T(test_runtime_new_rejects_null_out_and_limits),
      T(test_runtime_new_without_config_takes_one_worker_per_cpu),
      T(test_runtime_stats_count_what_happened),
      T(test_runtime_run_without_work_returns_and_runs_again),
      T(test_runtime_run_while_running_fails_with_estate),
      T(test_runtime_batch_bounds_the_messages_of_a_turn),
      T(test_runtime_self_send_gives_way_to_waiting_actors),
      T(test_runtime_actor_behind_a_long_turn_is_stolen),
      T(test_runtime_hold_keeps_run_from_returning_until_released),
      T(test_runtime_idle_with_a_hold_burns_no_cpu),
      T(test_runtime_end_hooks_run_for_the_actors_that_asked),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
