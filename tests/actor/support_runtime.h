/* isle — MIT licensed. */
/*
 * Helpers shared by the runtime suites (tests/actor/test_runtime*.c), on
 * top of tests/actor/support.h: a counting actor that counts, stops or
 * fails as its argument says; run_ok; and a relay, tokens passed around a
 * ring of actors. Static inline (or static const) so that each suite
 * compiles only what it uses; each including file defines _GNU_SOURCE
 * first (pthread_barrier_t, sigaction, nanosleep under -std=c11).
 */
#ifndef ISLE_TESTS_ACTOR_SUPPORT_RUNTIME_H
#define ISLE_TESTS_ACTOR_SUPPORT_RUNTIME_H

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

static inline int counter_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(counter_arg_t *)state = *(const counter_arg_t *)arg;
  return 0;
}

static inline int counter_receive(isle_ctx_t *ctx, void *state,
                                  isle_msg_t *msg) {
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

static inline void counter_finalize(isle_ctx_t *ctx, void *state) {
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

static inline isle_ref_t spawn_counter(isle_runtime_t *rt, counts_t *counts,
                                       counter_mode_t mode) {
  counter_arg_t arg = {counts, mode};
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &counter_type, &arg, &ref), 0);
  return ref;
}

static inline void run_ok(isle_runtime_t *rt) {
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

static inline int relay_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(relay_arg_t *)state = *(const relay_arg_t *)arg;
  return 0;
}

static inline int relay_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
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
static inline void relay_start(isle_runtime_t *rt, relay_t *r, unsigned n,
                               unsigned work_us, uint64_t tokens,
                               uint64_t hops) {
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

#endif /* ISLE_TESTS_ACTOR_SUPPORT_RUNTIME_H */
