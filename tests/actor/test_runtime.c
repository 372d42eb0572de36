/* isle — MIT licensed. */
/*
 * The runtime (include/isle/actor.h): configuration and its limits, run
 * (again, concurrently, with nothing to do), stop (before a run, from
 * another thread, from a signal handler), hold and release, statistics,
 * quiescence with messages in flight, outside threads sending while it
 * runs, a million actors at once, no CPU burned while idle, the stall
 * report, and no heap block left anywhere once it is freed.
 *
 * Callbacks run on workers: they count into structures the test owns and
 * check with WORKER_CHECK; the test asserts after the run. Every test ends
 * with the heap as it began (support_assert_heap_quiet). Sizes: stress
 * tests take ISLE_TEST_ITERS, the million-actor test ISLE_TEST_ACTORS.
 */
#define _GNU_SOURCE /* pthread_barrier_t, sigaction, nanosleep */

#include <signal.h> /* stop from a signal handler */
#include <unistd.h> /* sysconf */

#include "support.h"

/* ===== A counting actor ================================================= */

/* What a counting actor does with each message. */
typedef enum mode_e {
  MODE_CONTINUE, /* count it */
  MODE_STOP,     /* count it and return ISLE_STOP */
  MODE_FAIL,     /* count it and return ISLE_EIO */
  MODE_CTX_STOP, /* count it, isle_ctx_stop, return ISLE_CONTINUE */
} counter_mode_t;

typedef struct counts_s {
  _Atomic uint64_t received;
  _Atomic uint64_t finalized;
} counts_t;

typedef struct counter_arg_s {
  counts_t *counts;
  counter_mode_t mode;
} counter_arg_t;

static int counter_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(counter_arg_t *)state = *(const counter_arg_t *)arg;
  return 0;
}

static int counter_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)msg;
  counter_arg_t *c = state;
  atomic_fetch_add(&c->counts->received, 1);
  switch (c->mode) {
  case MODE_STOP:
    return ISLE_STOP;
  case MODE_FAIL:
    return ISLE_EIO;
  case MODE_CTX_STOP:
    isle_ctx_stop(ctx);
    return ISLE_CONTINUE;
  case MODE_CONTINUE:
    break;
  }
  return ISLE_CONTINUE;
}

static void counter_finalize(isle_ctx_t *ctx, void *state) {
  (void)ctx;
  atomic_fetch_add(&((counter_arg_t *)state)->counts->finalized, 1);
}

static const isle_actor_type_t counter_type = {
    .name = "counter",
    .state_size = sizeof(counter_arg_t),
    .init = counter_init,
    .receive = counter_receive,
    .finalize = counter_finalize,
};

static isle_ref_t spawn_counter(isle_runtime_t *rt, counts_t *counts,
                                counter_mode_t mode) {
  counter_arg_t arg = {counts, mode};
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &counter_type, &arg, &ref), 0);
  return ref;
}

static void run_ok(isle_runtime_t *rt) {
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
}

/* ===== A relay: tokens passed around a ring of actors =================== */

/*
 * `n` actors in a ring; each token is a message carrying the hops it has
 * left. An actor that gets a token with hops left forwards the same
 * message to the next actor (zero-copy), else counts it done. Each receive
 * may do `work_us` of busy work. A token started with H hops is received
 * H + 1 times.
 */
enum { RELAY_MAX = 64 };

typedef struct relay_s {
  unsigned n;
  unsigned work_us;
  isle_ref_t refs[RELAY_MAX];
  _Atomic uint64_t hops;
  _Atomic uint64_t done;
} relay_t;

typedef struct relay_arg_s {
  relay_t *relay;
  unsigned index;
} relay_arg_t;

static int relay_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(relay_arg_t *)state = *(const relay_arg_t *)arg;
  return 0;
}

static int relay_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  relay_arg_t *me = state;
  relay_t *r = me->relay;
  if (r->work_us)
    support_busy_us(r->work_us);
  atomic_fetch_add(&r->hops, 1);
  support_payload_t *p = support_payload(msg);
  if (p->a == 0) {
    atomic_fetch_add(&r->done, 1);
    return ISLE_CONTINUE;
  }
  p->a--;
  WORKER_CHECK(isle_ctx_send(ctx, r->refs[(me->index + 1) % r->n], msg) == 0);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t relay_type = {
    .name = "relay",
    .state_size = sizeof(relay_arg_t),
    .init = relay_init,
    .receive = relay_receive,
};

/* Spawns the ring and sends `tokens` tokens of `hops` hops, spread over
 * the ring's actors. */
static void relay_start(isle_runtime_t *rt, relay_t *r, unsigned n,
                        unsigned work_us, uint64_t tokens, uint64_t hops) {
  memset(r, 0, sizeof *r);
  assert_true(n <= RELAY_MAX);
  r->n = n;
  r->work_us = work_us;
  for (unsigned i = 0; i < n; i++) {
    relay_arg_t arg = {r, i};
    assert_int_equal(isle_runtime_spawn(rt, &relay_type, &arg, &r->refs[i]), 0);
  }
  for (uint64_t t = 0; t < tokens; t++)
    support_send(rt, r->refs[t % n], 1, hops, t);
}

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

/* ===== Stop ============================================================= */

static void
test_runtime_stop_before_run_makes_the_next_run_return(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  counts_t c;
  memset(&c, 0, sizeof c);
  isle_ref_t ref = spawn_counter(rt, &c, MODE_CONTINUE);
  support_send(rt, ref, 1, 0, 0);
  isle_runtime_stop(rt);
  isle_runtime_stop(rt); /* not counted: one stop, one run */
  uint64_t t0 = support_now_ns();
  run_ok(rt);
  assert_true(support_now_ns() - t0 < 2000000000u);
  assert_int_equal(atomic_load(&c.received), 0);
  assert_int_equal(support_stats(rt).messages, 0);
  /* The stop is used up: this run does the work. */
  run_ok(rt);
  assert_int_equal(atomic_load(&c.received), 1);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* 16 tokens of 1,000 hops, 50 µs of work each (0.4 s on two workers), on a
 * held runtime that only a stop can end: the test's thread stops it after
 * 200 hops. The run returns with the tokens still queued, nothing runs
 * after it, and a later run (released) finishes every token exactly. */
static void
test_runtime_stop_from_another_thread_leaves_queued_messages(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  relay_t *relay = malloc(sizeof *relay);
  assert_non_null(relay);
  const uint64_t tokens = 16, hops = 1000, total = tokens * (hops + 1);
  relay_start(rt, relay, 8, 50, tokens, hops);
  isle_runtime_hold(rt);
  support_runner_t r;
  support_runner_start(&r, rt);
  assert_true(support_wait_u64(&relay->hops, 200, 10000));
  isle_runtime_stop(rt);
  assert_int_equal(support_runner_join(&r), 0);
  support_assert_workers_ok();
  uint64_t at_return = atomic_load(&relay->hops);
  fprintf(stderr, "stopped after %" PRIu64 " of %" PRIu64 " hops\n", at_return,
          total);
  assert_true(at_return < total);
  assert_true(atomic_load(&relay->done) < tokens);
  support_sleep_ms(20);
  assert_int_equal(atomic_load(&relay->hops), at_return);
  assert_int_equal(support_stats(rt).messages, at_return);
  assert_int_equal(support_stats(rt).dead_letters, 0);

  isle_runtime_release(rt);
  run_ok(rt);
  assert_int_equal(atomic_load(&relay->done), tokens);
  assert_int_equal(atomic_load(&relay->hops), total);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.messages, total);
  assert_int_equal(s.dead_letters, 0);
  assert_int_equal(s.actors_live, 8);
  isle_runtime_free(rt);
  free(relay);
  support_assert_heap_quiet();
}

/* ----- From a signal handler -------------------------------------------- */

/* An actor that keeps itself busy forever, forwarding its message to
 * itself, until told to stop; it may raise SIGALRM (on its worker) at a
 * given count. */
typedef struct spinner_s {
  _Atomic uint64_t received;
  _Atomic uint64_t raise_at; /* 0: never */
  atomic_bool stop;
  _Atomic uint64_t signals;
} spinner_t;

static _Atomic(isle_runtime_t *) signal_rt;
static spinner_t *signal_spinner;

static void on_sigalrm(int sig) {
  (void)sig;
  atomic_fetch_add(&signal_spinner->signals, 1);
  isle_runtime_stop(atomic_load(&signal_rt));
}

static int spinner_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  spinner_t *s = *(spinner_t **)state;
  uint64_t n = atomic_fetch_add(&s->received, 1) + 1;
  if (n == atomic_load(&s->raise_at))
    raise(SIGALRM);
  if (atomic_load(&s->stop))
    return ISLE_STOP;
  WORKER_CHECK(isle_ctx_send(ctx, isle_ctx_self(ctx), msg) == 0);
  return ISLE_CONTINUE;
}

static int spinner_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(spinner_t **)state = (spinner_t *)arg;
  return 0;
}

static const isle_actor_type_t spinner_type = {
    .name = "spinner",
    .state_size = sizeof(spinner_t *),
    .init = spinner_init,
    .receive = spinner_receive,
};

typedef struct killer_s {
  pthread_t target;
  spinner_t *spinner;
} killer_t;

/* Sends SIGALRM to the thread blocked in isle_runtime_run once the
 * spinner is busy. */
static void *killer_main(void *arg) {
  killer_t *k = arg;
  if (WORKER_CHECK(support_wait_u64(&k->spinner->received, 100, 10000)))
    pthread_kill(k->target, SIGALRM);
  return NULL;
}

/* Stops a busy runtime from a SIGALRM handler, twice: the signal sent to
 * the thread in isle_runtime_run (from another thread), then raised on a
 * worker inside a receive. Each time the run returns with the spinner's
 * message still queued; a last run lets it finish. */
static void test_runtime_stop_from_a_signal_handler(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  spinner_t sp;
  memset(&sp, 0, sizeof sp);
  signal_spinner = &sp;
  atomic_store(&signal_rt, rt);
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigalrm;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &spinner_type, &sp, &ref), 0);
  support_send(rt, ref, 1, 0, 0);

  /* 1. From another thread, to the thread in run. */
  killer_t k = {pthread_self(), &sp};
  pthread_t killer;
  assert_int_equal(pthread_create(&killer, NULL, killer_main, &k), 0);
  run_ok(rt);
  assert_int_equal(pthread_join(killer, NULL), 0);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&sp.signals), 1);
  uint64_t after = atomic_load(&sp.received);
  assert_true(after >= 100);
  support_sleep_ms(10);
  assert_int_equal(atomic_load(&sp.received), after);

  /* 2. Raised on a worker, inside a receive. */
  atomic_store(&sp.raise_at, after + 100);
  run_ok(rt);
  assert_int_equal(atomic_load(&sp.signals), 2);
  after = atomic_load(&sp.received);
  assert_true(after >= atomic_load(&sp.raise_at));
  assert_int_equal(support_stats(rt).actors_live, 1);

  /* The message was still queued: the spinner gets it and stops. */
  atomic_store(&sp.stop, true);
  run_ok(rt);
  assert_int_equal(atomic_load(&sp.received), after + 1);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.actors_live, 0);
  assert_int_equal(s.dead_letters, 0);
  assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
  atomic_store(&signal_rt, NULL);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== Quiescence ======================================================= */

/* 64 tokens of support_iters(2000) hops around 16 actors: the run may only
 * return once every token is done, since each hop is a message in flight
 * (queued, or being forwarded). */
static void
test_runtime_run_returns_only_when_in_flight_messages_are_done(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  relay_t *relay = malloc(sizeof *relay);
  assert_non_null(relay);
  const uint64_t tokens = 64, hops = support_iters(2000);
  relay_start(rt, relay, 16, 0, tokens, hops);
  run_ok(rt);
  assert_int_equal(atomic_load(&relay->done), tokens);
  assert_int_equal(atomic_load(&relay->hops), tokens * (hops + 1));
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.messages, tokens * (hops + 1));
  assert_int_equal(s.dead_letters, 0);
  /* Again, from where it stopped: new tokens on the same ring. */
  for (uint64_t t = 0; t < tokens; t++)
    support_send(rt, relay->refs[t % relay->n], 1, 10, t);
  run_ok(rt);
  assert_int_equal(atomic_load(&relay->done), 2 * tokens);
  isle_runtime_free(rt);
  free(relay);
  support_assert_heap_quiet();
}

/* ===== Outside threads ================================================== */

/*
 * SENDERS threads, started on a barrier while the runtime runs, each spawn
 * a private receiver and send it, and a shared receiver, `per_sender`
 * numbered messages each; each holds the runtime (taken for it before the
 * run) until done. Receivers check every sender's messages come in its
 * order. A failure means a message from an outside thread was lost,
 * duplicated or reordered, or the run ended while a sender held it.
 */
enum { SENDERS = 4 };

typedef struct seq_s {
  _Atomic uint64_t received;
  _Atomic uint64_t out_of_order;
} seq_t;

typedef struct seq_state_s {
  seq_t *seq;
  uint64_t next[SENDERS];
} seq_state_t;

static int seq_init(isle_ctx_t *ctx, void *state, const void *arg) {
  ((seq_state_t *)state)->seq = (seq_t *)arg;
  WORKER_CHECK(isle_ctx_worker(ctx) == -1);
  return 0;
}

static int seq_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  seq_state_t *s = state;
  support_payload_t *p = support_payload(msg);
  if (!WORKER_CHECK(p->b < SENDERS))
    return ISLE_CONTINUE;
  if (p->a != s->next[p->b] || isle_msg_sender(msg) != ISLE_REF_NONE)
    atomic_fetch_add(&s->seq->out_of_order, 1);
  s->next[p->b] = p->a + 1;
  atomic_fetch_add(&s->seq->received, 1);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t seq_type = {
    .name = "seq",
    .state_size = sizeof(seq_state_t),
    .init = seq_init,
    .receive = seq_receive,
};

typedef struct senders_s {
  isle_runtime_t *rt;
  pthread_barrier_t start;
  isle_ref_t shared;
  seq_t shared_seq;
  seq_t private_seq[SENDERS];
  uint64_t per_sender;
} senders_t;

typedef struct sender_arg_s {
  senders_t *s;
  unsigned index;
} sender_arg_t;

static void *sender_main(void *arg) {
  sender_arg_t *me = arg;
  senders_t *s = me->s;
  pthread_barrier_wait(&s->start);
  isle_ref_t mine = ISLE_REF_NONE;
  if (WORKER_CHECK(isle_runtime_spawn(s->rt, &seq_type,
                                      &s->private_seq[me->index],
                                      &mine) == 0)) {
    for (uint64_t i = 0; i < s->per_sender; i++) {
      isle_ref_t to[2] = {mine, s->shared};
      for (int k = 0; k < 2; k++) {
        isle_msg_t *m = support_msg(1, i, me->index);
        if (!WORKER_CHECK(m != NULL))
          break;
        if (!WORKER_CHECK(isle_runtime_send(s->rt, to[k], m) == 0))
          isle_msg_free(m);
      }
    }
  }
  isle_runtime_release(s->rt);
  return NULL;
}

static void test_runtime_outside_threads_send_while_it_runs(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  senders_t *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->rt = rt;
  s->per_sender = support_iters(5000);
  assert_int_equal(pthread_barrier_init(&s->start, NULL, SENDERS), 0);
  assert_int_equal(
      isle_runtime_spawn(rt, &seq_type, &s->shared_seq, &s->shared), 0);
  for (unsigned i = 0; i < SENDERS; i++)
    isle_runtime_hold(rt); /* each sender releases one */
  support_runner_t r;
  support_runner_start(&r, rt);
  pthread_t t[SENDERS];
  sender_arg_t args[SENDERS];
  for (unsigned i = 0; i < SENDERS; i++) {
    args[i] = (sender_arg_t){s, i};
    assert_int_equal(pthread_create(&t[i], NULL, sender_main, &args[i]), 0);
  }
  assert_int_equal(support_runner_join(&r), 0);
  for (unsigned i = 0; i < SENDERS; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  support_assert_workers_ok();
  /* Everything sent was handled before the run returned. */
  assert_int_equal(atomic_load(&s->shared_seq.received),
                   SENDERS * s->per_sender);
  assert_int_equal(atomic_load(&s->shared_seq.out_of_order), 0);
  for (unsigned i = 0; i < SENDERS; i++) {
    assert_int_equal(atomic_load(&s->private_seq[i].received), s->per_sender);
    assert_int_equal(atomic_load(&s->private_seq[i].out_of_order), 0);
  }
  isle_runtime_stats_t st = support_stats(rt);
  assert_int_equal(st.spawned, SENDERS + 1);
  assert_int_equal(st.messages, 2 * SENDERS * s->per_sender);
  pthread_barrier_destroy(&s->start);
  free(s);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

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
      T(test_runtime_stop_before_run_makes_the_next_run_return),
      T(test_runtime_stop_from_another_thread_leaves_queued_messages),
      T(test_runtime_stop_from_a_signal_handler),
      T(test_runtime_run_returns_only_when_in_flight_messages_are_done),
      T(test_runtime_outside_threads_send_while_it_runs),
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
