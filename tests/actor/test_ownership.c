/* isle — MIT licensed. */
/*
 * The ownership rules a new user relies on, where they once broke:
 * - a receive whose send of its own message fails may free it, leave it to
 *   the runtime, or send it elsewhere: each frees it exactly once (before,
 *   freeing it was a double free: the runtime freed it again);
 * - a spawn whose init fails leaves nothing behind that it linked: finalize
 *   does not run (init undoes its own work, as a C constructor does), an
 *   actor it spawned with isle_ctx_spawn_link hears its exit and ends, one
 *   it spawned unlinked is independent and lives on (as in Erlang).
 * The asan build reports a double free; every test ends with the heap back
 * at its baseline, so a message freed never shows as a leak.
 */
#define _GNU_SOURCE
#include "support.h"
#include "isle/lifecycle.h"

enum { MSG_WORK = 1 };
enum {
  LEAVE_IT = 0,
  FREE_IT,
  REDIRECT_IT,
  REDIRECT_FROM_OUTSIDE_API,
  PUSH_INTO_A_MAILBOX
};

typedef struct bouncer_s {
  int what;            /* what the receive does after the failed send */
  isle_ref_t dead;     /* a handle whose actor has ended */
  isle_ref_t alive;    /* where REDIRECT_IT sends it */
  isle_mailbox_t *box; /* where PUSH_INTO_A_MAILBOX pushes it */
  _Atomic uint64_t refused, redirected;
} bouncer_t;

static int bouncer_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(bouncer_t **)state = (bouncer_t *)arg;
  return 0;
}

static int bouncer_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  bouncer_t *b = *(bouncer_t **)state;
  int rc = isle_ctx_send(ctx, b->dead, msg);
  if (!WORKER_CHECK(rc == ISLE_EDEAD))
    return ISLE_EPROTO;
  atomic_fetch_add(&b->refused, 1);
  if (b->what == FREE_IT) {
    isle_msg_free(msg);
  } else if (b->what == REDIRECT_IT) {
    if (WORKER_CHECK(isle_ctx_send(ctx, b->alive, msg) == 0))
      atomic_fetch_add(&b->redirected, 1);
  } else if (b->what == REDIRECT_FROM_OUTSIDE_API) {
    /* Any send hands it on, not only isle_ctx_send (before, the runtime
     * freed it after this one too: a use after free at the receiver). */
    if (WORKER_CHECK(isle_runtime_send(isle_ctx_runtime(ctx), b->alive, msg) ==
                     0))
      atomic_fetch_add(&b->redirected, 1);
  } else if (b->what == PUSH_INTO_A_MAILBOX) {
    /* Before, the runtime freed it after this too: the mailbox held a
     * freed block. */
    if (WORKER_CHECK(isle_mailbox_push_mpsc(b->box, msg, NULL) == 0))
      atomic_fetch_add(&b->redirected, 1);
  }
  return ISLE_CONTINUE;
}

static const isle_actor_type_t bouncer_type = {
    .name = "bouncer",
    .state_size = sizeof(bouncer_t *),
    .init = bouncer_init,
    .receive = bouncer_receive,
};

static int sink_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return ISLE_CONTINUE;
}

static const isle_actor_type_t sink_type = {.name = "sink",
                                            .receive = sink_receive};

static int stop_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return ISLE_STOP;
}

static const isle_actor_type_t stopper_type = {.name = "stopper",
                                               .receive = stop_receive};

static void test_ownership_failed_send_of_own_message(void **state) {
  for (int what = LEAVE_IT; what <= PUSH_INTO_A_MAILBOX; what++) {
    isle_runtime_t *rt = support_runtime(2, 0);
    bouncer_t b = {.what = what};
    assert_int_equal(isle_mailbox_new(0, &b.box), 0);
    assert_int_equal(isle_runtime_spawn(rt, &stopper_type, NULL, &b.dead), 0);
    support_send(rt, b.dead, MSG_WORK, 0, 0);
    assert_int_equal(isle_runtime_run(rt), 0); /* b.dead has ended */
    assert_int_equal(isle_runtime_spawn(rt, &sink_type, NULL, &b.alive), 0);
    isle_ref_t bouncer = ISLE_REF_NONE;
    assert_int_equal(isle_runtime_spawn(rt, &bouncer_type, &b, &bouncer), 0);
    for (int i = 0; i < 100; i++)
      support_send(rt, bouncer, MSG_WORK, (uint64_t)i, 0);
    assert_int_equal(isle_runtime_run(rt), 0);
    support_assert_workers_ok();
    assert_int_equal(atomic_load(&b.refused), 100);
    assert_int_equal(atomic_load(&b.redirected), what >= REDIRECT_IT ? 100 : 0);
    assert_int_equal(isle_runtime_free(rt), 0);
    size_t in_box = 0;
    assert_int_equal(isle_mailbox_close_local(b.box, &in_box), 0);
    assert_int_equal(in_box, what == PUSH_INTO_A_MAILBOX ? 100 : 0);
    isle_mailbox_free(b.box);
    support_assert_heap_quiet();
  }
}

/* ----- A failing init ---------------------------------------------------- */

typedef struct family_s {
  isle_ref_t linked, unlinked;
  _Atomic uint64_t parent_finalized, linked_finalized, unlinked_finalized;
} family_t;

typedef struct child_s {
  _Atomic uint64_t *finalized;
} child_t;

static int child_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  ((child_t *)state)->finalized = (_Atomic uint64_t *)arg;
  return 0;
}

static void child_finalize(isle_ctx_t *ctx, void *state) {
  (void)ctx;
  atomic_fetch_add(((child_t *)state)->finalized, 1);
}

static const isle_actor_type_t child_type = {
    .name = "child",
    .state_size = sizeof(child_t),
    .init = child_init,
    .receive = sink_receive,
    .finalize = child_finalize,
};

static int parent_init(isle_ctx_t *ctx, void *state, const void *arg) {
  family_t *f = (family_t *)arg;
  *(family_t **)state = f;
  WORKER_CHECK(isle_ctx_spawn_link(ctx, &child_type, &f->linked_finalized,
                                   &f->linked) == 0);
  WORKER_CHECK(isle_ctx_spawn(ctx, &child_type, &f->unlinked_finalized,
                              &f->unlinked) == 0);
  return ISLE_EPROTO;
}

static void parent_finalize(isle_ctx_t *ctx, void *state) {
  (void)ctx;
  atomic_fetch_add(&(*(family_t **)state)->parent_finalized, 1);
}

static const isle_actor_type_t parent_type = {
    .name = "parent",
    .state_size = sizeof(family_t *),
    .init = parent_init,
    .receive = sink_receive,
    .finalize = parent_finalize,
};

static void test_ownership_failing_init_leaves_no_linked_child(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  family_t f;
  memset(&f, 0, sizeof f);
  isle_ref_t parent = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &parent_type, &f, &parent),
                   ISLE_EPROTO);
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
  assert_int_equal(atomic_load(&f.parent_finalized), 0);
  assert_int_equal(atomic_load(&f.linked_finalized), 1); /* heard the exit */
  assert_int_equal(atomic_load(&f.unlinked_finalized), 0);
  isle_msg_t *m = isle_msg_new(MSG_WORK, 0);
  assert_non_null(m);
  assert_int_equal(isle_runtime_send(rt, f.linked, m), ISLE_EDEAD);
  assert_int_equal(isle_runtime_send(rt, f.unlinked, m), 0); /* lives on */
  assert_int_equal(isle_runtime_run(rt), 0);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.actors_live, 1);
  assert_int_equal(isle_runtime_free(rt), 0);
  assert_int_equal(atomic_load(&f.unlinked_finalized), 1);
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_ownership_failed_send_of_own_message),
      T(test_ownership_failing_init_leaves_no_linked_child),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
