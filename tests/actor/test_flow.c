/* isle — MIT licensed. */
/*
 * Flow control (actor/mute.c, docs/runtime.md): a sender that outruns its
 * receiver is held back, so the receiver's backlog stays bounded; floods
 * in both directions still finish; a sender muted on a receiver that ends
 * is let go; a stop while actors are muted loses none of them.
 *
 * The flooder sends CHUNK messages per receive to its target and a
 * CONTINUE to itself, until it has sent `total`; the sink counts what it
 * gets (in order) and may stop after `stop_after`. The flooder records the
 * largest backlog it saw after a chunk (sent - received).
 */
#define _GNU_SOURCE
#include "support.h"

#define CHUNK 1000u

enum { MSG_GO = 1, MSG_ITEM };

typedef struct flood_s {
  uint64_t total;      /* messages the flooder sends */
  uint64_t stop_after; /* the sink stops after this many (0: never) */
  unsigned sink_busy_us;
  _Atomic uint64_t sent, refused, received, max_backlog;
  _Atomic uint64_t out_of_order;
  isle_ref_t sink;
} flood_t;

typedef struct flooder_s {
  flood_t *f;
  uint64_t next;
} flooder_t;

static int flooder_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((flooder_t *)state)->f = (flood_t *)arg;
  return 0;
}

static int flooder_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  flooder_t *fl = state;
  flood_t *f = fl->f;
  if (!WORKER_CHECK(isle_msg_type(msg) == MSG_GO))
    return ISLE_EPROTO;
  for (unsigned i = 0; i < CHUNK && fl->next < f->total; i++, fl->next++) {
    isle_msg_t *m = support_msg(MSG_ITEM, fl->next, 0);
    if (!WORKER_CHECK(m != NULL))
      return ISLE_ENOMEM;
    int rc = isle_ctx_send(ctx, f->sink, m);
    if (rc == 0) {
      atomic_fetch_add(&f->sent, 1);
    } else {
      WORKER_CHECK(rc == ISLE_EDEAD); /* the sink may have ended */
      isle_msg_free(m);
      atomic_fetch_add(&f->refused, 1);
    }
  }
  uint64_t backlog = atomic_load(&f->sent) - atomic_load(&f->received);
  if (backlog > atomic_load(&f->max_backlog))
    atomic_store(&f->max_backlog, backlog);
  if (fl->next == f->total)
    return ISLE_STOP;
  isle_msg_t *go = support_msg(MSG_GO, 0, 0);
  if (!WORKER_CHECK(go != NULL))
    return ISLE_ENOMEM;
  if (!WORKER_CHECK(isle_ctx_send(ctx, isle_ctx_self(ctx), go) == 0)) {
    isle_msg_free(go);
    return ISLE_EPROTO;
  }
  return ISLE_CONTINUE;
}

static int sink_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  flood_t *f = *(flood_t **)state;
  if (!WORKER_CHECK(isle_msg_type(msg) == MSG_ITEM))
    return ISLE_EPROTO;
  uint64_t n = atomic_load(&f->received);
  if (support_payload(msg)->a != n)
    atomic_fetch_add(&f->out_of_order, 1);
  atomic_store(&f->received, n + 1);
  if (f->sink_busy_us)
    support_busy_us(f->sink_busy_us);
  if (f->stop_after && n + 1 == f->stop_after)
    return ISLE_STOP;
  return ISLE_CONTINUE;
}

static int sink_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(flood_t **)state = (flood_t *)arg;
  return 0;
}

static const isle_actor_type_t flooder_type = {
    .name = "flooder",
    .state_size = sizeof(flooder_t),
    .init = flooder_init,
    .receive = flooder_receive,
};

static const isle_actor_type_t sink_type = {
    .name = "sink",
    .state_size = sizeof(flood_t *),
    .init = sink_init,
    .receive = sink_receive,
};

/* Spawns the sink and a flooder aimed at it, and starts the flooder. */
static void flood_start(isle_runtime_t *rt, flood_t *f) {
  assert_int_equal(isle_runtime_spawn(rt, &sink_type, f, &f->sink), 0);
  isle_ref_t flooder = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &flooder_type, f, &flooder), 0);
  support_send(rt, flooder, MSG_GO, 0, 0);
}

/* With one worker the sink only runs when the flooder gives way: without
 * flow control each flooder turn adds CHUNK and each sink turn takes 64,
 * and the backlog grows to nearly `total` (it did: 187,264 of 200,000). With
 * it, the backlog stays near the high mark (16 x 64) plus a chunk. Two workers
 * must keep the same bound. */
static void test_flow_flooder_cannot_outrun_its_sink(void **state) {
  for (unsigned workers = 1; workers <= 2; workers++) {
    isle_runtime_t *rt = support_runtime(workers, 0);
    flood_t f;
    memset(&f, 0, sizeof f);
    f.total = support_iters(200000);
    flood_start(rt, &f);
    assert_int_equal(isle_runtime_run(rt), 0);
    support_assert_workers_ok();
    assert_int_equal(atomic_load(&f.received), f.total);
    assert_int_equal(atomic_load(&f.out_of_order), 0);
    uint64_t bound = 16 * 64 + 2 * CHUNK;
    fprintf(stderr,
            "%u worker(s): largest backlog %" PRIu64 " (bound %" PRIu64 ")\n",
            workers, atomic_load(&f.max_backlog), bound);
    assert_true(atomic_load(&f.max_backlog) <= bound);
    isle_runtime_free(rt);
  }
  support_assert_heap_quiet();
}

/* Two flooders aimed at each other's sinks is not a cycle; this is: each
 * actor floods the other and is flooded by it. Both are backlogged, so
 * neither is muted for long; the run must end with every message
 * delivered. A deadline catches a hang. */
typedef struct duel_side_s {
  struct duel_side_s *peer;
  isle_ref_t self;
  uint64_t total;
  uint64_t next;
  _Atomic uint64_t received;
} duel_side_t;

static int duel_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(duel_side_t **)state = (duel_side_t *)arg;
  return 0;
}

static int duel_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  duel_side_t *d = *(duel_side_t **)state;
  if (isle_msg_type(msg) == MSG_ITEM) {
    atomic_fetch_add(&d->received, 1);
    return ISLE_CONTINUE;
  }
  for (unsigned i = 0; i < CHUNK && d->next < d->total; i++, d->next++) {
    isle_msg_t *m = support_msg(MSG_ITEM, d->next, 0);
    if (!WORKER_CHECK(m != NULL))
      return ISLE_ENOMEM;
    if (!WORKER_CHECK(isle_ctx_send(ctx, d->peer->self, m) == 0))
      isle_msg_free(m);
  }
  if (d->next < d->total) {
    isle_msg_t *go = support_msg(MSG_GO, 0, 0);
    if (WORKER_CHECK(go != NULL) &&
        !WORKER_CHECK(isle_ctx_send(ctx, d->self, go) == 0))
      isle_msg_free(go);
  }
  return ISLE_CONTINUE;
}

static const isle_actor_type_t duel_type = {
    .name = "duel",
    .state_size = sizeof(duel_side_t *),
    .init = duel_init,
    .receive = duel_receive,
};

static void test_flow_actors_flooding_each_other_finish(void **state) {
  for (unsigned workers = 1; workers <= 2; workers++) {
    isle_runtime_t *rt = support_runtime(workers, 0);
    duel_side_t side[2];
    memset(side, 0, sizeof side);
    for (int i = 0; i < 2; i++) {
      side[i].peer = &side[1 - i];
      side[i].total = support_iters(100000);
      assert_int_equal(
          isle_runtime_spawn(rt, &duel_type, &side[i], &side[i].self), 0);
    }
    for (int i = 0; i < 2; i++)
      support_send(rt, side[i].self, MSG_GO, 0, 0);
    support_runner_t r;
    support_runner_start(&r, rt);
    assert_true(support_runner_wait(&r, 60000));
    assert_int_equal(support_runner_join(&r), 0);
    support_assert_workers_ok();
    for (int i = 0; i < 2; i++)
      assert_int_equal(atomic_load(&side[i].received), side[1 - i].total);
    isle_runtime_free(rt);
  }
  support_assert_heap_quiet();
}

/* The sink ends after a fifth of the flood while the flooder is muted on
 * it: the flooder is let go, its later sends fail with ISLE_EDEAD and it
 * finishes. What the sink had queued when it ended is dropped as dead
 * letters. */
static void test_flow_sender_muted_on_an_ending_sink_goes_on(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  flood_t f;
  memset(&f, 0, sizeof f);
  f.total = support_iters(100000);
  f.stop_after = f.total / 5;
  flood_start(rt, &f);
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&f.received), f.stop_after);
  assert_int_equal(atomic_load(&f.sent) + atomic_load(&f.refused), f.total);
  assert_true(atomic_load(&f.refused) > 0);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.dead_letters, atomic_load(&f.sent) - f.stop_after +
                                       atomic_load(&f.refused));
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* A stop while the flooder is muted (the sink is slow: 20 µs a message)
 * loses nothing: the next run picks everything up where it was and
 * finishes the flood. */
static void test_flow_stop_while_muted_loses_nothing(void **state) {
  isle_runtime_t *rt = support_runtime(1, 0);
  flood_t f;
  memset(&f, 0, sizeof f);
  f.total = 20000;
  f.sink_busy_us = 20;
  flood_start(rt, &f);
  support_runner_t r;
  support_runner_start(&r, rt);
  assert_true(support_wait_u64(&f.received, 2000, 30000));
  isle_runtime_stop(rt);
  assert_int_equal(support_runner_join(&r), 0);
  uint64_t at_stop = atomic_load(&f.received);
  assert_true(at_stop < f.total);
  f.sink_busy_us = 0;
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&f.received), f.total);
  assert_int_equal(atomic_load(&f.out_of_order), 0);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_flow_flooder_cannot_outrun_its_sink),
      T(test_flow_actors_flooding_each_other_finish),
      T(test_flow_sender_muted_on_an_ending_sink_goes_on),
      T(test_flow_stop_while_muted_loses_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
