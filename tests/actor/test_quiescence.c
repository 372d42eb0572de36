/* isle — MIT licensed. */
/*
 * Quiescence under the interleavings that once ended a run with a message
 * still queued (actor/runtime.c states the protocol, tests/models/ checks
 * it with SPIN), and the hold/release and free rules of the API.
 *
 * - An outside thread that takes a hold, sends and releases while the last
 *   worker parks: the worker read the queues, then the hold count, and the
 *   whole hold -> send -> release fit between the two reads.
 * - An I/O callback inside a parked worker's uv_run (here a loop command,
 *   the path every TCP event takes) that sends under a hold and releases:
 *   the actor it woke sat in that worker's runnext, which the last worker's
 *   look for work did not see.
 * Each round asserts that the message sent under the hold was received by
 * the time run returned. Both failed before the fix within a few hundred
 * rounds (the chaos build finds them at once).
 */
#define _GNU_SOURCE
#include "support.h"
#include "io/internal.h" /* a loop command, as TCP's callbacks run */

enum { MSG_GO = 1, MSG_HIT };

typedef struct counter_s {
  _Atomic uint64_t hits;
} counter_t;

static int counter_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(counter_t **)state = (counter_t *)arg;
  return 0;
}

static int counter_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)msg;
  atomic_fetch_add(&(*(counter_t **)state)->hits, 1);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t counter_type = {
    .name = "counter",
    .state_size = sizeof(counter_t *),
    .init = counter_init,
    .receive = counter_receive,
};

/* A few microseconds of nothing, varying by round, so that the racing
 * thread's steps land at different points of the parking worker's. */
static void jitter(unsigned round, unsigned max_ns) {
  uint64_t until = support_now_ns() + (round * 7919u) % max_ns;
  while (support_now_ns() < until)
    ;
}

/* Rounds per test: about a millisecond each (a run started and ended). */
static unsigned quiescence_rounds(void) {
#if defined(SUPPORT_UNDER_TSAN)
  return (unsigned)support_iters(300);
#else
  return (unsigned)support_iters(2000);
#endif
}

/* ----- An outside thread: hold, send, release -------------------------- */

static int busy_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)state;
  jitter((unsigned)support_payload(msg)->a * 13u, 60000);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t busy_type = {.name = "busy",
                                            .receive = busy_receive};

typedef struct outside_s {
  isle_runtime_t *rt;
  isle_ref_t to;
  unsigned rounds;
  pthread_barrier_t go; /* one crossing per round, with the main thread */
} outside_t;

/* Per round: the main thread holds the runtime and runs it; this thread
 * takes a hold of its own while that one is held (so its hold is taken
 * before the run may end: the message must be received), lets the main
 * one go, waits a little, sends and releases. */
static void *outside_main(void *arg) {
  outside_t *o = arg;
  for (unsigned r = 0; r < o->rounds; r++) {
    pthread_barrier_wait(&o->go);
    isle_runtime_hold(o->rt);
    WORKER_CHECK(isle_runtime_release(o->rt) == 0); /* the main one's */
    /* Up to 300 µs: past the ~100 µs a parking worker spins first. */
    jitter(r * 7u, 300000);
    isle_msg_t *m = support_msg(MSG_HIT, r, 0);
    if (WORKER_CHECK(m != NULL) &&
        !WORKER_CHECK(isle_runtime_send(o->rt, o->to, m) == 0))
      isle_msg_free(m);
    WORKER_CHECK(isle_runtime_release(o->rt) == 0);
  }
  return NULL;
}

static void test_quiescence_outside_hold_send_release(void **state) {
  unsigned rounds = quiescence_rounds();
  counter_t c = {0};
  outside_t o = {.rt = support_runtime(2, 0), .rounds = rounds};
  assert_int_equal(isle_runtime_spawn(o.rt, &counter_type, &c, &o.to), 0);
  pthread_barrier_init(&o.go, NULL, 2);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, outside_main, &o), 0);
  isle_ref_t busy = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(o.rt, &busy_type, NULL, &busy), 0);
  unsigned lost = 0;
  for (unsigned r = 0; r < rounds; r++) {
    /* A worker busy for a while, so that it parks at a varying moment
     * relative to the outside thread's send and release. */
    support_send(o.rt, busy, MSG_GO, r, 0);
    isle_runtime_hold(o.rt); /* the outside thread releases it */
    pthread_barrier_wait(&o.go);
    assert_int_equal(isle_runtime_run(o.rt), 0);
    /* Legitimately later only if the outside thread had not sent yet, and
     * it cannot have not: run could not end before its hold was gone. */
    if (atomic_load(&c.hits) != r + 1) {
      lost++;
      /* Let the outside thread finish the round, then catch up. */
      while (atomic_load(&c.hits) != r + 1)
        assert_int_equal(isle_runtime_run(o.rt), 0);
    }
  }
  pthread_join(t, NULL);
  pthread_barrier_destroy(&o.go);
  support_assert_workers_ok();
  if (lost)
    fprintf(stderr, "run returned with the message queued in %u of %u rounds\n",
            lost, rounds);
  assert_int_equal(lost, 0);
  assert_int_equal(isle_runtime_free(o.rt), 0);
  support_assert_heap_quiet();
}

/* ----- An I/O callback in a parked worker ------------------------------- */

typedef struct io_round_s {
  isle__cmd_t cmd; /* first: the command is the round */
  isle_runtime_t *rt;
  isle_ref_t to;
  unsigned round;
} io_round_t;

/* Runs on the other worker's loop, inside its park (uv_run), as a TCP
 * callback would: sends (the receiver goes to this worker's runnext) and
 * releases the hold the driver took for it. */
static void io_round_run(isle__cmd_t *c, isle__loop_t *l) {
  io_round_t *r = (io_round_t *)c;
  isle_msg_t *m = support_msg(MSG_HIT, r->round, 0);
  if (WORKER_CHECK(m != NULL) &&
      !WORKER_CHECK(isle__send(r->rt, l->worker, ISLE_REF_NONE, r->to, m) == 0))
    isle_msg_free(m);
  WORKER_CHECK(isle_runtime_release(r->rt) == 0);
}

typedef struct driver_s {
  isle_ref_t counter;
  io_round_t round;
} driver_t;

static int driver_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((driver_t *)state)->counter = *(const isle_ref_t *)arg;
  return 0;
}

/* On one worker: holds the runtime for the command, posts it to the other
 * worker's loop and waits a little, so that this worker starts to park
 * while the other runs the command. */
static int driver_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  driver_t *d = state;
  isle_runtime_t *rt = isle_ctx_runtime(ctx);
  int me = isle_ctx_worker(ctx);
  if (!WORKER_CHECK(me >= 0 && isle__io_peek(rt)->worker_loops != NULL))
    return ISLE_EPROTO;
  d->round = (io_round_t){.cmd.run = io_round_run,
                          .rt = rt,
                          .to = d->counter,
                          .round = (unsigned)support_payload(msg)->a};
  isle_runtime_hold(rt);
  isle__loop_post(&isle__io_peek(rt)->worker_loops[1 - me], &d->round.cmd);
  jitter(d->round.round, 60000);
  return ISLE_CONTINUE;
}

static const isle_actor_type_t driver_type = {
    .name = "driver",
    .state_size = sizeof(driver_t),
    .init = driver_init,
    .receive = driver_receive,
};

static void test_quiescence_io_callback_in_parked_worker(void **state) {
  unsigned rounds = quiescence_rounds();
  isle_runtime_config_t cfg;
  isle_runtime_config_init(&cfg);
  cfg.workers = 2;
  isle_runtime_t *rt = NULL;
  assert_int_equal(isle_runtime_new(&cfg, &rt), 0);
  isle_io_config_t io;
  isle_io_config_init(&io);
  io.mode = ISLE_IO_WORKERS;
  assert_int_equal(isle_io_config(rt, &io), 0);
  counter_t c = {0};
  isle_ref_t counter = ISLE_REF_NONE, driver = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &counter_type, &c, &counter), 0);
  assert_int_equal(isle_runtime_spawn(rt, &driver_type, &counter, &driver), 0);
  unsigned lost = 0;
  for (unsigned r = 0; r < rounds; r++) {
    support_send(rt, driver, MSG_GO, r, 0);
    assert_int_equal(isle_runtime_run(rt), 0);
    if (atomic_load(&c.hits) != r + 1) {
      lost++;
      while (atomic_load(&c.hits) != r + 1)
        assert_int_equal(isle_runtime_run(rt), 0);
    }
  }
  support_assert_workers_ok();
  if (lost)
    fprintf(stderr, "run returned with the message queued in %u of %u rounds\n",
            lost, rounds);
  assert_int_equal(lost, 0);
  assert_int_equal(isle_runtime_free(rt), 0);
  support_assert_heap_quiet();
}

/* ----- Hold, release, free: the API's rules ---------------------------- */

/* A release without a hold is refused and leaves the count alone: the
 * runtime still ends when idle (before, the count wrapped and no run
 * ever ended again). */
static void test_quiescence_release_without_hold_is_refused(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  assert_int_equal(isle_runtime_release(rt), ISLE_ESTATE);
  assert_int_equal(isle_runtime_release(NULL), ISLE_EINVAL);
  isle_runtime_hold(rt);
  assert_int_equal(isle_runtime_release(rt), 0);
  assert_int_equal(isle_runtime_release(rt), ISLE_ESTATE);
  support_runner_t run;
  support_runner_start(&run, rt);
  assert_true(support_runner_wait(&run, 10000)); /* it ends: idle */
  assert_int_equal(support_runner_join(&run), 0);
  assert_int_equal(isle_runtime_free(rt), 0);
  support_assert_heap_quiet();
}

/* Freeing a running runtime is refused with ISLE_EBUSY and frees nothing;
 * once run returned, free works. */
static void test_quiescence_free_while_running_is_refused(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  isle_runtime_hold(rt); /* keeps it running */
  support_runner_t run;
  support_runner_start(&run, rt);
  support_sleep_ms(20);
  assert_int_equal(isle_runtime_free(rt), ISLE_EBUSY);
  assert_int_equal(isle_runtime_release(rt), 0);
  assert_true(support_runner_wait(&run, 10000));
  assert_int_equal(support_runner_join(&run), 0);
  assert_int_equal(isle_runtime_free(rt), 0);
  assert_int_equal(isle_runtime_free(NULL), 0);
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_quiescence_outside_hold_send_release),
      T(test_quiescence_io_callback_in_parked_worker),
      T(test_quiescence_release_without_hold_is_refused),
      T(test_quiescence_free_while_running_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
