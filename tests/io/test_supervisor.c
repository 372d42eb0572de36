/* isle — MIT licensed. */
/*
 * Supervisors (isle_supervisor_type, include/isle/lifecycle.h): each
 * strategy restarts exactly the children it should; permanent, transient
 * and temporary children; the restart intensity (more than max_restarts
 * within within_ms and the supervisor ends with ISLE_ERESTARTS, its
 * children with it); nested supervisors; init failures (a bad spec, a
 * child whose init fails, a name taken twice); and a supervisor asked to
 * exit, which stops its children (killing one that will not stop) before
 * it ends.
 *
 * Children count their inits per spec entry and are reached by their
 * registered names, so a restart shows as one more init and a name that
 * resolves to a new handle. A watcher actor monitors what the test wants
 * to see end. Callbacks check with WORKER_CHECK; every test ends with the
 * heap as it began (support_assert_heap_quiet).
 */
#define _GNU_SOURCE /* pthread, nanosleep under -std=c11 */

#include "../actor/support.h"

#include "isle/lifecycle.h"

/* ===== Children ========================================================= */

enum { K_FAIL = 1, K_STOP = 2, K_PING = 3 };

typedef struct kid_s {
  _Atomic uint64_t inits;
  _Atomic uint64_t finalized;
  _Atomic uint64_t pings;
  int init_rc;   /* what init returns (after counting) */
  bool stubborn; /* traps exits and ignores exit requests */
} kid_t;

static int kid_init(isle_ctx_t *ctx, void *state, const void *arg) {
  kid_t *k = (kid_t *)arg;
  *(kid_t **)state = k;
  atomic_fetch_add(&k->inits, 1);
  if (k->stubborn)
    WORKER_CHECK(isle_trap_exits(ctx, true) == 0);
  return k->init_rc;
}

static int kid_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  (void)ctx;
  kid_t *k = *(kid_t **)state;
  switch (isle_msg_type(msg)) {
  case K_FAIL:
    return (int)support_payload(msg)->b;
  case K_STOP:
    return ISLE_STOP;
  case K_PING:
    atomic_fetch_add(&k->pings, 1);
    break;
  }
  return ISLE_CONTINUE; /* a stubborn kid ignores ISLE_MSG_EXIT */
}

static void kid_finalize(isle_ctx_t *ctx, void *state) {
  (void)ctx;
  atomic_fetch_add(&(*(kid_t **)state)->finalized, 1);
}

static const isle_actor_type_t kid_type = {
    .name = "kid",
    .state_size = sizeof(kid_t *),
    .init = kid_init,
    .receive = kid_receive,
    .finalize = kid_finalize,
};

/* ===== A watcher ======================================================== */

enum { W_MONITOR = 1 };
enum { DOWN_MAX = 16 };

typedef struct watch_s {
  isle_down_t down[DOWN_MAX];
  int lookup_rc[DOWN_MAX]; /* of `name` at each DOWN */
  unsigned ndown;
  const char *name;
} watch_t;

static int watcher_init(isle_ctx_t *ctx, void *state, const void *arg) {
  (void)ctx;
  *(watch_t **)state = (watch_t *)arg;
  return 0;
}

static int watcher_receive(isle_ctx_t *ctx, void *state, isle_msg_t *msg) {
  watch_t *w = *(watch_t **)state;
  const isle_down_t *d = isle_msg_down(msg);
  if (d) {
    if (WORKER_CHECK(w->ndown < DOWN_MAX)) {
      isle_ref_t r;
      w->lookup_rc[w->ndown] =
          w->name ? isle_name_lookup(isle_ctx_runtime(ctx), w->name, &r) : 0;
      w->down[w->ndown++] = *d;
    }
  } else if (isle_msg_type(msg) == W_MONITOR) {
    WORKER_CHECK(isle_monitor(ctx, support_payload(msg)->a, NULL) == 0);
  }
  return ISLE_CONTINUE;
}

static const isle_actor_type_t watcher_type = {
    .name = "watcher",
    .state_size = sizeof(watch_t *),
    .init = watcher_init,
    .receive = watcher_receive,
};

/* ===== Helpers ========================================================== */

static void run_ok(isle_runtime_t *rt) {
  assert_int_equal(isle_runtime_run(rt), 0);
  support_assert_workers_ok();
}

static isle_ref_t lookup(isle_runtime_t *rt, const char *name) {
  isle_ref_t r = ISLE_REF_NONE;
  assert_int_equal(isle_name_lookup(rt, name, &r), 0);
  return r;
}

static bool named(isle_runtime_t *rt, const char *name) {
  isle_ref_t r;
  int rc = isle_name_lookup(rt, name, &r);
  assert_true(rc == 0 || rc == ISLE_ENOENT);
  return rc == 0;
}

/* Sends K_FAIL(reason) (or K_STOP for reason 1) to the child named `name`
 * and runs until the supervisor has done what it does. */
static void end_child(isle_runtime_t *rt, const char *name, int reason) {
  support_send(rt, lookup(rt, name), reason == 1 ? K_STOP : K_FAIL, 0,
               (uint64_t)(int64_t)reason);
  run_ok(rt);
}

static isle_ref_t spawn_sup(isle_runtime_t *rt, const isle_sup_spec_t *spec) {
  isle_ref_t r = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &isle_supervisor_type, spec, &r), 0);
  return r;
}

/* A watcher of `target`, its monitor in place once this returns. */
static isle_ref_t watch(isle_runtime_t *rt, watch_t *w, isle_ref_t target) {
  isle_ref_t ref = ISLE_REF_NONE;
  assert_int_equal(isle_runtime_spawn(rt, &watcher_type, w, &ref), 0);
  support_send(rt, ref, W_MONITOR, target, 0);
  run_ok(rt);
  return ref;
}

static const char *const NAMES[] = {"c0", "c1", "c2", "c3"};

/* ===== Strategies ======================================================= */

/* Three permanent children c0..c2; c1 fails. `restarted` says which
 * children the strategy must restart (new init, new handle) — no other. */
static void strategy_case(isle_sup_strategy_t strategy,
                          const bool restarted[3]) {
  isle_runtime_t *rt = support_runtime(2, 0);
  kid_t kids[3];
  memset(kids, 0, sizeof kids);
  isle_child_spec_t cs[3];
  for (int i = 0; i < 3; i++)
    cs[i] = (isle_child_spec_t){.name = NAMES[i],
                                .type = &kid_type,
                                .arg = &kids[i],
                                .restart = ISLE_PERMANENT};
  isle_sup_spec_t spec = {.strategy = strategy,
                          .max_restarts = 3,
                          .within_ms = 10000,
                          .children = cs,
                          .nchildren = 3,
                          .shutdown_ms = 0};
  isle_ref_t sup = spawn_sup(rt, &spec);
  isle_ref_t before[3];
  for (int i = 0; i < 3; i++) {
    before[i] = lookup(rt, NAMES[i]);
    assert_int_equal(atomic_load(&kids[i].inits), 1);
  }
  end_child(rt, "c1", ISLE_EIO);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(atomic_load(&kids[i].inits), restarted[i] ? 2 : 1);
    assert_int_equal(atomic_load(&kids[i].finalized), restarted[i] ? 1 : 0);
    isle_ref_t now = lookup(rt, NAMES[i]);
    if (restarted[i])
      assert_int_not_equal(now, before[i]);
    else
      assert_int_equal(now, before[i]);
  }
  /* The new incarnations work, and the supervisor is still there. */
  for (int i = 0; i < 3; i++)
    support_send(rt, lookup(rt, NAMES[i]), K_PING, 0, 0);
  run_ok(rt);
  for (int i = 0; i < 3; i++)
    assert_int_equal(atomic_load(&kids[i].pings), 1);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.actors_live, 4);
  (void)sup;
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

static void
test_supervisor_one_for_one_restarts_the_child_that_ended(void **state) {
  static const bool r[3] = {false, true, false};
  strategy_case(ISLE_ONE_FOR_ONE, r);
}

static void test_supervisor_one_for_all_restarts_every_child(void **state) {
  static const bool r[3] = {true, true, true};
  strategy_case(ISLE_ONE_FOR_ALL, r);
}

static void
test_supervisor_rest_for_one_restarts_the_later_children(void **state) {
  static const bool r[3] = {false, true, true};
  strategy_case(ISLE_REST_FOR_ONE, r);
}

/* ===== Restart types ==================================================== */

/* Permanent: restarted after any end; transient: after an abnormal one;
 * temporary: never, also when a sibling's failure stops it. */
static void test_supervisor_restart_types(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  for (int abnormal = 0; abnormal < 2; abnormal++) {
    kid_t kids[3];
    memset(kids, 0, sizeof kids);
    isle_child_spec_t cs[3] = {
        {.name = "c0",
         .type = &kid_type,
         .arg = &kids[0],
         .restart = ISLE_PERMANENT},
        {.name = "c1",
         .type = &kid_type,
         .arg = &kids[1],
         .restart = ISLE_TRANSIENT},
        {.name = "c2",
         .type = &kid_type,
         .arg = &kids[2],
         .restart = ISLE_TEMPORARY},
    };
    isle_sup_spec_t spec = {.strategy = ISLE_ONE_FOR_ONE,
                            .max_restarts = 10,
                            .within_ms = 10000,
                            .children = cs,
                            .nchildren = 3,
                            .shutdown_ms = 0};
    isle_ref_t sup = spawn_sup(rt, &spec);
    for (int i = 0; i < 3; i++)
      end_child(rt, NAMES[i], abnormal ? ISLE_EIO : 1);
    assert_int_equal(atomic_load(&kids[0].inits), 2);
    assert_int_equal(atomic_load(&kids[1].inits), abnormal ? 2 : 1);
    assert_int_equal(atomic_load(&kids[2].inits), 1);
    assert_true(named(rt, "c0"));
    assert_true(named(rt, "c1") == (abnormal == 1));
    assert_false(named(rt, "c2"));
    assert_int_equal(isle_runtime_exit(rt, sup, ISLE_EKILLED), 0);
    run_ok(rt);
    assert_int_equal(support_stats(rt).actors_live, 0);
  }

  /* One-for-all: a temporary sibling is stopped, not restarted; a
   * transient one stopped by the supervisor is restarted. */
  kid_t kids[3];
  memset(kids, 0, sizeof kids);
  isle_child_spec_t cs[3] = {
      {.name = "c0",
       .type = &kid_type,
       .arg = &kids[0],
       .restart = ISLE_PERMANENT},
      {.name = "c1",
       .type = &kid_type,
       .arg = &kids[1],
       .restart = ISLE_TRANSIENT},
      {.name = "c2",
       .type = &kid_type,
       .arg = &kids[2],
       .restart = ISLE_TEMPORARY},
  };
  isle_sup_spec_t spec = {.strategy = ISLE_ONE_FOR_ALL,
                          .max_restarts = 10,
                          .within_ms = 10000,
                          .children = cs,
                          .nchildren = 3,
                          .shutdown_ms = 0};
  spawn_sup(rt, &spec);
  end_child(rt, "c0", ISLE_EIO);
  assert_int_equal(atomic_load(&kids[0].inits), 2);
  assert_int_equal(atomic_load(&kids[1].inits), 2);
  assert_int_equal(atomic_load(&kids[2].inits), 1);
  assert_int_equal(atomic_load(&kids[2].finalized), 1);
  assert_false(named(rt, "c2"));
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== Intensity ======================================================== */

/* max_restarts 2 within 10 s: the third failure ends the supervisor with
 * ISLE_ERESTARTS, and its children with it. Restarts spread wider than
 * within_ms are allowed. */
static void test_supervisor_gives_up_after_too_many_restarts(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  kid_t kids[2];
  memset(kids, 0, sizeof kids);
  isle_child_spec_t cs[2] = {
      {.name = "c0",
       .type = &kid_type,
       .arg = &kids[0],
       .restart = ISLE_PERMANENT},
      {.name = "c1",
       .type = &kid_type,
       .arg = &kids[1],
       .restart = ISLE_PERMANENT},
  };
  isle_sup_spec_t spec = {.strategy = ISLE_ONE_FOR_ONE,
                          .max_restarts = 2,
                          .within_ms = 10000,
                          .children = cs,
                          .nchildren = 2,
                          .shutdown_ms = 0};
  isle_ref_t sup = spawn_sup(rt, &spec);
  watch_t w;
  memset(&w, 0, sizeof w);
  w.name = "c1";
  watch(rt, &w, sup);
  end_child(rt, "c0", ISLE_EIO);
  end_child(rt, "c0", ISLE_EIO);
  assert_int_equal(w.ndown, 0);
  assert_int_equal(atomic_load(&kids[0].inits), 3);
  end_child(rt, "c0", ISLE_EIO); /* the third within 10 s: too many */
  assert_int_equal(w.ndown, 1);
  assert_int_equal(w.down[0].ref, sup);
  assert_int_equal(w.down[0].reason, ISLE_ERESTARTS);
  assert_int_equal(w.lookup_rc[0], ISLE_ENOENT); /* c1 ended before it */
  assert_int_equal(atomic_load(&kids[0].inits), 3);
  assert_int_equal(atomic_load(&kids[0].finalized), 3);
  assert_int_equal(atomic_load(&kids[1].finalized), 1);
  assert_false(named(rt, "c0"));
  assert_false(named(rt, "c1"));
  assert_int_equal(support_stats(rt).actors_live, 1); /* the watcher */

  /* max_restarts 1 within 50 ms: failures further apart are fine. */
  memset(kids, 0, sizeof kids);
  isle_sup_spec_t spec2 = {.strategy = ISLE_ONE_FOR_ONE,
                           .max_restarts = 1,
                           .within_ms = 50,
                           .children = cs,
                           .nchildren = 1,
                           .shutdown_ms = 0};
  sup = spawn_sup(rt, &spec2);
  for (int i = 0; i < 3; i++) {
    end_child(rt, "c0", ISLE_EIO);
    support_sleep_ms(120); /* lets the window pass */
  }
  assert_int_equal(atomic_load(&kids[0].inits), 4);
  assert_true(named(rt, "c0"));
  /* max_restarts 0: the first failure is one too many. */
  assert_int_equal(isle_runtime_exit(rt, sup, ISLE_EKILLED), 0);
  run_ok(rt);
  memset(kids, 0, sizeof kids);
  isle_sup_spec_t spec3 = {.strategy = ISLE_ONE_FOR_ONE,
                           .max_restarts = 0,
                           .within_ms = 10000,
                           .children = cs,
                           .nchildren = 1,
                           .shutdown_ms = 0};
  sup = spawn_sup(rt, &spec3);
  memset(&w, 0, sizeof w);
  watch(rt, &w, sup);
  end_child(rt, "c0", ISLE_EIO);
  assert_int_equal(w.ndown, 1);
  assert_int_equal(w.down[0].reason, ISLE_ERESTARTS);
  assert_int_equal(atomic_load(&kids[0].inits), 1);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== Nesting ========================================================== */

/* outer (one-for-one) supervises inner, which gives up at the first
 * failure of its child: outer restarts inner, which starts leaf anew
 * (whose name the first incarnation had freed by then). */
static void
test_supervisor_nested_restarts_an_inner_that_gave_up(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  kid_t leaf;
  memset(&leaf, 0, sizeof leaf);
  isle_child_spec_t inner_children[1] = {{.name = "leaf",
                                          .type = &kid_type,
                                          .arg = &leaf,
                                          .restart = ISLE_PERMANENT}};
  isle_sup_spec_t inner = {.strategy = ISLE_ONE_FOR_ONE,
                           .max_restarts = 0,
                           .within_ms = 10000,
                           .children = inner_children,
                           .nchildren = 1,
                           .shutdown_ms = 0};
  isle_child_spec_t outer_children[1] = {{.name = "inner",
                                          .type = &isle_supervisor_type,
                                          .arg = &inner,
                                          .restart = ISLE_PERMANENT}};
  isle_sup_spec_t outer = {.strategy = ISLE_ONE_FOR_ONE,
                           .max_restarts = 5,
                           .within_ms = 10000,
                           .children = outer_children,
                           .nchildren = 1,
                           .shutdown_ms = 0};
  isle_ref_t top = spawn_sup(rt, &outer);
  isle_ref_t inner1 = lookup(rt, "inner");
  watch_t w;
  memset(&w, 0, sizeof w);
  watch(rt, &w, inner1);
  for (int round = 1; round <= 3; round++) {
    isle_ref_t in = lookup(rt, "inner");
    end_child(rt, "leaf", ISLE_EPROTO);
    assert_int_equal(atomic_load(&leaf.inits), 1 + (uint64_t)round);
    assert_int_not_equal(lookup(rt, "inner"), in);
    assert_true(named(rt, "leaf"));
  }
  assert_int_equal(w.ndown, 1);
  assert_int_equal(w.down[0].reason, ISLE_ERESTARTS);
  /* outer, inner, leaf and the watcher. */
  assert_int_equal(support_stats(rt).actors_live, 4);
  /* Asked to exit, the top shuts the whole tree down. */
  assert_int_equal(isle_runtime_exit(rt, top, ISLE_ESHUTDOWN), 0);
  run_ok(rt);
  assert_int_equal(support_stats(rt).actors_live, 1);
  assert_false(named(rt, "inner"));
  assert_false(named(rt, "leaf"));
  assert_int_equal(atomic_load(&leaf.finalized), 4);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== Init failures ==================================================== */

static void test_supervisor_init_failures(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  kid_t kids[3];
  memset(kids, 0, sizeof kids);
  isle_child_spec_t good[1] = {{.name = "c0",
                                .type = &kid_type,
                                .arg = &kids[0],
                                .restart = ISLE_PERMANENT}};
  isle_child_spec_t no_type[1] = {
      {.name = "c0", .type = NULL, .arg = &kids[0], .restart = ISLE_PERMANENT}};
  isle_child_spec_t bad_restart[1] = {{.name = "c0",
                                       .type = &kid_type,
                                       .arg = &kids[0],
                                       .restart = (isle_restart_t)7}};
  isle_sup_spec_t bad_strategy = {.strategy = (isle_sup_strategy_t)9,
                                  .max_restarts = 1,
                                  .within_ms = 1,
                                  .children = good,
                                  .nchildren = 1,
                                  .shutdown_ms = 0};
  isle_sup_spec_t no_children = {.strategy = ISLE_ONE_FOR_ONE,
                                 .max_restarts = 1,
                                 .within_ms = 1,
                                 .children = NULL,
                                 .nchildren = 2,
                                 .shutdown_ms = 0};
  isle_sup_spec_t spec_no_type = {.strategy = ISLE_ONE_FOR_ONE,
                                  .max_restarts = 1,
                                  .within_ms = 1,
                                  .children = no_type,
                                  .nchildren = 1,
                                  .shutdown_ms = 0};
  isle_sup_spec_t spec_bad_restart = {.strategy = ISLE_ONE_FOR_ONE,
                                      .max_restarts = 1,
                                      .within_ms = 1,
                                      .children = bad_restart,
                                      .nchildren = 1,
                                      .shutdown_ms = 0};
  const isle_sup_spec_t *bad[] = {NULL, &bad_strategy, &no_children,
                                  &spec_no_type, &spec_bad_restart};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    isle_ref_t r = 42;
    assert_int_equal(isle_runtime_spawn(rt, &isle_supervisor_type, bad[i], &r),
                     ISLE_EINVAL);
    assert_int_equal(r, 42);
  }
  assert_int_equal(atomic_load(&kids[0].inits), 0);

  /* The second child's init fails: the spawn fails with its error and the
   * first child, started already, ends. */
  kids[1].init_rc = ISLE_EPROTO;
  isle_child_spec_t cs[3] = {
      {.name = "c0",
       .type = &kid_type,
       .arg = &kids[0],
       .restart = ISLE_PERMANENT},
      {.name = "c1",
       .type = &kid_type,
       .arg = &kids[1],
       .restart = ISLE_PERMANENT},
      {.name = "c2",
       .type = &kid_type,
       .arg = &kids[2],
       .restart = ISLE_PERMANENT},
  };
  isle_sup_spec_t spec = {.strategy = ISLE_ONE_FOR_ONE,
                          .max_restarts = 5,
                          .within_ms = 1000,
                          .children = cs,
                          .nchildren = 3,
                          .shutdown_ms = 0};
  assert_int_equal(isle_runtime_spawn(rt, &isle_supervisor_type, &spec, NULL),
                   ISLE_EPROTO);
  run_ok(rt);
  assert_int_equal(atomic_load(&kids[0].inits), 1);
  assert_int_equal(atomic_load(&kids[0].finalized), 1);
  assert_int_equal(atomic_load(&kids[1].inits), 1);
  assert_int_equal(atomic_load(&kids[2].inits), 0);
  assert_false(named(rt, "c0"));
  assert_int_equal(support_stats(rt).actors_live, 0);

  /* A name taken twice: the second registration fails the spawn. */
  memset(kids, 0, sizeof kids);
  isle_child_spec_t dup[2] = {
      {.name = "dup",
       .type = &kid_type,
       .arg = &kids[0],
       .restart = ISLE_PERMANENT},
      {.name = "dup",
       .type = &kid_type,
       .arg = &kids[1],
       .restart = ISLE_PERMANENT},
  };
  isle_sup_spec_t spec_dup = {.strategy = ISLE_ONE_FOR_ONE,
                              .max_restarts = 5,
                              .within_ms = 1000,
                              .children = dup,
                              .nchildren = 2,
                              .shutdown_ms = 0};
  assert_int_equal(
      isle_runtime_spawn(rt, &isle_supervisor_type, &spec_dup, NULL),
      ISLE_EBUSY);
  run_ok(rt);
  assert_int_equal(atomic_load(&kids[0].finalized), 1);
  assert_int_equal(atomic_load(&kids[1].finalized), 1);
  assert_false(named(rt, "dup"));
  assert_int_equal(support_stats(rt).actors_live, 0);

  /* No children at all is a valid spec. */
  isle_sup_spec_t empty = {.strategy = ISLE_ONE_FOR_ALL,
                           .max_restarts = 1,
                           .within_ms = 1,
                           .children = NULL,
                           .nchildren = 0,
                           .shutdown_ms = 0};
  isle_ref_t e = spawn_sup(rt, &empty);
  run_ok(rt);
  assert_int_equal(support_stats(rt).actors_live, 1);
  /* Asked to exit normally, with no child to wait for, it ends at once. */
  assert_int_equal(isle_runtime_exit(rt, e, ISLE_EXIT_NORMAL), 0);
  run_ok(rt);
  assert_int_equal(support_stats(rt).actors_live, 0);
  spawn_sup(rt, &empty); /* and one left for isle_runtime_free */
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

/* ===== Shutting down ==================================================== */

/* Asked to exit, a supervisor asks its children to exit (ISLE_ESHUTDOWN),
 * kills one that ignores it after shutdown_ms (ISLE_EKILLED), and only
 * then ends, with the reason it was given: by then every child name is
 * free. */
static void test_supervisor_exit_stops_children_before_it_ends(void **state) {
  isle_runtime_t *rt = support_runtime(2, 0);
  kid_t kids[2];
  memset(kids, 0, sizeof kids);
  kids[1].stubborn = true;
  isle_child_spec_t cs[2] = {
      {.name = "c0",
       .type = &kid_type,
       .arg = &kids[0],
       .restart = ISLE_PERMANENT},
      {.name = "c1",
       .type = &kid_type,
       .arg = &kids[1],
       .restart = ISLE_PERMANENT},
  };
  isle_sup_spec_t spec = {.strategy = ISLE_ONE_FOR_ONE,
                          .max_restarts = 5,
                          .within_ms = 1000,
                          .children = cs,
                          .nchildren = 2,
                          .shutdown_ms = 50};
  isle_ref_t sup = spawn_sup(rt, &spec);
  watch_t w;
  memset(&w, 0, sizeof w);
  w.name = "c1";
  isle_ref_t wr = watch(rt, &w, sup);
  isle_ref_t c0 = lookup(rt, "c0"), c1 = lookup(rt, "c1");
  support_send(rt, wr, W_MONITOR, c0, 0);
  support_send(rt, wr, W_MONITOR, c1, 0);
  run_ok(rt);
  uint64_t t0 = support_now_ns();
  assert_int_equal(isle_runtime_exit(rt, sup, ISLE_EXIT_NORMAL), 0);
  run_ok(rt);
  assert_true(support_now_ns() - t0 >= 50000000u); /* waited for c1 */
  assert_int_equal(w.ndown, 3);
  /* c0 and c1 first (in either order), the supervisor last. */
  assert_int_equal(w.down[2].ref, sup);
  assert_int_equal(w.down[2].reason, ISLE_EXIT_NORMAL);
  assert_int_equal(w.lookup_rc[2], ISLE_ENOENT);
  for (int i = 0; i < 2; i++) {
    assert_true(w.down[i].ref == c0 || w.down[i].ref == c1);
    assert_int_equal(w.down[i].reason,
                     w.down[i].ref == c0 ? ISLE_ESHUTDOWN : ISLE_EKILLED);
  }
  assert_int_not_equal(w.down[0].ref, w.down[1].ref);
  assert_int_equal(atomic_load(&kids[0].finalized), 1);
  assert_int_equal(atomic_load(&kids[1].finalized), 1);
  assert_int_equal(atomic_load(&kids[0].inits), 1); /* none restarted */
  assert_int_equal(atomic_load(&kids[1].inits), 1);
  isle_runtime_stats_t s = support_stats(rt);
  assert_int_equal(s.actors_live, 1);
  isle_runtime_free(rt);
  support_assert_heap_quiet();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup(fn, support_setup_baseline)
  const struct CMUnitTest tests[] = {
      T(test_supervisor_one_for_one_restarts_the_child_that_ended),
      T(test_supervisor_one_for_all_restarts_every_child),
      T(test_supervisor_rest_for_one_restarts_the_later_children),
      T(test_supervisor_restart_types),
      T(test_supervisor_gives_up_after_too_many_restarts),
      T(test_supervisor_nested_restarts_an_inner_that_gave_up),
      T(test_supervisor_init_failures),
      T(test_supervisor_exit_stops_children_before_it_ends),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
