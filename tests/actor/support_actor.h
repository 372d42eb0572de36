/* isle — MIT licensed. */
/*
 * Helpers shared by the actor suites test_actor.c and test_actor_ctx.c, on
 * top of tests/actor/support.h: a probe actor that records what it sees
 * in a probe_t the test owns, spawn_probe, ref_index and run_ok. Static
 * inline (or static const) so that each suite compiles only what it uses;
 * each including file defines _GNU_SOURCE first (pthread, nanosleep under
 * -std=c11).
 */
#ifndef ISLE_TESTS_ACTOR_SUPPORT_ACTOR_H
#define ISLE_TESTS_ACTOR_SUPPORT_ACTOR_H

#include "support.h"

/* ===== A probe actor ==================================================== */

/* What a probe actor saw, for the test to assert on after the run. The
 * spawn argument is the probe; several actors may share one. */
typedef struct probe_s {
  _Atomic uint64_t inits;
  _Atomic uint64_t received;
  _Atomic uint64_t finalized;
  uint64_t stop_after; /* ISLE_STOP on this many receives; 0: never */
  isle_runtime_t *rt;  /* the runtime the ctx must name */
  _Atomic uint64_t self_in_init;
  _Atomic int worker_in_init;
  _Atomic uint64_t self_in_receive;
  _Atomic int worker_in_receive;
  _Atomic uint64_t last_sender;
  _Atomic(isle_msg_t *) last_msg;
  _Atomic uint64_t last_a;
} probe_t;

typedef struct probe_state_s {
  probe_t *probe;
  uint64_t received;
} probe_state_t;

static inline int probe_init(isle_ctx_t *ctx, void *state, const void *arg) {
  probe_state_t *s = state;
  probe_t *p = (probe_t *)arg;
  WORKER_CHECK(s->probe == NULL && s->received == 0); /* state is zeroed */
  s->probe = p;
  atomic_fetch_add(&p->inits, 1);
  atomic_store(&p->self_in_init, isle_ctx_self(ctx));
  atomic_store(&p->worker_in_init, isle_ctx_worker(ctx));
  WORKER_CHECK(isle_ctx_runtime(ctx) == p->rt);
  return 0;
}

static inline int probe_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  probe_state_t *s = state;
  probe_t *p = s->probe;
  WORKER_CHECK(isle_ctx_runtime(ctx) == p->rt);
  atomic_store(&p->self_in_receive, isle_ctx_self(ctx));
  atomic_store(&p->worker_in_receive, isle_ctx_worker(ctx));
  atomic_store(&p->last_sender, isle_msg_sender(msg));
  atomic_store(&p->last_msg, msg);
  atomic_store(&p->last_a, support_payload(msg)->a);
  atomic_fetch_add(&p->received, 1);
  s->received++;
  return p->stop_after && s->received == p->stop_after ? ISLE_STOP
                                                       : ISLE_CONTINUE;
}

static inline void probe_finalize(isle_ctx_t *ctx, void *state) {
  probe_state_t *s = state;
  WORKER_CHECK(isle_ctx_runtime(ctx) == s->probe->rt);
  atomic_fetch_add(&s->probe->finalized, 1);
}

static const isle_actor_type_t probe_type = {
    .name = "probe",
    .state_size = sizeof(probe_state_t),
    .init = probe_init,
    .receive = probe_receive,
    .finalize = probe_finalize,
};

static inline isle_ref_t spawn_probe(isle_runtime_t *rt, probe_t *p) {
  p->rt = rt;
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &probe_type, p, &ref), 0);
  assert_true(ref != ISLE_REF_NONE);
  return ref;
}

static inline uint32_t ref_index(isle_ref_t r) {
  return (uint32_t)r;
}

static inline void run_ok(isle_runtime_t *rt) {
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
}

#endif /* ISLE_TESTS_ACTOR_SUPPORT_ACTOR_H */
